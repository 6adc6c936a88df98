//! `log.jsonl`: one JSON record per line, appended, never rewritten while a run goes on. Every
//! record has the same core keys in every job — `kind` (what the line is: `generation`,
//! `epoch`, `evaluation`, `init`), `generation` and/or `epoch`, `elapsed_s` and `cpu_s` (the
//! run's wall and CPU seconds, over all its invocations) — and then the job's own figures.
//!
//! Each record goes to the file in one `write` on a file opened for appending, so a killed run
//! leaves whole lines; on resume, [`Log::open`] keeps the records the checkpoint covers and
//! drops the rest (and any torn last line), rewriting the file once, atomically.
pub use super::history::read;
use super::history::{parse, read_bytes};
use crate::error::{Error, Result};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use std::io::Write;
use std::path::{Path, PathBuf};

/// One line of `log.jsonl`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Record {
    pub kind: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub generation: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub epoch: Option<u64>,
    pub elapsed_s: f64,
    #[serde(default)]
    pub cpu_s: f64,
    /// The job's own figures.
    #[serde(flatten)]
    pub fields: Map<String, Value>,
}

impl Record {
    pub fn new(kind: &str, elapsed_s: f64, cpu_s: f64) -> Self {
        Record {
            kind: kind.into(),
            generation: None,
            epoch: None,
            elapsed_s,
            cpu_s,
            fields: Map::new(),
        }
    }
    pub fn generation(mut self, g: u64) -> Self {
        self.generation = Some(g);
        self
    }
    pub fn epoch(mut self, e: u64) -> Self {
        self.epoch = Some(e);
        self
    }
    /// Adds the fields of a JSON object (anything else is ignored).
    pub fn with(mut self, fields: Value) -> Self {
        if let Value::Object(m) = fields {
            self.fields.extend(m);
        }
        self
    }
}

/// The append-only log of a run, and its TensorBoard event file ([`super::tensorboard`]).
pub struct Log {
    path: PathBuf,
    file: std::fs::File,
    events: super::tensorboard::Events,
}

impl Log {
    /// Opens `path` for appending after keeping the records for which `keep(index, record)` is
    /// true (all of them: pass `|_, _| true`). Returns the kept records.
    pub fn open(path: &Path, keep: impl Fn(usize, &Value) -> bool) -> Result<(Log, Vec<Value>)> {
        let existing = read_bytes(path)?;
        let kept: Vec<Value> = existing
            .as_deref()
            .map(parse)
            .unwrap_or_default()
            .into_iter()
            .enumerate()
            .filter(|(i, r)| keep(*i, r))
            .map(|(_, r)| r)
            .collect();
        if let Some(bytes) = existing {
            let whole = bytes.iter().filter(|&&b| b == b'\n').count();
            let torn = !bytes.is_empty() && bytes.last() != Some(&b'\n');
            if kept.len() != whole || torn {
                crate::fsutil::write_jsonl_atomic(path, &kept)?;
            }
        }
        let file = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(path)
            .map_err(|e| Error::io(path, e))?;
        let dir = path.parent().filter(|d| !d.as_os_str().is_empty());
        let events = super::tensorboard::Events::open(dir.unwrap_or(Path::new(".")), &kept)?;
        Ok((
            Log {
                path: path.to_path_buf(),
                file,
                events,
            },
            kept,
        ))
    }

    /// Appends one record as one line, in a single write, and its scalars to the event file.
    pub fn append(&mut self, record: &impl Serialize) -> Result<()> {
        let value = serde_json::to_value(record)?;
        let mut line = serde_json::to_vec(&value)?;
        line.push(b'\n');
        self.file
            .write_all(&line)
            .map_err(|e| Error::io(&self.path, e))?;
        self.events.append(&value)
    }
}

/// The generation a record belongs to (`None` for records without one).
pub fn generation_of(r: &Value) -> Option<u64> {
    r.get("generation").and_then(Value::as_u64)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn appends_whole_lines_and_drops_torn_and_uncovered_ones() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("log.jsonl");
        {
            let (mut log, kept) = Log::open(&p, |_, _| true).unwrap();
            assert!(kept.is_empty());
            for g in 0..4 {
                log.append(&Record::new("generation", 1.0, 0.5).generation(g))
                    .unwrap();
            }
        }
        // a torn last line, as a kill in the middle of a write would leave
        std::fs::OpenOptions::new()
            .append(true)
            .open(&p)
            .unwrap()
            .write_all(b"{\"kind\":\"gen")
            .unwrap();
        let (_, kept) = Log::open(&p, |_, r| generation_of(r).is_some_and(|g| g < 3)).unwrap();
        assert_eq!(kept.len(), 3);
        let text = std::fs::read_to_string(&p).unwrap();
        assert_eq!(text.lines().count(), 3);
        assert!(text.ends_with('\n'));
        let r: Record = serde_json::from_value(kept[2].clone()).unwrap();
        assert_eq!(
            (r.kind.as_str(), r.generation, r.cpu_s),
            ("generation", Some(2), 0.5)
        );
        // a record of an earlier version is read under today's names
        std::fs::write(
            &p,
            "{\"type\":\"generation\",\"generation\":1,\"best_fitness\":0.5,\"mean_fitness\":0.25,\"elapsed_s\":1}\n",
        )
        .unwrap();
        let r = &read(&p).unwrap()[0];
        assert_eq!(
            (&r["kind"], &r["best"], &r["mean"]),
            (&json!("generation"), &json!(0.5), &json!(0.25))
        );
        assert!(r.get("best_fitness").is_none() && r.get("type").is_none());
    }
}
