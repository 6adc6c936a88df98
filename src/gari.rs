//! `neuroevo gari`: reproduce an image with a genetic algorithm (GARI, Ahmed Gad's tutorial
//! "Reproducing Images using a Genetic Algorithm with Python", and PyGAD's image example).
//!
//! Genes are the image's values (row-major H x W x C) scaled to [0, 1]. Fitness is the
//! tutorial's: `sum(target) - mean(|target - genes|)` on the 0-255 scale (higher is better),
//! with the true absolute difference (the tutorial subtracts two uint8 arrays, whose
//! differences wrap around). Every record also reports the PSNR of the best individual.
use crate::device::device_name;
use crate::error::{Error, Result};
use crate::fsutil;
use crate::ga::cli::MutationArgs;
use crate::ga::flat_cpu::{CpuPopulation, SeparableFitness, DEFAULT_BLOCK};
use crate::ga::flat_tensor::{TensorFitness, TensorPopulation};
use crate::ga::{
    flat::init_uniform, Breeding, Crossover, FlatOps, FlatPopulation, GaRng, GeneCount, Mutation,
    Pairing, Replacement, Selection,
};
use crate::imageio::{self, FlatImage};
use crate::plot::{line_plot, Panel, Series};
use crate::run::engine::{
    load_checkpoint, Engine, EngineState, GaConfig, GenRecord, Observer, Outcome,
};
use crate::run::{dir, JobConfig, RunArgs, RunDir, StopCriteria, StopReason};
use serde::{Deserialize, Serialize};
use serde_json::{json, Map, Value};
use std::path::PathBuf;
use tch::{Device, Kind, Tensor};

/// The image used when no `--input` is given: GARI's fruit.jpg (200x150 RGB, MIT licence).
pub static EMBEDDED_FRUIT: &[u8] = include_bytes!("../assets/fruit.jpg");

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "snake_case")]
pub enum Preset {
    /// neuroevo's default: population 4, the 2 best kept as parents, single-point crossover,
    /// one gene of each child replaced by a random value; stops after 60 s (or 5M generations).
    /// Small populations of close relatives make crossover combine good mutations instead of
    /// mixing unrelated images, and cheap children let the GA try ~90,000 of them a second.
    Fast,
    /// GARI's tutorial: population 8, 4 parents kept, half-swap crossover, 0.01% of genes
    /// replaced by random values, 15,000 generations.
    Gari,
    /// PyGAD's image example: population 20, 10 parents, single-point crossover, 0.01% of genes
    /// replaced by random values in [0, 1], 1 elite, 20,000 generations.
    Pygad,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "snake_case")]
pub enum Backend {
    /// CPU blocks on the CPU, a tensor on CUDA.
    Auto,
    /// Copy-on-write CPU blocks with incremental fitness (rayon).
    Cpu,
    /// One [P, N] tensor on --device, operators as tensor ops.
    Tensor,
}

