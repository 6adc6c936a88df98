//! `gan --mixture`: a mixture of the final population's generators (Lipizzaner, Toutouh et al.
//! 2019). A population ends with several generators that each cover part of the data; sampling
//! from all of them, each with its own probability, can cover more of it than the best one
//! alone. The weights are tuned on the FID the run itself reports, and the exported
//! `best-generator.pt` samples from the mixture with the same interface as one generator.
//!
//! - **Members**: every generator of the final population, sampled on the run's fixed FID
//!   latents; a member whose images are not finite (diverged) gets weight 0.
//! - **The mixture's FID** for weights w comes from the members' feature moments, not from a
//!   new sample: mean `sum w_i mu_i`, covariance `sum w_i (C_i + mu_i mu_i^T) - mu mu^T`, which
//!   are the moments of the mixed distribution (each member's estimated on the same latents). It
//!   is smooth in w, so a small evolution strategy can tune it, and it costs no generator pass.
//! - **Tuning**: a (1+1) evolution strategy on the weights' logits with the 1/5 success rule,
//!   [`STEPS`] steps, seeded by the run's seed, from the better of the uniform mixture and one
//!   that leans on the best member. The result is the best point seen, the uniform mixture and
//!   the best member alone included, so the tuned mixture is never worse (on this sample) than
//!   either.
//! - **Sampling** ([`pick`]): a latent z chooses its member by `u = frac(1024 z_0)`, which is
//!   uniform on [0, 1) for z_0 ~ N(0, 1) and nearly independent of z_0's value, against the
//!   cumulative weights; the member then generates from the whole z. So the sampler is a
//!   deterministic function of z (as `fool --space latent` needs), members are chosen in the
//!   proportions of their weights, and each member sees latents distributed as in training.
use super::fid::{frechet_distance, FeatureStats};
use crate::error::{Error, Result};
use crate::ga::GaRng;
use rand::Rng;
use rand_distr::StandardNormal;
use serde::Serialize;
use tch::{Device, Kind, Tensor};

/// Steps of the evolution strategy (each one FID from moments: milliseconds).
pub const STEPS: usize = 300;

/// The file beside the run's outputs that says what the mixture is.
pub const FILE: &str = "mixture.json";

/// What `mixture.json` holds.
#[derive(Clone, Debug, Serialize)]
pub struct Mixture {
    /// One weight per generator of the final population, summing to 1.
    pub weights: Vec<f64>,
    /// Each member's own FID (None: its images were not finite).
    pub member_fid: Vec<Option<f64>>,
    /// The tuned mixture's FID (from the members' feature moments).
    pub fid: f64,
    /// The uniform mixture's FID, over the members with finite images.
    pub fid_uniform: f64,
    /// The best member's FID and its index.
    pub fid_best_member: f64,
    pub best_member: usize,
    /// Generated images per member the FIDs are computed on.
    pub samples: i64,
    pub steps: usize,
}

/// The feature statistics of the mixture of `members` (all estimated on `n` samples) with
/// weights `w` (summing to 1; a member of weight 0 may be None).
pub fn mixed_stats(members: &[Option<FeatureStats>], w: &[f64], n: i64) -> FeatureStats {
    let dim = members
        .iter()
        .flatten()
        .next()
        .map_or(0, |s| s.mean.size()[0]);
    let opts = (Kind::Double, Device::Cpu);
    let mut mean = Tensor::zeros([dim], opts);
    let mut second = Tensor::zeros([dim, dim], opts);
    // each member's covariance is the unbiased one: back to the biased second moment
    let biased = (n - 1).max(1) as f64 / n.max(1) as f64;
    for (s, &wi) in members.iter().zip(w) {
        let Some(s) = s else { continue };
        if wi == 0.0 {
            continue;
        }
        mean += &s.mean * wi;
        second += (&s.cov * biased + s.mean.outer(&s.mean)) * wi;
    }
    let cov = (second - mean.outer(&mean)) / biased;
    FeatureStats { mean, cov }
}

