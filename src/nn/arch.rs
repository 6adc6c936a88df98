//! The layer-list notation shared by `neuroevo train --arch` and AutoCNN genomes:
//!
//! - `S<f1>-<f2>`: a skip layer, conv3x3(f1) - BN - ReLU - conv3x3(f2) - BN plus a 1x1 conv
//!   shortcut to f2 channels, added, then ReLU;
//! - `P:max` / `P:avg`: 2x2 pooling with stride 2;
//! - `F<n>` (neuroevo extension, not in AutoCNN genomes): a fully connected layer of n units
//!   with ReLU, before the classifier;
//! - `D<p>`: dropout with probability p (training only).
//!
//! The head is always flatten - linear to the classes (softmax is in the loss, and is left out
//! of exported models, which return logits).
use crate::error::{Error, Result};
use serde::{Deserialize, Serialize};
use std::fmt;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PoolKind {
    Max,
    Avg,
}

#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Layer {
    Skip { f1: i64, f2: i64 },
    Pool { kind: PoolKind },
    Fc { units: i64 },
    Dropout { p: f64 },
}

impl fmt::Display for Layer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Layer::Skip { f1, f2 } => write!(f, "S{f1}-{f2}"),
            Layer::Pool {
                kind: PoolKind::Max,
            } => write!(f, "P:max"),
            Layer::Pool {
                kind: PoolKind::Avg,
            } => write!(f, "P:avg"),
            Layer::Fc { units } => write!(f, "F{units}"),
            Layer::Dropout { p } => write!(f, "D{p}"),
        }
    }
}

/// How large a network is: its trainable parameters and the multiply-accumulates of one forward
/// pass of one image ([`Arch::size`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct NetSize {
    pub params: i64,
    pub macs: i64,
}

/// A network as a list of layers.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Arch {
    pub layers: Vec<Layer>,
}

impl fmt::Display for Arch {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let parts: Vec<String> = self.layers.iter().map(|l| l.to_string()).collect();
        write!(f, "{}", parts.join(" "))
    }
}

impl Arch {
    pub fn parse(s: &str) -> Result<Arch> {
        let bad =
            |tok: &str, why: &str| Error::usage(format!("--arch \"{s}\": layer \"{tok}\" {why}"));
        let mut layers = Vec::new();
        for tok in s
            .split(|c: char| c.is_whitespace() || c == ',')
            .filter(|t| !t.is_empty())
        {
            let layer = if let Some(rest) = tok.strip_prefix('S') {
                let (a, b) = rest
                    .split_once('-')
                    .ok_or_else(|| bad(tok, "should be S<f1>-<f2>, e.g. S128-64"))?;
                let f1: i64 = a
                    .parse()
                    .map_err(|_| bad(tok, "has a filter count that is not a number"))?;
                let f2: i64 = b
                    .parse()
                    .map_err(|_| bad(tok, "has a filter count that is not a number"))?;
                if f1 < 1 || f2 < 1 || f1 > 4096 || f2 > 4096 {
                    return Err(bad(tok, "needs filter counts between 1 and 4096"));
                }
                Layer::Skip { f1, f2 }
            } else if let Some(k) = tok.strip_prefix("P:") {
                match k {
                    "max" => Layer::Pool {
                        kind: PoolKind::Max,
                    },
                    "avg" | "mean" => Layer::Pool {
                        kind: PoolKind::Avg,
                    },
                    _ => return Err(bad(tok, "should be P:max or P:avg")),
                }
            } else if let Some(n) = tok.strip_prefix('F') {
                let units: i64 = n
                    .parse()
                    .map_err(|_| bad(tok, "should be F<units>, e.g. F128"))?;
                if !(1..=65536).contains(&units) {
                    return Err(bad(tok, "needs between 1 and 65536 units"));
                }
                Layer::Fc { units }
            } else if let Some(p) = tok.strip_prefix('D') {
                let p: f64 = p
                    .parse()
                    .map_err(|_| bad(tok, "should be D<p>, e.g. D0.3"))?;
                if !(0.0..1.0).contains(&p) {
                    return Err(bad(tok, "needs a probability in [0, 1)"));
                }
                Layer::Dropout { p }
            } else {
                return Err(bad(tok, "is not S<f1>-<f2>, P:max, P:avg, F<n> or D<p>"));
            };
            layers.push(layer);
        }
        if layers.is_empty() {
            return Err(Error::usage(format!("--arch \"{s}\": no layers")));
        }
        Ok(Arch { layers })
    }

