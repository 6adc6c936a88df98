//! `neuroevo gan`: GA-GANs in two modes on the shared GA operators, datasets and export.
//!
//! - [`weights`] (`--mode weights`): MLP generators whose flat weight vectors are evolved with
//!   no gradient, against one gradient-trained discriminator (the "genetic algorithms to
//!   optimise GANs" notebook, as it was meant);
//! - [`dcgan`] (`--mode dcgan`): populations of DCGAN generators and discriminators with
//!   optional Adam steps between generations (the GA-GAN thesis); `--population 1
//!   --no-evolution` is the plain gradient DCGAN on the same code path.
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
pub mod dcgan;
pub mod fid;
pub mod func;
pub mod weights;

use crate::data::datasets::{load_dataset, DataOptions, DatasetName};
use crate::device::device_name;
use crate::error::{Error, Result};
use crate::ga::cli::MutationArgs;
use crate::ga::{
    Breeding, Crossover, Evolver, FlatOps, GaRng, GeneCount, Mutation, Pairing, Replacement,
    Selection,
};
use crate::imageio::grid_image;
use crate::nn::load::{FeatureExtractor, GeneratorInfo};
use crate::plot::{line_plot, Panel, Series};
use crate::run::clock::process_cpu_s;
use crate::run::log::{generation_of, Log};
use crate::run::{dir, BudgetClock, JobConfig, NewRun, Position, RunArgs, StopCriteria};
use crate::fsutil;
use rand::seq::SliceRandom;
use serde::{Deserialize, Serialize};
use serde_json::{json, Map, Value};
use std::collections::HashMap;
use std::path::{Path, PathBuf};
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
    x: Tensor,
    perm: Tensor,
    pos: i64,
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


#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "snake_case")]
pub enum Mode {
    /// Evolve the flat weight vectors of MLP generators against one trained discriminator.
    Weights,
    /// Populations of DCGAN generators and discriminators (GA-GAN thesis).
    Dcgan,
}

/// Whose learning rates `--evolve-lr` evolves.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum LrEvolution {
    /// Generators' and discriminators'.
    Both,
    /// Generators' only; every discriminator keeps --lr.
    Generators,
}

