//! Fréchet distance between the feature distributions of real and generated images ("FID"),
//! computed on the penultimate-layer features of a reference classifier exported by
//! `neuroevo train` (its `<stem>.features.pt`; by default `models/mnist-cnn.features.pt`, 128-d
//! features of the shipped MNIST CNN), not on Inception-v3: FIDs are only comparable between runs
//! that use the same extractor and the same number of samples.
//!
//! FID = |mu1 - mu2|² + tr(C1) + tr(C2) - 2 tr(sqrt(C1 C2)), with means and covariances in f64
//! and tr(sqrt(C1 C2)) = sum sqrt(eig(sqrt(C1) C2 sqrt(C1))) (a symmetric PSD product, so
//! `linalg_eigh` applies).
use crate::error::{Error, Result};
use crate::nn::export::{features_path, info_path, ModelInfo};
use std::path::{Path, PathBuf};
use tch::{CModule, Device, Kind, Tensor};

/// Mean and covariance of a set of feature vectors (f64, CPU).
pub struct FeatureStats {
    pub mean: Tensor,
    pub cov: Tensor,
}

impl FeatureStats {
    /// From features `[N, D]` (N >= 2).
    pub fn of(features: &Tensor) -> Self {
        let x = features.to_kind(Kind::Double).to_device(Device::Cpu);
        let n = x.size()[0];
        let mean = x.mean_dim(0, false, Kind::Double);
        let xc = &x - mean.unsqueeze(0);
        let cov = xc.tr().mm(&xc) / ((n - 1).max(1) as f64);
        FeatureStats { mean, cov }
    }
}

/// Square root of a symmetric positive semi-definite matrix by eigen-decomposition.
fn sqrt_psd(a: &Tensor) -> Tensor {
    let a = (a + a.tr()) / 2.0;
    let (e, v) = a.linalg_eigh("L");
    let s = e.clamp_min(0.0).sqrt();
    (&v * s.unsqueeze(0)).mm(&v.tr())
}

pub fn frechet_distance(a: &FeatureStats, b: &FeatureStats) -> f64 {
    let d = &a.mean - &b.mean;
    let s1 = sqrt_psd(&a.cov);
    let m = s1.mm(&b.cov).mm(&s1);
    let m = (&m + m.tr()) / 2.0;
    let tr_sqrt = m
        .linalg_eigvalsh("L")
        .clamp_min(0.0)
        .sqrt()
        .sum(Kind::Double);
    let v = d.dot(&d) + a.cov.trace() + b.cov.trace() - tr_sqrt * 2.0;
    v.double_value(&[]).max(0.0)
}

/// The FID extractor: a traced features module and what its input looks like.
pub struct FidExtractor {
    module: CModule,
    pub info: ModelInfo,
    pub features_file: PathBuf,
}

impl FidExtractor {
    /// `model` is a classifier exported by `neuroevo train`; its `.features.pt` and `.json`
    /// must be beside it.
    pub fn load(model: &Path, device: Device) -> Result<Self> {
        let json = info_path(model);
        let info: ModelInfo = crate::fsutil::read_json(&json).map_err(|e| match e {
            Error::Io { .. } => Error::usage(format!(
                "--fid-model {}: no {} beside it (neuroevo train writes it)",
                model.display(),
                json.display()
            )),
            other => other,
        })?;
        let features_file = match &info.features_file {
            Some(f) => model.with_file_name(f),
            None => features_path(model),
        };
        if !features_file.is_file() {
            return Err(Error::usage(format!(
                "--fid-model {}: no features module {} beside it",
                model.display(),
                features_file.display()
            )));
        }
        let mut module = CModule::load_on_device(&features_file, device).map_err(|e| {
            Error::corrupt(
                &features_file,
                format!(
                    "not a TorchScript module: {}",
                    e.to_string().lines().next().unwrap_or("")
                ),
            )
        })?;
        module.set_eval();
        Ok(FidExtractor {
            module,
            info,
            features_file,
        })
    }

    /// Features `[N, D]` of images `[N, C, H, W]` whose values lie in `range`: rescaled to the
    /// extractor's input range, averaged to gray (or repeated to 3 channels) and resized
    /// bilinearly to its input size when they differ.
    pub fn features(&self, images: &Tensor, range: (f32, f32)) -> Result<Tensor> {
        let _g = tch::no_grad_guard();
        let [c, h, w] = self.info.input_shape;
        let (lo, hi) = self.info.input_range;
        let mut outs = Vec::new();
        let n = images.size()[0];
        let chunk = 256;
        let mut i = 0;
        while i < n {
            let len = chunk.min(n - i);
            let mut x = images.narrow(0, i, len).to_kind(Kind::Float);
            let xc = x.size()[1];
            if xc != c {
                x = if c == 1 {
                    x.mean_dim(1, true, Kind::Float)
                } else if xc == 1 {
                    x.repeat([1, c, 1, 1])
                } else {
                    return Err(Error::usage(format!(
                        "the FID extractor reads {c} channels, the images have {xc}"
                    )));
                };
            }
            if x.size()[2] != h || x.size()[3] != w {
                x = x.upsample_bilinear2d([h, w], false, None, None);
            }
            let x =
                (x - range.0 as f64) * ((hi - lo) as f64 / (range.1 - range.0) as f64) + lo as f64;
            outs.push(self.module.forward_ts(&[x])?.to_device(Device::Cpu));
            i += len;
        }
        Ok(Tensor::cat(&outs, 0))
    }

    pub fn stats(&self, images: &Tensor, range: (f32, f32)) -> Result<FeatureStats> {
        Ok(FeatureStats::of(&self.features(images, range)?))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fid_of_a_set_with_itself_is_zero() {
        tch::manual_seed(1);
        let x = Tensor::randn([500, 16], (Kind::Float, Device::Cpu));
        let s = FeatureStats::of(&x);
        assert!(frechet_distance(&s, &s) < 1e-6);
        let y = Tensor::randn([500, 16], (Kind::Float, Device::Cpu)) + 1.0;
        let fy = frechet_distance(&s, &FeatureStats::of(&y));
        // the means differ by 1 in each of 16 dimensions
        assert!((fy - 16.0).abs() < 3.0, "{fy}");
    }

    #[test]
    fn fid_of_known_gaussians() {
        let opts = (Kind::Double, Device::Cpu);
        let a = FeatureStats {
            mean: Tensor::from_slice(&[0.0f64, 0.0]),
            cov: Tensor::from_slice(&[1.0f64, 0.0, 0.0, 4.0]).view([2, 2]),
        };
        let b = FeatureStats {
            mean: Tensor::from_slice(&[1.0f64, 0.0]),
            cov: Tensor::from_slice(&[4.0f64, 0.0, 0.0, 9.0]).view([2, 2]),
        };
        // 1 + (1 + 4) + (4 + 9) - 2 (sqrt(4) + sqrt(36)) = 3
        assert!((frechet_distance(&a, &b) - 3.0).abs() < 1e-9);
        // a rotated covariance: same distance when both are rotated alike
        let r = Tensor::from_slice(&[0.6f64, -0.8, 0.8, 0.6]).view([2, 2]);
        let rot = |s: &FeatureStats| FeatureStats {
            mean: r.mv(&s.mean),
            cov: r.mm(&s.cov).mm(&r.tr()),
        };
        assert!((frechet_distance(&rot(&a), &rot(&b)) - 3.0).abs() < 1e-9);
        let _ = opts;
    }
}
