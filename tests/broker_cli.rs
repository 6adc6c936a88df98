//! `auto-cnn search --broker` with `neuroevo worker` processes on a real `nats-server -js`
//! (started here on 127.0.0.1): a worker SIGKILLed in the middle of a training, the search
//! SIGKILLed and resumed, the broker stopped and started again, and bad input (a wrong
//! address, a worker with other data, a malformed message). Each distributed search must give
//! the evaluations (genome, fitness) of the in-process search with the same seed.
mod common;
use common::{idx_set, log, neuroevo, repo, stderr, NatsServer, Worker};
use std::path::Path;
use std::process::{Child, Stdio};
use std::time::{Duration, Instant};

const SEARCH: &str = "auto-cnn search -q --subset 600 --population 4 --generations 1 --epochs 3 --filters 8,16 --seed 5 --device cpu --precision fp32 --threads 1";

fn s(p: &Path) -> &str {
    p.to_str().unwrap()
}

fn search(out: &Path, broker: Option<&str>, extra: &[&str]) -> std::process::Command {
    let mut c = neuroevo();
    c.current_dir(repo(""))
        .args(SEARCH.split_whitespace())
        .args(["--out", s(out)])
        .args(extra);
    if let Some(b) = broker {
        c.args(["--broker", b]);
    }
    c
}

/// (generation, index, genome, fitness) of every evaluation, in order.
fn evaluations(dir: &Path) -> Vec<(u64, u64, String, f64)> {
    let mut v: Vec<_> = log(dir)
        .iter()
        .filter(|r| r["kind"] == "evaluation")
        .map(|r| {
            (
                r["generation"].as_u64().unwrap(),
                r["index"].as_u64().unwrap(),
                r["genome"].as_str().unwrap().to_string(),
                r["fitness"].as_f64().unwrap(),
            )
        })
        .collect();
    v.sort_by(|a, b| (a.0, a.1).cmp(&(b.0, b.1)));
    v
}

fn in_process(tmp: &Path) -> Vec<(u64, u64, String, f64)> {
    let out = tmp.join("local");
    let o = search(&out, None, &[]).output().unwrap();
    assert!(o.status.success(), "{}", stderr(&o));
    evaluations(&out)
}

