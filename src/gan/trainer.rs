//! The training loop of `neuroevo gan`: generations of a [`GanModel`], FID at epoch ends, sample
//! grids, plots, checkpoints, resume, and the exported best generator.
use super::config::*;
use super::outputs::{
    export_generator, export_mixture, restore_checkpoint, save_checkpoint, write_plots, LoopState,
};
use super::records::{GanRecord, Scores};
use super::*;
use crate::data::datasets::load_dataset;
use crate::device::device_name;
use crate::error::{Error, Result};
use crate::fsutil;
use crate::ga::{Breeding, Evolver, FlatOps, GaRng};
use crate::imageio::grid_image;
use crate::nn::load::FeatureExtractor;
use crate::run::clock::{process_cpu_s, ClockState};
use crate::run::log::generation_of;
use crate::run::{dir, drive, BudgetClock, Ctx, Driver, Position, Step, StopReason};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use std::path::PathBuf;
use tch::{Device, Kind, Tensor};

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct GanSummary {
    pub run_dir: PathBuf,
    pub mode: Mode,
    pub device: String,
    pub seed: u64,
    pub generations: u64,
    pub epochs: u64,
    /// Training seconds (the time budget's clock).
    pub train_s: f64,
    /// Wall seconds of the run (all invocations, evaluation included).
    pub wall_s: f64,
    /// CPU seconds of the process over the run (all invocations, evaluation included).
    pub cpu_s: f64,
    /// CPU seconds in training (the cpu budget clock).
    pub train_cpu_s: f64,
    pub final_fid: f64,
    pub best_fid: f64,
    pub fid_extractor: PathBuf,
    pub fid_samples: i64,
    pub generator: PathBuf,
    /// `--mixture`: the FID of the mixture `generator` samples from (`mixture.json`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mixture_fid: Option<f64>,
    pub stop_reason: crate::run::StopReason,
}

/// Training images `[N, C, S, S]` in the generator's output range.
pub(crate) fn real_images(x: &Tensor, from: (f32, f32), to: (f32, f32), size: i64) -> Tensor {
    let mut x = x.to_kind(Kind::Float);
    if x.size()[2] != size || x.size()[3] != size {
        x = x.upsample_bilinear2d([size, size], false, None, None);
    }
    let x = (x - from.0 as f64) * ((to.1 - to.0) as f64 / (from.1 - from.0) as f64) + to.0 as f64;
    x.clamp(to.0 as f64, to.1 as f64)
}

pub(crate) fn build_model(
    cfg: &GanConfig,
    shape: [i64; 3],
    device: Device,
) -> Result<Box<dyn GanModel>> {
    let evolver = |ga: &Option<Breeding>, ops: &FlatOps, ranges: Option<Vec<(usize, usize)>>| {
        ga.clone().map(|ga| Evolver {
            ga,
            ops: ops.clone(),
            tensor_ranges: ranges,
        })
    };
    Ok(match &cfg.model {
        ModelConfig::Weights(w) => {
            let w = w.clone();
            Box::new(weights::WeightsModel::new(
                w,
                shape,
                cfg.population as i64,
                evolver(&cfg.ga, &cfg.ops, None),
                cfg.batch_size,
                cfg.eval_batch,
                cfg.lr,
                cfg.beta1,
                device,
            ))
        }
        ModelConfig::Dcgan(d) => {
            let d = d.clone();
            let [c, h, _] = shape;
            let gl = dcgan::layout(&dcgan::generator_specs(h, c, d.width, d.latent_dim)?, true);
            let dl = dcgan::layout(&dcgan::discriminator_specs(h, c, d.width)?, false);
            let pt = cfg.per_tensor_crossover;
            Box::new(dcgan::DcganModel::new(
                d,
                shape,
                cfg.population as i64,
                (
                    evolver(&cfg.ga, &cfg.ops, pt.then(|| gl.ranges())),
                    evolver(&cfg.d_ga, &cfg.d_ops, pt.then(|| dl.ranges())),
                ),
                cfg.batch_size,
                cfg.eval_batch,
                cfg.lr,
                cfg.beta1,
                device,
            )?)
        }
    })
}

