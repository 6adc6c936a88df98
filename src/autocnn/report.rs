//! What a search shows a person: `fitness.png`, the table of the best genomes, `auto-cnn show`.
use super::cache::*;
use super::config::*;
use super::state::*;
use crate::error::Result;
use crate::fsutil;
use crate::nn::export::ModelInfo;
use crate::plot::{line_plot, Panel, Series};
use crate::run::RunDir;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};

/// The whole records of the search's log (none when it cannot be read).
pub(crate) fn read_records(dir: &RunDir) -> Vec<serde_json::Value> {
    crate::run::log::read(&dir.log()).unwrap_or_default()
}

/// `fitness.png`: best and mean fitness of the population per generation.
pub(crate) fn plot_fitness(dir: &RunDir) -> Result<()> {
    let gens: Vec<serde_json::Value> = read_records(dir)
        .into_iter()
        .filter(|r| r["kind"] == "generation")
        .collect();
    let series = |name: &str, key: &str| Series {
        name: name.into(),
        points: gens
            .iter()
            .filter_map(|r| Some((r["generation"].as_f64()?, r[key].as_f64()?)))
            .collect(),
    };
    line_plot(
        &dir.file("fitness.png"),
        "auto-cnn: fitness (accuracy after the short training) per generation",
        "generation",
        &[Panel {
            log_y: false,
            y_label: "accuracy".into(),
            series: vec![series("best", "best"), series("mean", "mean")],
        }],
    )
}

/// The rung of an evaluation of a search whose rungs train `budgets` steps (the last, the full
/// training, for one without a budget, and for every evaluation with `--fidelity full`).
fn rung_of(e: &Evaluation, budgets: &[usize]) -> usize {
    let last = budgets.len().saturating_sub(1);
    e.budget_steps
        .and_then(|b| budgets[..last].iter().position(|&x| x == b))
        .unwrap_or(last)
}

/// A table of the `top` evaluated genomes, best first. With successive halving (`budgets`,
/// the rungs' steps) each genome is listed once, at the highest rung it reached, and ranks by
/// rung, then fitness, as selection ranks it; a column gives the rung.
pub(crate) fn table(
    entries: &[Evaluation],
    top: usize,
    set: FitnessSet,
    budgets: &[usize],
) -> String {
    let last = budgets.len().saturating_sub(1);
    let key = |x: &Evaluation| super::halving::selection_key(rung_of(x, budgets), last, x.fitness);
    let mut e: Vec<&Evaluation> = entries.iter().collect();
    e.sort_by(|a, b| key(b).total_cmp(&key(a)));
    if !budgets.is_empty() {
        let mut seen = std::collections::HashSet::new();
        e.retain(|x| seen.insert(x.genome.clone()));
    }
    let rung_col = |x: Option<&Evaluation>| match (budgets.is_empty(), x) {
        (true, _) => String::new(),
        (false, None) => format!("  {:>4}", "rung"),
        (false, Some(x)) => format!("  {:>4}", rung_of(x, budgets)),
    };
    let width = e
        .iter()
        .take(top)
        .map(|x| x.genome.len())
        .max()
        .unwrap_or(6)
        .max(6);
    let label = match set {
        FitnessSet::Val => "val acc",
        FitnessSet::Test => "test acc",
    };
    let mut s = format!(
        "rank  {:<width$}  {:>12}{}  {label}\n",
        "genome",
        "params",
        rung_col(None)
    );
    for (i, x) in e.iter().take(top).enumerate() {
        let _ = writeln!(
            s,
            "{:>4}  {:<width$}  {:>12}{}  {:.4}{}",
            i + 1,
            x.genome,
            x.params,
            rung_col(Some(x)),
            x.fitness,
            if x.note.is_some() { "  *" } else { "" }
        );
    }
    if e.iter().take(top).any(|x| x.note.is_some()) {
        s.push_str("   * repaired or scored 0: see the notes in log.jsonl\n");
    }
    s
}

