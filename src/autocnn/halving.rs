//! Successive halving (`auto-cnn search --fidelity halving`): most of a search's compute goes
//! to networks that selection throws away, and a network's accuracy after a short training
//! already tells the hopeless ones apart. So each generation's networks first train the
//! smallest budget, and only the best of each rung train on.
//!
//! - **Budgets**, in optimizer steps so that a one-epoch training still has rungs: with
//!   `full_steps = epochs * ceil(train_len / batch_size)`, rung r of R trains
//!   `ceil(full_steps / eta^(R-1-r))` steps in all, the last rung the full training.
//! - **Promotion**: of the n networks scored at a rung, the best `ceil(n / eta)` by fitness
//!   (ties: the earlier in the list) go on to the next rung; a network scored 0 never does
//!   (it was refused, failed or learnt nothing, and more steps do not change that).
//! - **Promotion as results arrive** (an evaluator that overlaps rungs, `--broker`): a network
//!   is promoted as soon as its promotion is certain, and its next rung's task goes out while
//!   the rest of its rung still trains. At a rung with n networks and k = `ceil(n / eta)`
//!   places, a scored network x (fitness > 0) is certain when (scored networks of the rung
//!   that rank above x, by fitness then earlier index) + (networks of the rung not scored yet)
//!   < k: even if every one not scored yet ranks above x, x is in the top k. Those ranking
//!   above it are then certain too, and promotions go out in rank order. Above the first rung,
//!   n is known only once the rung below is decided (a network scored 0 there takes no place
//!   here), so n is bounded by the most the rung below can still promote, and a network not
//!   promoted yet counts as not scored: `n - ceil(n / eta)` grows with n, so the bound is the
//!   worst case ([`certain_promotions`]). Once a rung is fully scored, its certain set is
//!   exactly [`promote`]'s: the records, selection and result equal those of the synchronous
//!   rule. Classic ASHA promotes on the running top `1/eta` of the results so far instead,
//!   which can promote a network that the full rung would not have; this rule never does, at
//!   the price of promoting a little later.
//! - **Continuation**: a promoted network trains on from where it stopped, not from scratch:
//!   the schedule spans the full budget, the batch order is the same and the optimizer state is
//!   carried ([`crate::nn::train::EpochTrainer::train_steps`]), so it ends exactly as a network
//!   trained straight to that budget. The search keeps the networks of the rung in progress
//!   in memory ([`Live`]); where one is gone (after `--resume`, on another worker, or evicted
//!   for memory) it is trained again from its seeded start to where it stopped, which gives
//!   the same weights, then on.
//! - **Selection never prefers a network because it stopped early**: individuals rank by the
//!   rung they reached (higher first), then by their fitness there, which is the accuracy at
//!   their last rung. [`selection_key`] maps (rung, fitness) to one number that orders so, and
//!   the tournaments of breeding and environmental selection and the search's best compare
//!   those keys.
use super::cache::cache_key;
use super::config::{Fidelity, SearchConfig};
use crate::error::{Error, Result};
use crate::nn::arch::Arch;
use crate::nn::model::LayerNet;
use crate::nn::train::{EpochTrainer, TrainConfig};
use std::sync::Mutex;
use tch::nn::VarStore;
use tch::Device;

/// The training budget of each rung in optimizer steps, lowest first, the last `full_steps`.
pub(crate) fn budgets(full_steps: usize, eta: usize, rungs: usize) -> Vec<usize> {
    (0..rungs)
        .map(|r| {
            let below = (rungs - 1 - r) as u32;
            let div = (eta as u64).checked_pow(below).unwrap_or(u64::MAX);
            (full_steps as u64).div_ceil(div).max(1) as usize
        })
        .collect()
}

/// The rung budgets of a search on a training set of `train_len` images; none with
/// `--fidelity full`, whose one budget is the full training.
pub(crate) fn rung_budgets(cfg: &SearchConfig, train_len: usize) -> Vec<usize> {
    match cfg.fidelity {
        Fidelity::Full => Vec::new(),
        Fidelity::Halving => budgets(cfg.train.full_steps(train_len), cfg.eta, cfg.rungs),
    }
}