/// Refuses populations that cannot fit in this machine's memory: each weight as f32, with its
/// gradient, two Adam moments and a child's copy (5 floats per weight; E-GAN's generators
/// count once per child). The flag named is the size of one network (`--hidden`, `--width`)
/// when not even two of them fit, else `--population`.
fn check_memory(cfg: &GanConfig, shape: [i64; 3]) -> Result<()> {
    let (g, d, d_pop) = network_sizes(cfg, shape)?;
    let bytes_per_weight = 5.0 * 4.0;
    // E-GAN: every generator has one child per loss at once
    let g_pop = match &cfg.model {
        ModelConfig::Dcgan(m) => cfg.population * m.g_losses.len().max(1),
        ModelConfig::Weights(_) => cfg.population,
    };
    let total = bytes_per_weight * (g_pop as f64 * g as f64 + d_pop as f64 * d as f64);
    let one = bytes_per_weight * (g + d) as f64;
    let population = format!("--population {}", cfg.population);
    let size = match &cfg.model {
        ModelConfig::Weights(m) => {
            let h: Vec<String> = m.hidden.iter().map(|h| h.to_string()).collect();
            format!("--hidden {}", h.join(","))
        }
        ModelConfig::Dcgan(m) => format!("--width {} --latent-dim {}", m.width, m.latent_dim),
    };
    let flag = match crate::run::memory::physical_bytes() {
        Some(have) if 2.0 * one > have => format!("{size} (with {population})"),
        _ => population,
    };
    crate::run::memory::check(&flag, "the generators and discriminators", total)
}

/// Parameters of one generator, of one discriminator, and the discriminators' population.
fn network_sizes(cfg: &GanConfig, shape: [i64; 3]) -> Result<(usize, usize, usize)> {
    let [c, h, w] = shape;
    let (g, d, d_pop) = match &cfg.model {
        ModelConfig::Weights(m) => (
            super::mlp::generator_layout(m.latent_dim, &m.hidden, c * h * w).n,
            super::mlp::d_layout(shape, m.d_channels, m.minibatch_std).n,
            1,
        ),
        ModelConfig::Dcgan(m) => (
            dcgan::layout(&dcgan::generator_specs(h, c, m.width, m.latent_dim)?, true).n,
            dcgan::layout(&dcgan::discriminator_specs(h, c, m.width)?, false).n,
            m.d_population,
        ),
    };
    Ok((g as usize, d as usize, d_pop as usize))
}

/// A GAN population as the run layer's [`Step`]: a generation is the model's
/// [`GanModel::generation`]; its record, the FID at epoch ends (and every `--fid-every`
/// generations, and at the last), the epoch record, the sample grid and the plots are its
/// report; a checkpoint is due at every epoch end.
struct GanStep<'a> {
    cfg: &'a GanConfig,
    rd: &'a crate::run::RunDir,
    streams: &'a crate::rng::Streams,
    extractor: &'a FeatureExtractor,
    real_stats: fid::FeatureStats,
    range: (f32, f32),
    model: Box<dyn GanModel>,
    stream: RealStream,
    rng: GaRng,
    state: LoopState,
    z_grid: Tensor,
    z_fid: Tensor,
    /// Every record of the run (for the plots).
    records: Vec<Value>,
    /// D(x), D(G(z)), loss_d, loss_g of each generation of the current epoch.
    acc: Vec<[f64; 4]>,
    /// The statistics of the generation just trained and whether it ended an epoch, until
    /// they are reported.
    pending: Option<(GenStats, bool)>,
    due: bool,
    /// The sample grids for TensorBoard.
    images: crate::run::tensorboard::Images,
    /// `--pbt-every`: its settings, the real side of its FIDs and the images' channels.
    pbt: Option<(pbt::PbtConfig, fid::FeatureStats, i64)>,
    /// `--epoch-select`.
    select: Option<epoch_select::EpochSelect>,
}

impl GanStep<'_> {
    fn fid(&self) -> Result<f64> {
        let imgs = in_chunks(&self.z_fid, |z| self.model.sample_best(z))?;
        let s = fid::stats(self.extractor, &imgs, self.range)?;
        fid::frechet_distance(&self.real_stats, &s)
            .map_err(|e| diverged(self.state.generation, &e.to_string()))
    }

    fn emit(&mut self, ctx: &mut Ctx, r: Value) -> Result<()> {
        ctx.emit(&r)?;
        self.records.push(r);
        Ok(())
    }

    /// The run's clocks as of the last generation: wall, CPU, training wall and training CPU.
    fn clocks(&self) -> [f64; 4] {
        let st = &self.state;
        [
            st.clocks.elapsed_s,
            st.clocks.cpu_s,
            st.train_s,
            st.train_cpu_s,
        ]
    }

    fn new_fid(&mut self) -> Result<f64> {
        let f = self.fid()?;
        self.state.best_fid = Some(self.state.best_fid.map_or(f, |b: f64| b.min(f)));
        Ok(f)
    }
}

