//! `neuroevo fool`: evolve images that a classifier assigns to a chosen class with high softmax
//! confidence ("Deep Neural Networks are Easily Fooled", Nguyen, Yosinski & Clune, CVPR 2015),
//! and ask an independent judge classifier whether a person-like reader would agree.
//!
//! Genomes are the image's pixels (`--space pixels`, values in [0, 1], optionally thresholded
//! to black and white with `--binary`) or the latent vector of a generator (`--space latent`).
//! One population per class; each generation the whole population goes through the classifier
//! in one batched forward pass.
//!
//! [`config`] turns the flags into the run's `config.json`, [`fitness`] scores a population
//! with the classifier, and [`run`] evolves each class's population through the run layer's
//! engine and writes the images, the merged log and the plots.
pub mod config;
pub mod fitness;
pub mod run;

pub use config::{FoolArgs, FoolConfig, Init, Space};
pub use fitness::FoolFitness;
pub use run::{run_fool, ClassResult, FoolSummary};
