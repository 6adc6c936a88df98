//! Loading TorchScript models with the `.json` beside them: classifiers (`neuroevo train`,
//! `auto-cnn`), generators (`neuroevo gan`) and feature extractors (a classifier's
//! `.features.pt`, the FID's). A file that is not what it should be is a user error naming it.
use super::sidecar::{features_path, info_path, read_info, ModelInfo, Sidecar};
pub use super::sidecar::{generator_kind, GeneratorInfo};
use crate::error::{Error, Result};
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};
use tch::{CModule, Device, Kind, Tensor};

/// Loads a TorchScript module in eval mode, after checking what its code runs
/// ([`super::inspect`]); a file that is not one is a user error with libtorch's reason.
pub fn load_module(path: &Path, device: Device) -> Result<CModule> {
    super::inspect::check(path)?;
    let mut module = CModule::load_on_device(path, device).map_err(|e| {
        Error::corrupt(
            path,
            format!("not a TorchScript module: {}", torch_reason(&e)),
        )
    })?;
    module.set_eval();
    Ok(module)
}

/// The first line of libtorch's message, without tch's prefix and, when it runs on, cut after
/// its first sentence ("... not a ZIP archive. This is an internal miniz error. If you ...").
fn torch_reason(e: &tch::TchError) -> String {
    let s = e.to_string();
    let first = s.lines().next().unwrap_or("").trim();
    let first = first
        .strip_prefix("Internal torch error: ")
        .unwrap_or(first);
    match first.find(". ") {
        Some(i) if first.len() > 120 => first[..i].to_string(),
        _ => first.to_string(),
    }
}

/// What a model made elsewhere reads, given on the command line (`--input-shape C,H,W
/// --input-range LO,HI [--classes a,b,c]`) instead of a `.json` beside it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct InputSpec {
    pub input_shape: [i64; 3],
    pub input_range: (f32, f32),
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub classes: Option<Vec<String>>,
}

impl InputSpec {
    /// From the flags; `None` when neither shape nor range is given.
    pub fn from_flags(
        shape: Option<&str>,
        range: Option<&str>,
        classes: Option<&str>,
    ) -> Result<Option<InputSpec>> {
        let (shape, range) = match (shape, range) {
            (None, None) => {
                return match classes {
                    Some(_) => Err(Error::usage(
                        "--classes needs --input-shape and --input-range",
                    )),
                    None => Ok(None),
                }
            }
            (Some(s), Some(r)) => (s, r),
            _ => {
                return Err(Error::usage(
                    "--input-shape and --input-range go together (C,H,W and LO,HI)",
                ))
            }
        };
        let nums = |flag: &str, s: &str| -> Result<Vec<f64>> {
            s.split(',')
                .map(|t| t.trim().parse::<f64>())
                .collect::<std::result::Result<_, _>>()
                .map_err(|_| {
                    Error::usage(format!("{flag} {s}: expected numbers separated by commas"))
                })
        };
        let sh = nums("--input-shape", shape)?;
        if sh.len() != 3
            || sh
                .iter()
                .any(|&v| v < 1.0 || v.fract() != 0.0 || v > 4096.0)
        {
            return Err(Error::usage(format!(
                "--input-shape {shape}: expected C,H,W (positive integers), e.g. 1,28,28"
            )));
        }
        let r = nums("--input-range", range)?;
        if r.len() != 2 || !(r[0] < r[1]) || r.iter().any(|v| !v.is_finite()) {
            return Err(Error::usage(format!(
                "--input-range {range}: expected LO,HI with LO < HI, e.g. 0,1"
            )));
        }
        Ok(Some(InputSpec {
            input_shape: [sh[0] as i64, sh[1] as i64, sh[2] as i64],
            input_range: (r[0] as f32, r[1] as f32),
            classes: classes.map(|c| c.split(',').map(|x| x.trim().to_string()).collect()),
        }))
    }

    /// The flags laid over a `.json`'s description: what the flags say wins, in every loader
    /// (classifiers and FID extractors alike).
    fn over(&self, mut info: ModelInfo) -> ModelInfo {
        info.input_shape = self.input_shape;
        info.input_range = self.input_range;
        if let Some(c) = &self.classes {
            info.classes = c.clone();
        }
        info
    }

    fn info(&self, kind: &str) -> ModelInfo {
        ModelInfo {
            kind: kind.into(),
            format: "TorchScript".into(),
            arch: String::new(),
            input_shape: self.input_shape,
            input_range: self.input_range,
            normalization: String::new(),
            outputs: String::new(),
            classes: self.classes.clone().unwrap_or_default(),
            features_file: None,
            weights_file: None,
            feature_dim: 0,
            parameters: 0,
            dataset: String::new(),
            traced_batch: 0,
            metrics: serde_json::Value::Null,
        }
    }
}

