//! `sched`: the scheduler micro-benchmarks, epitome against tokio, side by side in one
//! run.
//!
//! # What is measured
//!
//! tokio's own scheduler benchmarks (`benches/rt_multi_threaded.rs` and
//! `benches/rt_current_thread.rs` in the tokio repository), shape for shape, so the
//! two runtimes are compared like for like (BENCHMARKING.md, "Micro-benchmarks"). One
//! iteration is:
//!
//! - **spawn_many**: inside `block_on`, spawn 10,000 tasks; each counts down a shared
//!   latch (one atomic decrement; the last one wakes the waiter), and `block_on`'s
//!   future waits on the latch. The handles are dropped (detached), as in tokio's.
//! - **yield_many**: from outside the runtime spawn 200 tasks that each call
//!   `yield_now` 1,000 times and then count down a latch; `block_on` waits on it.
//! - **ping_pong**: inside `block_on`, spawn one task that spawns 1,000 tasks; each of
//!   those makes two oneshot channels, spawns a third task that awaits the first and
//!   answers on the second, sends, awaits the answer and counts down a latch.
//! - **chained_spawn**: inside `block_on`, spawn a task that spawns a task … 1,000
//!   deep; the last sends on a oneshot that `block_on` awaits.
//! - current-thread only, 1,000 empty tasks each, their `JoinHandle`s awaited in
//!   spawn order by `block_on`'s future:
//!   - **spawn_many_local**: spawned inside `block_on`;
//!   - **spawn_many_remote_idle**: spawned through the runtime's handle from outside,
//!     before `block_on`;
//!   - **spawn_many_remote_busy**: the same, while the runtime also runs a task that
//!     forever respawns itself (started once, before the iterations).
//!
//! The first four run on both flavour pairs: epitome current-thread against tokio
//! `current_thread`, and epitome multi-reactor with 2 reactors against tokio
//! `multi_thread` with 2 workers.
//!
//! # Fairness
//!
//! - Both contenders run the same generic code in [`shapes`] (the
//!   [`Contender`](shapes::Contender) impl is the only difference): the same task
//!   bodies, and the same completion [`Latch`](sync::Latch) and
//!   [`oneshot`](sync::oneshot) channel, written in [`sync`] over `std` (a `Mutex` and a
//!   `Waker`), so neither runtime's own synchronisation primitives are part of what
//!   is compared. tokio's benchmarks signal completion through `std::sync::mpsc`,
//!   which blocks the thread; that cannot work on a current-thread runtime, where the
//!   waiter is the thread that runs the tasks.
//! - tokio is built as its docs recommend (`enable_all`, as `#[tokio::main]` does);
//!   epitome always has its reactor and timers.
//! - Each shape builds one runtime per contender, once, as tokio's benchmarks do; the
//!   iterations reuse it.
//!
//! # Running
//!
//! ```text
//! cargo run --release -p epitome-benches -- sched [--quick] [FILTER]
//! ```
//!
//! `FILTER` keeps the cases whose `flavour/shape` name contains it (`current/`,
//! `multi/ping_pong`, `spawn_many`), which is handy under `perf` or `strace`.
//! Threads are not pinned: the multi-threaded contenders need both cores, and the
//! current-thread ones run where the kernel puts them, as users' programs do.
//!
//! # Method
//!
//! - Warm-up: the two contenders alternate single iterations until each has run at
//!   least [`Budget::warmup_iters`] times and [`Budget::warmup`] has passed. The
//!   median warm-up iteration of the slower contender sets how many iterations a
//!   timed sample holds (the same for both), so a sample lasts about
//!   [`Budget::sample`] and the clock's cost and resolution do not matter.
//! - Then [`Budget::rounds`] rounds, each one sample of each contender, interleaved
//!   and alternating which goes first (A B, B A, …) so drift and warm caches reach
//!   both equally.
//! - The table gives each contender's median time per iteration, the ratio of the
//!   medians (epitome ÷ tokio), and the interquartile range of the per-round ratios
//!   (the two samples of one round paired). The target is a ratio ≤ 1.00 on every
//!   shape.

mod shapes;
mod sync;

use std::fmt;
use std::process::ExitCode;
use std::time::{Duration, Instant};

use epitome_benches::machine::Machine;
use shapes::{Iteration, iteration};

/// The usage line for this command.
pub const USAGE: &str = "sched [--quick] [FILTER]";

/// Workers of the multi-threaded contenders.
const WORKERS: usize = 2;

/// epitome may take at most this many times tokio's time on every shape.
const TARGET: f64 = 1.00;

/// How much work a run does.
#[derive(Clone, Copy, Debug)]
struct Budget {
    /// Least warm-up time per shape (both contenders together).
    warmup: Duration,
    /// Least warm-up iterations per contender.
    warmup_iters: usize,
    /// Aimed-for length of one timed sample.
    sample: Duration,
    /// Recorded samples per contender (the median is reported).
    rounds: usize,
}

