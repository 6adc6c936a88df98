//! Image folders (e.g. anime faces for GANs): every image under a directory, recursively,
//! resized (shorter side) and centre-cropped to a square, as 1 or 3 channels scaled to [-1, 1].
//! Unreadable files are skipped and counted; a folder with no readable image is an error.
//! Images in sub-folders get the sub-folder's name as their class.
use crate::error::{Error, Result};
use rayon::prelude::*;
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

fn walk(dir: &Path, out: &mut Vec<PathBuf>) -> std::io::Result<()> {
    let mut entries: Vec<_> = std::fs::read_dir(dir)?
        .filter_map(|e| e.ok())
        .map(|e| e.path())
        .collect();
    entries.sort();
    for p in entries {
        if p.is_dir() {
            walk(&p, out)?;
        } else if p
            .extension()
            .and_then(|e| e.to_str())
            .is_some_and(|e| EXTENSIONS.contains(&e.to_ascii_lowercase().as_str()))
        {
            out.push(p);
        }
    }
    Ok(())
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
    let mut files = Vec::new();
    walk(dir, &mut files).map_err(|e| Error::io(dir, e))?;
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
