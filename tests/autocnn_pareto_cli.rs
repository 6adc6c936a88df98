//! End-to-end runs of `auto-cnn search` with a size cap and two objectives, `auto-cnn export
//! --pick`, and `--per-device`, on a few hundred images of the bundled mnist-10k: no evaluated
//! network exceeds the cap, `pareto.json` holds exactly the non-dominated evaluated networks
//! (computed here from `log.jsonl`), a picked network is retrained to the score the search gave
//! it, and two networks trained at once score as one at a time.
mod common;
use common::{config, log, one_line_error, s, stderr};
use serde_json::Value;
use std::path::Path;
use std::process::{Command, Output};

fn auto_cnn(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_auto-cnn"))
        .args(args)
        .output()
        .unwrap()
}

/// A tiny search of `extra` flags on 400 images into `out`; fails the test unless it succeeds.
fn search(out: &Path, extra: &[&str]) {
    let mut args = vec![
        "search",
        "-q",
        "--subset",
        "400",
        "--epochs",
        "1",
        "--filters",
        "8,16",
        "--seed",
        "11",
        "--device",
        "cpu",
        "--threads",
        "1",
        "--out",
    ];
    args.push(s(out));
    args.extend(extra);
    let o = auto_cnn(&args);
    assert!(o.status.success(), "{args:?}: {}", stderr(&o));
}

fn evaluations(dir: &Path) -> Vec<Value> {
    log(dir)
        .into_iter()
        .filter(|r| r["kind"] == "evaluation")
        .collect()
}

/// The distinct networks that trained (first record of each genome), as (genome, params,
/// fitness), from the log alone.
fn trained(dir: &Path) -> Vec<(String, i64, f64)> {
    let mut out: Vec<(String, i64, f64)> = Vec::new();
    for r in evaluations(dir) {
        let g = r["genome"].as_str().unwrap().to_string();
        let scored_zero = r["note"]
            .as_str()
            .is_some_and(|n| n.starts_with("scored 0"));
        let params = r["params"].as_i64().unwrap();
        if scored_zero || params == 0 || out.iter().any(|p| p.0 == g) {
            continue;
        }
        out.push((g, params, r["fitness"].as_f64().unwrap()));
    }
    out
}