/// Refuses a budget below the full training that is not one of the search's lower rungs for
/// a training set of `train_len` images (a worker checks its tasks so).
pub(crate) fn check_budget(cfg: &SearchConfig, train_len: usize) -> Result<()> {
    let Some(b) = cfg.train.budget_steps else {
        return Ok(());
    };
    let rungs = rung_budgets(cfg, train_len);
    if rungs.len() > 1 && rungs[..rungs.len() - 1].contains(&b) {
        return Ok(());
    }
    Err(Error::usage(format!(
        "a budget of {b} training steps is not a lower rung of this search (rungs {rungs:?} \
         on {train_len} training images)"
    )))
}

/// The search's configuration for training to `budget` steps (None: the full training, the
/// search's own, whose cache key is that of a full search).
pub(crate) fn at_budget(cfg: &SearchConfig, budget: Option<usize>) -> SearchConfig {
    let mut c = cfg.clone();
    c.train.budget_steps = budget;
    c
}

/// How many of `n` networks scored at a rung go on to the next.
pub(crate) fn promoted_count(n: usize, eta: usize) -> usize {
    n.div_ceil(eta.max(1))
}

/// Which of a rung's networks, given as (index, fitness), go on: the best `ceil(n / eta)` by
/// fitness, the earlier index first among equals, none scored 0 (or less, or unknown).
pub(crate) fn promote(cohort: &[(usize, f64)], eta: usize) -> Vec<usize> {
    let mut order: Vec<(usize, f64)> = cohort.to_vec();
    order.sort_by(|a, b| b.1.total_cmp(&a.1).then(a.0.cmp(&b.0)));
    order
        .into_iter()
        .take(promoted_count(cohort.len(), eta))
        .filter(|(_, f)| *f > 0.0)
        .map(|(i, _)| i)
        .collect()
}

/// Which networks of each rung below the last are certain to be promoted, each rung's in rank
/// order, given the `n` networks of the first rung and `scored[r]`, the (index, fitness) of
/// the networks scored at rung r so far (at r > 0 only networks promoted from r - 1). A
/// function of what is scored, not of the order it came in; it only grows as results come,
/// and equals [`promote`] at a rung whose networks (and those of every rung below) are all
/// scored.
pub(crate) fn certain_promotions(
    n: usize,
    eta: usize,
    scored: &[Vec<(usize, f64)>],
) -> Vec<Vec<usize>> {
    // the most networks the rung can hold: exact at the first, an upper bound above it
    let mut most = n;
    let mut out = Vec::new();
    for rung in scored.iter().take(scored.len().saturating_sub(1)) {
        let mut order = rung.clone();
        order.sort_by(|a, b| b.1.total_cmp(&a.1).then(a.0.cmp(&b.0)));
        let k = promoted_count(most, eta);
        let unscored = most.saturating_sub(order.len());
        let mut certain = Vec::new();
        let mut may_go_on = unscored;
        for (above, &(i, f)) in order.iter().enumerate() {
            if f > 0.0 && above + unscored < k {
                certain.push(i);
            }
            may_go_on += usize::from(f > 0.0 && above < k);
        }
        out.push(certain);
        most = may_go_on.min(k);
    }
    out
}

/// Evaluations of one generation of `n` new networks when every rung promotes its full share.
pub(crate) fn evaluations_per_generation(n: usize, eta: usize, rungs: usize) -> usize {
    let mut cohort = n;
    let mut total = 0;
    for _ in 0..rungs.max(1) {
        total += cohort;
        cohort = promoted_count(cohort, eta);
    }
    total
}

/// How far apart two rungs' keys are: more than any fitness (an accuracy, in [0, 1]) spans.
const RUNG_GAP: f64 = 2.0;

