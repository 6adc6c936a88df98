//! Generation plans: who survives and which parents each child has, drawn from the run's RNG.
//! A free function of the fitness and a [`Breeding`] config, so that every loop that breeds — the
//! run layer's engine, the GAN evolvers — plans generations the same way.
use super::selection::{ranking, Selection};
use crate::error::{Error, Result};
use crate::rng::GaRng;
use rand::Rng;
use serde::{Deserialize, Serialize};

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
    fn save(&self, w: &mut dyn std::io::Write) -> std::io::Result<()>;
    /// Restores what `save` wrote.
    fn load(&mut self, r: &mut dyn std::io::Read) -> Result<()>;
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

impl Pairing {
    pub fn parse(s: &str) -> Result<Self> {
        match s.trim().to_ascii_lowercase().as_str() {
            "ring" => Ok(Pairing::Ring),
            "random" | "random-pairs" => Ok(Pairing::RandomPairs),
            _ => Err(Error::usage(format!(
                "--pairing {s}: expected ring or random"
            ))),
        }
    }
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

/// Population size, mating pool, selection, pairing and replacement.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Breeding {
    pub population: usize,
    /// Size of the mating pool.
    pub parents: usize,
    pub selection: Selection,
    pub pairing: Pairing,
    pub replacement: Replacement,
}

impl Breeding {
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
                "{} survivors leave no room for children in a population of {p}: lower the elitism{}",
                self.survivors(),
                if matches!(self.replacement, Replacement::KeepParents) { " or the mating pool" } else { "" }
            )));
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

/// Draws the mating pool, the survivors and the parent pairs of the children.
pub fn plan_generation(
    cfg: &Breeding,
    fitness: &[f64],
    rng: &mut GaRng,
) -> (Vec<usize>, Vec<(usize, usize)>) {
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

/// AutoCNN's environmental selection, a (mu + lambda) replacement: `n` individuals of parents +
/// offspring (`fitness`) chosen by binary tournament with replacement; the best of all replaces
/// the worst chosen when no tournament picked it.
pub fn environmental_selection(fitness: &[f64], n: usize, rng: &mut GaRng) -> Vec<usize> {
    use super::selection::{argbest, better};
    let mut chosen = Selection::Tournament { k: 2 }.select(fitness, n, rng);
    let best = argbest(fitness);
    if !chosen.contains(&best) {
        let worst = (0..chosen.len())
            .min_by(|&a, &b| {
                let (fa, fb) = (fitness[chosen[a]], fitness[chosen[b]]);
                if better(fb, fa) {
                    std::cmp::Ordering::Less
                } else if better(fa, fb) {
                    std::cmp::Ordering::Greater
                } else {
                    std::cmp::Ordering::Equal
                }
            })
            .expect("n >= 1");
        chosen[worst] = best;
    }
    chosen
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;

    fn cfg(replacement: Replacement, pairing: Pairing) -> Breeding {
        Breeding {
            population: 8,
            parents: 4,
            selection: Selection::Truncation,
            pairing,
            replacement,
        }
    }

    #[test]
    fn keep_parents_keeps_the_pool_and_pairs_distinct_parents() {
        let c = cfg(Replacement::KeepParents, Pairing::RandomPairs);
        let f = [0.0, 7.0, 1.0, 6.0, 2.0, 5.0, 3.0, 4.0];
        let mut rng = GaRng::seed_from_u64(1);
        for _ in 0..50 {
            let (surv, pairs) = plan_generation(&c, &f, &mut rng);
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
        let f = [0.0, 7.0, 1.0, 6.0, 2.0, 5.0, 3.0, 4.0];
        let (surv, pairs) = plan_generation(&c, &f, &mut GaRng::seed_from_u64(1));
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
    }

    #[test]
    fn environmental_selection_keeps_the_best() {
        let mut rng = GaRng::seed_from_u64(2);
        let fit = [0.1, 0.2, 0.3, 0.4, 0.5, 0.9, 0.6, 0.7];
        let mut counts = [0usize; 8];
        for _ in 0..2000 {
            let chosen = environmental_selection(&fit, 4, &mut rng);
            assert_eq!(chosen.len(), 4);
            assert!(chosen.contains(&5), "the best is always kept: {chosen:?}");
            for i in chosen {
                counts[i] += 1;
            }
        }
        assert_eq!(counts[0], 0, "{counts:?}");
        assert!(counts[7] > counts[1], "{counts:?}");
    }
}
