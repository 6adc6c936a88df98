//! `auto-cnn search`'s options and `config.json`: the genome space, the GA's rates, how every
//! network is trained and on which split its fitness is measured.
use super::genome::GenomeSpace;
use crate::data::{DataArgs, DataOptions, DatasetName};
use crate::error::{Error, Result};
use crate::nn::arch::{Arch, Layer};
use crate::nn::train::{Optimizer, Schedule, TrainConfig};
use crate::nn::Precision;
use crate::run::{Job, JobConfig, NewRun, RunArgs};
use serde::{Deserialize, Serialize};
use serde_json::json;

/// Which split the fitness (accuracy after the short training) is measured on.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "snake_case")]
pub enum FitnessSet {
    /// The validation split held out of the training set (`--val-fraction`).
    Val,
    /// The test set, as the `auto-cnn` package does (leaks the test set into the search).
    Test,
}

impl std::fmt::Display for FitnessSet {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            FitnessSet::Val => "val",
            FitnessSet::Test => "test",
        })
    }
}

/// What happens to a genome whose pooling layers would shrink the feature map below 1x1.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "snake_case")]
pub enum ShrinkPolicy {
    /// Drop the pooling layers that cannot run, train the rest (the log names the dropped ones).
    Repair,
    /// Score the genome 0 without training it.
    Zero,
}

/// How much training a network gets before it is scored.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "snake_case")]
pub enum Fidelity {
    /// Every network trains the full `--epochs` (the paper's search).
    #[default]
    Full,
    /// Successive halving: every network trains a short first budget, and only the best
    /// 1/`--eta` of each rung go on to the next, up to the full budget (see `halving`).
    Halving,
}

impl std::fmt::Display for Fidelity {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Fidelity::Full => "full",
            Fidelity::Halving => "halving",
        })
    }
}

fn default_eta() -> usize {
    3
}

fn default_rungs() -> usize {
    3
}

/// The largest `--eta` and `--rungs` (beyond them the lowest rung trains one step).
pub const MAX_ETA: usize = 100;
pub const MAX_RUNGS: usize = 10;

