//! What a `gan` run writes besides its log: the checkpoint (`checkpoint.pt` with the
//! populations' tensors and the fixed latents, `checkpoint.json` with the loop state) and its
//! restore, the plots, and the exported best generator with its `.json`.
use super::config::*;
use super::*;
use crate::error::{Error, Result};
use crate::fsutil;
use crate::ga::GaRng;
use crate::nn::load::GeneratorInfo;
use crate::plot::{line_plot, Panel, Series};
use crate::run::{checkpoint, dir, ClockState};
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};
use std::path::Path;
use tch::Tensor;

/// What `checkpoint.json` holds besides the tensors in `checkpoint.pt`.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub(crate) struct LoopState {
    pub(crate) generation: u64,
    pub(crate) epoch: u64,
    pub(crate) train_s: f64,
    /// Wall and CPU seconds since the run began (all threads, evaluation included), over all
    /// its invocations.
    #[serde(flatten)]
    pub(crate) clocks: ClockState,
    pub(crate) rng: GaRng,
    pub(crate) best_fid: Option<f64>,
    /// CPU seconds spent in generations (the cpu budget clock).
    #[serde(default)]
    pub(crate) train_cpu_s: f64,
    /// Position in the permutation of real images (`stream_perm` in the tensors), so that a
    /// resumed run draws the batches an uninterrupted one would.
    #[serde(default)]
    pub(crate) stream_pos: Option<i64>,
}

/// The state and tensors a checkpoint holds, after loading its populations into `model`.
pub(crate) fn restore_checkpoint(
    rd: &crate::run::RunDir,
    model: &mut dyn GanModel,
) -> Result<(LoopState, HashMap<String, Tensor>)> {
    let Some(state) = checkpoint::load_state::<LoopState>(rd, dir::STATE)? else {
        return Err(Error::usage(format!(
            "--resume {}: no {} there yet (the run stopped before its first checkpoint)",
            rd.path().display(),
            dir::STATE
        )));
    };
    let map = checkpoint::load_tensors(rd, dir::TENSORS)?;
    model.load_tensors(&map)?;
    Ok((state, map))
}

pub(crate) fn save_checkpoint(
    dir: &crate::run::RunDir,
    mut named: Vec<(String, Tensor)>,
    fixed: &[(&str, &Tensor)],
    state: &LoopState,
) -> Result<()> {
    for (n, t) in fixed {
        named.push((n.to_string(), t.shallow_clone()));
    }
    let payload = checkpoint::Payload::Tensors(named);
    checkpoint::save(dir, dir::STATE, state, Some((dir::TENSORS, payload)))
}

pub(crate) fn epoch_series(records: &[Value], key: &str) -> Series {
    Series {
        name: key.into(),
        points: records
            .iter()
            .filter(|r| r["kind"] == "epoch")
            .filter_map(|r| Some((r["epoch"].as_f64()?, r[key].as_f64()?)))
            .collect(),
    }
}

pub(crate) fn write_plots(dir: &Path, records: &[Value]) -> Result<()> {
    let title = |s: &str| format!("gan: {s} per epoch (population means)");
    line_plot(
        &dir.join("scores.png"),
        &title("D(x) and D(G(z))"),
        "epoch",
        &[Panel {
            log_y: false,
            y_label: "score".into(),
            series: vec![
                epoch_series(records, "real_score"),
                epoch_series(records, "fake_score"),
            ],
        }],
    )?;
    line_plot(
        &dir.join("losses.png"),
        &title("losses"),
        "epoch",
        &[Panel {
            log_y: false,
            y_label: "BCE".into(),
            series: vec![
                epoch_series(records, "loss_d"),
                epoch_series(records, "loss_g"),
            ],
        }],
    )?;
    line_plot(
        &dir.join("fid.png"),
        "gan: FID of the best generator",
        "training seconds",
        &[Panel {
            log_y: false,
            y_label: "FID".into(),
            series: vec![Series {
                name: "fid".into(),
                points: records
                    .iter()
                    .filter(|r| r["kind"] == "epoch" || r.get("fid").is_some())
                    .filter_map(|r| Some((r["train_s"].as_f64()?, r["fid"].as_f64()?)))
                    .collect(),
            }],
        }],
    )
}

/// Exports the best generator to `path` (TorchScript and safetensors) with the `.json` that
/// says how to feed it and, for `python/neuroevo_torch.py`, how to rebuild it.
pub(crate) fn export_generator(
    cfg: &GanConfig,
    model: &dyn GanModel,
    shape: [i64; 3],
    range: (f32, f32),
    path: &Path,
) -> Result<()> {
    let [c, size, _] = shape;
    model.export_best(path)?;
    let layers = match &cfg.model {
        ModelConfig::Dcgan(d) => Some(serde_json::to_value(dcgan::generator_specs(
            size,
            c,
            d.width,
            d.latent_dim,
        )?)?),
        ModelConfig::Weights(m) => {
            let mut sizes = vec![m.latent_dim];
            sizes.extend(&m.hidden);
            sizes.push(c * size * size);
            let (activation, temperature) = match m.hidden_activation {
                weights::HiddenActivation::Sigmoid => ("sigmoid", None),
                weights::HiddenActivation::Softmax => ("softmax", Some(m.softmax_temperature)),
            };
            Some(json!({"mlp": sizes, "hidden_activation": activation, "temperature": temperature}))
        }
    };
    let weights = Some("best-generator.safetensors".to_string());
    write_info(model, shape, range, path, layers, weights)
}

/// The `.json` beside an exported generator `path`: how to feed it and, with `layers` and
/// `weights_file`, how to rebuild it.
fn write_info(
    model: &dyn GanModel,
    shape: [i64; 3],
    range: (f32, f32),
    path: &Path,
    layers: Option<Value>,
    weights_file: Option<String>,
) -> Result<()> {
    fsutil::write_json_atomic(
        &path.with_extension("json"),
        &GeneratorInfo {
            kind: crate::nn::load::generator_kind(),
            latent_dim: model.latent_shape()[0],
            latent_shape: model.latent_shape(),
            output_shape: shape,
            output_range: range,
            layers,
            weights_file,
        },
    )
}

/// `--mixture`: tunes the mixture of the final population on the run's FID (its fixed latents
/// `z_fid`, its real statistics), writes `mixture.json` and exports `best-generator.pt` as the
/// mixture's sampler, with a `.json` that says how to feed it (no `layers`: a mixture is not
/// one network `python/neuroevo_torch.py` could rebuild). Returns the mixture's FID.
pub(crate) fn export_mixture(
    run: &crate::run::Run<GanConfig>,
    model: &dyn GanModel,
    shape: [i64; 3],
    z_fid: &Tensor,
    extractor: &crate::nn::load::FeatureExtractor,
    real: &fid::FeatureStats,
) -> Result<f64> {
    let range = model.output_range();
    let m = mixture::of_population(model, shape[0], z_fid, extractor, real, range, run.cfg.seed)?;
    fsutil::write_json_atomic(&run.dir.file(mixture::FILE), &m)?;
    let path = run.dir.file("best-generator.pt");
    model.export_mixture(&m.weights, &path)?;
    write_info(model, shape, range, &path, None, None)?;
    Ok(m.fid)
}
