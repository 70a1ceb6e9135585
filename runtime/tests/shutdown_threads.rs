//! No thread outlives its runtime: worker threads and blocking-pool threads are gone
//! (and have run their stop hook) once dropping the runtime returns.
//!
//! Its own test binary, so its own process. Threads are told apart by name (each test
//! names its runtime's threads uniquely), and the tests take `THREAD_TABLE` so the
//! whole-process thread count is not disturbed by a neighbour.

mod support;

use std::collections::BTreeMap;
use std::future::pending;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use epitome_runtime::runtime::Builder;
use epitome_runtime::time;
use support::{Signal, thread_names, threads_named, wait_until};

static THREAD_TABLE: Mutex<()> = Mutex::new(());

/// Builders of both flavours whose threads are named `name`.
fn builders(name: &str) -> [(&'static str, Builder); 2] {
    let mut current = Builder::new_current_thread();
    current.thread_name(name);
    let mut multi = Builder::new_multi_reactor();
    multi.reactors(3).thread_name(name);
    [("current-thread", current), ("multi-reactor", multi)]
}

/// This file's tests: libtest runs each on a thread named after it (which the kernel
/// truncates to 15 bytes), and may start one while another test counts threads.
const TESTS: &[&str] = &[
    "no_thread_outlives_the_runtime",
    "every_runtime_thread_has_finished_when_the_drop_returns",
    "blocking_threads_that_shrank_away_are_gone",
];

/// Threads that were not there `before`, other than libtest's test threads and their
/// watchdogs.
fn new_threads(before: &BTreeMap<u32, String>) -> Vec<(u32, String)> {
    thread_names()
        .into_iter()
        .filter(|(tid, name)| {
            !before.contains_key(tid)
                && name != "test-watchdog"
                && !TESTS.iter().any(|t| t.starts_with(name.as_str()))
        })
        .collect()
}

#[test]
fn no_thread_outlives_the_runtime() {
    let _watchdog = support::watchdog();
    let _table = THREAD_TABLE.lock().unwrap_or_else(|e| e.into_inner());
    for (flavor, mut builder) in builders("st-outlive") {
        let threads_before = thread_names();
        let started = Arc::new(AtomicUsize::new(0));
        let stopped = Arc::new(AtomicUsize::new(0));
        let (s, t) = (started.clone(), stopped.clone());
        let rt = builder
            .thread_keep_alive(Duration::from_secs(60))
            .on_thread_start(move || {
                s.fetch_add(1, Ordering::SeqCst);
            })
            .on_thread_stop(move || {
                t.fetch_add(1, Ordering::SeqCst);
            })
            .build()
            .unwrap();
        let workers = if flavor == "multi-reactor" { 3 } else { 0 };
        // Three blocking threads at once: they stay, idle, for the keep-alive.
        let release = Signal::new();
        let blocking: Vec<_> = (0..3)
            .map(|_| {
                let release = release.clone();
                rt.spawn_blocking(move || release.wait_or_fail("release"))
            })
            .collect();
        wait_until("the blocking threads start", || {
            rt.metrics().num_blocking_threads() == 3
        });
        release.set();
        rt.block_on(async {
            for b in blocking {
                b.await.unwrap();
            }
            // Tasks that are still waiting when the runtime goes.
            drop(epitome_runtime::spawn(pending::<()>()));
            drop(epitome_runtime::spawn(time::sleep(Duration::from_secs(
                3600,
            ))));
        });
        wait_until("every thread started", || {
            started.load(Ordering::SeqCst) == workers + 3
        });
        assert_eq!(threads_named("st-outlive"), workers + 3, "{flavor}");
        drop(rt);
        // Whether the drop waits for every thread is
        // `every_runtime_thread_has_finished_when_the_drop_returns`; here, that each
        // one stops at all, and is gone. (An exited thread may linger in /proc for a
        // moment after its join.)
        wait_until("every thread ran its stop hook", || {
            stopped.load(Ordering::SeqCst) == workers + 3
        });
        wait_until("the runtime's threads are gone", || {
            threads_named("st-outlive") == 0
        });
        wait_until("no thread is left but those from before", || {
            new_threads(&threads_before).is_empty()
        });
    }
}

#[test]
fn every_runtime_thread_has_finished_when_the_drop_returns() {
    let _watchdog = support::watchdog();
    let _table = THREAD_TABLE.lock().unwrap_or_else(|e| e.into_inner());
    for (flavor, mut builder) in builders("st-stophook") {
        let started = Arc::new(AtomicUsize::new(0));
        let stopping = Arc::new(AtomicUsize::new(0));
        let stopped = Arc::new(AtomicUsize::new(0));
        let (s, st, t) = (started.clone(), stopping.clone(), stopped.clone());
        let rt = builder
            .thread_keep_alive(Duration::from_secs(60))
            .on_thread_start(move || {
                s.fetch_add(1, Ordering::SeqCst);
            })
            // Slow stop hooks, each slower than the last: the drop must wait for all
            // of them, not just for the first thread to say it is leaving.
            .on_thread_stop(move || {
                let k = st.fetch_add(1, Ordering::SeqCst) as u32;
                std::thread::sleep(Duration::from_millis(15) * (k + 1));
                t.fetch_add(1, Ordering::SeqCst);
            })
            .build()
            .unwrap();
        let workers = if flavor == "multi-reactor" { 3 } else { 0 };
        let release = Signal::new();
        let blocking: Vec<_> = (0..3)
            .map(|_| {
                let release = release.clone();
                rt.spawn_blocking(move || release.wait_or_fail("release"))
            })
            .collect();
        wait_until("the blocking threads start", || {
            rt.metrics().num_blocking_threads() == 3
        });
        release.set();
        for b in blocking {
            support::block_on_plain(b).unwrap();
        }
        wait_until("every thread started", || {
            started.load(Ordering::SeqCst) == workers + 3
        });
        drop(rt);
        let finished_at_drop = stopped.load(Ordering::SeqCst);
        // Clean up before judging, so a failure leaves no thread behind to disturb the
        // other tests of this process.
        wait_until("the stragglers finish", || {
            stopped.load(Ordering::SeqCst) == workers + 3
        });
        wait_until("the runtime's threads are gone", || {
            threads_named("st-stophook") == 0
        });
        assert_eq!(
            finished_at_drop,
            workers + 3,
            "{flavor}: dropping the runtime returned while {} of its threads were still \
             running (in on_thread_stop); the blocking pool's threads are not joined",
            workers + 3 - finished_at_drop
        );
    }
}

#[test]
fn blocking_threads_that_shrank_away_are_gone() {
    let _watchdog = support::watchdog();
    let _table = THREAD_TABLE.lock().unwrap_or_else(|e| e.into_inner());
    let rt = Builder::new_current_thread()
        .thread_name("st-shrink")
        .thread_keep_alive(Duration::from_millis(10))
        .build()
        .unwrap();
    for _ in 0..3 {
        rt.block_on(rt.spawn_blocking(|| ())).unwrap();
    }
    wait_until("the pool shrinks", || {
        rt.metrics().num_blocking_threads() == 0
    });
    wait_until("its threads are gone", || threads_named("st-shrink") == 0);
    drop(rt);
    assert_eq!(threads_named("st-shrink"), 0);
}