/// Options of `auto-cnn search`.
#[derive(Clone, Debug, clap::Args)]
pub struct SearchArgs {
    #[command(flatten)]
    pub data: DataArgs,
    /// Train the networks on `neuroevo worker` processes through a NATS JetStream broker
    /// (nats://HOST:PORT) instead of in this process. May be given or dropped with --resume.
    #[arg(long)]
    pub broker: Option<String>,
    /// Individuals per generation.
    #[arg(long, default_value_t = 5)]
    pub population: usize,
    /// Generations after the initial population [default: 4]; with --resume, extends the run.
    #[arg(long)]
    pub generations: Option<usize>,
    /// Training epochs of every evaluated network (with --fidelity halving: of those that
    /// reach the last rung).
    #[arg(long, default_value_t = 5)]
    pub epochs: usize,
    /// full: every network trains all --epochs; halving: successive halving, every network
    /// first trains 1/eta^(rungs-1) of the steps and only the best 1/eta of each rung
    /// continue, from where they stopped, to the next rung.
    #[arg(long, value_enum, default_value_t = Fidelity::Full)]
    pub fidelity: Fidelity,
    /// --fidelity halving: the best ceil(n/eta) of a rung's n networks go on to the next rung,
    /// whose budget is eta times larger.
    #[arg(long, default_value_t = 3)]
    pub eta: usize,
    /// --fidelity halving: how many budgets (rungs) there are, the last one all --epochs.
    #[arg(long, default_value_t = 3)]
    pub rungs: usize,
    /// Probability that two parents are crossed over (else copied).
    #[arg(long, default_value_t = 0.9)]
    pub crossover_prob: f64,
    /// Probability that an offspring is mutated.
    #[arg(long, default_value_t = 0.2)]
    pub mutation_prob: f64,
    /// Weights of the four mutations: add a skip layer, add a pooling layer, remove a layer,
    /// randomise a layer.
    #[arg(long, default_value = "0.7,0.1,0.1,0.1")]
    pub mutation_dist: String,
    /// Filter counts of the skip layers' convolutions.
    #[arg(long, default_value = "32,64,128,256,512")]
    pub filters: String,
    /// Smallest initial depth (layers).
    #[arg(long, default_value_t = 1)]
    pub min_depth: usize,
    /// Largest initial depth (layers).
    #[arg(long, default_value_t = 5)]
    pub max_depth: usize,
    /// Split the fitness is measured on: val (default) or test (what the package does).
    #[arg(long, value_enum, default_value_t = FitnessSet::Val)]
    pub fitness_set: FitnessSet,
    /// Genomes that pool below 1x1: repair (drop those pooling layers) or zero (score 0).
    #[arg(long, value_enum, default_value_t = ShrinkPolicy::Repair)]
    pub on_shrink: ShrinkPolicy,
    /// Stop after this many seconds (summed over resumes), after the network in training;
    /// with --resume, replaces the run's budget.
    #[arg(long)]
    pub time_budget: Option<f64>,
    /// Retrain the best genome from scratch on train+val for this many epochs before export
    /// (default: export the network trained during the search).
    #[arg(long)]
    pub final_epochs: Option<usize>,
    /// Images per training step. Small batches and a cosine decay from a high learning rate
    /// get the most out of a one-epoch training (measured on mnist-10k, see docs/results/auto-cnn.md).
    #[arg(long, default_value_t = 16)]
    pub batch_size: usize,
    /// Adam learning rate (the start of the decay with --schedule cosine).
    #[arg(long, default_value_t = 4e-3)]
    pub lr: f64,
    /// Learning-rate schedule of every training: cosine (to 0 over --epochs) or constant.
    #[arg(long, default_value = "cosine", value_parser = crate::nn::cli::schedule_values())]
    pub schedule: String,
    /// What convolutions compute in while networks train: auto (bf16 on a CPU with AVX512-BF16,
    /// else fp32), fp32 or bf16 (mixed precision, fp32 weights). The export computes in fp32.
    #[arg(long, default_value = "auto", value_parser = crate::nn::cli::precision_values())]
    pub precision: String,
    /// CPU threads every network trains with, here and on workers (default: libtorch's choice
    /// on this machine). Part of what a fitness depends on: libtorch's sums run in another
    /// order on another number of threads.
    #[arg(long)]
    pub threads: Option<i32>,
    /// Size cap: no network with more trainable parameters than this is ever trained. Initial
    /// genomes and offspring over it are bred again (up to 20 tries), then shrunk (narrower
    /// filters, fewer skip layers, more pooling); their log record's origin says so.
    #[arg(long)]
    pub max_params: Option<i64>,
    /// Size cap: no network with more multiply-accumulates per image (one forward pass) than
    /// this is ever trained; as --max-params.
    #[arg(long)]
    pub max_macs: Option<i64>,
    /// What environmental selection optimises: accuracy (the fitness alone, the paper's
    /// selection), or accuracy,params / accuracy,macs (NSGA-II over parents + offspring:
    /// maximise the fitness, minimise the size; writes pareto.json and pareto.png).
    #[arg(long, default_value = "accuracy")]
    pub objectives: String,
    /// Networks trained at once on each device, each in its own thread with its own model
    /// (default 1). On a CPU each uses --threads threads. May be given again with --resume.
    #[arg(long)]
    pub per_device: Option<usize>,
    #[command(flatten)]
    pub run: RunArgs,
}

/// What environmental selection optimises (`--objectives`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub enum Objectives {
    /// The fitness alone: binary tournaments, the best kept (the paper's selection).
    #[default]
    #[serde(rename = "accuracy")]
    Accuracy,
    /// NSGA-II: maximise the fitness, minimise the trainable parameters.
    #[serde(rename = "accuracy,params")]
    AccuracyParams,
    /// NSGA-II: maximise the fitness, minimise the multiply-accumulates of one forward pass.
    #[serde(rename = "accuracy,macs")]
    AccuracyMacs,
}

