//! `gan --pbt-every N`: population-based training (Jaderberg et al., "Population Based Training
//! of Neural Networks", 2017) of the dcgan mode's populations, ranked on the FID, the figure the
//! user cares about (COEGAN selects on the FID too).
//!
//! Every individual trains by gradient with its own hyperparameters: an Adam learning rate and
//! beta1 each, and for a generator its adversarial loss ([`GLoss`]: all start at `--lr`,
//! `--beta1` and the non-saturating loss, the GA-GAN's). Every N generations:
//! - **exploit**: the generators are ranked by their FID on the run's own extractor, each on
//!   `--pbt-fid-samples` fresh latents against a fixed seeded set of training images (not the
//!   run's FID latents: selection must not tune the figure it is judged by); the bottom quarter
//!   (at least one) each copy the weights and Adam state of a top-quarter generator drawn at
//!   random. The discriminators, which have no FID of their own, are ranked separately by their
//!   fitness in the generation just run (accuracy on real images against every generator's
//!   fakes) and exploited the same way.
//! - **explore**: a copy's learning rate is multiplied by 0.8 or 1.25, its beta1 moved by -0.1
//!   or +0.1 (within [0, 0.9]), and a generator's loss is redrawn among the other two with
//!   probability 1/3.
//!
//! PBT replaces the GA's breeding of both populations (no crossover or mutation). Its FIDs are
//! part of a generation, so they count in the training budget; the best generator (the one the
//! run's FID, samples and export use) is the one with the lowest PBT FID of the last round.
use super::dcgan::DcganModel;
use super::egan::GLoss;
use super::fid::{frechet_distance, FeatureStats};
use crate::error::Result;
use crate::ga::GaRng;
use rand::Rng;
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};
use tch::{Device, Kind, Tensor};

/// `--pbt-every`, `--pbt-fid-samples` and `--halving`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct PbtConfig {
    pub every: u64,
    pub fid_samples: i64,
    /// `--halving`: successive halving ([`super::halving`]) instead of exploit and explore.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub halving: bool,
}

/// Generated images per generator in a PBT round's FID when `--pbt-fid-samples` is not given.
pub const DEFAULT_FID_SAMPLES: i64 = 256;

/// Training images the PBT FIDs compare against (fewer when the set is smaller).
pub const REAL_SAMPLES: i64 = 2000;

/// The losses a generator's explore step draws from.
pub const LOSSES: [GLoss; 3] = [GLoss::Minimax, GLoss::Nonsat, GLoss::Lsgan];

/// The rows best first: by `score` (`lower_is_better`: FID; else fitness), NaN last, ties to
/// the earlier row (E-GAN's [`super::egan::survivors`] order, on the negated scores where lower
/// is better).
pub fn ranking(score: &[f64], lower_is_better: bool) -> Vec<usize> {
    let key: Vec<f64> = match lower_is_better {
        true => score.iter().map(|s| -s).collect(),
        false => score.to_vec(),
    };
    super::egan::survivors(&key, score.len())
}

/// The exploit step: for every row, the row it copies (itself for all but the bottom quarter
/// of the [`ranking`]). The bottom quarter (at least one row) each copy a row of the top
/// quarter drawn at random.
pub fn exploit(score: &[f64], lower_is_better: bool, rng: &mut GaRng) -> Vec<usize> {
    let p = score.len();
    let mut src: Vec<usize> = (0..p).collect();
    if p < 2 {
        return src;
    }
    let order = ranking(score, lower_is_better);
    let q = (p / 4).max(1);
    for &dst in &order[p - q..] {
        src[dst] = order[rng.random_range(0..q)];
    }
    src
}

/// The rows of `src` that copy another row: `(dst, src)`.
pub fn copies(src: &[usize]) -> Vec<(usize, usize)> {
    src.iter()
        .enumerate()
        .filter(|(d, s)| d != *s)
        .map(|(d, &s)| (d, s))
        .collect()
}

