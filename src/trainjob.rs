//! `neuroevo train`: train a classifier described in the layer-list notation, report train
//! loss, validation and test accuracy, and export it as TorchScript.
use crate::data::{load_dataset, DataArgs, DataOptions, DatasetName};
use crate::device::device_name;
use crate::error::{Error, Result};
use crate::fsutil;
use crate::nn::export::{export_classifier, ModelInfo};
use crate::nn::model::parameter_count;
use crate::nn::train::{
    accuracy, EpochReport, EpochTrainer, Optimizer, Schedule, TrainConfig, EVAL_BATCH,
};
use crate::nn::{Arch, LayerNet, Precision};
use crate::run::{
    checkpoint, dir, drive, BudgetClock, ClockState, Ctx, Driver, JobConfig, NewRun, Position,
    RunArgs, RunDir, Step, StopCriteria, StopReason,
};
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};

/// Options of `neuroevo train`.
#[derive(Clone, Debug, clap::Args)]
pub struct TrainArgs {
    #[command(flatten)]
    pub data: DataArgs,
    /// The network, e.g. "S128-64 P:max S64-64" (S<f1>-<f2> skip layer, P:max/P:avg pooling,
    /// F<n> dense layer, D<p> dropout).
    #[arg(long, default_value = "S128-64")]
    pub arch: String,
    /// Passes over the training set.
    #[arg(long, default_value_t = 5)]
    pub epochs: usize,
    /// Stop after this many seconds on --budget-clock (checked after each epoch).
    #[arg(long)]
    pub time_budget: Option<f64>,
    /// The clock of --time-budget: wall (the default) or cpu (CPU seconds of this process).
    #[arg(long, value_enum)]
    pub budget_clock: Option<BudgetClock>,
    /// Stop after this many epochs without a better validation accuracy.
    #[arg(long)]
    pub patience: Option<u64>,
    /// Images per optimisation step.
    #[arg(long, default_value_t = 64)]
    pub batch_size: usize,
    /// Learning rate (the start of the cosine decay with --schedule cosine).
    #[arg(long, default_value_t = 1e-3)]
    pub lr: f64,
    /// adam or sgd.
    #[arg(long, default_value = "adam", value_parser = crate::nn::cli::optimizer_values())]
    pub optimizer: String,
    /// Momentum of SGD.
    #[arg(long, default_value_t = 0.9)]
    pub momentum: f64,
    /// constant or cosine.
    #[arg(long, default_value = "constant", value_parser = crate::nn::cli::schedule_values())]
    pub schedule: String,
    /// L2 weight decay.
    #[arg(long, default_value_t = 0.0)]
    pub weight_decay: f64,
    /// Shift training images by up to this many pixels at random (0: no augmentation).
    #[arg(long, default_value_t = 0)]
    pub augment_shift: i64,
    /// What convolutions compute in while training: auto (bf16 on a CPU with AVX512-BF16, else
    /// fp32), fp32 or bf16 (mixed precision, fp32 weights). The exported model computes in fp32.
    #[arg(long, default_value = "auto", value_parser = crate::nn::cli::precision_values())]
    pub precision: String,
    /// Where to write the TorchScript model (default OUT/model.pt); also writes
    /// <stem>.features.pt and <stem>.json beside it.
    #[arg(long)]
    pub export: Option<PathBuf>,
    #[command(flatten)]
    pub run: RunArgs,
}

/// `config.json` of a train run.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct TrainRunConfig {
    pub dataset: DatasetName,
    pub data: DataOptions,
    pub arch: String,
    pub train: TrainConfig,
    pub device: String,
    /// Where the model is exported; a relative path is inside the run directory.
    pub export: PathBuf,
    /// Patience and time budget (the epochs are `train.epochs`).
    #[serde(default)]
    pub stop: StopCriteria,
}

