//! Functional networks over stacked weights: a population of P networks is one `[P, N]` tensor
//! of flat weight vectors (the genomes), a [`Layout`] names the slices, and the layers below run
//! all P networks in one call (grouped convolutions with `groups = P`, `bmm`, batch norm whose
//! per-channel statistics are per individual because every individual has its own channels).
//! With P = 1 the same functions are the plain single-network layers: the per-individual
//! reference loop calls them on one row at a time.
use tch::{Kind, Tensor};

/// Named parameter shapes packed one after another in a flat weight vector.
#[derive(Clone, Debug)]
pub struct Layout {
    pub specs: Vec<(String, Vec<i64>)>,
    pub offsets: Vec<i64>,
    pub n: i64,
}

impl Layout {
    pub fn new(specs: Vec<(String, Vec<i64>)>) -> Self {
        let mut offsets = Vec::with_capacity(specs.len());
        let mut n = 0;
        for (_, shape) in &specs {
            offsets.push(n);
            n += shape.iter().product::<i64>();
        }
        Layout { specs, offsets, n }
    }
    pub fn numel(&self, k: usize) -> i64 {
        self.specs[k].1.iter().product()
    }
    /// Parameter `k` of every row of `g` (`[P, N]`) as `[P, shape..]`.
    pub fn param(&self, g: &Tensor, k: usize) -> Tensor {
        let p = g.size()[0];
        let mut shape = vec![p];
        shape.extend(&self.specs[k].1);
        g.narrow(1, self.offsets[k], self.numel(k)).reshape(shape)
    }
    /// Index of the parameter called `name`.
    pub fn index(&self, name: &str) -> usize {
        self.specs
            .iter()
            .position(|(n, _)| n == name)
            .unwrap_or_else(|| panic!("no parameter {name}"))
    }
    pub fn get(&self, g: &Tensor, name: &str) -> Tensor {
        self.param(g, self.index(name))
    }
    /// Gene ranges `[start, end)` of every parameter tensor (for per-tensor crossover).
    pub fn ranges(&self) -> Vec<(usize, usize)> {
        (0..self.specs.len())
            .map(|k| {
                let s = self.offsets[k] as usize;
                (s, s + self.numel(k) as usize)
            })
            .collect()
    }
}

/// Grouped convolution: `x` `[B, P*Cin, H, W]`, `w` `[P, Cout, Cin, k, k]` -> `[B, P*Cout, H', W']`.
pub fn gconv(x: &Tensor, w: &Tensor, stride: i64, pad: i64) -> Tensor {
    let s = w.size();
    let p = s[0];
    x.conv2d(
        &w.reshape([p * s[1], s[2], s[3], s[4]]),
        None::<Tensor>,
        [stride, stride],
        [pad, pad],
        [1, 1],
        p,
    )
}

/// Grouped transposed convolution: `x` `[B, P*Cin, H, W]`, `w` `[P, Cin, Cout, k, k]`.
pub fn gconv_t(x: &Tensor, w: &Tensor, stride: i64, pad: i64) -> Tensor {
    let s = w.size();
    let p = s[0];
    x.conv_transpose2d(
        &w.reshape([p * s[1], s[2], s[3], s[4]]),
        None::<Tensor>,
        [stride, stride],
        [pad, pad],
        [0, 0],
        p,
        [1, 1],
    )
}

/// Batch norm with batch statistics (training mode, no running averages): `x` `[B, P*C, H, W]`,
/// `gamma`, `beta` `[P, C]`. Statistics are per channel, so per individual.
pub fn gbn(x: &Tensor, gamma: &Tensor, beta: &Tensor) -> Tensor {
    x.batch_norm(
        Some(gamma.reshape([-1])),
        Some(beta.reshape([-1])),
        None::<Tensor>,
        None::<Tensor>,
        true,
        0.1,
        1e-5,
        false,
    )
}

/// Batch norm with fixed statistics `mean`, `var` `[P*C]` (the exported, eval-mode network).
pub fn gbn_fixed(x: &Tensor, gamma: &Tensor, beta: &Tensor, mean: &Tensor, var: &Tensor) -> Tensor {
    x.batch_norm(
        Some(gamma.reshape([-1])),
        Some(beta.reshape([-1])),
        Some(mean.shallow_clone()),
        Some(var.shallow_clone()),
        false,
        0.1,
        1e-5,
        false,
    )
}

/// Per-channel mean and (biased) variance of `[B, C, H, W]`, what batch norm normalises with.
pub fn channel_stats(x: &Tensor) -> (Tensor, Tensor) {
    let mean = x.mean_dim([0i64, 2, 3].as_slice(), false, x.kind());
    let var = x.var_correction([0i64, 2, 3].as_slice(), 0, false);
    (mean, var)
}

