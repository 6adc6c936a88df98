//! Every script in `scripts/` runs here with tiny settings (its size variables), on the binaries
//! this build made, so a benchmark or a helper script cannot rot unnoticed: each must exit 0
//! and print its figures. What cannot run here is said per script: `gpu-check.sh` is for a CUDA
//! machine and runs its CPU rehearsal (`DEVICE=cpu`, the comparison step); the picture of
//! `tensorboard-screenshot.sh` needs Chromium, so without it the script makes its runs and asks
//! TensorBoard which it serves; `setup.sh` installs packages, so it runs in its `CHECK=1` mode,
//! which changes nothing. No script writes into the checkout here.
mod common;
use common::{output_within, repo, s, stderr, venv_python};
use std::path::{Path, PathBuf};
use std::process::Command;

const NEUROEVO: &str = env!("CARGO_BIN_EXE_neuroevo");

/// Every file of `scripts/` and how this file covers it.
const SCRIPTS: [&str; 21] = [
    "bench-autocnn.sh",
    "bench-broker.sh",
    "bench-fool.sh",
    "bench-gan.sh",
    "bench-gari.sh",
    "bench-halving.sh",
    "bench-sizecap.sh",
    "bench-train.sh",
    "bench_train_torch.py", // run by bench-train.sh
    "gan-compare.sh",
    "gan-fid-curves.sh",
    "gan-tuned-baseline.sh",
    "gan_curves.py", // run by gan-compare.sh
    "gan_kept_score.py",
    "gan_score.py", // run by gan-compare.sh
    "gpu-check.sh",
    "make-colour-mnist.py",
    "setup.sh",
    "tensorboard-screenshot.sh",
    "train-judge.sh",
    "train-reference.sh",
];

/// Runs `scripts/NAME` with `env` (and `BIN` = this build's neuroevo) within `secs` seconds;
/// returns its stdout after checking that it exited 0.
fn run(name: &str, env: &[(&str, &str)], secs: u64) -> String {
    let mut cmd = Command::new("bash");
    cmd.arg(repo("scripts").join(name))
        .current_dir(repo(""))
        .env("BIN", NEUROEVO)
        .env("DEVICE", "cpu")
        .envs(env.iter().copied());
    let t = std::time::Instant::now();
    let o = output_within(&mut cmd, secs);
    let out = String::from_utf8_lossy(&o.stdout).into_owned();
    eprintln!("{name}: {:.1} s\n{out}", t.elapsed().as_secs_f64());
    assert!(
        o.status.success(),
        "{name}: {:?}\n{out}\n{}",
        o.status,
        stderr(&o)
    );
    out
}

/// Lines of `out` that contain all of `words`.
fn lines_with(out: &str, words: &[&str]) -> usize {
    out.lines()
        .filter(|l| words.iter().all(|w| l.contains(w)))
        .count()
}

