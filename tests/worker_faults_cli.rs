//! A `neuroevo worker` facing tasks it must not trust, on a real `nats-server -js`: task
//! messages captured from a real search, changed in one field and published by the test
//! itself (a genome under another genome's cache key, a learning rate libtorch cannot take, a
//! search id that is no subject, a genome too large for this machine's memory), a worker whose
//! data differs from the search's, and a broker killed while a worker uploads its weights.
//! The worker must survive each, answer what it refuses with a scored-0 evaluation naming why,
//! and leave the shared fitness cache as honest searches wrote it.
mod common;
use common::{idx_set, log, neuroevo, repo, s, stderr, wait_until, NatsClient, NatsServer, Worker};
use serde_json::{json, Value};
use std::path::Path;
use std::process::{Child, Command, Output};
use std::time::Duration;

const TASKS: &str = "NEUROEVO_TASKS";
const RESULTS: &str = "NEUROEVO_RESULTS";
const TASK_SUBJECT: &str = "neuroevo.tasks";

/// A small search on the bundled mnist-10k (two networks, one epoch each).
fn search(out: &Path, url: &str) -> Command {
    let mut c = neuroevo();
    c.current_dir(repo(""))
        .args(
            "auto-cnn search -q --subset 300 --population 2 --generations 0 --epochs 1".split(' '),
        )
        .args("--filters 8,16 --seed 3 --device cpu --precision fp32".split(' '))
        .args(["--broker", url, "--out", s(out)]);
    c
}

fn wait_output(child: Child, secs: u64) -> Output {
    let pid = child.id();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let _ = tx.send(child.wait_with_output());
    });
    match rx.recv_timeout(Duration::from_secs(secs)) {
        Ok(o) => o.unwrap(),
        Err(_) => {
            unsafe { libc::kill(pid as i32, libc::SIGKILL) };
            panic!("the search did not end within {secs} s");
        }
    }
}

/// The cache key of a task's genome and settings, computed as the search computes it.
fn key_of(task: &Value) -> String {
    use sha2::Digest;
    let cfg = &task["cfg"];
    let label = match &cfg["dataset"] {
        Value::String(d) if d == "mnist10k" => "mnist-10k".to_string(),
        Value::String(d) => d.clone(),
        v => format!("folder:{}", v["folder"].as_str().unwrap()),
    };
    let mut settings = json!({
        "dataset": label, "data": cfg["data"], "train": cfg["train"],
        "fitness_set": cfg["fitness_set"], "on_shrink": cfg["on_shrink"],
    });
    if !cfg["threads"].is_null() {
        settings["threads"] = cfg["threads"].clone();
    }
    let settings = settings.to_string();
    let genome = task["genome"].as_str().unwrap();
    let d = sha2::Sha256::digest(format!("{genome}\n{settings}").as_bytes());
    d[..12].iter().map(|b| format!("{b:02x}")).collect()
}

/// The outcomes on the results stream for task key `key`.
fn outcomes(nats: &NatsClient, key: &str) -> Vec<Value> {
    nats.messages(RESULTS)
        .into_iter()
        .filter(|o| o["key"] == key)
        .collect()
}

