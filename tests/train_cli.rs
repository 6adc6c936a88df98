//! End-to-end runs of `neuroevo train` on a subset of the bundled mnist-10k.
mod common;
use common::{neuroevo, stderr, TINY_TRAIN};

#[test]
fn trains_reports_exports_and_resumes_after_a_kill() {
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("run");
    let args = |out: &std::path::Path| -> Vec<String> {
        [
            "train",
            "-q",
            "--subset",
            "1200",
            "--arch",
            "S8-8 P:max F32",
            "--epochs",
            "4",
            "--seed",
            "5",
            "--device",
            "cpu",
            "--out",
        ]
        .iter()
        .map(|s| s.to_string())
        .chain([out.display().to_string()])
        .collect()
    };
    let mut child = neuroevo().args(args(&out)).spawn().unwrap();
    let state = out.join("state.json");
    let t = std::time::Instant::now();
    while !state.exists() && t.elapsed().as_secs() < 120 {
        std::thread::sleep(std::time::Duration::from_millis(5));
    }
    child.kill().unwrap();
    let status = child.wait().unwrap();
    assert!(!status.success(), "killed before the end");
    assert!(!out.join("result.json").exists());

    let o = neuroevo()
        .args(["train", "-q", "--resume", out.to_str().unwrap()])
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", stderr(&o));
    let result: serde_json::Value =
        serde_json::from_slice(&std::fs::read(out.join("result.json")).unwrap()).unwrap();
    let epochs: Vec<u64> = result["epochs"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["epoch"].as_u64().unwrap())
        .collect();
    assert_eq!(epochs, vec![1, 2, 3, 4], "every epoch once");
    let test_acc = result["test_acc"].as_f64().unwrap();
    assert!(test_acc > 0.8, "a small CNN learns digits: {test_acc}");
    for f in [
        "model.pt",
        "model.features.pt",
        "model.json",
        "log.jsonl",
        "config.json",
    ] {
        assert!(out.join(f).is_file(), "{f}");
    }
    let log = std::fs::read_to_string(out.join("log.jsonl")).unwrap();
    assert_eq!(log.lines().count(), 4);
}

#[test]
fn user_mistakes_exit_2_with_one_line() {
    let tmp = tempfile::tempdir().unwrap();
    let empty = tmp.path().join("empty");
    std::fs::create_dir_all(&empty).unwrap();
    let not_a_dir = tmp.path().join("file");
    std::fs::write(&not_a_dir, b"a file").unwrap();
    let under_a_file = not_a_dir.join("model.pt");
    let cases: Vec<(Vec<&str>, &str)> = vec![
        (vec!["--arch", "S8"], "S8"),
        (
            vec!["--arch", "S4-4 P:max P:max P:max P:max P:max"],
            "below 1x1",
        ),
        (vec!["--dataset", "imagenet"], "--dataset"),
        (
            vec!["--dataset", "mnist", "--data-dir", empty.to_str().unwrap()],
            "mnist-10k",
        ),
        (
            vec!["--dataset", "folder:/nonexistent/faces"],
            "not a directory",
        ),
        (vec!["--epochs", "0"], "--epochs"),
        (vec!["--val-fraction", "1.5"], "--val-fraction"),
        (vec!["--precision", "fp8"], "--precision"),
        (vec!["--resume", tmp.path().to_str().unwrap()], "--resume"),
        // rates libtorch's optimizers cannot hold (they panicked or printed C++ frames)
        (vec!["--lr", "1e39"], "--lr 1e39"),
        (vec!["--optimizer", "sgd", "--lr", "1e39"], "--lr 1e39"),
        (vec!["--weight-decay", "1e39"], "--weight-decay"),
        (vec!["--weight-decay", "NaN"], "--weight-decay"),
        (vec!["--weight-decay", "-1"], "--weight-decay -1"),
        // a network that cannot train one step in this machine's memory
        (
            vec!["--arch", "S4096-4096 S4096-4096 S4096-4096"],
            "needs ~",
        ),
        // a place the model cannot be written to is found before the training
        (vec!["--export", under_a_file.to_str().unwrap()], "--export"),
    ];
    for (extra, needle) in cases {
        let out = tmp.path().join(format!("run{}", extra.len()));
        let mut args = vec![
            "train",
            "-q",
            "--subset",
            "100",
            "--out",
            out.to_str().unwrap(),
        ];
        args.extend(&extra);
        // a mirror that refuses connections at once: no test ever reaches the internet
        let o = neuroevo()
            .args(&args)
            .env("NEUROEVO_MIRROR", "http://127.0.0.1:9")
            .output()
            .unwrap();
        let err = stderr(&o);
        assert_eq!(o.status.code(), Some(2), "{extra:?}: {err}");
        assert_eq!(err.trim().lines().count(), 1, "{extra:?}: {err}");
        assert!(err.contains(needle), "{extra:?}: {err}");
        assert!(
            !out.join("log.jsonl").exists(),
            "{extra:?}: refused before training"
        );
        let _ = std::fs::remove_dir_all(&out);
    }
}

#[test]
fn stops_on_patience_or_a_time_budget_like_every_job() {
    let tmp = tempfile::tempdir().unwrap();
    let run = |out: &std::path::Path, extra: &[&str]| {
        let o = neuroevo()
            .args(["train", "-q"])
            .args(TINY_TRAIN)
            .args([
                "--seed",
                "2",
                "--device",
                "cpu",
                "--out",
                out.to_str().unwrap(),
            ])
            .args(extra)
            .output()
            .unwrap();
        assert!(o.status.success(), "{extra:?}: {}", stderr(&o));
        let r: serde_json::Value =
            serde_json::from_slice(&std::fs::read(out.join("result.json")).unwrap()).unwrap();
        r
    };
    // patience: stops once `patience` epochs bring no better validation accuracy
    let p = tmp.path().join("p");
    let r = run(&p, &["--epochs", "60", "--patience", "2", "--lr", "0.01"]);
    assert_eq!(r["stop_reason"], "patience", "{r}");
    let acc: Vec<f64> = r["epochs"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["val_acc"].as_f64().unwrap())
        .collect();
    assert!(acc.len() < 60, "{acc:?}");
    let best = acc.iter().cloned().fold(f64::MIN, f64::max);
    let first_best = acc.iter().position(|&a| a == best).unwrap();
    assert_eq!(
        acc.len() - 1 - first_best,
        2,
        "two epochs without a better one: {acc:?}"
    );
    assert!(p.join("model.pt").is_file());

    // a time budget: stops after the epoch that spends it; --resume with a larger one goes on
    let t = tmp.path().join("t");
    let r = run(&t, &["--epochs", "1000", "--time-budget", "0.5"]);
    assert_eq!(r["stop_reason"], "time_budget", "{r}");
    let n = r["epochs"].as_array().unwrap().len();
    assert!((1..1000).contains(&n));
    let spent = r["elapsed_s"].as_f64().unwrap();
    assert!(spent >= 0.5);
    let more = format!("{}", spent + 2.0);
    let o = neuroevo()
        .args(["train", "-q", "--resume", t.to_str().unwrap()])
        .args(["--time-budget", &more])
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", stderr(&o));
    let r: serde_json::Value =
        serde_json::from_slice(&std::fs::read(t.join("result.json")).unwrap()).unwrap();
    let epochs: Vec<u64> = r["epochs"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["epoch"].as_u64().unwrap())
        .collect();
    assert!(epochs.len() > n, "{epochs:?}");
    assert!(epochs.iter().enumerate().all(|(i, &e)| e == i as u64 + 1));
}
