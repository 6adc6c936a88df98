//! The two clocks a run is measured and budgeted on: wall seconds and the CPU seconds of this
//! process (user + system, all threads: the fair clock on a machine shared with other jobs).
//! Both are summed over the invocations of a resumed run.
use serde::{Deserialize, Serialize};
use std::time::Instant;

/// CPU seconds (user + system, all threads) this process has used, from
/// `clock_gettime(CLOCK_PROCESS_CPUTIME_ID)`.
pub fn process_cpu_s() -> f64 {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: clock_gettime writes a timespec into the pointer it is given.
    let rc = unsafe { libc::clock_gettime(libc::CLOCK_PROCESS_CPUTIME_ID, &mut ts) };
    if rc != 0 {
        return 0.0;
    }
    ts.tv_sec as f64 + ts.tv_nsec as f64 * 1e-9
}

/// Which clock `--time-budget` counts.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "snake_case")]
pub enum BudgetClock {
    /// Elapsed seconds.
    #[default]
    Wall,
    /// CPU seconds of this process, all threads.
    Cpu,
}

/// The clocks as every job's checkpoint keeps them (flattened into its state, so the keys are
/// `elapsed_s` and `cpu_s`), and the one thing a resumed run restarts its [`Clocks`] from.
#[derive(Clone, Copy, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct ClockState {
    /// Wall seconds so far, over every invocation.
    #[serde(default)]
    pub elapsed_s: f64,
    /// CPU seconds so far, over every invocation (0 in checkpoints written before it was kept).
    #[serde(default)]
    pub cpu_s: f64,
}

/// Wall and CPU seconds since a run began, over all its invocations.
#[derive(Clone, Debug)]
pub struct Clocks {
    wall0: Instant,
    cpu0: f64,
    base_wall: f64,
    base_cpu: f64,
}

impl Clocks {
    /// Starts counting on top of what earlier invocations used (a checkpoint's clocks).
    pub fn resume(base: ClockState) -> Self {
        Clocks {
            wall0: Instant::now(),
            cpu0: process_cpu_s(),
            base_wall: base.elapsed_s,
            base_cpu: base.cpu_s,
        }
    }
    pub fn start() -> Self {
        Self::resume(ClockState::default())
    }
    /// The clocks now, as a checkpoint keeps them.
    pub fn state(&self) -> ClockState {
        ClockState {
            elapsed_s: self.wall_s(),
            cpu_s: self.cpu_s(),
        }
    }
    pub fn wall_s(&self) -> f64 {
        self.base_wall + self.wall0.elapsed().as_secs_f64()
    }
    pub fn cpu_s(&self) -> f64 {
        self.base_cpu + (process_cpu_s() - self.cpu0).max(0.0)
    }
    pub fn read(&self, clock: BudgetClock) -> f64 {
        match clock {
            BudgetClock::Wall => self.wall_s(),
            BudgetClock::Cpu => self.cpu_s(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    #[test]
    fn clocks_count_wall_time_and_cpu_work() {
        let c = Clocks::start();
        std::thread::sleep(std::time::Duration::from_millis(50));
        let mut x = 0u64;
        let t = Instant::now();
        while t.elapsed().as_millis() < 60 {
            x = x.wrapping_mul(6364136223846793005).wrapping_add(1);
        }
        std::hint::black_box(x);
        let (wall, cpu) = (c.wall_s(), c.cpu_s());
        assert!(wall >= 0.11, "{wall}");
        // the busy loop counts, even on a loaded machine (other test threads may add to it)
        assert!(cpu >= 0.01, "cpu {cpu} wall {wall}");
    }
}
