//! neuroevo: neuroevolution on libtorch.
//!
//! One genetic-algorithm engine ([`ga`]) serves every job; [`gari`] reproduces images.
pub mod device;
pub mod error;
pub mod fsutil;
pub mod ga;
pub mod gari;
pub mod imageio;
pub mod plot;
pub mod runutil;

pub use error::{Error, Result};
