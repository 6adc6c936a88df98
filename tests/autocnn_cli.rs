//! End-to-end runs of `auto-cnn` (and `neuroevo auto-cnn`) on a few hundred images of the
//! bundled mnist-10k: a search killed mid-generation resumes, retraining only the network that
//! was interrupted, and ends exactly like an uninterrupted search; its model loads in Python.
mod common;
use common::{log, stderr, venv_python};
use serde_json::Value;
use std::path::Path;
use std::process::Command;

fn auto_cnn() -> Command {
    Command::new(env!("CARGO_BIN_EXE_auto-cnn"))
}

fn search_args(out: &Path) -> Vec<String> {
    [
        "search",
        "-q",
        "--subset",
        "400",
        "--population",
        "3",
        "--generations",
        "2",
        "--epochs",
        "1",
        "--filters",
        "8,16",
        "--seed",
        "11",
        "--device",
        "cpu",
        "--out",
    ]
    .iter()
    .map(|s| s.to_string())
    .chain([out.display().to_string()])
    .collect()
}

fn records(dir: &Path, kind: &str) -> Vec<Value> {
    log(dir).into_iter().filter(|r| r["kind"] == kind).collect()
}

/// What must not depend on an interruption: genomes, fitness, cache use, per evaluation.
fn outcome(dir: &Path) -> Vec<(String, String, bool)> {
    records(dir, "evaluation")
        .iter()
        .map(|r| {
            (
                r["genome"].as_str().unwrap().to_string(),
                format!("{:.12}", r["fitness"].as_f64().unwrap()),
                r["cached"].as_bool().unwrap(),
            )
        })
        .collect()
}

#[test]
fn search_killed_mid_generation_resumes_and_exports() {
    let tmp = tempfile::tempdir().unwrap();
    let (full, cut) = (tmp.path().join("full"), tmp.path().join("cut"));

    // uninterrupted reference
    let o = auto_cnn().args(search_args(&full)).output().unwrap();
    assert!(o.status.success(), "{}", stderr(&o));
    let reference = outcome(&full);
    assert_eq!(records(&full, "generation").len(), 3, "generations 0, 1, 2");
    assert!(reference.len() >= 9, "3 + 3 + 3 evaluations: {reference:?}");

    // the same search, killed after its fourth evaluation (in generation 1)
    let mut child = auto_cnn().args(search_args(&cut)).spawn().unwrap();
    let t = std::time::Instant::now();
    loop {
        let n = std::fs::read_to_string(cut.join("log.jsonl"))
            .map(|s| s.matches("\"evaluation\",").count())
            .unwrap_or(0);
        if n >= 4 || t.elapsed().as_secs() > 300 {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(2));
    }
    child.kill().unwrap();
    assert!(!child.wait().unwrap().success(), "killed before the end");
    assert!(!cut.join("result.json").exists());

    // show works on an interrupted run
    let o = auto_cnn()
        .args(["show", cut.to_str().unwrap()])
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", stderr(&o));
    let text = String::from_utf8_lossy(&o.stdout);
    assert!(text.contains("running or interrupted"), "{text}");

    let o = auto_cnn()
        .args(["search", "-q", "--resume", cut.to_str().unwrap()])
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", stderr(&o));
    assert_eq!(
        outcome(&cut),
        reference,
        "resumed search = uninterrupted search"
    );

    let result: Value =
        serde_json::from_slice(&std::fs::read(cut.join("result.json")).unwrap()).unwrap();
    let resumed_at = result["resumed_at_evaluation"].as_u64().unwrap() as usize;
    // killed once the 4th evaluation was logged, maybe before its checkpoint was written
    assert!(
        (3..reference.len()).contains(&resumed_at),
        "killed mid-run: {resumed_at}"
    );
    let left_to_train = reference[resumed_at..].iter().filter(|r| !r.2).count();
    assert_eq!(
        result["trained_this_session"].as_u64().unwrap() as usize,
        left_to_train,
        "the resumed process trained only what was not checkpointed"
    );
    let full_result: Value =
        serde_json::from_slice(&std::fs::read(full.join("result.json")).unwrap()).unwrap();
    assert_eq!(result["best"]["genome"], full_result["best"]["genome"]);
    assert_eq!(result["best"]["test_acc"], full_result["best"]["test_acc"]);
    for f in [
        "best.pt",
        "best.features.pt",
        "best.json",
        "fitness.png",
        "cache.json",
    ] {
        assert!(cut.join(f).exists(), "{f}");
    }

    // the exported network loads in Python and takes a batch of 7
    let o = Command::new(venv_python())
        .arg("-c")
        .arg(
            "import sys, json, torch\n\
             m = torch.jit.load(sys.argv[1])\n\
             info = json.load(open(sys.argv[2]))\n\
             y = m(torch.zeros(7, *info['input_shape']))\n\
             print(tuple(y.shape), info['arch'])",
        )
        .arg(cut.join("best.pt"))
        .arg(cut.join("best.json"))
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", stderr(&o));
    let printed = String::from_utf8_lossy(&o.stdout);
    assert!(printed.starts_with("(7, 10)"), "{printed}");
    assert!(
        printed.contains(result["best"]["genome"].as_str().unwrap()),
        "{printed}"
    );
}

