//! `auto-cnn` refusing what it cannot do, in one line before it starts (a learning rate
//! libtorch cannot take, filters whose training step cannot fit in memory, a population whose
//! checkpoint would be rewritten at a GB a network), ending a search none of whose networks
//! trained with a result and one line, and `auto-cnn export` keeping out of a live search's
//! files.
mod common;
use common::{neuroevo, repo, s, stderr, wait_until};
use serde_json::Value;
use std::path::Path;
use std::process::{Command, Output};

fn auto_cnn(out: &Path, extra: &str) -> Command {
    let mut c = neuroevo();
    c.current_dir(repo(""))
        .args("auto-cnn search -q --epochs 1 --seed 4 --device cpu --precision fp32".split(' '))
        .args(["--out", s(out)])
        .args(extra.split_whitespace());
    for (flag, default) in [
        ("--subset", "200"),
        ("--population", "2"),
        ("--generations", "0"),
    ] {
        if !extra.contains(flag) {
            c.args([flag, default]);
        }
    }
    if !extra.contains("--filters") {
        c.args(["--filters", "8"]);
    }
    c
}

fn one_line_usage_error(o: &Output, needles: &[&str]) {
    let err = stderr(o);
    assert_eq!(o.status.code(), Some(2), "{err}");
    assert_eq!(err.trim().lines().count(), 1, "{err}");
    assert!(err.starts_with("error: "), "{err}");
    for n in needles {
        assert!(err.contains(n), "{n:?} in {err}");
    }
}

#[test]
fn settings_that_cannot_train_are_refused_in_one_line() {
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("lr");
    one_line_usage_error(
        &auto_cnn(&out, "--lr 1e39").output().unwrap(),
        &["--lr 1e39"],
    );
    // five skip layers of 4096 filters: tens of GB for one training step
    let out = tmp.path().join("filters");
    let o = auto_cnn(&out, "--filters 4096 --max-depth 5")
        .output()
        .unwrap();
    one_line_usage_error(&o, &["--filters 4096", "needs ~", "this machine has"]);
    assert!(!out.join("checkpoint.json").exists());
    let out = tmp.path().join("population");
    let o = auto_cnn(&out, "--population 10000000").output().unwrap();
    one_line_usage_error(&o, &["--population 10000000"]);
    // nothing half-written is left behind
    if out.exists() {
        for e in std::fs::read_dir(&out).unwrap() {
            let name = e.unwrap().file_name().to_string_lossy().into_owned();
            assert!(!name.contains(".tmp"), "{name} left in {}", out.display());
        }
    }
}

#[test]
fn a_search_none_of_whose_networks_trained_ends_with_a_result_and_one_line() {
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("diverged");
    // every network diverges at this learning rate and scores 0
    let o = auto_cnn(&out, "--lr 1e30").output().unwrap();
    let err = stderr(&o);
    assert_eq!(o.status.code(), Some(1), "{err}");
    // a note per network, then one line that ends the search
    let errors: Vec<&str> = err.lines().filter(|l| l.starts_with("error")).collect();
    assert_eq!(errors.len(), 1, "{err}");
    assert!(
        errors[0].contains("no network could be trained: all 2 evaluations failed"),
        "{err}"
    );
    let result: Value =
        serde_json::from_slice(&std::fs::read(out.join("result.json")).unwrap()).unwrap();
    assert!(result["best"].is_null(), "{result}");
    assert_eq!(result["failures"][0]["count"], 2, "{result}");
}

#[test]
fn export_beside_a_live_search_is_refused_and_leaves_its_files_alone() {
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("live");
    let mut search = auto_cnn(
        &out,
        "--subset 600 --population 3 --generations 20 --filters 8,16",
    )
    .spawn()
    .unwrap();
    wait_until("the search's first network", 120, || {
        out.join("best.ot").is_file() && out.join("checkpoint.json").is_file()
    });
    let o = neuroevo()
        .args(["auto-cnn", "export", "-q", s(&out)])
        .output()
        .unwrap();
    let _ = search.kill();
    let _ = search.wait();
    one_line_usage_error(
        &o,
        &[
            s(&out),
            "in use by process",
            "export it when that search has ended",
        ],
    );
    assert!(!out.join("best.pt").exists() && !out.join("best.json").exists());
    // once the search is gone, export works
    let o = neuroevo()
        .args(["auto-cnn", "export", "-q", s(&out)])
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(out.join("best.pt").is_file());
}