impl Step for GanStep<'_> {
    fn start(&mut self, ctx: &mut Ctx) -> Result<Option<StopReason>> {
        if self.records.is_empty() {
            self.model.prepare(&mut self.stream, &mut self.rng)?;
            // the starting point of the FID curve
            let f = self.fid()?;
            let init = GanRecord {
                train_cpu_s: None,
                fid: Some(f),
                ..GanRecord::at("init", 0, 0, [0.0; 4])
            };
            self.emit(ctx, init.value()?)?;
        }
        Ok(None)
    }

    fn position(&mut self, ctx: &mut Ctx) -> Result<Position> {
        let s = &self.state;
        Ok(Position {
            generation: s.generation,
            epoch: s.epoch,
            best_fitness: None,
            best_generation: 0,
            budget_s: match ctx.stop.budget_clock {
                BudgetClock::Wall => s.train_s,
                BudgetClock::Cpu => s.train_cpu_s,
            },
        })
    }

    fn report(&mut self, ctx: &mut Ctx, last: bool) -> Result<()> {
        self.due = false;
        // a run that stops between epoch ends reports and exports the better of its state and
        // the kept one (`--epoch-select`)
        let at_epoch_end = self.pending.as_ref().is_some_and(|p| p.1);
        let mut finish = None;
        if let (true, false, Some(sel)) = (last, at_epoch_end, &mut self.select) {
            finish = Some(sel.finish(
                self.model.as_mut(),
                self.extractor,
                self.range,
                self.z_fid.device(),
            )?);
        }
        let Some((mut s, epoch_end)) = self.pending.take() else {
            // nothing trained since the checkpoint: a run resumed at its end gets its final
            // FID unless its last record has one
            if last
                && self
                    .records
                    .last()
                    .is_none_or(|r| r["fid"].as_f64().is_none())
            {
                let f = self.new_fid()?;
                let st = &self.state;
                let clocks = [
                    ctx.clocks.wall_s(),
                    ctx.clocks.cpu_s(),
                    st.train_s,
                    st.train_cpu_s,
                ];
                let r = GanRecord {
                    fid: Some(f),
                    ..GanRecord::at("final", st.generation, st.epoch, clocks)
                };
                self.emit(ctx, r.value()?)?;
            }
            return Ok(());
        };
        if let Some(f) = finish {
            s.extra.insert("select_final".into(), f);
        }
        let st = &self.state;
        let g = st.generation;
        let mut rec = GanRecord::generation(g, st.epoch, self.clocks(), &s);
        // the last generation always gets its FID (the run's final one)
        let mut fid_now = None;
        if epoch_end || last || (self.cfg.fid_every > 0 && g % self.cfg.fid_every == 0) {
            let f = self.new_fid()?;
            rec.fid = Some(f);
            fid_now = Some(f);
        }
        ctx.bar.set_message(format!(
            "epoch {} train {:.0}s D(x) {:.3} D(G(z)) {:.3} best fitness {:.4}{}",
            self.state.epoch,
            self.state.train_s,
            s.real_score,
            s.fake_score,
            s.best_fitness,
            self.state
                .best_fid
                .map(|f| format!(" FID {f:.2}"))
                .unwrap_or_default()
        ));
        ctx.bar.set_position(g);
        self.emit(ctx, rec.value()?)?;
        if epoch_end {
            let k = self.acc.len() as f64;
            let mean = |j: usize| self.acc.iter().map(|a| a[j]).sum::<f64>() / k;
            let st = &self.state;
            let r = GanRecord {
                scores: Some(Scores {
                    real_score: mean(0),
                    fake_score: mean(1),
                    loss_d: mean(2),
                    loss_g: mean(3),
                }),
                fid: fid_now,
                ..GanRecord::at("epoch", g, st.epoch, self.clocks())
            };
            self.emit(ctx, r.value()?)?;
            self.acc.clear();
            let grid = grid_image(&self.model.sample_best(&self.z_grid)?, self.range, 8)?;
            fsutil::save_image_atomic(
                &self
                    .rd
                    .sub(dir::SAMPLES, &format!("epoch-{:04}.png", self.state.epoch)),
                &grid,
            )?;
            self.images.add("samples", g as i64, &grid)?;
            write_plots(self.rd.path(), &self.records)?;
            self.due = true;
        }
        Ok(())
    }

    /// At every epoch end, and after the first generation (an epoch can take long).
    fn checkpoint_due(&self, _: &Ctx) -> bool {
        self.due || self.state.generation == 1
    }

    fn checkpoint(&mut self, ctx: &mut Ctx) -> Result<()> {
        self.state.clocks = ctx.clocks.state();
        self.state.rng = self.rng.clone();
        self.state.stream_pos = Some(self.stream.pos);
        let fixed = [
            ("z_grid", &self.z_grid),
            ("z_fid", &self.z_fid),
            ("stream_perm", &self.stream.perm),
        ];
        let named = match &self.select {
            Some(sel) => sel.tensors_of(self.model.as_ref()),
            None => self.model.tensors(),
        };
        save_checkpoint(self.rd, named, &fixed, &self.state)
    }

    fn advance(&mut self, ctx: &mut Ctx) -> Result<Option<StopReason>> {
        // libtorch's RNG is seeded per generation: a resumed run draws what the uninterrupted
        // one draws, wherever it was checkpointed
        self.streams.generation_libtorch(self.state.generation);
        if let Some(sel) = &mut self.select {
            sel.train_on_own(self.model.as_mut())?;
        }
        let t0 = std::time::Instant::now();
        let c0 = process_cpu_s();
        let mut s =
            self.model
                .generation(&mut self.stream, &mut self.rng, self.state.generation)?;
        // a PBT round is part of the generation: its FIDs count as training time
        if let Some((p, real, c)) = &self.pbt {
            if (self.state.generation + 1).is_multiple_of(p.every) && self.model.pbt_has_rivals() {
                let latent = self.model.latent_shape()[0];
                let z = Tensor::randn([p.fid_samples, latent], (Kind::Float, self.z_fid.device()));
                let fids = pbt::member_fids(
                    self.model.as_ref(),
                    *c,
                    &z,
                    self.extractor,
                    real,
                    self.range,
                )?;
                let round = self.model.pbt(&fids, &mut self.rng)?;
                s.extra.insert("pbt".into(), round);
            }
        }
        // so is an `--epoch-select` round at an epoch end
        if let (true, Some(sel)) = (self.stream.epochs > self.state.epoch, &mut self.select) {
            let round = sel.round(
                self.model.as_mut(),
                self.extractor,
                self.range,
                self.z_fid.device(),
            )?;
            s.extra.insert("select".into(), round);
        }
        let losses = [s.real_score, s.fake_score, s.loss_d, s.loss_g];
        if losses.iter().any(|x| !x.is_finite()) {
            return Err(diverged(
                self.state.generation + 1,
                &format!(
                    "the losses are not finite (D(x) {}, D(G(z)) {}, loss_d {}, loss_g {})",
                    s.real_score, s.fake_score, s.loss_d, s.loss_g
                ),
            ));
        }
        let st = &mut self.state;
        st.train_s += t0.elapsed().as_secs_f64();
        st.train_cpu_s += (process_cpu_s() - c0).max(0.0);
        st.generation += 1;
        st.clocks = ctx.clocks.state();
        self.acc
            .push([s.real_score, s.fake_score, s.loss_d, s.loss_g]);
        let epoch_end = self.stream.epochs > st.epoch;
        st.epoch = self.stream.epochs;
        self.pending = Some((s, epoch_end));
        Ok(None)
    }
}

