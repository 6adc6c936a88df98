//! `--mode weights`: the "genetic algorithms to optimise GANs" notebook, as it was meant.
//!
//! Generators are MLPs (latent -> hidden sigmoid layers -> C*H*W sigmoid) whose flat weight
//! vectors are the genomes (`--hidden-activation softmax`: hidden layers that pick among their
//! units, see [`HiddenActivation`]); no gradient ever touches a generator. One discriminator (Conv 64
//! 3x3/2 - LeakyReLU 0.2 - Dropout 0.4 - Conv 64 3x3/2 - LeakyReLU 0.2 - Dropout 0.4 - linear)
//! is trained with Adam (2e-4, beta1 0.5) on real images against fakes of the current
//! population. Each generation: the whole population is evaluated in one batched pass (`bmm`
//! over stacked weights), the discriminator takes its steps, the top fraction is kept and the
//! rest refilled by single-point crossover and mutation of the flat vectors.
//!
//! Fitness (`--fitness`): `logit` (default) is the mean pre-sigmoid discriminator output on the
//! generator's fakes, which keeps ranking generators after the discriminator has won (its
//! probabilities are then all ≈ 0 and tie); `prob` is the notebook's mean D(G(z)); `features`
//! is feature matching on the discriminator's penultimate layer (see [`feature_matching`]).
//!
//! Stroke mutation (`--stroke-mutation N`, see [`add_strokes`]): after the GA's own operators,
//! each child gets N strokes (line segments with a Gaussian profile) added to one hidden
//! unit's row of its output weights, so that what selection keeps are connected lines of
//! pixels rather than single-pixel speckle.
//!
//! The notebook's bugs, not reproduced: it rebuilt a random population every generation
//! (nothing was inherited), sorted fitness ascending (kept the worst), and misspelled calls.
use super::func::{bce_cols, leaf, Adam, Layout};
use super::{GanModel, GenStats, RealStream};
use crate::error::Result;
use crate::ga::selection::argbest;
use crate::ga::Evolver;
use crate::ga::GaRng;
use serde::{Deserialize, Serialize};
use std::collections::HashMap;
use std::path::Path;
use tch::{Device, Kind, Tensor};

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "snake_case")]
pub enum WeightsFitness {
    /// Mean discriminator logit of the generator's fakes (keeps ranking when D wins).
    Logit,
    /// Mean D(G(z)), the notebook's literal fitness (saturates at 0 once D wins).
    Prob,
    /// Feature matching: minus the squared distance between the mean and standard deviation
    /// of the discriminator's penultimate features on the generator's fakes and on a real batch
    /// (Salimans et al. 2016). Does not saturate when D wins, and rewards looking like the data
    /// as a whole rather than fooling D with one image.
    Features,
}

/// How the generators' weights start.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "kebab-case")]
pub enum GeneratorInit {
    /// Glorot-uniform matrices and zero biases (Keras' default, the notebook's).
    #[default]
    Glorot,
    /// Glorot matrices, and output biases set to the logit of the mean real image (clamped to
    /// [0.02, 0.98]), so that every generator starts as the data's average image plus
    /// z-dependent noise: the black background of MNIST is given, not evolved.
    DataMean,
}

/// The generators' hidden activation (`--hidden-activation`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "kebab-case")]
pub enum HiddenActivation {
    /// Sigmoid (the notebook's): every z mixes all hidden units' output images with weights
    /// near 0.5, so samples are superpositions of every image the output layer holds.
    #[default]
    Sigmoid,
    /// Softmax over the units of a hidden layer at `--softmax-temperature`: the weights sum to
    /// 1 and a few units dominate for each z, so the output layer holds one image per unit and
    /// z picks (a blend of) a few of them.
    Softmax,
}

/// A hidden activation with its parameter, as the forward functions apply it.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Act {
    Sigmoid,
    /// Softmax of `a / temperature` over the last dimension (the units).
    Softmax(f64),
}

impl Act {
    fn apply(self, a: Tensor) -> Tensor {
        match self {
            Act::Sigmoid => a.sigmoid(),
            Act::Softmax(t) => {
                let kind = a.kind();
                (a / t).softmax(-1, kind)
            }
        }
    }
}

