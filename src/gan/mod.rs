//! `neuroevo gan`: GA-GANs in two modes on the shared GA operators, datasets and export.
//!
//! - [`weights`] (`--mode weights`): MLP generators whose flat weight vectors are evolved with
//!   no gradient, against one gradient-trained discriminator (the "genetic algorithms to
//!   optimise GANs" notebook, as it was meant);
//! - [`dcgan`] (`--mode dcgan`): populations of DCGAN generators and discriminators with
//!   optional Adam steps between generations (the GA-GAN thesis); `--population 1
//!   --no-evolution` is the plain gradient DCGAN on the same code path; with `--g-losses` the
//!   generators vary and are selected as in E-GAN instead ([`egan`]).
//!
//! Both evaluate a whole population in batched forward passes ([`func`]: `bmm` and grouped
//! convolutions over stacked weights). Every run writes `config.json`, `log.jsonl` (one line
//! per generation, `"kind": "generation"`, and one per epoch, `"kind": "epoch"`, with
//! real_score, fake_score, loss_d, loss_g and the FID of the best generator), `scores.png`,
//! `losses.png`, `fid.png`, `samples/epoch-NNNN.png` (the same 64 latent vectors every time),
//! `best-generator.pt` + `.json` (TorchScript z -> image, loadable by `neuroevo fool --space
//! latent --generator`), `checkpoint.pt` + `checkpoint.json` and `result.json`.
//!
//! Time: `--time-budget` counts training time only (generations: gradient steps, fitness,
//! selection, breeding), not the FID evaluations, sample grids and checkpoints, so runs that
//! evaluate at different rates get the same training time.
pub mod config;
pub mod dcgan;
pub mod egan;
pub mod epoch_select;
pub mod fid;
mod flags;
pub mod func;
pub mod halving;
pub mod mixture;
pub mod mlp;
pub mod outputs;
pub mod pbt;
pub(crate) mod records;
pub mod strokes;
pub mod trainer;
pub mod weights;

pub use config::{GanArgs, GanConfig, LrEvolution, Mode};
pub use trainer::{run_gan, GanSummary};

use crate::error::{Error, Result};
use crate::ga::GaRng;
use rand::seq::SliceRandom;
use serde_json::{Map, Value};
use std::collections::HashMap;
use std::path::Path;
use tch::{Device, Kind, Tensor};

/// What one generation reports: the thesis' four numbers (population means) and the fitness.
#[derive(Clone, Debug)]
pub struct GenStats {
    /// Mean D(x) on real images.
    pub real_score: f64,
    /// Mean D(G(z)).
    pub fake_score: f64,
    /// BCE(D(x), 1) + BCE(D(G(z)), 0).
    pub loss_d: f64,
    /// BCE(D(G(z)), 1) (the non-saturating generator loss).
    pub loss_g: f64,
    pub best_fitness: f64,
    pub mean_fitness: f64,
    pub fitness_std: f64,
    pub extra: Map<String, Value>,
}

impl GenStats {
    pub fn new(real: f64, fake: f64, loss_d: f64, loss_g: f64, fitness: &[f64]) -> Self {
        let n = fitness.len().max(1) as f64;
        let mean = fitness.iter().sum::<f64>() / n;
        let sd = (fitness.iter().map(|f| (f - mean).powi(2)).sum::<f64>() / n).sqrt();
        GenStats {
            real_score: real,
            fake_score: fake,
            loss_d,
            loss_g,
            best_fitness: fitness.iter().copied().fold(f64::NEG_INFINITY, f64::max),
            mean_fitness: mean,
            fitness_std: sd,
            extra: Map::new(),
        }
    }
}

/// A GAN whose generators (and maybe discriminators) are a population.
pub trait GanModel {
    /// Data-dependent initialisation, once at the start of a fresh run (before the first FID).
    fn prepare(&mut self, _data: &mut RealStream, _rng: &mut GaRng) -> Result<()> {
        Ok(())
    }
    /// One generation: training, fitness of everyone, then selection and breeding.
    fn generation(
        &mut self,
        data: &mut RealStream,
        rng: &mut GaRng,
        generation: u64,
    ) -> Result<GenStats>;
    /// Images `[N, C, H, W]` (values in `output_range`) of the best generator of the last
    /// evaluation for latents `z` `[N, latent]`.
    fn sample_best(&self, z: &Tensor) -> Result<Tensor>;
    fn output_range(&self) -> (f32, f32);
    /// The latent input's shape after the batch dimension.
    fn latent_shape(&self) -> Vec<i64>;
    /// Everything a checkpoint must hold to continue.
    fn tensors(&self) -> Vec<(String, Tensor)>;
    fn load_tensors(&mut self, t: &HashMap<String, Tensor>) -> Result<()>;
    /// Writes the best generator as TorchScript (z -> image).
    fn export_best(&self, path: &Path) -> Result<()>;
    /// Every generator's images for latents `z`: `[N, P*C, H, W]`, generator i's in channels
    /// `i*C..(i+1)*C` (None: the mode has no [`mixture`]).
    fn sample_members(&self, _z: &Tensor) -> Result<Option<Tensor>> {
        Ok(None)
    }
    /// Writes a TorchScript sampler (z -> image) of the mixture of the population's generators
    /// with `weights` (see [`mixture`]).
    fn export_mixture(&self, _weights: &[f64], _path: &Path) -> Result<()> {
        Err(Error::usage("--mixture: only for the dcgan mode"))
    }
    /// One round of population-based training ([`pbt`]) after a generation, given every
    /// generator's FID; returns what it did, for the log.
    fn pbt(&mut self, _g_fid: &[f64], _rng: &mut GaRng) -> Result<Value> {
        Err(Error::usage("--pbt-every: only for the dcgan mode"))
    }
    /// Whether a PBT round due now has anything to rank (successive halving ends at one).
    fn pbt_has_rivals(&self) -> bool {
        false
    }
}

