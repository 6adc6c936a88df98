//! Training a classifier: Adam (default) or SGD with momentum, optional cosine schedule and
//! random-shift augmentation, batches sliced on the device, and per-epoch figures read back
//! once per epoch (no per-batch host syncs).
//!
//! A training may stop after any step and go on later (`TrainConfig::budget_steps`,
//! [`EpochTrainer::train_steps`]): the optimizer, the batch order of the epoch in progress and
//! the learning-rate schedule, which always spans all `epochs`, are carried, so a network
//! trained to k steps and then on to m equals one trained straight to m (auto-cnn's successive
//! halving continues its networks so). Only the global libtorch generator is not carried:
//! networks that draw from it while they train (dropout, `augment_shift`) continue equal only
//! if nothing else drew from it in between.
use super::Precision;
use crate::data::{Batches, Split};
use crate::error::{Error, Result};
use serde::{Deserialize, Serialize};
use std::borrow::Cow;
use std::time::Instant;
use tch::nn::{self, ModuleT, OptimizerConfig};
use tch::{Kind, Tensor};

#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Optimizer {
    Adam,
    Sgd { momentum: f64 },
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Schedule {
    Constant,
    /// Cosine decay from the learning rate to 0 over all steps.
    Cosine,
}

impl Schedule {
    pub fn parse(s: &str) -> Result<Self> {
        match s.trim().to_ascii_lowercase().as_str() {
            "constant" | "none" => Ok(Schedule::Constant),
            "cosine" => Ok(Schedule::Cosine),
            other => Err(Error::usage(format!(
                "--schedule {other}: expected constant or cosine"
            ))),
        }
    }
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct TrainConfig {
    pub epochs: usize,
    pub batch_size: usize,
    pub lr: f64,
    pub optimizer: Optimizer,
    pub schedule: Schedule,
    pub weight_decay: f64,
    /// Shift training images by up to this many pixels (random per image and batch); 0: off.
    pub augment_shift: i64,
    pub seed: crate::rng::Streams,
    /// What the network computes in while it trains (callers set it on the network; older
    /// configs without it trained in fp32).
    #[serde(default)]
    pub precision: Precision,
    /// Stop after this many optimizer steps in all, before the end of `epochs` (a lower rung
    /// of auto-cnn's successive halving); the schedule still spans all `epochs`. None: train
    /// every epoch.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub budget_steps: Option<usize>,
}

impl Default for TrainConfig {
    fn default() -> Self {
        TrainConfig {
            epochs: 5,
            batch_size: 64,
            lr: 1e-3,
            optimizer: Optimizer::Adam,
            schedule: Schedule::Constant,
            weight_decay: 0.0,
            augment_shift: 0,
            seed: Default::default(),
            precision: Precision::Fp32,
            budget_steps: None,
        }
    }
}

impl TrainConfig {
    pub fn validate(&self) -> Result<()> {
        if self.epochs == 0 {
            return Err(Error::usage("--epochs must be at least 1"));
        }
        if self.batch_size == 0 {
            return Err(Error::usage("--batch-size must be at least 1"));
        }
        // libtorch's optimizers hold their rates as float32 scalars: a larger value panics
        // inside them instead of training
        let f32_max = f32::MAX as f64;
        if !(self.lr > 0.0 && self.lr <= f32_max) {
            return Err(Error::usage(format!(
                "--lr {}: must be a positive number that float32 holds (at most {f32_max:.1e})",
                short(self.lr)
            )));
        }
        if !(self.weight_decay >= 0.0 && self.weight_decay <= f32_max) {
            return Err(Error::usage(format!(
                "--weight-decay {}: must be 0 or a positive number that float32 holds (at most {f32_max:.1e})",
                short(self.weight_decay)
            )));
        }
        if let Optimizer::Sgd { momentum } = self.optimizer {
            if !(0.0..1.0).contains(&momentum) {
                return Err(Error::usage(format!(
                    "--momentum {momentum}: must be in [0, 1)"
                )));
            }
        }
        if !(0..=8).contains(&self.augment_shift) {
            return Err(Error::usage(
                "--augment-shift must be between 0 and 8 pixels",
            ));
        }
        if self.budget_steps == Some(0) {
            return Err(Error::usage("a budget of 0 training steps trains nothing"));
        }
        Ok(())
    }

