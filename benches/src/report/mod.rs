//! `report`: every contender side by side, and the evidence written down.
//!
//! # Method (BENCHMARKING.md)
//!
//! - This process is the load client; it pins itself to CPU 1. Every server is a
//!   child process (`epitome-benches server <contender>`), pinned to CPU 0 before it
//!   starts a thread; so the client's and the server's fds are in different
//!   processes, which is what lets 10,000 connections fit under an `RLIMIT_NOFILE`
//!   of 20,000.
//! - Contenders are interleaved: in each scenario, run 1 of every contender, then
//!   run 2 of every contender, and so on (A B C ... A B C ...). Each run starts a
//!   fresh server, opens its connections (each makes one checked round trip), warms
//!   up, then measures. Tables give the median of the runs.
//! - Closed loop (throughput, CPU, context switches, closed-loop latency): one
//!   window; then a second window with `perf stat` switched on for the syscall count
//!   (kept apart because counting a tracepoint slows every syscall).
//! - Open loop (latency percentiles): after all closed-loop runs of a scenario,
//!   the rate is set to 50% and 80% of tokio's peak (the faster tokio contender's
//!   median throughput in that scenario), and latency is measured from each
//!   request's intended send time (coordinated omission corrected, as wrk2 does).
//! - Idle memory: 10,000 connections opened to a fresh server, each with one round
//!   trip; server RSS and machine-wide slab before and after.
//! - Herd: [`herd::VARIANTS`], 8 workers, 10,000 connections opened one at a time.
//! - HTTP hello (wrk): every HTTP contender ([`epitome_benches::http`]) loaded by
//!   `wrk`, pinned to the client CPU (see [`http`]).
//! - Server models: the seeds' three reactor models, every accept strategy of
//!   `epitome::net::serve` and tokio's idiomatic server, side by side (arrivals one at
//!   a time and in bursts, idle memory, load at 1,000 connections), and the cost of
//!   a context switch (see [`models`] and [`ctxsw`]).
//! - Multi-threaded contenders (`epitome-mr`, `tokio-mt`) get the same number of
//!   worker threads, [`echo::LIKE_FOR_LIKE_THREADS`], on the server CPU.
//!
//! `--full` runs every scenario (every connection count and message size, each
//! with every figure); the quick default runs the scenarios the targets and plots
//! need and finishes within about five minutes on a quiet VM (the server models
//! section takes two of them). `--only` picks contenders by name
//! (echo or HTTP) or by group (`echo`: the echo contenders, with idle memory and the
//! herd; `http`: the HTTP contenders; `models`: the server models section); a group
//! none of whose contenders is picked is not run.

/// `print!` and flush, for progress shown while a phase runs.
macro_rules! show {
    ($($arg:tt)*) => {{
        print!($($arg)*);
        let _ = std::io::Write::flush(&mut std::io::stdout());
    }};
}

pub mod ctxsw;
mod figure;
mod http;
mod http_output;
pub mod instructions;
mod measure;
mod models;
mod models_output;
mod models_plots;
mod output;
mod plots;
mod process;
mod summary;
mod table;
mod targets;

use std::cell::Cell;
use std::io;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::{Duration, Instant};

use epitome_benches::echo::{self, Contender};
use epitome_benches::herd::{self, HerdVariant};
use epitome_benches::http::HttpContender;
use epitome_benches::machine::{self, Machine};

use measure::{HerdSample, IdleSample, LoadSample, Measured, OpenSample, Setup};

/// The usage line for this command.
pub const USAGE: &str =
    "report [--full] [--runs N] [--only a,b,..|echo|http|models] [--out DIR] [--plan]";

/// The CPU servers are pinned to.
const SERVER_CPU: usize = 0;
/// The CPU the client (this process) is pinned to.
const CLIENT_CPU: usize = 1;
/// Runs per contender per scenario, the least BENCHMARKING.md allows.
const MIN_RUNS: usize = 3;
/// Offered open-loop load, percent of tokio's peak.
const LOAD_PERCENTS: [u32; 2] = [50, 80];
/// A CPU busier than this before the start means other work is running.
const BUSY: f64 = 0.10;
/// fds this process holds at most: the idle and herd connections, and spare.
const NOFILE_WANTED: u64 = (echo::IDLE_CONNECTIONS + 1_000) as u64;

