//! Starting, resuming and finishing `auto-cnn search`: the run directory, the evaluation
//! backend (in-process or a broker's workers), the loop of [`super::search`], and the export
//! of the best network with `result.json`.
use super::cache::*;
use super::config::*;
use super::evaluate::*;
use super::export::*;
use super::report::*;
use super::search::*;
use super::sizecap::{random_within_cap, Sizer};
use super::state::*;
use crate::data::Dataset;
use crate::device::device_name;
use crate::error::{Error, Result};
use crate::ga::GaRng;
use crate::run::{drive, progress, Driver, Run, RunDir, StopCriteria};
use indicatif::{MultiProgress, ProgressBar};
use tch::Device;

/// `auto-cnn search`: runs (or resumes) a search, then exports the best network.
pub fn run_search(args: &SearchArgs) -> Result<SearchSummary> {
    let run = open(args)?;
    let cfg = &run.cfg;
    let mut local = LocalEvaluator::new(cfg, &run.devices)?;
    let d = &local.workers[0];
    cfg.check_memory(d.shape, d.num_classes() as i64)?;
    // sizes are those of the networks as trained on this data; a cap no network meets is
    // refused before anything is trained
    let sizer = Sizer::new(cfg, d.shape, d.num_classes() as i64);
    sizer.check_possible()?;
    let mut state = if run.resumed {
        let mut state = read_state(&run.dir, "--resume")?;
        state.stop_reason = None;
        state
    } else {
        first_state(cfg, &sizer, run.streams.ga())
    };
    // successive halving's rung budgets follow from the training set's length
    let budgets = super::halving::rung_budgets(cfg, d.train.len());
    if state.budgets.is_empty() {
        state.budgets = budgets;
    } else if state.budgets != budgets {
        return Err(Error::Other(format!(
            "{}: the rung budgets of its checkpoint, {:?} steps, are not those of its data here, {budgets:?}",
            run.dir.path().display(),
            state.budgets
        )));
    }
    // with a broker, this process keeps its copy of the data for the hash and the export
    let remote = match &args.broker {
        Some(url) => Some(connect_broker(url, &mut state, &local.workers[0])?),
        None => None,
    };
    let settings = cfg.fitness_settings();
    let cache = load_cache(&run.dir)?;
    let bars = (!run.quiet).then(MultiProgress::new);
    let per_generation = match cfg.fidelity {
        Fidelity::Full => cfg.population,
        Fidelity::Halving => {
            super::halving::evaluations_per_generation(cfg.population, cfg.eta, cfg.rungs)
        }
    };
    let total = (per_generation * (cfg.generations + 1)).max(state.evaluations) as u64;
    let bar = match &bars {
        Some(mp) => progress::add_to(mp, Some(total), "networks"),
        None => ProgressBar::hidden(),
    };
    bar.set_position(state.evaluations as u64);
    if !run.quiet {
        bar.println(banner(args, cfg, &local.workers, &state));
    }
    let resumed_at = state.evaluations;
    let stop = StopCriteria {
        generations: Some(cfg.generations as u64),
        time_budget_s: cfg.time_budget_s,
        ..Default::default()
    };
    // records written after the last checkpoint are dropped; the search redoes them
    let covered = state.log_lines;
    let keep = |i, _: &serde_json::Value| i < covered;
    let (mut driver, _) = Driver::open(&run.dir, keep, stop, state.clocks, bar, run.resumed)?;
    let (evaluator, export_data): (Box<dyn Evaluator>, Option<Dataset>) = match remote {
        Some(r) => (Box::new(r), Some(local.workers.swap_remove(0))),
        None => (Box::new(local), None),
    };
    let mut search = Search {
        cfg: run.cfg,
        dir: run.dir,
        state,
        cache,
        settings,
        evaluator: Some(evaluator),
        bars,
        trained_this_session: 0,
        overhead_s: None,
        sizer,
    };
    search.save(&driver.clocks)?;
    let reason = drive(&mut search, &mut driver)?;
    search.state.stop_reason = Some(reason.as_str().into());
    search.save(&driver.clocks)?;
    driver.bar.finish_and_clear();
    finish(search, export_data, resumed_at, run.device)
}

/// Opens the run: a new one from the flags, or the one `--resume` names, extended by the flags
/// a resume may change.
fn open(args: &SearchArgs) -> Result<Run<SearchConfig>> {
    crate::run::open(
        &args.run,
        |new| {
            let cfg = args.to_config(new)?;
            cfg.validate()?;
            Ok(cfg)
        },
        |cfg| {
            // the run may be extended: more generations or another time budget
            if let Some(g) = args.generations {
                cfg.generations = g;
            }
            if let Some(t) = args.time_budget {
                cfg.time_budget_s = Some(t);
            }
            if args.final_epochs.is_some() {
                cfg.final_epochs = args.final_epochs;
            }
            if let Some(k) = args.per_device {
                cfg.per_device = k;
            }
            cfg.validate()
        },
    )
}

/// The state of a new search: a random population (within the size cap), nothing evaluated.
fn first_state(cfg: &SearchConfig, sizer: &Sizer, mut rng: GaRng) -> SearchState {
    let population = (0..cfg.population)
        .map(|_| random_within_cap(sizer, &cfg.space, &mut rng))
        .collect();
    SearchState {
        generation: 0,
        phase: Phase::Evaluate,
        rng,
        population,
        offspring: Vec::new(),
        evaluations: 0,
        trained: 0,
        cache_hits: 0,
        log_lines: 0,
        clocks: Default::default(),
        best: None,
        best_rung: 0,
        rung: 0,
        budgets: Vec::new(),
        stop_reason: None,
        broker_id: None,
    }
}

