//! Rounds of [`super`] with scripted selection FIDs on a tiny DCGAN.
use super::*;
use tch::Device;

#[test]
fn a_child_is_kept_when_no_worse() {
    assert!(keep_child(80.0, None));
    assert!(keep_child(f64::INFINITY, None));
    assert!(keep_child(80.0, Some(80.0)));
    assert!(keep_child(79.0, Some(80.0)));
    assert!(!keep_child(81.0, Some(80.0)));
    assert!(!keep_child(f64::INFINITY, Some(80.0)));
    assert!(!keep_child(f64::NAN, Some(80.0)));
    assert!(keep_child(500.0, Some(f64::INFINITY)));
    assert!(keep_child(500.0, Some(f64::NAN)));
}

fn no_stats() -> FeatureStats {
    FeatureStats {
        mean: Tensor::zeros([2], (Kind::Double, Device::Cpu)),
        cov: Tensor::eye(2, (Kind::Double, Device::Cpu)),
    }
}

fn snapshot(m: &dyn GanModel) -> Vec<(String, Tensor)> {
    copied(m.tensors())
}

fn same(a: &[(String, Tensor)], b: &[(String, Tensor)]) -> bool {
    a.len() == b.len() && a.iter().zip(b).all(|(x, y)| x.0 == y.0 && x.1.equal(&y.1))
}

/// Changes every weight and Adam moment of `m`, as training would.
fn train(m: &mut super::super::dcgan::DcganModel) {
    m.g = &m.g + 0.5;
    m.d = &m.d - 0.25;
    m.g_adam.m = &m.g_adam.m + 1.0;
    m.d_adam.v = &m.d_adam.v + 2.0;
    m.g_adam.t += 3;
    m.best = &m.best + 0.5;
}

/// A scorer that returns `fids` in turn and records the first weight of the generator it
/// scored.
fn scripted(fids: Vec<f64>, seen: &mut Vec<f64>) -> impl FnMut(&dyn GanModel) -> Result<f64> + '_ {
    let mut fids = fids.into_iter();
    move |m: &dyn GanModel| {
        let g = m.tensors().into_iter().find(|t| t.0 == "g").unwrap().1;
        seen.push(g.view([-1]).double_value(&[0]));
        Ok(fids.next().unwrap())
    }
}

fn how(kind: Round, rescore: bool) -> How {
    How {
        kind,
        rescore,
        crossover: false,
    }
}

fn g0(m: &dyn GanModel) -> f64 {
    let g = m.tensors().into_iter().find(|t| t.0 == "g").unwrap().1;
    g.view([-1]).double_value(&[0])
}