fn default_temperature() -> f64 {
    0.5
}

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct WeightsConfig {
    pub latent_dim: i64,
    pub hidden: Vec<i64>,
    pub fitness: WeightsFitness,
    /// Discriminator Adam steps per training generation.
    pub d_steps: usize,
    /// Train the discriminator every this many generations.
    pub d_every: u64,
    pub d_channels: i64,
    /// The discriminator sees each generator's minibatch standard deviation.
    #[serde(default)]
    pub minibatch_std: bool,
    /// Discriminator steps on real images against the initial population's fakes before the
    /// first generation (so that feature matching starts on learnt features).
    #[serde(default)]
    pub d_warmup: usize,
    #[serde(default)]
    pub g_init: GeneratorInit,
    /// Real images per fitness evaluation (0: as many as each generator's fakes).
    #[serde(default)]
    pub real_batch: i64,
    /// Stroke mutation of the output layer (count 0: off).
    #[serde(default)]
    pub strokes: StrokeMutation,
    #[serde(default)]
    pub hidden_activation: HiddenActivation,
    /// Temperature of the softmax hidden activation (lower: each z picks fewer units).
    #[serde(default = "default_temperature")]
    pub softmax_temperature: f64,
}

impl WeightsConfig {
    /// The hidden activation the forward functions apply.
    pub fn act(&self) -> Act {
        match self.hidden_activation {
            HiddenActivation::Sigmoid => Act::Sigmoid,
            HiddenActivation::Softmax => Act::Softmax(self.softmax_temperature),
        }
    }
}

/// Layout of a generator MLP `[latent, hidden.., out]`: `w{l}` `[in, out]`, `b{l}` `[out]`.
pub fn generator_layout(latent: i64, hidden: &[i64], out: i64) -> Layout {
    let mut sizes = vec![latent];
    sizes.extend(hidden);
    sizes.push(out);
    let mut specs = Vec::new();
    for (l, w) in sizes.windows(2).enumerate() {
        specs.push((format!("w{l}"), vec![w[0], w[1]]));
        specs.push((format!("b{l}"), vec![w[1]]));
    }
    Layout::new(specs)
}

fn layers(l: &Layout) -> usize {
    l.specs.len() / 2
}

/// `act` for hidden layers, sigmoid for the output layer (pixels in [0, 1]).
fn layer_act(l: &Layout, k: usize, act: Act) -> Act {
    if k + 1 == layers(l) {
        Act::Sigmoid
    } else {
        act
    }
}

/// All P generators at once: `g` `[P, N]`, `z` `[B, latent]` (shared) -> `[P, B, out]`.
pub fn g_forward_batched(l: &Layout, act: Act, g: &Tensor, z: &Tensor) -> Tensor {
    let p = g.size()[0];
    let s = z.size();
    let mut h = z.unsqueeze(0).expand([p, s[0], s[1]], false);
    for k in 0..layers(l) {
        let w = l.get(g, &format!("w{k}"));
        let b = l.get(g, &format!("b{k}"));
        h = layer_act(l, k, act).apply(b.unsqueeze(1).baddbmm(&h, &w, 1.0, 1.0));
    }
    h
}

/// One generator (`g` `[1, N]`): `[B, latent]` -> `[B, out]`. Batch-size free (for export).
pub fn g_forward_one(l: &Layout, act: Act, g: &Tensor, z: &Tensor) -> Tensor {
    let mut h = z.shallow_clone();
    for k in 0..layers(l) {
        let w = l.get(g, &format!("w{k}")).squeeze_dim(0);
        let b = l.get(g, &format!("b{k}")).squeeze_dim(0);
        h = layer_act(l, k, act).apply(h.matmul(&w) + b);
    }
    h
}

/// The per-individual reference of [`g_forward_batched`].
pub fn g_forward_loop(l: &Layout, act: Act, g: &Tensor, z: &Tensor) -> Tensor {
    let p = g.size()[0];
    let outs: Vec<Tensor> = (0..p)
        .map(|i| g_forward_one(l, act, &g.narrow(0, i, 1), z))
        .collect();
    Tensor::stack(&outs, 0)
}

/// The discriminator's layout for `[C, H, W]` images and `ch` channels; with `mbstd`, the
/// linear layer reads one more feature, the minibatch standard deviation.
pub fn d_layout(shape: [i64; 3], ch: i64, mbstd: bool) -> Layout {
    let [c, h, w] = shape;
    let down = |s: i64| (s - 1) / 2 + 1;
    let feat = ch * down(down(h)) * down(down(w)) + mbstd as i64;
    Layout::new(vec![
        ("c1w".into(), vec![ch, c, 3, 3]),
        ("c1b".into(), vec![ch]),
        ("c2w".into(), vec![ch, ch, 3, 3]),
        ("c2b".into(), vec![ch]),
        ("lw".into(), vec![feat, 1]),
        ("lb".into(), vec![1]),
    ])
}

