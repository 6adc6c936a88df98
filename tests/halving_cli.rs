//! `auto-cnn search --fidelity halving` end to end on a few hundred images of mnist-10k: each
//! rung promotes exactly its best ceil(n/eta) and logs it, the budgets follow the formula, the
//! best network is always one that reached the last rung, `auto-cnn show` has a rung column,
//! TensorBoard gets the rung scalars, and a search SIGKILLed in the middle of a rung resumes
//! (training its networks again from their start, the in-memory ones being lost) and ends with
//! the records of the uninterrupted search.
mod common;
use common::{log, neuroevo, one_line_error, repo, result, s, stderr, venv_python};
use serde_json::Value;
use std::path::Path;
use std::time::{Duration, Instant};

const SEARCH: &str = "auto-cnn search -q --subset 500 --population 4 --generations 2 --epochs 2 --filters 8,16 --seed 11 --device cpu --fidelity halving --eta 3 --rungs 3";

fn search(out: &Path) -> std::process::Command {
    let mut c = neuroevo();
    c.current_dir(repo(""))
        .args(SEARCH.split_whitespace())
        .args(["--out", s(out)]);
    c
}

fn evaluations(dir: &Path) -> Vec<Value> {
    log(dir)
        .into_iter()
        .filter(|r| r["kind"] == "evaluation")
        .collect()
}

/// What must not depend on an interruption: each evaluation record, in order, without its
/// clocks and counters (nor `cached`: a network scored just before the kill, whose checkpoint
/// was not written, comes from the cache after the resume).
fn outcome(dir: &Path) -> Vec<String> {
    evaluations(dir)
        .iter()
        .map(|r| {
            format!(
                "g{} i{} rung {} steps {} promoted {} {} {:.12}",
                r["generation"],
                r["index"],
                r["rung"],
                r["budget_steps"],
                r["promoted"],
                r["genome"].as_str().unwrap(),
                r["fitness"].as_f64().unwrap()
            )
        })
        .collect()
}

