//! `--mode dcgan`: the GA-GAN thesis. A population of DCGAN generators and one of
//! discriminators, all held as stacked flat weight vectors and run together with grouped
//! (transposed) convolutions, `groups = P`. One generation: every individual takes
//! `--grad-steps K` Adam steps against a random partner from the other population (K = 0: a
//! pure GA), then every generator meets every discriminator in one batched evaluation:
//! generator fitness = mean D(G(z)) over the discriminators, discriminator fitness = its
//! accuracy on real vs fake. Then selection, crossover (per tensor or uniform) and Gaussian
//! mutation of the weight vectors, with elitism, for both populations.
//! `--population 1 --no-evolution` is the plain gradient DCGAN on the same code path.
//! With `--g-losses` the generators follow E-GAN instead ([`super::egan`]).
use super::func::{bce_cols, gbn, gbn_fixed, gconv, gconv_t, leaf, leaky_relu, Adam, Layout};
use super::{GanModel, GenStats, RealStream};
use crate::error::{Error, Result};
use crate::ga::selection::argbest;
use crate::ga::Evolver;
use crate::ga::GaRng;
use serde::{Deserialize, Serialize};
use std::collections::HashMap;
use std::path::Path;
use tch::{Device, Kind, Tensor};

#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct ConvSpec {
    pub cin: i64,
    pub cout: i64,
    pub k: i64,
    pub stride: i64,
    pub pad: i64,
    pub bn: bool,
}

const fn cs(cin: i64, cout: i64, k: i64, stride: i64, pad: i64, bn: bool) -> ConvSpec {
    ConvSpec {
        cin,
        cout,
        k,
        stride,
        pad,
        bn,
    }
}

/// Generator layers (transposed convolutions) for `size` 28, 32 or 64: latent 1x1 -> 4x4 (7x7
/// at 28) -> ... -> C x size x size; batch norm + ReLU after each but the last, tanh out.
/// At 64 with width 64 this is the thesis' 512-256-128-64-C.
pub fn generator_specs(size: i64, c: i64, w: i64, latent: i64) -> Result<Vec<ConvSpec>> {
    Ok(match size {
        28 => vec![
            cs(latent, 2 * w, 7, 1, 0, true),
            cs(2 * w, w, 4, 2, 1, true),
            cs(w, c, 4, 2, 1, false),
        ],
        32 => vec![
            cs(latent, 4 * w, 4, 1, 0, true),
            cs(4 * w, 2 * w, 4, 2, 1, true),
            cs(2 * w, w, 4, 2, 1, true),
            cs(w, c, 4, 2, 1, false),
        ],
        64 => vec![
            cs(latent, 8 * w, 4, 1, 0, true),
            cs(8 * w, 4 * w, 4, 2, 1, true),
            cs(4 * w, 2 * w, 4, 2, 1, true),
            cs(2 * w, w, 4, 2, 1, true),
            cs(w, c, 4, 2, 1, false),
        ],
        _ => {
            return Err(Error::usage(format!(
                "--image-size {size}: the dcgan mode supports 28, 32 and 64"
            )))
        }
    })
}

/// Discriminator layers: stride-2 convolutions (batch norm on all but the first, LeakyReLU
/// 0.2) down to 7x7 or 4x4, then one convolution to a single logit.
pub fn discriminator_specs(size: i64, c: i64, w: i64) -> Result<Vec<ConvSpec>> {
    Ok(match size {
        28 => vec![
            cs(c, w, 4, 2, 1, false),
            cs(w, 2 * w, 4, 2, 1, true),
            cs(2 * w, 1, 7, 1, 0, false),
        ],
        32 => vec![
            cs(c, w, 4, 2, 1, false),
            cs(w, 2 * w, 4, 2, 1, true),
            cs(2 * w, 4 * w, 4, 2, 1, true),
            cs(4 * w, 1, 4, 1, 0, false),
        ],
        64 => vec![
            cs(c, w, 4, 2, 1, false),
            cs(w, 2 * w, 4, 2, 1, true),
            cs(2 * w, 4 * w, 4, 2, 1, true),
            cs(4 * w, 8 * w, 4, 2, 1, true),
            cs(8 * w, 1, 4, 1, 0, false),
        ],
        _ => {
            return Err(Error::usage(format!(
                "--image-size {size}: the dcgan mode supports 28, 32 and 64"
            )))
        }
    })
}