impl Preset {
    /// The GA settings of a preset.
    pub fn settings(self) -> (GaConfig, FlatOps) {
        let replace = |pct: f64| Mutation::Replace {
            genes: GeneCount::Percent(pct),
            low: 0.0,
            high: 1.0,
        };
        match self {
            Preset::Gari => (
                GaConfig {
                    breeding: Breeding {
                        population: 8,
                        parents: 4,
                        selection: Selection::Truncation,
                        pairing: Pairing::RandomPairs,
                        replacement: Replacement::KeepParents,
                    },
                    stop: StopCriteria {
                        generations: Some(15_000),
                        ..Default::default()
                    },
                    checkpoint_every: 5_000,
                    log_every: 100,
                },
                FlatOps {
                    crossover: Crossover::HalfSwap,
                    crossover_prob: 1.0,
                    mutation: replace(0.01),
                    mutation_prob: 1.0,
                },
            ),
            Preset::Pygad => (
                GaConfig {
                    breeding: Breeding {
                        population: 20,
                        parents: 10,
                        selection: Selection::Truncation,
                        pairing: Pairing::Ring,
                        replacement: Replacement::Elitism { k: 1 },
                    },
                    stop: StopCriteria {
                        generations: Some(20_000),
                        ..Default::default()
                    },
                    checkpoint_every: 5_000,
                    log_every: 100,
                },
                FlatOps {
                    crossover: Crossover::SinglePoint,
                    crossover_prob: 1.0,
                    mutation: replace(0.01),
                    mutation_prob: 1.0,
                },
            ),
            Preset::Fast => (
                GaConfig {
                    breeding: Breeding {
                        population: 4,
                        parents: 2,
                        selection: Selection::Truncation,
                        pairing: Pairing::RandomPairs,
                        replacement: Replacement::KeepParents,
                    },
                    stop: StopCriteria {
                        generations: Some(5_000_000),
                        time_budget_s: Some(60.0),
                        ..Default::default()
                    },
                    checkpoint_every: 500_000,
                    log_every: 1_000,
                },
                FlatOps {
                    crossover: Crossover::SinglePoint,
                    crossover_prob: 1.0,
                    mutation: Mutation::Replace {
                        genes: GeneCount::Count(1),
                        low: 0.0,
                        high: 1.0,
                    },
                    mutation_prob: 1.0,
                },
            ),
        }
    }
}

/// Everything a gari run is made of; written as `config.json` in the run directory.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct GariConfig {
    /// The target image; `null` means the embedded fruit.jpg.
    pub input: Option<PathBuf>,
    pub resize: Option<(u32, u32)>,
    pub preset: Preset,
    pub ga: GaConfig,
    pub ops: FlatOps,
    /// Range of the initial random genes.
    pub init_range: (f32, f32),
    pub backend: Backend,
    pub device: String,
    pub seed: u64,
    /// Save a snapshot of the best image every this many generations.
    pub save_every: u64,
    /// Genes per copy-on-write block (CPU backend).
    pub block: usize,
}

/// Command-line options of `neuroevo gari`. Options left out take the preset's value.
#[derive(Clone, Debug, Default, clap::Args)]
pub struct GariArgs {
    /// Target image (PNG, JPEG, GIF, BMP, TIFF, WebP; gray, RGB or RGBA; any size).
    /// Default: the embedded fruit.jpg of the GARI tutorial.
    #[arg(long, short)]
    pub input: Option<PathBuf>,
    /// Resize the target to WIDTHxHEIGHT first, e.g. 100x75.
    #[arg(long)]
    pub resize: Option<String>,
    /// Settings to start from: fast (default), gari (the tutorial), pygad (PyGAD's example).
    #[arg(long, value_enum)]
    pub preset: Option<Preset>,
    /// Number of individuals.
    #[arg(long)]
    pub population: Option<usize>,
    /// Size of the mating pool (GARI's "number of parents mating").
    #[arg(long, alias = "num-parents")]
    pub parents: Option<usize>,
    /// Parent selection: truncation, tournament (binary), tournament:K, roulette or rank.
    #[arg(long, value_parser = crate::ga::cli::selection)]
    pub selection: Option<Selection>,
    /// Pairing of the mating pool: ring (PyGAD) or random (GARI's distinct random pairs).
    #[arg(long, value_parser = crate::ga::cli::pairing_values())]
    pub pairing: Option<String>,
    /// Keep the whole mating pool in the next generation (GARI).
    #[arg(long, conflicts_with = "elitism")]
    pub keep_parents: bool,
    /// Keep the K best individuals in the next generation (K = 0: none).
    #[arg(long)]
    pub elitism: Option<usize>,
    /// Crossover: half-swap, single-point, two-point, uniform, none.
    #[arg(long, value_parser = crate::ga::cli::crossover_values())]
    pub crossover: Option<String>,
    /// Probability that a pair is crossed over.
    #[arg(long)]
    pub crossover_prob: Option<f64>,
    #[command(flatten)]
    pub mutation: MutationArgs,
    /// Stop after this many generations.
    #[arg(long)]
    pub generations: Option<u64>,
    /// Stop after this many seconds.
    #[arg(long)]
    pub time_budget: Option<f64>,
    /// Stop after this many generations without improvement.
    #[arg(long)]
    pub patience: Option<u64>,
    /// Stop when the best fitness reaches this value.
    #[arg(long)]
    pub target_fitness: Option<f64>,
    /// Save a snapshot of the best image every this many generations (default: 10 per run).
    #[arg(long)]
    pub save_every: Option<u64>,
    /// Write a checkpoint every this many generations.
    #[arg(long)]
    pub checkpoint_every: Option<u64>,
    /// Write a log record every this many generations.
    #[arg(long)]
    pub log_every: Option<u64>,
    /// Genes per copy-on-write block of the CPU backend (a speed knob; results do not depend on it).
    #[arg(long)]
    pub block_size: Option<usize>,
    /// Where the population lives: auto, cpu (blocks), tensor.
    #[arg(long, value_enum)]
    pub backend: Option<Backend>,
    #[command(flatten)]
    pub run: RunArgs,
}

