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
use tch::{Device, Kind, Tensor};

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

impl FeatureStats {
    /// Whether every mean and covariance entry is finite (generated images of a diverged
    /// network give NaN features).
    pub fn is_finite(&self) -> bool {
        let finite = |t: &Tensor| t.isfinite().all().int64_value(&[]) != 0;
        finite(&self.mean) && finite(&self.cov)
    }
}

/// Square root of a symmetric positive semi-definite matrix by eigen-decomposition.
fn sqrt_psd(a: &Tensor) -> std::result::Result<Tensor, tch::TchError> {
    let a = (a + a.tr()) / 2.0;
    let (e, v) = a.f_linalg_eigh("L")?;
    let s = e.clamp_min(0.0).sqrt();
    Ok((&v * s.unsqueeze(0)).mm(&v.tr()))
}

/// An error when either set of features is not finite (a diverged generator) or the eigen
/// decomposition fails; never a panic.
pub fn frechet_distance(a: &FeatureStats, b: &FeatureStats) -> Result<f64> {
    if !(a.is_finite() && b.is_finite()) {
        return Err(Error::Other(
            "the FID's features are NaN or infinite: the generator's images are not finite".into(),
        ));
    }
    let fail = |e: tch::TchError| {
        Error::Other(format!(
            "the FID's eigen decomposition failed: {}",
            e.to_string().lines().next().unwrap_or("")
        ))
    };
    let d = &a.mean - &b.mean;
    let s1 = sqrt_psd(&a.cov).map_err(fail)?;
    let m = s1.mm(&b.cov).mm(&s1);
    let m = (&m + m.tr()) / 2.0;
    let tr_sqrt = m
        .f_linalg_eigvalsh("L")
        .map_err(fail)?
        .clamp_min(0.0)
        .sqrt()
        .sum(Kind::Double);
    let v = d.dot(&d) + a.cov.trace() + b.cov.trace() - tr_sqrt * 2.0;
    Ok(v.double_value(&[]).max(0.0))
}

/// Feature statistics of images `[N, C, H, W]` whose values lie in `range`.
pub fn stats(
    extractor: &crate::nn::load::FeatureExtractor,
    images: &Tensor,
    range: (f32, f32),
) -> Result<FeatureStats> {
    Ok(FeatureStats::of(&extractor.features(images, range)?))
}

/// A loading error of the FID model, said for `--fid-model`.
pub fn for_flag(e: Error, model: &std::path::Path) -> Error {
    match e {
        Error::Usage(m) if m.starts_with(&format!("{}: ", model.display())) => {
            Error::Usage(format!("--fid-model {m}"))
        }
        Error::Usage(m) => Error::Usage(format!("--fid-model {}: {m}", model.display())),
        other => other,
    }
}

/// The real side of an FID: `n` training images drawn by `rng` (fewer when there are fewer),
/// fixed for the run (the run's FID: [`crate::rng::Streams::fid_samples`]).
pub(crate) fn real_stats(
    real: &Tensor,
    n: i64,
    mut rng: crate::ga::GaRng,
    extractor: &crate::nn::load::FeatureExtractor,
    range: (f32, f32),
) -> Result<FeatureStats> {
    let n_real = real.size()[0];
    let mut idx: Vec<i64> = (0..n_real).collect();
    rand::seq::SliceRandom::shuffle(idx.as_mut_slice(), &mut rng);
    idx.truncate(n.min(n_real) as usize);
    let sel = real.index_select(0, &Tensor::from_slice(&idx).to_device(real.device()));
    stats(extractor, &sel, range)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fid_of_a_set_with_itself_is_zero() {
        tch::manual_seed(1);
        let x = Tensor::randn([500, 16], (Kind::Float, Device::Cpu));
        let s = FeatureStats::of(&x);
        assert!(frechet_distance(&s, &s).unwrap() < 1e-6);
        let y = Tensor::randn([500, 16], (Kind::Float, Device::Cpu)) + 1.0;
        let fy = frechet_distance(&s, &FeatureStats::of(&y)).unwrap();
        // the means differ by 1 in each of 16 dimensions
        assert!((fy - 16.0).abs() < 3.0, "{fy}");
    }

    #[test]
    fn fid_of_nan_features_is_an_error_not_a_panic() {
        let x = Tensor::randn([50, 8], (Kind::Float, Device::Cpu));
        let s = FeatureStats::of(&x);
        let bad = FeatureStats::of(&(x.shallow_clone() * f64::NAN));
        let e = frechet_distance(&s, &bad).unwrap_err().to_string();
        assert!(e.contains("NaN"), "{e}");
        let inf = FeatureStats::of(&(x * f64::INFINITY));
        assert!(frechet_distance(&inf, &s).is_err());
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
        assert!((frechet_distance(&a, &b).unwrap() - 3.0).abs() < 1e-9);
        // a rotated covariance: same distance when both are rotated alike
        let r = Tensor::from_slice(&[0.6f64, -0.8, 0.8, 0.6]).view([2, 2]);
        let rot = |s: &FeatureStats| FeatureStats {
            mean: r.mv(&s.mean),
            cov: r.mm(&s.cov).mm(&r.tr()),
        };
        assert!((frechet_distance(&rot(&a), &rot(&b)).unwrap() - 3.0).abs() < 1e-9);
        let _ = opts;
    }
}
