//! The one generational loop under every job. A job says what one step of its run is and what
//! its state is ([`Step`]); [`drive`] owns the order of things: take stock of where the run
//! stands, ask the stop criteria, let the step write its records, checkpoint when the step asks
//! (and always when the run stops), advance. The log, the clocks and the progress bar are the
//! run layer's and reach the step through [`Ctx`].
//!
//! The GA engine ([`super::engine`], under `gari` and `fool`), the GAN trainer (both `gan`
//! modes), the architecture search of `auto-cnn` and `train`'s epochs are the four [`Step`]s.
use super::clock::{ClockState, Clocks};
use super::dir::RunDir;
use super::log::Log;
use super::stop::{Position, StopCriteria, StopReason};
use crate::error::Result;
use indicatif::ProgressBar;
use serde::Serialize;

/// What a step may use of the run layer.
pub struct Ctx<'a> {
    pub stop: &'a StopCriteria,
    pub clocks: &'a Clocks,
    pub log: &'a mut Log,
    pub bar: &'a ProgressBar,
}

impl Ctx<'_> {
    /// Appends one record to the run's log.
    pub fn emit(&mut self, record: &impl Serialize) -> Result<()> {
        self.log.append(record)
    }

    /// Why a step should stop before its next piece of work (for steps that check mid-step):
    /// the time budget is spent on its clock, or Ctrl-C/SIGTERM asked the run to stop.
    pub fn stop_now(&self) -> Option<StopReason> {
        if crate::interrupt::requested() {
            return Some(StopReason::Interrupted);
        }
        self.stop
            .time_budget_s
            .is_some_and(|t| self.clocks.read(self.stop.budget_clock) >= t)
            .then_some(StopReason::TimeBudget)
    }

    /// Prints a line above the progress bar.
    pub fn note(&self, line: String) {
        if self.bar.is_hidden() {
            eprintln!("{line}");
        } else {
            self.bar.println(line);
        }
    }
}

/// One job's generational step and its state.
pub trait Step {
    /// Finishes what a checkpoint left half done (e.g. the evaluation of a generation) or
    /// evaluates a new run's first generation. `Some` when a stop criterion (the time budget)
    /// interrupted it.
    fn start(&mut self, _ctx: &mut Ctx) -> Result<Option<StopReason>> {
        Ok(None)
    }
    /// Takes stock of the generation the run holds and says where it stands.
    fn position(&mut self, ctx: &mut Ctx) -> Result<Position>;
    /// Writes the records (and pictures) of the generation the run holds; `last` when the run
    /// stops at it.
    fn report(&mut self, ctx: &mut Ctx, last: bool) -> Result<()>;
    /// Whether a checkpoint is due at this generation.
    fn checkpoint_due(&self, _ctx: &Ctx) -> bool {
        false
    }
    /// Writes the state to the run directory so that a resume continues from here.
    fn checkpoint(&mut self, ctx: &mut Ctx) -> Result<()>;
    /// Breeds, trains or evaluates the next generation. `Some` when a stop criterion (the time
    /// budget) interrupted it.
    fn advance(&mut self, ctx: &mut Ctx) -> Result<Option<StopReason>>;
}

/// The run layer's side of a loop: stop criteria, log, clocks, progress bar.
pub struct Driver {
    pub stop: StopCriteria,
    pub log: Log,
    pub clocks: Clocks,
    pub bar: ProgressBar,
    /// A resumed run does not checkpoint the generation it resumed at again.
    pub resumed: bool,
}

impl Driver {
    /// The run layer's side of a run in `dir`, opened in one place for every job: the log,
    /// keeping the records for which `keep(index, record)` holds (those the checkpoint covers;
    /// the TensorBoard file is rebuilt from them), the clocks restarted from the checkpoint's
    /// `clocks`, and `bar`. Returns the kept records too.
    pub fn open(
        dir: &RunDir,
        keep: impl Fn(usize, &serde_json::Value) -> bool,
        stop: StopCriteria,
        clocks: ClockState,
        bar: ProgressBar,
        resumed: bool,
    ) -> Result<(Driver, Vec<serde_json::Value>)> {
        let (log, kept) = Log::open(&dir.log(), keep)?;
        let driver = Driver {
            stop,
            log,
            clocks: Clocks::resume(clocks),
            bar,
            resumed,
        };
        Ok((driver, kept))
    }