#[test]
fn forged_tasks_neither_end_a_worker_nor_poison_the_shared_cache() {
    let tmp = tempfile::tempdir().unwrap();
    let server = NatsServer::start(&tmp.path().join("store"));
    let nats = NatsClient::connect(&server.url());
    // capture the tasks of a search no worker serves yet, then drop them
    let mut first = search(&tmp.path().join("first"), &server.url())
        .spawn()
        .unwrap();
    wait_until("the search's tasks", 120, || {
        nats.messages(TASKS).len() == 2
    });
    first.kill().unwrap();
    first.wait().unwrap();
    let tasks = nats.messages(TASKS);
    nats.purge(TASKS);
    let honest = tasks[0].clone();
    assert_eq!(
        key_of(&honest),
        honest["key"],
        "the test computes keys as the search does"
    );
    let genome = honest["genome"].as_str().unwrap().to_string();

    // one field changed each
    let mut poison = honest.clone(); // another genome under this genome's key
    let other = if genome == "P:avg" { "P:max" } else { "P:avg" };
    poison["genome"] = json!(other);
    let mut lr = honest.clone();
    lr["cfg"]["train"]["lr"] = json!(1e308);
    let mut subject = honest.clone();
    subject["search"] = json!("x.*");
    let mut huge = honest.clone(); // valid, keyed right, too large to train here
    huge["cfg"]["space"]["filters"] = json!([8, 16, 4096]);
    huge["genome"] = json!("S4096-4096 S4096-4096 S4096-4096");
    huge["key"] = json!(key_of(&huge));
    for t in [&poison, &lr, &subject, &huge] {
        nats.publish(TASK_SUBJECT, serde_json::to_vec(t).unwrap());
    }
    let mut w = Worker::start(&server.url(), "w", &[]);
    w.wait_for("refused task");
    w.wait_for("rejected task");
    // the task that does not fit is offered to other workers, then answered on its last delivery
    let huge_key = huge["key"].as_str().unwrap();
    wait_until("the answer to the oversized task", 120, || {
        !outcomes(&nats, huge_key).is_empty()
    });
    let answer = &outcomes(&nats, huge_key)[0];
    let note = answer["eval"]["note"].as_str().unwrap();
    assert_eq!(answer["eval"]["fitness"], 0.0);
    assert!(
        note.starts_with("scored 0") && note.contains("5 deliveries") && note.contains("needs ~"),
        "{note}"
    );
    let refusals = w
        .log()
        .into_iter()
        .filter(|l| l.contains("refused task"))
        .count();
    assert!(refusals >= 2 + 5, "{:?}", w.log());
    // the poisoned key's answer is a refusal, not P:avg's score
    let poisoned = outcomes(&nats, honest["key"].as_str().unwrap());
    assert!(!poisoned.is_empty() && poisoned.iter().all(|o| o["eval"]["fitness"] == 0.0));
    assert!(
        poisoned[0]["eval"]["note"]
            .as_str()
            .unwrap()
            .contains("not the key of its genome"),
        "{poisoned:?}"
    );
    assert!(w.alive(), "{:?}", w.log());

    // the same worker serves an honest search, which logs the genome it asked for
    let out = tmp.path().join("second");
    let o = wait_output(search(&out, &server.url()).spawn().unwrap(), 300);
    assert!(o.status.success(), "{}", stderr(&o));
    let evals: Vec<Value> = log(&out)
        .into_iter()
        .filter(|r| r["kind"] == "evaluation")
        .collect();
    assert_eq!(evals.len(), 2);
    let mine = evals
        .iter()
        .find(|r| r["genome"] == genome.as_str())
        .unwrap();
    assert_eq!(mine["evaluated"], genome.as_str(), "{mine}");
    assert!(mine["params"].as_i64().unwrap() > 0 && mine["fitness"].as_f64().unwrap() > 0.0);
    assert!(w.alive());
}