/// The explore step on the rows `dst`: learning rates x 0.8 or 1.25 (within [1e-6, 0.1]),
/// beta1 -0.1 or +0.1 (within [0, 0.9]), and with `losses`, each loss redrawn among the other
/// two with probability 1/3.
pub fn explore(
    dst: &[usize],
    lr: &mut [f64],
    beta1: &mut [f64],
    mut losses: Option<&mut [GLoss]>,
    rng: &mut GaRng,
) {
    for &i in dst {
        lr[i] = (lr[i] * if rng.random::<bool>() { 1.25 } else { 0.8 }).clamp(1e-6, 0.1);
        beta1[i] = (beta1[i] + if rng.random::<bool>() { 0.1 } else { -0.1 }).clamp(0.0, 0.9);
        if let Some(l) = losses.as_deref_mut() {
            if rng.random_range(0..3) == 0 {
                let others: Vec<GLoss> = LOSSES.into_iter().filter(|x| *x != l[i]).collect();
                l[i] = others[rng.random_range(0..others.len())];
            }
        }
    }
}

/// Every generator's loss on its own column of discriminator logits `[B, P]`: `[P]`, column i
/// by `rows[i]`.
pub fn row_losses(logits: &Tensor, rows: &[GLoss]) -> Tensor {
    let idx: Vec<i64> = rows
        .iter()
        .map(|l| LOSSES.iter().position(|x| x == l).expect("a known loss") as i64)
        .collect();
    let idx = Tensor::from_slice(&idx)
        .to_device(logits.device())
        .view([1, -1]);
    let all: Vec<Tensor> = LOSSES.iter().map(|l| l.cols(logits)).collect();
    Tensor::stack(&all, 0).gather(0, &idx, false).view([-1])
}

/// The FID of every generator of `model` (images of `c` channels) on latents `z`, against
/// `real`; a generator whose images are not finite gets +inf.
pub fn member_fids(
    model: &dyn super::GanModel,
    c: i64,
    z: &Tensor,
    extractor: &crate::nn::load::FeatureExtractor,
    real: &FeatureStats,
    range: (f32, f32),
) -> Result<Vec<f64>> {
    let members = super::mixture::member_stats(model, c, z, extractor, range)?;
    members
        .iter()
        .map(|m| match m {
            Some(s) => frechet_distance(s, real),
            None => Ok(f64::INFINITY),
        })
        .collect()
}

/// A per-row hyperparameter `[P, 1]` of `kind` on `device` from its values.
fn rows_tensor(v: &[f64], kind: Kind, device: Device) -> Tensor {
    Tensor::from_slice(v)
        .to_kind(kind)
        .to_device(device)
        .view([-1, 1])
}

/// A round's FIDs for the log: a number each, `null` where the FID is not finite.
pub(crate) fn fids_json(g_fid: &[f64]) -> Vec<Value> {
    let finite = |f: &f64| if f.is_finite() { json!(f) } else { Value::Null };
    g_fid.iter().map(finite).collect()
}

pub(crate) fn index(src: &[usize], device: Device) -> Tensor {
    let v: Vec<i64> = src.iter().map(|&s| s as i64).collect();
    Tensor::from_slice(&v).to_device(device)
}