/// The number of outputs `module` gives for a batch of two zero images of `shape` (a usage
/// error naming `path` when it does not run on them or gives no `[2, K]` with K > 0); two, so
/// that a model whose output ignores the batch (`[1, K]` for any batch) is caught here.
/// `described`: where the shape comes from ("its .json", "--input-shape").
fn output_size(
    module: &CModule,
    device: Device,
    path: &Path,
    shape: [i64; 3],
    described: &str,
) -> Result<i64> {
    let _g = tch::no_grad_guard();
    let [c, h, w] = shape;
    let x = Tensor::f_zeros([PROBE_BATCH, c, h, w], (Kind::Float, device))?;
    let y = module.forward_ts(&[x]).map_err(|e| {
        Error::usage(format!(
            "{}: does not run on the input {described} describes ([N, {c}, {h}, {w}]): {}",
            path.display(),
            torch_reason(&e)
        ))
    })?;
    match y.size()[..] {
        [PROBE_BATCH, k] if k > 0 => Ok(k),
        [PROBE_BATCH, 0] => Err(Error::usage(format!(
            "{}: gives no outputs (shape [{PROBE_BATCH}, 0] for {PROBE_BATCH} images)",
            path.display()
        ))),
        ref s => Err(Error::usage(format!(
            "{}: gives outputs of shape {:?} for a batch of {PROBE_BATCH} images; expected [{PROBE_BATCH}, K]",
            path.display(),
            s
        ))),
    }
}

/// Images in the load-time probe.
const PROBE_BATCH: i64 = 2;

/// Checks that `module` gives `outputs` per image for zero inputs of `shape` (as
/// [`output_size`]); `what` names the outputs ("classes", "features"), `said` where their
/// count and the shape come from ("its .json", "--classes").
fn probe(
    module: &CModule,
    device: Device,
    path: &Path,
    shape: (&[i64; 3], &str),
    expected: (i64, &str, &str),
) -> Result<()> {
    let k = output_size(module, device, path, *shape.0, shape.1)?;
    check_outputs(path, k, expected)
}

/// `k` outputs per image against `expected` (as [`probe`]).
fn check_outputs(path: &Path, k: i64, expected: (i64, &str, &str)) -> Result<()> {
    let (outputs, what, said) = expected;
    if k != outputs {
        return Err(Error::usage(format!(
            "{}: gives {k} outputs per image; {said} says {outputs} {what}",
            path.display()
        )));
    }
    Ok(())
}

/// A model file as every loader takes it: a shipped model's default path resolved (when
/// `bundled`), the file checked to exist, and the path of the `.json` that describes it.
struct ModelFile {
    path: PathBuf,
    json: PathBuf,
}

impl ModelFile {
    /// `noun` names the file in the error ("model", "generator").
    fn find(path: &Path, noun: &str, bundled: bool) -> Result<Self> {
        let path = if bundled {
            super::bundled::resolve(path)?
        } else {
            path.to_path_buf()
        };
        if !path.is_file() {
            return Err(Error::usage(format!(
                "{}: no such {noun} file",
                path.display()
            )));
        }
        let json = info_path(&path);
        Ok(ModelFile { path, json })
    }

    fn has_json(&self) -> bool {
        self.json.is_file()
    }

    /// The usage error for a `.json` that is needed and missing; `why` says what it holds.
    fn missing(&self, why: &str) -> Error {
        Error::usage(format!("{}: missing; {why}", self.json.display()))
    }
}

/// The most classes a classifier made elsewhere may have.
pub const MAX_CLASSES: i64 = 1 << 20;

/// A TorchScript classifier with the JSON written beside it by `neuroevo train`.
pub struct Classifier {
    pub module: CModule,
    pub info: ModelInfo,
    pub path: PathBuf,
}

impl Classifier {
    pub fn load(path: &Path, device: Device) -> Result<Self> {
        Self::load_with(path, device, None)
    }

    /// As [`Classifier::load`]; with `spec`, a model made elsewhere: its `.json` may be missing
    /// (the spec says what it reads) and its classes are counted with one forward pass.
    pub fn load_with(path: &Path, device: Device, spec: Option<&InputSpec>) -> Result<Self> {
        let file = ModelFile::find(path, "model", true)?;
        // the model first: a file libtorch cannot read is reported with its reason, whether
        // or not a .json is beside it
        let module = load_module(&file.path, device)?;
        let info = match spec {
            Some(spec) => Self::described_by_flags(&module, device, &file, spec)?,
            None if !file.has_json() => {
                return Err(file.missing("it describes the model's input (neuroevo train writes it beside the .pt; for a model made elsewhere give --input-shape and --input-range)"))
            }
            None => {
                let info: ModelInfo = read_info(&file.json, "classifier")?;
                let n = info.classes.len() as i64;
                probe(
                    &module,
                    device,
                    &file.path,
                    (&info.input_shape, "its .json"),
                    (n, "classes", "its .json"),
                )?;
                info
            }
        };
        Ok(Classifier {
            module,
            info,
            path: file.path,
        })
    }