/// Discriminator logits `[B]` of images `[B, C, H, W]` in [0, 1]. With the minibatch-stddev
/// feature (ProGAN's), consecutive groups of `group` images (one generator's fakes) get the mean
/// over features of their standard deviation across the group as one more input, so a
/// generator whose images do not vary with z (mode collapse) is told apart.
pub fn d_forward(l: &Layout, d: &Tensor, x: &Tensor, train: bool, group: i64) -> Tensor {
    d_head(l, d, &d_features(l, d, x, train), group)
}

/// The discriminator up to its penultimate layer: `x` `[N, C, H, W]` -> `[N, 64 * H/4 * W/4]`.
pub fn d_features(l: &Layout, d: &Tensor, x: &Tensor, train: bool) -> Tensor {
    let p = |n: &str| l.get(d, n).squeeze_dim(0);
    let x = x.conv2d(&p("c1w"), Some(p("c1b")), [2, 2], [1, 1], [1, 1], 1);
    let x = super::func::leaky_relu(&x, 0.2).dropout(0.4, train);
    let x = x.conv2d(&p("c2w"), Some(p("c2b")), [2, 2], [1, 1], [1, 1], 1);
    let x = super::func::leaky_relu(&x, 0.2).dropout(0.4, train);
    x.flatten(1, -1)
}

/// The discriminator's last layer on [`d_features`]: `[N, K]` -> logits `[N]` (with the
/// minibatch standard deviation over groups of `group` when the layout has it).
pub fn d_head(l: &Layout, d: &Tensor, f: &Tensor, group: i64) -> Tensor {
    let p = |n: &str| l.get(d, n).squeeze_dim(0);
    let mut f = f.shallow_clone();
    let lw = p("lw");
    if lw.size()[0] == f.size()[1] + 1 {
        let (n, k) = (f.size()[0], f.size()[1]);
        let g = group.clamp(1, n);
        let sd = (f.view([n / g, g, k]).var_dim(1, false, false) + 1e-8)
            .sqrt()
            .mean_dim(1, true, Kind::Float); // [n/g, 1]
        let sd = sd.unsqueeze(1).expand([n / g, g, 1], false).reshape([n, 1]);
        f = Tensor::cat(&[f, sd], 1);
    }
    (f.matmul(&lw) + p("lb")).view([-1])
}

/// Feature-matching fitness of each generator: `fake` `[P, B, K]`, `real` `[B', K]` -> `[P]`
/// (double), minus the squared distance of the per-feature means plus that of the per-feature
/// standard deviations, averaged over the K features.
pub fn feature_matching(fake: &Tensor, real: &Tensor) -> Tensor {
    let k = real.size()[1] as f64;
    let (fm, fs) = (
        fake.mean_dim(1, false, Kind::Double),
        fake.to_kind(Kind::Double).std_dim(1, false, false),
    );
    let (rm, rs) = (
        real.mean_dim(0, true, Kind::Double),
        real.to_kind(Kind::Double).std_dim(0, false, true),
    );
    let d = (fm - rm).square().sum_dim_intlist(1, false, Kind::Double)
        + (fs - rs).square().sum_dim_intlist(1, false, Kind::Double);
    d / (-k)
}

/// A stroke on an `h x w` canvas (row-major, values in [0, 1]): a line segment of random
/// centre (in the middle 60% of the canvas), angle and length (3-12 px), drawn with a Gaussian
/// profile of standard deviation `width` pixels across it.
pub fn stroke(h: i64, w: i64, width: f64, rng: &mut GaRng) -> Vec<f32> {
    use rand::Rng;
    let (cy, cx) = (
        rng.random_range(0.2..0.8) * h as f64,
        rng.random_range(0.2..0.8) * w as f64,
    );
    let a = rng.random_range(0.0..std::f64::consts::PI);
    let half = rng.random_range(1.5..6.0);
    let (dy, dx) = (a.sin(), a.cos());
    let mut out = Vec::with_capacity((h * w) as usize);
    for y in 0..h {
        for x in 0..w {
            let (py, px) = (y as f64 - cy, x as f64 - cx);
            // distance to the nearest point of the segment
            let t = (py * dy + px * dx).clamp(-half, half);
            let d2 = (py - t * dy).powi(2) + (px - t * dx).powi(2);
            out.push((-d2 / (2.0 * width * width)).exp() as f32);
        }
    }
    out
}

/// Stroke mutation (`--stroke-mutation`): a mutation operator for the output layer of image
/// generators. The output weights `[hidden, C*H*W]` hold one image per hidden unit, which the
/// generator mixes (sigmoid of the weighted sum) for each z. Per-weight noise changes single
/// pixels, whose effect on the fitness is below its noise, and builds speckle; a stroke changes
/// a connected line of pixels at once, so selection sees it and what accumulates is strokes.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct StrokeMutation {
    /// Strokes added to each child (0: off).
    pub count: usize,
    /// Standard deviation of a stroke's amplitude (in logits, per channel).
    pub sigma: f64,
    /// Standard deviation of a stroke's profile across it, in pixels.
    pub width: f64,
}