#[test]
fn a_capped_two_objective_search_writes_its_front_and_exports_picked_points() {
    let tmp = tempfile::tempdir().unwrap();
    let run = tmp.path().join("run");
    let cap = 20_000;
    search(
        &run,
        &[
            "--population",
            "4",
            "--generations",
            "2",
            "--objectives",
            "accuracy,params",
            "--max-params",
            "20000",
            "--max-macs",
            "3000000",
        ],
    );
    let cfg = config(&run);
    assert_eq!(cfg["max_params"], cap);
    assert_eq!(cfg["objectives"], "accuracy,params");

    // no network over the cap was trained; the records carry both sizes
    let evals = evaluations(&run);
    assert_eq!(evals.len(), 12, "4 + 4 + 4 evaluations");
    for r in &evals {
        let (params, macs) = (r["params"].as_i64().unwrap(), r["macs"].as_i64().unwrap());
        assert!(params <= cap && macs <= 3_000_000, "{r}");
        assert!(params > 0 && macs > 0, "{r}");
    }

    // pareto.json: exactly the non-dominated networks among all evaluated ones
    let all = trained(&run);
    let dominated = |p: &(String, i64, f64)| {
        all.iter()
            .any(|q| q.2 >= p.2 && q.1 <= p.1 && (q.2 > p.2 || q.1 < p.1))
    };
    let mut want: Vec<String> = all
        .iter()
        .filter(|p| !dominated(p))
        .map(|p| p.0.clone())
        .collect();
    let pareto: Value =
        serde_json::from_str(&std::fs::read_to_string(run.join("pareto.json")).unwrap()).unwrap();
    let front = pareto["front"].as_array().unwrap();
    let mut got: Vec<String> = front
        .iter()
        .map(|p| p["genome"].as_str().unwrap().to_string())
        .collect();
    let sizes: Vec<i64> = front
        .iter()
        .map(|p| p["params"].as_i64().unwrap())
        .collect();
    assert!(sizes.windows(2).all(|w| w[0] <= w[1]), "by size: {sizes:?}");
    assert_eq!(pareto["evaluated"].as_u64().unwrap() as usize, all.len());
    got.sort();
    want.sort();
    assert_eq!(got, want);
    assert!(front.len() >= 2, "{front:?}");
    assert!(run.join("pareto.png").exists());
    let o = auto_cnn(&["show", s(&run)]);
    let shown = String::from_utf8_lossy(&o.stdout);
    let line = format!(
        "Pareto front (accuracy,params): {} of {} networks",
        front.len(),
        all.len()
    );
    assert!(shown.contains(&line), "{shown}");

    // --pick max-params=N: the most accurate network with at most N parameters
    let limit = (sizes[0] + sizes[1]) / 2;
    let best_within = all
        .iter()
        .filter(|p| p.1 <= limit)
        .max_by(|a, b| a.2.total_cmp(&b.2))
        .unwrap()
        .clone();
    let out = tmp.path().join("small.pt");
    let pick = format!("max-params={limit}");
    let o = auto_cnn(&["export", s(&run), "-q", "--pick", &pick, "--out", s(&out)]);
    assert!(o.status.success(), "{}", stderr(&o));
    let info: Value =
        serde_json::from_str(&std::fs::read_to_string(tmp.path().join("small.json")).unwrap())
            .unwrap();
    // (equally small and accurate networks would be equally right)
    assert_eq!(info["parameters"].as_i64().unwrap(), best_within.1);
    assert_eq!(
        info["metrics"]["search_fitness"].as_f64().unwrap(),
        best_within.2
    );
    let picked = evals
        .iter()
        .find(|r| {
            r["evaluated"] == info["arch"] && r["fitness"] == info["metrics"]["search_fitness"]
        })
        .expect("the exported network is an evaluated one");
    // not the best network: trained again, to the score the search gave it
    let err = stderr(&o);
    let best: Value = common::result(&run)["best"].clone();
    if best["genome"] != picked["evaluated"] {
        assert!(err.contains("retraining"), "{err}");
    }
    assert!(!err.contains("the retrained network scores"), "{err}");

    // --pick by index (the largest network of the front is its most accurate)
    let last = (front.len() - 1).to_string();
    let o = auto_cnn(&["export", s(&run), "-q", "--pick", &last]);
    assert!(o.status.success(), "{}", stderr(&o));
    let top = &front[front.len() - 1];
    let json = run.join(format!("front-{}.json", top["params"]));
    let info: Value = serde_json::from_str(&std::fs::read_to_string(json).unwrap()).unwrap();
    assert_eq!(info["arch"], top["evaluated"]);

    // picks that name nothing: one line, exit code 2
    for bad in ["max-params=1", "99", "max-size=3"] {
        let o = auto_cnn(&["export", s(&run), "-q", "--pick", bad]);
        assert_eq!(o.status.code(), Some(2), "{bad}: {}", stderr(&o));
        one_line_error(&o);
    }
}

#[test]
fn impossible_caps_and_unknown_objectives_are_refused_before_anything_trains() {
    let tmp = tempfile::tempdir().unwrap();
    // the smallest network of the space (four poolings to 1x1, a 1 -> 10 linear layer) has
    // 20 parameters and 10 multiply-accumulates
    for (i, flags) in [
        &["--max-params", "19"][..],
        &["--max-macs", "9"],
        &["--max-params", "0"],
        &["--objectives", "accuracy,latency"],
        &["--per-device", "0"],
    ]
    .iter()
    .enumerate()
    {
        let out = tmp.path().join(format!("r{i}"));
        let mut args = vec![
            "search", "-q", "--subset", "400", "--device", "cpu", "--out",
        ];
        args.push(s(&out));
        args.extend(flags.iter());
        let o = auto_cnn(&args);
        assert_eq!(o.status.code(), Some(2), "{flags:?}: {}", stderr(&o));
        let line = one_line_error(&o);
        assert!(line.contains(flags[0]), "{flags:?}: {line}");
        assert!(!out.join("log.jsonl").exists() || evaluations(&out).is_empty());
    }
}

#[test]
fn two_networks_at_once_score_as_one_at_a_time() {
    let tmp = tempfile::tempdir().unwrap();
    let (one, two) = (tmp.path().join("one"), tmp.path().join("two"));
    let flags = ["--population", "4", "--generations", "1"];
    search(&one, &flags);
    search(&two, &[&flags[..], &["--per-device", "2"]].concat());
    let key = |dir: &Path| {
        let mut v: Vec<String> = evaluations(dir)
            .iter()
            .map(|r| {
                format!(
                    "{} {} {} {} {} {}",
                    r["generation"],
                    r["index"],
                    r["genome"],
                    r["fitness"],
                    r["val_acc"],
                    r["params"]
                )
            })
            .collect();
        v.sort();
        v
    };
    let a = key(&one);
    assert_eq!(a.len(), 8);
    assert_eq!(a, key(&two));
    assert_eq!(config(&two)["per_device"], 2);
}
