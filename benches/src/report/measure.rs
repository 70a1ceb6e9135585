//! One contender-run of each kind: a closed-loop load, the open-loop latency runs,
//! the idle-memory run, and a herd run. Each starts its own server process, pinned
//! to the server CPU, and leaves nothing behind: the client's connections are reset
//! on close and the server is killed when its [`ServerProcess`] drops, on every path.

use std::io;
use std::net::TcpStream;
use std::thread::sleep;
use std::time::{Duration, Instant};

use epitome_benches::client::closed::ClosedLoop;
use epitome_benches::client::open::{OpenLoop, OpenWindow};
use epitome_benches::client::{self, latency_histogram};
use epitome_benches::echo::{self, Contender};
use epitome_benches::herd::{self, HerdVariant, WorkerCounts};
use epitome_benches::sys;

use super::process::{self, ContextSwitches, CpuTicks, Perf, PerfKind, ServerProcess};
use super::{Budget, Scenario};

/// A figure, or why there is none (printed as `n/a`).
pub type Measured<T> = Result<T, String>;

/// What every run needs to know.
#[derive(Debug)]
pub struct Setup {
    /// The CPU servers are pinned to, if pinning is possible.
    pub server_cpu: Option<usize>,
    /// Whether perf can count syscalls, or why not.
    pub perf: Measured<()>,
    /// Durations and scenarios.
    pub budget: Budget,
}

/// One closed-loop window and what the server spent on it.
#[derive(Clone, Debug)]
pub struct LoadSample {
    /// Round trips completed in the window.
    pub completed: u64,
    /// The window's length.
    pub elapsed: Duration,
    /// The server's CPU time over the window.
    pub cpu: CpuTicks,
    /// The server's context switches over the window.
    pub switches: ContextSwitches,
    /// Server threads at the end of the window.
    pub threads: usize,
    /// Closed-loop round-trip time, ns.
    pub p50_ns: u64,
    /// See `p50_ns`.
    pub p99_ns: u64,
    /// The perf window, or why there was none.
    pub perf: Measured<PerfWindow>,
    /// What else ran on the two CPUs during the window.
    pub interference: Measured<Interference>,
}

/// CPU time that neither the server nor the client used, during a window, as a
/// share of the window: other processes and kernel threads (a build in another
/// session, ksoftirqd), and time the hypervisor gave to other guests (steal).
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct Interference {
    /// On the server's CPU, besides the server.
    pub server_cpu: f64,
    /// On the client's CPU, besides this process.
    pub client_cpu: f64,
    /// Steal on either CPU.
    pub steal: f64,
    /// The window's length in clock ticks, the resolution of the shares above.
    pub window_ticks: f64,
}

/// Snapshot for [`Interference`].
pub(super) struct CpuSnapshot {
    cpus: Vec<process::CpuTimes>,
    server: u64,
    own: u64,
}

impl CpuSnapshot {
    pub(super) fn take(server: &ServerProcess) -> io::Result<CpuSnapshot> {
        let ticks = server.cpu_ticks()?;
        Ok(CpuSnapshot {
            cpus: process::cpu_times()?,
            server: ticks.user + ticks.system,
            own: process::own_ticks()?,
        })
    }

    /// What ran besides server and client between `self` and `later`.
    pub(super) fn interference(
        &self,
        later: &CpuSnapshot,
        server_cpu: Option<usize>,
        elapsed: Duration,
    ) -> Measured<Interference> {
        let server_cpu = server_cpu.ok_or("client and server are not pinned apart")?;
        let client_cpu = super::CLIENT_CPU;
        let delta = |cpu: usize| -> Option<process::CpuTimes> {
            let (a, b) = (self.cpus.get(cpu)?, later.cpus.get(cpu)?);
            Some(process::CpuTimes {
                busy: b.busy.saturating_sub(a.busy),
                steal: b.steal.saturating_sub(a.steal),
            })
        };
        let (Some(s), Some(c)) = (delta(server_cpu), delta(client_cpu)) else {
            return Err("no per-CPU times in /proc/stat".to_owned());
        };
        let ticks = elapsed.as_secs_f64() * sys::clock_ticks_per_second() as f64;
        let share = |t: u64| t as f64 / ticks;
        Ok(Interference {
            server_cpu: share(s.busy.saturating_sub(later.server - self.server)),
            client_cpu: share(c.busy.saturating_sub(later.own - self.own)),
            steal: share(s.steal.max(c.steal)),
            window_ticks: ticks,
        })
    }
}

