//! Crossover and mutation for flat (fixed-length) genomes: pixel vectors, weight vectors.
//!
//! Operators do not touch genomes directly: from the run's RNG they draw a *plan* (cut points or
//! a mask, a list of mutated genes with their new values), and each storage backend applies the
//! plan (`flat_cpu` to copy-on-write CPU blocks, `flat_tensor` to a `[P, N]` tensor). So every
//! backend shares this one code path and, for one seed, breeds exactly the same population.
use crate::error::{Error, Result};
use rand::Rng;
use rand_distr::{Distribution, Normal};
use serde::{Deserialize, Serialize};

#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Crossover {
    /// GARI: first half of the genes from parent 1, second half from parent 2.
    HalfSwap,
    /// One cut point uniform in 1..N: head of parent 1, tail of parent 2.
    SinglePoint,
    /// Two cut points: parent 1, then parent 2 between the cuts, then parent 1.
    TwoPoint,
    /// Each gene from either parent with probability 1/2.
    Uniform,
    /// No crossover: the child is a copy of parent 1.
    None,
}

impl Crossover {
    pub fn parse(s: &str) -> Result<Self> {
        Ok(match s.trim().to_ascii_lowercase().replace('-', "_").as_str() {
            "half_swap" | "half" => Crossover::HalfSwap,
            "single_point" | "one_point" | "single" => Crossover::SinglePoint,
            "two_point" | "two" => Crossover::TwoPoint,
            "uniform" => Crossover::Uniform,
            "none" => Crossover::None,
            other => {
                return Err(Error::usage(format!(
                    "--crossover {other}: expected half-swap, single-point, two-point, uniform or none"
                )))
            }
        })
    }
}

/// How many genes a mutation touches.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "by", content = "value", rename_all = "snake_case")]
pub enum GeneCount {
    /// This percent of the genes, rounded, at least one (GARI's and PyGAD's `mutation_percent_genes`).
    Percent(f64),
    /// Each gene independently with this probability.
    Probability(f64),
    /// Exactly this many genes.
    Count(usize),
}

impl GeneCount {
    pub fn validate(&self) -> Result<()> {
        match *self {
            GeneCount::Percent(p) if !(p > 0.0 && p <= 100.0) => Err(Error::usage(format!(
                "--mutation-percent {p}: must be in (0, 100]"
            ))),
            GeneCount::Probability(p) if !(p > 0.0 && p <= 1.0) => Err(Error::usage(format!(
                "--mutation-rate {p}: the probability per gene must be in (0, 1]"
            ))),
            GeneCount::Count(0) => Err(Error::usage("--mutation-genes 0: must be at least 1")),
            _ => Ok(()),
        }
    }

