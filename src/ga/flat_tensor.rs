//! Flat genomes as one `[P, N]` f32 tensor on a device; crossover and mutation are applied to
//! the whole brood with a few tensor ops (gather, where, index_put), and fitness is computed by a
//! batched function of the children tensor. Works for any fitness (a network's forward pass,
//! a distance to a target).
use super::flat::{read_flat, write_flat, FlatPopulation};
use super::ops::{ChildPlan, CrossoverPlan, FlatOps, MutationPlan};
use super::plan::Population;
use super::GaRng;
use crate::error::{Error, Result};
use std::borrow::Cow;
use std::io::{Read, Write};
use tch::{Device, Kind, Tensor};

/// Batched fitness: `genomes` is `[C, N]` f32 on the population's device; returns C values.
pub trait TensorFitness {
    fn evaluate(&mut self, genomes: &Tensor) -> Result<Vec<f64>>;
}

pub struct TensorPopulation<F: TensorFitness> {
    fit: F,
    ops: FlatOps,
    n: usize,
    /// `[P, N]` f32
    genomes: Tensor,
    fitness: Vec<f64>,
}

impl<F: TensorFitness> TensorPopulation<F> {
    pub fn new(mut fit: F, ops: FlatOps, n: usize, genes: &[f32], device: Device) -> Result<Self> {
        let p = genes.len() / n;
        let genomes = Tensor::from_slice(genes)
            .view([p as i64, n as i64])
            .to_device(device);
        let fitness = fit.evaluate(&genomes)?;
        Ok(TensorPopulation {
            fit,
            ops,
            n,
            genomes,
            fitness,
        })
    }

    pub fn genomes(&self) -> &Tensor {
        &self.genomes
    }

    /// Builds the children of `plans` as a `[C, N]` tensor.
    pub fn breed(&self, plans: &[ChildPlan]) -> Result<Tensor> {
        breed_genomes(&self.genomes, plans)
    }
}

/// Builds the children of `plans` from the rows of `genomes` (`[P, N]` f32) as a `[C, N]`
/// tensor: the tensor backend's application of crossover and mutation plans, for any holder of
/// a genome tensor (a [`TensorPopulation`], the GAN populations).
pub fn breed_genomes(genomes: &Tensor, plans: &[ChildPlan]) -> Result<Tensor> {
    let dev = genomes.device();
    let n_genes = genomes.size()[1] as usize;
    let n = n_genes as i64;
    let c = plans.len() as i64;
    let idx = |f: fn(&ChildPlan) -> usize| {
        Tensor::from_slice(&plans.iter().map(|p| f(p) as i64).collect::<Vec<_>>()).to_device(dev)
    };
    let first = genomes.f_index_select(0, &idx(|p| p.parents.0))?;
    let second = genomes.f_index_select(0, &idx(|p| p.parents.1))?;
    let any_mask = plans
        .iter()
        .any(|p| matches!(p.crossover, CrossoverPlan::Mask(_)));
    let all_copy = plans.iter().all(|p| p.crossover == CrossoverPlan::Copy);
    let mut children = if all_copy {
        first
    } else if any_mask {
        let mut m = vec![0u8; plans.len() * n_genes];
        for (r, p) in plans.iter().enumerate() {
            for (i, slot) in m[r * n_genes..(r + 1) * n_genes].iter_mut().enumerate() {
                *slot = p.crossover.from_second(i) as u8;
            }
        }
        let mask = Tensor::from_slice(&m)
            .view([c, n])
            .to_device(dev)
            .to_kind(Kind::Bool);
        second.f_where_self(&mask, &first)?
    } else {
        // cut points padded with N (a cut at N switches nothing)
        let width = plans
            .iter()
            .map(|p| {
                if let CrossoverPlan::Cuts(v) = &p.crossover {
                    v.len()
                } else {
                    0
                }
            })
            .max()
            .unwrap_or(0)
            .max(1);
        let mut cuts = vec![n; plans.len() * width];
        for (r, p) in plans.iter().enumerate() {
            if let CrossoverPlan::Cuts(v) = &p.crossover {
                for (k, &x) in v.iter().enumerate() {
                    cuts[r * width + k] = x as i64;
                }
            }
        }
        // gene i comes from parent 2 when an odd number of cuts are <= i
        let cuts = Tensor::from_slice(&cuts)
            .view([c, width as i64])
            .to_device(dev);
        let pos = Tensor::arange(n, (Kind::Int64, dev)).view([1, n]);
        let mut mask = pos.f_ge_tensor(&cuts.narrow(1, 0, 1))?;
        for k in 1..width as i64 {
            mask = mask.f_logical_xor(&pos.f_ge_tensor(&cuts.narrow(1, k, 1))?)?;
        }
        second.f_where_self(&mask, &first)?
    };
    // mutation, all children at once on the flattened brood
    let mut set_idx = Vec::new();
    let mut set_val = Vec::new();
    let mut add_idx = Vec::new();
    let mut add_val = Vec::new();
    let mut bounds = None;
    for (r, p) in plans.iter().enumerate() {
        let base = (r * n_genes) as i64;
        match &p.mutation {
            MutationPlan::None => {}
            MutationPlan::Set(ch) => {
                for &(i, v) in ch {
                    set_idx.push(base + i as i64);
                    set_val.push(v);
                }
            }
            MutationPlan::Add { changes, low, high } => {
                bounds = Some((*low, *high));
                for &(i, v) in changes {
                    add_idx.push(base + i as i64);
                    add_val.push(v);
                }
            }
        }
    }
    if !set_idx.is_empty() || !add_idx.is_empty() {
        let flat = children.view([-1]);
        if !set_idx.is_empty() {
            let i = Tensor::from_slice(&set_idx).to_device(dev);
            let v = Tensor::from_slice(&set_val).to_device(dev);
            let mut flat = flat.shallow_clone();
            let _ = flat.f_index_put_(&[Some(i)], &v, false)?;
        }
        if let Some((low, high)) = bounds {
            let i = Tensor::from_slice(&add_idx).to_device(dev);
            let d = Tensor::from_slice(&add_val).to_device(dev);
            let v = flat
                .f_index_select(0, &i)?
                .f_add(&d)?
                .f_clamp(low as f64, high as f64)?;
            let mut flat = flat.shallow_clone();
            let _ = flat.f_index_put_(&[Some(i)], &v, false)?;
        }
        children = flat.view([c, n]);
    }
    Ok(children)
}