/// The windows measured with perf attached, after the main one (counting a
/// tracepoint and sampling both slow the machine): first syscalls, then user time,
/// each with only its own perf attached.
#[derive(Clone, Debug)]
pub struct PerfWindow {
    /// `raw_syscalls:sys_enter` of the server.
    pub syscalls: Measured<PerfCount>,
    /// User-mode `cpu-clock` samples of the server, one per
    /// [`USER_SAMPLE_PERIOD_NS`] of CPU time.
    pub user_samples: Measured<PerfCount>,
}

/// What perf counted over one closed-loop window.
#[derive(Clone, Copy, Debug)]
pub struct PerfCount {
    /// Syscalls, or samples.
    pub count: u64,
    /// Round trips completed in the window.
    pub completed: u64,
    /// Its length.
    pub elapsed: Duration,
}

/// The sampling period of the user-time estimate: 10,000 samples per CPU-second.
pub const USER_SAMPLE_PERIOD_NS: u64 = 100_000;

/// One open-loop run at a fixed rate.
#[derive(Clone, Debug)]
pub struct OpenSample {
    /// The load, in percent of tokio's peak.
    pub percent: u32,
    /// What the driver did.
    pub window: OpenWindow,
    /// Latency from the intended send time, ns.
    pub p50_ns: u64,
    /// See `p50_ns`.
    pub p99_ns: u64,
    /// See `p50_ns`.
    pub p999_ns: u64,
    /// What else ran on the two CPUs during the run (warm-up, window and drain).
    pub interference: Measured<Interference>,
}

/// Other work above this share of a CPU during a window marks the run as disturbed
/// (it is repeated while the report's repeat allowance lasts, and counted in the
/// report if it stays disturbed)...
pub const DISTURBED: f64 = 0.10;
/// ... and above this many clock ticks: `/proc/stat` counts in 10 ms ticks, so in
/// a 200 ms window one stray tick is already 5%.
pub const DISTURBED_TICKS: f64 = 3.0;

impl Interference {
    /// Whether this much other work makes the window's figures suspect.
    pub fn disturbed(&self) -> bool {
        let worst = self.server_cpu.max(self.client_cpu).max(self.steal);
        worst > DISTURBED && worst * self.window_ticks > DISTURBED_TICKS
    }
}

/// Memory held for idle connections.
#[derive(Clone, Copy, Debug)]
pub struct IdleSample {
    /// Connections opened.
    pub connections: usize,
    /// Server RSS after minus before, KiB.
    pub rss_delta_kib: i64,
    /// Machine-wide slab after minus before, KiB (both ends of every connection).
    pub slab_delta_kib: i64,
    /// Server threads with the connections open.
    pub threads: usize,
}

/// One herd run.
#[derive(Clone, Debug)]
pub struct HerdSample {
    /// Connections opened.
    pub connections: usize,
    /// Each worker's counters.
    pub workers: Vec<WorkerCounts>,
    /// The workers' context switches while the connections were opened.
    pub switches: ContextSwitches,
    /// Connect to first echoed byte, ns.
    pub p50_ns: u64,
    /// See `p50_ns`.
    pub p99_ns: u64,
}

/// The worker threads the report gives `contender` in the main scenarios: the same
/// count for every multi-threaded contender ([`echo::MULTI_THREADED`]), none (its own
/// choice) for the others.
pub fn threads_for(contender: &Contender) -> Option<usize> {
    echo::MULTI_THREADED
        .contains(&contender.name)
        .then_some(echo::LIKE_FOR_LIKE_THREADS)
}

