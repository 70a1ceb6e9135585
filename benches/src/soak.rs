//! `soak`: an epitome echo server under connection churn for a given time, every
//! byte checked, its fds and memory watched.
//!
//! ```text
//! cargo run --release -p epitome-benches -- soak --duration 3600   # an hour
//! ```
//!
//! # Shape
//!
//! The server ([`server`]) runs in a child process (this binary again, told by an
//! environment variable), so its fds (`/proc/PID/fd`) and memory (`VmRSS` in
//! `/proc/PID/status`) are its own. It is epitome's multi-reactor runtime with
//! `--reactors` workers (default 2), each running an accept loop on the shared
//! listener, or with `--reactors 0` the current-thread runtime; a task per
//! connection echoes what it reads. It dies with its parent (`PR_SET_PDEATHSIG`) or
//! when its stdin closes, and the parent kills it on every exit path (a `Drop`).
//!
//! The clients ([`clients`]) are blocking threads of this process on the kernel's
//! sockets, so a wrong byte is the server's: each connects, sends 1 to 8 messages of
//! 1 B to 64 KiB (log-uniform lengths, bytes from a seeded generator), reads each
//! echo back and compares it, then ends the connection one of five ways: close,
//! half-close after or before the last echo (the server must echo everything and
//! then close), or a reset (`SO_LINGER` 0) partway through writing a message or
//! reading its echo. Then it connects again.
//!
//! Every `--interval` it prints the elapsed time, connections, resets, half-closes,
//! bytes checked, errors, and the server's fds and RSS.
//!
//! # What fails the run
//!
//! - **Any error**: a byte that differs, a short echo, a connection the server closes
//!   or resets when it should not, a connect, read or write that fails or takes more
//!   than [`IO_TIMEOUT`], anything the server prints on stderr (it prints only
//!   unexpected errors: accept failures, a connection error other than a reset or a
//!   broken pipe, a panic), or the server exiting. The run stops at the first error.
//! - **fd growth**: the server's fds once every client has disconnected and the count
//!   has settled, above the baseline taken the same way at the end of warm-up
//!   (clients paused between connections, count settled). Compared by kind (socket,
//!   eventfd, ...), with one allowance: each reactor's `EventPoll` opens one eventfd,
//!   once, the first time two threads wait on it at the same time (`prepare_notify`,
//!   `runtime/src/eventpoll/poller.rs`), which may first happen after warm-up; up to
//!   one new eventfd per reactor is reported as lazy, not growth. A leak over
//!   hundreds of thousands of connections shows as far more than that.
//! - **RSS growth**: the median RSS of the samples (every 100 ms) in the last third
//!   of the run after warm-up more than [`RSS_GROWTH_LIMIT`] above the median of the
//!   samples in the last half of warm-up. Both are taken under the same load; RSS
//!   under churn swings by several percent from one sample to the next with the
//!   messages in flight, so single samples or maxima would fail a healthy server,
//!   while a leak moves the median with it. The maxima are printed too.
//!
//! The last line starts with `SOAK` and gives every figure as `key=value`.

mod clients;
mod server;

use std::collections::BTreeMap;
use std::process::ExitCode;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::thread;
use std::time::{Duration, Instant};

use epitome_benches::machine::Machine;

use clients::Shared;
use server::ServerChild;

/// The usage line of `soak`.
pub const USAGE: &str =
    "soak [--duration S] [--clients N] [--reactors N] [--warmup S] [--interval S] [--seed X]";

/// The largest message, and the server's read buffer.
const MAX_MESSAGE: usize = 64 * 1024;
/// Longest a connect, read or write may take before it counts as an error.
const IO_TIMEOUT: Duration = Duration::from_secs(10);
/// How often the server's fds and RSS are sampled.
const SAMPLE_EVERY: Duration = Duration::from_millis(100);
/// The fd count has settled when it has not changed for this long.
const SETTLED_AFTER: Duration = Duration::from_millis(500);
/// Longest to wait for the fd count to settle.
const SETTLE_LIMIT: Duration = Duration::from_secs(10);
/// Allowed RSS growth after warm-up, as a fraction.
const RSS_GROWTH_LIMIT: f64 = 0.05;
/// The kind of fd each reactor may open once, lazily (see the module docs).
const LAZY_FD_KIND: &str = "anon_inode:[eventfd]";

struct Options {
    duration: Duration,
    clients: usize,
    reactors: usize,
    warmup: Duration,
    interval: Duration,
    seed: u64,
}