impl DcganModel {
    /// One PBT round, after a generation: exploit and explore the generators by `g_fid` and the
    /// discriminators by their last fitness. Returns what it did, for the log.
    pub(crate) fn pbt_round(&mut self, g_fid: &[f64], rng: &mut GaRng) -> Result<Value> {
        let dev = self.g.device();
        let g_src = exploit(g_fid, true, rng);
        let d_src = exploit(&self.d_fit, false, rng);
        // the weights and the whole Adam state (moments, rate, beta1) follow each copy
        let (gi, di) = (index(&g_src, dev), index(&d_src, dev));
        self.g = self.g.index_select(0, &gi);
        self.g_adam.select(&gi);
        self.d = self.d.index_select(0, &di);
        self.d_adam.select(&di);
        let mut g_loss: Vec<GLoss> = g_src.iter().map(|&s| self.g_loss_rows[s]).collect();
        let (g_copies, d_copies) = (copies(&g_src), copies(&d_src));
        let dst = |c: &[(usize, usize)]| c.iter().map(|x| x.0).collect::<Vec<_>>();
        let (mut g_lr, mut g_b1) = (self.g_adam.lrs(), self.g_adam.beta1s());
        explore(
            &dst(&g_copies),
            &mut g_lr,
            &mut g_b1,
            Some(&mut g_loss),
            rng,
        );
        let (mut d_lr, mut d_b1) = (self.d_adam.lrs(), self.d_adam.beta1s());
        explore(&dst(&d_copies), &mut d_lr, &mut d_b1, None, rng);
        self.g_adam.lr_rows = Some(rows_tensor(&g_lr, Kind::Float, dev));
        self.g_adam.beta1_rows = Some(rows_tensor(&g_b1, Kind::Double, dev));
        self.d_adam.lr_rows = Some(rows_tensor(&d_lr, Kind::Float, dev));
        self.d_adam.beta1_rows = Some(rows_tensor(&d_b1, Kind::Double, dev));
        self.g_loss_rows = g_loss;
        // the best by FID is in the top quarter, so it kept its row
        let best = ranking(g_fid, true)[0];
        self.pbt_best = Some(best);
        self.best = self.g.narrow(0, best as i64, 1).copy();
        let names: Vec<&str> = self.g_loss_rows.iter().map(|l| l.name()).collect();
        Ok(json!({
            "fid": fids_json(g_fid),
            "best": best,
            "g_copies": g_copies,
            "d_copies": d_copies,
            "g_lr": self.g_adam.lrs(),
            "g_beta1": self.g_adam.beta1s(),
            "g_loss": names,
            "d_lr": self.d_adam.lrs(),
            "d_beta1": self.d_adam.beta1s(),
        }))
    }

    /// The PBT state a checkpoint holds beyond the Adam rows: each generator's loss and the best.
    pub(crate) fn pbt_tensors(&self) -> Vec<(String, Tensor)> {
        let loss: Vec<i64> = self
            .g_loss_rows
            .iter()
            .map(|l| LOSSES.iter().position(|x| x == l).unwrap_or(1) as i64)
            .collect();
        let best = self.pbt_best.map_or(-1, |b| b as i64);
        vec![
            ("g_loss".into(), Tensor::from_slice(&loss)),
            ("pbt_best".into(), Tensor::from(best)),
            (
                "g_beta1".into(),
                self.g_adam
                    .beta1_rows
                    .as_ref()
                    .expect("pbt rows")
                    .shallow_clone(),
            ),
            (
                "d_beta1".into(),
                self.d_adam
                    .beta1_rows
                    .as_ref()
                    .expect("pbt rows")
                    .shallow_clone(),
            ),
        ]
    }

