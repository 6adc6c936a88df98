//! A TensorBoard event file beside every `log.jsonl` (`events.out.tfevents.0.neuroevo`), so
//! `tensorboard --logdir runs/` shows every run's curves while it runs. It is written by the
//! run layer's [`super::Log`]: every numeric field of every record becomes a scalar, under tags
//! that mean the same in every job (`fitness/best`, `fitness/mean`, `psnr`, `fid`, `loss/d`,
//! `loss/g`, `score/real`, `accuracy/val`, `time/elapsed_s`, ...), stepped by generation (by
//! epoch where a job has no generations; auto-cnn's evaluations by their count). Records other
//! than a job's main ones are prefixed with their kind (`epoch/loss/d`, `evaluation/fitness`).
//!
//! The format is TensorFlow's record file: for each serialized `Event` protobuf (prost), its
//! length (u64 LE), the masked CRC-32C of the length, the bytes and their masked CRC-32C
//! (crc32c). Each event goes out in one `write`, so a kill leaves at most a torn last record,
//! which TensorBoard skips; on resume the file is rewritten from the records the log keeps, so
//! the curves continue exactly where the run does.
use crate::error::{Error, Result};
use serde_json::Value;
use std::io::Write;
use std::path::{Path, PathBuf};

/// The event file's name (the `tfevents` in it is what TensorBoard looks for).
pub const FILE: &str = "events.out.tfevents.0.neuroevo";

#[derive(Clone, PartialEq, prost::Message)]
struct Event {
    #[prost(double, tag = "1")]
    wall_time: f64,
    #[prost(int64, tag = "2")]
    step: i64,
    #[prost(string, optional, tag = "3")]
    file_version: Option<String>,
    #[prost(message, optional, tag = "5")]
    summary: Option<Summary>,
}

#[derive(Clone, PartialEq, prost::Message)]
struct Summary {
    #[prost(message, repeated, tag = "1")]
    value: Vec<SummaryValue>,
}

#[derive(Clone, PartialEq, prost::Message)]
struct SummaryValue {
    #[prost(string, tag = "1")]
    tag: String,
    #[prost(float, optional, tag = "2")]
    simple_value: Option<f32>,
    #[prost(message, optional, tag = "4")]
    image: Option<SummaryImage>,
}

#[derive(Clone, PartialEq, prost::Message)]
struct SummaryImage {
    #[prost(int32, tag = "1")]
    height: i32,
    #[prost(int32, tag = "2")]
    width: i32,
    /// 1 gray, 3 RGB, 4 RGBA.
    #[prost(int32, tag = "3")]
    colorspace: i32,
    #[prost(bytes = "vec", tag = "4")]
    encoded_image_string: Vec<u8>,
}

fn masked_crc(bytes: &[u8]) -> u32 {
    let c = crc32c::crc32c(bytes);
    (c.rotate_right(15)).wrapping_add(0xa282_ead8)
}

/// One event as a record of the file.
fn frame(event: &Event) -> Vec<u8> {
    use prost::Message;
    let data = event.encode_to_vec();
    let len = (data.len() as u64).to_le_bytes();
    let mut out = Vec::with_capacity(data.len() + 16);
    out.extend_from_slice(&len);
    out.extend_from_slice(&masked_crc(&len).to_le_bytes());
    out.extend_from_slice(&data);
    out.extend_from_slice(&masked_crc(&data).to_le_bytes());
    out
}

/// The TensorBoard tag of field `key` of a record of `kind` (None: not a curve); a record of
/// one class (`class`) has its curves under `class-C/`.
pub fn tag(record: &Value, key: &str) -> Option<String> {
    let kind = record.get("kind").and_then(Value::as_str).unwrap_or("");
    let name = match key {
        "kind" | "generation" | "epoch" | "index" | "evaluation" | "class" => return None,
        "best" => "fitness/best",
        "mean" => "fitness/mean",
        "worst" => "fitness/worst",
        "fitness_std" => "fitness/std",
        "fitness" => "fitness",
        "nonfinite" => "fitness/nonfinite",
        "loss_d" => "loss/d",
        "loss_g" => "loss/g",
        "train_loss" => "loss/train",
        "real_score" => "score/real",
        "fake_score" => "score/fake",
        "train_acc" => "accuracy/train",
        "val_acc" => "accuracy/val",
        "test_acc" => "accuracy/test",
        "elapsed_s" => "time/elapsed_s",
        "cpu_s" => "time/cpu_s",
        "train_s" => "time/train_s",
        "train_cpu_s" => "time/train_cpu_s",
        "seconds" => "time/seconds",
        other => other,
    };
    let main = matches!(kind, "generation" | "init" | "final")
        || (kind == "epoch" && record.get("generation").is_none());
    let name = if main {
        name.to_string()
    } else {
        format!("{kind}/{name}")
    };
    // fool's merged log: one curve per class
    Some(match record.get("class").and_then(Value::as_i64) {
        Some(c) => format!("class-{c}/{name}"),
        None => name,
    })
}

