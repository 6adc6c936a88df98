//! Accuracy against size: NSGA-II's environmental selection for `--objectives accuracy,params`
//! (or `accuracy,macs`), and the Pareto front of every network a search evaluated
//! (`pareto.json`, `pareto.png`), which `auto-cnn export --pick` chooses from.
//!
//! Deb, Pratap, Agarwal & Meyarivan, "A fast and elitist multiobjective genetic algorithm:
//! NSGA-II" (IEEE TEVC 2002): parents + offspring are sorted into non-dominated fronts, whole
//! fronts fill the next population in order, and the front that does not fit is cut by
//! crowding distance (its boundary points first). Fitness is maximised, size minimised; a
//! point dominates another when it is no worse in both and better in one. Ties keep the
//! earlier index, so the selection draws no random numbers.
use super::cache::Evaluation;
use super::config::Objectives;
use super::sizecap::Sizer;
use super::state::{trained_network, Individual, PARETO, PARETO_PLOT};
use crate::error::Result;
use crate::fsutil;
use crate::nn::arch::NetSize;
use crate::plot::{scatter_plot, Scatter};
use crate::run::RunDir;
use serde::{Deserialize, Serialize};

/// One objective vector: fitness (maximised; NaN ranks below everything) and size (minimised).
#[derive(Clone, Copy, Debug, PartialEq)]
pub(crate) struct Objective {
    pub fitness: f64,
    pub size: f64,
}

impl Objective {
    fn fit(&self) -> f64 {
        if self.fitness.is_nan() {
            f64::NEG_INFINITY
        } else {
            self.fitness
        }
    }

    /// Whether `self` is no worse than `o` in both objectives and better in one.
    pub(crate) fn dominates(&self, o: &Objective) -> bool {
        let (f, g) = (self.fit(), o.fit());
        f >= g && self.size <= o.size && (f > g || self.size < o.size)
    }
}

/// The non-dominated fronts of `points`, best first, each in index order (Deb's fast
/// non-dominated sort).
pub(crate) fn non_dominated_sort(points: &[Objective]) -> Vec<Vec<usize>> {
    let n = points.len();
    let mut dominated_by = vec![0usize; n];
    let mut dominates: Vec<Vec<usize>> = vec![Vec::new(); n];
    for i in 0..n {
        for j in 0..n {
            if points[i].dominates(&points[j]) {
                dominates[i].push(j);
            } else if points[j].dominates(&points[i]) {
                dominated_by[i] += 1;
            }
        }
    }
    let mut fronts = Vec::new();
    let mut current: Vec<usize> = (0..n).filter(|&i| dominated_by[i] == 0).collect();
    while !current.is_empty() {
        let mut next = Vec::new();
        for &i in &current {
            for &j in &dominates[i] {
                dominated_by[j] -= 1;
                if dominated_by[j] == 0 {
                    next.push(j);
                }
            }
        }
        next.sort_unstable();
        fronts.push(current);
        current = next;
    }
    fronts
}

/// The crowding distance of each member of `front` (in its order): per objective, the
/// boundary points get infinity and the others the gap between their neighbours divided by the
/// objective's range, summed over the two objectives.
pub(crate) fn crowding_distance(points: &[Objective], front: &[usize]) -> Vec<f64> {
    let mut d = vec![0.0f64; front.len()];
    if front.len() <= 2 {
        return vec![f64::INFINITY; front.len()];
    }
    let objectives: [fn(&Objective) -> f64; 2] = [|o| o.fit(), |o| o.size];
    for value in objectives {
        let mut order: Vec<usize> = (0..front.len()).collect();
        order.sort_by(|&a, &b| {
            value(&points[front[a]])
                .total_cmp(&value(&points[front[b]]))
                .then(a.cmp(&b))
        });
        let (lo, hi) = (
            value(&points[front[order[0]]]),
            value(&points[front[order[order.len() - 1]]]),
        );
        d[order[0]] = f64::INFINITY;
        d[order[order.len() - 1]] = f64::INFINITY;
        let range = hi - lo;
        if !(range.is_finite() && range > 0.0) {
            continue;
        }
        for k in 1..order.len() - 1 {
            let gap = value(&points[front[order[k + 1]]]) - value(&points[front[order[k - 1]]]);
            d[order[k]] += gap / range;
        }
    }
    d
}

