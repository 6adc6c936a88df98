//! `neuroevo fool`: evolve images that a classifier assigns to a chosen class with high softmax
//! confidence ("Deep Neural Networks are Easily Fooled", Nguyen, Yosinski & Clune, CVPR 2015),
//! and ask an independent judge classifier whether a person-like reader would agree.
//!
//! Genomes are the image's pixels (`--space pixels`, values in [0, 1], optionally thresholded
//! to black and white with `--binary`) or the latent vector of a generator (`--space latent`).
//! One population per class; each generation the whole population goes through the classifier
//! in one batched forward pass.
use crate::device::device_name;
use crate::error::{Error, Result};
use crate::ga::cli::MutationArgs;
use crate::ga::flat_tensor::{TensorFitness, TensorPopulation};
use crate::ga::{
    Breeding, Crossover, FlatOps, FlatPopulation, GaRng, GeneCount, Mutation, Pairing, Population,
    Replacement, Selection,
};
use crate::imageio::rescale;
use crate::nn::load::{Classifier, Generator, InputSpec};
use crate::plot::{line_plot, Panel, Series};
use crate::run::engine::{load_checkpoint, Engine, EngineState, GaConfig, Observer};
use crate::run::{dir, JobConfig, NewRun, RunArgs, RunDir, StopCriteria};
use crate::{fsutil, imageio};
use rand::Rng;
use rand_distr::{Distribution, Normal};
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};
use std::path::{Path, PathBuf};
use tch::{Device, Kind, Tensor};

/// Fitness: the log of the classifier's softmax probability of `class` (the confidence is its
/// exp), for a whole population in one forward pass.
#[derive(Clone, Copy)]
pub struct FoolFitness<'a> {
    pub classifier: &'a Classifier,
    pub generator: Option<&'a Generator>,
    pub class: i64,
    pub binary: bool,
    /// Pixel space: each gene is a `block` x `block` square of pixels (1: one gene per pixel).
    pub block: i64,
}

impl FoolFitness<'_> {
    /// Genes per image in pixel space: `C x ceil(H / block) x ceil(W / block)`.
    pub fn pixel_genes(shape: [i64; 3], block: i64) -> usize {
        let [c, h, w] = shape;
        (c * ((h + block - 1) / block) * ((w + block - 1) / block)) as usize
    }

    /// Genomes `[P, N]` -> images `[P, C, H, W]` in the classifier's input range.
    pub fn images(&self, genomes: &Tensor) -> Result<Tensor> {
        let p = genomes.size()[0];
        let info = &self.classifier.info;
        let [c, h, w] = info.input_shape;
        let _g = tch::no_grad_guard();
        match self.generator {
            None => {
                let b = self.block.max(1);
                let (gh, gw) = ((h + b - 1) / b, (w + b - 1) / b);
                let x = genomes.f_view([p, c, gh, gw])?;
                let x = if b > 1 {
                    x.f_upsample_nearest2d([h, w], None, None)?
                } else {
                    x
                };
                let x = if self.binary {
                    x.f_gt(0.5)?.f_to_kind(Kind::Float)?
                } else {
                    x
                };
                Ok(rescale(&x, (0.0, 1.0), info.input_range))
            }
            Some(g) => {
                let mut shape = vec![p];
                shape.extend(&g.info.latent_shape);
                let img = g.module.forward_ts(&[genomes.f_view(shape.as_slice())?])?;
                if img.size()[1..] != info.input_shape[..] {
                    return Err(Error::usage(format!(
                        "the generator draws {:?} images, the classifier reads {:?}",
                        &img.size()[1..],
                        info.input_shape
                    )));
                }
                Ok(rescale(&img, g.info.output_range, info.input_range))
            }
        }
    }
}

impl TensorFitness for FoolFitness<'_> {
    fn evaluate(&mut self, genomes: &Tensor) -> Result<Vec<f64>> {
        let logp = self.classifier.log_probs(&self.images(genomes)?)?;
        let p = logp.f_select(1, self.class)?.to_device(Device::Cpu);
        Ok(Vec::<f64>::try_from(p)?)
    }
}

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

