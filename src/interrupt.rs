//! Ctrl-C and SIGTERM. The first signal asks the run to stop: the run layer's loop ends after
//! the step in progress (auto-cnn: after the networks in training; train: after the epoch),
//! writes the checkpoint and the outputs, and the process exits with 130; `--resume` continues.
//! A second signal ends the process at once (exit 130) — atomic writes and whole-line log
//! appends leave no torn file either way. Signal handling is `signal-hook`'s.
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, OnceLock};

static FLAG: OnceLock<Arc<AtomicBool>> = OnceLock::new();

/// The exit code of an interrupted run (128 + SIGINT, as shells report it).
pub const EXIT_CODE: i32 = 130;

/// Catches SIGINT and SIGTERM from now on (once per process; later calls do nothing).
pub fn install() {
    FLAG.get_or_init(|| {
        let flag = Arc::new(AtomicBool::new(false));
        for sig in [signal_hook::consts::SIGINT, signal_hook::consts::SIGTERM] {
            // the second signal: the flag is already set, so the process exits
            let _ = signal_hook::flag::register_conditional_shutdown(sig, EXIT_CODE, flag.clone());
            let _ = signal_hook::flag::register(sig, flag.clone());
        }
        flag
    });
}

/// Whether a stop was asked for.
pub fn requested() -> bool {
    FLAG.get().is_some_and(|f| f.load(Ordering::Relaxed))
}

/// The line printed when an interrupted run has written its checkpoint and outputs.
pub fn message(run_dir: &std::path::Path) -> String {
    format!(
        "interrupted: checkpoint and outputs written; continue with --resume {}",
        run_dir.display()
    )
}