/// The step of a record: its generation, else its epoch; auto-cnn's evaluations by their
/// count.
pub fn step(record: &Value) -> i64 {
    let order: &[&str] = if record.get("kind").and_then(Value::as_str) == Some("evaluation") {
        &["evaluation", "generation"]
    } else {
        &["generation", "epoch"]
    };
    order
        .iter()
        .find_map(|k| record.get(*k).and_then(Value::as_i64))
        .unwrap_or(0)
}

/// The scalars of a record, as (tag, value).
pub fn scalars(record: &Value) -> Vec<(String, f64)> {
    let Some(map) = record.as_object() else {
        return Vec::new();
    };
    map.iter()
        .filter_map(|(k, v)| {
            let x = match v {
                Value::Number(n) => n.as_f64()?,
                Value::Bool(b) => *b as u8 as f64,
                _ => return None,
            };
            Some((tag(record, k)?, x))
        })
        .collect()
}

fn event_of(record: &Value, wall_time: f64) -> Option<Event> {
    let value: Vec<SummaryValue> = scalars(record)
        .into_iter()
        .map(|(tag, x)| SummaryValue {
            tag,
            simple_value: Some(x as f32),
            image: None,
        })
        .collect();
    (!value.is_empty()).then(|| Event {
        wall_time,
        step: step(record),
        file_version: None,
        summary: Some(Summary { value }),
    })
}

fn unix_now() -> f64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs_f64())
        .unwrap_or(0.0)
}

fn header() -> Event {
    Event {
        wall_time: unix_now(),
        step: 0,
        file_version: Some("brain.Event:2".into()),
        summary: None,
    }
}

/// The event file of a run directory, open for appending.
pub struct Events {
    path: PathBuf,
    file: std::fs::File,
}

impl Events {
    /// Writes the event file of `dir` afresh from `kept` (the records the log keeps) and opens
    /// it for appending. Records kept from an earlier invocation get wall times that keep
    /// their spacing (`elapsed_s`) and end now.
    pub fn open(dir: &Path, kept: &[Value]) -> Result<Events> {
        let path = dir.join(FILE);
        let now = unix_now();
        let last = kept
            .iter()
            .filter_map(|r| r.get("elapsed_s").and_then(Value::as_f64))
            .fold(0.0, f64::max);
        let mut bytes = frame(&header());
        for r in kept {
            let t = r.get("elapsed_s").and_then(Value::as_f64).unwrap_or(last);
            if let Some(e) = event_of(r, now - (last - t)) {
                bytes.extend(frame(&e));
            }
        }
        crate::fsutil::write_atomic(&path, &bytes)?;
        let file = std::fs::OpenOptions::new()
            .append(true)
            .open(&path)
            .map_err(|e| Error::io(&path, e))?;
        Ok(Events { path, file })
    }

    /// Appends the scalars of one record, in one write.
    pub fn append(&mut self, record: &Value) -> Result<()> {
        if let Some(e) = event_of(record, unix_now()) {
            self.file
                .write_all(&frame(&e))
                .map_err(|e| Error::io(&self.path, e))?;
        }
        Ok(())
    }
}

/// The pictures a job makes (sample grids, the best image), as image summaries in an event file
/// of their own (`events.out.tfevents.1.neuroevo-images`). Appended while a run goes on; when a
/// job adds a picture at a step its tag already has (a resumed run redoing the steps after its
/// checkpoint, or a final picture at the last step), the file is first rewritten, atomically,
/// without that tag's pictures from that step on, so every tag has each step once, as the
/// scalars do. The first picture an invocation adds also drops the pictures of steps past both
/// it and the log's last record (a resumed run that ends before where a killed one got). A
/// torn last record (a killed run) is dropped when the file is opened.
pub struct Images {
    path: PathBuf,
    file: std::fs::File,
    /// The last step of each tag in the file.
    last: std::collections::HashMap<String, i64>,
    /// Whether pictures past the log's end were dropped (at the first picture added).
    pruned: bool,
}