    /// Restores what [`Self::pbt_tensors`] saved, checking shapes and values.
    pub(crate) fn load_pbt_tensors(
        &mut self,
        t: &std::collections::HashMap<String, Tensor>,
    ) -> Result<()> {
        let dev = self.g.device();
        let (pg, pd) = (self.g.size()[0], self.d.size()[0]);
        let loss = Vec::<i64>::try_from(super::take(t, "g_loss", &[pg])?)?;
        let bad =
            || crate::error::Error::Other("checkpoint: g_loss or pbt_best out of range".into());
        self.g_loss_rows = loss
            .iter()
            .map(|&i| LOSSES.get(i as usize).copied().ok_or_else(bad))
            .collect::<Result<_>>()?;
        let best = super::take(t, "pbt_best", &[])?.int64_value(&[]);
        self.pbt_best = match best {
            -1 => None,
            b if (0..pg).contains(&b) => Some(b as usize),
            _ => return Err(bad()),
        };
        self.g_adam.beta1_rows = Some(super::take(t, "g_beta1", &[pg, 1])?.to_device(dev));
        self.d_adam.beta1_rows = Some(super::take(t, "d_beta1", &[pd, 1])?.to_device(dev));
        Ok(())
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use rand::SeedableRng;

    #[test]
    fn the_bottom_quarter_copies_the_top_quarter() {
        let mut rng = GaRng::seed_from_u64(3);
        // 8 rows: quarter 2; FIDs, lower is better; NaN is worst
        let fid = [50.0, 10.0, f64::NAN, 30.0, 20.0, 90.0, 15.0, 40.0];
        for _ in 0..20 {
            let src = exploit(&fid, true, &mut rng);
            for (d, s) in src.iter().enumerate() {
                match d {
                    2 | 5 => assert!([1, 6].contains(s), "row {d} copies {s}"),
                    _ => assert_eq!(*s, d),
                }
            }
        }
        // fitness, higher is better; 2 rows: the worse copies the better
        assert_eq!(exploit(&[0.2, 0.9], false, &mut rng), vec![1, 1]);
        assert_eq!(exploit(&[0.9, 0.2], false, &mut rng), vec![0, 0]);
        assert_eq!(exploit(&[5.0], true, &mut rng), vec![0]);
        assert_eq!(copies(&[1, 1, 2, 0]), vec![(0, 1), (3, 0)]);
        // the same seed, the same draws
        let a = exploit(&fid, true, &mut GaRng::seed_from_u64(9));
        let b = exploit(&fid, true, &mut GaRng::seed_from_u64(9));
        assert_eq!(a, b);
    }

    #[test]
    fn explore_moves_only_the_copies_within_bounds() {
        let mut rng = GaRng::seed_from_u64(4);
        let mut seen_loss = std::collections::HashSet::new();
        for _ in 0..30 {
            let (mut lr, mut b1) = (vec![1e-3, 0.09, 2e-3], vec![0.5, 0.9, 0.0]);
            let mut l = vec![GLoss::Nonsat; 3];
            explore(&[1, 2], &mut lr, &mut b1, Some(&mut l), &mut rng);
            assert_eq!((lr[0], b1[0], l[0]), (1e-3, 0.5, GLoss::Nonsat));
            // 0.09 x 1.25 is above the bound 0.1
            assert!((lr[1] - 0.072).abs() < 1e-12 || lr[1] == 0.1, "{}", lr[1]);
            assert!(
                [0.8, 0.9].iter().any(|v| (b1[1] - v).abs() < 1e-12),
                "{}",
                b1[1]
            );
            assert!((lr[2] - 1.6e-3).abs() < 1e-12 || (lr[2] - 2.5e-3).abs() < 1e-12);
            assert!([0.0, 0.1].iter().any(|v| (b1[2] - v).abs() < 1e-12));
            seen_loss.insert(l[2].name());
        }
        assert_eq!(
            seen_loss.len(),
            3,
            "the loss is redrawn sometimes: {seen_loss:?}"
        );
    }

    #[test]
    fn row_losses_pick_each_columns_loss() {
        let l = Tensor::from_slice(&[0.5f64, -0.5, 2.0, 1.0, 0.0, -3.0]).view([2, 3]);
        let rows = [GLoss::Lsgan, GLoss::Minimax, GLoss::Nonsat];
        let got = Vec::<f64>::try_from(row_losses(&l, &rows)).unwrap();
        for (i, r) in rows.iter().enumerate() {
            let want = r.cols(&l.narrow(1, i as i64, 1)).double_value(&[0]);
            assert_eq!(got[i], want, "column {i}");
        }
        // all non-saturating: the GA-GAN's loss, BCE against 1
        let all = row_losses(&l, &[GLoss::Nonsat; 3]);
        let bce = super::super::func::bce_cols(&l, 1.0).to_kind(Kind::Double);
        assert!(all.allclose(&bce, 1e-6, 1e-7, false), "{all} {bce}");
    }

    pub(crate) fn model(p: i64, halving: bool) -> DcganModel {
        let cfg = super::super::dcgan::DcganConfig {
            latent_dim: 4,
            width: 2,
            grad_steps: 1,
            d_population: p as usize,
            evolve_lr: false,
            fixed_d_lr: false,
            g_losses: Vec::new(),
            diversity_weight: 0.0,
            pbt: Some(PbtConfig {
                every: 1,
                fid_samples: 10,
                halving,
            }),
        };
        DcganModel::new(
            cfg,
            [1, 28, 28],
            p,
            (None, None),
            4,
            4,
            1e-3,
            0.5,
            Device::Cpu,
        )
        .unwrap()
    }

    #[test]
    fn exploit_copies_weights_and_adam_state_exactly_and_repeats_by_seed() {
        let run = |seed: u64| {
            tch::manual_seed(7);
            let mut m = model(4, false);
            let (gn, dn) = (m.g.size()[1], m.d.size()[1]);
            m.g_adam.m = Tensor::randn([4, gn], (Kind::Float, Device::Cpu));
            m.g_adam.v = Tensor::rand([4, gn], (Kind::Float, Device::Cpu));
            m.d_adam.m = Tensor::randn([4, dn], (Kind::Float, Device::Cpu));
            m.d_adam.v = Tensor::rand([4, dn], (Kind::Float, Device::Cpu));
            m.g_adam.lr_rows = Some(Tensor::from_slice(&[1e-3f32, 2e-3, 3e-3, 4e-3]).view([4, 1]));
            m.d_fit = vec![0.5, 0.9, 0.1, 0.6];
            let before = (
                m.g.copy(),
                m.g_adam.m.copy(),
                m.g_adam.v.copy(),
                m.d.copy(),
                m.d_adam.m.copy(),
                m.d_adam.v.copy(),
            );
            let mut rng = GaRng::seed_from_u64(seed);
            // generator 3 is worst by FID, 2 best; discriminator 2 worst by fitness, 1 best
            let v = m.pbt_round(&[20.0, 30.0, 10.0, 90.0], &mut rng).unwrap();
            (m, before, v)
        };
        let (m, (g, gm, gv, d, dm, dv), v) = run(1);
        assert_eq!(v["g_copies"], json!([[3, 2]]), "{v}");
        assert_eq!(v["d_copies"], json!([[2, 1]]), "{v}");
        assert_eq!(v["best"], json!(2));
        let row = |t: &Tensor, i: i64| t.narrow(0, i, 1);
        for (now, was, name) in [
            (&m.g, &g, "g"),
            (&m.g_adam.m, &gm, "g m"),
            (&m.g_adam.v, &gv, "g v"),
        ] {
            assert!(row(now, 3).equal(&row(was, 2)), "{name}: the copy is exact");
            for i in 0..3 {
                assert!(row(now, i).equal(&row(was, i)), "{name}: row {i} kept");
            }
        }
        for (now, was, name) in [
            (&m.d, &d, "d"),
            (&m.d_adam.m, &dm, "d m"),
            (&m.d_adam.v, &dv, "d v"),
        ] {
            assert!(row(now, 2).equal(&row(was, 1)), "{name}: the copy is exact");
            assert!(row(now, 0).equal(&row(was, 0)) && row(now, 3).equal(&row(was, 3)));
        }
        // the copy's rate is its source's, explored; the others keep theirs
        let lr = m.g_adam.lrs();
        assert!(
            (lr[3] / 3e-3 - 1.25).abs() < 1e-5 || (lr[3] / 3e-3 - 0.8).abs() < 1e-5,
            "{lr:?}"
        );
        assert!((lr[1] - 2e-3).abs() < 1e-9);
        let b1 = m.g_adam.beta1s();
        assert!(
            (b1[3] - 0.4).abs() < 1e-9 || (b1[3] - 0.6).abs() < 1e-9,
            "{b1:?}"
        );
        assert_eq!(b1[0], 0.5);
        assert!(m.best.equal(&row(&m.g, 2)));
        // the same seed, the same round, bit for bit
        let (m2, _, v2) = run(1);
        assert_eq!(v, v2);
        assert!(m.g.equal(&m2.g) && m.g_adam.m.equal(&m2.g_adam.m));
        // and the checkpoint's PBT state round-trips
        let mut m3 = model(4, false);
        let t: std::collections::HashMap<String, Tensor> = m.pbt_tensors().into_iter().collect();
        m3.load_pbt_tensors(&t).unwrap();
        assert_eq!(m3.g_loss_rows, m.g_loss_rows);
        assert_eq!(m3.pbt_best, Some(2));
        assert_eq!(m3.g_adam.beta1s(), b1);
    }
}