#[test]
fn each_rung_promotes_its_best_third_and_the_best_network_went_the_whole_way() {
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("h");
    let o = search(&out).output().unwrap();
    assert!(o.status.success(), "{}", stderr(&o));
    let evals = evaluations(&out);
    let u = |r: &Value, k: &str| r[k].as_u64().unwrap() as usize;

    // the budgets: the last rung is the full training, each lower one a third of the next
    let mut budgets = [0usize; 3];
    for r in &evals {
        budgets[u(r, "rung")] = u(r, "budget_steps");
    }
    let full = budgets[2];
    assert_eq!(
        budgets,
        [full.div_ceil(9), full.div_ceil(3), full],
        "{evals:?}"
    );

    for g in 0..=2 {
        let at = |rung: usize| -> Vec<&Value> {
            evals
                .iter()
                .filter(|r| u(r, "generation") == g && u(r, "rung") == rung)
                .collect()
        };
        assert_eq!(
            at(0).len(),
            4,
            "generation {g}: every new network at rung 0"
        );
        for rung in 0..2 {
            let here = at(rung);
            // the best ceil(n/3) by fitness, the earlier index first among equals
            let mut order: Vec<(f64, usize)> = here
                .iter()
                .map(|r| (r["fitness"].as_f64().unwrap(), u(r, "index")))
                .collect();
            order.sort_by(|a, b| b.0.total_cmp(&a.0).then(a.1.cmp(&b.1)));
            let mut want: Vec<usize> = order[..here.len().div_ceil(3)]
                .iter()
                .filter(|(f, _)| *f > 0.0)
                .map(|(_, i)| *i)
                .collect();
            want.sort();
            let mut promoted: Vec<usize> = here
                .iter()
                .filter(|r| r["promoted"] == true)
                .map(|r| u(r, "index"))
                .collect();
            promoted.sort();
            assert_eq!(promoted, want, "generation {g} rung {rung}: {here:?}");
            // exactly the promoted go on, and nobody else
            let mut next: Vec<usize> = at(rung + 1).iter().map(|r| u(r, "index")).collect();
            next.sort();
            assert_eq!(next, promoted, "generation {g} rung {}", rung + 1);
        }
        assert!(at(2).iter().all(|r| r["promoted"] == false));
    }

    // the best of every generation reached the highest rung of its population
    for r in log(&out).iter().filter(|r| r["kind"] == "generation") {
        let rungs: Vec<u64> = serde_json::from_value(r["rungs"].clone()).unwrap();
        let fit: Vec<f64> = serde_json::from_value(r["fitness"].clone()).unwrap();
        let best = (0..rungs.len())
            .max_by(|&a, &b| (rungs[a], fit[a]).partial_cmp(&(rungs[b], fit[b])).unwrap())
            .unwrap();
        assert_eq!(rungs[best], 2, "{r}");
        assert_eq!(r["best"].as_f64().unwrap(), fit[best], "{r}");
    }
    let res = result(&out);
    let finished: Vec<&Value> = evals.iter().filter(|r| r["rung"] == 2).collect();
    let top = finished
        .iter()
        .map(|r| r["fitness"].as_f64().unwrap())
        .fold(f64::MIN, f64::max);
    assert_eq!(res["best"]["val_acc"].as_f64().unwrap(), top);
    assert!(finished
        .iter()
        .any(|r| r["genome"] == res["best"]["genome"]));

    // auto-cnn show: the rung column, each genome once at its highest rung
    let o = neuroevo()
        .args(["auto-cnn", "show", s(&out), "--top", "50"])
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", stderr(&o));
    let text = String::from_utf8_lossy(&o.stdout);
    assert!(
        text.contains("successive halving") && text.contains("  rung  "),
        "{text}"
    );
    // the table: the lines after its header that start with a rank
    let rows: Vec<&str> = text
        .lines()
        .skip_while(|l| !l.starts_with("rank "))
        .skip(1)
        .take_while(|l| {
            l.split_whitespace()
                .next()
                .is_some_and(|w| w.parse::<usize>().is_ok())
        })
        .collect();
    let best_row = rows
        .iter()
        .find(|l| l.trim_start().starts_with("1 "))
        .unwrap();
    assert!(
        best_row.contains(res["best"]["genome"].as_str().unwrap()),
        "{text}"
    );
    let mut genomes: Vec<&str> = evals
        .iter()
        .map(|r| r["genome"].as_str().unwrap())
        .collect();
    genomes.sort();
    genomes.dedup();
    assert_eq!(rows.len(), genomes.len(), "{text}");

    // TensorBoard: each evaluation's rung, budget and promotion as scalars
    let script = r#"
import sys
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator
ea = EventAccumulator(sys.argv[1], size_guidance={"scalars": 0})
ea.Reload()
for t in ["evaluation/rung", "evaluation/budget_steps", "evaluation/promoted"]:
    print(t, len(ea.Scalars(t)))
"#;
    let o = std::process::Command::new(venv_python())
        .args(["-c", script, s(&out)])
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", stderr(&o));
    let text = String::from_utf8_lossy(&o.stdout);
    for t in ["rung", "budget_steps", "promoted"] {
        assert!(
            text.contains(&format!("evaluation/{t} {}", evals.len())),
            "{text}"
        );
    }
}

