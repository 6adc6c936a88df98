//! Every job writes a TensorBoard event file beside its `log.jsonl`, read back here with the
//! real `tensorboard` package's event reader (from the `.venv` of `scripts/setup.sh`): its
//! scalars equal the log's, also after a SIGKILL and `--resume`.
mod common;
use common::{log, neuroevo, repo, s, stderr, tiny_dcgan, venv_python, TINY_GAN};
use std::collections::BTreeMap;
use std::path::Path;

type Curves = BTreeMap<String, Vec<(i64, f32)>>;

/// The scalars TensorBoard reads from the event file in `dir`.
fn read_events(dir: &Path) -> Curves {
    let script = r#"
import json, sys
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator
ea = EventAccumulator(sys.argv[1], size_guidance={"scalars": 0})
ea.Reload()
print(json.dumps({t: [[e.step, e.value] for e in ea.Scalars(t)] for t in ea.Tags()["scalars"]}))
"#;
    let o = std::process::Command::new(venv_python())
        .args(["-c", script, s(dir)])
        .output()
        .expect("the .venv of scripts/setup.sh, with tensorboard");
    assert!(o.status.success(), "{}", stderr(&o));
    let v: BTreeMap<String, Vec<(i64, f64)>> = serde_json::from_slice(&o.stdout).unwrap();
    v.into_iter()
        .map(|(k, pts)| (k, pts.into_iter().map(|(s, x)| (s, x as f32)).collect()))
        .collect()
}

/// The curves the log's records describe.
fn from_log(dir: &Path) -> Curves {
    let mut c = Curves::new();
    for r in log(dir) {
        for (tag, x) in neuroevo::run::tensorboard::scalars(&r) {
            c.entry(tag)
                .or_default()
                .push((neuroevo::run::tensorboard::step(&r), x as f32));
        }
    }
    c
}

/// The image tags TensorBoard reads in `dir`, with the number of images and the first's size.
fn read_images(dir: &Path) -> BTreeMap<String, (usize, i64, i64)> {
    let script = r#"
import json, sys
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator
ea = EventAccumulator(sys.argv[1], size_guidance={"images": 0})
ea.Reload()
out = {}
for t in ea.Tags()["images"]:
    im = ea.Images(t)
    out[t] = [len(im), im[0].width, im[0].height]
print(json.dumps(out))
"#;
    let o = std::process::Command::new(venv_python())
        .args(["-c", script, s(dir)])
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", stderr(&o));
    serde_json::from_slice(&o.stdout).unwrap()
}

fn same(dir: &Path) {
    let (got, want) = (read_events(dir), from_log(dir));
    assert!(!want.is_empty(), "{dir:?}: no scalars in the log");
    // the log's decimal text is read back to f64 and rounded to f32 here, as the writer did
    // from the f64 it held: the two may differ by one f32 step
    let close =
        |a: f32, b: f32| a == b || (a - b).abs() <= 2.0 * f32::EPSILON * a.abs().max(b.abs());
    assert_eq!(
        got.keys().collect::<Vec<_>>(),
        want.keys().collect::<Vec<_>>(),
        "{dir:?}"
    );
    for (tag, w) in &want {
        let g = &got[tag];
        let ok = g.len() == w.len() && g.iter().zip(w).all(|(a, b)| a.0 == b.0 && close(a.1, b.1));
        assert!(ok, "{dir:?} {tag}: {g:?} != {w:?}");
    }
}

fn ok(args: &[&str], out: &Path) {
    let o = neuroevo()
        .current_dir(repo(""))
        .args(args)
        .args(["--out", s(out)])
        .output()
        .unwrap();
    assert!(o.status.success(), "{args:?}: {}", stderr(&o));
}

#[test]
fn every_job_writes_the_scalars_of_its_log_for_tensorboard() {
    let tmp = tempfile::tempdir().unwrap();
    let t = tmp.path();
    ok(
        &[
            "gari",
            "-q",
            "--device",
            "cpu",
            "--resize",
            "20x15",
            "--generations",
            "300",
            "--log-every",
            "50",
        ],
        &t.join("gari"),
    );
    same(&t.join("gari"));
    let tags = read_events(&t.join("gari"));
    assert!(
        tags.contains_key("fitness/best") && tags.contains_key("psnr"),
        "{:?}",
        tags.keys()
    );
    let images = read_images(&t.join("gari"));
    assert_eq!(
        images.get("best").map(|i| (i.1, i.2)),
        Some((20, 15)),
        "{images:?}"
    );

    ok(
        &[
            "fool",
            "-q",
            "--device",
            "cpu",
            "--judge",
            "none",
            "--class",
            "3",
            "--population",
            "8",
            "--generations",
            "3",
        ],
        &t.join("fool"),
    );
    same(&t.join("fool/class-3"));
    // the merged log of every class, its curves under `class-C/`
    same(&t.join("fool"));
    assert!(read_events(&t.join("fool")).contains_key("class-3/fitness/best"));

    ok(
        &[
            "train",
            "-q",
            "--device",
            "cpu",
            "--subset",
            "300",
            "--arch",
            "S4-4 P:max",
            "--epochs",
            "2",
            "--batch-size",
            "32",
        ],
        &t.join("train"),
    );
    same(&t.join("train"));
    assert!(read_events(&t.join("train")).contains_key("accuracy/val"));

    ok(
        &[
            "auto-cnn",
            "search",
            "-q",
            "--device",
            "cpu",
            "--subset",
            "300",
            "--population",
            "2",
            "--generations",
            "1",
            "--epochs",
            "1",
            "--filters",
            "8",
        ],
        &t.join("ac"),
    );
    same(&t.join("ac"));

    for mode in ["weights", "dcgan"] {
        let out = t.join(format!("gan-{mode}"));
        ok(
            &[
                &[
                    "gan",
                    "-q",
                    "--device",
                    "cpu",
                    "--mode",
                    mode,
                    "--population",
                    "2",
                    "--d-population",
                    "2",
                    "--width",
                    "4",
                    "--generations",
                    "3",
                ][..],
                &TINY_GAN,
            ]
            .concat(),
            &out,
        );
        same(&out);
        let tags = read_events(&out);
        assert!(
            tags.contains_key("fid") && tags.contains_key("loss/d"),
            "{:?}",
            tags.keys()
        );
        assert!(read_images(&out).get("samples").is_some_and(|i| i.0 >= 1));
    }
}

