//! Several threads in `Runtime::block_on` of one current-thread runtime (tokio's
//! behaviour): one drives the runtime, the others poll their own futures meanwhile and
//! take the runtime over when the driver's `block_on` returns. A runtime with `!Send`
//! tasks is only ever driven by their thread.

mod support;

use std::sync::{Arc, Mutex};
use std::thread::ThreadId;
use std::time::Duration;

use epitome_runtime::runtime::Handle;
use epitome_runtime::task::spawn_local;
use epitome_runtime::time;
use support::{HANG, Signal, current_thread, panic_message_of, with_watchdog};

fn tid() -> ThreadId {
    std::thread::current().id()
}

/// The deadlock of issue 20: the driver waits for something only the second thread's
/// future does. The second thread must poll its future while it waits for the driver.
#[test]
fn the_driver_can_wait_for_a_future_of_a_thread_that_waits_for_the_driver() {
    let _watchdog = support::watchdog();
    with_watchdog("two block_on threads", || {
        let rt = current_thread();
        let (a_inside, b_polled) = (Signal::new(), Signal::new());
        std::thread::scope(|s| {
            let a = s.spawn(|| {
                rt.block_on(async {
                    a_inside.set();
                    // Only the other thread's future sets this.
                    time::timeout(HANG, b_polled.wait())
                        .await
                        .expect("the second block_on never polled its future");
                    "a"
                })
            });
            a_inside.wait_or_fail("the first block_on");
            let b = s.spawn(|| {
                rt.block_on(async {
                    b_polled.set();
                    // Spawned while the other thread drives: it runs there.
                    epitome_runtime::spawn(async { tid() }).await.unwrap()
                })
            });
            assert_eq!(a.join().unwrap(), "a");
            b.join().unwrap();
        });
    });
}

#[test]
fn a_waiting_thread_takes_the_runtime_over_when_the_driver_returns() {
    let _watchdog = support::watchdog();
    with_watchdog("takeover", || {
        let rt = current_thread();
        let (b_started, a_left, gate) = (Signal::new(), Signal::new(), Signal::new());
        let task = Mutex::new(None);
        let b_thread = Mutex::new(None);
        std::thread::scope(|s| {
            s.spawn(|| {
                rt.block_on(async {
                    let gate = gate.clone();
                    // Outlives this `block_on`: whoever drives next runs it.
                    *task.lock().unwrap() = Some(epitome_runtime::spawn(async move {
                        gate.wait().await;
                        tid()
                    }));
                    time::timeout(HANG, b_started.wait()).await.unwrap();
                });
                a_left.set();
            });
            s.spawn(|| {
                *b_thread.lock().unwrap() = Some(tid());
                let ran_on = rt.block_on(async {
                    b_started.set();
                    time::timeout(HANG, a_left.wait()).await.unwrap();
                    gate.set();
                    let task = task
                        .lock()
                        .unwrap()
                        .take()
                        .expect("spawned by the first thread");
                    // Needs a driver: the first thread has left, so this one drives.
                    let ran_on = task.await.unwrap();
                    time::sleep(Duration::from_millis(5)).await;
                    ran_on
                });
                assert_eq!(Some(ran_on), *b_thread.lock().unwrap());
            });
        });
    });
}

#[test]
fn many_threads_in_block_on_all_finish_whoever_drives() {
    let _watchdog = support::watchdog();
    with_watchdog("many block_on threads", || {
        let rt = current_thread();
        let signals: Vec<_> = (0..5).map(|_| Signal::new()).collect();
        std::thread::scope(|s| {
            let joins: Vec<_> = (0..5)
                .map(|i| {
                    let (rt, signals) = (&rt, &signals);
                    s.spawn(move || {
                        rt.block_on(async move {
                            // Each waits for the one before it, so several threads wait
                            // at once and the driver changes hands several times.
                            if i > 0 {
                                time::timeout(HANG, signals[i - 1].wait()).await.unwrap();
                            }
                            time::sleep(Duration::from_millis(1)).await;
                            let out = epitome_runtime::spawn(async move { i * 2 }).await.unwrap();
                            signals[i].set();
                            out
                        })
                    })
                })
                .collect();
            let outs: Vec<usize> = joins.into_iter().map(|j| j.join().unwrap()).collect();
            assert_eq!(outs, [0, 2, 4, 6, 8]);
        });
    });
}