/// `sample(z)` over the rows of `z` in chunks of 250, the images concatenated: how the run's
/// FID latents are sampled, so that the mixture's members see them as the run's FID does.
pub(crate) fn in_chunks(z: &Tensor, sample: impl Fn(&Tensor) -> Result<Tensor>) -> Result<Tensor> {
    let n = z.size()[0];
    let mut chunks = Vec::new();
    let mut i = 0;
    while i < n {
        let len = 250.min(n - i);
        chunks.push(sample(&z.narrow(0, i, len))?);
        i += len;
    }
    Ok(Tensor::cat(&chunks, 0))
}

/// A checkpoint tensor with the expected shape.
pub(crate) fn take(t: &HashMap<String, Tensor>, name: &str, shape: &[i64]) -> Result<Tensor> {
    let x = t
        .get(name)
        .ok_or_else(|| Error::Other(format!("checkpoint has no tensor {name}")))?;
    if x.size() != shape {
        return Err(Error::usage(format!(
            "checkpoint tensor {name} has shape {:?}, this run expects {shape:?}",
            x.size()
        )));
    }
    Ok(x.shallow_clone())
}

/// Real images in shuffled batches, cycling; `epochs` counts completed passes.
pub struct RealStream {
    pub(crate) x: Tensor,
    pub(crate) perm: Tensor,
    pub(crate) pos: i64,
    pub epochs: u64,
}

impl RealStream {
    pub fn new(x: Tensor, epochs: u64, rng: &mut GaRng) -> Self {
        let mut s = RealStream {
            perm: Tensor::zeros([0], (Kind::Int64, Device::Cpu)),
            x,
            pos: 0,
            epochs,
        };
        s.shuffle(rng);
        s
    }
    /// A stream at a checkpointed position: permutation `perm` of `x`'s rows, next at `pos`.
    pub fn restore(x: Tensor, perm: Tensor, pos: i64, epochs: u64) -> Result<Self> {
        let n = x.size()[0];
        if perm.size() != [n] || !(0..=n).contains(&pos) {
            return Err(Error::Other(format!(
                "checkpoint: the stream of real images ({:?} at {pos}) does not fit {n} images",
                perm.size()
            )));
        }
        Ok(RealStream {
            x,
            perm,
            pos,
            epochs,
        })
    }
    fn shuffle(&mut self, rng: &mut GaRng) {
        let n = self.x.size()[0];
        let mut p: Vec<i64> = (0..n).collect();
        p.shuffle(rng);
        self.perm = Tensor::from_slice(&p).to_device(self.x.device());
        self.pos = 0;
    }
    pub fn len(&self) -> i64 {
        self.x.size()[0]
    }
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
    /// The next `b` images (fewer only when the set is smaller than `b`).
    pub fn next(&mut self, b: i64, rng: &mut GaRng) -> Tensor {
        let b = b.min(self.len());
        if self.pos + b > self.len() {
            self.epochs += 1;
            self.shuffle(rng);
        }
        let idx = self.perm.narrow(0, self.pos, b);
        self.pos += b;
        self.x.index_select(0, &idx)
    }
}

#[cfg(test)]
mod tests {
    use super::config::ga_config;
    use super::*;
    use crate::ga::evolver::tests::crossover_only;
    use crate::ga::{Crossover, Evolver};
    use rand::SeedableRng;

    #[test]
    fn keep_fraction_keeps_at_least_the_best() {
        // the top 20% of 2 is the better one alone (both would make selection a coin toss)
        assert_eq!(ga_config(2, 0.2, Some(1)).unwrap().parents, 1);
        assert_eq!(ga_config(50, 0.2, None).unwrap().parents, 10);
        assert_eq!(ga_config(4, 0.5, Some(1)).unwrap().parents, 2);
        let ev = Evolver {
            ga: ga_config(2, 0.2, Some(1)).unwrap(),
            ops: crossover_only(Crossover::None),
            tensor_ranges: None,
        };
        let g = Tensor::from_slice(&[0.0f32, 1.0]).view([2, 1]);
        let mut rng = GaRng::seed_from_u64(1);
        for _ in 0..10 {
            let (next, inherit) = ev.step(&g, &[0.1, 0.9], &mut rng).unwrap();
            assert_eq!(Vec::<i64>::try_from(inherit).unwrap(), [1, 1]);
            assert_eq!(Vec::<f32>::try_from(next.view([-1])).unwrap(), [1.0, 1.0]);
        }
    }

    #[test]
    fn stream_counts_epochs() {
        let x = Tensor::arange(10, (Kind::Float, Device::Cpu)).view([10, 1, 1, 1]);
        let mut rng = GaRng::seed_from_u64(1);
        let mut s = RealStream::new(x, 0, &mut rng);
        let mut seen = Vec::new();
        for _ in 0..3 {
            seen.extend(Vec::<f32>::try_from(s.next(3, &mut rng).view([-1])).unwrap());
        }
        assert_eq!(s.epochs, 0);
        seen.sort_by(f32::total_cmp);
        seen.dedup();
        assert_eq!(seen.len(), 9, "no repeats within an epoch");
        let _ = s.next(3, &mut rng);
        assert_eq!(s.epochs, 1);
    }
}