/// Options of `neuroevo gan`.
#[derive(Clone, Debug, clap::Args)]
pub struct GanArgs {
    /// weights (evolved MLP generators) or dcgan (populations of DCGANs).
    #[arg(long, value_enum, default_value = "dcgan")]
    pub mode: Mode,
    /// mnist-10k (bundled), mnist, fashion-mnist or folder:PATH.
    #[arg(long, default_value = "mnist-10k")]
    pub dataset: String,
    #[arg(long)]
    pub data_dir: Option<PathBuf>,
    /// Use at most this many training images (a seeded subset).
    #[arg(long)]
    pub subset: Option<usize>,
    /// Side of the images: 28 (default for MNIST-like data), 32 or 64 (default for folders).
    #[arg(long)]
    pub image_size: Option<i64>,
    /// Channels of folder images (1 or 3).
    #[arg(long, default_value_t = 3)]
    pub channels: u8,
    /// Generators (default 50 in weights mode, 8 in dcgan mode).
    #[arg(long)]
    pub population: Option<usize>,
    /// Discriminators in dcgan mode (default: as many as generators).
    #[arg(long)]
    pub d_population: Option<usize>,
    /// Switch evolution off (no selection, crossover or mutation): with --population 1, the
    /// plain gradient DCGAN baseline.
    #[arg(long)]
    pub no_evolution: bool,
    /// dcgan: every individual gets its own Adam learning rate (starting at --lr), which its
    /// children inherit multiplied by 0.8 or 1.25 (population-based training's explore):
    /// `--evolve-lr` or `--evolve-lr both` for generators and discriminators,
    /// `--evolve-lr generators` for the generators only (the discriminators keep --lr).
    #[arg(long, value_enum, num_args = 0..=1, default_missing_value = "both")]
    pub evolve_lr: Option<LrEvolution>,
    /// dcgan: Adam steps per individual and generation (0: a pure GA).
    #[arg(long, default_value_t = 1)]
    pub grad_steps: usize,
    /// Stop after this many generations.
    #[arg(long)]
    pub generations: Option<u64>,
    /// Stop after this many epochs (passes over the training images).
    #[arg(long)]
    pub epochs: Option<u64>,
    /// Stop after this many seconds of training (evaluation excluded), on --budget-clock.
    #[arg(long)]
    pub time_budget: Option<f64>,
    /// The clock of --time-budget: wall (elapsed seconds, the default) or cpu (CPU seconds of
    /// this process in training, all threads: the fair clock on a machine shared with other
    /// jobs). With --resume: the run's own clock unless given.
    #[arg(long, value_enum)]
    pub budget_clock: Option<BudgetClock>,
    /// Fraction of each population kept as parents (truncation selection).
    #[arg(long, default_value_t = 0.2)]
    pub keep_fraction: f64,
    /// Survivors: the K best (elitism); default: the whole kept fraction (weights mode, as in
    /// the notebook) or 1 (dcgan mode).
    #[arg(long)]
    pub elitism: Option<usize>,
    /// single-point, two-point, uniform, per-tensor (dcgan: each parameter tensor from either
    /// parent) or none (default: single-point in weights mode, none in dcgan mode).
    #[arg(long)]
    pub crossover: Option<String>,
    #[arg(long, default_value_t = 1.0)]
    pub crossover_prob: f64,
    #[command(flatten)]
    pub mutation: MutationArgs,
    /// Latent size (default 100 in weights mode, 128 in dcgan mode).
    #[arg(long)]
    pub latent_dim: Option<i64>,
    /// weights: hidden layer sizes of the generator MLP, comma-separated.
    #[arg(long, default_value = "100")]
    pub hidden: String,
    /// dcgan: base channel width (channels are multiples of it; 64 at 64x64 is the thesis).
    /// Default 32 at 28/32, 64 at 64.
    #[arg(long)]
    pub width: Option<i64>,
    /// weights: fitness of a generator: logit (mean D logit), prob (mean D(G(z))) or features
    /// (feature matching on D's penultimate layer).
    #[arg(long, value_enum, default_value = "logit")]
    pub fitness: weights::WeightsFitness,
    /// weights: discriminator Adam steps per training generation.
    #[arg(long, default_value_t = 1)]
    pub d_steps: usize,
    /// weights: train the discriminator every this many generations.
    #[arg(long, default_value_t = 1)]
    pub d_every: u64,
    /// weights: discriminator steps against the initial population before the first
    /// generation (useful with --fitness features: it then starts on learnt features).
    #[arg(long, default_value_t = 0)]
    pub d_warmup: usize,
    /// weights: real images in each fitness evaluation (default: --eval-batch); more make the
    /// feature-matching target less noisy.
    #[arg(long)]
    pub real_batch: Option<i64>,
    /// weights: how generators start: glorot (Keras' default, zero biases) or data-mean
    /// (output biases at the logit of the mean real image).
    #[arg(long, value_enum, default_value = "glorot")]
    pub g_init: weights::GeneratorInit,
    /// weights: strokes added to the output weights of each child (0: off): a mutation that
    /// changes a line of pixels of one hidden unit's image at once, so that strokes rather than
    /// speckle accumulate (combine with --mutation-prob 0 to make it the only mutation).
    #[arg(long, default_value_t = 0)]
    pub stroke_mutation: usize,
    /// weights: standard deviation of a stroke's amplitude, in logits.
    #[arg(long, default_value_t = 3.0)]
    pub stroke_sigma: f64,
    /// weights: width of a stroke (the standard deviation of its profile), in pixels.
    #[arg(long, default_value_t = 1.2)]
    pub stroke_width: f64,
    /// weights: the generators' hidden activation: sigmoid (the notebook's: every z mixes all
    /// hidden units' images) or softmax (each z picks a blend of a few units' images).
    #[arg(long, value_enum, default_value = "sigmoid")]
    pub hidden_activation: weights::HiddenActivation,
    /// weights: temperature of --hidden-activation softmax (default 0.5; lower: each z picks
    /// fewer units).
    #[arg(long)]
    pub softmax_temperature: Option<f64>,
    /// weights: give the discriminator the minibatch standard deviation of each generator's
    /// fakes, so that generators whose images ignore z rank low.
    #[arg(long)]
    pub minibatch_std: bool,
    /// Images per gradient step.
    #[arg(long, default_value_t = 64)]
    pub batch_size: i64,
    /// Fakes per generator (and real images) in each fitness evaluation (default 16 in
    /// weights mode, 32 in dcgan mode).
    #[arg(long)]
    pub eval_batch: Option<i64>,
    #[arg(long, default_value_t = 2e-4)]
    pub lr: f64,
    #[arg(long, default_value_t = 0.5)]
    pub beta1: f64,
    /// Classifier whose penultimate features are the FID extractor (its .features.pt and
    /// .json beside it).
    #[arg(long, default_value = "models/mnist-cnn.pt")]
    pub fid_model: PathBuf,
    /// Generated (and real) images per FID.
    #[arg(long, default_value_t = 1000)]
    pub fid_samples: i64,
    /// Also compute the FID every this many generations (0: only at epoch ends and the end).
    #[arg(long, default_value_t = 0)]
    pub fid_every: u64,
    #[command(flatten)]
    pub run: RunArgs,
}