/// One load scenario.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Scenario {
    /// Connections.
    pub connections: usize,
    /// Message size, bytes.
    pub size: usize,
    /// The closed-loop measuring window.
    pub window: Duration,
    /// The perf window for syscalls, if they are counted in this scenario.
    pub perf_window: Option<Duration>,
    /// Whether open-loop latency is measured.
    pub open_loop: bool,
}

impl Scenario {
    /// Whether this is the scenario the targets are judged on.
    pub fn is_main(&self) -> bool {
        self.connections == echo::MAIN_CONNECTIONS && self.size == echo::MAIN_SIZE
    }

    /// `50 conns × 64 B`.
    pub fn label(&self) -> String {
        format!("{} conns × {}", self.connections, size_label(self.size))
    }
}

/// Sizes present among the echo scenarios of `results`, in order.
pub fn sizes(results: &Results) -> Vec<usize> {
    let mut sizes: Vec<usize> = results.scenarios.iter().map(|s| s.scenario.size).collect();
    sizes.sort_unstable();
    sizes.dedup();
    sizes
}

/// `64 B`, `1 KiB`, `16 KiB`.
pub fn size_label(size: usize) -> String {
    if size >= 1024 && size % 1024 == 0 {
        format!("{} KiB", size / 1024)
    } else {
        format!("{size} B")
    }
}

/// How much a report does.
#[derive(Clone, Debug)]
pub struct Budget {
    /// `--full` or not.
    pub full: bool,
    /// Runs per contender per scenario.
    pub runs: usize,
    /// Runs that may be repeated in all because other work disturbed them.
    pub repeats: usize,
    /// Closed-loop warm-up before each window.
    pub warmup: Duration,
    /// Open-loop warm-up at each rate (unrecorded).
    pub open_warmup: Duration,
    /// Open-loop measuring window at each rate.
    pub open_window: Duration,
    /// The closed-loop scenarios, in order.
    pub scenarios: Vec<Scenario>,
    /// A closed-loop run on the idle connections after the memory figure (quick
    /// mode's 10,000-connection point).
    pub after_idle: Option<Scenario>,
    /// The HTTP scenarios (wrk), in order; each run warms up for `warmup` first.
    pub http: Vec<http::HttpScenario>,
    /// The closed-loop window of the server models section (at 1,000 connections).
    pub models_window: Duration,
    /// Connections opened one at a time per server models run (bursts always open
    /// [`models::CONNECTIONS`], which also gives the idle memory).
    pub models_one_by_one: usize,
}

impl Budget {
    fn quick(runs: usize) -> Budget {
        let sweep = |connections| Scenario {
            connections,
            size: echo::MAIN_SIZE,
            window: Duration::from_millis(200),
            perf_window: None,
            open_loop: false,
        };
        let main = Scenario {
            connections: echo::MAIN_CONNECTIONS,
            size: echo::MAIN_SIZE,
            window: Duration::from_millis(600),
            perf_window: Some(Duration::from_millis(300)),
            open_loop: true,
        };
        Budget {
            full: false,
            runs,
            repeats: 6,
            warmup: Duration::from_millis(100),
            open_warmup: Duration::from_millis(100),
            open_window: Duration::from_millis(300),
            scenarios: vec![sweep(1), main, sweep(1_000)],
            after_idle: Some(sweep(echo::IDLE_CONNECTIONS)),
            http: vec![http::HttpScenario {
                connections: epitome_benches::http::MAIN_CONNECTIONS,
                seconds: 1,
            }],
            models_window: Duration::from_millis(200),
            models_one_by_one: 2_000,
        }
    }

    fn full(runs: usize) -> Budget {
        let mut scenarios = Vec::new();
        for size in echo::MESSAGE_SIZES {
            let mut counts = echo::CONNECTION_COUNTS.to_vec();
            if size == echo::MAIN_SIZE {
                counts.push(echo::MAIN_CONNECTIONS);
                counts.sort_unstable();
            }
            for connections in counts {
                let main = connections == echo::MAIN_CONNECTIONS && size == echo::MAIN_SIZE;
                scenarios.push(Scenario {
                    connections,
                    size,
                    window: Duration::from_millis(if main { 3000 } else { 1000 }),
                    perf_window: Some(Duration::from_millis(if main { 1000 } else { 500 })),
                    open_loop: true,
                });
            }
        }
        Budget {
            full: true,
            runs,
            repeats: 40,
            warmup: Duration::from_millis(300),
            open_warmup: Duration::from_millis(300),
            open_window: Duration::from_millis(1500),
            scenarios,
            after_idle: None,
            http: epitome_benches::http::CONNECTION_COUNTS
                .iter()
                .map(|&connections| http::HttpScenario {
                    connections,
                    seconds: if connections == epitome_benches::http::MAIN_CONNECTIONS {
                        3
                    } else {
                        2
                    },
                })
                .collect(),
            models_window: Duration::from_millis(1000),
            models_one_by_one: models::CONNECTIONS,
        }
    }

