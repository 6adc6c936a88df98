//! `gan --pbt-every N --halving`: successive halving of a population of DCGANs, ranked on the
//! FID (the same FIDs as [`super::pbt`]: fresh latents against a seeded set of training
//! images apart from the run's FID set).
//!
//! Why: a single DCGAN's FID at a given budget depends much on its start (the seed), and a
//! population that trains every member to the end spends its budget on the bad starts too.
//! Successive halving (Jamieson and Talwalkar, 2016; the racing of hyperband) trains P
//! independent generator-discriminator pairs together for N generations, then keeps the
//! better half (rounded up) of the pairs by the generators' FID and drops the rest, again
//! every N generations, until one pair is left; that pair then trains alone, at the speed of
//! the single network. Each generator trains against its own discriminator only (pair i:
//! generator i, discriminator i), so a kept pair is a DCGAN whose whole history is its own.
//!
//! No rates, losses or weights are changed: a round only selects. The population shrinks, so
//! a checkpoint holds as many rows as there are pairs left, one of the sizes of
//! [`sizes`].
use super::dcgan::DcganModel;
use crate::error::{Error, Result};
use serde_json::{json, Value};
use std::collections::HashMap;
use tch::{Kind, Tensor};

/// The pairs a round keeps out of `p`: the better half, rounded up.
pub fn survivors(p: usize) -> usize {
    p.div_ceil(2)
}

/// The population sizes a run started with `p` pairs goes through: p, then each round's
/// survivors, down to 1.
pub fn sizes(p: usize) -> Vec<usize> {
    let mut v = vec![p.max(1)];
    while *v.last().expect("not empty") > 1 {
        v.push(survivors(*v.last().expect("not empty")));
    }
    v
}

impl DcganModel {
    /// Whether the run is successive halving (`--pbt-every N --halving`).
    pub(crate) fn halving(&self) -> bool {
        self.cfg.pbt.as_ref().is_some_and(|p| p.halving)
    }

    /// For each of `n` individuals its partner among the `of` of the other population: one
    /// drawn at random, or with `--halving` its own pair's (the same row).
    pub(crate) fn partners(&self, of: i64, n: i64) -> Tensor {
        let dev = self.g.device();
        match self.halving() {
            true => Tensor::arange(n, (Kind::Int64, dev)),
            false => Tensor::randint(of, [n], (Kind::Int64, dev)),
        }
    }

    /// One round of successive halving after a generation, given every generator's FID: the
    /// better half of the pairs (best first) stays, with their Adam state. Returns what it
    /// did, for the log.
    pub(crate) fn halving_round(&mut self, g_fid: &[f64]) -> Result<Value> {
        let order = super::pbt::ranking(g_fid, true);
        let kept = order[..survivors(g_fid.len())].to_vec();
        self.keep_rows(&kept);
        // the survivors are in FID order: the best is the first
        self.pbt_best = Some(0);
        self.best = self.g.narrow(0, 0, 1).copy();
        Ok(json!({
            "fid": super::pbt::fids_json(g_fid),
            "best": kept[0],
            "kept": kept,
        }))
    }

    /// Keeps the pairs `rows` (generator and discriminator i, with their Adam state), in
    /// that order.
    pub(crate) fn keep_rows(&mut self, rows: &[usize]) {
        let idx = super::pbt::index(rows, self.g.device());
        self.g = self.g.index_select(0, &idx);
        self.g_adam.select(&idx);
        self.d = self.d.index_select(0, &idx);
        self.d_adam.select(&idx);
        let (losses, fit) = (&self.g_loss_rows, &self.d_fit);
        self.g_loss_rows = rows
            .iter()
            .filter_map(|&r| losses.get(r).copied())
            .collect();
        self.d_fit = rows.iter().filter_map(|&r| fit.get(r).copied()).collect();
    }

