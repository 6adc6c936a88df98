//! `gan --epoch-select`: (1+1) selection of the whole run over time, with an epoch of gradient
//! training as the mutation.
//!
//! Why: one GAN's FID oscillates from epoch to epoch (the tuned DCGAN's epoch-end FIDs on MNIST
//! swing by 10-20 around their trend, docs/results/gan.md), so what a run hands over at an
//! epoch end is partly the luck of where the swing is. A population of networks trained side by
//! side pays for that with fewer steps each; this pays with two small FIDs an epoch. At every
//! epoch end the run's state (both populations with their Adam state) is the child of the kept
//! state (the parent). Both are scored on a **selection FID**: the best generator's images on
//! fresh latents, the same for both, against a seeded set of training images apart from the
//! run's FID set (selection never tunes the figure the run is judged by). Then
//! - a child no worse than its parent becomes the kept state;
//! - a worse one is dropped: the run goes back to the parent (weights and Adam state) and trains
//!   on from it with the next batches (`revert`, the default);
//! - or, with `--epoch-select keep`, the run trains on from the worse child, and the parent is
//!   what the run reports and exports at this epoch end (its FID, samples and generator). The
//!   kept state is then a best-so-far held apart from training, so no epoch of training is
//!   thrown away (measured: `revert` drops 2 of 3 epochs at the tuned rate, docs/results/gan.md).
//!
//! The parent is scored again every round, on the round's latents, because a score kept from an
//! earlier round carries that round's luck: a state that drew a low FID once would stay
//! unbeatable for many epochs (measured: 8 epochs of training dropped in a row, and a worse
//! end than without selection, docs/results/gan.md). Scored side by side on the same latents,
//! the two differ by what differs between the generators.
//!
//! The selection FIDs are part of the generation that ends an epoch, so they count in the
//! training budget. A run that stops between epoch ends reports and exports the better of its
//! state and the kept one, and checkpoints its own state (the kept one beside it), so that a
//! resumed run trains on as the uninterrupted one would.
use super::config::SelectMode;
use super::fid::{self, FeatureStats};
use super::{in_chunks, take, GanModel};
use crate::error::Result;
use crate::nn::load::FeatureExtractor;
use serde_json::{json, Value};
use std::collections::HashMap;
use tch::{Kind, Tensor};

/// The prefix of this module's tensors in a checkpoint.
const PREFIX: &str = "select/";

/// Whether a child with selection FID `child` replaces a parent with `parent` (None: there is
/// no parent yet): when it is no worse. A FID that is not finite is worse than any that is.
pub fn keep_child(child: f64, parent: Option<f64>) -> bool {
    match parent {
        None => true,
        Some(p) => child <= p || (p.is_nan() && !child.is_nan()),
    }
}

/// A model's tensors, copied (the model's own change in place as it trains).
fn copied(t: Vec<(String, Tensor)>) -> Vec<(String, Tensor)> {
    t.into_iter().map(|(n, x)| (n, x.copy())).collect()
}

fn as_map(t: &[(String, Tensor)]) -> HashMap<String, Tensor> {
    t.iter().map(|(n, x)| (n.clone(), x.copy())).collect()
}

/// A selection FID scorer: the FID of a model's best generator.
pub type Scorer<'a> = dyn FnMut(&dyn GanModel) -> Result<f64> + 'a;

/// The selection's sample count, latent shape and real statistics, and the kept state with its
/// selection FID at its last round.
pub struct EpochSelect {
    /// `[N, latent...]`: the shape of a round's latents.
    z_shape: Vec<i64>,
    real: FeatureStats,
    mode: SelectMode,
    kept: Option<(Vec<(String, Tensor)>, f64)>,
    /// While the model holds the kept state for the report (a run's end, or a worse child in
    /// `keep` mode): the run's own state, which its checkpoint holds and training goes on from.
    own: Option<Vec<(String, Tensor)>>,
}

/// What a round does with the states it scores.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Round {
    /// An epoch end: a worse child goes back to the kept state.
    Revert,
    /// An epoch end: a worse child is set aside to train on; the model holds the kept state.
    Keep,
    /// The end of a run between epoch ends: the model holds the better state; the kept state
    /// stays, and a worse run's own state is set aside for the checkpoint.
    End,
}