impl Objectives {
    pub fn parse(s: &str) -> Result<Objectives> {
        let words: Vec<String> = s
            .split(',')
            .map(|w| w.trim().to_ascii_lowercase())
            .filter(|w| !w.is_empty())
            .collect();
        match words.iter().map(String::as_str).collect::<Vec<_>>()[..] {
            ["accuracy"] => Ok(Objectives::Accuracy),
            ["accuracy", "params"] => Ok(Objectives::AccuracyParams),
            ["accuracy", "macs"] => Ok(Objectives::AccuracyMacs),
            _ => Err(Error::usage(format!(
                "--objectives {s}: give accuracy, accuracy,params or accuracy,macs"
            ))),
        }
    }

    /// Whether selection is multi-objective (NSGA-II, with a Pareto front written).
    pub fn pareto(self) -> bool {
        self != Objectives::Accuracy
    }

    /// The size objective of a front: parameters, unless MACs are named.
    pub fn size_of(self, s: crate::nn::arch::NetSize) -> i64 {
        match self {
            Objectives::AccuracyMacs => s.macs,
            _ => s.params,
        }
    }

    /// The size objective's name ("params" or "macs").
    pub fn size_name(self) -> &'static str {
        match self {
            Objectives::AccuracyMacs => "macs",
            _ => "params",
        }
    }
}

impl std::fmt::Display for Objectives {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Objectives::Accuracy => "accuracy",
            Objectives::AccuracyParams => "accuracy,params",
            Objectives::AccuracyMacs => "accuracy,macs",
        })
    }
}

fn one() -> usize {
    1
}

fn is_one(n: &usize) -> bool {
    *n == 1
}

/// `config.json` of a search.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct SearchConfig {
    pub dataset: DatasetName,
    pub data: DataOptions,
    pub space: GenomeSpace,
    pub population: usize,
    pub generations: usize,
    pub crossover_prob: f64,
    pub mutation_prob: f64,
    /// Add skip, add pool, remove, randomise.
    pub mutation_dist: [f64; 4],
    pub fitness_set: FitnessSet,
    pub on_shrink: ShrinkPolicy,
    /// Full training of every network, or successive halving (searches made before it was
    /// recorded trained every network fully).
    #[serde(default)]
    pub fidelity: Fidelity,
    /// Successive halving's promotion ratio and number of rungs.
    #[serde(default = "default_eta")]
    pub eta: usize,
    #[serde(default = "default_rungs")]
    pub rungs: usize,
    pub time_budget_s: Option<f64>,
    /// How every genome is trained (`epochs` is the search's epochs; the seed is the run's, so a
    /// genome always gets the same fitness).
    pub train: TrainConfig,
    pub final_epochs: Option<usize>,
    pub device: String,
    pub seed: u64,
    /// CPU threads every network trains with (CPU searches; none in searches made before it
    /// was recorded, which train with the process's default).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub threads: Option<i32>,
    /// The size cap in trainable parameters (`--max-params`; none in earlier searches).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_params: Option<i64>,
    /// The size cap in multiply-accumulates of one forward pass (`--max-macs`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_macs: Option<i64>,
    /// What environmental selection optimises (accuracy in earlier searches).
    #[serde(default)]
    pub objectives: Objectives,
    /// Networks trained at once on each local device (`--per-device`; 1 in earlier searches).
    #[serde(default = "one", skip_serializing_if = "is_one")]
    pub per_device: usize,
}

/// The largest `--population`: the checkpoint lists every genome of the population and the
/// offspring and is rewritten after every network (a few MB at this size).
pub const MAX_POPULATION: usize = 10_000;

/// The most networks `--per-device` trains at once on one device.
pub const MAX_PER_DEVICE: usize = 64;

/// A genome shown in a message: at most 60 characters.
pub(crate) fn shorten(genome: &str) -> String {
    match genome.char_indices().nth(60) {
        Some((i, _)) => format!("{}...", &genome[..i]),
        None => genome.to_string(),
    }
}

