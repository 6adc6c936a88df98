//! Exports a PyTorch user can train further: beside `model.pt` (TorchScript, weights as
//! constants) `train` and `auto-cnn` write `model.safetensors`, and `python/neuroevo_torch.py`
//! rebuilds the same `torch.nn.Module` from the `.json`'s layer list: in Python, its outputs
//! equal the TorchScript export's, its parameters train.
mod common;
use common::{neuroevo, repo, s, stderr, venv_python, TINY_GAN};
use std::path::Path;

/// Checks in Python that the rebuilt module of `json` equals `pt` (logits and features) within
/// 1e-5 and that one optimizer step changes its parameters.
fn check_in_python(json: &Path, pt: &Path, features: &Path) {
    let script = r#"
import sys, torch
sys.path.insert(0, sys.argv[1])
import neuroevo_torch
net = neuroevo_torch.load(sys.argv[2])
ts, tf = torch.jit.load(sys.argv[3]), torch.jit.load(sys.argv[4])
torch.manual_seed(0)
import json
info = json.load(open(sys.argv[2]))
x = torch.rand(16, *info["input_shape"]) * (info["input_range"][1] - info["input_range"][0]) + info["input_range"][0]
with torch.no_grad():
    d = (net(x) - ts(x)).abs().max().item()
    df = (net.features(x) - tf(x)).abs().max().item()
assert d < 1e-5 and df < 1e-5, (d, df)
params = list(net.parameters())
assert params and all(p.requires_grad for p in params)
before = [p.detach().clone() for p in params]
net.train()
opt = torch.optim.SGD(params, lr=0.1)
loss = torch.nn.functional.cross_entropy(net(x), torch.randint(0, len(info["classes"]), (16,)))
opt.zero_grad(); loss.backward(); opt.step()
changed = sum(not torch.equal(a, b) for a, b in zip(before, params))
assert changed == len(params), (changed, len(params))
print("ok", d, df)
"#;
    let o = std::process::Command::new(venv_python())
        .args([
            "-c",
            script,
            s(&repo("python")),
            s(json),
            s(pt),
            s(features),
        ])
        .output()
        .expect("the .venv of scripts/setup.sh");
    assert!(
        o.status.success(),
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        stderr(&o)
    );
}

#[test]
fn train_and_auto_cnn_exports_rebuild_as_trainable_modules() {
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("train");
    let o = neuroevo()
        .current_dir(repo(""))
        .args([
            "train", "-q", "--device", "cpu", "--subset", "300", "--epochs", "1",
        ])
        .args([
            "--arch",
            "S8-8 P:max S8-16 P:avg F32 D0.2",
            "--batch-size",
            "32",
        ])
        .args(["--out", s(&out)])
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(out.join("model.safetensors").is_file());
    check_in_python(
        &out.join("model.json"),
        &out.join("model.pt"),
        &out.join("model.features.pt"),
    );

    let out = tmp.path().join("ac");
    let o = neuroevo()
        .current_dir(repo(""))
        .args([
            "auto-cnn", "search", "-q", "--device", "cpu", "--subset", "300",
        ])
        .args([
            "--population",
            "2",
            "--generations",
            "0",
            "--epochs",
            "1",
            "--filters",
            "8",
        ])
        .args(["--out", s(&out)])
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", stderr(&o));
    check_in_python(
        &out.join("best.json"),
        &out.join("best.pt"),
        &out.join("best.features.pt"),
    );
}

/// In Python: the rebuilt generator of `json` equals the TorchScript `pt` within 1e-5 and
/// trains.
fn check_generator_in_python(json: &Path, pt: &Path) {
    let script = r#"
import sys, json, torch
sys.path.insert(0, sys.argv[1])
import neuroevo_torch
g = neuroevo_torch.load_generator(sys.argv[2])
ts = torch.jit.load(sys.argv[3])
info = json.load(open(sys.argv[2]))
z = torch.randn(8, *info["latent_shape"])
with torch.no_grad():
    d = (g(z) - ts(z)).abs().max().item()
assert d < 1e-5, d
params = list(g.parameters())
assert params and all(p.requires_grad for p in params)
before = [p.detach().clone() for p in params]
g.train()
opt = torch.optim.Adam(params, lr=1e-3)
loss = g(z).pow(2).mean()
opt.zero_grad(); loss.backward(); opt.step()
assert all(not torch.equal(a, b) for a, b in zip(before, params))
print("ok", d)
"#;
    let o = std::process::Command::new(venv_python())
        .args(["-c", script, s(&repo("python")), s(json), s(pt)])
        .output()
        .unwrap();
    assert!(
        o.status.success(),
        "{json:?}: {}{}",
        String::from_utf8_lossy(&o.stdout),
        stderr(&o)
    );
}

#[test]
fn gan_generators_of_both_modes_rebuild_as_trainable_modules() {
    let tmp = tempfile::tempdir().unwrap();
    for (mode, extra) in [
        ("dcgan", vec!["--width", "4"]),
        (
            "weights",
            vec!["--hidden-activation", "softmax", "--hidden", "12,9"],
        ),
    ] {
        let out = tmp.path().join(mode);
        let o = neuroevo()
            .current_dir(repo(""))
            .args(["gan", "-q", "--device", "cpu", "--mode", mode])
            .args(&extra)
            .args(["--population", "2"])
            .args(TINY_GAN)
            .args(["--generations", "2"])
            .args(["--out", s(&out)])
            .output()
            .unwrap();
        assert!(o.status.success(), "{mode}: {}", stderr(&o));
        check_generator_in_python(
            &out.join("best-generator.json"),
            &out.join("best-generator.pt"),
        );
    }
}
