//! What a task's future sees when it is dropped: inside the unwind of the task's own
//! panic (so `std::thread::panicking()` is true and a held `MutexGuard` poisons its
//! mutex, as in plain code), and outside any panic when the task is cancelled.

mod support;

use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::Duration;

use epitome_runtime::task::{self, JoinError, spawn_local, yield_now};
use epitome_runtime::time;
use support::{FLAVORS, Signal, current_thread, with_watchdog};

/// What a probe records when dropped: whether a panic was unwinding, and the task.
type DropLog = Arc<Mutex<Vec<(bool, Option<task::Id>)>>>;

/// Records, when dropped, whether a panic was unwinding and which task was current.
struct DropProbe {
    log: DropLog,
}

impl Drop for DropProbe {
    fn drop(&mut self) {
        self.log
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push((std::thread::panicking(), task::try_id()));
    }
}

/// A hand-written future holding a probe in a field (not a local of an `async` body,
/// which the unwind would drop anyway): panics on its second poll.
struct PanicsOnSecondPoll {
    _probe: DropProbe,
    polled: bool,
}

impl Future for PanicsOnSecondPoll {
    type Output = ();
    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        if !self.polled {
            self.polled = true;
            cx.waker().wake_by_ref();
            return Poll::Pending;
        }
        std::panic::panic_any(support::ExpectedPanic(5));
    }
}

#[test]
fn a_panicking_task_drops_its_future_while_the_panic_unwinds() {
    let _watchdog = support::watchdog();
    support::quiet_panics();
    for (name, make) in FLAVORS {
        with_watchdog(name, move || {
            let rt = make();
            let log = Arc::new(Mutex::new(Vec::new()));
            let fut = PanicsOnSecondPoll {
                _probe: DropProbe { log: log.clone() },
                polled: false,
            };
            let handle = rt.spawn(fut);
            let id = handle.id();
            let err = rt.block_on(handle).expect_err("the task panicked");
            assert!(err.is_panic(), "{name}: {err}");
            assert_eq!(
                *log.lock().unwrap(),
                [(true, Some(id))],
                "{name}: dropped once, during the unwind, with the task's id current"
            );
        });
    }
}

/// Holds a guard of a `'static` mutex across the panic: the panic poisons it, as a
/// panic with a guard held does in plain code.
struct HoldsGuard {
    _guard: std::sync::MutexGuard<'static, u32>,
}

