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
//! By default the parent is scored again every round, on the round's fresh latents, because a
//! score kept from an earlier round carries that round's luck: a state that drew a low FID once
//! would stay unbeatable for many epochs (measured: 8 epochs of training dropped in a row, and a
//! worse end than without selection, docs/results/gan.md). Scored side by side on the same
//! latents, the two differ by what differs between the generators. With `--select-latents
//! fixed` every round scores on one seeded set of latents drawn at the start
//! ([`crate::rng::Streams::select_latents`]), so the parent's score from the round that kept it
//! is the score it would get again: a round scores the child alone, at half the cost. What
//! stays is the luck of one state on that one set of latents (measured: a kept state stood for
//! 11 rounds, docs/results/gan.md).
//!
//! `--select-crossover` (`keep`, one network) adds a second variation: the arithmetic crossover
//! of the kept state and the child. Where it beats the child, it is the round's candidate for
//! the kept state, so the reported generator can become a selected running average of the run's
//! states; training always goes on from the child. Why: averaging one GAN's weights over its
//! trajectory damps the oscillation above (Yazıcı et al. 2019), and a state no epoch of training
//! passed through can beat every one that did (measured: below the baseline's best epoch so far
//! on five of six seed-budget pairs, docs/results/gan.md). Training on from the crossover was
//! measured too, and pulled training back toward older states.
//!
//! The selection FIDs are part of the generation that ends an epoch, so they count in the
//! training budget. A run that stops between epoch ends reports and exports the better of its
//! state and the kept one, and checkpoints its own state (the kept one beside it), so that a
//! resumed run trains on as the uninterrupted one would.
use super::config::{SelectLatents, SelectMode};
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
    /// With `--select-latents fixed`: the latents of every round.
    fixed: Option<Tensor>,
    /// `--select-crossover`: the kept state's and the child's average is a second child.
    crossover: bool,
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
            fixed: None,
            crossover: false,
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
        let mut sel = Self::new(n, latent, s, mode);
        sel.crossover = run.cfg.epoch_select_crossover;
        if run.cfg.epoch_select_latents == Some(SelectLatents::Fixed) {
            sel.fix_latents(run.streams.select_latents(), run.device);
        }
        Ok(sel)
    }

    /// Every round from now on scores on one set of latents drawn from `rng` (standard normal;
    /// not from libtorch's generator, so training draws what it would without selection).
    pub fn fix_latents(&mut self, mut rng: crate::ga::GaRng, device: tch::Device) {
        use rand_distr::Distribution;
        let n: i64 = self.z_shape.iter().product();
        let z: Vec<f32> = (0..n)
            .map(|_| rand_distr::StandardNormal.sample(&mut rng))
            .collect();
        let z = Tensor::from_slice(&z).view(self.z_shape.as_slice());
        self.fixed = Some(z.to_device(device));
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
        let z = match &self.fixed {
            Some(z) => z.shallow_clone(),
            None => Tensor::randn(self.z_shape.as_slice(), (Kind::Float, device)),
        };
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
        let how = How {
            kind,
            rescore: self.fixed.is_none(),
            crossover: self.crossover,
        };
        let mut score = self.scorer(extractor, range, device);
        let (v, kept) = round_with(model, kept, &mut score, how)?;
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

/// How a round scores and what it does with a worse child.
#[derive(Clone, Copy, Debug)]
struct How {
    kind: Round,
    /// The kept state is scored again (fresh latents), else its score from the round that kept
    /// it stands (fixed latents).
    rescore: bool,
    /// A `Keep` round's crossover of the kept state and the child ([`crossed`]) is a second
    /// candidate for the kept state.
    crossover: bool,
}

/// The round's candidate for the kept state: the child, or its crossover with the kept state.
enum Candidate {
    Child,
    Crossover(Tensors),
}

/// One round on `model` against the `kept` state, both scored by `score` as `how` says:
/// returns the log entry and the kept state after it, with the run's own state where it is set
/// aside (`model` then holds the kept state). The round's candidate is the child, or in a
/// `Keep` round with a crossover, the crossover where it is better than the child; a candidate
/// no worse than the kept state becomes it, except at the `End`, where the kept state stays as
/// the checkpoint had it. Training always goes on from the child (or, `Revert`, from the kept
/// state where the child was worse).
fn round_with(
    model: &mut dyn GanModel,
    kept: Kept,
    score: &mut Scorer,
    how: How,
) -> Result<(Value, (Kept, Option<Tensors>))> {
    let child = score(model)?;
    let Some((parent_t, parent_fid)) = kept else {
        let kept = match how.kind {
            Round::End => None,
            Round::Revert | Round::Keep => Some((copied(model.tensors()), child)),
        };
        return Ok((log_entry(child, None, true), (kept, None)));
    };
    let own = copied(model.tensors());
    let mut cross = None;
    if how.crossover && how.kind == Round::Keep {
        let a = crossed(&own, &parent_t);
        model.load_tensors(&as_map(&a))?;
        cross = Some((a, score(model)?));
    }
    let parent = match how.rescore {
        true => {
            model.load_tensors(&as_map(&parent_t))?;
            score(model)?
        }
        false => parent_fid,
    };
    let mut cross_log = None;
    let (cand, cand_fid) = match cross {
        Some((a, f)) => {
            let better = !keep_child(child, Some(f));
            cross_log = Some(json!({"fid": finite(f), "better": better}));
            match better {
                true => (Candidate::Crossover(a), f),
                false => (Candidate::Child, child),
            }
        }
        None => (Candidate::Child, child),
    };
    let keep = keep_child(cand_fid, Some(parent));
    let mut v = log_entry(cand_fid, Some(parent), keep);
    if let Some(c) = cross_log {
        v["crossover"] = c;
    }
    // the model ends holding what the run reports: the child or the crossover where kept, else
    // the kept state
    let report = match (keep, &cand) {
        (false, _) => &parent_t,
        (true, Candidate::Child) => &own,
        (true, Candidate::Crossover(a)) => a,
    };
    model.load_tensors(&as_map(report))?;
    let parent_kept = Some((parent_t, parent));
    Ok(match (keep, how.kind, cand) {
        (true, Round::End, _) => (v, (parent_kept, None)),
        (true, Round::Revert | Round::Keep, Candidate::Child) => (v, (Some((own, child)), None)),
        (true, _, Candidate::Crossover(a)) => (v, (Some((a, cand_fid)), Some(own))),
        (false, Round::Keep | Round::End, _) => (v, (parent_kept, Some(own))),
        (false, Round::Revert, _) => (v, (parent_kept, None)),
    })
}

/// The tensors a crossover averages: both networks' weights and the best generator's copy.
/// Every other tensor (Adam's moments and step, the rates) is the child's.
const AVERAGED: [&str; 3] = ["g", "d", "best"];

/// The arithmetic crossover of a child and its parent: the mean of their [`AVERAGED`] tensors,
/// the child's others.
fn crossed(child: &[(String, Tensor)], parent: &[(String, Tensor)]) -> Tensors {
    let parent: HashMap<&str, &Tensor> = parent.iter().map(|(n, x)| (n.as_str(), x)).collect();
    child
        .iter()
        .map(|(n, x)| {
            let t = match (AVERAGED.contains(&n.as_str()), parent.get(n.as_str())) {
                (true, Some(p)) => (x + *p) * 0.5,
                _ => x.copy(),
            };
            (n.clone(), t)
        })
        .collect()
}

/// A round for the log: the child's and the parent's selection FIDs (null where there is none
/// or it is not finite) and whether the child was kept.
fn log_entry(child: f64, parent: Option<f64>, keep: bool) -> Value {
    json!({
        "fid": finite(child),
        "parent_fid": parent.map_or(Value::Null, finite),
        "kept": keep,
    })
}

/// A FID for the log: null where it is not finite.
fn finite(f: f64) -> Value {
    if f.is_finite() {
        json!(f)
    } else {
        Value::Null
    }
}

#[cfg(test)]
mod tests;
