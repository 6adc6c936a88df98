//! Image folders (e.g. anime faces for GANs): every image under a directory, recursively,
//! resized (shorter side) and centre-cropped to a square, as 1 or 3 channels scaled to [-1, 1].
//! Unreadable files are skipped and counted; a folder with no readable image is an error.
//! Only regular files are read: FIFOs, devices and sockets are skipped with a warning naming
//! them (a read would block), and each real folder and file is visited once, so a symlink loop
//! neither multiplies the images nor puts copies of training images in the validation split.
//! Images in sub-folders get the sub-folder's name as their class.
use crate::error::{Error, Result};
use rayon::prelude::*;
use std::collections::HashSet;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

pub struct FolderImages {
    /// `[N, C, S, S]` values in [-1, 1]
    pub pixels: Vec<f32>,
    pub labels: Vec<i64>,
    pub classes: Vec<String>,
    pub skipped: usize,
}

const EXTENSIONS: [&str; 11] = [
    "png", "jpg", "jpeg", "gif", "bmp", "tif", "tiff", "webp", "pnm", "ppm", "pgm",
];

/// What a walk of an image folder found.
#[derive(Default)]
struct Walk {
    /// Image files to decode, each real file once.
    files: Vec<PathBuf>,
    /// Entries with an image extension that are not regular files (FIFOs, devices, sockets).
    special: Vec<(PathBuf, &'static str)>,
    /// Links to a folder or an image already visited (a symlink loop, or a second link).
    repeats: usize,
    /// The folders and files visited, as (device, inode).
    seen: HashSet<(u64, u64)>,
}

fn has_image_extension(p: &Path) -> bool {
    p.extension()
        .and_then(|e| e.to_str())
        .is_some_and(|e| EXTENSIONS.contains(&e.to_ascii_lowercase().as_str()))
}

/// Collects the images under `dir` (sorted, recursively, following symlinks) into `w`. Each
/// real folder and file is visited once, by (device, inode): a symlink loop is not followed,
/// and an image reached by two paths is read once.
fn walk(dir: &Path, w: &mut Walk) -> std::io::Result<()> {
    let mut entries: Vec<_> = std::fs::read_dir(dir)?
        .filter_map(|e| e.ok())
        .map(|e| e.path())
        .collect();
    entries.sort();
    for p in entries {
        // metadata follows symlinks; a dangling link is left to the decoder (counted unreadable)
        let Ok(meta) = std::fs::metadata(&p) else {
            if has_image_extension(&p) {
                w.files.push(p);
            }
            continue;
        };
        if meta.is_dir() {
            if w.seen.insert((meta.dev(), meta.ino())) {
                walk(&p, w)?;
            } else {
                w.repeats += 1;
            }
        } else if has_image_extension(&p) {
            if !meta.is_file() {
                w.special.push((p, crate::files::kind_of(meta.file_type())));
            } else if w.seen.insert((meta.dev(), meta.ino())) {
                w.files.push(p);
            } else {
                w.repeats += 1;
            }
        }
    }
    Ok(())
}

/// Walks `dir` (see [`walk`]) and warns about what it leaves out.
fn list_images(dir: &Path) -> Result<Vec<PathBuf>> {
    let root = std::fs::metadata(dir).map_err(|e| Error::io(dir, e))?;
    let mut w = Walk::default();
    w.seen.insert((root.dev(), root.ino()));
    walk(dir, &mut w).map_err(|e| Error::io(dir, e))?;
    if !w.special.is_empty() {
        let shown: Vec<String> = w
            .special
            .iter()
            .take(3)
            .map(|(p, kind)| format!("{} ({kind})", p.display()))
            .collect();
        eprintln!(
            "warning: folder:{}: skipped {} file(s) that are not regular files: {}{}",
            dir.display(),
            w.special.len(),
            shown.join(", "),
            if w.special.len() > 3 { ", ..." } else { "" }
        );
    }
    if w.repeats > 0 {
        eprintln!(
            "warning: folder:{}: {} link(s) lead to a folder or an image already read (a symlink loop?); each is read once",
            dir.display(),
            w.repeats
        );
    }
    Ok(w.files)
}

/// Resize so the shorter side is `size`, then crop the centre `size x size`.
pub fn square(img: &image::DynamicImage, size: u32) -> image::DynamicImage {
    let (w, h) = (img.width(), img.height());
    let scale = size as f64 / w.min(h) as f64;
    let (nw, nh) = (
        ((w as f64 * scale).round() as u32).max(size),
        ((h as f64 * scale).round() as u32).max(size),
    );
    let r = img.resize_exact(nw, nh, image::imageops::FilterType::Triangle);
    r.crop_imm((nw - size) / 2, (nh - size) / 2, size, size)
}

pub fn load_folder(dir: &Path, size: u32, channels: u8) -> Result<FolderImages> {
    if !(channels == 1 || channels == 3) {
        return Err(Error::usage(format!(
            "--channels {channels}: must be 1 or 3"
        )));
    }
    if !(4..=1024).contains(&size) {
        return Err(Error::usage(format!(
            "--image-size {size}: must be between 4 and 1024"
        )));
    }
    if !dir.is_dir() {
        return Err(Error::usage(format!(
            "folder:{}: not a directory",
            dir.display()
        )));
    }
    let files = list_images(dir)?;
    let class_of = |p: &Path| -> String {
        p.strip_prefix(dir)
            .ok()
            .and_then(|r| {
                if r.components().count() > 1 {
                    r.components().next()
                } else {
                    None
                }
            })
            .map(|c| c.as_os_str().to_string_lossy().into_owned())
            .unwrap_or_default()
    };
    let mut classes: Vec<String> = files.iter().map(|p| class_of(p)).collect();
    classes.sort();
    classes.dedup();
    let per = (size * size) as usize * channels as usize;
    let decoded: Vec<Option<(Vec<f32>, i64)>> = files
        .par_iter()
        .map(|p| {
            let img = crate::imageio::load_image(p).ok()?;
            let sq = square(&img, size);
            let px: Vec<f32> = if channels == 1 {
                sq.to_luma8()
                    .into_raw()
                    .iter()
                    .map(|&v| v as f32 / 127.5 - 1.0)
                    .collect()
            } else {
                // HWC -> CHW
                let raw = sq.to_rgb8().into_raw();
                let hw = (size * size) as usize;
                let mut chw = vec![0.0f32; per];
                for (i, px) in raw.chunks_exact(3).enumerate() {
                    for c in 0..3 {
                        chw[c * hw + i] = px[c] as f32 / 127.5 - 1.0;
                    }
                }
                chw
            };
            let label = classes.binary_search(&class_of(p)).unwrap_or(0) as i64;
            Some((px, label))
        })
        .collect();
    let skipped = decoded.iter().filter(|d| d.is_none()).count();
    let ok: Vec<_> = decoded.into_iter().flatten().collect();
    if ok.is_empty() {
        return Err(Error::usage(format!(
            "folder:{}: no readable image ({} file(s) with an image extension, {skipped} unreadable)",
            dir.display(),
            files.len()
        )));
    }
    if skipped > 0 {
        eprintln!(
            "warning: folder:{}: skipped {skipped} unreadable image(s)",
            dir.display()
        );
    }
    let mut pixels = Vec::with_capacity(ok.len() * per);
    let mut labels = Vec::with_capacity(ok.len());
    for (p, l) in ok {
        pixels.extend(p);
        labels.push(l);
    }
    let classes = if classes.len() == 1 && classes[0].is_empty() {
        vec!["images".into()]
    } else {
        classes
    };
    Ok(FolderImages {
        pixels,
        labels,
        classes,
        skipped,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn loads_resizes_crops_scales_and_skips_bad_files() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(dir.path().join("cats")).unwrap();
        std::fs::create_dir_all(dir.path().join("dogs")).unwrap();
        image::RgbImage::from_pixel(40, 20, image::Rgb([255, 0, 0]))
            .save(dir.path().join("cats/a.png"))
            .unwrap();
        image::GrayImage::from_pixel(10, 30, image::Luma([0]))
            .save(dir.path().join("dogs/b.jpg"))
            .unwrap();
        std::fs::write(dir.path().join("dogs/broken.png"), b"not a png").unwrap();
        std::fs::write(dir.path().join("notes.txt"), b"ignored").unwrap();
        let f = load_folder(dir.path(), 8, 3).unwrap();
        assert_eq!(f.labels, vec![0, 1]);
        assert_eq!(f.classes, vec!["cats".to_string(), "dogs".to_string()]);
        assert_eq!(f.skipped, 1);
        assert_eq!(f.pixels.len(), 2 * 3 * 64);
        // red image: R plane 1, G and B planes -1
        assert!(f.pixels[..64].iter().all(|&v| (v - 1.0).abs() < 1e-6));
        assert!(f.pixels[64..192].iter().all(|&v| (v + 1.0).abs() < 1e-6));
        // black image in [-1, 1]
        assert!(f.pixels[192..].iter().all(|&v| (v + 1.0).abs() < 0.02));
    }

    #[test]
    fn each_real_file_is_read_once_and_only_regular_files_are_read() {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        std::fs::create_dir_all(d.join("a")).unwrap();
        for i in 0..3 {
            image::GrayImage::from_pixel(4, 4, image::Luma([i * 50]))
                .save(d.join(format!("a/{i}.png")))
                .unwrap();
        }
        // a loop back to the top, a second link to a folder and to an image
        std::os::unix::fs::symlink("..", d.join("a/up")).unwrap();
        std::os::unix::fs::symlink("a", d.join("b")).unwrap();
        std::os::unix::fs::symlink("0.png", d.join("a/again.png")).unwrap();
        let fifo = std::ffi::CString::new(d.join("a/pipe.png").to_str().unwrap()).unwrap();
        assert_eq!(unsafe { libc::mkfifo(fifo.as_ptr(), 0o644) }, 0);
        std::os::unix::fs::symlink("/dev/zero", d.join("a/zero.png")).unwrap();
        let f = load_folder(d, 4, 1).unwrap();
        assert_eq!(f.labels.len(), 3);
        assert_eq!(f.skipped, 0);
    }

    #[test]
    fn empty_folder_is_an_error() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("x.png"), b"garbage").unwrap();
        let e = load_folder(dir.path(), 8, 1).err().unwrap();
        assert!(
            e.is_user_error() && e.to_string().contains("no readable image"),
            "{e}"
        );
    }
}