fn softmax(theta: &[f64]) -> Vec<f64> {
    let m = theta.iter().copied().fold(f64::NEG_INFINITY, f64::max);
    let e: Vec<f64> = theta.iter().map(|t| (t - m).exp()).collect();
    let s: f64 = e.iter().sum();
    e.into_iter().map(|x| x / s).collect()
}

/// Tunes the weights of `members` (feature statistics of each member's `n` samples; None for a
/// diverged one) against `real` for `steps` steps.
pub fn tune(
    members: &[Option<FeatureStats>],
    real: &FeatureStats,
    n: i64,
    steps: usize,
    rng: &mut GaRng,
) -> Result<Mixture> {
    let alive: Vec<usize> = (0..members.len())
        .filter(|&i| members[i].is_some())
        .collect();
    if alive.is_empty() {
        return Err(Error::Other(
            "--mixture: every generator of the final population gives images that are not finite"
                .into(),
        ));
    }
    let fid_of = |w: &[f64]| frechet_distance(&mixed_stats(members, w, n), real);
    let member_fid: Vec<Option<f64>> = members
        .iter()
        .map(|s| s.as_ref().map(|s| frechet_distance(s, real)).transpose())
        .collect::<Result<_>>()?;
    let best_member = *alive
        .iter()
        .min_by(|&&a, &&b| member_fid[a].unwrap().total_cmp(&member_fid[b].unwrap()))
        .expect("one member at least");
    // logits over the living members only
    let expand = |theta: &[f64]| -> Vec<f64> {
        let w = softmax(theta);
        let mut full = vec![0.0; members.len()];
        for (k, &i) in alive.iter().enumerate() {
            full[i] = w[k];
        }
        full
    };
    let uniform = vec![0.0; alive.len()];
    let fid_uniform = fid_of(&expand(&uniform))?;
    let fid_best_member = member_fid[best_member].unwrap();
    // the best point seen: the uniform mixture or the best member alone, then the search's
    let (mut best_w, mut best_f) = (expand(&uniform), fid_uniform);
    if fid_best_member < best_f {
        best_w = (0..members.len())
            .map(|i| f64::from(u8::from(i == best_member)))
            .collect();
        best_f = fid_best_member;
    }
    // the search starts from the better of the uniform mixture and one that leans on the best
    // member (logits of -4 elsewhere: far enough to be near it, near enough to move away)
    let leaning: Vec<f64> = alive
        .iter()
        .map(|&i| if i == best_member { 0.0 } else { -4.0 })
        .collect();
    let f_leaning = fid_of(&expand(&leaning))?;
    let (mut theta, mut f) = match f_leaning < fid_uniform {
        true => (leaning, f_leaning),
        false => (uniform, fid_uniform),
    };
    let mut sigma = 1.0f64;
    for _ in 0..steps * usize::from(alive.len() > 1) {
        let cand: Vec<f64> = theta
            .iter()
            .map(|t| t + sigma * rng.sample::<f64, _>(StandardNormal))
            .collect();
        let fc = fid_of(&expand(&cand))?;
        // the 1/5 success rule: a strict improvement widens the steps, anything else narrows
        sigma = match fc < f {
            true => (sigma * (1.0f64 / 3.0).exp()).min(5.0),
            false => (sigma * (-1.0f64 / 12.0).exp()).max(1e-3),
        };
        if fc <= f {
            theta = cand;
            f = fc;
        }
        if f < best_f {
            best_w = expand(&theta);
            best_f = f;
        }
    }
    Ok(Mixture {
        weights: best_w,
        member_fid,
        fid: best_f,
        fid_uniform,
        fid_best_member,
        best_member,
        samples: n,
        steps,
    })
}

