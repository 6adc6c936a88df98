//! The flags of `neuroevo fool` and the `config.json` they become: the classes, the genome
//! space, the GA's breeding and stop criteria, and the models' paths kept resolved.
use crate::error::{Error, Result};
use crate::ga::cli::MutationArgs;
use crate::ga::{
    Breeding, Crossover, FlatOps, GeneCount, Mutation, Pairing, Replacement, Selection,
};
use crate::nn::load::{Classifier, InputSpec};
use crate::run::engine::GaConfig;
use crate::run::{JobConfig, NewRun, RunArgs, StopCriteria};
use serde::{Deserialize, Serialize};
use std::path::PathBuf;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "snake_case")]
pub enum Space {
    /// The image's pixels.
    Pixels,
    /// The latent vector of a generator (--generator).
    Latent,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "snake_case")]
pub enum Init {
    /// Uniform random values (pixels in [0, 1]; latents N(0, 1)).
    Uniform,
    /// All black (pixels) or all zero (latents).
    Black,
    /// Gray 0.5 plus N(0, 0.1²) noise (pixels); N(0, 0.1²) (latents).
    Noise,
}

/// Options of `neuroevo fool`.
#[derive(Clone, Debug, clap::Args)]
pub struct FoolArgs {
    /// A classifier made elsewhere (no .json beside it): what it reads, C,H,W (e.g. 1,28,28);
    /// with --input-range. Also used for a judge that has no .json.
    #[arg(long)]
    pub input_shape: Option<String>,
    /// With --input-shape: the range of its input values, LO,HI (e.g. 0,1 or -1,1).
    #[arg(long)]
    pub input_range: Option<String>,
    /// With --input-shape: the class names, comma-separated (default: 0..K-1, K counted with
    /// one forward pass).
    #[arg(long)]
    pub classes: Option<String>,
    /// Run the models (--classifier, --judge, --generator) without checking what their code
    /// does: a TorchScript file is a program, and only tensor operators are allowed otherwise.
    #[arg(long)]
    pub trust_model: bool,
    /// The classifier to fool (TorchScript with its .json beside it).
    #[arg(long, default_value = "models/mnist-cnn.pt")]
    pub classifier: PathBuf,
    /// An independent classifier that scores the final images (default models/mnist-judge.pt
    /// when present; "none" to skip).
    #[arg(long)]
    pub judge: Option<String>,
    /// Evolve images for this class only (default: every class).
    #[arg(long, conflicts_with = "all_classes")]
    pub class: Option<i64>,
    /// One population per class (the default).
    #[arg(long)]
    pub all_classes: bool,
    /// What the genes are: pixels, or the latent vector of --generator.
    #[arg(long, value_enum, default_value = "pixels")]
    pub space: Space,
    /// A TorchScript generator z -> image (with its .json), for --space latent.
    #[arg(long)]
    pub generator: Option<PathBuf>,
    /// Initial genomes [default: black for pixels; uniform for latents, i.e. draws from the
    /// generator's N(0, 1) prior: a zero latent is an atypical input that stalls some classes].
    #[arg(long, value_enum)]
    pub init: Option<Init>,
    /// Black-and-white images: pixels are thresholded at 0.5.
    #[arg(long)]
    pub binary: bool,
    /// Pixel space: one gene per B x B square of pixels (B = 1: one gene per pixel). Blocks of 4
    /// (a 7x7 genome on 28x28 images) reach 99.99% for every MNIST class within 50 generations;
    /// single pixels need several hundred for some (see docs/results/fool.md).
    #[arg(long, default_value_t = 4)]
    pub pixel_block: i64,
    #[arg(long, default_value_t = 48)]
    pub population: usize,
    /// Stop each class after this many generations.
    #[arg(long, default_value_t = 50)]
    pub generations: u64,
    /// Stop a class once its best confidence reaches this (fitness is the log-probability, so
    /// the stop is at ln of this).
    #[arg(long, default_value_t = 0.9999)]
    pub target_confidence: f64,
    /// Tournament size of parent selection.
    #[arg(long, default_value_t = 8)]
    pub tournament: usize,
    /// Individuals kept unchanged each generation.
    #[arg(long, default_value_t = 2)]
    pub elitism: usize,
    /// Crossover: uniform, single-point, two-point, none.
    #[arg(long, default_value = "uniform", value_parser = crate::ga::cli::crossover_values())]
    pub crossover: String,
    #[arg(long, default_value_t = 0.5)]
    pub crossover_prob: f64,
    #[command(flatten)]
    pub mutation: MutationArgs,
    /// Checkpoint every this many generations.
    #[arg(long, default_value_t = 10)]
    pub checkpoint_every: u64,
    #[command(flatten)]
    pub run: RunArgs,
}

/// `config.json` of a fool run.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct FoolConfig {
    pub classifier: PathBuf,
    /// What a classifier (and judge) made elsewhere reads (`--input-shape`, `--input-range`,
    /// `--classes`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub input: Option<InputSpec>,
    pub judge: Option<PathBuf>,
    pub classes: Vec<i64>,
    pub space: Space,
    pub generator: Option<PathBuf>,
    pub init: Init,
    pub binary: bool,
    #[serde(default = "one")]
    pub pixel_block: i64,
    pub ga: GaConfig,
    pub ops: FlatOps,
    pub device: String,
    pub seed: u64,
}

