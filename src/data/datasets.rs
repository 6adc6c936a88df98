//! Loading a named dataset: reading its files into train and test splits, then a seeded subset
//! and validation split.
//!
//! `mnist-10k` is embedded in the binary. `mnist`, `fashion-mnist` and `cifar10` are looked up
//! in `--data-dir`, then `$NEUROEVO_DATA`, then the user's cache directory
//! (`$XDG_CACHE_HOME/neuroevo` or `~/.cache/neuroevo`), each as `<dir>/<name>/` or `<dir>/`
//! itself (and, for Fashion-MNIST, Debian's `/usr/share/datasets/fashion-mnist/`). If absent,
//! they are downloaded from the usual public mirrors (or only from `$NEUROEVO_MIRROR/<name>/` when
//! that is set) with
//! SHA-256 checks into the first of those directories. Offline, the error says so and names the
//! bundled `mnist-10k`; it never switches datasets silently. Finding and downloading the files
//! is [`super::lookup`]'s.
pub use super::cifar::read_cifar;
use super::cifar::{locate_cifar, CIFAR_CLASSES};
use super::idx::parse_idx;
pub use super::lookup::{cache_dir, search_dirs, FASHION_SUMS, IDX_FILES};
use super::lookup::{locate_idx, FASHION_MIRRORS, MNIST_MIRRORS, MNIST_SUMS};
pub use super::options::{DataOptions, DatasetName};
use super::split::to_split;
pub use super::split::{Batches, Dataset, Split};
use crate::error::{Error, Result};
use crate::rng::GaRng;
use rand::seq::SliceRandom;
use std::path::{Path, PathBuf};
use tch::{Device, Tensor};

static MNIST10K: [(&str, &[u8]); 4] = [
    (
        "train-images-idx3-ubyte.gz",
        include_bytes!("../../data/mnist-10k/train-images-idx3-ubyte.gz"),
    ),
    (
        "train-labels-idx1-ubyte.gz",
        include_bytes!("../../data/mnist-10k/train-labels-idx1-ubyte.gz"),
    ),
    (
        "t10k-images-idx3-ubyte.gz",
        include_bytes!("../../data/mnist-10k/t10k-images-idx3-ubyte.gz"),
    ),
    (
        "t10k-labels-idx1-ubyte.gz",
        include_bytes!("../../data/mnist-10k/t10k-labels-idx1-ubyte.gz"),
    ),
];

const FASHION_CLASSES: [&str; 10] = [
    "T-shirt/top",
    "Trouser",
    "Pullover",
    "Dress",
    "Coat",
    "Sandal",
    "Shirt",
    "Sneaker",
    "Bag",
    "Ankle boot",
];

/// Images `[N, H, W]` and labels from IDX bytes, checked against each other.
fn idx_pair(
    images: (&[u8], &Path),
    labels: (&[u8], &Path),
    classes: usize,
) -> Result<(Vec<u8>, Vec<u8>, usize, usize, usize)> {
    let x = parse_idx(images.0, images.1)?;
    let y = parse_idx(labels.0, labels.1)?;
    if x.dims.len() != 3 {
        return Err(Error::corrupt(
            images.1,
            format!("expected images [N, H, W], found dimensions {:?}", x.dims),
        ));
    }
    if y.dims.len() != 1 || y.dims[0] != x.dims[0] {
        return Err(Error::corrupt(
            labels.1,
            format!("{:?} labels for {} images", y.dims, x.dims[0]),
        ));
    }
    if let Some(bad) = y.data.iter().find(|&&l| l as usize >= classes) {
        return Err(Error::corrupt(
            labels.1,
            format!("label {bad} is not one of {classes} classes"),
        ));
    }
    Ok((x.data, y.data, x.dims[0], x.dims[1], x.dims[2]))
}

/// Loads a dataset onto `device`, with a seeded validation split held out from train. Ctrl-C or
/// SIGTERM while it loads ends the process at once ([`crate::interrupt::loading`]).
pub fn load_dataset(name: &DatasetName, opts: &DataOptions, device: Device) -> Result<Dataset> {
    let _loading = crate::interrupt::loading();
    if !(0.0..1.0).contains(&opts.val_fraction) {
        return Err(Error::usage(format!(
            "--val-fraction {}: must be in [0, 1)",
            opts.val_fraction
        )));
    }
    let (classes, train, test, value_range) = read_splits(name, opts, device)?;
    let shape = {
        let s = train.x.size();
        [s[1], s[2], s[3]]
    };
    // seeded subset, then a seeded validation split
    let mut rng = opts.seed.data_split();
    let subset = |split: Split, rng: &mut GaRng| -> Split {
        match opts.subset {
            Some(k) if k < split.len() => {
                let mut idx: Vec<i64> = (0..split.len() as i64).collect();
                idx.shuffle(rng);
                idx.truncate(k);
                split.select(&idx)
            }
            _ => split,
        }
    };
    let train = subset(train, &mut rng);
    let test = subset(test, &mut rng);
    let mut idx: Vec<i64> = (0..train.len() as i64).collect();
    idx.shuffle(&mut rng);
    let n_val = (train.len() as f64 * opts.val_fraction).round() as usize;
    let (val_idx, train_idx) = idx.split_at(n_val);
    let (val, train) = (train.select(val_idx), train.select(train_idx));
    if train.is_empty() {
        return Err(Error::usage(format!(
            "{}: no training images left",
            name.label()
        )));
    }
    Ok(Dataset {
        name: name.label(),
        classes,
        shape,
        value_range,
        train,
        val,
        test,
    })
}