    /// A rough forecast of the wall time, from costs seen on a quiet 2-core VM.
    fn estimate(
        &self,
        contenders: usize,
        herd_variants: usize,
        http_contenders: usize,
        models: usize,
    ) -> Duration {
        const SPAWN: f64 = 0.03;
        const PERF_START: f64 = 0.25;
        // Opening (with its round trip) and closing a connection, and the wait for
        // the kernel's teardown after many.
        let connections = |n: usize| n as f64 * 110e-6 + if n >= 1_000 { 0.2 } else { 0.0 };
        let runs = (self.runs * contenders) as f64;
        let mut secs = 0.0;
        for s in &self.scenarios {
            let closed = SPAWN
                + connections(s.connections)
                + self.warmup.as_secs_f64()
                + s.window.as_secs_f64()
                + s.perf_window
                    .map_or(0.0, |w| PERF_START + 2.0 * w.as_secs_f64());
            let open = if s.open_loop {
                SPAWN
                    + connections(s.connections)
                    + LOAD_PERCENTS.len() as f64
                        * (self.open_warmup + self.open_window).as_secs_f64()
            } else {
                0.0
            };
            secs += runs * (closed + open);
        }
        let after = self.after_idle.map_or(0.0, |s| {
            self.warmup.as_secs_f64()
                + s.window.as_secs_f64()
                + s.perf_window
                    .map_or(0.0, |w| PERF_START + 2.0 * w.as_secs_f64())
        });
        secs += runs * (SPAWN + 0.15 + connections(echo::IDLE_CONNECTIONS) + after);
        secs +=
            (self.runs * herd_variants) as f64 * (SPAWN + 0.05 + connections(herd::CONNECTIONS));
        // Two arrival runs and a load run per model and run; then the switch costs.
        if models > 0 {
            // One at a time, each connection waits for its echo: about 3 times slower.
            let arrivals = 2.0 * (SPAWN + 0.1)
                + 3.0 * connections(self.models_one_by_one)
                + connections(models::CONNECTIONS);
            let load = SPAWN
                + connections(models::LOAD_CONNECTIONS)
                + self.warmup.as_secs_f64()
                + self.models_window.as_secs_f64();
            secs += (self.runs * models) as f64 * (arrivals + load) + 2.0;
        }
        secs += http::estimate(
            self.warmup.as_secs_f64(),
            &self.http,
            self.runs * http_contenders,
        );
        Duration::from_secs_f64(secs)
    }
}

