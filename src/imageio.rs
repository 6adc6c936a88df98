//! Images as flat gene vectors: row-major H x W x C (the tutorial's `numpy.reshape`), values
//! scaled to [0, 1]. Gray, gray+alpha, RGB and RGBA are kept as they are (1-4 channels).
use crate::error::{Error, Result};
use image::{DynamicImage, ImageBuffer};
use std::path::Path;
use tch::{Device, Kind, Tensor};

#[derive(Clone, Debug, PartialEq)]
pub struct FlatImage {
    pub width: u32,
    pub height: u32,
    pub channels: u8,
    /// `height * width * channels` values in [0, 1].
    pub data: Vec<f32>,
}

impl FlatImage {
    pub fn len(&self) -> usize {
        self.data.len()
    }
    pub fn is_empty(&self) -> bool {
        self.data.is_empty()
    }
    pub fn color_name(&self) -> &'static str {
        match self.channels {
            1 => "gray",
            2 => "gray+alpha",
            3 => "RGB",
            _ => "RGBA",
        }
    }

    pub fn from_dynamic(img: &DynamicImage) -> Self {
        let (w, h) = (img.width(), img.height());
        let (channels, bytes): (u8, Vec<u8>) = match img {
            DynamicImage::ImageLuma8(_) | DynamicImage::ImageLuma16(_) => {
                (1, img.to_luma8().into_raw())
            }
            DynamicImage::ImageLumaA8(_) | DynamicImage::ImageLumaA16(_) => {
                (2, img.to_luma_alpha8().into_raw())
            }
            DynamicImage::ImageRgb8(_)
            | DynamicImage::ImageRgb16(_)
            | DynamicImage::ImageRgb32F(_) => (3, img.to_rgb8().into_raw()),
            _ => (4, img.to_rgba8().into_raw()),
        };
        FlatImage {
            width: w,
            height: h,
            channels,
            data: bytes.iter().map(|&b| b as f32 / 255.0).collect(),
        }
    }

    /// Genes (any values) as an image of this one's shape: clamped to [0, 1] and rounded to bytes.
    pub fn with_genes(&self, genes: &[f32]) -> DynamicImage {
        assert_eq!(genes.len(), self.data.len());
        let bytes: Vec<u8> = genes
            .iter()
            .map(|&g| (g.clamp(0.0, 1.0) * 255.0).round() as u8)
            .collect();
        let (w, h) = (self.width, self.height);
        match self.channels {
            1 => DynamicImage::ImageLuma8(ImageBuffer::from_raw(w, h, bytes).unwrap()),
            2 => DynamicImage::ImageLumaA8(ImageBuffer::from_raw(w, h, bytes).unwrap()),
            3 => DynamicImage::ImageRgb8(ImageBuffer::from_raw(w, h, bytes).unwrap()),
            _ => DynamicImage::ImageRgba8(ImageBuffer::from_raw(w, h, bytes).unwrap()),
        }
    }

    pub fn to_dynamic(&self) -> DynamicImage {
        self.with_genes(&self.data)
    }
}

/// Reads an image file; a missing, unreadable, corrupt or empty image, or a path that is not a
/// regular file (FIFO, device, socket), is a user error naming the path.
pub fn load_image(path: &Path) -> Result<DynamicImage> {
    let _loading = crate::interrupt::loading();
    let meta = std::fs::metadata(path).map_err(|e| Error::io(path, e))?;
    if meta.is_dir() {
        return Err(Error::usage(format!(
            "{}: is a directory, not an image",
            path.display()
        )));
    }
    // a FIFO or a device is refused at once instead of blocking the read
    let bytes = crate::files::read_regular(path)?;
    let reader = image::ImageReader::new(std::io::Cursor::new(&bytes))
        .with_guessed_format()
        .map_err(|e| Error::io(path, e))?;
    match reader.format() {
        None => {
            return Err(Error::corrupt(
                path,
                "not an image format that can be read (PNG, JPEG, GIF, BMP, TIFF, WebP, PNM)",
            ))
        }
        Some(image::ImageFormat::Jpeg) if !jpeg_is_complete(&bytes) => {
            return Err(Error::corrupt(
                path,
                format!(
                    "truncated JPEG: its {} bytes end before the end-of-image marker (a cut-short download or copy?); its missing part would be evolved as grey",
                    bytes.len()
                ),
            ))
        }
        Some(_) => {}
    }
    let img = reader.decode().map_err(|e| Error::Image {
        path: path.to_path_buf(),
        source: e,
    })?;
    if img.width() == 0 || img.height() == 0 {
        return Err(Error::corrupt(path, "image has zero width or height"));
    }
    Ok(img)
}

