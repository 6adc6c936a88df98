//! `neuroevo gan` end to end on a few hundred digits: both modes write their outputs (log with
//! the four numbers and FID, sample grids, plots, a TorchScript generator that `neuroevo fool`
//! can load), resume continues a run, and user mistakes exit with code 2.
mod common;
use common::{config, f64s, log, neuroevo, one_line_error, repo, result, stderr};
use neuroevo::nn::load::Generator;
use std::path::Path;
use std::process::Output;
use tch::{Device, Kind, Tensor};

fn fid_model() -> String {
    repo("models/mnist-cnn.pt").display().to_string()
}

fn gan(out: &Path, extra: &[&str]) -> Output {
    let model = if extra.contains(&"--fid-model") {
        vec![]
    } else {
        vec!["--fid-model".to_string(), fid_model()]
    };
    neuroevo()
        .args([
            "gan", "-q", "--device", "cpu", "--seed", "3", "--subset", "256",
        ])
        .args(["--fid-samples", "100"])
        .args(&model)
        .args(["--out", out.to_str().unwrap()])
        .args(extra)
        .output()
        .unwrap()
}

fn check_generator(dir: &Path, latent: &[i64], range: (f32, f32)) {
    let g = Generator::load(&dir.join("best-generator.pt"), Device::Cpu).unwrap();
    assert_eq!(g.info.latent_shape, latent);
    assert_eq!(g.info.output_shape, [1, 28, 28]);
    assert_eq!(g.info.output_range, range);
    let mut shape = vec![5];
    shape.extend(latent);
    let z = Tensor::randn(shape.as_slice(), (Kind::Float, Device::Cpu));
    let img = g.module.forward_ts(&[z]).unwrap();
    assert_eq!(img.size(), vec![5, 1, 28, 28]);
    let (lo, hi) = (img.min().double_value(&[]), img.max().double_value(&[]));
    assert!(
        lo >= range.0 as f64 - 1e-6 && hi <= range.1 as f64 + 1e-6,
        "{lo} {hi}"
    );
    // one image depends only on its own latent vector (no batch statistics in the export)
    let z1 = Tensor::randn(
        [1].iter()
            .chain(latent)
            .copied()
            .collect::<Vec<_>>()
            .as_slice(),
        (Kind::Float, Device::Cpu),
    );
    let both = Tensor::cat(&[&z1, &z1.zeros_like()], 0);
    let a = g.module.forward_ts(&[&z1]).unwrap();
    let b = g.module.forward_ts(&[both]).unwrap().narrow(0, 0, 1);
    assert!(a.allclose(&b, 1e-5, 1e-5, false));
}

#[test]
fn weights_mode_feature_matching_fitness() {
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("f");
    let o = gan(
        &out,
        &[
            "--mode",
            "weights",
            "--population",
            "6",
            "--generations",
            "3",
            "--fitness",
            "features",
            "--g-init",
            "data-mean",
            "--real-batch",
            "32",
            // stroke mutation as the only mutation
            "--stroke-mutation",
            "2",
            "--mutation-prob",
            "0",
            // hidden units that z picks among
            "--hidden",
            "12",
            "--hidden-activation",
            "softmax",
            "--softmax-temperature",
            "0.25",
        ],
    );
    assert!(o.status.success(), "{}", stderr(&o));
    let cfg = config(&out);
    let strokes = &cfg["model"]["strokes"];
    assert_eq!(strokes["count"], 2, "{cfg}");
    assert_eq!(strokes["width"], 1.2, "{cfg}");
    assert_eq!(cfg["model"]["hidden_activation"], "softmax", "{cfg}");
    assert_eq!(cfg["model"]["softmax_temperature"], 0.25, "{cfg}");
    // the exported generator applies the same activation (images in [0, 1], z-independent batch)
    check_generator(&out, &[100], (0.0, 1.0));
    let recs = log(&out);
    let gens: Vec<_> = recs.iter().filter(|r| r["kind"] == "generation").collect();
    assert!(gens.len() >= 2);
    for r in gens {
        // minus a squared distance: finite, at most 0, and the generators differ
        let (best, mean) = (r["best"].as_f64().unwrap(), r["mean"].as_f64().unwrap());
        assert!(best.is_finite() && best <= 0.0 && mean <= best, "{r}");
        assert!(r["fitness_std"].as_f64().unwrap() > 0.0, "{r}");
    }
}

