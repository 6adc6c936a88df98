//! `neuroevo gan`'s options and `config.json`: the mode, the data, the populations and their
//! GA, the networks, the optimiser, the stop criteria and the FID.
use super::*;
use crate::data::datasets::{DataOptions, DatasetName};
use crate::error::{Error, Result};
use crate::ga::cli::MutationArgs;
use crate::ga::{
    Breeding, Crossover, FlatOps, GeneCount, Mutation, Pairing, Replacement, Selection,
};
use crate::run::{BudgetClock, JobConfig, NewRun, RunArgs, StopCriteria};
use serde::{Deserialize, Serialize};
use std::path::PathBuf;

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

/// What `--epoch-select` does with a child worse than the kept state.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "snake_case")]
pub enum SelectMode {
    /// Training goes back to the kept state (weights and Adam state) and goes on from it.
    Revert,
    /// Training goes on from the child; the kept state is what the run reports and exports
    /// (its epoch-end FID, samples and generator) until a child is no worse.
    Keep,
}

/// Which latents `--epoch-select` scores a round's states on.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "snake_case")]
pub enum SelectLatents {
    /// Fresh latents every round; the kept state is scored again beside the child (two FIDs a
    /// round).
    Fresh,
    /// One seeded set of latents for the whole run; the kept state's score is the one it got
    /// when it was kept, so a round scores the child alone (one FID a round).
    Fixed,
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
    /// dcgan: E-GAN's variation (off by default): at each of the --grad-steps, every generator
    /// makes one child per listed loss (minimax, nonsat, lsgan; comma-separated) by one Adam
    /// step against the discriminators, and the best --population children survive (the
    /// generators are then not bred by the GA).
    #[arg(long, value_enum, value_delimiter = ',')]
    pub g_losses: Vec<egan::GLoss>,
    /// dcgan with --g-losses: E-GAN's fitness is quality (mean D(G(z))) plus this weight times
    /// diversity (-log of the norm of the discriminator's gradient on real images and the
    /// child's fakes). Default 0: quality only.
    #[arg(long)]
    pub diversity_weight: Option<f64>,
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
    #[arg(long, value_parser = crate::ga::cli::gan_crossover_values())]
    pub crossover: Option<String>,
    #[arg(long, default_value_t = 1.0)]
    pub crossover_prob: f64,
    #[command(flatten)]
    pub mutation: MutationArgs,
    /// Latent size (default 100 in weights mode, 128 in dcgan mode).
    #[arg(long)]
    pub latent_dim: Option<i64>,
    /// weights: hidden layer sizes of the generator MLP, comma-separated.
    #[arg(long, default_value = "100", value_delimiter = ',', value_parser = clap::value_parser!(i64).range(1..))]
    pub hidden: Vec<i64>,
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
    /// Run --fid-model without checking what its code does (a TorchScript file is a program;
    /// only tensor operators are allowed otherwise).
    #[arg(long)]
    pub trust_model: bool,
    /// A features model made elsewhere as --fid-model (no .json beside it): what it reads,
    /// C,H,W (e.g. 1,28,28); with --fid-input-range. Its outputs [N, D] are the features.
    #[arg(long)]
    pub fid_input_shape: Option<String>,
    /// With --fid-input-shape: the range of its input values, LO,HI (e.g. 0,1).
    #[arg(long)]
    pub fid_input_range: Option<String>,
    /// Generated (and real) images per FID.
    #[arg(long, default_value_t = 1000)]
    pub fid_samples: i64,
    /// Also compute the FID every this many generations (0: only at epoch ends and the end).
    #[arg(long, default_value_t = 0)]
    pub fid_every: u64,
    /// dcgan, population >= 2: at the end, tune mixture weights over the final generators on
    /// the FID and export best-generator.pt as a sampler of the mixture (mixture.json says
    /// the weights and the FIDs).
    #[arg(long)]
    pub mixture: bool,
    /// dcgan, population >= 2: population-based training on the FID (off by default): every
    /// individual has its own learning rate and beta1 (and a generator its own loss); every N
    /// generations the bottom quarter of the generators by FID (and of the discriminators by
    /// fitness) copy the weights and Adam state of a top-quarter one and perturb those. It
    /// replaces the GA's breeding.
    #[arg(long)]
    pub pbt_every: Option<u64>,
    /// With --pbt-every or --epoch-select: generated images per generator in each selection
    /// FID (default 256).
    #[arg(long)]
    pub pbt_fid_samples: Option<i64>,
    /// With --pbt-every: successive halving instead of exploit and explore. The population is
    /// P independent generator-discriminator pairs; every N generations the better half of the
    /// pairs by FID stays and the rest are dropped, until one pair trains alone.
    #[arg(long)]
    pub halving: bool,
    /// (1+1) selection over time (off by default): at every epoch end the run's state (weights
    /// and Adam state) is scored on a selection FID and kept when no worse than the kept state.
    /// A worse one: `revert` (the default) goes back to the kept state; `keep` trains on from
    /// it and reports and exports the kept state. Works with population 1.
    #[arg(long, value_enum, num_args = 0..=1, default_missing_value = "revert")]
    pub epoch_select: Option<SelectMode>,
    /// With --epoch-select: `fresh` latents every round (the default; the kept state is scored
    /// again beside the child) or one `fixed` set for the run (the child alone is scored, half
    /// the selection's cost).
    #[arg(long, value_enum)]
    pub select_latents: Option<SelectLatents>,
    /// With --epoch-select keep and --population 1: at every round after the first, the
    /// average of the kept state's and the child's weights (both networks) is a second
    /// candidate for the kept state, taken where it beats the child on the selection FID (one
    /// FID more a round). Training goes on from the child as without it.
    #[arg(long)]
    pub select_crossover: bool,
    #[command(flatten)]
    pub run: RunArgs,
}