/// The error of a run whose networks diverged: it names the generation and keeps the last
/// checkpoint (nothing is written after it).
fn diverged(generation: u64, what: &str) -> Error {
    Error::Other(format!(
        "generation {generation}: the training diverged: {what}; the checkpoint before it is kept; start again with a lower --lr"
    ))
}

/// Opens a gan run with its FID extractor (loaded before the run directory is made for a new
/// run, so that a missing extractor is reported first).
fn open_run(args: &GanArgs) -> Result<(crate::run::Run<GanConfig>, FeatureExtractor)> {
    let mut loaded = None;
    let run = crate::run::open(
        &args.run,
        |new| {
            // a missing extractor is a mistake to report before the run directory is made
            let extractor = FeatureExtractor::load_with(
                &args.fid_model,
                new.device,
                args.fid_input()?.as_ref(),
            )
            .map_err(|e| fid::for_flag(e, &args.fid_model))?;
            extractor.check_memory(args.fid_samples)?;
            let cfg = args.to_config(new)?;
            loaded = Some(extractor);
            Ok(cfg)
        },
        |cfg| args.apply_on_resume(cfg),
    )?;
    let extractor = match loaded {
        Some(e) => e,
        None => {
            FeatureExtractor::load_with(&run.cfg.fid_model, run.device, run.cfg.fid_input.as_ref())
                .map_err(|e| fid::for_flag(e, &run.cfg.fid_model))?
        }
    };
    Ok((run, extractor))
}

