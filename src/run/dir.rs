//! The run directory and the names of the files in it: one place that says what a run writes.
//!
//! | file | what | jobs |
//! |---|---|---|
//! | `config.json` | everything the run is made of (with `"job"`); `--resume` reads it | all |
//! | `log.jsonl` | one record per generation / epoch / evaluation ([`super::log`]) | all |
//! | `events.out.tfevents.0.neuroevo` | the log's scalars for TensorBoard ([`super::tensorboard`]) | all |
//! | `result.json` | what the finished run reports | all |
//! | `checkpoint.bin` | GA state + population (gari; fool: `class-C/checkpoint.bin`) | gari, fool |
//! | `checkpoint.json` | loop state (generation, RNG, clocks...) | gan, auto-cnn |
//! | `checkpoint.pt` | tensors of the populations and fixed latents | gan |
//! | `checkpoint.ot` + `state.json` | weights and the epochs done | train |
//! | `cache.json`, `best.ot` | fitness of every genome trained; weights of the best | auto-cnn |
//! | `.lock` | the advisory lock of the live run, with its process id ([`RunLock`]) | all |
//!
//! Outputs: pictures (`best.png`, `compare.png`, `fitness.png`, `grid.png`, `confidence.png`,
//! `scores.png`, `losses.png`, `fid.png`, `samples/`, `snapshots/`) and models (`model.pt`,
//! `best.pt`, `best-generator.pt`, each with its `.json`).
use crate::error::{Error, Result};
use std::path::{Path, PathBuf};

pub const CONFIG: &str = "config.json";
pub const LOG: &str = "log.jsonl";
pub const RESULT: &str = "result.json";
pub const CHECKPOINT: &str = "checkpoint.bin";
pub const STATE: &str = "checkpoint.json";
pub const TENSORS: &str = "checkpoint.pt";
pub const WEIGHTS: &str = "checkpoint.ot";
pub const TRAIN_STATE: &str = "state.json";
pub const CACHE: &str = "cache.json";
pub const BEST_WEIGHTS: &str = "best.ot";
pub const SAMPLES: &str = "samples";
pub const SNAPSHOTS: &str = "snapshots";

/// The jobs, as named in `config.json` and on the command line.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Job {
    Gari,
    Fool,
    Train,
    AutoCnn,
    Gan,
}

impl Job {
    pub fn name(self) -> &'static str {
        match self {
            Job::Gari => "gari",
            Job::Fool => "fool",
            Job::Train => "train",
            Job::AutoCnn => "auto-cnn",
            Job::Gan => "gan",
        }
    }
    pub fn from_name(s: &str) -> Option<Job> {
        [Job::Gari, Job::Fool, Job::Train, Job::AutoCnn, Job::Gan]
            .into_iter()
            .find(|j| j.name() == s)
    }
    /// What a run of this job leaves in its directory besides config, log and result.
    pub fn outputs(self) -> &'static [&'static str] {
        match self {
            Job::Gari => &["best.png", "compare.png", "fitness.png", "snapshots/"],
            Job::Fool => &["grid.png", "class-*.png", "confidence.png"],
            Job::Train => &["model.pt (+ .features.pt, .json)"],
            Job::AutoCnn => &[
                "best.pt (+ best.features.pt, best.json)",
                "fitness.png",
                "cache.json",
                "pareto.json + pareto.png (with --objectives accuracy,params|macs)",
            ],
            Job::Gan => &[
                "best-generator.pt (+ .json)",
                "samples/",
                "scores.png",
                "losses.png",
                "fid.png",
            ],
        }
    }
    /// The line that tells a user what a finished run of this job wrote in `dir`.
    pub fn wrote(self, dir: &Path) -> String {
        self.wrote_with(dir, true)
    }
    /// As [`Job::wrote`]; without the job's outputs when `outputs` is false (a train run that
    /// exported elsewhere, or not at all).
    pub fn wrote_with(self, dir: &Path, outputs: bool) -> String {
        let mut files: Vec<&str> = if outputs {
            self.outputs().to_vec()
        } else {
            Vec::new()
        };
        files.extend([LOG, super::tensorboard::FILE, CONFIG, RESULT]);
        format!("wrote {}/: {}", dir.display(), files.join(", "))
    }
    /// Guesses the job of a run directory written before `config.json` named its job.
    fn guess(dir: &RunDir) -> Option<Job> {
        let has = |f: &str| dir.file(f).exists();
        if has(CACHE) || has(BEST_WEIGHTS) {
            Some(Job::AutoCnn)
        } else if has(TENSORS) {
            Some(Job::Gan)
        } else if has(TRAIN_STATE) || has(WEIGHTS) {
            Some(Job::Train)
        } else if has(CHECKPOINT) {
            Some(Job::Gari)
        } else if std::fs::read_dir(&dir.root)
            .ok()?
            .flatten()
            .any(|e| e.file_name().to_string_lossy().starts_with("class-"))
        {
            Some(Job::Fool)
        } else {
            None
        }
    }
}

