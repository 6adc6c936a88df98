//! The description written beside every exported model (`<model>.json`): what a classifier or
//! features model reads ([`ModelInfo`]), what a generator takes and makes ([`GeneratorInfo`]),
//! and the `kind` that tells them apart, read with the same code wherever a model is loaded.
use super::model::LayerNet;
use crate::error::{Error, Result};
use crate::fsutil;
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};

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

/// A TorchScript generator `z -> image` with its JSON (`latent_dim`, `output_shape`,
/// `output_range`), as exported by `neuroevo gan`.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct GeneratorInfo {
    #[serde(default = "generator_kind")]
    pub kind: String,
    pub latent_dim: i64,
    /// Shape of the latent input after the batch dimension, e.g. `[100]` or `[128, 1, 1]`.
    pub latent_shape: Vec<i64>,
    /// `[C, H, W]`
    pub output_shape: [i64; 3],
    pub output_range: (f32, f32),
    /// dcgan generators: the transposed convolutions (cin, cout, k, stride, pad, bn), which
    /// `python/neuroevo_torch.py` rebuilds with the weights of `weights_file`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub layers: Option<serde_json::Value>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub weights_file: Option<String>,
}

pub fn generator_kind() -> String {
    "generator".into()
}

/// A model's `.json` as read, with the kind of model it describes: its `kind`, or for
/// descriptions written before they named their kind, the kind its fields show.
pub(crate) struct Sidecar {
    path: PathBuf,
    value: serde_json::Value,
    pub kind: Option<String>,
}

impl Sidecar {
    pub(crate) fn read(json: &Path) -> Result<Self> {
        let value: serde_json::Value = fsutil::read_json(json)?;
        let kind = value
            .get("kind")
            .and_then(|k| k.as_str())
            .map(str::to_string)
            .or_else(|| {
                // descriptions written before they named their kind
                if value.get("latent_dim").is_some() {
                    Some("generator".into())
                } else if value.get("format").is_some() {
                    Some("classifier".into())
                } else {
                    None
                }
            });
        Ok(Sidecar {
            path: json.to_path_buf(),
            value,
            kind,
        })
    }

    /// The description of a `want` (`classifier`, `generator`, `features`); one that describes
    /// another kind of model (a generator given as a classifier, say) is a usage error that
    /// says which.
    pub(crate) fn parse<T: serde::de::DeserializeOwned>(self, want: &str) -> Result<T> {
        match self.kind.as_deref() {
            Some(k) if k != want => Err(Error::usage(format!(
                "{}: describes a {k}, not a {want}",
                self.path.display()
            ))),
            _ => serde_json::from_value(self.value).map_err(|e| {
                let noun = if want == "features" {
                    "features model"
                } else {
                    want
                };
                Error::corrupt(&self.path, format!("not the description of a {noun}: {e}"))
            }),
        }
    }
}

/// Reads a model's `.json` as the description of a `want` ([`Sidecar::parse`]).
pub(crate) fn read_info<T: serde::de::DeserializeOwned>(json: &Path, want: &str) -> Result<T> {
    Sidecar::read(json)?.parse(want)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn write(dir: &Path, json: &str) -> PathBuf {
        let p = dir.join("m.json");
        std::fs::write(&p, json).unwrap();
        p
    }

    #[test]
    fn kind_is_read_or_told_from_older_fields() {
        let dir = tempfile::tempdir().unwrap();
        let kind = |json: &str| Sidecar::read(&write(dir.path(), json)).unwrap().kind;
        assert_eq!(kind(r#"{"kind": "features"}"#).as_deref(), Some("features"));
        assert_eq!(kind(r#"{"latent_dim": 8}"#).as_deref(), Some("generator"));
        assert_eq!(
            kind(r#"{"format": "TorchScript"}"#).as_deref(),
            Some("classifier")
        );
        assert_eq!(kind(r#"{"input_shape": [1, 2, 2]}"#), None);
    }

    #[test]
    fn another_kind_or_a_bad_description_is_refused_with_the_path() {
        let dir = tempfile::tempdir().unwrap();
        let p = write(dir.path(), r#"{"latent_dim": 8}"#);
        let e = read_info::<ModelInfo>(&p, "classifier").err().unwrap();
        assert!(
            e.to_string()
                .contains("describes a generator, not a classifier"),
            "{e}"
        );
        let p = write(dir.path(), r#"{"kind": "features", "input_shape": 3}"#);
        let e = read_info::<ModelInfo>(&p, "features").err().unwrap();
        assert!(
            e.to_string()
                .contains("not the description of a features model"),
            "{e}"
        );
        let p = write(
            dir.path(),
            r#"{"input_shape": [1, 28, 28], "input_range": [0, 1]}"#,
        );
        let info: ModelInfo = read_info(&p, "classifier").unwrap();
        assert_eq!(
            (info.kind.as_str(), info.input_shape),
            ("classifier", [1, 28, 28])
        );
    }
}
