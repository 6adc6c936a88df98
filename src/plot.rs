//! PNG line plots (plotters, bitmap backend, with an embedded DejaVu Sans so no system fonts
//! are needed). Several panels stack vertically and share the x axis.
use crate::error::{Error, Result};
use plotters::prelude::*;
use std::path::Path;
use std::sync::Once;

static FONT: &[u8] = include_bytes!("../assets/DejaVuSans.ttf");
static REGISTER: Once = Once::new();

fn ensure_font() {
    REGISTER.call_once(|| {
        let _ = plotters::style::register_font("sans-serif", FontStyle::Normal, FONT);
    });
}

/// Images side by side (as [`crate::imageio::side_by_side`]) with a caption under each.
pub fn captioned_row(
    images: &[image::DynamicImage],
    captions: &[String],
    gap: u32,
) -> Result<image::DynamicImage> {
    ensure_font();
    let row = crate::imageio::side_by_side(images, gap).to_rgb8();
    let caption_h = 24;
    let (w, h) = (row.width(), row.height() + caption_h);
    let mut canvas = image::RgbImage::from_pixel(w, h, image::Rgb([255, 255, 255]));
    image::imageops::overlay(&mut canvas, &row, 0, 0);
    let mut buf = canvas.into_raw();
    (|| -> std::result::Result<(), Box<dyn std::error::Error>> {
        let root = BitMapBackend::with_buffer(&mut buf, (w, h)).into_drawing_area();
        let mut x = gap;
        for (img, caption) in images.iter().zip(captions) {
            root.draw(&Text::new(
                caption.clone(),
                (x as i32, row.height() as i32 - (gap as i32) / 2),
                ("sans-serif", 16).into_font().color(&BLACK),
            ))?;
            x += img.width() + gap;
        }
        root.present()?;
        Ok(())
    })()
    .map_err(|e| Error::Plot(format!("captions: {e}")))?;
    let img = image::RgbImage::from_raw(w, h, buf).expect("caption buffer");
    Ok(image::DynamicImage::ImageRgb8(img))
}

pub struct Series {
    pub name: String,
    pub points: Vec<(f64, f64)>,
}

pub struct Panel {
    /// A logarithmic y axis (positive values only; tick labels in the values' units).
    pub log_y: bool,
    pub y_label: String,
    pub series: Vec<Series>,
}

const COLORS: [RGBColor; 10] = [
    RGBColor(31, 119, 180),
    RGBColor(255, 127, 14),
    RGBColor(44, 160, 44),
    RGBColor(214, 39, 40),
    RGBColor(148, 103, 189),
    RGBColor(140, 86, 75),
    RGBColor(227, 119, 194),
    RGBColor(127, 127, 127),
    RGBColor(188, 189, 34),
    RGBColor(23, 190, 207),
];

/// Draws `panels` one above the other into a PNG at `path` (written atomically).
pub fn line_plot(path: &Path, title: &str, x_label: &str, panels: &[Panel]) -> Result<()> {
    ensure_font();
    let (w, h) = (900u32, 300 * panels.len().max(1) as u32 + 40);
    let mut buf = vec![0u8; (w * h * 3) as usize];
    draw(&mut buf, (w, h), title, x_label, panels)
        .map_err(|e| Error::Plot(format!("{}: {e}", path.display())))?;
    let img = image::RgbImage::from_raw(w, h, buf).expect("plot buffer");
    crate::fsutil::save_image_atomic(path, &image::DynamicImage::ImageRgb8(img))
}

/// A tick label with as many decimals as the axis span needs, and k/M for large round numbers.
fn tick(v: f64, span: f64) -> String {
    let decimals = if span > 0.0 {
        (1.0 - (span / 10.0).log10().floor()).clamp(0.0, 6.0) as usize
    } else {
        2
    };
    if decimals == 0 && v.abs() >= 1e6 && span >= 1e5 {
        return format!("{}M", trim(format!("{:.2}", v / 1e6)));
    }
    if decimals == 0 && v.abs() >= 1e3 && span >= 1e3 && span < 1e5 {
        return format!("{}k", trim(format!("{:.1}", v / 1e3)));
    }
    trim(format!("{v:.decimals$}"))
}

