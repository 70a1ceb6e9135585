//! The report's SVG plots, drawn with plotters' SVG backend (no font or bitmap
//! stack: text is left to the SVG viewer).
//!
//! - `throughput_<size>.svg`: median req/s by connection count, one line per
//!   contender;
//! - `p99_<size>.svg`: median closed-loop p99 by connection count (log scale);
//! - `ctxsw_blocking_vs_epoll.svg`: context switches per request by connection
//!   count, the blocking server against the epoll ones (64 B);
//! - `herd_wakeups.svg`: wakeups and listener reports per connection for each herd
//!   variant, with the 1.05 target line;
//! - `http_throughput.svg`: median req/s of each HTTP pair under wrk, epitome's bar
//!   beside tokio's (the main connection count);
//! - the server models section's, drawn by [`super::models_plots`].

use std::path::Path;

use plotters::prelude::*;

use epitome_benches::http::{self, Runtime, Stack};

pub use super::figure::Plot;
use super::http::{HttpScenarioResults, pair_side};
use super::summary::{self, summarize_load};
use super::{Results, size_label, sizes};

type Series = (String, Vec<(f64, f64)>);

/// Draws every plot into `dir`.
pub fn draw(results: &Results, dir: &Path) -> Vec<Plot> {
    let mut plots = Vec::new();
    for size in sizes(results) {
        let by_contender = |f: &dyn Fn(&summary::LoadSummary) -> f64| -> Vec<Series> {
            let mut series: Vec<Series> = Vec::new();
            for s in results.scenarios.iter().filter(|s| s.scenario.size == size) {
                for (c, samples) in &s.load {
                    let Ok(m) = summarize_load(samples) else {
                        continue;
                    };
                    let point = (s.scenario.connections as f64, f(&m));
                    match series.iter_mut().find(|(name, _)| name == c.name) {
                        Some((_, points)) => points.push(point),
                        None => series.push((c.name.to_owned(), vec![point])),
                    }
                }
            }
            for (_, points) in &mut series {
                points.sort_by(|a, b| a.0.total_cmp(&b.0));
            }
            series
        };
        let tag = size_label(size).replace(' ', "");
        let title = format!("throughput by connection count, {}", size_label(size));
        let file = format!("throughput_{tag}.svg");
        let result = lines(
            &dir.join(&file),
            &title,
            "req/s",
            false,
            &by_contender(&|m| m.rate),
            SeriesLabelPosition::LowerRight,
        );
        plots.push(Plot {
            file,
            title,
            result,
        });
        let title = format!(
            "closed-loop p99 round trip by connection count, {}",
            size_label(size)
        );
        let file = format!("p99_{tag}.svg");
        let result = lines(
            &dir.join(&file),
            &title,
            "p99 µs (log)",
            true,
            &by_contender(&|m| m.p99_us),
            SeriesLabelPosition::UpperLeft,
        );
        plots.push(Plot {
            file,
            title,
            result,
        });
        if size == epitome_benches::echo::MAIN_SIZE {
            let title = "context switches per request, blocking vs epoll (64 B)".to_owned();
            let file = "ctxsw_blocking_vs_epoll.svg".to_owned();
            let series: Vec<Series> = by_contender(&|m| m.switches)
                .into_iter()
                .filter(|(name, _)| ["blocking", "epoll-lt", "epoll-et"].contains(&name.as_str()))
                .collect();
            let result = lines(
                &dir.join(&file),
                &title,
                "context switches / request",
                false,
                &series,
                SeriesLabelPosition::MiddleRight,
            );
            plots.push(Plot {
                file,
                title,
                result,
            });
        }
    }
    if !results.herd.is_empty() {
        let title = "thundering herd: wakeups per accepted connection".to_owned();
        let file = "herd_wakeups.svg".to_owned();
        let result = herd_bars(results, &dir.join(&file), &title);
        plots.push(Plot {
            file,
            title,
            result,
        });
    }
    let http_main = results.http.as_ref().and_then(|h| {
        let ran = || h.scenarios.iter().filter(|s| s.skipped.is_none());
        ran()
            .find(|s| s.scenario.connections == http::MAIN_CONNECTIONS)
            .or_else(|| ran().next())
    });
    if let Some(s) = http_main {
        let title = format!(
            "HTTP hello (wrk, {} conns): req/s per pair",
            s.scenario.connections
        );
        let file = "http_throughput.svg".to_owned();
        let result = http_bars(s, &dir.join(&file), &title);
        plots.push(Plot {
            file,
            title,
            result,
        });
    }
    if let Some(models) = &results.models {
        plots.extend(super::models_plots::draw(models, dir));
    }
    plots
}