#[test]
fn a_worse_child_goes_back_to_the_kept_state_exactly() {
    tch::manual_seed(1);
    let mut m = super::super::pbt::tests::model(1, false);
    m.cfg.pbt = None;
    let mut seen = Vec::new();
    // the first child is kept without a parent to score
    let (v, (kept, own)) = round_with(
        &mut m,
        None,
        &mut scripted(vec![50.0], &mut seen),
        how(Round::Revert, true),
    )
    .unwrap();
    assert_eq!(v, json!({"fid": 50.0, "parent_fid": null, "kept": true}));
    assert!(own.is_none());
    let parent = snapshot(&m);
    let p0 = g0(&m);
    // worse (60 against the parent's 55 on the same latents): back to the parent, weights
    // and Adam state, and the parent is scored on its own state
    train(&mut m);
    let c0 = g0(&m);
    seen.clear();
    let (v, (kept, _)) = round_with(
        &mut m,
        kept,
        &mut scripted(vec![60.0, 55.0], &mut seen),
        how(Round::Revert, true),
    )
    .unwrap();
    assert_eq!(v, json!({"fid": 60.0, "parent_fid": 55.0, "kept": false}));
    assert_eq!(seen, vec![c0, p0], "the child, then the parent");
    assert!(same(&snapshot(&m), &parent), "the parent's state exactly");
    assert_eq!(
        m.g_adam.t,
        parent
            .iter()
            .find(|t| t.0 == "g_t")
            .unwrap()
            .1
            .int64_value(&[])
    );
    assert!(same(&kept.as_ref().unwrap().0, &parent));
    // no worse: the child stays and becomes the kept state; training on does not change
    // the kept copy
    train(&mut m);
    let child = snapshot(&m);
    let (v, (kept, _)) = round_with(
        &mut m,
        kept,
        &mut scripted(vec![40.0, 45.0], &mut seen),
        how(Round::Revert, true),
    )
    .unwrap();
    assert_eq!(v["kept"], true);
    assert!(same(&snapshot(&m), &child));
    train(&mut m);
    assert!(same(&kept.as_ref().unwrap().0, &child));
    assert_eq!(kept.as_ref().unwrap().1, 40.0);
    // a run that stops between epochs exports the better (here the kept state), keeps
    // its kept state and sets its own aside for the checkpoint
    let mine = snapshot(&m);
    let (v, (kept, own)) = round_with(
        &mut m,
        kept,
        &mut scripted(vec![50.0, 45.0], &mut seen),
        how(Round::End, true),
    )
    .unwrap();
    assert_eq!(v["kept"], false);
    assert!(same(&snapshot(&m), &child), "the kept state is exported");
    assert!(same(&kept.as_ref().unwrap().0, &child), "and stays kept");
    assert!(same(own.as_ref().unwrap(), &mine));
    // the checkpoint holds the run's own state, then the kept one, which restores
    let mut sel = EpochSelect::new(8, &[4], no_stats(), SelectMode::Revert);
    (sel.kept, sel.own) = (kept, own);
    let ck = sel.tensors_of(&m);
    assert!(same(&ck[..mine.len()], &mine));
    let map: HashMap<String, Tensor> = ck.into_iter().collect();
    let mut back = EpochSelect::new(8, &[4], no_stats(), SelectMode::Revert);
    back.restore(&m, &map).unwrap();
    assert_eq!(back.kept_fid(), Some(45.0));
    assert!(same(&back.kept.as_ref().unwrap().0, &child));
    // a kept state of another shape is refused
    let mut bad: HashMap<String, Tensor> = map
        .iter()
        .map(|(n, x)| (n.clone(), x.shallow_clone()))
        .collect();
    bad.insert(
        format!("{PREFIX}g"),
        Tensor::zeros([3], (Kind::Float, Device::Cpu)),
    );
    assert!(back.restore(&m, &bad).is_err());
    // a better state at the end: exported as it is, nothing set aside
    let (v, (_, own)) = round_with(
        &mut m,
        Some((
            copied(
                child
                    .iter()
                    .map(|(n, x)| (n.clone(), x.shallow_clone()))
                    .collect(),
            ),
            45.0,
        )),
        &mut scripted(vec![30.0, 45.0], &mut seen),
        how(Round::End, true),
    )
    .unwrap();
    assert_eq!(v["kept"], true);
    assert!(own.is_none() && same(&snapshot(&m), &child));
}

/// A `keep` round of `sel` on `m` with the scripted FIDs `fids`.
fn round(
    sel: &mut EpochSelect,
    m: &mut dyn GanModel,
    fids: Vec<f64>,
    seen: &mut Vec<f64>,
) -> Value {
    let mut score = scripted(fids, seen);
    let h = How {
        crossover: sel.crossover,
        ..how(Round::Keep, sel.fixed.is_none())
    };
    let (v, k) = round_with(m, sel.kept.take(), &mut score, h).unwrap();
    (sel.kept, sel.own) = k;
    v
}