/// The networks of a run, per mode.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(tag = "mode", rename_all = "snake_case")]
pub enum ModelConfig {
    Weights(weights::WeightsConfig),
    Dcgan(dcgan::DcganConfig),
}

impl ModelConfig {
    pub fn mode(&self) -> Mode {
        match self {
            ModelConfig::Weights(_) => Mode::Weights,
            ModelConfig::Dcgan(_) => Mode::Dcgan,
        }
    }
}

/// `config.json` of a gan run.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct GanConfig {
    /// The mode and its networks.
    pub model: ModelConfig,
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
    pub batch_size: i64,
    pub eval_batch: i64,
    pub lr: f64,
    pub beta1: f64,
    pub stop: StopCriteria,
    pub fid_model: PathBuf,
    /// What a features model made elsewhere reads (`--fid-input-shape`, `--fid-input-range`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fid_input: Option<crate::nn::load::InputSpec>,
    pub fid_samples: i64,
    pub fid_every: u64,
    /// `--mixture`: the exported generator samples from a tuned mixture of the population.
    #[serde(default)]
    pub mixture: bool,
    /// `--epoch-select`: the generated images of each selection FID (None: off).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub epoch_select: Option<i64>,
    /// `--epoch-select`'s mode (None: off).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub epoch_select_mode: Option<SelectMode>,
    /// `--select-latents` (None: fresh, as runs before it).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub epoch_select_latents: Option<SelectLatents>,
    /// `--select-crossover`.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub epoch_select_crossover: bool,
    pub device: String,
    pub seed: u64,
}

pub(crate) fn ga_config(p: usize, keep_fraction: f64, elitism: Option<usize>) -> Result<Breeding> {
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
        "--trust-model",
    ];
    fn device(&self) -> &str {
        &self.device
    }
    fn seed(&self) -> u64 {
        self.seed
    }
    /// Runs made before the mode's settings were one section: `"mode"` beside optional
    /// `"weights"` and `"dcgan"` sections.
    fn upgrade(v: &mut serde_json::Value) {
        let Some(m) = v.as_object_mut() else { return };
        if m.contains_key("model") {
            return;
        }
        let (Some(mode), weights, dcgan) =
            (m.remove("mode"), m.remove("weights"), m.remove("dcgan"))
        else {
            return;
        };
        let section = if mode == "weights" { weights } else { dcgan };
        if let Some(serde_json::Value::Object(mut section)) = section {
            section.insert("mode".into(), mode);
            m.insert("model".into(), section.into());
        }
    }
}

impl GanArgs {
    /// What a features model made elsewhere reads, from the flags.
    pub(crate) fn fid_input(&self) -> Result<Option<crate::nn::load::InputSpec>> {
        crate::nn::load::InputSpec::from_flags(
            self.fid_input_shape.as_deref(),
            self.fid_input_range.as_deref(),
            None,
        )
        .map_err(|e| match e {
            Error::Usage(m) => Error::Usage(m.replace("--input", "--fid-input")),
            other => other,
        })
    }

    /// The stop criteria typed on the command line.
    pub(crate) fn stop_given(&self) -> StopCriteria {
        StopCriteria {
            generations: self.generations,
            epochs: self.epochs,
            time_budget_s: self.time_budget,
            budget_clock: self.budget_clock.unwrap_or_default(),
            ..Default::default()
        }
    }

    /// Stop criteria and cadences given with `--resume` extend the run.
    pub(crate) fn apply_on_resume(&self, cfg: &mut GanConfig) -> Result<()> {
        let given = self.stop_given();
        given.validate()?;
        cfg.stop.extend_with(&given, self.budget_clock.is_some());
        if self.run.was_given("--fid-every") {
            cfg.fid_every = self.fid_every;
        }
        Ok(())
    }

    /// The optimiser's rates.
    fn check_rates(&self) -> Result<()> {
        if !(self.lr.is_finite() && self.lr > 0.0 && self.lr <= 1.0) {
            return Err(Error::usage(format!(
                "--lr {}: an Adam learning rate must be a number in (0, 1] (GANs train at about 2e-4)",
                self.lr
            )));
        }
        if !(self.beta1.is_finite() && (0.0..1.0).contains(&self.beta1)) {
            return Err(Error::usage(format!(
                "--beta1 {}: must be in [0, 1)",
                self.beta1
            )));
        }
        Ok(())
    }

