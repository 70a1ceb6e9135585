//! The HTTP scenario, "HTTP hello (wrk)": every HTTP contender
//! ([`http::CONTENDERS`]) loaded by `wrk` (its tables are in `http_output.rs`).
//!
//! # Method
//!
//! - Each run starts a fresh server process (`epitome-benches http-server
//!   <contender>`), pinned to the server CPU like the echo servers; `wrk` runs
//!   pinned to the client CPU, with one thread ([`wrk::THREADS`]).
//! - Before wrk, [`http::client::warm_up`] keeps the scenario's connection count
//!   busy for the budget's warm-up, checking every answer; then one
//!   `wrk -t1 -cN -dS --latency` run is the measured window.
//! - Server CPU is `utime + stime` of `/proc/PID/stat` from just before wrk starts
//!   to just after it exits, divided by the requests wrk completed. Other work on
//!   the two CPUs is measured over the same span as for the echo windows (wrk's own
//!   CPU time counts as the client's once it has been waited for), and a disturbed
//!   run is repeated while the report's allowance lasts.
//! - Contenders are interleaved run by run, and the tables give the median of the
//!   runs; the pairs (the same stack on epitome and on tokio) are compared as
//!   epitome / tokio ratios.

use std::cell::Cell;
use std::io::{self, Write as _};
use std::time::Instant;

use epitome_benches::http::wrk::{Found, Wrk, WrkReport};
use epitome_benches::http::{self, HttpContender, Runtime, Stack};

use super::measure::{self, CpuSnapshot, Interference, Measured, Setup};
use super::process::CpuTicks;
use super::summary::{median, successes, tick_us};
use super::{CLIENT_CPU, end_line, take_repeat};

/// fds wrk needs besides its connections (its epoll, stdio, and spare).
const WRK_SPARE_FDS: u64 = 64;

/// One HTTP load scenario.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct HttpScenario {
    /// wrk's connections (`-c`).
    pub connections: usize,
    /// wrk's run time (`-d`), whole seconds (wrk's finest unit).
    pub seconds: u32,
}

impl HttpScenario {
    /// `HTTP hello (wrk), 50 conns`.
    pub fn label(&self) -> String {
        format!("HTTP hello (wrk), {} conns", self.connections)
    }
}

/// One run: what wrk reported, and what the server spent on it.
#[derive(Clone, Debug)]
pub struct HttpSample {
    /// wrk's report.
    pub wrk: WrkReport,
    /// The server's CPU time from just before wrk started to just after it exited.
    pub cpu: CpuTicks,
    /// What else ran on the two CPUs meanwhile.
    pub interference: Measured<Interference>,
}

