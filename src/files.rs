//! Reading untrusted input files (dataset files, images): only regular files are read. A FIFO
//! would block the read forever (and a device could stream without end), so every file is
//! opened with `O_NONBLOCK` — opening a FIFO that no one writes to returns at once — and the
//! opened file's own metadata decides, so a path swapped for a FIFO between a folder walk and
//! the read is refused as well.
use crate::error::{Error, Result};
use std::io::Read;
use std::os::unix::fs::{FileTypeExt, OpenOptionsExt};
use std::path::Path;

/// What a file that is not a regular file is, for messages ("a FIFO", "a socket", ...).
pub fn kind_of(t: std::fs::FileType) -> &'static str {
    if t.is_fifo() {
        "a FIFO (named pipe)"
    } else if t.is_char_device() {
        "a character device"
    } else if t.is_block_device() {
        "a block device"
    } else if t.is_socket() {
        "a socket"
    } else if t.is_dir() {
        "a directory"
    } else if t.is_file() {
        "a regular file"
    } else {
        "not a regular file"
    }
}

/// The refusal of `path`, which is `kind` (see [`kind_of`]).
pub fn not_regular(path: &Path, kind: &str) -> Error {
    Error::usage(format!(
        "{}: is {kind}, not a regular file; only regular files are read",
        path.display()
    ))
}

/// The bytes of the regular file `path`; anything else (FIFO, device, socket, directory) is a
/// user error naming the path, returned without waiting for data.
pub fn read_regular(path: &Path) -> Result<Vec<u8>> {
    let mut file = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NONBLOCK)
        .open(path)
        .map_err(|e| Error::io(path, e))?;
    let meta = file.metadata().map_err(|e| Error::io(path, e))?;
    if !meta.is_file() {
        return Err(not_regular(path, kind_of(meta.file_type())));
    }
    // O_NONBLOCK does not change reads of a regular file
    let mut bytes = Vec::with_capacity(meta.len() as usize);
    file.read_to_end(&mut bytes)
        .map_err(|e| Error::io(path, e))?;
    Ok(bytes)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn mkfifo(p: &Path) {
        let c = std::ffi::CString::new(p.to_str().unwrap()).unwrap();
        assert_eq!(unsafe { libc::mkfifo(c.as_ptr(), 0o644) }, 0);
    }

    #[test]
    fn reads_regular_files_and_refuses_fifos_devices_and_directories_at_once() {
        let dir = tempfile::tempdir().unwrap();
        let f = dir.path().join("a.bin");
        std::fs::write(&f, b"bytes").unwrap();
        assert_eq!(read_regular(&f).unwrap(), b"bytes");
        let link = dir.path().join("link.bin");
        std::os::unix::fs::symlink(&f, &link).unwrap();
        assert_eq!(read_regular(&link).unwrap(), b"bytes");
        let fifo = dir.path().join("fifo.gz");
        mkfifo(&fifo);
        let t = std::time::Instant::now();
        let e = read_regular(&fifo).unwrap_err();
        assert!(t.elapsed().as_secs() < 5);
        assert!(e.is_user_error(), "{e}");
        let msg = e.to_string();
        assert!(msg.contains("fifo.gz") && msg.contains("FIFO"), "{msg}");
        let e = read_regular(Path::new("/dev/zero")).unwrap_err();
        assert!(e.to_string().contains("character device"), "{e}");
        assert!(read_regular(dir.path()).unwrap_err().is_user_error());
        assert!(read_regular(&dir.path().join("missing"))
            .unwrap_err()
            .is_user_error());
    }
}