impl EpochSelect {
    /// The selection of `n` images a FID, latents of shape `latent`, against `real`.
    pub fn new(n: i64, latent: &[i64], real: FeatureStats, mode: SelectMode) -> Self {
        EpochSelect {
            z_shape: [&[n], latent].concat(),
            real,
            mode,
            kept: None,
            own: None,
        }
    }

    /// The selection of a new or resumed run: the real side of its FIDs is PBT's (a seeded set
    /// of [`super::pbt::REAL_SAMPLES`] training images apart from the run's FID set).
    pub fn setup(
        run: &crate::run::Run<super::config::GanConfig>,
        n: i64,
        real: &Tensor,
        extractor: &FeatureExtractor,
        range: (f32, f32),
        latent: &[i64],
    ) -> Result<Self> {
        let rng = run.streams.pbt_samples();
        let s = fid::real_stats(real, super::pbt::REAL_SAMPLES, rng, extractor, range)?;
        let mode = run.cfg.epoch_select_mode.unwrap_or(SelectMode::Revert);
        Ok(Self::new(n, latent, s, mode))
    }

    /// The selection FID of `model`'s best generator on latents `z`: +inf when its images are
    /// not finite.
    pub fn fid(
        &self,
        model: &dyn GanModel,
        z: &Tensor,
        extractor: &FeatureExtractor,
        range: (f32, f32),
    ) -> Result<f64> {
        let imgs = in_chunks(z, |z| model.sample_best(z))?;
        if !bool::try_from(imgs.isfinite().all())? {
            return Ok(f64::INFINITY);
        }
        let s = fid::stats(extractor, &imgs, range)?;
        Ok(fid::frechet_distance(&s, &self.real).unwrap_or(f64::INFINITY))
    }

    /// A scorer on fresh latents (from libtorch's generator, which the run seeds every
    /// generation, so a resumed run draws the same).
    fn scorer<'a>(
        &'a self,
        extractor: &'a FeatureExtractor,
        range: (f32, f32),
        device: tch::Device,
    ) -> impl FnMut(&dyn GanModel) -> Result<f64> + 'a {
        let z = Tensor::randn(self.z_shape.as_slice(), (Kind::Float, device));
        move |m: &dyn GanModel| self.fid(m, &z, extractor, range)
    }

    /// The round at an epoch end: scores `model` and the kept state on the same fresh
    /// latents, and keeps `model` or sends it back to the kept state. Returns what it did, for
    /// the log.
    pub fn round(
        &mut self,
        model: &mut dyn GanModel,
        extractor: &FeatureExtractor,
        range: (f32, f32),
        device: tch::Device,
    ) -> Result<Value> {
        let kind = match self.mode {
            SelectMode::Revert => Round::Revert,
            SelectMode::Keep => Round::Keep,
        };
        self.scored_round(model, extractor, range, device, kind)
    }

    /// Before a generation is trained: the run's own state back into `model` where a `keep`
    /// round left the kept state there for the report.
    pub fn train_on_own(&mut self, model: &mut dyn GanModel) -> Result<()> {
        if let Some(own) = self.own.take() {
            model.load_tensors(&as_map(&own))?;
        }
        Ok(())
    }

    /// At the end of a run that stopped between epoch ends: the better of `model` and the kept
    /// state (on the same fresh latents) goes into `model` for the run's final FID and export;
    /// nothing the run trains on changes (the kept state stays, and the checkpoint holds the
    /// run's own state, [`Self::tensors_of`]).
    pub fn finish(
        &mut self,
        model: &mut dyn GanModel,
        extractor: &FeatureExtractor,
        range: (f32, f32),
        device: tch::Device,
    ) -> Result<Value> {
        self.scored_round(model, extractor, range, device, Round::End)
    }

    /// [`round_with`] on a scorer of fresh latents; the kept state (and the run's own state
    /// where it was set aside) come back into `self`.
    fn scored_round(
        &mut self,
        model: &mut dyn GanModel,
        extractor: &FeatureExtractor,
        range: (f32, f32),
        device: tch::Device,
        kind: Round,
    ) -> Result<Value> {
        // the model holds the run's own state: nothing is set aside between a round and the
        // next generation
        debug_assert!(self.own.is_none());
        let kept = self.kept.take();
        let mut score = self.scorer(extractor, range, device);
        let (v, kept) = round_with(model, kept, &mut score, kind)?;
        drop(score);
        (self.kept, self.own) = kept;
        Ok(v)
    }

    /// What a checkpoint holds of the run: the run's own state (the model's tensors, or those
    /// [`Self::finish`] set aside), then the kept state and its FID.
    pub fn tensors_of(&self, model: &dyn GanModel) -> Vec<(String, Tensor)> {
        let mut t = match &self.own {
            Some(own) => own
                .iter()
                .map(|(n, x)| (n.clone(), x.shallow_clone()))
                .collect(),
            None => model.tensors(),
        };
        if let Some((kept, f)) = &self.kept {
            t.extend(
                kept.iter()
                    .map(|(n, x)| (format!("{PREFIX}{n}"), x.shallow_clone())),
            );
            t.push((format!("{PREFIX}fid"), Tensor::from(*f)));
        }
        t
    }

    /// Restores the kept state from a checkpoint's tensors, checking that it has every tensor
    /// of `model` in its shape.
    pub fn restore(&mut self, model: &dyn GanModel, map: &HashMap<String, Tensor>) -> Result<()> {
        let fid_name = format!("{PREFIX}fid");
        self.kept = match map.contains_key(&fid_name) {
            false => None,
            true => {
                let fid = take(map, &fid_name, &[])?
                    .to_kind(Kind::Double)
                    .double_value(&[]);
                let mut kept = Vec::new();
                for (n, x) in model.tensors() {
                    let t = take(map, &format!("{PREFIX}{n}"), &x.size())?;
                    kept.push((n, t.to_device(x.device())));
                }
                Some((kept, fid))
            }
        };
        Ok(())
    }

    /// The kept state's selection FID at its last round (None before the first round).
    pub fn kept_fid(&self) -> Option<f64> {
        self.kept.as_ref().map(|k| k.1)
    }
}