/// One class's outcome.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct ClassResult {
    pub class: i64,
    pub label: String,
    pub generations: u64,
    pub seconds: f64,
    /// The fooled classifier's confidence in the class.
    pub confidence: f64,
    /// The judge's confidence in the class, its own top class and that class's confidence.
    pub judge_confidence: Option<f64>,
    pub judge_top: Option<i64>,
    pub judge_top_confidence: Option<f64>,
    pub image: PathBuf,
    /// Why this class stopped (`target_fitness`, `generations`, `interrupted`).
    #[serde(default)]
    pub stop_reason: String,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct FoolSummary {
    pub run_dir: PathBuf,
    pub device: String,
    pub seed: u64,
    pub seconds: f64,
    /// `interrupted` when Ctrl-C or SIGTERM stopped the run (the classes after the one in
    /// progress start on `--resume`), else `completed`: every class ran to its own stop.
    #[serde(default)]
    pub stop_reason: String,
    pub classes: Vec<ClassResult>,
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
    fn target_fitness(&self) -> Result<f64> {
        if !(self.target_confidence > 0.0 && self.target_confidence <= 1.0) {
            return Err(Error::usage(format!(
                "--target-confidence {}: must be in (0, 1]",
                self.target_confidence
            )));
        }
        Ok(self.target_confidence.ln())
    }

    /// Stop criteria and cadences given with `--resume` replace the run's.
    fn apply_on_resume(&self, cfg: &mut FoolConfig) -> Result<()> {
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

    fn input_spec(&self) -> Result<Option<InputSpec>> {
        InputSpec::from_flags(
            self.input_shape.as_deref(),
            self.input_range.as_deref(),
            self.classes.as_deref(),
        )
    }

    fn to_config(&self, classifier: &Classifier, new: &NewRun) -> Result<FoolConfig> {
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

fn initial_genes(init: Init, space: Space, p: usize, n: usize, rng: &mut GaRng) -> Vec<f32> {
    let normal = |sd: f32| Normal::new(0.0f32, sd).unwrap();
    match (space, init) {
        (Space::Pixels, Init::Uniform) => (0..p * n).map(|_| rng.random::<f32>()).collect(),
        (Space::Pixels, Init::Black) => vec![0.0; p * n],
        (Space::Pixels, Init::Noise) => (0..p * n)
            .map(|_| (0.5 + normal(0.1).sample(rng)).clamp(0.0, 1.0))
            .collect(),
        (Space::Latent, Init::Uniform) => (0..p * n).map(|_| normal(1.0).sample(rng)).collect(),
        (Space::Latent, Init::Black) => vec![0.0; p * n],
        (Space::Latent, Init::Noise) => (0..p * n).map(|_| normal(0.1).sample(rng)).collect(),
    }
}

/// Adds the confidences (exp of the log-probability fitness) to every record.
struct FoolObserver;
impl<P: Population> Observer<P> for FoolObserver {
    fn metrics(&mut self, pop: &P, best: usize) -> Result<serde_json::Map<String, Value>> {
        let f = pop.fitness();
        let mut m = serde_json::Map::new();
        m.insert("confidence".into(), json!(f[best].exp()));
        m.insert(
            "mean_confidence".into(),
            json!(f.iter().map(|x| x.exp()).sum::<f64>() / f.len() as f64),
        );
        Ok(m)
    }
}

/// The models of a run: the classifier, the judge and the generator.
struct Models {
    classifier: Classifier,
    judge: Option<Classifier>,
    generator: Option<Generator>,
    /// Genes per individual.
    genes: usize,
}

/// Loads the judge and the generator of `cfg` beside `classifier`, and refuses a population
/// whose one generation cannot fit in memory.
fn load_models(cfg: &FoolConfig, classifier: Classifier, device: Device) -> Result<Models> {
    // a judge without a .json reads what the classifier reads
    let judge = cfg
        .judge
        .as_ref()
        .map(|p| {
            let own = crate::nn::export::info_path(&crate::nn::bundled::resolve(p)?).is_file();
            Classifier::load_with(p, device, if own { None } else { cfg.input.as_ref() })
        })
        .transpose()?;
    let generator = cfg
        .generator
        .as_ref()
        .map(|p| Generator::load(p, device))
        .transpose()?;
    let genes = match &generator {
        Some(g) => g.info.latent_dim.max(0) as usize,
        None => FoolFitness::pixel_genes(classifier.info.input_shape, cfg.pixel_block),
    };
    check_memory(
        cfg.ga.population,
        genes,
        classifier.info.input_shape,
        classifier.info.classes.len(),
    )?;
    Ok(Models {
        classifier,
        judge,
        generator,
        genes,
    })
}

/// Refuses a population of `p` individuals whose one generation needs more memory than the
/// machine has: the genes of parents and children (f32), the images (as drawn, resized and
/// rescaled: three copies of `[P, C, H, W]` f32) and the classifier's scores (f32 logits and
/// their f64 log-softmax, with one f64 temporary).
fn check_memory(p: usize, genes: usize, shape: [i64; 3], classes: usize) -> Result<()> {
    let [c, h, w] = shape;
    let pf = p as f64;
    let inputs = pf * (genes as f64 * 8.0 + 3.0 * (c * h * w) as f64 * 4.0);
    let outputs = pf * classes as f64 * 20.0;
    let what = if outputs > inputs {
        format!("the scores of the classifier's {classes} classes for each image")
    } else {
        format!("its images ([{p}, {c}, {h}, {w}]) and genes")
    };
    crate::run::memory::check(&format!("--population {p}"), &what, inputs + outputs)
}

pub fn run_fool(args: &FoolArgs) -> Result<FoolSummary> {
    let mut loaded = None;
    let run = crate::run::open(
        &args.run,
        |new| {
            let classifier =
                Classifier::load_with(&args.classifier, new.device, args.input_spec()?.as_ref())?;
            let cfg = args.to_config(&classifier, new)?;
            // what cannot run is refused before the run directory is made
            loaded = Some(load_models(&cfg, classifier, new.device)?);
            Ok(cfg)
        },
        |cfg| args.apply_on_resume(cfg),
    )?;
    let (cfg, device, resumed, dir) = (&run.cfg, run.device, run.resumed, run.dir.path());
    cfg.ga.validate()?;
    cfg.ops.validate()?;
    let Models {
        classifier,
        judge,
        generator,
        genes: n,
    } = match loaded {
        Some(m) => m,
        None => {
            let classifier = Classifier::load_with(&cfg.classifier, device, cfg.input.as_ref())?;
            load_models(cfg, classifier, device)?
        }
    };
    if !run.quiet {
        eprintln!(
            "fool: {} ({} classes), {:?} space ({n} genes), population {}, up to {} generations per class, judge {}, {} , seed {}",
            cfg.classifier.display(),
            classifier.info.classes.len(),
            cfg.space,
            cfg.ga.population,
            cfg.ga.stop.generations.unwrap_or(0),
            cfg.judge.as_ref().map(|p| p.display().to_string()).unwrap_or_else(|| "none".into()),
            device_name(device),
            cfg.seed
        );
    }
    let start = std::time::Instant::now();
    let mut results = Vec::new();
    let mut all_records = Vec::new();
    let mut grid = Vec::new();
    for &class in &cfg.classes {
        let cdir = RunDir::new(dir.join(format!("class-{class}")));
        let checkpoint = cdir.file(dir::CHECKPOINT);
        let mut rng = run.streams.class(class);
        let genes = initial_genes(cfg.init, cfg.space, cfg.ga.population, n, &mut rng);
        let fit = FoolFitness {
            classifier: &classifier,
            generator: generator.as_ref(),
            class,
            binary: cfg.binary,
            block: cfg.pixel_block,
        };
        let mut pop = TensorPopulation::new(fit, cfg.ops.clone(), n, &genes, device)?;
        // `fit` is Copy: the population has its own; this one draws the final image
        let resume_class = resumed && checkpoint.is_file();
        let mut state = if resume_class {
            load_checkpoint(&checkpoint, &mut pop)?
        } else {
            EngineState::new(rng)
        };
        let engine = Engine {
            cfg: &cfg.ga,
            dir: cdir.clone(),
            progress: !run.quiet,
        };
        let outcome = engine.run(&mut pop, &mut state, &mut FoolObserver, resume_class)?;
        let best = pop.genome(outcome.best);
        let best_t = Tensor::from_slice(&best)
            .view([1, n as i64])
            .to_device(device);
        let img = fit.images(&best_t)?;
        let image_path = dir.join(format!("class-{class}.png"));
        grid.push(save_image(
            &img,
            classifier.info.input_range,
            &image_path,
            224,
        )?);
        let (jc, jt, jtc) = match &judge {
            Some(j) => {
                let x = rescale(&img, classifier.info.input_range, j.info.input_range);
                let p = j.probs(&x)?.squeeze_dim(0);
                let top = p.argmax(0, false).int64_value(&[]);
                (
                    Some(p.double_value(&[class])),
                    Some(top),
                    Some(p.double_value(&[top])),
                )
            }
            None => (None, None, None),
        };
        let label = classifier
            .info
            .classes
            .get(class as usize)
            .cloned()
            .unwrap_or_else(|| class.to_string());
        if !run.quiet {
            eprintln!(
                "class {label}: confidence {:.6} after {} generations{}",
                outcome.best_fitness.exp(),
                outcome.generation,
                jc.map(|j| format!(
                    ", judge {:.4} (judge's top class {} at {:.4})",
                    j,
                    jt.unwrap(),
                    jtc.unwrap()
                ))
                .unwrap_or_default()
            );
        }
        for r in &outcome.records {
            let mut v = serde_json::to_value(r)?;
            v["class"] = json!(class);
            all_records.push(v);
        }
        results.push(ClassResult {
            class,
            label,
            generations: outcome.generation,
            seconds: outcome.elapsed_s,
            confidence: outcome.best_fitness.exp(),
            judge_confidence: jc,
            judge_top: jt,
            judge_top_confidence: jtc,
            image: image_path,
            stop_reason: outcome.reason.as_str().into(),
        });
        if outcome.reason == crate::run::StopReason::Interrupted {
            // the classes after this one start when the run is resumed
            break;
        }
    }
    write_outputs(&dir, &results, &all_records, &grid)?;
    let summary = FoolSummary {
        run_dir: dir.to_path_buf(),
        device: device_name(device),
        seed: cfg.seed,
        seconds: start.elapsed().as_secs_f64(),
        stop_reason: match results.last() {
            Some(r) if r.stop_reason == crate::run::StopReason::Interrupted.as_str() => {
                r.stop_reason.clone()
            }
            _ => "completed".into(),
        },
        classes: results,
    };
    fsutil::write_json_atomic(&run.dir.result(), &summary)?;
    Ok(summary)
}

/// Saves a `[1, C, H, W]` image (values in `range`) as PNG, upscaled to at least `side` pixels,
/// and returns what it saved.
fn save_image(
    img: &Tensor,
    range: (f32, f32),
    path: &Path,
    side: u32,
) -> Result<image::DynamicImage> {
    let dynimg = imageio::upscale_for_viewing(&imageio::tensor_image(img, range)?, side);
    fsutil::save_image_atomic(path, &dynimg)?;
    Ok(dynimg)
}

fn write_outputs(
    dir: &Path,
    results: &[ClassResult],
    records: &[Value],
    grid: &[image::DynamicImage],
) -> Result<()> {
    // merged log: one line per class and generation
    fsutil::write_jsonl_atomic(&dir.join("log.jsonl"), records)?;
    // and its curves for TensorBoard, one set per class (`class-3/fitness/best`)
    use crate::run::tensorboard::{scalars, step, Events};
    let tagged: Vec<Value> = records
        .iter()
        .map(|r| {
            let mut m = serde_json::Map::new();
            m.insert("kind".into(), json!("generation"));
            m.insert("generation".into(), json!(step(r)));
            for (tag, x) in scalars(r) {
                m.insert(format!("class-{}/{tag}", r["class"]), json!(x));
            }
            Value::Object(m)
        })
        .collect();
    Events::open(dir, &tagged)?;
    // grid of the best image of every class
    if !grid.is_empty() {
        let captions: Vec<String> = results
            .iter()
            .map(|r| format!("{}: {:.3}", r.label, r.confidence))
            .collect();
        fsutil::save_image_atomic(
            &dir.join("grid.png"),
            &crate::plot::captioned_row(grid, &captions, 8)?,
        )?;
    }
    let series: Vec<Series> = results
        .iter()
        .map(|r| Series {
            name: format!("class {}", r.label),
            points: records
                .iter()
                .filter(|v| v["class"] == json!(r.class))
                .filter_map(|v| Some((v["generation"].as_f64()?, v["confidence"].as_f64()?)))
                .collect(),
        })
        .collect();
    line_plot(
        &dir.join("confidence.png"),
        "fool: best confidence of the target class per generation",
        "generation",
        &[Panel {
            log_y: false,
            y_label: "softmax confidence".into(),
            series,
        }],
    )
}
