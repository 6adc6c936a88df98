//! Named datasets and how they are found.
//!
//! `mnist-10k` is embedded in the binary. `mnist`, `fashion-mnist` and `cifar10` are looked up
//! in `--data-dir`, then `$NEUROEVO_DATA`, then the user's cache directory
//! (`$XDG_CACHE_HOME/neuroevo` or `~/.cache/neuroevo`), each as `<dir>/<name>/` or `<dir>/`
//! itself (and, for Fashion-MNIST, Debian's `/usr/share/datasets/fashion-mnist/`). If absent,
//! they are downloaded from the usual public mirrors (or only from `$NEUROEVO_MIRROR/<name>/` when
//! that is set) with
//! SHA-256 checks into the first of those directories. Offline, the error says so and names the
//! bundled `mnist-10k`; it never switches datasets silently.
pub use super::cifar::read_cifar;
use super::cifar::*;
use super::download::{download_any, Checksum};
use super::idx::parse_idx;
use crate::error::{Error, Result};
use crate::rng::GaRng;
use rand::seq::SliceRandom;
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};
use tch::{Device, Kind, Tensor};

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum DatasetName {
    Mnist10k,
    Mnist,
    FashionMnist,
    Cifar10,
    Folder(PathBuf),
}

impl DatasetName {
    pub fn parse(s: &str) -> Result<Self> {
        Ok(match s.trim() {
            "mnist-10k" | "mnist10k" => DatasetName::Mnist10k,
            "mnist" => DatasetName::Mnist,
            "fashion-mnist" | "fashion_mnist" | "fashion" => DatasetName::FashionMnist,
            "cifar10" | "cifar-10" => DatasetName::Cifar10,
            other => match other.strip_prefix("folder:") {
                Some(p) if !p.is_empty() => DatasetName::Folder(PathBuf::from(p)),
                _ => {
                    return Err(Error::usage(format!(
                        "--dataset {other}: expected mnist-10k, mnist, fashion-mnist, cifar10 or folder:PATH"
                    )))
                }
            },
        })
    }
    pub fn label(&self) -> String {
        match self {
            DatasetName::Mnist10k => "mnist-10k".into(),
            DatasetName::Mnist => "mnist".into(),
            DatasetName::FashionMnist => "fashion-mnist".into(),
            DatasetName::Cifar10 => "cifar10".into(),
            DatasetName::Folder(p) => format!("folder:{}", p.display()),
        }
    }
}

/// How to load a dataset.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct DataOptions {
    pub data_dir: Option<PathBuf>,
    /// Fraction of the training set held out for validation (seeded).
    pub val_fraction: f64,
    pub seed: u64,
    /// Use at most this many training (and test) images, a seeded random subset: for quick runs.
    pub subset: Option<usize>,
    /// Folder datasets: side of the square images, and channels (1 or 3).
    pub image_size: u32,
    pub channels: u8,
    pub download: bool,
}

impl Default for DataOptions {
    fn default() -> Self {
        DataOptions {
            data_dir: None,
            val_fraction: 0.1,
            seed: 0,
            subset: None,
            image_size: 64,
            channels: 3,
            download: true,
        }
    }
}

/// Images `[N, C, H, W]` (f32) and labels `[N]` (i64), on one device.
pub struct Split {
    pub x: Tensor,
    pub y: Tensor,
}

impl Split {
    pub fn len(&self) -> usize {
        self.y.size()[0] as usize
    }
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
    fn select(&self, idx: &[i64]) -> Split {
        let i = Tensor::from_slice(idx).to_device(self.x.device());
        Split {
            x: self.x.index_select(0, &i),
            y: self.y.index_select(0, &i),
        }
    }
}

pub struct Dataset {
    pub name: String,
    pub classes: Vec<String>,
    /// `[C, H, W]`
    pub shape: [i64; 3],
    /// Range of the image values: (0, 1) for the classification sets, (-1, 1) for folders.
    pub value_range: (f32, f32),
    pub train: Split,
    pub val: Split,
    pub test: Split,
}

impl Dataset {
    pub fn num_classes(&self) -> usize {
        self.classes.len()
    }
    pub fn device(&self) -> Device {
        self.train.x.device()
    }
    /// Train and validation splits together (for a final model trained on both).
    pub fn train_and_val(&self) -> Split {
        Split {
            x: Tensor::cat(&[&self.train.x, &self.val.x], 0),
            y: Tensor::cat(&[&self.train.y, &self.val.y], 0),
        }
    }
}

/// Seeded mini-batches sliced on the device: one index upload per epoch, no host round trip
/// per batch.
pub struct Batches<'a> {
    split: &'a Split,
    perm: Option<Tensor>,
    pos: i64,
    n: i64,
    bs: i64,
}