fn err(e: impl std::fmt::Display) -> String {
    e.to_string()
}

/// A line chart over connection count (log x axis).
fn lines(
    path: &Path,
    title: &str,
    y_desc: &str,
    log_y: bool,
    series: &[Series],
    legend: SeriesLabelPosition,
) -> Result<(), String> {
    if series.iter().all(|(_, p)| p.is_empty()) {
        return Err("no data".to_owned());
    }
    let ys = series.iter().flat_map(|(_, p)| p.iter().map(|&(_, y)| y));
    let y_max = ys.clone().fold(0.0f64, f64::max).max(1e-9) * 1.15;
    let y_min = ys.filter(|&y| y > 0.0).fold(f64::INFINITY, f64::min);
    let x_max = series
        .iter()
        .flat_map(|(_, p)| p.iter().map(|&(x, _)| x))
        .fold(1.0f64, f64::max)
        * 1.5;
    let root = SVGBackend::new(path, (900, 560)).into_drawing_area();
    root.fill(&WHITE).map_err(err)?;
    let mut builder = ChartBuilder::on(&root);
    builder
        .caption(title, ("sans-serif", 22))
        .margin(15)
        .x_label_area_size(45)
        .y_label_area_size(80);
    macro_rules! draw_on {
        ($y_range:expr) => {{
            let mut chart = builder
                .build_cartesian_2d((0.8f64..x_max).log_scale(), $y_range)
                .map_err(err)?;
            chart
                .configure_mesh()
                .x_desc("connections (log)")
                .y_desc(y_desc)
                .x_label_formatter(&|x| format!("{x:.0}"))
                .y_label_formatter(&|&y| short_number(y))
                .draw()
                .map_err(err)?;
            for (i, (name, points)) in series.iter().enumerate() {
                let color = Palette99::pick(i).to_rgba();
                chart
                    .draw_series(LineSeries::new(
                        points.iter().copied(),
                        color.stroke_width(2),
                    ))
                    .map_err(err)?
                    .label(name.as_str())
                    .legend(move |(x, y)| {
                        PathElement::new(vec![(x, y), (x + 20, y)], color.stroke_width(2))
                    });
                chart
                    .draw_series(points.iter().map(|&p| Circle::new(p, 4, color.filled())))
                    .map_err(err)?;
            }
            chart
                .configure_series_labels()
                .position(legend)
                .background_style(WHITE.mix(0.85))
                .border_style(BLACK)
                .draw()
                .map_err(err)?;
        }};
    }
    if log_y {
        let lo = if y_min.is_finite() { y_min / 1.5 } else { 1.0 };
        draw_on!((lo..y_max).log_scale());
    } else {
        draw_on!(0f64..y_max);
    }
    root.present().map_err(err)
}

/// `140k`, `2.5k`, `12`, `0.35`: axis labels.
fn short_number(y: f64) -> String {
    let a = y.abs();
    if a >= 1e6 {
        format!("{:.1}M", y / 1e6)
    } else if a >= 1e4 {
        format!("{:.0}k", y / 1e3)
    } else if a >= 1e3 {
        format!("{:.1}k", y / 1e3)
    } else if a >= 10.0 || a == 0.0 {
        format!("{y:.0}")
    } else if a >= 1.0 {
        format!("{y:.1}")
    } else {
        format!("{y:.2}")
    }
}