/// A run directory.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RunDir {
    root: PathBuf,
}

impl RunDir {
    pub fn new(root: impl Into<PathBuf>) -> Self {
        RunDir { root: root.into() }
    }
    pub fn path(&self) -> &Path {
        &self.root
    }
    /// A file (or folder) of the run.
    pub fn file(&self, name: &str) -> PathBuf {
        self.root.join(name)
    }
    pub fn config(&self) -> PathBuf {
        self.file(CONFIG)
    }
    pub fn log(&self) -> PathBuf {
        self.file(LOG)
    }
    pub fn result(&self) -> PathBuf {
        self.file(RESULT)
    }
    /// Writes `result.json`: the keys every job's result has (`stop_reason`: a
    /// [`super::StopReason`]'s name, or `completed` for a run of several stops such as fool's
    /// classes; `elapsed_s`, `cpu_s`: wall and CPU seconds over every invocation), then the
    /// job's own figures.
    pub fn write_result(
        &self,
        stop_reason: &str,
        elapsed_s: f64,
        cpu_s: f64,
        figures: &impl serde::Serialize,
    ) -> Result<()> {
        let mut map = serde_json::Map::new();
        map.insert("stop_reason".into(), stop_reason.into());
        map.insert("elapsed_s".into(), elapsed_s.into());
        map.insert("cpu_s".into(), cpu_s.into());
        if let serde_json::Value::Object(m) = serde_json::to_value(figures)? {
            for (k, v) in m {
                if !map.contains_key(&k) {
                    map.insert(k, v);
                }
            }
        }
        crate::fsutil::write_json_atomic(&self.result(), &map)
    }

    /// A file in a sub-folder, e.g. `samples/epoch-0001.png`.
    pub fn sub(&self, folder: &str, name: &str) -> PathBuf {
        self.root.join(folder).join(name)
    }

    /// The job whose run this directory holds (from `config.json`, or guessed from the files
    /// of a run written before the config named its job).
    pub fn job(&self) -> Result<Option<Job>> {
        let cfg: serde_json::Value = crate::fsutil::read_json(&self.config())?;
        Ok(match cfg.get("job").and_then(|j| j.as_str()) {
            Some(name) => Job::from_name(name),
            None => Job::guess(self),
        })
    }

    /// Checks that this directory holds a run of `job` that `--resume` can continue.
    pub fn check_resumable(&self, job: Job, flag: &str) -> Result<()> {
        let shown = self.root.display();
        if !self.root.is_dir() {
            return Err(Error::usage(format!("{flag} {shown}: no such directory")));
        }
        if !self.config().is_file() {
            return Err(Error::usage(format!(
                "{flag} {shown}: no {CONFIG} there; is it the --out directory of an earlier run?"
            )));
        }
        match self.job()? {
            Some(j) if j != job => {
                return Err(Error::usage(format!(
                    "{flag} {shown}: this is a {} run, not a {} run; use `neuroevo {}`",
                    j.name(),
                    job.name(),
                    j.name()
                )))
            }
            _ => {}
        }
        Ok(())
    }

    /// Whether a run here got as far as a checkpoint or a result (a directory with only the
    /// `config.json` of a run that failed or was killed early can be started again).
    pub fn has_progress(&self) -> bool {
        let has = |f: &str| self.file(f).exists();
        [CHECKPOINT, STATE, TRAIN_STATE, TENSORS, RESULT, CACHE]
            .iter()
            .any(|f| has(f))
            || std::fs::read_dir(&self.root).is_ok_and(|entries| {
                entries.flatten().any(|e| {
                    e.file_name().to_string_lossy().starts_with("class-")
                        && e.path().join(CHECKPOINT).exists()
                })
            })
    }

