//! Stop criteria shared by every job: generations, epochs, a target fitness, patience, and a
//! time budget on the wall or CPU clock. A job reports where it stands ([`Position`]); the run
//! layer says whether to stop and why.
use super::clock::BudgetClock;
use crate::error::{Error, Result};
use serde::{Deserialize, Serialize};

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct StopCriteria {
    /// Stop after this many generations.
    pub generations: Option<u64>,
    /// Stop after this many epochs (passes over the training data).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub epochs: Option<u64>,
    /// Stop once the best fitness reaches this value.
    pub target_fitness: Option<f64>,
    /// Stop after this many generations without improvement of the best fitness.
    pub patience: Option<u64>,
    /// Stop after this many seconds on `budget_clock` (summed over resumed runs).
    pub time_budget_s: Option<f64>,
    #[serde(default)]
    pub budget_clock: BudgetClock,
}

/// Why a run stopped.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum StopReason {
    Generations,
    Epochs,
    TargetFitness,
    Patience,
    TimeBudget,
    /// Ctrl-C or SIGTERM.
    Interrupted,
}

impl StopReason {
    pub fn as_str(self) -> &'static str {
        match self {
            StopReason::Generations => "generations",
            StopReason::Epochs => "epochs",
            StopReason::TargetFitness => "target_fitness",
            StopReason::Patience => "patience",
            StopReason::TimeBudget => "time_budget",
            StopReason::Interrupted => "interrupted",
        }
    }
}

impl std::fmt::Display for StopReason {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Where a run stands, as the stop criteria see it.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct Position {
    pub generation: u64,
    pub epoch: u64,
    pub best_fitness: Option<f64>,
    /// The generation the best fitness was first reached in.
    pub best_generation: u64,
    /// Seconds on the budget's clock.
    pub budget_s: f64,
}

impl StopCriteria {
    pub fn is_empty(&self) -> bool {
        self.generations.is_none()
            && self.epochs.is_none()
            && self.target_fitness.is_none()
            && self.patience.is_none()
            && self.time_budget_s.is_none()
    }

    /// Checks the values a user gave.
    pub fn validate(&self) -> Result<()> {
        if self.epochs == Some(0) {
            return Err(Error::usage("--epochs 0: must be at least 1"));
        }
        if let Some(t) = self.time_budget_s {
            if !(t.is_finite() && t > 0.0) {
                return Err(Error::usage(format!(
                    "--time-budget {t}: must be a positive number of seconds"
                )));
            }
        }
        if let Some(t) = self.target_fitness {
            if t.is_nan() {
                return Err(Error::usage("--target-fitness NaN: must be a number"));
            }
        }
        Ok(())
    }

    /// The criterion that holds at `p`, if any (target first, then counts, then time).
    pub fn reason(&self, p: &Position) -> Option<StopReason> {
        if let (Some(t), Some(b)) = (self.target_fitness, p.best_fitness) {
            if b >= t {
                return Some(StopReason::TargetFitness);
            }
        }
        if self.generations.is_some_and(|n| p.generation >= n) {
            return Some(StopReason::Generations);
        }
        if self.epochs.is_some_and(|n| p.epoch >= n) {
            return Some(StopReason::Epochs);
        }
        if self
            .patience
            .is_some_and(|n| p.generation.saturating_sub(p.best_generation) >= n)
        {
            return Some(StopReason::Patience);
        }
        if self.time_budget_s.is_some_and(|t| p.budget_s >= t) {
            return Some(StopReason::TimeBudget);
        }
        None
    }

    /// Stop criteria given with `--resume` replace the run's own (each one given; the clock
    /// only when given).
    pub fn extend_with(&mut self, given: &StopCriteria, clock_given: bool) {
        macro_rules! take {
            ($($f:ident),*) => { $( if given.$f.is_some() { self.$f = given.$f; } )* };
        }
        take!(generations, epochs, target_fitness, patience, time_budget_s);
        if clock_given {
            self.budget_clock = given.budget_clock;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    #[test]
    fn reasons_in_order() {
        let s = StopCriteria {
            generations: Some(10),
            epochs: Some(2),
            target_fitness: Some(1.0),
            patience: Some(3),
            time_budget_s: Some(5.0),
            budget_clock: BudgetClock::Wall,
        };
        let mut p = Position::default();
        assert_eq!(s.reason(&p), None);
        p.best_fitness = Some(1.0);
        assert_eq!(s.reason(&p), Some(StopReason::TargetFitness));
        p.best_fitness = Some(0.5);
        p.generation = 3;
        assert_eq!(s.reason(&p), Some(StopReason::Patience));
        p.best_generation = 3;
        p.epoch = 2;
        assert_eq!(s.reason(&p), Some(StopReason::Epochs));
        p.epoch = 0;
        p.budget_s = 5.0;
        assert_eq!(s.reason(&p), Some(StopReason::TimeBudget));
        p.generation = 10;
        assert_eq!(s.reason(&p), Some(StopReason::Generations));
        assert!(StopCriteria::default().is_empty());
        assert!(StopCriteria {
            time_budget_s: Some(f64::INFINITY),
            ..Default::default()
        }
        .validate()
        .is_err());
    }
}
