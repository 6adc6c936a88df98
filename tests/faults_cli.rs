//! Real faults, not mocks: a second process on a run directory that is in use, Ctrl-C
//! (SIGINT) in the middle of a run, a file-size limit (`RLIMIT_FSIZE`, the kernel's "disk
//! full" for one process) while libtorch weights are written, and learning rates that can only
//! diverge.
mod common;
use common::{
    log, neuroevo, one_line_error, repo, s, stderr, tiny_dcgan, wait_for_file as wait_for,
};

#[test]
fn a_run_directory_in_use_is_refused_and_ctrl_c_ends_a_run_resumably() {
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("gari");
    let first = neuroevo()
        .current_dir(repo(""))
        .args([
            "gari", "-q", "--device", "cpu", "--seed", "1", "--resize", "40x30",
        ])
        .args(["--generations", "100000000", "--checkpoint-every", "1000"])
        .args(["--out", s(&out)])
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    wait_for(&out.join("checkpoint.bin"));

    // a second run on the same --out, and a --resume of it, while the first holds it
    let pid = first.id().to_string();
    for args in [
        vec!["gari", "-q", "--generations", "5", "--out", s(&out)],
        vec!["gari", "-q", "--resume", s(&out)],
    ] {
        let o = neuroevo()
            .current_dir(repo(""))
            .args(&args)
            .output()
            .unwrap();
        assert_eq!(o.status.code(), Some(2), "{args:?}: {}", stderr(&o));
        let line = one_line_error(&o);
        assert!(line.contains(&format!("in use by process {pid}")), "{line}");
    }

    // Ctrl-C: the run writes its checkpoint and outputs and exits with 130
    unsafe { libc::kill(first.id() as i32, libc::SIGINT) };
    let o = first.wait_with_output().unwrap();
    assert_eq!(o.status.code(), Some(130), "{}", stderr(&o));
    assert!(stderr(&o).contains("interrupted"), "{}", stderr(&o));
    let result: serde_json::Value =
        serde_json::from_slice(&std::fs::read(out.join("result.json")).unwrap()).unwrap();
    assert_eq!(result["stop_reason"], "interrupted");
    assert!(out.join("best.png").is_file());
    let records = log(&out); // every line whole JSON
    let last = records.last().unwrap()["generation"].as_u64().unwrap();
    assert_eq!(result["generations"].as_u64(), Some(last));

    // --resume goes on from there; the log has every generation once, in order
    let until = (last + 40).to_string();
    let o = neuroevo()
        .current_dir(repo(""))
        .args(["gari", "-q", "--resume", s(&out), "--generations", &until])
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", stderr(&o));
    let gens: Vec<u64> = log(&out)
        .iter()
        .map(|r| r["generation"].as_u64().unwrap())
        .collect();
    assert!(gens.windows(2).all(|w| w[0] < w[1]), "{gens:?}");
    assert_eq!(*gens.last().unwrap(), last + 40);
    let files: Vec<String> = std::fs::read_dir(&out)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert!(!files.iter().any(|f| f.contains(".tmp")), "{files:?}");
}