/// The image event file's name.
pub const IMAGES_FILE: &str = "events.out.tfevents.1.neuroevo-images";

/// The whole events in event-file bytes, each with its byte range; reading stops at the first
/// torn or damaged record.
fn events_in(bytes: &[u8]) -> Vec<(Event, std::ops::Range<usize>)> {
    use prost::Message;
    let word = |at: usize| u32::from_le_bytes(bytes[at..at + 4].try_into().unwrap());
    let mut out = Vec::new();
    let mut i = 0;
    while i + 12 <= bytes.len() {
        if masked_crc(&bytes[i..i + 8]) != word(i + 8) {
            break;
        }
        let len = u64::from_le_bytes(bytes[i..i + 8].try_into().unwrap());
        let Some(end) = usize::try_from(len)
            .ok()
            .and_then(|l| (i + 16).checked_add(l))
            .filter(|&e| e <= bytes.len())
        else {
            break;
        };
        let data = &bytes[i + 12..end - 4];
        if masked_crc(data) != word(end - 4) {
            break;
        }
        let Ok(event) = Event::decode(data) else {
            break;
        };
        out.push((event, i..end));
        i = end;
    }
    out
}

/// The tag of an event's first value.
fn tag_of(e: &Event) -> Option<&str> {
    e.summary
        .as_ref()
        .and_then(|s| s.value.first())
        .map(|v| v.tag.as_str())
}

impl Images {
    pub fn open(dir: &Path) -> Result<Images> {
        let path = dir.join(IMAGES_FILE);
        let mut images = Images {
            file: Self::reopen(&path)?,
            path,
            last: Default::default(),
            pruned: false,
        };
        images.keep(|_| true)?;
        Ok(images)
    }

    fn reopen(path: &Path) -> Result<std::fs::File> {
        std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(path)
            .map_err(|e| Error::io(path, e))
    }

    /// Keeps the whole events for which `keep` is true (and a header), rewriting the file
    /// atomically when that drops anything, and notes each tag's last step.
    fn keep(&mut self, keep: impl Fn(&Event) -> bool) -> Result<()> {
        let bytes = match std::fs::read(&self.path) {
            Ok(b) => b,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Vec::new(),
            Err(e) => return Err(Error::io(&self.path, e)),
        };
        let events = events_in(&bytes);
        let mut kept = Vec::with_capacity(bytes.len());
        self.last.clear();
        for (e, range) in &events {
            if e.file_version.is_some() || keep(e) {
                kept.extend_from_slice(&bytes[range.clone()]);
                if let Some(t) = tag_of(e) {
                    let last = self.last.entry(t.to_string()).or_insert(e.step);
                    *last = (*last).max(e.step);
                }
            }
        }
        if events.first().is_none_or(|(e, _)| e.file_version.is_none()) {
            let mut with_header = frame(&header());
            with_header.extend(kept);
            kept = with_header;
        }
        if kept.len() != bytes.len() {
            crate::fsutil::write_atomic(&self.path, &kept)?;
            self.file = Self::reopen(&self.path)?;
        }
        Ok(())
    }