impl GariArgs {
    fn apply_run_settings(&self, cfg: &mut GariConfig) {
        let stop = &mut cfg.ga.stop;
        if self.generations.is_some() {
            stop.generations = self.generations;
        }
        if self.time_budget.is_some() {
            stop.time_budget_s = self.time_budget;
        }
        if self.patience.is_some() {
            stop.patience = self.patience;
        }
        if self.target_fitness.is_some() {
            stop.target_fitness = self.target_fitness;
        }
        if let Some(s) = self.save_every {
            cfg.save_every = s;
        }
        if let Some(c) = self.checkpoint_every {
            cfg.ga.checkpoint_every = c;
        }
        if let Some(l) = self.log_every {
            cfg.ga.log_every = l;
        }
    }

    /// The configuration of a new run: the preset with the given options on top.
    pub fn to_config(&self, new: &crate::run::NewRun) -> Result<GariConfig> {
        let preset = self.preset.unwrap_or(Preset::Fast);
        let (mut ga, mut ops) = preset.settings();
        let b = &mut ga.breeding;
        if let Some(p) = self.population {
            b.population = p;
        }
        if let Some(p) = self.parents {
            b.parents = p;
        } else if self.population.is_some() {
            b.parents = (b.population / 2).max(1);
        }
        if let Some(s) = self.selection.clone() {
            b.selection = s;
        }
        if let Some(p) = &self.pairing {
            b.pairing = Pairing::parse(p)?;
        }
        if self.keep_parents {
            b.replacement = Replacement::KeepParents;
        }
        if let Some(k) = self.elitism {
            b.replacement = Replacement::Elitism { k };
        }
        if let Some(c) = &self.crossover {
            ops.crossover = Crossover::parse(c)?;
        }
        if let Some(p) = self.crossover_prob {
            ops.crossover_prob = p;
        }
        self.mutation.apply(&mut ops)?;
        let resize = self
            .resize
            .as_deref()
            .map(imageio::parse_size)
            .transpose()?;
        let mut cfg = GariConfig {
            input: self.input.clone(),
            resize,
            preset,
            ga,
            ops,
            init_range: (0.0, 1.0),
            backend: self.backend.unwrap_or(Backend::Auto),
            device: new.device_name.clone(),
            seed: new.seed,
            save_every: 0,
            block: self.block_size.unwrap_or(DEFAULT_BLOCK),
        };
        self.apply_run_settings(&mut cfg);
        if cfg.save_every == 0 {
            cfg.save_every = cfg
                .ga
                .stop
                .generations
                .map(|g| (g / 10).max(1))
                .unwrap_or(1000);
        }
        Ok(cfg)
    }
}

impl JobConfig for GariConfig {
    const JOB: crate::run::Job = crate::run::Job::Gari;
    const ON_RESUME: &'static [&'static str] = &[
        "--generations",
        "--time-budget",
        "--patience",
        "--target-fitness",
        "--save-every",
        "--checkpoint-every",
        "--log-every",
    ];
    fn device(&self) -> &str {
        &self.device
    }
    fn seed(&self) -> u64 {
        self.seed
    }
}

