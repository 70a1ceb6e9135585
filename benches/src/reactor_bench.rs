//! `reactor`: the reactor's readiness path and its timers, measured.
//!
//! # Readiness path, epitome against tokio's `AsyncFd`
//!
//! 64 eventfds, each watched by a task that loops: wait for readability, read the
//! eventfd (which resets it), count. A producer task writes 1 to every eventfd, then
//! waits until all 64 were consumed, round after round. Each event goes through the
//! same steps in both runtimes: the producer's `write`, the reactor's wait reporting
//! the event, the wake, the watcher's poll and its `read` (which meets `EAGAIN` on the
//! next try and clears readiness). epitome uses `io::Async` (the public building
//! block), tokio `AsyncFd`, as its docs show; both on a current-thread runtime, in the
//! same process, rounds interleaved. Reported per event: wall time, user CPU, system
//! CPU (`getrusage(RUSAGE_THREAD)`: everything runs on this thread), and the ratio.
//!
//! # Timers
//!
//! 100,000 sleeps with deadlines spread uniformly over the next second (a seeded
//! generator), on one current-thread runtime. Each sleep's task records when it woke
//! (`Instant::now()` at its first poll after the deadline). Reported: how many woke
//! early (must be 0), whether they woke in deadline order (ties within one
//! microsecond tick aside), and the lateness percentiles. The same workload runs on
//! tokio's timer for comparison. The target (issue: p99 lateness ≤ 1 ms on an idle
//! machine) is printed as PASS or MISS; it is a measurement, not a test.

use std::future::poll_fn;
use std::io;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, FromRawFd, OwnedFd, RawFd};
use std::process::ExitCode;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::task::Poll;
use std::time::{Duration, Instant};

use epitome_benches::machine::Machine;

/// The usage line for this command.
pub const USAGE: &str = "reactor [--quick]";

const WATCHERS: usize = 64;

struct EventFd(OwnedFd);

impl EventFd {
    fn new() -> EventFd {
        // SAFETY: plain syscall; the result is checked.
        let fd = unsafe { libc::eventfd(0, libc::EFD_NONBLOCK | libc::EFD_CLOEXEC) };
        assert!(fd >= 0, "eventfd: {}", io::Error::last_os_error());
        // SAFETY: a fresh fd nothing else owns.
        EventFd(unsafe { OwnedFd::from_raw_fd(fd) })
    }
}

impl AsFd for EventFd {
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.0.as_fd()
    }
}

impl AsRawFd for EventFd {
    fn as_raw_fd(&self) -> RawFd {
        self.0.as_raw_fd()
    }
}

fn write_one(fd: RawFd) {
    let one = 1u64.to_ne_bytes();
    // SAFETY: `one` is 8 readable bytes.
    let n = unsafe { libc::write(fd, one.as_ptr().cast(), 8) };
    assert_eq!(n, 8, "eventfd write: {}", io::Error::last_os_error());
}

fn read_counter(fd: RawFd) -> io::Result<u64> {
    let mut buf = [0u8; 8];
    // SAFETY: `buf` is 8 writable bytes.
    let n = unsafe { libc::read(fd, buf.as_mut_ptr().cast(), 8) };
    if n < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(u64::from_ne_bytes(buf))
    }
}

/// User and system CPU of this thread, in microseconds.
fn thread_cpu() -> (f64, f64) {
    // SAFETY: a zeroed rusage is valid and getrusage fills it.
    let mut ru: libc::rusage = unsafe { std::mem::zeroed() };
    // SAFETY: `ru` is valid for writes.
    unsafe { libc::getrusage(libc::RUSAGE_THREAD, &mut ru) };
    let us = |t: libc::timeval| t.tv_sec as f64 * 1e6 + t.tv_usec as f64;
    (us(ru.ru_utime), us(ru.ru_stime))
}

#[derive(Clone, Copy, Default)]
struct Sample {
    wall_ns: f64,
    user_ns: f64,
    sys_ns: f64,
}

fn measure(events: usize, f: impl FnOnce()) -> Sample {
    let (u0, s0) = thread_cpu();
    let start = Instant::now();
    f();
    let wall = start.elapsed();
    let (u1, s1) = thread_cpu();
    let n = events as f64;
    Sample {
        wall_ns: wall.as_nanos() as f64 / n,
        user_ns: (u1 - u0) * 1e3 / n,
        sys_ns: (s1 - s0) * 1e3 / n,
    }
}

