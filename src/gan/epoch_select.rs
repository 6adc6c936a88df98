//! `gan --epoch-select`: (1+1) selection of the whole run over time, with an epoch of gradient
//! training as the mutation.
//!
//! Why: one GAN's FID oscillates from epoch to epoch (the tuned DCGAN's epoch-end FIDs on MNIST
//! swing by 10-20 around their trend, docs/results/gan.md), so what a run hands over at an
//! epoch end is partly the luck of where the swing is. A population of networks trained side by
//! side pays for that with fewer steps each; this pays with one FID a epoch. At every epoch end
//! the run's state (both populations with their Adam state) is the child of the kept state (the
//! parent): the child is scored on a **selection FID** (the best generator's images on latents
//! fixed for the run, against a seeded set of training images apart from the run's FID set, so
//! that selection never tunes the figure the run is judged by) and
//! - no worse than the parent's, it becomes the kept state;
//! - worse, the run goes back to the parent (weights and Adam state) and trains on from it with
//!   the next batches; the child is dropped.
//!
//! The selection FIDs are part of the generation that ends an epoch, so they count in the
//! training budget. A run that stops between epoch ends reports and exports the better of its
//! state and the kept one, and checkpoints its own state (the kept one beside it), so that a
//! resumed run trains on as the uninterrupted one would.
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

/// The selection's fixed latents and real statistics, the kept state and its FID.
pub struct EpochSelect {
    z: Tensor,
    real: FeatureStats,
    kept: Option<(Vec<(String, Tensor)>, f64)>,
    /// After [`Self::finish_with`] went back to the kept state: the run's own state, which
    /// its checkpoint holds.
    own: Option<Vec<(String, Tensor)>>,
}

impl EpochSelect {
    /// The selection with latents `z` (`[N, latent...]`) against `real`.
    pub fn new(z: Tensor, real: FeatureStats) -> Self {
        EpochSelect {
            z,
            real,
            kept: None,
            own: None,
        }
    }