    /// The evaluation batch (checked with the other batch sizes and the FID's samples).
    fn eval_batch_checked(&self, weights_mode: bool) -> Result<i64> {
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
        Ok(eval_batch)
    }

    /// The GA operators of the generators, and whether crossover is per tensor.
    fn flat_ops(&self, weights_mode: bool) -> Result<(FlatOps, bool)> {
        let crossover_name = self.crossover.clone().unwrap_or_else(|| {
            if weights_mode {
                "single-point"
            } else {
                // measured: crossing networks that were trained apart breaks them (docs/results/gan.md)
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
                // away from it (measured: docs/results/gan.md)
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
        Ok((ops, per_tensor))
    }

    /// The networks of the mode.
    fn model_config(&self, weights_mode: bool, width: i64, d_population: usize) -> ModelConfig {
        if weights_mode {
            ModelConfig::Weights(weights::WeightsConfig {
                latent_dim: self.latent_dim.unwrap_or(100),
                hidden: self.hidden.clone(),
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
            })
        } else {
            ModelConfig::Dcgan(dcgan::DcganConfig {
                latent_dim: self.latent_dim.unwrap_or(128),
                width,
                grad_steps: self.grad_steps,
                d_population,
                evolve_lr: self.evolve_lr.is_some(),
                fixed_d_lr: self.evolve_lr == Some(LrEvolution::Generators),
                g_losses: self.g_losses.clone(),
                diversity_weight: self.diversity_weight.unwrap_or(0.0),
                pbt: None,
            })
        }
    }

    pub fn to_config(&self, new: &NewRun) -> Result<GanConfig> {
        let dataset = DatasetName::parse(&self.dataset)?.stored();
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
        self.check_rates()?;
        let seed = new.seed;
        let data = DataOptions {
            data_dir: self.data_dir.as_deref().map(crate::fsutil::stored_path),
            val_fraction: 0.0,
            seed: crate::rng::Streams::new(seed),
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
        let pbt = self.pbt_config(weights_mode, population, d_population)?;
        let epoch_select = self.epoch_select_config(weights_mode)?;
        // E-GAN's selection works on one parent's children too (its own setting), and so
        // does --epoch-select's over time
        let egan = !weights_mode && !self.g_losses.is_empty();
        if evolution
            && population < 2
            && (weights_mode || d_population < 2)
            && !egan
            && epoch_select.is_none()
        {
            return Err(Error::usage(format!(
                "--population {population}: evolution needs at least 2 individuals; add --no-evolution for the gradient-only baseline"
            )));
        }
        self.check_mode_flags(weights_mode)?;
        self.check_mixture(weights_mode, population)?;
        self.check_crossover(population, d_population)?;
        let eval_batch = self.eval_batch_checked(weights_mode)?;
        let (ops, per_tensor) = self.flat_ops(weights_mode)?;
        let elitism = self.elitism.or(if weights_mode { None } else { Some(1) });
        // E-GAN's generators are selected among their children, not bred; PBT breeds neither
        let ga = if evolution && population >= 2 && !egan && pbt.is_none() {
            Some(ga_config(population, self.keep_fraction, elitism)?)
        } else {
            None
        };
        let d_ga = if evolution && !weights_mode && d_population >= 2 && pbt.is_none() {
            Some(ga_config(d_population, self.keep_fraction, elitism)?)
        } else {
            None
        };
        let width = self.width.unwrap_or(if image_size == 64 { 64 } else { 32 });
        if width < 1 {
            return Err(Error::usage(format!("--width {width}: must be positive")));
        }
        if let Some(l) = self.latent_dim.filter(|&l| l < 1) {
            return Err(Error::usage(format!(
                "--latent-dim {l}: must be at least 1"
            )));
        }
        let mut stop = self.stop_given();
        if stop.is_empty() {
            stop.epochs = Some(5);
        }
        stop.validate()?;
        let mut model = self.model_config(weights_mode, width, d_population);
        if let ModelConfig::Dcgan(m) = &mut model {
            m.pbt = pbt;
        }
        Ok(GanConfig {
            model,
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
            batch_size: self.batch_size,
            eval_batch,
            lr: self.lr,
            beta1: self.beta1,
            stop,
            fid_model: crate::fsutil::stored_path(&self.fid_model),
            fid_input: self.fid_input()?,
            fid_samples: self.fid_samples,
            fid_every: self.fid_every,
            mixture: self.mixture,
            epoch_select,
            epoch_select_mode: epoch_select.and(self.epoch_select),
            epoch_select_latents: epoch_select.and(self.select_latents),
            epoch_select_crossover: self.select_crossover,
            device: new.device_name.clone(),
            seed,
        })
    }
}
