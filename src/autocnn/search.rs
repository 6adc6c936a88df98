//! The search loop of `auto-cnn search`, its checkpoint and fitness cache, and `show`/`export`.
//!
//! Run directory: `config.json`, `checkpoint.json` (generation, phase, RNG, population,
//! offspring, counters; rewritten atomically after every evaluation), `cache.json` (fitness of
//! every genome trained, keyed by a hash of the genome and the settings the fitness depends on),
//! `log.jsonl` (one `evaluation` record per network, one `generation` record per generation),
//! `best.ot` (weights of the best network trained so far), `fitness.png`, and at the end
//! `best.pt` + `best.features.pt` + `best.json` and `result.json`.
use super::genome::{self, GenomeSpace};
use crate::data::{load_dataset, DataArgs, DataOptions, Dataset, DatasetName};
use crate::device::{device_name, parse_device};
use crate::ga::plan::environmental_selection;
use crate::error::{Error, Result};
use crate::fsutil;
use crate::ga::selection::{argbest, Selection};
use crate::ga::GaRng;
use crate::nn::arch::Arch;
use crate::nn::export::{export_classifier, ModelInfo};
use crate::nn::model::{parameter_count, LayerNet};
use crate::nn::train::{accuracy, train_classifier, Optimizer, Schedule, TrainConfig, EVAL_BATCH};
use crate::nn::Precision;
use crate::plot::{line_plot, Panel, Series};
use crate::run::{dir as rdir, Clocks, Job, JobConfig, NewRun, RunArgs, RunDir};
use indicatif::{MultiProgress, ProgressBar, ProgressStyle};
use rand::Rng;
use serde::{Deserialize, Serialize};
use serde_json::json;
use sha2::{Digest, Sha256};
use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::time::Instant;
use tch::{nn::VarStore, Device};

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

/// Options of `auto-cnn search`.
#[derive(Clone, Debug, clap::Args)]
pub struct SearchArgs {
    #[command(flatten)]
    pub data: DataArgs,
    /// Individuals per generation.
    #[arg(long, default_value_t = 5)]
    pub population: usize,
    /// Generations after the initial population [default: 4]; with --resume, extends the run.
    #[arg(long)]
    pub generations: Option<usize>,
    /// Training epochs of every evaluated network.
    #[arg(long, default_value_t = 5)]
    pub epochs: usize,
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
    /// get the most out of a one-epoch training (measured on mnist-10k, see the README).
    #[arg(long, default_value_t = 16)]
    pub batch_size: usize,
    /// Adam learning rate (the start of the decay with --schedule cosine).
    #[arg(long, default_value_t = 4e-3)]
    pub lr: f64,
    /// Learning-rate schedule of every training: cosine (to 0 over --epochs) or constant.
    #[arg(long, default_value = "cosine")]
    pub schedule: String,
    /// What convolutions compute in while networks train: auto (bf16 on a CPU with AVX512-BF16,
    /// else fp32), fp32 or bf16 (mixed precision, fp32 weights). The export computes in fp32.
    #[arg(long, default_value = "auto")]
    pub precision: String,
    #[command(flatten)]
    pub run: RunArgs,
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
    pub time_budget_s: Option<f64>,
    /// How every genome is trained (`epochs` is the search's epochs; the seed is the run's, so a
    /// genome always gets the same fitness).
    pub train: TrainConfig,
    pub final_epochs: Option<usize>,
    pub device: String,
    pub seed: u64,
}

fn parse_list<T: std::str::FromStr>(flag: &str, s: &str) -> Result<Vec<T>> {
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
            time_budget_s: self.time_budget,
            train: TrainConfig {
                epochs: self.epochs,
                batch_size: self.batch_size,
                lr: self.lr,
                optimizer: Optimizer::Adam,
                schedule: Schedule::parse(&self.schedule)?,
                weight_decay: 0.0,
                augment_shift: 0,
                seed,
                precision: Precision::parse(&self.precision, new.device)?,
            },
            final_epochs: self.final_epochs,
            device: new.device_name.clone(),
            seed,
        })
    }
}

impl JobConfig for SearchConfig {
    const JOB: Job = Job::AutoCnn;
    const ON_RESUME: &'static [&'static str] = &["--generations", "--time-budget", "--final-epochs"];
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
        if self.final_epochs == Some(0) {
            return Err(Error::usage("--final-epochs must be at least 1"));
        }
        self.space.validate()?;
        self.train.validate()
    }

    /// The settings a genome's fitness depends on; a cached fitness is reused only when they
    /// are equal (the cache key hashes them with the genome).
    fn fitness_settings(&self) -> String {
        json!({
            "dataset": self.dataset.label(), "data": self.data, "train": self.train,
            "fitness_set": self.fitness_set, "on_shrink": self.on_shrink,
        })
        .to_string()
    }
}

/// The outcome of training one genome.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Evaluation {
    /// The genome as bred.
    pub genome: String,
    /// The network actually trained (differs after a repair; empty when nothing was trained).
    pub evaluated: String,
    pub params: i64,
    pub fitness: f64,
    pub val_acc: Option<f64>,
    /// Only when the fitness is measured on the test set.
    pub test_acc: Option<f64>,
    pub seconds: f64,
    /// Repairs, zero scores and failed trainings, in words.
    pub note: Option<String>,
}

