//! A log's records read back: whole lines only (a torn last line or a foreign one is
//! skipped), each under today's names. The log ([`super::log`]) reads what it keeps on resume
//! through here, and so do the TensorBoard pictures ([`super::tensorboard`]) and every report.
use crate::error::{Error, Result};
use serde_json::{Map, Value};
use std::path::Path;

/// The bytes of a log (none for a missing file).
pub(super) fn read_bytes(path: &Path) -> Result<Option<Vec<u8>>> {
    match std::fs::read(path) {
        Ok(b) => Ok(Some(b)),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(Error::io(path, e)),
    }
}

/// The whole records in `bytes` (torn or foreign lines are skipped), each under today's names.
pub(super) fn parse(bytes: &[u8]) -> Vec<Value> {
    bytes
        .split(|&b| b == b'\n')
        .filter_map(|line| match serde_json::from_slice::<Value>(line) {
            Ok(Value::Object(mut m)) => {
                upgrade(&mut m);
                Some(Value::Object(m))
            }
            _ => None,
        })
        .collect()
}

/// Names a figure had in logs written by earlier versions, and its name now.
const RENAMED: [(&str, &str); 3] = [
    ("type", "kind"),
    ("best_fitness", "best"),
    ("mean_fitness", "mean"),
];

/// Renames the figures of a record written by an earlier version (gan's and auto-cnn's
/// `best_fitness`/`mean_fitness`, the `type` of logs before the run layer), so that every
/// reader, the TensorBoard file rebuilt on resume and a resumed log name each figure once.
fn upgrade(m: &mut Map<String, Value>) {
    for (old, new) in RENAMED {
        if !m.contains_key(new) {
            if let Some(v) = m.remove(old) {
                m.insert(new.into(), v);
            }
        }
    }
}

/// Reads the whole records of a log (a missing file has none; torn or foreign lines are
/// skipped).
pub fn read(path: &Path) -> Result<Vec<Value>> {
    Ok(read_bytes(path)?.map(|b| parse(&b)).unwrap_or_default())
}