#[test]
fn weights_mode_writes_outputs_and_resumes() {
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("w");
    // 256 images, 16 real images per evaluation and 64 per D step: an epoch is 4 generations
    let o = gan(
        &out,
        &["--mode", "weights", "--population", "10", "--epochs", "2"],
    );
    assert!(o.status.success(), "{}", stderr(&o));
    let recs = log(&out);
    let epochs: Vec<_> = recs.iter().filter(|r| r["kind"] == "epoch").collect();
    assert_eq!(epochs.len(), 2);
    for r in &epochs {
        for k in [
            "real_score",
            "fake_score",
            "loss_d",
            "loss_g",
            "fid",
            "train_s",
        ] {
            assert!(r[k].as_f64().is_some_and(f64::is_finite), "{k} in {r}");
        }
        assert!(r["fid"].as_f64().unwrap() > 0.0);
    }
    let gens = recs.iter().filter(|r| r["kind"] == "generation").count();
    assert!(gens >= 6, "{gens} generations");
    for f in [
        "samples/epoch-0001.png",
        "samples/epoch-0002.png",
        "scores.png",
        "losses.png",
        "fid.png",
        "config.json",
        "result.json",
        "checkpoint.pt",
    ] {
        assert!(out.join(f).is_file(), "{f}");
    }
    let grid = image::open(out.join("samples/epoch-0001.png")).unwrap();
    assert!(grid.width() >= 8 * 28);
    check_generator(&out, &[100], (0.0, 1.0));

    // resume to a third epoch: the log continues without repeating generations
    let o = neuroevo()
        .args([
            "gan",
            "-q",
            "--resume",
            out.to_str().unwrap(),
            "--epochs",
            "3",
        ])
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", stderr(&o));
    let recs2 = log(&out);
    assert!(out.join("samples/epoch-0003.png").is_file());
    let g: Vec<u64> = recs2
        .iter()
        .filter(|r| r["kind"] == "generation")
        .map(|r| r["generation"].as_u64().unwrap())
        .collect();
    assert!(g.len() > gens);
    assert!(g.windows(2).all(|w| w[1] == w[0] + 1), "{g:?}");
    let t: Vec<f64> = recs2
        .iter()
        .filter(|r| r["kind"] == "epoch")
        .map(|r| r["train_s"].as_f64().unwrap())
        .collect();
    assert_eq!(t.len(), 3);
    assert!(t[2] > t[1]);
    // the result's wall time is the run's, over both invocations
    let result: serde_json::Value =
        serde_json::from_slice(&std::fs::read(out.join("result.json")).unwrap()).unwrap();
    let last_elapsed = recs2.last().unwrap()["elapsed_s"].as_f64().unwrap();
    let first_part = recs.last().unwrap()["elapsed_s"].as_f64().unwrap();
    let wall = result["wall_s"].as_f64().unwrap();
    assert!(
        wall >= last_elapsed && wall > first_part,
        "wall_s {wall} covers the run ({first_part} s before the resume, {last_elapsed} s in all)"
    );
}