/// One readiness round trip per watcher per round, on epitome.
fn epitome_readiness(rt: &epitome_runtime::runtime::Runtime, rounds: usize) {
    use epitome_runtime::io::Async;
    rt.block_on(async move {
        let consumed = Arc::new(AtomicUsize::new(0));
        let mut fds = Vec::new();
        let mut tasks = Vec::new();
        for _ in 0..WATCHERS {
            let fd = Arc::new(Async::new(EventFd::new()).expect("register"));
            fds.push(fd.as_raw_fd());
            let consumed = consumed.clone();
            let watcher = fd.clone();
            tasks.push(epitome_runtime::spawn(async move {
                loop {
                    match watcher.read_with(|e| read_counter(e.as_raw_fd())).await {
                        Ok(_) => {
                            consumed.fetch_add(1, Ordering::Relaxed);
                        }
                        Err(e) => panic!("read: {e}"),
                    }
                }
            }));
        }
        for round in 1..=rounds {
            for &fd in &fds {
                write_one(fd);
            }
            poll_fn(|cx| {
                if consumed.load(Ordering::Relaxed) >= round * WATCHERS {
                    Poll::Ready(())
                } else {
                    cx.waker().wake_by_ref();
                    Poll::Pending
                }
            })
            .await;
        }
        for t in tasks {
            t.abort();
        }
    });
}

/// The same workload on tokio, with `AsyncFd`.
fn tokio_readiness(rt: &tokio::runtime::Runtime, rounds: usize) {
    use tokio::io::unix::AsyncFd;
    rt.block_on(async move {
        let consumed = Arc::new(AtomicUsize::new(0));
        let mut fds = Vec::new();
        let mut tasks = Vec::new();
        for _ in 0..WATCHERS {
            // SAFETY: the EventFd owns its fd, which stays open and the same for the
            // AsyncFd's whole life (the AsyncFd owns the EventFd).
            let fd = Arc::new(unsafe { AsyncFd::register(EventFd::new()) }.expect("register"));
            fds.push(fd.as_raw_fd());
            let consumed = consumed.clone();
            let watcher = fd.clone();
            tasks.push(tokio::spawn(async move {
                loop {
                    let mut guard = watcher.readable().await.expect("readable");
                    match guard.try_io(|e| read_counter(e.as_raw_fd())) {
                        Ok(Ok(_)) => {
                            consumed.fetch_add(1, Ordering::Relaxed);
                        }
                        Ok(Err(e)) => panic!("read: {e}"),
                        Err(_would_block) => continue,
                    }
                }
            }));
        }
        for round in 1..=rounds {
            for &fd in &fds {
                write_one(fd);
            }
            poll_fn(|cx| {
                if consumed.load(Ordering::Relaxed) >= round * WATCHERS {
                    Poll::Ready(())
                } else {
                    cx.waker().wake_by_ref();
                    Poll::Pending
                }
            })
            .await;
        }
        for t in tasks {
            t.abort();
        }
    });
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

fn readiness(quick: bool) {
    let rounds = if quick { 300 } else { 2_000 };
    let reps = if quick { 5 } else { 11 };
    let events = rounds * WATCHERS;
    let ep = epitome_runtime::runtime::Builder::new_current_thread()
        .build()
        .expect("epitome runtime");
    let tk = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("tokio runtime");
    // Warm up both.
    epitome_readiness(&ep, rounds / 10);
    tokio_readiness(&tk, rounds / 10);
    let mut e = Vec::new();
    let mut t = Vec::new();
    for i in 0..reps {
        // Interleave, alternating who goes first.
        if i % 2 == 0 {
            e.push(measure(events, || epitome_readiness(&ep, rounds)));
            t.push(measure(events, || tokio_readiness(&tk, rounds)));
        } else {
            t.push(measure(events, || tokio_readiness(&tk, rounds)));
            e.push(measure(events, || epitome_readiness(&ep, rounds)));
        }
    }
    let pick = |v: &[Sample], f: fn(&Sample) -> f64| median(v.iter().map(f).collect());
    println!(
        "\nreadiness path: {WATCHERS} eventfds, {rounds} rounds ({events} events) per sample, median of {reps}"
    );
    println!(
        "{:<22} {:>12} {:>12} {:>8}",
        "per event", "epitome", "tokio", "ratio"
    );
    for (name, f) in [
        ("wall ns", (|s: &Sample| s.wall_ns) as fn(&Sample) -> f64),
        ("user CPU ns", |s: &Sample| s.user_ns),
        ("system CPU ns", |s: &Sample| s.sys_ns),
    ] {
        let (a, b) = (pick(&e, f), pick(&t, f));
        println!("{name:<22} {a:>12.1} {b:>12.1} {:>7.2}x", a / b);
    }
}

/// SplitMix64, for reproducible deadlines.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
}

struct TimerResult {
    early: usize,
    out_of_order: usize,
    lateness_us: Vec<f64>,
}

