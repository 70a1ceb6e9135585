//! The printed report and `REPORT.md`: one titled [`Table`] per scenario, figure
//! and target, with notes under each, written from the same sections to both.

use std::fmt::Write as _;
use std::time::Duration;

use epitome_benches::echo::{self, Contender, Family};
use epitome_benches::herd;
use epitome_benches::machine::Machine;

use super::measure::{Interference, Measured, Setup, USER_SAMPLE_PERIOD_NS};
use super::plots::Plot;
use super::summary::{
    fmt, interference_note, summarize_herd, summarize_idle, summarize_latency, summarize_load,
    tick_us,
};
use super::table::{Section, Table};
use super::{LOAD_PERCENTS, Results, ScenarioResults};

/// Everything needed to print and write the report.
pub struct Report<'a> {
    /// Where it ran.
    pub machine: &'a Machine,
    /// How.
    pub setup: &'a Setup,
    /// What was measured.
    pub results: &'a Results,
    /// Caveats found while running (pinning, limits, perf).
    pub notes: &'a [String],
    /// Wall time of the measurements.
    pub wall: Duration,
}

/// A contender's name, marked when it is not a runtime.
pub(super) fn contender_label(c: &Contender) -> String {
    match c.family {
        Family::EventPollApi { .. } => format!("{} (EventPoll API, no runtime)", c.name),
        _ => c.name.to_owned(),
    }
}

/// How the multi-threaded contenders are set up, said under every load table.
fn like_for_like() -> String {
    format!(
        "like for like: {} each run {} worker threads (--threads {}), all on the server CPU",
        echo::MULTI_THREADED.join(" and "),
        echo::LIKE_FOR_LIKE_THREADS,
        echo::LIKE_FOR_LIKE_THREADS
    )
}

