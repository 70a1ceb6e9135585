//! `spawn_blocking`: results and panics, growing to `max_blocking_threads`, shrinking
//! after `thread_keep_alive`, reuse, the runtime context on pool threads, thread names
//! and hooks, and queued closures at shutdown.

mod support;

use std::collections::HashSet;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use epitome_runtime::runtime::{Builder, Handle};
use epitome_runtime::task::spawn_blocking;
use support::{
    DropCounter, ExpectedPanic, Signal, both_flavors, panic_message_of, quiet_panics, wait_until,
};

#[test]
fn spawn_blocking_returns_the_closures_result_or_its_panic() {
    let _watchdog = support::watchdog();
    quiet_panics();
    for (name, rt) in both_flavors() {
        let (ok, panicked) = rt.block_on(async {
            let ok = spawn_blocking(|| {
                std::thread::sleep(Duration::from_millis(1));
                6 * 7
            });
            let panicked = spawn_blocking(|| -> u32 { std::panic::panic_any(ExpectedPanic(5)) });
            (ok.await, panicked.await)
        });
        assert_eq!(ok.unwrap(), 42, "{name}");
        let err = panicked.unwrap_err();
        assert!(err.is_panic(), "{name}");
        assert_eq!(
            err.into_panic().downcast_ref::<ExpectedPanic>(),
            Some(&ExpectedPanic(5)),
            "{name}"
        );
        // The pool survives a panicking closure.
        assert_eq!(rt.block_on(rt.spawn_blocking(|| 1)).unwrap(), 1, "{name}");
    }
}

#[test]
fn spawn_blocking_outside_a_runtime_panics_clearly() {
    let _watchdog = support::watchdog();
    let msg = panic_message_of(|| spawn_blocking(|| ()));
    assert!(
        msg.contains("there is no epitome runtime on this thread"),
        "{msg}"
    );
}

/// Closures that block until released, counting how many run at once.
#[derive(Default)]
struct Concurrency {
    running: AtomicUsize,
    max: AtomicUsize,
    finished: AtomicUsize,
}

impl Concurrency {
    fn closure(self: &Arc<Self>, release: &Arc<Signal>) -> impl FnOnce() + Send + 'static {
        let (this, release) = (self.clone(), release.clone());
        move || {
            let now = this.running.fetch_add(1, Ordering::SeqCst) + 1;
            this.max.fetch_max(now, Ordering::SeqCst);
            release.wait_or_fail("release the blocking closures");
            this.running.fetch_sub(1, Ordering::SeqCst);
            this.finished.fetch_add(1, Ordering::SeqCst);
        }
    }
}

#[test]
fn the_pool_grows_to_max_blocking_threads_and_no_further() {
    let _watchdog = support::watchdog();
    for (name, builder) in [
        ("current-thread", Builder::new_current_thread()),
        ("multi-reactor", {
            let mut b = Builder::new_multi_reactor();
            b.reactors(2);
            b
        }),
    ] {
        let mut builder = builder;
        let rt = builder.max_blocking_threads(3).build().unwrap();
        let m = rt.metrics();
        let conc = Arc::new(Concurrency::default());
        let release = Signal::new();
        let handles: Vec<_> = (0..10)
            .map(|_| rt.spawn_blocking(conc.closure(&release)))
            .collect();
        wait_until("three closures run at once", || {
            conc.running.load(Ordering::SeqCst) == 3
        });
        assert_eq!(m.num_blocking_threads(), 3, "{name}");
        assert_eq!(m.blocking_queue_depth(), 7, "{name}");
        // Give a fourth thread every chance to appear; it must not.
        std::thread::sleep(Duration::from_millis(20));
        assert_eq!(conc.running.load(Ordering::SeqCst), 3, "{name}");
        assert_eq!(m.num_blocking_threads(), 3, "{name}");
        release.set();
        rt.block_on(async {
            for h in handles {
                h.await.unwrap();
            }
        });
        assert_eq!(conc.finished.load(Ordering::SeqCst), 10, "{name}");
        assert_eq!(conc.max.load(Ordering::SeqCst), 3, "{name}");
        assert_eq!(m.blocking_queue_depth(), 0, "{name}");
        assert!(m.num_blocking_threads() <= 3, "{name}");
    }
}