#[test]
fn export_retrains_on_train_and_val_and_neuroevo_runs_the_same_commands() {
    let tmp = tempfile::tempdir().unwrap();
    let run = tmp.path().join("run");
    let o = Command::new(env!("CARGO_BIN_EXE_neuroevo"))
        .arg("auto-cnn")
        .args(
            search_args(&run)
                .iter()
                .map(|a| a.replace("--generations", "--max-depth")),
        )
        .args(["--generations", "0"])
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", stderr(&o));
    assert_eq!(records(&run, "evaluation").len(), 3);
    let out = tmp.path().join("final.pt");
    let o = auto_cnn()
        .args([
            "export",
            run.to_str().unwrap(),
            "-q",
            "--final-epochs",
            "2",
            "--out",
        ])
        .arg(&out)
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", stderr(&o));
    let info: Value =
        serde_json::from_slice(&std::fs::read(tmp.path().join("final.json")).unwrap()).unwrap();
    assert_eq!(info["metrics"]["final_epochs"], 2);
    assert_eq!(info["metrics"]["retrained_on"], "train+val");
    assert!(info["metrics"]["test_acc"].as_f64().unwrap() > 0.1);
    assert!(tmp.path().join("final.features.pt").exists());
}

#[test]
fn user_mistakes_get_one_line_and_exit_code_2() {
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("x");
    let o = tmp.path().to_str().unwrap();
    let cases: Vec<Vec<&str>> = vec![
        vec![
            "search",
            "--mutation-dist",
            "1,2",
            "--out",
            out.to_str().unwrap(),
        ],
        vec![
            "search",
            "--population",
            "1",
            "--out",
            out.to_str().unwrap(),
        ],
        vec![
            "search",
            "--filters",
            "32,x",
            "--out",
            out.to_str().unwrap(),
        ],
        vec![
            "search",
            "--crossover-prob",
            "1.5",
            "--out",
            out.to_str().unwrap(),
        ],
        vec![
            "search",
            "--dataset",
            "nope",
            "--out",
            out.to_str().unwrap(),
        ],
        vec!["search", "--resume", "/nonexistent/run"],
        vec!["show", o],
        vec!["export", "/nonexistent/run"],
    ];
    for args in cases {
        let r = auto_cnn().args(&args).output().unwrap();
        let err = stderr(&r);
        assert_eq!(r.status.code(), Some(2), "{args:?}: {err}");
        assert_eq!(err.trim().lines().count(), 1, "{args:?}: {err}");
        assert!(err.starts_with("error: "), "{args:?}: {err}");
    }
}