fn finish(mut child: Child) {
    let t = Instant::now();
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            assert!(status.success(), "the search failed: {status}");
            return;
        }
        assert!(
            t.elapsed() < Duration::from_secs(300),
            "the search did not end"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn a_worker_killed_in_training_loses_only_its_task_and_the_search_equals_the_local_one() {
    let tmp = tempfile::tempdir().unwrap();
    let server = NatsServer::start(&tmp.path().join("store"));
    let w1 = Worker::start(&server.url(), "w1", &[]);
    let w2 = Worker::start(&server.url(), "w2", &[]);
    let out = tmp.path().join("dist");
    let child = search(&out, Some(&server.url()), &[]).spawn().unwrap();
    w1.wait_for("training");
    let mut w1 = w1;
    w1.child.kill().unwrap(); // SIGKILL in the middle of a training
    w1.child.wait().unwrap();
    let killed_log = w1.log();
    finish(child);
    let trained_by_w1 = killed_log
        .iter()
        .filter(|l| l.contains(": training "))
        .count();
    assert!(
        trained_by_w1 > w1.done().len(),
        "w1 died while training: {killed_log:?}"
    );
    assert_eq!(evaluations(&out), in_process(tmp.path()));
    // the redelivered task was trained by the survivor
    assert!(!w2.done().is_empty());
    let result: serde_json::Value =
        serde_json::from_slice(&std::fs::read(out.join("result.json")).unwrap()).unwrap();
    assert!(out.join("best.pt").is_file() && result["best"]["genome"].is_string());
}

/// (generation, rung, index, genome, fitness, promoted) of every evaluation of a search with
/// `--fidelity halving`, in that order.
fn rung_records(dir: &Path) -> Vec<(u64, u64, u64, String, f64, bool)> {
    let mut v: Vec<_> = log(dir)
        .iter()
        .filter(|r| r["kind"] == "evaluation")
        .map(|r| {
            (
                r["generation"].as_u64().unwrap(),
                r["rung"].as_u64().unwrap(),
                r["index"].as_u64().unwrap(),
                r["genome"].as_str().unwrap().to_string(),
                r["fitness"].as_f64().unwrap(),
                r["promoted"].as_bool().unwrap(),
            )
        })
        .collect();
    v.sort_by(|a, b| (a.0, a.1, a.2).cmp(&(b.0, b.1, b.2)));
    v
}

#[test]
fn successive_halving_over_two_workers_one_killed_gives_the_in_process_records() {
    let tmp = tempfile::tempdir().unwrap();
    let halving = ["--fidelity", "halving"];
    let local = tmp.path().join("local-halving");
    let o = search(&local, None, &halving).output().unwrap();
    assert!(o.status.success(), "{}", stderr(&o));
    let want = rung_records(&local);
    assert!(
        want.iter().any(|r| r.1 == 2),
        "some network reached the last rung"
    );

    let server = NatsServer::start(&tmp.path().join("store"));
    // the killed worker's task comes back only after the ack deadline, 12 s: the last result
    // of generation 0's first rung is that task's, well after the other three
    let ack = ["--ack-wait", "12"];
    let w1 = Worker::start(&server.url(), "w1", &ack);
    let w2 = Worker::start(&server.url(), "w2", &ack);
    let out = tmp.path().join("dist");
    let child = search(&out, Some(&server.url()), &halving).spawn().unwrap();
    w1.wait_for("training");
    let mut w1 = w1;
    w1.child.kill().unwrap(); // SIGKILL in the middle of a rung's training
    w1.child.wait().unwrap();
    let killed_log = w1.log();
    finish(child);
    // workers train each rung's task to its budget (from the start, or on from a network
    // they kept): the same records as the in-process search, which continues its networks
    assert_eq!(rung_records(&out), want);

    // promotions as results arrive: of rung 0's four networks (two places) the best of the
    // first three is certain whatever the fourth scores, so its rung-1 task goes out at once
    // and w2 trains it while the killed worker's rung-0 task waits for its deadline
    let budget_of = |l: &str| {
        l.split(" to ").nth(1).map_or(usize::MAX, |t| {
            t.split(' ').next().unwrap().parse().unwrap()
        })
    };
    let killed_line = killed_log
        .iter()
        .find(|l| l.contains(": training "))
        .unwrap();
    let killed = &killed_line.split("(task ").nth(1).unwrap()[..24];
    let lines = w2.log();
    let redone = lines
        .iter()
        .position(|l| l.contains(": done ") && l.contains(killed))
        .unwrap_or_else(|| panic!("w2 trained the killed task {killed}: {lines:?}"));
    assert!(
        lines[..redone]
            .iter()
            .any(|l| l.contains(": training ") && budget_of(l) > budget_of(killed_line)),
        "a rung-1 task started before rung 0's last result: {lines:?}"
    );
    // and the search recorded its result first
    let gen0: Vec<serde_json::Value> = log(&out)
        .into_iter()
        .filter(|r| r["kind"] == "evaluation" && r["generation"] == 0)
        .collect();
    let last_of_rung0 = gen0
        .iter()
        .filter(|r| r["rung"] == 0)
        .map(|r| r["elapsed_s"].as_f64().unwrap())
        .fold(0.0, f64::max);
    assert!(
        gen0.iter()
            .any(|r| r["rung"] == 1 && r["elapsed_s"].as_f64().unwrap() < last_of_rung0),
        "a rung-1 result before rung 0's last: {gen0:?}"
    );
    let budgets: Vec<String> = w2
        .log()
        .iter()
        .filter(|l| l.contains(": training "))
        .filter_map(|l| {
            l.split(" to ")
                .nth(1)
                .map(|t| t.split(' ').next().unwrap().to_string())
        })
        .collect();
    assert!(!budgets.is_empty(), "w2 trained rung tasks: {:?}", w2.log());
}

/// A halving search over one worker, SIGKILLed with two rungs in flight, and the records of
/// the same search in-process: (the broker, its worker, the killed search's directory, the
/// in-process records).
#[allow(clippy::type_complexity)]
fn killed_with_two_rungs_in_flight(
    tmp: &Path,
) -> (
    NatsServer,
    Worker,
    std::path::PathBuf,
    Vec<(u64, u64, u64, String, f64, bool)>,
) {
    let halving = ["--fidelity", "halving"];
    let local = tmp.join("local-halving");
    let o = search(&local, None, &halving).output().unwrap();
    assert!(o.status.success(), "{}", stderr(&o));
    let server = NatsServer::start(&tmp.join("store"));
    let w = Worker::start(&server.url(), "w", &[]);
    let out = tmp.join("dist");
    let mut child = search(&out, Some(&server.url()), &halving).spawn().unwrap();
    // the first record is a promotion made certain by three of rung 0's four results: the
    // rung-1 task it sends out is queued behind the fourth rung-0 task
    let t = Instant::now();
    while rung_records(&out).is_empty() {
        assert!(t.elapsed() < Duration::from_secs(120), "no record");
        std::thread::sleep(Duration::from_millis(10));
    }
    child.kill().unwrap(); // SIGKILL the search with two rungs in flight
    child.wait().unwrap();
    let first = &rung_records(&out)[0];
    assert!(first.1 == 0 && first.5, "a promotion at rung 0: {first:?}");
    (server, w, out, rung_records(&local))
}

fn resume(out: &Path, broker: Option<&str>) {
    let mut c = neuroevo();
    c.current_dir(repo(""))
        .args(["auto-cnn", "search", "-q", "--resume", s(out)]);
    if let Some(b) = broker {
        c.args(["--broker", b]);
    }
    let o = c.output().unwrap();
    assert!(o.status.success(), "{}", stderr(&o));
    let records = rung_records(out);
    let mut keys: Vec<(u64, u64, u64)> = records.iter().map(|r| (r.0, r.1, r.2)).collect();
    keys.dedup();
    assert_eq!(keys.len(), records.len(), "no evaluation recorded twice");
}

#[test]
fn a_halving_search_killed_with_two_rungs_in_flight_resumes_to_the_in_process_records() {
    let tmp = tempfile::tempdir().unwrap();
    let (server, w, out, want) = killed_with_two_rungs_in_flight(tmp.path());
    resume(&out, Some(&server.url()));
    assert_eq!(rung_records(&out), want);
    w.assert_each_task_done_once();
}

#[test]
fn a_halving_search_killed_with_two_rungs_in_flight_resumes_in_process_without_its_broker() {
    let tmp = tempfile::tempdir().unwrap();
    let (_server, _w, out, want) = killed_with_two_rungs_in_flight(tmp.path());
    // a network is ahead of the lowest rung: the local trainings go on overlapping
    resume(&out, None);
    assert_eq!(rung_records(&out), want);
}

#[test]
fn a_killed_search_resumes_without_retraining_what_workers_scored() {
    let tmp = tempfile::tempdir().unwrap();
    let server = NatsServer::start(&tmp.path().join("store"));
    let w = Worker::start(&server.url(), "w", &[]);
    let out = tmp.path().join("dist");
    let mut child = search(&out, Some(&server.url()), &[]).spawn().unwrap();
    let t = Instant::now();
    while evaluations(&out).is_empty() {
        assert!(
            t.elapsed() < Duration::from_secs(120),
            "no evaluation recorded"
        );
        std::thread::sleep(Duration::from_millis(10));
    }
    child.kill().unwrap(); // SIGKILL the search
    child.wait().unwrap();
    // the worker trains what was queued, into the shared cache, while the search is dead
    std::thread::sleep(Duration::from_secs(2));
    let o = search(&out, Some(&server.url()), &[])
        .args(["--resume", s(&out)])
        .output();
    let o = o.unwrap();
    // `--resume` with the search's own flags: only stop criteria and --broker may be given
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
    let o = neuroevo()
        .current_dir(repo(""))
        .args([
            "auto-cnn",
            "search",
            "-q",
            "--resume",
            s(&out),
            "--broker",
            &server.url(),
        ])
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", stderr(&o));
    w.assert_each_task_done_once();
    let evals = evaluations(&out);
    let mut keys: Vec<(u64, u64)> = evals.iter().map(|e| (e.0, e.1)).collect();
    keys.dedup();
    assert_eq!(keys.len(), evals.len(), "no evaluation recorded twice");
    assert_eq!(evals, in_process(tmp.path()));
}

#[test]
fn bad_addresses_other_data_and_malformed_messages_are_refused_and_the_workers_go_on() {
    let tmp = tempfile::tempdir().unwrap();
    // nothing listens on port 1
    let nowhere = tmp.path().join("nowhere");
    for args in [
        vec!["worker", "--broker", "nats://127.0.0.1:1"],
        vec![
            "auto-cnn",
            "search",
            "--subset",
            "100",
            "--broker",
            "nats://127.0.0.1:1",
            "--out",
            s(&nowhere),
        ],
    ] {
        let t = Instant::now();
        let o = neuroevo()
            .current_dir(repo(""))
            .args(&args)
            .output()
            .unwrap();
        assert_eq!(o.status.code(), Some(2), "{args:?}: {}", stderr(&o));
        assert!(t.elapsed() < Duration::from_secs(20));
        let err = stderr(&o);
        assert!(err.contains("--broker nats://127.0.0.1:1"), "{err}");
    }

    let server = NatsServer::start(&tmp.path().join("store"));
    let (a, b) = (tmp.path().join("a"), tmp.path().join("b"));
    idx_set(&a, false);
    idx_set(&b, true);
    let other = Worker::start(&server.url(), "other-data", &["--data-dir", s(&b)]);
    // a malformed message on the task subject
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let c = async_nats::connect(server.url()).await.unwrap();
        let js = async_nats::jetstream::new(c);
        js.publish("neuroevo.tasks", "{not a task".into())
            .await
            .unwrap()
            .await
            .unwrap();
    });
    other.wait_for("rejected a message");
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
        .args([
            "--population",
            "3",
            "--generations",
            "1",
            "--epochs",
            "1",
            "--filters",
            "8,16",
        ])
        .args(["--seed", "2", "--device", "cpu", "--precision", "fp32"])
        .args(["--broker", &server.url(), "--out", s(&out)])
        .spawn()
        .unwrap();
    // the worker with other data refuses the tasks; one with the search's data takes them
    other.wait_for("refused task");
    let good = Worker::start(&server.url(), "good", &["--data-dir", s(&a)]);
    finish(child);
    assert!(!good.done().is_empty());
    assert!(other.done().is_empty(), "{:?}", other.log());
    let notes: Vec<String> = log(&out)
        .iter()
        .filter(|r| r["kind"] == "evaluation")
        .filter_map(|r| r["note"].as_str().map(String::from))
        .collect();
    assert!(
        notes.iter().all(|n| !n.contains("deliveries")),
        "no task was given up: {notes:?}"
    );
}