pub(crate) fn parse_list<T: std::str::FromStr>(flag: &str, s: &str) -> Result<Vec<T>> {
    s.split(',')
        .map(|t| t.trim())
        .filter(|t| !t.is_empty())
        .map(|t| {
            t.parse()
                .map_err(|_| Error::usage(format!("{flag} {s}: \"{t}\" is not a number")))
        })
        .collect()
}

impl SearchArgs {
    pub fn to_config(&self, new: &NewRun) -> Result<SearchConfig> {
        let seed = new.seed;
        let (dataset, data) = self.data.resolve(seed)?;
        let dist: Vec<f64> = parse_list("--mutation-dist", &self.mutation_dist)?;
        let mutation_dist: [f64; 4] = dist.try_into().map_err(|_| {
            Error::usage(format!(
                "--mutation-dist {}: give four weights (add skip, add pool, remove, randomise)",
                self.mutation_dist
            ))
        })?;
        Ok(SearchConfig {
            dataset,
            data,
            space: GenomeSpace {
                filters: parse_list("--filters", &self.filters)?,
                min_depth: self.min_depth,
                max_depth: self.max_depth,
                skip_prob: 0.5,
            },
            population: self.population,
            generations: self.generations.unwrap_or(4),
            crossover_prob: self.crossover_prob,
            mutation_prob: self.mutation_prob,
            mutation_dist,
            fitness_set: self.fitness_set,
            on_shrink: self.on_shrink,
            fidelity: self.fidelity,
            eta: self.eta,
            rungs: self.rungs,
            time_budget_s: self.time_budget,
            train: TrainConfig {
                epochs: self.epochs,
                batch_size: self.batch_size,
                lr: self.lr,
                optimizer: Optimizer::Adam,
                schedule: Schedule::parse(&self.schedule)?,
                weight_decay: 0.0,
                augment_shift: 0,
                seed: crate::rng::Streams::new(seed),
                precision: Precision::parse(&self.precision, new.device)?,
                budget_steps: None,
            },
            final_epochs: self.final_epochs,
            device: new.device_name.clone(),
            seed,
            threads: match new.device {
                tch::Device::Cpu => Some(self.threads.unwrap_or_else(tch::get_num_threads)),
                _ => None,
            },
            max_params: self.max_params,
            max_macs: self.max_macs,
            objectives: Objectives::parse(&self.objectives)?,
            per_device: self.per_device.unwrap_or(1),
        })
    }
}

impl JobConfig for SearchConfig {
    const JOB: Job = Job::AutoCnn;
    const ON_RESUME: &'static [&'static str] = &[
        "--generations",
        "--time-budget",
        "--final-epochs",
        "--broker",
        "--per-device",
    ];
    fn device(&self) -> &str {
        &self.device
    }
    fn seed(&self) -> u64 {
        self.seed
    }
}

