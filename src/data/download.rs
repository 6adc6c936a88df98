//! Downloads with SHA-256 checks. A file is streamed into a temporary file beside its target
//! and renamed into place only when it is complete and its checksum matches; on any failure
//! (unreachable host, HTTP error, connection dropped mid-file, checksum mismatch) the temporary
//! file is removed, so no partial file is ever left behind.
use crate::error::{Error, Result};
use sha2::{Digest, Sha256};
use std::io::{Read, Write};
use std::path::Path;
use std::time::Duration;

/// What a downloaded file must hash to: the SHA-256 of its bytes, or of its gunzipped content
/// (which is the same whichever way a mirror compressed it).
#[derive(Clone, Copy, Debug)]
pub struct Checksum {
    pub file: Option<&'static str>,
    pub content: Option<&'static str>,
}

pub fn sha256_hex(bytes: &[u8]) -> String {
    let d = Sha256::digest(bytes);
    d.iter().map(|b| format!("{b:02x}")).collect()
}

impl Checksum {
    /// True when `bytes` (a file as downloaded) matches.
    pub fn matches(&self, bytes: &[u8]) -> bool {
        if self
            .file
            .is_some_and(|h| h.eq_ignore_ascii_case(&sha256_hex(bytes)))
        {
            return true;
        }
        if let Some(h) = self.content {
            if let Ok(raw) = super::idx::maybe_gunzip(bytes, Path::new("")) {
                return h.eq_ignore_ascii_case(&sha256_hex(&raw));
            }
        }
        false
    }
}

fn agent() -> ureq::Agent {
    ureq::Agent::config_builder()
        .timeout_connect(Some(Duration::from_secs(15)))
        .timeout_recv_response(Some(Duration::from_secs(60)))
        .timeout_recv_body(Some(Duration::from_secs(1800)))
        .build()
        .into()
}

/// Downloads `url` to `dest` (atomically), checking `sum`. Returns the number of bytes.
pub fn download(url: &str, dest: &Path, sum: &Checksum) -> Result<u64> {
    let mut n = 0;
    crate::fsutil::replace_atomic(dest, |tmp| {
        n = fetch_into(url, tmp, sum)?;
        Ok(())
    })?;
    Ok(n)
}

fn fetch_into(url: &str, tmp: &Path, sum: &Checksum) -> Result<u64> {
    let fail = |msg: String| Error::Other(format!("{url}: {msg}"));
    let response = agent().get(url).call().map_err(|e| fail(e.to_string()))?;
    let expected: Option<u64> = response
        .headers()
        .get("content-length")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse().ok());
    let mut reader = response.into_body().into_reader();
    let mut bytes = Vec::with_capacity(expected.unwrap_or(1 << 20).min(1 << 30) as usize);
    let mut buf = vec![0u8; 1 << 16];
    loop {
        match reader.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => bytes.extend_from_slice(&buf[..n]),
            Err(e) => {
                return Err(fail(format!(
                    "connection failed after {} bytes{}: {e}",
                    bytes.len(),
                    expected.map(|n| format!(" of {n}")).unwrap_or_default()
                )))
            }
        }
    }
    if let Some(n) = expected {
        if (bytes.len() as u64) < n {
            return Err(fail(format!(
                "connection dropped after {} of {n} bytes",
                bytes.len()
            )));
        }
    }
    if !sum.matches(&bytes) {
        return Err(fail(format!(
            "checksum mismatch (sha256 {}); the file was not kept",
            sha256_hex(&bytes)
        )));
    }
    let mut f = std::fs::File::create(tmp).map_err(|e| Error::io(tmp, e))?;
    f.write_all(&bytes).map_err(|e| Error::io(tmp, e))?;
    f.sync_data().map_err(|e| Error::io(tmp, e))?;
    Ok(bytes.len() as u64)
}

