//! `Builder`, `Runtime` and `Handle`: building, `block_on`, spawning from outside,
//! entering, `Handle::current`, nested `block_on`, and handles that outlive their
//! runtime.

mod support;

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use epitome_runtime::runtime::{Builder, Handle, Runtime};
use epitome_runtime::task::yield_now;
use epitome_runtime::time;
use support::{
    DropCounter, HANG, Signal, block_on_plain, both_flavors, current_thread, multi,
    panic_message_of, quiet_panics, with_watchdog,
};

const NESTED: &str = "Cannot start a runtime from within a runtime";

#[test]
fn block_on_returns_the_output_on_both_flavors() {
    let _watchdog = support::watchdog();
    for (name, rt) in both_flavors() {
        assert_eq!(rt.block_on(async { 6 * 7 }), 42, "{name}");
        // Spawning inside `block_on` spawns onto this runtime.
        let out = rt.block_on(async {
            let task = epitome_runtime::spawn(async { 20 + 1 });
            task.await.unwrap() * 2
        });
        assert_eq!(out, 42, "{name}");
        assert_eq!(rt.metrics().spawned_tasks_count(), 1, "{name}");
    }
}

#[test]
fn runtime_new_builds_a_working_multi_reactor_runtime() {
    let _watchdog = support::watchdog();
    let rt = Runtime::new().unwrap();
    let expected = std::thread::available_parallelism().map_or(1, |n| n.get());
    assert_eq!(rt.metrics().num_workers(), expected);
    assert_eq!(rt.block_on(rt.spawn(async { 5 })).unwrap(), 5);
}

#[test]
fn runtime_spawn_and_handle_spawn_from_outside_run_their_tasks() {
    let _watchdog = support::watchdog();
    for (name, rt) in both_flavors() {
        // From outside any runtime context: onto the runtime's workers. A
        // current-thread runtime runs them once some thread drives it.
        let a = rt.spawn(async { 1 });
        let b = rt.handle().spawn(async { 2 });
        let handle = rt.handle().clone();
        let c = std::thread::spawn(move || handle.spawn(async { 3 }))
            .join()
            .unwrap();
        let sum = rt.block_on(async { a.await.unwrap() + b.await.unwrap() + c.await.unwrap() });
        assert_eq!(sum, 6, "{name}");
    }
}

#[test]
fn spawn_outside_a_runtime_panics_with_a_clear_message() {
    let _watchdog = support::watchdog();
    let msg = panic_message_of(|| epitome_runtime::spawn(async {}));
    assert!(
        msg.contains("`epitome::spawn` called outside of an epitome runtime"),
        "unexpected message: {msg}"
    );
    // Also on a thread that once was in a runtime but left it.
    let rt = current_thread();
    rt.block_on(async {});
    let msg = panic_message_of(|| epitome_runtime::spawn(async {}));
    assert!(msg.contains("outside of an epitome runtime"), "{msg}");
}

#[test]
fn handle_current_outside_a_runtime_panics_with_a_clear_message() {
    let _watchdog = support::watchdog();
    let msg = panic_message_of(Handle::current);
    assert!(
        msg.contains("there is no epitome runtime on this thread"),
        "unexpected message: {msg}"
    );
    let err = Handle::try_current().unwrap_err();
    assert_eq!(
        err.to_string(),
        "there is no epitome runtime on this thread"
    );
}

#[test]
fn handle_current_is_the_runtime_in_block_on_in_tasks_and_in_blocking_closures() {
    let _watchdog = support::watchdog();
    for (name, rt) in both_flavors() {
        let spawned = rt.block_on(async {
            let from_block_on = Handle::current().spawn(async { 1 });
            let from_task = epitome_runtime::spawn(async {
                Handle::current().spawn(async { 2 }).await.unwrap()
            });
            let from_blocking =
                epitome_runtime::task::spawn_blocking(|| Handle::current().spawn(async { 3 }));
            let inner = from_blocking.await.unwrap();
            from_block_on.await.unwrap() + from_task.await.unwrap() + inner.await.unwrap()
        });
        assert_eq!(spawned, 6, "{name}");
        // 1 + (task + its child) + 3: every spawn went to this runtime.
        assert_eq!(rt.metrics().spawned_tasks_count(), 4, "{name}");
    }
}

