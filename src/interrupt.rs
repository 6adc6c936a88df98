//! Ctrl-C and SIGTERM. The first signal asks the run to stop: the run layer's loop ends after
//! the step in progress (auto-cnn: after the networks in training; train: after the epoch),
//! writes the checkpoint and the outputs, and the process exits with 130; `--resume` continues.
//! A second signal ends the process at once (exit 130) — atomic writes and whole-line log
//! appends leave no torn file either way. While input data is loading (a [`loading`] guard is
//! alive) there is no step to finish and nothing to write yet, so the first signal already ends
//! the process (exit 130) instead of waiting for a long load to end. Signal handling is
//! `signal-hook`'s.
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, OnceLock};

static FLAG: OnceLock<Arc<AtomicBool>> = OnceLock::new();
/// Set while data loads: a signal then ends the process at once.
static LOADING: OnceLock<Arc<AtomicBool>> = OnceLock::new();
/// How many [`Loading`] guards are alive (loads may nest or run on several threads).
static DEPTH: Mutex<usize> = Mutex::new(0);

/// The exit code of an interrupted run (128 + SIGINT, as shells report it).
pub const EXIT_CODE: i32 = 130;

/// Catches SIGINT and SIGTERM from now on (once per process; later calls do nothing).
pub fn install() {
    let loading = LOADING.get_or_init(|| Arc::new(AtomicBool::new(false)));
    FLAG.get_or_init(|| {
        let flag = Arc::new(AtomicBool::new(false));
        for sig in [signal_hook::consts::SIGINT, signal_hook::consts::SIGTERM] {
            // while loading: the first signal exits
            let _ =
                signal_hook::flag::register_conditional_shutdown(sig, EXIT_CODE, loading.clone());
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

/// While the returned guard lives, Ctrl-C or SIGTERM ends the process at once (exit 130): for
/// loading input data, before a run has anything to save.
pub fn loading() -> Loading {
    let mut depth = DEPTH.lock().unwrap_or_else(|e| e.into_inner());
    *depth += 1;
    if let Some(f) = LOADING.get() {
        f.store(true, Ordering::SeqCst);
    }
    Loading(())
}

/// See [`loading`].
pub struct Loading(());

impl Drop for Loading {
    fn drop(&mut self) {
        let mut depth = DEPTH.lock().unwrap_or_else(|e| e.into_inner());
        *depth -= 1;
        if *depth == 0 {
            if let Some(f) = LOADING.get() {
                f.store(false, Ordering::SeqCst);
            }
        }
    }
}

/// The line printed when an interrupted run has written its checkpoint and outputs.
pub fn message(run_dir: &std::path::Path) -> String {
    format!(
        "interrupted: checkpoint and outputs written; continue with --resume {}",
        run_dir.display()
    )
}
