//! `neuroevo gan --pbt-every`: population-based training on the FID, end to end on 256 digits:
//! the rounds are logged where they are due, a run stopped (or SIGKILLed) in the middle of a PBT
//! interval and resumed ends as the uninterrupted one, and the flags are refused where PBT makes
//! no sense; the same for `--epoch-select`, whose worse children go back to the kept state
//! (`revert`) or train on while the kept state is reported (`keep`).
mod common;
use common::{
    config, f64s, log, neuroevo, one_line_error, repo, result, s, stderr, wait_for_file, TINY_GAN,
};
use std::path::Path;
use std::process::Output;

/// `neuroevo gan` on the tiny data, seed 5, into `out`.
fn gan_cmd(out: &Path, extra: &[&str]) -> std::process::Command {
    let mut c = neuroevo();
    c.args(["gan", "-q", "--device", "cpu", "--seed", "5"])
        .args(["--out", s(out)])
        .args(["--fid-model", s(&repo("models/mnist-cnn.pt"))])
        .args(TINY_GAN)
        .args(extra);
    c
}

fn gan(out: &Path, extra: &[&str]) -> Output {
    gan_cmd(out, extra).output().unwrap()
}

const PBT: [&str; 10] = [
    "--mode",
    "dcgan",
    "--width",
    "4",
    "--population",
    "4",
    "--pbt-every",
    "2",
    "--pbt-fid-samples",
    "32",
];

/// What a generation record says that training decides (not its clocks).
fn trained(dir: &Path) -> Vec<serde_json::Value> {
    log(dir)
        .iter()
        .filter(|r| r["kind"] == "generation")
        .map(|r| {
            let keys = [
                "generation",
                "best",
                "real_score",
                "fake_score",
                "g_lr_best",
                "pbt",
                "select",
            ];
            serde_json::json!(keys.map(|k| r[k].clone()))
        })
        .collect()
}

#[test]
fn pbt_rounds_are_logged_and_a_resumed_run_ends_as_the_uninterrupted_one() {
    let tmp = tempfile::tempdir().unwrap();
    let (full, cut) = (tmp.path().join("full"), tmp.path().join("cut"));
    let o = gan(&full, &[&PBT[..], &["--generations", "5"]].concat());
    assert!(o.status.success(), "{}", stderr(&o));
    let cfg = config(&full);
    assert_eq!(
        cfg["model"]["pbt"],
        serde_json::json!({"every": 2, "fid_samples": 32}),
        "{cfg}"
    );
    // PBT replaces the GA's breeding of both populations
    assert!(cfg["ga"].is_null() && cfg["d_ga"].is_null(), "{cfg}");
    let gens = trained(&full);
    assert_eq!(gens.len(), 5);
    for g in &gens {
        let (n, pbt) = (g[0].as_u64().unwrap(), &g[5]);
        if n % 2 != 0 {
            assert!(pbt.is_null(), "generation {n}: no round due: {pbt}");
            continue;
        }
        let fid = pbt["fid"].as_array().unwrap();
        assert_eq!(fid.len(), 4, "one FID per generator: {pbt}");
        assert!(
            fid.iter().all(|f| f.as_f64().is_some_and(|f| f > 0.0)),
            "{pbt}"
        );
        // the bottom quarter (one of four) copies a top-quarter one: the best by FID
        let best = pbt["best"].as_u64().unwrap() as usize;
        let min = f64s(&pbt["fid"]).into_iter().fold(f64::INFINITY, f64::min);
        assert_eq!(fid[best].as_f64(), Some(min), "{pbt}");
        assert_eq!(
            pbt["g_copies"],
            serde_json::json!([[worst(&f64s(&pbt["fid"])), best]]),
            "{pbt}"
        );
        assert_eq!(pbt["d_copies"].as_array().unwrap().len(), 1, "{pbt}");
        for k in ["g_lr", "g_beta1", "g_loss", "d_lr", "d_beta1"] {
            assert_eq!(pbt[k].as_array().unwrap().len(), 4, "{k}: {pbt}");
        }
    }
    assert!(full.join("best-generator.pt").is_file());

    // stopped at generation 3, between the rounds of 2 and 4, and resumed to 5
    stopped_and_resumed_ends_as(&full, &cut, &PBT, "3", "5");
    // the PBT flags shape the run: given again on resume, they are refused
    for flag in [["--pbt-every", "3"], ["--pbt-fid-samples", "64"]] {
        let o = neuroevo()
            .args(["gan", "-q", "--resume", s(&cut)])
            .args(flag)
            .output()
            .unwrap();
        assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
        assert!(one_line_error(&o).contains(flag[0]), "{}", stderr(&o));
    }
}

