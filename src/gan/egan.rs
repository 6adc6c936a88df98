//! E-GAN's variation of the generators (Wang et al., "Evolutionary Generative Adversarial
//! Networks", IEEE TEC 2019), `--g-losses` in `--mode dcgan`. Our measurements had a tuned
//! single DCGAN beating every GA-GAN variant; E-GAN is one published way to make a population
//! pay for itself, so it is here to be measured, off by default.
//!
//! One step: every parent generator makes one child per listed adversarial loss (a copy of the
//! parent, weights and Adam moments, that takes one Adam step on that loss against a random
//! discriminator shared by its siblings); the P*L children are stacked and scored in one batched
//! pass against every discriminator; the best P by fitness `F = F_q + gamma * F_d` become the
//! generators, their Adam moments with them. There is no crossover or mutation of generators in
//! E-GAN: the losses are the variation, so the generators are not bred by the GA (the
//! discriminators still are, when their population has two or more and evolution is on).
//!
//! D(.) below is the discriminator's sigmoid output, as in E-GAN's code (the least-squares loss
//! too); the losses are computed from the logits in numerically stable forms (log-sigmoid, never
//! the log of a sigmoid).
use super::dcgan::{d_forward, g_forward, ConvSpec, DcganModel};
use super::func::{bce_cols, leaf, Adam, Layout};
use super::RealStream;
use crate::error::Result;
use crate::ga::GaRng;
use serde::{Deserialize, Serialize};
use tch::{Device, Kind, Tensor};

/// A generator's adversarial loss (one child per listed loss).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "snake_case")]
pub enum GLoss {
    /// Minimise E[log(1 - D(G(z)))] (the original minimax game).
    Minimax,
    /// Minimise -E[log D(G(z))] (the heuristic, non-saturating loss).
    Nonsat,
    /// Minimise E[(D(G(z)) - 1)^2] (least squares, on the sigmoid output).
    Lsgan,
}

impl GLoss {
    pub fn name(self) -> &'static str {
        match self {
            GLoss::Minimax => "minimax",
            GLoss::Nonsat => "nonsat",
            GLoss::Lsgan => "lsgan",
        }
    }

    /// The loss of every column of discriminator logits `[B, n]`: `[n]` (means over the batch).
    /// log(1 - sigmoid(l)) = log_sigmoid(-l) and log(sigmoid(l)) = log_sigmoid(l).
    pub fn cols(self, logits: &Tensor) -> Tensor {
        let k = logits.kind();
        match self {
            GLoss::Minimax => logits.neg().log_sigmoid().mean_dim(0, false, k),
            GLoss::Nonsat => -logits.log_sigmoid().mean_dim(0, false, k),
            GLoss::Lsgan => (logits.sigmoid() - 1.0).square().mean_dim(0, false, k),
        }
    }
}

/// The loss of every child: `logits` `[B, P*L]`, column `i*L + j` the child of parent i by
/// loss `losses[j]`: `[P*L]`.
pub fn children_loss(logits: &Tensor, losses: &[GLoss]) -> Tensor {
    let b = logits.size()[0];
    let v = logits.view([b, -1, losses.len() as i64]);
    let per: Vec<Tensor> = losses
        .iter()
        .enumerate()
        .map(|(j, l)| l.cols(&v.select(2, j as i64)))
        .collect();
    Tensor::stack(&per, 1).reshape([-1])
}

/// The networks' shapes: generator layout and layers, discriminator layout and layers.
pub struct Nets<'a> {
    pub gl: &'a Layout,
    pub gs: &'a [ConvSpec],
    pub dl: &'a Layout,
    pub ds: &'a [ConvSpec],
}

