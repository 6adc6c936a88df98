//! End-to-end runs of `neuroevo gari` on small images the tests make.
mod common;
use common::{log, neuroevo, stderr};
use std::path::{Path, PathBuf};
use std::process::Output;

fn run(args: &[&str]) -> Output {
    neuroevo().args(args).output().expect("run neuroevo")
}

/// A smooth gradient image with `channels` channels.
fn make_image(dir: &Path, name: &str, w: u32, h: u32, channels: u8) -> PathBuf {
    let path = dir.join(name);
    let px =
        |x: u32, y: u32, c: u32| ((x * 255 / w.max(1) + y * 97 / h.max(1) + c * 60) % 256) as u8;
    let img = match channels {
        1 => image::DynamicImage::ImageLuma8(image::ImageBuffer::from_fn(w, h, |x, y| {
            image::Luma([px(x, y, 0)])
        })),
        3 => image::DynamicImage::ImageRgb8(image::ImageBuffer::from_fn(w, h, |x, y| {
            image::Rgb([px(x, y, 0), px(x, y, 1), px(x, y, 2)])
        })),
        _ => image::DynamicImage::ImageRgba8(image::ImageBuffer::from_fn(w, h, |x, y| {
            image::Rgba([
                px(x, y, 0),
                px(x, y, 1),
                px(x, y, 2),
                128 + (x % 2) as u8 * 100,
            ])
        })),
    };
    img.save(&path).unwrap();
    path
}