    /// Optimizer steps of one epoch over `train_len` images.
    pub fn steps_per_epoch(&self, train_len: usize) -> usize {
        train_len.div_ceil(self.batch_size.max(1))
    }

    /// Optimizer steps of the whole training (`epochs`), over which the schedule runs.
    pub fn full_steps(&self, train_len: usize) -> usize {
        self.epochs * self.steps_per_epoch(train_len)
    }
}

/// A number as a user types it: `0.001`, `-1`, `1e39`.
fn short(x: f64) -> String {
    if x != 0.0 && x.is_finite() && !(1e-4..1e6).contains(&x.abs()) {
        format!("{x:e}")
    } else {
        format!("{x}")
    }
}

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct EpochReport {
    pub epoch: usize,
    pub train_loss: f64,
    pub train_acc: f64,
    pub val_acc: Option<f64>,
    pub seconds: f64,
    pub samples_per_s: f64,
}

/// Shifts each image by a random whole number of pixels in [-k, k] (zeros come in).
fn random_shift(x: &Tensor, k: i64) -> Tensor {
    let s = x.size();
    let (b, dev) = (s[0], x.device());
    let shifts = Tensor::randint_low(-k, k + 1, [b, 2], (Kind::Int64, dev)).to_kind(Kind::Float);
    let tx = shifts.select(1, 0) * (2.0 / s[3] as f64);
    let ty = shifts.select(1, 1) * (2.0 / s[2] as f64);
    let one = Tensor::ones([b], (Kind::Float, dev));
    let zero = Tensor::zeros([b], (Kind::Float, dev));
    let theta = Tensor::stack(&[&one, &zero, &tx, &zero, &one, &ty], 1).view([b, 2, 3]);
    let grid = Tensor::affine_grid_generator(&theta, s.as_slice(), false);
    x.grid_sampler(&grid, 1, 0, false)
}

/// Images per forward pass when measuring accuracy (large enough to keep a GPU busy, small
/// enough that a wide network's activations stay within a few hundred MB).
pub const EVAL_BATCH: usize = 256;

/// Fraction of `split` classified correctly (eval mode), in batches of `bs`.
pub fn accuracy(net: &impl ModuleT, split: &Split, bs: usize) -> f64 {
    if split.is_empty() {
        return f64::NAN;
    }
    let _guard = tch::no_grad_guard();
    let mut correct = Tensor::zeros([], (Kind::Int64, split.x.device()));
    for (x, y) in Batches::new(split, bs, None) {
        correct += net
            .forward_t(&x, false)
            .argmax(-1, false)
            .eq_tensor(&y)
            .sum(Kind::Int64);
    }
    correct.int64_value(&[]) as f64 / split.len() as f64
}

/// Training one epoch at a time: the optimizer, the batch order's random stream and the
/// learning-rate schedule's step, carried from one epoch to the next. A job that trains in
/// epochs (`train`'s step, [`train_classifier`]) calls [`EpochTrainer::epoch`] for each; one
/// that stops in the middle of an epoch calls [`EpochTrainer::train_steps`].
pub struct EpochTrainer<'a> {
    cfg: Cow<'a, TrainConfig>,
    opt: nn::Optimizer,
    rng: crate::rng::GaRng,
    steps_per_epoch: usize,
    step: usize,
    /// Epochs done so far (a resumed run starts at its checkpoint's count).
    pub done: usize,
    /// The epoch stopped in its middle, to go on from there.
    open: Option<OpenEpoch>,
}

/// An epoch stopped after some of its batches: its batch order, how far it went and its sums
/// so far (its report covers the whole epoch once it ends).
struct OpenEpoch {
    perm: Option<Tensor>,
    pos: i64,
    loss_sum: Tensor,
    correct: Tensor,
    seconds: f64,
}

impl<'a> EpochTrainer<'a> {
    /// After `epochs_done` epochs (a resumed run): epoch numbers, the learning-rate schedule and
    /// the seeds continue from there.
    pub fn new(
        vs: &nn::VarStore,
        train_len: usize,
        cfg: &'a TrainConfig,
        epochs_done: usize,
    ) -> Result<Self> {
        Self::with(vs, train_len, Cow::Borrowed(cfg), epochs_done)
    }

