//! AutoCNN genomes: lists of skip layers and 2x2 pooling layers (the [`Arch`] notation), and the
//! variation operators of Sun et al. (2020): random initial genomes, one-point crossover with a
//! cut in each parent, and the four mutations (add a skip layer, add a pooling layer, remove a
//! layer, randomise a layer). Every operator returns new genomes; parents are never changed.
use crate::error::{Error, Result};
use crate::nn::arch::{Arch, Layer, PoolKind};
use rand::Rng;
use serde::{Deserialize, Serialize};

/// What a random layer or genome may contain.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct GenomeSpace {
    /// Filter counts a skip layer draws its two convolutions' widths from.
    pub filters: Vec<i64>,
    /// Initial depth is uniform in `min_depth..=max_depth`.
    pub min_depth: usize,
    pub max_depth: usize,
    /// Probability that a random layer is a skip layer (else a pooling layer, max or avg 50/50).
    pub skip_prob: f64,
}

impl Default for GenomeSpace {
    fn default() -> Self {
        GenomeSpace {
            filters: vec![32, 64, 128, 256, 512],
            min_depth: 1,
            max_depth: 5,
            skip_prob: 0.5,
        }
    }
}

impl GenomeSpace {
    pub fn validate(&self) -> Result<()> {
        if self.filters.is_empty() || self.filters.iter().any(|&f| !(1..=4096).contains(&f)) {
            return Err(Error::usage(format!(
                "--filters {:?}: give one or more filter counts between 1 and 4096",
                self.filters
            )));
        }
        if self.min_depth < 1 || self.min_depth > self.max_depth {
            return Err(Error::usage(format!(
                "initial depth {}..{}: needs 1 <= min <= max",
                self.min_depth, self.max_depth
            )));
        }
        Ok(())
    }

    pub fn random_skip<R: Rng + ?Sized>(&self, rng: &mut R) -> Layer {
        let f1 = self.filters[rng.random_range(0..self.filters.len())];
        let f2 = self.filters[rng.random_range(0..self.filters.len())];
        Layer::Skip { f1, f2 }
    }

    pub fn random_pool<R: Rng + ?Sized>(&self, rng: &mut R) -> Layer {
        Layer::Pool {
            kind: if rng.random_bool(0.5) {
                PoolKind::Max
            } else {
                PoolKind::Avg
            },
        }
    }

    pub fn random_layer<R: Rng + ?Sized>(&self, rng: &mut R) -> Layer {
        if rng.random_bool(self.skip_prob) {
            self.random_skip(rng)
        } else {
            self.random_pool(rng)
        }
    }

    /// Step 1 of the algorithm: a depth uniform in `min_depth..=max_depth`, each layer random.
    pub fn random_genome<R: Rng + ?Sized>(&self, rng: &mut R) -> Arch {
        let depth = rng.random_range(self.min_depth..=self.max_depth);
        Arch {
            layers: (0..depth).map(|_| self.random_layer(rng)).collect(),
        }
    }
}

/// Cuts `a` after a random position in `1..=len(a)` and `b` after one in `1..=len(b)` and swaps
/// the tails: `a[..i] + b[j..]` and `b[..j] + a[i..]`. Both children keep at least one layer.
pub fn crossover<R: Rng + ?Sized>(a: &Arch, b: &Arch, rng: &mut R) -> (Arch, Arch) {
    let i = rng.random_range(1..=a.layers.len());
    let j = rng.random_range(1..=b.layers.len());
    let c1 = a.layers[..i]
        .iter()
        .chain(&b.layers[j..])
        .copied()
        .collect();
    let c2 = b.layers[..j]
        .iter()
        .chain(&a.layers[i..])
        .copied()
        .collect();
    (Arch { layers: c1 }, Arch { layers: c2 })
}

/// The four mutations, in the order of `--mutation-dist`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum MutationOp {
    AddSkip,
    AddPool,
    Remove,
    Randomise,
}

pub const MUTATION_OPS: [MutationOp; 4] = [
    MutationOp::AddSkip,
    MutationOp::AddPool,
    MutationOp::Remove,
    MutationOp::Randomise,
];

