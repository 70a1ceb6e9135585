//! Model 12: a whole worker (`WorkerShared::new` over the fake kernel, its unpark
//! eventfd a fake file of it: `reactor::ModelUnpark`), its own loop
//! (`Core::run_loop`: `run_tasks`, `take_remote`, `Core::park`, `Core::turn`) raced by
//! wakes from another thread through the worker's own functions.
//!
//! - `remote_spawn`: a task spawned from another thread (`Schedule::schedule` off the
//!   worker: `push_remote`, then `unpark`).
//! - `remote_wake`: a task of the worker woken from another thread while the worker
//!   runs, looks for work, parks or sleeps.
//! - `local_batch`: local work past a batch (an event interval of one task): the worker
//!   never parks while its own queue holds work.
//! - `shutdown_signal`: a worker thread (`run_until_shutdown`) told to stop as
//!   `Runtime::shutdown` does (the flag, then an unpark) leaves its loop.
//! - `assist_repost`: a worker standing in for a sibling that looked stuck in a task
//!   poll (`Core::assist_siblings`: a non-blocking turn of the sibling's reactor) while
//!   the sibling in fact parks and another thread queues work for it and writes its
//!   unpark eventfd: a wakeup the stand-in takes from the sibling's reactor is written
//!   again (`Parker::repost`), so the sibling never sleeps through the work.
//! - `block_on_wake`: `Core::block_on`'s own future woken from another thread
//!   (`MainWaker::wake_by_ref`: the woken flag, then `unpark`; the loop's swap of the
//!   flag). The waker sets the flag with `loom::store_beside_swap` (a swap in this
//!   build: loom lets a plain store slip inside a concurrent swap, tokio-rs/loom#254,
//!   which fails this model falsely).
//!
//! Each: the worker never sleeps through the work (loom reports a worker asleep in its
//! reactor with every other thread done as a deadlock); the woken future is polled
//! exactly once more; the unpark eventfd is written at most once per park (no needless
//! wakeup of a running worker); and everything is freed at the worker's shutdown.
use std::future::Future;
use std::task::{Context, Poll};

use super::{PollFn, check};
use crate::scheduler::context;
use crate::scheduler::worker::{Core, WorkerShared};
use crate::task_core::{Schedule, new_task};
use loom::sync::Arc;
use loom::sync::atomic::{AtomicBool, AtomicUsize, Ordering::SeqCst};
use loom::thread;

/// Tasks a worker runs between reactor turns (the builder's default).
const EVENT_INTERVAL: u32 = 61;

/// A future whose first poll starts a thread that wakes it from outside the worker
/// (after setting `go`) and returns `Pending`; a poll that finds `go` completes and sets
/// `done`. Counts polls: two, unless it is polled without being woken.
fn woken_from_another_thread(
    polls: &Arc<AtomicUsize>,
    done: &Arc<AtomicBool>,
    waker_thread: &Arc<loom::sync::Mutex<Option<thread::JoinHandle<()>>>>,
) -> impl Future<Output = ()> + Send + 'static {
    let (polls, done, waker_thread) = (polls.clone(), done.clone(), waker_thread.clone());
    let go = Arc::new(AtomicBool::new(false));
    PollFn(move |cx: &mut Context<'_>| {
        if polls.fetch_add(1, SeqCst) == 0 {
            let (waker, go) = (cx.waker().clone(), go.clone());
            *waker_thread.lock().unwrap() = Some(thread::spawn(move || {
                go.store(true, SeqCst);
                waker.wake();
            }));
            return Poll::Pending;
        }
        if go.load(SeqCst) {
            done.store(true, SeqCst);
            return Poll::Ready(());
        }
        Poll::Pending
    })
}

/// The worker's cost check, then its shutdown: at most one eventfd write per park (plus
/// `reposts`, the writes a stand-in may add), and what its shutdown frees leaves no
/// loom `Arc` behind.
fn finish(shared: std::sync::Arc<WorkerShared>, core: Core, reposts: usize) {
    let writes = shared.parker().wakeup().writes.load(SeqCst);
    let parks = shared.metrics.parks.get() as usize;
    assert!(
        writes <= parks + reposts,
        "{writes} unpark eventfd writes for {parks} parks: a running worker was woken"
    );
    core.local.shutdown();
    drop(core);
    drop(shared);
}

#[test]
fn remote_spawn_vs_the_worker_loop() {
    check("worker/remote_spawn", None, || {
        let (shared, core) = WorkerShared::new().unwrap();
        let done = Arc::new(AtomicBool::new(false));
        let spawner = {
            let (shared, done) = (shared.clone(), done.clone());
            thread::spawn(move || {
                let future = PollFn(move |_: &mut Context<'_>| {
                    done.store(true, SeqCst);
                    Poll::Ready(())
                });
                let (notified, handle) = new_task(future, shared.clone());
                shared.schedule(notified);
                handle
            })
        };
        let scope = context::set_worker(&core);
        core.run_loop(EVENT_INTERVAL, || done.load(SeqCst));
        drop(scope);
        let handle = spawner.join().unwrap();
        assert!(handle.is_finished());
        drop(handle);
        finish(shared, core, 0);
    });
}

