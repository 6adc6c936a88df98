//! `neuroevo train`: train a classifier described in the layer-list notation, report train
//! loss, validation and test accuracy, and export it as TorchScript.
use crate::data::{load_dataset, DataArgs, DataOptions, DatasetName};
use crate::device::{device_name, parse_device};
use crate::error::{Error, Result};
use crate::nn::export::{export_classifier, ModelInfo};
use crate::nn::model::parameter_count;
use crate::nn::train::{
    accuracy, train_classifier, EpochReport, Optimizer, Schedule, TrainConfig, EVAL_BATCH,
};
use crate::nn::{Arch, LayerNet, Precision};
use crate::runutil::RunArgs;
use crate::{fsutil, runutil};
use serde::{Deserialize, Serialize};
use std::path::PathBuf;

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
    #[arg(long, default_value = "adam")]
    pub optimizer: String,
    /// Momentum of SGD.
    #[arg(long, default_value_t = 0.9)]
    pub momentum: f64,
    /// constant or cosine.
    #[arg(long, default_value = "constant")]
    pub schedule: String,
    /// L2 weight decay.
    #[arg(long, default_value_t = 0.0)]
    pub weight_decay: f64,
    /// Shift training images by up to this many pixels at random (0: no augmentation).
    #[arg(long, default_value_t = 0)]
    pub augment_shift: i64,
    /// What convolutions compute in while training: auto (bf16 on a CPU with AVX512-BF16, else
    /// fp32), fp32 or bf16 (mixed precision, fp32 weights). The exported model computes in fp32.
    #[arg(long, default_value = "auto")]
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
    pub export: PathBuf,
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
    pub export: PathBuf,
}

impl TrainArgs {
    fn to_config(&self, out: &std::path::Path) -> Result<TrainRunConfig> {
        let seed = runutil::seed_or_random(self.run.seed);
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
                precision: Precision::parse(
                    &self.precision,
                    parse_device(&self.run.device_or_auto())?,
                )?,
            },
            device: self.run.device_or_auto(),
            export: self.export.clone().unwrap_or_else(|| out.join("model.pt")),
        })
    }
}

#[derive(Serialize, Deserialize)]
struct TrainState {
    epochs_done: usize,
}

pub fn run_train(args: &TrainArgs) -> Result<TrainSummary> {
    let (cfg, dir, resumed) = match &args.run.resume {
        Some(dir) => {
            runutil::check_resume_dir(dir, &["config.json", "checkpoint.ot", "state.json"])?;
            let cfg: TrainRunConfig = fsutil::read_json(&dir.join("config.json"))?;
            (cfg, dir.clone(), true)
        }
        None => {
            let dir = args.run.out_or_default("train");
            let cfg = args.to_config(&dir)?;
            cfg.train.validate()?;
            runutil::prepare_new_run_dir(&dir)?;
            fsutil::write_json_atomic(&dir.join("config.json"), &cfg)?;
            (cfg, dir, false)
        }
    };
    let device = parse_device(&cfg.device)?;
    let arch = Arch::parse(&cfg.arch)?;
    let data = load_dataset(&cfg.dataset, &cfg.data, device)?;
    let mut vs = tch::nn::VarStore::new(device);
    let mut net = LayerNet::new(&vs.root(), &arch, data.shape, data.num_classes() as i64)?;
    net.set_precision(cfg.train.precision);
    let params = parameter_count(&vs);
    let mut done = 0;
    let log_path = dir.join("log.jsonl");
    let mut previous: Vec<EpochReport> = Vec::new();
    if resumed {
        vs.load(dir.join("checkpoint.ot"))?;
        done = fsutil::read_json::<TrainState>(&dir.join("state.json"))?.epochs_done;
        let text = std::fs::read_to_string(&log_path).unwrap_or_default();
        previous = text
            .lines()
            .filter_map(|l| serde_json::from_str::<EpochReport>(l).ok())
            .filter(|r| r.epoch <= done)
            .collect();
    }
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
    // rewrite the log with the finished epochs only, then append
    fsutil::write_jsonl_atomic(&log_path, &previous)?;
    let mut epochs = previous;
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
                fsutil::append_jsonl(&log_path, r)?;
                // checkpoint: weights, then the epoch count (each written atomically)
                fsutil::replace_atomic(&dir.join("checkpoint.ot"), |tmp| Ok(vs.save(tmp)?))?;
                fsutil::write_json_atomic(
                    &dir.join("state.json"),
                    &TrainState {
                        epochs_done: r.epoch,
                    },
                )
            },
        )?;
        epochs.extend(reports);
    }
    // the figures are those of the exported model, which computes in fp32
    net.set_precision(Precision::Fp32);
    let val_acc = (!data.val.is_empty()).then(|| accuracy(&net, &data.val, EVAL_BATCH));
    let test_acc = (!data.test.is_empty()).then(|| accuracy(&net, &data.test, EVAL_BATCH));
    let metrics = serde_json::json!({
        "val_acc": val_acc, "test_acc": test_acc, "epochs": cfg.train.epochs,
        "train_samples": data.train.len(), "seed": cfg.train.seed,
    });
    let info = ModelInfo::for_classifier(&net, params, &data, metrics);
    export_classifier(&net, &mut vs, &cfg.export, info)?;
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
        export: cfg.export.clone(),
    };
    fsutil::write_json_atomic(&dir.join("result.json"), &summary)?;
    Ok(summary)
}