#[test]
fn enter_makes_the_runtime_current_until_the_guard_drops() {
    let _watchdog = support::watchdog();
    let a = multi(1);
    let b = current_thread();
    assert!(Handle::try_current().is_err());
    {
        let _ga = a.enter();
        let on_a = epitome_runtime::spawn(async { "a" });
        assert_eq!(a.metrics().spawned_tasks_count(), 1);
        {
            let _gb = b.enter();
            // The innermost entered runtime wins...
            let on_b = Handle::current().spawn(async { "b" });
            assert_eq!(b.metrics().spawned_tasks_count(), 1);
            assert_eq!(a.metrics().spawned_tasks_count(), 1);
            drop(_gb);
            // ...and leaving it restores the outer one.
            let on_a2 = epitome_runtime::spawn(async { "a2" });
            assert_eq!(a.metrics().spawned_tasks_count(), 2);
            assert_eq!(b.metrics().spawned_tasks_count(), 1);
            // Entering does not drive a current-thread runtime: its task runs once
            // `block_on` drives it.
            assert_eq!(b.block_on(on_b).unwrap(), "b");
            assert_eq!(block_on_plain(on_a2).unwrap(), "a2");
        }
        assert_eq!(block_on_plain(on_a).unwrap(), "a");
    }
    assert!(Handle::try_current().is_err());
}

#[test]
fn handle_block_on_drives_futures_from_a_foreign_thread_on_a_multi_reactor_runtime() {
    let _watchdog = support::watchdog();
    let rt = multi(2);
    let handle = rt.handle().clone();
    let out = with_watchdog("Handle::block_on", move || {
        handle.block_on(async {
            // The runtime is entered: spawns, timers and `Handle::current` work.
            let task = epitome_runtime::spawn(async { 40 });
            time::sleep(Duration::from_millis(5)).await;
            let _ = Handle::current();
            task.await.unwrap() + 2
        })
    });
    assert_eq!(out, 42);
}

#[test]
fn handle_block_on_a_current_thread_runtime_while_another_thread_drives_it() {
    let _watchdog = support::watchdog();
    let rt = current_thread();
    let handle = rt.handle().clone();
    let done = Signal::new();
    let done2 = done.clone();
    let other = std::thread::spawn(move || {
        let out = handle.block_on(async {
            // The timer and the task live on the runtime's single worker, which the
            // main thread drives.
            time::sleep(Duration::from_millis(10)).await;
            epitome_runtime::spawn(async { 7 }).await.unwrap()
        });
        done2.set();
        out
    });
    rt.block_on(async {
        time::timeout(HANG, done.wait())
            .await
            .expect("Handle::block_on on the other thread never finished");
    });
    assert_eq!(other.join().unwrap(), 7);
}

fn assert_send_sync<T: Send + Sync>() {}

/// `Handle` and `Runtime` are `Send + Sync` (as tokio's are): `block_on` from several
/// threads needs `&Runtime` on several threads, and a runtime should be movable into
/// the thread that will own it. A compile-time check.
#[test]
fn runtime_is_send_and_sync() {
    assert_send_sync::<Handle>();
    assert_send_sync::<Runtime>();
}

#[test]
fn nested_block_on_inside_block_on_is_refused_with_a_clear_message() {
    let _watchdog = support::watchdog();
    for (name, rt) in both_flavors() {
        let other = current_thread();
        rt.block_on(async {
            let same = panic_message_of(|| rt.block_on(async {}));
            assert!(same.contains(NESTED), "{name}: {same}");
            let different = panic_message_of(|| other.block_on(async {}));
            assert!(different.contains(NESTED), "{name}: {different}");
            let handle = panic_message_of(|| other.handle().block_on(async {}));
            assert!(handle.contains(NESTED), "{name}: {handle}");
        });
        // The refused call left the runtime usable.
        assert_eq!(
            rt.block_on(async { epitome_runtime::spawn(async { 1 }).await.unwrap() }),
            1,
            "{name}"
        );
    }
}