impl GariConfig {
    pub fn validate(&self) -> Result<()> {
        self.ga.validate()?;
        self.ops.validate()?;
        if self.save_every == 0 {
            return Err(Error::usage("--save-every must be at least 1"));
        }
        if self.block == 0 {
            return Err(Error::usage("--block-size must be at least 1"));
        }
        Ok(())
    }

    /// The target image, resized if asked.
    pub fn load_target(&self) -> Result<FlatImage> {
        let img = match &self.input {
            Some(p) => imageio::load_image(p)?,
            None => image::load_from_memory(EMBEDDED_FRUIT).expect("embedded fruit.jpg"),
        };
        let img = match self.resize {
            Some((w, h)) => imageio::resize(&img, w, h),
            None => img,
        };
        Ok(FlatImage::from_dynamic(&img))
    }

    pub fn input_name(&self) -> String {
        self.input
            .as_ref()
            .map(|p| p.display().to_string())
            .unwrap_or_else(|| "fruit.jpg (embedded)".into())
    }
}

/// Fixed-point scale of the error statistics: 2^24 units per 1.0 (genes and targets in [0, 1]).
pub const ERROR_SCALE: f32 = 16_777_216.0;

/// |g - t| and (g - t)² in fixed-point units (truncated, like the tensor backend's int cast).
#[inline]
fn error_units(g: f32, t: f32) -> [i64; 2] {
    let d = (g - t).abs();
    [(d * ERROR_SCALE) as i64, (d * d * ERROR_SCALE) as i64]
}

/// GARI's fitness on the 0-255 scale, from exact fixed-point sums of |target - gene| (and of
/// its square, for PSNR).
#[derive(Clone)]
pub struct TargetFitness {
    target: std::sync::Arc<[f32]>,
    /// sum(target) on the 0-255 scale
    target_sum: f64,
}

impl TargetFitness {
    pub fn new(target: &[f32]) -> Self {
        TargetFitness {
            target: target.into(),
            target_sum: target.iter().map(|&t| t as f64 * 255.0).sum(),
        }
    }
    /// The tutorial's fitness, `sum(target) - mean(|target - genes|)` (0-255 scale), from the
    /// fixed-point sum of absolute errors.
    pub fn from_abs_error(&self, abs_sum: i64) -> f64 {
        self.target_sum - 255.0 * (abs_sum as f64 / ERROR_SCALE as f64) / self.target.len() as f64
    }
}

impl SeparableFitness for TargetFitness {
    #[inline]
    fn gene_stats(&self, i: usize, g: f32) -> [i64; 2] {
        error_units(g, self.target[i])
    }
    // the same sums over a slice pair, without an index check per gene
    fn block_stats(&self, start: usize, genes: &[f32]) -> [i64; 2] {
        let t = &self.target[start..start + genes.len()];
        genes.iter().zip(t).fold([0i64; 2], |acc, (&g, &t)| {
            let e = error_units(g, t);
            [acc[0] + e[0], acc[1] + e[1]]
        })
    }
    fn fitness(&self, totals: [i64; 2]) -> f64 {
        self.from_abs_error(totals[0])
    }
}

/// The same fitness, batched on a device: the same fixed-point sums, so the same bits.
pub struct TensorTargetFitness {
    f: TargetFitness,
    target: Tensor,
}

impl TensorTargetFitness {
    pub fn new(target: &[f32], device: Device) -> Self {
        TensorTargetFitness {
            f: TargetFitness::new(target),
            target: Tensor::from_slice(target).to_device(device).unsqueeze(0),
        }
    }
}

impl TensorFitness for TensorTargetFitness {
    fn evaluate(&mut self, genomes: &Tensor) -> Result<Vec<f64>> {
        // (d * 2^24) is exact in f32; the cast to int64 truncates like Rust's `as i64`
        let units = genomes
            .f_sub(&self.target)?
            .f_abs()?
            .f_mul_scalar(ERROR_SCALE as f64)?
            .f_to_kind(Kind::Int64)?;
        let abs = units
            .f_sum_dim_intlist(1, false, Kind::Int64)?
            .to_device(Device::Cpu);
        let abs = Vec::<i64>::try_from(abs)?;
        Ok(abs.into_iter().map(|a| self.f.from_abs_error(a)).collect())
    }
}

