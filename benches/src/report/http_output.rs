//! The HTTP scenario's tables in the report: one per scenario, then the epitome / tokio
//! ratios (the collection and the figures are in `http.rs`).

use epitome_benches::http::wrk::Wrk;
use epitome_benches::http::{self, HttpContender, Runtime, Stack};

use super::CLIENT_CPU;
use super::http::{HttpResults, HttpScenarioResults, HttpSummary, pair_side, summarize};
use super::measure::Interference;
use super::output::Report;
use super::summary::{fmt, interference_note, tick_us};
use super::table::Section;
use super::table::Table;

impl Report<'_> {
    /// The HTTP tables: one per scenario, then the epitome / tokio ratios.
    pub(super) fn http_sections(&self) -> Vec<Section> {
        let Some(results) = &self.results.http else {
            return Vec::new();
        };
        let wrk = match &results.wrk {
            Ok(wrk) => wrk,
            Err(why) => {
                return vec![Section {
                    title: "HTTP hello (wrk)".to_owned(),
                    table: Table::new(&["contender"]),
                    notes: vec![format!("skipped: {why}")],
                }];
            }
        };
        let mut sections: Vec<Section> = results
            .scenarios
            .iter()
            .map(|s| self.http_section(wrk, s))
            .collect();
        sections.push(self.http_ratio_section(results));
        sections
    }

    fn http_section(&self, wrk: &Wrk, s: &HttpScenarioResults) -> Section {
        let mut table = Table::new(&[
            "contender",
            "req/s",
            "range",
            "p50 µs",
            "p99 µs",
            "CPU µs/req",
            "user µs/req",
            "socket errors",
        ]);
        let mut notes = Vec::new();
        if let Some(why) = &s.skipped {
            notes.push(format!("skipped: {why}"));
        }
        for (c, samples) in &s.runs {
            match summarize(samples) {
                Ok(m) => {
                    let runs = if m.ok_runs.0 < m.ok_runs.1 {
                        format!(" ({}/{} runs)", m.ok_runs.0, m.ok_runs.1)
                    } else {
                        String::new()
                    };
                    if let Some(f) = &m.failure {
                        notes.push(format!("{}: a run failed: {f}", c.name));
                    }
                    table.row(vec![
                        format!("{}{runs}", c.name),
                        format!("{:.0}", m.rate),
                        format!("{:.1}k–{:.1}k", m.rate_range.0 / 1e3, m.rate_range.1 / 1e3),
                        format!("{:.0}", m.p50_us),
                        format!("{:.0}", m.p99_us),
                        format!("{:.2}", m.cpu_us),
                        format!("{:.2}", m.user_us),
                        format!("{:.0}", m.socket_errors),
                    ]);
                }
                Err(why) => {
                    if s.skipped.is_none() {
                        notes.push(format!("{}: every run failed: {why}", c.name));
                    }
                    let mut row = vec![c.name.to_owned()];
                    row.extend(std::iter::repeat_n("n/a".to_owned(), 7));
                    table.row(row);
                }
            }
        }
        if s.skipped.is_none() {
            notes.push(format!(
                "{}, `-t{} -c{} -d{}s --latency`, pinned to CPU {CLIENT_CPU}; wrk is closed \
                 loop (each connection sends its next request when the last response is in) \
                 and its percentiles are not corrected for coordinated omission: they are \
                 latencies under full load, to compare side by side only (the echo tables' \
                 open-loop figures are corrected)",
                wrk.version,
                http::wrk::THREADS,
                s.scenario.connections,
                s.scenario.seconds
            ));
            notes.push(format!(
                "each run: a fresh single-threaded server pinned like the echo servers, a {} ms \
                 warm-up over {} keep-alive connection(s) with every answer checked, then wrk; \
                 CPU µs/req: the server's utime + stime over the whole wrk run ÷ requests \
                 (user µs/req: utime alone, split from system time by the kernel's tick, \
                 {:.0} ms a tick)",
                self.setup.budget.warmup.as_millis(),
                s.scenario.connections,
                tick_us() / 1e3
            ));
            notes.push(
                "the pairs run the same code on each runtime; axum-tokio is `axum::serve`, \
                 which sets no hyper timer, so axum-epitome sets none either (hyper's \
                 header-read timeout stays off); the hyper pair arms hyper's header-read \
                 timer at every request, on each runtime's timer"
                    .to_owned(),
            );
            let others: Vec<&Interference> = s
                .runs
                .iter()
                .flat_map(|(_, samples)| samples.iter().flatten())
                .filter_map(|h| h.interference.as_ref().ok())
                .collect();
            notes.extend(interference_note(&others, s.repeated));
        }
        Section {
            title: format!(
                "{}: {} s wrk window per run, median of {} runs",
                s.scenario.label(),
                s.scenario.seconds,
                self.setup.budget.runs
            ),
            table,
            notes,
        }
    }

    fn http_ratio_section(&self, results: &HttpResults) -> Section {
        let mut table = Table::new(&[
            "pair",
            "conns",
            "req/s epitome / tokio",
            "p99 epitome / tokio",
            "CPU/req epitome / tokio",
        ]);
        for s in results.scenarios.iter().filter(|s| s.skipped.is_none()) {
            for stack in Stack::ALL {
                let (Some(e), Some(t)) = (
                    http::contender(stack, Runtime::Epitome),
                    http::contender(stack, Runtime::Tokio),
                ) else {
                    continue;
                };
                let present = |c: &HttpContender| s.runs.iter().any(|(r, _)| r.name == c.name);
                if !present(e) && !present(t) {
                    continue;
                }
                let (a, b) = (
                    pair_side(s, stack, Runtime::Epitome),
                    pair_side(s, stack, Runtime::Tokio),
                );
                let ratio = |f: &dyn Fn(&HttpSummary) -> f64| {
                    let r = fmt(a.as_ref().zip(b.as_ref()).map(|(a, b)| f(a) / f(b)), 2);
                    if r == "n/a" { r } else { format!("{r}×") }
                };
                table.row(vec![
                    format!("{} ({} / {})", stack.name(), e.name, t.name),
                    s.scenario.connections.to_string(),
                    ratio(&|m| m.rate),
                    ratio(&|m| m.p99_us),
                    ratio(&|m| m.cpu_us),
                ]);
            }
        }
        Section {
            title: "HTTP hello (wrk): epitome / tokio, per pair (medians)".to_owned(),
            table: table.left_aligned(1),
            notes: vec![
                "req/s above 1× means epitome serves more; p99 and CPU/req below 1× mean \
                 epitome is faster or cheaper; n/a where a side has no successful run"
                    .to_owned(),
            ],
        }
    }
}