#[test]
fn refusals_are_not_crashes_and_a_search_whose_every_task_failed_ends_with_a_result() {
    let tmp = tempfile::tempdir().unwrap();
    let server = NatsServer::start(&tmp.path().join("store"));
    let (a, b) = (tmp.path().join("a"), tmp.path().join("b"));
    idx_set(&a, false);
    idx_set(&b, true);
    let mut other = Worker::start(&server.url(), "other-data", &["--data-dir", s(&b)]);
    let out = tmp.path().join("dist");
    let child = neuroevo()
        .current_dir(repo(""))
        .args([
            "auto-cnn",
            "search",
            "-q",
            "--dataset",
            "mnist",
            "--data-dir",
            s(&a),
        ])
        .args("--population 2 --generations 0 --epochs 1 --filters 8".split(' '))
        .args(["--seed", "2", "--device", "cpu", "--precision", "fp32"])
        .args(["--broker", &server.url(), "--out", s(&out)])
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let o = wait_output(child, 200);
    let err = stderr(&o);
    assert_eq!(o.status.code(), Some(1), "{err}");
    // a note per network, then one line that ends the search
    let errors: Vec<&str> = err.lines().filter(|l| l.starts_with("error")).collect();
    assert_eq!(errors.len(), 1, "{err}");
    let last = err.trim().lines().last().unwrap();
    assert!(
        last.starts_with("error: ") && last.contains("no network could be trained"),
        "{err}"
    );
    assert!(
        err.contains("refused") && err.contains("hashes to"),
        "{err}"
    );
    let result: Value =
        serde_json::from_slice(&std::fs::read(out.join("result.json")).unwrap()).unwrap();
    assert!(
        result["best"].is_null() && result["evaluations"] == 2,
        "{result}"
    );
    for r in log(&out).iter().filter(|r| r["kind"] == "evaluation") {
        let note = r["note"].as_str().unwrap();
        assert!(
            note.contains("refused by the workers on all 5 deliveries"),
            "{note}"
        );
        assert!(!note.contains("died"), "{note}");
    }
    assert!(other.alive(), "{:?}", other.log());
}

#[test]
fn a_broker_killed_during_the_weights_upload_costs_the_worker_nothing() {
    let tmp = tempfile::tempdir().unwrap();
    let mut server = NatsServer::start(&tmp.path().join("store"));
    let mut w = Worker::start(&server.url(), "w", &[]);
    let out = tmp.path().join("dist");
    let child = search(&out, &server.url()).spawn().unwrap();
    w.wait_for("training");
    // the server dies while the network trains; the upload that follows meets no server
    server.kill();
    w.wait_for("storing weights failed");
    std::thread::sleep(Duration::from_secs(3));
    server.restart();
    let o = wait_output(child, 300);
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(w.alive(), "{:?}", w.log());
    assert_eq!(w.done().len(), 2, "{:?}", w.log());
    let evals: Vec<Value> = log(&out)
        .into_iter()
        .filter(|r| r["kind"] == "evaluation")
        .collect();
    assert_eq!(evals.len(), 2);
    assert!(evals.iter().all(|r| r["params"].as_i64().unwrap() > 0));
    assert!(out.join("best.pt").is_file());
}

/// (genome, fitness, params) of every evaluation, in order.
fn scores(dir: &Path) -> Vec<(String, f64, i64)> {
    log(dir)
        .iter()
        .filter(|r| r["kind"] == "evaluation")
        .map(|r| {
            let genome = r["genome"].as_str().unwrap().to_string();
            (
                genome,
                r["fitness"].as_f64().unwrap(),
                r["params"].as_i64().unwrap(),
            )
        })
        .collect()
}

#[test]
fn a_worker_with_other_threads_scores_as_the_search_would() {
    let tmp = tempfile::tempdir().unwrap();
    // big enough that libtorch's sums on 1 and 2 threads round differently
    let flags = "auto-cnn search -q --subset 1000 --population 2 --generations 0 --epochs 1 \
                 --filters 16,32 --seed 7 --device cpu --precision fp32 --threads 2";
    let local = tmp.path().join("local");
    let o = neuroevo()
        .current_dir(repo(""))
        .args(flags.split_whitespace())
        .args(["--out", s(&local)])
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", stderr(&o));
    let server = NatsServer::start(&tmp.path().join("store"));
    let _w = Worker::start(&server.url(), "w", &[]); // --threads 1
    let dist = tmp.path().join("dist");
    let child = neuroevo()
        .current_dir(repo(""))
        .args(flags.split_whitespace())
        .args(["--broker", &server.url(), "--out", s(&dist)])
        .spawn()
        .unwrap();
    let o = wait_output(child, 300);
    assert!(o.status.success(), "{}", stderr(&o));
    assert_eq!(scores(&dist), scores(&local));
}