#[test]
fn a_search_killed_mid_rung_resumes_and_ends_as_the_uninterrupted_one() {
    let tmp = tempfile::tempdir().unwrap();
    let (full, cut) = (tmp.path().join("full"), tmp.path().join("cut"));
    let o = search(&full).output().unwrap();
    assert!(o.status.success(), "{}", stderr(&o));
    let reference = outcome(&full);

    // killed once rung 1 of generation 0 is under way: its first network is in the cache
    let mut child = search(&cut).spawn().unwrap();
    let t = Instant::now();
    let rung1_scored = || {
        let cache = std::fs::read_to_string(cut.join("cache.json")).unwrap_or_default();
        let ckpt = std::fs::read_to_string(cut.join("checkpoint.json")).unwrap_or_default();
        let rung = serde_json::from_str::<Value>(&ckpt)
            .ok()
            .map(|c| c["rung"].clone());
        rung == Some(Value::from(1)) && cache.matches("\"budget_steps\"").count() >= 5
    };
    while !rung1_scored() {
        assert!(
            t.elapsed() < Duration::from_secs(300),
            "rung 1 never started"
        );
        std::thread::sleep(Duration::from_millis(2));
    }
    child.kill().unwrap();
    assert!(!child.wait().unwrap().success(), "killed before the end");
    let ckpt: Value =
        serde_json::from_str(&std::fs::read_to_string(cut.join("checkpoint.json")).unwrap())
            .unwrap();
    assert!(
        ckpt["phase"] == "evaluate" && ckpt["rung"].as_u64().is_some_and(|r| r >= 1),
        "killed in the middle of a rung above the first: {ckpt}"
    );

    // show tells where it stopped
    let o = neuroevo()
        .args(["auto-cnn", "show", s(&cut)])
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", stderr(&o));
    let text = String::from_utf8_lossy(&o.stdout);
    assert!(
        text.contains("running or interrupted: generation 0 of 2, rung "),
        "{text}"
    );

    let o = neuroevo()
        .current_dir(repo(""))
        .args(["auto-cnn", "search", "-q", "--resume", s(&cut)])
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", stderr(&o));
    assert_eq!(
        outcome(&cut),
        reference,
        "resumed search = uninterrupted search"
    );
    let (a, b) = (result(&cut), result(&full));
    assert_eq!(a["best"]["genome"], b["best"]["genome"]);
    assert_eq!(a["best"]["test_acc"], b["best"]["test_acc"]);
    // the kill came after 5 evaluations were cached, maybe before the 5th was checkpointed
    assert!(a["resumed_at_evaluation"].as_u64().unwrap() >= 4);
}

#[test]
fn halving_flags_are_checked_and_shape_the_run() {
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("x");
    for (fidelity, flag, value) in [
        ("halving", "--eta", "1"),
        ("halving", "--rungs", "0"),
        ("halving", "--rungs", "11"),
        ("full", "--eta", "0"),
    ] {
        let o = neuroevo()
            .args(["auto-cnn", "search", "--fidelity", fidelity, flag, value])
            .args(["--out", s(&out)])
            .output()
            .unwrap();
        assert_eq!(o.status.code(), Some(2), "{flag}: {}", stderr(&o));
        let says = format!("{flag} {value}");
        assert!(one_line_error(&o).contains(&says), "{}", stderr(&o));
    }
    let o = neuroevo()
        .args([
            "auto-cnn",
            "search",
            "--fidelity",
            "quarter",
            "--out",
            s(&out),
        ])
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
    assert!(stderr(&o).contains("quarter") && stderr(&o).contains("halving"));
    assert!(!out.exists(), "nothing written for a refused search");
    // recorded in config.json; a resume may not change them
    let run = tmp.path().join("run");
    let o = neuroevo()
        .current_dir(repo(""))
        .args([
            "auto-cnn",
            "search",
            "-q",
            "--subset",
            "200",
            "--population",
            "2",
        ])
        .args([
            "--generations",
            "0",
            "--epochs",
            "1",
            "--filters",
            "8",
            "--device",
            "cpu",
        ])
        .args([
            "--fidelity",
            "halving",
            "--eta",
            "2",
            "--rungs",
            "2",
            "--out",
            s(&run),
        ])
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", stderr(&o));
    let cfg = common::config(&run);
    assert_eq!(
        (
            cfg["fidelity"].as_str(),
            cfg["eta"].as_u64(),
            cfg["rungs"].as_u64()
        ),
        (Some("halving"), Some(2), Some(2))
    );
    for flag in [["--fidelity", "full"], ["--eta", "3"]] {
        let o = neuroevo()
            .args(["auto-cnn", "search", "--resume", s(&run)])
            .args(flag)
            .output()
            .unwrap();
        assert_eq!(o.status.code(), Some(2), "{flag:?}: {}", stderr(&o));
        assert!(one_line_error(&o).contains(flag[0]), "{}", stderr(&o));
    }
}