#[test]
fn a_run_sigkilled_after_its_first_checkpoint_resumes_as_the_uninterrupted_one() {
    let tmp = tempfile::tempdir().unwrap();
    let (full, killed) = (tmp.path().join("full"), tmp.path().join("killed"));
    // rounds at generations 3, 6, ...: the first checkpoint (generation 1) is inside an interval
    let more = [
        "--pbt-every",
        "3",
        "--pbt-fid-samples",
        "32",
        "--generations",
        "30",
    ];
    let flags = [&PBT[..6], &more].concat();
    let o = gan(&full, &flags);
    assert!(o.status.success(), "{}", stderr(&o));
    let mut child = gan_cmd(&killed, &flags).spawn().unwrap();
    wait_for_file(&killed.join("checkpoint.json"));
    child.kill().unwrap(); // SIGKILL
    child.wait().unwrap();
    assert!(
        !killed.join("result.json").exists(),
        "killed before its end"
    );
    let o = neuroevo()
        .args(["gan", "-q", "--resume", s(&killed)])
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", stderr(&o));
    let gens = trained(&full);
    assert_eq!(
        gens.iter().filter(|g| !g[5].is_null()).count(),
        10,
        "ten rounds"
    );
    assert_eq!(trained(&killed), gens, "resumed run = uninterrupted run");
    assert_eq!(result(&killed)["final_fid"], result(&full)["final_fid"]);
}

#[test]
fn halving_keeps_the_better_half_each_round_and_a_resumed_run_ends_as_the_uninterrupted_one() {
    let tmp = tempfile::tempdir().unwrap();
    let (full, cut) = (tmp.path().join("full"), tmp.path().join("cut"));
    // 4 pairs; rounds at generations 2 (4 -> 2) and 4 (2 -> 1); none at 6 (nothing to rank)
    let flags = [&PBT[..], &["--halving", "--generations", "7"]].concat();
    let o = gan(&full, &flags);
    assert!(o.status.success(), "{}", stderr(&o));
    assert_eq!(config(&full)["model"]["pbt"]["halving"], true);
    let gens = trained(&full);
    assert_eq!(gens.len(), 7);
    let rounds: Vec<(u64, &serde_json::Value)> = gens
        .iter()
        .filter(|g| !g[5].is_null())
        .map(|g| (g[0].as_u64().unwrap(), &g[5]))
        .collect();
    assert_eq!(rounds.iter().map(|r| r.0).collect::<Vec<_>>(), vec![2, 4]);
    for ((_, pbt), pairs) in rounds.iter().zip([4usize, 2]) {
        let fid = f64s(&pbt["fid"]);
        assert_eq!(fid.len(), pairs, "one FID per pair left: {pbt}");
        // the kept pairs are the better half by FID, best first
        let mut order: Vec<usize> = (0..pairs).collect();
        order.sort_by(|&a, &b| fid[a].total_cmp(&fid[b]));
        let kept: Vec<usize> = order[..pairs / 2].to_vec();
        assert_eq!(pbt["kept"], serde_json::json!(kept), "{pbt}");
        assert_eq!(pbt["best"], serde_json::json!(kept[0]), "{pbt}");
    }
    // the population shrinks: one generator left after generation 4, so no spread of fitness
    let spread = |g: u64| {
        log(&full)
            .iter()
            .find(|r| r["kind"] == "generation" && r["generation"] == g)
            .and_then(|r| r["fitness_std"].as_f64())
            .unwrap()
    };
    assert!(
        spread(3) > 0.0 && spread(5) == 0.0,
        "{} {}",
        spread(3),
        spread(5)
    );

    // stopped at generation 3 (two pairs left) and resumed to 7
    let flags = [&PBT[..], &["--halving"]].concat();
    stopped_and_resumed_ends_as(&full, &cut, &flags, "3", "7");
}