#[derive(Default, Serialize, Deserialize)]
struct Cache {
    entries: BTreeMap<String, Evaluation>,
}

fn cache_key(genome: &str, settings: &str) -> String {
    let digest = Sha256::digest(format!("{genome}\n{settings}").as_bytes());
    digest[..12].iter().map(|b| format!("{b:02x}")).collect()
}

#[derive(Clone, Debug, Serialize, Deserialize)]
struct Individual {
    genome: String,
    /// How it was made: random, copy, crossover, + mutation.
    origin: String,
    fitness: Option<f64>,
}

/// Fitness of each individual; NaN (ranked last) where it is not known.
fn fitness_of(list: &[Individual]) -> Vec<f64> {
    list.iter().map(|p| p.fitness.unwrap_or(f64::NAN)).collect()
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
enum Phase {
    /// Train the individuals without fitness (the population in generation 0, else offspring).
    Evaluate,
    /// Breed the next offspring (or finish after the last generation).
    Breed,
    Done,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
struct SearchState {
    generation: usize,
    phase: Phase,
    rng: GaRng,
    population: Vec<Individual>,
    offspring: Vec<Individual>,
    evaluations: usize,
    trained: usize,
    cache_hits: usize,
    log_lines: usize,
    elapsed_s: f64,
    /// CPU seconds of the search so far, over all invocations.
    #[serde(default)]
    cpu_s: f64,
    best: Option<Evaluation>,
    stop_reason: Option<String>,
}

/// The best network, as exported.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct BestModel {
    pub genome: String,
    pub params: i64,
    pub val_acc: Option<f64>,
    /// Test accuracy of the exported model.
    pub test_acc: Option<f64>,
    /// Test accuracy of the network as the search trained it (`--epochs`); equals `test_acc`
    /// unless `--final-epochs` retrained it.
    #[serde(default)]
    pub search_test_acc: Option<f64>,
    pub path: PathBuf,
}

/// `result.json` of a search.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct SearchSummary {
    pub run_dir: PathBuf,
    pub generations_done: usize,
    pub evaluations: usize,
    pub trained: usize,
    pub cache_hits: usize,
    /// Networks trained by this process (after a resume: only what was left).
    pub trained_this_session: usize,
    /// Evaluations already done when this process started.
    pub resumed_at_evaluation: usize,
    pub elapsed_s: f64,
    pub stop_reason: String,
    pub best: BestModel,
    #[serde(skip)]
    pub table: String,
}

/// The devices networks are trained on: every CUDA device for `auto`/`cuda` on a machine with
/// several, else the one named.
fn worker_devices(name: &str) -> Result<Vec<Device>> {
    let d = parse_device(name)?;
    let all = matches!(name.trim().to_ascii_lowercase().as_str(), "auto" | "cuda");
    Ok(match d {
        Device::Cuda(_) if all => (0..tch::Cuda::device_count() as usize)
            .map(Device::Cuda)
            .collect(),
        _ => vec![d],
    })
}

struct Search {
    cfg: SearchConfig,
    dir: PathBuf,
    state: SearchState,
    cache: Cache,
    settings: String,
    workers: Vec<Dataset>,
    bars: Option<MultiProgress>,
    bar: ProgressBar,
    clocks: Clocks,
    trained_this_session: usize,
}

impl Search {
    fn elapsed(&self) -> f64 {
        self.clocks.wall_s()
    }

    fn save(&mut self) -> Result<()> {
        self.state.elapsed_s = self.elapsed();
        self.state.cpu_s = self.clocks.cpu_s();
        fsutil::write_json_atomic(&self.dir.join("checkpoint.json"), &self.state)
    }

    fn log(&mut self, record: serde_json::Value) -> Result<()> {
        fsutil::append_jsonl(&self.dir.join("log.jsonl"), &record)?;
        self.state.log_lines += 1;
        Ok(())
    }

    fn over_budget(&self) -> bool {
        self.cfg.time_budget_s.is_some_and(|b| self.elapsed() >= b)
    }

    fn current(&mut self) -> &mut Vec<Individual> {
        if self.state.generation == 0 {
            &mut self.state.population
        } else {
            &mut self.state.offspring
        }
    }

    fn best_fitness(&self) -> Option<f64> {
        self.state.best.as_ref().map(|b| b.fitness)
    }

    fn set_message(&self, what: &str) {
        let best = self
            .state
            .best
            .as_ref()
            .map(|b| format!(" | best {:.4} {}", b.fitness, b.genome))
            .unwrap_or_default();
        self.bar
            .set_message(format!("gen {}: {what}{best}", self.state.generation));
    }

