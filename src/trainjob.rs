//! `neuroevo train`: train a classifier described in the layer-list notation, report train
//! loss, validation and test accuracy, and export it as TorchScript.
use crate::data::{load_dataset, DataArgs, DataOptions, DatasetName};
use crate::device::device_name;
use crate::error::{Error, Result};
use crate::fsutil;
use crate::nn::export::{export_classifier, ModelInfo};
use crate::nn::model::parameter_count;
use crate::nn::train::{
    accuracy, train_classifier, EpochReport, Optimizer, Schedule, TrainConfig, EVAL_BATCH,
};
use crate::nn::{Arch, LayerNet, Precision};
use crate::run::{dir, JobConfig, NewRun, RunArgs, RunDir, StopReason};
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
    /// Images per optimisation step.
    #[arg(long, default_value_t = 64)]
    pub batch_size: usize,
    /// Learning rate (the start of the cosine decay with --schedule cosine).
    #[arg(long, default_value_t = 1e-3)]
    pub lr: f64,
    /// adam or sgd.
    #[arg(long, default_value = "adam", value_parser = crate::ga::cli::optimizer_values())]
    pub optimizer: String,
    /// Momentum of SGD.
    #[arg(long, default_value_t = 0.9)]
    pub momentum: f64,
    /// constant or cosine.
    #[arg(long, default_value = "constant", value_parser = crate::ga::cli::schedule_values())]
    pub schedule: String,
    /// L2 weight decay.
    #[arg(long, default_value_t = 0.0)]
    pub weight_decay: f64,
    /// Shift training images by up to this many pixels at random (0: no augmentation).
    #[arg(long, default_value_t = 0)]
    pub augment_shift: i64,
    /// What convolutions compute in while training: auto (bf16 on a CPU with AVX512-BF16, else
    /// fp32), fp32 or bf16 (mixed precision, fp32 weights). The exported model computes in fp32.
    #[arg(long, default_value = "auto", value_parser = crate::ga::cli::precision_values())]
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
}

impl JobConfig for TrainRunConfig {
    const JOB: crate::run::Job = crate::run::Job::Train;
    /// `--export` may be given again: a resumed run writes outside its directory only where
    /// the user asks in that invocation.
    const ON_RESUME: &'static [&'static str] = &["--epochs", "--export"];
    fn device(&self) -> &str {
        &self.device
    }
    fn seed(&self) -> u64 {
        self.train.seed
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
}

impl TrainArgs {
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
                seed,
                precision: Precision::parse(&self.precision, new.device)?,
            },
            device: new.device_name.clone(),
            export: match &self.export {
                None => PathBuf::from("model.pt"),
                Some(p) => export_setting(p, self.run.out.as_deref()),
            },
        })
    }
}

#[derive(Serialize, Deserialize)]
struct TrainState {
    epochs_done: usize,
}

