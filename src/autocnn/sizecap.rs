//! The size of the network a genome trains as, and the size cap of `auto-cnn search`
//! (`--max-params`, `--max-macs`).
//!
//! Sizes are counted from the layer list ([`Arch::size`]) of the network the trainer would
//! build — after the repair of [`ShrinkPolicy::Repair`] — before anything is trained, so a cap
//! is kept by breeding, not by training and discarding. A genome over the cap is drawn or bred
//! again (at most [`TRIES`] times, from the same random stream, which only a capped search
//! consumes more of), then shrunk step by step — a narrower filter of the space, a skip layer
//! removed, a pooling layer inserted, whichever brings it closest under the cap — and, should
//! that stall, replaced by the smallest network of the space (pooling layers only, which
//! [`Sizer::check_possible`] showed to be within the cap). Its origin, logged with its
//! evaluation, says which of these happened: a cap never loops and never drops a genome
//! silently.
use super::config::{shorten, SearchConfig, ShrinkPolicy};
use super::genome::{self, GenomeSpace};
use super::state::Individual;
use crate::error::{Error, Result};
use crate::nn::arch::{Arch, Layer, NetSize, PoolKind};

/// Times a genome over the cap is drawn or bred again before it is shrunk.
pub const TRIES: usize = 20;

/// Steps of the shrinking before the smallest network of the space is taken instead.
const MAX_STEPS: usize = 256;

/// Sizes genomes for one search's data: input shape, classes, repair policy and caps.
#[derive(Clone, Debug)]
pub(crate) struct Sizer {
    shape: [i64; 3],
    classes: i64,
    on_shrink: ShrinkPolicy,
    max_params: Option<i64>,
    max_macs: Option<i64>,
    filters: Vec<i64>,
}

impl Sizer {
    pub(crate) fn new(cfg: &SearchConfig, shape: [i64; 3], classes: i64) -> Sizer {
        let mut filters = cfg.space.filters.clone();
        filters.sort_unstable();
        filters.dedup();
        Sizer {
            shape,
            classes,
            on_shrink: cfg.on_shrink,
            max_params: cfg.max_params,
            max_macs: cfg.max_macs,
            filters,
        }
    }

    /// Whether a cap is set.
    pub(crate) fn capped(&self) -> bool {
        self.max_params.is_some() || self.max_macs.is_some()
    }

    /// The network the trainer builds from `g`: repaired, or as it is when it runs under
    /// `--on-shrink zero`; `None` when nothing would be trained.
    pub(crate) fn trained_arch(&self, g: &Arch) -> Option<Arch> {
        match self.on_shrink {
            ShrinkPolicy::Repair => genome::repair(g, self.shape).0,
            ShrinkPolicy::Zero => g.output_shape(self.shape).ok().map(|_| g.clone()),
        }
    }

    /// The size of the network `g` trains as (`None` when nothing would be trained).
    pub(crate) fn size_of(&self, g: &Arch) -> Option<NetSize> {
        self.trained_arch(g)
            .and_then(|a| a.size(self.shape, self.classes).ok())
    }

    /// [`Sizer::size_of`] a genome in the layer notation (`None` when it does not parse).
    pub(crate) fn size_of_genome(&self, genome: &str) -> Option<NetSize> {
        Arch::parse(genome).ok().and_then(|g| self.size_of(&g))
    }

    /// The multiply-accumulates of a network as trained (an evaluation's `evaluated`; 0 when
    /// nothing was trained).
    pub(crate) fn macs_of(&self, evaluated: &str) -> i64 {
        Arch::parse(evaluated)
            .and_then(|a| a.size(self.shape, self.classes))
            .map_or(0, |s| s.macs)
    }