impl SearchConfig {
    pub fn validate(&self) -> Result<()> {
        if self.population < 2 {
            return Err(Error::usage(format!(
                "--population {}: a search needs at least 2 individuals",
                self.population
            )));
        }
        // genomes of the population and the offspring, with their origins, in the checkpoint
        // and in memory (a few hundred bytes each)
        crate::run::memory::check(
            &format!("--population {}", self.population),
            "the population's genomes",
            self.population as f64 * 2.0 * 512.0,
        )?;
        // the checkpoint holds every genome and is rewritten after every network
        if self.population > MAX_POPULATION {
            return Err(Error::usage(format!(
                "--population {}: at most {MAX_POPULATION} (the checkpoint, which lists every \
                 genome, is rewritten after every network)",
                self.population
            )));
        }
        for (flag, p) in [
            ("--crossover-prob", self.crossover_prob),
            ("--mutation-prob", self.mutation_prob),
        ] {
            if !(0.0..=1.0).contains(&p) {
                return Err(Error::usage(format!("{flag} {p}: must be in [0, 1]")));
            }
        }
        let d = &self.mutation_dist;
        if d.iter().any(|w| !w.is_finite() || *w < 0.0) || d.iter().sum::<f64>() <= 0.0 {
            return Err(Error::usage(format!(
                "--mutation-dist {d:?}: weights must be non-negative with a positive sum"
            )));
        }
        if self.time_budget_s.is_some_and(|t| !(t > 0.0)) {
            return Err(Error::usage(
                "--time-budget must be a positive number of seconds",
            ));
        }
        if let Some(t) = self.threads.filter(|t| !(1..=4096).contains(t)) {
            return Err(Error::usage(format!(
                "--threads {t}: must be between 1 and 4096"
            )));
        }
        if self.final_epochs == Some(0) {
            return Err(Error::usage("--final-epochs must be at least 1"));
        }
        for (flag, cap) in [
            ("--max-params", self.max_params),
            ("--max-macs", self.max_macs),
        ] {
            if let Some(c) = cap.filter(|&c| c < 1) {
                return Err(Error::usage(format!("{flag} {c}: must be at least 1")));
            }
        }
        if !(1..=MAX_PER_DEVICE).contains(&self.per_device) {
            return Err(Error::usage(format!(
                "--per-device {}: must be between 1 and {MAX_PER_DEVICE}",
                self.per_device
            )));
        }
        if !(2..=MAX_ETA).contains(&self.eta) {
            return Err(Error::usage(format!(
                "--eta {}: must be between 2 and {MAX_ETA}",
                self.eta
            )));
        }
        if !(1..=MAX_RUNGS).contains(&self.rungs) {
            return Err(Error::usage(format!(
                "--rungs {}: must be between 1 and {MAX_RUNGS}",
                self.rungs
            )));
        }
        // a budget below the full training is a rung of successive halving (a task's; the
        // search's own configuration has none): which budgets are rungs depends on the
        // training set's length, checked by `halving::check_budget`
        if self.train.budget_steps.is_some() && self.fidelity != Fidelity::Halving {
            return Err(Error::usage(
                "a training budget below --epochs is a rung of --fidelity halving only",
            ));
        }
        self.space.validate()?;
        // the rates libtorch's optimizers can hold are checked there, for train too
        self.train.validate()
    }

    /// Refuses a search whose deepest, widest initial genome (`--max-depth` skip layers of the
    /// largest of `--filters`, no pooling) cannot train one step on images of `shape` in this
    /// machine's memory, `--per-device` of them at once, naming the flags to lower.
    pub fn check_memory(&self, shape: [i64; 3], classes: i64) -> Result<()> {
        let widest = *self.space.filters.iter().max().unwrap_or(&1);
        let worst = Arch {
            layers: vec![
                Layer::Skip {
                    f1: widest,
                    f2: widest
                };
                self.space.max_depth
            ],
        };
        let k = self.per_device;
        crate::run::memory::check(
            &format!(
                "--filters {widest} with --max-depth {} and --batch-size {}{}",
                self.space.max_depth,
                self.train.batch_size,
                if k > 1 {
                    format!(" and --per-device {k}")
                } else {
                    String::new()
                }
            ),
            &format!(
                "{} training step{} of \"{}\" on {shape:?} images",
                if k > 1 {
                    format!("{k} concurrent")
                } else {
                    "one".into()
                },
                if k > 1 { "s" } else { "" },
                shorten(&worst.to_string())
            ),
            k as f64 * worst.training_bytes(shape, classes, self.train.batch_size as i64),
        )
    }

    /// The settings a genome's fitness depends on; a cached fitness is reused only when they
    /// are equal (the cache key hashes them with the genome).
    pub(crate) fn fitness_settings(&self) -> String {
        let mut s = json!({
            "dataset": self.dataset.label(), "data": self.data, "train": self.train,
            "fitness_set": self.fitness_set, "on_shrink": self.on_shrink,
        });
        if let Some(t) = self.threads {
            s["threads"] = json!(t);
        }
        s.to_string()
    }
}
