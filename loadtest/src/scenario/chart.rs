//! One chart per scenario for `--report`: accepted purchases per second over the run, a line per
//! variant (SVG, drawn with plotters).

use std::path::Path;

use plotters::prelude::*;

use super::Figures;

/// Width of a timeline bucket, in seconds.
pub const BUCKET_SECS: f64 = 0.25;

/// Draws the variants' timelines into an SVG file at `path`.
pub fn draw(path: &Path, title: &str, variants: &[Figures]) -> anyhow::Result<()> {
    let longest = variants.iter().map(|v| v.timeline.len()).max().unwrap_or(0).max(1);
    let max_x = longest as f64 * BUCKET_SECS;
    let max_y = variants.iter().flat_map(|v| v.timeline.iter().copied()).fold(1.0_f64, f64::max) * 1.1;
    let root = SVGBackend::new(path, (900, 420)).into_drawing_area();
    root.fill(&WHITE).map_err(plot)?;
    let mut chart = ChartBuilder::on(&root)
        .caption(title, ("sans-serif", 20))
        .margin(12)
        .x_label_area_size(40)
        .y_label_area_size(60)
        .build_cartesian_2d(0.0..max_x, 0.0..max_y)
        .map_err(plot)?;
    chart
        .configure_mesh()
        .x_desc("seconds since the crowd started")
        .y_desc("accepted purchases / s")
        .draw()
        .map_err(plot)?;
    for (i, variant) in variants.iter().enumerate() {
        let color = Palette99::pick(i).to_rgba();
        let points = variant.timeline.iter().enumerate().map(|(n, rate)| (n as f64 * BUCKET_SECS, *rate));
        chart
            .draw_series(LineSeries::new(points, color.stroke_width(2)))
            .map_err(plot)?
            .label(variant.variant.clone())
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