    /// A trainer that holds its own copy of `cfg` (one kept beside its network between calls).
    pub fn owned(
        vs: &nn::VarStore,
        train_len: usize,
        cfg: TrainConfig,
        epochs_done: usize,
    ) -> Result<EpochTrainer<'static>> {
        EpochTrainer::with(vs, train_len, Cow::Owned(cfg), epochs_done)
    }

    fn with(
        vs: &nn::VarStore,
        train_len: usize,
        cfg: Cow<'a, TrainConfig>,
        epochs_done: usize,
    ) -> Result<Self> {
        cfg.validate()?;
        let opt = match cfg.optimizer {
            Optimizer::Adam => nn::Adam {
                wd: cfg.weight_decay,
                ..Default::default()
            }
            .build(vs, cfg.lr)?,
            Optimizer::Sgd { momentum } => nn::Sgd {
                momentum,
                wd: cfg.weight_decay,
                ..Default::default()
            }
            .build(vs, cfg.lr)?,
        };
        let steps_per_epoch = cfg.steps_per_epoch(train_len);
        Ok(EpochTrainer {
            rng: cfg.seed.epoch(epochs_done as u64),
            cfg,
            opt,
            steps_per_epoch,
            step: steps_per_epoch * epochs_done,
            done: epochs_done,
            open: None,
        })
    }

    /// Optimizer steps taken so far (over all epochs).
    pub fn steps(&self) -> usize {
        self.step
    }

    /// The settings it trains with.
    pub fn config(&self) -> &TrainConfig {
        &self.cfg
    }

    /// Trains `net` for one more epoch on `train` (the rest of it, after a stop in its middle)
    /// and measures it on `val`; with `progress`, a bar over the epoch's batches joins that
    /// group of bars.
    pub fn epoch(
        &mut self,
        net: &impl ModuleT,
        train: &Split,
        val: Option<&Split>,
        progress: Option<&indicatif::MultiProgress>,
    ) -> Result<EpochReport> {
        let r = self.train_steps(net, train, val, progress, None)?;
        Ok(r.expect("an epoch without a step limit runs to its end"))
    }

    /// Trains `net` on `train` until the epoch in progress ends (then its report, measured on
    /// `val`) or, with `until`, until `until` steps have been taken in all (then `None`: the
    /// epoch stays open, and the next call goes on with its next batch). A training whose loss
    /// is not finite at the end of the epoch, or where it stops, is an error.
    pub fn train_steps(
        &mut self,
        net: &impl ModuleT,
        train: &Split,
        val: Option<&Split>,
        progress: Option<&indicatif::MultiProgress>,
        until: Option<usize>,
    ) -> Result<Option<EpochReport>> {
        let cfg: &TrainConfig = &self.cfg;
        let epoch = self.done + 1;
        let total_steps = (self.steps_per_epoch * cfg.epochs.max(epoch)) as f64;
        let dev = train.x.device();
        let t0 = Instant::now();
        let (mut batches, mut loss_sum, mut correct, before_s) = match self.open.take() {
            Some(o) => (
                Batches::resume(train, cfg.batch_size, o.perm, o.pos),
                o.loss_sum,
                o.correct,
                o.seconds,
            ),
            None => (
                Batches::new(train, cfg.batch_size, Some(&mut self.rng)),
                Tensor::zeros([], (Kind::Float, dev)),
                Tensor::zeros([], (Kind::Int64, dev)),
                0.0,
            ),
        };
        let bar = epoch_bar(progress, self.steps_per_epoch, epoch, cfg.epochs);
        bar.set_position(batches.taken() as u64);
        while !batches.is_done() {
            if until.is_some_and(|u| self.step >= u) {
                bar.finish_and_clear();
                let (perm, pos) = batches.into_parts();
                let loss = loss_sum.double_value(&[]) / pos.max(1) as f64;
                if !loss.is_finite() {
                    return Err(Error::Other(format!(
                        "step {}: the training loss is {loss}; lower --lr",
                        self.step
                    )));
                }
                self.open = Some(OpenEpoch {
                    perm,
                    pos,
                    loss_sum,
                    correct,
                    seconds: before_s + t0.elapsed().as_secs_f64(),
                });
                return Ok(None);
            }
            let (x, y) = batches.next().expect("batches are left");
            if cfg.schedule == Schedule::Cosine {
                self.opt.set_lr(
                    cfg.lr
                        * 0.5
                        * (1.0 + (std::f64::consts::PI * self.step as f64 / total_steps).cos()),
                );
            }
            let x = if cfg.augment_shift > 0 {
                random_shift(&x, cfg.augment_shift)
            } else {
                x
            };
            let logits = net.forward_t(&x, true);
            let loss = logits.cross_entropy_for_logits(&y);
            self.opt.backward_step(&loss);
            let _guard = tch::no_grad_guard();
            loss_sum += loss.detach() * y.size()[0] as f64;
            correct += logits.argmax(-1, false).eq_tensor(&y).sum(Kind::Int64);
            self.step += 1;
            bar.inc(1);
        }
        let n = train.len() as f64;
        let train_loss = loss_sum.double_value(&[]) / n;
        let train_acc = correct.int64_value(&[]) as f64 / n;
        let seconds = before_s + t0.elapsed().as_secs_f64();
        bar.finish_and_clear();
        if !train_loss.is_finite() {
            return Err(Error::Other(format!(
                "epoch {epoch}: the training loss is {train_loss}; lower --lr"
            )));
        }
        let val_acc = val
            .filter(|v| !v.is_empty())
            .map(|v| accuracy(net, v, EVAL_BATCH));
        self.done = epoch;
        Ok(Some(EpochReport {
            epoch,
            train_loss,
            train_acc,
            val_acc,
            seconds,
            samples_per_s: n / seconds,
        }))
    }
}