/// A run with `flags` into `cut`, stopped after generation `stop` and resumed to `to`, ends as
/// the uninterrupted run in `full`: the same generations and the same final FID.
fn stopped_and_resumed_ends_as(full: &Path, cut: &Path, flags: &[&str], stop: &str, to: &str) {
    let o = gan(cut, &[flags, &["--generations", stop]].concat());
    assert!(o.status.success(), "{}", stderr(&o));
    let o = neuroevo()
        .args(["gan", "-q", "--resume", s(cut), "--generations", to])
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", stderr(&o));
    assert_eq!(
        trained(cut),
        trained(full),
        "resumed run = uninterrupted run"
    );
    assert_eq!(result(cut)["final_fid"], result(full)["final_fid"]);
}

/// `--epoch-select MODE` on one network at a rate high enough to swing: 86 generations, about
/// 10 epochs of the tiny data, the last one cut short (a final round).
fn select_flags(mode: &str) -> Vec<&str> {
    vec![
        "--mode",
        "dcgan",
        "--width",
        "4",
        "--population",
        "1",
        "--lr",
        "0.05",
        "--epoch-select",
        mode,
        "--pbt-fid-samples",
        "32",
    ]
}

/// The selection rounds of the run in `dir`, checked: one at every epoch end and only there,
/// a child kept when no worse than its parent (both scored on the round's latents), and at an
/// epoch end whose child was worse, the run's FID is that of the generator kept at the last
/// kept round (the kept state is what the run reports). Returns the generations of the
/// rounds whose child was worse.
fn checked_rounds(dir: &Path) -> Vec<u64> {
    let gens = trained(dir);
    let rounds: Vec<(u64, &serde_json::Value)> = gens
        .iter()
        .filter(|g| !g[6].is_null())
        .map(|g| (g[0].as_u64().unwrap(), &g[6]))
        .collect();
    let epoch_fid: Vec<(u64, f64)> = log(dir)
        .iter()
        .filter(|r| r["kind"] == "epoch")
        .map(|r| {
            (
                r["generation"].as_u64().unwrap(),
                r["fid"].as_f64().unwrap(),
            )
        })
        .collect();
    let at: Vec<u64> = rounds.iter().map(|r| r.0).collect();
    assert_eq!(at, epoch_fid.iter().map(|e| e.0).collect::<Vec<_>>());
    assert!(at.len() >= 8 && *at.last().unwrap() < 86, "{at:?}");
    let epoch_fid: std::collections::HashMap<u64, f64> = epoch_fid.into_iter().collect();
    let (mut kept_at, mut worse) = (None::<u64>, Vec::new());
    for (g, r) in &rounds {
        let f = r["fid"].as_f64().unwrap();
        match kept_at {
            None => assert_eq!(r["parent_fid"], serde_json::Value::Null, "{r}"),
            Some(_) => {
                let p = r["parent_fid"].as_f64().unwrap();
                assert_eq!(r["kept"], f <= p, "generation {g}: {r}");
            }
        }
        if r["kept"] == true {
            kept_at = Some(*g);
        } else {
            let k = kept_at.unwrap();
            assert_eq!(epoch_fid[g], epoch_fid[&k], "generation {g}, kept at {k}");
            worse.push(*g);
        }
    }
    assert!(
        !worse.is_empty(),
        "some child was worse than its parent: {rounds:?}"
    );
    let last = log(dir)
        .into_iter()
        .rfind(|r| r["kind"] == "generation")
        .unwrap();
    assert!(last["select_final"]["parent_fid"].is_f64(), "{last}");
    worse
}

#[test]
fn epoch_select_goes_back_to_the_kept_state_and_a_resumed_run_ends_as_the_uninterrupted_one() {
    let tmp = tempfile::tempdir().unwrap();
    let (full, cut) = (tmp.path().join("full"), tmp.path().join("cut"));
    let flags = select_flags("revert");
    let o = gan(&full, &[&flags[..], &["--generations", "86"]].concat());
    assert!(o.status.success(), "{}", stderr(&o));
    assert_eq!(config(&full)["epoch_select"], 32);
    assert_eq!(config(&full)["epoch_select_mode"], "revert");
    checked_rounds(&full);
    // stopped at generation 20 (between epoch ends, with a final round) and resumed to 86
    assert!(trained(&full)[19][6].is_null());
    stopped_and_resumed_ends_as(&full, &cut, &flags, "20", "86");
}