/// Starts `contender` with `threads` worker threads (its default if `None`).
pub(super) fn spawn_echo(
    setup: &Setup,
    contender: &Contender,
    threads: Option<usize>,
) -> io::Result<ServerProcess> {
    let mut args = vec!["server".to_owned(), contender.name.to_owned()];
    args.extend(["--addr".to_owned(), "127.0.0.1:0".to_owned()]);
    if let Some(threads) = threads {
        args.extend(["--threads".to_owned(), threads.to_string()]);
    }
    if let Some(cpu) = setup.server_cpu {
        args.extend(["--cpu".to_owned(), cpu.to_string()]);
    }
    spawn_pinned(setup, &args)
}

/// Starts a server and checks that it pinned itself where asked.
pub(super) fn spawn_pinned(setup: &Setup, args: &[String]) -> io::Result<ServerProcess> {
    let server = ServerProcess::spawn(args)?;
    if let Some(cpu) = setup.server_cpu {
        let allowed = server.cpus_allowed()?;
        if allowed != cpu.to_string() {
            return Err(io::Error::other(format!(
                "the server runs on CPUs {allowed}, not CPU {cpu}"
            )));
        }
    }
    Ok(server)
}

/// Closes the client's connections with a reset (no TIME_WAIT left behind). After
/// many, waits for the kernel's deferred socket teardown (RCU callbacks, kworkers)
/// to finish, so that it does not land in the next run's window.
pub(super) fn close(streams: Vec<TcpStream>) {
    for stream in &streams {
        let _ = sys::reset_on_close(stream);
    }
    let many = streams.len() >= SETTLE_AFTER;
    drop(streams);
    if many {
        settle();
    }
}

/// Connections closed at once after which [`settle`] waits.
pub(super) const SETTLE_AFTER: usize = 1_000;

/// Waits until both pinned CPUs are idle (at least 90% over 50 ms), at most 200 ms
/// (on a machine busy with other work they never are).
pub fn settle() {
    let deadline = Instant::now() + Duration::from_millis(200);
    while Instant::now() < deadline {
        let Ok(before) = process::cpu_times() else {
            return;
        };
        let Ok(idle_before) = process::cpu_idle() else {
            return;
        };
        sleep(Duration::from_millis(50));
        let (Ok(after), Ok(idle_after)) = (process::cpu_times(), process::cpu_idle()) else {
            return;
        };
        let quiet = (0..2).all(|cpu| {
            let busy = match (before.get(cpu), after.get(cpu)) {
                (Some(b), Some(a)) => a.busy.saturating_sub(b.busy),
                _ => 0,
            };
            let idle = match (idle_before.get(cpu), idle_after.get(cpu)) {
                (Some(b), Some(a)) => a.saturating_sub(*b),
                _ => 0,
            };
            busy * 10 <= busy + idle
        });
        if quiet {
            return;
        }
    }
}

/// A closed-loop run of `scenario` against a fresh server.
pub fn load_run(
    setup: &Setup,
    contender: &Contender,
    scenario: &Scenario,
) -> io::Result<LoadSample> {
    load_run_with(setup, contender, threads_for(contender), scenario)
}

/// [`load_run`] with `threads` worker threads (the contender's default if `None`).
pub fn load_run_with(
    setup: &Setup,
    contender: &Contender,
    threads: Option<usize>,
    scenario: &Scenario,
) -> io::Result<LoadSample> {
    let mut server = spawn_echo(setup, contender, threads)?;
    let streams = client::connect(server.addr, scenario.connections, scenario.size)?;
    let mut driver = ClosedLoop::new(streams, scenario.size)?;
    let sample = measure_closed(setup, &mut server, &mut driver, scenario);
    close(driver.into_streams());
    sample
}

