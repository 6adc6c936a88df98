//! `neuroevo fool` end to end with a tiny classifier trained here, batched fitness against a
//! per-image loop, latent space through a tiny generator, and user mistakes.
mod common;
use common::{neuroevo, stderr};
use neuroevo::fool::FoolFitness;
use neuroevo::ga::flat_tensor::TensorFitness;
use neuroevo::nn::load::{Classifier, Generator, GeneratorInfo};
use std::path::{Path, PathBuf};
use tch::{Device, Kind, Tensor};

/// A small classifier trained on 600 digits, exported by `neuroevo train`.
fn tiny_classifier(dir: &Path) -> PathBuf {
    let model = dir.join("tiny.pt");
    let o = neuroevo()
        .args([
            "train",
            "-q",
            "--subset",
            "600",
            "--arch",
            "S4-4 P:max",
            "--epochs",
            "1",
            "--seed",
            "1",
            "--device",
            "cpu",
        ])
        .args([
            "--out",
            dir.join("train").to_str().unwrap(),
            "--export",
            model.to_str().unwrap(),
        ])
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", stderr(&o));
    model
}

#[test]
fn evolution_raises_the_target_confidence_and_writes_its_outputs() {
    let tmp = tempfile::tempdir().unwrap();
    let model = tiny_classifier(tmp.path());
    let out = tmp.path().join("fool");
    let o = neuroevo()
        .args([
            "fool",
            "-q",
            "--classifier",
            model.to_str().unwrap(),
            "--judge",
            "none",
            "--class",
            "1",
        ])
        .args([
            "--generations",
            "15",
            "--seed",
            "2",
            "--device",
            "cpu",
            "--population",
            "16",
            "--out",
            out.to_str().unwrap(),
        ])
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", stderr(&o));
    let log: Vec<serde_json::Value> = std::fs::read_to_string(out.join("log.jsonl"))
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let first = log.first().unwrap()["best"].as_f64().unwrap();
    let last = log.last().unwrap()["best"].as_f64().unwrap();
    assert!(
        last > first,
        "log-probability of class 1: {first} -> {last}"
    );
    assert!(log.iter().all(|r| r["class"] == 1));
    for f in [
        "class-1.png",
        "grid.png",
        "confidence.png",
        "result.json",
        "config.json",
        "class-1/checkpoint.bin",
    ] {
        assert!(out.join(f).is_file(), "{f}");
    }
    let img = image::open(out.join("class-1.png")).unwrap();
    assert!(img.width() >= 224, "upscaled for viewing");
}

#[test]
fn batched_fitness_equals_a_per_image_loop() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR"));
    let classifier = Classifier::load(&dir.join("models/mnist-cnn.pt"), Device::Cpu).unwrap();
    tch::manual_seed(3);
    for (binary, block) in [(false, 1), (true, 1), (false, 4), (true, 3)] {
        let n = FoolFitness::pixel_genes([1, 28, 28], block);
        let genomes = Tensor::rand([9, n as i64], (Kind::Float, Device::Cpu));
        let mut fit = FoolFitness {
            classifier: &classifier,
            generator: None,
            class: 4,
            binary,
            block,
        };
        let batched = fit.evaluate(&genomes).unwrap();
        for (i, b) in batched.iter().enumerate() {
            let one = fit.evaluate(&genomes.narrow(0, i as i64, 1)).unwrap()[0];
            assert!((one - b).abs() < 1e-4, "image {i}: {one} vs {b}");
        }
    }
}

#[test]
fn pixel_blocks_are_squares_of_equal_pixels() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR"));
    let classifier = Classifier::load(&dir.join("models/mnist-cnn.pt"), Device::Cpu).unwrap();
    assert_eq!(FoolFitness::pixel_genes([1, 28, 28], 4), 49);
    assert_eq!(FoolFitness::pixel_genes([1, 28, 28], 3), 100);
    let fit = FoolFitness {
        classifier: &classifier,
        generator: None,
        class: 0,
        binary: false,
        block: 4,
    };
    let genes = Tensor::arange(49, (Kind::Float, Device::Cpu)).view([1, 49]) / 49.0;
    let img = fit.images(&genes).unwrap();
    assert_eq!(img.size(), vec![1, 1, 28, 28]);
    let px = |y: i64, x: i64| img.double_value(&[0, 0, y, x]);
    // gene 8 = block row 1, column 1: pixels 4..8 x 4..8
    for (y, x) in [(4, 4), (7, 7), (4, 7)] {
        assert!((px(y, x) - 8.0 / 49.0).abs() < 1e-6);
    }
    assert!((px(8, 8) - 16.0 / 49.0).abs() < 1e-6);
}