    /// The description of a model made elsewhere: `spec` over its `.json` if it has one, the
    /// classes counted with one forward pass.
    fn described_by_flags(
        module: &CModule,
        device: Device,
        file: &ModelFile,
        spec: &InputSpec,
    ) -> Result<ModelInfo> {
        let path = &file.path;
        let mut info = if file.has_json() {
            spec.over(read_info(&file.json, "classifier")?)
        } else {
            spec.info("classifier")
        };
        let k = output_size(module, device, path, info.input_shape, "--input-shape")?;
        if k > MAX_CLASSES {
            // each class is named (and gets a population of its own in fool)
            return Err(Error::usage(format!(
                "{}: gives {k} outputs per image; a classifier may have at most {MAX_CLASSES} classes",
                path.display()
            )));
        }
        if info.classes.is_empty() {
            info.classes = (0..k).map(|i| i.to_string()).collect();
        }
        let said = if spec.classes.is_some() {
            "--classes"
        } else {
            "its .json"
        };
        check_outputs(path, k, (info.classes.len() as i64, "classes", said))?;
        Ok(info)
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

pub struct Generator {
    pub module: CModule,
    pub info: GeneratorInfo,
}

impl Generator {
    pub fn load(path: &Path, device: Device) -> Result<Self> {
        let file = ModelFile::find(path, "generator", false)?;
        let module = load_module(&file.path, device)?;
        if !file.has_json() {
            return Err(file.missing("it describes the generator's latent and images (neuroevo gan writes it beside the .pt)"));
        }
        let info: GeneratorInfo = read_info(&file.json, "generator")?;
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
        Self::load_with(model, device, None)
    }

    /// As [`FeatureExtractor::load`]; with `spec` and no `.json` beside it, `model` itself is
    /// the features module (a model made elsewhere), its feature size found by a forward pass.
    pub fn load_with(model: &Path, device: Device, spec: Option<&InputSpec>) -> Result<Self> {
        let file = ModelFile::find(model, "model", true)?;
        let (model, json) = (&file.path, &file.json);
        if !file.has_json() {
            // the model first: a file libtorch cannot read is reported with its reason
            let module = load_module(model, device)?;
            let Some(spec) = spec else {
                return Err(Error::usage(format!(
                    "no {} beside it (neuroevo train writes it; for a features model made elsewhere give --fid-input-shape and --fid-input-range)",
                    json.display()
                )));
            };
            let mut info = spec.info("features");
            info.feature_dim = output_size(
                &module,
                device,
                model,
                info.input_shape,
                "--fid-input-shape",
            )?;
            return Ok(FeatureExtractor {
                module,
                info,
                features_file: model.to_path_buf(),
            });
        }
        // the flags, when given, win over the .json (as for classifiers)
        let over = |info: ModelInfo| match spec {
            Some(s) => s.over(info),
            None => info,
        };
        let said = match spec {
            Some(_) => "--fid-input-shape",
            None => "its .json",
        };
        // a features model made elsewhere: its .json says `"kind": "features"`
        let sidecar = Sidecar::read(json)?;
        if sidecar.kind.as_deref() == Some("features") {
            let mut info: ModelInfo = over(sidecar.parse("features")?);
            let module = load_module(model, device)?;
            let d = output_size(&module, device, model, info.input_shape, said)?;
            if info.feature_dim == 0 {
                info.feature_dim = d;
            }
            check_outputs(model, d, (info.feature_dim, "features", "its .json"))?;
            return Ok(FeatureExtractor {
                module,
                info,
                features_file: model.to_path_buf(),
            });
        }
        let info: ModelInfo = over(sidecar.parse("classifier")?);
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
            (&info.input_shape, said),
            (info.feature_dim, "features", "its .json"),
        )?;
        Ok(FeatureExtractor {
            module,
            info,
            features_file,
        })
    }

    /// Refuses an FID over `samples` images per set whose statistics cannot fit in memory:
    /// the features of both sets (f64) and about six `D x D` f64 matrices (two covariances,
    /// the square root of one with its eigenvectors, their product).
    pub fn check_memory(&self, samples: i64) -> Result<()> {
        let d = self.info.feature_dim as f64;
        crate::memory::check(
            &format!("--fid-model {}", self.features_file.display()),
            &format!(
                "the FID statistics of its {} features",
                self.info.feature_dim
            ),
            2.0 * samples.max(0) as f64 * d * 8.0 + 6.0 * d * d * 8.0,
        )
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
