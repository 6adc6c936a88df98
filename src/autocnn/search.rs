//! The search loop of `auto-cnn search` and its checkpoint.
//!
//! Run directory: `config.json`, `checkpoint.json` (generation, phase, RNG, population,
//! offspring, counters; rewritten atomically after every evaluation), `cache.json` (fitness of
//! every genome trained, keyed by a hash of the genome and the settings the fitness depends on),
//! `log.jsonl` (one `evaluation` record per network, one `generation` record per generation),
//! `best.ot` (weights of the best network trained so far), `fitness.png`, with a second
//! objective `pareto.json` + `pareto.png` (rewritten every generation), and at the end
//! `best.pt` + `best.features.pt` + `best.json` and `result.json`.
//!
//! With `--fidelity halving` a generation's evaluation goes rung by rung ([`super::halving`]):
//! the rung in progress is in the checkpoint, each individual says the rung it reached and
//! whether it was promoted, so a resumed search goes on with the rung it was in. With an
//! evaluator whose workers take several rungs' tasks at once (`--broker`), the rungs overlap
//! instead: networks are promoted as soon as that is certain ([`overlap`]).
use super::cache::*;
use super::config::*;
use super::evaluate::*;
use super::genome;
use super::halving;
use super::pareto;
use super::records::{EvaluationRecord, GenerationRecord, Rung};
use super::sizecap::Sizer;
use super::state::*;
use crate::error::Result;
use crate::fsutil;
use crate::ga::plan::environmental_selection;
use crate::ga::selection::{argbest, Selection};
use crate::ga::GaRng;
use crate::nn::arch::Arch;
use crate::run::{dir as rdir, Clocks, Ctx, Position, RunDir, Step, StopReason};
use indicatif::MultiProgress;
use rand::Rng;

mod overlap;

/// The architecture search as the run layer's [`Step`]: a generation is breeding offspring,
/// evaluating them (cache first) and the environmental (mu+lambda) selection; the state is
/// checkpointed after every evaluation, so a resume never retrains a network it already scored.
pub(crate) struct Search {
    pub(crate) cfg: SearchConfig,
    pub(crate) dir: RunDir,
    pub(crate) state: SearchState,
    pub(crate) cache: Cache,
    pub(crate) settings: String,
    /// Taken out while it evaluates (it hands results to the search one at a time).
    pub(crate) evaluator: Option<Box<dyn Evaluator>>,
    pub(crate) bars: Option<MultiProgress>,
    pub(crate) trained_this_session: usize,
    /// The broker's overhead of the evaluation being recorded (remote backends).
    pub(crate) overhead_s: Option<f64>,
    /// Sizes of genomes on this search's data, and its size cap.
    pub(crate) sizer: Sizer,
}

impl Search {
    pub(crate) fn save(&mut self, clocks: &Clocks) -> Result<()> {
        self.state.clocks = clocks.state();
        crate::run::checkpoint::save(&self.dir, rdir::STATE, &self.state, None)
    }

    fn log(&mut self, ctx: &mut Ctx, record: &impl serde::Serialize) -> Result<()> {
        ctx.emit(&record)?;
        self.state.log_lines += 1;
        Ok(())
    }

    fn current(&mut self) -> &mut Vec<Individual> {
        if self.state.generation == 0 {
            &mut self.state.population
        } else {
            &mut self.state.offspring
        }
    }

    fn best_fitness(&self) -> Option<f64> {
        self.state.best.as_ref().map(|b| b.fitness)
    }

    /// Successive halving (`--fidelity halving`)?
    fn halving(&self) -> bool {
        !self.state.budgets.is_empty()
    }

    /// The last rung: the full training (0 with `--fidelity full`, its only rung).
    fn top(&self) -> usize {
        self.state.budgets.len().saturating_sub(1)
    }

    /// The configuration networks are trained with at `rung` (the search's own at the last).
    fn cfg_at(&self, rung: usize) -> SearchConfig {
        if rung >= self.top() {
            self.cfg.clone()
        } else {
            halving::at_budget(&self.cfg, Some(self.state.budgets[rung]))
        }
    }

