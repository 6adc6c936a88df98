//! What a run may write, and where: a copied `train` run exports into the copy, never into the
//! original; `--out` never takes over a folder that is not a run; an interrupted `train` says
//! so and exports nothing half-trained; paths kept in `config.json` survive a resume from
//! another directory; and flag values that used to pass unchecked get their real reason.
mod common;
use common::{
    config, neuroevo, one_line_error, result, s, sha256, stderr, wait_for_file, TINY_TRAIN,
};

/// A tiny train run's command (one epoch of 300 images).
fn tiny_train() -> Vec<&'static str> {
    [
        &["train", "-q"][..],
        &TINY_TRAIN,
        &["--seed", "3", "--device", "cpu"],
    ]
    .concat()
}

#[test]
fn a_copied_train_run_exports_into_the_copy_never_into_the_original() {
    let tmp = tempfile::tempdir().unwrap();
    let run = |args: &[&str]| {
        let o = neuroevo()
            .current_dir(tmp.path())
            .args(args)
            .output()
            .unwrap();
        assert!(o.status.success(), "{args:?}: {}", stderr(&o));
        String::from_utf8_lossy(&o.stdout).into_owned()
    };
    let mut first = tiny_train();
    first.extend(["--epochs", "1", "--out", "t1", "--export", "t1/model.pt"]);
    run(&first);
    // an export inside the run directory is kept relative to it
    assert_eq!(config(&tmp.path().join("t1"))["export"], "model.pt");
    let original = tmp.path().join("t1/model.pt");
    let before = sha256(&original);
    let cp = std::process::Command::new("cp")
        .current_dir(tmp.path())
        .args(["-a", "t1", "t1c"])
        .status()
        .unwrap();
    assert!(cp.success());

    let stdout = run(&["train", "-q", "--resume", "t1c", "--epochs", "2"]);
    assert_eq!(
        sha256(&original),
        before,
        "the original run's model is untouched"
    );
    let copy = tmp.path().join("t1c/model.pt");
    assert_ne!(
        sha256(&copy),
        before,
        "the copy exported its own, further trained model"
    );
    assert!(stdout.contains("exported t1c/model.pt"), "{stdout}");
    assert!(stdout.contains("wrote t1c/: model.pt"), "{stdout}");

    // an export outside the run is written on resume only when --export is given again
    let mut outside = tiny_train();
    outside.extend(["--epochs", "1", "--out", "t2", "--export", "elsewhere/m.pt"]);
    run(&outside);
    let elsewhere = tmp.path().join("elsewhere/m.pt");
    let before = sha256(&elsewhere);
    let stdout = run(&["train", "-q", "--resume", "t2", "--epochs", "2"]);
    assert_eq!(sha256(&elsewhere), before);
    assert!(tmp.path().join("t2/model.pt").is_file());
    assert!(stdout.contains("wrote t2/: model.pt"), "{stdout}");
    run(&[
        "train",
        "-q",
        "--resume",
        "t2",
        "--epochs",
        "3",
        "--export",
        "elsewhere/m.pt",
    ]);
    assert_ne!(sha256(&elsewhere), before, "asked again: written there");
}

#[test]
fn out_refuses_a_folder_that_is_not_a_run() {
    let tmp = tempfile::tempdir().unwrap();
    let mine = tmp.path().join("my-files");
    std::fs::create_dir_all(&mine).unwrap();
    std::fs::write(mine.join("log.jsonl"), b"my own log\n").unwrap();
    std::fs::write(mine.join("result.json"), b"{\"mine\": true}").unwrap();
    let o = neuroevo()
        .args(["gari", "-q", "--generations", "3", "--resize", "20x15"])
        .args(["--out", s(&mine)])
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
    let line = one_line_error(&o);
    assert!(line.contains("not a neuroevo run"), "{line}");
    assert_eq!(
        std::fs::read(mine.join("log.jsonl")).unwrap(),
        b"my own log\n"
    );
    assert_eq!(
        std::fs::read(mine.join("result.json")).unwrap(),
        b"{\"mine\": true}"
    );
    assert!(!mine.join("config.json").exists());
    // an empty folder is fine
    let empty = tmp.path().join("empty");
    std::fs::create_dir_all(&empty).unwrap();
    let o = neuroevo()
        .args(["gari", "-q", "--generations", "3", "--resize", "20x15"])
        .args(["--out", s(&empty)])
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", stderr(&o));
}

#[test]
fn an_interrupted_train_run_says_so_and_exports_nothing_until_it_ends() {
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("t");
    let child = neuroevo()
        .args(tiny_train())
        .args(["--epochs", "1000", "--out", s(&out)])
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    wait_for_file(&out.join("state.json"));
    unsafe { libc::kill(child.id() as i32, libc::SIGINT) };
    let o = child.wait_with_output().unwrap();
    assert_eq!(o.status.code(), Some(130), "{}", stderr(&o));
    let r = result(&out);
    assert_eq!(r["stop_reason"], "interrupted");
    assert!(r["export"].is_null(), "{r}");
    assert!(
        !out.join("model.pt").exists(),
        "no half-trained model passed off"
    );
    assert!(!out.join("model.json").exists());
    let done = r["epochs"].as_array().unwrap().len();

    // resumed with a shorter --epochs, it ends and exports
    let until = (done + 1).to_string();
    let o = neuroevo()
        .args(["train", "-q", "--resume", s(&out), "--epochs", &until])
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", stderr(&o));
    let r = result(&out);
    assert_eq!(r["stop_reason"], "epochs");
    assert!(out.join("model.pt").is_file() && out.join("model.json").is_file());
}