pub fn run_train(args: &TrainArgs) -> Result<TrainSummary> {
    let run = crate::run::open(
        &args.run,
        |new| {
            let cfg = args.to_config(new)?;
            cfg.train.validate()?;
            Ok(cfg)
        },
        |cfg| {
            if args.run.was_given("--epochs") {
                cfg.train.epochs = args.epochs;
            }
            cfg.export = match &args.export {
                Some(p) => export_setting(p, args.run.resume.as_deref()),
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
            cfg.train.validate()
        },
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
    let dir = rd.path().to_path_buf();
    let arch = Arch::parse(&cfg.arch)?;
    let data = load_dataset(&cfg.dataset, &cfg.data, device)?;
    // the initial weights depend on the seed alone
    run.streams.init_libtorch();
    let mut vs = tch::nn::VarStore::new(device);
    let mut net = LayerNet::new(&vs.root(), &arch, data.shape, data.num_classes() as i64)?;
    net.set_precision(cfg.train.precision);
    let params = parameter_count(&vs);
    let mut done = 0;
    let log_path = rd.log();
    let weights = rd.file(dir::WEIGHTS);
    let state_file = rd.file(dir::TRAIN_STATE);
    if resumed && state_file.is_file() {
        vs.load(&weights).map_err(|e| {
            crate::error::Error::corrupt(
                &weights,
                format!(
                    "cannot load the weights: {}",
                    e.to_string().lines().next().unwrap_or("")
                ),
            )
        })?;
        done = fsutil::read_json::<TrainState>(&state_file)?.epochs_done;
    }
    let (mut log, kept) = crate::run::Log::open(&log_path, |_, r| {
        r.get("epoch")
            .and_then(|e| e.as_u64())
            .is_some_and(|e| e as usize <= done)
    })?;
    let base = |k: &str| {
        kept.last()
            .and_then(|r| r.get(k))
            .and_then(|v| v.as_f64())
            .unwrap_or(0.0)
    };
    let (base_wall, base_cpu) = (base("elapsed_s"), base("cpu_s"));
    let previous: Vec<EpochReport> = kept
        .into_iter()
        .filter_map(|v| serde_json::from_value(v).ok())
        .collect();
    if !args.run.quiet {
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
            cfg.train.seed,
            if resumed { format!(", resuming after epoch {done}") } else { String::new() }
        );
    }
    let mut epochs = previous;
    let clocks = crate::run::Clocks::resume(base_wall, base_cpu);
    if done < cfg.train.epochs {
        let quiet = args.run.quiet;
        let bars = indicatif::MultiProgress::new();
        let reports = train_classifier(
            &net,
            &vs,
            &data.train,
            Some(&data.val),
            &cfg.train,
            done,
            (!quiet).then_some(&bars),
            |r| {
                if !quiet {
                    eprintln!(
                    "epoch {:>3}/{}: loss {:.4}  train acc {:.4}  val acc {}  {:.1} s  {:.0} samples/s",
                    r.epoch,
                    cfg.train.epochs,
                    r.train_loss,
                    r.train_acc,
                    r.val_acc.map(|a| format!("{a:.4}")).unwrap_or_else(|| "-".into()),
                    r.seconds,
                    r.samples_per_s
                );
                }
                let mut fields = serde_json::to_value(r)?;
                fields.as_object_mut().map(|m| m.remove("epoch"));
                let record = crate::run::Record::new("epoch", clocks.wall_s(), clocks.cpu_s())
                    .epoch(r.epoch as u64)
                    .with(fields);
                log.append(&record)?;
                // checkpoint: weights, then the epoch count (each written atomically)
                fsutil::write_torch(&weights, |buf| Ok(vs.save_to_stream(buf)?))?;
                fsutil::write_json_atomic(
                    &state_file,
                    &TrainState {
                        epochs_done: r.epoch,
                    },
                )?;
                // Ctrl-C/SIGTERM: the checkpoint is written; --resume goes on
                Ok(!crate::interrupt::requested())
            },
        )?;
        epochs.extend(reports);
    }
    let stop_reason = if epochs.last().map_or(done, |r| r.epoch) < cfg.train.epochs {
        StopReason::Interrupted
    } else {
        StopReason::Epochs
    };
    // the figures are those of the exported model, which computes in fp32
    net.set_precision(Precision::Fp32);
    let val_acc = (!data.val.is_empty()).then(|| accuracy(&net, &data.val, EVAL_BATCH));
    let test_acc = (!data.test.is_empty()).then(|| accuracy(&net, &data.test, EVAL_BATCH));
    let metrics = serde_json::json!({
        "val_acc": val_acc, "test_acc": test_acc, "epochs": cfg.train.epochs,
        "train_samples": data.train.len(), "seed": cfg.train.seed,
    });
    let export = match stop_reason {
        StopReason::Interrupted => None,
        _ => {
            let info = ModelInfo::for_classifier(&net, params, &data, metrics);
            let export = cfg.export_path(rd);
            export_classifier(&net, &mut vs, &export, info)?;
            Some(export)
        }
    };
    let summary = TrainSummary {
        run_dir: dir.clone(),
        arch: arch.to_string(),
        parameters: params,
        dataset: data.name.clone(),
        device: device_name(device),
        train_samples: data.train.len(),
        val_samples: data.val.len(),
        test_samples: data.test.len(),
        epochs,
        val_acc,
        test_acc,
        export,
        stop_reason,
    };
    fsutil::write_json_atomic(&rd.result(), &summary)?;
    Ok(summary)
}