    /// What the cache keys a fitness at `rung` by (at the last rung, a full search's settings).
    fn settings_at(&self, rung: usize) -> String {
        if rung >= self.top() {
            self.settings.clone()
        } else {
            self.cfg_at(rung).fitness_settings()
        }
    }

    /// Whether individual `ind` of the current list is to be evaluated at `rung`.
    fn pending_at(ind: &Individual, rung: usize) -> bool {
        if rung == 0 {
            ind.fitness.is_none()
        } else {
            ind.promoted
        }
    }

    fn set_message(&self, ctx: &Ctx, what: &str) {
        let best = self
            .state
            .best
            .as_ref()
            .map(|b| format!(" | best {:.4} {}", b.fitness, b.genome))
            .unwrap_or_default();
        ctx.bar
            .set_message(format!("gen {}: {what}{best}", self.state.generation));
    }

    /// Records an evaluation of individual `i` of the current list at `rung`: cache, best,
    /// log (below the last rung: when the rung's promotions are decided), checkpoint.
    fn record(
        &mut self,
        ctx: &mut Ctx,
        rung: usize,
        i: usize,
        mut e: Evaluation,
        cached: bool,
        weights: Option<&[u8]>,
    ) -> Result<()> {
        let top = self.top();
        e.budget_steps = self.cfg_at(rung).train.budget_steps;
        // rung first, then fitness: a network is never the best for having stopped early
        let key = halving::selection_key(rung, top, e.fitness);
        let better =
            trained_network(&e)
                && self.state.best.as_ref().is_none_or(|b| {
                    key > halving::selection_key(self.state.best_rung, top, b.fitness)
                });
        if better {
            if let Some(bytes) = weights {
                fsutil::write_atomic(&self.dir.file(rdir::BEST_WEIGHTS), bytes)?;
            }
            if weights.is_some() || cached {
                self.state.best = Some(e.clone());
                self.state.best_rung = rung;
            }
        }
        if !cached {
            let key = cache_key(&e.genome, &self.settings_at(rung));
            self.cache.entries.insert(key, e.clone());
            fsutil::write_json_atomic(&self.dir.file(rdir::CACHE), &self.cache)?;
            self.state.trained += 1;
            self.trained_this_session += 1;
        } else {
            self.state.cache_hits += 1;
        }
        self.state.evaluations += 1;
        let generation = self.state.generation;
        let origin = self.current()[i].origin.clone();
        let ind = &mut self.current()[i];
        ind.fitness = Some(e.fitness);
        ind.rung = rung;
        ind.promoted = false;
        if let Some(note) = &e.note {
            ctx.note(format!("note: {} (gen {generation}): {note}", e.genome));
        }
        let mut record = EvaluationRecord::new(
            (generation, i, self.state.evaluations),
            [ctx.clocks.wall_s(), ctx.clocks.cpu_s()],
            origin,
            cached,
            &e,
            self.sizer.macs_of(&e.evaluated),
        );
        record.broker_overhead_s = self.overhead_s.take();
        if self.halving() {
            record.rung = Some(Rung {
                rung,
                budget_steps: self.state.budgets[rung],
                promoted: false,
            });
        }
        if rung < top {
            self.current()[i].record = Some(record);
        } else {
            self.log(ctx, &record)?;
        }
        self.save(ctx.clocks)?;
        ctx.bar.set_position(self.state.evaluations as u64);
        Ok(())
    }