/// Warm-up, the measured window, then (if asked) the perf window.
fn measure_closed(
    setup: &Setup,
    server: &mut ServerProcess,
    driver: &mut ClosedLoop,
    scenario: &Scenario,
) -> io::Result<LoadSample> {
    let mut scratch = latency_histogram();
    driver.run_for(setup.budget.warmup, &mut scratch)?;
    let (cpu0, switches0) = (server.cpu_ticks()?, server.context_switches(None)?);
    let snapshot0 = CpuSnapshot::take(server)?;
    let mut latency = latency_histogram();
    let window = driver.run_for(scenario.window, &mut latency)?;
    let snapshot1 = CpuSnapshot::take(server)?;
    let (cpu1, switches1) = (server.cpu_ticks()?, server.context_switches(None)?);
    let interference = snapshot0.interference(&snapshot1, setup.server_cpu, window.elapsed);
    let threads = server.threads()?;
    server.check_alive()?;
    if window.completed == 0 {
        return Err(io::Error::other(format!(
            "no round trip completed in the {} ms window ({} connections in flight)",
            window.elapsed.as_millis(),
            scenario.connections
        )));
    }
    let perf = match (&setup.perf, scenario.perf_window) {
        (Err(why), _) => Err(why.clone()),
        (Ok(()), None) => Err("not measured in this scenario in quick mode".to_owned()),
        (Ok(()), Some(perf_window)) => {
            perf_window_run(server.pid, driver, perf_window).map_err(|e| format!("perf: {e}"))
        }
    };
    Ok(LoadSample {
        completed: window.completed,
        elapsed: window.elapsed,
        cpu: CpuTicks {
            user: cpu1.user.saturating_sub(cpu0.user),
            system: cpu1.system.saturating_sub(cpu0.system),
        },
        switches: ContextSwitches {
            voluntary: switches1.voluntary.saturating_sub(switches0.voluntary),
            nonvoluntary: switches1
                .nonvoluntary
                .saturating_sub(switches0.nonvoluntary),
        },
        threads,
        p50_ns: latency.value_at_quantile(0.5),
        p99_ns: latency.value_at_quantile(0.99),
        perf,
        interference,
    })
}

/// Two closed-loop windows: one with perf counting syscalls, then one with perf
/// sampling user time. Both perf processes start together (with their events off)
/// to overlap their start-up, but the syscall counter is gone before sampling
/// starts: an open `raw_syscalls` event sends every syscall on the machine down the
/// slow, traced path, even while it is disabled.
fn perf_window_run(pid: u32, driver: &mut ClosedLoop, window: Duration) -> io::Result<PerfWindow> {
    let record = Perf::attach(
        pid,
        PerfKind::UserSamples {
            period_ns: USER_SAMPLE_PERIOD_NS,
        },
    );
    let stat = Perf::attach(pid, PerfKind::Syscalls);
    let syscalls = count_window(stat, driver, window)?;
    let user_samples = count_window(record, driver, window)?;
    Ok(PerfWindow {
        syscalls,
        user_samples,
    })
}

/// Enables `perf`, drives `window`, and returns what perf counted in it. A perf
/// failure is a figure's `n/a`; a client failure is an error.
fn count_window(
    perf: io::Result<Perf>,
    driver: &mut ClosedLoop,
    window: Duration,
) -> io::Result<Measured<PerfCount>> {
    let mut perf = match perf.and_then(|mut p| p.enable().map(|()| p)) {
        Ok(perf) => perf,
        Err(e) => return Ok(Err(e.to_string())),
    };
    let mut scratch = latency_histogram();
    let measured = driver.run_for(window, &mut scratch)?;
    let count = perf.disable().and_then(|()| perf.finish());
    Ok(count
        .map(|count| PerfCount {
            count,
            completed: measured.completed,
            elapsed: measured.elapsed,
        })
        .map_err(|e| e.to_string()))
}