/// Applies one mutation drawn from `dist` (weights of add skip, add pool, remove, randomise) at
/// a random position, returning the new genome, the operation and the position. Adding inserts
/// at any of the `len + 1` gaps; removing the only layer of a genome randomises it instead.
pub fn mutate<R: Rng + ?Sized>(
    g: &Arch,
    space: &GenomeSpace,
    dist: &[f64; 4],
    rng: &mut R,
) -> (Arch, MutationOp, usize) {
    let total: f64 = dist.iter().sum();
    let mut u = rng.random::<f64>() * total;
    let mut op = MutationOp::Randomise;
    for (k, &w) in dist.iter().enumerate() {
        if u < w {
            op = MUTATION_OPS[k];
            break;
        }
        u -= w;
    }
    if op == MutationOp::Remove && g.layers.len() <= 1 {
        op = MutationOp::Randomise;
    }
    let mut layers = g.layers.clone();
    let pos = match op {
        MutationOp::AddSkip | MutationOp::AddPool => {
            let pos = rng.random_range(0..=layers.len());
            let l = if op == MutationOp::AddSkip {
                space.random_skip(rng)
            } else {
                space.random_pool(rng)
            };
            layers.insert(pos, l);
            pos
        }
        MutationOp::Remove => {
            let pos = rng.random_range(0..layers.len());
            layers.remove(pos);
            pos
        }
        MutationOp::Randomise => {
            let pos = rng.random_range(0..layers.len());
            layers[pos] = space.random_layer(rng);
            pos
        }
    };
    (Arch { layers }, op, pos)
}

/// Makes `g` valid for inputs of `input` (`[C, H, W]`): pooling layers that would shrink the
/// feature map below 1x1 are dropped. Returns the repaired genome and a description of each
/// dropped layer (empty when nothing changed). A genome left without layers gets `None`.
pub fn repair(g: &Arch, input: [i64; 3]) -> (Option<Arch>, Vec<String>) {
    let (mut h, mut w) = (input[1], input[2]);
    let mut kept = Vec::new();
    let mut dropped = Vec::new();
    for (i, l) in g.layers.iter().enumerate() {
        if let Layer::Pool { .. } = l {
            if h < 2 || w < 2 {
                dropped.push(format!("layer {} ({l}) at {h}x{w}", i + 1));
                continue;
            }
            h /= 2;
            w /= 2;
        }
        kept.push(*l);
    }
    if kept.is_empty() {
        (None, dropped)
    } else {
        (Some(Arch { layers: kept }), dropped)
    }
}