    /// Trains every individual of the current list still to be evaluated at `rung` (with
    /// `--fidelity full`, its only rung: those without a fitness). `Some` when the time budget
    /// ran out or Ctrl-C came first.
    fn evaluate_pending(&mut self, ctx: &mut Ctx, rung: usize) -> Result<Option<StopReason>> {
        let settings = self.settings_at(rung);
        loop {
            let pending: Vec<usize> = (0..self.current().len())
                .filter(|&i| Self::pending_at(&self.current()[i], rung))
                .collect();
            if pending.is_empty() {
                return Ok(None);
            }
            if let Some(reason) = ctx.stop_now() {
                return Ok(Some(reason));
            }
            // cached genomes first: no training
            let first = pending[0];
            let genome = self.current()[first].genome.clone();
            if let Some(e) = self
                .cache
                .entries
                .get(&cache_key(&genome, &settings))
                .cloned()
            {
                self.record(ctx, rung, first, e, true, None)?;
                continue;
            }
            // one network per device; genomes trained in this wave are distinct
            let mut wave: Vec<(usize, String)> = Vec::new();
            for &i in &pending {
                let g = self.current()[i].genome.clone();
                let key = cache_key(&g, &settings);
                if self.cache.entries.contains_key(&key) || wave.iter().any(|(_, w)| *w == g) {
                    continue;
                }
                wave.push((i, g));
                if wave.len() == self.evaluator.as_ref().map_or(1, |e| e.slots()) {
                    break;
                }
            }
            let names: Vec<&str> = wave.iter().map(|(_, g)| g.as_str()).collect();
            let rung_note = match self.halving() {
                true => format!(" (rung {rung}, {} steps)", self.state.budgets[rung]),
                false => String::new(),
            };
            self.set_message(ctx, &format!("training {}{rung_note}", names.join(" | ")));
            let genomes: Vec<String> = wave.iter().map(|(_, g)| g.clone()).collect();
            let mut evaluator = self.evaluator.take().expect("the search has an evaluator");
            let bars = self.bars.clone();
            let cfg = self.cfg_at(rung);
            let result =
                evaluator.evaluate(&genomes, &cfg, bars.as_ref(), Some(ctx.bar), &mut |k, r| {
                    let t = r?;
                    self.overhead_s = t.overhead_s;
                    self.record(ctx, rung, wave[k].0, t.eval, false, t.weights.as_deref())
                });
            self.evaluator = Some(evaluator);
            result?;
        }
    }

    /// Evaluates the current list (rung by rung from the one in progress, with successive
    /// halving), selects the next population (after generation 0) and logs the generation; the
    /// checkpoint then says the generation is complete.
    fn complete_generation(&mut self, ctx: &mut Ctx) -> Result<Option<StopReason>> {
        if self.overlapping() {
            if let Some(reason) = self.evaluate_overlapping(ctx)? {
                return Ok(Some(reason));
            }
        }
        loop {
            let rung = self.state.rung;
            if let Some(reason) = self.evaluate_pending(ctx, rung)? {
                return Ok(Some(reason));
            }
            if rung >= self.top() {
                break;
            }
            self.promote(ctx, rung)?;
        }
        self.state.rung = 0;
        if self.halving() {
            let cfg = self.cfg.clone();
            if let Some(e) = self.evaluator.as_mut() {
                e.keep_live(&[], &cfg);
            }
        }
        if self.state.generation > 0 {
            self.select();
        }
        self.generation_record(ctx)?;
        if self.cfg.objectives.pareto() {
            pareto::write_front(&self.dir, &self.sizer, self.cfg.objectives)?;
        }
        self.state.phase = Phase::Breed;
        self.save(ctx.clocks)?;
        Ok(None)
    }

    /// Rung `rung` (below the last) is evaluated: its best `ceil(n/eta)` are promoted, its
    /// evaluations logged with whether they were, and the checkpoint moves to the next rung.
    fn promote(&mut self, ctx: &mut Ctx, rung: usize) -> Result<()> {
        let cohort: Vec<(usize, f64)> = self
            .current()
            .iter()
            .enumerate()
            .filter(|(_, p)| p.rung == rung && p.fitness.is_some())
            .map(|(i, p)| (i, p.fitness.unwrap_or(f64::NAN)))
            .collect();
        let up = halving::promote(&cohort, self.cfg.eta);
        let mut genomes = Vec::new();
        for &(i, _) in &cohort {
            let promoted = up.contains(&i);
            let ind = &mut self.current()[i];
            ind.promoted = promoted;
            let record = ind.record.take();
            if promoted {
                genomes.push(ind.genome.clone());
            }
            if let Some(mut r) = record {
                if let Some(rung) = r.rung.as_mut() {
                    rung.promoted = promoted;
                }
                self.log(ctx, &r)?;
            }
        }
        let cfg = self.cfg.clone();
        if let Some(e) = self.evaluator.as_mut() {
            e.keep_live(&genomes, &cfg);
        }
        self.state.rung = rung + 1;
        self.save(ctx.clocks)
    }

