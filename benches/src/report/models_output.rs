//! The server models section as tables: [`sections`], and the medians the plot uses
//! ([`summarize`]).

use epitome_benches::echo;
use epitome_benches::herd::jain_index;

use super::Budget;
use super::measure::Measured;
use super::models::{
    ArrivalSample, CONNECTIONS, LOAD_CONNECTIONS, MODEL_THREADS, ModelRuns, ModelsResults,
};
use super::summary::{fmt, median, successes, summarize_load};
use super::table::{Section, Table};

/// The seeds' figure for a context switch (`seeds/003_*.txt`).
pub const SEEDS_SWITCH: &str = "3–5 µs";

/// One arrival kind's medians.
#[derive(Clone, Copy, Debug, Default)]
pub struct ArrivalSummary {
    /// Accepted connections per second.
    pub per_second: Option<f64>,
    /// Server wakeups per connection.
    pub wakeups: Option<f64>,
    /// Jain's fairness of live connections across the reactors (`None` with one).
    pub jain: Option<f64>,
    /// p99 connect → first echoed byte, µs.
    pub p99_us: Option<f64>,
}

/// One model's medians.
#[derive(Clone, Copy, Debug, Default)]
pub struct ModelSummary {
    /// One at a time.
    pub one: ArrivalSummary,
    /// In bursts.
    pub burst: ArrivalSummary,
    /// req/s at [`LOAD_CONNECTIONS`].
    pub rate: Option<f64>,
    /// Server CPU (user + system) per request, µs.
    pub cpu_us: Option<f64>,
    /// Server RSS per idle connection, bytes.
    pub rss_per_conn: Option<f64>,
    /// Machine-wide slab per connection (both ends), bytes.
    pub slab_per_conn: Option<f64>,
}

fn arrival(samples: &[Measured<ArrivalSample>], reactors: usize) -> ArrivalSummary {
    let (ok, _) = successes(samples);
    let per = |f: &dyn Fn(&ArrivalSample) -> Option<f64>| {
        median(ok.iter().filter_map(|s| f(s)).collect())
    };
    ArrivalSummary {
        per_second: per(&|s| Some(s.connections as f64 / s.elapsed.as_secs_f64())),
        wakeups: per(&|s| Some(s.wakeups as f64 / s.connections.max(1) as f64)),
        jain: if reactors > 1 {
            per(&|s| jain_index(&s.per_reactor))
        } else {
            None
        },
        p99_us: per(&|s| Some(s.p99_ns as f64 / 1e3)),
    }
}

/// The medians of `row`'s runs.
pub fn summarize(row: &ModelRuns) -> ModelSummary {
    let load = summarize_load(&row.load).ok();
    let (burst, _) = successes(&row.burst);
    let idle: Vec<_> = burst.iter().filter_map(|s| s.idle).collect();
    let per_conn = |kib: &dyn Fn(&super::measure::IdleSample) -> i64| {
        median(
            idle.iter()
                .map(|s| kib(s) as f64 * 1024.0 / s.connections.max(1) as f64)
                .collect(),
        )
    };
    ModelSummary {
        one: arrival(&row.one, row.model.reactors),
        burst: arrival(&row.burst, row.model.reactors),
        rate: load.as_ref().map(|l| l.rate),
        cpu_us: load.as_ref().map(|l| l.total_us),
        rss_per_conn: per_conn(&|s| s.rss_delta_kib),
        slab_per_conn: per_conn(&|s| s.slab_delta_kib),
    }
}

/// The section's tables.
pub fn sections(results: &ModelsResults, budget: &Budget) -> Vec<Section> {
    let runs = budget.runs;
    vec![
        accept_section(results, budget),
        memory_section(results, runs),
        switch_section(results),
    ]
}

fn name(row: &ModelRuns) -> String {
    let c = row.model.contender;
    match row.model.seed {
        Some(seed) => format!("{} (seed: {seed})", c.name),
        None => c.name.to_owned(),
    }
}

fn threads(row: &ModelRuns) -> String {
    match (row.model.contender.name, row.model.threads) {
        ("epitome-pool", Some(n)) => format!("1 + pool ≤{n}"),
        ("tokio-mt", Some(n)) => format!("{n} workers, 1 epoll"),
        (_, Some(n)) => format!("{n} reactors"),
        (_, None) => "1".to_owned(),
    }
}

fn failures(rows: &[ModelRuns]) -> Vec<String> {
    let mut notes = Vec::new();
    for row in rows {
        for (what, err) in [
            ("one at a time", successes(&row.one).1),
            ("burst", successes(&row.burst).1),
            ("load", successes(&row.load).1),
        ] {
            if let Some(err) = err {
                notes.push(format!(
                    "{} ({what}): a run failed: {err}",
                    row.model.contender.name
                ));
            }
        }
    }
    notes
}