/// `w{l}` (`[Cin, Cout, k, k]` for the generator's transposed convolutions, `[Cout, Cin, k, k]`
/// for the discriminator), and `g{l}`, `b{l}` `[Cout]` for batch norm.
pub fn layout(specs: &[ConvSpec], transposed: bool) -> Layout {
    let mut v = Vec::new();
    for (l, s) in specs.iter().enumerate() {
        let shape = if transposed {
            vec![s.cin, s.cout, s.k, s.k]
        } else {
            vec![s.cout, s.cin, s.k, s.k]
        };
        v.push((format!("w{l}"), shape));
        if s.bn {
            v.push((format!("g{l}"), vec![s.cout]));
            v.push((format!("b{l}"), vec![s.cout]));
        }
    }
    Layout::new(v)
}

/// DCGAN initialisation: weights N(0, 0.02²), batch-norm scales N(1, 0.02²), shifts 0.
pub fn init(l: &Layout, p: i64, device: Device) -> Tensor {
    let parts: Vec<Tensor> = l
        .specs
        .iter()
        .map(|(name, shape)| {
            let n: i64 = shape.iter().product();
            let z = Tensor::randn([p, n], (Kind::Float, device)) * 0.02;
            match name.as_bytes()[0] {
                b'g' => z + 1.0,
                b'b' => z * 0.0,
                _ => z,
            }
        })
        .collect();
    Tensor::cat(&parts, 1)
}

/// Every generator of `g` (`[P, N]`) on the shared latents `z` `[B, latent]`:
/// `[B, P*C, H, W]` (individual i's images in channels `i*C..(i+1)*C`). With `fixed`, batch norm
/// uses those per-layer statistics instead of the batch's; with `record`, it saves the batch's.
pub fn g_forward_ext(
    l: &Layout,
    specs: &[ConvSpec],
    g: &Tensor,
    z: &Tensor,
    fixed: Option<&[(Tensor, Tensor)]>,
    mut record: Option<&mut Vec<(Tensor, Tensor)>>,
) -> Tensor {
    let p = g.size()[0];
    let latent = specs[0].cin;
    let mut x = z.reshape([-1, latent, 1, 1]);
    if p > 1 {
        x = x.repeat([1, p, 1, 1]);
    }
    let last = specs.len() - 1;
    let mut k = 0;
    for (i, s) in specs.iter().enumerate() {
        x = gconv_t(&x, &l.get(g, &format!("w{i}")), s.stride, s.pad);
        if s.bn {
            let gamma = l.get(g, &format!("g{i}"));
            let beta = l.get(g, &format!("b{i}"));
            if let Some(r) = record.as_deref_mut() {
                r.push(super::func::channel_stats(&x));
            }
            x = match fixed {
                Some(f) => gbn_fixed(&x, &gamma, &beta, &f[k].0, &f[k].1),
                None => gbn(&x, &gamma, &beta),
            };
            k += 1;
        }
        x = if i == last { x.tanh() } else { x.relu() };
    }
    x
}

pub fn g_forward(l: &Layout, specs: &[ConvSpec], g: &Tensor, z: &Tensor) -> Tensor {
    g_forward_ext(l, specs, g, z, None, None)
}

/// Every discriminator of `d` (`[Q, N]`) on its own block of channels of `x` `[B, Q*C, H, W]`:
/// logits `[B, Q]`.
pub fn d_forward(l: &Layout, specs: &[ConvSpec], d: &Tensor, x: &Tensor) -> Tensor {
    let q = d.size()[0];
    let last = specs.len() - 1;
    let mut x = x.shallow_clone();
    for (i, s) in specs.iter().enumerate() {
        x = gconv(&x, &l.get(d, &format!("w{i}")), s.stride, s.pad);
        if s.bn {
            x = gbn(&x, &l.get(d, &format!("g{i}")), &l.get(d, &format!("b{i}")));
        }
        if i != last {
            x = leaky_relu(&x, 0.2);
        }
    }
    x.reshape([-1, q])
}

/// The per-individual reference of [`g_forward`]: one generator at a time, stacked.
pub fn g_forward_loop(l: &Layout, specs: &[ConvSpec], g: &Tensor, z: &Tensor) -> Tensor {
    let outs: Vec<Tensor> = (0..g.size()[0])
        .map(|i| g_forward(l, specs, &g.narrow(0, i, 1), z))
        .collect();
    Tensor::cat(&outs, 1)
}

