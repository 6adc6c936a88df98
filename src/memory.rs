//! A run's memory, estimated before anything is allocated: a population too large for the
//! machine is a usage error ("needs ~360 TB for the population; this machine has 24 GB"),
//! not an out-of-memory abort after the run directory was made.
use crate::error::{Error, Result};

/// Physical memory of this machine in bytes (`sysconf`), if known.
pub fn physical_bytes() -> Option<f64> {
    // SAFETY: sysconf has no preconditions
    let (pages, size) = unsafe {
        (
            libc::sysconf(libc::_SC_PHYS_PAGES),
            libc::sysconf(libc::_SC_PAGE_SIZE),
        )
    };
    (pages > 0 && size > 0).then(|| pages as f64 * size as f64)
}

/// `1.2 GB`, `360 TB`: decimal units, as `df -H` and memory vendors count.
pub fn human(bytes: f64) -> String {
    let units = ["B", "kB", "MB", "GB", "TB", "PB", "EB"];
    let mut v = bytes;
    let mut i = 0;
    while v >= 1000.0 && i + 1 < units.len() {
        v /= 1000.0;
        i += 1;
    }
    if v < 10.0 && i > 0 {
        format!("{v:.1} {}", units[i])
    } else {
        format!("{v:.0} {}", units[i])
    }
}

/// Refuses a run whose `what` (e.g. "the population") needs more than the machine's physical
/// memory; `flag` is what the user can lower (e.g. "--population 1000000000").
pub fn check(flag: &str, what: &str, bytes: f64) -> Result<()> {
    check_against(flag, what, bytes, physical_bytes())
}

fn check_against(flag: &str, what: &str, bytes: f64, have: Option<f64>) -> Result<()> {
    match have {
        Some(have) if bytes > have => Err(Error::usage(format!(
            "{flag}: needs ~{} for {what}; this machine has {}",
            human(bytes),
            human(have)
        ))),
        _ => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    #[test]
    fn too_large_is_a_usage_error_with_both_sizes() {
        let e = check_against("--population 9", "the population", 3.6e14, Some(24e9)).unwrap_err();
        assert!(matches!(e, Error::Usage(_)));
        assert_eq!(
            e.to_string(),
            "--population 9: needs ~360 TB for the population; this machine has 24 GB"
        );
        assert!(check_against("--population 9", "it", 1e9, Some(24e9)).is_ok());
        assert!(physical_bytes().is_some_and(|b| b > 1e8));
        assert_eq!(human(1.5e9), "1.5 GB");
    }
}