/// The backend that hands the networks to the workers of the broker at `url`, under the
/// search's id on that broker (made on its first run with `--broker`).
fn connect_broker(
    url: &str,
    state: &mut SearchState,
    data: &Dataset,
) -> Result<super::remote::NatsEvaluator> {
    let id = state
        .broker_id
        .get_or_insert_with(|| format!("{:016x}", rand::random::<u64>()))
        .clone();
    let hash = super::broker::dataset_hash(data)?;
    super::remote::NatsEvaluator::connect(url, &id, hash)
}

/// The line a search starts with: the data, the search's settings and where networks train.
fn banner(
    args: &SearchArgs,
    cfg: &SearchConfig,
    workers: &[Dataset],
    state: &SearchState,
) -> String {
    let d = &workers[0];
    format!(
        "auto-cnn: {} ({} train / {} val / {} test, {:?}), population {}, {} generations, {} epochs per network{}, fitness on {}, {} device(s){} from {}, seed {}{}",
        d.name,
        d.train.len(),
        d.val.len(),
        d.test.len(),
        d.shape,
        cfg.population,
        cfg.generations,
        cfg.train.epochs,
        match cfg.fidelity {
            Fidelity::Full => String::new(),
            Fidelity::Halving => format!(
                " (successive halving: rungs of {:?} steps, the best 1/{} go on)",
                state.budgets, cfg.eta
            ),
        },
        cfg.fitness_set,
        if args.broker.is_some() { 0 } else { workers.len() / cfg.per_device },
        match cfg.per_device {
            k if k > 1 && args.broker.is_none() => format!(" x {k} networks at once"),
            _ => String::new(),
        },
        match &args.broker {
            Some(url) => format!("{} (workers on that broker train the networks)", super::broker::shown(url)),
            None => device_name(d.device()),
        },
        cfg.seed,
        if args.run.resume.is_some() {
            format!(", resuming at generation {} after {} evaluations", state.generation, state.evaluations)
        } else {
            String::new()
        }
    )
}

/// After the loop: `fitness.png`, the export of the best network and `result.json`.
fn finish(
    search: Search,
    export_data: Option<Dataset>,
    resumed_at: usize,
    device: Device,
) -> Result<SearchSummary> {
    let dir = &search.dir;
    plot_fitness(dir)?;
    let Some(best_eval) = search.state.best.clone() else {
        return Err(nothing_trained(dir, &search.cache, &search.state));
    };
    let mut data = match export_data {
        Some(d) => d,
        None => load_workers(&search.cfg, &[device])?.swap_remove(0),
    };
    let best = export_model(
        dir,
        &dir.file(BEST_MODEL),
        &search.cfg,
        &best_eval,
        Weights::Best,
        search.cfg.final_epochs,
        &mut data,
        search.bars.as_ref(),
    )?;
    let cache_entries: Vec<Evaluation> = search.cache.entries.values().cloned().collect();
    let s = &search.state;
    let summary = SearchSummary {
        run_dir: dir.path().to_path_buf(),
        generations_done: s.generation,
        evaluations: s.evaluations,
        trained: s.trained,
        cache_hits: s.cache_hits,
        trained_this_session: search.trained_this_session,
        resumed_at_evaluation: resumed_at,
        elapsed_s: s.clocks.elapsed_s,
        stop_reason: s
            .stop_reason
            .clone()
            .unwrap_or_else(|| "generations".into()),
        best,
        table: table(
            &cache_entries,
            10,
            search.cfg.fitness_set,
            &search.state.budgets,
        ),
    };
    dir.write_result(
        &summary.stop_reason,
        s.clocks.elapsed_s,
        s.clocks.cpu_s,
        &summary,
    )?;
    Ok(summary)
}

/// A search none of whose evaluations trained a network (every task refused, crashed or scored
/// 0): `result.json` says so with the counts and the first reasons, and the search ends with
/// one line naming the most common reason.
fn nothing_trained(dir: &RunDir, cache: &Cache, state: &SearchState) -> Error {
    let mut reasons: Vec<(usize, String)> = Vec::new();
    for e in cache.entries.values() {
        let why = e.note.clone().unwrap_or_else(|| "scored 0".into());
        match reasons.iter_mut().find(|(_, r)| *r == why) {
            Some((n, _)) => *n += 1,
            None => reasons.push((1, why)),
        }
    }
    reasons.sort_by(|a, b| b.0.cmp(&a.0));
    let figures = serde_json::json!({
        "run_dir": dir.path(), "generations_done": state.generation,
        "evaluations": state.evaluations, "trained": state.trained,
        "cache_hits": state.cache_hits, "best": null,
        "failures": reasons.iter().map(|(n, r)| serde_json::json!({"count": n, "reason": r}))
            .collect::<Vec<_>>(),
    });
    let reason = state.stop_reason.as_deref().unwrap_or("interrupted");
    let written = dir.write_result(reason, state.clocks.elapsed_s, state.clocks.cpu_s, &figures);
    let first = reasons
        .first()
        .map(|(n, r)| format!("; {n} of them: {r}"))
        .unwrap_or_default();
    let what = if state.evaluations == 0 {
        format!(
            "stopped ({}) before any network was evaluated",
            state.stop_reason.as_deref().unwrap_or("interrupted")
        )
    } else {
        format!("all {} evaluations failed{first}", state.evaluations)
    };
    Error::Other(format!(
        "{}: no network could be trained: {what}{}",
        dir.path().display(),
        match written {
            Ok(()) => " (see result.json and log.jsonl)".to_string(),
            Err(e) => format!(" (and result.json could not be written: {e})"),
        }
    ))
}