    /// Records an evaluation of individual `i` of the current list: cache, best, log, checkpoint.
    fn record(
        &mut self,
        i: usize,
        e: Evaluation,
        cached: bool,
        weights: Option<&VarStore>,
    ) -> Result<()> {
        let better = self.best_fitness().is_none_or(|b| e.fitness > b);
        if better {
            if let Some(vs) = weights {
                fsutil::replace_atomic(&self.dir.join("best.ot"), |tmp| Ok(vs.save(tmp)?))?;
            }
            if weights.is_some() || cached {
                self.state.best = Some(e.clone());
            }
        }
        if !cached {
            let key = cache_key(&e.genome, &self.settings);
            self.cache.entries.insert(key, e.clone());
            fsutil::write_json_atomic(&self.dir.join("cache.json"), &self.cache)?;
            self.state.trained += 1;
            self.trained_this_session += 1;
        } else {
            self.state.cache_hits += 1;
        }
        self.state.evaluations += 1;
        let generation = self.state.generation;
        let origin = self.current()[i].origin.clone();
        self.current()[i].fitness = Some(e.fitness);
        if let Some(note) = &e.note {
            self.bar
                .println(format!("note: {} (gen {generation}): {note}", e.genome));
        }
        self.log(json!({
            "kind": "evaluation", "generation": generation, "index": i,
            "elapsed_s": self.clocks.wall_s(), "cpu_s": self.clocks.cpu_s(),
            "evaluation": self.state.evaluations, "origin": origin, "cached": cached,
            "genome": e.genome, "evaluated": e.evaluated, "params": e.params,
            "fitness": e.fitness, "val_acc": e.val_acc, "test_acc": e.test_acc,
            "seconds": e.seconds, "note": e.note,
        }))?;
        self.save()?;
        self.bar.set_position(self.state.evaluations as u64);
        Ok(())
    }

    /// Trains every individual of the current list that has no fitness yet. Returns false when
    /// the time budget ran out first.
    fn evaluate_pending(&mut self) -> Result<bool> {
        loop {
            let pending: Vec<usize> = (0..self.current().len())
                .filter(|&i| self.current()[i].fitness.is_none())
                .collect();
            if pending.is_empty() {
                return Ok(true);
            }
            if self.over_budget() {
                return Ok(false);
            }
            // cached genomes first: no training
            let first = pending[0];
            let genome = self.current()[first].genome.clone();
            if let Some(e) = self
                .cache
                .entries
                .get(&cache_key(&genome, &self.settings))
                .cloned()
            {
                self.record(first, e, true, None)?;
                continue;
            }
            // one network per device; genomes trained in this wave are distinct
            let mut wave: Vec<(usize, String)> = Vec::new();
            for &i in &pending {
                let g = self.current()[i].genome.clone();
                let key = cache_key(&g, &self.settings);
                if self.cache.entries.contains_key(&key) || wave.iter().any(|(_, w)| *w == g) {
                    continue;
                }
                wave.push((i, g));
                if wave.len() == self.workers.len() {
                    break;
                }
            }
            let names: Vec<&str> = wave.iter().map(|(_, g)| g.as_str()).collect();
            self.set_message(&format!("training {}", names.join(" | ")));
            let cfg = &self.cfg;
            let bars = self.bars.as_ref();
            let bar = &self.bar;
            let results: Vec<Result<Trained>> = std::thread::scope(|s| {
                let handles: Vec<_> = wave
                    .iter()
                    .zip(self.workers.iter_mut())
                    .map(|((_, g), data)| {
                        s.spawn(move || train_genome(g, cfg, data, bars, Some(bar)))
                    })
                    .collect();
                handles
                    .into_iter()
                    .map(|h| {
                        h.join().unwrap_or_else(|_| {
                            Err(Error::Other("training thread panicked".into()))
                        })
                    })
                    .collect()
            });
            for ((i, _), r) in wave.into_iter().zip(results) {
                let t = r?;
                self.record(i, t.eval, false, t.net.as_ref().map(|(_, vs)| vs))?;
            }
        }
    }

    fn generation_record(&mut self) -> Result<()> {
        let fit = fitness_of(&self.state.population);
        let b = argbest(&fit);
        let mean = fit.iter().sum::<f64>() / fit.len() as f64;
        let record = json!({
            "kind": "generation", "generation": self.state.generation,
            "cpu_s": self.clocks.cpu_s(),
            "best_fitness": fit[b], "mean_fitness": mean,
            "best_genome": self.state.population[b].genome,
            "population": self.state.population.iter().map(|p| &p.genome).collect::<Vec<_>>(),
            "fitness": fit, "evaluations": self.state.evaluations,
            "elapsed_s": self.elapsed(),
        });
        self.log(record)
    }

    /// Environmental selection: binary tournaments with replacement over parents + offspring
    /// until `population` are chosen; the best of all replaces the worst chosen if left out.
    fn select(&mut self) {
        let all: Vec<Individual> = self
            .state
            .population
            .drain(..)
            .chain(self.state.offspring.drain(..))
            .collect();
        let fit = fitness_of(&all);
        let chosen = environmental_selection(&fit, self.cfg.population, &mut self.state.rng);
        self.state.population = chosen.into_iter().map(|i| all[i].clone()).collect();
    }

    fn breed(&mut self) {
        let fit = fitness_of(&self.state.population);
        let genomes: Vec<Arch> = self
            .state
            .population
            .iter()
            .map(|p| Arch::parse(&p.genome).expect("genomes in the checkpoint parse"))
            .collect();
        self.state.offspring = breed(&genomes, &fit, &self.cfg, &mut self.state.rng);
    }