#[test]
fn a_killed_and_resumed_run_continues_its_event_file() {
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("gari");
    let mut child = neuroevo()
        .current_dir(repo(""))
        .args([
            "gari", "-q", "--device", "cpu", "--seed", "2", "--resize", "20x15",
        ])
        .args([
            "--generations",
            "400000",
            "--checkpoint-every",
            "20000",
            "--log-every",
            "5000",
        ])
        .args(["--out", s(&out)])
        .spawn()
        .unwrap();
    let t = std::time::Instant::now();
    // a checkpoint past the first, so that the log has records after it to drop
    while log(&out).len() < 8 && t.elapsed().as_secs() < 120 {
        std::thread::sleep(std::time::Duration::from_millis(5));
    }
    child.kill().unwrap();
    child.wait().unwrap();
    let o = neuroevo()
        .current_dir(repo(""))
        .args(["gari", "-q", "--resume", s(&out), "--generations", "200000"])
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", stderr(&o));
    same(&out);
    let steps: Vec<i64> = read_events(&out)["fitness/best"]
        .iter()
        .map(|p| p.0)
        .collect();
    assert!(steps.windows(2).all(|w| w[0] < w[1]), "{steps:?}");
    assert_eq!(*steps.last().unwrap(), 200000);
}

/// The steps of each image tag TensorBoard reads in `dir`, in file order.
fn image_steps(dir: &Path) -> BTreeMap<String, Vec<i64>> {
    let script = r#"
import json, sys
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator
ea = EventAccumulator(sys.argv[1], size_guidance={"images": 0})
ea.Reload()
print(json.dumps({t: [e.step for e in ea.Images(t)] for t in ea.Tags()["images"]}))
"#;
    let o = std::process::Command::new(venv_python())
        .args(["-c", script, s(dir)])
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", stderr(&o));
    serde_json::from_slice(&o.stdout).unwrap()
}

/// Starts `args`, SIGKILLs it once `ready()` holds, then runs `resume` to its end.
fn kill_when_then_resume(args: &[&str], ready: impl Fn() -> bool, resume: &[&str]) {
    let mut child = neuroevo()
        .current_dir(repo(""))
        .args(args)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let t = std::time::Instant::now();
    while !ready() && t.elapsed().as_secs() < 120 {
        std::thread::sleep(std::time::Duration::from_millis(5));
    }
    child.kill().unwrap();
    child.wait().unwrap();
    assert!(ready(), "{args:?}: not ready within 120 s");
    let o = neuroevo()
        .current_dir(repo(""))
        .args(resume)
        .output()
        .unwrap();
    assert!(o.status.success(), "{resume:?}: {}", stderr(&o));
}

fn each_step_once(dir: &Path) -> BTreeMap<String, Vec<i64>> {
    let steps = image_steps(dir);
    assert!(!steps.is_empty(), "{dir:?}: no images");
    for (tag, s) in &steps {
        assert!(s.windows(2).all(|w| w[0] < w[1]), "{tag}: {s:?}");
    }
    steps
}

#[test]
fn image_events_have_each_step_once_after_a_kill_and_resume() {
    let tmp = tempfile::tempdir().unwrap();
    // gari: killed past a checkpoint, after pictures it redoes on resume (to a later end), or
    // that lie past its end (resumed to an earlier one)
    for (every, until, end) in [("20000", 10, "100000"), ("40000", 12, "45000")] {
        let out = tmp.path().join(format!("gari-{end}"));
        let o = s(&out);
        kill_when_then_resume(
            &[
                "gari", "-q", "--device", "cpu", "--seed", "2", "--resize", "20x15",
            ]
            .into_iter()
            .chain([
                "--generations",
                "400000",
                "--checkpoint-every",
                every,
                "--log-every",
                "5000",
                "--save-every",
                "10000",
                "--out",
                o,
            ])
            .collect::<Vec<_>>(),
            || log(&out).len() >= until,
            &["gari", "-q", "--resume", o, "--generations", end],
        );
        let steps = each_step_once(&out);
        assert_eq!(
            steps["best"].last(),
            Some(&end.parse().unwrap()),
            "{steps:?}"
        );
    }

    // gan: killed after a few sample grids; the final grid lands on the last epoch's step
    let out = tmp.path().join("gan");
    let o = s(&out);
    let samples = out.join("samples");
    kill_when_then_resume(
        &[
            &tiny_dcgan()[..],
            &["--d-population", "2", "--epochs", "4", "--out", o],
        ]
        .concat(),
        || std::fs::read_dir(&samples).is_ok_and(|d| d.count() >= 2),
        &["gan", "-q", "--resume", o],
    );
    let steps = each_step_once(&out);
    let epochs = log(&out)
        .iter()
        .filter(|r| r["kind"] == "epoch" && r.get("fid").is_some())
        .count();
    assert_eq!(steps["samples"].len(), epochs, "{steps:?}");
}