#[test]
fn a_full_disk_while_weights_are_written_is_one_line_and_keeps_the_checkpoint() {
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("train");
    let o = neuroevo()
        .current_dir(repo(""))
        .args([
            "train", "-q", "--device", "cpu", "--seed", "4", "--subset", "300",
        ])
        .args([
            "--arch",
            "S16-16 P:max",
            "--epochs",
            "1",
            "--batch-size",
            "32",
        ])
        .args(["--out", s(&out)])
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", stderr(&o));
    let checkpoint = out.join("checkpoint.ot");
    let before = std::fs::read(&checkpoint).unwrap();
    assert!(
        before.len() > 64 * 1024,
        "the weights exceed the limit below"
    );

    // files of at most 16 KiB: the next checkpoint cannot be written (SIGXFSZ ignored, so the
    // write fails with EFBIG as a full disk fails with ENOSPC)
    let bin = env!("CARGO_BIN_EXE_neuroevo");
    let o = std::process::Command::new("bash")
        .current_dir(repo(""))
        .args([
            "-c",
            &format!(
                "trap '' XFSZ; ulimit -f 16; exec {bin} train -q --resume {} --epochs 2",
                s(&out)
            ),
        ])
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(1), "{}", stderr(&o));
    let line = one_line_error(&o);
    assert!(
        line.contains(s(&checkpoint)) && line.contains("File too large"),
        "{line}"
    );
    assert_eq!(
        std::fs::read(&checkpoint).unwrap(),
        before,
        "the last checkpoint is intact"
    );
    let files: Vec<String> = std::fs::read_dir(&out)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert!(!files.iter().any(|f| f.contains(".tmp")), "{files:?}");

    // with room again, the run resumes from that checkpoint
    let o = neuroevo()
        .current_dir(repo(""))
        .args(["train", "-q", "--resume", s(&out), "--epochs", "2"])
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", stderr(&o));
    let epochs: Vec<u64> = log(&out)
        .iter()
        .map(|r| r["epoch"].as_u64().unwrap())
        .collect();
    assert_eq!(epochs, [1, 2]);
}

#[test]
fn gan_refuses_learning_rates_that_cannot_train() {
    for lr in ["NaN", "inf", "1e30", "-0.001", "0"] {
        let o = neuroevo()
            .current_dir(repo(""))
            .args(["gan", "-q", "--device", "cpu", "--generations", "1"])
            .arg(format!("--lr={lr}"))
            .args(["--out", "/nonexistent/never-made"])
            .output()
            .unwrap();
        assert_eq!(o.status.code(), Some(2), "--lr {lr}: {}", stderr(&o));
        assert!(one_line_error(&o).contains("--lr"), "{}", stderr(&o));
    }
}

#[test]
fn corrupt_and_wrong_kind_model_files_are_one_line_naming_the_file() {
    let tmp = tempfile::tempdir().unwrap();
    let copy = |name: &str, to: &str| {
        std::fs::copy(repo(&format!("models/{name}")), tmp.path().join(to)).unwrap();
    };
    // a generator's description beside a classifier's weights: said as such
    copy("mnist-cnn.pt", "gen.pt");
    std::fs::write(
        tmp.path().join("gen.json"),
        r#"{"latent_dim": 100, "latent_shape": [100], "output_shape": [1, 28, 28], "output_range": [0.0, 1.0]}"#,
    )
    .unwrap();
    // a classifier whose .json claims 7 classes (the network has 10)
    copy("mnist-cnn.pt", "seven.pt");
    let mut info: serde_json::Value =
        serde_json::from_slice(&std::fs::read(repo("models/mnist-cnn.json")).unwrap()).unwrap();
    info["classes"] = serde_json::json!(["0", "1", "2", "3", "4", "5", "6"]);
    std::fs::write(tmp.path().join("seven.json"), info.to_string()).unwrap();
    // a classifier cut in half
    let bytes = std::fs::read(repo("models/mnist-cnn.pt")).unwrap();
    std::fs::write(tmp.path().join("half.pt"), &bytes[..bytes.len() / 2]).unwrap();
    copy("mnist-cnn.json", "half.json");
    for (model, says) in [
        ("gen.pt", "describes a generator, not a classifier"),
        ("seven.pt", "its .json says 7 classes"),
        ("half.pt", "not a TorchScript module"),
    ] {
        let path = tmp.path().join(model);
        let o = neuroevo()
            .current_dir(repo(""))
            .args([
                "fool",
                "-q",
                "--device",
                "cpu",
                "--judge",
                "none",
                "--generations",
                "1",
            ])
            .args([
                "--classifier",
                s(&path),
                "--out",
                s(&tmp.path().join("out")),
            ])
            .output()
            .unwrap();
        assert_eq!(o.status.code(), Some(2), "{model}: {}", stderr(&o));
        let line = one_line_error(&o);
        let stem = model.trim_end_matches(".pt");
        assert!(line.contains(stem) && line.contains(says), "{line}");
    }

    // a gan checkpoint cut in half
    let out = tmp.path().join("gan");
    let o = neuroevo()
        .current_dir(repo(""))
        .args(tiny_dcgan())
        .args(["--seed", "3", "--generations", "2"])
        .args(["--out", s(&out)])
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", stderr(&o));
    let tensors = out.join("checkpoint.pt");
    let bytes = std::fs::read(&tensors).unwrap();
    std::fs::write(&tensors, &bytes[..bytes.len() / 2]).unwrap();
    let o = neuroevo()
        .current_dir(repo(""))
        .args(["gan", "-q", "--resume", s(&out), "--generations", "3"])
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
    let line = one_line_error(&o);
    assert!(line.contains(s(&tensors)), "{line}");
}