/// The children of generators `g` `[P, N]`, `[P*L, N]`: row `i*L + j` is parent i after one
/// Adam step on `losses[j]` against discriminator row i of `dp` `[P, Nd]`, all on latents `z`.
/// `adam` holds the parents' state on entry and the children's on return.
pub fn children(
    nets: &Nets,
    g: &Tensor,
    adam: &mut Adam,
    dp: &Tensor,
    z: &Tensor,
    losses: &[GLoss],
) -> Tensor {
    let p = g.size()[0];
    let parents = Tensor::arange(p, (Kind::Int64, g.device())).repeat_interleave_self_int(
        losses.len() as i64,
        0,
        None,
    );
    adam.select(&parents);
    let gc = leaf(&g.index_select(0, &parents));
    let dc = dp.detach().index_select(0, &parents);
    let fake = g_forward(nets.gl, nets.gs, &gc, z);
    let logits = d_forward(nets.dl, nets.ds, &dc, &fake);
    children_loss(&logits, losses).sum(logits.kind()).backward();
    adam.step(&gc, &gc.grad())
}

/// E-GAN's fitness terms of every child against every discriminator `d` `[Q, Nd]`, averaged
/// over the discriminators: `fakes` `[B, n*C, H, W]` (child k in channels `k*C..`), `real`
/// `[B, C, H, W]`. F_q `[n]` = mean D(G(z)); with `diversity`, F_d `[n]` = -log ||grad_D L_D||,
/// L_D = -E[log D(x)] - E[log(1 - D(G(z)))] on the real images and the child's fakes. One
/// batched pass: D is replicated per child as a leaf, so each row of the gradient is one
/// (child, discriminator) pair's.
pub fn child_fitness(
    nets: &Nets,
    d: &Tensor,
    fakes: &Tensor,
    real: &Tensor,
    diversity: bool,
) -> (Tensor, Option<Tensor>) {
    let q = d.size()[0];
    let s = fakes.size();
    let (b, c, h, w) = (s[0], real.size()[1], s[2], s[3]);
    let n = s[1] / c;
    let fakes = fakes.detach();
    // pair k*Q + j: child k against discriminator j
    let pairs = if q > 1 {
        fakes
            .view([b, n, 1, c, h, w])
            .expand([b, n, q, c, h, w], false)
            .reshape([b, n * q * c, h, w])
    } else {
        fakes
    };
    let dd = d.detach().repeat([n, 1]);
    let mean_per_child = |x: &Tensor| {
        x.view([n, q])
            .mean_dim(1, false, Kind::Double)
            .to_kind(Kind::Double)
    };
    if !diversity {
        let _g = tch::no_grad_guard();
        let lf = d_forward(nets.dl, nets.ds, &dd, &pairs);
        return (
            mean_per_child(&lf.sigmoid().mean_dim(0, false, Kind::Double)),
            None,
        );
    }
    let dd = leaf(&dd);
    let lf = d_forward(nets.dl, nets.ds, &dd, &pairs);
    let lr = d_forward(nets.dl, nets.ds, &dd, &real.repeat([1, n * q, 1, 1]));
    let loss = bce_cols(&lr, 1.0) + bce_cols(&lf, 0.0);
    loss.sum(Kind::Float).backward();
    let norms = dd
        .grad()
        .to_kind(Kind::Double)
        .square()
        .sum_dim_intlist([1i64].as_slice(), false, Kind::Double)
        .sqrt();
    let fq = mean_per_child(&lf.detach().sigmoid().mean_dim(0, false, Kind::Double));
    (fq, Some(mean_per_child(&(-norms.log()))))
}

/// The indices of the `p` best of `f`, best first; ties go to the earlier index, NaN is worst.
pub fn survivors(f: &[f64], p: usize) -> Vec<usize> {
    let key = |i: usize| {
        if f[i].is_nan() {
            f64::NEG_INFINITY
        } else {
            f[i]
        }
    };
    let mut idx: Vec<usize> = (0..f.len()).collect();
    // a stable sort: equal keys keep their order
    idx.sort_by(|&a, &b| key(b).partial_cmp(&key(a)).expect("no NaN keys"));
    idx.truncate(p);
    idx
}

/// `{"minimax": 1, "nonsat": 3, ...}`: how many survivors each loss made.
pub fn loss_counts_json(losses: &[GLoss], counts: &[usize]) -> serde_json::Value {
    let m: serde_json::Map<String, serde_json::Value> = losses
        .iter()
        .zip(counts)
        .map(|(l, &c)| (l.name().to_string(), serde_json::json!(c)))
        .collect();
    serde_json::Value::Object(m)
}