/// Each contender's runs: a figure per run, or why the run failed.
pub type PerContender<T> = Vec<(&'static Contender, Vec<Measured<T>>)>;

/// Every contender's runs of one scenario.
#[derive(Debug)]
pub struct ScenarioResults {
    /// The scenario.
    pub scenario: Scenario,
    /// Closed-loop runs, per contender.
    pub load: PerContender<LoadSample>,
    /// tokio's peak (median req/s) and which tokio contender it is, if measured.
    pub tokio_peak: Option<(f64, String)>,
    /// Open-loop runs, per contender.
    pub latency: PerContender<Vec<OpenSample>>,
    /// Runs repeated because other work disturbed them.
    pub repeated: usize,
}

/// Everything a report measured.
#[derive(Debug, Default)]
pub struct Results {
    /// Per scenario, in the order run (the 10,000-connection point of quick mode
    /// last).
    pub scenarios: Vec<ScenarioResults>,
    /// Idle memory, per contender.
    pub idle: PerContender<IdleSample>,
    /// Herd runs, per variant.
    pub herd: Vec<(&'static HerdVariant, Vec<Measured<HerdSample>>)>,
    /// The HTTP scenario, if it was asked for.
    pub http: Option<http::HttpResults>,
    /// The server models section, if it was asked for.
    pub models: Option<models::ModelsResults>,
}

struct Options {
    full: bool,
    plan: bool,
    runs: usize,
    only: Option<Vec<String>>,
    out: PathBuf,
}

fn parse(args: &[String]) -> Result<Options, String> {
    let mut options = Options {
        full: false,
        plan: false,
        runs: MIN_RUNS,
        only: None,
        out: default_out_dir(),
    };
    let mut it = args.iter();
    while let Some(arg) = it.next() {
        let mut value = || it.next().ok_or_else(|| format!("{arg} needs a value"));
        match arg.as_str() {
            "--full" => options.full = true,
            "--plan" => options.plan = true,
            "--runs" => {
                let v = value()?;
                options.runs = v.parse().map_err(|e| format!("--runs {v}: {e}"))?;
                if options.runs == 0 {
                    return Err("--runs must be at least 1".to_owned());
                }
            }
            "--only" => {
                let names: Vec<String> = value()?.split(',').map(str::to_owned).collect();
                for name in &names {
                    let known = GROUPS.contains(&name.as_str())
                        || echo::find(name).is_some()
                        || epitome_benches::http::find(name).is_some();
                    if !known {
                        return Err(format!(
                            "--only: `{name}` is no contender and no group ({})",
                            GROUPS.join(", ")
                        ));
                    }
                }
                options.only = Some(names);
            }
            "--out" => options.out = PathBuf::from(value()?),
            other => return Err(format!("unknown option `{other}`")),
        }
    }
    Ok(options)
}

/// The groups `--only` takes besides contender names (`models`: the server models
/// section).
const GROUPS: [&str; 3] = ["echo", "http", "models"];

impl Options {
    /// Whether `--only` picks contender `name` of `group`.
    fn picks(&self, group: &str, name: &str) -> bool {
        self.only
            .as_ref()
            .is_none_or(|names| names.iter().any(|n| n == name || n == group))
    }
}

/// `target/epitome-report` of the workspace (or of `CARGO_TARGET_DIR`).
fn default_out_dir() -> PathBuf {
    target_dir().join("epitome-report")
}

/// The workspace's `target` directory (or `CARGO_TARGET_DIR`).
fn target_dir() -> PathBuf {
    std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/../target")))
}

/// Runs the report; `args` are the arguments after `report`.
pub fn main(args: &[String]) -> ExitCode {
    let options = match parse(args) {
        Ok(options) => options,
        Err(e) => {
            eprintln!("report: {e}\nusage: epitome-benches {USAGE}");
            return ExitCode::from(2);
        }
    };
    match run(options) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("report: {e}");
            ExitCode::FAILURE
        }
    }
}