#[test]
fn a_population_too_large_for_the_machine_is_refused_before_it_is_allocated() {
    let tmp = tempfile::tempdir().unwrap();
    for (i, job) in [
        "gari --device cpu --generations 1",
        "fool --device cpu --judge none --generations 1",
        "gan --device cpu --generations 1",
        "auto-cnn search --device cpu --generations 1",
    ]
    .iter()
    .enumerate()
    {
        let out = tmp.path().join(i.to_string());
        let o = neuroevo()
            .current_dir(repo(""))
            .args(job.split_whitespace())
            .args(["--population", "1000000000", "--out", s(&out)])
            .output()
            .unwrap();
        assert_eq!(o.status.code(), Some(2), "{job}: {}", stderr(&o));
        let line = one_line_error(&o);
        assert!(
            line.contains("--population 1000000000: needs ~") && line.contains("this machine has"),
            "{line}"
        );
    }
    // the directory it may leave is started afresh by the same --out
    let o = neuroevo()
        .current_dir(repo(""))
        .args([
            "gari",
            "-q",
            "--device",
            "cpu",
            "--population",
            "8",
            "--generations",
            "2",
        ])
        .args(["--out", s(&tmp.path().join("0"))])
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", stderr(&o));
}

#[test]
fn the_default_models_work_from_any_directory_and_a_cut_jpeg_is_refused() {
    let tmp = tempfile::tempdir().unwrap();
    let cache = tmp.path().join("cache");
    let run = |args: &[&str]| {
        neuroevo()
            .current_dir(tmp.path())
            .env("XDG_CACHE_HOME", &cache)
            .args(args)
            .output()
            .unwrap()
    };
    // no models/ here: the shipped classifier, judge and FID extractor come from the binary
    let o = run(&[
        "fool",
        "-q",
        "--device",
        "cpu",
        "--class",
        "3",
        "--population",
        "8",
        "--generations",
        "2",
        "--out",
        "f",
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    let result: serde_json::Value =
        serde_json::from_slice(&std::fs::read(tmp.path().join("f/result.json")).unwrap()).unwrap();
    assert!(
        result["classes"][0]["judge_confidence"].is_number(),
        "{result}"
    );
    let mut args = tiny_dcgan();
    args.extend(["--generations", "1", "--out", "g"]);
    let o = run(&args);
    assert!(o.status.success(), "{}", stderr(&o));
    let unpacked: Vec<String> = std::fs::read_dir(cache.join("neuroevo"))
        .unwrap()
        .flat_map(|d| std::fs::read_dir(d.unwrap().path()).unwrap())
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert!(
        unpacked.contains(&"mnist-judge.features.pt".to_string()),
        "{unpacked:?}"
    );

    let jpeg = std::fs::read(repo("assets/fruit.jpg")).unwrap();
    std::fs::write(tmp.path().join("cut.jpg"), &jpeg[..jpeg.len() / 2]).unwrap();
    let o = run(&[
        "gari",
        "-q",
        "--input",
        "cut.jpg",
        "--generations",
        "1",
        "--out",
        "c",
    ]);
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
    let line = one_line_error(&o);
    assert!(
        line.contains("cut.jpg") && line.contains("truncated JPEG"),
        "{line}"
    );
}
