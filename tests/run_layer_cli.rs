//! The run layer's contract, for every job: a shaping flag given with `--resume` is refused
//! with exit code 2 naming it, `--resume` of another job's run says whose it is, stop criteria
//! given with `--resume` extend the run, `train` is reproducible, and a copied run directory
//! resumes into itself.
mod common;
use common::{log, neuroevo, repo, run_in_repo, s, stderr};
use std::path::Path;

fn ok(args: &[&str]) {
    let o = run_in_repo(args);
    assert!(o.status.success(), "{args:?}: {}", stderr(&o));
}

fn train(out: &Path, extra: &[&str]) {
    let mut args = vec![
        "train",
        "-q",
        "--device",
        "cpu",
        "--seed",
        "4",
        "--subset",
        "300",
        "--arch",
        "S4-4 P:max",
        "--epochs",
        "1",
        "--batch-size",
        "32",
        "--out",
        s(out),
    ];
    args.extend(extra);
    ok(&args);
}

/// One small finished run of every job, in `tmp`.
fn runs(tmp: &Path) -> Vec<(&'static str, Vec<String>, std::path::PathBuf, &'static str)> {
    let gari = tmp.join("gari");
    ok(&[
        "gari",
        "-q",
        "--device",
        "cpu",
        "--seed",
        "1",
        "--resize",
        "12x9",
        "--generations",
        "50",
        "--out",
        s(&gari),
    ]);
    let tr = tmp.join("train");
    train(&tr, &[]);
    let fool = tmp.join("fool");
    ok(&[
        "fool",
        "-q",
        "--device",
        "cpu",
        "--seed",
        "1",
        "--classifier",
        "models/mnist-cnn.pt",
        "--judge",
        "none",
        "--class",
        "1",
        "--population",
        "8",
        "--generations",
        "2",
        "--out",
        s(&fool),
    ]);
    let ac = tmp.join("ac");
    ok(&[
        "auto-cnn",
        "search",
        "-q",
        "--device",
        "cpu",
        "--seed",
        "1",
        "--subset",
        "200",
        "--population",
        "2",
        "--generations",
        "0",
        "--epochs",
        "1",
        "--filters",
        "4,8",
        "--max-depth",
        "2",
        "--out",
        s(&ac),
    ]);
    let gan = tmp.join("gan");
    ok(&[
        "gan",
        "-q",
        "--device",
        "cpu",
        "--seed",
        "1",
        "--mode",
        "weights",
        "--subset",
        "128",
        "--population",
        "4",
        "--generations",
        "1",
        "--fid-samples",
        "20",
        "--fid-model",
        "models/mnist-cnn.pt",
        "--out",
        s(&gan),
    ]);
    vec![
        ("gari", vec!["gari".into()], gari, "--population"),
        ("train", vec!["train".into()], tr, "--lr"),
        ("fool", vec!["fool".into()], fool, "--population"),
        (
            "auto-cnn",
            vec!["auto-cnn".into(), "search".into()],
            ac,
            "--epochs",
        ),
        ("gan", vec!["gan".into()], gan, "--lr"),
    ]
}

#[test]
fn every_job_refuses_shaping_flags_on_resume_and_names_other_jobs_runs() {
    let tmp = tempfile::tempdir().unwrap();
    let all = runs(tmp.path());
    for (job, cmd, dir, shaping) in &all {
        let mut args: Vec<&str> = cmd.iter().map(String::as_str).collect();
        args.extend(["-q", "--resume", s(dir), shaping, "3"]);
        let o = run_in_repo(&args);
        let err = stderr(&o);
        assert_eq!(o.status.code(), Some(2), "{job}: {err}");
        assert!(
            err.starts_with("error: ") && err.lines().count() == 1,
            "{job}: {err}"
        );
        assert!(
            err.contains(shaping) && err.contains("cannot change"),
            "{job}: {err}"
        );
        // another job's directory
        let (other, _, other_dir, _) = all.iter().find(|r| r.0 != *job).unwrap();
        let mut args: Vec<&str> = cmd.iter().map(String::as_str).collect();
        args.extend(["-q", "--resume", s(other_dir)]);
        let o = run_in_repo(&args);
        let err = stderr(&o);
        assert_eq!(o.status.code(), Some(2), "{job} on {other}: {err}");
        assert!(
            err.contains(&format!("this is a {other} run")),
            "{job} on {other}: {err}"
        );
    }
}

#[test]
fn stop_criteria_given_with_resume_extend_fool_and_train() {
    let tmp = tempfile::tempdir().unwrap();
    let fool = tmp.path().join("fool");
    let base = [
        "fool",
        "-q",
        "--device",
        "cpu",
        "--seed",
        "2",
        "--classifier",
        "models/mnist-cnn.pt",
        "--judge",
        "none",
        "--class",
        "7",
        "--population",
        "8",
        "--target-confidence",
        "1",
    ];
    let mut args = base.to_vec();
    args.extend(["--generations", "2", "--out", s(&fool)]);
    ok(&args);
    ok(&["fool", "-q", "--resume", s(&fool), "--generations", "5"]);
    let gens: Vec<u64> = log(&fool.join("class-7"))
        .iter()
        .map(|r| r["generation"].as_u64().unwrap())
        .collect();
    assert_eq!(
        gens,
        (0..=5).collect::<Vec<_>>(),
        "one record per generation, none repeated"
    );
    // the uninterrupted run ends on the same best fitness
    let full = tmp.path().join("fool-full");
    let mut args = base.to_vec();
    args.extend(["--generations", "5", "--out", s(&full)]);
    ok(&args);
    let best = |d: &Path| {
        log(&d.join("class-7")).last().unwrap()["best"]
            .as_f64()
            .unwrap()
    };
    assert_eq!(best(&fool), best(&full));

    let tr = tmp.path().join("train");
    train(&tr, &[]);
    ok(&["train", "-q", "--resume", s(&tr), "--epochs", "2"]);
    let epochs: Vec<u64> = log(&tr)
        .iter()
        .map(|r| r["epoch"].as_u64().unwrap())
        .collect();
    assert_eq!(epochs, [1, 2]);
    for r in log(&tr) {
        assert_eq!(r["kind"], "epoch");
        assert!(
            r["elapsed_s"].as_f64().unwrap() > 0.0 && r["cpu_s"].as_f64().unwrap() > 0.0,
            "{r}"
        );
    }
}