/// `config.json` of a gan run.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct GanConfig {
    pub mode: Mode,
    pub dataset: DatasetName,
    pub data: DataOptions,
    pub image_size: i64,
    pub population: usize,
    pub evolution: bool,
    /// Generators' GA (absent without evolution).
    pub ga: Option<Breeding>,
    pub ops: FlatOps,
    /// dcgan: the discriminators' GA.
    pub d_ga: Option<Breeding>,
    pub d_ops: FlatOps,
    pub per_tensor_crossover: bool,
    pub weights: Option<weights::WeightsConfig>,
    pub dcgan: Option<dcgan::DcganConfig>,
    pub batch_size: i64,
    pub eval_batch: i64,
    pub lr: f64,
    pub beta1: f64,
    pub stop: StopCriteria,
    pub fid_model: PathBuf,
    pub fid_samples: i64,
    pub fid_every: u64,
    pub device: String,
    pub seed: u64,
}

fn ga_config(p: usize, keep_fraction: f64, elitism: Option<usize>) -> Result<Breeding> {
    if !(keep_fraction > 0.0 && keep_fraction < 1.0) {
        return Err(Error::usage(format!(
            "--keep-fraction {keep_fraction}: must be in (0, 1)"
        )));
    }
    // at least one parent: with P = 2, "the top 20%" is the better one, not both
    let parents = ((keep_fraction * p as f64).round() as usize).clamp(1, p);
    let ga = Breeding {
        population: p,
        parents,
        selection: Selection::Truncation,
        pairing: Pairing::RandomPairs,
        replacement: match elitism {
            Some(k) => Replacement::Elitism { k },
            None => Replacement::KeepParents,
        },
    };
    ga.validate()?;
    Ok(ga)
}

impl JobConfig for GanConfig {
    const JOB: crate::run::Job = crate::run::Job::Gan;
    const ON_RESUME: &'static [&'static str] = &[
        "--generations",
        "--epochs",
        "--time-budget",
        "--budget-clock",
        "--fid-every",
    ];
    fn device(&self) -> &str {
        &self.device
    }
    fn seed(&self) -> u64 {
        self.seed
    }
}

impl GanArgs {
    /// The stop criteria typed on the command line.
    fn stop_given(&self) -> StopCriteria {
        StopCriteria {
            generations: self.generations,
            epochs: self.epochs,
            time_budget_s: self.time_budget,
            budget_clock: self.budget_clock.unwrap_or_default(),
            ..Default::default()
        }
    }

    /// Stop criteria and cadences given with `--resume` extend the run.
    fn apply_on_resume(&self, cfg: &mut GanConfig) -> Result<()> {
        let given = self.stop_given();
        given.validate()?;
        cfg.stop.extend_with(&given, self.budget_clock.is_some());
        if self.run.was_given("--fid-every") {
            cfg.fid_every = self.fid_every;
        }
        Ok(())
    }

