//! The generational loop shared by every job: selection of a mating pool, pairing, breeding
//! (delegated to the population, which owns its genomes and their operators), replacement,
//! stop criteria, a JSON-lines record per generation, atomic checkpoints and a progress bar.
use super::selection::{argbest, better, ranking, Selection};
use super::GaRng;
use crate::error::{Error, Result};
use rand::Rng;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use std::io::{BufRead, Read, Write};
use std::path::{Path, PathBuf};
use std::time::Instant;

/// A population the engine can evolve. It owns its genomes, their fitness and its variation
/// operators; the engine decides who survives and who mates.
pub trait Population {
    fn len(&self) -> usize;
    /// Fitness of every individual, higher is better. NaN marks a failed evaluation.
    fn fitness(&self) -> &[f64];
    /// Replaces the population by `survivors` (kept as they are, in this order) followed by one
    /// child per pair of parent indices, bred with the population's operators and `rng`, and
    /// evaluates the children.
    fn next_generation(
        &mut self,
        survivors: &[usize],
        pairs: &[(usize, usize)],
        rng: &mut GaRng,
    ) -> Result<()>;
    /// Writes genomes and fitness for a checkpoint.
    fn save(&self, w: &mut dyn Write) -> std::io::Result<()>;
    /// Restores what `save` wrote.
    fn load(&mut self, r: &mut dyn Read) -> Result<()>;
}

/// How the mating pool is paired into children.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Pairing {
    /// Child k has parents pool[k] and pool[k+1] (cyclically), as in PyGAD.
    Ring,
    /// Each child gets a distinct random ordered pair of the pool, as in GARI.
    RandomPairs,
}

