//! Parent selection. Every operator works on a fitness slice (higher is better) and returns
//! indices into it. Non-finite fitness (NaN, ±inf from a broken evaluation) ranks below every
//! finite value and gets zero weight in roulette, so it is never preferred.
use crate::error::{Error, Result};
use rand::Rng;
use serde::{Deserialize, Serialize};

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Selection {
    /// Tournament of `k` distinct individuals; the fittest wins (k = 2 is binary tournament).
    Tournament { k: usize },
    /// Truncation: the `n` fittest, best first (GARI's mating pool, PyGAD's "sss").
    Truncation,
    /// Fitness-proportional (roulette wheel), with replacement. Fitness is shifted so the worst
    /// finite one has weight 0 when any is negative.
    Roulette,
    /// Linear rank: the i-th worst of P has weight i (1..=P), with replacement.
    Rank,
}

impl Selection {
    pub fn parse(s: &str) -> Result<Self> {
        let s = s.trim().to_ascii_lowercase();
        Ok(match s.as_str() {
            "truncation" | "top" | "sss" => Selection::Truncation,
            "roulette" | "rws" => Selection::Roulette,
            "rank" => Selection::Rank,
            "binary" | "tournament" => Selection::Tournament { k: 2 },
            _ => {
                if let Some(k) = s.strip_prefix("tournament:") {
                    let k: usize = k.parse().map_err(|_| {
                        Error::usage(format!("--selection {s}: tournament size must be a number"))
                    })?;
                    Selection::Tournament { k }
                } else {
                    return Err(Error::usage(format!(
                        "--selection {s}: expected truncation, tournament[:K], roulette or rank"
                    )));
                }
            }
        })
    }

    pub fn validate(&self, population: usize) -> Result<()> {
        if let Selection::Tournament { k } = self {
            if *k < 1 || *k > population {
                return Err(Error::usage(format!(
                    "tournament size {k} must be between 1 and the population size {population}"
                )));
            }
        }
        Ok(())
    }

    /// Chooses `n` parents (indices into `fitness`). Truncation needs `n <= len`.
    pub fn select<R: Rng + ?Sized>(&self, fitness: &[f64], n: usize, rng: &mut R) -> Vec<usize> {
        let p = fitness.len();
        assert!(p > 0, "selection from an empty population");
        match self {
            Selection::Truncation => {
                let order = ranking(fitness);
                assert!(n <= p, "truncation of {n} from {p}");
                order[..n].to_vec()
            }
            Selection::Tournament { k } => {
                let k = (*k).clamp(1, p);
                (0..n)
                    .map(|_| {
                        let mut best: Option<usize> = None;
                        for i in rand::seq::index::sample(rng, p, k).into_iter() {
                            best = Some(match best {
                                Some(b) if !better(fitness[i], fitness[b]) => b,
                                _ => i,
                            });
                        }
                        best.unwrap()
                    })
                    .collect()
            }
            Selection::Roulette => {
                let finite_min = fitness
                    .iter()
                    .copied()
                    .filter(|f| f.is_finite())
                    .fold(f64::INFINITY, f64::min);
                let shift = if finite_min < 0.0 { -finite_min } else { 0.0 };
                let w: Vec<f64> = fitness
                    .iter()
                    .map(|&f| if f.is_finite() { f + shift } else { 0.0 })
                    .collect();
                sample_weighted(&w, n, rng)
            }
            Selection::Rank => {
                let order = ranking(fitness); // best first
                let mut w = vec![0.0; p];
                for (r, &i) in order.iter().enumerate() {
                    w[i] = (p - r) as f64;
                }
                sample_weighted(&w, n, rng)
            }
        }
    }
}

/// `a` is strictly better than `b`; non-finite values lose to finite ones.
pub fn better(a: f64, b: f64) -> bool {
    sort_key(a) > sort_key(b)
}

/// NaN sorts as -inf: below every real fitness.
fn sort_key(f: f64) -> f64 {
    if f.is_nan() {
        f64::NEG_INFINITY
    } else {
        f
    }
}

