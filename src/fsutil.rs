//! Atomic file writes: every output is written to a temporary file beside its target, flushed,
//! and renamed into place, so a killed run never leaves a half-written file behind.
use crate::error::{Error, Result};
use std::io::Write;
use std::path::{Path, PathBuf};

/// A temporary path beside `path` (hidden, with the process id).
pub fn tmp_path(path: &Path) -> PathBuf {
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    path.with_file_name(format!(".{name}.tmp{}", std::process::id()))
}

/// `path` with `.` and `..` taken out lexically (no link is followed: the path need not exist).
pub fn normalize(path: &Path) -> PathBuf {
    use std::path::Component;
    let mut out = PathBuf::new();
    for c in path.components() {
        match c {
            Component::CurDir => {}
            Component::ParentDir => {
                if !out.pop() {
                    out.push("..");
                }
            }
            other => out.push(other),
        }
    }
    out
}

/// A path given on the command line as a run keeps it in `config.json`: absolute when it
/// names something that exists (so that `--resume` from another directory reads the same
/// file), else as given (a shipped model's default name, resolved when it is read).
pub fn stored_path(path: &Path) -> PathBuf {
    if path.is_relative() && path.exists() {
        if let Ok(abs) = std::path::absolute(path) {
            return normalize(&abs);
        }
    }
    path.to_path_buf()
}

/// Checks, before a long computation, that `path` can be written later: its folder is made if
/// missing and a temporary file is created beside it and removed again.
pub fn check_writable(path: &Path) -> std::io::Result<()> {
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir)?;
    }
    let tmp = tmp_path(path);
    std::fs::File::create(&tmp)?;
    std::fs::remove_file(&tmp)
}

/// Writes `path` atomically with the bytes produced by `fill`.
pub fn write_atomic_with(
    path: &Path,
    fill: impl FnOnce(&mut std::io::BufWriter<std::fs::File>) -> std::io::Result<()>,
) -> Result<()> {
    replace_atomic(path, |tmp| {
        (|| -> std::io::Result<()> {
            let mut w = std::io::BufWriter::new(std::fs::File::create(tmp)?);
            fill(&mut w)?;
            w.flush()?;
            w.get_ref().sync_data()
        })()
        .map_err(|e| Error::io(path, e))
    })
}

/// Writes `path` atomically through `write`, which gets a temporary path beside it to fill (for
/// writers that take a path, like `CModule::save` or `VarStore::save`). On failure the temporary
/// file is removed and `path` is untouched.
pub fn replace_atomic(path: &Path, write: impl FnOnce(&Path) -> Result<()>) -> Result<()> {
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir).map_err(|e| Error::io(dir, e))?;
    }
    let tmp = tmp_path(path);
    let result =
        write(&tmp).and_then(|()| std::fs::rename(&tmp, path).map_err(|e| Error::io(path, e)));
    if result.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    result
}

/// Writes `path` atomically with what a libtorch saver that takes a stream (`VarStore`,
/// `Tensor::save_multi_to_stream`) writes. libtorch aborts the process when its own file
/// writes fail (a full disk); in memory they cannot, and Rust I/O writes the bytes, so a full
/// disk is an error naming `path`.
pub fn write_torch(path: &Path, save: impl FnOnce(&mut Vec<u8>) -> Result<()>) -> Result<()> {
    let mut bytes = Vec::new();
    save(&mut bytes)?;
    write_atomic(path, &bytes)
}

/// As [`write_torch`] for libtorch savers that only take a path (`CModule::save`): they write
/// a scratch file in a memory-backed directory (`/dev/shm` where there is one), whose bytes Rust
/// I/O then writes to `path`.
pub fn write_torch_file(path: &Path, save: impl FnOnce(&Path) -> Result<()>) -> Result<()> {
    static SCRATCH: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    let shm = Path::new("/dev/shm");
    let dir = if shm.is_dir() {
        shm.to_path_buf()
    } else {
        std::env::temp_dir()
    };
    let n = SCRATCH.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    // the saver may choose its format by the extension: keep the target's
    let ext = path
        .extension()
        .map(|e| e.to_string_lossy().into_owned())
        .unwrap_or_default();
    let scratch = dir.join(format!("neuroevo-{}-{n}.{ext}", std::process::id()));
    let bytes =
        save(&scratch).and_then(|()| std::fs::read(&scratch).map_err(|e| Error::io(&scratch, e)));
    let _ = std::fs::remove_file(&scratch);
    write_atomic(path, &bytes?)
}

pub fn write_atomic(path: &Path, bytes: &[u8]) -> Result<()> {
    write_atomic_with(path, |w| w.write_all(bytes))
}

pub fn write_json_atomic<T: serde::Serialize>(path: &Path, value: &T) -> Result<()> {
    let mut bytes = serde_json::to_vec_pretty(value)?;
    bytes.push(b'\n');
    write_atomic(path, &bytes)
}

/// Writes `items` as JSON lines, atomically.
pub fn write_jsonl_atomic<T: serde::Serialize>(path: &Path, items: &[T]) -> Result<()> {
    write_atomic_with(path, |w| {
        for item in items {
            serde_json::to_writer(&mut *w, item)?;
            w.write_all(b"\n")?;
        }
        Ok(())
    })
}

pub fn read_json<T: serde::de::DeserializeOwned>(path: &Path) -> Result<T> {
    let bytes = std::fs::read(path).map_err(|e| Error::io(path, e))?;
    serde_json::from_slice(&bytes).map_err(|e| Error::corrupt(path, format!("invalid JSON: {e}")))
}

/// Saves an image atomically; the format follows the extension of `path`.
pub fn save_image_atomic(path: &Path, img: &image::DynamicImage) -> Result<()> {
    let format = image::ImageFormat::from_path(path).map_err(|e| Error::Image {
        path: path.to_path_buf(),
        source: e,
    })?;
    let mut buf = std::io::Cursor::new(Vec::new());
    img.write_to(&mut buf, format).map_err(|e| Error::Image {
        path: path.to_path_buf(),
        source: e,
    })?;
    write_atomic(path, buf.get_ref())
}

#[cfg(test)]
mod tests {
    use super::*;
    #[test]
    fn atomic_write_replaces_and_leaves_no_temp() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("sub/out.txt");
        write_atomic(&p, b"one").unwrap();
        write_atomic(&p, b"two").unwrap();
        assert_eq!(std::fs::read(&p).unwrap(), b"two");
        let names: Vec<_> = std::fs::read_dir(p.parent().unwrap())
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(names.len(), 1, "{names:?}");
    }
    #[test]
    fn normalize_takes_out_dots_lexically() {
        assert_eq!(normalize(Path::new("/a/./b/../c")), PathBuf::from("/a/c"));
        assert_eq!(
            normalize(Path::new("t1/../t1/m.pt")),
            PathBuf::from("t1/m.pt")
        );
        let dir = tempfile::tempdir().unwrap();
        assert!(check_writable(&dir.path().join("x/y.pt")).is_ok());
        assert_eq!(std::fs::read_dir(dir.path().join("x")).unwrap().count(), 0);
        let file = dir.path().join("f");
        std::fs::write(&file, b"").unwrap();
        assert!(check_writable(&file.join("y.pt")).is_err());
    }
    #[test]
    fn failed_fill_leaves_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("out.bin");
        let r = write_atomic_with(&p, |w| {
            w.write_all(b"partial")?;
            Err(std::io::Error::other("boom"))
        });
        assert!(r.is_err());
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 0);
    }
}