/// Open-loop runs at each `(percent, rate)` against a fresh server.
pub fn latency_run(
    setup: &Setup,
    contender: &Contender,
    scenario: &Scenario,
    rates: &[(u32, f64)],
) -> io::Result<Vec<OpenSample>> {
    let mut server = spawn_echo(setup, contender, threads_for(contender))?;
    let streams = client::connect(server.addr, scenario.connections, scenario.size)?;
    let mut driver = OpenLoop::new(streams, scenario.size)?;
    let mut samples = Vec::new();
    let result = (|| {
        for &(percent, rate) in rates {
            let mut latency = latency_histogram();
            let before = CpuSnapshot::take(&server)?;
            let started = Instant::now();
            let window = driver.run(
                rate,
                setup.budget.open_warmup,
                setup.budget.open_window,
                &mut latency,
            )?;
            let elapsed = started.elapsed();
            let interference =
                before.interference(&CpuSnapshot::take(&server)?, setup.server_cpu, elapsed);
            server.check_alive()?;
            samples.push(OpenSample {
                percent,
                window,
                p50_ns: latency.value_at_quantile(0.5),
                p99_ns: latency.value_at_quantile(0.99),
                p999_ns: latency.value_at_quantile(0.999),
                interference,
            });
        }
        Ok(())
    })();
    close(driver.into_streams());
    result.map(|()| samples)
}

/// Memory for [`echo::IDLE_CONNECTIONS`] idle connections on a fresh server; then,
/// if `then` is given, a closed-loop run of it on those connections.
pub fn idle_run(
    setup: &Setup,
    contender: &Contender,
    threads: Option<usize>,
    then: Option<&Scenario>,
) -> io::Result<(IdleSample, Option<LoadSample>)> {
    let mut server = spawn_echo(setup, contender, threads)?;
    // Let the server finish starting (runtime threads, first allocations).
    sleep(Duration::from_millis(50));
    let (rss0, slab0) = (server.rss_kib()?, process::slab_kib()?);
    let streams = client::connect(server.addr, echo::IDLE_CONNECTIONS, echo::MAIN_SIZE)?;
    // Let deferred kernel work (socket frees, RCU) settle before reading.
    sleep(Duration::from_millis(100));
    let (rss1, slab1) = (server.rss_kib()?, process::slab_kib()?);
    let idle = IdleSample {
        connections: streams.len(),
        rss_delta_kib: rss1 as i64 - rss0 as i64,
        slab_delta_kib: slab1 as i64 - slab0 as i64,
        threads: server.threads()?,
    };
    let Some(scenario) = then else {
        close(streams);
        return Ok((idle, None));
    };
    let mut driver = ClosedLoop::new(streams, scenario.size)?;
    let load = measure_closed(setup, &mut server, &mut driver, scenario);
    close(driver.into_streams());
    Ok((idle, Some(load?)))
}

/// A herd run of `variant`: [`herd::CONNECTIONS`] connections, one at a time.
pub fn herd_run(setup: &Setup, variant: &HerdVariant) -> io::Result<HerdSample> {
    let mut args = vec!["herd-server".to_owned(), variant.name.to_owned()];
    args.extend(["--workers".to_owned(), herd::WORKERS.to_string()]);
    if let Some(cpu) = setup.server_cpu {
        args.extend(["--cpu".to_owned(), cpu.to_string()]);
    }
    let mut server = spawn_pinned(setup, &args)?;
    // Let every worker reach epoll_wait.
    sleep(Duration::from_millis(50));
    let before = server.context_switches(Some(herd::THREAD_PREFIX))?;
    let (streams, latency) =
        client::herd::connect_one_by_one(server.addr, herd::CONNECTIONS, echo::MAIN_SIZE)?;
    let after = server.context_switches(Some(herd::THREAD_PREFIX))?;
    let answer = server.request("stats");
    let connections = streams.len();
    close(streams);
    let answer = answer?;
    let workers = herd::parse_counts(&answer)
        .ok_or_else(|| io::Error::other(format!("the herd server answered `{answer}`")))?;
    Ok(HerdSample {
        connections,
        workers,
        switches: ContextSwitches {
            voluntary: after.voluntary.saturating_sub(before.voluntary),
            nonvoluntary: after.nonvoluntary.saturating_sub(before.nonvoluntary),
        },
        p50_ns: latency.value_at_quantile(0.5),
        p99_ns: latency.value_at_quantile(0.99),
    })
}