fn parse(args: &[String]) -> Result<Options, String> {
    let mut options = Options {
        duration: Duration::from_secs(60),
        clients: 32,
        reactors: 2,
        warmup: Duration::from_secs(10),
        interval: Duration::from_secs(5),
        seed: 0x5eed,
    };
    let mut it = args.iter();
    while let Some(flag) = it.next() {
        let value = it.next().ok_or_else(|| format!("{flag} needs a value"))?;
        let bad = |e: &dyn std::fmt::Display| format!("{flag} {value}: {e}");
        let secs = || -> Result<Duration, String> {
            let s: f64 = value.parse().map_err(|e| bad(&e))?;
            Duration::try_from_secs_f64(s).map_err(|e| bad(&e))
        };
        match flag.as_str() {
            "--duration" => options.duration = secs()?,
            "--warmup" => options.warmup = secs()?,
            "--interval" => options.interval = secs()?,
            "--clients" => options.clients = value.parse().map_err(|e| bad(&e))?,
            "--reactors" => options.reactors = value.parse().map_err(|e| bad(&e))?,
            "--seed" => options.seed = value.parse().map_err(|e| bad(&e))?,
            other => return Err(format!("unknown option `{other}`")),
        }
    }
    if options.clients == 0 {
        return Err("--clients must be at least 1".into());
    }
    if options.interval.is_zero() {
        return Err("--interval must be above 0".into());
    }
    if options.warmup.is_zero() || options.warmup >= options.duration {
        return Err("--warmup must be above 0 and below --duration".into());
    }
    Ok(options)
}

/// Runs `soak`; `args` are the arguments after the command name.
pub fn main(args: &[String]) -> ExitCode {
    if let Ok(reactors) = std::env::var(server::SERVER_ENV) {
        return match reactors.parse() {
            Ok(reactors) => match server::serve(reactors) {
                Ok(()) => ExitCode::SUCCESS,
                Err(e) => {
                    eprintln!("soak server: {e}");
                    ExitCode::FAILURE
                }
            },
            Err(e) => {
                eprintln!("soak server: {}={reactors:?}: {e}", server::SERVER_ENV);
                ExitCode::FAILURE
            }
        };
    }
    let options = match parse(args) {
        Ok(options) => options,
        Err(e) => {
            eprintln!("soak: {e}\nusage: epitome-benches {USAGE}");
            return ExitCode::from(2);
        }
    };
    println!("{}", Machine::detect());
    match run(&options) {
        Ok(figures) => {
            let failures = figures.failures();
            for f in &failures {
                eprintln!("soak: FAILED: {f}");
            }
            println!("{}", figures.summary(failures.is_empty()));
            if failures.is_empty() {
                ExitCode::SUCCESS
            } else {
                ExitCode::FAILURE
            }
        }
        Err(e) => {
            eprintln!("soak: FAILED: {e}");
            println!("SOAK result=fail error={e:?}");
            ExitCode::FAILURE
        }
    }
}

/// Everything a run measured.
struct Figures {
    elapsed: Duration,
    clients: usize,
    runtime: String,
    seed: u64,
    connections: u64,
    resets: u64,
    half_closes: u64,
    bytes_checked: u64,
    errors: u64,
    first_error: Option<String>,
    fds_idle: usize,
    fds_warm: usize,
    fds_end: usize,
    /// New fds since warm-up that the lazy allowance covers.
    fds_lazy: usize,
    /// New fds since warm-up that it does not cover, by kind: growth.
    fds_grown: Vec<String>,
    rss_idle: u64,
    /// Medians and maxima, KiB (see the module docs).
    rss_warm: u64,
    rss_last: u64,
    rss_last_max: u64,
    rss_end: u64,
}

impl Figures {
    fn rss_growth(&self) -> f64 {
        self.rss_last as f64 / self.rss_warm.max(1) as f64 - 1.0
    }

    fn failures(&self) -> Vec<String> {
        let mut failures = Vec::new();
        if self.errors > 0 {
            failures.push(format!(
                "{} error(s), the first: {}",
                self.errors,
                self.first_error.as_deref().unwrap_or("?")
            ));
        }
        if !self.fds_grown.is_empty() {
            failures.push(format!(
                "the server holds {} fds with every client gone, {} after warm-up; new: {}",
                self.fds_end,
                self.fds_warm,
                self.fds_grown.join(", ")
            ));
        }
        if self.rss_growth() > RSS_GROWTH_LIMIT {
            failures.push(format!(
                "the server's median RSS grew {:.1}% after warm-up ({} -> {}), over the {:.0}% allowed",
                self.rss_growth() * 100.0,
                kib(self.rss_warm),
                kib(self.rss_last),
                RSS_GROWTH_LIMIT * 100.0
            ));
        }
        failures
    }