#[test]
#[should_panic(expected = "Cannot start a runtime from within a runtime")]
fn nested_block_on_on_a_current_thread_runtime_panics() {
    let _watchdog = support::watchdog();
    quiet_panics();
    let rt = current_thread();
    rt.block_on(async { rt.block_on(async {}) });
}

#[test]
fn nested_block_on_inside_a_task_on_a_worker_is_refused() {
    let _watchdog = support::watchdog();
    quiet_panics();
    for (name, rt) in both_flavors() {
        let handle = rt.handle().clone();
        rt.block_on(async move {
            // `Handle::block_on` of its own runtime, from a task.
            let own = epitome_runtime::spawn(async move { handle.block_on(async {}) });
            // `Runtime::block_on` of a brand-new runtime, from a task.
            let fresh = epitome_runtime::spawn(async {
                let rt2 = current_thread();
                rt2.block_on(async {})
            });
            for (what, res) in [("own handle", own.await), ("fresh runtime", fresh.await)] {
                let err = res.expect_err("nested block_on in a task must panic");
                assert!(err.is_panic(), "{name}, {what}: {err}");
                let msg = support::panic_str(err.into_panic().as_ref())
                    .unwrap_or_default()
                    .to_string();
                assert!(msg.contains(NESTED), "{name}, {what}: {msg}");
            }
        });
    }
}

#[test]
fn block_on_is_allowed_again_off_the_workers_in_spawn_blocking() {
    let _watchdog = support::watchdog();
    let rt = multi(2);
    let out = rt.block_on(async {
        let handle = Handle::current();
        epitome_runtime::task::spawn_blocking(move || {
            let fresh = current_thread().block_on(async { 1 });
            fresh + handle.block_on(async { epitome_runtime::spawn(async { 2 }).await.unwrap() })
        })
        .await
        .unwrap()
    });
    assert_eq!(out, 3);
}

#[test]
fn block_on_works_again_after_its_future_panicked() {
    let _watchdog = support::watchdog();
    quiet_panics();
    for (name, rt) in both_flavors() {
        let survivor = rt.spawn(async {
            yield_now().await;
            "survivor"
        });
        let res = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            rt.block_on(async {
                yield_now().await;
                std::panic::panic_any(support::ExpectedPanic(1));
            })
        }));
        let payload = res.expect_err("the panic propagates out of block_on");
        assert_eq!(
            payload.downcast_ref::<support::ExpectedPanic>(),
            Some(&support::ExpectedPanic(1)),
            "{name}"
        );
        let out = rt.block_on(async {
            let fresh = epitome_runtime::spawn(async { 1 }).await.unwrap();
            (survivor.await.unwrap(), fresh)
        });
        assert_eq!(out, ("survivor", 1), "{name}");
    }
}

#[test]
fn builder_names_workers_and_runs_start_and_stop_hooks() {
    let _watchdog = support::watchdog();
    let started = Arc::new(AtomicUsize::new(0));
    let stopped = Arc::new(AtomicUsize::new(0));
    let names = Arc::new(Mutex::new(Vec::new()));
    let (s, t, n) = (started.clone(), stopped.clone(), names.clone());
    let rt = Builder::new_multi_reactor()
        .reactors(3)
        .thread_name("rt-test-worker")
        .on_thread_start(move || {
            s.fetch_add(1, Ordering::SeqCst);
            n.lock()
                .unwrap()
                .push(std::thread::current().name().map(str::to_string));
        })
        .on_thread_stop(move || {
            t.fetch_add(1, Ordering::SeqCst);
        })
        .build()
        .unwrap();
    assert_eq!(rt.metrics().num_workers(), 3);
    support::wait_until("on_thread_start on every worker", || {
        started.load(Ordering::SeqCst) == 3
    });
    assert!(
        names
            .lock()
            .unwrap()
            .iter()
            .all(|n| n.as_deref() == Some("rt-test-worker"))
    );
    // Tasks run on the named workers.
    let name = rt
        .block_on(rt.spawn(async { std::thread::current().name().map(str::to_string) }))
        .unwrap();
    assert_eq!(name.as_deref(), Some("rt-test-worker"));
    assert_eq!(stopped.load(Ordering::SeqCst), 0);
    drop(rt);
    // The workers are joined by the drop, so every stop hook has run.
    assert_eq!(stopped.load(Ordering::SeqCst), 3);
}