struct GariObserver<'a> {
    target: &'a FlatImage,
    dir: RunDir,
    save_every: u64,
    images: crate::run::tensorboard::Images,
}

impl<P: FlatPopulation> Observer<P> for GariObserver<'_> {
    fn metrics(&mut self, pop: &P, best: usize) -> Result<Map<String, Value>> {
        let g = pop.genome(best);
        let mut m = Map::new();
        m.insert("psnr".into(), json!(imageio::psnr(&g, &self.target.data)));
        m.insert(
            "mae".into(),
            json!(imageio::mae_levels(&g, &self.target.data)),
        );
        Ok(m)
    }
    fn on_generation(&mut self, generation: u64, pop: &P, best: usize, last: bool) -> Result<()> {
        if generation % self.save_every == 0 || last {
            let img = self.target.with_genes(&pop.genome(best));
            fsutil::save_image_atomic(
                &self
                    .dir
                    .sub(dir::SNAPSHOTS, &format!("gen-{generation:07}.png")),
                &img,
            )?;
            self.images.add("best", generation as i64, &img)?;
        }
        Ok(())
    }
}

/// What a finished run reports (also written as `result.json`).
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct GariSummary {
    pub run_dir: PathBuf,
    pub image: String,
    pub width: u32,
    pub height: u32,
    pub channels: u8,
    pub genes: usize,
    pub backend: Backend,
    pub device: String,
    pub seed: u64,
    pub stop_reason: StopReason,
    pub generations: u64,
    pub elapsed_s: f64,
    /// Generations per second of this invocation (a resumed run counts only its own part).
    pub generations_per_s: f64,
    pub best_fitness: f64,
    pub psnr_db: f64,
}

/// Runs `neuroevo gari`.
pub fn run_gari(args: &GariArgs) -> Result<GariSummary> {
    let run = crate::run::open(
        &args.run,
        |new| args.to_config(new),
        |cfg| {
            args.apply_run_settings(cfg);
            Ok(())
        },
    )?;
    let (cfg, device, resumed) = (&run.cfg, run.device, run.resumed);
    let dir = run.dir.path().to_path_buf();
    cfg.validate()?;
    let target = cfg.load_target()?;
    let backend = match cfg.backend {
        Backend::Auto if device == Device::Cpu => Backend::Cpu,
        Backend::Auto => Backend::Tensor,
        b => b,
    };
    if backend == Backend::Cpu && device != Device::Cpu {
        return Err(Error::usage(
            "--backend cpu keeps the population on the CPU; use --device cpu or --backend tensor",
        ));
    }

    let n = target.len();
    cfg.ops.check_gene_count(n)?;
    let p = cfg.ga.population;
    // genes as f32, parents and children
    crate::run::memory::check(
        &format!("--population {p}"),
        &format!("the population ({n} genes each)"),
        p as f64 * n as f64 * 4.0 * 2.0,
    )?;
    let mut rng = run.streams.ga();
    let genes = init_uniform(p, n, cfg.init_range.0, cfg.init_range.1, &mut rng);
    let engine = Engine {
        cfg: &cfg.ga,
        dir: run.dir.clone(),
        progress: !run.quiet,
    };
    if !run.quiet {
        eprintln!(
            "gari: {} {}x{} {} ({n} genes), preset {}, backend {} on {}, seed {}{}",
            cfg.input_name(),
            target.width,
            target.height,
            target.color_name(),
            json!(cfg.preset).as_str().unwrap_or("?"),
            json!(backend).as_str().unwrap_or("?"),
            device_name(device),
            cfg.seed,
            if resumed {
                format!(", resuming {}", dir.display())
            } else {
                format!(", writing {}", dir.display())
            }
        );
    }
    let mut obs = GariObserver {
        target: &target,
        dir: run.dir.clone(),
        save_every: cfg.save_every,
        images: crate::run::tensorboard::Images::open(run.dir.path())?,
    };
    let (outcome, best_genes, gens_this_run, secs_this_run) = match backend {
        Backend::Tensor => {
            let fit = TensorTargetFitness::new(&target.data, device);
            let mut pop = TensorPopulation::new(fit, cfg.ops.clone(), n, &genes, device)?;
            evolve(&engine, &mut pop, rng, &mut obs, resumed)?
        }
        _ => {
            let mut pop = CpuPopulation::new(
                TargetFitness::new(&target.data),
                cfg.ops.clone(),
                n,
                &genes,
                cfg.block,
            );
            evolve(&engine, &mut pop, rng, &mut obs, resumed)?
        }
    };
    write_outputs(&run.dir, &target, &best_genes, &outcome)?;
    let summary = GariSummary {
        run_dir: dir.clone(),
        image: cfg.input_name(),
        width: target.width,
        height: target.height,
        channels: target.channels,
        genes: n,
        backend,
        device: device_name(device),
        seed: cfg.seed,
        stop_reason: outcome.reason,
        generations: outcome.generation,
        elapsed_s: outcome.elapsed_s,
        generations_per_s: gens_this_run as f64 / secs_this_run.max(1e-9),
        best_fitness: outcome.best_fitness,
        psnr_db: imageio::psnr(&best_genes, &target.data),
    };
    run.dir.write_result(
        outcome.reason.as_str(),
        outcome.elapsed_s,
        outcome.cpu_s,
        &summary,
    )?;
    Ok(summary)
}