/// Whether a JPEG's last scan is followed by its end-of-image marker. The JPEG decoder fills a
/// cut-short scan with grey silently; neither marker can occur inside entropy-coded data (0xFF
/// is stuffed there), so an EOI (FF D9) after the last start-of-scan (FF DA) means the file is
/// whole.
pub fn jpeg_is_complete(bytes: &[u8]) -> bool {
    let last = |marker: u8| bytes.windows(2).rposition(|w| w == [0xFF, marker]);
    match (last(0xDA), last(0xD9)) {
        (Some(sos), Some(eoi)) => eoi > sos,
        _ => false,
    }
}

/// The largest side `--resize` accepts.
pub const MAX_SIDE: u32 = 16384;

/// Parses `WxH` (e.g. `100x75`).
pub fn parse_size(s: &str) -> Result<(u32, u32)> {
    let bad = || Error::usage(format!("--resize {s}: expected WIDTHxHEIGHT, e.g. 100x75"));
    let (w, h) = s.trim().split_once(['x', 'X']).ok_or_else(bad)?;
    let w: u32 = w.trim().parse().map_err(|_| bad())?;
    let h: u32 = h.trim().parse().map_err(|_| bad())?;
    if w == 0 || h == 0 {
        return Err(Error::usage(format!(
            "--resize {s}: width and height must be at least 1"
        )));
    }
    if w > MAX_SIDE || h > MAX_SIDE {
        return Err(Error::usage(format!(
            "--resize {s}: at most {MAX_SIDE} pixels a side"
        )));
    }
    Ok((w, h))
}

pub fn resize(img: &DynamicImage, w: u32, h: u32) -> DynamicImage {
    img.resize_exact(w, h, image::imageops::FilterType::Lanczos3)
}

/// Scales by an integer factor (nearest neighbour) so that the shorter side is at least `min_side`.
pub fn upscale_for_viewing(img: &DynamicImage, min_side: u32) -> DynamicImage {
    let side = img.width().min(img.height()).max(1);
    let f = min_side.div_ceil(side).max(1);
    if f == 1 {
        img.clone()
    } else {
        img.resize_exact(
            img.width() * f,
            img.height() * f,
            image::imageops::FilterType::Nearest,
        )
    }
}

/// Images side by side on a white background with `gap` pixels between them, as RGBA.
pub fn side_by_side(images: &[DynamicImage], gap: u32) -> DynamicImage {
    let w: u32 = images.iter().map(|i| i.width()).sum::<u32>() + gap * (images.len() as u32 + 1);
    let h = images.iter().map(|i| i.height()).max().unwrap_or(0) + 2 * gap;
    let mut canvas = image::RgbaImage::from_pixel(w, h, image::Rgba([255, 255, 255, 255]));
    let mut x = gap;
    for img in images {
        image::imageops::overlay(&mut canvas, &img.to_rgba8(), x as i64, gap as i64);
        x += img.width() + gap;
    }
    DynamicImage::ImageRgba8(canvas)
}

/// Peak signal-to-noise ratio in dB of `a` against `b`, both in [0, 1].
pub fn psnr(a: &[f32], b: &[f32]) -> f64 {
    let mse = a
        .iter()
        .zip(b)
        .map(|(&x, &y)| ((x.clamp(0.0, 1.0) - y) as f64).powi(2))
        .sum::<f64>()
        / a.len() as f64;
    if mse == 0.0 {
        f64::INFINITY
    } else {
        -10.0 * mse.log10()
    }
}

/// Mean absolute error of genes `a` (clamped to [0, 1]) against `b`, in 8-bit levels (0-255).
pub fn mae_levels(a: &[f32], b: &[f32]) -> f64 {
    let sum: f64 = a
        .iter()
        .zip(b)
        .map(|(&x, &y)| (x.clamp(0.0, 1.0) - y).abs() as f64)
        .sum();
    255.0 * sum / a.len().max(1) as f64
}

/// Maps tensor values from the range `from` to the range `to`.
pub fn rescale(x: &Tensor, from: (f32, f32), to: (f32, f32)) -> Tensor {
    if from == to {
        return x.shallow_clone();
    }
    (x - from.0 as f64) * ((to.1 - to.0) as f64 / (from.1 - from.0) as f64) + to.0 as f64
}

/// One image `[C, H, W]` or `[1, C, H, W]` with values in `range` as a picture.
pub fn tensor_image(img: &Tensor, range: (f32, f32)) -> Result<DynamicImage> {
    let x = rescale(img, range, (0.0, 1.0))
        .clamp(0.0, 1.0)
        .to_device(Device::Cpu);
    let x = if x.dim() == 4 { x.squeeze_dim(0) } else { x };
    let s = x.size();
    let (c, h, w) = (s[0], s[1], s[2]);
    let hwc = x
        .to_kind(Kind::Float)
        .permute([1, 2, 0])
        .contiguous()
        .view([-1]);
    let data = Vec::<f32>::try_from(hwc).map_err(|e| Error::Other(format!("image tensor: {e}")))?;
    Ok(FlatImage {
        width: w as u32,
        height: h as u32,
        channels: c.min(4) as u8,
        data,
    }
    .to_dynamic())
}