/// `--pbt-every`: its settings, the real side of its FIDs (a seeded set of
/// [`pbt::REAL_SAMPLES`] training images, drawn apart from the run's FID set) and the images'
/// channels `c`; None without PBT.
fn pbt_setup(
    run: &crate::run::Run<GanConfig>,
    real: &Tensor,
    extractor: &FeatureExtractor,
    range: (f32, f32),
    c: i64,
) -> Result<Option<(pbt::PbtConfig, fid::FeatureStats, i64)>> {
    let ModelConfig::Dcgan(dcgan::DcganConfig { pbt: Some(p), .. }) = &run.cfg.model else {
        return Ok(None);
    };
    let rng = run.streams.pbt_samples();
    let s = fid::real_stats(real, pbt::REAL_SAMPLES, rng, extractor, range)?;
    Ok(Some((p.clone(), s, c)))
}

/// The line that says what the run is.
fn print_header(
    cfg: &GanConfig,
    device: Device,
    c: i64,
    n_real: i64,
    extractor: &FeatureExtractor,
) {
    eprintln!(
        "gan: {:?} mode, {} {}x{}x{} ({} images), population {}{}, {}, seed {}; FID on {} ({} samples)",
        cfg.model.mode(),
        cfg.dataset.label(),
        c,
        cfg.image_size,
        cfg.image_size,
        n_real,
        cfg.population,
        if cfg.evolution { "" } else { " (no evolution)" },
        device_name(device),
        cfg.seed,
        extractor.features_file.display(),
        cfg.fid_samples
    );
}

/// A new run's loop state, latents and random stream, or those its checkpoint holds (with the
/// real images' order), the populations loaded into `model`.
#[allow(clippy::type_complexity)]
fn start_state(
    run: &crate::run::Run<GanConfig>,
    model: &mut dyn GanModel,
    mut rng: GaRng,
    select: Option<&mut epoch_select::EpochSelect>,
) -> Result<(LoopState, Tensor, Tensor, Option<Tensor>, GaRng)> {
    let (cfg, device) = (&run.cfg, run.device);
    let latent = model.latent_shape()[0];
    let mut z_grid = Tensor::randn([64, latent], (Kind::Float, device));
    let mut z_fid = Tensor::randn([cfg.fid_samples, latent], (Kind::Float, device));
    let mut state = LoopState {
        generation: 0,
        epoch: 0,
        train_s: 0.0,
        clocks: ClockState::default(),
        rng: rng.clone(),
        best_fid: None,
        train_cpu_s: 0.0,
        stream_pos: None,
    };
    let mut saved_perm = None;
    if run.resumed {
        let (st, map) = restore_checkpoint(&run.dir, model)?;
        state = st;
        z_grid = take(&map, "z_grid", &z_grid.size())?;
        z_fid = take(&map, "z_fid", &z_fid.size())?;
        saved_perm = map.get("stream_perm").map(|p| p.shallow_clone());
        if let Some(sel) = select {
            sel.restore(model, &map)?;
        }
        z_grid = z_grid.to_device(device);
        z_fid = z_fid.to_device(device);
        saved_perm = saved_perm.map(|p| p.to_device(device));
        rng = state.rng.clone();
    }
    Ok((state, z_grid, z_fid, saved_perm, rng))
}