/// Two bars per herd variant: kernel wakeups and listener reports per connection.
fn herd_bars(results: &Results, path: &Path, title: &str) -> Result<(), String> {
    let bars: Vec<(String, f64, Option<f64>)> = results
        .herd
        .iter()
        .filter_map(|(v, samples)| {
            let h = summary::summarize_herd(samples).ok()?;
            Some((v.name.to_owned(), h.wakeups, h.reports))
        })
        .collect();
    if bars.is_empty() {
        return Err("no herd data".to_owned());
    }
    let n = bars.len();
    let y_max = bars
        .iter()
        .map(|&(_, a, b)| a.max(b.unwrap_or(0.0)))
        .fold(1.2f64, f64::max)
        * 1.15;
    let root = SVGBackend::new(path, (900, 560)).into_drawing_area();
    root.fill(&WHITE).map_err(err)?;
    let mut chart = ChartBuilder::on(&root)
        .caption(title, ("sans-serif", 22))
        .margin(15)
        .x_label_area_size(45)
        .y_label_area_size(70)
        .build_cartesian_2d(-0.5f64..(n as f64 - 0.5), 0f64..y_max)
        .map_err(err)?;
    let names: Vec<String> = bars.iter().map(|(name, _, _)| name.clone()).collect();
    chart
        .configure_mesh()
        .disable_x_mesh()
        .x_labels(n)
        .x_label_formatter(&|x| {
            let i = x.round();
            if (x - i).abs() < 0.01 && i >= 0.0 {
                names.get(i as usize).cloned().unwrap_or_default()
            } else {
                String::new()
            }
        })
        .y_desc("per accepted connection")
        .draw()
        .map_err(err)?;
    let wake = Palette99::pick(0).to_rgba();
    let report = Palette99::pick(1).to_rgba();
    chart
        .draw_series(bars.iter().enumerate().map(|(i, &(_, w, _))| {
            let x = i as f64;
            Rectangle::new([(x - 0.35, 0.0), (x - 0.02, w)], wake.filled())
        }))
        .map_err(err)?
        .label("worker wakeups (kernel)")
        .legend(move |(x, y)| Rectangle::new([(x, y - 5), (x + 15, y + 5)], wake.filled()));
    chart
        .draw_series(bars.iter().enumerate().filter_map(|(i, &(_, _, r))| {
            let x = i as f64;
            Some(Rectangle::new(
                [(x + 0.02, 0.0), (x + 0.35, r?)],
                report.filled(),
            ))
        }))
        .map_err(err)?
        .label("epoll_wait returns reporting the listener")
        .legend(move |(x, y)| Rectangle::new([(x, y - 5), (x + 15, y + 5)], report.filled()));
    chart
        .draw_series(LineSeries::new(
            [(-0.5, 1.05), (n as f64 - 0.5, 1.05)],
            RED.stroke_width(1),
        ))
        .map_err(err)?
        .label("target 1.05 (exclusive modes)")
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

/// Two bars per HTTP stack: epitome's median req/s beside tokio's.
fn http_bars(s: &HttpScenarioResults, path: &Path, title: &str) -> Result<(), String> {
    const SIDES: [(Runtime, &str, f64); 2] = [
        (Runtime::Epitome, "epitome", -0.35),
        (Runtime::Tokio, "tokio", 0.02),
    ];
    // Per stack: its name and each side's rate, in SIDES' order.
    let bars: Vec<(&str, [Option<f64>; 2])> = Stack::ALL
        .iter()
        .map(|&stack| {
            let rate = |runtime| pair_side(s, stack, runtime).map(|m| m.rate);
            (stack.name(), SIDES.map(|(runtime, _, _)| rate(runtime)))
        })
        .filter(|(_, rates)| rates.iter().any(Option::is_some))
        .collect();
    if bars.is_empty() {
        return Err("no HTTP data".to_owned());
    }
    let n = bars.len();
    let y_max = bars
        .iter()
        .flat_map(|(_, rates)| rates.iter().flatten().copied())
        .fold(1.0f64, f64::max)
        * 1.2;
    let root = SVGBackend::new(path, (900, 560)).into_drawing_area();
    root.fill(&WHITE).map_err(err)?;
    let mut chart = ChartBuilder::on(&root)
        .caption(title, ("sans-serif", 22))
        .margin(15)
        .x_label_area_size(45)
        .y_label_area_size(80)
        .build_cartesian_2d(-0.5f64..(n as f64 - 0.5), 0f64..y_max)
        .map_err(err)?;
    let names: Vec<&str> = bars.iter().map(|&(name, _)| name).collect();
    chart
        .configure_mesh()
        .disable_x_mesh()
        .x_labels(n)
        .x_label_formatter(&|x| {
            let i = x.round();
            if (x - i).abs() < 0.01 && i >= 0.0 {
                names
                    .get(i as usize)
                    .map_or(String::new(), |s| (*s).to_owned())
            } else {
                String::new()
            }
        })
        .y_desc("req/s (median)")
        .y_label_formatter(&|&y| short_number(y))
        .draw()
        .map_err(err)?;
    for (side, (_, label, offset)) in SIDES.iter().enumerate() {
        let color = Palette99::pick(side).to_rgba();
        chart
            .draw_series(bars.iter().enumerate().filter_map(|(i, (_, rates))| {
                let x = i as f64 + offset;
                Some(Rectangle::new(
                    [(x, 0.0), (x + 0.33, rates[side]?)],
                    color.filled(),
                ))
            }))
            .map_err(err)?
            .label(*label)
            .legend(move |(x, y)| Rectangle::new([(x, y - 5), (x + 15, y + 5)], color.filled()));
    }
    chart
        .configure_series_labels()
        .position(SeriesLabelPosition::UpperRight)
        .background_style(WHITE.mix(0.85))
        .border_style(BLACK)
        .draw()
        .map_err(err)?;
    root.present().map_err(err)
}
