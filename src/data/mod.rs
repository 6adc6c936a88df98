//! Datasets: IDX files (MNIST, Fashion-MNIST, and the bundled `mnist-10k`), CIFAR-10's binary
//! version, and image folders; lookup, verified downloads, a seeded validation split, and
//! batching on the device.
pub mod datasets;
pub mod download;
pub mod folder;
pub mod idx;

pub use datasets::{load_dataset, Batches, DataOptions, Dataset, DatasetName, Split};