#[test]
fn epoch_select_keep_trains_on_from_a_worse_child_and_a_resumed_run_ends_as_the_uninterrupted_one()
{
    let tmp = tempfile::tempdir().unwrap();
    let dirs = ["keep", "revert", "cut"].map(|d| tmp.path().join(d));
    let [keep, revert, cut] = &dirs;
    for (dir, mode) in [(keep, "keep"), (revert, "revert")] {
        let o = gan(
            dir,
            &[&select_flags(mode)[..], &["--generations", "86"]].concat(),
        );
        assert!(o.status.success(), "{}", stderr(&o));
    }
    assert_eq!(config(keep)["epoch_select_mode"], "keep");
    let worse = checked_rounds(keep);
    // the two modes train alike up to the first worse child; then `keep` trains on from the
    // child and `revert` from the kept state
    let w = worse[0] as usize;
    let (k, r) = (trained(keep), trained(revert));
    assert_eq!(k[..w], r[..w], "alike up to generation {w}");
    assert_ne!(
        k[w],
        r[w],
        "generation {}: trained on different states",
        w + 1
    );
    // stopped at that worse round's epoch end, when the checkpoint holds the child and the
    // kept state apart, and resumed to 86
    stopped_and_resumed_ends_as(keep, cut, &select_flags("keep"), &w.to_string(), "86");
}

#[test]
fn fixed_selection_latents_score_the_child_alone_and_a_resumed_run_ends_as_the_uninterrupted_one() {
    let tmp = tempfile::tempdir().unwrap();
    let dirs = ["fixed", "fresh", "cut"].map(|d| tmp.path().join(d));
    let [fixed, fresh, cut] = &dirs;
    let flags = [&select_flags("keep")[..], &["--select-latents", "fixed"]].concat();
    let o = gan(fixed, &[&flags[..], &["--generations", "86"]].concat());
    assert!(o.status.success(), "{}", stderr(&o));
    let o = gan(
        fresh,
        &[&select_flags("keep")[..], &["--generations", "86"]].concat(),
    );
    assert!(o.status.success(), "{}", stderr(&o));
    assert_eq!(config(fixed)["epoch_select_latents"], "fixed");
    let worse = checked_rounds(fixed);
    // a round's parent score is the one the kept state got in the round that kept it
    let mut kept_fid: Option<serde_json::Value> = None;
    for g in trained(fixed).iter().filter(|g| !g[6].is_null()) {
        if let Some(k) = &kept_fid {
            assert_eq!(&g[6]["parent_fid"], k, "{g}");
        }
        if g[6]["kept"] == true {
            kept_fid = Some(g[6]["fid"].clone());
        }
    }
    // selection in `keep` mode changes nothing that training sees: the same training as with
    // fresh latents, on other selection scores
    assert_eq!(training(fixed), training(fresh));
    assert_ne!(
        trained(fixed),
        trained(fresh),
        "other latents, other scores"
    );
    // stopped at a worse round's epoch end and resumed: the latents are drawn again alike
    stopped_and_resumed_ends_as(fixed, cut, &flags, &worse[0].to_string(), "86");
}

#[test]
fn a_better_crossover_is_reported_training_goes_on_alike_and_a_resumed_run_ends_the_same() {
    let tmp = tempfile::tempdir().unwrap();
    let dirs = ["xo", "plain", "cut"].map(|d| tmp.path().join(d));
    let [xo, plain, cut] = &dirs;
    let fixed = [&select_flags("keep")[..], &["--select-latents", "fixed"]].concat();
    let flags = [&fixed[..], &["--select-crossover"]].concat();
    for (dir, f) in [(xo, &flags), (plain, &fixed)] {
        let o = gan(dir, &[&f[..], &["--generations", "86"]].concat());
        assert!(o.status.success(), "{}", stderr(&o));
    }
    assert_eq!(config(xo)["epoch_select_crossover"], true);
    checked_rounds(xo);
    // training never goes on from a crossover
    assert_eq!(training(xo), training(plain));
    // the round's candidate is the better of the child and the crossover
    let rounds: Vec<(usize, serde_json::Value)> = trained(xo)
        .iter()
        .enumerate()
        .filter(|(_, g)| !g[6].is_null())
        .map(|(i, g)| (i, g[6].clone()))
        .collect();
    assert!(
        rounds[0].1["crossover"].is_null(),
        "no parent to cross with"
    );
    let mut reported = None;
    for (i, r) in &rounds[1..] {
        let (c, f) = (&r["crossover"], r["fid"].as_f64().unwrap());
        match c["better"].as_bool().unwrap() {
            true => assert_eq!(c["fid"].as_f64(), Some(f), "{r}"),
            false => assert!(f <= c["fid"].as_f64().unwrap_or(f64::INFINITY), "{r}"),
        }
        if c["better"] == true && r["kept"] == true {
            reported = reported.or(Some(*i));
        }
    }
    // a kept crossover is what the run reports: a state neither run trained
    let w = reported.expect("some crossover was kept");
    let fid_at = |d: &Path| -> f64 {
        let e = log(d)
            .into_iter()
            .find(|r| r["kind"] == "epoch" && r["generation"] == w as u64 + 1)
            .unwrap();
        e["fid"].as_f64().unwrap()
    };
    assert_ne!(fid_at(xo), fid_at(plain), "generation {}", w + 1);
    // stopped at that round's epoch end (the crossover kept, the child set aside) and resumed
    stopped_and_resumed_ends_as(xo, cut, &flags, &(w + 1).to_string(), "86");
}