    fn generation_record(&mut self, ctx: &mut Ctx) -> Result<()> {
        let fit = fitness_of(&self.state.population);
        let b = argbest(&selection_keys(&self.state.population, self.top()));
        let mean = fit.iter().sum::<f64>() / fit.len() as f64;
        let p = &self.state.population;
        let record = GenerationRecord {
            kind: "generation",
            generation: self.state.generation,
            elapsed_s: ctx.clocks.wall_s(),
            cpu_s: ctx.clocks.cpu_s(),
            best: fit[b],
            mean,
            best_genome: p[b].genome.clone(),
            population: p.iter().map(|p| p.genome.clone()).collect(),
            fitness: fit,
            evaluations: self.state.evaluations,
            rungs: self.halving().then(|| p.iter().map(|p| p.rung).collect()),
        };
        self.log(ctx, &record)
    }

    /// Environmental selection: binary tournaments with replacement over parents + offspring
    /// until `population` are chosen; the best of all replaces the worst chosen if left out.
    /// Individuals compare by rung reached, then fitness ([`selection_keys`]); with a second
    /// objective, by NSGA-II's ranks over those keys and the sizes (no random draws).
    fn select(&mut self) {
        let all: Vec<Individual> = self
            .state
            .population
            .drain(..)
            .chain(self.state.offspring.drain(..))
            .collect();
        let keys = selection_keys(&all, self.top());
        let (n, o) = (self.cfg.population, self.cfg.objectives);
        let chosen = if o.pareto() {
            pareto::nsga2_select(&pareto::objectives(&all, &keys, &self.sizer, o), n)
        } else {
            environmental_selection(&keys, n, &mut self.state.rng)
        };
        self.state.population = chosen.into_iter().map(|i| all[i].clone()).collect();
    }

    /// Breeds the offspring: parents by tournaments on the fitness (with a second objective,
    /// on NSGA-II's crowded comparison); with a size cap, children over it are bred again,
    /// then shrunk ([`Sizer::within_cap`]).
    fn breed(&mut self) {
        let keys = selection_keys(&self.state.population, self.top());
        let o = self.cfg.objectives;
        let fit = if o.pareto() {
            let objectives = pareto::objectives(&self.state.population, &keys, &self.sizer, o);
            pareto::crowded_scores(&objectives)
        } else {
            keys
        };
        let genomes: Vec<Arch> = self
            .state
            .population
            .iter()
            .map(|p| Arch::parse(&p.genome).expect("genomes in the checkpoint parse"))
            .collect();
        self.state.offspring = breed(&genomes, &fit, &self.cfg, &mut self.state.rng);
        if self.sizer.capped() {
            let one = SearchConfig {
                population: 1,
                ..self.cfg.clone()
            };
            let (sizer, rng) = (&self.sizer, &mut self.state.rng);
            let kids = std::mem::take(&mut self.state.offspring);
            self.state.offspring = kids
                .into_iter()
                .map(|k| sizer.within_cap(k, || breed(&genomes, &fit, &one, rng).remove(0)))
                .collect();
        }
    }
}

impl Step for Search {
    /// A new search evaluates its first population; a resumed one finishes the generation its
    /// checkpoint was taken in.
    fn start(&mut self, ctx: &mut Ctx) -> Result<Option<StopReason>> {
        match self.state.phase {
            Phase::Evaluate => self.complete_generation(ctx),
            Phase::Breed | Phase::Done => Ok(None),
        }
    }

