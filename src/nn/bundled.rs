//! The shipped models (`models/mnist-cnn.pt`, `models/mnist-judge.pt`, each with its
//! `.features.pt` and `.json`) are embedded in the binary, so the defaults of `fool` (classifier
//! and judge) and `gan` (the FID extractor) work from any directory, after `cargo install` too.
//! A default path that is not on disk relative to the working directory is served from the
//! embedded copy, unpacked once into the user's cache (`<cache>/models-<content hash>/`,
//! atomically), where its `.json` and `.features.pt` sit beside it as they do in the checkout.
use crate::error::{Error, Result};
use std::path::{Path, PathBuf};

/// The directory the defaults name.
pub const DIR: &str = "models";

const FILES: &[(&str, &[u8])] = &[
    ("mnist-cnn.pt", include_bytes!("../../models/mnist-cnn.pt")),
    (
        "mnist-cnn.features.pt",
        include_bytes!("../../models/mnist-cnn.features.pt"),
    ),
    (
        "mnist-cnn.json",
        include_bytes!("../../models/mnist-cnn.json"),
    ),
    (
        "mnist-judge.pt",
        include_bytes!("../../models/mnist-judge.pt"),
    ),
    (
        "mnist-judge.features.pt",
        include_bytes!("../../models/mnist-judge.features.pt"),
    ),
    (
        "mnist-judge.json",
        include_bytes!("../../models/mnist-judge.json"),
    ),
];

/// The file to read for model `path`: `path` itself when it exists or is not a shipped
/// model's default path (`models/<name>`), else the unpacked embedded copy.
pub fn resolve(path: &Path) -> Result<PathBuf> {
    if path.exists() {
        return Ok(path.to_path_buf());
    }
    let name = path.file_name().and_then(|n| n.to_str()).unwrap_or("");
    let is_default = path.parent() == Some(Path::new(DIR));
    if !is_default || !FILES.iter().any(|(n, _)| *n == name) {
        return Ok(path.to_path_buf());
    }
    Ok(unpacked()?.join(name))
}

/// The directory holding every embedded model file, unpacked on first use.
fn unpacked() -> Result<PathBuf> {
    use sha2::Digest;
    let mut h = sha2::Sha256::new();
    for (name, bytes) in FILES {
        h.update(name.as_bytes());
        h.update(bytes);
    }
    let hash: String = h.finalize()[..6]
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    let cache =
        crate::data::lookup::cache_dir().unwrap_or_else(|| std::env::temp_dir().join("neuroevo"));
    let dir = cache.join(format!("models-{hash}"));
    for (name, bytes) in FILES {
        let path = dir.join(name);
        let whole = std::fs::metadata(&path).is_ok_and(|m| m.len() == bytes.len() as u64);
        if !whole {
            crate::fsutil::write_atomic(&path, bytes).map_err(|e| {
                Error::Other(format!(
                    "cannot unpack the shipped model {name} into {}: {e}",
                    dir.display()
                ))
            })?;
        }
    }
    Ok(dir)
}