/// The number selection compares: the fitness itself for a network that reached the last rung
/// `top` (so `--fidelity full`, whose one rung is the last, compares plain fitness), else the
/// fitness lowered by [`RUNG_GAP`] per rung short of it. Every network that reached a higher
/// rung ranks above every network stopped below it; among equals the fitness decides. NaN
/// (not evaluated) stays NaN, which selection ranks last.
pub(crate) fn selection_key(rung: usize, top: usize, fitness: f64) -> f64 {
    if rung >= top {
        fitness
    } else {
        debug_assert!(!(fitness > 1.0), "fitness is an accuracy: {fitness}");
        fitness - RUNG_GAP * (top - rung) as f64
    }
}

/// A network trained to a lower rung's budget, kept to train on when it is promoted.
pub(crate) struct LiveNet {
    pub(crate) vs: VarStore,
    pub(crate) net: LayerNet,
    /// Its optimizer, batch order and schedule position, with the full budget's settings.
    pub(crate) trainer: EpochTrainer<'static>,
    /// The network trained (the genome after a repair) and the note of its repair.
    pub(crate) arch: Arch,
    pub(crate) note: Option<String>,
    pub(crate) params: i64,
}

impl LiveNet {
    /// Memory it holds: weights, gradients and Adam's two moments, in float32.
    fn bytes(&self) -> f64 {
        self.params as f64 * 16.0
    }

    fn device(&self) -> Device {
        self.vs.device()
    }
}

/// The key a network is kept under: its genome and everything its training depends on but the
/// budget (the cache key of its full training).
pub(crate) fn live_key(genome: &str, cfg: &SearchConfig) -> String {
    cache_key(genome, &at_budget(cfg, None).fitness_settings())
}

/// The networks of the rung in progress, kept in memory between rungs (the search's own, or a
/// worker's), up to [`Live::for_device`]'s cap; the oldest go first beyond it (they are
/// trained again from their start when promoted, with the same result).
pub(crate) struct Live {
    nets: Mutex<Vec<(String, LiveNet)>>,
    cap_bytes: f64,
}

/// What the networks kept on a CUDA device may hold (libtorch tells nothing of a GPU's free
/// memory, and the trainings beside them need theirs).
const CUDA_CAP: f64 = 4e9;

impl Live {
    /// A store for networks that train on `device`: up to a quarter of the machine's memory on
    /// the CPU, [`CUDA_CAP`] on a GPU.
    pub(crate) fn for_device(device: Device) -> Self {
        match device {
            Device::Cpu => {
                let have = crate::run::memory::physical_bytes().unwrap_or(8e9);
                Live::with_cap(have / 4.0)
            }
            _ => Live::with_cap(CUDA_CAP),
        }
    }