/// Options of `auto-cnn show`.
#[derive(Clone, Debug, clap::Args)]
pub struct ShowArgs {
    /// The run directory of a search (finished, running or killed).
    pub run_dir: PathBuf,
    /// How many of the best genomes to list.
    #[arg(long, default_value_t = 10)]
    pub top: usize,
}

/// `auto-cnn show`: what a search has done so far and its best genomes.
pub fn show_run(dir: &Path, top: usize) -> Result<String> {
    let rd = RunDir::new(dir);
    let (cfg, state) = open_run(&rd, "auto-cnn show")?;
    let cache = load_cache(&rd)?;
    let mut s = format!(
        "auto-cnn search in {}: {}, population {}, {} generations, {} epochs per network{}, fitness on {}, seed {}\n",
        dir.display(),
        cfg.dataset.label(),
        cfg.population,
        cfg.generations,
        cfg.train.epochs,
        match cfg.fidelity {
            Fidelity::Full => String::new(),
            Fidelity::Halving => format!(
                ", successive halving (eta {}, rungs of {:?} steps)",
                cfg.eta, state.budgets
            ),
        },
        cfg.fitness_set,
        cfg.seed
    );
    let pending = |v: &Vec<Individual>| v.iter().filter(|i| i.fitness.is_none()).count();
    let status = match (state.phase, &state.stop_reason) {
        (Phase::Done, _) => "finished (all generations)".to_string(),
        (_, Some(r)) if r == "generations" => {
            format!("finished ({} generations)", state.generation)
        }
        (_, Some(r)) => format!("stopped by {r} at generation {}", state.generation),
        (Phase::Evaluate, None) => {
            let list = if state.generation == 0 {
                &state.population
            } else {
                &state.offspring
            };
            let r = state.rung;
            if r > 0 {
                let left = list.iter().filter(|i| i.promoted).count();
                let done = list.iter().filter(|i| i.rung == r && !i.promoted).count();
                format!(
                    "running or interrupted: generation {} of {}, rung {r} of {}: {done} of {} networks of this rung evaluated",
                    state.generation,
                    cfg.generations,
                    state.budgets.len(),
                    done + left
                )
            } else {
                format!(
                "running or interrupted: generation {} of {}, {} of {} networks of this generation evaluated",
                state.generation,
                cfg.generations,
                list.len() - pending(list),
                list.len()
            )
            }
        }
        (Phase::Breed, None) => format!(
            "running or interrupted: generation {} of {} done",
            state.generation, cfg.generations
        ),
    };
    let _ = writeln!(s, "status: {status}");
    let _ = writeln!(
        s,
        "{} evaluations ({} networks trained, {} from the cache), {:.1} s",
        state.evaluations, state.trained, state.cache_hits, state.clocks.elapsed_s
    );
    let entries: Vec<Evaluation> = cache.entries.values().cloned().collect();
    s.push_str(&table(&entries, top, cfg.fitness_set, &state.budgets));
    let front = rd.file(PARETO);
    if front.exists() {
        let p: serde_json::Value = fsutil::read_json(&front)?;
        let n = p["front"].as_array().map_or(0, |f| f.len());
        let _ = writeln!(
            s,
            "Pareto front ({}): {n} of {} networks, in {} (auto-cnn export {} --pick I, 0 <= I < {n})",
            p["objectives"].as_str().unwrap_or("?"),
            p["evaluated"],
            front.display(),
            dir.display()
        );
    }
    let info = rd.file(BEST_INFO);
    if info.exists() {
        let i: ModelInfo = fsutil::read_json(&info)?;
        let _ = writeln!(
            s,
            "exported: {} = {} ({} parameters), test acc {}",
            rd.file(BEST_MODEL).display(),
            i.arch,
            i.parameters,
            super::fmt_acc(i.metrics["test_acc"].as_f64())
        );
    } else if let Some(b) = &state.best {
        let _ = writeln!(
            s,
            "best so far: {} (fitness {:.4}); not exported yet (auto-cnn export {})",
            b.genome,
            b.fitness,
            dir.display()
        );
    }
    Ok(s)
}