    /// The selection of a new run (or one whose checkpoint [`Self::restore`] reads): `n`
    /// latents drawn here, and the real side of its FIDs, PBT's (a seeded set of
    /// [`super::pbt::REAL_SAMPLES`] training images apart from the run's FID set).
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
        let z = Tensor::randn([&[n], latent].concat(), (Kind::Float, run.device));
        Ok(Self::new(z, s))
    }

    /// The selection FID of `model`'s best generator: +inf when its images are not finite.
    pub fn fid(
        &self,
        model: &dyn GanModel,
        extractor: &FeatureExtractor,
        range: (f32, f32),
    ) -> Result<f64> {
        let imgs = in_chunks(&self.z, |z| model.sample_best(z))?;
        if !bool::try_from(imgs.isfinite().all())? {
            return Ok(f64::INFINITY);
        }
        let s = fid::stats(extractor, &imgs, range)?;
        Ok(fid::frechet_distance(&s, &self.real).unwrap_or(f64::INFINITY))
    }

    /// The round at an epoch end: scores `model` and keeps it or sends it back to the kept
    /// state. Returns what it did, for the log.
    pub fn round(
        &mut self,
        model: &mut dyn GanModel,
        extractor: &FeatureExtractor,
        range: (f32, f32),
    ) -> Result<Value> {
        let child = self.fid(model, extractor, range)?;
        self.round_with(model, child)
    }

    /// [`Self::round`] for a child whose selection FID is `child`.
    pub fn round_with(&mut self, model: &mut dyn GanModel, child: f64) -> Result<Value> {
        let parent = self.kept.as_ref().map(|k| k.1);
        let keep = keep_child(child, parent);
        match (keep, &self.kept) {
            (false, Some((t, _))) => model.load_tensors(&as_map(t))?,
            _ => self.kept = Some((copied(model.tensors()), child)),
        }
        Ok(log_entry(child, parent, keep))
    }

    /// At the end of a run that stopped between epoch ends: the better of `model` (selection
    /// FID `child`) and the kept state goes into `model` for the run's final FID and export;
    /// nothing the run trains on changes (the kept state stays, and the checkpoint holds the
    /// run's own state, [`Self::tensors_of`]).
    pub fn finish_with(&mut self, model: &mut dyn GanModel, child: f64) -> Result<Value> {
        let parent = self.kept.as_ref().map(|k| k.1);
        let keep = keep_child(child, parent);
        if let (false, Some((t, _))) = (keep, &self.kept) {
            self.own = Some(copied(model.tensors()));
            model.load_tensors(&as_map(t))?;
        }
        Ok(log_entry(child, parent, keep))
    }

    /// [`Self::finish_with`] with the model's selection FID.
    pub fn finish(
        &mut self,
        model: &mut dyn GanModel,
        extractor: &FeatureExtractor,
        range: (f32, f32),
    ) -> Result<Value> {
        let child = self.fid(model, extractor, range)?;
        self.finish_with(model, child)
    }

    /// What a checkpoint holds of the run: the run's own state (the model's tensors, or those
    /// [`Self::finish_with`] set aside), then the latents, the kept state and its FID.
    pub fn tensors_of(&self, model: &dyn GanModel) -> Vec<(String, Tensor)> {
        let mut t = match &self.own {
            Some(own) => own
                .iter()
                .map(|(n, x)| (n.clone(), x.shallow_clone()))
                .collect(),
            None => model.tensors(),
        };
        t.push((format!("{PREFIX}z"), self.z.shallow_clone()));
        if let Some((kept, f)) = &self.kept {
            t.extend(
                kept.iter()
                    .map(|(n, x)| (format!("{PREFIX}{n}"), x.shallow_clone())),
            );
            t.push((format!("{PREFIX}fid"), Tensor::from(*f)));
        }
        t
    }

    /// Restores the latents and the kept state from a checkpoint's tensors, checking that the
    /// kept state has every tensor of `model` in its shape.
    pub fn restore(&mut self, model: &dyn GanModel, map: &HashMap<String, Tensor>) -> Result<()> {
        let dev = self.z.device();
        self.z = take(map, &format!("{PREFIX}z"), &self.z.size())?.to_device(dev);
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

    /// The kept state's selection FID (None before the first round).
    pub fn kept_fid(&self) -> Option<f64> {
        self.kept.as_ref().map(|k| k.1)
    }
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

    #[test]
    fn a_worse_child_goes_back_to_the_kept_state_exactly() {
        tch::manual_seed(1);
        let mut m = super::super::pbt::tests::model(1, false);
        m.cfg.pbt = None;
        let z = Tensor::randn([8, 4], (Kind::Float, Device::Cpu));
        let mut sel = EpochSelect::new(z, no_stats());
        // the first child is always kept
        let v = sel.round_with(&mut m, 50.0).unwrap();
        assert_eq!(v, json!({"fid": 50.0, "parent_fid": null, "kept": true}));
        let parent = snapshot(&m);
        // worse: back to the parent, weights and Adam state
        train(&mut m);
        assert!(!same(&snapshot(&m), &parent));
        let v = sel.round_with(&mut m, 60.0).unwrap();
        assert_eq!(v["kept"], false);
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
        // training on from the parent does not change the kept copy
        train(&mut m);
        let child = snapshot(&m);
        let v = sel.round_with(&mut m, 40.0).unwrap();
        assert_eq!(v, json!({"fid": 40.0, "parent_fid": 50.0, "kept": true}));
        assert!(same(&snapshot(&m), &child));
        assert_eq!(sel.kept_fid(), Some(40.0));
        // a run that stops between epochs exports the better, and checkpoints its own state
        train(&mut m);
        let own = snapshot(&m);
        let v = sel.finish_with(&mut m, 45.0).unwrap();
        assert_eq!(v["kept"], false);
        assert!(same(&snapshot(&m), &child), "the kept state is exported");
        assert_eq!(sel.kept_fid(), Some(40.0), "and stays kept");
        let ck = sel.tensors_of(&m);
        let n = own.len();
        assert!(
            same(&ck[..n], &own),
            "the checkpoint holds the run's own state"
        );
        // which restores: the latents and the kept state
        let map: HashMap<String, Tensor> = ck.into_iter().collect();
        let mut back = EpochSelect::new(
            Tensor::zeros([8, 4], (Kind::Float, Device::Cpu)),
            no_stats(),
        );
        back.restore(&m, &map).unwrap();
        assert!(back.z.equal(&sel.z));
        assert_eq!(back.kept_fid(), Some(40.0));
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
    }
}