    /// Appends `img` (as PNG) under `tag` at `step`, in one write.
    pub fn add(&mut self, tag: &str, step: i64, img: &image::DynamicImage) -> Result<()> {
        let step_of = self::step;
        if !self.pruned {
            self.pruned = true;
            // the log is truncated to the checkpoint by now, and has records up to this step
            let log = self.path.with_file_name("log.jsonl");
            let logged = super::history::read(&log)?.iter().map(step_of).max();
            let cut = logged.unwrap_or(step).max(step);
            if self.last.values().any(|&l| l > cut) {
                self.keep(|e| e.step <= cut)?;
            }
        }
        if self.last.get(tag).is_some_and(|&last| step <= last) {
            self.keep(|e| tag_of(e) != Some(tag) || e.step < step)?;
        }
        let rgb = img.to_rgb8();
        let mut png = std::io::Cursor::new(Vec::new());
        rgb.write_to(&mut png, image::ImageFormat::Png)
            .map_err(|e| Error::Other(format!("{}: {e}", self.path.display())))?;
        let event = Event {
            wall_time: unix_now(),
            step,
            file_version: None,
            summary: Some(Summary {
                value: vec![SummaryValue {
                    tag: tag.into(),
                    simple_value: None,
                    image: Some(SummaryImage {
                        height: rgb.height() as i32,
                        width: rgb.width() as i32,
                        colorspace: 3,
                        encoded_image_string: png.into_inner(),
                    }),
                }],
            }),
        };
        self.file
            .write_all(&frame(&event))
            .map_err(|e| Error::io(&self.path, e))?;
        self.last.insert(tag.to_string(), step);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn tags_mean_the_same_in_every_job() {
        let g = json!({"kind": "generation", "generation": 3, "best": 1.0, "loss_d": 0.5, "elapsed_s": 2.0});
        let mut s = scalars(&g);
        s.sort_by(|a, b| a.0.cmp(&b.0));
        assert_eq!(
            s,
            [
                ("fitness/best".to_string(), 1.0),
                ("loss/d".to_string(), 0.5),
                ("time/elapsed_s".to_string(), 2.0)
            ]
        );
        assert_eq!(step(&g), 3);
        let e = json!({"kind": "epoch", "generation": 9, "epoch": 1, "loss_d": 0.4});
        assert_eq!(scalars(&e), [("epoch/loss/d".to_string(), 0.4)]);
        assert_eq!(step(&e), 9);
        let t = json!({"kind": "epoch", "epoch": 2, "val_acc": 0.9});
        assert_eq!(scalars(&t), [("accuracy/val".to_string(), 0.9)]);
    }

    fn image_steps(dir: &Path) -> Vec<(String, i64)> {
        let bytes = std::fs::read(dir.join(IMAGES_FILE)).unwrap();
        let events = events_in(&bytes);
        assert_eq!(
            events.last().unwrap().1.end,
            bytes.len(),
            "whole records only"
        );
        assert!(events[0].0.file_version.is_some());
        events
            .iter()
            .filter_map(|(e, _)| Some((tag_of(e)?.to_string(), e.step)))
            .collect()
    }

    #[test]
    fn pictures_redone_from_a_step_replace_that_tag_s_pictures_from_there_on() {
        let dir = tempfile::tempdir().unwrap();
        let img = image::DynamicImage::new_rgb8(2, 2);
        let mut im = Images::open(dir.path()).unwrap();
        for step in [10, 20, 30] {
            im.add("best", step, &img).unwrap();
            im.add("other", step, &img).unwrap();
        }
        // a kill tears the last record
        let p = dir.path().join(IMAGES_FILE);
        let len = std::fs::metadata(&p).unwrap().len();
        std::fs::OpenOptions::new()
            .write(true)
            .open(&p)
            .unwrap()
            .set_len(len - 5)
            .unwrap();
        let mut im = Images::open(dir.path()).unwrap();
        im.add("best", 20, &img).unwrap();
        im.add("best", 25, &img).unwrap();
        im.add("best", 25, &img).unwrap();
        let got = image_steps(dir.path());
        let want: Vec<(String, i64)> = [
            ("best", 10),
            ("other", 10),
            ("other", 20),
            ("best", 20),
            ("best", 25),
        ]
        .iter()
        .map(|(t, s)| (t.to_string(), *s))
        .collect();
        assert_eq!(got, want);
    }

    #[test]
    fn a_run_resumed_to_an_earlier_end_drops_the_pictures_past_its_log() {
        let dir = tempfile::tempdir().unwrap();
        let img = image::DynamicImage::new_rgb8(2, 2);
        let mut im = Images::open(dir.path()).unwrap();
        for step in [10, 20, 30, 40] {
            im.add("best", step, &img).unwrap();
        }
        im.add("other", 40, &img).unwrap();
        // the log kept to step 20 (the checkpoint); the resumed run ends at 25
        let records = [json!({"kind": "generation", "generation": 20})];
        crate::fsutil::write_jsonl_atomic(&dir.path().join("log.jsonl"), &records).unwrap();
        let mut im = Images::open(dir.path()).unwrap();
        im.add("best", 25, &img).unwrap();
        let got = image_steps(dir.path());
        let want: Vec<(String, i64)> = [("best", 10), ("best", 20), ("best", 25)]
            .iter()
            .map(|(t, s)| (t.to_string(), *s))
            .collect();
        assert_eq!(got, want);
    }

    #[test]
    fn records_are_framed_with_masked_crc32c() {
        // the CRC-32C of "123456789" is 0xE3069283 (RFC 3720)
        assert_eq!(crc32c::crc32c(b"123456789"), 0xE306_9283);
        let f = frame(&header());
        let len = u64::from_le_bytes(f[..8].try_into().unwrap()) as usize;
        assert_eq!(f.len(), 8 + 4 + len + 4);
        assert_eq!(&f[8..12], &masked_crc(&f[..8]).to_le_bytes());
    }
}
