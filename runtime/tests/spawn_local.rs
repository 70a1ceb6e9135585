//! `spawn_local`: `!Send` futures run on the worker that spawned them, are dropped
//! there, and spawning one off a worker panics with a clear message.

mod support;

use std::future::pending;
use std::rc::Rc;
use std::thread::ThreadId;
use std::time::Duration;

use epitome_runtime::task::{JoinHandle, JoinSet, spawn_blocking, spawn_local, yield_now};
use epitome_runtime::time;
use support::{DropCounter, current_thread, multi, panic_message_of, wait_until};

fn tid() -> ThreadId {
    std::thread::current().id()
}

#[test]
fn spawn_local_runs_a_non_send_future_on_a_current_thread_runtime() {
    let _watchdog = support::watchdog();
    let rt = current_thread();
    let out = rt.block_on(async {
        let shared = Rc::new(std::cell::RefCell::new(Vec::new()));
        let tasks: Vec<JoinHandle<Rc<std::cell::RefCell<Vec<usize>>>>> = (0..3)
            .map(|i| {
                let shared = shared.clone();
                spawn_local(async move {
                    yield_now().await;
                    time::sleep(Duration::from_millis(1)).await;
                    shared.borrow_mut().push(i);
                    shared
                })
            })
            .collect();
        for t in tasks {
            let rc = t.await.unwrap();
            assert!(Rc::ptr_eq(&rc, &shared));
        }
        let mut v = shared.borrow().clone();
        v.sort();
        v
    });
    assert_eq!(out, [0, 1, 2]);
}

#[test]
fn spawn_local_runs_on_the_current_worker_of_a_multi_reactor_runtime() {
    let _watchdog = support::watchdog();
    let rt = multi(2);
    let results = rt.block_on(async {
        let mut out = Vec::new();
        for _ in 0..4 {
            out.push(epitome_runtime::spawn(async {
                let parent = tid();
                let local = spawn_local(async {
                    // Holds an `Rc` across awaits: `!Send`.
                    let rc = Rc::new(tid());
                    yield_now().await;
                    time::sleep(Duration::from_millis(1)).await;
                    let _ = spawn_blocking(|| ()).await;
                    assert_eq!(*rc, tid());
                    *rc
                });
                (parent, local.await.unwrap())
            }));
        }
        let mut results = Vec::new();
        for t in out {
            results.push(t.await.unwrap());
        }
        results
    });
    for (parent, local) in results {
        assert_eq!(parent, local);
    }
}

#[test]
fn spawn_local_outside_a_worker_panics_clearly() {
    let _watchdog = support::watchdog();
    const MSG: &str =
        "`spawn_local` called from outside of a `task::LocalSet` or `runtime::LocalRuntime`";
    let msg = panic_message_of(|| spawn_local(async {}));
    assert!(msg.contains(MSG), "{msg}");
    // Inside a multi-reactor `block_on`: that thread runs no worker.
    let rt = multi(1);
    let msg = rt.block_on(async { panic_message_of(|| spawn_local(async {})) });
    assert!(msg.contains(MSG), "{msg}");
    // After `Runtime::enter`.
    let rt2 = current_thread();
    let guard = rt2.enter();
    let msg = panic_message_of(|| spawn_local(async {}));
    assert!(msg.contains(MSG), "{msg}");
    drop(guard);
    // On a blocking-pool thread.
    let msg = rt
        .block_on(rt.spawn_blocking(|| panic_message_of(|| spawn_local(async {}))))
        .unwrap();
    assert!(msg.contains(MSG), "{msg}");
}

#[test]
fn local_tasks_are_dropped_on_their_worker_by_abort_and_by_shutdown() {
    let _watchdog = support::watchdog();
    let rt = multi(2);
    let (aborted, at_shutdown) = (DropCounter::new(), DropCounter::new());
    let (a, s) = (aborted.clone(), at_shutdown.clone());
    let (worker, abort) = rt
        .block_on(rt.spawn(async move {
            let (ga, gs) = (a.guard(), s.guard());
            let to_abort = spawn_local(async move {
                let _g = Rc::new(ga);
                pending::<()>().await;
            });
            drop(spawn_local(async move {
                let _g = Rc::new(gs);
                pending::<()>().await;
            }));
            yield_now().await;
            (tid(), to_abort.abort_handle())
        }))
        .unwrap();
    std::thread::spawn(move || abort.abort()).join().unwrap();
    wait_until("the aborted local task is dropped", || aborted.count() == 1);
    assert_eq!(aborted.threads(), [worker]);
    assert_eq!(at_shutdown.count(), 0);
    drop(rt);
    assert_eq!(at_shutdown.count(), 1);
    assert_eq!(at_shutdown.threads(), [worker]);
}

#[test]
fn join_set_spawn_local_runs_non_send_futures() {
    let _watchdog = support::watchdog();
    let rt = current_thread();
    let sum = rt.block_on(async {
        let mut set = JoinSet::new();
        for i in 0..5 {
            let rc = Rc::new(i);
            set.spawn_local(async move {
                yield_now().await;
                *rc
            });
        }
        let mut sum = 0;
        while let Some(r) = set.join_next().await {
            sum += r.unwrap();
        }
        sum
    });
    assert_eq!(sum, 10);
}