/// The feature statistics of every generator of `model` (images of `c` channels) on latents
/// `z` (in chunks, as the run's own FID): None for a generator whose images or features are not
/// finite (diverged).
pub fn member_stats(
    model: &dyn super::GanModel,
    c: i64,
    z: &Tensor,
    extractor: &crate::nn::load::FeatureExtractor,
    range: (f32, f32),
) -> Result<Vec<Option<FeatureStats>>> {
    let outs = super::in_chunks(z, |z| {
        model
            .sample_members(z)?
            .ok_or_else(|| Error::usage("a population's generators: only in the dcgan mode"))
    })?;
    let p = outs.size()[1] / c;
    let mut members = Vec::new();
    for m in 0..p {
        let imgs = outs.narrow(1, m * c, c);
        let finite = imgs.isfinite().all().int64_value(&[]) != 0;
        members.push(match finite {
            true => Some(super::fid::stats(extractor, &imgs, range)?).filter(|s| s.is_finite()),
            false => None,
        });
    }
    Ok(members)
}

/// Tunes the mixture of `model`'s final generators (images of `c` channels) on the run's FID:
/// each member's images of the fixed FID latents `z_fid`, their features and FIDs against
/// `real` ([`member_stats`]), then [`tune`] with the run's seed.
pub fn of_population(
    model: &dyn super::GanModel,
    c: i64,
    z_fid: &Tensor,
    extractor: &crate::nn::load::FeatureExtractor,
    real: &FeatureStats,
    range: (f32, f32),
    seed: u64,
) -> Result<Mixture> {
    let members = member_stats(model, c, z_fid, extractor, range)?;
    let mut rng = <GaRng as rand::SeedableRng>::seed_from_u64(seed ^ 0x313C_7E5);
    tune(&members, real, z_fid.size()[0], STEPS, &mut rng)
}

/// The cumulative weights the sampler compares against: `[P - 1]`, the last bound (1) left out.
pub fn thresholds(weights: &[f64]) -> Tensor {
    let mut acc = 0.0;
    let c: Vec<f32> = weights[..weights.len().saturating_sub(1)]
        .iter()
        .map(|w| {
            acc += w;
            acc as f32
        })
        .collect();
    Tensor::from_slice(&c)
}

/// Which member each latent of `z` `[B, L, ..]` samples from: `[B]` indices, the number of
/// thresholds `u = frac(1024 z_0)` lies above.
pub fn pick(z: &Tensor, thresholds: &Tensor) -> Tensor {
    // no sizes read here: the traced sampler takes any batch
    let x = z.flatten(1, -1).select(1, 0) * 1024.0;
    let u = &x - x.floor();
    u.unsqueeze(1)
        .gt_tensor(&thresholds.to_device(z.device()).unsqueeze(0))
        .sum_dim_intlist(1, false, Kind::Int64)
}