fn trim(s: String) -> String {
    if s.contains('.') {
        s.trim_end_matches('0').trim_end_matches('.').to_string()
    } else {
        s
    }
}

fn finite_range(vals: impl Iterator<Item = f64>) -> Option<(f64, f64)> {
    let (lo, hi) = vals
        .filter(|v| v.is_finite())
        .fold((f64::INFINITY, f64::NEG_INFINITY), |(a, b), v| {
            (a.min(v), b.max(v))
        });
    if lo > hi {
        return None;
    }
    let pad = if hi > lo {
        (hi - lo) * 0.05
    } else {
        lo.abs().max(1.0) * 0.05
    };
    Some((lo - pad, hi + pad))
}

fn draw(
    buf: &mut [u8],
    size: (u32, u32),
    title: &str,
    x_label: &str,
    panels: &[Panel],
) -> std::result::Result<(), Box<dyn std::error::Error>> {
    let root = BitMapBackend::with_buffer(buf, size).into_drawing_area();
    root.fill(&WHITE)?;
    let root = root.titled(title, ("sans-serif", 22))?;
    let areas = root.split_evenly((panels.len().max(1), 1));
    for (panel, area) in panels.iter().zip(areas.iter()) {
        // a log axis plots log10 of the values and labels its ticks with the values
        let to_y = |y: f64| {
            if !panel.log_y {
                y
            } else if y > 0.0 {
                y.log10()
            } else {
                f64::NAN
            }
        };
        let xs = panel
            .series
            .iter()
            .flat_map(|s| s.points.iter().map(|p| p.0));
        let ys = panel
            .series
            .iter()
            .flat_map(|s| s.points.iter().map(|p| to_y(p.1)));
        let (Some((x0, x1)), Some((y0, y1))) = (finite_range(xs), finite_range(ys)) else {
            continue;
        };
        let y_fmt = |v: &f64| {
            if panel.log_y {
                let value = 10f64.powf(*v);
                tick(value, value * 10.0)
            } else {
                tick(*v, y1 - y0)
            }
        };
        let x_fmt = |v: &f64| tick(*v, x1 - x0);
        let widest = [y0, y1].iter().map(|v| y_fmt(v).len()).max().unwrap_or(4) as u32;
        let mut chart = ChartBuilder::on(area)
            .margin(12)
            .x_label_area_size(36)
            .y_label_area_size(30 + 8 * widest)
            .build_cartesian_2d(x0.max(0.0)..x1, y0..y1)?;
        chart
            .configure_mesh()
            .x_desc(x_label)
            .y_desc(panel.y_label.as_str())
            .x_label_formatter(&x_fmt)
            .y_label_formatter(&y_fmt)
            .label_style(("sans-serif", 14))
            .light_line_style(WHITE.mix(0.0))
            .draw()?;
        for (k, s) in panel.series.iter().enumerate() {
            let color = COLORS[k % COLORS.len()];
            let pts = s
                .points
                .iter()
                .map(|&(x, y)| (x, to_y(y)))
                .filter(|p| p.0.is_finite() && p.1.is_finite());
            chart
                .draw_series(LineSeries::new(pts, color.stroke_width(2)))?
                .label(s.name.as_str())
                .legend(move |(x, y)| {
                    PathElement::new(vec![(x, y), (x + 18, y)], color.stroke_width(2))
                });
        }
        if panel.series.len() > 1 {
            chart
                .configure_series_labels()
                .background_style(WHITE.mix(0.85))
                .border_style(BLACK)
                .label_font(("sans-serif", 14))
                .position(SeriesLabelPosition::LowerRight)
                .draw()?;
        }
    }
    root.present()?;
    Ok(())
}

