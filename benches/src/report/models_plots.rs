//! The server models section's plots:
//!
//! - `models_jain.svg`: Jain's fairness of live connections across the reactors, one
//!   bar per arrival kind and model of more than one reactor, with the 0.95 target;
//! - `models_idle_memory.svg`: server RSS per idle connection of every model, with
//!   the 1 KiB target.

use std::path::Path;

use plotters::prelude::*;

use super::figure::Plot;
use super::models::ModelsResults;
use super::models_output::summarize;

/// A bar series: its legend and one value per model (`None`: no bar).
type Bars = (&'static str, Vec<Option<f64>>);

/// Draws the section's plots into `dir`.
pub fn draw(results: &ModelsResults, dir: &Path) -> Vec<Plot> {
    let summaries: Vec<_> = results.rows.iter().map(|r| (r, summarize(r))).collect();
    let multi: Vec<_> = summaries
        .iter()
        .filter(|(r, _)| r.model.reactors > 1)
        .collect();
    let mut plots = Vec::new();
    let title = "server models: Jain's fairness of live connections across 8 reactors".to_owned();
    let file = "models_jain.svg".to_owned();
    let result = bars(
        &dir.join(&file),
        &title,
        "Jain's index (1 = even)",
        &multi
            .iter()
            .map(|(r, _)| r.model.contender.name)
            .collect::<Vec<_>>(),
        &[
            (
                "one at a time",
                multi.iter().map(|(_, m)| m.one.jain).collect(),
            ),
            ("burst", multi.iter().map(|(_, m)| m.burst.jain).collect()),
        ],
        ("target 0.95 (Balanced)", 0.95),
    );
    plots.push(Plot {
        file,
        title,
        result,
    });
    let title = "server models: server RSS per idle connection (10,000)".to_owned();
    let file = "models_idle_memory.svg".to_owned();
    let result = bars(
        &dir.join(&file),
        &title,
        "bytes per connection",
        &summaries
            .iter()
            .map(|(r, _)| r.model.contender.name)
            .collect::<Vec<_>>(),
        &[(
            "RSS after − before ÷ connections",
            summaries.iter().map(|(_, m)| m.rss_per_conn).collect(),
        )],
        ("target 1 KiB (readiness-first echo)", 1024.0),
    );
    plots.push(Plot {
        file,
        title,
        result,
    });
    plots
}

/// Grouped bars, one group per name, with a horizontal target line.
fn bars(
    path: &Path,
    title: &str,
    y_desc: &str,
    names: &[&str],
    series: &[Bars],
    target: (&str, f64),
) -> Result<(), String> {
    let n = names.len();
    if n == 0 || series.iter().all(|(_, v)| v.iter().all(Option::is_none)) {
        return Err("no data".to_owned());
    }
    let y_max = series
        .iter()
        .flat_map(|(_, v)| v.iter().flatten())
        .copied()
        .fold(target.1, f64::max)
        * 1.2;
    let root = SVGBackend::new(path, (1000, 560)).into_drawing_area();
    root.fill(&WHITE).map_err(err)?;
    let mut chart = ChartBuilder::on(&root)
        .caption(title, ("sans-serif", 22))
        .margin(15)
        .x_label_area_size(45)
        .y_label_area_size(70)
        .build_cartesian_2d(-0.5f64..(n as f64 - 0.5), 0f64..y_max)
        .map_err(err)?;
    chart
        .configure_mesh()
        .disable_x_mesh()
        .x_labels(n)
        .x_label_formatter(&|x| {
            let i = x.round();
            if (x - i).abs() < 0.01 && i >= 0.0 {
                names.get(i as usize).map_or_else(String::new, |s| {
                    s.strip_prefix("epitome-").unwrap_or(s).to_owned()
                })
            } else {
                String::new()
            }
        })
        .y_desc(y_desc)
        .draw()
        .map_err(err)?;
    let width = 0.7 / series.len() as f64;
    for (k, (label, values)) in series.iter().enumerate() {
        let colour = Palette99::pick(k).to_rgba();
        let left = -0.35 + k as f64 * width;
        chart
            .draw_series(values.iter().enumerate().filter_map(|(i, v)| {
                let x = i as f64 + left;
                Some(Rectangle::new(
                    [(x + 0.01, 0.0), (x + width - 0.01, (*v)?)],
                    colour.filled(),
                ))
            }))
            .map_err(err)?
            .label(*label)
            .legend(move |(x, y)| Rectangle::new([(x, y - 5), (x + 15, y + 5)], colour.filled()));
    }
    chart
        .draw_series(LineSeries::new(
            [(-0.5, target.1), (n as f64 - 0.5, target.1)],
            RED.stroke_width(1),
        ))
        .map_err(err)?
        .label(target.0)
        .legend(|(x, y)| PathElement::new(vec![(x, y), (x + 20, y)], RED));
    chart
        .configure_series_labels()
        .position(SeriesLabelPosition::UpperRight)
        .background_style(WHITE.mix(0.85))
        .border_style(BLACK)
        .draw()
        .map_err(err)?;
    root.present().map_err(err)
}

fn err(e: impl std::fmt::Display) -> String {
    e.to_string()
}
