//! neuroevo: neuroevolution on libtorch.
//!
//! Layers, top down (nothing imports a layer above it, and no job imports another):
//! - the jobs, side by side: [`gari`] reproduces images, [`trainjob`] trains and exports
//!   classifiers, [`fool`] evolves fooling images, [`autocnn`] searches CNN architectures and
//!   [`gan`] trains GA-GANs;
//! - the run layer [`run`]: run directories, the resume rule, logs, stop criteria, clocks, the
//!   generational engine and progress bars;
//! - [`ga`] (breeding), [`nn`] (networks, training, TorchScript export and loading) and
//!   [`data`] (datasets);
//! - the base: [`error`], [`fsutil`], [`device`], [`rng`] (the seed's named streams),
//!   [`interrupt`] (Ctrl-C and SIGTERM), [`imageio`], [`plot`].
pub mod autocnn;
pub mod data;
pub mod device;
pub mod error;
pub mod files;
pub mod fool;
pub mod fsutil;
pub mod ga;
pub mod gan;
pub mod gari;
pub mod imageio;
pub mod interrupt;
pub mod memory;
pub mod nn;
pub mod plot;
pub mod rng;
pub mod run;
pub mod trainjob;

pub use error::{Error, Result};