type Tensors = Vec<(String, Tensor)>;
type Kept = Option<(Tensors, f64)>;

/// One round on `model` against the `kept` state, both scored by `score`: returns the log
/// entry and the kept state after it, with the run's own state where it is set aside (`Keep`
/// or `End` with a worse child: `model` then holds the kept state). A child no worse becomes
/// the kept state, except at the `End`, where the kept state stays as the checkpoint had it.
fn round_with(
    model: &mut dyn GanModel,
    kept: Kept,
    score: &mut Scorer,
    kind: Round,
) -> Result<(Value, (Kept, Option<Tensors>))> {
    let child = score(model)?;
    let Some((parent_t, _)) = kept else {
        let kept = match kind {
            Round::End => None,
            Round::Revert | Round::Keep => Some((copied(model.tensors()), child)),
        };
        return Ok((log_entry(child, None, true), (kept, None)));
    };
    let own = copied(model.tensors());
    model.load_tensors(&as_map(&parent_t))?;
    let parent = score(model)?;
    let keep = keep_child(child, Some(parent));
    let v = log_entry(child, Some(parent), keep);
    let parent_kept = Some((parent_t, parent));
    Ok(match (keep, kind) {
        (true, Round::End) => {
            model.load_tensors(&as_map(&own))?;
            (v, (parent_kept, None))
        }
        (true, Round::Revert | Round::Keep) => {
            model.load_tensors(&as_map(&own))?;
            (v, (Some((own, child)), None))
        }
        (false, Round::Keep | Round::End) => (v, (parent_kept, Some(own))),
        (false, Round::Revert) => (v, (parent_kept, None)),
    })
}

/// A round for the log: the child's and the parent's selection FIDs (null where there is none
/// or it is not finite) and whether the child was kept.
fn log_entry(child: f64, parent: Option<f64>, keep: bool) -> Value {
    let num = |f: f64| if f.is_finite() { json!(f) } else { Value::Null };
    json!({
        "fid": num(child),
        "parent_fid": parent.map_or(Value::Null, num),
        "kept": keep,
    })
}

#[cfg(test)]
mod tests {
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
    fn scripted(
        fids: Vec<f64>,
        seen: &mut Vec<f64>,
    ) -> impl FnMut(&dyn GanModel) -> Result<f64> + '_ {
        let mut fids = fids.into_iter();
        move |m: &dyn GanModel| {
            let g = m.tensors().into_iter().find(|t| t.0 == "g").unwrap().1;
            seen.push(g.view([-1]).double_value(&[0]));
            Ok(fids.next().unwrap())
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
            Round::Revert,
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
            Round::Revert,
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
            Round::Revert,
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
            Round::End,
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
            Round::End,
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
        let (v, k) = round_with(m, sel.kept.take(), &mut score, Round::Keep).unwrap();
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
}
