//! gan's lines of `log.jsonl`, typed: one struct for the four kinds (`init`: the FID of the
//! untrained generators; `generation`; `epoch`: the means of an epoch's generations; `final`: a
//! resumed run's last FID), each figure under one name (`best` and `mean` fitness as gari's and
//! fool's records name them), so the log, its TensorBoard curves and the plots agree.
use super::GenStats;
use serde::Serialize;
use serde_json::{Map, Value};

/// One line of a gan run's log.
#[derive(Clone, Debug, Serialize)]
pub(crate) struct GanRecord {
    pub kind: &'static str,
    pub generation: u64,
    pub epoch: u64,
    pub elapsed_s: f64,
    pub cpu_s: f64,
    /// Seconds spent training (the budget's clock), wall and CPU.
    pub train_s: f64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub train_cpu_s: Option<f64>,
    #[serde(flatten, skip_serializing_if = "Option::is_none")]
    pub scores: Option<Scores>,
    #[serde(flatten, skip_serializing_if = "Option::is_none")]
    pub fitness: Option<Fitness>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub fid: Option<f64>,
    /// The mode's own figures (dcgan: the discriminators' fitness, the learning rates).
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

/// The thesis' four numbers (population means).
#[derive(Clone, Debug, Serialize)]
pub(crate) struct Scores {
    pub real_score: f64,
    pub fake_score: f64,
    pub loss_d: f64,
    pub loss_g: f64,
}

/// The generators' fitness in one generation.
#[derive(Clone, Debug, Serialize)]
pub(crate) struct Fitness {
    pub best: f64,
    pub mean: f64,
    pub fitness_std: f64,
}

impl GanRecord {
    /// A record of `kind` at a point of the run, with no figures yet.
    pub fn at(kind: &'static str, generation: u64, epoch: u64, clocks: [f64; 4]) -> Self {
        let [elapsed_s, cpu_s, train_s, train_cpu_s] = clocks;
        GanRecord {
            kind,
            generation,
            epoch,
            elapsed_s,
            cpu_s,
            train_s,
            train_cpu_s: Some(train_cpu_s),
            scores: None,
            fitness: None,
            fid: None,
            extra: Map::new(),
        }
    }

    /// A generation's record from its statistics.
    pub fn generation(generation: u64, epoch: u64, clocks: [f64; 4], s: &GenStats) -> Self {
        GanRecord {
            scores: Some(Scores {
                real_score: s.real_score,
                fake_score: s.fake_score,
                loss_d: s.loss_d,
                loss_g: s.loss_g,
            }),
            fitness: Some(Fitness {
                best: s.best_fitness,
                mean: s.mean_fitness,
                fitness_std: s.fitness_std,
            }),
            extra: s.extra.clone(),
            ..GanRecord::at("generation", generation, epoch, clocks)
        }
    }

    pub fn value(&self) -> crate::error::Result<Value> {
        Ok(serde_json::to_value(self)?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_generation_record_names_each_figure_once() {
        let s = GenStats::new(0.7, 0.3, 1.2, 0.9, &[0.5, 0.25]);
        let v = GanRecord::generation(4, 1, [2.0, 3.0, 1.5, 2.5], &s)
            .value()
            .unwrap();
        assert_eq!(v["kind"], "generation");
        assert_eq!(
            (v["best"].as_f64(), v["mean"].as_f64()),
            (Some(0.5), Some(0.375))
        );
        assert!(v.get("best_fitness").is_none() && v.get("fid").is_none());
        assert_eq!(v["train_cpu_s"], 2.5);
        let init = GanRecord {
            train_cpu_s: None,
            fid: Some(300.0),
            ..GanRecord::at("init", 0, 0, [0.0; 4])
        };
        let v = init.value().unwrap();
        assert!(v.get("train_cpu_s").is_none() && v.get("loss_d").is_none());
        assert_eq!(v["fid"], 300.0);
    }
}
