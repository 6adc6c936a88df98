//! Stroke mutation (`gan --mode weights --stroke-mutation N`): a custom mutation on top of the
//! GA's operators. Each child gets N strokes (line segments with a Gaussian profile) added to one
//! hidden unit's row of its output weights, so that what selection keeps are connected lines of
//! pixels rather than single-pixel speckle.
use super::func::Layout;
use crate::ga::GaRng;
use serde::{Deserialize, Serialize};
use tch::Tensor;

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