#[test]
fn dcgan_mode_population_and_baseline() {
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("d");
    let o = gan(
        &out,
        &[
            "--mode",
            "dcgan",
            "--width",
            "4",
            "--population",
            "3",
            "--d-population",
            "2",
            "--crossover",
            "per-tensor",
            "--grad-steps",
            "2",
            "--batch-size",
            "16",
            "--eval-batch",
            "16",
            "--generations",
            "5",
            "--fid-every",
            "5",
        ],
    );
    assert!(o.status.success(), "{}", stderr(&o));
    let recs = log(&out);
    let last = recs.last().unwrap();
    assert_eq!(last["generation"], 5);
    assert!(last["fid"]
        .as_f64()
        .is_some_and(|f| f.is_finite() && f > 0.0));
    for k in ["d_best_fitness", "best", "mean"] {
        assert!(last[k].as_f64().is_some(), "{k}");
    }
    // discriminator fitness is an accuracy
    let acc = last["d_best_fitness"].as_f64().unwrap();
    assert!((0.0..=1.0).contains(&acc));
    check_generator(&out, &[128, 1, 1], (-1.0, 1.0));
    // the exported generator is what `neuroevo fool --space latent` reads: check it loads there
    let fool = neuroevo()
        .args([
            "fool",
            "-q",
            "--space",
            "latent",
            "--class",
            "3",
            "--generations",
            "2",
        ])
        .args([
            "--population",
            "8",
            "--judge",
            "none",
            "--device",
            "cpu",
            "--classifier",
            &fid_model(),
        ])
        .args([
            "--generator",
            out.join("best-generator.pt").to_str().unwrap(),
        ])
        .args(["--out", tmp.path().join("fool").to_str().unwrap()])
        .output()
        .unwrap();
    assert!(fool.status.success(), "{}", stderr(&fool));

    // the gradient-only baseline on the same code path
    let base = tmp.path().join("base");
    let o = gan(
        &base,
        &[
            "--mode",
            "dcgan",
            "--width",
            "4",
            "--population",
            "1",
            "--no-evolution",
            "--batch-size",
            "16",
            "--eval-batch",
            "16",
            "--generations",
            "3",
        ],
    );
    assert!(o.status.success(), "{}", stderr(&o));
    let cfg = config(&base);
    assert_eq!(cfg["evolution"], false);
    assert!(cfg["ga"].is_null());
    assert_eq!(log(&base).last().unwrap()["fitness_std"], 0.0);
}

/// A dcgan run with `--evolve-lr` and `extra`, 4 generations then resumed to 10: the
/// generation records and the config.
fn evolved_lr_run(dir: &Path, extra: &[&str]) -> (Vec<serde_json::Value>, serde_json::Value) {
    let mut args = vec![
        "--mode",
        "dcgan",
        "--width",
        "4",
        "--population",
        "3",
        "--evolve-lr",
    ];
    args.extend(extra);
    args.extend([
        "--lr",
        "0.0002",
        "--batch-size",
        "16",
        "--eval-batch",
        "16",
        "--generations",
        "4",
        "--budget-clock",
        "cpu",
    ]);
    let o = gan(dir, &args);
    assert!(o.status.success(), "{}", stderr(&o));
    let o = neuroevo()
        .args(["gan", "-q", "--resume", dir.to_str().unwrap()])
        .args(["--generations", "10"])
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", stderr(&o));
    let gens: Vec<_> = log(dir)
        .into_iter()
        .filter(|r| r["kind"] == "generation")
        .collect();
    assert_eq!(gens.len(), 10);
    let cfg = config(dir);
    (gens, cfg)
}

/// How many factors of 1.25 `lr` is away from 2e-4 (panics unless a whole number).
fn lr_steps(r: &serde_json::Value, k: &str) -> f64 {
    let lr = r[k].as_f64().unwrap_or_else(|| panic!("{k} in {r}"));
    let steps = (lr / 2e-4).ln() / 1.25f64.ln();
    assert!((steps - steps.round()).abs() < 1e-3, "{k} {lr}");
    steps.round()
}

#[test]
fn dcgan_evolved_learning_rates_survive_resume() {
    let tmp = tempfile::tempdir().unwrap();
    let (gens, cfg) = evolved_lr_run(&tmp.path().join("pbt"), &[]);
    // new stop criteria replace the saved ones, but the clock stays the run's own
    assert_eq!(cfg["stop"]["generations"], 10);
    assert_eq!(cfg["stop"]["budget_clock"], "cpu");
    let mut moved = false;
    for r in &gens {
        for k in ["g_lr_best", "d_lr_best"] {
            // every rate is 2e-4 times a power of 1.25 (0.8 = 1/1.25): inherited, then explored
            moved |= lr_steps(r, k) != 0.0;
        }
    }
    assert!(moved, "some best individual has an explored rate");
    // `--evolve-lr generators`: the discriminators keep --lr, through the resume too
    let (gens, cfg) = evolved_lr_run(&tmp.path().join("pbt-g"), &["generators"]);
    assert_eq!(cfg["model"]["fixed_d_lr"], true, "{cfg}");
    assert!(gens.iter().all(|r| lr_steps(r, "d_lr_best") == 0.0));
    assert!(gens.iter().any(|r| lr_steps(r, "g_lr_best") != 0.0));
}

