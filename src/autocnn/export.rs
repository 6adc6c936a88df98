//! `auto-cnn export`, and the export at the end of a search: the best network as TorchScript,
//! from the weights the search trained (`best.ot`) or retrained on train+val.
use super::cache::*;
use super::config::*;
use super::state::*;
use crate::data::{load_dataset, Dataset};
use crate::device::parse_device;
use crate::error::{Error, Result};
use crate::nn::arch::Arch;
use crate::nn::export::{export_classifier, ModelInfo};
use crate::nn::model::{parameter_count, LayerNet};
use crate::nn::train::{accuracy, train_classifier, TrainConfig, EVAL_BATCH};
use crate::nn::Precision;
use crate::run::{dir as rdir, RunDir};
use indicatif::MultiProgress;
use serde_json::json;
use std::path::{Path, PathBuf};
use tch::nn::VarStore;

/// Trains (with `final_epochs`, from scratch on train+val) or loads (`best.ot`) the best
/// network and exports it as TorchScript at `path`, with its test accuracy.
pub(crate) fn export_model(
    dir: &RunDir,
    path: &Path,
    cfg: &SearchConfig,
    best: &Evaluation,
    final_epochs: Option<usize>,
    data: &mut Dataset,
    bars: Option<&MultiProgress>,
) -> Result<BestModel> {
    let arch = Arch::parse(&best.evaluated)?;
    let weights = dir.file(rdir::BEST_WEIGHTS);
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
            train_classifier(&net, &vs, &train, None, &tc, 0, bars, |_| Ok(true))?;
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
    let rd = RunDir::new(&args.run_dir);
    let (mut cfg, state) = open_run(&rd, "auto-cnn export")?;
    // a live search rewrites best.ot and the checkpoint's best, and writes best.pt at its end
    let _lock = rd.lock().map_err(|e| match e {
        Error::Usage(m) => Error::usage(m.replace(
            "wait for that run to end, or use another --out",
            "export it when that search has ended",
        )),
        e => e,
    })?;
    if let Some(d) = &args.device {
        cfg.device = d.clone();
    }
    if args.final_epochs == Some(0) {
        return Err(Error::usage("--final-epochs must be at least 1"));
    }
    let best = state.best.ok_or_else(|| {
        Error::usage(format!(
            "{}: no network has been evaluated yet",
            rd.path().display()
        ))
    })?;
    let mut data = load_dataset(&cfg.dataset, &cfg.data, parse_device(&cfg.device)?)?;
    let bars = (!args.quiet).then(MultiProgress::new);
    let path = args.out.clone().unwrap_or_else(|| rd.file(BEST_MODEL));
    export_model(
        &rd,
        &path,
        &cfg,
        &best,
        args.final_epochs,
        &mut data,
        bars.as_ref(),
    )
}
