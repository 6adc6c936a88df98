//! Small things every job's run needs: default run directories, seeds, resume checks.
use crate::error::{Error, Result};
use std::path::{Path, PathBuf};

/// The options every job shares (one CLI convention): where a run writes, its seed and device,
/// resuming, and the progress bars.
#[derive(Clone, Debug, Default, clap::Args)]
pub struct RunArgs {
    /// Run directory: everything the run writes, starting with its config.json
    /// (default runs/<job>-<UTC time>).
    #[arg(long)]
    pub out: Option<PathBuf>,
    /// Random seed (default: a fresh one, printed and saved in config.json).
    #[arg(long)]
    pub seed: Option<u64>,
    /// auto (CUDA when available), cpu, cuda or cuda:N.
    #[arg(long)]
    pub device: Option<String>,
    /// Continue the run in this directory from its last checkpoint.
    #[arg(long)]
    pub resume: Option<PathBuf>,
    /// No progress bars.
    #[arg(long, short)]
    pub quiet: bool,
}

impl RunArgs {
    pub fn device_or_auto(&self) -> String {
        self.device.clone().unwrap_or_else(|| "auto".into())
    }
    /// The run directory of a new run of `job`.
    pub fn out_or_default(&self, job: &str) -> PathBuf {
        self.out.clone().unwrap_or_else(|| default_run_dir(job))
    }
}

/// `runs/<job>-YYYYMMDD-HHMMSS` (UTC).
pub fn default_run_dir(job: &str) -> PathBuf {
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
        "{job}-{y:04}{m:02}{d:02}-{:02}{:02}{:02}",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60
    ))
}

/// The seed to use: the given one, or a fresh one from the clock.
pub fn seed_or_random(seed: Option<u64>) -> u64 {
    seed.unwrap_or_else(|| {
        let t = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap_or_default();
        (t.as_nanos() as u64 ^ (std::process::id() as u64).rotate_left(32)) % 1_000_000_000
    })
}

/// Checks that a directory can hold a new run: it may exist only if it holds no run yet.
pub fn prepare_new_run_dir(dir: &Path) -> Result<()> {
    if dir.join("config.json").exists() {
        return Err(Error::usage(format!(
            "{} already holds a run; use --resume {} to continue it, or another --out",
            dir.display(),
            dir.display()
        )));
    }
    std::fs::create_dir_all(dir).map_err(|e| Error::io(dir, e))
}

/// Checks that `dir` holds a resumable run of a job that keeps `files` there.
pub fn check_resume_dir(dir: &Path, files: &[&str]) -> Result<()> {
    for f in files {
        if !dir.join(f).exists() {
            return Err(Error::usage(format!(
                "--resume {}: no {f} there; is it the --out directory of an earlier run?",
                dir.display()
            )));
        }
    }
    Ok(())
}