/// Each contender's runs: a sample per run, or why the run failed.
pub type PerHttpContender<T> = Vec<(&'static HttpContender, Vec<Measured<T>>)>;

/// Every contender's runs of one scenario.
#[derive(Debug)]
pub struct HttpScenarioResults {
    /// The scenario.
    pub scenario: HttpScenario,
    /// Per contender.
    pub runs: PerHttpContender<HttpSample>,
    /// Runs repeated because other work disturbed them.
    pub repeated: usize,
    /// Why the scenario was not run, if it was not.
    pub skipped: Option<String>,
}

/// The HTTP scenario's results.
#[derive(Debug)]
pub struct HttpResults {
    /// The wrk used, or why the scenario was skipped.
    pub wrk: Result<Wrk, String>,
    /// Per connection count.
    pub scenarios: Vec<HttpScenarioResults>,
}

/// `print!` and flush, for progress shown while a run goes.
fn show(text: &str) {
    print!("{text}");
    let _ = io::stdout().flush();
}

/// Finds wrk, installing Debian's package if it is missing, and prints what
/// happened; the reason the scenario is skipped if neither works.
pub fn prepare_wrk() -> Result<Wrk, String> {
    let missing = Wrk::find().is_none();
    if missing {
        show("wrk:    not on PATH; installing Debian's package (apt-get install -y wrk) … ");
    }
    let found = Wrk::find_or_install();
    if missing {
        println!("{}", if found.is_ok() { "done" } else { "failed" });
    }
    match found {
        Ok((wrk, found)) => {
            let how = match found {
                Found::OnPath => "on PATH",
                Found::Installed => "installed now",
            };
            println!("wrk:    {} ({how}, {})", wrk.version, wrk.path.display());
            Ok(wrk)
        }
        Err(why) => {
            println!("wrk:    the HTTP scenario is skipped: {why}");
            Err(why)
        }
    }
}

/// A rough forecast of the wall time of the HTTP scenarios, in seconds.
pub fn estimate(setup_warmup: f64, scenarios: &[HttpScenario], runs: usize) -> f64 {
    // Server start, wrk's start and exit.
    const OVERHEAD: f64 = 0.08;
    scenarios
        .iter()
        .map(|s| {
            let connections = s.connections as f64 * 110e-6;
            runs as f64 * (OVERHEAD + connections + setup_warmup + f64::from(s.seconds))
        })
        .sum()
}

/// Runs every scenario of the budget on `contenders`, interleaved, printing
/// progress. `nofile` is this process's fd limit, which wrk inherits.
pub fn collect(
    setup: &Setup,
    wrk: &Wrk,
    contenders: &[&'static HttpContender],
    nofile: u64,
    allowance: &Cell<usize>,
) -> Vec<HttpScenarioResults> {
    let runs = setup.budget.runs;
    let mut results = Vec::new();
    for scenario in &setup.budget.http {
        let mut done = HttpScenarioResults {
            scenario: *scenario,
            runs: contenders.iter().map(|&c| (c, Vec::new())).collect(),
            repeated: 0,
            skipped: None,
        };
        let needed = scenario.connections as u64 + WRK_SPARE_FDS;
        if needed > nofile {
            let why = format!(
                "{} connections need about {needed} fds in wrk, over this process's \
                 RLIMIT_NOFILE of {nofile}",
                scenario.connections
            );
            println!("{:<30} skipped: {why}", scenario.label());
            done.skipped = Some(why);
            results.push(done);
            continue;
        }
        for run in 0..runs {
            let line_started = Instant::now();
            show(&format!("{:<30} run {}/{runs}:", scenario.label(), run + 1));
            for (contender, samples) in &mut done.runs {
                let mut sample = http_run(setup, wrk, contender, scenario);
                if disturbed(&sample) && take_repeat(allowance) {
                    show(&format!(" ({} disturbed, repeated)", contender.name));
                    done.repeated += 1;
                    sample = http_run(setup, wrk, contender, scenario);
                }
                match &sample {
                    Ok(s) => show(&format!(
                        " {} {:.1}k",
                        contender.name,
                        s.wrk.requests_per_sec / 1e3
                    )),
                    Err(e) => show(&format!(" {} failed ({e})", contender.name)),
                }
                samples.push(sample.map_err(|e| e.to_string()));
            }
            end_line(line_started);
        }
        results.push(done);
    }
    results
}

/// Whether other work disturbed a run.
fn disturbed(sample: &io::Result<HttpSample>) -> bool {
    matches!(sample, Ok(s) if s.interference.as_ref().is_ok_and(|i| i.disturbed()))
}

/// One run of `scenario` against a fresh server: warm-up, then wrk.
fn http_run(
    setup: &Setup,
    wrk: &Wrk,
    contender: &HttpContender,
    scenario: &HttpScenario,
) -> io::Result<HttpSample> {
    let mut args = vec![
        "http-server".to_owned(),
        contender.name.to_owned(),
        "--addr".to_owned(),
        "127.0.0.1:0".to_owned(),
    ];
    if let Some(cpu) = setup.server_cpu {
        args.extend(["--cpu".to_owned(), cpu.to_string()]);
    }
    let mut server = measure::spawn_pinned(setup, &args)?;
    http::client::warm_up(server.addr, scenario.connections, setup.budget.warmup)
        .map_err(|e| io::Error::other(format!("warm-up: {e}")))?;
    if scenario.connections >= measure::SETTLE_AFTER {
        measure::settle();
    }
    let url = format!("http://{}/", server.addr);
    let client_cpu = setup.server_cpu.map(|_| CLIENT_CPU);
    let cpu0 = server.cpu_ticks()?;
    let snapshot0 = CpuSnapshot::take(&server)?;
    let started = Instant::now();
    let report = wrk.run(&url, scenario.connections, scenario.seconds, client_cpu)?;
    let elapsed = started.elapsed();
    let snapshot1 = CpuSnapshot::take(&server)?;
    let cpu1 = server.cpu_ticks()?;
    server.check_alive()?;
    if scenario.connections >= measure::SETTLE_AFTER {
        measure::settle();
    }
    if report.requests == 0 {
        return Err(io::Error::other("wrk completed no request"));
    }
    if report.non_2xx > 0 {
        return Err(io::Error::other(format!(
            "{} of {} responses were not 2xx/3xx",
            report.non_2xx, report.requests
        )));
    }
    Ok(HttpSample {
        wrk: report,
        cpu: CpuTicks {
            user: cpu1.user.saturating_sub(cpu0.user),
            system: cpu1.system.saturating_sub(cpu0.system),
        },
        interference: snapshot0.interference(&snapshot1, setup.server_cpu, elapsed),
    })
}

/// One contender's figures in one scenario: medians of the runs.
#[derive(Clone, Debug)]
pub struct HttpSummary {
    /// Runs that succeeded, of all runs.
    pub ok_runs: (usize, usize),
    /// req/s.
    pub rate: f64,
    /// Lowest and highest run.
    pub rate_range: (f64, f64),
    /// wrk's p50, µs.
    pub p50_us: f64,
    /// wrk's p99, µs.
    pub p99_us: f64,
    /// Server user + system CPU µs per request.
    pub cpu_us: f64,
    /// Server user CPU µs per request (`utime`, tick-sampled).
    pub user_us: f64,
    /// Socket errors per run.
    pub socket_errors: f64,
    /// The first failure, if any run failed.
    pub failure: Option<String>,
}

/// The medians of `samples`, or why there are none.
pub fn summarize(samples: &[Measured<HttpSample>]) -> Measured<HttpSummary> {
    let (ok, err) = successes(samples);
    if ok.is_empty() {
        return Err(err.unwrap_or("not run").to_owned());
    }
    let per =
        |f: &dyn Fn(&HttpSample) -> f64| median(ok.iter().map(|s| f(s)).collect()).unwrap_or(0.0);
    let rates: Vec<f64> = ok.iter().map(|s| s.wrk.requests_per_sec).collect();
    let tick = tick_us();
    let us = |d: Option<std::time::Duration>| d.map_or(f64::NAN, |d| d.as_secs_f64() * 1e6);
    Ok(HttpSummary {
        ok_runs: (ok.len(), samples.len()),
        rate: median(rates.clone()).unwrap_or(0.0),
        rate_range: (
            rates.iter().copied().fold(f64::INFINITY, f64::min),
            rates.iter().copied().fold(f64::NEG_INFINITY, f64::max),
        ),
        p50_us: per(&|s| us(s.wrk.percentile(50.0))),
        p99_us: per(&|s| us(s.wrk.percentile(99.0))),
        cpu_us: per(&|s| (s.cpu.user + s.cpu.system) as f64 * tick / s.wrk.requests as f64),
        user_us: per(&|s| s.cpu.user as f64 * tick / s.wrk.requests as f64),
        socket_errors: per(&|s| s.wrk.socket_errors.total() as f64),
        failure: err.map(str::to_owned),
    })
}

/// The summary of the contender running `stack` on `runtime` in `s`.
pub fn pair_side(s: &HttpScenarioResults, stack: Stack, runtime: Runtime) -> Option<HttpSummary> {
    let (_, samples) = s
        .runs
        .iter()
        .find(|(c, _)| c.stack == stack && c.runtime == runtime)?;
    summarize(samples).ok()
}