/// The per-individual reference of [`d_forward`].
pub fn d_forward_loop(l: &Layout, specs: &[ConvSpec], d: &Tensor, x: &Tensor) -> Tensor {
    let c = specs[0].cin;
    let outs: Vec<Tensor> = (0..d.size()[0])
        .map(|i| d_forward(l, specs, &d.narrow(0, i, 1), &x.narrow(1, i * c, c)))
        .collect();
    Tensor::cat(&outs, 1)
}

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct DcganConfig {
    pub latent_dim: i64,
    pub width: i64,
    pub grad_steps: usize,
    pub d_population: usize,
    /// Every individual has its own Adam learning rate, inherited by its children and
    /// multiplied by 0.8 or 1.25 at random (population-based training's explore step).
    #[serde(default)]
    pub evolve_lr: bool,
    /// With `evolve_lr`: only the generators' rates evolve; every discriminator keeps `--lr`
    /// (their fitness, accuracy, favours slow and stable discriminators).
    #[serde(default)]
    pub fixed_d_lr: bool,
    /// E-GAN (`--g-losses`): every generator makes one child per loss each gradient step, and
    /// the best P children by fitness survive. Empty: the GA-GAN generation.
    #[serde(default)]
    pub g_losses: Vec<super::egan::GLoss>,
    /// E-GAN's fitness: quality + this weight x diversity (`--diversity-weight`).
    #[serde(default)]
    pub diversity_weight: f64,
    /// Population-based training on the FID (`--pbt-every`, [`super::pbt`]): every individual
    /// has its own rate and beta1, every generator its own loss; no GA breeding.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pbt: Option<super::pbt::PbtConfig>,
}

fn per_row(a: Adam, on: bool) -> Adam {
    if on {
        a.per_row_lr()
    } else {
        a
    }
}

pub struct DcganModel {
    pub cfg: DcganConfig,
    pub shape: [i64; 3],
    pub gs: Vec<ConvSpec>,
    pub ds: Vec<ConvSpec>,
    pub gl: Layout,
    pub dl: Layout,
    pub g: Tensor,
    pub d: Tensor,
    pub g_adam: Adam,
    pub d_adam: Adam,
    pub best: Tensor,
    pub g_ev: Option<Evolver>,
    pub d_ev: Option<Evolver>,
    pub batch: i64,
    pub eval_batch: i64,
    /// With PBT: each generator's adversarial loss (else empty: the non-saturating BCE).
    pub g_loss_rows: Vec<super::egan::GLoss>,
    /// With PBT: the generator with the lowest FID in the last round (the best one from then).
    pub pbt_best: Option<usize>,
    /// The discriminators' fitness in the last generation (what PBT ranks them by).
    pub d_fit: Vec<f64>,
}