fn accept_section(results: &ModelsResults, budget: &Budget) -> Section {
    let runs = budget.runs;
    let mut table = Table::new(&[
        "model",
        "threads",
        "conn/s 1-by-1",
        "conn/s burst",
        "wakeups/conn 1-by-1",
        "wakeups/conn burst",
        "Jain 1-by-1",
        "Jain burst",
        "p99 conn→echo µs 1-by-1",
        "p99 µs burst",
        "req/s @1k",
        "CPU µs/req @1k",
    ])
    .left_aligned(2);
    for row in &results.rows {
        let m = summarize(row);
        let jain =
            |j: Option<f64>| j.map_or_else(|| "— (1 reactor)".to_owned(), |j| format!("{j:.3}"));
        table.row(vec![
            name(row),
            threads(row),
            fmt(m.one.per_second, 0),
            fmt(m.burst.per_second, 0),
            fmt(m.one.wakeups, 2),
            fmt(m.burst.wakeups, 2),
            jain(m.one.jain),
            jain(m.burst.jain),
            fmt(m.one.p99_us, 0),
            fmt(m.burst.p99_us, 0),
            fmt(m.rate, 0),
            fmt(m.cpu_us, 2),
        ]);
    }
    let mut notes = failures(&results.rows);
    notes.push(format!(
        "every server is pinned to CPU 0 and the client to CPU 1; multi-threaded models get \
         {MODEL_THREADS} threads (the issue's 8 reactors), tokio-mt {MODEL_THREADS} workers; \
         {} connections opened one at a time and {CONNECTIONS} in bursts (a fresh server \
         each), each with one checked 64 B round trip; a burst is {} connections opened back to \
         back before their echoes are read, so its p99 includes the wait for the rest of the \
         burst",
        budget.models_one_by_one,
        epitome_benches::client::herd::BURST
    ));
    notes.push(
        "conn/s: connections ÷ the time to open them all, round trips included (the client's \
         pace one at a time); wakeups/conn: voluntary context switches of every server thread \
         ÷ connections (so the pool's and the main/sub hand-off's wakeups count); Jain: \
         fairness of live connections across the reactors, from the sockets registered in each \
         epoll instance (/proc/PID/fdinfo, listeners left out), 1.0 even, 0.125 all on one of 8"
            .to_owned(),
    );
    notes.push(format!(
        "req/s and CPU µs/req (utime + stime ÷ requests): closed loop, {LOAD_CONNECTIONS} \
         connections × 64 B, {runs} run(s) interleaved, medians"
    ));
    Section {
        title: format!("server models: accepting, fairness and load (median of {runs} runs)"),
        table,
        notes,
    }
}

fn memory_section(results: &ModelsResults, runs: usize) -> Section {
    let mut table = Table::new(&["model", "RSS B/conn", "slab B/conn (both ends)"]);
    for row in &results.rows {
        let m = summarize(row);
        table.row(vec![
            name(row),
            fmt(m.rss_per_conn, 0),
            fmt(m.slab_per_conn, 0),
        ]);
    }
    let mut notes = vec![format!(
        "{CONNECTIONS} idle connections (the burst run's, each after one round trip): server \
         RSS after − before ÷ connections; slab: machine-wide /proc/meminfo Slab, both ends of \
         each connection; median of {runs} run(s)"
    )];
    notes.push(format!(
        "the serve models and epitome-pool read readiness-first (serve::read_pooled: no \
         buffer while idle); epitome-ct and tokio-mt (tokio's idiomatic server) hold a {} KiB \
         buffer per connection, touched only as far as the 64 B message reached",
        echo::READ_BUF / 1024
    ));
    notes.push(format!(
        "the runtime's own bytes per connection, as far as they can be seen from outside the \
         runtime: the connection's future (echo_pooled) is {} B as the compiler lays it out \
         (the task adds its header and the serve wrapper around it); the kernel's objects per \
         registered socket: {}; the rest of the RSS per connection is the task header, the \
         source's readiness state, the user-space eventpoll item and tree node and the \
         allocator's rounding, which the runtime does not expose one by one",
        results.handler_future,
        match &results.kernel_objects {
            Ok(objects) => objects
                .iter()
                .map(|(name, size)| format!("{name} {size} B"))
                .collect::<Vec<_>>()
                .join(", "),
            Err(why) => format!("n/a ({why})"),
        }
    ));
    Section {
        title: format!("server models: memory per idle connection ({CONNECTIONS} connections)"),
        table,
        notes,
    }
}

fn switch_section(results: &ModelsResults) -> Section {
    let mut table = Table::new(&[
        "context switch",
        "µs/switch",
        "with pipe syscalls",
        "seeds' notes",
    ]);
    let mut notes = Vec::new();
    match &results.switch {
        Ok(s) => {
            table.row(vec![
                "between two threads".to_owned(),
                format!("{:.2}", s.threads_us),
                format!("{:.2}", s.threads_raw_us),
                SEEDS_SWITCH.to_owned(),
            ]);
            table.row(vec![
                "between two processes".to_owned(),
                format!("{:.2}", s.processes_us),
                format!("{:.2}", s.processes_raw_us),
                SEEDS_SWITCH.to_owned(),
            ]);
            notes.push(format!(
                "both parties pinned to CPU 0, a byte passed back and forth over two pipes, \
                 {} round trips per measurement, median of {}; µs/switch = (round trip − 2 × \
                 one non-blocking write + read, {:.2} µs) ÷ 2; the second column keeps the \
                 pipe syscalls in (round trip ÷ 2)",
                s.round_trips, s.repeats, s.pipe_us
            ));
        }
        Err(why) => notes.push(format!("n/a: {why}")),
    }
    notes.push(
        "the seeds price a blocking thread-per-connection server by this cost; a wakeup in the \
         tables above is one such switch, besides the kernel's socket work"
            .to_owned(),
    );
    Section {
        title: "the seeds' cost of a blocking wait: one context switch on one CPU".to_owned(),
        table,
        notes,
    }
}
