//! AutoCNN: the architecture search of Sun, Xue, Zhang & Yen, "Automatically Designing CNN
//! Architectures Using Genetic Algorithm for Image Classification" (IEEE T-Cybernetics 2020), as
//! the Python package `auto-cnn` 1.0 exposes it, on neuroevo's datasets, training and export.
//!
//! A genome is a list of skip and pooling layers ([`genome`]). One generation: `population`
//! offspring are bred from parents picked by binary tournament (one-point crossover with
//! probability `crossover_prob`, then one of four mutations with probability `mutation_prob`),
//! every new genome is trained for `epochs` and scored by its accuracy on the validation split,
//! and environmental selection picks the next population from parents + offspring by binary
//! tournament, the best of all replacing the worst chosen if it was left out. With
//! `--fidelity halving` the new genomes are trained in rungs of growing budgets, only the best
//! of each rung training on ([`halving`]).
//!
//! Differences from the package, on purpose: fitness is measured on the validation split (the
//! package measures on the test set; `--fitness-set test` reproduces that), offspring are new
//! lists (the package mutates its parents in place), a genome whose pooling would shrink the
//! feature map below 1x1 is repaired or scored 0 instead of crashing, and the run checkpoints
//! after every evaluation so `--resume` loses at most the network being trained.
pub mod broker;
pub mod cache;
pub mod config;
pub mod evaluate;
pub mod export;
pub mod genome;
pub mod halving;
pub mod pareto;
pub(crate) mod records;
pub mod remote;
pub mod report;
pub mod search;
pub mod session;
pub mod sizecap;
pub mod state;
pub mod worker;

pub use config::{Fidelity, FitnessSet, SearchArgs, SearchConfig, ShrinkPolicy};
pub use export::{export_best, ExportArgs};
pub use report::{show_run, ShowArgs};
pub use session::run_search;
pub use state::SearchSummary;

use crate::error::Result;

/// The `auto-cnn` commands (also `neuroevo auto-cnn ...`).
#[derive(Debug, clap::Subcommand)]
pub enum AutoCnnCommand {
    /// Evolve CNN architectures on a dataset and export the best as TorchScript.
    Search(SearchArgs),
    /// Summarise a finished or running search: progress and the best networks so far.
    Show(ShowArgs),
    /// Export the best network of a search as TorchScript, optionally retrained on train+val.
    Export(ExportArgs),
    /// Train the networks of searches run with --broker, on this machine (same as
    /// `neuroevo worker`).
    Worker(worker::WorkerArgs),
}

impl AutoCnnCommand {
    /// Hands the flags typed on the command line to the command (the resume rule checks them).
    pub fn set_given(&mut self, given: Vec<String>) {
        if let AutoCnnCommand::Search(a) = self {
            a.run.given = given;
        }
    }
}

/// Runs one `auto-cnn` command and prints its summary; the run directory of a search.
pub fn run_command(cmd: &AutoCnnCommand) -> Result<Option<std::path::PathBuf>> {
    match cmd {
        AutoCnnCommand::Search(args) => {
            let s = run_search(args)?;
            print!("{}", s.table);
            println!(
                "auto-cnn: {} networks trained ({} evaluations, {} from the cache) in {:.1} s; stopped by: {}",
                s.trained, s.evaluations, s.cache_hits, s.elapsed_s, s.stop_reason
            );
            println!(
                "best: {} ({} parameters): val acc {}, test acc {}",
                s.best.genome,
                s.best.params,
                fmt_acc(s.best.val_acc),
                fmt_acc(s.best.test_acc)
            );
            println!("{}", crate::run::Job::AutoCnn.wrote(&s.run_dir));
            Ok(Some(s.run_dir))
        }
        AutoCnnCommand::Show(args) => {
            print!("{}", show_run(&args.run_dir, args.top)?);
            Ok(None)
        }
        AutoCnnCommand::Export(args) => {
            let b = export_best(args)?;
            println!(
                "exported {} ({} parameters) to {}: val acc {}, test acc {}",
                b.genome,
                b.params,
                b.path.display(),
                fmt_acc(b.val_acc),
                fmt_acc(b.test_acc)
            );
            Ok(None)
        }
        AutoCnnCommand::Worker(args) => {
            worker::run_worker(args)?;
            Ok(None)
        }
    }
}

pub(crate) fn fmt_acc(a: Option<f64>) -> String {
    a.map(|a| format!("{a:.4}")).unwrap_or_else(|| "-".into())
}