/// Runs the engine on `pop`, from its checkpoint when resuming. Returns the outcome, the best
/// genome, and the generations and seconds of this invocation.
fn evolve<P: FlatPopulation>(
    engine: &Engine,
    pop: &mut P,
    rng: GaRng,
    obs: &mut GariObserver,
    resumed: bool,
) -> Result<(Outcome, Vec<f32>, u64, f64)> {
    let mut state = if resumed {
        load_checkpoint(&engine.dir.file(dir::CHECKPOINT), pop)?
    } else {
        EngineState::new(rng)
    };
    let (g0, t0) = (state.generation, state.clocks.elapsed_s);
    let outcome = engine.run(pop, &mut state, obs, resumed)?;
    let best = pop.genome(outcome.best);
    let (g, t) = (outcome.generation - g0, outcome.elapsed_s - t0);
    Ok((outcome, best, g, t))
}

fn write_outputs(dir: &RunDir, target: &FlatImage, best: &[f32], outcome: &Outcome) -> Result<()> {
    let best_img = target.with_genes(best);
    fsutil::save_image_atomic(&dir.file("best.png"), &best_img)?;
    let view = |i: &image::DynamicImage| imageio::upscale_for_viewing(i, 128);
    let compare = imageio::side_by_side(&[view(&target.to_dynamic()), view(&best_img)], 8);
    fsutil::save_image_atomic(&dir.file("compare.png"), &compare)?;
    let pts = |f: &dyn Fn(&GenRecord) -> Option<f64>| -> Vec<(f64, f64)> {
        outcome
            .records
            .iter()
            .filter_map(|r| f(r).map(|y| (r.generation as f64, y)))
            .collect()
    };
    // the fitness is a large constant minus the error: what a user reads is the error
    let panels = [
        Panel {
            log_y: true,
            y_label: "mean abs. error (levels)".into(),
            series: vec![Series {
                name: "best".into(),
                points: pts(&|r| r.extra.get("mae").and_then(|v| v.as_f64())),
            }],
        },
        Panel {
            log_y: false,
            y_label: "PSNR of best (dB)".into(),
            series: vec![Series {
                name: "psnr".into(),
                points: pts(&|r| r.extra.get("psnr").and_then(|v| v.as_f64())),
            }],
        },
    ];
    line_plot(
        &dir.file("fitness.png"),
        "gari: the best image's error (0-255 levels, log scale) and PSNR per generation",
        "generation",
        &panels,
    )
}