fn run(options: Options) -> io::Result<()> {
    let started = Instant::now();
    let machine = Machine::detect();
    let contenders: Vec<&'static Contender> = echo::CONTENDERS
        .iter()
        .filter(|c| options.picks("echo", c.name))
        .collect();
    let http_contenders: Vec<&'static HttpContender> = epitome_benches::http::CONTENDERS
        .iter()
        .filter(|c| options.picks("http", c.name))
        .collect();
    let mut budget = if options.full {
        Budget::full(options.runs)
    } else {
        Budget::quick(options.runs)
    };

    println!(
        "epitome report: echo and HTTP servers side by side{}",
        if budget.full {
            " (--full)"
        } else {
            " (quick; --full runs every scenario)"
        }
    );
    println!("{machine}");
    let mut notes = Vec::new();
    let server_cpu = if machine.cpus >= 2 {
        machine::pin_to_cpu(CLIENT_CPU)?;
        println!("pinned: client CPU {CLIENT_CPU}, servers CPU {SERVER_CPU}");
        Some(SERVER_CPU)
    } else {
        let note = format!(
            "only {} CPU available: client and server are not pinned apart, so they share a core",
            machine.cpus
        );
        println!("pinned: no, {note}");
        notes.push(note);
        None
    };
    let nofile = match machine::raise_nofile(NOFILE_WANTED) {
        Ok(raised) => {
            println!("limits: {raised}");
            raised.to
        }
        Err(short) => {
            println!("limits: {short}");
            notes.push(short.to_string());
            short.soft
        }
    };
    match busy_now() {
        Ok(busy) => {
            let shown: Vec<String> = busy
                .iter()
                .enumerate()
                .take(2)
                .map(|(cpu, b)| format!("CPU {cpu} {:.0}%", b * 100.0))
                .collect();
            if busy.iter().take(2).any(|&b| b > BUSY) {
                let note = format!(
                    "the machine was busy when the report started ({}): other work shares the \
                     pinned CPUs and makes the figures noisy",
                    shown.join(", ")
                );
                println!("load:   {note}");
                notes.push(note);
            } else {
                println!("load:   idle before the start ({})", shown.join(", "));
            }
        }
        Err(e) => println!("load:   unknown ({e})"),
    }
    let perf = process::perf_check();
    match &perf {
        Ok(()) => println!("perf:   raw_syscalls:sys_enter can be counted"),
        Err(why) => {
            println!("perf:   syscalls are n/a: {why}");
            notes.push(format!("syscalls per request are n/a: {why}"));
        }
    }
    if budget.runs < MIN_RUNS {
        let note = format!(
            "{} run(s) per contender, fewer than the {MIN_RUNS} BENCHMARKING.md asks for",
            budget.runs
        );
        println!("runs:   {note}");
        notes.push(note);
    }
    let wrk = if http_contenders.is_empty() {
        None
    } else {
        // A failure is told in the HTTP section.
        Some(http::prepare_wrk())
    };
    if contenders.is_empty() {
        budget.scenarios.clear();
        budget.after_idle = None;
    }
    if !matches!(wrk, Some(Ok(_))) {
        budget.http.clear();
    }
    let herd_variants = if contenders.is_empty() {
        0
    } else {
        herd::VARIANTS.len()
    };
    let model_count = if options.picks("models", "models") {
        models::models().len()
    } else {
        0
    };
    let estimate = budget.estimate(
        contenders.len(),
        herd_variants,
        http_contenders.len(),
        model_count,
    );
    let echo_plan = if contenders.is_empty() {
        "no echo scenarios".to_owned()
    } else {
        format!(
            "{} echo contenders, {} scenarios + idle memory + herd",
            contenders.len(),
            budget.scenarios.len() + usize::from(budget.after_idle.is_some()),
        )
    };
    let http_plan = if budget.http.is_empty() {
        "no HTTP scenario".to_owned()
    } else {
        format!(
            "{} HTTP contenders at {} connection count(s)",
            http_contenders.len(),
            budget.http.len()
        )
    };
    let models_plan = if model_count > 0 {
        format!("{model_count} server models")
    } else {
        "no server models".to_owned()
    };
    println!(
        "plan:   {echo_plan}; {http_plan}; {models_plan}; {} runs each; estimated {:.0} s",
        budget.runs,
        estimate.as_secs_f64()
    );
    if options.plan {
        for s in &budget.scenarios {
            println!(
                "        {:<22} closed loop {} ms{}{}",
                s.label(),
                s.window.as_millis(),
                s.perf_window
                    .map_or(String::new(), |w| format!(", perf {} ms", w.as_millis())),
                if s.open_loop { ", open loop" } else { "" }
            );
        }
        if !contenders.is_empty() {
            println!(
                "        {} idle connections{}; herd: {} variants",
                echo::IDLE_CONNECTIONS,
                budget.after_idle.map_or(String::new(), |s| format!(
                    ", then closed loop {} ms",
                    s.window.as_millis()
                )),
                herd::VARIANTS.len()
            );
        }
        for s in &budget.http {
            println!(
                "        {:<30} {} ms warm-up, wrk {} s",
                s.label(),
                budget.warmup.as_millis(),
                s.seconds
            );
        }
        return Ok(());
    }
    println!();

    let setup = Setup {
        server_cpu,
        perf,
        budget,
    };
    // Repeats of disturbed runs, shared by every phase.
    let allowance = Cell::new(setup.budget.repeats);
    let mut results = collect(&setup, &contenders, &allowance)?;
    if let Some(wrk) = wrk {
        let scenarios = match &wrk {
            Ok(wrk) => http::collect(&setup, wrk, &http_contenders, nofile, &allowance),
            Err(_) => Vec::new(),
        };
        results.http = Some(http::HttpResults { wrk, scenarios });
    }
    if model_count > 0 {
        results.models = Some(models::collect(&setup));
    }
    let wall = started.elapsed();
    let report = output::Report {
        machine: &machine,
        setup: &setup,
        results: &results,
        notes: &notes,
        wall,
    };
    println!();
    print!("{}", report.text());
    std::fs::create_dir_all(&options.out)?;
    let out = std::fs::canonicalize(&options.out)?;
    let plots = plots::draw(&results, &out);
    let markdown = report.markdown(&plots);
    let path = out.join("REPORT.md");
    std::fs::write(&path, markdown)?;
    println!();
    println!("wrote {}", path.display());
    for plot in &plots {
        match &plot.result {
            Ok(()) => println!("wrote {}", out.join(&plot.file).display()),
            Err(e) => println!("plot {} not drawn: {e}", plot.file),
        }
    }
    println!("wall time: {:.1} s", started.elapsed().as_secs_f64());
    Ok(())
}

