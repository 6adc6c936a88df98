//! The fitness cache (`cache.json`): the evaluation of every genome trained, keyed by a hash of
//! the genome and the settings its fitness depends on, so that a genome is never trained twice.
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use std::collections::BTreeMap;

/// The outcome of training one genome.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Evaluation {
    /// The genome as bred.
    pub genome: String,
    /// The network actually trained (differs after a repair; empty when nothing was trained).
    pub evaluated: String,
    pub params: i64,
    pub fitness: f64,
    pub val_acc: Option<f64>,
    /// Only when the fitness is measured on the test set.
    pub test_acc: Option<f64>,
    pub seconds: f64,
    /// Repairs, zero scores and failed trainings, in words.
    pub note: Option<String>,
    /// The training steps it was scored after, when that is a lower rung of successive
    /// halving (none: the full training).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub budget_steps: Option<usize>,
}

impl Evaluation {
    /// A genome scored 0 without a trained network (refused, given up, crashed), `note` saying
    /// why, after `seconds`.
    pub fn scored_zero(genome: &str, note: String, seconds: f64) -> Evaluation {
        Evaluation {
            genome: genome.to_string(),
            evaluated: String::new(),
            params: 0,
            fitness: 0.0,
            val_acc: None,
            test_acc: None,
            seconds,
            note: Some(note),
            budget_steps: None,
        }
    }
}

#[derive(Default, Serialize, Deserialize)]
pub(crate) struct Cache {
    pub(crate) entries: BTreeMap<String, Evaluation>,
}

pub(crate) fn cache_key(genome: &str, settings: &str) -> String {
    let digest = Sha256::digest(format!("{genome}\n{settings}").as_bytes());
    digest[..12].iter().map(|b| format!("{b:02x}")).collect()
}
