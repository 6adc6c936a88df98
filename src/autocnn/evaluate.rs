//! Scoring a genome: a function of (genome, the settings its fitness depends on) that trains the
//! network on a local device and measures its accuracy. The search hands genomes to it; other
//! evaluation backends can take its place.
use super::cache::*;
use super::config::*;
use super::genome;
use super::halving::{live_key, Live, LiveNet};
use crate::data::{load_dataset, Dataset};
use crate::error::{Error, Result};
use crate::nn::arch::Arch;
use crate::nn::model::{parameter_count, LayerNet};
use crate::nn::train::{accuracy, EpochTrainer, TrainConfig, EVAL_BATCH};
use indicatif::{MultiProgress, ProgressBar};
use std::collections::VecDeque;
use std::time::Instant;
use tch::nn::VarStore;
use tch::Device;

/// A scored genome and, when it trained, the weights of the network as scored (a `VarStore`
/// serialised by libtorch; they become `best.ot` when it is the best so far).
pub struct Trained {
    pub eval: Evaluation,
    pub weights: Option<Vec<u8>>,
    /// Remote backends: seconds the task spent in the broker and the worker besides its
    /// training (from when it was published, or the worker became free, to its result).
    pub overhead_s: Option<f64>,
}

/// Trains `genome` per `cfg` on `data` and scores it. A genome that cannot run (pooling below
/// 1x1 under [`ShrinkPolicy::Zero`], nothing left after a repair) or whose training fails
/// (diverged, out of memory) scores 0 with a note instead of stopping the search.
///
/// With `live` (successive halving), a network trained to a lower rung's budget that `live`
/// kept goes on from where it stopped, and one trained to a budget below the full training is
/// kept there; without it, or when it holds no such network, the network trains from its
/// seeded start, which ends the same.
pub(crate) fn train_genome(
    genome: &str,
    cfg: &SearchConfig,
    data: &mut Dataset,
    live: Option<&Live>,
    bars: Option<&MultiProgress>,
    bar: Option<&ProgressBar>,
) -> Result<Trained> {
    let t0 = Instant::now();
    // the thread count is part of the fitness (the search's, wherever the network trains)
    if let (Device::Cpu, Some(t)) = (data.device(), cfg.threads) {
        tch::set_num_threads(t);
    }
    let budget = cfg.train.budget_steps;
    let key = live.map(|_| live_key(genome, cfg));
    let kept = match (live, &key) {
        (Some(l), Some(k)) => l.take(k, &cfg.train, data.device()),
        _ => None,
    };
    let mut n = match kept {
        Some(n) => n,
        None => match start_network(genome, cfg, data)? {
            Ok(n) => n,
            Err((note, evaluated)) => return Ok(scored_zero(genome, note, evaluated, budget, t0)),
        },
    };
    let epochs = cfg.train.epochs;
    let net = &n.net;
    let trained = n
        .trainer
        .train_until(net, &data.train, None, bars, budget, |r| {
            if let Some(b) = bar {
                let msg = b.message();
                let base = msg.split(" [epoch").next().unwrap_or("").to_string();
                b.set_message(format!("{base} [epoch {}/{epochs} done]", r.epoch));
            }
        });
    if let Err(e) = trained {
        if e.is_user_error() {
            return Err(e);
        }
        let note = format!("scored 0: training failed: {e}");
        let mut t = scored_zero(genome, note, n.arch.to_string(), budget, t0);
        t.eval.params = n.params;
        return Ok(t);
    }
    let val_acc = (!data.val.is_empty()).then(|| accuracy(net, &data.val, EVAL_BATCH));
    let test_acc =
        (cfg.fitness_set == FitnessSet::Test).then(|| accuracy(net, &data.test, EVAL_BATCH));
    let mut fitness = match cfg.fitness_set {
        FitnessSet::Val => val_acc,
        FitnessSet::Test => test_acc,
    }
    .unwrap_or(f64::NAN);
    let mut note = n.note.clone();
    if !fitness.is_finite() {
        note = Some(format!("scored 0: fitness was {fitness}"));
        fitness = 0.0;
    }
    let weights = weights_bytes(&n.vs)?;
    let eval = Evaluation {
        genome: genome.to_string(),
        evaluated: n.arch.to_string(),
        params: n.params,
        fitness,
        val_acc,
        test_acc,
        seconds: t0.elapsed().as_secs_f64(),
        note,
        budget_steps: budget,
    };
    // a network stopped below the full training may be promoted: it goes on from here
    if let (Some(l), Some(k), Some(_)) = (live, key, budget) {
        l.put(k, n);
    }
    Ok(Trained {
        eval,
        weights: Some(weights),
        overhead_s: None,
    })
}