    /// Before a checkpoint of a halving run is loaded: shrinks the population to the pairs it
    /// holds, which must be one of the [`sizes`] of the configured population.
    pub(crate) fn fit_to_checkpoint(&mut self, t: &HashMap<String, Tensor>) -> Result<()> {
        let p = self.g.size()[0] as usize;
        let rows = t.get("g").map(|g| g.size()).unwrap_or_default();
        let Some(&n) = rows.first() else {
            return Err(Error::Other("checkpoint: no generators (g)".into()));
        };
        if n < 1 || !sizes(p).contains(&(n as usize)) {
            return Err(Error::Other(format!(
                "checkpoint: {n} generators, which successive halving from {p} never leaves"
            )));
        }
        let keep: Vec<usize> = (0..n as usize).collect();
        self.keep_rows(&keep);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::super::pbt::tests::model;
    use super::*;
    use tch::{Device, Kind};

    #[test]
    fn the_schedule_halves_rounding_up_down_to_one() {
        assert_eq!(sizes(1), vec![1]);
        assert_eq!(sizes(2), vec![2, 1]);
        assert_eq!(sizes(5), vec![5, 3, 2, 1]);
        assert_eq!(sizes(8), vec![8, 4, 2, 1]);
    }

    #[test]
    fn a_round_keeps_the_better_half_of_the_pairs_with_their_adam_state() {
        tch::manual_seed(3);
        let mut m = model(5, true);
        let (gn, dn) = (m.g.size()[1], m.d.size()[1]);
        m.g_adam.m = Tensor::randn([5, gn], (Kind::Float, Device::Cpu));
        m.d_adam.v = Tensor::rand([5, dn], (Kind::Float, Device::Cpu));
        m.d_fit = vec![0.1, 0.2, 0.3, 0.4, 0.5];
        let (g, d, gm, dv) = (m.g.copy(), m.d.copy(), m.g_adam.m.copy(), m.d_adam.v.copy());
        // FIDs: 3 best, then 1, then 4; NaN ranks last
        let v = m
            .halving_round(&[50.0, 20.0, f64::NAN, 10.0, 30.0])
            .unwrap();
        assert_eq!(v["kept"], json!([3, 1, 4]), "{v}");
        assert_eq!(v["best"], json!(3));
        assert_eq!(v["fid"][2], Value::Null);
        let row = |t: &Tensor, i: i64| t.narrow(0, i, 1);
        for (now, &was) in [3i64, 1, 4].iter().enumerate() {
            let now = now as i64;
            assert!(row(&m.g, now).equal(&row(&g, was)), "generator {was}");
            assert!(row(&m.d, now).equal(&row(&d, was)), "its discriminator");
            assert!(row(&m.g_adam.m, now).equal(&row(&gm, was)));
            assert!(row(&m.d_adam.v, now).equal(&row(&dv, was)));
        }
        assert_eq!(m.g.size()[0], 3);
        assert_eq!(m.d_fit, vec![0.4, 0.2, 0.5]);
        assert_eq!(m.g_loss_rows.len(), 3);
        assert!(m.best.equal(&row(&g, 3)));
        // down to one pair; now rows 3, 1, 4: 1 then 3 stay, in that order, and 1 wins the last round
        m.halving_round(&[5.0, 1.0, 9.0]).unwrap();
        m.halving_round(&[6.0, 7.0]).unwrap();
        assert_eq!(m.g.size()[0], 1);
        assert!(m.g.equal(&row(&g, 1)), "generator 1 won");
    }

    #[test]
    fn a_checkpoint_of_a_smaller_population_loads_only_at_a_size_of_the_schedule() {
        let mut saved = model(5, true);
        saved.halving_round(&[1.0, 2.0, 3.0, 4.0, 5.0]).unwrap();
        let t: HashMap<String, Tensor> =
            crate::gan::GanModel::tensors(&saved).into_iter().collect();
        let mut m = model(5, true);
        crate::gan::GanModel::load_tensors(&mut m, &t).unwrap();
        assert!(m.g.equal(&saved.g) && m.d_adam.m.equal(&saved.d_adam.m));
        assert_eq!(m.pbt_best, Some(0));
        // 4 pairs: never a size on the way down from 5
        let mut bad = t;
        bad.insert(
            "g".into(),
            Tensor::zeros([4, 3], (Kind::Float, Device::Cpu)),
        );
        let e = crate::gan::GanModel::load_tensors(&mut model(5, true), &bad).unwrap_err();
        assert!(e.to_string().contains("4 generators"), "{e}");
    }
}