    fn summary(&self, pass: bool) -> String {
        format!(
            "SOAK result={} duration_s={:.0} clients={} runtime={} seed={} connections={} \
             resets={} half_closes={} bytes_checked={} errors={} fds_idle={} fds_warm={} \
             fds_end={} fds_lazy={} rss_idle_kib={} rss_warm_kib={} rss_last_kib={} \
             rss_last_max_kib={} rss_end_kib={} rss_growth_pct={:.1}",
            if pass { "pass" } else { "fail" },
            self.elapsed.as_secs_f64(),
            self.clients,
            self.runtime,
            self.seed,
            self.connections,
            self.resets,
            self.half_closes,
            self.bytes_checked,
            self.errors,
            self.fds_idle,
            self.fds_warm,
            self.fds_end,
            self.fds_lazy,
            self.rss_idle,
            self.rss_warm,
            self.rss_last,
            self.rss_last_max,
            self.rss_end,
            self.rss_growth() * 100.0,
        )
    }
}

/// Starts the server and the clients, watches them for the run's duration, stops
/// them and measures. `Err` only when the run could not be carried out.
fn run(options: &Options) -> Result<Figures, String> {
    let shared = Arc::new(Shared::default());
    let (mut server, addr) = ServerChild::start(options.reactors, &shared)?;
    let pid = server.pid();
    let fds_idle = settle(pid)?;
    let rss_idle = server::rss_kib(pid)?;
    let runtime = match options.reactors {
        0 => "current-thread".to_owned(),
        n => format!("multi-reactor({n})"),
    };
    println!(
        "soak: {runtime} server (pid {pid}) on {addr}, idle: {fds_idle} fds, RSS {}",
        kib(rss_idle)
    );
    println!(
        "soak: {} clients for {:.0} s (warm-up {:.0} s), seed {}",
        options.clients,
        options.duration.as_secs_f64(),
        options.warmup.as_secs_f64(),
        options.seed
    );
    let clients: Vec<_> = (0..options.clients)
        .map(|id| {
            let shared = Arc::clone(&shared);
            let seed = options.seed;
            thread::Builder::new()
                .name(format!("soak-client-{id}"))
                .spawn(move || clients::client(id, seed, addr, &shared))
                .map_err(|e| format!("starting a client: {e}"))
        })
        .collect::<Result<_, _>>()?;
    let mut monitor = Monitor {
        pid,
        start: Instant::now(),
        interval: options.interval,
        next_print: options.interval,
        shared: &shared,
        server: &mut server,
    };
    // Warm-up; the RSS of its last half is the reference.
    let warm_end = monitor.start + options.warmup;
    monitor.watch(warm_end - options.warmup / 2)?;
    let rss_warm = median(monitor.watch(warm_end)?, pid)?;
    // The fd baseline, with no connection open.
    shared.paused.store(true, Ordering::SeqCst);
    while shared.active.load(Ordering::SeqCst) != 0 {
        thread::sleep(Duration::from_millis(5));
    }
    let fds_warm = settle(pid)?;
    let kinds_warm = server::fd_kinds(pid);
    println!(
        "soak: warm-up done: {fds_warm} fds with no connection open (RSS {}); RSS reference {}",
        kib(server::rss_kib(pid)?),
        kib(rss_warm)
    );
    shared.paused.store(false, Ordering::SeqCst);
    // The run; the RSS of its last third is compared.
    let end = monitor.start + options.duration;
    monitor.watch(end - (end - warm_end) / 3)?;
    let last = monitor.watch(end)?;
    let rss_last_max = last.iter().copied().max().unwrap_or(0);
    let rss_last = median(last, pid)?;
    shared.stop.store(true, Ordering::SeqCst);
    for c in clients {
        c.join().map_err(|_| "a client panicked")?;
    }
    let elapsed = monitor.start.elapsed();
    if let Some(why) = server.exited() {
        shared.error(why);
    }
    // Every client has closed; wait for the server to close its ends.
    let eventpolls = options.reactors.max(1);
    let deadline = Instant::now() + SETTLE_LIMIT;
    let (fds_lazy, fds_grown) = loop {
        let growth = fd_growth(&kinds_warm, &server::fd_kinds(pid), eventpolls);
        if growth.1.is_empty() || Instant::now() >= deadline {
            break growth;
        }
        thread::sleep(Duration::from_millis(20));
    };
    let fds_end = server::fd_count(pid)?;
    let rss_end = server::rss_kib(pid)?;
    drop(server);

    let load = |c: &AtomicU64| c.load(Ordering::Relaxed);
    let first_error = shared
        .first_error
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .clone();
    Ok(Figures {
        elapsed,
        clients: options.clients,
        runtime,
        seed: options.seed,
        connections: load(&shared.connections),
        resets: load(&shared.resets),
        half_closes: load(&shared.half_closes),
        bytes_checked: load(&shared.bytes_checked),
        errors: load(&shared.errors),
        first_error,
        fds_idle,
        fds_warm,
        fds_end,
        fds_lazy,
        fds_grown,
        rss_idle,
        rss_warm,
        rss_last,
        rss_last_max,
        rss_end,
    })
}