/// NSGA-II's environmental selection: `n` indices of `points`, whole fronts first, the last
/// front cut by crowding distance (largest first; ties by index).
pub(crate) fn nsga2_select(points: &[Objective], n: usize) -> Vec<usize> {
    let mut chosen = Vec::with_capacity(n);
    for front in non_dominated_sort(points) {
        if chosen.len() + front.len() <= n {
            chosen.extend(&front);
            continue;
        }
        let d = crowding_distance(points, &front);
        let mut order: Vec<usize> = (0..front.len()).collect();
        order.sort_by(|&a, &b| d[b].total_cmp(&d[a]).then(a.cmp(&b)));
        chosen.extend(order.iter().take(n - chosen.len()).map(|&k| front[k]));
        break;
    }
    chosen
}

/// NSGA-II's crowded comparison as one number per point, for the search's binary tournaments
/// of parents: a lower front always wins, then a larger crowding distance.
pub(crate) fn crowded_scores(points: &[Objective]) -> Vec<f64> {
    let mut score = vec![f64::NEG_INFINITY; points.len()];
    for (rank, front) in non_dominated_sort(points).iter().enumerate() {
        let d = crowding_distance(points, front);
        for (k, &i) in front.iter().enumerate() {
            // d / (1 + d) is in [0, 1), 1 for infinity: never more than a front's step
            let c = if d[k].is_infinite() {
                1.0
            } else {
                d[k] / (1.0 + d[k])
            };
            score[i] = -2.0 * rank as f64 + c;
        }
    }
    score
}

/// The objectives of individuals: their selection `keys` (fitness, below the top rung lowered
/// by the rungs it fell short: see [`super::state::selection_key`]; NaN when unknown) and the
/// size of the network each trains as (infinite when it trains none).
pub(crate) fn objectives(
    list: &[Individual],
    keys: &[f64],
    sizer: &Sizer,
    o: Objectives,
) -> Vec<Objective> {
    list.iter()
        .zip(keys)
        .map(|(p, &fitness)| Objective {
            fitness,
            size: sizer
                .size_of_genome(&p.genome)
                .map_or(f64::INFINITY, |s| o.size_of(s) as f64),
        })
        .collect()
}

/// A network a search evaluated, as `pareto.json` lists it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct FrontPoint {
    /// The genome as bred.
    pub genome: String,
    /// The network trained (the genome after a repair).
    pub evaluated: String,
    pub params: i64,
    pub macs: i64,
    pub fitness: f64,
    pub val_acc: Option<f64>,
    /// Where the search measured it (`--fitness-set test`).
    pub test_acc: Option<f64>,
}

/// `pareto.json`.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct ParetoFile {
    pub objectives: Objectives,
    /// Networks evaluated (trained, distinct genomes) that the front was taken from.
    pub evaluated: usize,
    /// The non-dominated ones, by size (the objective's) ascending.
    pub front: Vec<FrontPoint>,
}