#[test]
fn remote_wake_vs_the_worker_loop() {
    check("worker/remote_wake", None, || {
        let (shared, core) = WorkerShared::new().unwrap();
        let (polls, done) = (
            Arc::new(AtomicUsize::new(0)),
            Arc::new(AtomicBool::new(false)),
        );
        let waker_thread = Arc::new(loom::sync::Mutex::new(None));
        let scope = context::set_worker(&core);
        let handle = core
            .local
            .spawn(woken_from_another_thread(&polls, &done, &waker_thread));
        core.run_loop(EVENT_INTERVAL, || done.load(SeqCst));
        drop(scope);
        let waker_thread = waker_thread.lock().unwrap().take();
        waker_thread
            .expect("the first poll started it")
            .join()
            .unwrap();
        assert_eq!(polls.load(SeqCst), 2, "the task was polled once per wake");
        assert!(handle.is_finished());
        drop(handle);
        finish(shared, core, 0);
    });
}

#[test]
fn a_stand_in_reposts_the_wakeup_it_took() {
    check("worker/assist_repost", Some(4), || {
        let (a, core_a) = WorkerShared::new().unwrap();
        let (b, core_b) = WorkerShared::new().unwrap();
        core_a.set_siblings([b.clone()]);
        // The sibling is inside a task poll (as `run_task` marks it) when the stand-in
        // first looks, and still, by its poll count, when it looks again: stuck.
        core_b.local.resume_poll();
        core_a.assist_siblings();
        let done = Arc::new(AtomicBool::new(false));
        let sibling = {
            let done = done.clone();
            thread::spawn(move || {
                // The poll ended long ago (as far as the stand-in saw, it had not):
                // the sibling finds no work and parks.
                let scope = context::set_worker(&core_b);
                core_b.run_loop(EVENT_INTERVAL, || done.load(SeqCst));
                drop(scope);
                core_b
            })
        };
        let spawner = {
            let (b, done) = (b.clone(), done.clone());
            thread::spawn(move || {
                let future = PollFn(move |_: &mut Context<'_>| {
                    done.store(true, SeqCst);
                    Poll::Ready(())
                });
                let (notified, handle) = new_task(future, b.clone());
                b.schedule(notified);
                handle
            })
        };
        core_a.assist_siblings();
        let handle = spawner.join().unwrap();
        let core_b = sibling.join().unwrap();
        assert!(handle.is_finished());
        drop(handle);
        core_a.set_siblings([]);
        // One stand-in turn: at most one repost.
        finish(b, core_b, 1);
        finish(a, core_a, 0);
    });
}

/// Local work beyond a batch: with an event interval of one task, the worker takes a
/// non-blocking turn between two queued tasks and never parks while its own queue
/// holds work (a local spawn or wake writes no eventfd, so a park would be for good).
#[test]
fn a_worker_never_parks_with_local_work() {
    check("worker/local_batch", None, || {
        let (shared, core) = WorkerShared::new().unwrap();
        let runs = Arc::new(AtomicUsize::new(0));
        let scope = context::set_worker(&core);
        let handles: Vec<_> = (0..2)
            .map(|_| {
                let runs = runs.clone();
                core.local.spawn(PollFn(move |_: &mut Context<'_>| {
                    runs.fetch_add(1, SeqCst);
                    Poll::Ready(())
                }))
            })
            .collect();
        core.run_loop(1, || runs.load(SeqCst) == 2);
        drop(scope);
        assert!(handles.iter().all(|h| h.is_finished()));
        drop(handles);
        assert_eq!(shared.metrics.parks.get(), 0, "parked with work queued");
        finish(shared, core, 0);
    });
}

#[test]
fn block_on_woken_from_another_thread() {
    check("worker/block_on_wake", None, || {
        let (shared, core) = WorkerShared::new().unwrap();
        let (polls, done) = (
            Arc::new(AtomicUsize::new(0)),
            Arc::new(AtomicBool::new(false)),
        );
        let waker_thread = Arc::new(loom::sync::Mutex::new(None));
        let scope = context::set_worker(&core);
        let future = woken_from_another_thread(&polls, &done, &waker_thread);
        core.block_on(EVENT_INTERVAL, std::pin::pin!(future));
        drop(scope);
        let waker_thread = waker_thread.lock().unwrap().take();
        waker_thread
            .expect("the first poll started it")
            .join()
            .unwrap();
        assert_eq!(
            polls.load(SeqCst),
            2,
            "block_on polled its future once per wake"
        );
        finish(shared, core, 0);
    });
}

/// A multi-reactor worker's thread (`Core::run_until_shutdown`) told to stop the way
/// `Runtime::shutdown` tells it (its `shutdown` flag, then an unpark) while it looks for
/// work, parks or sleeps: it leaves its loop, never sleeping through the signal.
#[test]
fn a_worker_leaves_its_loop_at_shutdown() {
    check("worker/shutdown_signal", None, || {
        let (shared, core) = WorkerShared::new().unwrap();
        let worker = thread::spawn(move || {
            let scope = context::set_worker(&core);
            core.run_until_shutdown(EVENT_INTERVAL);
            drop(scope);
            core
        });
        // `Runtime::shutdown`, for each worker.
        shared.shutdown.store(true, SeqCst);
        shared.unpark();
        let core = worker.join().unwrap();
        finish(shared, core, 0);
    });
}