    /// Number of genes to mutate in a genome of `n` genes.
    pub fn draw<R: Rng + ?Sized>(&self, n: usize, rng: &mut R) -> usize {
        match *self {
            GeneCount::Percent(p) => ((p / 100.0 * n as f64).round() as usize).clamp(1, n),
            GeneCount::Count(c) => c.min(n),
            GeneCount::Probability(p) => {
                if p >= 1.0 {
                    n
                } else {
                    // Binomial(n, p) by the normal approximation when large, exact when small.
                    let mean = n as f64 * p;
                    if mean > 50.0 {
                        let sd = (mean * (1.0 - p)).sqrt();
                        let x: f64 = Normal::new(mean, sd).unwrap().sample(rng);
                        (x.round().max(0.0) as usize).min(n)
                    } else {
                        // count successes by geometric skips
                        let mut k = 0;
                        let mut i = 0usize;
                        let ln_q = (1.0 - p).ln();
                        loop {
                            let u: f64 = rng.random::<f64>().max(f64::MIN_POSITIVE);
                            i += (u.ln() / ln_q).floor() as usize;
                            if i >= n {
                                break k;
                            }
                            k += 1;
                            i += 1;
                        }
                    }
                }
            }
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Mutation {
    /// Replace the chosen genes by uniform random values in `[low, high)` (GARI, PyGAD's
    /// `mutation_by_replacement`).
    Replace {
        genes: GeneCount,
        low: f32,
        high: f32,
    },
    /// Add N(0, sigma²) to the chosen genes, then clamp to `[low, high]`.
    Gaussian {
        genes: GeneCount,
        sigma: f32,
        low: f32,
        high: f32,
    },
    /// Deb's polynomial mutation with distribution index `eta` (larger: smaller steps): add
    /// `delta_q * (high - low)`, then clamp to `[low, high]`.
    Polynomial {
        genes: GeneCount,
        eta: f32,
        low: f32,
        high: f32,
    },
}

impl Mutation {
    pub fn genes(&self) -> GeneCount {
        match *self {
            Mutation::Replace { genes, .. }
            | Mutation::Gaussian { genes, .. }
            | Mutation::Polynomial { genes, .. } => genes,
        }
    }
    pub fn validate(&self) -> Result<()> {
        self.genes().validate()?;
        match *self {
            Mutation::Replace { low, high, .. }
            | Mutation::Gaussian { low, high, .. }
            | Mutation::Polynomial { low, high, .. }
                if !(low < high) || !low.is_finite() || !high.is_finite() =>
            {
                Err(Error::usage(format!(
                    "mutation range [{low}, {high}] is empty or not finite"
                )))
            }
            Mutation::Gaussian { sigma, .. } if !(sigma > 0.0 && sigma.is_finite()) => Err(
                Error::usage(format!("mutation sigma {sigma} must be positive")),
            ),
            Mutation::Polynomial { eta, .. } if !(eta >= 0.0 && eta.is_finite()) => Err(
                Error::usage(format!("polynomial mutation index {eta} must be >= 0")),
            ),
            _ => Ok(()),
        }
    }
}

/// Deb's polynomial step for a uniform draw `u` in [0, 1): in [-1, 1], small for large `eta`.
pub fn polynomial_step(u: f32, eta: f32) -> f32 {
    let e = 1.0 / (eta + 1.0);
    if u < 0.5 {
        (2.0 * u).powf(e) - 1.0
    } else {
        1.0 - (2.0 * (1.0 - u)).powf(e)
    }
}

/// Where a child's genes come from.
#[derive(Clone, Debug, PartialEq)]
pub enum CrossoverPlan {
    /// All genes from parent 1.
    Copy,
    /// Sorted cut points in 1..N: sources alternate at each cut, starting with parent 1.
    Cuts(Vec<usize>),
    /// Gene i comes from parent 2 where bit i is set.
    Mask(Vec<u64>),
}

impl CrossoverPlan {
    /// True when gene `i` comes from parent 2.
    #[inline]
    pub fn from_second(&self, i: usize) -> bool {
        match self {
            CrossoverPlan::Copy => false,
            CrossoverPlan::Cuts(c) => c.partition_point(|&x| x <= i) % 2 == 1,
            CrossoverPlan::Mask(m) => (m[i / 64] >> (i % 64)) & 1 == 1,
        }
    }
}

/// How a child's chosen genes change. Indices are distinct and sorted.
#[derive(Clone, Debug, PartialEq)]
pub enum MutationPlan {
    None,
    /// gene[i] = v
    Set(Vec<(u32, f32)>),
    /// gene[i] = clamp(gene[i] + d, low, high)
    Add {
        changes: Vec<(u32, f32)>,
        low: f32,
        high: f32,
    },
}

impl MutationPlan {
    pub fn changes(&self) -> &[(u32, f32)] {
        match self {
            MutationPlan::None => &[],
            MutationPlan::Set(c) | MutationPlan::Add { changes: c, .. } => c,
        }
    }
    /// The new value of a gene that had value `old`, for a change `v` of this plan.
    #[inline]
    pub fn apply_one(&self, old: f32, v: f32) -> f32 {
        match self {
            MutationPlan::Add { low, high, .. } => (old + v).clamp(*low, *high),
            _ => v,
        }
    }
}

/// Everything needed to build one child from two parents.
#[derive(Clone, Debug, PartialEq)]
pub struct ChildPlan {
    pub parents: (usize, usize),
    pub crossover: CrossoverPlan,
    pub mutation: MutationPlan,
}

/// The variation operators of a flat-genome run and their probabilities.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct FlatOps {
    pub crossover: Crossover,
    /// Probability that a pair is crossed over (else the child copies parent 1).
    pub crossover_prob: f64,
    pub mutation: Mutation,
    /// Probability that a child is mutated at all.
    pub mutation_prob: f64,
}

impl FlatOps {
    pub fn validate(&self) -> Result<()> {
        for (name, p) in [
            ("crossover", self.crossover_prob),
            ("mutation", self.mutation_prob),
        ] {
            if !(0.0..=1.0).contains(&p) {
                return Err(Error::usage(format!(
                    "{name} probability {p} must be in [0, 1]"
                )));
            }
        }
        self.mutation.validate()
    }

    /// Refuses an exact mutation gene count larger than a genome of `n` genes (it would be
    /// capped without a word).
    pub fn check_gene_count(&self, n: usize) -> Result<()> {
        match self.mutation.genes() {
            GeneCount::Count(c) if c > n => Err(Error::usage(format!(
                "--mutation-genes {c}: a genome has only {n} genes"
            ))),
            _ => Ok(()),
        }
    }

    /// Draws the plan of one child of `parents` for genomes of `n` genes.
    pub fn plan<R: Rng + ?Sized>(
        &self,
        parents: (usize, usize),
        n: usize,
        rng: &mut R,
    ) -> ChildPlan {
        ChildPlan {
            parents,
            crossover: self.plan_crossover(n, rng),
            mutation: self.plan_mutation(n, rng),
        }
    }

    /// The plans of one child per pair of parents, drawn in order.
    pub fn plan_children<R: Rng + ?Sized>(
        &self,
        pairs: &[(usize, usize)],
        n: usize,
        rng: &mut R,
    ) -> Vec<ChildPlan> {
        pairs.iter().map(|&pp| self.plan(pp, n, rng)).collect()
    }

    pub fn plan_crossover<R: Rng + ?Sized>(&self, n: usize, rng: &mut R) -> CrossoverPlan {
        if n < 2 || self.crossover == Crossover::None || rng.random::<f64>() >= self.crossover_prob
        {
            return CrossoverPlan::Copy;
        }
        match self.crossover {
            Crossover::None => CrossoverPlan::Copy,
            Crossover::HalfSwap => CrossoverPlan::Cuts(vec![n / 2]),
            Crossover::SinglePoint => CrossoverPlan::Cuts(vec![rng.random_range(1..n)]),
            Crossover::TwoPoint => {
                if n < 3 {
                    return CrossoverPlan::Cuts(vec![1]);
                }
                let mut c: Vec<usize> = rand::seq::index::sample(rng, n - 1, 2)
                    .into_iter()
                    .map(|x| x + 1)
                    .collect();
                c.sort_unstable();
                CrossoverPlan::Cuts(c)
            }
            Crossover::Uniform => {
                let mut words: Vec<u64> =
                    (0..n.div_ceil(64)).map(|_| rng.random::<u64>()).collect();
                if n % 64 != 0 {
                    let last = words.len() - 1;
                    words[last] &= (1u64 << (n % 64)) - 1;
                }
                CrossoverPlan::Mask(words)
            }
        }
    }

    pub fn plan_mutation<R: Rng + ?Sized>(&self, n: usize, rng: &mut R) -> MutationPlan {
        if n == 0 || rng.random::<f64>() >= self.mutation_prob {
            return MutationPlan::None;
        }
        let k = self.mutation.genes().draw(n, rng);
        if k == 0 {
            return MutationPlan::None;
        }
        let mut idx: Vec<u32> = rand::seq::index::sample(rng, n, k)
            .into_iter()
            .map(|i| i as u32)
            .collect();
        idx.sort_unstable();
        match self.mutation {
            Mutation::Replace { low, high, .. } => MutationPlan::Set(
                idx.into_iter()
                    .map(|i| (i, rng.random_range(low..high)))
                    .collect(),
            ),
            Mutation::Gaussian {
                sigma, low, high, ..
            } => {
                let normal = Normal::new(0.0f32, sigma).unwrap();
                MutationPlan::Add {
                    changes: idx.into_iter().map(|i| (i, normal.sample(rng))).collect(),
                    low,
                    high,
                }
            }
            Mutation::Polynomial { eta, low, high, .. } => MutationPlan::Add {
                changes: idx
                    .into_iter()
                    .map(|i| (i, polynomial_step(rng.random::<f32>(), eta) * (high - low)))
                    .collect(),
                low,
                high,
            },
        }
    }
}

/// Builds a child into `out` from parent slices: the reference application of a plan.
pub fn apply_plan(plan: &ChildPlan, p1: &[f32], p2: &[f32], out: &mut [f32]) {
    let n = out.len();
    match &plan.crossover {
        CrossoverPlan::Copy => out.copy_from_slice(p1),
        CrossoverPlan::Cuts(cuts) => {
            let mut start = 0;
            for (s, end) in cuts.iter().copied().chain(std::iter::once(n)).enumerate() {
                let src = if s % 2 == 0 { p1 } else { p2 };
                out[start..end].copy_from_slice(&src[start..end]);
                start = end;
            }
        }
        CrossoverPlan::Mask(_) => {
            for i in 0..n {
                out[i] = if plan.crossover.from_second(i) {
                    p2[i]
                } else {
                    p1[i]
                };
            }
        }
    }
    for &(i, v) in plan.mutation.changes() {
        let i = i as usize;
        out[i] = plan.mutation.apply_one(out[i], v);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;
    fn rng() -> rand_chacha::ChaCha8Rng {
        rand_chacha::ChaCha8Rng::seed_from_u64(11)
    }
    fn ops(c: Crossover) -> FlatOps {
        FlatOps {
            crossover: c,
            crossover_prob: 1.0,
            mutation: Mutation::Replace {
                genes: GeneCount::Count(1),
                low: 0.0,
                high: 1.0,
            },
            mutation_prob: 0.0,
        }
    }
    // parents whose genes tell where they came from
    fn parents(n: usize) -> (Vec<f32>, Vec<f32>) {
        (
            (0..n).map(|i| i as f32).collect(),
            (0..n).map(|i| -(i as f32) - 1.0).collect(),
        )
    }

    #[test]
    fn half_swap_takes_first_half_from_p1() {
        let (a, b) = parents(10);
        let plan = ops(Crossover::HalfSwap).plan((0, 1), 10, &mut rng());
        let mut c = vec![0.0; 10];
        apply_plan(&plan, &a, &b, &mut c);
        assert_eq!(&c[..5], &a[..5]);
        assert_eq!(&c[5..], &b[5..]);
    }

    #[test]
    fn single_and_two_point_children_come_from_parents_at_the_right_positions() {
        let n = 50;
        let (a, b) = parents(n);
        let mut r = rng();
        for c in [Crossover::SinglePoint, Crossover::TwoPoint] {
            for _ in 0..200 {
                let plan = ops(c).plan((0, 1), n, &mut r);
                let CrossoverPlan::Cuts(cuts) = &plan.crossover else {
                    panic!()
                };
                assert_eq!(cuts.len(), if c == Crossover::SinglePoint { 1 } else { 2 });
                assert!(cuts.iter().all(|&x| x >= 1 && x < n));
                let mut child = vec![0.0; n];
                apply_plan(&plan, &a, &b, &mut child);
                for i in 0..n {
                    let segment = cuts.iter().filter(|&&x| x <= i).count();
                    let expect = if segment % 2 == 0 { a[i] } else { b[i] };
                    assert_eq!(child[i], expect, "gene {i} cuts {cuts:?}");
                }
            }
        }
    }

    #[test]
    fn uniform_mixes_both_parents_gene_by_gene() {
        let n = 1000;
        let (a, b) = parents(n);
        let plan = ops(Crossover::Uniform).plan((0, 1), n, &mut rng());
        let mut child = vec![0.0; n];
        apply_plan(&plan, &a, &b, &mut child);
        let from_b = (0..n).filter(|&i| child[i] == b[i]).count();
        assert!((0..n).all(|i| child[i] == a[i] || child[i] == b[i]));
        assert!((400..600).contains(&from_b), "{from_b}");
        // bits past n are clear
        let CrossoverPlan::Mask(m) = &plan.crossover else {
            panic!()
        };
        assert_eq!(m.len(), 16);
        assert_eq!(m[15] >> (1000 % 64), 0);
    }

    #[test]
    fn crossover_probability_zero_copies_parent_one() {
        let mut o = ops(Crossover::Uniform);
        o.crossover_prob = 0.0;
        assert_eq!(
            o.plan((0, 1), 10, &mut rng()).crossover,
            CrossoverPlan::Copy
        );
    }

    #[test]
    fn replace_mutation_changes_the_requested_number_of_genes_within_range() {
        let n = 90_000;
        let o = FlatOps {
            crossover: Crossover::None,
            crossover_prob: 0.0,
            mutation: Mutation::Replace {
                genes: GeneCount::Percent(0.01),
                low: 2.0,
                high: 3.0,
            },
            mutation_prob: 1.0,
        };
        let p: Vec<f32> = vec![0.0; n];
        let mut r = rng();
        for _ in 0..20 {
            let plan = o.plan((0, 0), n, &mut r);
            let mut c = vec![0.0; n];
            apply_plan(&plan, &p, &p, &mut c);
            let changed: Vec<f32> = c.iter().copied().filter(|&x| x != 0.0).collect();
            assert_eq!(changed.len(), 9, "0.01% of 90,000 genes");
            assert!(changed.iter().all(|&x| (2.0..3.0).contains(&x)));
        }
    }

    #[test]
    fn gaussian_mutation_clamps_and_respects_probability() {
        let n = 10_000;
        let o = FlatOps {
            crossover: Crossover::None,
            crossover_prob: 0.0,
            mutation: Mutation::Gaussian {
                genes: GeneCount::Probability(0.1),
                sigma: 5.0,
                low: -1.0,
                high: 1.0,
            },
            mutation_prob: 1.0,
        };
        let p = vec![0.5f32; n];
        let mut r = rng();
        let plan = o.plan((0, 0), n, &mut r);
        let mut c = vec![0.0; n];
        apply_plan(&plan, &p, &p, &mut c);
        let changed = c.iter().filter(|&&x| x != 0.5).count();
        assert!((850..1150).contains(&changed), "{changed}");
        assert!(c.iter().all(|&x| (-1.0..=1.0).contains(&x)));
        assert!(c.iter().any(|&x| x == 1.0) && c.iter().any(|&x| x == -1.0));
    }

    #[test]
    fn polynomial_steps_shrink_with_eta_and_stay_in_range() {
        let mean_abs = |eta: f32| {
            (0..1000)
                .map(|i| polynomial_step(i as f32 / 1000.0, eta).abs())
                .sum::<f32>()
                / 1000.0
        };
        assert!(mean_abs(1.0) > 2.0 * mean_abs(20.0));
        assert!((0..1000).all(|i| polynomial_step(i as f32 / 1000.0, 5.0).abs() <= 1.0));
        assert!(polynomial_step(0.1, 5.0) < 0.0 && polynomial_step(0.9, 5.0) > 0.0);
    }

    #[test]
    fn gene_count_by_probability_matches_its_mean() {
        let mut r = rng();
        for (n, p) in [(1000usize, 0.01f64), (100_000, 0.01)] {
            let total: usize = (0..400)
                .map(|_| GeneCount::Probability(p).draw(n, &mut r))
                .sum();
            let mean = total as f64 / 400.0;
            let expect = n as f64 * p;
            assert!((mean - expect).abs() < expect * 0.1, "{mean} vs {expect}");
        }
    }

    #[test]
    fn invalid_settings_are_usage_errors() {
        assert!(GeneCount::Percent(0.0).validate().is_err());
        assert!(GeneCount::Percent(100.5).validate().is_err());
        assert!(GeneCount::Percent(100.0).validate().is_ok());
        let m = Mutation::Replace {
            genes: GeneCount::Count(1),
            low: 1.0,
            high: 1.0,
        };
        assert!(m.validate().is_err());
    }
}
