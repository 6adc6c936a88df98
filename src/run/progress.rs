//! The one progress-bar style of every job: elapsed time, a bar when the end is known (a
//! spinner otherwise), the position with its unit, the rate, and the job's message. Hidden with
//! `--quiet`.
use indicatif::{MultiProgress, ProgressBar, ProgressState, ProgressStyle};

/// A bar over `total` steps of `unit` (e.g. "gen", "epoch", "networks"), or a spinner when the
/// total is not known.
pub fn bar(quiet: bool, total: Option<u64>, unit: &'static str) -> ProgressBar {
    if quiet {
        return ProgressBar::hidden();
    }
    let b = match total {
        Some(n) => ProgressBar::new(n),
        None => ProgressBar::new_spinner(),
    };
    b.set_style(style(total.is_some(), unit));
    b
}

/// The same style for a bar added to a [`MultiProgress`].
pub fn add_to(multi: &MultiProgress, total: Option<u64>, unit: &'static str) -> ProgressBar {
    multi.add(bar(false, total, unit))
}

fn style(known_total: bool, unit: &'static str) -> ProgressStyle {
    let template = if known_total {
        "{elapsed_precise} [{bar:30}] {unit} {pos}/{len} {rate} eta {eta} {wide_msg}"
    } else {
        "{elapsed_precise} {spinner} {unit} {pos} {rate} {wide_msg}"
    };
    ProgressStyle::with_template(template)
        .expect("a valid progress template")
        .progress_chars("=> ")
        .with_key(
            "unit",
            move |_: &ProgressState, w: &mut dyn std::fmt::Write| {
                let _ = w.write_str(unit);
            },
        )
        .with_key(
            "rate",
            move |s: &ProgressState, w: &mut dyn std::fmt::Write| {
                let r = s.per_sec();
                let _ = if r >= 10.0 {
                    write!(w, "{r:.0} {unit}/s")
                } else {
                    write!(w, "{:.1} s/{unit}", 1.0 / r.max(1e-9))
                };
            },
        )
}