impl JobConfig for TrainRunConfig {
    const JOB: crate::run::Job = crate::run::Job::Train;
    /// `--export` may be given again: a resumed run writes outside its directory only where
    /// the user asks in that invocation.
    const ON_RESUME: &'static [&'static str] = &[
        "--epochs",
        "--time-budget",
        "--budget-clock",
        "--patience",
        "--export",
    ];
    fn device(&self) -> &str {
        &self.device
    }
    fn seed(&self) -> u64 {
        self.train.seed.seed()
    }
}

impl TrainRunConfig {
    /// The export path, resolved against the run directory `dir` (a config written before
    /// exports were kept relative may hold the run directory's own path in front).
    pub fn export_path(&self, dir: &RunDir) -> PathBuf {
        if self.export.is_absolute() {
            return self.export.clone();
        }
        let inside = self.export.strip_prefix(dir.path()).unwrap_or(&self.export);
        dir.path().join(inside)
    }
}

/// How `--export PATH` is kept in `config.json`: a path inside the run directory `out` relative
/// to it (so that a copied run exports into the copy, never into the original), any other one
/// absolute (so that a resume from another working directory writes to the same place).
fn export_setting(path: &Path, out: Option<&Path>) -> PathBuf {
    let cwd = std::env::current_dir().unwrap_or_default();
    let abs = fsutil::normalize(&cwd.join(path));
    if let Some(out) = out {
        if let Ok(inside) = abs.strip_prefix(fsutil::normalize(&cwd.join(out))) {
            if !inside.as_os_str().is_empty() {
                return inside.to_path_buf();
            }
        }
    }
    abs
}

/// `result.json` of a train run.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct TrainSummary {
    pub run_dir: PathBuf,
    pub arch: String,
    pub parameters: i64,
    pub dataset: String,
    pub device: String,
    pub train_samples: usize,
    pub val_samples: usize,
    pub test_samples: usize,
    pub epochs: Vec<EpochReport>,
    pub val_acc: Option<f64>,
    pub test_acc: Option<f64>,
    /// Where the model was exported; none when the run was interrupted before its last epoch
    /// (its checkpoint is resumable, and a half-trained model is not passed off as the result).
    pub export: Option<PathBuf>,
    pub stop_reason: StopReason,
    /// Wall and CPU seconds of the run, over every invocation.
    #[serde(default)]
    pub elapsed_s: f64,
    #[serde(default)]
    pub cpu_s: f64,
}

impl TrainArgs {
    /// Stop criteria and the export given with `--resume` replace the run's own.
    fn apply_on_resume(&self, cfg: &mut TrainRunConfig) -> Result<()> {
        if self.run.was_given("--epochs") {
            cfg.train.epochs = self.epochs;
        }
        cfg.stop
            .extend_with(&self.stop_given(), self.budget_clock.is_some());
        cfg.export = match &self.export {
            Some(p) => export_setting(p, self.run.resume.as_deref()),
            // a resumed run writes outside its directory only when asked again
            None if cfg.export.is_absolute() => {
                eprintln!(
                    "train: exporting into the run directory (model.pt), not to {} (give --export again to write there)",
                    cfg.export.display()
                );
                PathBuf::from("model.pt")
            }
            None => cfg.export.clone(),
        };
        cfg.stop.validate()?;
        cfg.train.validate()
    }

    /// The patience and time budget typed on the command line.
    fn stop_given(&self) -> StopCriteria {
        StopCriteria {
            patience: self.patience,
            time_budget_s: self.time_budget,
            budget_clock: self.budget_clock.unwrap_or_default(),
            ..Default::default()
        }
    }