impl EpochTrainer<'_> {
    /// Trains until every epoch of `epochs` is done or, with `until`, until `until` steps have
    /// been taken in all (it stops there, in the middle of an epoch or not); `on_epoch` gets the
    /// report of each epoch that ends.
    pub fn train_until(
        &mut self,
        net: &impl ModuleT,
        train: &Split,
        val: Option<&Split>,
        progress: Option<&indicatif::MultiProgress>,
        until: Option<usize>,
        mut on_epoch: impl FnMut(&EpochReport),
    ) -> Result<()> {
        while self.done < self.cfg.epochs {
            match self.train_steps(net, train, val, progress, until)? {
                Some(r) => on_epoch(&r),
                None => break,
            }
        }
        Ok(())
    }
}

/// A bar over one epoch's batches in `progress`'s group (hidden without one).
fn epoch_bar(
    progress: Option<&indicatif::MultiProgress>,
    batches: usize,
    epoch: usize,
    epochs: usize,
) -> indicatif::ProgressBar {
    let Some(mp) = progress else {
        return indicatif::ProgressBar::hidden();
    };
    let b = mp.add(indicatif::ProgressBar::new(batches as u64));
    b.set_style(
        indicatif::ProgressStyle::with_template(
            "epoch {prefix} [{bar:30}] {pos}/{len} batches {per_sec} eta {eta}",
        )
        .unwrap()
        .progress_chars("=> "),
    );
    b.set_prefix(format!("{epoch}/{epochs}"));
    b
}