impl DcganModel {
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        cfg: DcganConfig,
        shape: [i64; 3],
        population: i64,
        evolvers: (Option<Evolver>, Option<Evolver>),
        batch: i64,
        eval_batch: i64,
        lr: f64,
        beta1: f64,
        device: Device,
    ) -> Result<Self> {
        let [c, h, _] = shape;
        let gs = generator_specs(h, c, cfg.width, cfg.latent_dim)?;
        let ds = discriminator_specs(h, c, cfg.width)?;
        let gl = layout(&gs, true);
        let dl = layout(&ds, false);
        let g = init(&gl, population, device);
        let d = init(&dl, cfg.d_population as i64, device);
        let pbt = cfg.pbt.is_some();
        let (mut g_adam, mut d_adam) = (
            per_row(Adam::new(&g, lr, beta1), cfg.evolve_lr || pbt),
            per_row(
                Adam::new(&d, lr, beta1),
                (cfg.evolve_lr && !cfg.fixed_d_lr) || pbt,
            ),
        );
        if pbt {
            (g_adam, d_adam) = (g_adam.per_row_beta1(), d_adam.per_row_beta1());
        }
        let g_loss_rows = match pbt {
            true => vec![super::egan::GLoss::Nonsat; population as usize],
            false => Vec::new(),
        };
        Ok(DcganModel {
            g_adam,
            d_adam,
            g_loss_rows,
            pbt_best: None,
            d_fit: Vec::new(),
            best: g.narrow(0, 0, 1).copy(),
            cfg,
            shape,
            gs,
            ds,
            gl,
            dl,
            g,
            d,
            g_ev: evolvers.0,
            d_ev: evolvers.1,
            batch,
            eval_batch,
        })
    }

    /// Batch-norm statistics of the generators `g` (on the CPU) over 1024 latent draws, what
    /// an exported generator normalises with.
    fn frozen_stats(&self, g: &Tensor) -> Vec<(Tensor, Tensor)> {
        let mut stats = Vec::new();
        let _g = tch::no_grad_guard();
        let z = Tensor::randn([1024, self.cfg.latent_dim], (Kind::Float, Device::Cpu));
        let _ = g_forward_ext(&self.gl, &self.gs, g, &z, None, Some(&mut stats));
        stats
    }

    pub(crate) fn latent(&self, b: i64) -> Tensor {
        Tensor::randn([b, self.cfg.latent_dim], (Kind::Float, self.g.device()))
    }

    /// One Adam step of every discriminator, then of every generator, each against a random
    /// partner of the other population (with `--halving`, its pair's).
    fn grad_step(&mut self, data: &mut RealStream, rng: &mut GaRng) -> Result<()> {
        self.d_step(data, rng);
        let (pg, pd) = (self.g.size()[0], self.d.size()[0]);
        let c = self.shape[0];
        let partners = self.partners(pd, pg);
        let dp = self.d.index_select(0, &partners);
        let g = leaf(&self.g);
        let fake = g_forward(&self.gl, &self.gs, &g, &self.latent(self.batch));
        debug_assert_eq!(fake.size()[1], pg * c);
        let logits = d_forward(&self.dl, &self.ds, &dp, &fake);
        let loss = match self.cfg.pbt.is_some() {
            true => super::pbt::row_losses(&logits, &self.g_loss_rows),
            false => bce_cols(&logits, 1.0),
        };
        loss.sum(Kind::Float).backward();
        self.g = self.g_adam.step(&g, &g.grad());
        Ok(())
    }

    /// One Adam step of every discriminator on a batch of real images and the fakes of a
    /// random partner generator (with `--halving`, its pair's).
    pub(crate) fn d_step(&mut self, data: &mut RealStream, rng: &mut GaRng) {
        let (pg, pd) = (self.g.size()[0], self.d.size()[0]);
        let real = data.next(self.batch, rng);
        let fake = {
            let _g = tch::no_grad_guard();
            let partners = self.partners(pg, pd);
            let gp = self.g.index_select(0, &partners);
            g_forward(&self.gl, &self.gs, &gp, &self.latent(self.batch))
        };
        let d = leaf(&self.d);
        let real_rep = if pd > 1 {
            real.repeat([1, pd, 1, 1])
        } else {
            real
        };
        let loss = bce_cols(&d_forward(&self.dl, &self.ds, &d, &real_rep), 1.0)
            + bce_cols(&d_forward(&self.dl, &self.ds, &d, &fake), 0.0);
        loss.sum(Kind::Float).backward();
        self.d = self.d_adam.step(&d, &d.grad());
    }
}