/// Tries each mirror in turn; the error lists every failure.
pub fn download_any(urls: &[String], dest: &Path, sum: &Checksum) -> Result<u64> {
    let mut errors = Vec::new();
    for url in urls {
        match download(url, dest, sum) {
            Ok(n) => return Ok(n),
            Err(e) => errors.push(e.to_string()),
        }
    }
    Err(Error::Other(errors.join("; ")))
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use std::io::{BufRead, BufReader};
    use std::net::TcpListener;

    /// A tiny HTTP/1.1 server on 127.0.0.1 serving `files`; a path ending in `.drop` sends the
    /// headers of the whole file but only half of it, then closes the connection.
    pub(crate) fn serve(files: Vec<(String, Vec<u8>)>) -> String {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        std::thread::spawn(move || {
            for stream in listener.incoming().take(64) {
                let Ok(mut stream) = stream else { continue };
                let mut line = String::new();
                let mut reader = BufReader::new(stream.try_clone().unwrap());
                if reader.read_line(&mut line).is_err() {
                    continue;
                }
                loop {
                    let mut h = String::new();
                    if reader.read_line(&mut h).unwrap_or(0) == 0 || h == "\r\n" {
                        break;
                    }
                }
                let path = line
                    .split_whitespace()
                    .nth(1)
                    .unwrap_or("/")
                    .trim_start_matches('/')
                    .to_string();
                let (name, drop) = match path.strip_suffix(".drop") {
                    Some(p) => (p.to_string(), true),
                    None => (path.clone(), false),
                };
                match files.iter().find(|(n, _)| *n == name) {
                    Some((_, body)) => {
                        let head = format!(
                            "HTTP/1.1 200 OK\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
                            body.len()
                        );
                        let _ = stream.write_all(head.as_bytes());
                        let n = if drop { body.len() / 2 } else { body.len() };
                        let _ = stream.write_all(&body[..n]);
                    }
                    None => {
                        let _ = stream.write_all(b"HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\nConnection: close\r\n\r\n");
                    }
                }
                let _ = stream.flush();
            }
        });
        format!("http://{addr}")
    }

    fn leftovers(dir: &Path) -> Vec<String> {
        std::fs::read_dir(dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect()
    }

    #[test]
    fn downloads_verifies_and_leaves_nothing_on_failure() {
        let body: Vec<u8> = (0..200_000u32).map(|i| (i * 7 % 251) as u8).collect();
        let good: &'static str = Box::leak(sha256_hex(&body).into_boxed_str());
        let base = serve(vec![("f.bin".into(), body.clone())]);
        let dir = tempfile::tempdir().unwrap();
        let dest = dir.path().join("f.bin");
        let ok = Checksum {
            file: Some(good),
            content: None,
        };

        // checksum mismatch: nothing kept
        let bad = Checksum {
            file: Some("00"),
            content: None,
        };
        let e = download(&format!("{base}/f.bin"), &dest, &bad).unwrap_err();
        assert!(e.to_string().contains("checksum mismatch"), "{e}");
        assert!(leftovers(dir.path()).is_empty());

        // connection dropped mid-file: nothing kept
        let e = download(&format!("{base}/f.bin.drop"), &dest, &ok).unwrap_err();
        assert!(e.to_string().contains("100000"), "{e}");
        assert!(leftovers(dir.path()).is_empty());

        // 404, then a good mirror
        let urls = vec![format!("{base}/missing.bin"), format!("{base}/f.bin")];
        assert_eq!(download_any(&urls, &dest, &ok).unwrap(), body.len() as u64);
        assert_eq!(std::fs::read(&dest).unwrap(), body);
        assert_eq!(leftovers(dir.path()), vec!["f.bin".to_string()]);
    }

    #[test]
    fn content_checksum_accepts_any_gzip_of_the_same_bytes() {
        let raw = b"the same content".to_vec();
        let h: &'static str = Box::leak(sha256_hex(&raw).into_boxed_str());
        let sum = Checksum {
            file: None,
            content: Some(h),
        };
        for level in [1, 9] {
            let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::new(level));
            e.write_all(&raw).unwrap();
            assert!(sum.matches(&e.finish().unwrap()));
        }
        assert!(sum.matches(&raw));
        assert!(!sum.matches(b"other"));
    }
}