    pub fn to_config(&self, new: &NewRun) -> Result<GanConfig> {
        let dataset = DatasetName::parse(&self.dataset)?;
        let folder = matches!(dataset, DatasetName::Folder(_));
        let image_size = self.image_size.unwrap_or(if folder { 64 } else { 28 });
        if ![28, 32, 64].contains(&image_size) {
            return Err(Error::usage(format!(
                "--image-size {image_size}: expected 28, 32 or 64"
            )));
        }
        if !(self.channels == 1 || self.channels == 3) {
            return Err(Error::usage(format!(
                "--channels {}: expected 1 or 3",
                self.channels
            )));
        }
        let seed = new.seed;
        let data = DataOptions {
            data_dir: self.data_dir.clone(),
            val_fraction: 0.0,
            seed,
            subset: self.subset,
            image_size: image_size as u32,
            channels: self.channels,
            download: true,
        };
        let weights_mode = self.mode == Mode::Weights;
        let population = self.population.unwrap_or(if weights_mode { 50 } else { 8 });
        let d_population = self.d_population.unwrap_or(population);
        if population == 0 || d_population == 0 {
            return Err(Error::usage(
                "--population and --d-population must be at least 1",
            ));
        }
        let evolution = !self.no_evolution;
        if evolution && population < 2 && (weights_mode || d_population < 2) {
            return Err(Error::usage(format!(
                "--population {population}: evolution needs at least 2 individuals; add --no-evolution for the gradient-only baseline"
            )));
        }
        if self.evolve_lr.is_some() && (weights_mode || self.no_evolution) {
            return Err(Error::usage(
                "--evolve-lr: only for the dcgan mode with evolution (learning rates evolve with the individuals)",
            ));
        }
        if self.stroke_mutation > 0 {
            if !weights_mode {
                return Err(Error::usage(
                    "--stroke-mutation: only for the weights mode (it mutates an MLP generator's output weights)",
                ));
            }
            if !(self.stroke_sigma.is_finite() && self.stroke_sigma > 0.0) {
                return Err(Error::usage(format!(
                    "--stroke-sigma {}: must be a positive number",
                    self.stroke_sigma
                )));
            }
            if !(self.stroke_width.is_finite() && (0.1..=10.0).contains(&self.stroke_width)) {
                return Err(Error::usage(format!(
                    "--stroke-width {}: must be between 0.1 and 10 pixels",
                    self.stroke_width
                )));
            }
        }
        if self.hidden_activation != weights::HiddenActivation::Sigmoid && !weights_mode {
            return Err(Error::usage(
                "--hidden-activation: only for the weights mode (the MLP generators)",
            ));
        }
        if let Some(t) = self.softmax_temperature {
            if self.hidden_activation != weights::HiddenActivation::Softmax {
                return Err(Error::usage(
                    "--softmax-temperature: only with --hidden-activation softmax",
                ));
            }
            if !(t.is_finite() && (1e-3..=100.0).contains(&t)) {
                return Err(Error::usage(format!(
                    "--softmax-temperature {t}: must be between 0.001 and 100"
                )));
            }
        }
        if weights_mode && self.no_evolution {
            return Err(Error::usage(
                "--no-evolution: in weights mode nothing else trains the generators",
            ));
        }
        let eval_batch = self
            .eval_batch
            .unwrap_or(if weights_mode { 16 } else { 32 });
        for (name, v) in [
            ("--batch-size", self.batch_size),
            ("--eval-batch", eval_batch),
        ] {
            if v < 2 {
                return Err(Error::usage(format!("{name} {v}: must be at least 2")));
            }
        }
        if let Some(r) = self.real_batch {
            if r < 2 || (self.minibatch_std && r % eval_batch != 0) {
                return Err(Error::usage(format!(
                    "--real-batch {r}: must be at least 2{}",
                    if self.minibatch_std {
                        format!(
                            " and a multiple of --eval-batch {eval_batch} (with --minibatch-std)"
                        )
                    } else {
                        String::new()
                    }
                )));
            }
        }
        if self.fid_samples < 10 {
            return Err(Error::usage(format!(
                "--fid-samples {}: must be at least 10",
                self.fid_samples
            )));
        }
        let crossover_name = self.crossover.clone().unwrap_or_else(|| {
            if weights_mode {
                "single-point"
            } else {
                // measured: crossing networks that were trained apart breaks them (README)
                "none"
            }
            .into()
        });
        let per_tensor = matches!(
            crossover_name
                .trim()
                .to_ascii_lowercase()
                .replace('_', "-")
                .as_str(),
            "per-tensor" | "tensor"
        );
        if per_tensor && weights_mode {
            return Err(Error::usage("--crossover per-tensor is for the dcgan mode"));
        }
        let crossover = if per_tensor {
            Crossover::Uniform
        } else {
            Crossover::parse(&crossover_name)?
        };
        let mut ops = FlatOps {
            crossover,
            crossover_prob: self.crossover_prob,
            mutation: if weights_mode {
                // replacement keeps the weights' distribution where Gaussian steps random-walk
                // away from it (measured: README)
                Mutation::Replace {
                    genes: GeneCount::Probability(0.01),
                    low: -0.1,
                    high: 0.1,
                }
            } else {
                Mutation::Gaussian {
                    genes: GeneCount::Probability(0.05),
                    sigma: 0.001,
                    low: -10.0,
                    high: 10.0,
                }
            },
            mutation_prob: 1.0,
        };
        self.mutation.apply(&mut ops)?;
        ops.validate()?;
        let elitism = self.elitism.or(if weights_mode { None } else { Some(1) });
        let ga = if evolution && population >= 2 {
            Some(ga_config(population, self.keep_fraction, elitism)?)
        } else {
            None
        };
        let d_ga = if evolution && !weights_mode && d_population >= 2 {
            Some(ga_config(d_population, self.keep_fraction, elitism)?)
        } else {
            None
        };
        let hidden: Vec<i64> = self
            .hidden
            .split(',')
            .filter(|s| !s.trim().is_empty())
            .map(|s| s.trim().parse::<i64>().ok().filter(|&v| v > 0))
            .collect::<Option<_>>()
            .ok_or_else(|| {
                Error::usage(format!(
                    "--hidden {}: expected sizes like 100 or 256,128",
                    self.hidden
                ))
            })?;
        let width = self.width.unwrap_or(if image_size == 64 { 64 } else { 32 });
        if width < 1 {
            return Err(Error::usage(format!("--width {width}: must be positive")));
        }
        let mut stop = self.stop_given();
        if stop.is_empty() {
            stop.epochs = Some(5);
        }
        stop.validate()?;
        Ok(GanConfig {
            mode: self.mode,
            dataset,
            data,
            image_size,
            population,
            evolution,
            ga,
            d_ops: ops.clone(),
            ops,
            d_ga,
            per_tensor_crossover: per_tensor,
            weights: weights_mode.then(|| weights::WeightsConfig {
                latent_dim: self.latent_dim.unwrap_or(100),
                hidden,
                fitness: self.fitness,
                d_steps: self.d_steps,
                d_every: self.d_every,
                d_warmup: self.d_warmup,
                g_init: self.g_init,
                real_batch: self.real_batch.unwrap_or(0),
                strokes: weights::StrokeMutation {
                    count: self.stroke_mutation,
                    sigma: self.stroke_sigma,
                    width: self.stroke_width,
                },
                d_channels: 64,
                minibatch_std: self.minibatch_std,
                hidden_activation: self.hidden_activation,
                softmax_temperature: self.softmax_temperature.unwrap_or(0.5),
            }),
            dcgan: (!weights_mode).then(|| dcgan::DcganConfig {
                latent_dim: self.latent_dim.unwrap_or(128),
                width,
                grad_steps: self.grad_steps,
                d_population,
                evolve_lr: self.evolve_lr.is_some(),
                fixed_d_lr: self.evolve_lr == Some(LrEvolution::Generators),
            }),
            batch_size: self.batch_size,
            eval_batch,
            lr: self.lr,
            beta1: self.beta1,
            stop,
            fid_model: self.fid_model.clone(),
            fid_samples: self.fid_samples,
            fid_every: self.fid_every,
            device: new.device_name.clone(),
            seed,
        })
    }
}