/// A scored-0 evaluation of `genome` (`evaluated`: the network that was to train, if any).
fn scored_zero(
    genome: &str,
    note: String,
    evaluated: String,
    budget_steps: Option<usize>,
    t0: Instant,
) -> Trained {
    Trained {
        eval: Evaluation {
            evaluated,
            budget_steps,
            ..Evaluation::scored_zero(genome, note, t0.elapsed().as_secs_f64())
        },
        weights: None,
        overhead_s: None,
    }
}

/// The network of `genome` as it starts training: repaired (or refused) per `cfg.on_shrink`,
/// checked to fit in memory, its initial weights seeded by the run's seed alone. `Err` holds
/// why it scores 0 and the network that was to train.
pub(crate) fn start_network(
    genome: &str,
    cfg: &SearchConfig,
    data: &Dataset,
) -> Result<std::result::Result<LiveNet, (String, String)>> {
    let g = Arch::parse(genome)?;
    let (arch, note) = match cfg.on_shrink {
        ShrinkPolicy::Repair => match genome::repair(&g, data.shape) {
            (Some(a), dropped) if dropped.is_empty() => (a, None),
            (Some(a), dropped) => {
                let n = format!("repaired to \"{a}\": dropped {}", dropped.join(", "));
                (a, Some(n))
            }
            (None, _) => {
                let why = "scored 0: only pooling layers, none of which can run";
                return Ok(Err((why.into(), String::new())));
            }
        },
        ShrinkPolicy::Zero => match g.output_shape(data.shape) {
            Ok(_) => (g.clone(), None),
            Err(e) => return Ok(Err((format!("scored 0: {e}"), String::new()))),
        },
    };
    // a network that cannot train one step in this machine's memory is not started
    let classes = data.num_classes() as i64;
    let need = arch.training_bytes(data.shape, classes, cfg.train.batch_size as i64);
    if let Err(e) = crate::run::memory::check("it", "one training step", need) {
        let why = e.to_string().replacen("it: ", "", 1);
        return Ok(Err((format!("scored 0: {why}"), arch.to_string())));
    }
    // the initial weights depend on the seed only, not on what was trained before (nor on
    // what other threads draw meanwhile: --per-device)
    let rng = crate::rng::libtorch_lock();
    cfg.train.seed.init_libtorch();
    let vs = VarStore::new(data.device());
    let mut net = LayerNet::new(&vs.root(), &arch, data.shape, classes)?;
    drop(rng);
    net.set_precision(cfg.train.precision);
    let params = parameter_count(&vs);
    // the trainer holds the full training's settings: the budget is where a call stops
    let full = TrainConfig {
        budget_steps: None,
        ..cfg.train.clone()
    };
    let trainer = EpochTrainer::owned(&vs, data.train.len(), full, 0)?;
    Ok(Ok(LiveNet {
        vs,
        net,
        trainer,
        arch,
        note,
        params,
    }))
}

/// How the note of a training that panicked starts.
pub(crate) const CRASHED: &str = "scored 0: training crashed";