pub fn leaky_relu(x: &Tensor, slope: f64) -> Tensor {
    x.maximum(&(x * slope))
}

/// Mean binary cross-entropy of `logits` against a constant target, per column: `[B, P]` -> `[P]`.
pub fn bce_cols(logits: &Tensor, target: f64) -> Tensor {
    let t = logits.full_like(target);
    logits
        .binary_cross_entropy_with_logits::<Tensor>(&t, None, None, tch::Reduction::None)
        .mean_dim(0, false, Kind::Float)
}

/// Adam on a stacked `[P, N]` parameter tensor. Adam is elementwise, so this is P independent
/// optimisers; after a generation each child inherits its first parent's moments (`select`).
pub struct Adam {
    pub m: Tensor,
    pub v: Tensor,
    pub t: i64,
    pub lr: f64,
    pub beta1: f64,
    pub beta2: f64,
    /// Per-row learning rates `[P, 1]` (an evolved hyperparameter); `None`: `lr` for all.
    pub lr_rows: Option<Tensor>,
    /// Per-row beta1 `[P, 1]` in f64 (population-based training's); `None`: `beta1` for all.
    pub beta1_rows: Option<Tensor>,
}

impl Adam {
    pub fn new(params: &Tensor, lr: f64, beta1: f64) -> Self {
        Adam {
            m: params.zeros_like(),
            v: params.zeros_like(),
            t: 0,
            lr,
            beta1,
            beta2: 0.999,
            lr_rows: None,
            beta1_rows: None,
        }
    }
    /// Gives every row its own learning rate, starting at `lr`.
    pub fn per_row_lr(mut self) -> Self {
        let p = self.m.size()[0];
        self.lr_rows = Some(Tensor::full(
            [p, 1],
            self.lr,
            (Kind::Float, self.m.device()),
        ));
        self
    }
    /// Gives every row its own beta1, starting at `beta1`.
    pub fn per_row_beta1(mut self) -> Self {
        let p = self.m.size()[0];
        let opts = (Kind::Double, self.m.device());
        self.beta1_rows = Some(Tensor::full([p, 1], self.beta1, opts));
        self
    }
    /// One step: returns the updated parameters (detached) given the gradient `g`.
    pub fn step(&mut self, params: &Tensor, g: &Tensor) -> Tensor {
        let _guard = tch::no_grad_guard();
        self.t += 1;
        self.v = &self.v * self.beta2 + (g * g) * (1.0 - self.beta2);
        let bc2 = 1.0 - self.beta2.powi(self.t as i32);
        let mhat = match &self.beta1_rows {
            Some(b1) => {
                // each row's own beta1 and bias correction 1 - beta1^t, in f32 like the rest
                let k = self.m.kind();
                let bc1 = (b1.pow_tensor_scalar(self.t).neg() + 1.0).to_kind(k);
                let b1 = b1.to_kind(k);
                self.m = &self.m * &b1 + g * (b1.neg() + 1.0);
                &self.m / bc1
            }
            None => {
                self.m = &self.m * self.beta1 + g * (1.0 - self.beta1);
                &self.m / (1.0 - self.beta1.powi(self.t as i32))
            }
        };
        let step = mhat / ((&self.v / bc2).sqrt() + 1e-8);
        match &self.lr_rows {
            Some(lr) => params.detach() - step * lr,
            None => params.detach() - step * self.lr,
        }
    }
    /// Keeps the rows `idx` (the moments follow the individuals through selection).
    pub fn select(&mut self, idx: &Tensor) {
        self.m = self.m.index_select(0, idx);
        self.v = self.v.index_select(0, idx);
        if let Some(lr) = &self.lr_rows {
            self.lr_rows = Some(lr.index_select(0, idx));
        }
        if let Some(b1) = &self.beta1_rows {
            self.beta1_rows = Some(b1.index_select(0, idx));
        }
    }
    /// Population-based-training "explore": multiplies the learning rate of every row from
    /// `first` on (the children) by 0.8 or 1.25, at random, within [1e-6, 0.1].
    pub fn perturb_lr(&mut self, first: usize, rng: &mut crate::ga::GaRng) {
        use rand::Rng;
        if let Some(lr) = &self.lr_rows {
            let p = lr.size()[0] as usize;
            let f: Vec<f32> = (0..p)
                .map(|i| match (i < first, rng.random::<bool>()) {
                    (true, _) => 1.0,
                    (false, true) => 1.25,
                    (false, false) => 0.8,
                })
                .collect();
            let f = Tensor::from_slice(&f).to_device(lr.device()).view([-1, 1]);
            self.lr_rows = Some((lr * f).clamp(1e-6, 0.1));
        }
    }
    /// The learning rate of each row.
    pub fn lrs(&self) -> Vec<f64> {
        rows_or(&self.lr_rows, self.lr, self.m.size()[0] as usize)
    }
    /// The beta1 of each row.
    pub fn beta1s(&self) -> Vec<f64> {
        rows_or(&self.beta1_rows, self.beta1, self.m.size()[0] as usize)
    }
}

