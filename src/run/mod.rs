//! The run layer, under every job: what a run directory holds and what its files are called
//! ([`dir`]), opening a new or resumed run under one resume rule with the common flags resolved
//! once ([`context`]), every checkpoint's files ([`checkpoint`]), the log record every job writes ([`log`]) and its TensorBoard event file
//! ([`tensorboard`]), stop criteria ([`stop`]) on
//! the wall or CPU clock ([`clock`]), the one generational loop of every job ([`driver`]), the
//! GA engine that runs a population through it ([`engine`]), and the one progress-bar style ([`progress`]).
pub mod args;
pub mod checkpoint;
pub mod clock;
pub mod context;
pub mod dir;
pub mod driver;
pub mod engine;
pub mod history;
pub mod log;
pub mod progress;
pub mod stop;
pub mod tensorboard;

/// The memory check lives in the base layer (networks are sized before any run); jobs reach it
/// here too.
pub use crate::memory;
pub use args::RunArgs;
pub use clock::{BudgetClock, ClockState, Clocks};
pub use context::{open, JobConfig, NewRun, Run};
pub use dir::{Job, RunDir};
pub use driver::{drive, Ctx, Driver, Step};
pub use log::{Log, Record};
pub use stop::{Position, StopCriteria, StopReason};