#[test]
fn every_script_is_covered_and_parses() {
    let mut found: Vec<String> = std::fs::read_dir(repo("scripts"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    found.sort();
    assert_eq!(found, SCRIPTS, "a new script needs its smoke run here");
    for name in SCRIPTS {
        let path = repo("scripts").join(name);
        let o = if name.ends_with(".sh") {
            Command::new("bash").arg("-n").arg(&path).output().unwrap()
        } else {
            Command::new("python3")
                .args(["-c", "import ast, sys; ast.parse(open(sys.argv[1]).read())"])
                .arg(&path)
                .output()
                .unwrap()
        };
        assert!(o.status.success(), "{name}: {}", stderr(&o));
    }
}

#[test]
fn bench_fool() {
    let out = run(
        "bench-fool.sh",
        &[("SEEDS", "1"), ("ARGS", "--population 8 --generations 2")],
        120,
    );
    assert_eq!(lines_with(&out, &["seed 1:", "classes >= 0.9999"]), 1);
    assert_eq!(lines_with(&out, &["class ", "after", "judge"]), 10, "{out}");
}

/// The bench_gan example beside this build's binaries (`cargo test` builds the examples);
/// None lets the script build it.
fn bench_gan_example() -> Option<PathBuf> {
    let p = Path::new(NEUROEVO).parent()?.join("examples/bench_gan");
    p.is_file().then_some(p)
}

#[test]
fn bench_gan() {
    let example = bench_gan_example();
    let mut env = vec![
        ("P", "2"),
        ("B", "2"),
        ("WIDTH", "4"),
        ("WIDTH64", "4"),
        ("REPS", "1"),
    ];
    if let Some(p) = &example {
        env.push(("BENCH_GAN", s(p)));
    }
    let out = run("bench-gan.sh", &env, 400);
    assert_eq!(
        lines_with(&out, &["P=2", "batched", "ms", "speed-up", "(equal)"]),
        3,
        "{out}"
    );
}

#[test]
fn bench_gari() {
    let out = run(
        "bench-gari.sh",
        &[
            ("GENS", "200"),
            ("PYGAD_GENS", "20"),
            ("SECONDS_BUDGET", "0.3"),
            ("FAST_BUDGET", "0.3"),
            ("RESIZE", "20x15"),
        ],
        240,
    );
    // on the CPU: 3 presets x 2 backends at fixed generations, 4 rows at fixed wall time
    assert_eq!(lines_with(&out, &["gen/s", "PSNR", "dB"]), 10, "{out}");
}

#[test]
fn bench_train_and_its_pytorch_loop() {
    let out = run(
        "bench-train.sh",
        &[("SUBSET", "256"), ("PY", s(&venv_python()))],
        300,
    );
    assert_eq!(
        lines_with(&out, &["neuroevo S128-64 [cpu, mnist-10k]", "samples/s"]),
        1,
        "{out}"
    );
    assert_eq!(lines_with(&out, &["pytorch epoch 1:", "samples/s"]), 1);
}

#[test]
fn gan_fid_curves() {
    let tmp = tempfile::tempdir().unwrap();
    let out = run(
        "gan-fid-curves.sh",
        &[
            ("SET", "dcgan"),
            ("SEEDS", "1"),
            ("BUDGET", "2"),
            ("OUT", s(tmp.path())),
            (
                "ARGS",
                "--subset 64 --fid-samples 64 --batch-size 16 --eval-batch 16 --width 4",
            ),
        ],
        300,
    );
    // each run: its FID at its epoch ends, as "SECONDSs:FID"
    for run in ["baseline-s1", "ga-glr-s1"] {
        let line = out
            .lines()
            .find(|l| l.starts_with(run))
            .unwrap_or_else(|| panic!("{run}: {out}"));
        assert!(line.contains("s:") && !line.contains("failed"), "{line}");
    }
}

#[test]
fn gpu_check_rehearses_on_the_cpu() {
    // the CUDA parts need a GPU: the script's CPU rehearsal runs its comparison step
    let tmp = tempfile::tempdir().unwrap();
    let out = run(
        "gpu-check.sh",
        &[
            ("BIN_DIR", s(Path::new(NEUROEVO).parent().unwrap())),
            ("STEPS", "compare"),
            ("COMPARE", "base-2e-4"),
            // wall seconds of training: an epoch (4 generations) takes well under one
            ("BUDGET", "6"),
            ("SUBSET", "64"),
            (
                "GAN_ARGS",
                "--fid-samples 64 --batch-size 16 --eval-batch 16 --width 4",
            ),
            ("TOTAL", "200"),
            ("WORK", s(&tmp.path().join("work"))),
        ],
        300,
    );
    assert_eq!(lines_with(&out, &["c28-base-2e-4-s1: exit 0"]), 1, "{out}");
    // its summary row: generations, epochs, seconds and FIDs
    let row = out
        .lines()
        .find(|l| l.starts_with("c28-base-2e-4-s1 "))
        .unwrap_or_else(|| panic!("{out}"));
    assert!(
        !row.contains("no epoch finished") && row.split_whitespace().count() == 11,
        "{row}"
    );
}

#[test]
fn make_colour_mnist() {
    let tmp = tempfile::tempdir().unwrap();
    let dst = tmp.path().join("cmnist");
    let o = output_within(
        Command::new(venv_python())
            .arg(repo("scripts/make-colour-mnist.py"))
            .arg(repo("data/mnist-10k/train-images-idx3-ubyte.gz"))
            .arg(&dst)
            .arg("5"),
        120,
    );
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(String::from_utf8_lossy(&o.stdout).contains("wrote 5 64x64 RGB PNGs"));
    for i in 0..5 {
        let img = image::open(dst.join(format!("{i:05}.png"))).unwrap();
        assert_eq!(
            (img.width(), img.height(), img.color()),
            (64, 64, image::ColorType::Rgb8)
        );
    }
}

#[test]
fn setup_checks_without_changing_anything() {
    // setup.sh installs packages: CHECK=1 only reports (exit 1 when something is missing)
    let out = run("setup.sh", &[("CHECK", "1")], 120);
    assert!(out.contains("setup: libtorch 2.11.0 at"), "{out}");
}

#[test]
fn tensorboard_screenshot_without_the_browser() {
    // the picture needs Chromium; without it (NO_BROWSER) the runs are made and TensorBoard
    // is asked which it serves
    let tmp = tempfile::tempdir().unwrap();
    let shot = tmp.path().join("tb.png");
    let browser = Command::new("sh")
        .args(["-c", "command -v chromium"])
        .output()
        .is_ok_and(|o| o.status.success());
    let mut env = vec![
        ("SUBSET", "64"),
        ("EPOCHS", "1"),
        ("FID_SAMPLES", "64"),
        ("ARGS", "--batch-size 16 --eval-batch 16 --width 4"),
        ("SHOT", s(&shot)),
    ];
    if !browser {
        env.push(("NO_BROWSER", "1"));
    }
    let out = run("tensorboard-screenshot.sh", &env, 300);
    assert!(
        out.contains("tensorboard serves runs: gan-dcgan gan-weights"),
        "{out}"
    );
    if browser {
        assert!(image::open(&shot).is_ok(), "{out}");
    }
}

#[test]
fn train_judge_and_train_reference() {
    let tmp = tempfile::tempdir().unwrap();
    let models = s(tmp.path());
    for (script, model) in [
        ("train-judge.sh", "mnist-judge"),
        ("train-reference.sh", "mnist-cnn"),
    ] {
        let out = run(
            script,
            &[("EPOCHS", "1"), ("SUBSET", "300"), ("MODELS", models)],
            300,
        );
        assert_eq!(
            lines_with(&out, &["train:", "val acc", "test acc"]),
            1,
            "{out}"
        );
        for ext in ["pt", "features.pt", "json", "log.jsonl"] {
            let f = tmp.path().join(format!("{model}.{ext}"));
            assert!(f.is_file(), "{script}: no {f:?}");
        }
    }
}

/// The auto-cnn benchmarks take their sizes as variables (SUBSET, POPULATION, GENERATIONS,
/// EPOCHS, FILTERS); a version of the script without them is only parsed.
fn sized(script: &str) -> bool {
    let text = std::fs::read_to_string(repo("scripts").join(script)).unwrap();
    let ok = text.contains("POPULATION");
    if !ok {
        eprintln!("{script}: takes no size variables here; only parsed (bash -n)");
    }
    ok
}

const AUTOCNN_TINY: [(&str, &str); 5] = [
    ("SUBSET", "300"),
    ("POPULATION", "2"),
    ("GENERATIONS", "0"),
    ("EPOCHS", "1"),
    ("FILTERS", "8"),
];

#[test]
fn bench_autocnn() {
    if !sized("bench-autocnn.sh") {
        return;
    }
    let mut env = AUTOCNN_TINY.to_vec();
    env.push(("BIN", env!("CARGO_BIN_EXE_auto-cnn")));
    env.push(("SEEDS", "1"));
    let tmp = tempfile::tempdir().unwrap();
    env.push(("OUT", s(tmp.path())));
    let out = run("bench-autocnn.sh", &env, 300);
    assert_eq!(
        out.lines().filter(|l| l.starts_with("1 ")).count(),
        1,
        "{out}"
    );
    assert!(out.contains("per network:"), "{out}");
}

#[test]
fn bench_sizecap() {
    let mut env = AUTOCNN_TINY.to_vec();
    env.push(("BIN", env!("CARGO_BIN_EXE_auto-cnn")));
    env.push(("SEEDS", "1"));
    env.push(("MAX_PARAMS", "2000"));
    let tmp = tempfile::tempdir().unwrap();
    env.push(("OUT", s(tmp.path())));
    let out = run("bench-sizecap.sh", &env, 300);
    for search in [
        "1     --max-params 2000",
        "1     accuracy,params",
        "front (",
    ] {
        assert_eq!(lines_with(&out, &[search]), 1, "{out}");
    }
    // the cap held for every network evaluated
    let largest: i64 = out
        .lines()
        .find(|l| l.contains("largest network evaluated:"))
        .and_then(|l| l.split_whitespace().nth(3))
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("{out}"));
    assert!((1..=2000).contains(&largest), "{out}");
}

#[test]
fn bench_halving() {
    let mut env = AUTOCNN_TINY.to_vec();
    env.push(("BIN", env!("CARGO_BIN_EXE_auto-cnn")));
    env.push(("SEEDS", "1"));
    let tmp = tempfile::tempdir().unwrap();
    env.push(("OUT", s(tmp.path())));
    let out = run("bench-halving.sh", &env, 300);
    for fidelity in ["full", "halving"] {
        assert_eq!(
            lines_with(&out, &[&format!("1     {fidelity} ")]),
            1,
            "{out}"
        );
        assert_eq!(
            lines_with(&out, &[&format!("mean  {fidelity} ")]),
            1,
            "{out}"
        );
    }
    assert_eq!(
        lines_with(
            &out,
            &["halving against full:", "x faster", "best test accuracy"]
        ),
        1,
        "{out}"
    );
}

#[test]
fn bench_broker() {
    if !sized("bench-broker.sh") {
        return;
    }
    let out = run("bench-broker.sh", &AUTOCNN_TINY, 400);
    for label in [
        "in-process (1 thread)",
        "1 worker(s) via NATS",
        "2 worker(s) via NATS",
    ] {
        assert_eq!(
            lines_with(&out, &[label, "wall", "networks trained"]),
            1,
            "{label}: {out}"
        );
    }
}

#[test]
fn gpu_check_untrusted_step_rehearses_on_the_cpu() {
    // the device machine's python3 has torch; here the .venv's does
    let tmp = tempfile::tempdir().unwrap();
    let path = format!(
        "{}:{}",
        repo(".venv/bin").display(),
        std::env::var("PATH").unwrap_or_default()
    );
    let out = run(
        "gpu-check.sh",
        &[
            ("BIN_DIR", s(Path::new(NEUROEVO).parent().unwrap())),
            ("STEPS", "untrusted"),
            ("SUBSET", "600"),
            ("PATH", &path),
            ("TOTAL", "200"),
            ("WORK", s(&tmp.path().join("work"))),
        ],
        300,
    );
    for check in ["thief", "fool", "train-patience"] {
        assert_eq!(
            lines_with(&out, &[&format!("{check}: exit"), "ok"]),
            1,
            "{out}"
        );
    }
    assert!(
        out.contains("victim file after the thief: untouched"),
        "{out}"
    );
    assert!(
        out.contains("exit 130 (want 130), model.pt absent"),
        "{out}"
    );
}

#[test]
fn gan_tuned_baseline() {
    let tmp = tempfile::tempdir().unwrap();
    let env = [
        ("LRS", "1e-3 2e-3"),
        ("SEEDS", "1"),
        ("BUDGET", "4"),
        ("FID_SAMPLES", "100"),
        (
            "ARGS",
            "--subset 256 --width 4 --batch-size 16 --eval-batch 16",
        ),
        ("OUT", s(tmp.path())),
    ];
    let out = run("gan-tuned-baseline.sh", &env, 300);
    // both rates tuned (2 s each), the winner run on the seed, its mean
    for lr in ["1e-3", "2e-3"] {
        assert_eq!(lines_with(&out, &[&format!("{lr} "), " 100 "]), 1, "{out}");
    }
    assert_eq!(lines_with(&out, &["tuned rate: "]), 1, "{out}");
    assert_eq!(
        lines_with(&out, &["tuned baseline: lr ", "over 1 seed(s)"]),
        1,
        "{out}"
    );
}

#[test]
fn gan_compare() {
    let tmp = tempfile::tempdir().unwrap();
    let env = [
        ("RECIPES", "p2=--population 2;mix=--population 2 --mixture"),
        ("SEEDS", "1 2"),
        ("BUDGET", "3"),
        ("FID_SAMPLES", "100"),
        ("BASELINE", "1e9 0"),
        (
            "ARGS",
            "--subset 256 --width 4 --batch-size 16 --eval-batch 16",
        ),
        ("OUT", s(tmp.path())),
    ];
    let out = run("gan-compare.sh", &env, 300);
    let table: String = out
        .lines()
        .filter(|l| !l.starts_with("curve "))
        .map(|l| format!("{l}\n"))
        .collect();
    // a row per recipe and seed, the mixture's FID where there is one
    assert_eq!(lines_with(&table, &["p2 ", " - "]), 2, "{out}");
    assert_eq!(lines_with(&table, &["mix "]), 2, "{out}");
    // each recipe beats a baseline of 1e9 and not one of 0
    assert_eq!(
        lines_with(&out, &["below the tuned baseline on 1 of 2 seed(s)"]),
        2,
        "{out}"
    );
    assert_eq!(lines_with(&out, &["mix: ", "mean mixture FID"]), 1, "{out}");
    // each recipe's curve: five points (`-` where no seed had an epoch end yet) over two seeds
    for name in ["p2 ", "mix "] {
        let curve = out
            .lines()
            .find(|l| l.starts_with(&format!("curve {name}")))
            .unwrap_or_else(|| panic!("no curve of {name}: {out}"));
        assert!(curve.ends_with("(2 seed(s))"), "{curve}");
        assert_eq!(curve.split_whitespace().count(), 2 + 5 + 2, "{curve}");
    }
    // the best-so-far score of the same runs: a line each, never above the run's own score
    let o = Command::new("python3")
        .arg(repo("scripts").join("gan_kept_score.py"))
        .args(["p2-seed1", "p2-seed2"].map(|d| tmp.path().join(d)))
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", stderr(&o));
    let kept = String::from_utf8_lossy(&o.stdout).into_owned();
    assert_eq!(kept.lines().count(), 2, "{kept}");
    for l in kept.lines() {
        let f: Vec<&str> = l.split_whitespace().collect();
        assert_eq!(f.len(), 3, "{l}");
        if let (Ok(q), Ok(k)) = (f[1].parse::<f64>(), f[2].parse::<f64>()) {
            assert!(k <= q, "{l}");
        }
    }
}