/// [`train_genome`], with a panic of the training (libtorch refusing a value) turned into a
/// scored-0 evaluation that names it, so that one genome never ends a search or a worker.
pub(crate) fn train_guarded(
    genome: &str,
    cfg: &SearchConfig,
    data: &mut Dataset,
    live: Option<&Live>,
    bars: Option<&MultiProgress>,
    bar: Option<&ProgressBar>,
) -> Result<Trained> {
    let t0 = Instant::now();
    let run = std::panic::AssertUnwindSafe(|| train_genome(genome, cfg, data, live, bars, bar));
    std::panic::catch_unwind(run).unwrap_or_else(|panic| {
        let what = panic
            .downcast_ref::<String>()
            .cloned()
            .or_else(|| panic.downcast_ref::<&str>().map(|s| s.to_string()))
            .unwrap_or_else(|| "a panic".into());
        let what = what.lines().next().unwrap_or("").to_string();
        Ok(Trained {
            eval: Evaluation::scored_zero(
                genome,
                format!("{CRASHED}: {what}"),
                t0.elapsed().as_secs_f64(),
            ),
            weights: None,
            overhead_s: None,
        })
    })
}

/// A var store's weights as libtorch writes them (what `best.ot` holds).
pub fn weights_bytes(vs: &VarStore) -> Result<Vec<u8>> {
    let mut buf = Vec::new();
    vs.save_to_stream(&mut buf)?;
    Ok(buf)
}