pub fn run_gan(args: &GanArgs) -> Result<GanSummary> {
    let (run, extractor) = open_run(args)?;
    let (cfg, device, resumed) = (&run.cfg, run.device, run.resumed);
    let rd = &run.dir;
    let dir = rd.path().to_path_buf();
    run.streams.init_libtorch();
    let data = load_dataset(&cfg.dataset, &cfg.data, device)?;
    let size = cfg.image_size;
    let c = data.shape[0];
    let shape = [c, size, size];
    check_memory(cfg, shape)?;
    let mut model = build_model(cfg, shape, device)?;
    let range = model.output_range();
    let real = real_images(&data.train_and_val().x, data.value_range, range, size);
    drop(data);
    let n_real = real.size()[0];
    if n_real < cfg.batch_size.max(cfg.eval_batch) {
        return Err(Error::usage(format!(
            "{n_real} training images: fewer than one batch (--batch-size {}, --eval-batch {})",
            cfg.batch_size, cfg.eval_batch
        )));
    }
    let rng = run.streams.ga();
    let real_stats = fid::real_stats(
        &real,
        cfg.fid_samples,
        run.streams.fid_samples(),
        &extractor,
        range,
    )?;
    let pbt = pbt_setup(&run, &real, &extractor, range, c)?;
    let latent = model.latent_shape();
    let mut select = match cfg.epoch_select {
        Some(n) => Some(epoch_select::EpochSelect::setup(
            &run, n, &real, &extractor, range, &latent,
        )?),
        None => None,
    };
    let (state, z_grid, z_fid, saved_perm, mut rng) =
        start_state(&run, model.as_mut(), rng, select.as_mut())?;
    let stream = match (saved_perm, state.stream_pos) {
        (Some(perm), Some(pos)) => RealStream::restore(real, perm, pos, state.epoch)?,
        // a checkpoint written before the stream position was kept
        _ => RealStream::new(real, state.epoch, &mut rng),
    };
    let quiet = run.quiet;
    if !quiet {
        print_header(cfg, device, c, n_real, &extractor);
    }
    let bar = crate::run::progress::bar(quiet, cfg.stop.generations, "gen");
    bar.set_position(state.generation);
    // records after the checkpoint are dropped; the run redoes those generations
    let covered = state.generation;
    let keep = |_, r: &Value| resumed && generation_of(r).is_some_and(|g| g <= covered);
    let (mut driver, records) =
        Driver::open(rd, keep, cfg.stop.clone(), state.clocks, bar, resumed)?;
    let mut step = GanStep {
        cfg,
        rd,
        streams: &run.streams,
        extractor: &extractor,
        real_stats,
        range,
        model,
        stream,
        rng,
        state,
        z_grid,
        z_fid,
        records,
        acc: Vec::new(),
        pending: None,
        due: false,
        images: crate::run::tensorboard::Images::open(rd.path())?,
        pbt,
        select,
    };
    let stopped_by = drive(&mut step, &mut driver)?;
    driver.bar.finish_and_clear();
    let GanStep {
        model,
        z_grid,
        z_fid,
        real_stats,
        records,
        mut state,
        mut images,
        ..
    } = step;
    let final_fid = records
        .last()
        .and_then(|r| r["fid"].as_f64())
        .expect("the last record of a run has its FID");
    let final_grid = grid_image(&model.sample_best(&z_grid)?, range, 8)?;
    fsutil::save_image_atomic(&rd.sub(dir::SAMPLES, "final.png"), &final_grid)?;
    images.add("samples", state.generation as i64, &final_grid)?;
    write_plots(&dir, &records)?;
    let gen_path = rd.file("best-generator.pt");
    let mixture_fid = match cfg.mixture {
        true => Some(export_mixture(
            &run,
            model.as_ref(),
            shape,
            &z_fid,
            &extractor,
            &real_stats,
        )?),
        false => {
            export_generator(cfg, model.as_ref(), shape, range, &gen_path)?;
            None
        }
    };
    state.clocks = driver.clocks.state();
    let summary = GanSummary {
        run_dir: dir.clone(),
        mode: cfg.model.mode(),
        device: device_name(device),
        seed: cfg.seed,
        generations: state.generation,
        epochs: state.epoch,
        train_s: state.train_s,
        wall_s: driver.clocks.wall_s(),
        cpu_s: state.clocks.cpu_s,
        train_cpu_s: state.train_cpu_s,
        final_fid,
        best_fid: state.best_fid.unwrap_or(final_fid),
        fid_extractor: extractor.features_file.clone(),
        fid_samples: cfg.fid_samples,
        generator: gen_path,
        mixture_fid,
        stop_reason: stopped_by,
    };
    driver.finish(rd, stopped_by.as_str(), &summary)?;
    Ok(summary)
}
