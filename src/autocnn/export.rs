//! `auto-cnn export`, and the export at the end of a search: the best network as TorchScript,
//! from the weights the search trained (`best.ot`) or retrained on train+val; or, with
//! `--pick`, another network of the search's Pareto front. A search keeps only its best
//! network's weights, so a picked network other than the best is trained again with the
//! search's settings — training is seeded, so on the search's device and thread count this is
//! the network the search scored (its fitness is compared, and a difference is said).
use super::cache::*;
use super::config::*;
use super::evaluate::train_genome;
use super::pareto::{self, FrontPoint};
use super::sizecap::Sizer;
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

/// Where the weights of a network the search trained are.
#[derive(Clone, Copy)]
pub(crate) enum Weights<'a> {
    /// `best.ot`: the search's best network.
    Best,
    /// These bytes (a network trained again).
    Bytes(&'a [u8]),
    /// Nowhere (it is retrained from scratch with `final_epochs`).
    Gone,
}

/// Trains (with `final_epochs`, from scratch on train+val) or loads (`weights`) the network
/// `best` and exports it as TorchScript at `path`, with its test accuracy.
#[allow(clippy::too_many_arguments)]
pub(crate) fn export_model(
    dir: &RunDir,
    path: &Path,
    cfg: &SearchConfig,
    best: &Evaluation,
    trained: Weights,
    final_epochs: Option<usize>,
    data: &mut Dataset,
    bars: Option<&MultiProgress>,
) -> Result<BestModel> {
    let arch = Arch::parse(&best.evaluated)?;
    let weights = dir.file(rdir::BEST_WEIGHTS);
    let load_best = |vs: &mut VarStore| match trained {
        Weights::Bytes(bytes) => Ok(vs.load_from_stream(std::io::Cursor::new(bytes))?),
        Weights::Gone => Err(Error::Other(format!("no weights of \"{arch}\" are kept"))),
        Weights::Best => vs.load(&weights).map_err(|e| {
            Error::corrupt(
                &weights,
                format!("cannot load the weights of \"{arch}\": {e}"),
            )
        }),
    };
    // the test accuracy of the network the search trained, before any retraining (fp32)
    let mut search_test_acc = None;
    let have_weights = match trained {
        Weights::Best => weights.exists(),
        Weights::Bytes(_) => true,
        Weights::Gone => false,
    };
    if final_epochs.is_some() && have_weights && !data.test.is_empty() {
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
    /// Export a network of the search's Pareto front instead of its best: max-params=N (the
    /// most accurate evaluated network with at most N parameters), max-macs=N, or an index in
    /// the front sorted by size (0 = the smallest; pareto.json lists it). A network other than
    /// the best is trained again with the search's settings (default --out:
    /// RUN_DIR/front-<params>.pt).
    #[arg(long)]
    pub pick: Option<String>,
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
    let pick = args.pick.as_deref().map(Pick::parse).transpose()?;
    let mut data = load_dataset(&cfg.dataset, &cfg.data, parse_device(&cfg.device)?)?;
    let bars = (!args.quiet).then(MultiProgress::new);
    let Some(pick) = pick else {
        let path = args.out.clone().unwrap_or_else(|| rd.file(BEST_MODEL));
        return export_model(
            &rd,
            &path,
            &cfg,
            &best,
            Weights::Best,
            args.final_epochs,
            &mut data,
            bars.as_ref(),
        );
    };
    let sizer = Sizer::new(&cfg, data.shape, data.num_classes() as i64);
    let records = super::report::read_records(&rd);
    let points = pareto::evaluated_points(&records, |g| sizer.size_of_genome(g));
    let p = pick.choose(&points, cfg.objectives)?;
    let chosen = Evaluation {
        genome: p.genome.clone(),
        evaluated: p.evaluated.clone(),
        params: p.params,
        fitness: p.fitness,
        val_acc: p.val_acc,
        test_acc: p.test_acc,
        seconds: 0.0,
        note: None,
        budget_steps: None,
    };
    let path = args
        .out
        .clone()
        .unwrap_or_else(|| rd.file(&format!("front-{}.pt", p.params)));
    // the best network's weights are kept; any other is trained again (unless retrained anyway)
    let mut bytes = None;
    if p.genome != best.genome && args.final_epochs.is_none() {
        eprintln!(
            "auto-cnn export: retraining \"{}\" ({} parameters) with the search's settings: the \
             search keeps only its best network's weights",
            shorten(&p.evaluated),
            p.params
        );
        let t = train_genome(&p.genome, &cfg, &mut data, None, bars.as_ref(), None)?;
        if t.eval.fitness != p.fitness {
            eprintln!(
                "auto-cnn export: the retrained network scores {:.4}, the search's {:.4} (another \
                 device or thread count computes in another order)",
                t.eval.fitness, p.fitness
            );
        }
        bytes = Some(t.weights.ok_or_else(|| {
            Error::Other(format!(
                "\"{}\" did not train again: {}",
                shorten(&p.genome),
                t.eval.note.unwrap_or_default()
            ))
        })?);
    }
    export_model(
        &rd,
        &path,
        &cfg,
        &chosen,
        match &bytes {
            Some(b) => Weights::Bytes(b),
            None if p.genome == best.genome => Weights::Best,
            None => Weights::Gone,
        },
        args.final_epochs,
        &mut data,
        bars.as_ref(),
    )
}

/// Which network of the front `--pick` exports.
#[derive(Clone, Copy, Debug, PartialEq)]
pub(crate) enum Pick {
    /// The most accurate evaluated network with at most this many parameters.
    MaxParams(i64),
    /// The most accurate evaluated network with at most this many MACs.
    MaxMacs(i64),
    /// An index in the front sorted by size.
    Index(usize),
}

impl Pick {
    pub(crate) fn parse(s: &str) -> Result<Pick> {
        let bad = || {
            Error::usage(format!(
                "--pick {s}: give max-params=N, max-macs=N or an index in the Pareto front"
            ))
        };
        let number = |v: &str| v.trim().replace('_', "").parse::<i64>().map_err(|_| bad());
        match s.split_once('=') {
            Some((k, v)) if k.trim() == "max-params" => Ok(Pick::MaxParams(number(v)?)),
            Some((k, v)) if k.trim() == "max-macs" => Ok(Pick::MaxMacs(number(v)?)),
            Some(_) => Err(bad()),
            None => s.trim().parse().map(Pick::Index).map_err(|_| bad()),
        }
    }

    /// The network picked among the evaluated `points` of a search that optimised `o` (an
    /// index is in the front of fitness against `o`'s size; parameters for `accuracy`).
    pub(crate) fn choose(self, points: &[FrontPoint], o: Objectives) -> Result<FrontPoint> {
        let o = if o.pareto() {
            o
        } else {
            Objectives::AccuracyParams
        };
        let front = pareto::front(points, o);
        let within =
            |size: fn(&FrontPoint) -> i64, cap: i64, what: &str| {
                // (it lies on the front of fitness against that size)
                points
                    .iter()
                    .filter(|p| size(p) <= cap)
                    .max_by(|a, b| a.fitness.total_cmp(&b.fitness).then(size(b).cmp(&size(a))))
                    .cloned()
                    .ok_or_else(|| {
                        let least = points.iter().map(size).min();
                        Error::usage(format!(
                        "--pick max-{what}={cap}: no evaluated network has at most {cap} {what}{}",
                        least.map(|m| format!(" (the smallest has {m})")).unwrap_or_default()
                    ))
                    })
            };
        match self {
            Pick::MaxParams(n) => within(|p| p.params, n, "params"),
            Pick::MaxMacs(n) => within(|p| p.macs, n, "macs"),
            Pick::Index(i) => front.get(i).cloned().ok_or_else(|| {
                Error::usage(format!(
                    "--pick {i}: the Pareto front ({} against {}) has {} networks, 0 to {}",
                    "fitness",
                    o.size_name(),
                    front.len(),
                    front.len().saturating_sub(1)
                ))
            }),
        }
    }
}
