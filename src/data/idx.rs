//! IDX files (the MNIST format), raw or gzip-compressed: magic number, dimensions, then the
//! values. Only unsigned bytes (type 0x08) are needed for image datasets; other types are
//! reported as unsupported. Every inconsistency is an error naming the file.
use crate::error::{Error, Result};
use std::io::Read;
use std::path::Path;

#[derive(Clone, Debug, PartialEq)]
pub struct Idx {
    pub dims: Vec<usize>,
    pub data: Vec<u8>,
}

/// Reads an IDX file; `.gz` (or gzip magic bytes) is decompressed.
pub fn read_idx(path: &Path) -> Result<Idx> {
    let bytes = crate::files::read_regular(path)?;
    parse_idx(&bytes, path)
}

/// Decompresses gzip data if `bytes` start with the gzip magic, else returns them as they are.
pub fn maybe_gunzip<'a>(bytes: &'a [u8], path: &Path) -> Result<std::borrow::Cow<'a, [u8]>> {
    if bytes.len() >= 2 && bytes[0] == 0x1f && bytes[1] == 0x8b {
        let mut out = Vec::new();
        flate2::read::MultiGzDecoder::new(bytes)
            .read_to_end(&mut out)
            .map_err(|e| Error::corrupt(path, format!("gzip data is corrupt or truncated: {e}")))?;
        Ok(std::borrow::Cow::Owned(out))
    } else {
        Ok(std::borrow::Cow::Borrowed(bytes))
    }
}

/// Parses IDX bytes (gzip or raw); `path` is only used in error messages.
pub fn parse_idx(bytes: &[u8], path: &Path) -> Result<Idx> {
    let raw = maybe_gunzip(bytes, path)?;
    let raw = raw.as_ref();
    if raw.len() < 4 {
        return Err(Error::corrupt(
            path,
            format!("IDX file too short ({} bytes)", raw.len()),
        ));
    }
    if raw[0] != 0 || raw[1] != 0 {
        return Err(Error::corrupt(path, "not an IDX file (bad magic number)"));
    }
    if raw[2] != 0x08 {
        return Err(Error::corrupt(
            path,
            format!(
                "IDX value type 0x{:02x} is not supported (only unsigned bytes, 0x08)",
                raw[2]
            ),
        ));
    }
    let ndims = raw[3] as usize;
    if ndims == 0 || ndims > 4 {
        return Err(Error::corrupt(
            path,
            format!("IDX file has {ndims} dimensions"),
        ));
    }
    let header = 4 + 4 * ndims;
    if raw.len() < header {
        return Err(Error::corrupt(path, "IDX header is truncated"));
    }
    let dims: Vec<usize> = (0..ndims)
        .map(|i| u32::from_be_bytes(raw[4 + 4 * i..8 + 4 * i].try_into().unwrap()) as usize)
        .collect();
    let expected = dims.iter().try_fold(1usize, |acc, &d| acc.checked_mul(d));
    let Some(expected) = expected else {
        return Err(Error::corrupt(
            path,
            format!("IDX dimensions {dims:?} overflow"),
        ));
    };
    let have = raw.len() - header;
    if have < expected {
        return Err(Error::corrupt(
            path,
            format!(
                "IDX file is truncated: dimensions {dims:?} need {expected} values, found {have}"
            ),
        ));
    }
    if have > expected {
        return Err(Error::corrupt(
            path,
            format!(
                "IDX file has {} bytes past the {expected} values of dimensions {dims:?}",
                have - expected
            ),
        ));
    }
    Ok(Idx {
        dims,
        data: raw[header..].to_vec(),
    })
}

/// Writes `dims` + `data` as an IDX file of unsigned bytes (for tests and tools).
pub fn encode_idx(dims: &[usize], data: &[u8]) -> Vec<u8> {
    let mut v = vec![0, 0, 0x08, dims.len() as u8];
    for &d in dims {
        v.extend_from_slice(&(d as u32).to_be_bytes());
    }
    v.extend_from_slice(data);
    v
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    fn gz(bytes: &[u8]) -> Vec<u8> {
        let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        e.write_all(bytes).unwrap();
        e.finish().unwrap()
    }

    #[test]
    fn reads_raw_and_gzip() {
        let data: Vec<u8> = (0..24).collect();
        let raw = encode_idx(&[2, 3, 4], &data);
        let p = Path::new("x.idx");
        let a = parse_idx(&raw, p).unwrap();
        let b = parse_idx(&gz(&raw), p).unwrap();
        assert_eq!(
            a,
            Idx {
                dims: vec![2, 3, 4],
                data
            }
        );
        assert_eq!(a, b);
    }

    #[test]
    fn reports_what_is_wrong_and_where() {
        let p = Path::new("/data/train-images-idx3-ubyte.gz");
        let raw = encode_idx(&[2, 3, 4], &[7; 24]);
        let cases: Vec<(Vec<u8>, &str)> = vec![
            (raw[..raw.len() - 5].to_vec(), "truncated"),
            ([raw.clone(), vec![1, 2]].concat(), "past the"),
            (vec![1, 2, 8, 1, 0, 0, 0, 1, 5], "magic"),
            (vec![0, 0, 0x0d, 1, 0, 0, 0, 1, 0, 0, 0, 0], "0x0d"),
            (raw[..10].to_vec(), "header"),
            (gz(&raw)[..20].to_vec(), "gzip"),
        ];
        for (bytes, needle) in cases {
            let e = parse_idx(&bytes, p).unwrap_err();
            let msg = e.to_string();
            assert!(
                msg.contains(needle) && msg.contains("train-images"),
                "{msg}"
            );
            assert!(e.is_user_error());
        }
    }

    #[test]
    fn reads_the_shipped_mnist_10k() {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("data/mnist-10k");
        let x = read_idx(&dir.join("train-images-idx3-ubyte.gz")).unwrap();
        let y = read_idx(&dir.join("train-labels-idx1-ubyte.gz")).unwrap();
        assert_eq!(x.dims, vec![8004, 28, 28]);
        assert_eq!(y.dims, vec![8004]);
        assert!(y.data.iter().all(|&l| l < 10));
    }
}