    fn run(&mut self) -> Result<()> {
        loop {
            match self.state.phase {
                Phase::Evaluate => {
                    if !self.evaluate_pending()? {
                        self.state.stop_reason = Some("time_budget".into());
                        return self.save();
                    }
                    if self.state.generation > 0 {
                        self.select();
                    }
                    self.generation_record()?;
                    self.state.phase = Phase::Breed;
                    self.save()?;
                }
                Phase::Breed => {
                    if self.state.generation >= self.cfg.generations {
                        self.state.phase = Phase::Done;
                        self.state.stop_reason = Some("generations".into());
                        return self.save();
                    }
                    if self.over_budget() {
                        self.state.stop_reason = Some("time_budget".into());
                        return self.save();
                    }
                    self.breed();
                    self.state.generation += 1;
                    self.state.phase = Phase::Evaluate;
                    self.save()?;
                }
                Phase::Done => return Ok(()),
            }
        }
    }
}

/// Breeds `population` offspring: parents by binary tournament (two distinct individuals when
/// there are two), crossed over with `crossover_prob` (else copied), each child mutated with
/// `mutation_prob`. Parents are left unchanged.
fn breed(
    genomes: &[Arch],
    fitness: &[f64],
    cfg: &SearchConfig,
    rng: &mut GaRng,
) -> Vec<Individual> {
    let tournament = Selection::Tournament { k: 2 };
    let mut out = Vec::with_capacity(cfg.population);
    while out.len() < cfg.population {
        let p1 = tournament.select(fitness, 1, rng)[0];
        let mut p2 = tournament.select(fitness, 1, rng)[0];
        for _ in 0..16 {
            if p2 != p1 {
                break;
            }
            p2 = tournament.select(fitness, 1, rng)[0];
        }
        let (c1, c2, how) = if rng.random_bool(cfg.crossover_prob) {
            let (a, b) = genome::crossover(&genomes[p1], &genomes[p2], rng);
            (a, b, format!("crossover of {p1} and {p2}"))
        } else {
            (
                genomes[p1].clone(),
                genomes[p2].clone(),
                format!("copies of {p1} and {p2}"),
            )
        };
        for c in [c1, c2] {
            if out.len() == cfg.population {
                break;
            }
            let (g, origin) = if rng.random_bool(cfg.mutation_prob) {
                let (m, op, pos) = genome::mutate(&c, &cfg.space, &cfg.mutation_dist, rng);
                (m, format!("{how}, mutation {op:?} at {pos}"))
            } else {
                (c, how.clone())
            };
            out.push(Individual {
                genome: g.to_string(),
                origin,
                fitness: None,
            });
        }
    }
    out
}

struct Trained {
    eval: Evaluation,
    net: Option<(LayerNet, VarStore)>,
}

/// Trains `genome` per `cfg` on `data` and scores it. A genome that cannot run (pooling below
/// 1x1 under [`ShrinkPolicy::Zero`], nothing left after a repair) or whose training fails
/// (diverged, out of memory) scores 0 with a note instead of stopping the search.
fn train_genome(
    genome: &str,
    cfg: &SearchConfig,
    data: &mut Dataset,
    bars: Option<&MultiProgress>,
    bar: Option<&ProgressBar>,
) -> Result<Trained> {
    let t0 = Instant::now();
    let g = Arch::parse(genome)?;
    let zero = |note: String, evaluated: String| Trained {
        eval: Evaluation {
            genome: genome.to_string(),
            evaluated,
            params: 0,
            fitness: 0.0,
            val_acc: None,
            test_acc: None,
            seconds: t0.elapsed().as_secs_f64(),
            note: Some(note),
        },
        net: None,
    };
    let (arch, mut note) = match cfg.on_shrink {
        ShrinkPolicy::Repair => match genome::repair(&g, data.shape) {
            (Some(a), dropped) if dropped.is_empty() => (a, None),
            (Some(a), dropped) => {
                let n = format!("repaired to \"{a}\": dropped {}", dropped.join(", "));
                (a, Some(n))
            }
            (None, _) => {
                return Ok(zero(
                    "scored 0: only pooling layers, none of which can run".into(),
                    String::new(),
                ))
            }
        },
        ShrinkPolicy::Zero => match g.output_shape(data.shape) {
            Ok(_) => (g.clone(), None),
            Err(e) => return Ok(zero(format!("scored 0: {e}"), String::new())),
        },
    };
    // the initial weights depend on the seed only, not on what was trained before
    crate::rng::Streams::new(cfg.train.seed).init_libtorch();
    let vs = VarStore::new(data.device());
    let mut net = LayerNet::new(&vs.root(), &arch, data.shape, data.num_classes() as i64)?;
    net.set_precision(cfg.train.precision);
    let params = parameter_count(&vs);
    let epochs = cfg.train.epochs;
    let trained = train_classifier(&net, &vs, &data.train, None, &cfg.train, 0, bars, |r| {
        if let Some(b) = bar {
            let msg = b.message();
            let base = msg.split(" [epoch").next().unwrap_or("").to_string();
            b.set_message(format!("{base} [epoch {}/{epochs} done]", r.epoch));
        }
        Ok(())
    });
    if let Err(e) = trained {
        if e.is_user_error() {
            return Err(e);
        }
        let mut t = zero(format!("scored 0: training failed: {e}"), arch.to_string());
        t.eval.params = params;
        return Ok(t);
    }
    let val_acc = (!data.val.is_empty()).then(|| accuracy(&net, &data.val, EVAL_BATCH));
    let test_acc =
        (cfg.fitness_set == FitnessSet::Test).then(|| accuracy(&net, &data.test, EVAL_BATCH));
    let mut fitness = match cfg.fitness_set {
        FitnessSet::Val => val_acc,
        FitnessSet::Test => test_acc,
    }
    .unwrap_or(f64::NAN);
    if !fitness.is_finite() {
        note = Some(format!("scored 0: fitness was {fitness}"));
        fitness = 0.0;
    }
    Ok(Trained {
        eval: Evaluation {
            genome: genome.to_string(),
            evaluated: arch.to_string(),
            params,
            fitness,
            val_acc,
            test_acc,
            seconds: t0.elapsed().as_secs_f64(),
            note,
        },
        net: Some((net, vs)),
    })
}