#[test]
fn keep_reports_the_kept_state_and_trains_on_from_the_worse_child() {
    tch::manual_seed(2);
    let mut m = super::super::pbt::tests::model(1, false);
    m.cfg.pbt = None;
    let mut sel = EpochSelect::new(8, &[4], no_stats(), SelectMode::Keep);
    let mut seen = Vec::new();
    round(&mut sel, &mut m, vec![50.0], &mut seen);
    let parent = snapshot(&m);
    train(&mut m);
    let child = snapshot(&m);
    // worse: the model holds the kept state for the report, the child is set aside and is
    // what the checkpoint holds
    let v = round(&mut sel, &mut m, vec![60.0, 55.0], &mut seen);
    assert_eq!(v, json!({"fid": 60.0, "parent_fid": 55.0, "kept": false}));
    assert!(same(&snapshot(&m), &parent), "the kept state is reported");
    assert!(same(&sel.kept.as_ref().unwrap().0, &parent));
    assert!(same(&sel.tensors_of(&m)[..child.len()], &child));
    // the next generation trains on the child, weights and Adam state exactly
    sel.train_on_own(&mut m).unwrap();
    assert!(
        same(&snapshot(&m), &child),
        "training goes on from the child"
    );
    assert!(sel.own.is_none() && same(&sel.tensors_of(&m)[..child.len()], &child));
    sel.train_on_own(&mut m).unwrap();
    assert!(
        same(&snapshot(&m), &child),
        "nothing set aside: nothing changes"
    );
    // a later child no worse than the kept state replaces it
    train(&mut m);
    let later = snapshot(&m);
    let v = round(&mut sel, &mut m, vec![40.0, 55.0], &mut seen);
    assert_eq!(v["kept"], true);
    assert!(sel.own.is_none() && same(&snapshot(&m), &later));
    assert!(same(&sel.kept.as_ref().unwrap().0, &later));
    assert_eq!(sel.kept_fid(), Some(40.0));
}

#[test]
fn fixed_latents_score_the_child_alone_against_the_kept_score() {
    tch::manual_seed(3);
    let mut m = super::super::pbt::tests::model(1, false);
    m.cfg.pbt = None;
    let mut sel = EpochSelect::new(8, &[4], no_stats(), SelectMode::Keep);
    let streams = crate::rng::Streams::new(5);
    sel.fix_latents(streams.select_latents(), Device::Cpu);
    let z = sel.fixed.as_ref().unwrap().shallow_clone();
    assert_eq!(z.size(), vec![8, 4]);
    let mut again = EpochSelect::new(8, &[4], no_stats(), SelectMode::Keep);
    again.fix_latents(streams.select_latents(), Device::Cpu);
    assert!(
        again.fixed.unwrap().equal(&z),
        "the same latents from the same seed"
    );
    let mut seen = Vec::new();
    round(&mut sel, &mut m, vec![50.0], &mut seen);
    let parent = snapshot(&m);
    train(&mut m);
    let child = snapshot(&m);
    // worse than the kept score: only the child was scored, the model holds the kept
    // state and the child is set aside
    seen.clear();
    let v = round(&mut sel, &mut m, vec![60.0], &mut seen);
    assert_eq!(v, json!({"fid": 60.0, "parent_fid": 50.0, "kept": false}));
    assert_eq!(seen.len(), 1, "the child alone is scored");
    assert!(same(&snapshot(&m), &parent));
    assert!(same(&sel.tensors_of(&m)[..child.len()], &child));
    sel.train_on_own(&mut m).unwrap();
    assert!(same(&snapshot(&m), &child));
    // no worse than the kept score: the child stays in the model and is kept
    train(&mut m);
    let later = snapshot(&m);
    seen.clear();
    let v = round(&mut sel, &mut m, vec![50.0], &mut seen);
    assert_eq!(v, json!({"fid": 50.0, "parent_fid": 50.0, "kept": true}));
    assert_eq!(seen.len(), 1);
    assert!(sel.own.is_none() && same(&snapshot(&m), &later));
    assert!(same(&sel.kept.as_ref().unwrap().0, &later));
    // revert: a worse child goes back to the kept state, nothing set aside
    train(&mut m);
    let (v, (kept, own)) = round_with(
        &mut m,
        sel.kept.take(),
        &mut scripted(vec![70.0], &mut seen),
        how(Round::Revert, false),
    )
    .unwrap();
    assert_eq!(v["kept"], false);
    assert!(own.is_none() && same(&snapshot(&m), &later));
    assert_eq!(kept.unwrap().1, 50.0);
}

