//! What the user asks for: a dataset by name and the options of loading it (kept in a run's
//! `config.json`, so a resume loads the same images).
use crate::error::{Error, Result};
use serde::{Deserialize, Serialize};
use std::path::PathBuf;

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum DatasetName {
    Mnist10k,
    Mnist,
    FashionMnist,
    Cifar10,
    Folder(PathBuf),
}

impl DatasetName {
    pub fn parse(s: &str) -> Result<Self> {
        Ok(match s.trim() {
            "mnist-10k" | "mnist10k" => DatasetName::Mnist10k,
            "mnist" => DatasetName::Mnist,
            "fashion-mnist" | "fashion_mnist" | "fashion" => DatasetName::FashionMnist,
            "cifar10" | "cifar-10" => DatasetName::Cifar10,
            other => match other.strip_prefix("folder:") {
                Some(p) if !p.is_empty() => DatasetName::Folder(PathBuf::from(p)),
                _ => {
                    return Err(Error::usage(format!(
                        "--dataset {other}: expected mnist-10k, mnist, fashion-mnist, cifar10 or folder:PATH"
                    )))
                }
            },
        })
    }
    /// As kept in `config.json`: a folder that exists by its absolute path, so that `--resume`
    /// from another working directory reads the same images.
    pub fn stored(self) -> Self {
        match self {
            DatasetName::Folder(p) => DatasetName::Folder(crate::fsutil::stored_path(&p)),
            other => other,
        }
    }
    pub fn label(&self) -> String {
        match self {
            DatasetName::Mnist10k => "mnist-10k".into(),
            DatasetName::Mnist => "mnist".into(),
            DatasetName::FashionMnist => "fashion-mnist".into(),
            DatasetName::Cifar10 => "cifar10".into(),
            DatasetName::Folder(p) => format!("folder:{}", p.display()),
        }
    }
}

/// How to load a dataset.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct DataOptions {
    pub data_dir: Option<PathBuf>,
    /// Fraction of the training set held out for validation (seeded).
    pub val_fraction: f64,
    pub seed: crate::rng::Streams,
    /// Use at most this many training (and test) images, a seeded random subset: for quick runs.
    pub subset: Option<usize>,
    /// Folder datasets: side of the square images, and channels (1 or 3).
    pub image_size: u32,
    pub channels: u8,
    pub download: bool,
}

impl Default for DataOptions {
    fn default() -> Self {
        DataOptions {
            data_dir: None,
            val_fraction: 0.1,
            seed: Default::default(),
            subset: None,
            image_size: 64,
            channels: 3,
            download: true,
        }
    }
}