fn load_workers(cfg: &SearchConfig) -> Result<Vec<Dataset>> {
    let workers = worker_devices(&cfg.device)?
        .into_iter()
        .map(|d| load_dataset(&cfg.dataset, &cfg.data, d))
        .collect::<Result<Vec<_>>>()?;
    let d = &workers[0];
    match cfg.fitness_set {
        FitnessSet::Val if d.val.is_empty() => Err(Error::usage(
            "the validation split is empty (--val-fraction 0?): the fitness is measured on it",
        )),
        FitnessSet::Test if d.test.is_empty() => Err(Error::usage(format!(
            "{} has no test set to measure the fitness on",
            d.name
        ))),
        _ => Ok(workers),
    }
}

/// Reads the config and checkpoint of an existing search directory.
fn open_run(dir: &Path, what: &str) -> Result<(SearchConfig, SearchState)> {
    let rd = RunDir::new(dir);
    rd.check_resumable(Job::AutoCnn, what)?;
    if !rd.file(rdir::STATE).is_file() {
        return Err(Error::usage(format!(
            "{what} {}: no {} there: the search stopped before its first checkpoint",
            dir.display(),
            rdir::STATE
        )));
    }
    Ok((
        fsutil::read_json(&dir.join("config.json"))?,
        fsutil::read_json(&dir.join("checkpoint.json"))?,
    ))
}

/// The fitness cache of a search directory (empty before the first evaluation).
fn load_cache(dir: &Path) -> Result<Cache> {
    let path = dir.join("cache.json");
    if path.exists() {
        fsutil::read_json(&path)
    } else {
        Ok(Cache::default())
    }
}

/// `auto-cnn search`: runs (or resumes) a search, then exports the best network.
pub fn run_search(args: &SearchArgs) -> Result<SearchSummary> {
    let run = crate::run::open(
        &args.run,
        |new| {
            let cfg = args.to_config(new)?;
            cfg.validate()?;
            Ok(cfg)
        },
        |cfg| {
            // the run may be extended: more generations or another time budget
            if let Some(g) = args.generations {
                cfg.generations = g;
            }
            if let Some(t) = args.time_budget {
                cfg.time_budget_s = Some(t);
            }
            if args.final_epochs.is_some() {
                cfg.final_epochs = args.final_epochs;
            }
            cfg.validate()
        },
    )?;
    let dir = run.dir.path().to_path_buf();
    let state = if run.resumed {
        let (_, mut state) = open_run(&dir, "--resume")?;
        if state.phase == Phase::Done && state.generation < run.cfg.generations {
            state.phase = Phase::Breed;
        }
        state.stop_reason = None;
        state
    } else {
        let mut rng = run.streams.ga();
        let population = (0..run.cfg.population)
            .map(|_| Individual {
                genome: run.cfg.space.random_genome(&mut rng).to_string(),
                origin: "random".into(),
                fitness: None,
            })
            .collect();
        SearchState {
            generation: 0,
            phase: Phase::Evaluate,
            rng,
            population,
            offspring: Vec::new(),
            evaluations: 0,
            trained: 0,
            cache_hits: 0,
            log_lines: 0,
            elapsed_s: 0.0,
            cpu_s: 0.0,
            best: None,
            stop_reason: None,
        }
    };
    let cfg = run.cfg;
    let workers = load_workers(&cfg)?;
    let settings = cfg.fitness_settings();
    let cache = load_cache(&dir)?;
    // records written after the last checkpoint are dropped; the search redoes them
    fsutil::truncate_lines(&dir.join("log.jsonl"), state.log_lines)?;
    let quiet = run.quiet;
    let bars = (!quiet).then(MultiProgress::new);
    let total = (cfg.population * (cfg.generations + 1)).max(state.evaluations) as u64;
    let bar = match &bars {
        Some(mp) => {
            let b = mp.add(ProgressBar::new(total));
            b.set_style(
                ProgressStyle::with_template(
                    "[{bar:25}] {pos}/{len} networks {elapsed_precise} {wide_msg}",
                )
                .unwrap()
                .progress_chars("=> "),
            );
            b.set_position(state.evaluations as u64);
            b
        }
        None => ProgressBar::hidden(),
    };
    if !quiet {
        let d = &workers[0];
        bar.println(format!(
            "auto-cnn: {} ({} train / {} val / {} test, {:?}), population {}, {} generations, {} epochs per network, fitness on {}, {} device(s) from {}, seed {}{}",
            d.name,
            d.train.len(),
            d.val.len(),
            d.test.len(),
            d.shape,
            cfg.population,
            cfg.generations,
            cfg.train.epochs,
            cfg.fitness_set,
            workers.len(),
            device_name(d.device()),
            cfg.seed,
            if args.run.resume.is_some() {
                format!(", resuming at generation {} after {} evaluations", state.generation, state.evaluations)
            } else {
                String::new()
            }
        ));
    }
    let resumed_at = state.evaluations;
    let mut search = Search {
        clocks: Clocks::resume(state.elapsed_s, state.cpu_s),
        cfg,
        dir,
        state,
        cache,
        settings,
        workers,
        bars,
        bar,
        trained_this_session: 0,
    };
    search.save()?;
    search.run()?;
    search.bar.finish_and_clear();
    plot_fitness(&search.dir)?;
    let best_eval = search
        .state
        .best
        .clone()
        .ok_or_else(|| Error::Other("no network was trained: nothing to export".into()))?;
    let mut data = search.workers.swap_remove(0);
    let best = export_model(
        &search.dir,
        &search.dir.join("best.pt"),
        &search.cfg,
        &best_eval,
        search.cfg.final_epochs,
        &mut data,
        search.bars.as_ref(),
    )?;
    let cache_entries: Vec<Evaluation> = search.cache.entries.values().cloned().collect();
    let s = &search.state;
    let summary = SearchSummary {
        run_dir: search.dir.clone(),
        generations_done: s.generation,
        evaluations: s.evaluations,
        trained: s.trained,
        cache_hits: s.cache_hits,
        trained_this_session: search.trained_this_session,
        resumed_at_evaluation: resumed_at,
        elapsed_s: s.elapsed_s,
        stop_reason: s
            .stop_reason
            .clone()
            .unwrap_or_else(|| "generations".into()),
        best,
        table: table(&cache_entries, 10, search.cfg.fitness_set),
    };
    fsutil::write_json_atomic(&search.dir.join("result.json"), &summary)?;
    Ok(summary)
}

