//! neuroevo: neuroevolution on libtorch.
//!
//! One genetic-algorithm engine ([`ga`]) serves every job; [`gari`] reproduces images,
//! [`trainjob`] trains and exports classifiers, [`fool`] evolves fooling images and [`autocnn`]
//! searches CNN architectures.
pub mod autocnn;
pub mod data;
pub mod device;
pub mod error;
pub mod fool;
pub mod fsutil;
pub mod ga;
pub mod gan;
pub mod gari;
pub mod imageio;
pub mod nn;
pub mod plot;
pub mod runutil;
pub mod trainjob;

pub use error::{Error, Result};
