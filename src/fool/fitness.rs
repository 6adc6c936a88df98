//! What fool maximizes: the classifier's log-probability of the target class, for a whole
//! population of genomes (pixels or latents) in one forward pass, and the genomes it starts from.
use super::config::{Init, Space};
use crate::error::{Error, Result};
use crate::ga::flat_tensor::TensorFitness;
use crate::ga::GaRng;
use crate::imageio::rescale;
use crate::nn::load::{Classifier, Generator};
use rand::Rng;
use rand_distr::{Distribution, Normal};
use tch::{Device, Kind, Tensor};

/// Fitness: the log of the classifier's softmax probability of `class` (the confidence is its
/// exp), for a whole population in one forward pass.
#[derive(Clone, Copy)]
pub struct FoolFitness<'a> {
    pub classifier: &'a Classifier,
    pub generator: Option<&'a Generator>,
    pub class: i64,
    pub binary: bool,
    /// Pixel space: each gene is a `block` x `block` square of pixels (1: one gene per pixel).
    pub block: i64,
}

impl FoolFitness<'_> {
    /// Genes per image in pixel space: `C x ceil(H / block) x ceil(W / block)`.
    pub fn pixel_genes(shape: [i64; 3], block: i64) -> usize {
        let [c, h, w] = shape;
        (c * ((h + block - 1) / block) * ((w + block - 1) / block)) as usize
    }

    /// Genomes `[P, N]` -> images `[P, C, H, W]` in the classifier's input range.
    pub fn images(&self, genomes: &Tensor) -> Result<Tensor> {
        let p = genomes.size()[0];
        let info = &self.classifier.info;
        let [c, h, w] = info.input_shape;
        let _g = tch::no_grad_guard();
        match self.generator {
            None => {
                let b = self.block.max(1);
                let (gh, gw) = ((h + b - 1) / b, (w + b - 1) / b);
                let x = genomes.f_view([p, c, gh, gw])?;
                let x = if b > 1 {
                    x.f_upsample_nearest2d([h, w], None, None)?
                } else {
                    x
                };
                let x = if self.binary {
                    x.f_gt(0.5)?.f_to_kind(Kind::Float)?
                } else {
                    x
                };
                Ok(rescale(&x, (0.0, 1.0), info.input_range))
            }
            Some(g) => {
                let mut shape = vec![p];
                shape.extend(&g.info.latent_shape);
                let img = g.module.forward_ts(&[genomes.f_view(shape.as_slice())?])?;
                if img.size()[1..] != info.input_shape[..] {
                    return Err(Error::usage(format!(
                        "the generator draws {:?} images, the classifier reads {:?}",
                        &img.size()[1..],
                        info.input_shape
                    )));
                }
                Ok(rescale(&img, g.info.output_range, info.input_range))
            }
        }
    }
}

impl TensorFitness for FoolFitness<'_> {
    fn evaluate(&mut self, genomes: &Tensor) -> Result<Vec<f64>> {
        let logp = self.classifier.log_probs(&self.images(genomes)?)?;
        let p = logp.f_select(1, self.class)?.to_device(Device::Cpu);
        Ok(Vec::<f64>::try_from(p)?)
    }
}

/// The first population's genes (`p` individuals of `n` genes), drawn as `init` says.
pub fn initial_genes(init: Init, space: Space, p: usize, n: usize, rng: &mut GaRng) -> Vec<f32> {
    let normal = |sd: f32| Normal::new(0.0f32, sd).unwrap();
    match (space, init) {
        (Space::Pixels, Init::Uniform) => (0..p * n).map(|_| rng.random::<f32>()).collect(),
        (Space::Pixels, Init::Black) => vec![0.0; p * n],
        (Space::Pixels, Init::Noise) => (0..p * n)
            .map(|_| (0.5 + normal(0.1).sample(rng)).clamp(0.0, 1.0))
            .collect(),
        (Space::Latent, Init::Uniform) => (0..p * n).map(|_| normal(1.0).sample(rng)).collect(),
        (Space::Latent, Init::Black) => vec![0.0; p * n],
        (Space::Latent, Init::Noise) => (0..p * n).map(|_| normal(0.1).sample(rng)).collect(),
    }
}
