//! A CNN built from an [`Arch`]: skip layers, pooling, optional dense layers, then a linear
//! classifier.
use super::arch::{Arch, Layer, PoolKind};
use super::precision::{channels_last, Precision};
use crate::error::Result;
use tch::nn::{self, Module, ModuleT};
use tch::{Kind, Tensor};

enum Block {
    Skip {
        conv1: nn::Conv2D,
        bn1: nn::BatchNorm,
        conv2: nn::Conv2D,
        bn2: nn::BatchNorm,
        shortcut: nn::Conv2D,
    },
    Pool(PoolKind),
    Fc(nn::Linear),
    Dropout(f64),
}

#[derive(Debug)]
pub struct LayerNet {
    blocks: Vec<Block>,
    head: nn::Linear,
    pub arch: Arch,
    /// `[C, H, W]`
    pub input: [i64; 3],
    pub classes: i64,
    /// Size of the features fed to the classifier.
    pub feature_dim: i64,
    /// What the convolutions compute in; set with [`LayerNet::set_precision`].
    precision: Precision,
}

/// `conv` applied to `x` with its weights cast to `x`'s kind and laid out like `x`; `[B, C, H,
/// W]` -> `[B, C', H, W]` (the kernels are odd and padded to keep the size).
fn conv_as(conv: &nn::Conv2D, x: &Tensor) -> Tensor {
    let k = x.kind();
    let w = channels_last(&conv.ws.to_kind(k));
    let pad = (conv.ws.size()[2] - 1) / 2;
    x.conv2d(
        &w,
        conv.bs.as_ref().map(|b| b.to_kind(k)),
        [1, 1],
        [pad, pad],
        [1, 1],
        1,
    )
}

impl std::fmt::Debug for Block {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Block::Skip { .. } => write!(f, "Skip"),
            Block::Pool(k) => write!(f, "Pool({k:?})"),
            Block::Fc(_) => write!(f, "Fc"),
            Block::Dropout(p) => write!(f, "Dropout({p})"),
        }
    }
}

impl LayerNet {
    /// Builds the network under `p`; fails (a usage error naming the layer) if pooling would
    /// shrink the feature map below 1x1.
    pub fn new(p: &nn::Path, arch: &Arch, input: [i64; 3], classes: i64) -> Result<Self> {
        arch.output_shape(input)?; // checks the layer order and the pooling
        let (mut h, mut w) = (input[1], input[2]);
        let conv3 = nn::ConvConfig {
            padding: 1,
            ..Default::default()
        };
        let mut c = input[0];
        let mut flat: Option<i64> = None;
        let mut blocks = Vec::new();
        for (i, layer) in arch.layers.iter().enumerate() {
            let q = p / format!("l{i}");
            blocks.push(match *layer {
                Layer::Skip { f1, f2 } => {
                    let b = Block::Skip {
                        conv1: nn::conv2d(&q / "conv1", c, f1, 3, conv3),
                        bn1: nn::batch_norm2d(&q / "bn1", f1, Default::default()),
                        conv2: nn::conv2d(&q / "conv2", f1, f2, 3, conv3),
                        bn2: nn::batch_norm2d(&q / "bn2", f2, Default::default()),
                        shortcut: nn::conv2d(&q / "shortcut", c, f2, 1, Default::default()),
                    };
                    c = f2;
                    b
                }
                Layer::Pool { kind } => {
                    h /= 2;
                    w /= 2;
                    Block::Pool(kind)
                }
                Layer::Fc { units } => {
                    let inp = flat.unwrap_or(c * h * w);
                    flat = Some(units);
                    Block::Fc(nn::linear(&q / "fc", inp, units, Default::default()))
                }
                Layer::Dropout { p } => Block::Dropout(p),
            });
        }
        let feature_dim = flat.unwrap_or(c * h * w);
        let head = nn::linear(p / "head", feature_dim, classes, Default::default());
        Ok(LayerNet {
            blocks,
            head,
            arch: arch.clone(),
            input,
            classes,
            feature_dim,
            precision: Precision::Fp32,
        })
    }

    /// Computes in `p` from now on (the weights stay 32-bit either way).
    pub fn set_precision(&mut self, p: Precision) {
        self.precision = p;
    }

    /// `x`: `[B, C, H, W]` -> `[B, feature_dim]`, the input of the classifier (the penultimate
    /// layer, used for FID).
    pub fn features_t(&self, x: &Tensor, train: bool) -> Tensor {
        let mixed = self.precision != Precision::Fp32;
        let mut x = if mixed {
            channels_last(&x.to_kind(self.precision.kind()))
        } else {
            x.shallow_clone()
        };
        let mut flat = false;
        for b in &self.blocks {
            x = match b {
                Block::Skip {
                    conv1,
                    bn1,
                    conv2,
                    bn2,
                    shortcut,
                } => {
                    let conv = |c: &nn::Conv2D, x: &Tensor| {
                        if mixed {
                            conv_as(c, x)
                        } else {
                            c.forward(x)
                        }
                    };
                    let y = conv(conv1, &x).apply_t(bn1, train).relu();
                    let y = conv(conv2, &y).apply_t(bn2, train);
                    (y + conv(shortcut, &x)).relu()
                }
                Block::Pool(PoolKind::Max) => x.max_pool2d([2, 2], [2, 2], [0, 0], [1, 1], false),
                Block::Pool(PoolKind::Avg) => {
                    x.avg_pool2d([2, 2], [2, 2], [0, 0], false, true, None::<i64>)
                }
                Block::Fc(l) => {
                    let inp = if flat { x } else { x.flatten(1, -1) }.to_kind(Kind::Float);
                    flat = true;
                    inp.apply(l).relu()
                }
                Block::Dropout(p) => x.dropout(*p, train),
            };
        }
        if flat {
            x
        } else {
            x.flatten(1, -1).to_kind(Kind::Float)
        }
    }
}