    /// Ends the run: the bar is cleared and `result.json` written with the core keys of every
    /// job (`stop_reason`, the clocks over every invocation) and the job's `figures`.
    pub fn finish(
        &self,
        dir: &RunDir,
        reason: &str,
        figures: &impl serde::Serialize,
    ) -> Result<()> {
        self.bar.finish_and_clear();
        dir.write_result(reason, self.clocks.wall_s(), self.clocks.cpu_s(), figures)
    }

    pub fn ctx(&mut self) -> Ctx<'_> {
        Ctx {
            stop: &self.stop,
            clocks: &self.clocks,
            log: &mut self.log,
            bar: &self.bar,
        }
    }
}

/// Runs `step` until a stop criterion holds or Ctrl-C/SIGTERM asks it to stop
/// ([`StopReason::Interrupted`]); the state is checkpointed when it does.
pub fn drive<S: Step + ?Sized>(step: &mut S, driver: &mut Driver) -> Result<StopReason> {
    let resumed = driver.resumed;
    let mut ctx = driver.ctx();
    if let Some(reason) = step.start(&mut ctx)? {
        step.checkpoint(&mut ctx)?;
        return Ok(reason);
    }
    let mut first = true;
    loop {
        let position = step.position(&mut ctx)?;
        let reason = ctx
            .stop
            .reason(&position)
            .or_else(|| crate::interrupt::requested().then_some(StopReason::Interrupted));
        step.report(&mut ctx, reason.is_some())?;
        if let Some(reason) = reason {
            step.checkpoint(&mut ctx)?;
            return Ok(reason);
        }
        if step.checkpoint_due(&ctx) && !(first && resumed) {
            step.checkpoint(&mut ctx)?;
        }
        first = false;
        if let Some(reason) = step.advance(&mut ctx)? {
            step.checkpoint(&mut ctx)?;
            return Ok(reason);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Counts to a limit, checkpointing every third generation.
    struct Counter {
        g: u64,
        events: Vec<String>,
    }

    impl Step for Counter {
        fn position(&mut self, _: &mut Ctx) -> Result<Position> {
            Ok(Position {
                generation: self.g,
                ..Default::default()
            })
        }
        fn report(&mut self, ctx: &mut Ctx, last: bool) -> Result<()> {
            self.events.push(format!(
                "report {}{}",
                self.g,
                if last { " last" } else { "" }
            ));
            ctx.emit(&serde_json::json!({"kind": "generation", "generation": self.g}))
        }
        fn checkpoint_due(&self, _: &Ctx) -> bool {
            self.g % 3 == 0
        }
        fn checkpoint(&mut self, _: &mut Ctx) -> Result<()> {
            self.events.push(format!("checkpoint {}", self.g));
            Ok(())
        }
        fn advance(&mut self, _: &mut Ctx) -> Result<Option<StopReason>> {
            self.g += 1;
            Ok(None)
        }
    }

    #[test]
    fn reports_every_generation_checkpoints_when_due_and_at_the_end() {
        let dir = std::env::temp_dir().join(format!("neuroevo-driver-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let log_path = dir.join("log.jsonl");
        let _ = std::fs::remove_file(&log_path);
        let run = |g0: u64, resumed: bool| {
            let (log, _) = Log::open(&log_path, |_, _| true).unwrap();
            let mut driver = Driver {
                stop: StopCriteria {
                    generations: Some(4),
                    ..Default::default()
                },
                log,
                clocks: Clocks::start(),
                bar: ProgressBar::hidden(),
                resumed,
            };
            let mut c = Counter {
                g: g0,
                events: vec![],
            };
            let reason = drive(&mut c, &mut driver).unwrap();
            (reason, c.events)
        };
        let (reason, events) = run(0, false);
        assert_eq!(reason, StopReason::Generations);
        assert_eq!(
            events,
            [
                "report 0",
                "checkpoint 0",
                "report 1",
                "report 2",
                "report 3",
                "checkpoint 3",
                "report 4 last",
                "checkpoint 4"
            ]
        );
        // resumed at a checkpoint: that generation is not checkpointed again
        let (_, events) = run(3, true);
        assert_eq!(events, ["report 3", "report 4 last", "checkpoint 4"]);
        assert_eq!(super::super::log::read(&log_path).unwrap().len(), 7);
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
