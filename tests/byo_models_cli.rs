//! Models made elsewhere: a classifier and a feature extractor built and traced in PyTorch by
//! this test (the `.venv` of `scripts/setup.sh`), not by neuroevo, used by `fool` (classifier
//! and judge, with `--input-shape`/`--input-range` and no `.json`) and by `gan` as the FID model
//! (a minimal `.json`: kind, input shape and range). Sizes are probed with one forward pass.
mod common;
use common::{run_in_repo, s, stderr, tiny_dcgan, venv_python};
use std::path::Path;

/// Traces a 10-class MNIST-shaped CNN (`cls.pt`) and a 32-d feature extractor (`feat.pt`).
fn trace_in_python(dir: &Path) {
    let script = r#"
import sys, torch
torch.manual_seed(0)
d = sys.argv[1]
cls = torch.nn.Sequential(torch.nn.Conv2d(1, 4, 3, padding=1), torch.nn.ReLU(), torch.nn.AdaptiveAvgPool2d(4),
                          torch.nn.Flatten(), torch.nn.Linear(64, 10)).eval()
feat = torch.nn.Sequential(torch.nn.Conv2d(1, 8, 3, stride=2), torch.nn.ReLU(), torch.nn.AdaptiveAvgPool2d(2),
                           torch.nn.Flatten(), torch.nn.Linear(32, 32)).eval()
x = torch.rand(2, 1, 28, 28)
torch.jit.trace(cls, x).save(f"{d}/cls.pt")
torch.jit.trace(feat, x).save(f"{d}/feat.pt")
"#;
    let o = std::process::Command::new(venv_python())
        .args(["-c", script, s(dir)])
        .output()
        .expect("the .venv of scripts/setup.sh");
    assert!(o.status.success(), "{}", stderr(&o));
}

#[test]
fn models_traced_in_pytorch_are_used_by_fool_and_as_the_fid_model() {
    let tmp = tempfile::tempdir().unwrap();
    let t = tmp.path();
    trace_in_python(t);
    let cls = t.join("cls.pt");
    // fool: no .json; the classes are counted (10); the same model as judge
    let out = t.join("fool");
    let o = run_in_repo(&[
        "fool",
        "-q",
        "--device",
        "cpu",
        "--classifier",
        s(&cls),
        "--judge",
        s(&cls),
        "--input-shape",
        "1,28,28",
        "--input-range",
        "0,1",
        "--class",
        "7",
        "--population",
        "8",
        "--generations",
        "3",
        "--out",
        s(&out),
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    let r: serde_json::Value =
        serde_json::from_slice(&std::fs::read(out.join("result.json")).unwrap()).unwrap();
    assert_eq!(r["classes"][0]["class"], 7);
    assert!(r["classes"][0]["judge_confidence"].is_number(), "{r}");
    // it resumes with what it was given
    let o = run_in_repo(&["fool", "-q", "--resume", s(&out), "--generations", "4"]);
    assert!(o.status.success(), "{}", stderr(&o));

    // names that do not fit the model, a shape it cannot read, flags half given
    let bad = t.join("bad");
    for (extra, says) in [
        (
            vec![
                "--input-shape",
                "1,28,28",
                "--input-range",
                "0,1",
                "--classes",
                "a,b,c",
            ],
            "3 classes",
        ),
        (
            vec!["--input-shape", "3,8,8", "--input-range", "0,1"],
            "does not run on",
        ),
        (vec!["--input-shape", "1,28,28"], "go together"),
    ] {
        let mut args = vec![
            "fool",
            "-q",
            "--device",
            "cpu",
            "--judge",
            "none",
            "--classifier",
            s(&cls),
        ];
        args.extend(extra);
        args.extend(["--out", s(&bad)]);
        let o = run_in_repo(&args);
        assert_eq!(o.status.code(), Some(2), "{args:?}: {}", stderr(&o));
        let err = stderr(&o);
        assert!(err.lines().count() == 1 && err.contains(says), "{err}");
    }

    // gan: a minimal .json beside a features model
    let feat = t.join("feat.pt");
    std::fs::write(
        t.join("feat.json"),
        r#"{"kind": "features", "input_shape": [1, 28, 28], "input_range": [0.0, 1.0]}"#,
    )
    .unwrap();
    let gan_args = |model: &Path, out: &Path, extra: &[&str]| -> std::process::Output {
        let mut a = tiny_dcgan();
        a.extend([
            "--generations",
            "2",
            "--fid-model",
            s(model),
            "--out",
            s(out),
        ]);
        a.extend(extra);
        run_in_repo(&a)
    };
    let out = t.join("gan");
    let o = gan_args(&feat, &out, &[]);
    assert!(o.status.success(), "{}", stderr(&o));
    let r: serde_json::Value =
        serde_json::from_slice(&std::fs::read(out.join("result.json")).unwrap()).unwrap();
    assert!(
        r["final_fid"].as_f64().is_some_and(|f| f.is_finite()),
        "{r}"
    );
    assert_eq!(r["fid_extractor"].as_str(), Some(s(&feat)));
    // or no .json at all, with the flags
    std::fs::remove_file(t.join("feat.json")).unwrap();
    let o = gan_args(
        &feat,
        &t.join("gan2"),
        &["--fid-input-shape", "1,28,28", "--fid-input-range", "0,1"],
    );
    assert!(o.status.success(), "{}", stderr(&o));
}
