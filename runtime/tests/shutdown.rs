//! Shutting a runtime down: every task is dropped, handles report cancellation,
//! `shutdown_timeout` and `shutdown_background` wait for blocking closures as long as
//! they say, and I/O sources that outlive the runtime fail instead of hanging.
//!
//! (File descriptors and threads are checked in `shutdown_fds.rs` and
//! `shutdown_threads.rs`, each its own process.)

mod support;

use std::future::pending;
use std::os::unix::net::UnixStream;
use std::sync::Arc;
use std::time::{Duration, Instant};

use epitome_runtime::io::Async;
use epitome_runtime::runtime::{Handle, Runtime};
use epitome_runtime::task::{JoinHandle, spawn_local, yield_now};
use epitome_runtime::time;
use support::{DropCounter, DropGuard, FLAVORS, Signal, block_on_plain, multi, with_watchdog};

/// Spawns, on `rt`, one task of every kind of waiting (plus one that never stops
/// running), each holding a guard of `drops`. Returns their handles.
fn spawn_every_kind_of_task(rt: &Runtime, drops: &DropCounter) -> Vec<JoinHandle<()>> {
    let g = || drops.guard();
    let mut tasks = Vec::new();
    let guard = g();
    tasks.push(rt.spawn(async move {
        let _guard = guard;
        pending::<()>().await;
    }));
    let guard = g();
    tasks.push(rt.spawn(async move {
        let _guard = guard;
        time::sleep(Duration::from_secs(3600)).await;
    }));
    let guard = g();
    tasks.push(rt.spawn(async move {
        let _guard = guard;
        let (a, _b) = UnixStream::pair().unwrap();
        let a = Async::new(a).unwrap();
        let _ = a.readable().await;
        pending::<()>().await;
    }));
    let guard = g();
    tasks.push(rt.spawn(async move {
        let _guard = guard;
        // Always runnable: it never waits on anything.
        loop {
            yield_now().await;
        }
    }));
    let (outer, inner) = (g(), g());
    tasks.push(rt.spawn(async move {
        let _guard = outer;
        // Waits on another task that waits forever.
        let child = epitome_runtime::spawn(async move {
            let _guard = inner;
            pending::<()>().await;
        });
        let _ = child.await;
    }));
    let guard = g();
    tasks.push(rt.spawn(async move {
        let _guard = guard;
        // A `!Send` task on this worker.
        let local = spawn_local(async move {
            let _rc = std::rc::Rc::new(());
            pending::<()>().await;
        });
        let _ = local.await;
    }));
    tasks
}

const GUARDS: usize = 7;

#[test]
fn dropping_the_runtime_drops_every_task() {
    let _watchdog = support::watchdog();
    for (name, make) in FLAVORS {
        let drops = DropCounter::new();
        let d = drops.clone();
        let tasks = with_watchdog(name, move || {
            let rt = make();
            let tasks = spawn_every_kind_of_task(&rt, &d);
            // Let them all reach their waits (the current-thread one must be driven).
            rt.block_on(time::sleep(Duration::from_millis(10)));
            // And one that is still queued, never run.
            let guard = d.guard();
            let mut tasks = tasks;
            tasks.push(rt.spawn(async move {
                let _guard = guard;
            }));
            // On a multi-reactor runtime the last spawn may already have run (its worker
            // is not waiting for anyone); nothing else may have finished.
            let early = d.count();
            assert!(
                early == 0 || (name == "multi-reactor" && early == 1),
                "{name}: {early} dropped early"
            );
            let m = rt.metrics();
            drop(rt);
            assert_eq!(m.num_alive_tasks(), 0, "{name}: {m:?}");
            tasks
        });
        assert_eq!(
            drops.count(),
            GUARDS + 1,
            "{name}: not every task was dropped"
        );
        for t in tasks {
            assert!(t.is_finished(), "{name}");
            let res = block_on_plain(t);
            // The queued one may have run; the others were cancelled.
            if let Err(e) = res {
                assert!(e.is_cancelled(), "{name}: {e}");
            }
        }
    }
}

#[test]
fn a_current_thread_runtime_that_was_never_driven_drops_its_queued_tasks() {
    let _watchdog = support::watchdog();
    let rt = support::current_thread();
    let drops = DropCounter::new();
    let tasks: Vec<_> = (0..5)
        .map(|_| {
            let guard = drops.guard();
            rt.spawn(async move {
                let _guard = guard;
                unreachable!("never driven");
            })
        })
        .collect();
    drop(rt);
    assert_eq!(drops.count(), 5);
    for t in tasks {
        assert!(block_on_plain(t).unwrap_err().is_cancelled());
    }
}

/// Spawns, when dropped, a task holding another guard.
struct SpawnOnDrop(Option<DropGuard>);

impl Drop for SpawnOnDrop {
    fn drop(&mut self) {
        let guard = self.0.take();
        if let Ok(handle) = Handle::try_current() {
            drop(handle.spawn(async move {
                let _guard = guard;
                pending::<()>().await;
            }));
        }
    }
}