impl DcganModel {
    /// One E-GAN step of the generators: children by every loss, scored on a fresh batch, the
    /// best P kept (their Adam moments with them). `counts[j]` gains the survivors by loss j.
    pub(crate) fn egan_step(
        &mut self,
        data: &mut RealStream,
        rng: &mut GaRng,
        counts: &mut [usize],
    ) -> Result<()> {
        let dev = self.g.device();
        let (pg, pd) = (self.g.size()[0], self.d.size()[0]);
        let losses = self.cfg.g_losses.clone();
        let nets = Nets {
            gl: &self.gl,
            gs: &self.gs,
            dl: &self.dl,
            ds: &self.ds,
        };
        // a parent's children all meet the same random discriminator on the same latents
        let partners = Tensor::randint(pd, [pg], (Kind::Int64, dev));
        let dp = self.d.index_select(0, &partners);
        let z = self.latent(self.batch);
        let kids = children(&nets, &self.g, &mut self.g_adam, &dp, &z, &losses);
        let fakes = {
            let _g = tch::no_grad_guard();
            g_forward(&self.gl, &self.gs, &kids, &self.latent(self.eval_batch))
        };
        let real = data.next(self.eval_batch, rng);
        let gamma = self.cfg.diversity_weight;
        let (fq, fd) = child_fitness(&nets, &self.d, &fakes, &real, gamma > 0.0);
        let f = match fd {
            Some(fd) => fq + fd * gamma,
            None => fq,
        };
        let f = Vec::<f64>::try_from(f.to_device(Device::Cpu))?;
        let keep = survivors(&f, pg as usize);
        for &k in &keep {
            counts[k % losses.len()] += 1;
        }
        let keep: Vec<i64> = keep.into_iter().map(|k| k as i64).collect();
        let idx = Tensor::from_slice(&keep).to_device(dev);
        self.g = kids.index_select(0, &idx);
        self.g_adam.select(&idx);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::super::dcgan::{discriminator_specs, generator_specs, init, layout};
    use super::*;

    const ALL: [GLoss; 3] = [GLoss::Minimax, GLoss::Nonsat, GLoss::Lsgan];

    #[test]
    fn each_loss_has_its_hand_computed_gradient() {
        tch::manual_seed(1);
        let (b, n) = (6i64, 4i64);
        // large logits too: the stable forms have finite gradients there
        let l0 = Tensor::randn([b, n], (Kind::Double, Device::Cpu)) * 3.0;
        let l0 = Tensor::cat(
            &[
                l0,
                Tensor::from_slice(&[40.0f64, -40.0, 0.0, 1.0]).view([1, n]),
            ],
            0,
        );
        let b = b + 1;
        for loss in ALL {
            let l = leaf(&l0);
            loss.cols(&l).sum(Kind::Double).backward();
            let s = l0.sigmoid();
            let want = match loss {
                GLoss::Minimax => -&s / b as f64,
                GLoss::Nonsat => (&s - 1.0) / b as f64,
                GLoss::Lsgan => (&s - 1.0) * 2.0 * &s * (s.neg() + 1.0) / b as f64,
            };
            let got = l.grad();
            assert!(got.isfinite().all().int64_value(&[]) == 1, "{loss:?}");
            assert!(got.allclose(&want, 1e-12, 1e-14, false), "{loss:?}");
        }
        // the values: log(1 - sigmoid), -log sigmoid, (sigmoid - 1)^2 where they are finite
        let l = Tensor::from_slice(&[0.3f64, -1.2]).view([2, 1]);
        let s = l.sigmoid();
        let mean = |t: Tensor| t.mean(Kind::Double).double_value(&[]);
        let v = |loss: GLoss| loss.cols(&l).double_value(&[0]);
        assert!((v(GLoss::Minimax) - mean((s.neg() + 1.0).log())).abs() < 1e-12);
        assert!((v(GLoss::Nonsat) + mean(s.log())).abs() < 1e-12);
        assert!((v(GLoss::Lsgan) - mean((&s - 1.0).square())).abs() < 1e-12);
    }

    #[test]
    fn children_losses_follow_the_column_order() {
        // column i*L + j is loss j
        let l = Tensor::from_slice(&[0.5f64, -0.5, 2.0, 1.0, 0.0, -3.0]).view([1, 6]);
        let got = Vec::<f64>::try_from(children_loss(&l, &ALL)).unwrap();
        for (k, g) in got.iter().enumerate() {
            let want = ALL[k % 3]
                .cols(&l.narrow(1, k as i64, 1))
                .double_value(&[0]);
            assert_eq!(*g, want, "column {k}");
        }
    }

    #[test]
    fn one_adam_step_from_a_known_state_follows_the_formula() {
        let p = Tensor::from_slice(&[1.0f32, -2.0]).view([1, 2]);
        let g = Tensor::from_slice(&[0.5f32, -0.25]).view([1, 2]);
        let mut a = Adam::new(&p, 0.01, 0.5);
        a.m = Tensor::from_slice(&[0.1f32, 0.2]).view([1, 2]);
        a.v = Tensor::from_slice(&[0.01f32, 0.04]).view([1, 2]);
        a.t = 2;
        let next = a.step(&p, &g);
        assert_eq!(a.t, 3);
        for (i, (p, g, m, v)) in [(1.0, 0.5, 0.1, 0.01), (-2.0, -0.25, 0.2, 0.04)]
            .into_iter()
            .enumerate()
        {
            let (b1, b2, lr): (f64, f64, f64) = (0.5, 0.999, 0.01);
            let m1 = b1 * m + (1.0 - b1) * g;
            let v1 = b2 * v + (1.0 - b2) * g * g;
            let mh = m1 / (1.0 - b1.powi(3));
            let vh = v1 / (1.0 - b2.powi(3));
            let want = p - lr * mh / (vh.sqrt() + 1e-8);
            let got = next.double_value(&[0, i as i64]);
            assert!((got - want).abs() < 1e-6, "weight {i}: {got} vs {want}");
            assert!((a.m.double_value(&[0, i as i64]) - m1).abs() < 1e-7);
            assert!((a.v.double_value(&[0, i as i64]) - v1).abs() < 1e-7);
        }
    }

    #[test]
    fn survivors_are_the_best_p_with_ties_to_the_earlier_child() {
        // P = 2 parents, L = 3 losses: 6 children
        let f = [0.2, 0.7, f64::NAN, 0.7, 0.9, 0.1];
        assert_eq!(survivors(&f, 2), vec![4, 1]);
        assert_eq!(survivors(&f, 3), vec![4, 1, 3]);
        assert_eq!(survivors(&f, 6), vec![4, 1, 3, 0, 5, 2]);
        // one parent (E-GAN's own setting): the single best child
        assert_eq!(survivors(&[0.3, 0.5, 0.5], 1), vec![1]);
        let counts = loss_counts_json(&ALL, &[0, 2, 1]);
        assert_eq!(
            counts,
            serde_json::json!({"minimax": 0, "nonsat": 2, "lsgan": 1})
        );
    }

    /// Tiny networks at 28x28: layouts, layers, `p` generators and `q` discriminators.
    fn tiny(p: i64, q: i64) -> (Layout, Vec<ConvSpec>, Layout, Vec<ConvSpec>, Tensor, Tensor) {
        let gs = generator_specs(28, 1, 2, 4).unwrap();
        let ds = discriminator_specs(28, 1, 2).unwrap();
        let (gl, dl) = (layout(&gs, true), layout(&ds, false));
        let noise = |l: &Layout, k: i64| {
            init(l, k, Device::Cpu) + Tensor::randn([k, l.n], (Kind::Float, Device::Cpu)) * 0.05
        };
        let g = noise(&gl, p);
        let d = noise(&dl, q);
        (gl, gs, dl, ds, g, d)
    }

    #[test]
    fn batched_children_equal_one_child_at_a_time() {
        tch::manual_seed(5);
        let (gl, gs, dl, ds, g, d) = tiny(2, 2);
        let nets = Nets {
            gl: &gl,
            gs: &gs,
            dl: &dl,
            ds: &ds,
        };
        let z = Tensor::randn([5, 4], (Kind::Float, Device::Cpu));
        let dp = d.index_select(0, &Tensor::from_slice(&[1i64, 0]));
        let m0 = Tensor::randn([2, gl.n], (Kind::Float, Device::Cpu)) * 0.01;
        let v0 = Tensor::rand([2, gl.n], (Kind::Float, Device::Cpu)) * 1e-4;
        let mut a = Adam::new(&g, 0.01, 0.5);
        (a.m, a.v, a.t) = (m0.copy(), v0.copy(), 3);
        let kids = children(&nets, &g, &mut a, &dp, &z, &ALL);
        assert_eq!(kids.size(), vec![6, gl.n]);
        assert_eq!(a.m.size(), vec![6, gl.n]);
        for i in 0..2i64 {
            for (j, loss) in ALL.iter().enumerate() {
                let k = i * 3 + j as i64;
                let gi = leaf(&g.narrow(0, i, 1));
                let lg = d_forward(&dl, &ds, &dp.narrow(0, i, 1), &g_forward(&gl, &gs, &gi, &z));
                loss.cols(&lg).sum(Kind::Float).backward();
                let mut ai = Adam::new(&gi, 0.01, 0.5);
                (ai.m, ai.v, ai.t) = (m0.narrow(0, i, 1).copy(), v0.narrow(0, i, 1).copy(), 3);
                let want = ai.step(&gi, &gi.grad());
                let got = kids.narrow(0, k, 1);
                assert!(got.allclose(&want, 1e-5, 1e-6, false), "child {k}");
                assert!(a.m.narrow(0, k, 1).allclose(&ai.m, 1e-5, 1e-7, false));
                assert!(!got.equal(&g.narrow(0, i, 1)), "child {k} moved");
            }
        }
        // the losses pull differently: siblings differ
        assert!(!kids
            .narrow(0, 0, 1)
            .allclose(&kids.narrow(0, 1, 1), 1e-6, 1e-7, false));
    }

    #[test]
    fn batched_fitness_equals_a_loop_over_children_and_discriminators() {
        tch::manual_seed(6);
        let (n, q, b) = (3i64, 2i64, 5i64);
        let (gl, gs, dl, ds, g, d) = tiny(n, q);
        let nets = Nets {
            gl: &gl,
            gs: &gs,
            dl: &dl,
            ds: &ds,
        };
        let fakes = g_forward(
            &gl,
            &gs,
            &g,
            &Tensor::randn([b, 4], (Kind::Float, Device::Cpu)),
        );
        let real = Tensor::rand([b, 1, 28, 28], (Kind::Float, Device::Cpu)) * 2.0 - 1.0;
        let (fq, fd) = child_fitness(&nets, &d, &fakes, &real, true);
        let (fq0, none) = child_fitness(&nets, &d, &fakes, &real, false);
        assert!(none.is_none());
        assert!(fq.allclose(&fq0, 1e-9, 1e-12, false));
        let fd = fd.unwrap();
        assert_eq!(fd.size(), vec![n]);
        for k in 0..n {
            let (mut q_sum, mut d_sum) = (0.0, 0.0);
            for j in 0..q {
                let dj = leaf(&d.narrow(0, j, 1));
                let fk = fakes.narrow(1, k, 1).detach();
                let lf = d_forward(&dl, &ds, &dj, &fk);
                let lr = d_forward(&dl, &ds, &dj, &real);
                (bce_cols(&lr, 1.0) + bce_cols(&lf, 0.0))
                    .sum(Kind::Float)
                    .backward();
                let norm = dj.grad().to_kind(Kind::Double).norm().double_value(&[]);
                q_sum += lf.sigmoid().mean(Kind::Double).double_value(&[]);
                d_sum += -norm.ln();
            }
            let (wq, wd) = (q_sum / q as f64, d_sum / q as f64);
            let (gq, gd) = (fq.double_value(&[k]), fd.double_value(&[k]));
            assert!((gq - wq).abs() < 1e-5, "F_q of child {k}: {gq} vs {wq}");
            assert!(
                (gd - wd).abs() < 1e-4 * wd.abs().max(1.0),
                "F_d of child {k}: {gd} vs {wd}"
            );
        }
        // the children differ in diversity, so the term can change a ranking
        assert!(fd.std(false).double_value(&[]) > 0.0);
    }
}