    /// Why a network of `size` is over the cap, in words; `None` within it.
    pub(crate) fn over(&self, size: NetSize) -> Option<String> {
        let mut why = Vec::new();
        if let Some(m) = self.max_params.filter(|&m| size.params > m) {
            why.push(format!("{} parameters > --max-params {m}", size.params));
        }
        if let Some(m) = self.max_macs.filter(|&m| size.macs > m) {
            why.push(format!("{} MACs > --max-macs {m}", size.macs));
        }
        (!why.is_empty()).then(|| why.join(", "))
    }

    /// Why genome `g` is over the cap (a genome that trains nothing is not).
    pub(crate) fn over_genome(&self, g: &Arch) -> Option<String> {
        self.size_of(g).and_then(|s| self.over(s))
    }

    /// How far over the cap: the largest ratio of a size to its cap (at most 1 within it).
    fn excess(&self, size: NetSize) -> f64 {
        let ratio = |v: i64, cap: Option<i64>| cap.map_or(0.0, |c| v as f64 / c as f64);
        ratio(size.params, self.max_params).max(ratio(size.macs, self.max_macs))
    }

    /// The smallest network of the space: pooling layers until the feature map cannot be
    /// halved again (a linear classifier of the pooled image), or the narrowest skip layer on
    /// an input too small to pool.
    pub(crate) fn smallest(&self) -> Arch {
        let (mut h, mut w) = (self.shape[1], self.shape[2]);
        let mut layers = Vec::new();
        while h >= 2 && w >= 2 {
            layers.push(Layer::Pool {
                kind: PoolKind::Max,
            });
            h /= 2;
            w /= 2;
        }
        if layers.is_empty() {
            let f = self.filters[0];
            layers.push(Layer::Skip { f1: f, f2: f });
        }
        Arch { layers }
    }

    /// Refuses a cap that even the smallest network of the space exceeds (one line, exit 2).
    pub(crate) fn check_possible(&self) -> Result<()> {
        let min = self.smallest();
        let size = min.size(self.shape, self.classes)?;
        match self.over(size) {
            Some(why) => Err(Error::usage(format!(
                "the size cap cannot be met: the smallest network of the search space on \
                 {:?} images with {} classes (\"{}\") has {why}",
                self.shape,
                self.classes,
                shorten(&min.to_string())
            ))),
            None => Ok(()),
        }
    }

    /// The next smaller filter count of the space, if any.
    fn narrower(&self, f: i64) -> Option<i64> {
        self.filters.iter().rev().find(|&&x| x < f).copied()
    }

    /// Every genome one shrinking step away from `a` (a network as trained), with the step.
    fn steps(&self, a: &Arch) -> Vec<(Arch, String)> {
        let mut out = Vec::new();
        let with = |i: usize, l: Layer| {
            let mut layers = a.layers.clone();
            layers[i] = l;
            Arch { layers }
        };
        for (i, l) in a.layers.iter().enumerate() {
            if let Layer::Skip { f1, f2 } = *l {
                if let Some(n) = self.narrower(f1) {
                    let s = Layer::Skip { f1: n, f2 };
                    out.push((with(i, s), format!("layer {} {l} -> {s}", i + 1)));
                }
                if let Some(n) = self.narrower(f2) {
                    let s = Layer::Skip { f1, f2: n };
                    out.push((with(i, s), format!("layer {} {l} -> {s}", i + 1)));
                }
                if a.layers.len() > 1 {
                    let mut layers = a.layers.clone();
                    layers.remove(i);
                    out.push((Arch { layers }, format!("removed layer {} {l}", i + 1)));
                }
            }
        }
        // a pooling layer wherever the feature map can still be halved
        let (mut h, mut w) = (self.shape[1], self.shape[2]);
        for p in 0..=a.layers.len() {
            if h >= 2 && w >= 2 {
                let mut layers = a.layers.clone();
                layers.insert(
                    p,
                    Layer::Pool {
                        kind: PoolKind::Max,
                    },
                );
                out.push((Arch { layers }, format!("P:max inserted at {}", p + 1)));
            }
            if let Some(Layer::Pool { .. }) = a.layers.get(p) {
                h /= 2;
                w /= 2;
            }
        }
        out
    }

