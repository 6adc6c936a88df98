//! Networks: the layer-list notation ([`arch`]), the CNN built from it ([`model`]), training
//! ([`train`]) TorchScript export ([`export`]) and loading ([`load`]), the shipped models
//! ([`bundled`]).
pub mod arch;
pub mod bundled;
pub mod export;
pub mod inspect;
pub mod load;
pub mod model;
pub mod precision;
pub mod train;

pub use arch::{Arch, Layer, PoolKind};
pub use model::LayerNet;
pub use precision::Precision;