#[test]
fn latent_space_goes_through_a_generator() {
    let tmp = tempfile::tempdir().unwrap();
    let model = tiny_classifier(tmp.path());
    // a tiny generator z[8] -> image [1, 28, 28] in [-1, 1]
    let mut vs = tch::nn::VarStore::new(Device::Cpu);
    let lin = tch::nn::linear(vs.root() / "g", 8, 784, Default::default());
    let gpath = tmp.path().join("g.pt");
    let example = Tensor::zeros([2, 8], (Kind::Float, Device::Cpu));
    neuroevo::nn::export::export_traced(&mut vs, &example, &gpath, &|z| {
        z.apply(&lin).tanh().view([-1, 1, 28, 28])
    })
    .unwrap();
    let info = GeneratorInfo {
        kind: "generator".into(),
        latent_dim: 8,
        latent_shape: vec![8],
        output_shape: [1, 28, 28],
        output_range: (-1.0, 1.0),
        layers: None,
        weights_file: None,
    };
    std::fs::write(
        gpath.with_extension("json"),
        serde_json::to_vec(&info).unwrap(),
    )
    .unwrap();
    let g = Generator::load(&gpath, Device::Cpu).unwrap();
    let classifier = Classifier::load(&model, Device::Cpu).unwrap();
    let fit = FoolFitness {
        classifier: &classifier,
        generator: Some(&g),
        class: 0,
        binary: false,
        block: 1,
    };
    let imgs = fit
        .images(&Tensor::zeros([3, 8], (Kind::Float, Device::Cpu)))
        .unwrap();
    assert_eq!(imgs.size(), vec![3, 1, 28, 28]);
    // tanh(bias) in [-1, 1] mapped to the classifier's [0, 1]
    assert!(imgs.min().double_value(&[]) >= 0.0 && imgs.max().double_value(&[]) <= 1.0);

    let out = tmp.path().join("latent");
    let o = neuroevo()
        .args([
            "fool",
            "-q",
            "--classifier",
            model.to_str().unwrap(),
            "--judge",
            "none",
            "--class",
            "2",
            "--space",
            "latent",
        ])
        .args([
            "--generator",
            gpath.to_str().unwrap(),
            "--generations",
            "5",
            "--population",
            "8",
            "--device",
            "cpu",
        ])
        .args(["--out", out.to_str().unwrap()])
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", stderr(&o));
    let result: serde_json::Value =
        serde_json::from_slice(&std::fs::read(out.join("result.json")).unwrap()).unwrap();
    assert_eq!(result["classes"][0]["class"], 2);
}

#[test]
fn user_mistakes_exit_2_with_one_line() {
    let tmp = tempfile::tempdir().unwrap();
    let no_json = tmp.path().join("m.pt");
    std::fs::copy(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("models/mnist-cnn.pt"),
        &no_json,
    )
    .unwrap();
    let cases: Vec<(Vec<&str>, &str)> = vec![
        (vec!["--classifier", "/nonexistent/m.pt"], "no such model"),
        (vec!["--classifier", no_json.to_str().unwrap()], "m.json"),
        (vec!["--class", "12"], "--class 12"),
        (vec!["--space", "latent"], "--generator"),
        (vec!["--target-confidence", "1.5"], "--target-confidence"),
        (vec!["--mutation", "flip"], "--mutation"),
    ];
    for (extra, needle) in cases {
        let out = tmp.path().join("run");
        let mut args = vec![
            "fool",
            "-q",
            "--device",
            "cpu",
            "--out",
            out.to_str().unwrap(),
        ];
        args.extend(&extra);
        let o = neuroevo()
            .current_dir(env!("CARGO_MANIFEST_DIR"))
            .args(&args)
            .output()
            .unwrap();
        let err = stderr(&o);
        assert_eq!(o.status.code(), Some(2), "{extra:?}: {err}");
        assert_eq!(err.trim().lines().count(), 1, "{extra:?}: {err}");
        assert!(err.contains(needle), "{extra:?}: {err}");
    }
}

/// The files a `wrote DIR/: a, b, ...` line names that are missing from DIR (`class-*.png`: at
/// least one).
fn missing_from_wrote_line(stdout: &str) -> Vec<String> {
    let line = stdout.lines().find(|l| l.contains("wrote ")).unwrap();
    let rest = &line[line.find("wrote ").unwrap() + 6..];
    let (dir, files) = rest.split_once("/: ").unwrap();
    let names: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    files
        .split(", ")
        .filter(|f| match f.split_once('*') {
            Some((a, b)) => !names.iter().any(|n| n.starts_with(a) && n.ends_with(b)),
            None => !Path::new(dir).join(f).exists(),
        })
        .map(str::to_string)
        .collect()
}

#[test]
fn an_interrupted_run_says_so_in_result_json_and_every_file_it_names_exists() {
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("fool");
    let args = |out: &Path, generations: &str| {
        let mut c = neuroevo();
        c.current_dir(env!("CARGO_MANIFEST_DIR")).args([
            "fool",
            "-q",
            "--device",
            "cpu",
            "--judge",
            "none",
            "--class",
            "2",
            "--population",
            "8",
            "--target-confidence",
            "1",
            "--generations",
            generations,
            "--out",
            out.to_str().unwrap(),
        ]);
        c
    };
    // a run that completes: every file of its "wrote" line is there (TensorBoard's too)
    let done = tmp.path().join("done");
    let o = args(&done, "2").output().unwrap();
    assert!(o.status.success(), "{}", stderr(&o));
    let stdout = String::from_utf8_lossy(&o.stdout);
    assert_eq!(
        missing_from_wrote_line(&stdout),
        Vec::<String>::new(),
        "{stdout}"
    );
    let r: serde_json::Value =
        serde_json::from_slice(&std::fs::read(done.join("result.json")).unwrap()).unwrap();
    assert_eq!(r["stop_reason"], "completed", "{r}");
    assert_eq!(r["classes"][0]["stop_reason"], "generations", "{r}");

    // SIGINT once generations are being logged
    let child = args(&out, "1000000")
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let log = out.join("class-2/log.jsonl");
    let t = std::time::Instant::now();
    while std::fs::read_to_string(&log).map_or(0, |s| s.lines().count()) < 3 {
        assert!(t.elapsed().as_secs() < 120, "no generation logged");
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    unsafe { libc::kill(child.id() as i32, libc::SIGINT) };
    let o = child.wait_with_output().unwrap();
    assert_eq!(o.status.code(), Some(130), "{}", stderr(&o));
    let r: serde_json::Value =
        serde_json::from_slice(&std::fs::read(out.join("result.json")).unwrap()).unwrap();
    assert_eq!(r["stop_reason"], "interrupted", "{r}");
    assert_eq!(r["classes"][0]["stop_reason"], "interrupted", "{r}");
}