    fn to_config(&self, new: &NewRun) -> Result<TrainRunConfig> {
        let seed = new.seed;
        let optimizer = match self.optimizer.to_ascii_lowercase().as_str() {
            "adam" => Optimizer::Adam,
            "sgd" => Optimizer::Sgd {
                momentum: self.momentum,
            },
            o => {
                return Err(Error::usage(format!(
                    "--optimizer {o}: expected adam or sgd"
                )))
            }
        };
        let schedule = Schedule::parse(&self.schedule)?;
        let (dataset, data) = self.data.resolve(seed)?;
        Ok(TrainRunConfig {
            dataset,
            data,
            arch: Arch::parse(&self.arch)?.to_string(),
            train: TrainConfig {
                epochs: self.epochs,
                batch_size: self.batch_size,
                lr: self.lr,
                optimizer,
                schedule,
                weight_decay: self.weight_decay,
                augment_shift: self.augment_shift,
                seed: crate::rng::Streams::new(seed),
                precision: Precision::parse(&self.precision, new.device)?,
                budget_steps: None,
            },
            device: new.device_name.clone(),
            export: match &self.export {
                None => PathBuf::from("model.pt"),
                Some(p) => export_setting(p, self.run.out.as_deref()),
            },
            stop: self.stop_given(),
        })
    }
}

/// What `state.json` holds beside the weights in `checkpoint.ot`.
#[derive(Default, Serialize, Deserialize)]
struct TrainState {
    epochs_done: usize,
    /// The run's clocks (none in runs checkpointed before they were kept here: their last
    /// epoch record has them).
    #[serde(flatten)]
    clocks: ClockState,
}

/// `train`'s step for the run layer's loop: one epoch of training.
struct TrainStep<'a> {
    net: &'a LayerNet,
    vs: &'a tch::nn::VarStore,
    data: &'a crate::data::Dataset,
    trainer: EpochTrainer<'a>,
    /// Every epoch's report, those of earlier invocations first.
    epochs: Vec<EpochReport>,
    /// How many of `epochs` are in the log.
    logged: usize,
    bars: Option<indicatif::MultiProgress>,
    rd: &'a RunDir,
}

impl Step for TrainStep<'_> {
    fn position(&mut self, ctx: &mut Ctx) -> Result<Position> {
        // patience counts epochs without a better validation accuracy
        let mut best: Option<(f64, u64)> = None;
        for r in &self.epochs {
            if let Some(a) = r.val_acc {
                if best.is_none_or(|(b, _)| a > b) {
                    best = Some((a, r.epoch as u64));
                }
            }
        }
        let done = self.trainer.done as u64;
        Ok(Position {
            generation: done,
            epoch: done,
            best_fitness: best.map(|b| b.0),
            best_generation: best.map_or(0, |b| b.1),
            budget_s: ctx.clocks.read(ctx.stop.budget_clock),
        })
    }

    fn report(&mut self, ctx: &mut Ctx, _last: bool) -> Result<()> {
        for r in &self.epochs[self.logged..] {
            if self.bars.is_some() {
                eprintln!(
                    "epoch {:>3}/{}: loss {:.4}  train acc {:.4}  val acc {}  {:.1} s  {:.0} samples/s",
                    r.epoch,
                    ctx.stop.epochs.unwrap_or(0),
                    r.train_loss,
                    r.train_acc,
                    r.val_acc.map(|a| format!("{a:.4}")).unwrap_or_else(|| "-".into()),
                    r.seconds,
                    r.samples_per_s
                );
            }
            let mut fields = serde_json::to_value(r)?;
            fields.as_object_mut().map(|m| m.remove("epoch"));
            let record = crate::run::Record::new("epoch", ctx.clocks.wall_s(), ctx.clocks.cpu_s())
                .epoch(r.epoch as u64)
                .with(fields);
            ctx.emit(&record)?;
        }
        self.logged = self.epochs.len();
        Ok(())
    }

    fn checkpoint_due(&self, _ctx: &Ctx) -> bool {
        true
    }

    /// The weights, then the epoch count and the clocks; nothing before the first epoch.
    fn checkpoint(&mut self, ctx: &mut Ctx) -> Result<()> {
        let state = TrainState {
            epochs_done: self.trainer.done,
            clocks: ctx.clocks.state(),
        };
        if state.epochs_done == 0 {
            return Ok(());
        }
        let payload = Some((dir::WEIGHTS, checkpoint::Payload::Vars(self.vs)));
        checkpoint::save(self.rd, dir::TRAIN_STATE, &state, payload)
    }

    fn advance(&mut self, _ctx: &mut Ctx) -> Result<Option<StopReason>> {
        let r = self.trainer.epoch(
            self.net,
            &self.data.train,
            Some(&self.data.val),
            self.bars.as_ref(),
        )?;
        self.epochs.push(r);
        Ok(None)
    }
}