#[test]
fn a_panic_in_the_drivers_future_hands_the_runtime_to_a_waiting_thread() {
    let _watchdog = support::watchdog();
    support::quiet_panics();
    with_watchdog("takeover after a panic", || {
        let rt = current_thread();
        let (b_waiting, a_inside) = (Signal::new(), Signal::new());
        std::thread::scope(|s| {
            let a = s.spawn(|| {
                let msg = panic_message_of(|| {
                    rt.block_on(async {
                        a_inside.set();
                        time::timeout(HANG, b_waiting.wait()).await.unwrap();
                        std::panic::panic_any("[expected] the driver's future panics".to_string())
                    })
                });
                assert!(msg.contains("driver's future panics"), "{msg}");
            });
            a_inside.wait_or_fail("the first block_on");
            let b = s.spawn(|| {
                rt.block_on(async {
                    b_waiting.set();
                    // A timer: it fires only once this thread drives.
                    time::sleep(Duration::from_millis(20)).await;
                    "b"
                })
            });
            a.join().unwrap();
            assert_eq!(b.join().unwrap(), "b");
        });
    });
}

#[test]
fn block_on_inside_a_waiting_block_on_is_refused_as_nested() {
    let _watchdog = support::watchdog();
    with_watchdog("nested in a waiting block_on", || {
        let rt = current_thread();
        let (a_inside, release) = (Signal::new(), Signal::new());
        std::thread::scope(|s| {
            let a = s.spawn(|| {
                rt.block_on(async {
                    a_inside.set();
                    time::timeout(HANG, release.wait()).await.unwrap();
                })
            });
            a_inside.wait_or_fail("the first block_on");
            let msg = s
                .spawn(|| {
                    rt.block_on(async {
                        // This thread waits for the driver, and still counts as inside
                        // `block_on`.
                        let msg = panic_message_of(|| Handle::current().block_on(async {}));
                        release.set();
                        msg
                    })
                })
                .join()
                .unwrap();
            assert!(
                msg.starts_with("Cannot start a runtime from within a runtime"),
                "{msg}"
            );
            a.join().unwrap();
        });
    });
}

/// `!Send` tasks pin the runtime to their thread: another thread's `block_on` polls its
/// own future but never takes the runtime over, even while nobody drives it.
#[test]
fn a_runtime_with_local_tasks_is_never_driven_by_another_thread() {
    let _watchdog = support::watchdog();
    with_watchdog("pinned runtime", || {
        let rt = current_thread();
        let (a_driving, b_polling, a_left, poke, b_done) = (
            Signal::new(),
            Signal::new(),
            Signal::new(),
            Signal::new(),
            Signal::new(),
        );
        let local_ran_on = Arc::new(Mutex::new(None::<ThreadId>));
        std::thread::scope(|s| {
            s.spawn(|| {
                let a = tid();
                rt.block_on(async {
                    // This thread drives the runtime now: only then may it spawn locally
                    // (had the other thread's `block_on` taken the runtime first, this
                    // `spawn_local` would panic, as tokio's outside a `LocalSet`).
                    a_driving.set();
                    let (poke, record) = (poke.clone(), local_ran_on.clone());
                    // Outlives this `block_on`; the `Rc` makes it `!Send`.
                    let rc = std::rc::Rc::new(());
                    drop(spawn_local(async move {
                        poke.wait().await;
                        let _keep = rc;
                        *record.lock().unwrap() = Some(tid());
                    }));
                    time::timeout(HANG, b_polling.wait()).await.unwrap();
                });
                a_left.set();
                b_done.wait_or_fail("the other thread's block_on");
                assert_eq!(
                    *local_ran_on.lock().unwrap(),
                    None,
                    "the local task ran off its thread"
                );
                // Back on the pinned thread: it drives again, and the task runs here.
                rt.block_on(async {
                    let deadline = std::time::Instant::now() + HANG;
                    while local_ran_on.lock().unwrap().is_none() {
                        assert!(
                            std::time::Instant::now() < deadline,
                            "the local task never ran"
                        );
                        epitome_runtime::task::yield_now().await;
                    }
                });
                assert_eq!(*local_ran_on.lock().unwrap(), Some(a));
            });
            s.spawn(|| {
                a_driving.wait_or_fail("the pinned thread drives the runtime");
                rt.block_on(async {
                    b_polling.set();
                    a_left.wait().await;
                    // Wakes the local task: it is queued, and this thread may not run it.
                    poke.set();
                    // `yield_now` wakes this thread at once: it polls its own future many
                    // times, with the runtime free but pinned elsewhere.
                    for _ in 0..200 {
                        epitome_runtime::task::yield_now().await;
                    }
                    assert!(Handle::try_current().is_ok(), "entered while waiting");
                });
                b_done.set();
            });
        });
    });
}
