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
pub use super::mlp::*;
pub use super::strokes::{add_strokes, stroke, StrokeMutation};
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
        })?;
        // the same MLP as PyTorch Linear layers (weights [out, in]) for python/neuroevo_torch.py
        let n = self.gl.specs.len() / 2;
        let mut named: Vec<(String, Tensor)> = Vec::new();
        for k in 0..n {
            let wk = self
                .gl
                .get(&best, &format!("w{k}"))
                .squeeze_dim(0)
                .tr()
                .contiguous();
            let bk = self
                .gl
                .get(&best, &format!("b{k}"))
                .squeeze_dim(0)
                .contiguous();
            named.push((format!("layers.{k}.weight"), wk));
            named.push((format!("layers.{k}.bias"), bk));
        }
        let wpath = path.with_extension("safetensors");
        crate::fsutil::write_torch_file(&wpath, |tmp| {
            Tensor::write_safetensors(&named, tmp)
                .map_err(|e| crate::error::Error::Other(format!("{}: {e}", wpath.display())))
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