    fn position(&mut self, ctx: &mut Ctx) -> Result<Position> {
        Ok(Position {
            generation: self.state.generation as u64,
            epoch: 0,
            best_fitness: self.best_fitness(),
            best_generation: 0,
            budget_s: ctx.clocks.read(ctx.stop.budget_clock),
        })
    }

    /// A generation's record is written when it completes (it is part of the checkpoint).
    fn report(&mut self, _: &mut Ctx, _: bool) -> Result<()> {
        Ok(())
    }

    fn checkpoint(&mut self, ctx: &mut Ctx) -> Result<()> {
        self.save(ctx.clocks)
    }

    fn advance(&mut self, ctx: &mut Ctx) -> Result<Option<StopReason>> {
        self.breed();
        self.state.generation += 1;
        self.state.phase = Phase::Evaluate;
        self.save(ctx.clocks)?;
        self.complete_generation(ctx)
    }
}

/// Breeds `population` offspring: parents by binary tournament (two distinct individuals when
/// there are two), crossed over with `crossover_prob` (else copied), each child mutated with
/// `mutation_prob`. Parents are left unchanged.
pub(crate) fn breed(
    genomes: &[Arch],
    fitness: &[f64],
    cfg: &SearchConfig,
    rng: &mut GaRng,
) -> Vec<Individual> {
    let tournament = Selection::Tournament { k: 2 };
    let mut out = Vec::with_capacity(cfg.population);
    while out.len() < cfg.population {
        let p1 = tournament.select(fitness, 1, rng)[0];
        let mut p2 = tournament.select(fitness, 1, rng)[0];
        for _ in 0..16 {
            if p2 != p1 {
                break;
            }
            p2 = tournament.select(fitness, 1, rng)[0];
        }
        let (c1, c2, how) = if rng.random_bool(cfg.crossover_prob) {
            let (a, b) = genome::crossover(&genomes[p1], &genomes[p2], rng);
            (a, b, format!("crossover of {p1} and {p2}"))
        } else {
            (
                genomes[p1].clone(),
                genomes[p2].clone(),
                format!("copies of {p1} and {p2}"),
            )
        };
        for c in [c1, c2] {
            if out.len() == cfg.population {
                break;
            }
            let (g, origin) = if rng.random_bool(cfg.mutation_prob) {
                let (m, op, pos) = genome::mutate(&c, &cfg.space, &cfg.mutation_dist, rng);
                (m, format!("{how}, mutation {op:?} at {pos}"))
            } else {
                (c, how.clone())
            };
            out.push(Individual {
                genome: g.to_string(),
                origin,
                ..Default::default()
            });
        }
    }
    out
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::data::{load_dataset, DataArgs};
    use crate::run::{NewRun, RunArgs};
    use rand::SeedableRng;
    use tch::Device;

    /// A valid configuration on mnist-10k (for the tests of other modules too).
    pub(crate) fn cfg(population: usize) -> SearchConfig {
        let args = SearchArgs {
            broker: None,
            data: DataArgs {
                dataset: "mnist-10k".into(),
                data_dir: None,
                val_fraction: 0.1,
                subset: None,
                image_size: 64,
                channels: 3,
            },
            population,
            generations: None,
            epochs: 1,
            crossover_prob: 0.9,
            mutation_prob: 0.2,
            mutation_dist: "0.7,0.1,0.1,0.1".into(),
            filters: "32,64".into(),
            min_depth: 1,
            max_depth: 5,
            fitness_set: FitnessSet::Val,
            on_shrink: ShrinkPolicy::Repair,
            fidelity: Fidelity::Full,
            eta: 3,
            rungs: 3,
            time_budget: None,
            final_epochs: None,
            batch_size: 32,
            lr: 4e-3,
            precision: "auto".into(),
            threads: None,
            schedule: "cosine".into(),
            max_params: None,
            max_macs: None,
            objectives: "accuracy".into(),
            per_device: None,
            run: RunArgs {
                seed: Some(1),
                ..Default::default()
            },
        };
        let c = args
            .to_config(&NewRun {
                seed: 1,
                device_name: "cpu".into(),
                device: Device::Cpu,
            })
            .unwrap();
        c.validate().unwrap();
        c
    }

    #[test]
    fn breeding_makes_new_lists_from_tournament_parents() {
        let c = cfg(6);
        let mut rng = GaRng::seed_from_u64(9);
        let parents: Vec<Arch> = ["S32-32", "S64-64 P:max", "P:avg S32-64", "S64-32 S32-32"]
            .iter()
            .map(|s| Arch::parse(s).unwrap())
            .collect();
        let before = parents.clone();
        let fit = [0.9, 0.1, 0.5, 0.7];
        let mut crossed = 0;
        for _ in 0..200 {
            let kids = breed(&parents, &fit, &c, &mut rng);
            assert_eq!(kids.len(), 6);
            for k in &kids {
                assert!(k.fitness.is_none());
                let a = Arch::parse(&k.genome).unwrap();
                assert!(!a.layers.is_empty());
                crossed += k.origin.starts_with("crossover") as usize;
                // the worst parent (1) can never win a binary tournament of distinct entrants
                let parents: Vec<usize> = k
                    .origin
                    .split(|c: char| !c.is_ascii_digit())
                    .filter_map(|t| t.parse().ok())
                    .take(2)
                    .collect();
                assert_eq!(parents.len(), 2, "{}", k.origin);
                assert!(!parents.contains(&1), "{}", k.origin);
            }
        }
        let frac = crossed as f64 / 1200.0;
        assert!((0.85..0.95).contains(&frac), "{frac}");
        assert_eq!(parents, before);
    }

    #[test]
    fn cache_keys_depend_on_genome_and_settings() {
        let a = cfg(3);
        let mut b = a.clone();
        b.train.epochs = 2;
        let (sa, sb) = (a.fitness_settings(), b.fitness_settings());
        assert_ne!(cache_key("S32-32", &sa), cache_key("S32-32", &sb));
        assert_ne!(cache_key("S32-32", &sa), cache_key("S32-64", &sa));
        assert_eq!(
            cache_key("S32-32", &sa),
            cache_key("S32-32", &a.fitness_settings())
        );
    }

    #[test]
    fn a_network_that_diverges_scores_zero_with_a_note() {
        let mut c = cfg(3);
        c.data.subset = Some(200);
        c.train.batch_size = 50;
        c.train.lr = 1e12;
        let mut data = load_dataset(&c.dataset, &c.data, Device::Cpu).unwrap();
        let t = train_genome("S8-8", &c, &mut data, None, None, None).unwrap();
        assert_eq!(t.eval.fitness, 0.0);
        let note = t.eval.note.unwrap();
        assert!(
            note.starts_with("scored 0") && note.contains("lower --lr"),
            "{note}"
        );
    }

    #[test]
    fn genomes_that_pool_below_1x1_are_repaired_or_scored_zero() {
        let mut c = cfg(3);
        c.data.subset = Some(200);
        c.train.batch_size = 50;
        let mut data = load_dataset(&c.dataset, &c.data, Device::Cpu).unwrap();
        let g = "P:max P:max P:max P:max P:max P:avg S4-4";
        let t = train_genome(g, &c, &mut data, None, None, None).unwrap();
        assert_eq!(t.eval.evaluated, "P:max P:max P:max P:max S4-4");
        let note = t.eval.note.unwrap();
        assert!(
            note.contains("layer 5 (P:max) at 1x1") && note.contains("layer 6"),
            "{note}"
        );
        assert!(t.weights.is_some() && t.eval.params > 0);
        assert!(t.eval.val_acc.is_some());

        c.on_shrink = ShrinkPolicy::Zero;
        let t = train_genome(g, &c, &mut data, None, None, None).unwrap();
        assert_eq!(t.eval.fitness, 0.0);
        assert!(t.weights.is_none());
        assert!(t.eval.note.unwrap().contains("below 1x1"));
    }
}
