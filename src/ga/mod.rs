//! Breeding, shared by every job: who mates and how genomes are varied. The loop that drives a
//! population generation after generation is the run layer's ([`crate::run::engine`]).
//!
//! - [`selection`]: tournament, truncation, roulette, rank;
//! - [`plan`]: the [`Population`] interface, generation plans (mating pool, survivors, pairs)
//!   and AutoCNN's environmental (mu + lambda) selection;
//! - [`ops`]: crossover (half-swap, single/two-point, uniform) and mutation (replacement,
//!   Gaussian, polynomial) for flat genomes, drawn as plans from the run's RNG;
//! - [`flat_cpu`] / [`flat_tensor`]: flat-genome populations on CPU blocks or a `[P, N]` tensor;
//! - [`evolver`]: one GA step on a `[P, N]` genome tensor (the GANs' populations).
pub mod cli;
pub mod evolver;
pub mod flat;
pub mod flat_cpu;
pub mod flat_tensor;
pub mod ops;
pub mod plan;
pub mod selection;

pub use evolver::Evolver;
pub use flat::FlatPopulation;
pub use ops::{Crossover, FlatOps, GeneCount, Mutation};
pub use plan::{plan_generation, Breeding, Pairing, Population, Replacement};
pub use selection::Selection;

pub use crate::rng::GaRng;