    /// Creates the directory of a new run (refusing a path that is not a directory) and takes
    /// its lock, before [`RunDir::prepare_new`] looks at what it holds.
    pub fn create_locked(&self) -> Result<RunLock> {
        if self.root.exists() && !self.root.is_dir() {
            return Err(Error::usage(format!(
                "--out {}: exists and is not a directory",
                self.root.display()
            )));
        }
        std::fs::create_dir_all(&self.root).map_err(|e| Error::io(&self.root, e))?;
        self.lock()
    }

    /// Checks that this directory can hold a new run: it may exist only if it holds no run
    /// with progress (a run that never reached its first checkpoint is started afresh).
    pub fn prepare_new(&self) -> Result<()> {
        let shown = self.root.display();
        if self.root.exists() && !self.root.is_dir() {
            return Err(Error::usage(format!(
                "--out {shown}: exists and is not a directory"
            )));
        }
        if self.config().exists() {
            if self.has_progress() {
                return Err(Error::usage(format!(
                    "{shown} already holds a run; use --resume {shown} to continue it, or another --out"
                )));
            }
            // the remains of a run that stopped before its first checkpoint
            let log = self.log();
            if log.exists() {
                std::fs::remove_file(&log).map_err(|e| Error::io(&log, e))?;
            }
        } else if let Some(name) = self.foreign_entry()? {
            // a folder of the user's: a run would overwrite files of the same names in it
            return Err(Error::usage(format!(
                "--out {shown}: not empty and not a neuroevo run (it holds {name}); use a new or empty directory"
            )));
        }
        std::fs::create_dir_all(&self.root).map_err(|e| Error::io(&self.root, e))
    }
}

impl RunDir {
    /// The name of one entry of an existing directory without a `config.json`, other than the
    /// lock this process has just made there: such a directory is not a run.
    fn foreign_entry(&self) -> Result<Option<String>> {
        let entries = match std::fs::read_dir(&self.root) {
            Ok(e) => e,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(Error::io(&self.root, e)),
        };
        for entry in entries {
            let name = entry.map_err(|e| Error::io(&self.root, e))?.file_name();
            if name != LOCK {
                return Ok(Some(name.to_string_lossy().into_owned()));
            }
        }
        Ok(None)
    }
}

/// The advisory lock a run holds on its directory for as long as its process lives
/// (`.lock`, holding the process id), so that a second run on the same `--out` or a second
/// `--resume` of it is refused instead of mixing two runs' files.
#[derive(Debug)]
pub struct RunLock {
    _file: std::fs::File,
}

/// The lock file of a run directory.
pub const LOCK: &str = ".lock";

impl RunDir {
    /// Takes the run directory's lock (the directory must exist); a usage error naming the
    /// process that holds it.
    pub fn lock(&self) -> Result<RunLock> {
        use std::io::{Read, Seek, Write};
        let path = self.file(LOCK);
        let mut file = std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(&path)
            .map_err(|e| Error::io(&path, e))?;
        match file.try_lock() {
            Ok(()) => {}
            Err(std::fs::TryLockError::WouldBlock) => {
                let mut pid = String::new();
                let _ = file.read_to_string(&mut pid);
                let by = match pid.trim() {
                    "" => "another process".to_string(),
                    p => format!("process {p}"),
                };
                return Err(Error::usage(format!(
                    "{}: in use by {by}; wait for that run to end, or use another --out",
                    self.root.display()
                )));
            }
            Err(std::fs::TryLockError::Error(e)) => return Err(Error::io(&path, e)),
        }
        (|| -> std::io::Result<()> {
            file.set_len(0)?;
            file.rewind()?;
            write!(file, "{}", std::process::id())?;
            file.flush()
        })()
        .map_err(|e| Error::io(&path, e))?;
        Ok(RunLock { _file: file })
    }
}

/// `runs/<job>-YYYYMMDD-HHMMSS` (UTC).
pub fn default_run_dir(job: Job) -> PathBuf {
    let secs = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0);
    let (days, rem) = (secs / 86_400, secs % 86_400);
    // civil-from-days (Howard Hinnant's algorithm)
    let z = days as i64 + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + if m <= 2 { 1 } else { 0 };
    PathBuf::from("runs").join(format!(
        "{}-{y:04}{m:02}{d:02}-{:02}{:02}{:02}",
        job.name(),
        rem / 3600,
        rem % 3600 / 60,
        rem % 60
    ))
}
