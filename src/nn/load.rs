//! Loading TorchScript models with the `.json` beside them: classifiers (`neuroevo train`,
//! `auto-cnn`), generators (`neuroevo gan`) and feature extractors (a classifier's
//! `.features.pt`, the FID's). A file that is not what it should be is a user error naming it.
use super::export::{features_path, info_path, ModelInfo};
use crate::error::{Error, Result};
use crate::fsutil;
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};
use tch::{CModule, Device, Kind, Tensor};

/// Loads a TorchScript module in eval mode; a file that is not one is a user error.
pub fn load_module(path: &Path, device: Device) -> Result<CModule> {
    let mut module = CModule::load_on_device(path, device).map_err(|e| {
        let first = e.to_string().lines().next().unwrap_or("").to_string();
        Error::corrupt(path, format!("not a TorchScript module: {first}"))
    })?;
    module.set_eval();
    Ok(module)
}

/// Reads a model's `.json`; one that describes another kind of model (a generator given as a
/// classifier, say) is a usage error that says which.
fn read_info<T: serde::de::DeserializeOwned>(json: &Path, want: &str) -> Result<T> {
    let v: serde_json::Value = fsutil::read_json(json)?;
    let kind = v
        .get("kind")
        .and_then(|k| k.as_str())
        .map(str::to_string)
        .or_else(|| {
            // descriptions written before they named their kind
            if v.get("latent_dim").is_some() {
                Some("generator".into())
            } else if v.get("format").is_some() {
                Some("classifier".into())
            } else {
                None
            }
        });
    match kind.as_deref() {
        Some(k) if k != want => Err(Error::usage(format!(
            "{}: describes a {k}, not a {want}",
            json.display()
        ))),
        _ => serde_json::from_value(v)
            .map_err(|e| Error::corrupt(json, format!("not the description of a {want}: {e}"))),
    }
}

/// Runs `module` once on a zero input `[1, C, H, W]` and checks that it gives `[1, outputs]`
/// (`what` names the outputs: "classes", "features").
fn probe(
    module: &CModule,
    device: Device,
    path: &Path,
    shape: [i64; 3],
    outputs: i64,
    what: &str,
) -> Result<()> {
    let _g = tch::no_grad_guard();
    let [c, h, w] = shape;
    let x = Tensor::zeros([1, c, h, w], (Kind::Float, device));
    let y = module.forward_ts(&[x]).map_err(|e| {
        Error::usage(format!(
            "{}: does not run on the input its .json describes ([N, {c}, {h}, {w}]): {}",
            path.display(),
            e.to_string().lines().next().unwrap_or("")
        ))
    })?;
    if y.size() != [1, outputs] {
        return Err(Error::usage(format!(
            "{}: gives outputs of shape {:?} for one image; its .json says {outputs} {what}",
            path.display(),
            &y.size()[1..]
        )));
    }
    Ok(())
}

/// A TorchScript classifier with the JSON written beside it by `neuroevo train`.
pub struct Classifier {
    pub module: CModule,
    pub info: ModelInfo,
    pub path: PathBuf,
}

impl Classifier {
    pub fn load(path: &Path, device: Device) -> Result<Self> {
        let path = &super::bundled::resolve(path)?;
        if !path.is_file() {
            return Err(Error::usage(format!(
                "{}: no such model file",
                path.display()
            )));
        }
        let json = crate::nn::export::info_path(path);
        let info: ModelInfo = read_info(&json, "classifier").map_err(|e| match e {
            Error::Io { .. } => Error::usage(format!(
                "{}: missing; it describes the model's input (neuroevo train writes it beside the .pt)",
                json.display()
            )),
            other => other,
        })?;
        let module = load_module(path, device)?;
        probe(
            &module,
            device,
            path,
            info.input_shape,
            info.classes.len() as i64,
            "classes",
        )?;
        Ok(Classifier {
            module,
            info,
            path: path.to_path_buf(),
        })
    }

    /// Softmax probabilities `[N, classes]` of images `[N, C, H, W]` in the model's input range.
    pub fn probs(&self, x: &Tensor) -> Result<Tensor> {
        Ok(self.log_probs(x)?.f_exp()?)
    }

    /// Log-softmax `[N, classes]`: what the GA ranks by, since probabilities of a class the
    /// network rules out underflow to exactly 0 in float32 and would all tie.
    pub fn log_probs(&self, x: &Tensor) -> Result<Tensor> {
        let _g = tch::no_grad_guard();
        Ok(self
            .module
            .forward_ts(&[x])?
            .f_to_kind(Kind::Double)?
            .f_log_softmax(-1, Kind::Double)?)
    }
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
}

pub fn generator_kind() -> String {
    "generator".into()
}

pub struct Generator {
    pub module: CModule,
    pub info: GeneratorInfo,
}

impl Generator {
    pub fn load(path: &Path, device: Device) -> Result<Self> {
        if !path.is_file() {
            return Err(Error::usage(format!(
                "{}: no such generator file",
                path.display()
            )));
        }
        let info: GeneratorInfo = read_info(&path.with_extension("json"), "generator")?;
        let module = load_module(path, device)?;
        Ok(Generator { module, info })
    }
}

/// A feature extractor (the FID's): a traced features module and what its input looks like.
pub struct FeatureExtractor {
    module: CModule,
    pub info: ModelInfo,
    pub features_file: PathBuf,
}

impl FeatureExtractor {
    /// `model` is a classifier exported by `neuroevo train`; its `.features.pt` and `.json`
    /// must be beside it.
    pub fn load(model: &Path, device: Device) -> Result<Self> {
        let model = &super::bundled::resolve(model)?;
        let json = info_path(model);
        let info: ModelInfo = read_info(&json, "classifier").map_err(|e| match e {
            Error::Io { .. } => Error::usage(format!(
                "no {} beside it (neuroevo train writes it)",
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
                "no features module {} beside it",
                features_file.display()
            )));
        }
        let module = load_module(&features_file, device)?;
        probe(
            &module,
            device,
            &features_file,
            info.input_shape,
            info.feature_dim,
            "features",
        )?;
        Ok(FeatureExtractor {
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
}