    /// Shrinks `g` until it is within the cap: each step takes the move that brings it closest
    /// under it, and only a move that makes it smaller. Returns the genome and the steps in
    /// words; the smallest network of the space when the steps stall.
    pub(crate) fn shrink(&self, g: &Arch) -> (Arch, Vec<String>) {
        let Some(mut a) = self.trained_arch(g) else {
            return (g.clone(), Vec::new());
        };
        let mut done = Vec::new();
        if a != *g {
            done.push(format!("repaired to \"{}\"", shorten(&a.to_string())));
        }
        let size = |a: &Arch| a.size(self.shape, self.classes).ok();
        for _ in 0..MAX_STEPS {
            let Some(now) = size(&a) else { break };
            if self.over(now).is_none() {
                return (a, done);
            }
            let best = self
                .steps(&a)
                .into_iter()
                .filter_map(|(b, what)| size(&b).map(|s| (self.excess(s), b, what)))
                .filter(|(e, _, _)| *e < self.excess(now))
                .min_by(|x, y| x.0.total_cmp(&y.0));
            match best {
                Some((_, b, what)) => {
                    a = b;
                    done.push(what);
                }
                None => break,
            }
        }
        let min = self.smallest();
        done.push(format!("replaced by the smallest network \"{min}\""));
        (min, done)
    }

    /// `ind` if it is within the cap; else the first of up to [`TRIES`] individuals from
    /// `again` (a new draw or a new child) that is, else `ind` shrunk. The origin says which.
    pub(crate) fn within_cap(
        &self,
        ind: Individual,
        mut again: impl FnMut() -> Individual,
    ) -> Individual {
        let parse = |i: &Individual| Arch::parse(&i.genome).expect("bred genomes parse");
        let Some(why) = self.over_genome(&parse(&ind)) else {
            return ind;
        };
        for t in 1..=TRIES {
            let next = again();
            if self.over_genome(&parse(&next)).is_none() {
                return Individual {
                    origin: format!(
                        "{}; bred again {t} time(s): \"{}\" was over the cap ({why})",
                        next.origin,
                        shorten(&ind.genome)
                    ),
                    ..next
                };
            }
        }
        let (g, steps) = self.shrink(&parse(&ind));
        let shown: Vec<&str> = steps.iter().take(6).map(String::as_str).collect();
        let more = steps.len().saturating_sub(shown.len());
        Individual {
            genome: g.to_string(),
            origin: format!(
                "{}; over the cap ({why}) and after {TRIES} more tries, shrunk from \"{}\": {}{}",
                ind.origin,
                shorten(&ind.genome),
                shown.join(", "),
                if more > 0 {
                    format!(" and {more} more steps")
                } else {
                    String::new()
                }
            ),
            ..Default::default()
        }
    }
}

