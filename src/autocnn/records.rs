//! auto-cnn's lines of `log.jsonl`, typed: one `evaluation` record per network scored (at each
//! rung with successive halving) and one `generation` record per generation, each figure under
//! one name (`best`/`mean` as every job's generation records name them).
use super::cache::Evaluation;
use serde::{Deserialize, Serialize};

/// One network scored.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub(crate) struct EvaluationRecord {
    pub kind: String,
    pub generation: usize,
    /// Its place in the list evaluated (the population in generation 0, else the offspring).
    pub index: usize,
    pub elapsed_s: f64,
    pub cpu_s: f64,
    /// How many evaluations the search has made, this one included.
    pub evaluation: usize,
    pub origin: String,
    /// Scored from the cache, not trained.
    pub cached: bool,
    pub genome: String,
    pub evaluated: String,
    pub params: i64,
    #[serde(default)]
    pub macs: i64,
    pub fitness: f64,
    pub val_acc: Option<f64>,
    pub test_acc: Option<f64>,
    pub seconds: f64,
    pub note: Option<String>,
    /// Remote backends: the task's seconds in the broker and the worker besides training.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub broker_overhead_s: Option<f64>,
    /// Successive halving: the rung, its budget and whether the network went on.
    #[serde(default, flatten, skip_serializing_if = "Option::is_none")]
    pub rung: Option<Rung>,
}

/// Where an evaluation of successive halving stands.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub(crate) struct Rung {
    pub rung: usize,
    pub budget_steps: usize,
    pub promoted: bool,
}

impl EvaluationRecord {
    /// The record of `e`, evaluation number `evaluation`, at the clocks `[wall, cpu]`.
    pub fn new(
        (generation, index, evaluation): (usize, usize, usize),
        clocks: [f64; 2],
        origin: String,
        cached: bool,
        e: &Evaluation,
        macs: i64,
    ) -> Self {
        EvaluationRecord {
            kind: "evaluation".into(),
            generation,
            index,
            elapsed_s: clocks[0],
            cpu_s: clocks[1],
            evaluation,
            origin,
            cached,
            genome: e.genome.clone(),
            evaluated: e.evaluated.clone(),
            params: e.params,
            macs,
            fitness: e.fitness,
            val_acc: e.val_acc,
            test_acc: e.test_acc,
            seconds: e.seconds,
            note: e.note.clone(),
            broker_overhead_s: None,
            rung: None,
        }
    }
}

/// One generation: the population after selection.
#[derive(Clone, Debug, Serialize)]
pub(crate) struct GenerationRecord {
    pub kind: &'static str,
    pub generation: usize,
    pub elapsed_s: f64,
    pub cpu_s: f64,
    pub best: f64,
    pub mean: f64,
    pub best_genome: String,
    pub population: Vec<String>,
    pub fitness: Vec<f64>,
    pub evaluations: usize,
    /// Successive halving: the rung each member reached.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rungs: Option<Vec<usize>>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_evaluation_record_reads_back_and_names_its_rung_only_with_halving() {
        let e = Evaluation::scored_zero("S8-8", "scored 0: why".into(), 1.5);
        let mut r = EvaluationRecord::new((1, 2, 7), [3.0, 4.0], "random".into(), false, &e, 9);
        let v = serde_json::to_value(&r).unwrap();
        assert_eq!(
            (v["kind"].as_str(), v["macs"].as_i64()),
            (Some("evaluation"), Some(9))
        );
        assert!(v.get("rung").is_none() && v.get("broker_overhead_s").is_none());
        assert!(
            v["val_acc"].is_null(),
            "unmeasured figures are null, as before"
        );
        r.rung = Some(Rung {
            rung: 1,
            budget_steps: 134,
            promoted: true,
        });
        let v = serde_json::to_value(&r).unwrap();
        assert_eq!(
            (v["rung"].as_u64(), v["promoted"].as_bool()),
            (Some(1), Some(true))
        );
        let back: EvaluationRecord = serde_json::from_value(v).unwrap();
        assert_eq!(back, r);
    }
}
