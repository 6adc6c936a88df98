//! One fool run: each class's population evolved by the run layer's engine (its own
//! `class-C/` log, checkpoint and event file), then its best image, the judge's opinion, the
//! merged `log.jsonl` of every class, the grid of images and the confidence plot.
use super::config::FoolConfig;
use super::fitness::{initial_genes, FoolFitness};
use super::FoolArgs;
use crate::device::device_name;
use crate::error::Result;
use crate::ga::flat_tensor::TensorPopulation;
use crate::ga::{FlatPopulation, Population};
use crate::imageio::rescale;
use crate::nn::load::{Classifier, Generator};
use crate::plot::{line_plot, Panel, Series};
use crate::run::engine::{load_checkpoint, Engine, EngineState, GenRecord, Observer};
use crate::run::{dir, Log, Run, RunDir, StopReason};
use crate::{fsutil, imageio};
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};
use std::path::{Path, PathBuf};
use tch::{Device, Tensor};

/// One class's outcome.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct ClassResult {
    pub class: i64,
    pub label: String,
    pub generations: u64,
    /// Wall and CPU seconds of this class, over every invocation.
    pub seconds: f64,
    #[serde(default)]
    pub cpu_s: f64,
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

/// A line of the run's merged log: a class's generation record, tagged with the class (its
/// TensorBoard curves are under `class-C/`).
#[derive(Clone, Debug, Serialize)]
struct ClassRecord {
    class: i64,
    #[serde(flatten)]
    record: GenRecord,
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
    let (cfg, device) = (&run.cfg, run.device);
    cfg.ga.validate()?;
    cfg.ops.validate()?;
    let models = match loaded {
        Some(m) => m,
        None => {
            let classifier = Classifier::load_with(&cfg.classifier, device, cfg.input.as_ref())?;
            load_models(cfg, classifier, device)?
        }
    };
    if !run.quiet {
        announce(cfg, &models, device);
    }
    let start = std::time::Instant::now();
    // the merged log of every class (one line per class and generation), written afresh by
    // each invocation as the classes run; its curves are tagged by class (`class-3/fitness/best`)
    let (mut log, _) = Log::open(&run.dir.log(), |_, _| false)?;
    let mut results = Vec::new();
    let mut all_records = Vec::new();
    let mut grid = Vec::new();
    for &class in &cfg.classes {
        let (result, image, records) = run_class(&run, &models, class)?;
        for r in records {
            log.append(&r)?;
            all_records.push(r);
        }
        grid.push(image);
        let interrupted = result.stop_reason == StopReason::Interrupted.as_str();
        results.push(result);
        if interrupted {
            // the classes after this one start when the run is resumed
            break;
        }
    }
    let dir = run.dir.path();
    write_outputs(dir, &results, &all_records, &grid)?;
    let summary = FoolSummary {
        run_dir: dir.to_path_buf(),
        device: device_name(device),
        seed: cfg.seed,
        seconds: start.elapsed().as_secs_f64(),
        stop_reason: match results.last() {
            Some(r) if r.stop_reason == StopReason::Interrupted.as_str() => r.stop_reason.clone(),
            _ => "completed".into(),
        },
        classes: results,
    };
    // the run's clocks are its classes' clocks, each kept over every invocation
    let elapsed_s = summary.classes.iter().map(|c| c.seconds).sum();
    let cpu_s = summary.classes.iter().map(|c| c.cpu_s).sum();
    run.dir
        .write_result(&summary.stop_reason, elapsed_s, cpu_s, &summary)?;
    Ok(summary)
}

/// The one line a run prints before it starts.
fn announce(cfg: &FoolConfig, models: &Models, device: Device) {
    eprintln!(
        "fool: {} ({} classes), {:?} space ({} genes), population {}, up to {} generations per class, judge {}, {} , seed {}",
        cfg.classifier.display(),
        models.classifier.info.classes.len(),
        cfg.space,
        models.genes,
        cfg.ga.population,
        cfg.ga.stop.generations.unwrap_or(0),
        cfg.judge.as_ref().map(|p| p.display().to_string()).unwrap_or_else(|| "none".into()),
        device_name(device),
        cfg.seed
    );
}

/// Evolves the population of one class in `class-C/` (resuming it from its checkpoint), saves
/// its best image as `class-C.png` and asks the judge about it. Returns the class's outcome,
/// the image as saved, and its log records tagged with the class.
fn run_class(
    run: &Run<FoolConfig>,
    models: &Models,
    class: i64,
) -> Result<(ClassResult, image::DynamicImage, Vec<ClassRecord>)> {
    let (cfg, device, n) = (&run.cfg, run.device, models.genes);
    let dir = run.dir.path();
    let cdir = RunDir::new(dir.join(format!("class-{class}")));
    let checkpoint = cdir.file(dir::CHECKPOINT);
    let mut rng = run.streams.class(class);
    let genes = initial_genes(cfg.init, cfg.space, cfg.ga.population, n, &mut rng);
    let fit = FoolFitness {
        classifier: &models.classifier,
        generator: models.generator.as_ref(),
        class,
        binary: cfg.binary,
        block: cfg.pixel_block,
    };
    let mut pop = TensorPopulation::new(fit, cfg.ops.clone(), n, &genes, device)?;
    // `fit` is Copy: the population has its own; this one draws the final image
    let resume_class = run.resumed && checkpoint.is_file();
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
    let input_range = models.classifier.info.input_range;
    let image_path = dir.join(format!("class-{class}.png"));
    let image = save_image(&img, input_range, &image_path, 224)?;
    let (jc, jt, jtc) = match &models.judge {
        Some(j) => judge_opinion(j, &img, input_range, class)?,
        None => (None, None, None),
    };
    let label = models
        .classifier
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
    let records = outcome
        .records
        .into_iter()
        .map(|record| ClassRecord { class, record })
        .collect();
    let result = ClassResult {
        class,
        label,
        generations: outcome.generation,
        seconds: outcome.elapsed_s,
        cpu_s: outcome.cpu_s,
        confidence: outcome.best_fitness.exp(),
        judge_confidence: jc,
        judge_top: jt,
        judge_top_confidence: jtc,
        image: image_path,
        stop_reason: outcome.reason.as_str().into(),
    };
    Ok((result, image, records))
}

/// The judge's confidence in `class` for `img` (values in `range`), its own top class and that
/// class's confidence.
fn judge_opinion(
    judge: &Classifier,
    img: &Tensor,
    range: (f32, f32),
    class: i64,
) -> Result<(Option<f64>, Option<i64>, Option<f64>)> {
    let x = rescale(img, range, judge.info.input_range);
    let p = judge.probs(&x)?.squeeze_dim(0);
    let top = p.argmax(0, false).int64_value(&[]);
    Ok((
        Some(p.double_value(&[class])),
        Some(top),
        Some(p.double_value(&[top])),
    ))
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

/// The grid of every class's best image and the plot of each class's confidence.
fn write_outputs(
    dir: &Path,
    results: &[ClassResult],
    records: &[ClassRecord],
    grid: &[image::DynamicImage],
) -> Result<()> {
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
                .filter(|c| c.class == r.class)
                .filter_map(|c| {
                    let confidence = c.record.extra.get("confidence")?.as_f64()?;
                    Some((c.record.generation as f64, confidence))
                })
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