/// Trains (with `final_epochs`, from scratch on train+val) or loads (`best.ot`) the best
/// network and exports it as TorchScript at `path`, with its test accuracy.
fn export_model(
    dir: &Path,
    path: &Path,
    cfg: &SearchConfig,
    best: &Evaluation,
    final_epochs: Option<usize>,
    data: &mut Dataset,
    bars: Option<&MultiProgress>,
) -> Result<BestModel> {
    let arch = Arch::parse(&best.evaluated)?;
    let weights = dir.join("best.ot");
    let load_best = |vs: &mut VarStore| {
        vs.load(&weights).map_err(|e| {
            Error::corrupt(
                &weights,
                format!("cannot load the weights of \"{arch}\": {e}"),
            )
        })
    };
    // the test accuracy of the network the search trained, before any retraining (fp32)
    let mut search_test_acc = None;
    if final_epochs.is_some() && weights.exists() && !data.test.is_empty() {
        let mut vs = VarStore::new(data.device());
        let net = LayerNet::new(&vs.root(), &arch, data.shape, data.num_classes() as i64)?;
        load_best(&mut vs)?;
        search_test_acc = Some(accuracy(&net, &data.test, EVAL_BATCH));
    }
    let mut vs = VarStore::new(data.device());
    let mut net = LayerNet::new(&vs.root(), &arch, data.shape, data.num_classes() as i64)?;
    net.set_precision(cfg.train.precision);
    match final_epochs {
        Some(n) => {
            let train = data.train_and_val();
            let tc = TrainConfig {
                epochs: n,
                ..cfg.train.clone()
            };
            train_classifier(&net, &vs, &train, None, &tc, 0, bars, |_| Ok(()))?;
        }
        None => load_best(&mut vs)?,
    }
    // the test accuracy is the exported model's, which computes in fp32
    net.set_precision(Precision::Fp32);
    let test_acc = (!data.test.is_empty()).then(|| accuracy(&net, &data.test, EVAL_BATCH));
    // without retraining, the exported network is the one the search trained
    let search_test_acc = if final_epochs.is_some() {
        search_test_acc
    } else {
        test_acc
    };
    let params = parameter_count(&vs);
    let metrics = json!({
        "search_val_acc": best.val_acc, "search_fitness": best.fitness,
        "fitness_set": cfg.fitness_set, "test_acc": test_acc, "search_epochs": cfg.train.epochs,
        "search_test_acc": search_test_acc,
        "final_epochs": final_epochs, "retrained_on": final_epochs.map(|_| "train+val"),
        "seed": cfg.seed,
    });
    let info = ModelInfo::for_classifier(&net, params, data, metrics);
    export_classifier(&net, &mut vs, path, info)?;
    Ok(BestModel {
        genome: arch.to_string(),
        params,
        val_acc: best.val_acc,
        test_acc,
        search_test_acc,
        path: path.to_path_buf(),
    })
}

fn read_records(dir: &Path) -> Vec<serde_json::Value> {
    std::fs::read_to_string(dir.join("log.jsonl"))
        .unwrap_or_default()
        .lines()
        .filter_map(|l| serde_json::from_str(l).ok())
        .collect()
}