    /// Checks the layer order and the spatial size through the pooling layers; returns the
    /// shape `[C, H, W]` reaching the head. A feature map pooled below 1x1 is an error that
    /// names the layer.
    pub fn output_shape(&self, input: [i64; 3]) -> Result<[i64; 3]> {
        let [mut c, mut h, mut w] = input;
        let mut dense = false;
        for (i, l) in self.layers.iter().enumerate() {
            match *l {
                Layer::Skip { f2, .. } => {
                    if dense {
                        return Err(Error::usage(format!(
                            "--arch \"{self}\": layer {} ({l}) comes after a fully connected layer",
                            i + 1
                        )));
                    }
                    c = f2;
                }
                Layer::Pool { .. } => {
                    if dense {
                        return Err(Error::usage(format!(
                            "--arch \"{self}\": layer {} ({l}) comes after a fully connected layer",
                            i + 1
                        )));
                    }
                    if h < 2 || w < 2 {
                        return Err(Error::usage(format!(
                            "--arch \"{self}\": layer {} ({l}) would pool a {h}x{w} feature map below 1x1",
                            i + 1
                        )));
                    }
                    h /= 2;
                    w /= 2;
                }
                Layer::Fc { units } => {
                    dense = true;
                    c = units;
                    h = 1;
                    w = 1;
                }
                Layer::Dropout { .. } => {}
            }
        }
        Ok([c, h, w])
    }

    /// The trainable parameters and the multiply-accumulates of one forward pass of one image
    /// of shape `input` through this network and a head to `classes` outputs, counted from the
    /// layer list alone, before anything is built (what a size cap is checked against).
    /// Convolutions count `k*k*cin` MACs per output value, dense layers `in` per output;
    /// batch norm, ReLU, pooling and the additions are not counted (they are not products).
    pub fn size(&self, input: [i64; 3], classes: i64) -> Result<NetSize> {
        self.output_shape(input)?;
        let [mut c, mut h, mut w] = input;
        let mut flat: Option<i64> = None;
        let (mut params, mut macs) = (0i64, 0i64);
        for l in &self.layers {
            match *l {
                Layer::Skip { f1, f2 } => {
                    // conv3x3 + bias, BN (weight, bias), conv3x3 + bias, BN, 1x1 shortcut + bias
                    params += 9 * c * f1 + f1 + 2 * f1 + 9 * f1 * f2 + f2 + 2 * f2 + c * f2 + f2;
                    macs += h * w * (9 * c * f1 + 9 * f1 * f2 + c * f2);
                    c = f2;
                }
                Layer::Pool { .. } => {
                    h /= 2;
                    w /= 2;
                }
                Layer::Fc { units } => {
                    let inp = flat.unwrap_or(c * h * w);
                    params += inp * units + units;
                    macs += inp * units;
                    flat = Some(units);
                }
                Layer::Dropout { .. } => {}
            }
        }
        let features = flat.unwrap_or(c * h * w);
        params += features * classes + classes;
        macs += features * classes;
        Ok(NetSize { params, macs })
    }

