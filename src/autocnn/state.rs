//! The state of a search, as `checkpoint.json` keeps it, and what a finished search reports
//! (`result.json`): the types the search loop, the export and the report all read, in a module
//! of their own so that none of those three depends on another.
use super::cache::{Cache, Evaluation};
use super::config::SearchConfig;
use super::halving::selection_key;
use crate::error::{Error, Result};
use crate::fsutil;
use crate::ga::GaRng;
use crate::run::{dir as rdir, ClockState, Job, RunDir};
use serde::{Deserialize, Serialize};
use std::path::PathBuf;

/// The best network of a search as TorchScript (`auto-cnn export` writes it too, by default).
pub(crate) const BEST_MODEL: &str = "best.pt";
/// What [`BEST_MODEL`] is: its architecture, parameters and accuracies.
pub(crate) const BEST_INFO: &str = "best.json";
/// The Pareto front of a search with a second objective (`--objectives accuracy,params`),
/// rewritten at the end of every generation.
pub(crate) const PARETO: &str = "pareto.json";
/// Every network such a search evaluated (fitness against size), its front highlighted.
pub(crate) const PARETO_PLOT: &str = "pareto.png";

#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub(crate) struct Individual {
    pub(crate) genome: String,
    /// How it was made: random, copy, crossover, + mutation.
    pub(crate) origin: String,
    /// Its accuracy at the rung it reached.
    pub(crate) fitness: Option<f64>,
    /// The rung its fitness is from (successive halving; always 0 with `--fidelity full`, whose
    /// one rung is the full training).
    #[serde(default, skip_serializing_if = "is_zero")]
    pub(crate) rung: usize,
    /// Promoted to the next rung and not trained there yet.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub(crate) promoted: bool,
    /// The log record of its evaluation at a rung below the last, written when its promotion
    /// is decided (it says whether it was promoted): when it is certain, or when its rung is
    /// complete.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) record: Option<super::records::EvaluationRecord>,
}

fn is_zero(n: &usize) -> bool {
    *n == 0
}

/// Whether an evaluation scored a network that trained (not a refusal, a crash or a genome
/// that could not run): only such a network can be the best and be exported.
pub(crate) fn trained_network(e: &Evaluation) -> bool {
    !e.evaluated.is_empty()
        && e.params > 0
        && !e.note.as_deref().is_some_and(|n| n.starts_with("scored 0"))
}

/// Fitness of each individual; NaN (ranked last) where it is not known.
pub(crate) fn fitness_of(list: &[Individual]) -> Vec<f64> {
    list.iter().map(|p| p.fitness.unwrap_or(f64::NAN)).collect()
}

/// What selection compares for each individual: rung reached, then fitness there, as one
/// number ([`selection_key`]; the plain fitness when every individual reached the last rung
/// `top`, as with `--fidelity full`).
pub(crate) fn selection_keys(list: &[Individual], top: usize) -> Vec<f64> {
    list.iter()
        .map(|p| selection_key(p.rung, top, p.fitness.unwrap_or(f64::NAN)))
        .collect()
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub(crate) enum Phase {
    /// Train the individuals without fitness (the population in generation 0, else offspring).
    Evaluate,
    /// The generation is complete: breed the next offspring (or stop).
    Breed,
    /// Written by earlier versions after the last generation; read as `Breed`.
    Done,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
pub(crate) struct SearchState {
    pub(crate) generation: usize,
    pub(crate) phase: Phase,
    pub(crate) rng: GaRng,
    pub(crate) population: Vec<Individual>,
    pub(crate) offspring: Vec<Individual>,
    pub(crate) evaluations: usize,
    pub(crate) trained: usize,
    pub(crate) cache_hits: usize,
    pub(crate) log_lines: usize,
    /// Wall and CPU seconds of the search so far, over all invocations.
    #[serde(flatten)]
    pub(crate) clocks: ClockState,
    pub(crate) best: Option<Evaluation>,
    /// The rung `best` was scored at (successive halving).
    #[serde(default, skip_serializing_if = "is_zero")]
    pub(crate) best_rung: usize,
    /// Successive halving: the rung of the generation in progress (with overlapping rungs,
    /// the lowest not complete; networks may be ahead of it)...
    #[serde(default, skip_serializing_if = "is_zero")]
    pub(crate) rung: usize,
    /// ...and every rung's training budget in steps, lowest first (none with `--fidelity
    /// full`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub(crate) budgets: Vec<usize>,
    pub(crate) stop_reason: Option<String>,
    /// The search's id on a broker (made when it first runs with --broker).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) broker_id: Option<String>,
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

/// Reads the config and checkpoint of an existing search directory (`auto-cnn show`/`export`).
pub(crate) fn open_run(rd: &RunDir, what: &str) -> Result<(SearchConfig, SearchState)> {
    rd.check_resumable(Job::AutoCnn, what)?;
    has_state(rd, what)?;
    Ok((
        crate::run::context::read_config(rd)?,
        fsutil::read_json(&rd.file(rdir::STATE))?,
    ))
}

/// The checkpoint of a search whose config the run layer has read already (`--resume`).
pub(crate) fn read_state(rd: &RunDir, what: &str) -> Result<SearchState> {
    has_state(rd, what)?;
    fsutil::read_json(&rd.file(rdir::STATE))
}

fn has_state(rd: &RunDir, what: &str) -> Result<()> {
    if rd.file(rdir::STATE).is_file() {
        return Ok(());
    }
    Err(Error::usage(format!(
        "{what} {}: no {} there: the search stopped before its first checkpoint",
        rd.path().display(),
        rdir::STATE
    )))
}

/// The fitness cache of a search directory (empty before the first evaluation).
pub(crate) fn load_cache(rd: &RunDir) -> Result<Cache> {
    let path = rd.file(rdir::CACHE);
    if path.exists() {
        fsutil::read_json(&path)
    } else {
        Ok(Cache::default())
    }
}