/// Runs every echo phase (none without contenders), printing progress.
fn collect(
    setup: &Setup,
    contenders: &[&'static Contender],
    allowance: &Cell<usize>,
) -> io::Result<Results> {
    let runs = setup.budget.runs;
    let mut results = Results::default();
    if contenders.is_empty() {
        return Ok(results);
    }
    for scenario in &setup.budget.scenarios {
        let mut repeated = 0;
        let mut load: Vec<_> = contenders.iter().map(|&c| (c, Vec::new())).collect();
        for run in 0..runs {
            let line_started = Instant::now();
            show!(
                "{:<22} closed loop, run {}/{runs}:",
                scenario.label(),
                run + 1
            );
            for (contender, samples) in &mut load {
                let mut sample = measure::load_run(setup, contender, scenario);
                if load_disturbed(&sample) && take_repeat(allowance) {
                    show!(" ({} disturbed, repeated)", contender.name);
                    repeated += 1;
                    sample = measure::load_run(setup, contender, scenario);
                }
                print_progress(contender, sample.as_ref().map(rate));
                samples.push(sample.map_err(|e| e.to_string()));
            }
            end_line(line_started);
        }
        let mut done = ScenarioResults {
            scenario: *scenario,
            tokio_peak: summary::tokio_peak(&load),
            load,
            latency: Vec::new(),
            repeated,
        };
        if scenario.open_loop {
            let (latency, repeated) = latency_phase(setup, contenders, &done, allowance)?;
            done.latency = latency;
            done.repeated += repeated;
        }
        results.scenarios.push(done);
    }

    let mut idle: Vec<_> = contenders.iter().map(|&c| (c, Vec::new())).collect();
    let mut after: Vec<_> = contenders.iter().map(|&c| (c, Vec::new())).collect();
    for run in 0..runs {
        let line_started = Instant::now();
        show!(
            "{:<22} idle memory, run {}/{runs}:",
            format!("{} idle", echo::IDLE_CONNECTIONS),
            run + 1
        );
        for ((contender, idle_samples), (_, load_samples)) in idle.iter_mut().zip(&mut after) {
            match measure::idle_run(
                setup,
                contender,
                measure::threads_for(contender),
                setup.budget.after_idle.as_ref(),
            ) {
                Ok((sample, load)) => {
                    let per_conn = sample.rss_delta_kib as f64 * 1024.0 / sample.connections as f64;
                    show!(" {} {:.0} B/conn", contender.name, per_conn);
                    idle_samples.push(Ok(sample));
                    if let Some(load) = load {
                        load_samples.push(Ok(load));
                    }
                }
                Err(e) => {
                    show!(" {} failed ({e})", contender.name);
                    let e = e.to_string();
                    idle_samples.push(Err(e.clone()));
                    load_samples.push(Err(e));
                }
            }
        }
        end_line(line_started);
    }
    results.idle = idle;
    if let Some(scenario) = setup.budget.after_idle {
        results.scenarios.push(ScenarioResults {
            scenario,
            tokio_peak: summary::tokio_peak(&after),
            load: after,
            latency: Vec::new(),
            repeated: 0,
        });
    }

    let mut herd_results: Vec<_> = herd::VARIANTS.iter().map(|v| (v, Vec::new())).collect();
    for run in 0..runs {
        let line_started = Instant::now();
        show!(
            "{:<22} herd, run {}/{runs}:",
            "8 workers, 10000 conns",
            run + 1
        );
        for (variant, samples) in &mut herd_results {
            let sample = measure::herd_run(setup, variant);
            match &sample {
                Ok(s) => {
                    let wakeups = s.switches.voluntary as f64 / s.connections as f64;
                    show!(" {} {:.2} wakeups/conn", variant.name, wakeups);
                }
                Err(e) => show!(" {} failed ({e})", variant.name),
            }
            samples.push(sample.map_err(|e| e.to_string()));
        }
        end_line(line_started);
    }
    results.herd = herd_results;
    Ok(results)
}

/// Open-loop runs of one scenario at 50% and 80% of tokio's peak.
fn latency_phase(
    setup: &Setup,
    contenders: &[&'static Contender],
    done: &ScenarioResults,
    allowance: &Cell<usize>,
) -> io::Result<(PerContender<Vec<OpenSample>>, usize)> {
    let runs = setup.budget.runs;
    let scenario = &done.scenario;
    let Some((peak, _)) = done.tokio_peak else {
        println!(
            "{:<22} open loop: n/a, no tokio peak was measured",
            scenario.label()
        );
        let none = contenders
            .iter()
            .map(|&c| (c, vec![Err("no tokio peak was measured".to_owned())]))
            .collect();
        return Ok((none, 0));
    };
    let rates: Vec<(u32, f64)> = LOAD_PERCENTS
        .iter()
        .map(|&p| (p, peak * f64::from(p) / 100.0))
        .collect();
    let mut latency: Vec<_> = contenders.iter().map(|&c| (c, Vec::new())).collect();
    let mut repeated = 0;
    for run in 0..runs {
        let line_started = Instant::now();
        show!(
            "{:<22} open loop, run {}/{runs}:",
            scenario.label(),
            run + 1
        );
        for (contender, samples) in &mut latency {
            let mut sample = measure::latency_run(setup, contender, scenario, &rates);
            if open_disturbed(&sample) && take_repeat(allowance) {
                show!(" ({} disturbed, repeated)", contender.name);
                repeated += 1;
                sample = measure::latency_run(setup, contender, scenario, &rates);
            }
            match &sample {
                Ok(s) => {
                    let p99: Vec<String> = s
                        .iter()
                        .map(|o| format!("{:.0}", o.p99_ns as f64 / 1e3))
                        .collect();
                    show!(" {} p99 {} µs", contender.name, p99.join("/"));
                }
                Err(e) => show!(" {} failed ({e})", contender.name),
            }
            samples.push(sample.map_err(|e| e.to_string()));
        }
        end_line(line_started);
    }
    Ok((latency, repeated))
}

/// Takes one repeat from the report's allowance, if any is left.
fn take_repeat(allowance: &Cell<usize>) -> bool {
    let left = allowance.get();
    allowance.set(left.saturating_sub(1));
    left > 0
}

/// Whether other work disturbed a closed-loop run's window.
fn load_disturbed(sample: &io::Result<LoadSample>) -> bool {
    matches!(sample, Ok(s) if s.interference.as_ref().is_ok_and(|i| i.disturbed()))
}

/// Whether other work disturbed any rate of an open-loop run.
fn open_disturbed(sample: &io::Result<Vec<OpenSample>>) -> bool {
    matches!(sample, Ok(runs) if runs
        .iter()
        .any(|s| s.interference.as_ref().is_ok_and(|i| i.disturbed())))
}

/// Ends a progress line with the time it took.
fn end_line(started: Instant) {
    println!(" ({:.1} s)", started.elapsed().as_secs_f64());
}

fn rate(sample: &LoadSample) -> f64 {
    sample.completed as f64 / sample.elapsed.as_secs_f64()
}

fn print_progress(contender: &Contender, rate: Result<f64, &io::Error>) {
    match rate {
        Ok(r) => show!(" {} {:.0}k", contender.name, r / 1e3),
        Err(e) => show!(" {} failed ({e})", contender.name),
    }
}

/// How busy each CPU is, sampled over half a second.
fn busy_now() -> io::Result<Vec<f64>> {
    let before = process::cpu_times()?;
    let idle_before = process::cpu_idle()?;
    std::thread::sleep(Duration::from_millis(500));
    let after = process::cpu_times()?;
    let idle_after = process::cpu_idle()?;
    Ok(before
        .iter()
        .zip(&after)
        .zip(idle_before.iter().zip(&idle_after))
        .map(|((b, a), (ib, ia))| {
            let busy = a.busy.saturating_sub(b.busy) as f64;
            let idle = ia.saturating_sub(*ib) as f64;
            if busy + idle > 0.0 {
                busy / (busy + idle)
            } else {
                0.0
            }
        })
        .collect())
}