    /// Bytes one training step of this network needs, estimated before anything is allocated:
    /// fp32 weights with their gradients and two Adam moments, the activations autograd keeps
    /// for a batch of `batch` images of shape `input` (and as much again for their gradients),
    /// and the forward pass of an evaluation batch of [`crate::nn::train::EVAL_BATCH`] images.
    /// An upper estimate for a layer list that [`Arch::output_shape`] accepts; used to refuse a
    /// network that cannot fit before training it.
    pub fn training_bytes(&self, input: [i64; 3], classes: i64, batch: i64) -> f64 {
        let [mut c, mut h, mut w] = input.map(|v| v.max(1) as f64);
        let (mut params, mut saved, mut widest) = (0.0f64, c * h * w, c * h * w);
        for l in &self.layers {
            let px = h * w;
            match *l {
                Layer::Skip { f1, f2 } => {
                    let (f1, f2) = (f1 as f64, f2 as f64);
                    // conv3x3 + BN, conv3x3 + BN, 1x1 shortcut
                    params += 9.0 * c * f1 + 3.0 * f1 + 9.0 * f1 * f2 + 3.0 * f2 + c * f2 + f2;
                    // conv/BN/ReLU outputs of both convolutions, the shortcut and the sum
                    saved += px * (3.0 * f1 + 4.0 * f2);
                    widest = widest.max(px * (f1 + 2.0 * f2));
                    c = f2;
                }
                Layer::Pool { .. } => {
                    h = (h / 2.0).floor().max(1.0);
                    w = (w / 2.0).floor().max(1.0);
                    // the pooled map and max pooling's indices (8 bytes each)
                    saved += 3.0 * c * h * w;
                }
                Layer::Fc { units } => {
                    let u = units as f64;
                    params += c * h * w * u + u;
                    saved += 2.0 * u;
                    (c, h, w) = (u, 1.0, 1.0);
                }
                Layer::Dropout { .. } => saved += 2.0 * c * h * w,
            }
        }
        params += c * h * w * classes.max(1) as f64 + classes.max(1) as f64;
        let eval = crate::nn::train::EVAL_BATCH as f64;
        4.0 * (4.0 * params + 2.0 * batch.max(1) as f64 * saved + eval * widest)
    }

    /// Number of pooling layers.
    pub fn pools(&self) -> usize {
        self.layers
            .iter()
            .filter(|l| matches!(l, Layer::Pool { .. }))
            .count()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_and_prints_back() {
        let a = Arch::parse("S128-64 P:max S64-64, P:avg F128 D0.3").unwrap();
        assert_eq!(a.layers.len(), 6);
        assert_eq!(a.to_string(), "S128-64 P:max S64-64 P:avg F128 D0.3");
        assert_eq!(Arch::parse(&a.to_string()).unwrap(), a);
    }

    #[test]
    fn rejects_bad_layers_with_the_layer_named() {
        for (s, needle) in [
            ("S128", "S12"),
            ("S1-x", "S1-x"),
            ("P:min", "P:min"),
            ("X3", "X3"),
            ("", "no layers"),
            ("D1.5", "D1.5"),
        ] {
            let e = Arch::parse(s).unwrap_err().to_string();
            assert!(e.contains(needle), "{s}: {e}");
        }
    }

    #[test]
    fn a_training_step_is_estimated_from_weights_and_activations() {
        let small = Arch::parse("S8-8 P:max").unwrap();
        let b = small.training_bytes([1, 28, 28], 10, 16);
        assert!((1e5..1e8).contains(&b), "{b}");
        // three 4096-filter skip layers on 28x28: ~790M parameters, tens of GB with Adam
        let huge = Arch::parse("S4096-4096 S4096-4096 S4096-4096").unwrap();
        let h = huge.training_bytes([1, 28, 28], 10, 16);
        assert!(h > 2e10, "{h}");
        // more images per step, more layers or wider layers never need less
        assert!(small.training_bytes([1, 28, 28], 10, 64) > b);
        assert!(
            Arch::parse("S8-8 S8-8 P:max")
                .unwrap()
                .training_bytes([1, 28, 28], 10, 16)
                > b
        );
        assert!(
            Arch::parse("S8-16 P:max")
                .unwrap()
                .training_bytes([1, 28, 28], 10, 16)
                > b
        );
    }

    #[test]
    fn pooling_below_one_pixel_is_reported() {
        // 28 -> 14 -> 7 -> 3 -> 1: four pools fit, a fifth does not
        let four = Arch::parse("S8-8 P:max P:avg P:max P:max").unwrap();
        assert_eq!(four.output_shape([1, 28, 28]).unwrap(), [8, 1, 1]);
        let five = Arch::parse("S8-8 P:max P:avg P:max P:max P:max").unwrap();
        let e = five.output_shape([1, 28, 28]).unwrap_err();
        assert!(
            e.is_user_error() && e.to_string().contains("layer 6") && e.to_string().contains("1x1"),
            "{e}"
        );
        assert_eq!(
            Arch::parse("S4-16 F32")
                .unwrap()
                .output_shape([3, 32, 32])
                .unwrap(),
            [32, 1, 1]
        );
        assert!(Arch::parse("F32 S4-4")
            .unwrap()
            .output_shape([1, 8, 8])
            .is_err());
    }
}
