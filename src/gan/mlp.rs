//! The networks of the weights mode, as functions of stacked flat weights: the generator MLPs
//! (batched over the population with `bmm`, and one at a time for reference), the
//! discriminator, feature matching, and their initialisation.
use super::func::Layout;
use tch::{Device, Kind, Tensor};

/// A hidden activation with its parameter, as the forward functions apply it.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Act {
    Sigmoid,
    /// Softmax of `a / temperature` over the last dimension (the units).
    Softmax(f64),
}

impl Act {
    pub(crate) fn apply(self, a: Tensor) -> Tensor {
        match self {
            Act::Sigmoid => a.sigmoid(),
            Act::Softmax(t) => {
                let kind = a.kind();
                (a / t).softmax(-1, kind)
            }
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