impl Default for StrokeMutation {
    fn default() -> Self {
        StrokeMutation {
            count: 0,
            sigma: 3.0,
            width: 1.2,
        }
    }
}

/// Adds `m.count` strokes, each of amplitude N(0, sigma^2) per channel, to the output weights
/// of a random hidden unit of every child (rows `first..P` of `g` `[P, N]`); the weights stay
/// within ±10. Rows before `first` (the survivors) are left as they are.
pub fn add_strokes(
    l: &Layout,
    g: &mut Tensor,
    first: i64,
    m: &StrokeMutation,
    shape: [i64; 3],
    rng: &mut GaRng,
) {
    use rand::Rng;
    use rand_distr::Distribution;
    let k = l.specs.len() - 2; // the last weight matrix, [hidden, out]
    let (hidden, out) = (l.specs[k].1[0], l.specs[k].1[1]);
    let [c, h, w] = shape;
    debug_assert_eq!(out, c * h * w);
    let normal = rand_distr::Normal::new(0.0, m.sigma).expect("sigma > 0, validated");
    let p = g.size()[0];
    if first >= p {
        return;
    }
    // all children's strokes drawn on the CPU, then added in one accumulating index_put_
    let mut rows = Vec::new();
    let mut cols = Vec::new();
    let mut vals = Vec::new();
    for r in first..p {
        for _ in 0..m.count {
            let j = rng.random_range(0..hidden);
            let s = stroke(h, w, m.width, rng);
            for ch in 0..c {
                let a = normal.sample(rng) as f32;
                let base = l.offsets[k] + j * out + ch * h * w;
                for (i, v) in s.iter().enumerate() {
                    if *v > 1e-4 {
                        rows.push(r);
                        cols.push(base + i as i64);
                        vals.push(v * a);
                    }
                }
            }
        }
    }
    let dev = g.device();
    let idx = [
        Some(Tensor::from_slice(&rows).to_device(dev)),
        Some(Tensor::from_slice(&cols).to_device(dev)),
    ];
    let _ = g.index_put_(&idx, &Tensor::from_slice(&vals).to_device(dev), true);
    let k_n = l.numel(k);
    let mut wk = g.narrow(0, first, p - first).narrow(1, l.offsets[k], k_n);
    let _ = wk.clamp_(-10.0, 10.0);
}

/// `[P, N]` weights: Glorot-uniform matrices (Keras' default, as in the notebook), zero biases.
pub fn init_generators(l: &Layout, p: i64, device: Device) -> Tensor {
    let parts: Vec<Tensor> = l
        .specs
        .iter()
        .map(|(name, shape)| {
            let n: i64 = shape.iter().product();
            if name.starts_with('w') {
                let a = (6.0 / (shape[0] + shape[1]) as f64).sqrt();
                Tensor::empty([p, n], (Kind::Float, device)).uniform_(-a, a)
            } else {
                Tensor::zeros([p, n], (Kind::Float, device))
            }
        })
        .collect();
    Tensor::cat(&parts, 1)
}

/// Sets the last layer's bias of every generator in `g` (`[P, N]`) to `bias` (`[out]`).
pub fn set_output_bias(l: &Layout, g: &mut Tensor, bias: &Tensor) {
    let k = l.specs.len() - 1;
    let p = g.size()[0];
    let n = l.numel(k);
    g.narrow(1, l.offsets[k], n)
        .copy_(&bias.view([1, n]).expand([p, n], false));
}

/// PyTorch's default: uniform ±1/sqrt(fan_in) for weights and biases.
pub fn init_discriminator(l: &Layout, device: Device) -> Tensor {
    let fan_in = |name: &str| -> i64 {
        let s = &l.specs[l.index(&name.replace('b', "w"))].1;
        match name {
            "lw" | "lb" => s[0],
            _ => s[1] * s[2] * s[3],
        }
    };
    let parts: Vec<Tensor> = l
        .specs
        .iter()
        .map(|(name, shape)| {
            let n: i64 = shape.iter().product();
            let a = 1.0 / (fan_in(name) as f64).sqrt();
            Tensor::empty([1, n], (Kind::Float, device)).uniform_(-a, a)
        })
        .collect();
    Tensor::cat(&parts, 1)
}