/// Indices sorted best first (stable: ties keep index order; NaN last).
pub fn ranking(fitness: &[f64]) -> Vec<usize> {
    let mut order: Vec<usize> = (0..fitness.len()).collect();
    order.sort_by(|&a, &b| sort_key(fitness[b]).total_cmp(&sort_key(fitness[a])));
    order
}

/// Index of the best individual (first one on ties).
pub fn argbest(fitness: &[f64]) -> usize {
    ranking(fitness)[0]
}

fn sample_weighted<R: Rng + ?Sized>(w: &[f64], n: usize, rng: &mut R) -> Vec<usize> {
    let mut cum = Vec::with_capacity(w.len());
    let mut total = 0.0;
    for &x in w {
        total += x.max(0.0);
        cum.push(total);
    }
    (0..n)
        .map(|_| {
            if !(total > 0.0) || !total.is_finite() {
                return rng.random_range(0..w.len());
            }
            let r = rng.random::<f64>() * total;
            cum.partition_point(|&c| c <= r).min(w.len() - 1)
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;
    fn rng() -> rand_chacha::ChaCha8Rng {
        rand_chacha::ChaCha8Rng::seed_from_u64(7)
    }

    #[test]
    fn tournament_with_k_equal_p_always_picks_the_best() {
        let f = [0.3, 2.5, -1.0, 2.4, f64::NAN, 0.0];
        let picks = Selection::Tournament { k: f.len() }.select(&f, 200, &mut rng());
        assert!(picks.iter().all(|&i| i == 1), "{picks:?}");
    }

    #[test]
    fn binary_tournament_never_picks_the_worst() {
        let f = [5.0, 1.0, 3.0, 4.0];
        let picks = Selection::Tournament { k: 2 }.select(&f, 1000, &mut rng());
        assert!(!picks.contains(&1));
        // the best wins every tournament it is in: 3 of the 6 pairs, so about half of the picks
        let best = picks.iter().filter(|&&i| i == 0).count();
        assert!((400..600).contains(&best), "{best}");
    }

    #[test]
    fn truncation_takes_the_top_n_best_first() {
        let f = [0.1, 0.9, f64::NAN, 0.5, 0.7];
        assert_eq!(
            Selection::Truncation.select(&f, 3, &mut rng()),
            vec![1, 4, 3]
        );
    }

    #[test]
    fn roulette_is_proportional_and_ignores_nan() {
        let f = [1.0, 3.0, f64::NAN, 0.0];
        let picks = Selection::Roulette.select(&f, 4000, &mut rng());
        let c = |k| picks.iter().filter(|&&i| i == k).count();
        assert_eq!(c(2), 0);
        assert_eq!(c(3), 0);
        let ratio = c(1) as f64 / c(0) as f64;
        assert!((2.6..3.4).contains(&ratio), "{ratio}");
    }

    #[test]
    fn roulette_shifts_negative_fitness() {
        let f = [-10.0, -5.0];
        let picks = Selection::Roulette.select(&f, 100, &mut rng());
        assert!(picks.iter().all(|&i| i == 1));
    }

    #[test]
    fn rank_weights_by_position() {
        let f = [100.0, 1.0, 2.0]; // ranks: 0 best (w 3), 2 (w 2), 1 (w 1)
        let picks = Selection::Rank.select(&f, 6000, &mut rng());
        let c = |k| picks.iter().filter(|&&i| i == k).count() as f64;
        assert!((c(0) / c(1) - 3.0).abs() < 0.4, "{} {}", c(0), c(1));
        assert!((c(2) / c(1) - 2.0).abs() < 0.3);
    }

    #[test]
    fn parse_and_validate() {
        assert_eq!(
            Selection::parse("tournament:3").unwrap(),
            Selection::Tournament { k: 3 }
        );
        assert!(Selection::parse("best").is_err());
        assert!(Selection::Tournament { k: 9 }.validate(4).is_err());
    }
}
