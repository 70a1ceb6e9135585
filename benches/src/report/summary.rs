//! Medians of the runs: one summary per contender (or herd variant) and figure,
//! with the reason when there is none.

use epitome_benches::echo::Family;
use epitome_benches::herd;
use epitome_benches::sys;

use super::PerContender;
use super::measure::{
    DISTURBED, HerdSample, IdleSample, Interference, LoadSample, Measured, OpenSample, PerfCount,
    PerfWindow, USER_SAMPLE_PERIOD_NS,
};

/// The median, or `None` for no values.
pub fn median(mut v: Vec<f64>) -> Option<f64> {
    if v.is_empty() {
        return None;
    }
    v.sort_by(f64::total_cmp);
    let mid = v.len() / 2;
    Some(if v.len() % 2 == 1 {
        v[mid]
    } else {
        (v[mid - 1] + v[mid]) / 2.0
    })
}

/// `v` with `decimals` decimals, or `n/a`.
pub fn fmt(v: Option<f64>, decimals: usize) -> String {
    v.map_or_else(|| "n/a".to_owned(), |v| format!("{v:.decimals$}"))
}

/// The runs that succeeded, and the first failure's reason.
pub fn successes<T>(samples: &[Measured<T>]) -> (Vec<&T>, Option<&str>) {
    let ok = samples.iter().filter_map(|s| s.as_ref().ok()).collect();
    let err = samples
        .iter()
        .find_map(|s| s.as_ref().err().map(String::as_str));
    (ok, err)
}

/// One contender's closed-loop figures in one scenario: medians of the runs.
#[derive(Clone, Debug)]
pub struct LoadSummary {
    /// Runs that succeeded, of all runs.
    pub ok_runs: (usize, usize),
    /// req/s.
    pub rate: f64,
    /// Lowest and highest run.
    pub rate_range: (f64, f64),
    /// Server user CPU µs per request, sampled by perf (`cpu-clock:u`) in the perf
    /// window, or why not.
    pub user_sampled_us: Measured<f64>,
    /// Server user CPU µs per request from `/proc/PID/stat` `utime`.
    pub user_us: f64,
    /// Server user + system CPU µs per request.
    pub total_us: f64,
    /// User-time ticks counted in the median run, for the resolution.
    pub user_ticks: f64,
    /// Syscalls per request, or why not.
    pub syscalls: Measured<f64>,
    /// Throughput in the syscall-counting and the sampling windows, relative to the
    /// main window's (medians).
    pub perf_slowdown: Option<(f64, f64)>,
    /// Context switches per request.
    pub switches: f64,
    /// Closed-loop round trip, µs.
    pub p50_us: f64,
    /// See `p50_us`.
    pub p99_us: f64,
    /// Server threads.
    pub threads: f64,
    /// The first failure, if any run failed.
    pub failure: Option<String>,
}

/// µs per clock tick of `/proc` CPU times.
pub fn tick_us() -> f64 {
    1e6 / sys::clock_ticks_per_second() as f64
}

