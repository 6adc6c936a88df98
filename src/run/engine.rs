//! The GA engine: a [`Population`] as a [`Step`] of the run layer's loop. Planning a
//! generation ([`plan_generation`]), breeding (delegated to the population), one log record per
//! generation and the checkpoint format (engine state + the population's payload); stop
//! criteria, clocks, log and progress bar are the loop's. `gari` and `fool` run their
//! populations through it.
use super::clock::ClockState;
use super::driver::{drive, Ctx, Driver, Step};
use super::log::generation_of;
use super::progress;
use super::stop::{Position, StopCriteria, StopReason};
use crate::error::{Error, Result};
use crate::ga::plan::{plan_generation, Breeding, Population};
use crate::ga::selection::{argbest, better};
use crate::rng::GaRng;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use std::path::Path;
use std::time::Instant;

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct GaConfig {
    #[serde(flatten)]
    pub breeding: Breeding,
    pub stop: StopCriteria,
    /// Checkpoint every this many generations (0: only at the end).
    pub checkpoint_every: u64,
    /// Write a record every this many generations (the first and last are always written).
    pub log_every: u64,
}

impl std::ops::Deref for GaConfig {
    type Target = Breeding;
    fn deref(&self) -> &Breeding {
        &self.breeding
    }
}

impl GaConfig {
    pub fn validate(&self) -> Result<()> {
        self.breeding.validate()?;
        if self.stop.is_empty() {
            return Err(Error::usage("no stop criterion: give --generations, --time-budget, --patience or --target-fitness"));
        }
        self.stop.validate()?;
        if self.log_every == 0 {
            return Err(Error::usage("--log-every must be at least 1"));
        }
        Ok(())
    }
}

/// What the engine carries between generations; saved in every checkpoint.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct EngineState {
    /// The generation the population holds.
    pub generation: u64,
    pub rng: GaRng,
    pub best_fitness: Option<f64>,
    pub best_generation: u64,
    #[serde(flatten)]
    pub clocks: ClockState,
}

impl EngineState {
    pub fn new(rng: GaRng) -> Self {
        EngineState {
            generation: 0,
            rng,
            best_fitness: None,
            best_generation: 0,
            clocks: ClockState::default(),
        }
    }
}

/// One generation's line of `log.jsonl` (`"kind": "generation"`).
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct GenRecord {
    #[serde(default = "generation_kind")]
    pub kind: String,
    pub generation: u64,
    pub best: f64,
    pub mean: f64,
    pub worst: f64,
    pub elapsed_s: f64,
    #[serde(default)]
    pub cpu_s: f64,
    /// Individuals whose fitness was NaN or infinite.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub nonfinite: usize,
    /// Job-specific figures of the best individual (e.g. PSNR).
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

fn generation_kind() -> String {
    "generation".into()
}

fn is_zero(n: &usize) -> bool {
    *n == 0
}

/// Job-specific hooks.
pub trait Observer<P: Population> {
    /// Extra figures about the best individual for a record that is about to be written.
    fn metrics(&mut self, _pop: &P, _best: usize) -> Result<Map<String, Value>> {
        Ok(Map::new())
    }
    /// Called every generation after the record (if any) was written. `last` on the final one.
    fn on_generation(
        &mut self,
        _generation: u64,
        _pop: &P,
        _best: usize,
        _last: bool,
    ) -> Result<()> {
        Ok(())
    }
}

impl<P: Population> Observer<P> for () {}

/// Writes a checkpoint atomically: engine state as JSON, then the population's payload.
pub fn save_checkpoint<P: Population>(path: &Path, state: &EngineState, pop: &P) -> Result<()> {
    super::checkpoint::save_packed(path, state, |w| pop.save(w))
}

/// Reads a checkpoint into `pop` and returns the engine state.
pub fn load_checkpoint<P: Population>(path: &Path, pop: &mut P) -> Result<EngineState> {
    super::checkpoint::load_packed(path, |r| pop.load(r))
}

/// What a finished run reports.
#[derive(Clone, Debug)]
pub struct Outcome {
    pub reason: StopReason,
    pub generation: u64,
    pub best: usize,
    pub best_fitness: f64,
    pub elapsed_s: f64,
    /// CPU seconds of the process over the run (all invocations).
    pub cpu_s: f64,
    pub records: Vec<GenRecord>,
}

/// Drives a population in the run directory `dir` (its `log.jsonl` and `checkpoint.bin`).
pub struct Engine<'a> {
    pub cfg: &'a GaConfig,
    pub dir: super::RunDir,
    pub progress: bool,
}