impl<'a> Batches<'a> {
    /// Batches of `bs` in a seeded random order (`rng`), or in order when `rng` is `None`.
    pub fn new(split: &'a Split, bs: usize, rng: Option<&mut GaRng>) -> Self {
        let n = split.len() as i64;
        let perm = rng.map(|rng| {
            let mut p: Vec<i64> = (0..n).collect();
            p.shuffle(rng);
            Tensor::from_slice(&p).to_device(split.x.device())
        });
        Batches {
            split,
            perm,
            pos: 0,
            n,
            bs: bs.max(1) as i64,
        }
    }
    pub fn num_batches(&self) -> usize {
        ((self.n + self.bs - 1) / self.bs) as usize
    }
}

impl Iterator for Batches<'_> {
    type Item = (Tensor, Tensor);
    fn next(&mut self) -> Option<Self::Item> {
        if self.pos >= self.n {
            return None;
        }
        let len = self.bs.min(self.n - self.pos);
        let out = match &self.perm {
            Some(p) => {
                let idx = p.narrow(0, self.pos, len);
                (
                    self.split.x.index_select(0, &idx),
                    self.split.y.index_select(0, &idx),
                )
            }
            None => (
                self.split.x.narrow(0, self.pos, len),
                self.split.y.narrow(0, self.pos, len),
            ),
        };
        self.pos += len;
        Some(out)
    }
}

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

pub const IDX_FILES: [&str; 4] = [
    "train-images-idx3-ubyte",
    "train-labels-idx1-ubyte",
    "t10k-images-idx3-ubyte",
    "t10k-labels-idx1-ubyte",
];

/// SHA-256 of the gzip files as published, and of their content (any compression).
const MNIST_SUMS: [Checksum; 4] = [
    Checksum {
        file: Some("440fcabf73cc546fa21475e81ea370265605f56be210a4024d2ca8f203523609"),
        content: Some("ba891046e6505d7aadcbbe25680a0738ad16aec93bde7f9b65e87a2fc25776db"),
    },
    Checksum {
        file: Some("3552534a0a558bbed6aed32b30c495cca23d567ec52cac8be1a0730e8010255c"),
        content: Some("65a50cbbf4e906d70832878ad85ccda5333a97f0f4c3dd2ef09a8a9eef7101c5"),
    },
    Checksum {
        file: Some("8d422c7b0a1c1c79245a5bcf07fe86e33eeafee792b84584aec276f5a2dbc4e6"),
        content: Some("0fa7898d509279e482958e8ce81c8e77db3f2f8254e26661ceb7762c4d494ce7"),
    },
    Checksum {
        file: Some("f7ae60f92e00ec6debd23a6088c31dbd2371eca3ffa0defaefb259924204aec6"),
        content: Some("ff7bcfd416de33731a308c3f266cc351222c34898ecbeaf847f06e48f7ec33f2"),
    },
];

/// Content SHA-256 of Fashion-MNIST (as in Debian's dataset-fashion-mnist, which recompresses
/// the upstream files; the content is what is checked).
pub const FASHION_SUMS: [Checksum; 4] = [
    Checksum {
        file: None,
        content: Some("c59f468a2f672dc815687fe0f83887768d799fd8a3f3276145d20f83aa44d888"),
    },
    Checksum {
        file: None,
        content: Some("bad3541b69d912435c50bb6ba87bec294ff4f6a2e1246121d8633921760443d9"),
    },
    Checksum {
        file: None,
        content: Some("5b4141f0afbad91edebe8549f8fcffe087ea10ca49f1dbef5c9a5cd8815ce37b"),
    },
    Checksum {
        file: None,
        content: Some("0402a96d92fd2663957122ceb108a494c5af83dab82d92729df917d7dec38c34"),
    },
];

const MNIST_MIRRORS: [&str; 2] = [
    "https://ossci-datasets.s3.amazonaws.com/mnist/",
    "https://storage.googleapis.com/cvdf-datasets/mnist/",
];
const FASHION_MIRRORS: [&str; 1] = ["http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/"];

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

/// The user's cache directory for datasets.
pub fn cache_dir() -> Option<PathBuf> {
    if let Some(x) = std::env::var_os("XDG_CACHE_HOME").filter(|x| !x.is_empty()) {
        return Some(PathBuf::from(x).join("neuroevo"));
    }
    std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cache/neuroevo"))
}

/// The directories searched, in order.
pub fn search_dirs(opts: &DataOptions) -> Vec<PathBuf> {
    let mut v = Vec::new();
    if let Some(d) = &opts.data_dir {
        v.push(d.clone());
    }
    if let Some(d) = std::env::var_os("NEUROEVO_DATA").filter(|d| !d.is_empty()) {
        v.push(PathBuf::from(d));
    }
    if let Some(d) = cache_dir() {
        v.push(d);
    }
    v
}