impl JobConfig for FoolConfig {
    const JOB: crate::run::Job = crate::run::Job::Fool;
    const ON_RESUME: &'static [&'static str] = &[
        "--generations",
        "--target-confidence",
        "--checkpoint-every",
        "--trust-model",
    ];
    fn device(&self) -> &str {
        &self.device
    }
    fn seed(&self) -> u64 {
        self.seed
    }
}

impl FoolArgs {
    pub(super) fn target_fitness(&self) -> Result<f64> {
        if !(self.target_confidence > 0.0 && self.target_confidence <= 1.0) {
            return Err(Error::usage(format!(
                "--target-confidence {}: must be in (0, 1]",
                self.target_confidence
            )));
        }
        Ok(self.target_confidence.ln())
    }

    /// Stop criteria and cadences given with `--resume` replace the run's.
    pub(super) fn apply_on_resume(&self, cfg: &mut FoolConfig) -> Result<()> {
        if self.run.was_given("--generations") {
            cfg.ga.stop.generations = Some(self.generations);
        }
        if self.run.was_given("--target-confidence") {
            cfg.ga.stop.target_fitness = Some(self.target_fitness()?);
        }
        if self.run.was_given("--checkpoint-every") {
            cfg.ga.checkpoint_every = self.checkpoint_every;
        }
        Ok(())
    }

    pub(super) fn input_spec(&self) -> Result<Option<InputSpec>> {
        InputSpec::from_flags(
            self.input_shape.as_deref(),
            self.input_range.as_deref(),
            self.classes.as_deref(),
        )
    }

    pub(super) fn to_config(&self, classifier: &Classifier, new: &NewRun) -> Result<FoolConfig> {
        let n_classes = classifier.info.classes.len() as i64;
        let classes = match self.class {
            Some(c) if c < 0 || c >= n_classes => {
                return Err(Error::usage(match n_classes {
                    0 => format!("--class {c}: the classifier has no classes"),
                    1 => format!("--class {c}: the classifier has one class, 0"),
                    n => format!("--class {c}: the classifier has classes 0..{}", n - 1),
                }))
            }
            Some(c) => vec![c],
            None => (0..n_classes).collect(),
        };
        let judge = match self.judge.as_deref() {
            Some("none") => None,
            Some(p) => Some(PathBuf::from(p)),
            None => {
                let d = self.classifier.with_file_name("mnist-judge.pt");
                let exists = crate::nn::bundled::resolve(&d).is_ok_and(|p| p.is_file());
                (exists && d != self.classifier).then_some(d)
            }
        };
        let target_fitness = self.target_fitness()?;
        if !(1..=64).contains(&self.pixel_block) {
            return Err(Error::usage(format!(
                "--pixel-block {}: must be between 1 and 64 pixels",
                self.pixel_block
            )));
        }
        if self.space == Space::Latent && self.generator.is_none() {
            return Err(Error::usage("--space latent needs --generator PATH (a TorchScript generator exported by neuroevo gan)"));
        }
        let ops = {
            let mut ops = FlatOps {
                crossover: Crossover::parse(&self.crossover)?,
                crossover_prob: self.crossover_prob,
                mutation: match self.space {
                    // a few pixels (blocks) set to any brightness: small steps cannot leave
                    // the black corner of the pixel box, where every slight brightening lowers
                    // the target; 4 of the 49 blocks per child was the best of 2..8 measured
                    Space::Pixels => Mutation::Replace {
                        genes: GeneCount::Count(4),
                        low: 0.0,
                        high: 1.0,
                    },
                    Space::Latent => Mutation::Gaussian {
                        genes: GeneCount::Probability(0.1),
                        sigma: 0.3,
                        low: -4.0,
                        high: 4.0,
                    },
                },
                mutation_prob: 1.0,
            };
            self.mutation.apply(&mut ops)?;
            ops
        };
        let ga = GaConfig {
            breeding: Breeding {
                population: self.population,
                parents: self.population,
                selection: Selection::Tournament { k: self.tournament },
                pairing: Pairing::Ring,
                replacement: Replacement::Elitism { k: self.elitism },
            },
            stop: StopCriteria {
                generations: Some(self.generations),
                target_fitness: Some(target_fitness),
                ..Default::default()
            },
            checkpoint_every: self.checkpoint_every,
            log_every: 1,
        };
        // model paths are kept resolved, so that --resume from another directory reads them
        Ok(FoolConfig {
            classifier: crate::fsutil::stored_path(&self.classifier),
            input: self.input_spec()?,
            judge: judge.as_deref().map(crate::fsutil::stored_path),
            classes,
            space: self.space,
            generator: self.generator.as_deref().map(crate::fsutil::stored_path),
            init: self.init.unwrap_or(match self.space {
                Space::Pixels => Init::Black,
                Space::Latent => Init::Uniform,
            }),
            binary: self.binary,
            pixel_block: self.pixel_block,
            ga,
            ops,
            device: new.device_name.clone(),
            seed: new.seed,
        })
    }
}

fn one() -> i64 {
    1
}