#[test]
fn builder_thread_name_fn_names_each_thread() {
    let _watchdog = support::watchdog();
    let next = AtomicUsize::new(0);
    let rt = Builder::new_multi_reactor()
        .reactors(2)
        .thread_name_fn(move || format!("rt-fn-{}", next.fetch_add(1, Ordering::SeqCst)))
        .build()
        .unwrap();
    let handles: Vec<_> = (0..2)
        .map(|_| rt.spawn(async { std::thread::current().name().unwrap().to_string() }))
        .collect();
    let mut names: Vec<_> = handles
        .into_iter()
        .map(|h| rt.block_on(h).unwrap())
        .collect();
    names.sort();
    assert_eq!(names, ["rt-fn-0", "rt-fn-1"]);
}

#[test]
fn builder_rejects_zero_sizes_clearly() {
    let _watchdog = support::watchdog();
    let msg = panic_message_of(|| {
        Builder::new_multi_reactor().reactors(0);
    });
    assert!(msg.contains("at least one reactor"), "{msg}");
    let msg = panic_message_of(|| {
        Builder::new_multi_reactor().event_interval(0);
    });
    assert!(msg.contains("event_interval must be at least 1"), "{msg}");
    let msg = panic_message_of(|| {
        Builder::new_current_thread().max_blocking_threads(0);
    });
    assert!(msg.contains("at least one thread"), "{msg}");
}

#[test]
fn a_current_thread_runtime_has_one_worker_and_ignores_reactors() {
    let _watchdog = support::watchdog();
    let rt = Builder::new_current_thread().reactors(4).build().unwrap();
    assert_eq!(rt.metrics().num_workers(), 1);
    let dbg = format!("{rt:?} {:?}", rt.handle());
    assert!(dbg.contains("CurrentThread"), "{dbg}");
}

#[test]
fn a_handle_that_outlives_its_runtime_gets_cancelled_tasks() {
    let _watchdog = support::watchdog();
    for (name, rt) in both_flavors() {
        let handle = rt.handle().clone();
        drop(rt);
        let drops = DropCounter::new();
        let guard = drops.guard();
        let task = handle.spawn(async move {
            let _guard = guard;
            unreachable!("a task spawned after shutdown must never run");
        });
        // The future was dropped at once, where the spawn was refused.
        assert_eq!(drops.count(), 1, "{name}");
        let err = block_on_plain(task).expect_err("spawned after shutdown");
        assert!(err.is_cancelled(), "{name}: {err}");
        assert_eq!(handle.metrics().num_alive_tasks(), 0, "{name}");
    }
}

#[test]
fn builder_name_handle_name_and_runtime_flavor() {
    let _watchdog = support::watchdog();
    let named = Builder::new_current_thread().name("edge").build().unwrap();
    assert_eq!(named.handle().name(), Some("edge"));
    assert_eq!(
        named
            .block_on(async { Handle::current().name().map(str::to_owned) })
            .as_deref(),
        Some("edge")
    );
    assert_eq!(
        named.handle().runtime_flavor(),
        epitome_runtime::runtime::RuntimeFlavor::CurrentThread
    );
    // tokio's builder names: `new_multi_thread` and `worker_threads`.
    let multi = Builder::new_multi_thread()
        .worker_threads(3)
        .build()
        .unwrap();
    assert_eq!(multi.handle().name(), None);
    assert_eq!(multi.metrics().num_workers(), 3);
    assert_eq!(
        multi.handle().runtime_flavor(),
        epitome_runtime::runtime::RuntimeFlavor::MultiThread
    );
    // An empty name is refused, as tokio refuses it.
    let msg = panic_message_of(|| {
        Builder::new_current_thread().name("  ");
    });
    assert_eq!(msg, "runtime name shouldn't be empty");
    let msg = panic_message_of(|| {
        Builder::new_multi_thread().worker_threads(0);
    });
    assert!(msg.contains("at least one reactor"), "{msg}");
}
