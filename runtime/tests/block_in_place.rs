//! `task::block_in_place`: on a multi-reactor worker the worker's other tasks, I/O
//! sources and timers keep running (on a stand-in thread) while one task blocks its
//! thread; elsewhere it runs the closure, or panics as tokio does (current-thread
//! runtime, `LocalSet`), or names `spawn_blocking` (a worker with `!Send` tasks).

mod support;

use std::io::{Read, Write};
use std::os::unix::net::UnixStream;
use std::sync::mpsc;
use std::thread::ThreadId;
use std::time::Duration;

use epitome_runtime::io::Async;
use epitome_runtime::runtime::Handle;
use epitome_runtime::task::{self, LocalSet, block_in_place, spawn_local, yield_now};
use epitome_runtime::time;
use support::{HANG, Signal, current_thread, multi, panic_message_of, with_watchdog};

const NOT_MULTI: &str = "can call blocking only when running on the multi-threaded runtime";

fn tid() -> ThreadId {
    std::thread::current().id()
}

/// The property tokio's `block_in_place` promises: while a task blocks, the other tasks
/// of its worker (here: spawned from it, so on the same worker), with their timers and
/// I/O sources, keep running. Without a hand-over this deadlocks.
#[test]
fn the_blocked_workers_tasks_timers_and_sources_keep_running() {
    let _watchdog = support::watchdog();
    with_watchdog("block_in_place hand-over", || {
        let rt = multi(2);
        let (ran_on, blocked_on, after) = rt.block_on(async {
            epitome_runtime::spawn(async {
                let (a, mut b) = UnixStream::pair().unwrap();
                let a = Async::new(a).unwrap();
                let (tx, rx) = mpsc::channel();
                // Same worker as this task: it waits for a timer, then for bytes on a
                // socket registered with this worker's reactor.
                let helper = epitome_runtime::spawn(async move {
                    time::sleep(Duration::from_millis(10)).await;
                    let mut buf = [0u8; 4];
                    let n = a.read_with(|s| (&*s).read(&mut buf)).await.unwrap();
                    tx.send((tid(), buf[..n].to_vec())).unwrap();
                });
                let me = tid();
                let (ran_on, got) = block_in_place(move || {
                    b.write_all(b"ping").unwrap();
                    rx.recv_timeout(HANG)
                        .expect("the worker's other task never ran")
                });
                assert_eq!(got, b"ping");
                helper.await.unwrap();
                (ran_on, me, tid())
            })
            .await
            .unwrap()
        });
        assert_ne!(ran_on, blocked_on, "the helper ran on a stand-in thread");
        assert_eq!(
            after, blocked_on,
            "the blocked task resumes on its own thread"
        );
    });
}

#[test]
fn the_output_comes_back_and_a_panic_propagates_after_the_worker_returns() {
    let _watchdog = support::watchdog();
    support::quiet_panics();
    with_watchdog("output and panic", || {
        let rt = multi(1);
        let out = rt.block_on(async {
            epitome_runtime::spawn(async { block_in_place(|| 40) + 2 })
                .await
                .unwrap()
        });
        assert_eq!(out, 42);
        let err = rt.block_on(async {
            epitome_runtime::spawn(async {
                block_in_place(|| std::panic::panic_any(support::ExpectedPanic(11)))
            })
            .await
            .unwrap_err()
        });
        assert!(err.is_panic());
        // The worker is intact and keeps serving.
        for _ in 0..3 {
            let n = rt.block_on(async {
                epitome_runtime::spawn(async {
                    time::sleep(Duration::from_millis(1)).await;
                    yield_now().await;
                    7
                })
                .await
                .unwrap()
            });
            assert_eq!(n, 7);
        }
    });
}

#[test]
fn many_block_in_place_calls_on_every_worker() {
    let _watchdog = support::watchdog();
    with_watchdog("many calls", || {
        let rt = multi(2);
        let sum: u64 = rt.block_on(async {
            let tasks: Vec<_> = (0..40u64)
                .map(|i| {
                    epitome_runtime::spawn(async move {
                        let mut acc = 0;
                        for j in 0..5 {
                            acc += block_in_place(|| {
                                std::thread::sleep(Duration::from_micros(200));
                                i + j
                            });
                            yield_now().await;
                        }
                        acc
                    })
                })
                .collect();
            let mut sum = 0;
            for t in tasks {
                sum += t.await.unwrap();
            }
            sum
        });
        assert_eq!(sum, (0..40u64).map(|i| 5 * i + 10).sum::<u64>());
    });
}

#[test]
fn inside_the_closure_block_on_and_nested_block_in_place_work() {
    let _watchdog = support::watchdog();
    with_watchdog("block_on inside", || {
        let rt = multi(2);
        let out = rt.block_on(async {
            epitome_runtime::spawn(async {
                block_in_place(|| {
                    // No budget, no task context in here... but the runtime is entered.
                    let inner = block_in_place(|| 1);
                    let h = Handle::current();
                    inner
                        + h.block_on(async {
                            time::sleep(Duration::from_millis(1)).await;
                            epitome_runtime::spawn(async { 2 }).await.unwrap()
                        })
                })
            })
            .await
            .unwrap()
        });
        assert_eq!(out, 3);
    });
}

