//! Where the downloadable datasets are found: `--data-dir`, then `$NEUROEVO_DATA`, then the
//! user's cache directory, each as `<dir>/<name>/` or `<dir>/` itself; the mirrors and SHA-256
//! sums of the IDX sets, and their verified download into the first of those directories.
use super::download::{download_any, Checksum};
use super::options::DataOptions;
use crate::error::{Error, Result};
use std::path::{Path, PathBuf};

pub const IDX_FILES: [&str; 4] = [
    "train-images-idx3-ubyte",
    "train-labels-idx1-ubyte",
    "t10k-images-idx3-ubyte",
    "t10k-labels-idx1-ubyte",
];

/// SHA-256 of the gzip files as published, and of their content (any compression).
pub(crate) const MNIST_SUMS: [Checksum; 4] = [
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

pub(crate) const MNIST_MIRRORS: [&str; 2] = [
    "https://ossci-datasets.s3.amazonaws.com/mnist/",
    "https://storage.googleapis.com/cvdf-datasets/mnist/",
];
pub(crate) const FASHION_MIRRORS: [&str; 1] =
    ["http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/"];

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
pub(crate) fn locate_idx(
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