/// Compares fds by kind: returns how many new ones the lazy allowance covers (at
/// most `lazy_allowed` of [`LAZY_FD_KIND`]) and a description of the rest.
fn fd_growth(
    warm: &BTreeMap<String, usize>,
    end: &BTreeMap<String, usize>,
    lazy_allowed: usize,
) -> (usize, Vec<String>) {
    let mut lazy = 0;
    let mut grown = Vec::new();
    for (kind, &n) in end {
        let mut new = n.saturating_sub(warm.get(kind).copied().unwrap_or(0));
        if kind == LAZY_FD_KIND {
            lazy = new.min(lazy_allowed);
            new -= lazy;
        }
        if new > 0 {
            grown.push(format!("{new} x {kind}"));
        }
    }
    (lazy, grown)
}

/// Samples the server until a deadline (or the first error) and prints a line
/// every interval.
struct Monitor<'a> {
    pid: u32,
    start: Instant,
    interval: Duration,
    /// When the next line is due, from `start`.
    next_print: Duration,
    shared: &'a Shared,
    server: &'a mut ServerChild,
}

impl Monitor<'_> {
    /// Samples until `until` (or the first error); returns the RSS samples, KiB.
    fn watch(&mut self, until: Instant) -> Result<Vec<u64>, String> {
        let mut samples = Vec::new();
        loop {
            if let Some(why) = self.server.exited() {
                self.shared.error(why);
            }
            if self.shared.stop.load(Ordering::SeqCst) {
                return Ok(samples);
            }
            let rss = server::rss_kib(self.pid)?;
            samples.push(rss);
            let now = Instant::now();
            if now - self.start >= self.next_print {
                self.next_print += self.interval;
                self.print(now, rss)?;
            }
            if now >= until {
                return Ok(samples);
            }
            thread::sleep(SAMPLE_EVERY.min(until - now));
        }
    }

    fn print(&self, now: Instant, rss: u64) -> Result<(), String> {
        let s = self.shared;
        println!(
            "soak {:>7.1}s  connections {:>9}  resets {:>7}  half-closes {:>7}  checked {:>10}  \
             errors {}  server fds {:>4}  RSS {}",
            (now - self.start).as_secs_f64(),
            s.connections.load(Ordering::Relaxed),
            s.resets.load(Ordering::Relaxed),
            s.half_closes.load(Ordering::Relaxed),
            bytes(s.bytes_checked.load(Ordering::Relaxed)),
            s.errors.load(Ordering::Relaxed),
            server::fd_count(self.pid)?,
            kib(rss),
        );
        Ok(())
    }
}

/// Waits until the server's fd count has not changed for [`SETTLED_AFTER`] (or for
/// [`SETTLE_LIMIT`]); returns it.
fn settle(pid: u32) -> Result<usize, String> {
    let start = Instant::now();
    let mut count = server::fd_count(pid)?;
    let mut since = Instant::now();
    loop {
        if since.elapsed() >= SETTLED_AFTER || start.elapsed() >= SETTLE_LIMIT {
            return Ok(count);
        }
        thread::sleep(Duration::from_millis(20));
        let now = server::fd_count(pid)?;
        if now != count {
            count = now;
            since = Instant::now();
        }
    }
}

/// The median of `samples`, or with none (a run stopped early by an error) the
/// server's RSS now.
fn median(mut samples: Vec<u64>, pid: u32) -> Result<u64, String> {
    samples.sort_unstable();
    match samples.get(samples.len() / 2) {
        Some(&m) => Ok(m),
        None => server::rss_kib(pid),
    }
}

fn kib(k: u64) -> String {
    format!("{:.1} MiB", k as f64 / 1024.0)
}

fn bytes(b: u64) -> String {
    if b >= 1 << 30 {
        format!("{:.2} GiB", b as f64 / f64::from(1 << 30))
    } else {
        format!("{:.1} MiB", b as f64 / f64::from(1 << 20))
    }
}