/// `fitness.png`: best and mean fitness of the population per generation.
fn plot_fitness(dir: &Path) -> Result<()> {
    let gens: Vec<serde_json::Value> = read_records(dir)
        .into_iter()
        .filter(|r| crate::run::log::kind_of(r) == "generation")
        .collect();
    let series = |name: &str, key: &str| Series {
        name: name.into(),
        points: gens
            .iter()
            .filter_map(|r| Some((r["generation"].as_f64()?, r[key].as_f64()?)))
            .collect(),
    };
    line_plot(
        &dir.join("fitness.png"),
        "auto-cnn: fitness (accuracy after the short training) per generation",
        "generation",
        &[Panel {
            y_label: "accuracy".into(),
            series: vec![
                series("best", "best_fitness"),
                series("mean", "mean_fitness"),
            ],
        }],
    )
}

/// A table of the `top` evaluated genomes, best first.
fn table(entries: &[Evaluation], top: usize, set: FitnessSet) -> String {
    let mut e: Vec<&Evaluation> = entries.iter().collect();
    e.sort_by(|a, b| b.fitness.total_cmp(&a.fitness));
    let width = e
        .iter()
        .take(top)
        .map(|x| x.genome.len())
        .max()
        .unwrap_or(6)
        .max(6);
    let label = match set {
        FitnessSet::Val => "val acc",
        FitnessSet::Test => "test acc",
    };
    let mut s = format!("rank  {:<width$}  {:>12}  {label}\n", "genome", "params");
    for (i, x) in e.iter().take(top).enumerate() {
        let _ = writeln!(
            s,
            "{:>4}  {:<width$}  {:>12}  {:.4}{}",
            i + 1,
            x.genome,
            x.params,
            x.fitness,
            if x.note.is_some() { "  *" } else { "" }
        );
    }
    if e.iter().take(top).any(|x| x.note.is_some()) {
        s.push_str("   * repaired or scored 0: see the notes in log.jsonl\n");
    }
    s
}

/// Options of `auto-cnn show`.
#[derive(Clone, Debug, clap::Args)]
pub struct ShowArgs {
    /// The run directory of a search (finished, running or killed).
    pub run_dir: PathBuf,
    /// How many of the best genomes to list.
    #[arg(long, default_value_t = 10)]
    pub top: usize,
}

/// `auto-cnn show`: what a search has done so far and its best genomes.
pub fn show_run(dir: &Path, top: usize) -> Result<String> {
    let (cfg, state) = open_run(dir, "auto-cnn show")?;
    let cache = load_cache(dir)?;
    let mut s = format!(
        "auto-cnn search in {}: {}, population {}, {} generations, {} epochs per network, fitness on {}, seed {}\n",
        dir.display(),
        cfg.dataset.label(),
        cfg.population,
        cfg.generations,
        cfg.train.epochs,
        cfg.fitness_set,
        cfg.seed
    );
    let pending = |v: &Vec<Individual>| v.iter().filter(|i| i.fitness.is_none()).count();
    let status = match (state.phase, &state.stop_reason) {
        (Phase::Done, _) => "finished (all generations)".to_string(),
        (_, Some(r)) => format!("stopped by {r} at generation {}", state.generation),
        (Phase::Evaluate, None) => {
            let list = if state.generation == 0 {
                &state.population
            } else {
                &state.offspring
            };
            format!(
                "running or interrupted: generation {} of {}, {} of {} networks of this generation evaluated",
                state.generation,
                cfg.generations,
                list.len() - pending(list),
                list.len()
            )
        }
        (Phase::Breed, None) => format!(
            "running or interrupted: generation {} of {} done",
            state.generation, cfg.generations
        ),
    };
    let _ = writeln!(s, "status: {status}");
    let _ = writeln!(
        s,
        "{} evaluations ({} networks trained, {} from the cache), {:.1} s",
        state.evaluations, state.trained, state.cache_hits, state.elapsed_s
    );
    let entries: Vec<Evaluation> = cache.entries.values().cloned().collect();
    s.push_str(&table(&entries, top, cfg.fitness_set));
    let info = dir.join("best.json");
    if info.exists() {
        let i: ModelInfo = fsutil::read_json(&info)?;
        let _ = writeln!(
            s,
            "exported: {} = {} ({} parameters), test acc {}",
            dir.join("best.pt").display(),
            i.arch,
            i.parameters,
            super::fmt_acc(i.metrics["test_acc"].as_f64())
        );
    } else if let Some(b) = &state.best {
        let _ = writeln!(
            s,
            "best so far: {} (fitness {:.4}); not exported yet (auto-cnn export {})",
            b.genome,
            b.fitness,
            dir.display()
        );
    }
    Ok(s)
}

/// Options of `auto-cnn export`.
#[derive(Clone, Debug, clap::Args)]
pub struct ExportArgs {
    /// The run directory of a search (finished or not: its best network so far).
    pub run_dir: PathBuf,
    /// Retrain the best genome from scratch on train+val for this many epochs first.
    #[arg(long)]
    pub final_epochs: Option<usize>,
    /// Where to write the TorchScript model (default RUN_DIR/best.pt; also <stem>.features.pt
    /// and <stem>.json).
    #[arg(long)]
    pub out: Option<PathBuf>,
    /// auto (CUDA when available), cpu, cuda or cuda:N (default: the search's).
    #[arg(long)]
    pub device: Option<String>,
    /// No progress bars.
    #[arg(long, short)]
    pub quiet: bool,
}

