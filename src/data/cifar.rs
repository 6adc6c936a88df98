//! CIFAR-10's binary version: where it is found or downloaded (SHA-256 checked), unpacking the
//! archive, and reading its batches into a [`Dataset`](super::Dataset)'s splits.
use super::download::{download_any, Checksum};
use super::lookup::{mirrors, search_dirs};
use super::options::DataOptions;
use crate::error::{Error, Result};
use std::path::{Path, PathBuf};

pub(crate) const CIFAR_SUM: Checksum = Checksum {
    file: Some("c4a38c50a1bc5f3a1c5537f2155ab9d68f9f25eb1ed8d9ddda3db29a59bca1dd"),
    content: None,
};

pub(crate) const CIFAR_MIRRORS: [&str; 1] = ["https://www.cs.toronto.edu/~kriz/"];

pub(crate) const CIFAR_CLASSES: [&str; 10] = [
    "airplane",
    "automobile",
    "bird",
    "cat",
    "deer",
    "dog",
    "frog",
    "horse",
    "ship",
    "truck",
];

pub(crate) fn locate_cifar(opts: &DataOptions) -> Result<PathBuf> {
    let dirs = search_dirs(opts);
    let complete = |d: &Path| {
        // not only regular files: the read refuses a FIFO or a device with its path
        (1..=5).all(|i| d.join(format!("data_batch_{i}.bin")).exists())
            && d.join("test_batch.bin").exists()
    };
    for d in &dirs {
        for c in [
            d.join("cifar10/cifar-10-batches-bin"),
            d.join("cifar-10-batches-bin"),
            d.clone(),
        ] {
            if complete(&c) {
                return Ok(c);
            }
        }
    }
    let hand = |d: &Path| {
        format!(
            "extract cifar-10-binary.tar.gz into {} by hand (it makes cifar-10-batches-bin/), or use --dataset mnist-10k (bundled)",
            d.join("cifar10").display()
        )
    };
    let Some(root) = dirs.first() else {
        return Err(Error::usage("cifar10: not found, and no --data-dir, $NEUROEVO_DATA or home directory to download into"));
    };
    if !opts.download {
        return Err(Error::usage(format!("cifar10: not found; {}", hand(root))));
    }
    let target = root.join("cifar10");
    let archive = target.join("cifar-10-binary.tar.gz");
    download_any(
        &mirrors("cifar10", &CIFAR_MIRRORS, "cifar-10-binary.tar.gz"),
        &archive,
        &CIFAR_SUM,
    )
    .map_err(|e| {
        Error::usage(format!(
            "cifar10: not found, and the download failed (offline?): {e}; {}",
            hand(root)
        ))
    })?;
    extract_cifar(&archive, &target)?;
    let _ = std::fs::remove_file(&archive);
    Ok(target.join("cifar-10-batches-bin"))
}

/// Extracts only the expected regular files of the CIFAR-10 archive (no other paths).
pub(crate) fn extract_cifar(archive: &Path, target: &Path) -> Result<()> {
    let f = std::fs::File::open(archive).map_err(|e| Error::io(archive, e))?;
    let mut tar = tar::Archive::new(flate2::read::GzDecoder::new(f));
    let out = target.join("cifar-10-batches-bin");
    std::fs::create_dir_all(&out).map_err(|e| Error::io(&out, e))?;
    let wanted: Vec<String> = (1..=5)
        .map(|i| format!("data_batch_{i}.bin"))
        .chain(["test_batch.bin".into(), "batches.meta.txt".into()])
        .collect();
    for entry in tar.entries().map_err(|e| Error::io(archive, e))? {
        let mut entry = entry.map_err(|e| Error::io(archive, e))?;
        let path = entry
            .path()
            .map_err(|e| Error::io(archive, e))?
            .into_owned();
        let name = path
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        if entry.header().entry_type().is_file() && wanted.contains(&name) {
            let mut bytes = Vec::new();
            std::io::Read::read_to_end(&mut entry, &mut bytes)
                .map_err(|e| Error::io(archive, e))?;
            crate::fsutil::write_atomic(&out.join(&name), &bytes)?;
        }
    }
    Ok(())
}

/// CIFAR-10 binary batches: records of 1 label byte + 3072 pixel bytes (R, G, B planes).
pub fn read_cifar(files: &[PathBuf]) -> Result<(Vec<u8>, Vec<u8>, usize)> {
    let (mut x, mut y) = (Vec::new(), Vec::new());
    for f in files {
        let bytes = crate::files::read_regular(f)?;
        if bytes.is_empty() || bytes.len() % 3073 != 0 {
            return Err(Error::corrupt(
                f,
                format!(
                    "{} bytes is not a whole number of 3,073-byte CIFAR-10 records",
                    bytes.len()
                ),
            ));
        }
        for rec in bytes.chunks_exact(3073) {
            if rec[0] >= 10 {
                return Err(Error::corrupt(
                    f,
                    format!("label {} is not one of 10 classes", rec[0]),
                ));
            }
            y.push(rec[0]);
            x.extend_from_slice(&rec[1..]);
        }
    }
    let n = y.len();
    Ok((x, y, n))
}