fn analyse(deadlines: &[Instant], woke: &[(usize, Instant)]) -> TimerResult {
    let mut early = 0;
    let mut lateness_us = Vec::with_capacity(woke.len());
    for &(i, at) in woke {
        if at < deadlines[i] {
            early += 1;
        } else {
            lateness_us.push((at - deadlines[i]).as_secs_f64() * 1e6);
        }
    }
    // Wake order against deadline order, with a one-microsecond tick of slack.
    let out_of_order = woke
        .windows(2)
        .filter(|w| deadlines[w[0].0] > deadlines[w[1].0] + Duration::from_micros(1))
        .count();
    lateness_us.sort_by(f64::total_cmp);
    TimerResult {
        early,
        out_of_order,
        lateness_us,
    }
}

fn percentile(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i]
}

fn timers(quick: bool) {
    let n = if quick { 20_000 } else { 100_000 };
    let spread = Duration::from_secs(1);
    // The first deadline comes this long after the tasks are spawned, so every sleep is
    // registered (its first poll) before any is due: lateness then measures the timer,
    // not the time it took to start 100,000 tasks.
    let lead = Duration::from_millis(300);
    let mut rng = Rng(0x5EED);
    let offsets: Vec<Duration> = (0..n)
        .map(|_| Duration::from_nanos(rng.next() % spread.as_nanos() as u64))
        .collect();

    let ep = epitome_runtime::runtime::Builder::new_current_thread()
        .build()
        .expect("epitome runtime");
    let ep_result = ep.block_on(async {
        let log = Arc::new(std::sync::Mutex::new(Vec::with_capacity(n)));
        let start = Instant::now() + lead;
        let deadlines: Vec<Instant> = offsets.iter().map(|o| start + *o).collect();
        let mut tasks = Vec::with_capacity(n);
        for (i, d) in deadlines.iter().enumerate() {
            let log = log.clone();
            let d = *d;
            tasks.push(epitome_runtime::spawn(async move {
                epitome_runtime::time::sleep_until(d).await;
                let now = Instant::now();
                log.lock().unwrap().push((i, now));
            }));
        }
        for t in tasks {
            t.await.expect("sleep task");
        }
        let woke = std::mem::take(&mut *log.lock().unwrap());
        analyse(&deadlines, &woke)
    });
    drop(ep);

    let tk = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("tokio runtime");
    let tk_result = tk.block_on(async {
        let log = Arc::new(std::sync::Mutex::new(Vec::with_capacity(n)));
        let start = Instant::now() + lead;
        let deadlines: Vec<Instant> = offsets.iter().map(|o| start + *o).collect();
        let mut tasks = Vec::with_capacity(n);
        for (i, d) in deadlines.iter().enumerate() {
            let log = log.clone();
            let d = *d;
            tasks.push(tokio::spawn(async move {
                tokio::time::sleep_until(d.into()).await;
                let now = Instant::now();
                log.lock().unwrap().push((i, now));
            }));
        }
        for t in tasks {
            t.await.expect("sleep task");
        }
        let woke = std::mem::take(&mut *log.lock().unwrap());
        analyse(&deadlines, &woke)
    });

    println!(
        "\ntimers: {n} sleeps, deadlines uniform over the next {spread:?}, one current-thread runtime each"
    );
    println!("{:<26} {:>12} {:>12}", "", "epitome", "tokio");
    println!(
        "{:<26} {:>12} {:>12}",
        "woke early", ep_result.early, tk_result.early
    );
    println!(
        "{:<26} {:>12} {:>12}",
        "out of deadline order", ep_result.out_of_order, tk_result.out_of_order
    );
    for (label, p) in [
        ("lateness p50 µs", 0.5),
        ("lateness p99 µs", 0.99),
        ("lateness p99.9 µs", 0.999),
        ("lateness max µs", 1.0),
    ] {
        println!(
            "{label:<26} {:>12.1} {:>12.1}",
            percentile(&ep_result.lateness_us, p),
            percentile(&tk_result.lateness_us, p)
        );
    }
    let p99 = percentile(&ep_result.lateness_us, 0.99);
    println!(
        "target: epitome p99 lateness <= 1 ms, never early, in deadline order: {}",
        if p99 <= 1000.0 && ep_result.early == 0 && ep_result.out_of_order == 0 {
            "PASS"
        } else {
            "MISS"
        }
    );
}

/// Runs the command.
pub fn main(args: &[String]) -> ExitCode {
    let mut quick = false;
    for a in args {
        match a.as_str() {
            "--quick" => quick = true,
            other => {
                eprintln!("unknown option `{other}`\nusage: {USAGE}");
                return ExitCode::from(2);
            }
        }
    }
    let machine = Machine::detect();
    println!("{machine}");
    readiness(quick);
    timers(quick);
    ExitCode::SUCCESS
}
