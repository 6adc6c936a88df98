//! Networks: the layer-list notation ([`arch`]), the CNN built from it ([`model`]), training
//! ([`train`]) TorchScript export ([`export`]) and loading ([`load`]), the shipped models
//! ([`bundled`]), the `.json` beside every exported model ([`sidecar`]) and the flags of
//! training ([`cli`]).
pub mod arch;
pub mod bundled;
pub mod cli;
pub mod export;
pub mod inspect;
pub mod load;
pub mod model;
pub mod precision;
pub mod sidecar;
pub mod train;

pub use arch::{Arch, Layer, PoolKind};
pub use model::LayerNet;
pub use precision::Precision;
