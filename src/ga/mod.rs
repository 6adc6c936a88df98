//! The genetic-algorithm engine shared by every job.
//!
//! - [`selection`]: tournament, truncation, roulette, rank;
//! - [`ops`]: crossover (half-swap, single/two-point, uniform) and mutation (replacement,
//!   Gaussian) for flat genomes, drawn as plans from the run's RNG;
//! - [`engine`]: the generational loop, replacement, stop criteria, records, checkpoints;
//! - [`flat_cpu`] / [`flat_tensor`]: flat-genome populations on CPU blocks or a `[P, N]` tensor.
pub mod cli;
pub mod engine;
pub mod flat;
pub mod flat_cpu;
pub mod flat_tensor;
pub mod ops;
pub mod selection;

pub use engine::{
    Engine, EngineState, GaConfig, Observer, Pairing, Population, Record, Replacement, RunFiles,
    StopCriteria, StopReason,
};
pub use flat::FlatPopulation;
pub use ops::{Crossover, FlatOps, GeneCount, Mutation};
pub use selection::Selection;

/// The RNG of every run: seedable, portable, and serialisable into checkpoints.
pub type GaRng = rand_chacha::ChaCha8Rng;
