//! Opening a run: a new one in `--out`, or `--resume DIR` under the one resume rule of every
//! job. The common flags are resolved once here — the run directory, resumed or new, quiet, the
//! device, the seed and its named streams — and handed to the job as a [`Run`].
//!
//! The resume rule: a resumed run continues as it was. Stop criteria and output cadences may be
//! given again (each job lists them in [`JobConfig::ON_RESUME`]) and replace the run's own; any
//! other flag typed with `--resume` shapes the run and is refused with exit code 2, naming it.
//! `--resume` of another job's directory says whose it is.
use super::args::{seed_or_random, RunArgs};
use super::dir::{default_run_dir, Job, RunDir};
use crate::device::parse_device;
use crate::error::{Error, Result};
use crate::rng::Streams;
use serde::{de::DeserializeOwned, Serialize};
use tch::Device;

/// The flags every job accepts with `--resume`.
const ALWAYS_ON_RESUME: &[&str] = &["--resume", "--quiet", "--out"];

/// A job's `config.json`.
pub trait JobConfig: Serialize + DeserializeOwned {
    const JOB: Job;
    /// Flags that may be given with `--resume` (stop criteria, output cadences).
    const ON_RESUME: &'static [&'static str];
    /// The device as recorded (`auto`, `cpu`, `cuda:N`).
    fn device(&self) -> &str;
    fn seed(&self) -> u64;
    /// Rewrites a `config.json` written by an earlier version into the current schema.
    fn upgrade(_config: &mut serde_json::Value) {}
}

/// What a new run's config is made from: the common flags, resolved.
pub struct NewRun {
    pub seed: u64,
    pub device_name: String,
    pub device: Device,
}

/// An open run.
pub struct Run<C> {
    pub cfg: C,
    pub dir: RunDir,
    /// Held until the run ends.
    pub lock: super::dir::RunLock,
    pub resumed: bool,
    pub quiet: bool,
    /// The device its config names, as parsed once.
    pub device: Device,
    /// Every device the run may use (several GPUs for `auto`/`cuda` on a machine with several;
    /// the first is `device`): a job that trains on several, as auto-cnn does, takes them here.
    pub devices: Vec<Device>,
    pub streams: Streams,
}

/// The flags of `given` that `--resume` refuses, as one usage error.
pub fn check_resume_flags(given: &[String], allowed: &[&str]) -> Result<()> {
    let refused: Vec<&str> = given
        .iter()
        .map(String::as_str)
        .filter(|f| !ALWAYS_ON_RESUME.contains(f) && !allowed.contains(f))
        .collect();
    if refused.is_empty() {
        return Ok(());
    }
    Err(Error::usage(format!(
        "--resume continues the run as it was; {} cannot change (only {} may be given again)",
        refused.join(", "),
        if allowed.is_empty() {
            "--quiet".to_string()
        } else {
            allowed.join(", ")
        }
    )))
}

/// Opens a run: `new` makes the config of a new run; `on_resume` applies the stop criteria and
/// cadences given with `--resume` to the stored one. Writes `config.json` (with the job's name).
pub fn open<C: JobConfig>(
    args: &RunArgs,
    new: impl FnOnce(&NewRun) -> Result<C>,
    on_resume: impl FnOnce(&mut C) -> Result<()>,
) -> Result<Run<C>> {
    let (cfg, dir, device, lock) = match &args.resume {
        Some(path) => {
            let dir = RunDir::new(path);
            dir.check_resumable(C::JOB, "--resume")?;
            if let Some(out) = &args.out {
                if out != path {
                    return Err(Error::usage(
                        "--out and --resume name different directories; a resumed run writes where it started",
                    ));
                }
            }
            check_resume_flags(&args.given, C::ON_RESUME)?;
            let lock = dir.lock()?;
            let mut cfg: C = read_config(&dir)?;
            on_resume(&mut cfg)?;
            let device = parse_device(cfg.device())?;
            (cfg, dir, device, lock)
        }
        None => {
            let device_name = args.device_or_auto();
            let device = parse_device(&device_name)?;
            let seed = seed_or_random(args.seed);
            let cfg = new(&NewRun {
                seed,
                device_name,
                device,
            })?;
            let dir = RunDir::new(args.out.clone().unwrap_or_else(|| default_run_dir(C::JOB)));
            let lock = dir.create_locked()?;
            dir.prepare_new()?;
            (cfg, dir, device, lock)
        }
    };
    write_config(&dir, &cfg)?;
    let devices = crate::device::devices_named(cfg.device(), device);
    Ok(Run {
        lock,
        streams: Streams::new(cfg.seed()),
        cfg,
        dir,
        resumed: args.resume.is_some(),
        quiet: args.quiet,
        devices,
        device,
    })
}

/// Reads a run's `config.json` (upgraded from an earlier version's schema where needed).
pub fn read_config<C: JobConfig>(dir: &RunDir) -> Result<C> {
    let mut v: serde_json::Value = crate::fsutil::read_json(&dir.config())?;
    C::upgrade(&mut v);
    serde_json::from_value(v).map_err(|e| {
        Error::corrupt(
            dir.config(),
            format!("not the config of a {} run: {e}", C::JOB.name()),
        )
    })
}

/// Writes `config.json` atomically, with `"job"` first.
pub fn write_config<C: JobConfig>(dir: &RunDir, cfg: &C) -> Result<()> {
    let mut map = serde_json::Map::new();
    map.insert("job".into(), C::JOB.name().into());
    if let serde_json::Value::Object(m) = serde_json::to_value(cfg)? {
        map.extend(m);
    }
    crate::fsutil::write_json_atomic(&dir.config(), &map)
}

#[cfg(test)]
mod tests {
    use super::*;
    #[test]
    fn resume_refuses_shaping_flags_by_name() {
        let given = vec![
            "--resume".to_string(),
            "--generations".into(),
            "--population".into(),
        ];
        let e = check_resume_flags(&given, &["--generations"]).unwrap_err();
        assert!(matches!(e, Error::Usage(_)));
        let msg = e.to_string();
        assert!(
            msg.contains("--population") && !msg.contains("--generations,"),
            "{msg}"
        );
        assert!(check_resume_flags(&given[..2], &["--generations"]).is_ok());
    }
}