impl GanModel for DcganModel {
    fn generation(
        &mut self,
        data: &mut RealStream,
        rng: &mut GaRng,
        _generation: u64,
    ) -> Result<GenStats> {
        // E-GAN (`--g-losses`): the generators are varied and selected in `egan_step`
        let mut loss_counts = vec![0usize; self.cfg.g_losses.len()];
        for _ in 0..self.cfg.grad_steps {
            if self.cfg.g_losses.is_empty() {
                self.grad_step(data, rng)?;
            } else {
                self.d_step(data, rng);
                self.egan_step(data, rng, &mut loss_counts)?;
            }
        }
        let _guard = tch::no_grad_guard();
        let (pg, pd) = (self.g.size()[0], self.d.size()[0]);
        let [c, h, w] = self.shape;
        let be = self.eval_batch;
        // every generator against every discriminator: groups = Pg * Pd
        let fakes = g_forward(&self.gl, &self.gs, &self.g, &self.latent(be));
        let pairs = fakes
            .view([be, pg, 1, c, h, w])
            .expand([be, pg, pd, c, h, w], false)
            .reshape([be, pg * pd * c, h, w]);
        let dd = if pg > 1 {
            self.d.repeat([pg, 1])
        } else {
            self.d.shallow_clone()
        };
        let lf = d_forward(&self.dl, &self.ds, &dd, &pairs); // [B, Pg*Pd]
        let real = data.next(be, rng);
        let real_rep = if pd > 1 {
            real.repeat([1, pd, 1, 1])
        } else {
            real
        };
        let lr = d_forward(&self.dl, &self.ds, &self.d, &real_rep); // [B, Pd]
        let pf = lf.sigmoid().mean_dim(0, false, Kind::Double).view([pg, pd]);
        let g_fit =
            Vec::<f64>::try_from(pf.mean_dim(1, false, Kind::Double).to_device(Device::Cpu))?;
        let real_acc = lr
            .gt(0.0)
            .to_kind(Kind::Double)
            .mean_dim(0, false, Kind::Double);
        let fake_acc = lf
            .lt(0.0)
            .to_kind(Kind::Double)
            .view([be, pg, pd])
            .mean_dim([0i64, 1].as_slice(), false, Kind::Double);
        let d_fit = Vec::<f64>::try_from(((real_acc + fake_acc) * 0.5).to_device(Device::Cpu))?;
        let best = self.pbt_best.unwrap_or_else(|| argbest(&g_fit));
        self.best = self.g.narrow(0, best as i64, 1).copy();
        let lf1 = lf.reshape([-1, 1]);
        let lr1 = lr.reshape([-1, 1]);
        let mut stats = GenStats::new(
            lr1.sigmoid().mean(Kind::Double).double_value(&[]),
            pf.mean(Kind::Double).double_value(&[]),
            (bce_cols(&lr1, 1.0) + bce_cols(&lf1, 0.0)).double_value(&[0]),
            bce_cols(&lf1, 1.0).double_value(&[0]),
            &g_fit,
        );
        let dbest = argbest(&d_fit);
        stats
            .extra
            .insert("d_best_fitness".into(), serde_json::json!(d_fit[dbest]));
        stats.extra.insert(
            "d_mean_fitness".into(),
            serde_json::json!(d_fit.iter().sum::<f64>() / d_fit.len() as f64),
        );
        if !self.cfg.g_losses.is_empty() {
            stats.extra.insert(
                "g_loss_counts".into(),
                super::egan::loss_counts_json(&self.cfg.g_losses, &loss_counts),
            );
        }
        if self.cfg.evolve_lr || self.cfg.pbt.is_some() {
            let (gl, dl) = (self.g_adam.lrs(), self.d_adam.lrs());
            stats
                .extra
                .insert("g_lr_best".into(), serde_json::json!(gl[best]));
            stats
                .extra
                .insert("d_lr_best".into(), serde_json::json!(dl[dbest]));
        }
        self.d_fit = d_fit;
        if let Some(ev) = &self.g_ev {
            let (next, inherit, kept) = ev.step_counted(&self.g, &g_fit, rng)?;
            self.g = next;
            self.g_adam.select(&inherit);
            self.g_adam.perturb_lr(kept, rng);
        }
        if let Some(ev) = &self.d_ev {
            let (next, inherit, kept) = ev.step_counted(&self.d, &self.d_fit, rng)?;
            self.d = next;
            self.d_adam.select(&inherit);
            self.d_adam.perturb_lr(kept, rng);
        }
        Ok(stats)
    }