/// Who survives into the next generation besides the children.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Replacement {
    /// The whole mating pool survives (GARI; PyGAD's keep_parents=-1).
    KeepParents,
    /// The `k` fittest survive (k = 0: generational replacement).
    Elitism { k: usize },
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct StopCriteria {
    /// Stop after this many generations.
    pub generations: Option<u64>,
    /// Stop once the best fitness reaches this value.
    pub target_fitness: Option<f64>,
    /// Stop after this many generations without improvement of the best fitness.
    pub patience: Option<u64>,
    /// Stop after this many seconds of wall-clock time (summed over resumed runs).
    pub time_budget_s: Option<f64>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct GaConfig {
    pub population: usize,
    /// Size of the mating pool.
    pub parents: usize,
    pub selection: Selection,
    pub pairing: Pairing,
    pub replacement: Replacement,
    pub stop: StopCriteria,
    /// Checkpoint every this many generations (0: only at the end).
    pub checkpoint_every: u64,
    /// Write a record every this many generations (the first and last are always written).
    pub log_every: u64,
}

impl GaConfig {
    pub fn validate(&self) -> Result<()> {
        let p = self.population;
        if p < 2 {
            return Err(Error::usage(format!(
                "--population {p}: a population needs at least 2 individuals"
            )));
        }
        if self.parents < 1 || self.parents > p {
            return Err(Error::usage(format!(
                "--parents {}: the mating pool must hold between 1 and the population size ({p})",
                self.parents
            )));
        }
        self.selection.validate(p)?;
        if self.survivors() >= p {
            return Err(Error::usage(format!(
                "{} survivors leave no room for children in a population of {p}: lower --parents or --elitism",
                self.survivors()
            )));
        }
        let s = &self.stop;
        if s.generations.is_none()
            && s.target_fitness.is_none()
            && s.patience.is_none()
            && s.time_budget_s.is_none()
        {
            return Err(Error::usage("no stop criterion: give --generations, --time-budget, --patience or --target-fitness"));
        }
        if let Some(t) = s.time_budget_s {
            if !(t > 0.0) {
                return Err(Error::usage(format!("--time-budget {t}: must be positive")));
            }
        }
        if self.log_every == 0 {
            return Err(Error::usage("--log-every must be at least 1"));
        }
        Ok(())
    }

    /// Number of individuals kept unchanged each generation.
    pub fn survivors(&self) -> usize {
        match self.replacement {
            Replacement::KeepParents => self.parents,
            Replacement::Elitism { k } => k,
        }
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
    /// Wall-clock seconds spent so far, over all resumed runs.
    pub elapsed_s: f64,
}

impl EngineState {
    pub fn new(rng: GaRng) -> Self {
        EngineState {
            generation: 0,
            rng,
            best_fitness: None,
            best_generation: 0,
            elapsed_s: 0.0,
        }
    }
}

/// One line of `log.jsonl`.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Record {
    pub generation: u64,
    pub best: f64,
    pub mean: f64,
    pub worst: f64,
    pub elapsed_s: f64,
    /// Individuals whose fitness was NaN or infinite.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub nonfinite: usize,
    /// Job-specific figures of the best individual (e.g. PSNR).
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

fn is_zero(n: &usize) -> bool {
    *n == 0
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum StopReason {
    Generations,
    TargetFitness,
    Patience,
    TimeBudget,
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

/// The files of a run directory that the engine owns.
#[derive(Clone, Debug)]
pub struct RunFiles {
    pub dir: PathBuf,
}

impl RunFiles {
    pub fn new(dir: impl Into<PathBuf>) -> Self {
        RunFiles { dir: dir.into() }
    }
    pub fn log(&self) -> PathBuf {
        self.dir.join("log.jsonl")
    }
    pub fn checkpoint(&self) -> PathBuf {
        self.dir.join("checkpoint.bin")
    }
    pub fn config(&self) -> PathBuf {
        self.dir.join("config.json")
    }
}

const CKPT_MAGIC: &[u8; 16] = b"NEUROEVO-CKPT-1\n";

/// Writes a checkpoint atomically: engine state as JSON, then the population's payload.
pub fn save_checkpoint<P: Population>(path: &Path, state: &EngineState, pop: &P) -> Result<()> {
    let json = serde_json::to_vec(state)?;
    crate::fsutil::write_atomic_with(path, |w| {
        w.write_all(CKPT_MAGIC)?;
        w.write_all(&(json.len() as u64).to_le_bytes())?;
        w.write_all(&json)?;
        pop.save(w)
    })
}

/// Reads a checkpoint into `pop` and returns the engine state.
pub fn load_checkpoint<P: Population>(path: &Path, pop: &mut P) -> Result<EngineState> {
    let file = std::fs::File::open(path).map_err(|e| Error::io(path, e))?;
    let mut r = std::io::BufReader::new(file);
    let mut magic = [0u8; 16];
    r.read_exact(&mut magic)
        .map_err(|_| Error::corrupt(path, "not a neuroevo checkpoint (too short)"))?;
    if &magic != CKPT_MAGIC {
        return Err(Error::corrupt(
            path,
            "not a neuroevo checkpoint (bad magic)",
        ));
    }
    let mut len = [0u8; 8];
    r.read_exact(&mut len)
        .map_err(|_| Error::corrupt(path, "truncated checkpoint header"))?;
    let len = u64::from_le_bytes(len);
    if len > 1 << 30 {
        return Err(Error::corrupt(
            path,
            "checkpoint header length is implausible",
        ));
    }
    let mut json = vec![0u8; len as usize];
    r.read_exact(&mut json)
        .map_err(|_| Error::corrupt(path, "truncated checkpoint header"))?;
    let state: EngineState = serde_json::from_slice(&json)
        .map_err(|e| Error::corrupt(path, format!("checkpoint state: {e}")))?;
    pop.load(&mut r).map_err(|e| match e {
        Error::Corrupt { msg, .. } => Error::corrupt(path, msg),
        other => other,
    })?;
    Ok(state)
}

/// Keeps the records of generations before `generation` (and drops a torn last line).
pub fn truncate_log(path: &Path, generation: u64) -> Result<Vec<Record>> {
    let mut kept = Vec::new();
    if let Ok(file) = std::fs::File::open(path) {
        for line in std::io::BufReader::new(file).lines() {
            let line = line.map_err(|e| Error::io(path, e))?;
            if let Ok(rec) = serde_json::from_str::<Record>(&line) {
                if rec.generation < generation {
                    kept.push(rec);
                }
            }
        }
    }
    crate::fsutil::write_jsonl_atomic(path, &kept)?;
    Ok(kept)
}

/// Reads all records of a log.
pub fn read_log(path: &Path) -> Result<Vec<Record>> {
    let file = std::fs::File::open(path).map_err(|e| Error::io(path, e))?;
    Ok(std::io::BufReader::new(file)
        .lines()
        .map_while(|l| l.ok())
        .filter_map(|l| serde_json::from_str(&l).ok())
        .collect())
}

/// What a finished run reports.
#[derive(Clone, Debug)]
pub struct Outcome {
    pub reason: StopReason,
    pub generation: u64,
    pub best: usize,
    pub best_fitness: f64,
    pub elapsed_s: f64,
    pub records: Vec<Record>,
}

pub struct Engine<'a> {
    pub cfg: &'a GaConfig,
    pub files: RunFiles,
    pub progress: bool,
}

impl Engine<'_> {
    /// Draws the mating pool and the parent pairs of the children, and the survivors.
    pub fn plan_generation(
        &self,
        fitness: &[f64],
        rng: &mut GaRng,
    ) -> (Vec<usize>, Vec<(usize, usize)>) {
        let cfg = self.cfg;
        let pool = cfg.selection.select(fitness, cfg.parents, rng);
        let survivors: Vec<usize> = match cfg.replacement {
            Replacement::KeepParents => pool.clone(),
            Replacement::Elitism { k } => ranking(fitness)[..k].to_vec(),
        };
        let children = cfg.population - survivors.len();
        let n = pool.len();
        let pairs = match cfg.pairing {
            Pairing::Ring => (0..children)
                .map(|k| (pool[k % n], pool[(k + 1) % n]))
                .collect(),
            Pairing::RandomPairs => {
                if n < 2 {
                    vec![(pool[0], pool[0]); children]
                } else {
                    let perms = n * (n - 1);
                    let pick = |p: usize| {
                        let a = p / (n - 1);
                        let mut b = p % (n - 1);
                        if b >= a {
                            b += 1;
                        }
                        (pool[a], pool[b])
                    };
                    if children <= perms {
                        rand::seq::index::sample(rng, perms, children)
                            .into_iter()
                            .map(pick)
                            .collect()
                    } else {
                        (0..children)
                            .map(|_| pick(rng.random_range(0..perms)))
                            .collect()
                    }
                }
            }
        };
        (survivors, pairs)
    }

    /// Runs generations from `state` until a stop criterion holds. The population must hold
    /// evaluated individuals of generation `state.generation`. With `resumed`, records from that
    /// generation on are dropped from the log first and no checkpoint is written right away.
    pub fn run<P: Population, O: Observer<P>>(
        &self,
        pop: &mut P,
        state: &mut EngineState,
        obs: &mut O,
        resumed: bool,
    ) -> Result<Outcome> {
        let cfg = self.cfg;
        assert_eq!(pop.len(), cfg.population, "population size");
        std::fs::create_dir_all(&self.files.dir).map_err(|e| Error::io(&self.files.dir, e))?;
        let log_path = self.files.log();
        let mut records = if resumed || log_path.exists() {
            truncate_log(&log_path, state.generation)?
        } else {
            Vec::new()
        };
        let log_file = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&log_path)
            .map_err(|e| Error::io(&log_path, e))?;
        let mut log = std::io::BufWriter::new(log_file);

        let bar = self.progress_bar(state.generation);
        let start = Instant::now();
        let elapsed0 = state.elapsed_s;
        let start_generation = state.generation;
        let mut last_draw = Instant::now();
        let mut warned_nonfinite = false;
        loop {
            let g = state.generation;
            state.elapsed_s = elapsed0 + start.elapsed().as_secs_f64();
            if cfg.checkpoint_every > 0
                && g % cfg.checkpoint_every == 0
                && (g != start_generation || !resumed)
                && g > 0
            {
                log.flush().map_err(|e| Error::io(&log_path, e))?;
                save_checkpoint(&self.files.checkpoint(), state, pop)?;
            }

            let fitness = pop.fitness();
            let best = argbest(fitness);
            let best_fitness = fitness[best];
            let nonfinite = fitness.iter().filter(|f| !f.is_finite()).count();
            if nonfinite == fitness.len() {
                return Err(Error::Other(format!(
                    "generation {g}: the fitness of every individual is NaN or infinite; the evaluation is broken"
                )));
            }
            if nonfinite > 0 && !warned_nonfinite {
                warned_nonfinite = true;
                bar.suspend(|| {
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
            let stop = self.stop_reason(state);
            let last = stop.is_some();
            if g % cfg.log_every == 0 || last {
                let finite: Vec<f64> = fitness.iter().copied().filter(|f| f.is_finite()).collect();
                let record = Record {
                    generation: g,
                    best: best_fitness,
                    mean: finite.iter().sum::<f64>() / finite.len() as f64,
                    worst: finite.iter().copied().fold(f64::INFINITY, f64::min),
                    elapsed_s: state.elapsed_s,
                    nonfinite,
                    extra: obs.metrics(pop, best)?,
                };
                serde_json::to_writer(&mut log, &record)?;
                log.write_all(b"\n").map_err(|e| Error::io(&log_path, e))?;
                if last_draw.elapsed().as_millis() >= 100 || last {
                    bar.set_message(format_message(&record));
                }
                records.push(record);
            }
            obs.on_generation(g, pop, best, last)?;
            if last_draw.elapsed().as_millis() >= 100 || last {
                bar.set_position(g);
                last_draw = Instant::now();
            }
            if let Some(reason) = stop {
                log.flush().map_err(|e| Error::io(&log_path, e))?;
                save_checkpoint(&self.files.checkpoint(), state, pop)?;
                bar.finish();
                return Ok(Outcome {
                    reason,
                    generation: g,
                    best,
                    best_fitness,
                    elapsed_s: state.elapsed_s,
                    records,
                });
            }
            let (survivors, pairs) = self.plan_generation(pop.fitness(), &mut state.rng);
            pop.next_generation(&survivors, &pairs, &mut state.rng)?;
            state.generation += 1;
        }
    }

    fn stop_reason(&self, state: &EngineState) -> Option<StopReason> {
        let s = &self.cfg.stop;
        let g = state.generation;
        if let (Some(t), Some(b)) = (s.target_fitness, state.best_fitness) {
            if b >= t {
                return Some(StopReason::TargetFitness);
            }
        }
        if s.generations.is_some_and(|n| g >= n) {
            return Some(StopReason::Generations);
        }
        if s.patience.is_some_and(|n| g - state.best_generation >= n) {
            return Some(StopReason::Patience);
        }
        if s.time_budget_s.is_some_and(|t| state.elapsed_s >= t) {
            return Some(StopReason::TimeBudget);
        }
        None
    }

    fn progress_bar(&self, position: u64) -> indicatif::ProgressBar {
        if !self.progress {
            return indicatif::ProgressBar::hidden();
        }
        let (bar, template) = match self.cfg.stop.generations {
            Some(n) => (
                indicatif::ProgressBar::new(n),
                "{elapsed_precise} [{bar:30}] gen {pos}/{len} {rate} eta {eta} {msg}",
            ),
            None => (
                indicatif::ProgressBar::new_spinner(),
                "{elapsed_precise} {spinner} gen {pos} {rate} {msg}",
            ),
        };
        let style = indicatif::ProgressStyle::with_template(template)
            .unwrap()
            .progress_chars("=> ")
            .with_key(
                "rate",
                |s: &indicatif::ProgressState, w: &mut dyn std::fmt::Write| {
                    let _ = write!(w, "{:.0} gen/s", s.per_sec());
                },
            );
        bar.set_style(style);
        bar.set_position(position);
        bar.reset_eta();
        bar
    }
}

fn format_message(r: &Record) -> String {
    let mut s = format!("best {:.6}", r.best);
    for (k, v) in &r.extra {
        if let Some(x) = v.as_f64() {
            s.push_str(&format!(" {k} {x:.3}"));
        }
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;

    fn cfg(replacement: Replacement, pairing: Pairing) -> GaConfig {
        GaConfig {
            population: 8,
            parents: 4,
            selection: Selection::Truncation,
            pairing,
            replacement,
            stop: StopCriteria {
                generations: Some(3),
                ..Default::default()
            },
            checkpoint_every: 0,
            log_every: 1,
        }
    }

    #[test]
    fn keep_parents_keeps_the_pool_and_pairs_distinct_parents() {
        let c = cfg(Replacement::KeepParents, Pairing::RandomPairs);
        let e = Engine {
            cfg: &c,
            files: RunFiles::new("/nonexistent"),
            progress: false,
        };
        let f = [0.0, 7.0, 1.0, 6.0, 2.0, 5.0, 3.0, 4.0];
        let mut rng = GaRng::seed_from_u64(1);
        for _ in 0..50 {
            let (surv, pairs) = e.plan_generation(&f, &mut rng);
            assert_eq!(surv, vec![1, 3, 5, 7]);
            assert_eq!(pairs.len(), 4);
            let mut seen = std::collections::HashSet::new();
            for &(a, b) in &pairs {
                assert!(a != b && surv.contains(&a) && surv.contains(&b));
                assert!(seen.insert((a, b)), "GARI draws distinct permutations");
            }
        }
    }

    #[test]
    fn elitism_keeps_the_best_and_ring_pairs_neighbours() {
        let c = cfg(Replacement::Elitism { k: 1 }, Pairing::Ring);
        let e = Engine {
            cfg: &c,
            files: RunFiles::new("/nonexistent"),
            progress: false,
        };
        let f = [0.0, 7.0, 1.0, 6.0, 2.0, 5.0, 3.0, 4.0];
        let (surv, pairs) = e.plan_generation(&f, &mut GaRng::seed_from_u64(1));
        assert_eq!(surv, vec![1]);
        assert_eq!(
            pairs,
            vec![(1, 3), (3, 5), (5, 7), (7, 1), (1, 3), (3, 5), (5, 7)]
        );
    }

    #[test]
    fn validation_rejects_bad_sizes() {
        let mut c = cfg(Replacement::KeepParents, Pairing::Ring);
        c.parents = 9;
        assert!(matches!(c.validate(), Err(Error::Usage(_))));
        c.parents = 8; // keeps everyone: no room for children
        assert!(c.validate().is_err());
        c.parents = 4;
        c.population = 1;
        assert!(c.validate().is_err());
        c.population = 8;
        c.stop = StopCriteria::default();
        assert!(c.validate().is_err());
    }
}
