//! Real datasets on disk: Fashion-MNIST as Debian's `dataset-fashion-mnist` installs it (CI
//! installs it), and image folders and IDX files with what a file system can hold besides
//! regular files: FIFOs, devices, symlink loops.
mod common;
use common::{mkfifo, neuroevo, output_within, repo, stderr};
use neuroevo::data::lookup::{FASHION_SUMS, IDX_FILES};
use neuroevo::data::{load_dataset, DataOptions, DatasetName};
use std::path::Path;
use tch::{Device, Kind};

fn debian_dir() -> Option<&'static Path> {
    let d = Path::new("/usr/share/datasets/fashion-mnist");
    if d.is_dir() {
        return Some(d);
    }
    assert!(
        std::env::var_os("CI").is_none(),
        "CI must install dataset-fashion-mnist (apt)"
    );
    eprintln!("skipped: /usr/share/datasets/fashion-mnist is missing (apt-get install dataset-fashion-mnist)");
    None
}

#[test]
fn fashion_mnist_loads_all_70k_images_and_matches_its_checksums() {
    let Some(dir) = debian_dir() else { return };
    for (stem, sum) in IDX_FILES.iter().zip(FASHION_SUMS.iter()) {
        let bytes = std::fs::read(dir.join(format!("{stem}.gz"))).unwrap();
        assert!(sum.matches(&bytes), "{stem}: content checksum");
    }
    let empty = tempfile::tempdir().unwrap();
    let opts = DataOptions {
        data_dir: Some(empty.path().to_path_buf()),
        download: false,
        seed: neuroevo::rng::Streams::new(1),
        ..Default::default()
    };
    let d = load_dataset(&DatasetName::FashionMnist, &opts, Device::Cpu).unwrap();
    assert_eq!(
        (d.train.len(), d.val.len(), d.test.len()),
        (54_000, 6_000, 10_000)
    );
    assert_eq!(d.classes[9], "Ankle boot");
    let all = tch::Tensor::cat(&[&d.train.y, &d.val.y], 0);
    let counts = Vec::<i64>::try_from(all.bincount(None::<tch::Tensor>, 10)).unwrap();
    assert!(counts.iter().all(|&c| c == 6000), "{counts:?}");
    let mean = d.test.x.mean(Kind::Float).double_value(&[]);
    assert!((0.2..0.4).contains(&mean), "pixel mean {mean}");
}

/// `n` small PNGs of distinct greys, alternately in `dir/a` and `dir/b` (two classes).
fn image_folder(dir: &Path, n: u8) {
    for c in ["a", "b"] {
        std::fs::create_dir_all(dir.join(c)).unwrap();
    }
    for i in 0..n {
        let class = if i % 2 == 0 { "a" } else { "b" };
        image::GrayImage::from_pixel(8, 8, image::Luma([i * 8]))
            .save(dir.join(format!("{class}/{i:03}.png")))
            .unwrap();
    }
}

/// `neuroevo train` for one epoch on `dataset`, with a deadline.
fn train_on(dataset: &str, out: &Path, extra: &[&str]) -> std::process::Output {
    output_within(
        neuroevo()
            .current_dir(repo(""))
            .args(["train", "-q", "--device", "cpu", "--dataset", dataset])
            .args([
                "--image-size",
                "8",
                "--channels",
                "1",
                "--arch",
                "S4-4 P:max",
            ])
            .args(["--epochs", "1", "--batch-size", "8", "--seed", "1", "--out"])
            .arg(out)
            .args(extra),
        120,
    )
}

