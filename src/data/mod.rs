//! Datasets: IDX files (MNIST, Fashion-MNIST, and the bundled `mnist-10k`), CIFAR-10's binary
//! version, and image folders; lookup, verified downloads, a seeded validation split, and
//! batching on the device.
pub mod cifar;
pub mod datasets;
pub mod download;
pub mod folder;
pub mod idx;
pub mod lookup;
pub mod options;
pub mod split;

pub use datasets::load_dataset;
pub use options::{DataOptions, DatasetName};
pub use split::{Batches, Dataset, Split};

use std::path::PathBuf;

/// The dataset options every job that trains on a dataset takes.
#[derive(Clone, Debug, clap::Args)]
pub struct DataArgs {
    /// mnist-10k (bundled), mnist, fashion-mnist, cifar10 or folder:PATH.
    #[arg(long, default_value = "mnist-10k")]
    pub dataset: String,
    /// Where to look for (and download) datasets; also $NEUROEVO_DATA.
    #[arg(long)]
    pub data_dir: Option<PathBuf>,
    /// Fraction of the training set held out for validation.
    #[arg(long, default_value_t = 0.1)]
    pub val_fraction: f64,
    /// Use a random subset of this many training (and test) images.
    #[arg(long)]
    pub subset: Option<usize>,
    /// Folder datasets: image side in pixels.
    #[arg(long, default_value_t = 64)]
    pub image_size: u32,
    /// Folder datasets: 1 or 3 channels.
    #[arg(long, default_value_t = 3)]
    pub channels: u8,
}

impl DataArgs {
    /// The dataset name and loading options (the validation split drawn with `seed`).
    pub fn resolve(&self, seed: u64) -> crate::Result<(DatasetName, DataOptions)> {
        Ok((
            DatasetName::parse(&self.dataset)?.stored(),
            DataOptions {
                data_dir: self.data_dir.as_deref().map(crate::fsutil::stored_path),
                val_fraction: self.val_fraction,
                seed: crate::rng::Streams::new(seed),
                subset: self.subset,
                image_size: self.image_size,
                channels: self.channels,
                download: true,
            },
        ))
    }
}