    pub(crate) fn with_cap(cap_bytes: f64) -> Self {
        Live {
            nets: Mutex::new(Vec::new()),
            cap_bytes,
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Vec<(String, LiveNet)>> {
        self.nets.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The network kept under `key`, if it can train on to `train`'s budget on `device`: the
    /// same settings, not past that budget.
    pub(crate) fn take(&self, key: &str, train: &TrainConfig, device: Device) -> Option<LiveNet> {
        let mut nets = self.lock();
        let i = nets.iter().position(|(k, _)| k == key)?;
        let (_, n) = nets.remove(i);
        let base = TrainConfig {
            budget_steps: None,
            ..train.clone()
        };
        let fits = train.budget_steps.is_none_or(|b| n.trainer.steps() <= b);
        (fits && n.device() == device && *n.trainer.config() == base).then_some(n)
    }

    /// Keeps `net` under `key` (replacing one there), the oldest going beyond the cap.
    pub(crate) fn put(&self, key: String, net: LiveNet) {
        let mut nets = self.lock();
        nets.retain(|(k, _)| *k != key);
        nets.push((key, net));
        let mut total: f64 = nets.iter().map(|(_, n)| n.bytes()).sum();
        while total > self.cap_bytes && !nets.is_empty() {
            total -= nets.remove(0).1.bytes();
        }
    }

    /// Frees every network whose key is not in `keep`.
    pub(crate) fn retain(&self, keep: &[String]) {
        self.lock().retain(|(k, _)| keep.contains(k));
    }

    #[cfg(test)]
    pub(crate) fn len(&self) -> usize {
        self.lock().len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::autocnn::evaluate::{start_network, train_genome};
    use crate::data::load_dataset;

    /// The tensors of a network's saved weights, by name.
    fn tensors(bytes: &[u8]) -> Vec<(String, Vec<f32>)> {
        let mut t: Vec<(String, Vec<f32>)> =
            tch::Tensor::load_multi_from_stream(std::io::Cursor::new(bytes))
                .unwrap()
                .into_iter()
                .map(|(k, t)| {
                    (
                        k,
                        Vec::<f32>::try_from(t.to_kind(tch::Kind::Float).flatten(0, -1)).unwrap(),
                    )
                })
                .collect();
        t.sort_by(|a, b| a.0.cmp(&b.0));
        t
    }

    #[test]
    fn a_network_continued_from_a_lower_budget_equals_one_trained_straight_there() {
        let mut c = crate::autocnn::search::tests::cfg(3);
        c.data.subset = Some(300);
        c.train.batch_size = 16;
        c.train.epochs = 2;
        c.fidelity = Fidelity::Halving;
        let mut data = load_dataset(&c.dataset, &c.data, Device::Cpu).unwrap();
        let full = c.train.full_steps(data.train.len());
        let b = budgets(full, 3, 3);
        // mid-epoch stops and a continuation across an epoch's end
        assert!(
            b[0] % c.train.steps_per_epoch(data.train.len()) != 0,
            "{b:?}"
        );
        let g = "S8-8 P:max S8-16";
        // fresh networks with the same initial weights: the tests run in parallel, and others
        // draw from libtorch's one generator while a network is made
        let first = start_network(g, &c, &data).unwrap().unwrap();
        let fresh = |data: &crate::data::Dataset| {
            let mut n = start_network(g, &c, data).unwrap().unwrap();
            n.vs.copy(&first.vs).unwrap();
            let live = Live::for_device(Device::Cpu);
            live.put(live_key(g, &c), n);
            live
        };
        let live = fresh(&data);
        for (r, &steps) in b.iter().enumerate() {
            let budget = (r + 1 < b.len()).then_some(steps);
            let cfg = at_budget(&c, budget);
            let went_on = train_genome(g, &cfg, &mut data, Some(&live), None, None).unwrap();
            // kept to go on below the full training, not after it
            assert_eq!(live.len(), usize::from(budget.is_some()));
            assert_eq!(went_on.eval.budget_steps, budget);
            // straight from the start to the same budget (the last: the full training)
            let from_start = fresh(&data);
            let straight = train_genome(g, &cfg, &mut data, Some(&from_start), None, None).unwrap();
            assert_eq!(went_on.eval.fitness, straight.eval.fitness, "rung {r}");
            assert_eq!(went_on.eval.val_acc, straight.eval.val_acc);
            assert_eq!(went_on.eval.params, straight.eval.params);
            assert_eq!(
                tensors(went_on.weights.as_deref().unwrap()),
                tensors(straight.weights.as_deref().unwrap()),
                "rung {r}: the same weights to the bit"
            );
        }
    }

    #[test]
    fn kept_networks_go_on_only_under_their_settings_and_within_the_cap() {
        let c = crate::autocnn::search::tests::cfg(3);
        let mut data = load_dataset(
            &c.dataset,
            &{
                let mut d = c.data.clone();
                d.subset = Some(100);
                d
            },
            Device::Cpu,
        )
        .unwrap();
        let mut h = at_budget(&c, Some(2));
        h.fidelity = Fidelity::Halving;
        let live = Live::for_device(Device::Cpu);
        for g in ["S8-8", "S8-16"] {
            train_genome(g, &h, &mut data, Some(&live), None, None).unwrap();
        }
        assert_eq!(live.len(), 2);
        // another learning rate is another training: not continued, and dropped
        let mut other = at_budget(&h, Some(3));
        other.train.lr = 1e-3;
        assert!(live
            .take(&live_key("S8-8", &h), &other.train, Device::Cpu)
            .is_none());
        assert_eq!(live.len(), 1);
        // past the budget asked for: not continued
        let back = at_budget(&h, Some(1));
        assert!(live
            .take(&live_key("S8-16", &h), &back.train, Device::Cpu)
            .is_none());
        // the cap: the oldest go first
        let small = Live::with_cap(1.0);
        train_genome("S8-8", &h, &mut data, Some(&small), None, None).unwrap();
        assert_eq!(small.len(), 0);
        let keep = Live::for_device(Device::Cpu);
        for g in ["S8-8", "S8-16", "S16-16"] {
            train_genome(g, &h, &mut data, Some(&keep), None, None).unwrap();
        }
        keep.retain(&[live_key("S8-16", &h)]);
        assert_eq!(keep.len(), 1);
        let next = at_budget(&h, Some(3));
        assert!(keep
            .take(&live_key("S8-16", &h), &next.train, Device::Cpu)
            .is_some());
    }

    #[test]
    fn budgets_are_counted_in_steps_and_end_at_the_full_training() {
        // the side-by-side budget: 6,404 training images in batches of 16, one epoch
        assert_eq!(budgets(401, 3, 3), vec![45, 134, 401]);
        assert_eq!(budgets(401, 3, 1), vec![401]);
        assert_eq!(budgets(10, 2, 4), vec![2, 3, 5, 10]);
        // a tiny training still has rungs of at least one step; a huge eta^rungs is no overflow
        assert_eq!(budgets(2, 3, 3), vec![1, 1, 2]);
        assert_eq!(budgets(5, 100, 10), vec![1, 1, 1, 1, 1, 1, 1, 1, 1, 5]);
        assert_eq!(evaluations_per_generation(4, 3, 3), 4 + 2 + 1);
        assert_eq!(evaluations_per_generation(9, 3, 3), 9 + 3 + 1);
        assert_eq!(evaluations_per_generation(5, 3, 1), 5);
    }

    #[test]
    fn a_budget_must_be_a_lower_rung_of_the_search() {
        let mut c = crate::autocnn::search::tests::cfg(3);
        c.fidelity = Fidelity::Halving;
        c.train.batch_size = 16;
        // 6,404 images: rungs of 45, 134 and 401 steps
        assert_eq!(rung_budgets(&c, 6404), vec![45, 134, 401]);
        for (b, ok) in [
            (None, true),
            (Some(45), true),
            (Some(134), true),
            (Some(401), false),
        ] {
            let r = check_budget(&at_budget(&c, b), 6404);
            assert_eq!(r.is_ok(), ok, "{b:?}: {r:?}");
        }
        let e = check_budget(&at_budget(&c, Some(46)), 6404).unwrap_err();
        assert!(
            e.to_string().contains("46 training steps") && e.is_user_error(),
            "{e}"
        );
        c.fidelity = Fidelity::Full;
        assert!(rung_budgets(&c, 6404).is_empty());
        assert!(check_budget(&at_budget(&c, Some(45)), 6404).is_err());
    }

    #[test]
    fn each_rung_promotes_exactly_its_best_ceil_n_over_eta() {
        let cohort = [
            (0, 0.3),
            (1, 0.9),
            (2, 0.5),
            (3, 0.9),
            (4, 0.1),
            (5, 0.7),
            (6, 0.2),
        ];
        // ceil(7/3) = 3: the two 0.9s (earlier index first) and the 0.7
        assert_eq!(promote(&cohort, 3), vec![1, 3, 5]);
        assert_eq!(promote(&cohort, 2), vec![1, 3, 5, 2]);
        assert_eq!(promote(&cohort[..1], 3), vec![0]);
        assert!(promote(&[], 3).is_empty());
        // a network scored 0 does not go on, even when its place is free
        assert_eq!(promote(&[(0, 0.0), (1, 0.4)], 2), vec![1]);
        assert!(promote(&[(0, 0.0), (1, f64::NAN)], 1).is_empty());
    }

    #[test]
    fn a_promotion_is_certain_the_moment_no_result_can_take_its_place() {
        // four networks, eta 3: two places at rung 0
        let at = |r0: &[(usize, f64)], r1: &[(usize, f64)]| {
            certain_promotions(4, 3, &[r0.to_vec(), r1.to_vec(), vec![]])
        };
        let none: Vec<Vec<usize>> = vec![vec![], vec![]];
        assert_eq!(at(&[(2, 0.5)], &[]), none);
        // the best of two, two not scored: both of those could still rank above it
        assert_eq!(at(&[(2, 0.5), (0, 0.7)], &[]), none);
        // one not scored: the best is in the top two whatever it scores; the second is not
        assert_eq!(
            at(&[(2, 0.5), (0, 0.7), (3, 0.6)], &[]),
            vec![vec![0], vec![]]
        );
        // rung 1 will hold up to two networks (one place): the first one scored there waits
        // for the other to be promoted or not
        let r0 = [(2, 0.5), (0, 0.7), (3, 0.6)];
        assert_eq!(at(&r0, &[(0, 0.8)]), vec![vec![0], vec![]]);
        let r0 = [(2, 0.5), (0, 0.7), (3, 0.6), (1, 0.1)];
        assert_eq!(at(&r0, &[(0, 0.8)]), vec![vec![0, 3], vec![]]);
        assert_eq!(at(&r0, &[(0, 0.8), (3, 0.9)]), vec![vec![0, 3], vec![3]]);
        // a network scored 0 takes no place above: rung 1 then holds one network, which is
        // certain as soon as it is scored, before the last network of rung 0 is
        let r0 = [(3, 0.0), (0, 0.7), (2, 0.0)];
        assert_eq!(at(&r0, &[]), vec![vec![0], vec![]]);
        assert_eq!(at(&r0, &[(0, 0.8)]), vec![vec![0], vec![]]);
        let r0 = [(3, 0.0), (0, 0.7), (2, 0.0), (1, 0.0)];
        assert_eq!(at(&r0, &[(0, 0.8)]), vec![vec![0], vec![0]]);
        // ties: the earlier index ranks above
        let r0 = [(3, 0.5), (1, 0.5), (2, 0.5)];
        assert_eq!(at(&r0, &[]), vec![vec![1], vec![]]);
    }

    /// The promotions when every result not known yet (`known` lacks it) ranks above all
    /// others: the worst case for each known network, so the known networks promoted here are
    /// exactly those promoted whatever the missing results turn out to be.
    fn promoted_whatever_comes(
        n: usize,
        eta: usize,
        rungs: usize,
        known: &std::collections::HashMap<(usize, usize), f64>,
    ) -> Vec<Vec<usize>> {
        let mut cohort: Vec<usize> = (0..n).collect();
        let mut out = Vec::new();
        for r in 0..rungs - 1 {
            let c: Vec<(usize, f64)> = cohort
                .iter()
                .map(|&i| (i, known.get(&(r, i)).copied().unwrap_or(2.0)))
                .collect();
            cohort = promote(&c, eta);
            let mut sure: Vec<usize> = cohort
                .iter()
                .copied()
                .filter(|&i| known.contains_key(&(r, i)))
                .collect();
            sure.sort_by(|&a, &b| known[&(r, b)].total_cmp(&known[&(r, a)]).then(a.cmp(&b)));
            out.push(sure);
        }
        out
    }

    #[test]
    fn promotions_come_exactly_when_certain_and_end_as_the_synchronous_rule_in_any_order() {
        use rand::seq::SliceRandom;
        use rand::{Rng, SeedableRng};
        use std::collections::HashMap;
        let mut rng = crate::ga::GaRng::seed_from_u64(23);
        let mut overlapped = 0;
        for case in 0..400 {
            let n = rng.random_range(1..=10);
            let eta = rng.random_range(2..=4);
            let rungs = rng.random_range(2..=4);
            // fitness of each network at each rung, on a coarse grid (ties) with some zeros
            let fit: Vec<Vec<f64>> = (0..rungs)
                .map(|_| {
                    (0..n)
                        .map(|_| match rng.random_range(0..8) {
                            0 => 0.0,
                            v => v as f64 / 8.0,
                        })
                        .collect()
                })
                .collect();
            // the synchronous rule, rung by rung
            let mut sync = Vec::new();
            let mut cohort: Vec<usize> = (0..n).collect();
            for at_rung in fit.iter().take(rungs - 1) {
                let c: Vec<(usize, f64)> = cohort.iter().map(|&i| (i, at_rung[i])).collect();
                cohort = promote(&c, eta);
                let mut sorted = cohort.clone();
                sorted.sort();
                sync.push(sorted);
            }
            // results arrive in a random order among those whose task is out: every network's
            // first rung, then the next rung of each network as soon as it is promoted
            let mut out: Vec<(usize, usize)> = (0..n).map(|i| (0, i)).collect();
            let mut scored: Vec<Vec<(usize, f64)>> = vec![Vec::new(); rungs];
            let mut known = HashMap::new();
            let mut emitted: Vec<Vec<usize>> = vec![Vec::new(); rungs - 1];
            while !out.is_empty() {
                out.shuffle(&mut rng);
                let (r, i) = out.pop().unwrap();
                scored[r].push((i, fit[r][i]));
                known.insert((r, i), fit[r][i]);
                let certain = certain_promotions(n, eta, &scored);
                // exactly those promoted whatever the missing results, in rank order
                assert_eq!(
                    certain,
                    promoted_whatever_comes(n, eta, rungs, &known),
                    "case {case}: {scored:?}"
                );
                for (r, now) in certain.iter().enumerate() {
                    // never withdrawn: what was certain stays so
                    assert!(emitted[r].iter().all(|i| now.contains(i)), "case {case}");
                    let new: Vec<usize> = now
                        .iter()
                        .copied()
                        .filter(|i| !emitted[r].contains(i))
                        .collect();
                    for i in new {
                        emitted[r].push(i);
                        out.push((r + 1, i));
                        // promoted while its own rung still has results to come
                        let rung_size = if r == 0 { n } else { sync[r - 1].len() };
                        overlapped += usize::from(scored[r].len() < rung_size);
                    }
                }
            }
            for e in &mut emitted {
                e.sort();
            }
            assert_eq!(
                emitted, sync,
                "case {case}: the synchronous rule's promotions"
            );
        }
        assert!(
            overlapped > 100,
            "promotions before their rung was complete: {overlapped}"
        );
    }

    #[test]
    fn a_stopped_network_never_ranks_above_one_that_went_further() {
        use crate::ga::plan::environmental_selection;
        use crate::ga::selection::{argbest, Selection};
        use rand::SeedableRng;
        // (rung, fitness): a network stopped at rung 0 with 0.99 against finished ones
        let inds = [(0, 0.99), (2, 0.50), (1, 0.98), (2, 0.10), (2, 0.0)];
        let keys: Vec<f64> = inds.iter().map(|&(r, f)| selection_key(r, 2, f)).collect();
        let mut order: Vec<usize> = (0..inds.len()).collect();
        order.sort_by(|&a, &b| keys[b].total_cmp(&keys[a]));
        assert_eq!(order, vec![1, 3, 4, 2, 0], "rung first, then fitness");
        assert_eq!(argbest(&keys), 1);
        // a binary tournament between the stopped 0.99 and the finished 0.0 picks the finished
        let mut rng = crate::ga::GaRng::seed_from_u64(1);
        for _ in 0..50 {
            let pair = [keys[0], keys[4]];
            assert_eq!(
                Selection::Tournament { k: 2 }.select(&pair, 1, &mut rng),
                vec![1]
            );
        }
        // the elitism of environmental selection keeps the best finished network
        for seed in 0..20 {
            let mut rng = crate::ga::GaRng::seed_from_u64(seed);
            assert!(environmental_selection(&keys, 2, &mut rng).contains(&1));
        }
        // the last rung (and --fidelity full, whose one rung is the last) compares plain fitness
        assert_eq!(selection_key(2, 2, 0.75), 0.75);
        assert_eq!(selection_key(0, 0, 0.3).to_bits(), 0.3f64.to_bits());
        assert!(selection_key(1, 2, f64::NAN).is_nan());
        assert!(selection_key(1, 2, 1.0) < selection_key(2, 2, 0.0));
    }
}
