//! An exported classifier gives the same outputs in Python (`torch.jit.load`), in Rust
//! (`tch::CModule::load`) and in the model it came from, on a batch size other than the traced one.
mod common;
use common::venv_python;
use neuroevo::nn::export::{export_classifier, features_path, info_path, ModelInfo};
use neuroevo::nn::{Arch, LayerNet};
use tch::nn::ModuleT;
use tch::{CModule, Device, Kind, Tensor};

fn max_diff(a: &Tensor, b: &Tensor) -> f64 {
    (a - b).abs().max().double_value(&[])
}

#[test]
fn exported_model_matches_in_python_and_rust() {
    tch::manual_seed(7);
    let dir = tempfile::tempdir().unwrap();
    let mut vs = tch::nn::VarStore::new(Device::Cpu);
    let arch = Arch::parse("S4-8 P:max S8-8 P:avg F16 D0.2").unwrap();
    let net = LayerNet::new(&vs.root(), &arch, [1, 28, 28], 10).unwrap();
    // a few training steps so batch-norm statistics are not the defaults
    let mut opt = tch::nn::OptimizerConfig::build(tch::nn::Adam::default(), &vs, 1e-2).unwrap();
    for _ in 0..3 {
        let x = Tensor::rand([16, 1, 28, 28], (Kind::Float, Device::Cpu));
        let y = Tensor::randint(10, [16], (Kind::Int64, Device::Cpu));
        opt.backward_step(&net.forward_t(&x, true).cross_entropy_for_logits(&y));
    }
    let x = Tensor::rand([7, 1, 28, 28], (Kind::Float, Device::Cpu));
    let expect = net.forward_t(&x, false);
    let expect_f = net.features_t(&x, false);

    let model = dir.path().join("m.pt");
    let info = ModelInfo {
        kind: "classifier".into(),
        format: "test".into(),
        arch: arch.to_string(),
        input_shape: [1, 28, 28],
        input_range: (0.0, 1.0),
        normalization: "pixel / 255".into(),
        outputs: "logits".into(),
        classes: (0..10).map(|i| i.to_string()).collect(),
        features_file: None,
        weights_file: None,
        feature_dim: net.feature_dim,
        parameters: 0,
        dataset: "none".into(),
        traced_batch: 0,
        metrics: serde_json::json!({}),
    };
    export_classifier(&net, &mut vs, &model, info).unwrap();
    assert!(
        vs.trainable_variables().iter().all(|t| t.requires_grad()),
        "export leaves the model trainable"
    );
    let json: serde_json::Value =
        serde_json::from_slice(&std::fs::read(info_path(&model)).unwrap()).unwrap();
    assert_eq!(json["features_file"], "m.features.pt");
    assert_eq!(json["traced_batch"], 4);

    // Rust
    let m = CModule::load(&model).unwrap();
    let got = m.forward_ts(&[&x]).unwrap();
    assert!(max_diff(&got, &expect) < 1e-5);
    let f = CModule::load(features_path(&model)).unwrap();
    assert!(max_diff(&f.forward_ts(&[&x]).unwrap(), &expect_f) < 1e-5);

    // Python
    let xin = dir.path().join("x.npy");
    x.write_npy(&xin).unwrap();
    let out = dir.path().join("y.npy");
    let outf = dir.path().join("f.npy");
    let script = format!(
        "import numpy as np, torch\n\
         x = torch.from_numpy(np.load(r'{}'))\n\
         m = torch.jit.load(r'{}'); f = torch.jit.load(r'{}')\n\
         np.save(r'{}', m(x).detach().numpy()); np.save(r'{}', f(x).detach().numpy())\n",
        xin.display(),
        model.display(),
        features_path(&model).display(),
        out.display(),
        outf.display()
    );
    let o = std::process::Command::new(venv_python())
        .args(["-c", &script])
        .output()
        .unwrap();
    assert!(
        o.status.success(),
        "python: {}",
        String::from_utf8_lossy(&o.stderr)
    );
    let py = Tensor::read_npy(&out).unwrap();
    assert_eq!(py.size(), vec![7, 10]);
    assert!(
        max_diff(&py, &expect) < 1e-5,
        "python logits differ by {}",
        max_diff(&py, &expect)
    );
    let pyf = Tensor::read_npy(&outf).unwrap();
    assert!(max_diff(&pyf, &expect_f) < 1e-5);
}