/// The stop criteria of a train run: its epochs, and the patience and time budget it was given.
fn stop_criteria(cfg: &TrainRunConfig) -> StopCriteria {
    StopCriteria {
        epochs: Some(cfg.train.epochs as u64),
        ..cfg.stop.clone()
    }
}

pub fn run_train(args: &TrainArgs) -> Result<TrainSummary> {
    let run = crate::run::open(
        &args.run,
        |new| {
            let cfg = args.to_config(new)?;
            cfg.train.validate()?;
            cfg.stop.validate()?;
            Ok(cfg)
        },
        |cfg| args.apply_on_resume(cfg),
    )?;
    // a place the model cannot be written to is found now, not after the training
    let export = run.cfg.export_path(&run.dir);
    fsutil::check_writable(&export).map_err(|e| {
        Error::usage(format!(
            "--export {}: cannot be written there ({e})",
            export.display()
        ))
    })?;
    let (cfg, device, resumed) = (&run.cfg, run.device, run.resumed);
    let rd = &run.dir;
    let arch = Arch::parse(&cfg.arch)?;
    let data = load_dataset(&cfg.dataset, &cfg.data, device)?;
    if cfg.stop.patience.is_some() && data.val.is_empty() {
        return Err(Error::usage(
            "--patience counts epochs without a better validation accuracy: it needs --val-fraction above 0",
        ));
    }
    check_memory(cfg, &arch, &data)?;
    // the initial weights depend on the seed alone
    run.streams.init_libtorch();
    let mut vs = tch::nn::VarStore::new(device);
    let mut net = LayerNet::new(&vs.root(), &arch, data.shape, data.num_classes() as i64)?;
    net.set_precision(cfg.train.precision);
    let params = parameter_count(&vs);
    let state = if resumed {
        restore(rd, &mut vs)?
    } else {
        TrainState::default()
    };
    let done = state.epochs_done;
    let keep = |_, r: &serde_json::Value| {
        r.get("epoch")
            .and_then(|e| e.as_u64())
            .is_some_and(|e| e as usize <= done)
    };
    let bar = indicatif::ProgressBar::hidden();
    let stop = stop_criteria(cfg);
    let (mut driver, kept) = Driver::open(rd, keep, stop, state.clocks, bar, resumed)?;
    let previous: Vec<EpochReport> = kept
        .into_iter()
        .filter_map(|v| serde_json::from_value(v).ok())
        .collect();
    if !args.run.quiet {
        let resuming = resumed.then_some(done);
        print_header(cfg, &arch, &data, params, device, resuming);
    }
    let mut step = TrainStep {
        net: &net,
        vs: &vs,
        data: &data,
        trainer: EpochTrainer::new(&vs, data.train.len(), &cfg.train, done)?,
        logged: previous.len(),
        epochs: previous,
        bars: (!args.run.quiet).then(indicatif::MultiProgress::new),
        rd,
    };
    let stop_reason = drive(&mut step, &mut driver)?;
    let epochs = std::mem::take(&mut step.epochs);
    drop(step);
    let summary = TrainSummary {
        run_dir: rd.path().to_path_buf(),
        arch: arch.to_string(),
        parameters: params,
        dataset: data.name.clone(),
        device: device_name(device),
        train_samples: data.train.len(),
        val_samples: data.val.len(),
        test_samples: data.test.len(),
        epochs,
        val_acc: None,
        test_acc: None,
        export: None,
        stop_reason,
        elapsed_s: driver.clocks.wall_s(),
        cpu_s: driver.clocks.cpu_s(),
    };
    let summary = finish(
        summary,
        &mut net,
        &mut vs,
        &data,
        (export, cfg.train.seed.seed()),
    )?;
    driver.finish(rd, stop_reason.as_str(), &summary)?;
    Ok(summary)
}