/// What the generation records of the run in `dir` say that training decides, without the
/// selection rounds.
fn training(dir: &Path) -> Vec<serde_json::Value> {
    trained(dir)
        .iter()
        .map(|g| serde_json::json!(&g.as_array().unwrap()[..6]))
        .collect()
}

/// The index of the highest FID (the first of equals).
fn worst(f: &[f64]) -> usize {
    (0..f.len()).fold(0, |w, i| if f[i] > f[w] { i } else { w })
}

#[test]
fn pbt_flags_are_refused_where_they_make_no_sense() {
    let tmp = tempfile::tempdir().unwrap();
    let cases: [(&[&str], &str); 21] = [
        (
            &["--population", "1", "--epoch-select", "--no-evolution"],
            "drop --no-evolution",
        ),
        (
            &[
                "--population",
                "1",
                "--epoch-select",
                "keep",
                "--no-evolution",
            ],
            "drop --no-evolution",
        ),
        (
            &["--select-latents", "fixed"],
            "--select-latents: only with --epoch-select",
        ),
        (
            &["--select-crossover"],
            "--select-crossover: only with --epoch-select",
        ),
        (
            &[
                "--population",
                "2",
                "--epoch-select",
                "keep",
                "--select-crossover",
            ],
            "--select-crossover: averages two states of one network",
        ),
        (
            &["--population", "1", "--epoch-select", "--select-crossover"],
            "--select-crossover: only with --epoch-select keep",
        ),
        (
            &["--epoch-select", "sideways"],
            "invalid value 'sideways' for '--epoch-select",
        ),
        (
            &["--population", "2", "--epoch-select", "--pbt-every", "2"],
            "--epoch-select: not with --pbt-every",
        ),
        (
            &["--mode", "weights", "--epoch-select"],
            "--epoch-select: only for the dcgan mode",
        ),
        (
            &["--epoch-select", "--pbt-fid-samples", "5"],
            "--pbt-fid-samples 5",
        ),
        (&["--halving"], "--halving: only with --pbt-every"),
        (
            &["--pbt-every", "2", "--halving", "--d-population", "2"],
            "drop --d-population 2",
        ),
        (
            &[
                "--population",
                "4",
                "--pbt-every",
                "2",
                "--halving",
                "--mixture",
            ],
            "not with --mixture",
        ),
        (
            &["--mode", "weights", "--pbt-every", "2"],
            "only for the dcgan mode",
        ),
        (
            &["--population", "1", "--pbt-every", "2"],
            "--population 2 or more",
        ),
        (
            &["--population", "2", "--pbt-every", "2", "--no-evolution"],
            "drop --no-evolution",
        ),
        (
            &["--pbt-every", "2", "--g-losses", "nonsat"],
            "not with --g-losses",
        ),
        (&["--pbt-every", "2", "--evolve-lr"], "not with --evolve-lr"),
        (&["--pbt-every", "0"], "--pbt-every 0"),
        (
            &["--pbt-fid-samples", "64"],
            "only with --pbt-every or --epoch-select",
        ),
        (
            &["--pbt-every", "2", "--pbt-fid-samples", "5"],
            "--pbt-fid-samples 5",
        ),
    ];
    for (i, (flags, needle)) in cases.iter().enumerate() {
        let out = tmp.path().join(format!("bad{i}"));
        let o = gan(&out, &[&["--generations", "1"], *flags].concat());
        assert_eq!(o.status.code(), Some(2), "{flags:?}: {}", stderr(&o));
        let e = one_line_error(&o);
        assert!(e.contains(needle), "{flags:?}: {e}");
        assert!(
            !out.join("log.jsonl").exists(),
            "{flags:?}: refused before the run starts"
        );
    }
}