/// The medians of `samples`, or the reason there are none.
pub fn summarize_load(samples: &[Measured<LoadSample>]) -> Measured<LoadSummary> {
    let (ok, err) = successes(samples);
    let failure = err.map(str::to_owned);
    if ok.is_empty() {
        return Err(failure.unwrap_or_else(|| "not run".to_owned()));
    }
    let tick = tick_us();
    let per = |f: &dyn Fn(&LoadSample) -> f64| median(ok.iter().map(|s| f(s)).collect());
    let rates: Vec<f64> = ok.iter().map(|s| super::rate(s)).collect();
    let lo = rates.iter().copied().fold(f64::INFINITY, f64::min);
    let hi = rates.iter().copied().fold(f64::NEG_INFINITY, f64::max);
    // A figure from one of the perf windows, per request; and that window's
    // throughput relative to the main window's, for the notes.
    let perf_figure = |pick: &dyn Fn(&PerfWindow) -> &Measured<PerfCount>,
                       scale: f64|
     -> (Measured<f64>, Option<f64>) {
        let mut first_err = None;
        let mut values = Vec::new();
        let mut slowdowns = Vec::new();
        for sample in &ok {
            let counted = sample
                .perf
                .as_ref()
                .map_err(String::clone)
                .and_then(|w| pick(w).clone());
            match counted {
                Ok(c) if c.completed > 0 => {
                    values.push(c.count as f64 * scale / c.completed as f64);
                    let rate = c.completed as f64 / c.elapsed.as_secs_f64();
                    slowdowns.push(rate / super::rate(sample));
                }
                Ok(_) => {
                    first_err
                        .get_or_insert("no round trip completed in the perf window".to_owned());
                }
                Err(e) => {
                    first_err.get_or_insert(e);
                }
            }
        }
        let value = median(values).ok_or_else(|| first_err.unwrap_or_else(|| "not run".to_owned()));
        (value, median(slowdowns))
    };
    let (syscalls, syscall_slowdown) = perf_figure(&|w| &w.syscalls, 1.0);
    let (user_sampled_us, sample_slowdown) =
        perf_figure(&|w| &w.user_samples, USER_SAMPLE_PERIOD_NS as f64 / 1e3);
    let perf_slowdown = syscall_slowdown.zip(sample_slowdown);
    Ok(LoadSummary {
        ok_runs: (ok.len(), samples.len()),
        rate: median(rates).unwrap_or(0.0),
        rate_range: (lo, hi),
        user_sampled_us,
        user_us: per(&|s| s.cpu.user as f64 * tick / s.completed as f64).unwrap_or(0.0),
        total_us: per(&|s| (s.cpu.user + s.cpu.system) as f64 * tick / s.completed as f64)
            .unwrap_or(0.0),
        user_ticks: per(&|s| s.cpu.user as f64).unwrap_or(0.0),
        syscalls,
        perf_slowdown,
        switches: per(&|s| s.switches.total() as f64 / s.completed as f64).unwrap_or(0.0),
        p50_us: per(&|s| s.p50_ns as f64 / 1e3).unwrap_or(0.0),
        p99_us: per(&|s| s.p99_ns as f64 / 1e3).unwrap_or(0.0),
        threads: per(&|s| s.threads as f64).unwrap_or(0.0),
        failure,
    })
}

/// The faster tokio contender's median throughput in a scenario, and its name. When
/// no tokio contender ran (`--only`), the fastest contender's, labelled as such.
pub fn tokio_peak(load: &PerContender<LoadSample>) -> Option<(f64, String)> {
    let fastest = |tokio_only: bool| {
        load.iter()
            .filter(|(c, _)| !tokio_only || c.family == Family::Tokio)
            .filter_map(|(c, samples)| summarize_load(samples).ok().map(|s| (s.rate, c.name)))
            .max_by(|a, b| a.0.total_cmp(&b.0))
    };
    if let Some((rate, name)) = fastest(true) {
        return Some((rate, name.to_owned()));
    }
    fastest(false)
        .map(|(rate, name)| (rate, format!("no tokio contender ran: the fastest, {name}")))
}

/// One contender's open-loop figures at one load: medians of the runs.
#[derive(Clone, Copy, Debug)]
pub struct LatencySummary {
    /// Offered req/s.
    pub rate: f64,
    /// Achieved req/s.
    pub achieved: f64,
    /// µs.
    pub p50_us: f64,
    /// µs.
    pub p99_us: f64,
    /// µs.
    pub p999_us: f64,
    /// Requests of the window unanswered by the end of the drain (median).
    pub incomplete: f64,
}

/// One contender's open-loop figures at `percent` load, or why there are none.
pub fn summarize_latency(
    samples: &[Measured<Vec<OpenSample>>],
    percent: u32,
) -> Measured<LatencySummary> {
    let (ok, err) = successes(samples);
    let at: Vec<&OpenSample> = ok
        .iter()
        .filter_map(|runs| runs.iter().find(|s| s.percent == percent))
        .collect();
    if at.is_empty() {
        return Err(err.unwrap_or("not run").to_owned());
    }
    let per =
        |f: &dyn Fn(&OpenSample) -> f64| median(at.iter().map(|s| f(s)).collect()).unwrap_or(0.0);
    Ok(LatencySummary {
        rate: per(&|s| s.window.rate),
        achieved: per(&|s| s.window.achieved),
        p50_us: per(&|s| s.p50_ns as f64 / 1e3),
        p99_us: per(&|s| s.p99_ns as f64 / 1e3),
        p999_us: per(&|s| s.p999_ns as f64 / 1e3),
        incomplete: per(&|s| s.window.incomplete as f64),
    })
}

/// One contender's idle-connection memory: medians of the runs.
#[derive(Clone, Copy, Debug)]
pub struct IdleSummary {
    /// Server RSS per connection, bytes.
    pub rss_per_conn: f64,
    /// Machine-wide slab per connection (both ends), bytes.
    pub slab_per_conn: f64,
    /// Server threads.
    pub threads: f64,
}