const FULL: Budget = Budget {
    warmup: Duration::from_millis(200),
    warmup_iters: 5,
    sample: Duration::from_millis(10),
    rounds: 101,
};

const QUICK: Budget = Budget {
    warmup: Duration::from_millis(50),
    warmup_iters: 3,
    sample: Duration::from_millis(3),
    rounds: 15,
};

/// Runs the benchmark; `args` are the arguments after `sched`.
pub fn main(args: &[String]) -> ExitCode {
    let mut quick = false;
    let mut filter = None;
    for arg in args {
        match arg.as_str() {
            "--quick" => quick = true,
            f if !f.starts_with('-') && filter.is_none() => filter = Some(f.to_owned()),
            other => {
                eprintln!("sched: unknown option `{other}`\nusage: epitome-benches {USAGE}");
                return ExitCode::from(2);
            }
        }
    }
    match run(if quick { QUICK } else { FULL }, quick, filter.as_deref()) {
        // A miss is a result, reported in the table, not a failure of the command.
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("sched: {e}");
            ExitCode::FAILURE
        }
    }
}

/// The runtime pairs compared.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Flavour {
    /// epitome `new_current_thread` against tokio `new_current_thread`.
    CurrentThread,
    /// epitome `new_multi_reactor().reactors(2)` against tokio
    /// `new_multi_thread().worker_threads(2)`.
    Multi,
}

impl Flavour {
    /// The flavour's part of the name a `FILTER` is matched against.
    fn key(self) -> &'static str {
        match self {
            Flavour::CurrentThread => "current",
            Flavour::Multi => "multi",
        }
    }
}

impl fmt::Display for Flavour {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Flavour::CurrentThread => "current-thread",
            Flavour::Multi => "multi (2 workers)",
        })
    }
}

/// The benchmark shapes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Shape {
    SpawnMany,
    YieldMany,
    PingPong,
    ChainedSpawn,
    SpawnManyLocal,
    SpawnManyRemoteIdle,
    SpawnManyRemoteBusy,
}

impl Shape {
    fn name(self) -> &'static str {
        match self {
            Shape::SpawnMany => "spawn_many",
            Shape::YieldMany => "yield_many",
            Shape::PingPong => "ping_pong",
            Shape::ChainedSpawn => "chained_spawn",
            Shape::SpawnManyLocal => "spawn_many_local",
            Shape::SpawnManyRemoteIdle => "spawn_many_remote_idle",
            Shape::SpawnManyRemoteBusy => "spawn_many_remote_busy",
        }
    }
}

/// Every (flavour, shape) pair, in table order.
const CASES: &[(Flavour, Shape)] = &[
    (Flavour::CurrentThread, Shape::SpawnMany),
    (Flavour::CurrentThread, Shape::YieldMany),
    (Flavour::CurrentThread, Shape::PingPong),
    (Flavour::CurrentThread, Shape::ChainedSpawn),
    (Flavour::CurrentThread, Shape::SpawnManyLocal),
    (Flavour::CurrentThread, Shape::SpawnManyRemoteIdle),
    (Flavour::CurrentThread, Shape::SpawnManyRemoteBusy),
    (Flavour::Multi, Shape::SpawnMany),
    (Flavour::Multi, Shape::YieldMany),
    (Flavour::Multi, Shape::PingPong),
    (Flavour::Multi, Shape::ChainedSpawn),
];

/// One measured case.
struct Row {
    flavour: Flavour,
    shape: Shape,
    /// Iterations per timed sample.
    iters: usize,
    /// Median time per iteration.
    epitome: Duration,
    tokio: Duration,
    /// Interquartile range of the per-round ratios.
    ratio_q1: f64,
    ratio_q3: f64,
}

impl Row {
    fn ratio(&self) -> f64 {
        self.epitome.as_secs_f64() / self.tokio.as_secs_f64()
    }
}