fn named<'a>(t: &'a [(String, Tensor)], name: &str) -> &'a Tensor {
    &t.iter().find(|x| x.0 == name).unwrap().1
}

#[test]
fn a_crossover_is_reported_where_better_and_training_goes_on_from_the_child() {
    tch::manual_seed(4);
    let mut m = super::super::pbt::tests::model(1, false);
    m.cfg.pbt = None;
    let mut sel = EpochSelect::new(8, &[4], no_stats(), SelectMode::Keep);
    sel.fixed = Some(Tensor::zeros([8, 4], (Kind::Float, Device::Cpu)));
    sel.crossover = true;
    let mut seen = Vec::new();
    // the first round has no parent to cross with: one score
    round(&mut sel, &mut m, vec![50.0], &mut seen);
    assert_eq!(seen.len(), 1);
    let parent = snapshot(&m);
    train(&mut m);
    let child = snapshot(&m);
    // the crossover (55) beats the child (60) but not the kept 50: the kept state is
    // reported, and the child (not the crossover) is set aside to train on
    seen.clear();
    let v = round(&mut sel, &mut m, vec![60.0, 55.0], &mut seen);
    assert_eq!(
        v,
        json!({"fid": 55.0, "parent_fid": 50.0, "kept": false,
               "crossover": {"fid": 55.0, "better": true}})
    );
    assert_eq!(seen.len(), 2, "the child, then the crossover");
    assert!(same(&snapshot(&m), &parent), "the kept state is reported");
    assert!(same(sel.own.as_ref().unwrap(), &child));
    sel.train_on_own(&mut m).unwrap();
    assert!(same(&snapshot(&m), &child));
    // a crossover (35) better than the child (40) and the kept 50: it is kept and reported,
    // the average of the weights with the child's Adam state; training goes on from the child
    train(&mut m);
    let later = snapshot(&m);
    let v = round(&mut sel, &mut m, vec![40.0, 35.0], &mut seen);
    assert_eq!(
        (v["fid"].as_f64(), v["kept"].as_bool()),
        (Some(35.0), Some(true))
    );
    let kept = &sel.kept.as_ref().unwrap().0;
    assert!(same(&snapshot(&m), kept), "the crossover is reported");
    for name in AVERAGED {
        let mean = (named(&later, name) + named(&parent, name)) * 0.5;
        assert!(named(kept, name).equal(&mean), "{name}: the mean");
    }
    for name in ["g_m", "g_v", "d_m", "d_v", "g_t", "d_t"] {
        assert!(
            named(kept, name).equal(named(&later, name)),
            "{name}: the child's"
        );
    }
    assert!(same(sel.own.as_ref().unwrap(), &later));
    assert!(
        same(&sel.tensors_of(&m)[..later.len()], &later),
        "checkpointed"
    );
    sel.train_on_own(&mut m).unwrap();
    assert!(
        same(&snapshot(&m), &later),
        "training goes on from the child"
    );
    // a child (30) no worse than its crossover (45) and the kept 35: the child is kept
    train(&mut m);
    let last = snapshot(&m);
    let v = round(&mut sel, &mut m, vec![30.0, 45.0], &mut seen);
    assert_eq!(v["crossover"], json!({"fid": 45.0, "better": false}));
    assert_eq!(
        (v["fid"].as_f64(), v["parent_fid"].as_f64()),
        (Some(30.0), Some(35.0))
    );
    assert!(sel.own.is_none() && same(&snapshot(&m), &last));
    assert!(same(&sel.kept.as_ref().unwrap().0, &last));
}