/// The mixture's images: of `outs` `[B, P*C, H, W]` (every member's images of the same
/// latents, member i in channels `i*C..(i+1)*C`), row b's from member `idx[b]`.
pub fn select(outs: &Tensor, c: i64, idx: &Tensor) -> Tensor {
    let s = outs.size();
    let (p, h, w) = (s[1] / c, s[2], s[3]);
    let flat = outs.reshape([-1, p, c * h * w]);
    let at = idx.view([-1, 1, 1]).repeat([1, 1, c * h * w]);
    flat.gather(1, &at, false).reshape([-1, c, h, w])
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;

    fn gaussian(n: i64, d: i64, shift: f64, scale: f64) -> Tensor {
        Tensor::randn([n, d], (Kind::Double, Device::Cpu)) * scale + shift
    }

    #[test]
    fn the_mixed_moments_are_those_of_the_pooled_samples() {
        tch::manual_seed(3);
        let (a, b) = (gaussian(600, 4, 0.0, 1.0), gaussian(600, 4, 2.0, 0.5));
        let n = 600;
        let stats = vec![Some(FeatureStats::of(&a)), Some(FeatureStats::of(&b))];
        // a third of a's rows and two thirds of b's in equal proportions: weights 1/3, 2/3
        let pooled = Tensor::cat(&[a.narrow(0, 0, 200), b.narrow(0, 0, 400)], 0);
        let want = FeatureStats::of(&pooled);
        let got = mixed_stats(&stats, &[1.0 / 3.0, 2.0 / 3.0], n);
        // the moments of the first rows only estimate each member's, so compare loosely; the
        // exact identity is checked below with every row
        assert!((&got.mean - &want.mean).abs().max().double_value(&[]) < 0.15);
        assert!((&got.cov - &want.cov).abs().max().double_value(&[]) < 0.2);
        // equal weights over all rows: exactly the pooled moments, but for the unbiased
        // normalisation of n samples (the members') against 2n (the pooled set)
        let all = FeatureStats::of(&Tensor::cat(&[&a, &b], 0));
        let half = mixed_stats(&stats, &[0.5, 0.5], n);
        assert!((&half.mean - &all.mean).abs().max().double_value(&[]) < 1e-9);
        let scale = 2.0 * (n - 1) as f64 / (2 * n - 1) as f64;
        let c = &half.cov * scale;
        assert!((&c - &all.cov).abs().max().double_value(&[]) < 1e-9);
        // weight 1 on one member is that member
        let one = mixed_stats(&stats, &[0.0, 1.0], n);
        assert!(
            (&one.cov - &stats[1].as_ref().unwrap().cov)
                .abs()
                .max()
                .double_value(&[])
                < 1e-9
        );
    }

    #[test]
    fn tuning_finds_the_two_halves_of_a_bimodal_target() {
        tch::manual_seed(5);
        let n = 800;
        // the real data has two modes; member 0 covers one, member 1 the other, member 2
        // neither: the best mixture is about half and half of 0 and 1, and beats each alone
        let real = Tensor::cat(&[gaussian(n, 3, -2.0, 0.5), gaussian(n, 3, 2.0, 0.5)], 0);
        let real = FeatureStats::of(&real);
        let members = vec![
            Some(FeatureStats::of(&gaussian(n, 3, -2.0, 0.5))),
            Some(FeatureStats::of(&gaussian(n, 3, 2.0, 0.5))),
            Some(FeatureStats::of(&gaussian(n, 3, 6.0, 3.0))),
            None,
        ];
        let m = tune(&members, &real, n, STEPS, &mut GaRng::seed_from_u64(1)).unwrap();
        assert!((m.weights.iter().sum::<f64>() - 1.0).abs() < 1e-9);
        assert_eq!(m.weights[3], 0.0, "a diverged member gets nothing");
        assert!(m.member_fid[3].is_none());
        assert!(m.weights[2] < 0.02, "{:?}", m.weights);
        assert!((m.weights[0] - 0.5).abs() < 0.1, "{:?}", m.weights);
        assert!(m.fid <= m.fid_uniform && m.fid <= m.fid_best_member);
        assert!(
            m.fid < 0.2 * m.fid_best_member,
            "{} against {}",
            m.fid,
            m.fid_best_member
        );
        // reproducible by seed
        let again = tune(&members, &real, n, STEPS, &mut GaRng::seed_from_u64(1)).unwrap();
        assert_eq!(m.weights, again.weights);
        // nothing alive: an error, not a panic
        assert!(tune(&[None, None], &real, n, 10, &mut GaRng::seed_from_u64(1)).is_err());
    }

    #[test]
    fn latents_pick_members_in_the_proportions_of_the_weights() {
        tch::manual_seed(11);
        let w = [0.2, 0.0, 0.5, 0.3];
        let z = Tensor::randn([40_000, 8, 1, 1], (Kind::Float, Device::Cpu));
        let idx = pick(&z, &thresholds(&w));
        let counts = Vec::<i64>::try_from(idx.bincount::<Tensor>(None, 4)).unwrap();
        for (i, (&c, &wi)) in counts.iter().zip(&w).enumerate() {
            let share = c as f64 / 40_000.0;
            // binomial standard deviation at most 0.0025: four of them
            assert!(
                (share - wi).abs() < 0.01,
                "member {i}: {share} against {wi}"
            );
        }
        assert_eq!(counts[1], 0, "a member of weight 0 is never picked");
        // and the members' latents are as in training: z_0's spread within each member
        for i in [0, 2, 3] {
            let rows = idx.eq(i).nonzero().squeeze_dim(1);
            let z0 = z.reshape([40_000, -1]).select(1, 0).index_select(0, &rows);
            let sd = z0.std(true).double_value(&[]);
            let mean = z0.mean(Kind::Float).double_value(&[]);
            assert!(
                (sd - 1.0).abs() < 0.05 && mean.abs() < 0.05,
                "member {i}: {mean} {sd}"
            );
        }
    }

    #[test]
    fn the_exported_sampler_draws_each_image_from_one_member_in_proportion() {
        use crate::gan::dcgan::{DcganConfig, DcganModel};
        use crate::gan::GanModel;
        let cfg: DcganConfig = serde_json::from_value(serde_json::json!({
            "latent_dim": 8, "width": 2, "grad_steps": 1, "d_population": 1
        }))
        .unwrap();
        tch::manual_seed(7);
        let model = DcganModel::new(
            cfg,
            [1, 28, 28],
            3,
            (None, None),
            8,
            8,
            2e-4,
            0.5,
            Device::Cpu,
        )
        .unwrap();
        let tmp = tempfile::tempdir().unwrap();
        let load = |w: &[f64], name: &str| {
            let path = tmp.path().join(name);
            // the same frozen batch-norm statistics in every export
            tch::manual_seed(99);
            model.export_mixture(w, &path).unwrap();
            tch::CModule::load(&path).unwrap()
        };
        let w = [0.25, 0.6, 0.15];
        let mix = load(&w, "mix.pt");
        let alone: Vec<tch::CModule> = (0..3)
            .map(|i| {
                let mut one = [0.0; 3];
                one[i] = 1.0;
                load(&one, &format!("m{i}.pt"))
            })
            .collect();
        let n = 6000;
        let z = Tensor::randn([n, 8, 1, 1], (Kind::Float, Device::Cpu));
        let got = mix.forward_ts(&[&z]).unwrap().reshape([n, -1]);
        let members: Vec<Tensor> = alone
            .iter()
            .map(|m| m.forward_ts(&[&z]).unwrap().reshape([n, -1]))
            .collect();
        // every image is exactly one member's image of the same latent
        let same: Vec<Tensor> = members
            .iter()
            .map(|m| (m - &got).abs().amax([1i64].as_slice(), false).lt(1e-6))
            .collect();
        let which = Tensor::stack(&same, 1).to_kind(Kind::Int64);
        assert_eq!(
            which
                .sum_dim_intlist(1, false, Kind::Int64)
                .min()
                .int64_value(&[]),
            1,
            "each image from a member (and the members differ)"
        );
        // in the proportions of the weights (binomial sd at most 0.0065: three of them)
        let counts = Vec::<i64>::try_from(which.sum_dim_intlist(0, false, Kind::Int64)).unwrap();
        for (i, (&c, &wi)) in counts.iter().zip(&w).enumerate() {
            let share = c as f64 / n as f64;
            assert!(
                (share - wi).abs() < 0.02,
                "member {i}: {share} against {wi}"
            );
        }
    }

    #[test]
    fn select_takes_each_row_from_its_member() {
        // 3 members, C = 2, 1x1 images: member i's image of row b is [10 i + b, -(10 i + b)]
        let b = 4;
        let mut v = Vec::new();
        for row in 0..b {
            for i in 0..3 {
                v.push((10 * i + row) as f32);
                v.push(-((10 * i + row) as f32));
            }
        }
        let outs = Tensor::from_slice(&v).view([b, 6, 1, 1]);
        let idx = Tensor::from_slice(&[2i64, 0, 1, 2]);
        let got = Vec::<f32>::try_from(select(&outs, 2, &idx).view([-1])).unwrap();
        assert_eq!(got, vec![20.0, -20.0, 1.0, -1.0, 12.0, -12.0, 23.0, -23.0]);
    }
}