/// What `checkpoint.json` holds besides the tensors in `checkpoint.pt`.
#[derive(Clone, Debug, Serialize, Deserialize)]
struct LoopState {
    generation: u64,
    epoch: u64,
    train_s: f64,
    rng: GaRng,
    best_fid: Option<f64>,
    /// CPU seconds of the process since the run began (all threads, evaluation included):
    /// a clock that other jobs on a shared machine do not stretch.
    #[serde(default)]
    cpu_s: f64,
    /// CPU seconds spent in generations (the cpu budget clock).
    #[serde(default)]
    train_cpu_s: f64,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct GanSummary {
    pub run_dir: PathBuf,
    pub mode: Mode,
    pub device: String,
    pub seed: u64,
    pub generations: u64,
    pub epochs: u64,
    /// Training seconds (the time budget's clock).
    pub train_s: f64,
    /// Wall seconds of this invocation, evaluation included.
    pub wall_s: f64,
    /// CPU seconds of the process over the run (all invocations, evaluation included).
    pub cpu_s: f64,
    /// CPU seconds in training (the cpu budget clock).
    pub train_cpu_s: f64,
    pub final_fid: f64,
    pub best_fid: f64,
    pub fid_extractor: PathBuf,
    pub fid_samples: i64,
    pub generator: PathBuf,
    pub stop_reason: crate::run::StopReason,
}

/// Training images `[N, C, S, S]` in the generator's output range.
fn real_images(x: &Tensor, from: (f32, f32), to: (f32, f32), size: i64) -> Tensor {
    let mut x = x.to_kind(Kind::Float);
    if x.size()[2] != size || x.size()[3] != size {
        x = x.upsample_bilinear2d([size, size], false, None, None);
    }
    let x = (x - from.0 as f64) * ((to.1 - to.0) as f64 / (from.1 - from.0) as f64) + to.0 as f64;
    x.clamp(to.0 as f64, to.1 as f64)
}

fn build_model(cfg: &GanConfig, shape: [i64; 3], device: Device) -> Result<Box<dyn GanModel>> {
    let evolver = |ga: &Option<Breeding>, ops: &FlatOps, ranges: Option<Vec<(usize, usize)>>| {
        ga.clone().map(|ga| Evolver {
            ga,
            ops: ops.clone(),
            tensor_ranges: ranges,
        })
    };
    Ok(match cfg.mode {
        Mode::Weights => {
            let w = cfg
                .weights
                .clone()
                .ok_or_else(|| Error::Other("config: no weights section".into()))?;
            Box::new(weights::WeightsModel::new(
                w,
                shape,
                cfg.population as i64,
                evolver(&cfg.ga, &cfg.ops, None),
                cfg.batch_size,
                cfg.eval_batch,
                cfg.lr,
                cfg.beta1,
                device,
            ))
        }
        Mode::Dcgan => {
            let d = cfg
                .dcgan
                .clone()
                .ok_or_else(|| Error::Other("config: no dcgan section".into()))?;
            let [c, h, _] = shape;
            let gl = dcgan::layout(&dcgan::generator_specs(h, c, d.width, d.latent_dim)?, true);
            let dl = dcgan::layout(&dcgan::discriminator_specs(h, c, d.width)?, false);
            let pt = cfg.per_tensor_crossover;
            Box::new(dcgan::DcganModel::new(
                d,
                shape,
                cfg.population as i64,
                (
                    evolver(&cfg.ga, &cfg.ops, pt.then(|| gl.ranges())),
                    evolver(&cfg.d_ga, &cfg.d_ops, pt.then(|| dl.ranges())),
                ),
                cfg.batch_size,
                cfg.eval_batch,
                cfg.lr,
                cfg.beta1,
                device,
            )?)
        }
    })
}

fn save_checkpoint(
    dir: &crate::run::RunDir,
    model: &dyn GanModel,
    fixed: &[(&str, &Tensor)],
    state: &LoopState,
) -> Result<()> {
    let mut named = model.tensors();
    for (n, t) in fixed {
        named.push((n.to_string(), t.shallow_clone()));
    }
    let cpu: Vec<(String, Tensor)> = named
        .into_iter()
        .map(|(n, t)| (n, t.to_device(Device::Cpu)))
        .collect();
    fsutil::replace_atomic(&dir.file(dir::TENSORS), |tmp| {
        Tensor::save_multi(&cpu, tmp).map_err(Error::from)
    })?;
    fsutil::write_json_atomic(&dir.file(dir::STATE), state)
}

fn epoch_series(records: &[Value], key: &str) -> Series {
    Series {
        name: key.into(),
        points: records
            .iter()
            .filter(|r| r["kind"] == "epoch")
            .filter_map(|r| Some((r["epoch"].as_f64()?, r[key].as_f64()?)))
            .collect(),
    }
}

fn write_plots(dir: &Path, records: &[Value]) -> Result<()> {
    let title = |s: &str| format!("gan: {s} per epoch (population means)");
    line_plot(
        &dir.join("scores.png"),
        &title("D(x) and D(G(z))"),
        "epoch",
        &[Panel {
            y_label: "score".into(),
            series: vec![
                epoch_series(records, "real_score"),
                epoch_series(records, "fake_score"),
            ],
        }],
    )?;
    line_plot(
        &dir.join("losses.png"),
        &title("losses"),
        "epoch",
        &[Panel {
            y_label: "BCE".into(),
            series: vec![
                epoch_series(records, "loss_d"),
                epoch_series(records, "loss_g"),
            ],
        }],
    )?;
    line_plot(
        &dir.join("fid.png"),
        "gan: FID of the best generator",
        "training seconds",
        &[Panel {
            y_label: "FID".into(),
            series: vec![Series {
                name: "fid".into(),
                points: records
                    .iter()
                    .filter(|r| r["kind"] == "epoch" || r.get("fid").is_some())
                    .filter_map(|r| Some((r["train_s"].as_f64()?, r["fid"].as_f64()?)))
                    .collect(),
            }],
        }],
    )
}

pub fn run_gan(args: &GanArgs) -> Result<GanSummary> {
    let wall = std::time::Instant::now();
    let mut loaded = None;
    let run = crate::run::open(
        &args.run,
        |new| {
            // a missing extractor is a mistake to report before the run directory is made
            let extractor = FeatureExtractor::load(&args.fid_model, new.device)
                .map_err(|e| fid::for_flag(e, &args.fid_model))?;
            let cfg = args.to_config(new)?;
            loaded = Some(extractor);
            Ok(cfg)
        },
        |cfg| args.apply_on_resume(cfg),
    )?;
    let (cfg, device, resumed) = (&run.cfg, run.device, run.resumed);
    let rd = &run.dir;
    let dir = rd.path().to_path_buf();
    let extractor = match loaded {
        Some(e) => e,
        None => FeatureExtractor::load(&cfg.fid_model, device)
            .map_err(|e| fid::for_flag(e, &cfg.fid_model))?,
    };
    run.streams.init_libtorch();
    let data = load_dataset(&cfg.dataset, &cfg.data, device)?;
    let size = cfg.image_size;
    let c = data.shape[0];
    let shape = [c, size, size];
    let mut model = build_model(cfg, shape, device)?;
    let range = model.output_range();
    let real = real_images(&data.train_and_val().x, data.value_range, range, size);
    drop(data);
    let n_real = real.size()[0];
    if n_real < cfg.batch_size.max(cfg.eval_batch) {
        return Err(Error::usage(format!(
            "{n_real} training images: fewer than one batch (--batch-size {}, --eval-batch {})",
            cfg.batch_size, cfg.eval_batch
        )));
    }
    let mut rng = run.streams.ga();
    // the real side of the FID: a seeded subset of the training images, fixed for the run
    let real_stats = {
        let mut idx: Vec<i64> = (0..n_real).collect();
        idx.shuffle(&mut run.streams.fid_samples());
        idx.truncate(cfg.fid_samples.min(n_real) as usize);
        let sel = real.index_select(0, &Tensor::from_slice(&idx).to_device(device));
        fid::stats(&extractor, &sel, range)?
    };
    let latent = model.latent_shape()[0];
    let mut z_grid = Tensor::randn([64, latent], (Kind::Float, device));
    let mut z_fid = Tensor::randn([cfg.fid_samples, latent], (Kind::Float, device));
    let mut state = LoopState {
        generation: 0,
        epoch: 0,
        train_s: 0.0,
        rng: rng.clone(),
        best_fid: None,
        cpu_s: 0.0,
        train_cpu_s: 0.0,
    };
    if resumed {
        let state_file = rd.file(dir::STATE);
        if !state_file.is_file() {
            return Err(Error::usage(format!(
                "--resume {}: no {} there yet (the run stopped before its first checkpoint)",
                dir.display(),
                dir::STATE
            )));
        }
        state = fsutil::read_json(&state_file)?;
        let named = Tensor::load_multi(rd.file(dir::TENSORS))?;
        let map: HashMap<String, Tensor> = named.into_iter().collect();
        model.load_tensors(&map)?;
        z_grid = take(&map, "z_grid", &z_grid.size())?.to_device(device);
        z_fid = take(&map, "z_fid", &z_fid.size())?.to_device(device);
        rng = state.rng.clone();
        run.streams.resume_libtorch(state.generation);
    }
    // records after the checkpoint are dropped; the run redoes those generations
    let covered = state.generation;
    let (mut log, kept) = Log::open(&rd.log(), |r| {
        resumed && generation_of(r).is_some_and(|g| g <= covered)
    })?;
    let mut records: Vec<Value> = kept;
    let mut stream = RealStream::new(real, state.epoch, &mut rng);
    let quiet = run.quiet;
    if !quiet {
        eprintln!(
            "gan: {:?} mode, {} {}x{}x{} ({} images), population {}{}, {}, seed {}; FID on {} ({} samples)",
            cfg.mode,
            cfg.dataset.label(),
            c,
            size,
            size,
            n_real,
            cfg.population,
            if cfg.evolution { "" } else { " (no evolution)" },
            device_name(device),
            cfg.seed,
            extractor.features_file.display(),
            cfg.fid_samples
        );
    }
    let bar = crate::run::progress::bar(quiet, cfg.stop.generations, "gen");
    bar.set_position(state.generation);
    let fid_of = |model: &dyn GanModel| -> Result<f64> {
        let mut imgs = Vec::new();
        let n = z_fid.size()[0];
        let mut i = 0;
        while i < n {
            let len = 250.min(n - i);
            imgs.push(model.sample_best(&z_fid.narrow(0, i, len))?);
            i += len;
        }
        let s = fid::stats(&extractor, &Tensor::cat(&imgs, 0), range)?;
        Ok(fid::frechet_distance(&real_stats, &s))
    };
    let mut emit = |records: &mut Vec<Value>, r: Value| -> Result<()> {
        log.append(&r)?;
        records.push(r);
        Ok(())
    };
    let cpu0 = process_cpu_s();
    let cpu_before = state.cpu_s;
    let wall_before = state.train_s;
    let stop = cfg.stop.clone();
    let mut acc: Vec<[f64; 4]> = Vec::new();
    let fixed_names = ["z_grid", "z_fid"];
    if records.is_empty() {
        model.prepare(&mut stream, &mut rng)?;
        // the starting point of the FID curve
        let f = fid_of(model.as_ref())?;
        emit(
            &mut records,
            json!({"kind": "init", "generation": 0, "epoch": 0, "elapsed_s": 0.0, "cpu_s": 0.0,
                   "train_s": 0.0, "fid": f}),
        )?;
    }
    let mut pending: Option<Value> = None;
    let stopped_by = loop {
        let position = Position {
            generation: state.generation,
            epoch: state.epoch,
            best_fitness: None,
            best_generation: 0,
            budget_s: match stop.budget_clock {
                BudgetClock::Wall => state.train_s,
                BudgetClock::Cpu => state.train_cpu_s,
            },
        };
        if let Some(reason) = stop.reason(&position) {
            break reason;
        }
        let t0 = std::time::Instant::now();
        let c0 = process_cpu_s();
        let s = model.generation(&mut stream, &mut rng, state.generation)?;
        state.train_s += t0.elapsed().as_secs_f64();
        state.train_cpu_s += (process_cpu_s() - c0).max(0.0);
        state.generation += 1;
        state.cpu_s = cpu_before + (process_cpu_s() - cpu0).max(0.0);
        let g = state.generation;
        let elapsed = wall_before + wall.elapsed().as_secs_f64();
        acc.push([s.real_score, s.fake_score, s.loss_d, s.loss_g]);
        let mut rec = json!({
            "kind": "generation",
            "generation": g,
            "epoch": stream.epochs,
            "elapsed_s": elapsed,
            "cpu_s": state.cpu_s,
            "train_s": state.train_s,
            "train_cpu_s": state.train_cpu_s,
            "real_score": s.real_score,
            "fake_score": s.fake_score,
            "loss_d": s.loss_d,
            "loss_g": s.loss_g,
            "best_fitness": s.best_fitness,
            "mean_fitness": s.mean_fitness,
            "fitness_std": s.fitness_std,
        });
        for (k, v) in &s.extra {
            rec[k] = v.clone();
        }
        let epoch_end = stream.epochs > state.epoch;
        let mut fid_now = None;
        if epoch_end || (cfg.fid_every > 0 && g % cfg.fid_every == 0) {
            let f = fid_of(model.as_ref())?;
            rec["fid"] = json!(f);
            state.best_fid = Some(state.best_fid.map_or(f, |b: f64| b.min(f)));
            fid_now = Some(f);
        }
        bar.set_message(format!(
            "epoch {} train {:.0}s D(x) {:.3} D(G(z)) {:.3} best fitness {:.4}{}",
            stream.epochs,
            state.train_s,
            s.real_score,
            s.fake_score,
            s.best_fitness,
            state
                .best_fid
                .map(|f| format!(" FID {f:.2}"))
                .unwrap_or_default()
        ));
        bar.set_position(g);
        // a generation's record is written once the next one starts (or the run ends), so
        // that the final FID can join the last generation's record
        if let Some(prev) = pending.take() {
            emit(&mut records, prev)?;
        }
        if epoch_end {
            emit(&mut records, rec)?;
            state.epoch = stream.epochs;
            let k = acc.len() as f64;
            let mean = |j: usize| acc.iter().map(|a| a[j]).sum::<f64>() / k;
            emit(
                &mut records,
                json!({
                    "kind": "epoch",
                    "epoch": state.epoch,
                    "generation": g,
                    "elapsed_s": elapsed,
                    "cpu_s": state.cpu_s,
                    "train_s": state.train_s,
                    "train_cpu_s": state.train_cpu_s,
                    "real_score": mean(0),
                    "fake_score": mean(1),
                    "loss_d": mean(2),
                    "loss_g": mean(3),
                    "fid": fid_now,
                }),
            )?;
            acc.clear();
            let grid = grid_image(&model.sample_best(&z_grid)?, range, 8)?;
            fsutil::save_image_atomic(
                &rd.sub(dir::SAMPLES, &format!("epoch-{:04}.png", state.epoch)),
                &grid,
            )?;
            write_plots(&dir, &records)?;
            state.rng = rng.clone();
            save_checkpoint(
                rd,
                model.as_ref(),
                &[(fixed_names[0], &z_grid), (fixed_names[1], &z_fid)],
                &state,
            )?;
        } else {
            pending = Some(rec);
        }
    };
    bar.finish_and_clear();
    // final evaluation, outputs and checkpoint
    let last_fid = pending
        .as_ref()
        .or(records.last())
        .and_then(|r| r["fid"].as_f64());
    let final_fid = match last_fid {
        Some(f) => f,
        None => {
            let f = fid_of(model.as_ref())?;
            state.best_fid = Some(state.best_fid.map_or(f, |b: f64| b.min(f)));
            match pending.as_mut() {
                Some(p) => p["fid"] = json!(f),
                None => {
                    // resumed at the end: the covered records are complete, the FID is new
                    let mut r = json!({"kind": "final", "generation": state.generation,
                        "epoch": state.epoch, "elapsed_s": state.train_s, "cpu_s": state.cpu_s,
                        "train_s": state.train_s, "fid": f});
                    r["train_cpu_s"] = json!(state.train_cpu_s);
                    pending = Some(r);
                }
            }
            f
        }
    };
    if let Some(p) = pending.take() {
        emit(&mut records, p)?;
    }
    fsutil::save_image_atomic(
        &rd.sub(dir::SAMPLES, "final.png"),
        &grid_image(&model.sample_best(&z_grid)?, range, 8)?,
    )?;
    write_plots(&dir, &records)?;
    let gen_path = rd.file("best-generator.pt");
    model.export_best(&gen_path)?;
    fsutil::write_json_atomic(
        &gen_path.with_extension("json"),
        &GeneratorInfo {
            latent_dim: latent,
            latent_shape: model.latent_shape(),
            output_shape: shape,
            output_range: range,
        },
    )?;
    state.rng = rng.clone();
    save_checkpoint(
        rd,
        model.as_ref(),
        &[(fixed_names[0], &z_grid), (fixed_names[1], &z_fid)],
        &state,
    )?;
    let summary = GanSummary {
        run_dir: dir.clone(),
        mode: cfg.mode,
        device: device_name(device),
        seed: cfg.seed,
        generations: state.generation,
        epochs: state.epoch,
        train_s: state.train_s,
        wall_s: wall.elapsed().as_secs_f64(),
        cpu_s: state.cpu_s,
        train_cpu_s: state.train_cpu_s,
        final_fid,
        best_fid: state.best_fid.unwrap_or(final_fid),
        fid_extractor: extractor.features_file.clone(),
        fid_samples: cfg.fid_samples,
        generator: gen_path,
        stop_reason: stopped_by,
    };
    fsutil::write_json_atomic(&rd.result(), &summary)?;
    Ok(summary)
}

#[cfg(test)]
mod tests {
    use rand::SeedableRng;
    use super::*;

    /// Operators that only cross over (mutation switched off).
    fn crossover_only(crossover: Crossover) -> FlatOps {
        FlatOps {
            crossover,
            crossover_prob: 1.0,
            mutation: Mutation::Gaussian {
                genes: GeneCount::Count(1),
                sigma: 1e-9,
                low: -10.0,
                high: 10.0,
            },
            mutation_prob: 0.0,
        }
    }

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