fn run(budget: Budget, quick: bool, filter: Option<&str>) -> std::io::Result<()> {
    println!("{}", Machine::detect());
    println!(
        "sched: {} mode; {} rounds per case, ~{} ms per sample, contenders interleaved",
        if quick { "quick" } else { "full" },
        budget.rounds,
        budget.sample.as_millis()
    );
    println!(
        "contenders: epitome new_current_thread / tokio new_current_thread().enable_all(); \
         epitome new_multi_reactor().reactors({WORKERS}) / tokio \
         new_multi_thread().worker_threads({WORKERS}).enable_all()"
    );
    let started = Instant::now();
    let mut rows = Vec::with_capacity(CASES.len());
    for &(flavour, shape) in CASES {
        let key = format!("{}/{}", flavour.key(), shape.name());
        if filter.is_some_and(|f| !key.contains(f)) {
            continue;
        }
        let (mut epitome, mut tokio) = build_case(flavour, shape)?;
        let row = measure(budget, flavour, shape, &mut *epitome, &mut *tokio);
        // Drop (shut down) both runtimes before the next case builds its own.
        drop(epitome);
        drop(tokio);
        eprintln!(
            "  {:<24} {:<18} {:>10} {:>10}  {:.2}",
            shape.name(),
            flavour.to_string(),
            fmt_time(row.epitome),
            fmt_time(row.tokio),
            row.ratio()
        );
        rows.push(row);
    }
    println!();
    print_table(&rows);
    println!("total {:.1} s", started.elapsed().as_secs_f64());
    Ok(())
}

fn print_table(rows: &[Row]) {
    println!(
        "{:<24} {:<18} {:>6} {:>11} {:>11} {:>7} {:>13}  target",
        "shape", "runtime", "iters", "epitome", "tokio", "ratio", "ratio IQR"
    );
    for r in rows {
        let ratio = r.ratio();
        println!(
            "{:<24} {:<18} {:>6} {:>11} {:>11} {:>7.2} {:>13}  {}",
            r.shape.name(),
            r.flavour.to_string(),
            r.iters,
            fmt_time(r.epitome),
            fmt_time(r.tokio),
            ratio,
            format!("{:.2}–{:.2}", r.ratio_q1, r.ratio_q3),
            if ratio <= TARGET { "PASS" } else { "MISS" }
        );
    }
    println!(
        "times are the median per iteration; ratio = epitome ÷ tokio; target ≤ {TARGET:.2}; \
         iters = iterations per timed sample"
    );
}

fn fmt_time(d: Duration) -> String {
    let us = d.as_secs_f64() * 1e6;
    if us >= 10_000.0 {
        format!("{:.2} ms", us / 1e3)
    } else {
        format!("{us:.1} µs")
    }
}

fn build_case(flavour: Flavour, shape: Shape) -> std::io::Result<(Iteration, Iteration)> {
    Ok(match flavour {
        Flavour::CurrentThread => (
            iteration(
                epitome_runtime::runtime::Builder::new_current_thread().build()?,
                shape,
            ),
            iteration(
                tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()?,
                shape,
            ),
        ),
        Flavour::Multi => (
            iteration(
                epitome_runtime::runtime::Builder::new_multi_reactor()
                    .reactors(WORKERS)
                    .build()?,
                shape,
            ),
            iteration(
                tokio::runtime::Builder::new_multi_thread()
                    .worker_threads(WORKERS)
                    .enable_all()
                    .build()?,
                shape,
            ),
        ),
    })
}

/// Warms up, calibrates and measures one case.
fn measure(
    budget: Budget,
    flavour: Flavour,
    shape: Shape,
    epitome: &mut dyn FnMut(),
    tokio: &mut dyn FnMut(),
) -> Row {
    let time = |f: &mut dyn FnMut(), n: usize| {
        let start = Instant::now();
        for _ in 0..n {
            f();
        }
        start.elapsed()
    };
    let warm_start = Instant::now();
    let (mut warm_e, mut warm_t) = (Vec::new(), Vec::new());
    while warm_e.len() < budget.warmup_iters || warm_start.elapsed() < budget.warmup {
        warm_e.push(time(epitome, 1));
        warm_t.push(time(tokio, 1));
    }
    let slower = median(&mut warm_e).max(median(&mut warm_t));
    let iters = (budget.sample.as_secs_f64() / slower.as_secs_f64().max(1e-9)).ceil() as usize;
    let iters = iters.clamp(1, 10_000);

    let mut samples_e = Vec::with_capacity(budget.rounds);
    let mut samples_t = Vec::with_capacity(budget.rounds);
    let mut ratios = Vec::with_capacity(budget.rounds);
    for round in 0..budget.rounds {
        let (e, t) = if round % 2 == 0 {
            let e = time(epitome, iters);
            (e, time(tokio, iters))
        } else {
            let t = time(tokio, iters);
            (time(epitome, iters), t)
        };
        ratios.push(e.as_secs_f64() / t.as_secs_f64());
        samples_e.push(e / iters as u32);
        samples_t.push(t / iters as u32);
    }
    ratios.sort_by(f64::total_cmp);
    Row {
        flavour,
        shape,
        iters,
        epitome: median(&mut samples_e),
        tokio: median(&mut samples_t),
        ratio_q1: ratios[ratios.len() / 4],
        ratio_q3: ratios[ratios.len() * 3 / 4],
    }
}

fn median(v: &mut [Duration]) -> Duration {
    v.sort_unstable();
    v[v.len() / 2]
}
