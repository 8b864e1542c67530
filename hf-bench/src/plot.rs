//! The training curve as a PNG: the objective against iterations and the held-out
//! error against wall time.

use std::path::Path;

use plotters::prelude::*;

use crate::error::{CliError, Result};
use hf_burn::train::MetricsRow;

use crate::records::temp_path;

/// DejaVu Sans (Bitstream Vera licence, see `assets/DejaVuSans-LICENSE.txt`), embedded
/// so plots render the same everywhere without system fonts.
static FONT: &[u8] = include_bytes!("../assets/DejaVuSans.ttf");

fn register_font() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        // The font is embedded and valid; a failure would only lose the labels.
        let _ = plotters::style::register_font("sans-serif", FontStyle::Normal, FONT);
    });
}

fn range(values: impl Iterator<Item = f64>) -> Option<(f64, f64)> {
    let (lo, hi) = values
        .filter(|v| v.is_finite())
        .fold((f64::INFINITY, f64::NEG_INFINITY), |(a, b), v| (a.min(v), b.max(v)));
    (lo <= hi).then_some((lo, hi))
}

fn draw_err<E: std::error::Error + Send + Sync + 'static>(path: &Path) -> impl Fn(E) -> CliError + '_ {
    move |e| CliError::Output {
        path: path.to_path_buf(),
        source: std::io::Error::other(e.to_string()),
    }
}

/// Draws `rows` into `path` (written atomically). `label` names the held-out measure.
pub fn training_curve(path: &Path, title: &str, label: &str, rows: &[MetricsRow]) -> Result<()> {
    register_font();
    let tmp = temp_path(path);
    {
        let root = BitMapBackend::new(&tmp, (1200, 500)).into_drawing_area();
        root.fill(&WHITE).map_err(draw_err(path))?;
        let root = root.titled(title, ("sans-serif", 22)).map_err(draw_err(path))?;
        let (left, right) = root.split_horizontally(600);

        let last_it = rows.last().map_or(1, |r| r.iteration).max(1) as f64;
        // The objective on a log scale, drawn as log10 on a linear axis so that every
        // tick is labelled (plotters labels log axes at powers of ten only).
        let logs: Vec<(f64, f64)> = rows
            .iter()
            .filter(|r| r.objective > 0.0 && r.objective.is_finite())
            .map(|r| (r.iteration as f64, r.objective.log10()))
            .collect();
        let (lo, hi) = range(logs.iter().map(|p| p.1)).unwrap_or((-3.0, 0.0));
        let pad = ((hi - lo) * 0.05).max(0.01);
        let mut chart = ChartBuilder::on(&left)
            .margin(15)
            .x_label_area_size(40)
            .y_label_area_size(80)
            .caption("training objective (log scale)", ("sans-serif", 18))
            .build_cartesian_2d(0.0..last_it, (lo - pad)..(hi + pad))
            .map_err(draw_err(path))?;
        chart
            .configure_mesh()
            .x_desc("iteration")
            .y_desc("objective")
            .y_label_formatter(&|v| format!("{:.3e}", 10f64.powf(*v)))
            .draw()
            .map_err(draw_err(path))?;
        chart
            .draw_series(LineSeries::new(logs, &BLUE))
            .map_err(draw_err(path))?;

        let held: Vec<&MetricsRow> = rows.iter().filter(|r| r.held_out_or_nan().is_finite()).collect();
        let t_max = rows.last().map_or(1.0, |r| r.elapsed_s).max(1e-3);
        let (lo, hi) = range(held.iter().map(|r| r.held_out_or_nan())).unwrap_or((0.0, 1.0));
        let pad = ((hi - lo) * 0.05).max(1e-9);
        let mut chart = ChartBuilder::on(&right)
            .margin(15)
            .x_label_area_size(40)
            .y_label_area_size(70)
            .caption(format!("held-out {label}"), ("sans-serif", 18))
            .build_cartesian_2d(0.0..t_max, (lo - pad)..(hi + pad))
            .map_err(draw_err(path))?;
        chart
            .configure_mesh()
            .x_desc("wall time (s)")
            .y_desc(label)
            .draw()
            .map_err(draw_err(path))?;
        chart
            .draw_series(LineSeries::new(
                held.iter().map(|r| (r.elapsed_s, r.held_out_or_nan())),
                &RED,
            ))
            .map_err(draw_err(path))?;
        root.present().map_err(draw_err(path))?;
    }
    std::fs::rename(&tmp, path).map_err(|source| CliError::Output {
        path: path.to_path_buf(),
        source,
    })
}

/// Several `(seconds, value)` series on one chart (the macro-benchmark's comparison),
/// written atomically to `path`.
pub fn comparison(path: &Path, title: &str, y_label: &str, series: &[(String, Vec<(f64, f64)>)]) -> Result<()> {
    register_font();
    let tmp = temp_path(path);
    {
        let root = BitMapBackend::new(&tmp, (900, 550)).into_drawing_area();
        root.fill(&WHITE).map_err(draw_err(path))?;
        let t_max = range(series.iter().flat_map(|s| s.1.iter().map(|p| p.0)))
            .map_or(1.0, |r| r.1)
            .max(1e-3);
        let (lo, hi) = range(series.iter().flat_map(|s| s.1.iter().map(|p| p.1))).unwrap_or((0.0, 1.0));
        let pad = ((hi - lo) * 0.05).max(1e-9);
        let mut chart = ChartBuilder::on(&root)
            .margin(15)
            .x_label_area_size(40)
            .y_label_area_size(80)
            .caption(title, ("sans-serif", 20))
            .build_cartesian_2d(0.0..t_max, (lo - pad)..(hi + pad))
            .map_err(draw_err(path))?;
        chart
            .configure_mesh()
            .x_desc("seconds of training")
            .y_desc(y_label)
            .draw()
            .map_err(draw_err(path))?;
        for (i, (label, points)) in series.iter().enumerate() {
            let color = Palette99::pick(i).to_rgba();
            chart
                .draw_series(LineSeries::new(points.iter().copied(), color.stroke_width(2)))
                .map_err(draw_err(path))?
                .label(label.as_str())
                .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 20, y)], color.stroke_width(2)));
        }
        chart
            .configure_series_labels()
            .background_style(WHITE.mix(0.8))
            .border_style(BLACK)
            .draw()
            .map_err(draw_err(path))?;
        root.present().map_err(draw_err(path))?;
    }
    std::fs::rename(&tmp, path).map_err(|source| CliError::Output {
        path: path.to_path_buf(),
        source,
    })
}
