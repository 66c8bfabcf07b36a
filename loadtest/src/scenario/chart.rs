//! One chart per scenario for `--report` (SVG, drawn with plotters): by default accepted
//! purchases per second over the run, a line per variant; a scenario can chart its own series
//! instead (peak shaving: the queue's depth).

use std::path::Path;

use plotters::prelude::*;

use super::Figures;

/// Width of a timeline bucket, in seconds.
pub const BUCKET_SECS: f64 = 0.25;

/// Lines over time, sampled every `step_secs`.
pub struct Chart {
    /// What the y axis counts.
    pub y_desc: &'static str,
    pub step_secs: f64,
    /// (name, samples) per line.
    pub series: Vec<(String, Vec<f64>)>,
}

impl Chart {
    /// Accepted purchases per second, a line per variant.
    pub fn accepted(variants: &[Figures]) -> Chart {
        Chart {
            y_desc: "accepted purchases / s",
            step_secs: BUCKET_SECS,
            series: variants.iter().map(|v| (v.variant.clone(), v.timeline.clone())).collect(),
        }
    }
}

/// Draws `chart` into an SVG file at `path`.
pub fn draw(path: &Path, title: &str, chart: &Chart) -> anyhow::Result<()> {
    let longest = chart.series.iter().map(|(_, samples)| samples.len()).max().unwrap_or(0).max(1);
    let max_x = longest as f64 * chart.step_secs;
    let max_y = chart.series.iter().flat_map(|(_, samples)| samples.iter().copied()).fold(1.0_f64, f64::max) * 1.1;
    let root = SVGBackend::new(path, (900, 420)).into_drawing_area();
    root.fill(&WHITE).map_err(plot)?;
    let spec = chart;
    let mut chart = ChartBuilder::on(&root)
        .caption(title, ("sans-serif", 20))
        .margin(12)
        .x_label_area_size(40)
        .y_label_area_size(60)
        .build_cartesian_2d(0.0..max_x, 0.0..max_y)
        .map_err(plot)?;
    chart.configure_mesh().x_desc("seconds since the crowd started").y_desc(spec.y_desc).draw().map_err(plot)?;
    for (i, (name, samples)) in spec.series.iter().enumerate() {
        let color = Palette99::pick(i).to_rgba();
        let points = samples.iter().enumerate().map(|(n, value)| (n as f64 * spec.step_secs, *value));
        chart
            .draw_series(LineSeries::new(points, color.stroke_width(2)))
            .map_err(plot)?
            .label(name.clone())
            .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 20, y)], color.stroke_width(2)));
    }
    chart
        .configure_series_labels()
        .position(SeriesLabelPosition::UpperRight)
        .background_style(WHITE.mix(0.85))
        .border_style(BLACK)
        .draw()
        .map_err(plot)?;
    root.present().map_err(plot)?;
    Ok(())
}

fn plot(err: impl std::fmt::Display) -> anyhow::Error {
    anyhow::anyhow!("drawing the chart: {err}")
}