pub struct WeightsModel {
    pub cfg: WeightsConfig,
    pub shape: [i64; 3],
    pub gl: Layout,
    pub dl: Layout,
    /// `[P, Ng]`
    pub genomes: Tensor,
    /// `[1, Nd]`
    pub d: Tensor,
    pub d_adam: Adam,
    /// The best generator of the last evaluation, `[1, Ng]`.
    pub best: Tensor,
    pub evolver: Option<Evolver>,
    pub batch: i64,
    pub eval_batch: i64,
}

impl WeightsModel {
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        cfg: WeightsConfig,
        shape: [i64; 3],
        population: i64,
        evolver: Option<Evolver>,
        batch: i64,
        eval_batch: i64,
        lr: f64,
        beta1: f64,
        device: Device,
    ) -> Self {
        let out = shape.iter().product();
        let gl = generator_layout(cfg.latent_dim, &cfg.hidden, out);
        let dl = d_layout(shape, cfg.d_channels, cfg.minibatch_std);
        let genomes = init_generators(&gl, population, device);
        let d = init_discriminator(&dl, device);
        let d_adam = Adam::new(&d, lr, beta1);
        let best = genomes.narrow(0, 0, 1).copy();
        WeightsModel {
            cfg,
            shape,
            gl,
            dl,
            genomes,
            d,
            d_adam,
            best,
            evolver,
            batch,
            eval_batch,
        }
    }

    /// One Adam step of the discriminator: real images against a random batch of `fake_imgs`
    /// (`[P * eval_batch, C, H, W]`, this generation's fakes).
    fn d_step(&mut self, fake_imgs: &Tensor, data: &mut RealStream, rng: &mut GaRng) {
        let p = self.genomes.size()[0];
        let be = self.eval_batch;
        let dev = self.genomes.device();
        let (real, fake) = if self.cfg.minibatch_std {
            // all the fakes of batch/eval_batch random generators (whole groups)
            let k = (self.batch / be).clamp(1, p);
            let who = Tensor::randperm(p, (Kind::Int64, dev)).narrow(0, 0, k);
            let [c, h, w] = self.shape;
            let fake = fake_imgs
                .view([p, be, c, h, w])
                .index_select(0, &who)
                .reshape([-1, c, h, w]);
            (data.next(k * be, rng), fake)
        } else {
            // a random batch of this generation's fakes
            let n = fake_imgs.size()[0];
            let idx = Tensor::randperm(n, (Kind::Int64, dev)).narrow(0, 0, self.batch.min(n));
            (data.next(self.batch, rng), fake_imgs.index_select(0, &idx))
        };
        let d = leaf(&self.d);
        let loss = bce_cols(&d_forward(&self.dl, &d, &real, true, be).view([-1, 1]), 1.0)
            + bce_cols(&d_forward(&self.dl, &d, &fake, true, be).view([-1, 1]), 0.0);
        loss.sum(Kind::Float).backward();
        self.d = self.d_adam.step(&d, &d.grad());
    }

    fn images(&self, flat: &Tensor) -> Tensor {
        let [c, h, w] = self.shape;
        flat.reshape([-1, c, h, w])
    }

    /// The whole population's fakes for a fresh batch of `eval_batch` latents:
    /// `[P * eval_batch, C, H, W]`, generator by generator.
    fn population_fakes(&self) -> Tensor {
        let z = Tensor::randn(
            [self.eval_batch, self.cfg.latent_dim],
            (Kind::Float, self.genomes.device()),
        );
        self.images(&g_forward_batched(
            &self.gl,
            self.cfg.act(),
            &self.genomes,
            &z,
        ))
    }
}