/// The distinct networks that trained among the `evaluation` records of a log (the first
/// record of each genome; with successive halving, among those trained the whole budget), with
/// their sizes; `size` computes a size a record lacks (from the
/// network trained).
pub(crate) fn evaluated_points(
    records: &[serde_json::Value],
    size: impl Fn(&str) -> Option<NetSize>,
) -> Vec<FrontPoint> {
    let mut seen = std::collections::HashSet::new();
    let mut out = Vec::new();
    // with successive halving, only networks trained the whole budget (the last rung) compare
    let full = records
        .iter()
        .filter_map(|r| r["budget_steps"].as_u64())
        .max();
    for r in records {
        if r["kind"] != "evaluation" || r["budget_steps"].as_u64() < full {
            continue;
        }
        let Ok(e) = serde_json::from_value::<Evaluation>(r.clone()) else {
            continue;
        };
        if !trained_network(&e) || !seen.insert(e.genome.clone()) {
            continue;
        }
        let macs = match r["macs"].as_i64() {
            Some(m) => m,
            None => match size(&e.evaluated) {
                Some(s) => s.macs,
                None => continue,
            },
        };
        out.push(FrontPoint {
            genome: e.genome,
            evaluated: e.evaluated,
            params: e.params,
            macs,
            fitness: e.fitness,
            val_acc: e.val_acc,
            test_acc: e.test_acc,
        });
    }
    out
}

fn objective(p: &FrontPoint, o: Objectives) -> Objective {
    Objective {
        fitness: p.fitness,
        size: o.size_of(NetSize {
            params: p.params,
            macs: p.macs,
        }) as f64,
    }
}

/// The non-dominated points of `points` for fitness against `o`'s size, by size ascending
/// (then fitness descending).
pub(crate) fn front(points: &[FrontPoint], o: Objectives) -> Vec<FrontPoint> {
    let obj: Vec<Objective> = points.iter().map(|p| objective(p, o)).collect();
    let Some(first) = non_dominated_sort(&obj).into_iter().next() else {
        return Vec::new();
    };
    let mut f: Vec<usize> = first;
    f.sort_by(|&a, &b| {
        obj[a]
            .size
            .total_cmp(&obj[b].size)
            .then(obj[b].fitness.total_cmp(&obj[a].fitness))
            .then(a.cmp(&b))
    });
    f.into_iter().map(|i| points[i].clone()).collect()
}

/// Writes `pareto.json` and `pareto.png` of a search from the evaluations in its log.
pub(crate) fn write_front(dir: &RunDir, sizer: &Sizer, o: Objectives) -> Result<()> {
    let records = super::report::read_records(dir);
    let points = evaluated_points(&records, |g| sizer.size_of_genome(g));
    write_pareto(dir, &points, o)
}