#[test]
fn user_mistakes_exit_with_code_2() {
    let tmp = tempfile::tempdir().unwrap();
    for (i, (extra, needle)) in [
        (
            vec![
                "--mode",
                "dcgan",
                "--population",
                "1",
                "--d-population",
                "1",
            ],
            "--no-evolution",
        ),
        (vec!["--image-size", "30"], "--image-size 30"),
        (
            vec!["--mode", "weights", "--crossover", "per-tensor"],
            "per-tensor",
        ),
        (vec!["--dataset", "nope"], "--dataset nope"),
        (vec!["--fid-model", "/nonexistent/model.pt"], "--fid-model"),
        (vec!["--keep-fraction", "1.5"], "--keep-fraction"),
        (
            vec!["--mode", "weights", "--minibatch-std", "--real-batch", "20"],
            "--real-batch 20",
        ),
        (vec!["--mode", "weights", "--evolve-lr"], "--evolve-lr"),
        (vec!["--stroke-mutation", "1"], "--stroke-mutation"),
        (
            vec!["--hidden-activation", "softmax"],
            "--hidden-activation",
        ),
        (
            vec!["--mode", "weights", "--softmax-temperature", "0.5"],
            "--softmax-temperature",
        ),
        (
            vec![
                "--mode",
                "weights",
                "--hidden-activation",
                "softmax",
                "--softmax-temperature",
                "0",
            ],
            "--softmax-temperature 0",
        ),
        (
            vec![
                "--mode",
                "weights",
                "--stroke-mutation",
                "1",
                "--stroke-width",
                "0",
            ],
            "--stroke-width 0",
        ),
        // E-GAN's flags where they make no sense
        (vec!["--mode", "weights", "--g-losses", "minimax"], "dcgan"),
        (
            vec![
                "--population",
                "1",
                "--no-evolution",
                "--g-losses",
                "nonsat",
            ],
            "--no-evolution",
        ),
        (vec!["--diversity-weight", "0.5"], "--g-losses"),
        (
            vec!["--g-losses", "lsgan", "--diversity-weight", "-1"],
            "--diversity-weight -1",
        ),
        (
            vec!["--g-losses", "lsgan", "--diversity-weight", "inf"],
            "--diversity-weight inf",
        ),
        (vec!["--g-losses", "minimax,nonsat,minimax"], "twice"),
        (
            vec!["--g-losses", "minimax", "--grad-steps", "0"],
            "--grad-steps",
        ),
    ]
    .into_iter()
    .enumerate()
    {
        let out = tmp.path().join(format!("e{i}"));
        let mut args = extra.clone();
        args.extend(["--generations", "1"]);
        let o = gan(&out, &args);
        assert_eq!(o.status.code(), Some(2), "{extra:?}: {}", stderr(&o));
        let e = stderr(&o);
        assert!(
            e.starts_with("error: ") && e.contains(needle),
            "{extra:?}: {e}"
        );
        assert_eq!(e.lines().count(), 1, "{e}");
    }
    let o = neuroevo()
        .args([
            "gan",
            "-q",
            "--resume",
            tmp.path().join("none").to_str().unwrap(),
        ])
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
}