#[test]
fn shutting_down_while_a_task_blocks_in_place_waits_for_it() {
    let _watchdog = support::watchdog();
    with_watchdog("shutdown during block_in_place", || {
        let rt = multi(2);
        let (inside, release) = (Signal::new(), Signal::new());
        let (i, r) = (inside.clone(), release.clone());
        let task = rt.spawn(async move {
            block_in_place(move || {
                i.set();
                r.wait_or_fail("release");
            });
        });
        inside.wait_or_fail("the task to block");
        let releaser = std::thread::spawn(move || {
            std::thread::sleep(Duration::from_millis(20));
            release.set();
        });
        drop(rt);
        releaser.join().unwrap();
        drop(task);
    });
}

#[test]
fn off_a_runtime_and_on_the_multi_reactor_block_on_thread_it_just_runs() {
    let _watchdog = support::watchdog();
    assert_eq!(block_in_place(|| 5), 5);
    let rt = multi(1);
    let out = rt.block_on(async {
        let here = tid();
        block_in_place(move || {
            assert_eq!(tid(), here);
            // The `block_on` thread may `block_on` again inside.
            Handle::current().block_on(async { 6 })
        })
    });
    assert_eq!(out, 6);
    // On a blocking-pool thread too.
    let out = rt
        .block_on(rt.spawn_blocking(|| block_in_place(|| 7)))
        .unwrap();
    assert_eq!(out, 7);
}

#[test]
fn a_current_thread_runtime_refuses_as_tokio_does() {
    let _watchdog = support::watchdog();
    let rt = current_thread();
    let msg = rt.block_on(async { panic_message_of(|| block_in_place(|| ())) });
    assert!(msg.starts_with(NOT_MULTI), "{msg}");
    let msg = rt.block_on(async {
        epitome_runtime::spawn(async { panic_message_of(|| block_in_place(|| ())) })
            .await
            .unwrap()
    });
    assert!(msg.starts_with(NOT_MULTI), "{msg}");
    assert!(msg.contains("spawn_blocking"), "{msg}");
}

#[test]
fn inside_a_local_set_it_refuses_as_tokio_does() {
    let _watchdog = support::watchdog();
    let rt = multi(1);
    let local = LocalSet::new();
    let msg = local.block_on(&rt, async {
        task::spawn_local(async { panic_message_of(|| block_in_place(|| ())) })
            .await
            .unwrap()
    });
    assert!(msg.starts_with(NOT_MULTI), "{msg}");
}

#[test]
fn a_worker_with_local_tasks_is_not_lent_and_the_panic_names_spawn_blocking() {
    let _watchdog = support::watchdog();
    let rt = multi(1);
    let msg = rt.block_on(async {
        epitome_runtime::spawn(async {
            drop(spawn_local(async {}));
            panic_message_of(|| block_in_place(|| ()))
        })
        .await
        .unwrap()
    });
    assert!(msg.contains("`!Send` tasks"), "{msg}");
    assert!(msg.contains("spawn_blocking"), "{msg}");
}

#[test]
fn spawn_local_is_refused_in_a_task_run_by_a_stand_in() {
    let _watchdog = support::watchdog();
    with_watchdog("spawn_local on a stand-in", || {
        let rt = multi(1);
        let msg = rt.block_on(async {
            epitome_runtime::spawn(async {
                let (tx, rx) = mpsc::channel();
                // Runs on the stand-in while the spawner blocks.
                let _helper = epitome_runtime::spawn(async move {
                    let msg = panic_message_of(|| spawn_local(async {}));
                    tx.send(msg).unwrap();
                });
                block_in_place(move || rx.recv_timeout(HANG).expect("the helper ran"))
            })
            .await
            .unwrap()
        });
        assert!(msg.contains("stand-in"), "{msg}");
        // Once the worker is back, `spawn_local` works there again.
        let ok = rt.block_on(async {
            epitome_runtime::spawn(async { spawn_local(async { 1 }).await.unwrap() })
                .await
                .unwrap()
        });
        assert_eq!(ok, 1);
    });
}

#[test]
fn inside_handle_block_on_it_just_runs_on_both_flavors() {
    let _watchdog = support::watchdog();
    for (name, make) in support::FLAVORS {
        let rt = make();
        let handle = rt.handle().clone();
        // `Handle::block_on` only polls its future (it drives no worker), so blocking
        // in place there stalls nothing, as in tokio.
        let out = std::thread::spawn(move || {
            handle.block_on(async { block_in_place(|| Handle::current().block_on(async { 9 })) })
        })
        .join()
        .unwrap();
        assert_eq!(out, 9, "{name}");
    }
}