/// `stem.gz` or `stem` in `dir`, whatever it is: one that is not a regular file (a FIFO, a
/// device) is found here and refused by the read, with its path, rather than passed over.
pub(crate) fn find_file(dir: &Path, stem: &str) -> Option<PathBuf> {
    [format!("{stem}.gz"), stem.to_string()]
        .into_iter()
        .map(|n| dir.join(n))
        .find(|p| p.metadata().is_ok_and(|m| !m.is_dir()))
}

pub(crate) fn mirrors(sub: &str, defaults: &[&str], file: &str) -> Vec<String> {
    match std::env::var("NEUROEVO_MIRROR") {
        Ok(m) if !m.is_empty() => vec![format!("{}/{sub}/{file}", m.trim_end_matches('/'))],
        _ => defaults.iter().map(|b| format!("{b}{file}")).collect(),
    }
}

/// Finds the four IDX files of `sub` (e.g. "mnist"), downloading them if needed.
fn locate_idx(
    sub: &str,
    opts: &DataOptions,
    extra: &[PathBuf],
    defaults: &[&str],
    sums: &[Checksum; 4],
) -> Result<Vec<PathBuf>> {
    let dirs = search_dirs(opts);
    let mut candidates: Vec<PathBuf> = dirs.iter().flat_map(|d| [d.join(sub), d.clone()]).collect();
    candidates.extend(extra.iter().cloned());
    for c in &candidates {
        let found: Vec<_> = IDX_FILES.iter().filter_map(|f| find_file(c, f)).collect();
        if found.len() == 4 {
            return Ok(found);
        }
    }
    let hand = |d: &Path| {
        format!(
            "place {} (.gz or raw) in {} by hand, or use --dataset mnist-10k (10,000 MNIST digits bundled with neuroevo)",
            IDX_FILES.join(", "),
            d.join(sub).display()
        )
    };
    let Some(target_root) = dirs.first() else {
        return Err(Error::usage(format!("{sub}: not found, and no --data-dir, $NEUROEVO_DATA or home directory to download into")));
    };
    let target = target_root.join(sub);
    let shown: Vec<String> = candidates.iter().map(|c| c.display().to_string()).collect();
    if !opts.download {
        return Err(Error::usage(format!(
            "{sub}: not found in {}; {}",
            shown.join(", "),
            hand(target_root)
        )));
    }
    let mut paths = Vec::new();
    for (stem, sum) in IDX_FILES.iter().zip(sums) {
        let file = format!("{stem}.gz");
        let dest = target.join(&file);
        if let Err(e) = download_any(&mirrors(sub, defaults, &file), &dest, sum) {
            return Err(Error::usage(format!(
                "{sub}: not found in {}, and the download failed (offline?): {e}; {}",
                shown.join(", "),
                hand(target_root)
            )));
        }
        paths.push(dest);
    }
    Ok(paths)
}

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

pub(crate) fn to_split(
    x: Vec<u8>,
    y: Vec<u8>,
    n: usize,
    c: usize,
    h: usize,
    w: usize,
    device: Device,
) -> Split {
    let x = Tensor::from_slice(&x)
        .view([n as i64, c as i64, h as i64, w as i64])
        .to_device(device)
        .to_kind(Kind::Float)
        / 255.0;
    let y = Tensor::from_slice(&y)
        .to_kind(Kind::Int64)
        .to_device(device);
    Split { x, y }
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
    let digits: Vec<String> = (0..10).map(|d| d.to_string()).collect();
    let (classes, train, test, value_range) = match name {
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
            let read = |p: &Path| super::files::read_regular(p);
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
    };
    let shape = {
        let s = train.x.size();
        [s[1], s[2], s[3]]
    };
    // seeded subset, then a seeded validation split
    let mut rng = crate::rng::Streams::new(opts.seed).data_split();
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::data::download::{sha256_hex, tests::serve};
    use crate::data::idx::encode_idx;
    use rand::SeedableRng;
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
            seed: 3,
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
                seed: 4,
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
    fn batches_cover_every_sample_once() {
        let split = Split {
            x: Tensor::arange(10, (Kind::Float, Device::Cpu)).view([10, 1, 1, 1]),
            y: Tensor::arange(10, (Kind::Int64, Device::Cpu)),
        };
        let mut rng = GaRng::seed_from_u64(1);
        let b = Batches::new(&split, 4, Some(&mut rng));
        assert_eq!(b.num_batches(), 3);
        let mut seen: Vec<i64> = b
            .flat_map(|(_, y)| Vec::<i64>::try_from(&y).unwrap())
            .collect();
        assert_ne!(seen, (0..10).collect::<Vec<_>>(), "shuffled");
        seen.sort();
        assert_eq!(seen, (0..10).collect::<Vec<_>>());
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
