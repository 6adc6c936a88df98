//! TorchScript export: the var store is frozen and moved to the CPU, the model traced in eval
//! mode and saved atomically, so the file loads anywhere (`torch.jit.load` in Python,
//! `tch::CModule::load` in Rust) and takes any batch size. Weights become constants.
use super::model::LayerNet;
pub use super::sidecar::{features_path, info_path, ModelInfo};
use crate::error::{Error, Result};
use std::path::Path;
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