/// A random initial genome within the cap (see [`Sizer::within_cap`]).
pub(crate) fn random_within_cap<R: rand::Rng + ?Sized>(
    sizer: &Sizer,
    space: &GenomeSpace,
    rng: &mut R,
) -> Individual {
    let mut draw = || Individual {
        genome: space.random_genome(rng).to_string(),
        origin: "random".into(),
        ..Default::default()
    };
    let first = draw();
    if !sizer.capped() {
        return first;
    }
    sizer.within_cap(first, draw)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ga::GaRng;
    use rand::SeedableRng;

    fn sizer(max_params: Option<i64>, max_macs: Option<i64>) -> Sizer {
        let mut c = crate::autocnn::search::tests::cfg(3);
        c.space.filters = vec![32, 64, 128, 256, 512];
        c.max_params = max_params;
        c.max_macs = max_macs;
        Sizer::new(&c, [1, 28, 28], 10)
    }

    #[test]
    fn sizes_are_those_of_the_network_as_trained() {
        let s = sizer(None, None);
        // five poolings on 28x28: the fifth is dropped by the repair
        let g = Arch::parse("S32-32 P:max P:max P:max P:max P:max").unwrap();
        let trained = Arch::parse("S32-32 P:max P:max P:max P:max").unwrap();
        assert_eq!(s.size_of(&g), Some(trained.size([1, 28, 28], 10).unwrap()));
        assert_eq!(
            s.size_of(&Arch::parse("P:max").unwrap()).unwrap().params,
            14 * 14 * 10 + 10
        );
        assert!(!s.capped());
    }

    #[test]
    fn an_impossible_cap_is_refused_in_one_line() {
        // the smallest network: four poolings to 1x1, then 1 x 10 weights + 10 biases
        let s = sizer(Some(20), None);
        assert_eq!(s.smallest().to_string(), "P:max P:max P:max P:max");
        assert!(s.check_possible().is_ok());
        let e = sizer(Some(19), None).check_possible().unwrap_err();
        assert!(e.is_user_error(), "{e}");
        assert!(
            e.to_string().contains("20 parameters > --max-params 19"),
            "{e}"
        );
        assert!(!e.to_string().contains('\n'));
        assert!(sizer(None, Some(9)).check_possible().is_err());
        assert!(sizer(None, Some(10)).check_possible().is_ok());
    }

    #[test]
    fn shrinking_ends_within_the_cap_with_the_space_filters() {
        let mut rng = GaRng::seed_from_u64(4);
        let space = GenomeSpace::default();
        for cap in [
            (Some(20_000), None),
            (None, Some(200_000)),
            (Some(3_000), Some(5_000)),
        ] {
            let s = sizer(cap.0, cap.1);
            for _ in 0..200 {
                let g = space.random_genome(&mut rng);
                let (small, steps) = s.shrink(&g);
                let size = s.size_of(&small).expect("trains");
                assert!(s.over(size).is_none(), "{g} -> {small}: {size:?} {steps:?}");
                for l in &small.layers {
                    if let Layer::Skip { f1, f2 } = l {
                        assert!(space.filters.contains(f1) && space.filters.contains(f2));
                    }
                }
                if s.over_genome(&g).is_none() {
                    assert_eq!(small, s.trained_arch(&g).unwrap(), "within the cap: kept");
                }
            }
        }
    }

    #[test]
    fn over_the_cap_is_bred_again_then_shrunk_and_the_origin_says_so() {
        let s = sizer(Some(50_000), None);
        let big = Individual {
            genome: "S512-512 S512-512".into(),
            origin: "random".into(),
            ..Default::default()
        };
        let mut calls = 0;
        let small = s.within_cap(big.clone(), || {
            calls += 1;
            Individual {
                genome: if calls < 3 {
                    "S256-256"
                } else {
                    "S32-32 P:max P:max"
                }
                .into(),
                origin: "random".into(),
                ..Default::default()
            }
        });
        assert_eq!(calls, 3);
        assert_eq!(small.genome, "S32-32 P:max P:max");
        assert!(
            small.origin.contains("bred again 3 time(s)"),
            "{}",
            small.origin
        );
        let mut calls = 0;
        let shrunk = s.within_cap(big, || {
            calls += 1;
            Individual {
                genome: "S512-512".into(),
                origin: "random".into(),
                ..Default::default()
            }
        });
        assert_eq!(calls, TRIES);
        assert!(s
            .over_genome(&Arch::parse(&shrunk.genome).unwrap())
            .is_none());
        assert!(
            shrunk.origin.contains("shrunk from \"S512-512 S512-512\""),
            "{}",
            shrunk.origin
        );
        // within the cap: nothing drawn
        let ok = Individual {
            genome: "P:max S32-32 P:max".into(),
            origin: "random".into(),
            ..Default::default()
        };
        let kept = s.within_cap(ok.clone(), || unreachable!());
        assert_eq!((kept.genome, kept.origin), (ok.genome, ok.origin));
    }
}