/// One contender's idle memory, or why there is none.
pub fn summarize_idle(samples: &[Measured<IdleSample>]) -> Measured<IdleSummary> {
    let (ok, err) = successes(samples);
    if ok.is_empty() {
        return Err(err.unwrap_or("not run").to_owned());
    }
    let per =
        |f: &dyn Fn(&IdleSample) -> f64| median(ok.iter().map(|s| f(s)).collect()).unwrap_or(0.0);
    Ok(IdleSummary {
        rss_per_conn: per(&|s| s.rss_delta_kib as f64 * 1024.0 / s.connections as f64),
        slab_per_conn: per(&|s| s.slab_delta_kib as f64 * 1024.0 / s.connections as f64),
        threads: per(&|s| s.threads as f64),
    })
}

/// One herd variant's figures: medians of the runs.
#[derive(Clone, Copy, Debug)]
pub struct HerdSummary {
    /// Kernel wakeups of the workers (voluntary context switches) per connection.
    pub wakeups: f64,
    /// Waits that returned with the listener reported, per accepted connection.
    pub reports: Option<f64>,
    /// Accepts that found the queue empty, per accepted connection.
    pub eagain: Option<f64>,
    /// Jain's fairness index of connections per worker.
    pub jain: f64,
    /// Fewest and most connections a worker accepted.
    pub spread: (f64, f64),
    /// Connect to first echoed byte, µs.
    pub p50_us: f64,
    /// See `p50_us`.
    pub p99_us: f64,
}

/// One herd variant's figures, or why there are none.
pub fn summarize_herd(samples: &[Measured<HerdSample>]) -> Measured<HerdSummary> {
    let (ok, err) = successes(samples);
    if ok.is_empty() {
        return Err(err.unwrap_or("not run").to_owned());
    }
    let per =
        |f: &dyn Fn(&HerdSample) -> f64| median(ok.iter().map(|s| f(s)).collect()).unwrap_or(0.0);
    let accepted = |s: &HerdSample| s.workers.iter().map(|w| w.accepted).sum::<u64>().max(1) as f64;
    Ok(HerdSummary {
        wakeups: per(&|s| s.switches.voluntary as f64 / accepted(s)),
        // A variant that cannot see its listener's reports (a runtime's reactor)
        // leaves these counters at 0; every epoll variant reports at least once per
        // accepted connection.
        reports: Some(per(&|s| {
            s.workers.iter().map(|w| w.listener_reports).sum::<u64>() as f64 / accepted(s)
        }))
        .filter(|&r| r > 0.0),
        eagain: Some(per(&|s| {
            s.workers.iter().map(|w| w.accept_eagain).sum::<u64>() as f64 / accepted(s)
        }))
        .filter(|_| {
            ok.iter()
                .any(|s| s.workers.iter().any(|w| w.listener_reports > 0))
        }),
        jain: per(&|s| {
            let counts: Vec<u64> = s.workers.iter().map(|w| w.accepted).collect();
            herd::jain_index(&counts).unwrap_or(0.0)
        }),
        spread: (
            per(&|s| s.workers.iter().map(|w| w.accepted).min().unwrap_or(0) as f64),
            per(&|s| s.workers.iter().map(|w| w.accepted).max().unwrap_or(0) as f64),
        ),
        p50_us: per(&|s| s.p50_ns as f64 / 1e3),
        p99_us: per(&|s| s.p99_ns as f64 / 1e3),
    })
}

/// What else ran during a set of windows, and how many runs it spoiled.
pub fn interference_note(others: &[&Interference], repeated: usize) -> Option<String> {
    if others.is_empty() {
        return None;
    }
    let stat = |f: &dyn Fn(&Interference) -> f64| {
        let v: Vec<f64> = others.iter().map(|i| f(i) * 100.0).collect();
        let max = v.iter().copied().fold(0.0, f64::max);
        (median(v).unwrap_or(0.0), max)
    };
    let (server, client, steal) = (
        stat(&|i| i.server_cpu),
        stat(&|i| i.client_cpu),
        stat(&|i| i.steal),
    );
    let disturbed = others.iter().filter(|i| i.disturbed()).count();
    let mut note = format!(
        "other work during the windows (median / max): {:.1}% / {:.1}% of the server CPU, \
         {:.1}% / {:.1}% of the client CPU, steal {:.1}% / {:.1}%",
        server.0, server.1, client.0, client.1, steal.0, steal.1
    );
    if repeated > 0 {
        note.push_str(&format!(
            "; {repeated} run(s) repeated because other work took more than {:.0}% of a CPU",
            DISTURBED * 100.0
        ));
    }
    if disturbed > 0 {
        note.push_str(&format!(
            "; {disturbed} of {} windows kept are still disturbed: treat their figures with care",
            others.len()
        ));
    }
    Some(note)
}