#[test]
fn the_search_and_its_workers_ride_out_a_broker_restart() {
    let tmp = tempfile::tempdir().unwrap();
    let mut server = NatsServer::start(&tmp.path().join("store"));
    let w = Worker::start(&server.url(), "w", &[]);
    let out = tmp.path().join("dist");
    let child = search(&out, Some(&server.url()), &[]).spawn().unwrap();
    w.wait_for("training");
    server.stop();
    std::thread::sleep(Duration::from_secs(3));
    server.restart();
    finish(child);
    let evals = evaluations(&out);
    let mut keys: Vec<(u64, u64)> = evals.iter().map(|e| (e.0, e.1)).collect();
    keys.dedup();
    assert_eq!(keys.len(), evals.len(), "no evaluation recorded twice");
    assert_eq!(evals, in_process(tmp.path()));
}

#[test]
fn credentials_come_from_the_environment_and_are_written_nowhere() {
    let tmp = tempfile::tempdir().unwrap();
    let token = "s3cret-token-4711";
    let server = NatsServer::start_with(&tmp.path().join("store"), &["--auth", token]);
    // without the token: refused at once, in one line that does not show it
    let o = neuroevo()
        .current_dir(repo(""))
        .args(["worker", "--broker", &server.url(), "--device", "cpu"])
        .env_remove("NEUROEVO_NATS_TOKEN")
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
    assert!(!stderr(&o).contains(token));
    let mut child = neuroevo()
        .current_dir(repo(""))
        .args([
            "worker",
            "--broker",
            &server.url(),
            "--device",
            "cpu",
            "--threads",
            "1",
        ])
        .args(["--name", "w", "--max-tasks", "2"])
        .env("NEUROEVO_NATS_TOKEN", token)
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let out = tmp.path().join("dist");
    let o = neuroevo()
        .current_dir(repo(""))
        .args([
            "auto-cnn",
            "search",
            "-q",
            "--subset",
            "300",
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
            "--seed",
            "1",
        ])
        .args([
            "--device",
            "cpu",
            "--precision",
            "fp32",
            "--broker",
            &server.url(),
        ])
        .args(["--out", s(&out)])
        .env("NEUROEVO_NATS_TOKEN", token)
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", stderr(&o));
    let _ = child.kill();
    let _ = child.wait();
    for entry in std::fs::read_dir(&out).unwrap() {
        let path = entry.unwrap().path();
        if path.is_file() {
            let bytes = std::fs::read(&path).unwrap();
            assert!(
                !bytes.windows(token.len()).any(|w| w == token.as_bytes()),
                "{path:?} holds the token"
            );
        }
    }
}

#[test]
fn a_worker_with_two_slots_trains_two_tasks_at_once_as_the_local_search_does() {
    let tmp = tempfile::tempdir().unwrap();
    let server = NatsServer::start(&tmp.path().join("store"));
    let w = Worker::start(&server.url(), "w", &["--per-device", "2"]);
    w.wait_for("worker w#2: serving");
    let out = tmp.path().join("dist");
    finish(search(&out, Some(&server.url()), &[]).spawn().unwrap());
    assert_eq!(evaluations(&out), in_process(tmp.path()));
    // both slots trained, and at some moment both at once
    let lines = w.log();
    for slot in ["w#1", "w#2"] {
        let done = format!("worker {slot}: done ");
        assert!(lines.iter().any(|l| l.contains(&done)), "{lines:?}");
    }
    let mut training = 0i32;
    let mut most = 0;
    for l in &lines {
        training += l.contains(": training ") as i32 - l.contains(": done ") as i32;
        most = most.max(training);
    }
    assert_eq!(most, 2, "{lines:?}");
}