/// The end of a training: the accuracies of the model as exported (unless Ctrl-C or SIGTERM
/// stopped it: a half-trained model is not exported as the result; `--resume` goes on).
fn finish(
    mut summary: TrainSummary,
    net: &mut LayerNet,
    vs: &mut tch::nn::VarStore,
    data: &crate::data::Dataset,
    (export, seed): (PathBuf, u64),
) -> Result<TrainSummary> {
    // the figures are those of the exported model, which computes in fp32
    net.set_precision(Precision::Fp32);
    let val_acc = (!data.val.is_empty()).then(|| accuracy(&*net, &data.val, EVAL_BATCH));
    let test_acc = (!data.test.is_empty()).then(|| accuracy(&*net, &data.test, EVAL_BATCH));
    let metrics = serde_json::json!({
        "val_acc": val_acc, "test_acc": test_acc, "epochs": summary.epochs.len(),
        "train_samples": data.train.len(), "seed": seed,
    });
    if summary.stop_reason != StopReason::Interrupted {
        let info = ModelInfo::for_classifier(&*net, summary.parameters, data, metrics);
        export_classifier(&*net, vs, &export, info)?;
        summary.export = Some(export);
    }
    Ok(TrainSummary {
        val_acc,
        test_acc,
        ..summary
    })
}

/// Loads a resumed run's weights; its checkpoint's state (epochs done, clocks), all zero for a
/// run that stopped before its first checkpoint.
fn restore(rd: &RunDir, vs: &mut tch::nn::VarStore) -> Result<TrainState> {
    let Some(state) = checkpoint::load_state::<TrainState>(rd, dir::TRAIN_STATE)? else {
        return Ok(TrainState::default());
    };
    checkpoint::load_vars(rd, dir::WEIGHTS, vs, "the weights")?;
    if state.clocks != ClockState::default() {
        return Ok(state);
    }
    // a run checkpointed before its state kept the clocks: its last epoch record has them
    let last = crate::run::log::read(&rd.log())?
        .into_iter()
        .rfind(|r| r.get("epoch").and_then(|e| e.as_u64()) == Some(state.epochs_done as u64));
    let clocks = match last {
        Some(r) => serde_json::from_value(r)?,
        None => ClockState::default(),
    };
    Ok(TrainState { clocks, ..state })
}

/// The line that says what the run trains, on what.
fn print_header(
    cfg: &TrainRunConfig,
    arch: &Arch,
    data: &crate::data::Dataset,
    params: i64,
    device: tch::Device,
    resuming: Option<usize>,
) {
    eprintln!(
        "train: {} on {} ({} train / {} val / {} test, {:?}), {} parameters, {} on {}, seed {}{}",
        arch,
        data.name,
        data.train.len(),
        data.val.len(),
        data.test.len(),
        data.shape,
        params,
        match cfg.train.optimizer {
            Optimizer::Adam => "adam".to_string(),
            Optimizer::Sgd { momentum } => format!("sgd (momentum {momentum})"),
        },
        device_name(device),
        cfg.train.seed.seed(),
        resuming
            .map(|d| format!(", resuming after epoch {d}"))
            .unwrap_or_default()
    );
}

/// Refuses a network that cannot train one step in this machine's memory, before it is built.
fn check_memory(cfg: &TrainRunConfig, arch: &Arch, data: &crate::data::Dataset) -> Result<()> {
    crate::run::memory::check(
        &format!(
            "--arch \"{}\" with --batch-size {}",
            cfg.arch, cfg.train.batch_size
        ),
        &format!("one training step on {:?} images", data.shape),
        arch.training_bytes(
            data.shape,
            data.num_classes() as i64,
            cfg.train.batch_size as i64,
        ),
    )
}