#[test]
fn train_is_reproducible_and_a_copied_run_resumes_into_itself() {
    let tmp = tempfile::tempdir().unwrap();
    let (a, b) = (tmp.path().join("a"), tmp.path().join("b"));
    train(&a, &[]);
    train(&b, &[]);
    let losses = |d: &Path| -> Vec<f64> {
        log(d)
            .iter()
            .map(|r| r["train_loss"].as_f64().unwrap())
            .collect()
    };
    assert_eq!(
        losses(&a),
        losses(&b),
        "the same seed trains the same network"
    );
    let acc = |d: &Path| common::config(d).get("job").cloned();
    assert_eq!(acc(&a).unwrap(), "train");

    // copy the run directory, resume the copy from another working directory
    let copy = tmp.path().join("copy");
    std::fs::create_dir(&copy).unwrap();
    for e in std::fs::read_dir(&a).unwrap() {
        let e = e.unwrap();
        std::fs::copy(e.path(), copy.join(e.file_name())).unwrap();
    }
    let before = std::fs::read(a.join("model.pt")).unwrap();
    let o = neuroevo()
        .current_dir(tmp.path())
        .args(["train", "-q", "--resume", "copy", "--epochs", "2"])
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", stderr(&o));
    assert_eq!(
        std::fs::read(a.join("model.pt")).unwrap(),
        before,
        "the original is untouched"
    );
    assert!(copy.join("model.pt").is_file());
    assert_ne!(
        std::fs::read(copy.join("model.pt")).unwrap(),
        before,
        "the copy trained on"
    );
}

#[test]
fn a_gan_run_stopped_at_a_checkpoint_and_resumed_ends_as_an_uninterrupted_one() {
    let tmp = tempfile::tempdir().unwrap();
    let (full, cut) = (tmp.path().join("full"), tmp.path().join("cut"));
    let base = "gan -q --device cpu --seed 5 --mode weights --subset 256 --population 4 --fid-samples 20 --fid-model models/mnist-cnn.pt";
    let words = |extra: &str| format!("{base} {extra}");
    let go = |cmd: String| {
        let args: Vec<&str> = cmd.split_whitespace().collect();
        ok(&args);
    };
    go(words(&format!("--generations 8 --out {}", s(&full))));
    // 256 images in batches of 64: an epoch ends (and a checkpoint is written) every 4 generations
    go(words(&format!("--generations 4 --out {}", s(&cut))));
    ok(&["gan", "-q", "--resume", s(&cut), "--generations", "8"]);
    let gens = |d: &Path| -> Vec<(u64, f64, f64)> {
        log(d)
            .iter()
            .filter(|r| r["kind"] == "generation")
            .map(|r| {
                let f = |k: &str| r[k].as_f64().unwrap();
                (
                    r["generation"].as_u64().unwrap(),
                    f("best"),
                    f("real_score"),
                )
            })
            .collect()
    };
    assert_eq!(gens(&full).len(), 8);
    assert_eq!(gens(&cut), gens(&full), "resumed run = uninterrupted run");
    assert_eq!(common::config(&cut)["job"], "gan");
}

#[test]
fn a_killed_fool_run_resumes_and_ends_as_an_uninterrupted_one() {
    let tmp = tempfile::tempdir().unwrap();
    let (full, cut) = (tmp.path().join("full"), tmp.path().join("cut"));
    let args = |out: &Path| -> Vec<String> {
        "fool -q --device cpu --seed 3 --classifier models/mnist-cnn.pt --judge none --class 4 --population 16 --generations 200 --target-confidence 1 --checkpoint-every 5"
            .split_whitespace()
            .map(String::from)
            .chain(["--out".into(), s(out).into()])
            .collect()
    };
    let o = neuroevo()
        .current_dir(repo(""))
        .args(args(&full))
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", stderr(&o));
    let mut child = neuroevo()
        .current_dir(repo(""))
        .args(args(&cut))
        .spawn()
        .unwrap();
    let t = std::time::Instant::now();
    while !cut.join("class-4/checkpoint.bin").exists() && t.elapsed().as_secs() < 120 {
        std::thread::sleep(std::time::Duration::from_millis(1));
    }
    child.kill().unwrap();
    assert!(!child.wait().unwrap().success(), "killed before the end");
    ok(&["fool", "-q", "--resume", s(&cut)]);
    let records = |d: &Path| -> Vec<(u64, f64)> {
        log(&d.join("class-4"))
            .iter()
            .map(|r| {
                (
                    r["generation"].as_u64().unwrap(),
                    r["best"].as_f64().unwrap(),
                )
            })
            .collect()
    };
    assert_eq!(records(&full).len(), 201);
    assert_eq!(
        records(&cut),
        records(&full),
        "resumed run = uninterrupted run"
    );
    assert_eq!(
        std::fs::read(cut.join("class-4.png")).unwrap(),
        std::fs::read(full.join("class-4.png")).unwrap()
    );
}