/// The classes, train and test splits and value range of `name`, read as its files are.
fn read_splits(
    name: &DatasetName,
    opts: &DataOptions,
    device: Device,
) -> Result<(Vec<String>, Split, Split, (f32, f32))> {
    let digits: Vec<String> = (0..10).map(|d| d.to_string()).collect();
    Ok(match name {
        DatasetName::Mnist10k => {
            let p = |i: usize| PathBuf::from(format!("<embedded mnist-10k>/{}", MNIST10K[i].0));
            let (x, y, n, h, w) = idx_pair((MNIST10K[0].1, &p(0)), (MNIST10K[1].1, &p(1)), 10)?;
            let (tx, ty, tn, _, _) = idx_pair((MNIST10K[2].1, &p(2)), (MNIST10K[3].1, &p(3)), 10)?;
            (
                digits,
                to_split(x, y, n, 1, h, w, device),
                to_split(tx, ty, tn, 1, h, w, device),
                (0.0, 1.0),
            )
        }
        DatasetName::Mnist | DatasetName::FashionMnist => {
            let (sub, extra, mirrors, sums, classes) = if *name == DatasetName::Mnist {
                ("mnist", vec![], &MNIST_MIRRORS[..], &MNIST_SUMS, digits)
            } else {
                (
                    "fashion-mnist",
                    vec![PathBuf::from("/usr/share/datasets/fashion-mnist")],
                    &FASHION_MIRRORS[..],
                    &FASHION_SUMS,
                    FASHION_CLASSES.iter().map(|s| s.to_string()).collect(),
                )
            };
            let files = locate_idx(sub, opts, &extra, mirrors, sums)?;
            let read = |p: &Path| crate::files::read_regular(p);
            let (b0, b1, b2, b3) = (
                read(&files[0])?,
                read(&files[1])?,
                read(&files[2])?,
                read(&files[3])?,
            );
            let (x, y, n, h, w) = idx_pair((&b0, &files[0]), (&b1, &files[1]), 10)?;
            let (tx, ty, tn, _, _) = idx_pair((&b2, &files[2]), (&b3, &files[3]), 10)?;
            (
                classes,
                to_split(x, y, n, 1, h, w, device),
                to_split(tx, ty, tn, 1, h, w, device),
                (0.0, 1.0),
            )
        }
        DatasetName::Cifar10 => {
            let dir = locate_cifar(opts)?;
            let (x, y, n) = read_cifar(
                &(1..=5)
                    .map(|i| dir.join(format!("data_batch_{i}.bin")))
                    .collect::<Vec<_>>(),
            )?;
            let (tx, ty, tn) = read_cifar(&[dir.join("test_batch.bin")])?;
            (
                CIFAR_CLASSES.iter().map(|s| s.to_string()).collect(),
                to_split(x, y, n, 3, 32, 32, device),
                to_split(tx, ty, tn, 3, 32, 32, device),
                (0.0, 1.0),
            )
        }
        DatasetName::Folder(path) => {
            let f = super::folder::load_folder(path, opts.image_size, opts.channels)?;
            let n = f.labels.len();
            let s = opts.image_size as i64;
            let x = Tensor::from_slice(&f.pixels)
                .view([n as i64, opts.channels as i64, s, s])
                .to_device(device);
            let y = Tensor::from_slice(&f.labels).to_device(device);
            let empty = Split {
                x: x.narrow(0, 0, 0),
                y: y.narrow(0, 0, 0),
            };
            (f.classes, Split { x, y }, empty, (-1.0, 1.0))
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::data::cifar::CIFAR_SUM;
    use crate::data::download::{sha256_hex, tests::serve};
    use crate::data::idx::encode_idx;
    use std::io::Write;

    fn opts(dir: &Path) -> DataOptions {
        DataOptions {
            data_dir: Some(dir.to_path_buf()),
            download: false,
            ..Default::default()
        }
    }

    #[test]
    fn mnist_10k_loads_with_a_seeded_validation_split() {
        let o = DataOptions {
            seed: crate::rng::Streams::new(3),
            ..Default::default()
        };
        let d = load_dataset(&DatasetName::Mnist10k, &o, Device::Cpu).unwrap();
        assert_eq!(
            (d.train.len(), d.val.len(), d.test.len()),
            (7204, 800, 1996)
        );
        assert_eq!(d.shape, [1, 28, 28]);
        let max = d.train.x.max().double_value(&[]);
        assert!(max > 0.99 && max <= 1.0);
        let again = load_dataset(&DatasetName::Mnist10k, &o, Device::Cpu).unwrap();
        assert!(again.val.y.equal(&d.val.y), "same seed, same split");
        let other = load_dataset(
            &DatasetName::Mnist10k,
            &DataOptions {
                seed: crate::rng::Streams::new(4),
                ..o.clone()
            },
            Device::Cpu,
        )
        .unwrap();
        assert!(!other.val.y.equal(&d.val.y));
        let sub = load_dataset(
            &DatasetName::Mnist10k,
            &DataOptions {
                subset: Some(300),
                ..o
            },
            Device::Cpu,
        )
        .unwrap();
        assert_eq!(
            (sub.train.len() + sub.val.len(), sub.test.len()),
            (300, 300)
        );
    }

    #[test]
    fn idx_sets_are_found_in_data_dir_and_checked() {
        let dir = tempfile::tempdir().unwrap();
        let sub = dir.path().join("mnist");
        std::fs::create_dir_all(&sub).unwrap();
        let write = |name: &str, dims: &[usize], data: &[u8]| {
            std::fs::write(sub.join(name), encode_idx(dims, data)).unwrap()
        };
        write("train-images-idx3-ubyte", &[20, 28, 28], &[9; 20 * 784]);
        write("train-labels-idx1-ubyte", &[20], &[3; 20]);
        write("t10k-images-idx3-ubyte", &[5, 28, 28], &[9; 5 * 784]);
        write("t10k-labels-idx1-ubyte", &[4], &[1; 4]);
        let e = load_dataset(&DatasetName::Mnist, &opts(dir.path()), Device::Cpu)
            .err()
            .unwrap();
        assert!(
            e.to_string().contains("t10k-labels") && e.to_string().contains("4"),
            "{e}"
        );
        write("t10k-labels-idx1-ubyte", &[5], &[1; 5]);
        let d = load_dataset(&DatasetName::Mnist, &opts(dir.path()), Device::Cpu).unwrap();
        assert_eq!(d.train.len() + d.val.len(), 20);
    }

    #[test]
    fn offline_names_the_bundled_fallback_and_does_not_switch() {
        let dir = tempfile::tempdir().unwrap();
        let e = load_dataset(&DatasetName::Mnist, &opts(dir.path()), Device::Cpu)
            .err()
            .unwrap();
        let msg = e.to_string();
        assert!(
            e.is_user_error() && msg.contains("mnist-10k") && msg.contains("by hand"),
            "{msg}"
        );
    }

    #[test]
    fn downloads_from_a_mirror_with_checksums() {
        // a fake "cifar10" archive served on 127.0.0.1 must fail its real checksum and leave nothing
        let dir = tempfile::tempdir().unwrap();
        let mut tar_gz = Vec::new();
        {
            let enc = flate2::write::GzEncoder::new(&mut tar_gz, flate2::Compression::fast());
            let mut t = tar::Builder::new(enc);
            let rec = vec![0u8; 3073];
            let mut h = tar::Header::new_gnu();
            h.set_size(rec.len() as u64);
            h.set_cksum();
            t.append_data(&mut h, "cifar-10-batches-bin/test_batch.bin", &rec[..])
                .unwrap();
            t.into_inner().unwrap().finish().unwrap().flush().unwrap();
        }
        assert_ne!(sha256_hex(&tar_gz), CIFAR_SUM.file.unwrap());
        let base = serve(vec![("cifar10/cifar-10-binary.tar.gz".into(), tar_gz)]);
        // SAFETY of the test: the variable is read by this test only
        unsafe { std::env::set_var("NEUROEVO_MIRROR", &base) };
        let o = DataOptions {
            data_dir: Some(dir.path().to_path_buf()),
            download: true,
            ..Default::default()
        };
        let e = locate_cifar(&o).err().unwrap();
        unsafe { std::env::remove_var("NEUROEVO_MIRROR") };
        assert!(e.to_string().contains("checksum mismatch"), "{e}");
        let left: Vec<_> = walk(dir.path());
        assert!(left.is_empty(), "nothing left behind: {left:?}");
    }

    fn walk(d: &Path) -> Vec<PathBuf> {
        let mut v = Vec::new();
        if let Ok(rd) = std::fs::read_dir(d) {
            for e in rd.flatten() {
                let p = e.path();
                if p.is_dir() {
                    v.extend(walk(&p));
                } else {
                    v.push(p);
                }
            }
        }
        v
    }

    #[test]
    fn cifar_records_are_checked() {
        let dir = tempfile::tempdir().unwrap();
        let f = dir.path().join("b.bin");
        std::fs::write(&f, vec![0u8; 3073 * 2 + 5]).unwrap();
        assert!(read_cifar(&[f.clone()])
            .unwrap_err()
            .to_string()
            .contains("3,073"));
        let mut rec = vec![0u8; 3073];
        rec[0] = 7;
        std::fs::write(&f, [rec.clone(), rec].concat()).unwrap();
        let (x, y, n) = read_cifar(&[f]).unwrap();
        assert_eq!((x.len(), y, n), (6144, vec![7, 7], 2));
    }
}