impl ModuleT for LayerNet {
    /// `x`: `[B, C, H, W]` -> logits `[B, classes]`.
    fn forward_t(&self, x: &Tensor, train: bool) -> Tensor {
        self.features_t(x, train).apply(&self.head)
    }
}

/// Number of trainable parameters in a var store.
pub fn parameter_count(vs: &nn::VarStore) -> i64 {
    vs.trainable_variables()
        .iter()
        .map(|t| t.numel() as i64)
        .sum()
}

#[cfg(test)]
mod tests {
    use super::*;
    use tch::{Device, Kind};

    #[test]
    fn the_size_counted_from_the_layer_list_is_the_built_network_s() {
        for (i, (a, input, classes)) in [
            ("S8-4 P:max S4-6 P:avg F16 D0.5", [1, 28, 28], 10),
            ("S32-64 P:max P:avg S16-16", [3, 32, 32], 7),
            ("P:max F5", [1, 8, 8], 3),
            ("S128-512 S256-128 P:max", [1, 28, 28], 10),
        ]
        .into_iter()
        .enumerate()
        {
            let vs = nn::VarStore::new(Device::Cpu);
            let arch = Arch::parse(a).unwrap();
            LayerNet::new(&(vs.root() / i), &arch, input, classes).unwrap();
            let size = arch.size(input, classes).unwrap();
            assert_eq!(size.params, parameter_count(&vs), "{a}");
        }
        // by hand: S2-3 on 1x4x4, 2 classes: convolutions 16*(9*1*2) + 16*(9*2*3) + 16*(1*3),
        // head 48*2 multiply-accumulates
        let s = Arch::parse("S2-3").unwrap().size([1, 4, 4], 2).unwrap();
        assert_eq!(s.macs, 288 + 864 + 48 + 96);
        assert_eq!(s.params, (18 + 2) + 4 + (54 + 3) + 6 + (3 + 3) + (96 + 2));
        assert!(Arch::parse("P:max P:max P:max")
            .unwrap()
            .size([1, 4, 4], 2)
            .is_err());
    }

    #[test]
    fn shapes_follow_the_arch() {
        let vs = nn::VarStore::new(Device::Cpu);
        let arch = Arch::parse("S8-4 P:max S4-6 P:avg F16 D0.5").unwrap();
        let net = LayerNet::new(&vs.root(), &arch, [1, 28, 28], 10).unwrap();
        let x = Tensor::rand([3, 1, 28, 28], (Kind::Float, Device::Cpu));
        assert_eq!(net.features_t(&x, false).size(), vec![3, 16]);
        assert_eq!(net.forward_t(&x, true).size(), vec![3, 10]);
        let net2 = LayerNet::new(
            &(vs.root() / "b"),
            &Arch::parse("S8-4 P:max").unwrap(),
            [3, 32, 32],
            5,
        )
        .unwrap();
        assert_eq!(net2.feature_dim, 4 * 16 * 16);
        assert!(LayerNet::new(
            &(vs.root() / "c"),
            &Arch::parse("P:max P:max P:max P:max P:max").unwrap(),
            [1, 28, 28],
            10
        )
        .is_err());
    }

    #[test]
    fn bf16_computes_the_fp32_function_and_trains_the_fp32_weights() {
        tch::manual_seed(3);
        let vs = nn::VarStore::new(Device::Cpu);
        let arch = Arch::parse("S8-16 P:max S16-8 P:avg F12").unwrap();
        let mut net = LayerNet::new(&vs.root(), &arch, [1, 12, 12], 4).unwrap();
        let x = Tensor::rand([5, 1, 12, 12], (Kind::Float, Device::Cpu));
        let want = net.forward_t(&x, false);
        net.set_precision(Precision::Bf16);
        let got = net.forward_t(&x, false);
        assert_eq!(got.kind(), Kind::Float);
        let err = (&got - &want).abs().max().double_value(&[]);
        let scale = want.abs().max().double_value(&[]);
        assert!(err < 0.05 * scale, "bf16 {err} vs scale {scale}");
        // gradients reach the 32-bit weights
        net.forward_t(&x, true).sum(Kind::Float).backward();
        for (name, v) in vs.variables() {
            assert_eq!(v.kind(), Kind::Float, "{name}");
            if name.ends_with("conv1.weight") {
                assert!(
                    v.grad().abs().sum(Kind::Float).double_value(&[]) > 0.0,
                    "{name}"
                );
            }
        }
    }
}