/// An `nrow`-wide grid of images `[N, C, H, W]` (values in `range`) with 2-pixel gaps.
pub fn grid_image(images: &Tensor, range: (f32, f32), nrow: i64) -> Result<DynamicImage> {
    let x = ((images.to_device(Device::Cpu).to_kind(Kind::Float) - range.0 as f64)
        / (range.1 - range.0) as f64)
        .clamp(0.0, 1.0);
    let s = x.size();
    let (n, c, h, w) = (s[0], s[1], s[2], s[3]);
    let rows = (n + nrow - 1) / nrow;
    let gap = 2;
    let (gh, gw) = (rows * (h + gap) + gap, nrow * (w + gap) + gap);
    let canvas = Tensor::ones([c, gh, gw], (Kind::Float, Device::Cpu));
    for i in 0..n {
        let (r, col) = (i / nrow, i % nrow);
        canvas
            .narrow(1, gap + r * (h + gap), h)
            .narrow(2, gap + col * (w + gap), w)
            .copy_(&x.get(i));
    }
    let data = Vec::<f32>::try_from(canvas.permute([1, 2, 0]).contiguous().view([-1]))?;
    let flat = FlatImage {
        width: gw as u32,
        height: gh as u32,
        channels: c as u8,
        data,
    };
    Ok(upscale_for_viewing(&flat.to_dynamic(), 512))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_every_channel_layout() {
        for channels in [1u8, 2, 3, 4] {
            let data: Vec<f32> = (0..5 * 3 * channels as usize)
                .map(|i| ((i * 37) % 256) as f32 / 255.0)
                .collect();
            let f = FlatImage {
                width: 5,
                height: 3,
                channels,
                data,
            };
            let back = FlatImage::from_dynamic(&f.to_dynamic());
            assert_eq!(back, f);
        }
    }

    #[test]
    fn flattening_is_row_major_hwc() {
        let mut img = image::RgbImage::new(2, 1);
        img.put_pixel(0, 0, image::Rgb([255, 0, 0]));
        img.put_pixel(1, 0, image::Rgb([0, 0, 255]));
        let f = FlatImage::from_dynamic(&DynamicImage::ImageRgb8(img));
        assert_eq!(f.data, vec![1.0, 0.0, 0.0, 0.0, 0.0, 1.0]);
    }

    #[test]
    fn corrupt_and_missing_images_are_user_errors() {
        let dir = tempfile::tempdir().unwrap();
        let bad = dir.path().join("bad.png");
        std::fs::write(&bad, b"\x89PNG\r\n\x1a\nthis is not really a png").unwrap();
        let e = load_image(&bad).unwrap_err();
        assert!(e.is_user_error(), "{e}");
        assert!(e.to_string().contains("bad.png"));
        let e = load_image(&dir.path().join("missing.jpg")).unwrap_err();
        assert!(e.is_user_error() && e.to_string().contains("missing.jpg"));
        let txt = dir.path().join("notes.txt");
        std::fs::write(&txt, b"hello").unwrap();
        assert!(load_image(&txt).unwrap_err().is_user_error());
    }

    #[test]
    fn a_truncated_jpeg_is_refused() {
        let bytes =
            std::fs::read(concat!(env!("CARGO_MANIFEST_DIR"), "/assets/fruit.jpg")).unwrap();
        assert!(jpeg_is_complete(&bytes));
        let dir = tempfile::tempdir().unwrap();
        let whole = dir.path().join("whole.jpg");
        std::fs::write(&whole, &bytes).unwrap();
        assert!(load_image(&whole).is_ok());
        let cut = dir.path().join("cut.jpg");
        std::fs::write(&cut, &bytes[..bytes.len() * 2 / 3]).unwrap();
        let e = load_image(&cut).unwrap_err();
        assert!(e.is_user_error());
        let msg = e.to_string();
        assert!(
            msg.contains("cut.jpg") && msg.contains("truncated JPEG"),
            "{msg}"
        );
    }

    #[test]
    fn psnr_matches_definition() {
        let a = vec![0.5f32; 100];
        let b = vec![0.6f32; 100];
        assert!((psnr(&a, &b) - 20.0).abs() < 1e-4);
        assert!(psnr(&a, &a).is_infinite());
    }

    #[test]
    fn sizes_parse() {
        assert_eq!(parse_size("100x75").unwrap(), (100, 75));
        assert!(parse_size("0x5").is_err());
        assert!(parse_size("abc").is_err());
        let e = parse_size("20000x20000").unwrap_err().to_string();
        assert!(e.contains("at most 16384 pixels"), "{e}");
    }
}