impl Engine<'_> {
    /// Runs generations from `state` until a stop criterion holds, through the run layer's
    /// loop ([`drive`]). The population must hold evaluated individuals of generation
    /// `state.generation`. With `resumed`, records from that generation on are dropped from the
    /// log first and no checkpoint is written right away.
    pub fn run<P: Population, O: Observer<P>>(
        &self,
        pop: &mut P,
        state: &mut EngineState,
        obs: &mut O,
        resumed: bool,
    ) -> Result<Outcome> {
        let cfg = self.cfg;
        assert_eq!(pop.len(), cfg.population, "population size");
        let root = self.dir.path();
        std::fs::create_dir_all(root).map_err(|e| Error::io(root, e))?;
        let g0 = state.generation;
        let bar = progress::bar(!self.progress, cfg.stop.generations, "gen");
        bar.set_position(g0);
        bar.reset_eta();
        let keep = |_, r: &Value| generation_of(r).is_some_and(|g| g < g0);
        let (mut driver, kept) = Driver::open(
            &self.dir,
            keep,
            cfg.stop.clone(),
            state.clocks,
            bar,
            resumed,
        )?;
        let mut step = GaStep {
            cfg,
            checkpoint: self.dir.file(super::dir::CHECKPOINT),
            pop,
            state,
            obs,
            records: kept
                .into_iter()
                .filter_map(|v| serde_json::from_value(v).ok())
                .collect(),
            best: 0,
            last_draw: Instant::now(),
            warned_nonfinite: false,
        };
        let reason = drive(&mut step, &mut driver)?;
        driver.bar.finish();
        let best = step.best;
        Ok(Outcome {
            reason,
            generation: step.state.generation,
            best,
            best_fitness: step.pop.fitness()[best],
            elapsed_s: step.state.clocks.elapsed_s,
            cpu_s: driver.clocks.cpu_s(),
            records: step.records,
        })
    }
}

/// A GA population as the run layer's [`Step`]: a generation is planned
/// ([`plan_generation`]) and bred by the population; one [`GenRecord`] per generation.
struct GaStep<'a, P, O> {
    cfg: &'a GaConfig,
    checkpoint: std::path::PathBuf,
    pop: &'a mut P,
    state: &'a mut EngineState,
    obs: &'a mut O,
    records: Vec<GenRecord>,
    /// Index of the best individual of the generation the population holds.
    best: usize,
    last_draw: Instant,
    warned_nonfinite: bool,
}

impl<P: Population, O: Observer<P>> Step for GaStep<'_, P, O> {
    fn position(&mut self, ctx: &mut Ctx) -> Result<Position> {
        let state = &mut *self.state;
        let g = state.generation;
        state.clocks = ctx.clocks.state();
        let fitness = self.pop.fitness();
        self.best = argbest(fitness);
        let best_fitness = fitness[self.best];
        let nonfinite = fitness.iter().filter(|f| !f.is_finite()).count();
        if nonfinite == fitness.len() {
            return Err(Error::Other(format!(
                "generation {g}: the fitness of every individual is NaN or infinite; the evaluation is broken"
            )));
        }
        if nonfinite > 0 && !self.warned_nonfinite {
            self.warned_nonfinite = true;
            ctx.bar.suspend(|| {
                eprintln!("warning: generation {g}: {nonfinite} individual(s) have NaN/infinite fitness; they rank last")
            });
        }
        match state.best_fitness {
            Some(b) if !better(best_fitness, b) => {}
            _ => {
                state.best_fitness = Some(best_fitness);
                state.best_generation = g;
            }
        }
        Ok(Position {
            generation: g,
            epoch: 0,
            best_fitness: state.best_fitness,
            best_generation: state.best_generation,
            budget_s: ctx.clocks.read(ctx.stop.budget_clock),
        })
    }

    fn report(&mut self, ctx: &mut Ctx, last: bool) -> Result<()> {
        let g = self.state.generation;
        let draw = self.last_draw.elapsed().as_millis() >= 100 || last;
        if g % self.cfg.log_every == 0 || last {
            let fitness = self.pop.fitness();
            let finite: Vec<f64> = fitness.iter().copied().filter(|f| f.is_finite()).collect();
            let record = GenRecord {
                kind: generation_kind(),
                generation: g,
                best: fitness[self.best],
                mean: finite.iter().sum::<f64>() / finite.len() as f64,
                worst: finite.iter().copied().fold(f64::INFINITY, f64::min),
                elapsed_s: self.state.clocks.elapsed_s,
                cpu_s: self.state.clocks.cpu_s,
                nonfinite: fitness.len() - finite.len(),
                extra: self.obs.metrics(self.pop, self.best)?,
            };
            ctx.emit(&record)?;
            if draw {
                ctx.bar.set_message(format_message(&record));
            }
            self.records.push(record);
        }
        self.obs.on_generation(g, self.pop, self.best, last)?;
        if draw {
            ctx.bar.set_position(g);
            self.last_draw = Instant::now();
        }
        Ok(())
    }

    /// Every `checkpoint_every` generations, and after the first (so that a run killed early
    /// can be resumed).
    fn checkpoint_due(&self, _: &Ctx) -> bool {
        let (g, every) = (self.state.generation, self.cfg.checkpoint_every);
        every > 0 && (g == 1 || (g > 0 && g % every == 0))
    }

    fn checkpoint(&mut self, _: &mut Ctx) -> Result<()> {
        save_checkpoint(&self.checkpoint, self.state, self.pop)
    }

    fn advance(&mut self, _: &mut Ctx) -> Result<Option<StopReason>> {
        let (survivors, pairs) =
            plan_generation(&self.cfg.breeding, self.pop.fitness(), &mut self.state.rng);
        self.pop
            .next_generation(&survivors, &pairs, &mut self.state.rng)?;
        self.state.generation += 1;
        Ok(None)
    }
}

fn format_message(r: &GenRecord) -> String {
    let mut s = format!("best {:.6}", r.best);
    for (k, v) in &r.extra {
        if let Some(x) = v.as_f64() {
            s.push_str(&format!(" {k} {x:.3}"));
        }
    }
    s
}