/// Points of a scatter plot, drawn as filled circles of `radius` pixels, and joined in order
/// by a line when `connect`.
pub struct Scatter {
    pub name: String,
    pub points: Vec<(f64, f64)>,
    pub radius: u32,
    pub connect: bool,
}

/// Draws `series` as points over a logarithmic x axis (positive values only) into a PNG at
/// `path` (written atomically); later series are drawn over earlier ones.
pub fn scatter_plot(
    path: &Path,
    title: &str,
    x_label: &str,
    y_label: &str,
    series: &[Scatter],
) -> Result<()> {
    ensure_font();
    let (w, h) = (900u32, 560u32);
    let mut buf = vec![0u8; (w * h * 3) as usize];
    draw_scatter(&mut buf, (w, h), title, x_label, y_label, series)
        .map_err(|e| Error::Plot(format!("{}: {e}", path.display())))?;
    let img = image::RgbImage::from_raw(w, h, buf).expect("plot buffer");
    crate::fsutil::save_image_atomic(path, &image::DynamicImage::ImageRgb8(img))
}

fn draw_scatter(
    buf: &mut [u8],
    size: (u32, u32),
    title: &str,
    x_label: &str,
    y_label: &str,
    series: &[Scatter],
) -> std::result::Result<(), Box<dyn std::error::Error>> {
    let root = BitMapBackend::with_buffer(buf, size).into_drawing_area();
    root.fill(&WHITE)?;
    let root = root.titled(title, ("sans-serif", 20))?;
    // the x axis plots log10 of the values and labels its ticks with the values
    let to_x = |x: f64| if x > 0.0 { x.log10() } else { f64::NAN };
    let pts = |s: &Scatter| -> Vec<(f64, f64)> {
        s.points
            .iter()
            .map(|&(x, y)| (to_x(x), y))
            .filter(|p| p.0.is_finite() && p.1.is_finite())
            .collect()
    };
    let all: Vec<(f64, f64)> = series.iter().flat_map(pts).collect();
    let (Some((x0, x1)), Some((y0, y1))) = (
        finite_range(all.iter().map(|p| p.0)),
        finite_range(all.iter().map(|p| p.1)),
    ) else {
        root.present()?;
        return Ok(());
    };
    // the legend goes where it hides the fewest points
    let corner = emptiest_corner(&all, (x0, x1), (y0, y1));
    // the range padded in log space, then as values on plotters' log axis
    let (x0, x1) = (10f64.powf(x0), 10f64.powf(x1));
    let x_fmt = |v: &f64| tick(*v, *v * 10.0);
    let y_fmt = |v: &f64| tick(*v, y1 - y0);
    let mut chart = ChartBuilder::on(&root)
        .margin(16)
        .x_label_area_size(40)
        .y_label_area_size(70)
        .build_cartesian_2d((x0..x1).log_scale(), y0..y1)?;
    chart
        .configure_mesh()
        .x_desc(x_label)
        .y_desc(y_label)
        .x_label_formatter(&x_fmt)
        .y_label_formatter(&y_fmt)
        .label_style(("sans-serif", 14))
        .light_line_style(WHITE.mix(0.0))
        .draw()?;
    for (k, s) in series.iter().enumerate() {
        let color = COLORS[k % COLORS.len()];
        let p: Vec<(f64, f64)> = pts(s)
            .into_iter()
            .map(|(x, y)| (10f64.powf(x), y))
            .collect();
        if s.connect {
            chart.draw_series(LineSeries::new(p.clone(), color.stroke_width(2)))?;
        }
        let r = s.radius as i32;
        chart
            .draw_series(p.into_iter().map(|xy| Circle::new(xy, r, color.filled())))?
            .label(s.name.as_str())
            .legend(move |(x, y)| Circle::new((x + 9, y), r, color.filled()));
    }
    chart
        .configure_series_labels()
        .background_style(WHITE.mix(0.85))
        .border_style(BLACK)
        .label_font(("sans-serif", 14))
        .position(corner)
        .draw()?;
    root.present()?;
    Ok(())
}