/// Writes `pareto.json` and `pareto.png` (atomically) for the evaluated `points`.
pub(crate) fn write_pareto(dir: &RunDir, points: &[FrontPoint], o: Objectives) -> Result<()> {
    let file = ParetoFile {
        objectives: o,
        evaluated: points.len(),
        front: front(points, o),
    };
    fsutil::write_json_atomic(&dir.file(PARETO), &file)?;
    let xy = |p: &FrontPoint| (objective(p, o).size, p.fitness);
    scatter_plot(
        &dir.file(PARETO_PLOT),
        &format!(
            "auto-cnn: fitness against {} ({} networks, {} on the front)",
            o.size_name(),
            points.len(),
            file.front.len()
        ),
        &format!("{} (log scale)", o.size_name()),
        "fitness",
        &[
            Scatter {
                name: "evaluated".into(),
                points: points.iter().map(xy).collect(),
                radius: 3,
                connect: false,
            },
            Scatter {
                name: "Pareto front".into(),
                points: file.front.iter().map(xy).collect(),
                radius: 5,
                connect: true,
            },
        ],
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pts(v: &[(f64, f64)]) -> Vec<Objective> {
        v.iter()
            .map(|&(fitness, size)| Objective { fitness, size })
            .collect()
    }

    /// A hand example: fitness (max) and size (min) of eight networks.
    ///
    /// ```text
    /// 0 (0.90, 100)  front 1      4 (0.80, 300)  front 3 (by 0, 1 and 6)
    /// 1 (0.95, 200)  front 1      5 (0.70, 100)  front 2 (by 0)
    /// 2 (0.99, 400)  front 1      6 (0.85, 250)  front 2 (by 1)
    /// 3 (0.90, 100)  front 1      7 (NaN, 50)    front 1 (nothing is smaller)
    /// ```
    fn example() -> Vec<Objective> {
        pts(&[
            (0.90, 100.0),
            (0.95, 200.0),
            (0.99, 400.0),
            (0.90, 100.0),
            (0.80, 300.0),
            (0.70, 100.0),
            (0.85, 250.0),
            (f64::NAN, 50.0),
        ])
    }

    #[test]
    fn dominance_maximises_fitness_and_minimises_size() {
        let p = example();
        assert!(p[0].dominates(&p[5]) && !p[5].dominates(&p[0]));
        assert!(!p[0].dominates(&p[3]), "equal points do not dominate");
        assert!(!p[0].dominates(&p[1]) && !p[1].dominates(&p[0]));
        assert!(p[1].dominates(&p[4]) && p[6].dominates(&p[4]));
        assert!(!p[7].dominates(&p[5]) && !p[5].dominates(&p[7]));
    }

    #[test]
    fn non_dominated_sort_of_the_hand_example() {
        assert_eq!(
            non_dominated_sort(&example()),
            vec![vec![0, 1, 2, 3, 7], vec![5, 6], vec![4]]
        );
        assert!(non_dominated_sort(&[]).is_empty());
    }

    #[test]
    fn crowding_distance_of_the_hand_example() {
        // front {0 (0.9,100), 1 (0.95,200), 2 (0.99,400), 3 (0.9,100)} without the NaN point:
        // by fitness 0,3 | 1 | 2, range 0.09; by size 0,3 | 1 | 2, range 300
        let p = example();
        let d = crowding_distance(&p, &[0, 1, 2, 3]);
        assert_eq!(d[0], f64::INFINITY);
        assert_eq!(d[2], f64::INFINITY);
        let gap_fit = (0.99 - 0.90) / 0.09;
        let gap_size = (400.0 - 100.0) / 300.0;
        assert!((d[1] - (gap_fit + gap_size)).abs() < 1e-12, "{d:?}");
        // 3 sits between 0 and 1 in both sorts (ties by index): (0.95-0.9)/0.09 + 100/300
        assert!(
            (d[3] - (0.05 / 0.09 + 100.0 / 300.0)).abs() < 1e-12,
            "{d:?}"
        );
        assert_eq!(crowding_distance(&p, &[5, 6]), vec![f64::INFINITY; 2]);
    }

    #[test]
    fn nsga2_fills_whole_fronts_then_cuts_by_crowding() {
        let p = example();
        assert_eq!(nsga2_select(&p, 5), vec![0, 1, 2, 3, 7]);
        assert_eq!(nsga2_select(&p, 7), vec![0, 1, 2, 3, 7, 5, 6]);
        // four of the first front: its boundary points (infinite distance) first
        let four = nsga2_select(&p[..7], 3);
        assert_eq!(four.len(), 3);
        assert!(four.contains(&0) || four.contains(&3));
        assert!(four.contains(&2));
        let s = crowded_scores(&p);
        assert!(s[0] > s[5] && s[5] > s[4] && s[6] > s[4]);
        assert!(
            s[2] >= s[1],
            "a boundary point wins over an inner one of its front"
        );
    }

    #[test]
    fn the_front_is_sorted_by_size() {
        let p = |g: &str, params: i64, fitness: f64| FrontPoint {
            genome: g.into(),
            evaluated: g.into(),
            params,
            macs: params * 10,
            fitness,
            val_acc: Some(fitness),
            test_acc: None,
        };
        let all = vec![
            p("a", 300, 0.9),
            p("b", 100, 0.5),
            p("c", 200, 0.4),
            p("d", 50, 0.1),
        ];
        let f: Vec<String> = front(&all, Objectives::AccuracyParams)
            .into_iter()
            .map(|x| x.genome)
            .collect();
        assert_eq!(f, ["d", "b", "a"]);
    }
}
