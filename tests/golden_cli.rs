//! What a seed computes did not change with the run layer: each job run with the commands of
//! `tests/golden/record.sh` gives the outputs recorded at commit 5416124, before the refactor
//! (gari and fool: the same PNG bytes and fitness; gan and auto-cnn: the same fitness records;
//! gan's were recorded again when it came to seed libtorch per generation, see record.sh).
//! Recorded on an x86-64 Intel CPU. The gari figures are exact integer sums and must match to
//! the last digit; the others go through libtorch's float32 CPU kernels, whose vectorised paths
//! differ between CPUs (an AMD EPYC gives fool's fitness 1.6e-7 apart, relatively), so they
//! must match to 1e-5 (the FIDs, through a matrix square root, to 1e-4): far tighter than any
//! change of what a seed draws or computes.
mod common;
use common::{log, neuroevo, repo, sha256, stderr};
use serde_json::Value;
use std::path::Path;

fn golden() -> Value {
    serde_json::from_str(
        &std::fs::read_to_string(repo("tests/golden/before-refactor.json")).unwrap(),
    )
    .unwrap()
}

/// Runs `cmd` (the words of a command of tests/golden/record.sh, without `--out`).
fn run(cmd: &str, out: &Path) {
    let args: Vec<&str> = cmd.split_whitespace().collect();
    let o = neuroevo()
        .current_dir(repo(""))
        .args(&args)
        .args(["--out", out.to_str().unwrap()])
        .output()
        .unwrap();
    assert!(o.status.success(), "{args:?}: {}", stderr(&o));
}

/// Exact figures (integer sums).
const EXACT: f64 = 1e-9;
/// Figures from libtorch's float32 kernels.
const FLOAT32: f64 = 1e-5;
/// FIDs (a matrix square root of float32 features).
const FID: f64 = 1e-4;

fn close(a: f64, b: f64, tol: f64) -> bool {
    (a - b).abs() <= tol * a.abs().max(b.abs()).max(1.0)
}

fn pairs(records: &[Value], kind: Option<&str>, keys: &[&str]) -> Vec<Vec<f64>> {
    records
        .iter()
        .filter(|r| kind.is_none_or(|k| r["kind"] == k))
        .filter(|r| keys.iter().all(|k| r[k].is_number()))
        .map(|r| keys.iter().map(|k| r[k].as_f64().unwrap()).collect())
        .collect()
}

fn same(got: &[Vec<f64>], want: &Value, what: &str, tol: f64) {
    let want: Vec<Vec<f64>> = serde_json::from_value(want.clone()).unwrap();
    assert_eq!(got.len(), want.len(), "{what}: {got:?} vs {want:?}");
    for (g, w) in got.iter().zip(&want) {
        assert!(
            g.iter().zip(w).all(|(a, b)| close(*a, *b, tol)),
            "{what}: {got:?} vs {want:?}"
        );
    }
}

#[test]
fn gari_and_fool_give_the_bytes_recorded_before_the_refactor() {
    let g = golden();
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("gari");
    run(
        "gari -q --seed 7 --device cpu --generations 3000 --resize 40x30 --log-every 500",
        &out,
    );
    assert_eq!(sha256(&out.join("best.png")), g["gari"]["best.png"]);
    same(
        &pairs(&log(&out), Some("generation"), &["generation", "best"]),
        &g["gari"]["best"],
        "gari",
        EXACT,
    );

    let out = tmp.path().join("fool");
    run(
        "fool -q --classifier models/mnist-cnn.pt --judge none --class 3 --population 16 --generations 8 --seed 5 --device cpu",
        &out,
    );
    assert_eq!(sha256(&out.join("class-3.png")), g["fool"]["class-3.png"]);
    same(
        &pairs(&log(&out), None, &["generation", "best"]),
        &g["fool"]["best"],
        "fool",
        FLOAT32,
    );
}

#[test]
fn gan_and_autocnn_give_the_fitness_recorded_before_the_refactor() {
    let g = golden();
    let tmp = tempfile::tempdir().unwrap();
    let common = "gan -q --device cpu --seed 3 --subset 256 --fid-samples 100 --fid-model models/mnist-cnn.pt";
    for (name, extra) in [
        ("gan-weights", "--mode weights --population 6 --generations 4"),
        ("gan-dcgan", "--mode dcgan --width 4 --population 3 --d-population 2 --batch-size 16 --eval-batch 16 --generations 4"),
    ] {
        let out = tmp.path().join(name);
        run(&format!("{common} {extra}"), &out);
        let recs = log(&out);
        same(
            &pairs(
                &recs,
                Some("generation"),
                // record.sh read them as best_fitness and mean_fitness, their names then
                &["generation", "best", "mean"],
            ),
            &g[name]["fitness"],
            name,
            FLOAT32,
        );
        // the FIDs computed (the same values; a record may carry one twice)
        let mut got: Vec<Vec<f64>> = pairs(&recs, None, &["generation", "fid"]);
        let mut want: Vec<Vec<f64>> = serde_json::from_value(g[name]["fid"].clone()).unwrap();
        got.dedup();
        want.dedup();
        same(&got, &serde_json::to_value(want).unwrap(), name, FID);
    }
    let out = tmp.path().join("ac");
    run(
        "auto-cnn search -q --subset 400 --population 3 --generations 1 --epochs 1 --filters 8,16 --seed 11 --device cpu --precision fp32",
        &out,
    );
    let got: Vec<(String, f64)> = log(&out)
        .iter()
        .filter(|r| r["kind"] == "evaluation")
        .map(|r| {
            (
                r["genome"].as_str().unwrap().to_string(),
                r["fitness"].as_f64().unwrap(),
            )
        })
        .collect();
    let want: Vec<(String, f64)> =
        serde_json::from_value(g["auto-cnn"]["evaluations"].clone()).unwrap();
    assert_eq!(got.len(), want.len(), "{got:?} vs {want:?}");
    for (a, b) in got.iter().zip(&want) {
        assert!(
            a.0 == b.0 && close(a.1, b.1, FLOAT32),
            "{got:?} vs {want:?}"
        );
    }
}
