//! The training loop of `neuroevo gan`: generations of a [`GanModel`], FID at epoch ends, sample
//! grids, plots, checkpoints, resume, and the exported best generator.
use super::config::*;
use super::*;
use crate::data::datasets::load_dataset;
use crate::device::device_name;
use crate::error::{Error, Result};
use crate::fsutil;
use crate::ga::{Breeding, Evolver, FlatOps, GaRng};
use crate::imageio::grid_image;
use crate::nn::load::{FeatureExtractor, GeneratorInfo};
use crate::plot::{line_plot, Panel, Series};
use crate::run::clock::{process_cpu_s, Clocks};
use crate::run::log::{generation_of, Log};
use crate::run::{dir, BudgetClock, Position};
use rand::seq::SliceRandom;
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use tch::{Device, Kind, Tensor};

/// What `checkpoint.json` holds besides the tensors in `checkpoint.pt`.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub(crate) struct LoopState {
    pub(crate) generation: u64,
    pub(crate) epoch: u64,
    pub(crate) train_s: f64,
    /// Wall seconds since the run began, over all its invocations.
    #[serde(default)]
    pub(crate) elapsed_s: f64,
    pub(crate) rng: GaRng,
    pub(crate) best_fid: Option<f64>,
    /// CPU seconds of the process since the run began (all threads, evaluation included):
    /// a clock that other jobs on a shared machine do not stretch.
    #[serde(default)]
    pub(crate) cpu_s: f64,
    /// CPU seconds spent in generations (the cpu budget clock).
    #[serde(default)]
    pub(crate) train_cpu_s: f64,
    /// Position in the permutation of real images (`stream_perm` in the tensors), so that a
    /// resumed run draws the batches an uninterrupted one would.
    #[serde(default)]
    pub(crate) stream_pos: Option<i64>,
}

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
    /// Wall seconds of this invocation, evaluation included.
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
    Ok(match cfg.mode {
        Mode::Weights => {
            let w = cfg
                .weights
                .clone()
                .ok_or_else(|| Error::Other("config: no weights section".into()))?;
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
        Mode::Dcgan => {
            let d = cfg
                .dcgan
                .clone()
                .ok_or_else(|| Error::Other("config: no dcgan section".into()))?;
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

pub(crate) fn save_checkpoint(
    dir: &crate::run::RunDir,
    model: &dyn GanModel,
    fixed: &[(&str, &Tensor)],
    state: &LoopState,
) -> Result<()> {
    let mut named = model.tensors();
    for (n, t) in fixed {
        named.push((n.to_string(), t.shallow_clone()));
    }
    let cpu: Vec<(String, Tensor)> = named
        .into_iter()
        .map(|(n, t)| (n, t.to_device(Device::Cpu)))
        .collect();
    fsutil::replace_atomic(&dir.file(dir::TENSORS), |tmp| {
        Tensor::save_multi(&cpu, tmp).map_err(Error::from)
    })?;
    fsutil::write_json_atomic(&dir.file(dir::STATE), state)
}

pub(crate) fn epoch_series(records: &[Value], key: &str) -> Series {
    Series {
        name: key.into(),
        points: records
            .iter()
            .filter(|r| r["kind"] == "epoch")
            .filter_map(|r| Some((r["epoch"].as_f64()?, r[key].as_f64()?)))
            .collect(),
    }
}

pub(crate) fn write_plots(dir: &Path, records: &[Value]) -> Result<()> {
    let title = |s: &str| format!("gan: {s} per epoch (population means)");
    line_plot(
        &dir.join("scores.png"),
        &title("D(x) and D(G(z))"),
        "epoch",
        &[Panel {
            y_label: "score".into(),
            series: vec![
                epoch_series(records, "real_score"),
                epoch_series(records, "fake_score"),
            ],
        }],
    )?;
    line_plot(
        &dir.join("losses.png"),
        &title("losses"),
        "epoch",
        &[Panel {
            y_label: "BCE".into(),
            series: vec![
                epoch_series(records, "loss_d"),
                epoch_series(records, "loss_g"),
            ],
        }],
    )?;
    line_plot(
        &dir.join("fid.png"),
        "gan: FID of the best generator",
        "training seconds",
        &[Panel {
            y_label: "FID".into(),
            series: vec![Series {
                name: "fid".into(),
                points: records
                    .iter()
                    .filter(|r| r["kind"] == "epoch" || r.get("fid").is_some())
                    .filter_map(|r| Some((r["train_s"].as_f64()?, r["fid"].as_f64()?)))
                    .collect(),
            }],
        }],
    )
}

pub fn run_gan(args: &GanArgs) -> Result<GanSummary> {
    let wall = std::time::Instant::now();
    let mut loaded = None;
    let run = crate::run::open(
        &args.run,
        |new| {
            // a missing extractor is a mistake to report before the run directory is made
            let extractor = FeatureExtractor::load(&args.fid_model, new.device)
                .map_err(|e| fid::for_flag(e, &args.fid_model))?;
            let cfg = args.to_config(new)?;
            loaded = Some(extractor);
            Ok(cfg)
        },
        |cfg| args.apply_on_resume(cfg),
    )?;
    let (cfg, device, resumed) = (&run.cfg, run.device, run.resumed);
    let rd = &run.dir;
    let dir = rd.path().to_path_buf();
    let extractor = match loaded {
        Some(e) => e,
        None => FeatureExtractor::load(&cfg.fid_model, device)
            .map_err(|e| fid::for_flag(e, &cfg.fid_model))?,
    };
    run.streams.init_libtorch();
    let data = load_dataset(&cfg.dataset, &cfg.data, device)?;
    let size = cfg.image_size;
    let c = data.shape[0];
    let shape = [c, size, size];
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
    let mut rng = run.streams.ga();
    // the real side of the FID: a seeded subset of the training images, fixed for the run
    let real_stats = {
        let mut idx: Vec<i64> = (0..n_real).collect();
        idx.shuffle(&mut run.streams.fid_samples());
        idx.truncate(cfg.fid_samples.min(n_real) as usize);
        let sel = real.index_select(0, &Tensor::from_slice(&idx).to_device(device));
        fid::stats(&extractor, &sel, range)?
    };
    let latent = model.latent_shape()[0];
    let mut z_grid = Tensor::randn([64, latent], (Kind::Float, device));
    let mut z_fid = Tensor::randn([cfg.fid_samples, latent], (Kind::Float, device));
    let mut state = LoopState {
        generation: 0,
        epoch: 0,
        train_s: 0.0,
        elapsed_s: 0.0,
        rng: rng.clone(),
        best_fid: None,
        cpu_s: 0.0,
        train_cpu_s: 0.0,
        stream_pos: None,
    };
    let mut saved_perm = None;
    if resumed {
        let state_file = rd.file(dir::STATE);
        if !state_file.is_file() {
            return Err(Error::usage(format!(
                "--resume {}: no {} there yet (the run stopped before its first checkpoint)",
                dir.display(),
                dir::STATE
            )));
        }
        state = fsutil::read_json(&state_file)?;
        let named = Tensor::load_multi(rd.file(dir::TENSORS))?;
        let map: HashMap<String, Tensor> = named.into_iter().collect();
        model.load_tensors(&map)?;
        z_grid = take(&map, "z_grid", &z_grid.size())?.to_device(device);
        z_fid = take(&map, "z_fid", &z_fid.size())?.to_device(device);
        rng = state.rng.clone();
        saved_perm = map.get("stream_perm").map(|p| p.to_device(device));
        run.streams.resume_libtorch(state.generation);
    }
    // records after the checkpoint are dropped; the run redoes those generations
    let covered = state.generation;
    let (mut log, kept) = Log::open(&rd.log(), |_, r| {
        resumed && generation_of(r).is_some_and(|g| g <= covered)
    })?;
    let mut records: Vec<Value> = kept;
    let mut stream = match (saved_perm, state.stream_pos) {
        (Some(perm), Some(pos)) => RealStream::restore(real, perm, pos, state.epoch)?,
        // a checkpoint written before the stream position was kept
        _ => RealStream::new(real, state.epoch, &mut rng),
    };
    let quiet = run.quiet;
    if !quiet {
        eprintln!(
            "gan: {:?} mode, {} {}x{}x{} ({} images), population {}{}, {}, seed {}; FID on {} ({} samples)",
            cfg.mode,
            cfg.dataset.label(),
            c,
            size,
            size,
            n_real,
            cfg.population,
            if cfg.evolution { "" } else { " (no evolution)" },
            device_name(device),
            cfg.seed,
            extractor.features_file.display(),
            cfg.fid_samples
        );
    }
    let bar = crate::run::progress::bar(quiet, cfg.stop.generations, "gen");
    bar.set_position(state.generation);
    let fid_of = |model: &dyn GanModel| -> Result<f64> {
        let mut imgs = Vec::new();
        let n = z_fid.size()[0];
        let mut i = 0;
        while i < n {
            let len = 250.min(n - i);
            imgs.push(model.sample_best(&z_fid.narrow(0, i, len))?);
            i += len;
        }
        let s = fid::stats(&extractor, &Tensor::cat(&imgs, 0), range)?;
        Ok(fid::frechet_distance(&real_stats, &s))
    };
    let mut emit = |records: &mut Vec<Value>, r: Value| -> Result<()> {
        log.append(&r)?;
        records.push(r);
        Ok(())
    };
    let clocks = Clocks::resume(state.elapsed_s, state.cpu_s);
    let stop = cfg.stop.clone();
    let position = |state: &LoopState| Position {
        generation: state.generation,
        epoch: state.epoch,
        best_fitness: None,
        best_generation: 0,
        budget_s: match stop.budget_clock {
            BudgetClock::Wall => state.train_s,
            BudgetClock::Cpu => state.train_cpu_s,
        },
    };
    let mut acc: Vec<[f64; 4]> = Vec::new();
    // libtorch's RNG is reseeded at every checkpoint, so that a run resumed from it draws
    // what the uninterrupted run draws
    let checkpoint =
        |state: &mut LoopState, model: &dyn GanModel, rng: &GaRng, stream: &RealStream| {
            state.rng = rng.clone();
            state.stream_pos = Some(stream.pos);
            let fixed = [
                ("z_grid", &z_grid),
                ("z_fid", &z_fid),
                ("stream_perm", &stream.perm),
            ];
            save_checkpoint(rd, model, &fixed, state)?;
            run.streams.resume_libtorch(state.generation);
            Ok::<(), Error>(())
        };
    if records.is_empty() {
        model.prepare(&mut stream, &mut rng)?;
        // the starting point of the FID curve
        let f = fid_of(model.as_ref())?;
        emit(
            &mut records,
            json!({"kind": "init", "generation": 0, "epoch": 0, "elapsed_s": 0.0, "cpu_s": 0.0,
                   "train_s": 0.0, "fid": f}),
        )?;
    }
    let stopped_by = loop {
        if let Some(reason) = stop.reason(&position(&state)) {
            break reason;
        }
        let t0 = std::time::Instant::now();
        let c0 = process_cpu_s();
        let s = model.generation(&mut stream, &mut rng, state.generation)?;
        state.train_s += t0.elapsed().as_secs_f64();
        state.train_cpu_s += (process_cpu_s() - c0).max(0.0);
        state.generation += 1;
        state.elapsed_s = clocks.wall_s();
        state.cpu_s = clocks.cpu_s();
        let g = state.generation;
        let elapsed = state.elapsed_s;
        acc.push([s.real_score, s.fake_score, s.loss_d, s.loss_g]);
        let mut rec = json!({
            "kind": "generation",
            "generation": g,
            "epoch": stream.epochs,
            "elapsed_s": elapsed,
            "cpu_s": state.cpu_s,
            "train_s": state.train_s,
            "train_cpu_s": state.train_cpu_s,
            "real_score": s.real_score,
            "fake_score": s.fake_score,
            "loss_d": s.loss_d,
            "loss_g": s.loss_g,
            "best_fitness": s.best_fitness,
            "mean_fitness": s.mean_fitness,
            "fitness_std": s.fitness_std,
        });
        for (k, v) in &s.extra {
            rec[k] = v.clone();
        }
        let epoch_end = stream.epochs > state.epoch;
        // the last generation always gets its FID (the run's final one)
        let last = stop
            .reason(&position(&LoopState {
                epoch: stream.epochs,
                ..state.clone()
            }))
            .is_some();
        let mut fid_now = None;
        if epoch_end || last || (cfg.fid_every > 0 && g % cfg.fid_every == 0) {
            let f = fid_of(model.as_ref())?;
            rec["fid"] = json!(f);
            state.best_fid = Some(state.best_fid.map_or(f, |b: f64| b.min(f)));
            fid_now = Some(f);
        }
        bar.set_message(format!(
            "epoch {} train {:.0}s D(x) {:.3} D(G(z)) {:.3} best fitness {:.4}{}",
            stream.epochs,
            state.train_s,
            s.real_score,
            s.fake_score,
            s.best_fitness,
            state
                .best_fid
                .map(|f| format!(" FID {f:.2}"))
                .unwrap_or_default()
        ));
        bar.set_position(g);
        emit(&mut records, rec)?;
        if epoch_end {
            state.epoch = stream.epochs;
            let k = acc.len() as f64;
            let mean = |j: usize| acc.iter().map(|a| a[j]).sum::<f64>() / k;
            emit(
                &mut records,
                json!({
                    "kind": "epoch",
                    "epoch": state.epoch,
                    "generation": g,
                    "elapsed_s": elapsed,
                    "cpu_s": state.cpu_s,
                    "train_s": state.train_s,
                    "train_cpu_s": state.train_cpu_s,
                    "real_score": mean(0),
                    "fake_score": mean(1),
                    "loss_d": mean(2),
                    "loss_g": mean(3),
                    "fid": fid_now,
                }),
            )?;
            acc.clear();
            let grid = grid_image(&model.sample_best(&z_grid)?, range, 8)?;
            fsutil::save_image_atomic(
                &rd.sub(dir::SAMPLES, &format!("epoch-{:04}.png", state.epoch)),
                &grid,
            )?;
            write_plots(&dir, &records)?;
            checkpoint(&mut state, model.as_ref(), &rng, &stream)?;
        }
    };
    bar.finish_and_clear();
    // final evaluation, outputs and checkpoint
    let final_fid = match records.last().and_then(|r| r["fid"].as_f64()) {
        Some(f) => f,
        None => {
            // no generation ran (e.g. resumed at the end of a run that has no FID at its end)
            let f = fid_of(model.as_ref())?;
            state.best_fid = Some(state.best_fid.map_or(f, |b: f64| b.min(f)));
            let r = json!({"kind": "final", "generation": state.generation,
                "epoch": state.epoch, "elapsed_s": clocks.wall_s(), "cpu_s": clocks.cpu_s(),
                "train_s": state.train_s, "train_cpu_s": state.train_cpu_s, "fid": f});
            emit(&mut records, r)?;
            f
        }
    };
    fsutil::save_image_atomic(
        &rd.sub(dir::SAMPLES, "final.png"),
        &grid_image(&model.sample_best(&z_grid)?, range, 8)?,
    )?;
    write_plots(&dir, &records)?;
    let gen_path = rd.file("best-generator.pt");
    model.export_best(&gen_path)?;
    fsutil::write_json_atomic(
        &gen_path.with_extension("json"),
        &GeneratorInfo {
            latent_dim: latent,
            latent_shape: model.latent_shape(),
            output_shape: shape,
            output_range: range,
        },
    )?;
    state.elapsed_s = clocks.wall_s();
    state.cpu_s = clocks.cpu_s();
    checkpoint(&mut state, model.as_ref(), &rng, &stream)?;
    let summary = GanSummary {
        run_dir: dir.clone(),
        mode: cfg.mode,
        device: device_name(device),
        seed: cfg.seed,
        generations: state.generation,
        epochs: state.epoch,
        train_s: state.train_s,
        wall_s: wall.elapsed().as_secs_f64(),
        cpu_s: state.cpu_s,
        train_cpu_s: state.train_cpu_s,
        final_fid,
        best_fid: state.best_fid.unwrap_or(final_fid),
        fid_extractor: extractor.features_file.clone(),
        fid_samples: cfg.fid_samples,
        generator: gen_path,
        stop_reason: stopped_by,
    };
    fsutil::write_json_atomic(&rd.result(), &summary)?;
    Ok(summary)
}