impl GanModel for WeightsModel {
    fn prepare(&mut self, data: &mut RealStream, rng: &mut GaRng) -> Result<()> {
        if self.cfg.g_init == GeneratorInit::DataMean {
            let _g = tch::no_grad_guard();
            let mean = data
                .next(1024, rng)
                .flatten(1, -1)
                .mean_dim(0, false, Kind::Float)
                .clamp(0.02, 0.98)
                .logit(None);
            set_output_bias(&self.gl, &mut self.genomes, &mean);
            self.best = self.genomes.narrow(0, 0, 1).copy();
        }
        Ok(())
    }
    fn generation(
        &mut self,
        data: &mut RealStream,
        rng: &mut GaRng,
        generation: u64,
    ) -> Result<GenStats> {
        let p = self.genomes.size()[0];
        let be = self.eval_batch;
        if generation == 0 && self.cfg.d_warmup > 0 {
            let fakes = {
                let _g = tch::no_grad_guard();
                self.population_fakes()
            };
            for _ in 0..self.cfg.d_warmup {
                self.d_step(&fakes, data, rng);
            }
        }
        let (fake_imgs, logits, real_logits, fit_t) = {
            let _g = tch::no_grad_guard();
            let fakes = self.population_fakes();
            let ff = d_features(&self.dl, &self.d, &fakes, false);
            let logits = d_head(&self.dl, &self.d, &ff, be).view([p, be]);
            let nr = if self.cfg.real_batch > 0 {
                self.cfg.real_batch
            } else {
                be
            };
            let real = data.next(nr, rng);
            let rf = d_features(&self.dl, &self.d, &real, false);
            let real_logits = d_head(&self.dl, &self.d, &rf, be);
            let fit_t = match self.cfg.fitness {
                WeightsFitness::Logit => logits.mean_dim(1, false, Kind::Double),
                WeightsFitness::Prob => logits.sigmoid().mean_dim(1, false, Kind::Double),
                WeightsFitness::Features => feature_matching(&ff.view([p, be, -1]), &rf),
            };
            (fakes, logits, real_logits, fit_t)
        };
        let fitness = Vec::<f64>::try_from(fit_t.to_device(Device::Cpu))?;
        let best = argbest(&fitness);
        self.best = self.genomes.narrow(0, best as i64, 1).copy();
        let lf = logits.reshape([-1, 1]);
        let lr = real_logits.reshape([-1, 1]);
        let stats = GenStats::new(
            lr.sigmoid().mean(Kind::Double).double_value(&[]),
            lf.sigmoid().mean(Kind::Double).double_value(&[]),
            (bce_cols(&lr, 1.0) + bce_cols(&lf, 0.0)).double_value(&[0]),
            bce_cols(&lf, 1.0).double_value(&[0]),
            &fitness,
        );
        // discriminator steps: real batch against a random batch of this generation's fakes
        if self.cfg.d_every > 0 && generation % self.cfg.d_every == 0 {
            for _ in 0..self.cfg.d_steps {
                self.d_step(&fake_imgs, data, rng);
            }
        }
        if let Some(ev) = &self.evolver {
            let _g = tch::no_grad_guard();
            let (next, _, kept) = ev.step_counted(&self.genomes, &fitness, rng)?;
            self.genomes = next;
            if self.cfg.strokes.count > 0 {
                add_strokes(
                    &self.gl,
                    &mut self.genomes,
                    kept as i64,
                    &self.cfg.strokes,
                    self.shape,
                    rng,
                );
            }
        }
        Ok(stats)
    }