#[test]
fn tasks_spawned_by_destructors_during_shutdown_are_dropped_too() {
    let _watchdog = support::watchdog();
    for (name, make) in FLAVORS {
        let drops = DropCounter::new();
        let d = drops.clone();
        with_watchdog(name, move || {
            let rt = make();
            for _ in 0..3 {
                let (outer, inner) = (d.guard(), d.guard());
                drop(rt.spawn(async move {
                    let _guard = outer;
                    let _spawner = SpawnOnDrop(Some(inner));
                    pending::<()>().await;
                }));
            }
            rt.block_on(time::sleep(Duration::from_millis(5)));
            drop(rt);
        });
        assert_eq!(drops.count(), 6, "{name}");
    }
}

#[test]
fn shutdown_timeout_waits_for_a_running_blocking_closure() {
    let _watchdog = support::watchdog();
    for (name, make) in FLAVORS {
        let finished_at = Arc::new(std::sync::Mutex::new(None));
        let f = finished_at.clone();
        let returned_at = with_watchdog(name, move || {
            let rt = make();
            let started = Signal::new();
            let s = started.clone();
            drop(rt.spawn_blocking(move || {
                s.set();
                std::thread::sleep(Duration::from_millis(30));
                *f.lock().unwrap() = Some(Instant::now());
            }));
            started.wait_or_fail("the closure starts");
            rt.shutdown_timeout(support::HANG);
            Instant::now()
        });
        let finished_at = finished_at.lock().unwrap().take();
        let finished_at =
            finished_at.unwrap_or_else(|| panic!("{name}: returned before the closure finished"));
        assert!(returned_at >= finished_at, "{name}");
    }
}

#[test]
fn shutdown_timeout_gives_up_on_a_closure_after_the_timeout() {
    let _watchdog = support::watchdog();
    for (name, make) in FLAVORS {
        let release = Signal::new();
        let finished = Signal::new();
        let (r, f) = (release.clone(), finished.clone());
        let waited = with_watchdog(name, move || {
            let rt = make();
            let started = Signal::new();
            let s = started.clone();
            drop(rt.spawn_blocking(move || {
                s.set();
                r.wait_or_fail("release the blocking closure");
                f.set();
            }));
            started.wait_or_fail("the closure starts");
            let start = Instant::now();
            rt.shutdown_timeout(Duration::from_millis(30));
            start.elapsed()
        });
        // It waited the whole timeout, and no more than it had to: the closure is
        // still running.
        assert!(waited >= Duration::from_millis(30), "{name}: {waited:?}");
        assert!(!finished.is_set(), "{name}");
        release.set();
        finished.wait_or_fail("the abandoned closure finishes on its own");
    }
}

#[test]
fn shutdown_background_does_not_wait_for_blocking_closures() {
    let _watchdog = support::watchdog();
    for (name, make) in FLAVORS {
        let release = Signal::new();
        let finished = Signal::new();
        let (r, f) = (release.clone(), finished.clone());
        with_watchdog(name, move || {
            let rt = make();
            let started = Signal::new();
            let s = started.clone();
            drop(rt.spawn_blocking(move || {
                s.set();
                r.wait_or_fail("release the blocking closure");
                f.set();
            }));
            started.wait_or_fail("the closure starts");
            rt.shutdown_background();
        });
        assert!(!finished.is_set(), "{name}");
        release.set();
        finished.wait_or_fail("the closure finishes on its own");
    }
}

#[test]
fn an_io_source_that_outlives_its_runtime_reports_an_error() {
    let _watchdog = support::watchdog();
    for (name, make) in FLAVORS {
        let (source, peer) = with_watchdog(name, move || {
            let rt = make();
            let (a, b) = UnixStream::pair().unwrap();
            let a = rt.block_on(async { Async::new(a).unwrap() });
            drop(rt);
            (a, b)
        });
        let err = match block_on_plain(source.readable()) {
            Ok(_) => panic!("{name}: readiness from a runtime that is gone"),
            Err(e) => e,
        };
        assert!(err.to_string().contains("shut down"), "{name}: {err}");
        drop(source);
        drop(peer);
    }
}

#[test]
fn shutting_down_twice_is_harmless() {
    let _watchdog = support::watchdog();
    let rt = multi(2);
    let drops = DropCounter::new();
    let guard = drops.guard();
    drop(rt.spawn(async move {
        let _guard = guard;
        pending::<()>().await;
    }));
    rt.shutdown_timeout(Duration::from_millis(10));
    assert_eq!(drops.count(), 1);
}

/// A current-thread runtime whose worker is pinned to another thread (it ran a
/// `spawn_local` task there) and is dropped here: its `!Send` tasks cannot be dropped on
/// this thread and are leaked, but its I/O sources still learn that it is gone.
#[test]
fn a_source_hears_of_its_runtime_dropped_away_from_its_local_tasks() {
    let _watchdog = support::watchdog();
    let rt = support::current_thread();
    let (a, b) = UnixStream::pair().unwrap();
    let source = std::thread::scope(|s| {
        s.spawn(|| {
            rt.block_on(async {
                drop(spawn_local(pending::<()>()));
                Async::new(a).unwrap()
            })
        })
        .join()
        .unwrap()
    });
    drop(rt);
    let err = match block_on_plain(source.readable()) {
        Ok(_) => panic!("readiness from a runtime that is gone"),
        Err(e) => e,
    };
    assert!(err.to_string().contains("shut down"), "{err}");
    drop(source);
    drop(b);
}