#[test]
fn paths_in_config_json_survive_a_resume_from_another_directory() {
    let tmp = tempfile::tempdir().unwrap();
    let cwd = tmp.path().join("here");
    let elsewhere = tmp.path().join("elsewhere");
    std::fs::create_dir_all(cwd.join("imgs/a")).unwrap();
    std::fs::create_dir_all(cwd.join("imgs/b")).unwrap();
    std::fs::create_dir_all(&elsewhere).unwrap();
    for (i, class) in ["a", "b"].iter().enumerate() {
        for k in 0..6u8 {
            let img = image::GrayImage::from_fn(8, 8, |x, y| {
                image::Luma([((x + y) as u8 * 9 + k * 3).wrapping_mul(i as u8 + 1)])
            });
            img.save(cwd.join(format!("imgs/{class}/{k}.png"))).unwrap();
        }
    }
    let o = neuroevo()
        .current_dir(&cwd)
        .args([
            "train",
            "-q",
            "--dataset",
            "folder:imgs",
            "--image-size",
            "8",
        ])
        .args(["--arch", "S2-2 F4", "--epochs", "1", "--device", "cpu"])
        .args(["--out", s(&tmp.path().join("f"))])
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", stderr(&o));
    let dataset = config(&tmp.path().join("f"))["dataset"].to_string();
    assert!(
        dataset.contains(s(&cwd.join("imgs"))),
        "stored resolved: {dataset}"
    );
    let o = neuroevo()
        .current_dir(&elsewhere)
        .args([
            "train",
            "-q",
            "--resume",
            s(&tmp.path().join("f")),
            "--epochs",
            "2",
        ])
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", stderr(&o));
    // a classifier given by a relative path (fool), resumed from elsewhere
    std::fs::create_dir_all(cwd.join("m")).unwrap();
    for f in ["mnist-cnn.pt", "mnist-cnn.json"] {
        std::fs::copy(common::repo("models").join(f), cwd.join("m").join(f)).unwrap();
    }
    let fo = tmp.path().join("fo");
    let o = neuroevo()
        .current_dir(&cwd)
        .args([
            "fool",
            "-q",
            "--classifier",
            "m/mnist-cnn.pt",
            "--judge",
            "none",
        ])
        .args(["--class", "3", "--generations", "3", "--device", "cpu"])
        .args(["--out", s(&fo)])
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", stderr(&o));
    let o = neuroevo()
        .current_dir(&elsewhere)
        .args(["fool", "-q", "--resume", s(&fo), "--generations", "6"])
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", stderr(&o));
}

#[test]
fn values_that_passed_unchecked_are_refused_with_their_reason() {
    let tmp = tempfile::tempdir().unwrap();
    let cases: Vec<(Vec<&str>, &str)> = vec![
        // a negative number is a value, refused for what it is
        (
            vec!["gari", "--mutation-rate", "-0.1", "--generations", "2"],
            "--mutation-rate -0.1",
        ),
        (
            vec![
                "gari",
                "--mutation-genes",
                "1000000000",
                "--resize",
                "20x15",
            ],
            "--mutation-genes 1000000000",
        ),
        (vec!["gan", "--latent-dim", "0"], "--latent-dim 0"),
        (vec!["gan", "--epochs", "0"], "--epochs 0"),
        (
            vec![
                "gan",
                "--mode",
                "weights",
                "--hidden",
                "1000000",
                "--population",
                "8",
            ],
            "--hidden 1000000",
        ),
    ];
    for (i, (args, needle)) in cases.into_iter().enumerate() {
        let out = tmp.path().join(format!("r{i}"));
        let o = neuroevo()
            .args(&args)
            .args(["-q", "--device", "cpu", "--out", s(&out)])
            .output()
            .unwrap();
        assert_eq!(o.status.code(), Some(2), "{args:?}: {}", stderr(&o));
        let line = one_line_error(&o);
        assert!(line.contains(needle), "{args:?}: {line}");
    }
}

#[test]
fn every_result_json_has_the_same_core_keys() {
    let tmp = tempfile::tempdir().unwrap();
    let runs: Vec<(&str, Vec<&str>)> = vec![
        (
            "gari",
            vec!["gari", "--generations", "20", "--resize", "20x15"],
        ),
        (
            "train",
            [&["train"][..], &TINY_TRAIN, &["--epochs", "1"]].concat(),
        ),
        (
            "gan",
            vec![
                "gan",
                "--mode",
                "weights",
                "--subset",
                "256",
                "--population",
                "4",
                "--generations",
                "2",
                "--fid-samples",
                "20",
            ],
        ),
    ];
    for (name, args) in runs {
        let out = tmp.path().join(name);
        let o = neuroevo()
            .args(&args)
            .args(["-q", "--device", "cpu", "--out", s(&out)])
            .output()
            .unwrap();
        assert!(o.status.success(), "{name}: {}", stderr(&o));
        let text = std::fs::read_to_string(out.join("result.json")).unwrap();
        let r: serde_json::Value = serde_json::from_str(&text).unwrap();
        assert!(r["elapsed_s"].as_f64().unwrap() > 0.0, "{name}");
        assert!(r["cpu_s"].as_f64().unwrap() > 0.0, "{name}");
        assert!(r["stop_reason"].is_string(), "{name}");
    }
}