/// One copy of the dataset per device networks are trained on (the run's `devices`), checked
/// to have the split the fitness is measured on.
pub(crate) fn load_workers(cfg: &SearchConfig, devices: &[Device]) -> Result<Vec<Dataset>> {
    let workers = devices
        .iter()
        .map(|&d| load_dataset(&cfg.dataset, &cfg.data, d))
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

/// One training to hand an evaluator: a genome and the settings it trains under (with
/// successive halving, its rung's budget among them).
#[derive(Clone, Debug)]
pub struct Job {
    pub genome: String,
    pub cfg: SearchConfig,
}

/// The callback of [`Evaluator::evaluate_jobs`]: it takes a job's result and answers the jobs
/// that result made ready.
pub type JobsDone<'a> = &'a mut dyn FnMut(usize, Result<Trained>) -> Result<Vec<Job>>;

/// An evaluation backend of the search: it scores genomes, each a function of (genome, the
/// settings its fitness depends on in `cfg`), and hands the evaluations back one at a time, in
/// any order. The search decides what to evaluate, caches, logs and checkpoints; a backend only
/// trains and scores.
pub trait Evaluator {
    /// How many genomes it takes at once (the search hands it at most this many).
    fn slots(&self) -> usize;
    /// Scores distinct `genomes`, calling `done(i, result)` once per genome `genomes[i]` as
    /// each is scored; an error of `done` ends the call.
    fn evaluate(
        &mut self,
        genomes: &[String],
        cfg: &SearchConfig,
        bars: Option<&MultiProgress>,
        bar: Option<&ProgressBar>,
        done: &mut dyn FnMut(usize, Result<Trained>) -> Result<()>,
    ) -> Result<()>;
    /// Whether [`Evaluator::evaluate_jobs`] trains jobs of several rungs at once and takes new
    /// ones while others train (a broker's workers): the search then promotes networks as
    /// results arrive instead of rung by rung.
    fn overlaps(&self) -> bool {
        false
    }
    /// Trains distinct `jobs`, calling `done(i, result)` once per job as each is scored, `i`
    /// numbering the jobs in the order given and then in the order `done` returns more: the
    /// jobs `done` returns (the next rungs of the networks it promoted) are trained in the same
    /// call. An error of `done` ends the call; Ctrl-C ends it with jobs unanswered. The
    /// default trains waves of up to [`Evaluator::slots`] jobs of the same settings through
    /// [`Evaluator::evaluate`].
    fn evaluate_jobs(
        &mut self,
        jobs: Vec<Job>,
        bars: Option<&MultiProgress>,
        bar: Option<&ProgressBar>,
        done: JobsDone<'_>,
    ) -> Result<()> {
        let mut queue: VecDeque<(usize, Job)> = jobs.into_iter().enumerate().collect();
        let mut next = queue.len();
        while let Some(first) = queue.pop_front() {
            if crate::interrupt::requested() {
                return Ok(());
            }
            let settings = first.1.cfg.fitness_settings();
            let cfg = first.1.cfg.clone();
            let mut wave = vec![first];
            for j in std::mem::take(&mut queue) {
                let fits = wave.len() < self.slots()
                    && j.1.cfg.fitness_settings() == settings
                    && wave.iter().all(|w| w.1.genome != j.1.genome);
                match fits {
                    true => wave.push(j),
                    false => queue.push_back(j),
                }
            }
            let genomes: Vec<String> = wave.iter().map(|w| w.1.genome.clone()).collect();
            let mut more = Vec::new();
            self.evaluate(&genomes, &cfg, bars, bar, &mut |k, r| {
                more.extend(done(wave[k].0, r)?);
                Ok(())
            })?;
            for j in more {
                queue.push_back((next, j));
                next += 1;
            }
        }
        Ok(())
    }
    /// Successive halving: of the networks it may keep between rungs, only those of `genomes`
    /// (just promoted, trained under `cfg`'s settings) will be asked to go on; a backend that
    /// keeps networks in memory frees the others.
    fn keep_live(&mut self, _genomes: &[String], _cfg: &SearchConfig) {}
}

/// The in-process backend: `--per-device` networks at a time per local device, each in its own
/// thread with its own model and its own handle on the device's copy of the dataset (read only,
/// so the copies share its memory); with successive halving, the networks of the rung in
/// progress stay in memory to go on when promoted.
pub struct LocalEvaluator {
    pub(crate) workers: Vec<Dataset>,
    pub(crate) live: Live,
}

impl LocalEvaluator {
    /// `cfg.per_device` workers per device of the run's `devices` (every CUDA device for
    /// `auto`/`cuda` on a machine with several).
    pub fn new(cfg: &SearchConfig, devices: &[Device]) -> Result<Self> {
        let mut workers = Vec::new();
        for d in load_workers(cfg, devices)? {
            for _ in 1..cfg.per_device {
                workers.push(d.shallow_clone());
            }
            workers.push(d);
        }
        Ok(LocalEvaluator {
            workers,
            live: Live::for_device(devices[0]),
        })
    }
}

impl Evaluator for LocalEvaluator {
    fn slots(&self) -> usize {
        self.workers.len()
    }

    fn evaluate(
        &mut self,
        genomes: &[String],
        cfg: &SearchConfig,
        bars: Option<&MultiProgress>,
        bar: Option<&ProgressBar>,
        done: &mut dyn FnMut(usize, Result<Trained>) -> Result<()>,
    ) -> Result<()> {
        let live = Some(&self.live);
        let results: Vec<Result<Trained>> = std::thread::scope(|s| {
            let handles: Vec<_> = genomes
                .iter()
                .zip(self.workers.iter_mut())
                .map(|(g, data)| s.spawn(move || train_guarded(g, cfg, data, live, bars, bar)))
                .collect();
            handles
                .into_iter()
                .map(|h| {
                    h.join()
                        .unwrap_or_else(|_| Err(Error::Other("training thread panicked".into())))
                })
                .collect()
        });
        for (i, r) in results.into_iter().enumerate() {
            done(i, r)?;
        }
        Ok(())
    }

    fn keep_live(&mut self, genomes: &[String], cfg: &SearchConfig) {
        let keys: Vec<String> = genomes.iter().map(|g| live_key(g, cfg)).collect();
        self.live.retain(&keys);
    }
}