/// `auto-cnn export`: exports the best network of a search.
pub fn export_best(args: &ExportArgs) -> Result<BestModel> {
    let dir = &args.run_dir;
    let (mut cfg, state) = open_run(dir, "auto-cnn export")?;
    if let Some(d) = &args.device {
        cfg.device = d.clone();
    }
    if args.final_epochs == Some(0) {
        return Err(Error::usage("--final-epochs must be at least 1"));
    }
    let best = state.best.ok_or_else(|| {
        Error::usage(format!(
            "{}: no network has been evaluated yet",
            dir.display()
        ))
    })?;
    let mut data = load_dataset(&cfg.dataset, &cfg.data, parse_device(&cfg.device)?)?;
    let bars = (!args.quiet).then(MultiProgress::new);
    let path = args.out.clone().unwrap_or_else(|| dir.join("best.pt"));
    export_model(
        dir,
        &path,
        &cfg,
        &best,
        args.final_epochs,
        &mut data,
        bars.as_ref(),
    )
}

#[cfg(test)]
mod tests {
    use rand::SeedableRng;
    use super::*;

    fn cfg(population: usize) -> SearchConfig {
        let args = SearchArgs {
            data: DataArgs {
                dataset: "mnist-10k".into(),
                data_dir: None,
                val_fraction: 0.1,
                subset: None,
                image_size: 64,
                channels: 3,
            },
            population,
            generations: None,
            epochs: 1,
            crossover_prob: 0.9,
            mutation_prob: 0.2,
            mutation_dist: "0.7,0.1,0.1,0.1".into(),
            filters: "32,64".into(),
            min_depth: 1,
            max_depth: 5,
            fitness_set: FitnessSet::Val,
            on_shrink: ShrinkPolicy::Repair,
            time_budget: None,
            final_epochs: None,
            batch_size: 32,
            lr: 4e-3,
            precision: "auto".into(),
            schedule: "cosine".into(),
            run: RunArgs {
                seed: Some(1),
                ..Default::default()
            },
        };
        let c = args
            .to_config(&NewRun {
                seed: 1,
                device_name: "cpu".into(),
                device: Device::Cpu,
            })
            .unwrap();
        c.validate().unwrap();
        c
    }

    #[test]
    fn breeding_makes_new_lists_from_tournament_parents() {
        let c = cfg(6);
        let mut rng = GaRng::seed_from_u64(9);
        let parents: Vec<Arch> = ["S32-32", "S64-64 P:max", "P:avg S32-64", "S64-32 S32-32"]
            .iter()
            .map(|s| Arch::parse(s).unwrap())
            .collect();
        let before = parents.clone();
        let fit = [0.9, 0.1, 0.5, 0.7];
        let mut crossed = 0;
        for _ in 0..200 {
            let kids = breed(&parents, &fit, &c, &mut rng);
            assert_eq!(kids.len(), 6);
            for k in &kids {
                assert!(k.fitness.is_none());
                let a = Arch::parse(&k.genome).unwrap();
                assert!(!a.layers.is_empty());
                crossed += k.origin.starts_with("crossover") as usize;
                // the worst parent (1) can never win a binary tournament of distinct entrants
                let parents: Vec<usize> = k
                    .origin
                    .split(|c: char| !c.is_ascii_digit())
                    .filter_map(|t| t.parse().ok())
                    .take(2)
                    .collect();
                assert_eq!(parents.len(), 2, "{}", k.origin);
                assert!(!parents.contains(&1), "{}", k.origin);
            }
        }
        let frac = crossed as f64 / 1200.0;
        assert!((0.85..0.95).contains(&frac), "{frac}");
        assert_eq!(parents, before);
    }

    #[test]
    fn cache_keys_depend_on_genome_and_settings() {
        let a = cfg(3);
        let mut b = a.clone();
        b.train.epochs = 2;
        let (sa, sb) = (a.fitness_settings(), b.fitness_settings());
        assert_ne!(cache_key("S32-32", &sa), cache_key("S32-32", &sb));
        assert_ne!(cache_key("S32-32", &sa), cache_key("S32-64", &sa));
        assert_eq!(
            cache_key("S32-32", &sa),
            cache_key("S32-32", &a.fitness_settings())
        );
    }

    #[test]
    fn genomes_that_pool_below_1x1_are_repaired_or_scored_zero() {
        let mut c = cfg(3);
        c.data.subset = Some(200);
        c.train.batch_size = 50;
        let mut data = load_dataset(&c.dataset, &c.data, Device::Cpu).unwrap();
        let g = "P:max P:max P:max P:max P:max P:avg S4-4";
        let t = train_genome(g, &c, &mut data, None, None).unwrap();
        assert_eq!(t.eval.evaluated, "P:max P:max P:max P:max S4-4");
        let note = t.eval.note.unwrap();
        assert!(
            note.contains("layer 5 (P:max) at 1x1") && note.contains("layer 6"),
            "{note}"
        );
        assert!(t.net.is_some() && t.eval.params > 0);
        assert!(t.eval.val_acc.is_some());

        c.on_shrink = ShrinkPolicy::Zero;
        let t = train_genome(g, &c, &mut data, None, None).unwrap();
        assert_eq!(t.eval.fitness, 0.0);
        assert!(t.net.is_none());
        assert!(t.eval.note.unwrap().contains("below 1x1"));
    }
}