#[test]
fn folder_dataset_rgb_at_32() {
    let tmp = tempfile::tempdir().unwrap();
    let faces = tmp.path().join("faces");
    std::fs::create_dir_all(&faces).unwrap();
    for i in 0..40u32 {
        let img = image::RgbImage::from_fn(40, 40, |x, y| {
            image::Rgb([(x * 6 + i) as u8, (y * 6) as u8, ((x + y + i) * 3) as u8])
        });
        img.save(faces.join(format!("{i:03}.png"))).unwrap();
    }
    let out = tmp.path().join("g");
    let o = neuroevo()
        .args([
            "gan", "-q", "--device", "cpu", "--seed", "1", "--mode", "dcgan",
        ])
        .args([
            "--dataset",
            &format!("folder:{}", faces.display()),
            "--image-size",
            "32",
        ])
        .args([
            "--width",
            "4",
            "--population",
            "2",
            "--batch-size",
            "8",
            "--eval-batch",
            "8",
        ])
        .args([
            "--generations",
            "2",
            "--fid-samples",
            "20",
            "--fid-model",
            &fid_model(),
        ])
        .args(["--out", out.to_str().unwrap()])
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", stderr(&o));
    let info: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(out.join("best-generator.json")).unwrap())
            .unwrap();
    assert_eq!(info["output_shape"], serde_json::json!([3, 32, 32]));
    let r: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(out.join("result.json")).unwrap()).unwrap();
    assert!(r["final_fid"].as_f64().is_some_and(f64::is_finite));
    let grid = image::open(out.join("samples/final.png")).unwrap();
    assert!(matches!(
        grid.color(),
        image::ColorType::Rgb8 | image::ColorType::Rgba8
    ));
}

#[test]
fn dcgan_mixture_of_the_population() {
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("mix");
    let args = [
        "--mode",
        "dcgan",
        "--width",
        "4",
        "--population",
        "3",
        "--grad-steps",
        "2",
        "--batch-size",
        "16",
        "--eval-batch",
        "16",
        "--generations",
        "4",
    ];
    let o = gan(&out, &[&args[..], &["--mixture"]].concat());
    assert!(o.status.success(), "{}", stderr(&o));
    let m: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(out.join("mixture.json")).unwrap()).unwrap();
    let w = f64s(&m["weights"]);
    assert_eq!(w.len(), 3, "one weight per generator");
    assert!(w.iter().all(|&x| x >= 0.0) && (w.iter().sum::<f64>() - 1.0).abs() < 1e-9);
    let fid = m["fid"].as_f64().unwrap();
    // tuned from the better of the uniform mixture and the best member, never worse
    assert!(fid <= m["fid_uniform"].as_f64().unwrap() + 1e-9, "{m}");
    assert!(fid <= m["fid_best_member"].as_f64().unwrap() + 1e-9, "{m}");
    let best = m["best_member"].as_u64().unwrap() as usize;
    assert_eq!(
        m["member_fid"][best].as_f64(),
        m["fid_best_member"].as_f64()
    );
    assert_eq!(result(&out)["mixture_fid"].as_f64(), Some(fid));
    // the sampler has one generator's interface: fool --space latent and the FID tools read it
    check_generator(&out, &[128, 1, 1], (-1.0, 1.0));
    let info: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(out.join("best-generator.json")).unwrap())
            .unwrap();
    assert!(info.get("weights_file").is_none() && info.get("layers").is_none());
    // refused where there is no population to mix
    for (extra, needle) in [
        (
            vec!["--mode", "weights", "--population", "3"],
            "only for the dcgan mode",
        ),
        (
            vec!["--mode", "dcgan", "--population", "1", "--no-evolution"],
            "--population 2 or more",
        ),
    ] {
        let o = gan(
            &tmp.path().join(format!("bad{}", extra.len())),
            &[&extra[..], &["--mixture"]].concat(),
        );
        assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
        assert!(one_line_error(&o).contains(needle), "{}", stderr(&o));
    }
}

/// The records of a run's generations: number, best fitness, D(x) and the E-GAN loss counts.
fn generation_records(dir: &Path) -> Vec<(u64, f64, f64, serde_json::Value)> {
    log(dir)
        .iter()
        .filter(|r| r["kind"] == "generation")
        .map(|r| {
            (
                r["generation"].as_u64().unwrap(),
                r["best"].as_f64().unwrap(),
                r["real_score"].as_f64().unwrap(),
                r["g_loss_counts"].clone(),
            )
        })
        .collect()
}