#[test]
fn fifos_in_a_folder_are_skipped_and_a_fifo_as_input_is_refused_without_blocking() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("faces");
    image_folder(&dir, 6);
    mkfifo(&dir.join("b/pipe.png"));
    let o = train_on(
        &format!("folder:{}", dir.display()),
        &tmp.path().join("run"),
        &[],
    );
    let err = stderr(&o);
    assert!(o.status.success(), "{err}");
    assert!(
        err.contains("skipped 1 file(s) that are not regular files")
            && err.contains("b/pipe.png (a FIFO"),
        "{err}"
    );

    // gari's target image
    let fifo = tmp.path().join("target.png");
    mkfifo(&fifo);
    let o = output_within(
        neuroevo()
            .args([
                "gari",
                "-q",
                "--device",
                "cpu",
                "--generations",
                "5",
                "--input",
            ])
            .arg(&fifo)
            .arg("--out")
            .arg(tmp.path().join("gari")),
        60,
    );
    let err = stderr(&o);
    assert_eq!(o.status.code(), Some(2), "{err}");
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(
        err.starts_with("error: ") && err.contains("target.png: is a FIFO"),
        "{err}"
    );

    // an IDX file of a dataset directory
    let data = tmp.path().join("data");
    std::fs::create_dir_all(data.join("mnist")).unwrap();
    for stem in IDX_FILES {
        let name = format!("{stem}.gz");
        if stem.starts_with("train-images") {
            mkfifo(&data.join("mnist").join(&name));
        } else {
            std::fs::copy(
                repo("data/mnist-10k").join(&name),
                data.join("mnist").join(&name),
            )
            .unwrap();
        }
    }
    let o = train_on(
        "mnist",
        &tmp.path().join("mnist-run"),
        &["--data-dir", data.to_str().unwrap()],
    );
    let err = stderr(&o);
    assert_eq!(o.status.code(), Some(2), "{err}");
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(
        err.contains("mnist/train-images-idx3-ubyte.gz: is a FIFO"),
        "{err}"
    );
}

#[test]
fn a_symlink_loop_in_a_folder_is_not_followed_and_each_image_is_read_once() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("faces");
    image_folder(&dir, 30);
    std::os::unix::fs::symlink("..", dir.join("a/loop")).unwrap();
    std::os::unix::fs::symlink("000.png", dir.join("a/same.png")).unwrap();
    let out = tmp.path().join("run");
    let o = train_on(&format!("folder:{}", dir.display()), &out, &[]);
    let err = stderr(&o);
    assert!(o.status.success(), "{err}");
    assert!(err.contains("each is read once"), "{err}");
    // 30 images: 27 to train on, 3 held out (10%), none of them twice
    let r: serde_json::Value =
        serde_json::from_slice(&std::fs::read(out.join("result.json")).unwrap()).unwrap();
    assert_eq!(
        (r["train_samples"].as_u64(), r["val_samples"].as_u64()),
        (Some(27), Some(3))
    );
}

#[test]
fn sigterm_while_a_folder_loads_ends_the_process_at_once() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("big");
    std::fs::create_dir_all(&dir).unwrap();
    // 40 copies (distinct files) of an 8000x8000 picture: seconds of decoding and resizing
    let first = dir.join("000.png");
    image::GrayImage::from_pixel(8000, 8000, image::Luma([90]))
        .save(&first)
        .unwrap();
    for i in 1..40 {
        std::fs::copy(&first, dir.join(format!("{i:03}.png"))).unwrap();
    }
    let out = tmp.path().join("run");
    let child = neuroevo()
        .current_dir(repo(""))
        .args(["train", "-q", "--device", "cpu", "--dataset"])
        .arg(format!("folder:{}", dir.display()))
        .args([
            "--image-size",
            "8",
            "--channels",
            "1",
            "--arch",
            "S4-4 P:max",
        ])
        .args(["--epochs", "1", "--seed", "1", "--out"])
        .arg(&out)
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    // the run directory is set up before the data loads
    let t = std::time::Instant::now();
    while !out.join("config.json").exists() {
        assert!(t.elapsed().as_secs() < 60, "no config.json");
        std::thread::sleep(std::time::Duration::from_millis(10));
    }
    std::thread::sleep(std::time::Duration::from_millis(300));
    let signalled = std::time::Instant::now();
    unsafe { libc::kill(child.id() as i32, libc::SIGTERM) };
    let o = child.wait_with_output().unwrap();
    let waited = signalled.elapsed();
    assert_eq!(o.status.code(), Some(130), "{}", stderr(&o));
    assert!(waited.as_secs() < 3, "exited {waited:?} after SIGTERM");
    // it stopped in the loading: no epoch, no checkpoint
    assert!(!out.join("log.jsonl").exists() || common::log(&out).is_empty());
    assert!(!out.join("model.pt").exists());
}