#[test]
fn idle_blocking_threads_exit_after_keep_alive() {
    let _watchdog = support::watchdog();
    let rt = Builder::new_current_thread()
        .thread_name("blk-shrink")
        .thread_keep_alive(Duration::from_millis(30))
        .build()
        .unwrap();
    let m = rt.metrics();
    let conc = Arc::new(Concurrency::default());
    let release = Signal::new();
    let handles: Vec<_> = (0..4)
        .map(|_| rt.spawn_blocking(conc.closure(&release)))
        .collect();
    wait_until("four closures run at once", || {
        conc.running.load(Ordering::SeqCst) == 4
    });
    assert_eq!(m.num_blocking_threads(), 4);
    assert_eq!(support::threads_named("blk-shrink"), 4);
    release.set();
    rt.block_on(async {
        for h in handles {
            h.await.unwrap();
        }
    });
    // Idle now: they wait `thread_keep_alive` for work, then exit.
    wait_until("the idle threads exit", || m.num_blocking_threads() == 0);
    assert_eq!(m.num_idle_blocking_threads(), 0);
    wait_until("the threads are gone", || {
        support::threads_named("blk-shrink") == 0
    });
    // And the pool grows again on demand.
    assert_eq!(rt.block_on(rt.spawn_blocking(|| 5)).unwrap(), 5);
}

#[test]
fn an_idle_blocking_thread_is_reused_before_another_is_started() {
    let _watchdog = support::watchdog();
    let rt = Builder::new_current_thread()
        .thread_keep_alive(Duration::from_secs(60))
        .build()
        .unwrap();
    let m = rt.metrics();
    let mut threads = HashSet::new();
    for _ in 0..20 {
        let t = rt
            .block_on(rt.spawn_blocking(|| std::thread::current().id()))
            .unwrap();
        threads.insert(t);
        // Wait for the thread to go idle before the next closure arrives.
        wait_until("the thread goes idle", || {
            m.num_idle_blocking_threads() == 1
        });
    }
    assert_eq!(threads.len(), 1);
    assert_eq!(m.num_blocking_threads(), 1);
}

#[test]
fn a_blocking_closure_runs_in_its_runtime_context() {
    let _watchdog = support::watchdog();
    for (name, rt) in both_flavors() {
        let out = rt.block_on(async {
            spawn_blocking(|| {
                let handle = Handle::current();
                // Spawns from the pool go to the runtime, and `block_on` is allowed here
                // (the pool thread drives nothing).
                let task = handle.spawn(async { 20 });
                let inner = spawn_blocking(|| 1);
                (task, inner)
            })
            .await
            .unwrap()
        });
        let (task, inner) = out;
        let sum = rt.block_on(async { task.await.unwrap() + inner.await.unwrap() });
        assert_eq!(sum, 21, "{name}");
    }
}

#[test]
fn blocking_threads_are_named_and_run_the_start_and_stop_hooks() {
    let _watchdog = support::watchdog();
    let started = Arc::new(AtomicUsize::new(0));
    let stopped = Arc::new(AtomicUsize::new(0));
    let (s, t) = (started.clone(), stopped.clone());
    let rt = Builder::new_current_thread()
        .thread_name("blk-named")
        .on_thread_start(move || {
            s.fetch_add(1, Ordering::SeqCst);
        })
        .on_thread_stop(move || {
            t.fetch_add(1, Ordering::SeqCst);
        })
        .build()
        .unwrap();
    // A current-thread runtime starts no worker thread.
    assert_eq!(started.load(Ordering::SeqCst), 0);
    let name = rt
        .block_on(rt.spawn_blocking(|| std::thread::current().name().map(str::to_string)))
        .unwrap();
    assert_eq!(name.as_deref(), Some("blk-named"));
    assert_eq!(started.load(Ordering::SeqCst), 1);
    drop(rt);
    // (Whether the drop waits for the hook is `shutdown_threads.rs`'s question.)
    wait_until("the stop hook runs", || stopped.load(Ordering::SeqCst) == 1);
}

