//! TorchScript export: the var store is frozen and moved to the CPU, the model traced in eval
//! mode and saved atomically, so the file loads anywhere (`torch.jit.load` in Python,
//! `tch::CModule::load` in Rust) and takes any batch size. Weights become constants.
use super::model::LayerNet;
use crate::error::{Error, Result};
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};
use tch::nn::{self, ModuleT};
use tch::{CModule, Device, Tensor};

/// Traces `f` on `example` (moved to the CPU) and writes TorchScript to `path`.
pub fn export_traced(
    vs: &mut nn::VarStore,
    example: &Tensor,
    path: &Path,
    f: &dyn Fn(&Tensor) -> Tensor,
) -> Result<()> {
    let device = vs.device();
    vs.freeze();
    vs.set_device(Device::Cpu);
    let result = (|| -> Result<()> {
        let example = example.to_device(Device::Cpu);
        let _guard = tch::no_grad_guard();
        let mut closure = |inputs: &[Tensor]| vec![f(&inputs[0])];
        let module =
            CModule::create_by_tracing("NeuroevoModel", "forward", &[example], &mut closure)?;
        crate::fsutil::write_torch_file(path, |tmp| {
            module.save(tmp).map_err(|e| {
                Error::Other(format!("{}: cannot write TorchScript: {e}", path.display()))
            })
        })
    })();
    vs.set_device(device);
    vs.unfreeze();
    result
}

/// What a user needs to feed an exported classifier; written as `<model>.json`. A model made
/// elsewhere needs only `input_shape` and `input_range` (and `kind: "features"` for a feature
/// extractor); classes and feature sizes are then found with one forward pass.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct ModelInfo {
    /// `classifier` (the `.features.pt` beside it is its features module).
    #[serde(default = "classifier_kind")]
    pub kind: String,
    #[serde(default)]
    pub format: String,
    #[serde(default)]
    pub arch: String,
    /// `[C, H, W]`; inputs are `[N, C, H, W]` float32.
    pub input_shape: [i64; 3],
    /// Range of the input values, e.g. [0, 1] = pixel / 255.
    pub input_range: (f32, f32),
    #[serde(default)]
    pub normalization: String,
    #[serde(default)]
    pub outputs: String,
    #[serde(default)]
    pub classes: Vec<String>,
    /// TorchScript file returning the penultimate-layer features `[N, feature_dim]`.
    #[serde(default)]
    pub features_file: Option<String>,
    #[serde(default)]
    pub feature_dim: i64,
    /// The weights as safetensors (tch's variable names), which `python/neuroevo_torch.py`
    /// loads into the same network rebuilt from `arch` as a trainable `torch.nn.Module`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub weights_file: Option<String>,
    #[serde(default)]
    pub parameters: i64,
    #[serde(default)]
    pub dataset: String,
    #[serde(default)]
    pub traced_batch: i64,
    #[serde(default)]
    pub metrics: serde_json::Value,
}

fn classifier_kind() -> String {
    "classifier".into()
}

impl ModelInfo {
    /// The description of a classifier trained on `data` (`metrics`: accuracies and settings).
    pub fn for_classifier(
        net: &LayerNet,
        parameters: i64,
        data: &crate::data::Dataset,
        metrics: serde_json::Value,
    ) -> Self {
        ModelInfo {
            kind: classifier_kind(),
            format: "TorchScript (traced, eval mode, CPU)".into(),
            arch: net.arch.to_string(),
            input_shape: data.shape,
            input_range: data.value_range,
            normalization: if data.value_range == (0.0, 1.0) {
                "pixel / 255".into()
            } else {
                "pixel / 127.5 - 1".into()
            },
            outputs: "logits [N, classes] (apply softmax for probabilities)".into(),
            classes: data.classes.clone(),
            features_file: None,
            weights_file: None,
            feature_dim: net.feature_dim,
            parameters,
            dataset: data.name.clone(),
            traced_batch: 0,
            metrics,
        }
    }
}

pub fn features_path(model: &Path) -> PathBuf {
    let stem = model
        .file_stem()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_else(|| "model".into());
    model.with_file_name(format!("{stem}.features.pt"))
}

pub fn info_path(model: &Path) -> PathBuf {
    model.with_extension("json")
}

/// Exports a classifier as `path` (logits), `<stem>.features.pt` (penultimate features) and
/// `<stem>.json` (the model's description).
pub fn export_classifier(
    net: &LayerNet,
    vs: &mut nn::VarStore,
    path: &Path,
    mut info: ModelInfo,
) -> Result<()> {
    let [c, h, w] = net.input;
    let traced_batch = 4;
    let example = Tensor::zeros([traced_batch, c, h, w], (tch::Kind::Float, Device::Cpu));
    export_traced(vs, &example, path, &|x| net.forward_t(x, false))?;
    let fpath = features_path(path);
    export_traced(vs, &example, &fpath, &|x| net.features_t(x, false))?;
    info.features_file = fpath.file_name().map(|n| n.to_string_lossy().into_owned());
    // the weights, to be trained further (TorchScript holds them as constants)
    let wpath = path.with_extension("safetensors");
    crate::fsutil::write_torch_file(&wpath, |tmp| {
        vs.save(tmp)
            .map_err(|e| Error::Other(format!("{}: {e}", wpath.display())))
    })?;
    info.weights_file = wpath.file_name().map(|n| n.to_string_lossy().into_owned());
    info.traced_batch = traced_batch;
    crate::fsutil::write_json_atomic(&info_path(path), &info)
}