#[test]
fn dcgan_egan_variation_logs_its_losses_and_resumes_as_an_uninterrupted_run() {
    let tmp = tempfile::tempdir().unwrap();
    let egan = |out: &Path, extra: &[&str]| {
        let mut args = vec![
            "--mode",
            "dcgan",
            "--width",
            "4",
            "--population",
            "2",
            "--d-population",
            "2",
            "--g-losses",
            "minimax,nonsat,lsgan",
            "--diversity-weight",
            "0.5",
            "--grad-steps",
            "2",
            "--batch-size",
            "16",
            "--eval-batch",
            "16",
        ];
        args.extend(extra);
        let o = gan(out, &args);
        assert!(o.status.success(), "{}", stderr(&o));
    };
    let (full, cut) = (tmp.path().join("full"), tmp.path().join("cut"));
    egan(&full, &["--generations", "4"]);
    let cfg = config(&full);
    assert_eq!(
        cfg["model"]["g_losses"],
        serde_json::json!(["minimax", "nonsat", "lsgan"]),
        "{cfg}"
    );
    assert_eq!(cfg["model"]["diversity_weight"], 0.5, "{cfg}");
    // the generators are selected among their children, not bred; the discriminators are
    assert!(cfg["ga"].is_null(), "{cfg}");
    assert!(!cfg["d_ga"].is_null(), "{cfg}");
    let gens = generation_records(&full);
    assert_eq!(gens.len(), 4);
    for (g, best, _, counts) in &gens {
        let m = counts
            .as_object()
            .unwrap_or_else(|| panic!("generation {g}"));
        let keys: Vec<&str> = m.keys().map(String::as_str).collect();
        assert_eq!(keys.len(), 3, "{counts}");
        for k in ["minimax", "nonsat", "lsgan"] {
            assert!(keys.contains(&k), "{counts}");
        }
        // 2 survivors at each of the 2 steps
        let total: u64 = m.values().map(|v| v.as_u64().unwrap()).sum();
        assert_eq!(total, 4, "{counts}");
        assert!(best.is_finite() && (0.0..=1.0).contains(best), "{best}");
    }
    check_generator(&full, &[128, 1, 1], (-1.0, 1.0));

    // stopped after 2 generations and resumed to 4: the same run
    egan(&cut, &["--generations", "2"]);
    let o = neuroevo()
        .args(["gan", "-q", "--resume", cut.to_str().unwrap()])
        .args(["--generations", "4"])
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", stderr(&o));
    assert_eq!(
        generation_records(&cut),
        gens,
        "resumed run = uninterrupted run"
    );
    // the flags shape the run: given again on resume, they are refused
    for flag in [["--g-losses", "nonsat"], ["--diversity-weight", "1"]] {
        let o = neuroevo()
            .args(["gan", "-q", "--resume", cut.to_str().unwrap()])
            .args(flag)
            .output()
            .unwrap();
        assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
        let e = stderr(&o);
        assert!(e.contains(flag[0]) && e.lines().count() == 1, "{e}");
    }

    // one parent with its children (E-GAN's own setting), quality-only fitness
    let one = tmp.path().join("one");
    let o = gan(
        &one,
        &[
            "--mode",
            "dcgan",
            "--width",
            "4",
            "--population",
            "1",
            "--g-losses",
            "nonsat,lsgan",
            "--batch-size",
            "16",
            "--eval-batch",
            "16",
            "--generations",
            "2",
        ],
    );
    assert!(o.status.success(), "{}", stderr(&o));
    for (_, _, _, counts) in generation_records(&one) {
        let total: u64 = counts
            .as_object()
            .unwrap()
            .values()
            .map(|v| v.as_u64().unwrap())
            .sum();
        assert_eq!(total, 1, "{counts}");
    }
    assert_eq!(config(&one)["model"]["diversity_weight"], 0.0);
}