#[test]
fn queued_blocking_closures_are_cancelled_at_shutdown() {
    let _watchdog = support::watchdog();
    let rt = Builder::new_current_thread()
        .max_blocking_threads(1)
        .build()
        .unwrap();
    let release = Signal::new();
    let started = Signal::new();
    let ran = Arc::new(Mutex::new(false));
    let drops = DropCounter::new();
    let running = {
        let (release, started) = (release.clone(), started.clone());
        rt.spawn_blocking(move || {
            started.set();
            release.wait_or_fail("release the running closure");
            1
        })
    };
    let queued = {
        let (ran, guard) = (ran.clone(), drops.guard());
        rt.spawn_blocking(move || {
            let _guard = guard;
            *ran.lock().unwrap() = true;
        })
    };
    started.wait_or_fail("the first closure starts");
    assert_eq!(rt.metrics().blocking_queue_depth(), 1);
    // Shutdown waits for the running closure; release it a little later.
    let releaser = {
        let release = release.clone();
        std::thread::spawn(move || {
            std::thread::sleep(Duration::from_millis(20));
            release.set();
        })
    };
    drop(rt);
    releaser.join().unwrap();
    assert!(
        !*ran.lock().unwrap(),
        "a queued closure ran during shutdown"
    );
    assert_eq!(drops.count(), 1, "the queued closure was not dropped");
    assert_eq!(support::block_on_plain(running).unwrap(), 1);
    assert!(support::block_on_plain(queued).unwrap_err().is_cancelled());
}

/// A closure the pool started a thread for runs even if shutdown comes before that
/// thread reached it (tokio's `spawn_blocking_started_before_shutdown_continues`).
#[test]
fn a_closure_given_a_thread_runs_even_if_shutdown_comes_first() {
    let _watchdog = support::watchdog();
    for (name, make) in support::FLAVORS {
        let rt = make();
        let handle = rt.spawn_blocking(|| {
            std::thread::sleep(Duration::from_millis(5));
            42
        });
        rt.shutdown_timeout(Duration::from_secs(20));
        assert_eq!(support::block_on_plain(handle).unwrap(), 42, "{name}");
    }
}

/// A closure handed to an idle thread (woken for it, not yet back) runs even if
/// shutdown comes first: the wakeup commits the thread to it as a start does.
#[test]
fn a_closure_handed_to_an_idle_thread_runs_even_if_shutdown_comes_first() {
    let _watchdog = support::watchdog();
    for (name, make) in support::FLAVORS {
        for _ in 0..10 {
            let rt = make();
            let m = rt.metrics();
            rt.block_on(rt.spawn_blocking(|| ())).unwrap();
            wait_until("the thread goes idle", || {
                m.num_idle_blocking_threads() == 1
            });
            // Shutdown usually comes before the woken thread is back from its wait.
            let handle = rt.spawn_blocking(|| 42);
            rt.shutdown_timeout(Duration::from_secs(20));
            assert_eq!(support::block_on_plain(handle).unwrap(), 42, "{name}");
        }
    }
}

/// `shutdown_timeout` waits, up to its timeout, for a closure already running: when it
/// returns, the closure has finished.
#[test]
fn shutdown_timeout_waits_for_a_running_closure() {
    let _watchdog = support::watchdog();
    for (name, make) in support::FLAVORS {
        let rt = make();
        let started = Signal::new();
        let finished = Arc::new(AtomicUsize::new(0));
        let handle = rt.spawn_blocking({
            let (started, finished) = (started.clone(), finished.clone());
            move || {
                started.set();
                std::thread::sleep(Duration::from_millis(50));
                finished.store(1, Ordering::SeqCst);
            }
        });
        started.wait_or_fail("the closure starts");
        rt.shutdown_timeout(Duration::from_secs(20));
        assert_eq!(finished.load(Ordering::SeqCst), 1, "{name}");
        support::block_on_plain(handle).unwrap();
    }
}

/// No pool thread outlives the runtime: when shutdown returns, each thread has returned
/// (its thread-local destructors, which run after the pool counted it out, are done).
#[test]
fn pool_threads_have_returned_when_shutdown_returns() {
    struct SlowDrop(Arc<AtomicUsize>);
    impl Drop for SlowDrop {
        fn drop(&mut self) {
            std::thread::sleep(Duration::from_millis(50));
            self.0.fetch_add(1, Ordering::SeqCst);
        }
    }
    thread_local! {
        static SLOW: std::cell::RefCell<Option<SlowDrop>> = const { std::cell::RefCell::new(None) };
    }
    let _watchdog = support::watchdog();
    for (name, make) in support::FLAVORS {
        let rt = make();
        let dropped = Arc::new(AtomicUsize::new(0));
        let d = dropped.clone();
        rt.block_on(rt.spawn_blocking(move || {
            SLOW.with(|s| *s.borrow_mut() = Some(SlowDrop(d)));
        }))
        .unwrap();
        rt.shutdown_timeout(Duration::from_secs(20));
        assert_eq!(dropped.load(Ordering::SeqCst), 1, "{name}");
    }
}