/// Trains `net` (whose variables are in `vs`) on `train`, reporting validation accuracy on `val`
/// after every epoch through `on_epoch`, which says whether to go on (false: training ends after
/// this epoch). `epochs_done` epochs of `cfg.epochs` have already been
/// run (a resumed run): epoch numbers, the learning-rate schedule and the seeds continue from
/// there. With `progress`, a bar over each epoch's batches joins that group of bars.
pub fn train_classifier(
    net: &impl ModuleT,
    vs: &nn::VarStore,
    train: &Split,
    val: Option<&Split>,
    cfg: &TrainConfig,
    epochs_done: usize,
    progress: Option<&indicatif::MultiProgress>,
    mut on_epoch: impl FnMut(&EpochReport) -> Result<bool>,
) -> Result<Vec<EpochReport>> {
    let mut trainer = EpochTrainer::new(vs, train.len(), cfg, epochs_done)?;
    let mut reports = Vec::new();
    while trainer.done < cfg.epochs {
        let r = trainer.epoch(net, train, val, progress)?;
        let go_on = on_epoch(&r)?;
        reports.push(r);
        if !go_on {
            break;
        }
    }
    Ok(reports)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::nn::arch::Arch;
    use crate::nn::model::LayerNet;
    use tch::Device;

    /// 100 random 8x8 images of 3 classes.
    fn data() -> Split {
        let x = Tensor::rand([100, 1, 8, 8], (Kind::Float, Device::Cpu));
        let y = Tensor::randint(3, [100], (Kind::Int64, Device::Cpu));
        Split { x, y }
    }

    /// A network for [`data`] with the weights of `like` (tests run in parallel and draw from
    /// libtorch's one generator: copies start equal whatever else draws meanwhile).
    fn new_net(like: Option<&nn::VarStore>) -> (nn::VarStore, LayerNet) {
        let mut vs = nn::VarStore::new(Device::Cpu);
        let arch = Arch::parse("S4-4 P:max").unwrap();
        let net = LayerNet::new(&vs.root(), &arch, [1, 8, 8], 3).unwrap();
        if let Some(like) = like {
            vs.copy(like).unwrap();
        }
        (vs, net)
    }

    fn weights(vs: &nn::VarStore) -> Vec<(String, Vec<f32>)> {
        let mut w: Vec<(String, Vec<f32>)> = vs
            .variables()
            .into_iter()
            .map(|(k, t)| (k, Vec::<f32>::try_from(t.flatten(0, -1)).unwrap()))
            .collect();
        w.sort_by(|a, b| a.0.cmp(&b.0));
        w
    }

    #[test]
    fn a_training_stopped_mid_epoch_and_continued_equals_one_straight_through() {
        let cfg = TrainConfig {
            epochs: 3,
            batch_size: 16,
            lr: 4e-3,
            schedule: Schedule::Cosine,
            seed: crate::rng::Streams::new(7),
            ..Default::default()
        };
        // 7 steps per epoch, 21 in all: stop at 3 (mid-epoch), 7 (an epoch's end), 12
        let train = data();
        let (start, _) = new_net(None);
        let (vs, net) = new_net(Some(&start));
        let mut t = EpochTrainer::new(&vs, train.len(), &cfg, 0).unwrap();
        let mut reports = Vec::new();
        for stop in [3, 7, 12] {
            t.train_until(&net, &train, None, None, Some(stop), |r| {
                reports.push(r.clone())
            })
            .unwrap();
            assert_eq!(t.steps(), stop);
        }
        let at_12 = weights(&vs);
        t.train_until(&net, &train, None, None, None, |r| reports.push(r.clone()))
            .unwrap();
        assert_eq!((t.steps(), t.done), (21, 3));

        // straight to 12 steps, and straight through with epoch() as `train` does
        let (vs2, net2) = new_net(Some(&start));
        let mut t2 = EpochTrainer::owned(&vs2, train.len(), cfg.clone(), 0).unwrap();
        t2.train_until(&net2, &train, None, None, Some(12), |_| {})
            .unwrap();
        assert_eq!(weights(&vs2), at_12, "continued to 12 = straight to 12");
        let (vs3, net3) = new_net(Some(&start));
        let mut t3 = EpochTrainer::new(&vs3, train.len(), &cfg, 0).unwrap();
        let straight: Vec<EpochReport> = (0..3)
            .map(|_| t3.epoch(&net3, &train, None, None).unwrap())
            .collect();
        assert_eq!(weights(&vs3), weights(&vs), "continued = straight through");
        assert_eq!(reports.len(), 3);
        for (a, b) in reports.iter().zip(&straight) {
            assert_eq!(
                (a.epoch, a.train_loss, a.train_acc),
                (b.epoch, b.train_loss, b.train_acc)
            );
        }
    }

    #[test]
    fn random_shift_moves_whole_pixels() {
        tch::manual_seed(1);
        let x = Tensor::zeros([64, 1, 9, 9], (Kind::Float, Device::Cpu));
        let _ = x.narrow(2, 4, 1).narrow(3, 4, 1).fill_(1.0);
        let y = random_shift(&x, 2);
        // every image still holds exactly one lit pixel, within 2 of the centre
        let sums =
            Vec::<f32>::try_from(y.sum_dim_intlist([1, 2, 3].as_slice(), false, Kind::Float))
                .unwrap();
        assert!(sums.iter().all(|&s| (s - 1.0).abs() < 1e-6), "{sums:?}");
        let moved = Vec::<f32>::try_from(y.narrow(2, 4, 1).narrow(3, 4, 1).flatten(0, -1)).unwrap();
        assert!(moved.iter().any(|&v| v == 0.0), "some images moved");
        let inner = y
            .narrow(2, 2, 5)
            .narrow(3, 2, 5)
            .sum(Kind::Float)
            .double_value(&[]);
        assert_eq!(inner, 64.0);
    }
}