#[test]
fn reproduces_a_small_rgba_image_and_writes_every_output() {
    let tmp = tempfile::tempdir().unwrap();
    let img = make_image(tmp.path(), "t.png", 12, 9, 4);
    let out = tmp.path().join("run");
    let o = run(&[
        "gari",
        "-q",
        "--input",
        img.to_str().unwrap(),
        "--out",
        out.to_str().unwrap(),
        "--generations",
        "3000",
        "--seed",
        "5",
        "--save-every",
        "1000",
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    for f in [
        "best.png",
        "compare.png",
        "fitness.png",
        "log.jsonl",
        "config.json",
        "result.json",
        "checkpoint.bin",
    ] {
        assert!(out.join(f).is_file(), "missing {f}");
    }
    for g in [0, 1000, 2000, 3000] {
        assert!(
            out.join(format!("snapshots/gen-{g:07}.png")).is_file(),
            "snapshot {g}"
        );
    }
    let best = image::open(out.join("best.png")).unwrap();
    assert_eq!((best.width(), best.height()), (12, 9));
    assert_eq!(best.color(), image::ColorType::Rgba8, "RGBA stays RGBA");
    let log = log(&out);
    let first = log.first().unwrap();
    let last = log.last().unwrap();
    assert_eq!(first["generation"], 0);
    assert_eq!(last["generation"], 3000);
    let (p0, p1) = (
        first["psnr"].as_f64().unwrap(),
        last["psnr"].as_f64().unwrap(),
    );
    assert!(p1 > p0 + 10.0, "PSNR {p0} -> {p1}");
    // best fitness never falls (the parents are kept)
    let bests: Vec<f64> = log.iter().map(|r| r["best"].as_f64().unwrap()).collect();
    assert!(bests.windows(2).all(|w| w[1] >= w[0]));
    let result: serde_json::Value =
        serde_json::from_slice(&std::fs::read(out.join("result.json")).unwrap()).unwrap();
    assert_eq!(result["genes"], 12 * 9 * 4);
    assert!((result["psnr_db"].as_f64().unwrap() - p1).abs() < 1e-9);
}

#[test]
fn the_same_seed_gives_the_same_result_bit_for_bit() {
    let tmp = tempfile::tempdir().unwrap();
    let img = make_image(tmp.path(), "g.png", 10, 10, 1);
    let go = |name: &str, seed: &str| {
        let out = tmp.path().join(name);
        let o = run(&[
            "gari",
            "-q",
            "--preset",
            "pygad",
            "--input",
            img.to_str().unwrap(),
            "--out",
            out.to_str().unwrap(),
            "--generations",
            "500",
            "--seed",
            seed,
        ]);
        assert!(o.status.success(), "{}", stderr(&o));
        let bests: Vec<f64> = log(&out)
            .iter()
            .map(|r| r["best"].as_f64().unwrap())
            .collect();
        (std::fs::read(out.join("best.png")).unwrap(), bests)
    };
    let a = go("a", "17");
    let b = go("b", "17");
    let c = go("c", "18");
    assert_eq!(a, b);
    assert_ne!(a.1, c.1);
}

#[test]
fn cpu_and_tensor_backends_breed_the_same_population() {
    let tmp = tempfile::tempdir().unwrap();
    let img = make_image(tmp.path(), "rgb.png", 16, 8, 3);
    for preset in ["gari", "fast"] {
        let go = |backend: &str| {
            let out = tmp.path().join(format!("{preset}-{backend}"));
            let o = run(&[
                "gari",
                "-q",
                "--preset",
                preset,
                "--input",
                img.to_str().unwrap(),
                "--out",
                out.to_str().unwrap(),
                "--generations",
                "300",
                "--seed",
                "3",
                "--backend",
                backend,
                "--device",
                "cpu",
                "--log-every",
                "1",
            ]);
            assert!(o.status.success(), "{}", stderr(&o));
            let bests: Vec<f64> = log(&out)
                .iter()
                .map(|r| r["best"].as_f64().unwrap())
                .collect();
            (std::fs::read(out.join("best.png")).unwrap(), bests)
        };
        let (img_cpu, f_cpu) = go("cpu");
        let (img_tensor, f_tensor) = go("tensor");
        assert_eq!(img_cpu, img_tensor, "{preset}: same best image");
        assert_eq!(f_cpu.len(), f_tensor.len());
        assert_eq!(
            f_cpu, f_tensor,
            "{preset}: fixed-point fitness is the same on both backends"
        );
    }
}

#[test]
fn a_killed_run_resumes_and_ends_as_an_uninterrupted_one() {
    let tmp = tempfile::tempdir().unwrap();
    let img = make_image(tmp.path(), "k.png", 48, 32, 3);
    let common = |out: &Path| -> Vec<String> {
        [
            "gari",
            "-q",
            "--preset",
            "gari",
            "--input",
            img.to_str().unwrap(),
            "--out",
            out.to_str().unwrap(),
            "--generations",
            "60000",
            "--seed",
            "9",
            "--checkpoint-every",
            "2000",
            "--log-every",
            "500",
        ]
        .iter()
        .map(|s| s.to_string())
        .collect()
    };
    let reference = tmp.path().join("reference");
    let o = run(&common(&reference)
        .iter()
        .map(|s| s.as_str())
        .collect::<Vec<_>>());
    assert!(o.status.success(), "{}", stderr(&o));

    let killed = tmp.path().join("killed");
    let mut child = neuroevo().args(common(&killed)).spawn().unwrap();
    let ckpt = killed.join("checkpoint.bin");
    let t = std::time::Instant::now();
    while !ckpt.exists() && t.elapsed().as_secs() < 60 {
        std::thread::sleep(std::time::Duration::from_millis(2));
    }
    child.kill().unwrap(); // SIGKILL: no chance to clean up
    let status = child.wait().unwrap();
    assert!(
        !status.success(),
        "the run should have been killed before finishing"
    );
    assert!(!killed.join("result.json").exists());

    let o = run(&["gari", "-q", "--resume", killed.to_str().unwrap()]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert_eq!(
        std::fs::read(killed.join("best.png")).unwrap(),
        std::fs::read(reference.join("best.png")).unwrap(),
        "resumed run ends on the same image"
    );
    let strip = |v: Vec<serde_json::Value>| -> Vec<(u64, f64, f64)> {
        v.iter()
            .map(|r| {
                (
                    r["generation"].as_u64().unwrap(),
                    r["best"].as_f64().unwrap(),
                    r["mean"].as_f64().unwrap(),
                )
            })
            .collect()
    };
    assert_eq!(
        strip(log(&killed)),
        strip(log(&reference)),
        "same log, no gaps or repeats"
    );
}

#[test]
fn resume_can_extend_a_finished_run() {
    let tmp = tempfile::tempdir().unwrap();
    let img = make_image(tmp.path(), "e.png", 8, 8, 3);
    let out = tmp.path().join("run");
    let o = run(&[
        "gari",
        "-q",
        "--input",
        img.to_str().unwrap(),
        "--out",
        out.to_str().unwrap(),
        "--generations",
        "100",
        "--seed",
        "1",
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    let o = run(&[
        "gari",
        "-q",
        "--resume",
        out.to_str().unwrap(),
        "--generations",
        "250",
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    let log = log(&out);
    assert_eq!(log.last().unwrap()["generation"], 250);
    // changing the GA on resume is refused
    let o = run(&[
        "gari",
        "-q",
        "--resume",
        out.to_str().unwrap(),
        "--population",
        "30",
    ]);
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
    // a new run cannot overwrite an old one
    let o = run(&[
        "gari",
        "-q",
        "--input",
        img.to_str().unwrap(),
        "--out",
        out.to_str().unwrap(),
    ]);
    assert_eq!(o.status.code(), Some(2));
    assert!(stderr(&o).contains("--resume"));
}

/// A PNG whose header says 0 x 0 pixels (valid CRC, so only the size is wrong).
fn zero_sized_png(path: &Path) {
    fn crc32(data: &[u8]) -> u32 {
        let mut c = 0xffff_ffffu32;
        for &b in data {
            c ^= b as u32;
            for _ in 0..8 {
                c = if c & 1 != 0 {
                    0xedb8_8320 ^ (c >> 1)
                } else {
                    c >> 1
                };
            }
        }
        !c
    }
    let mut ihdr = b"IHDR".to_vec();
    ihdr.extend_from_slice(&[0, 0, 0, 0, 0, 0, 0, 0, 8, 2, 0, 0, 0]);
    let mut png = b"\x89PNG\r\n\x1a\n".to_vec();
    png.extend_from_slice(&13u32.to_be_bytes());
    png.extend_from_slice(&ihdr);
    png.extend_from_slice(&crc32(&ihdr).to_be_bytes());
    std::fs::write(path, png).unwrap();
}

#[test]
fn bad_input_gives_a_one_line_error_and_exit_code_2() {
    let tmp = tempfile::tempdir().unwrap();
    let good = make_image(tmp.path(), "ok.png", 4, 4, 3);
    let corrupt = tmp.path().join("corrupt.jpg");
    std::fs::write(&corrupt, b"\xff\xd8\xff\xe0 truncated jpeg").unwrap();
    let zero = tmp.path().join("zero.png");
    zero_sized_png(&zero);
    let g = good.to_str().unwrap();
    let cases: Vec<(Vec<&str>, &str)> = vec![
        (vec!["--input", "/nonexistent/x.png"], "/nonexistent/x.png"),
        (vec!["--input", corrupt.to_str().unwrap()], "corrupt.jpg"),
        (vec!["--input", zero.to_str().unwrap()], "zero.png"),
        (vec!["--input", tmp.path().to_str().unwrap()], "directory"),
        (
            vec!["--input", g, "--population", "4", "--parents", "5"],
            "mating pool",
        ),
        (vec!["--input", g, "--population", "1"], "population"),
        (
            vec!["--input", g, "--mutation-percent", "0"],
            "--mutation-percent 0",
        ),
        (
            vec!["--input", g, "--mutation-percent", "100.5"],
            "--mutation-percent 100.5",
        ),
        (vec!["--input", g, "--resize", "0x3"], "--resize"),
        (vec!["--input", g, "--device", "tpu"], "--device"),
        (vec!["--input", g, "--selection", "best"], "--selection"),
        (vec!["--resume", tmp.path().to_str().unwrap()], "--resume"),
    ];
    for (extra, needle) in cases {
        let out = tmp.path().join("never");
        let mut args = vec![
            "gari",
            "-q",
            "--generations",
            "5",
            "--out",
            out.to_str().unwrap(),
        ];
        args.extend(&extra);
        let o = run(&args);
        let err = stderr(&o);
        assert_eq!(o.status.code(), Some(2), "{extra:?}: {err}");
        assert_eq!(
            err.trim().lines().count(),
            1,
            "{extra:?}: one line, got {err}"
        );
        assert!(err.contains(needle), "{extra:?}: {err}");
        assert!(!err.contains("panicked"), "{err}");
    }
}