    fn sample_best(&self, z: &Tensor) -> Result<Tensor> {
        let _g = tch::no_grad_guard();
        Ok(self.images(&g_forward_one(&self.gl, self.cfg.act(), &self.best, z)))
    }
    fn output_range(&self) -> (f32, f32) {
        (0.0, 1.0)
    }
    fn latent_shape(&self) -> Vec<i64> {
        vec![self.cfg.latent_dim]
    }
    fn tensors(&self) -> Vec<(String, Tensor)> {
        vec![
            ("g".into(), self.genomes.shallow_clone()),
            ("best".into(), self.best.shallow_clone()),
            ("d".into(), self.d.shallow_clone()),
            ("d_m".into(), self.d_adam.m.shallow_clone()),
            ("d_v".into(), self.d_adam.v.shallow_clone()),
            ("d_t".into(), Tensor::from(self.d_adam.t)),
        ]
    }
    fn load_tensors(&mut self, t: &HashMap<String, Tensor>) -> Result<()> {
        let dev = self.genomes.device();
        self.genomes = super::take(t, "g", &self.genomes.size())?.to_device(dev);
        self.best = super::take(t, "best", &self.best.size())?.to_device(dev);
        self.d = super::take(t, "d", &self.d.size())?.to_device(dev);
        self.d_adam.m = super::take(t, "d_m", &self.d.size())?.to_device(dev);
        self.d_adam.v = super::take(t, "d_v", &self.d.size())?.to_device(dev);
        self.d_adam.t = super::take(t, "d_t", &[])?.int64_value(&[]);
        Ok(())
    }
    fn export_best(&self, path: &Path) -> Result<()> {
        let best = self.best.to_device(Device::Cpu);
        let gl = self.gl.clone();
        let act = self.cfg.act();
        let [c, h, w] = self.shape;
        let example = Tensor::zeros([4, self.cfg.latent_dim], (Kind::Float, Device::Cpu));
        let mut vs = tch::nn::VarStore::new(Device::Cpu);
        crate::nn::export::export_traced(&mut vs, &example, path, &|z| {
            g_forward_one(&gl, act, &best, z).reshape([-1, c, h, w])
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn feature_matching_prefers_fakes_that_look_like_the_data() {
        tch::manual_seed(2);
        let dev = Device::Cpu;
        let real = Tensor::randn([64, 5], (Kind::Float, dev)) * 2.0 + 1.0;
        let like = Tensor::randn([1, 64, 5], (Kind::Float, dev)) * 2.0 + 1.0;
        let shifted = Tensor::randn([1, 64, 5], (Kind::Float, dev)) * 2.0 + 3.0;
        let collapsed = Tensor::ones([1, 64, 5], (Kind::Float, dev));
        let f = feature_matching(&Tensor::cat(&[&like, &shifted, &collapsed], 0), &real);
        let f = Vec::<f64>::try_from(f).unwrap();
        assert_eq!(f.len(), 3);
        assert!(f[0] > f[1] && f[0] > f[2], "{f:?}");
        assert!(f.iter().all(|v| *v <= 0.0));
    }

    #[test]
    fn a_stroke_is_a_connected_line_of_bright_pixels() {
        use rand::SeedableRng;
        let mut rng = GaRng::seed_from_u64(3);
        for _ in 0..20 {
            let s = stroke(28, 28, 1.0, &mut rng);
            assert_eq!(s.len(), 784);
            assert!(s.iter().all(|v| (0.0..=1.0).contains(v)));
            let on: Vec<(i64, i64)> = (0..784i64)
                .filter(|&i| s[i as usize] > 0.5)
                .map(|i| (i / 28, i % 28))
                .collect();
            // a segment 3-12 px long, ~2 px wide: more than a dot, far less than the canvas
            assert!(on.len() >= 4 && on.len() <= 60, "{} pixels on", on.len());
            // connected (8-neighbourhood flood fill from the first bright pixel)
            let mut seen = vec![on[0]];
            let mut i = 0;
            while i < seen.len() {
                let (y, x) = seen[i];
                for q in &on {
                    if (q.0 - y).abs() <= 1 && (q.1 - x).abs() <= 1 && !seen.contains(q) {
                        seen.push(*q);
                    }
                }
                i += 1;
            }
            assert_eq!(seen.len(), on.len(), "stroke not connected");
        }
    }

    #[test]
    fn stroke_mutation_changes_only_the_childrens_output_weights() {
        use rand::SeedableRng;
        let dev = Device::Cpu;
        let gl = generator_layout(8, &[6], 2 * 5 * 5);
        let g0 = init_generators(&gl, 4, dev);
        let mut g = g0.copy();
        let m = StrokeMutation {
            count: 3,
            sigma: 2.0,
            width: 1.0,
        };
        add_strokes(&gl, &mut g, 2, &m, [2, 5, 5], &mut GaRng::seed_from_u64(1));
        let diff = (&g - &g0).abs();
        // survivors (rows 0, 1) untouched
        assert_eq!(diff.narrow(0, 0, 2).max().double_value(&[]), 0.0);
        let k = gl.specs.len() - 2;
        let (off, n) = (gl.offsets[k], gl.numel(k));
        let children = diff.narrow(0, 2, 2);
        // nothing outside the output weight matrix changes ...
        assert_eq!(children.narrow(1, 0, off).max().double_value(&[]), 0.0);
        let rest = gl.n - off - n;
        assert_eq!(
            children.narrow(1, off + n, rest).max().double_value(&[]),
            0.0
        );
        // ... and inside it, every child changed, within at most 3 hidden units' rows
        let w = children.narrow(1, off, n).view([2, 6, 50]);
        for r in 0..2 {
            let per_unit = w.get(r).sum_dim_intlist(1, false, Kind::Float);
            let changed = per_unit.gt(0.0).sum(Kind::Int64).int64_value(&[]);
            assert!(
                (1..=3).contains(&changed),
                "child {r}: {changed} units changed"
            );
        }
        assert!(g.narrow(1, off, n).abs().max().double_value(&[]) <= 10.0);
    }

    #[test]
    fn data_mean_init_starts_at_the_mean_real_image() {
        use rand::SeedableRng;
        tch::manual_seed(4);
        let dev = Device::Cpu;
        // 64 images 1x4x4: left half 0.9, right half 0
        let left = Tensor::arange(4, (Kind::Float, dev))
            .lt(2)
            .to_kind(Kind::Float)
            * 0.9;
        let x = left.view([1, 1, 1, 4]).expand([64, 1, 4, 4], false).copy();
        let mut rng = GaRng::seed_from_u64(1);
        let mut data = RealStream::new(x, 0, &mut rng);
        let cfg = WeightsConfig {
            latent_dim: 8,
            hidden: vec![6],
            fitness: WeightsFitness::Features,
            d_steps: 1,
            d_every: 1,
            d_channels: 4,
            minibatch_std: false,
            d_warmup: 0,
            g_init: GeneratorInit::DataMean,
            real_batch: 0,
            strokes: StrokeMutation::default(),
            hidden_activation: HiddenActivation::Sigmoid,
            softmax_temperature: 0.5,
        };
        let mut m = WeightsModel::new(cfg, [1, 4, 4], 3, None, 8, 4, 2e-4, 0.5, dev);
        m.prepare(&mut data, &mut rng).unwrap();
        let z = Tensor::randn([200, 8], (Kind::Float, dev));
        let all = g_forward_batched(&m.gl, Act::Sigmoid, &m.genomes, &z).view([3, 200, 4, 4]);
        let (l, r) = (
            all.narrow(3, 0, 2).mean(Kind::Double).double_value(&[]),
            all.narrow(3, 2, 2).mean(Kind::Double).double_value(&[]),
        );
        assert!(l > 0.8 && r < 0.06, "left {l}, right {r}");
        // the best generator (what sample_best draws) starts the same way
        let best = m.sample_best(&z).unwrap();
        assert!(best.narrow(3, 2, 2).mean(Kind::Double).double_value(&[]) < 0.06);
    }

    #[test]
    fn batched_generators_equal_the_per_individual_loop() {
        tch::manual_seed(5);
        let l = generator_layout(10, &[7, 9], 12);
        let g = init_generators(&l, 6, Device::Cpu)
            + Tensor::randn([6, l.n], (Kind::Float, Device::Cpu)) * 0.1;
        let z = Tensor::randn([5, 10], (Kind::Float, Device::Cpu));
        for act in [Act::Sigmoid, Act::Softmax(0.5)] {
            let a = g_forward_batched(&l, act, &g, &z);
            let b = g_forward_loop(&l, act, &g, &z);
            assert_eq!(a.size(), vec![6, 5, 12]);
            assert!(a.allclose(&b, 1e-5, 1e-6, false), "{act:?}");
            // and the individuals differ (the test would pass trivially on identical rows)
            assert!(!a.get(0).allclose(&a.get(1), 1e-3, 1e-3, false), "{act:?}");
        }
    }

    #[test]
    fn a_sharp_softmax_picks_one_hidden_units_image_per_z() {
        tch::manual_seed(6);
        let dev = Device::Cpu;
        let l = generator_layout(8, &[5], 12);
        let g = init_generators(&l, 1, dev) + Tensor::randn([1, l.n], (Kind::Float, dev));
        let z = Tensor::randn([40, 8], (Kind::Float, dev));
        // the images the output layer holds: sigmoid(b + w_j) for each hidden unit j
        let w = l.get(&g, "w1").squeeze_dim(0); // [5, 12]
        let b = l.get(&g, "b1").squeeze_dim(0); // [12]
        let units = (w + b).sigmoid(); // [5, 12]
                                       // samples (of 40) that are one unit's image
        let picked = |act: Act| -> i64 {
            let x = g_forward_one(&l, act, &g, &z); // [40, 12]
            let d = (x.unsqueeze(1) - units.unsqueeze(0))
                .abs()
                .amax(&[2i64][..], false); // [40, 5]
            d.amin(&[1i64][..], false)
                .lt(1e-3)
                .sum(Kind::Int64)
                .int64_value(&[])
        };
        // at a temperature near 0, every sample is one unit's image ...
        assert_eq!(picked(Act::Softmax(1e-4)), 40);
        // ... at 1, samples are blends (the sigmoid activation never gives a unit's image)
        assert!(picked(Act::Softmax(1.0)) < 40);
        assert_eq!(picked(Act::Sigmoid), 0);
    }

    #[test]
    fn discriminator_shapes() {
        let l = d_layout([1, 28, 28], 8, false);
        let d = init_discriminator(&l, Device::Cpu);
        let x = Tensor::rand([3, 1, 28, 28], (Kind::Float, Device::Cpu));
        assert_eq!(d_forward(&l, &d, &x, false, 3).size(), vec![3]);
        // minibatch stddev: a group of identical images differs from a varied one
        let l = d_layout([1, 28, 28], 8, true);
        let d = init_discriminator(&l, Device::Cpu);
        let same = x.narrow(0, 0, 1).repeat([3, 1, 1, 1]);
        let both = Tensor::cat(&[&x, &same], 0);
        let a = d_forward(&l, &d, &both, false, 3);
        let b = Tensor::cat(
            &[
                d_forward(&l, &d, &x, false, 3),
                d_forward(&l, &d, &same, false, 3),
            ],
            0,
        );
        assert!(a.allclose(&b, 1e-5, 1e-6, false), "groups are independent");
        let one = d_forward(&l, &d, &x.narrow(0, 0, 1), false, 1);
        assert!((a.double_value(&[3]) - one.double_value(&[0])).abs() < 1e-4);
    }
}