/// The values of a per-row hyperparameter `[P, 1]`, or `all` P times.
fn rows_or(rows: &Option<Tensor>, all: f64, p: usize) -> Vec<f64> {
    match rows {
        Some(r) => Vec::<f64>::try_from(
            r.to_kind(Kind::Double)
                .view([-1])
                .to_device(tch::Device::Cpu),
        )
        .unwrap_or_else(|_| vec![all; p]),
        None => vec![all; p],
    }
}

/// Rows of `[P, N]` as a leaf tensor that records gradients.
pub fn leaf(g: &Tensor) -> Tensor {
    g.detach().set_requires_grad(true)
}

#[cfg(test)]
mod tests {
    use super::*;
    use tch::Device;

    #[test]
    fn layout_slices_round_trip() {
        let l = Layout::new(vec![("a".into(), vec![2, 3]), ("b".into(), vec![4])]);
        assert_eq!(l.n, 10);
        let g = Tensor::arange(20, (Kind::Float, Device::Cpu)).view([2, 10]);
        let b = l.get(&g, "b");
        assert_eq!(b.size(), vec![2, 4]);
        assert_eq!(b.double_value(&[1, 0]), 16.0);
        assert_eq!(l.ranges(), vec![(0, 6), (6, 10)]);
    }

    #[test]
    fn stacked_adam_equals_separate_adams() {
        tch::manual_seed(3);
        let p = Tensor::randn([3, 5], (Kind::Float, Device::Cpu));
        let mut a = Adam::new(&p, 0.1, 0.5);
        let mut cur = p.shallow_clone();
        let mut rows: Vec<(Adam, Tensor)> = (0..3)
            .map(|i| (Adam::new(&p.narrow(0, i, 1), 0.1, 0.5), p.narrow(0, i, 1)))
            .collect();
        for _ in 0..4 {
            let g = Tensor::randn([3, 5], (Kind::Float, Device::Cpu));
            cur = a.step(&cur, &g);
            for (i, (ai, ri)) in rows.iter_mut().enumerate() {
                *ri = ai.step(ri, &g.narrow(0, i as i64, 1));
            }
        }
        let sep = Tensor::cat(
            &rows.iter().map(|r| r.1.shallow_clone()).collect::<Vec<_>>(),
            0,
        );
        assert!(cur.allclose(&sep, 1e-6, 1e-6, false));
    }

    #[test]
    fn per_row_learning_rates_follow_selection_and_explore() {
        use rand::SeedableRng;
        tch::manual_seed(4);
        let p = Tensor::randn([3, 5], (Kind::Float, Device::Cpu));
        let g = Tensor::randn([3, 5], (Kind::Float, Device::Cpu));
        let mut a = Adam::new(&p, 0.1, 0.5).per_row_lr();
        a.lr_rows = Some(Tensor::from_slice(&[0.001f32, 0.002, 0.004]).view([3, 1]));
        // row i steps as a scalar Adam with lr_i would
        let next = a.step(&p, &g);
        for (i, lr) in [0.001, 0.002, 0.004].into_iter().enumerate() {
            let mut ai = Adam::new(&p.narrow(0, i as i64, 1), lr, 0.5);
            let ri = ai.step(&p.narrow(0, i as i64, 1), &g.narrow(0, i as i64, 1));
            assert!(next.narrow(0, i as i64, 1).allclose(&ri, 1e-6, 1e-6, false));
        }
        // selection carries the rates along; explore leaves the survivors and scales children
        a.select(&Tensor::from_slice(&[2i64, 2, 0]));
        assert_eq!(
            a.lrs()
                .iter()
                .map(|v| (v * 1e3).round())
                .collect::<Vec<_>>(),
            [4.0, 4.0, 1.0]
        );
        let mut rng = crate::ga::GaRng::seed_from_u64(1);
        let mut seen = std::collections::HashSet::new();
        for _ in 0..8 {
            let before = a.lrs();
            a.perturb_lr(1, &mut rng);
            let after = a.lrs();
            assert!(
                (after[0] - before[0]).abs() < 1e-9,
                "the survivor keeps its rate"
            );
            for i in 1..3 {
                let r = after[i] / before[i];
                assert!((r - 1.25).abs() < 1e-4 || (r - 0.8).abs() < 1e-4, "{r}");
                seen.insert((r * 100.0).round() as i64);
            }
        }
        assert_eq!(seen.len(), 2, "both directions are drawn");
    }
}