/// The corner of the plot whose quarter (the outer 40% of each axis) holds the fewest of
/// `points`, in the plot's coordinates; lower right among equals.
fn emptiest_corner(points: &[(f64, f64)], x: (f64, f64), y: (f64, f64)) -> SeriesLabelPosition {
    let frac = |v: f64, (lo, hi): (f64, f64)| (v - lo) / (hi - lo).max(f64::MIN_POSITIVE);
    let count = |right: bool, upper: bool| {
        points
            .iter()
            .filter(|&&(px, py)| {
                let (fx, fy) = (frac(px, x), frac(py, y));
                (if right { fx > 0.6 } else { fx < 0.4 })
                    && (if upper { fy > 0.6 } else { fy < 0.4 })
            })
            .count()
    };
    let corners = [(true, false), (false, true), (true, true), (false, false)];
    let (right, upper) = corners
        .into_iter()
        .min_by_key(|&(r, u)| count(r, u))
        .unwrap_or((true, false));
    match (right, upper) {
        (true, false) => SeriesLabelPosition::LowerRight,
        (false, true) => SeriesLabelPosition::UpperLeft,
        (true, true) => SeriesLabelPosition::UpperRight,
        (false, false) => SeriesLabelPosition::LowerLeft,
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_legend_goes_to_the_emptiest_corner() {
        let r = (0.0, 1.0);
        // a point low on the right: the legend leaves that corner
        let c = emptiest_corner(&[(0.9, 0.1), (0.5, 0.5)], r, r);
        assert!(matches!(c, SeriesLabelPosition::UpperLeft), "{c:?}");
        assert!(matches!(
            emptiest_corner(&[], r, r),
            SeriesLabelPosition::LowerRight
        ));
    }

    use super::*;
    #[test]
    fn tick_labels_are_short() {
        assert_eq!(tick(2_500_000.0, 5e6), "2.5M");
        assert_eq!(tick(16625340.0, 100.0), "16625340");
        assert_eq!(tick(25.0, 35.0), "25");
        assert_eq!(tick(0.125, 1.0), "0.12");
        assert_eq!(tick(3000.0, 10_000.0), "3k");
    }

    #[test]
    fn writes_a_png_with_something_drawn() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("plot.png");
        let panel = Panel {
            log_y: false,
            y_label: "y".into(),
            series: vec![
                Series {
                    name: "up".into(),
                    points: (0..50).map(|i| (i as f64, (i * i) as f64)).collect(),
                },
                Series {
                    name: "flat".into(),
                    points: vec![(0.0, 5.0), (49.0, 5.0), (20.0, f64::NAN)],
                },
            ],
        };
        line_plot(&p, "test", "x", &[panel]).unwrap();
        let log = Panel {
            log_y: true,
            y_label: "y".into(),
            series: vec![Series {
                name: "decay".into(),
                points: (1..50).map(|i| (i as f64, 100.0 / i as f64)).collect(),
            }],
        };
        line_plot(&dir.path().join("log.png"), "test", "x", &[log]).unwrap();
        let img = image::open(&p).unwrap().to_rgb8();
        assert_eq!(img.dimensions(), (900, 340));
        let sc = dir.path().join("scatter.png");
        let all = Scatter {
            name: "all".into(),
            points: vec![(10.0, 0.5), (1e4, 0.9), (-1.0, 0.2), (300.0, f64::NAN)],
            radius: 3,
            connect: false,
        };
        let front = Scatter {
            name: "front".into(),
            points: vec![(10.0, 0.5), (1e4, 0.9)],
            radius: 5,
            connect: true,
        };
        scatter_plot(&sc, "test", "x", "y", &[all, front]).unwrap();
        let s = image::open(&sc).unwrap().to_rgb8();
        let orange = s.pixels().filter(|px| px.0 == [255, 127, 14]).count();
        assert!(orange > 50, "front pixels drawn: {orange}");
        let blue = img.pixels().filter(|px| px.0 == [31, 119, 180]).count();
        assert!(blue > 100, "line pixels drawn: {blue}");
    }
}