impl Report<'_> {
    fn load_section(&self, s: &ScenarioResults) -> Section {
        let mut table = Table::new(&[
            "contender",
            "req/s",
            "range",
            "user µs/req",
            "/proc user µs/req",
            "total µs/req",
            "syscalls/req",
            "ctx sw/req",
            "p50 µs",
            "p99 µs",
            "threads",
        ]);
        let mut notes = Vec::new();
        let mut reasons: Vec<String> = Vec::new();
        let mut ticks = Vec::new();
        let mut slowdowns = Vec::new();
        for (c, samples) in &s.load {
            let name = contender_label(c);
            match summarize_load(samples) {
                Ok(m) => {
                    let runs = if m.ok_runs.0 < m.ok_runs.1 {
                        format!(" ({}/{} runs)", m.ok_runs.0, m.ok_runs.1)
                    } else {
                        String::new()
                    };
                    if let Some(f) = &m.failure {
                        notes.push(format!("{}: a run failed: {f}", c.name));
                    }
                    let mut na = |figure: &Measured<f64>, decimals: usize| match figure {
                        Ok(v) => format!("{v:.decimals$}"),
                        Err(why) => {
                            if !reasons.contains(why) {
                                reasons.push(why.clone());
                            }
                            "n/a".to_owned()
                        }
                    };
                    let sampled = na(&m.user_sampled_us, 3);
                    let syscalls = na(&m.syscalls, 2);
                    ticks.push(m.user_ticks);
                    if let Some(r) = m.perf_slowdown {
                        slowdowns.push(r);
                    }
                    table.row(vec![
                        name + &runs,
                        format!("{:.0}", m.rate),
                        format!("{:.0}k–{:.0}k", m.rate_range.0 / 1e3, m.rate_range.1 / 1e3),
                        sampled,
                        format!("{:.3} ({:.0}t)", m.user_us, m.user_ticks),
                        format!("{:.2}", m.total_us),
                        syscalls,
                        format!("{:.3}", m.switches),
                        format!("{:.0}", m.p50_us),
                        format!("{:.0}", m.p99_us),
                        format!("{:.0}", m.threads),
                    ]);
                }
                Err(why) => {
                    notes.push(format!("{}: every run failed: {why}", c.name));
                    table.row(vec![
                        name,
                        "n/a".into(),
                        String::new(),
                        "n/a".into(),
                        "n/a".into(),
                        "n/a".into(),
                        "n/a".into(),
                        "n/a".into(),
                        "n/a".into(),
                        "n/a".into(),
                        String::new(),
                    ]);
                }
            }
        }
        for why in reasons {
            notes.push(format!("user µs/req (perf) and syscalls/req n/a: {why}"));
        }
        notes.push(like_for_like());
        if let Some(lo) = ticks.iter().copied().reduce(f64::min) {
            let hi = ticks.iter().copied().fold(lo, f64::max);
            notes.push(format!(
                "/proc user µs/req: utime over the window; the median run counted {lo:.0}–{hi:.0} \
                 ticks (t) of {:.0} ms, split from system time by the kernel's 250 Hz tick \
                 sampling, too coarse for small user shares; user µs/req is perf's user-mode \
                 cpu-clock samples (one per {} µs of server CPU) in the sampling window",
                tick_us() / 1e3,
                USER_SAMPLE_PERIOD_NS / 1000
            ));
        }
        if !slowdowns.is_empty() {
            let range = |v: Vec<f64>| {
                let lo = v.iter().copied().fold(f64::INFINITY, f64::min);
                let hi = v.iter().copied().fold(0.0, f64::max);
                format!("{:.0}–{:.0}%", lo * 100.0, hi * 100.0)
            };
            notes.push(format!(
                "throughput relative to the main window (per contender, median run): {} while \
                 perf counted syscalls (the traced syscall path slows the client too), {} while \
                 perf sampled user time",
                range(slowdowns.iter().map(|s: &(f64, f64)| s.0).collect()),
                range(slowdowns.iter().map(|s| s.1).collect()),
            ));
        }
        let others: Vec<&Interference> = s
            .load
            .iter()
            .flat_map(|(_, samples)| samples.iter().flatten())
            .filter_map(|l| l.interference.as_ref().ok())
            .collect();
        notes.extend(interference_note(&others, s.repeated));
        if let Some((peak, from)) = &s.tokio_peak {
            if s.scenario.open_loop {
                notes.push(format!("tokio's peak here: {peak:.0} req/s ({from})"));
            }
        }
        Section {
            title: format!(
                "{}: closed loop ({} ms window per run, median of {} runs)",
                s.scenario.label(),
                s.scenario.window.as_millis(),
                self.setup.budget.runs
            ),
            table,
            notes,
        }
    }

    fn latency_section(&self, s: &ScenarioResults) -> Option<Section> {
        if s.latency.is_empty() {
            return None;
        }
        let mut table = Table::new(&[
            "contender",
            "load",
            "offered req/s",
            "achieved req/s",
            "p50 µs",
            "p99 µs",
            "p99.9 µs",
            "incomplete",
        ]);
        let mut notes = Vec::new();
        for (c, samples) in &s.latency {
            for percent in LOAD_PERCENTS {
                match summarize_latency(samples, percent) {
                    Ok(l) => table.row(vec![
                        contender_label(c),
                        format!("{percent}%"),
                        format!("{:.0}", l.rate),
                        format!("{:.0}", l.achieved),
                        format!("{:.1}", l.p50_us),
                        format!("{:.1}", l.p99_us),
                        format!("{:.1}", l.p999_us),
                        format!("{:.0}", l.incomplete),
                    ]),
                    Err(why) => {
                        notes.push(format!("{} at {percent}%: n/a: {why}", c.name));
                        table.row(vec![
                            contender_label(c),
                            format!("{percent}%"),
                            "n/a".into(),
                            "n/a".into(),
                            "n/a".into(),
                            "n/a".into(),
                            "n/a".into(),
                            String::new(),
                        ]);
                    }
                }
            }
        }
        let others: Vec<&Interference> = s
            .latency
            .iter()
            .flat_map(|(_, runs)| runs.iter().flatten().flatten())
            .filter_map(|o| o.interference.as_ref().ok())
            .collect();
        notes.extend(interference_note(&others, 0));
        notes.push(
            "latency from each request's intended send time (coordinated omission corrected); \
             `incomplete`: requests of the window unanswered 1 s after it (recorded as a lower bound)"
                .to_owned(),
        );
        Some(Section {
            title: format!(
                "{}: open loop at {} of tokio's peak ({} ms window per rate, median of {} runs)",
                s.scenario.label(),
                LOAD_PERCENTS.map(|p| format!("{p}%")).join(" and "),
                self.setup.budget.open_window.as_millis(),
                self.setup.budget.runs
            ),
            table,
            notes,
        })
    }

    fn idle_section(&self) -> Section {
        let mut table = Table::new(&[
            "contender",
            "RSS / idle conn (B)",
            "slab / conn, both ends (B)",
            "server threads",
        ]);
        let mut notes = Vec::new();
        for (c, samples) in &self.results.idle {
            match summarize_idle(samples) {
                Ok(m) => table.row(vec![
                    contender_label(c),
                    format!("{:.0}", m.rss_per_conn),
                    format!("{:.0}", m.slab_per_conn),
                    format!("{:.0}", m.threads),
                ]),
                Err(why) => {
                    notes.push(format!("{}: n/a: {why}", c.name));
                    table.row(vec![
                        contender_label(c),
                        "n/a".into(),
                        "n/a".into(),
                        String::new(),
                    ]);
                }
            }
        }
        notes.push(format!(
            "{} connections to a fresh server, each after one 64 B round trip; RSS is the server's \
             VmRSS delta; slab is the machine-wide `Slab:` delta of /proc/meminfo, so it holds \
             both ends' sockets (client and server run on this machine) and any other activity",
            echo::IDLE_CONNECTIONS
        ));
        notes.push(format!(
            "RLIMIT_NOFILE is 20,000 and cannot be raised here, so the {} connections are split: \
             the server process holds their server ends, this client process their client ends",
            echo::IDLE_CONNECTIONS
        ));
        Section {
            title: format!(
                "memory per idle connection ({} connections, median of {} runs)",
                echo::IDLE_CONNECTIONS,
                self.setup.budget.runs
            ),
            table,
            notes,
        }
    }

    fn herd_section(&self) -> Section {
        let mut table = Table::new(&[
            "variant",
            "wakeups/conn",
            "listener reports/conn",
            "EAGAIN/conn",
            "Jain",
            "per worker min–max",
            "p50 µs",
            "p99 µs",
        ]);
        let mut notes = Vec::new();
        for (v, samples) in &self.results.herd {
            match summarize_herd(samples) {
                Ok(h) => table.row(vec![
                    format!("{} ({})", v.name, v.about),
                    format!("{:.2}", h.wakeups),
                    fmt(h.reports, 3),
                    fmt(h.eagain, 3),
                    format!("{:.3}", h.jain),
                    format!("{:.0}–{:.0}", h.spread.0, h.spread.1),
                    format!("{:.0}", h.p50_us),
                    format!("{:.0}", h.p99_us),
                ]),
                Err(why) => {
                    notes.push(format!("{}: n/a: {why}", v.name));
                    table.row(vec![format!("{} ({})", v.name, v.about), "n/a".into()]);
                }
            }
        }
        if !herd::VARIANTS.iter().any(|v| v.epitome) {
            notes.push("epitome multi-reactor: not yet added (PENDING)".to_owned());
        }
        notes.push(format!(
            "{} workers on CPU 0, {} connections opened one at a time, each writing 64 B; \
             wakeups/conn: the workers' voluntary context switches (each is one block, so one \
             wakeup, seen by the kernel even when epoll_wait goes back to sleep without \
             returning) per accepted connection, including the wakeup for the connection's \
             first message when it arrives after the accept; listener reports/conn: epoll_wait \
             returns that reported the listener; EAGAIN/conn: accepts that lost the race; p50/p99: \
             connect to first echoed byte",
            herd::WORKERS,
            herd::CONNECTIONS
        ));
        Section {
            title: format!(
                "thundering herd ({} workers, {} connections, median of {} runs)",
                herd::WORKERS,
                herd::CONNECTIONS,
                self.setup.budget.runs
            ),
            table,
            notes,
        }
    }

    /// Closed- and open-loop windows kept that other work disturbed, and all kept.
    pub(super) fn disturbed_windows(&self) -> (usize, usize) {
        let mut all: Vec<&Interference> = Vec::new();
        for s in &self.results.scenarios {
            let load = s.load.iter().flat_map(|(_, runs)| runs.iter().flatten());
            all.extend(load.filter_map(|l| l.interference.as_ref().ok()));
            let open = s
                .latency
                .iter()
                .flat_map(|(_, runs)| runs.iter().flatten().flatten());
            all.extend(open.filter_map(|o| o.interference.as_ref().ok()));
        }
        (all.iter().filter(|i| i.disturbed()).count(), all.len())
    }

    /// Whether the echo phases ran (`--only` may leave them out).
    fn echo_ran(&self) -> bool {
        let r = self.results;
        !(r.scenarios.is_empty() && r.idle.is_empty() && r.herd.is_empty())
    }

    fn sections(&self) -> Vec<Section> {
        let mut sections = Vec::new();
        if self.echo_ran() {
            sections.push(self.targets_section());
            for s in &self.results.scenarios {
                sections.push(self.load_section(s));
                if let Some(l) = self.latency_section(s) {
                    sections.push(l);
                }
            }
            sections.push(self.idle_section());
            sections.push(self.herd_section());
        }
        sections.extend(self.http_sections());
        if let Some(models) = &self.results.models {
            sections.extend(super::models_output::sections(models, &self.setup.budget));
        }
        sections
    }

    fn method(&self) -> Vec<String> {
        let b = &self.setup.budget;
        let http_ran = matches!(self.results.http.as_ref().map(|h| &h.wrk), Some(Ok(_)));
        let pin = match self.setup.server_cpu {
            Some(cpu) => format!(
                "each server is its own process pinned to CPU {cpu}; the client (this process, \
                 one thread, epoll{}) is pinned to CPU {}",
                if http_ran {
                    "; wrk in the HTTP scenario"
                } else {
                    ""
                },
                super::CLIENT_CPU
            ),
            None => "client and server are not pinned apart (one CPU)".to_owned(),
        };
        let mut method = vec![
            pin,
            format!(
                "contenders interleaved run by run (A B C … A B C …), {} runs each, a fresh \
                 server per run, the median reported",
                b.runs
            ),
        ];
        if http_ran {
            method.push(
                "HTTP: each HTTP contender loaded by wrk (closed loop; its percentiles are not \
                 corrected for coordinated omission) after a warm-up that checks every answer; \
                 details under the HTTP tables"
                    .to_owned(),
            );
        }
        if !self.echo_ran() {
            return method;
        }
        method.extend([
            format!(
                "closed loop: every connection keeps one message in flight; {} ms warm-up, then \
                 the measured window; server CPU from /proc/PID/stat utime/stime, context \
                 switches summed over /proc/PID/task/*/status",
                b.warmup.as_millis()
            ),
            "syscalls and user CPU: two more closed-loop windows after the main one (where \
             scenarios measure them), each as long as the perf window: one with \
             `perf stat -e raw_syscalls:sys_enter -p PID` counting the server's syscalls, then \
             one with `perf record -e cpu-clock:u -c 100000 -p PID` sampling its user time (a \
             sample per 100 µs of server CPU, kept when it lands in user mode); perf is \
             switched on and off through its control FIFO so only the window is counted. \
             Throughput, total CPU and context switches come from the main window, without \
             perf. /proc utime is shown too, but the kernel splits user from system time by \
             sampling at its 250 Hz tick, which resolves a 0.1 µs user share only over tens of \
             seconds"
                .to_owned(),
            format!(
                "open loop: constant rate at {} of tokio's peak, a request due every 1/rate \
                 seconds on the first idle connection, latency from its intended send time \
                 (coordinated omission corrected, as wrk2), HdrHistogram; {} ms warm-up and {} ms \
                 window per rate",
                LOAD_PERCENTS.map(|p| format!("{p}%")).join(" and "),
                b.open_warmup.as_millis(),
                b.open_window.as_millis()
            ),
            format!(
                "every server sets TCP_NODELAY, reads into {} KiB and waits for up to {} events; \
                 tokio contenders are built as tokio's docs recommend (builder + enable_all, a \
                 task per connection, read / write_all)",
                echo::READ_BUF / 1024,
                echo::EVENTS
            ),
            like_for_like(),
            "the echo client closes its connections with a reset (SO_LINGER 0), so no \
             TIME_WAIT sockets pile up between runs"
                .to_owned(),
        ]);
        method
    }

    /// The printed report.
    pub fn text(&self) -> String {
        let mut out = String::new();
        for section in self.sections() {
            let _ = writeln!(out, "{}:", section.title);
            if !section.table.is_empty() {
                out.push_str(&section.table.text());
            }
            for note in &section.notes {
                let _ = writeln!(out, "  note: {note}");
            }
            out.push('\n');
        }
        for note in self.notes {
            let _ = writeln!(out, "note: {note}");
        }
        let _ = writeln!(
            out,
            "measured in {:.1} s ({})",
            self.wall.as_secs_f64(),
            if self.setup.budget.full {
                "--full"
            } else {
                "quick"
            }
        );
        out
    }

    /// `REPORT.md`.
    pub fn markdown(&self, plots: &[Plot]) -> String {
        let m = self.machine;
        let mut out = String::from("# epitome: echo and HTTP servers side by side\n\n");
        let _ = writeln!(out, "- date: {}", m.date);
        let _ = writeln!(out, "- CPU: {} ({} CPUs)", m.cpu_model, m.cpus);
        let _ = writeln!(out, "- kernel: {}", m.kernel);
        let _ = writeln!(out, "- rustc: {}", m.rustc);
        if let Some(Ok(wrk)) = self.results.http.as_ref().map(|h| &h.wrk) {
            let _ = writeln!(out, "- wrk: {}", wrk.version);
        }
        let _ = writeln!(
            out,
            "- mode: {} ({} runs per contender), measured in {:.0} s",
            if self.setup.budget.full {
                "--full"
            } else {
                "quick"
            },
            self.setup.budget.runs,
            self.wall.as_secs_f64()
        );
        let _ = writeln!(
            out,
            "- command: `cargo run --release -p epitome-benches -- report{}`",
            if self.setup.budget.full {
                " --full"
            } else {
                ""
            }
        );
        out.push_str("\n## Method\n\n");
        for line in self.method() {
            let _ = writeln!(out, "- {line}");
        }
        for note in self.notes {
            let _ = writeln!(out, "- note: {note}");
        }
        out.push('\n');
        for section in self.sections() {
            let _ = writeln!(out, "## {}\n", section.title);
            if !section.table.is_empty() {
                out.push_str(&section.table.markdown());
                out.push('\n');
            }
            for note in &section.notes {
                let _ = writeln!(out, "- {note}");
            }
            if !section.notes.is_empty() {
                out.push('\n');
            }
        }
        out.push_str("## Plots\n\n");
        for plot in plots {
            match &plot.result {
                Ok(()) => {
                    let _ = writeln!(
                        out,
                        "### {}\n\n![{}]({})\n",
                        plot.title, plot.title, plot.file
                    );
                }
                Err(e) => {
                    let _ = writeln!(out, "### {}\n\nnot drawn: {e}\n", plot.title);
                }
            }
        }
        out
    }
}
