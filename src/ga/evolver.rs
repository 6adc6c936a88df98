//! One GA step on a `[P, N]` genome tensor: selection and replacement by the shared
//! [`plan_generation`], crossover and mutation by `FlatOps` plans bred on the device
//! ([`breed_genomes`]), with the row each child inherits from (for optimiser state) — the
//! populations of the GANs evolve through it.
use super::flat_tensor::breed_genomes;
use super::ops::{CrossoverPlan, FlatOps, GeneCount, Mutation};
use super::plan::{plan_generation, Breeding};
use crate::error::Result;
use crate::rng::GaRng;
use rand::Rng;
use tch::{Kind, Tensor};

/// Selection, crossover and mutation of a `[P, N]` genome tensor with the shared GA operators:
/// the engine's `plan_generation` (mating pool, survivors, pairs), `FlatOps` plans, and the
/// tensor backend's `breed_genomes`.
#[derive(Clone, Debug)]
pub struct Evolver {
    pub ga: Breeding,
    pub ops: FlatOps,
    /// Per-tensor crossover: each parameter tensor from either parent (gene ranges).
    pub tensor_ranges: Option<Vec<(usize, usize)>>,
}

impl Evolver {
    /// The next generation and, per row, the index of the row it inherits from (survivor or
    /// first parent), for optimiser state; the survivors come first, then the children.
    pub fn step(
        &self,
        genomes: &Tensor,
        fitness: &[f64],
        rng: &mut GaRng,
    ) -> Result<(Tensor, Tensor)> {
        self.step_counted(genomes, fitness, rng)
            .map(|(g, i, _)| (g, i))
    }

    /// [`Evolver::step`], with the number of survivors (the rows before the children).
    pub fn step_counted(
        &self,
        genomes: &Tensor,
        fitness: &[f64],
        rng: &mut GaRng,
    ) -> Result<(Tensor, Tensor, usize)> {
        let (survivors, pairs) = plan_generation(&self.ga, fitness, rng);
        let n = genomes.size()[1] as usize;
        let dev = genomes.device();
        // dense Gaussian mutation (a large fraction of the genes): drawn on the device as one
        // noise tensor instead of per-gene plans (same distribution, far cheaper at 10^5 genes)
        let dense = match self.ops.mutation {
            Mutation::Gaussian {
                genes: GeneCount::Probability(p),
                sigma,
                low,
                high,
            } if p >= 0.05 => Some((p, sigma, low, high)),
            _ => None,
        };
        let mut plans = match dense {
            Some(_) => FlatOps {
                mutation_prob: 0.0,
                ..self.ops.clone()
            }
            .plan_children(&pairs, n, rng),
            None => self.ops.plan_children(&pairs, n, rng),
        };
        if let Some(ranges) = &self.tensor_ranges {
            for p in plans.iter_mut() {
                if matches!(p.crossover, CrossoverPlan::Mask(_)) {
                    let mut words = vec![0u64; n.div_ceil(64)];
                    for &(s, e) in ranges {
                        if rng.random::<bool>() {
                            for i in s..e {
                                words[i / 64] |= 1 << (i % 64);
                            }
                        }
                    }
                    p.crossover = CrossoverPlan::Mask(words);
                }
            }
        }
        let mut children = breed_genomes(genomes, &plans)?;
        if let Some((p, sigma, low, high)) = dense {
            let c = plans.len() as i64;
            let rows: Vec<f32> = (0..c)
                .map(|_| (rng.random::<f64>() < self.ops.mutation_prob) as u8 as f32)
                .collect();
            let rows = Tensor::from_slice(&rows).to_device(dev).view([c, 1]);
            let noise = children.randn_like() * sigma as f64;
            let noise = if p < 1.0 {
                noise * children.rand_like().lt(p).to_kind(Kind::Float)
            } else {
                noise
            };
            children = (children + noise * rows).clamp(low as f64, high as f64);
        }
        let keep: Vec<i64> = survivors.iter().map(|&s| s as i64).collect();
        let kept = genomes.index_select(0, &Tensor::from_slice(&keep).to_device(dev));
        let n_kept = keep.len();
        let mut inherit = keep;
        inherit.extend(plans.iter().map(|p| p.parents.0 as i64));
        Ok((
            Tensor::cat(&[kept, children], 0),
            Tensor::from_slice(&inherit).to_device(dev),
            n_kept,
        ))
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::ga::{Crossover, Pairing, Replacement, Selection};
    use rand::SeedableRng;
    use tch::Device;

    /// Operators that only cross over (mutation switched off).
    pub(crate) fn crossover_only(crossover: Crossover) -> FlatOps {
        FlatOps {
            crossover,
            crossover_prob: 1.0,
            mutation: Mutation::Gaussian {
                genes: GeneCount::Count(1),
                sigma: 1e-9,
                low: -10.0,
                high: 10.0,
            },
            mutation_prob: 0.0,
        }
    }

    fn breeding(p: usize, parents: usize) -> Breeding {
        Breeding {
            population: p,
            parents,
            selection: Selection::Truncation,
            pairing: Pairing::RandomPairs,
            replacement: Replacement::Elitism { k: 1 },
        }
    }

    #[test]
    fn per_tensor_crossover_takes_whole_tensors() {
        let ev = Evolver {
            ga: breeding(4, 2),
            ops: crossover_only(Crossover::Uniform),
            tensor_ranges: Some(vec![(0, 3), (3, 100), (100, 130)]),
        };
        // row r is all r
        let g = Tensor::arange(4, (Kind::Float, Device::Cpu))
            .view([4, 1])
            .repeat([1, 130]);
        let fitness = [0.0, 3.0, 2.0, 1.0];
        let mut rng = GaRng::seed_from_u64(3);
        let mut mixed = 0;
        for _ in 0..20 {
            let (next, inherit) = ev.step(&g, &fitness, &mut rng).unwrap();
            assert_eq!(next.size(), vec![4, 130]);
            assert_eq!(inherit.int64_value(&[0]), 1, "the elite survives first");
            for r in 1..4 {
                let row = Vec::<f32>::try_from(next.get(r)).unwrap();
                for &(s, e) in &[(0usize, 3usize), (3, 100), (100, 130)] {
                    assert!(row[s..e].iter().all(|&v| v == row[s]), "tensor split");
                    assert!(row[s] == 1.0 || row[s] == 2.0, "parents are the top 2");
                }
                if row[0] != row[3] || row[3] != row[100] {
                    mixed += 1;
                }
            }
        }
        assert!(mixed > 10, "{mixed}");
    }
}