/// Checks that `g` only holds AutoCNN layers (skip and pooling).
pub fn check_autocnn_layers(g: &Arch) -> Result<()> {
    for l in &g.layers {
        if !matches!(l, Layer::Skip { .. } | Layer::Pool { .. }) {
            return Err(Error::usage(format!(
                "genome \"{g}\": layer {l} is not a skip or pooling layer"
            )));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ga::GaRng;
    use rand::SeedableRng;

    fn g(s: &str) -> Arch {
        Arch::parse(s).unwrap()
    }

    #[test]
    fn random_genomes_respect_the_space() {
        let space = GenomeSpace::default();
        let mut rng = GaRng::seed_from_u64(1);
        let mut depths = [0usize; 6];
        let (mut skips, mut pools, mut maxes) = (0, 0, 0);
        for _ in 0..4000 {
            let a = space.random_genome(&mut rng);
            depths[a.layers.len()] += 1;
            for l in &a.layers {
                match l {
                    Layer::Skip { f1, f2 } => {
                        assert!(space.filters.contains(f1) && space.filters.contains(f2));
                        skips += 1;
                    }
                    Layer::Pool { kind } => {
                        pools += 1;
                        maxes += (*kind == PoolKind::Max) as usize;
                    }
                    _ => panic!("{l}"),
                }
            }
        }
        assert_eq!(depths[0], 0);
        for d in 1..=5 {
            assert!((650..950).contains(&depths[d]), "{depths:?}");
        }
        let frac = skips as f64 / (skips + pools) as f64;
        assert!((0.47..0.53).contains(&frac), "{frac}");
        let frac = maxes as f64 / pools as f64;
        assert!((0.45..0.55).contains(&frac), "{frac}");
    }

    #[test]
    fn crossover_swaps_tails_and_keeps_parents() {
        let a = g("S32-32 S64-64 P:max S128-128");
        let b = g("P:avg S256-256 S512-512");
        let (a0, b0) = (a.clone(), b.clone());
        let mut rng = GaRng::seed_from_u64(3);
        let mut seen_cut = std::collections::HashSet::new();
        for _ in 0..300 {
            let (c1, c2) = crossover(&a, &b, &mut rng);
            assert_eq!(c1.layers.len() + c2.layers.len(), 7);
            // c1 = a[..i] + b[j..], c2 = b[..j] + a[i..] for some cuts i >= 1, j >= 1
            let cut = (1..=4)
                .flat_map(|i| (1..=3).map(move |j| (i, j)))
                .find(|&(i, j)| {
                    c1.layers == [&a.layers[..i], &b.layers[j..]].concat()
                        && c2.layers == [&b.layers[..j], &a.layers[i..]].concat()
                })
                .expect("children are a head of one parent and the tail of the other");
            assert!(!c1.layers.is_empty() && !c2.layers.is_empty());
            seen_cut.insert(cut);
        }
        assert!(seen_cut.len() >= 10, "cuts vary: {seen_cut:?}");
        assert_eq!((a, b), (a0, b0), "parents unchanged");
    }

    #[test]
    fn mutations_follow_the_distribution_and_do_what_they_say() {
        let space = GenomeSpace::default();
        let parent = g("S32-32 P:max S64-64");
        let mut rng = GaRng::seed_from_u64(5);
        let mut counts = [0usize; 4];
        for _ in 0..4000 {
            let (c, op, pos) = mutate(&parent, &space, &[0.7, 0.1, 0.1, 0.1], &mut rng);
            counts[MUTATION_OPS.iter().position(|&o| o == op).unwrap()] += 1;
            match op {
                MutationOp::AddSkip => {
                    assert_eq!(c.layers.len(), 4);
                    assert!(matches!(c.layers[pos], Layer::Skip { .. }));
                    let mut back = c.layers.clone();
                    back.remove(pos);
                    assert_eq!(back, parent.layers);
                }
                MutationOp::AddPool => {
                    assert_eq!(c.layers.len(), 4);
                    assert!(matches!(c.layers[pos], Layer::Pool { .. }));
                }
                MutationOp::Remove => {
                    assert_eq!(c.layers.len(), 2);
                    let mut back = c.layers.clone();
                    back.insert(pos, parent.layers[pos]);
                    assert_eq!(back, parent.layers);
                }
                MutationOp::Randomise => {
                    assert_eq!(c.layers.len(), 3);
                    for k in 0..3 {
                        if k != pos {
                            assert_eq!(c.layers[k], parent.layers[k]);
                        }
                    }
                }
            }
        }
        assert_eq!(parent, g("S32-32 P:max S64-64"));
        assert!((2650..2950).contains(&counts[0]), "{counts:?}");
        for c in &counts[1..] {
            assert!((330..480).contains(c), "{counts:?}");
        }
        // removing the only layer randomises it instead
        let one = g("S32-32");
        for _ in 0..50 {
            let (c, op, _) = mutate(&one, &space, &[0.0, 0.0, 1.0, 0.0], &mut rng);
            assert_eq!(op, MutationOp::Randomise);
            assert_eq!(c.layers.len(), 1);
        }
    }

    #[test]
    fn repair_drops_only_the_pools_that_do_not_fit() {
        let a = g("S32-32 P:max P:avg P:max P:max P:avg S64-64 P:max");
        let (r, dropped) = repair(&a, [1, 28, 28]);
        // 28 -> 14 -> 7 -> 3 -> 1, then the 5th and 6th pooling cannot run
        assert_eq!(
            r.unwrap().to_string(),
            "S32-32 P:max P:avg P:max P:max S64-64"
        );
        assert_eq!(dropped.len(), 2);
        assert!(dropped[0].contains("layer 6 (P:avg) at 1x1"), "{dropped:?}");
        let ok = g("S32-32 P:max");
        assert_eq!(repair(&ok, [1, 28, 28]), (Some(ok.clone()), vec![]));
        assert!(ok.output_shape([1, 28, 28]).is_ok());
        let (none, d) = repair(&g("P:max P:max"), [1, 1, 1]);
        assert!(none.is_none() && d.len() == 2);
    }
}