impl<F: TensorFitness> Population for TensorPopulation<F> {
    fn len(&self) -> usize {
        self.fitness.len()
    }
    fn fitness(&self) -> &[f64] {
        &self.fitness
    }
    fn next_generation(
        &mut self,
        survivors: &[usize],
        pairs: &[(usize, usize)],
        rng: &mut GaRng,
    ) -> Result<()> {
        let plans = self.ops.plan_children(pairs, self.n, rng);
        let children = self.breed(&plans)?;
        let child_fitness = self.fit.evaluate(&children)?;
        if child_fitness.len() != plans.len() {
            return Err(Error::Other(format!(
                "fitness returned {} values for {} children",
                child_fitness.len(),
                plans.len()
            )));
        }
        let dev = self.genomes.device();
        let keep: Vec<i64> = survivors.iter().map(|&s| s as i64).collect();
        let kept = self
            .genomes
            .f_index_select(0, &Tensor::from_slice(&keep).to_device(dev))?;
        self.genomes = Tensor::f_cat(&[kept, children], 0)?;
        let mut fitness: Vec<f64> = survivors.iter().map(|&s| self.fitness[s]).collect();
        fitness.extend(child_fitness);
        self.fitness = fitness;
        Ok(())
    }
    fn save(&self, w: &mut dyn Write) -> std::io::Result<()> {
        let rows = (0..self.len()).map(|i| Cow::Owned(self.genome(i)));
        write_flat(w, self.len(), self.n, rows, &self.fitness)
    }
    fn load(&mut self, r: &mut dyn Read) -> Result<()> {
        let p = self.len();
        let (genes, fitness) = read_flat(r, p, self.n)?;
        self.genomes = Tensor::from_slice(&genes)
            .view([p as i64, self.n as i64])
            .to_device(self.genomes.device());
        self.fitness = fitness;
        Ok(())
    }
}

impl<F: TensorFitness> FlatPopulation for TensorPopulation<F> {
    fn n_genes(&self) -> usize {
        self.n
    }
    fn genome(&self, i: usize) -> Vec<f32> {
        let row = self
            .genomes
            .get(i as i64)
            .to_device(Device::Cpu)
            .contiguous();
        Vec::<f32>::try_from(&row).expect("f32 genome row")
    }
}