    fn sample_best(&self, z: &Tensor) -> Result<Tensor> {
        let _g = tch::no_grad_guard();
        Ok(g_forward(&self.gl, &self.gs, &self.best, z))
    }
    fn output_range(&self) -> (f32, f32) {
        (-1.0, 1.0)
    }
    fn latent_shape(&self) -> Vec<i64> {
        vec![self.cfg.latent_dim, 1, 1]
    }
    fn tensors(&self) -> Vec<(String, Tensor)> {
        let mut t = vec![
            ("g".into(), self.g.shallow_clone()),
            ("d".into(), self.d.shallow_clone()),
            ("best".into(), self.best.shallow_clone()),
            ("g_m".into(), self.g_adam.m.shallow_clone()),
            ("g_v".into(), self.g_adam.v.shallow_clone()),
            ("d_m".into(), self.d_adam.m.shallow_clone()),
            ("d_v".into(), self.d_adam.v.shallow_clone()),
            ("g_t".into(), Tensor::from(self.g_adam.t)),
            ("d_t".into(), Tensor::from(self.d_adam.t)),
        ];
        if let Some(g) = &self.g_adam.lr_rows {
            t.push(("g_lr".into(), g.shallow_clone()));
        }
        if let Some(d) = &self.d_adam.lr_rows {
            t.push(("d_lr".into(), d.shallow_clone()));
        }
        if self.cfg.pbt.is_some() {
            t.extend(self.pbt_tensors());
        }
        t
    }
    fn load_tensors(&mut self, t: &HashMap<String, Tensor>) -> Result<()> {
        if self.halving() {
            self.fit_to_checkpoint(t)?;
        }
        let dev = self.g.device();
        let (gsz, dsz) = (self.g.size(), self.d.size());
        self.g = super::take(t, "g", &gsz)?.to_device(dev);
        self.d = super::take(t, "d", &dsz)?.to_device(dev);
        self.best = super::take(t, "best", &self.best.size())?.to_device(dev);
        self.g_adam.m = super::take(t, "g_m", &gsz)?.to_device(dev);
        self.g_adam.v = super::take(t, "g_v", &gsz)?.to_device(dev);
        self.d_adam.m = super::take(t, "d_m", &dsz)?.to_device(dev);
        self.d_adam.v = super::take(t, "d_v", &dsz)?.to_device(dev);
        self.g_adam.t = super::take(t, "g_t", &[])?.int64_value(&[]);
        self.d_adam.t = super::take(t, "d_t", &[])?.int64_value(&[]);
        // the rates that evolve (set up by `new` from the config) are in the checkpoint
        if self.g_adam.lr_rows.is_some() {
            self.g_adam.lr_rows = Some(super::take(t, "g_lr", &[gsz[0], 1])?.to_device(dev));
        }
        if self.d_adam.lr_rows.is_some() {
            self.d_adam.lr_rows = Some(super::take(t, "d_lr", &[dsz[0], 1])?.to_device(dev));
        }
        if self.cfg.pbt.is_some() {
            self.load_pbt_tensors(t)?;
        }
        Ok(())
    }
    fn pbt(&mut self, g_fid: &[f64], rng: &mut GaRng) -> Result<serde_json::Value> {
        match self.halving() {
            true => self.halving_round(g_fid),
            false => self.pbt_round(g_fid, rng),
        }
    }
    fn pbt_has_rivals(&self) -> bool {
        self.g.size()[0] > 1
    }
    fn sample_members(&self, z: &Tensor) -> Result<Option<Tensor>> {
        let _g = tch::no_grad_guard();
        Ok(Some(g_forward(&self.gl, &self.gs, &self.g, z)))
    }
    /// Every generator of the population with its batch-norm statistics frozen as in
    /// [`GanModel::export_best`]; a latent picks its member by [`super::mixture::pick`].
    fn export_mixture(&self, weights: &[f64], path: &Path) -> Result<()> {
        let g = self.g.to_device(Device::Cpu);
        let stats = self.frozen_stats(&g);
        let (gl, gs) = (self.gl.clone(), self.gs.clone());
        let c = self.shape[0];
        let bounds = super::mixture::thresholds(weights);
        let example = Tensor::zeros([4, self.cfg.latent_dim, 1, 1], (Kind::Float, Device::Cpu));
        let mut vs = tch::nn::VarStore::new(Device::Cpu);
        crate::nn::export::export_traced(&mut vs, &example, path, &|z| {
            let outs = g_forward_ext(&gl, &gs, &g, z, Some(&stats), None);
            super::mixture::select(&outs, c, &super::mixture::pick(z, &bounds))
        })
    }
    /// Exports the best generator with its batch-norm statistics estimated on 1024 latent
    /// draws and frozen (eval mode), so an image depends only on its own latent vector.
    fn export_best(&self, path: &Path) -> Result<()> {
        let best = self.best.to_device(Device::Cpu);
        let stats = self.frozen_stats(&best);
        let (gl, gs) = (self.gl.clone(), self.gs.clone());
        let example = Tensor::zeros([4, self.cfg.latent_dim, 1, 1], (Kind::Float, Device::Cpu));
        let mut vs = tch::nn::VarStore::new(Device::Cpu);
        crate::nn::export::export_traced(&mut vs, &example, path, &|z| {
            g_forward_ext(&gl, &gs, &best, z, Some(&stats), None)
        })?;
        // the same generator as named tensors in PyTorch's layout (ConvTranspose2d weights
        // [Cin, Cout, k, k]; batch norm with the statistics the export uses), for
        // python/neuroevo_torch.py to rebuild as a trainable module
        let mut named: Vec<(String, Tensor)> = Vec::new();
        let mut k = 0;
        for (i, spec) in self.gs.iter().enumerate() {
            named.push((
                format!("layers.{i}.conv.weight"),
                self.gl.get(&best, &format!("w{i}")).squeeze_dim(0),
            ));
            if spec.bn {
                named.push((
                    format!("layers.{i}.bn.weight"),
                    self.gl.get(&best, &format!("g{i}")).reshape([-1]),
                ));
                named.push((
                    format!("layers.{i}.bn.bias"),
                    self.gl.get(&best, &format!("b{i}")).reshape([-1]),
                ));
                named.push((
                    format!("layers.{i}.bn.running_mean"),
                    stats[k].0.reshape([-1]),
                ));
                named.push((
                    format!("layers.{i}.bn.running_var"),
                    stats[k].1.reshape([-1]),
                ));
                k += 1;
            }
        }
        let named: Vec<(String, Tensor)> = named
            .into_iter()
            .map(|(n, t)| (n, t.contiguous()))
            .collect();
        let wpath = path.with_extension("safetensors");
        crate::fsutil::write_torch_file(&wpath, |tmp| {
            Tensor::write_safetensors(&named, tmp)
                .map_err(|e| Error::Other(format!("{}: {e}", wpath.display())))
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn perturbed(l: &Layout, p: i64) -> Tensor {
        init(l, p, Device::Cpu) + Tensor::randn([p, l.n], (Kind::Float, Device::Cpu)) * 0.05
    }

    #[test]
    fn grouped_population_equals_the_per_individual_loop() {
        tch::manual_seed(9);
        for size in [28, 32] {
            let (c, w, latent, p, b) = (1, 4, 8, 3, 5);
            let gs = generator_specs(size, c, w, latent).unwrap();
            let ds = discriminator_specs(size, c, w).unwrap();
            let (gl, dl) = (layout(&gs, true), layout(&ds, false));
            let g = perturbed(&gl, p);
            let d = perturbed(&dl, p);
            let z = Tensor::randn([b, latent], (Kind::Float, Device::Cpu));
            let a = g_forward(&gl, &gs, &g, &z);
            let r = g_forward_loop(&gl, &gs, &g, &z);
            assert_eq!(a.size(), vec![b, p * c, size, size]);
            assert!(a.allclose(&r, 1e-4, 1e-5, false), "generator, size {size}");
            assert!(!a
                .narrow(1, 0, 1)
                .allclose(&a.narrow(1, 1, 1), 1e-3, 1e-3, false));
            let la = d_forward(&dl, &ds, &d, &a);
            let lr = d_forward_loop(&dl, &ds, &d, &a);
            assert_eq!(la.size(), vec![b, p]);
            assert!(
                la.allclose(&lr, 1e-4, 1e-5, false),
                "discriminator, size {size}"
            );
            // in float64 (what the benchmark checks on CUDA, where float32 convolutions run in
            // TF32) the two paths agree to rounding, batch norm statistics included
            let (g, d, z) = (
                g.to_kind(Kind::Double),
                d.to_kind(Kind::Double),
                z.to_kind(Kind::Double),
            );
            let a = g_forward(&gl, &gs, &g, &z);
            assert_eq!(a.kind(), Kind::Double);
            let la = d_forward(&dl, &ds, &d, &a);
            let lr = d_forward_loop(&dl, &ds, &d, &g_forward_loop(&gl, &gs, &g, &z));
            assert_eq!(la.kind(), Kind::Double);
            assert!(
                la.allclose(&lr, 1e-10, 1e-12, false),
                "float64, size {size}"
            );
        }
    }

    #[test]
    fn thesis_generator_at_64() {
        let gs = generator_specs(64, 3, 64, 128).unwrap();
        let widths: Vec<i64> = gs.iter().map(|s| s.cout).collect();
        assert_eq!(widths, vec![512, 256, 128, 64, 3]);
        assert!(generator_specs(30, 1, 8, 8).is_err());
    }
}