impl Future for HoldsGuard {
    type Output = ();
    fn poll(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<()> {
        std::panic::panic_any(support::ExpectedPanic(6));
    }
}

#[test]
fn a_mutex_guard_held_across_a_tasks_panic_poisons_the_mutex() {
    let _watchdog = support::watchdog();
    support::quiet_panics();
    // `MutexGuard` is `!Send`: a local task, on the current-thread runtime and on a
    // multi-reactor worker.
    for (name, make) in FLAVORS {
        with_watchdog(name, move || {
            let mutex: &'static Mutex<u32> = Box::leak(Box::new(Mutex::new(0)));
            let rt = make();
            let res = rt.block_on(async move {
                epitome_runtime::spawn(async move {
                    let local = spawn_local(HoldsGuard {
                        _guard: mutex.lock().unwrap(),
                    });
                    local.await
                })
                .await
                .unwrap()
            });
            assert!(res.expect_err("the local task panicked").is_panic());
            assert!(mutex.is_poisoned(), "{name}: the panic poisons the mutex");
        });
    }
}

#[test]
#[allow(clippy::await_holding_lock)] // the point: a guard held when the panic comes
fn a_panic_in_an_async_block_poisons_a_mutex_locked_in_it() {
    let _watchdog = support::watchdog();
    support::quiet_panics();
    for (name, make) in FLAVORS {
        with_watchdog(name, move || {
            let rt = make();
            let mutex = Arc::new(Mutex::new(0));
            let m = mutex.clone();
            let err = rt.block_on(async move {
                epitome_runtime::spawn(async move {
                    spawn_local(async move {
                        // Held across the await on purpose: the panic must poison it.
                        let mut guard = m.lock().unwrap();
                        *guard += 1;
                        yield_now().await;
                        std::panic::panic_any(support::ExpectedPanic(7));
                    })
                    .await
                })
                .await
                .unwrap()
                .expect_err("panicked")
            });
            assert!(err.is_panic());
            assert!(mutex.is_poisoned(), "{name}");
        });
    }
}

/// A future that never completes, holding a probe.
async fn parked(probe: DropProbe) {
    let _probe = probe;
    std::future::pending::<()>().await;
}

#[test]
fn a_cancelled_task_drops_its_future_outside_any_panic() {
    let _watchdog = support::watchdog();
    for (name, make) in FLAVORS {
        with_watchdog(name, move || {
            let rt = make();
            let log = Arc::new(Mutex::new(Vec::new()));
            // Aborted while idle.
            let idle = rt.spawn(parked(DropProbe { log: log.clone() }));
            let idle_id = idle.id();
            // Aborted while it runs (it aborts itself, then yields).
            let started = Signal::new();
            let (l, s) = (log.clone(), started.clone());
            let running = rt.spawn(async move {
                let _probe = DropProbe { log: l };
                s.set();
                // Another task aborts us while we are parked on the timer.
                time::sleep(Duration::from_secs(3600)).await;
            });
            let running_id = running.id();
            let abort = running.abort_handle();
            rt.block_on(async {
                started.wait().await;
                abort.abort();
                idle.abort();
                let e1: JoinError = idle.await.expect_err("aborted");
                let e2: JoinError = running.await.expect_err("aborted");
                assert!(e1.is_cancelled() && e2.is_cancelled());
            });
            let mut seen = log.lock().unwrap().clone();
            seen.sort_by_key(|(_, id)| *id);
            let mut expected = vec![(false, Some(idle_id)), (false, Some(running_id))];
            expected.sort_by_key(|(_, id)| *id);
            assert_eq!(seen, expected, "{name}");
            // Shutdown cancels the same way.
            let log2 = Arc::new(Mutex::new(Vec::new()));
            let parked_task = rt.spawn(parked(DropProbe { log: log2.clone() }));
            let parked_id = parked_task.id();
            drop(rt);
            assert_eq!(*log2.lock().unwrap(), [(false, Some(parked_id))], "{name}");
        });
    }
}

/// Panics when dropped.
struct PanicsOnDrop;

impl Drop for PanicsOnDrop {
    fn drop(&mut self) {
        std::panic::panic_any(support::ExpectedPanic(8));
    }
}

#[test]
fn a_destructor_that_panics_during_cancellation_makes_the_task_a_panic() {
    let _watchdog = support::watchdog();
    support::quiet_panics();
    for (name, make) in FLAVORS {
        with_watchdog(name, move || {
            let rt = make();
            let started = Signal::new();
            let s = started.clone();
            let handle = rt.spawn(async move {
                let _bomb = PanicsOnDrop;
                s.set();
                std::future::pending::<()>().await;
            });
            let err = rt.block_on(async move {
                // Abort it once it holds the bomb (an unstarted `async` body holds
                // nothing yet).
                started.wait().await;
                handle.abort();
                handle.await.expect_err("aborted")
            });
            assert!(err.is_panic(), "{name}: {err:?}");
            let payload = err.into_panic();
            assert_eq!(
                payload.downcast_ref::<support::ExpectedPanic>(),
                Some(&support::ExpectedPanic(8))
            );
        });
    }
}

#[test]
fn a_finished_task_drops_its_future_before_its_output_is_read() {
    let _watchdog = support::watchdog();
    let rt = current_thread();
    let log = Arc::new(Mutex::new(Vec::new()));
    let l = log.clone();
    let handle = rt.spawn(async move {
        let _probe = DropProbe { log: l };
        yield_now().await;
        7
    });
    let id = handle.id();
    assert_eq!(rt.block_on(handle).unwrap(), 7);
    assert_eq!(*log.lock().unwrap(), [(false, Some(id))]);
}
