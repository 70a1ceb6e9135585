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
//! - `remote_timer`: a timer registered from another thread (`TimerShared::register`)
//!   on a worker asleep with no timer of its own: the wheel unparks the worker
//!   (`TimerUnpark`), which fires it (it is due at once) rather than sleeping past it.
//! - `awake_gauge`: the worker's awake gauge (`is_awake`, for metrics) reads false
//!   while it sleeps in its reactor and true again once it is woken (by a shutdown
//!   signal here).
//! - `metrics`: the worker's counters under the writers that race: a local spawn beside
//!   two remote spawns (`RuntimeShared::spawn_on`), then the worker's shutdown beside a
//!   spawn it may refuse (both sides complete tasks). Every count is exact: a lost
//!   update would show a task alive for ever in `num_alive_tasks`.
//! - `timed_assist`: a worker out of work while its sibling is awake sleeps in timed
//!   stretches (`any_sibling_awake`), so it stands in for the sibling once it is stuck
//!   in a task poll: here the worker's own task waits on a source of the stuck
//!   sibling's reactor, whose event only a stand-in can take (the fake kernel has no
//!   time: a timed sleep that finds nothing ready reaches its timeout at once).
//! - `cross_worker_wake`: a task of one worker woken by a task of another, on the
//!   other's thread (`Schedule::schedule` on a worker thread that is not the task's
//!   owner: `is_current`): the wake goes to the owner's remote queue and unparks it,
//!   and the owner runs its task once more, on its own thread (tasks never migrate).
//! - `refused_on_a_sibling`: the one release of another worker's task on a worker's
//!   thread: a task of worker A spawns onto worker B after B's shutdown, and A's
//!   thread cancels the refused task (`Schedule::release` there finds it never bound:
//!   A's own list and task are left alone).
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
use std::sync::Arc as OsArc;
use std::task::{Context, Poll};
use std::time::Instant;

use super::{DropCounter, PollFn, check, counting_waker};
use crate::eventpoll::EPOLLIN;
use crate::reactor::Interest;
use crate::reactor::scheduled_io::Direction;
use crate::scheduler::worker::{Core, WorkerShared, with_worker};
use crate::scheduler::{RuntimeShared, context};
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
        assert!(
            core.local.owned.first().is_none(),
            "a completed task stayed on its worker's list (held until shutdown)"
        );
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
                // Each yields once (wakes itself from its own worker's thread: a local
                // schedule, no remote queue, no unpark).
                let mut yielded = false;
                core.local.spawn(PollFn(move |cx: &mut Context<'_>| {
                    if !std::mem::replace(&mut yielded, true) {
                        cx.waker().wake_by_ref();
                        return Poll::Pending;
                    }
                    runs.fetch_add(1, SeqCst);
                    Poll::Ready(())
                }))
            })
            .collect();
        core.run_loop(1, || runs.load(SeqCst) == 2);
        assert_eq!(
            shared.metrics.local_schedules.get(),
            2,
            "a self-wake went remote"
        );
        assert_eq!(shared.metrics.remote_schedules.load(SeqCst), 0);
        drop(scope);
        assert!(handles.iter().all(|h| h.is_finished()));
        drop(handles);
        assert!(
            core.local.owned.first().is_none(),
            "a completed task stayed on its worker's list (held until shutdown)"
        );
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

/// A timer registered from another thread while the worker has none: the worker must
/// not sleep on without a timeout. With no timer before its wait, its turn does not
/// look at the wheel afterwards (`Core::turn`), so only the wheel's unpark gets it to
/// fire the timer; a worker that sleeps through it is a deadlock to loom (the
/// registering thread is done). The timer is due at once (the fake kernel has no
/// time: a wait takes no timeout but zero), so the worker's next turn fires it.
#[test]
fn a_timer_registered_from_another_thread_wakes_the_worker() {
    check("worker/remote_timer", None, || {
        let (shared, core) = WorkerShared::new().unwrap();
        let (fired, waker) = counting_waker();
        let registrar = {
            let shared = shared.clone();
            thread::spawn(move || shared.timer.register(Instant::now(), waker))
        };
        let scope = context::set_worker(&core);
        core.run_loop(EVENT_INTERVAL, || fired.count() == 1);
        drop(scope);
        let key = registrar.join().unwrap();
        assert_eq!(
            shared.timer.pending(),
            0,
            "the fired timer is still pending"
        );
        shared.timer.cancel(key);
        assert_eq!(fired.count(), 1, "the timer fired twice");
        finish(shared, core, 0);
    });
}

/// A task that never completes on its own (its worker's shutdown cancels it).
fn pending_task() -> PollFn<impl FnMut(&mut Context<'_>) -> Poll<()> + Send + Unpin> {
    PollFn(|_: &mut Context<'_>| Poll::Pending)
}

/// Spawns `pending_task()` on worker 0 from a new thread, as `Handle::spawn` off the
/// workers does.
fn spawn_from_another_thread(
    rt: &OsArc<RuntimeShared>,
) -> thread::JoinHandle<crate::task_core::JoinHandle<()>> {
    let rt = rt.clone();
    thread::spawn(move || rt.spawn_on(0, pending_task()).expect("worker 0 exists"))
}

#[test]
fn metrics_count_every_racing_spawn_and_completion() {
    check("worker/metrics", Some(2), || {
        // The runtime `spawn_on` needs (the lend it allows plays no part here).
        let (shared, core, rt) = super::block_in_place::one_worker();
        let m = &shared.metrics;
        let scope = context::set_worker(&core);
        // `spawned` from the owner and two other threads; `remote_schedules` from two.
        let remote = [
            spawn_from_another_thread(&rt),
            spawn_from_another_thread(&rt),
        ];
        let mut handles = vec![core.local.spawn(pending_task())];
        handles.extend(remote.map(|t| t.join().unwrap()));
        assert_eq!(shared.remote_depth(), 2, "the remote queue's gauge");
        assert_eq!(m.spawned.load(SeqCst), 3, "a spawn went uncounted");
        assert_eq!(
            m.remote_schedules.load(SeqCst),
            2,
            "a remote schedule went uncounted"
        );
        assert_eq!(m.completed.load(SeqCst), 0);
        // `completed` from the worker's shutdown (it cancels its tasks) and from a
        // spawning thread whose task the closed queue refuses (it cancels it itself).
        let late = spawn_from_another_thread(&rt);
        core.local.shutdown();
        handles.push(late.join().unwrap());
        drop(scope);
        assert_eq!(m.spawned.load(SeqCst), 4, "a spawn went uncounted");
        assert_eq!(
            m.completed.load(SeqCst),
            4,
            "a cancelled task went uncounted: it would look alive for ever"
        );
        assert!(handles.iter().all(|h| h.is_finished()));
        assert_eq!(shared.remote_depth(), 0, "the remote queue's gauge");
        drop(handles);
        rt.shutdown.store(true, SeqCst);
        assert!(rt.blocking.shutdown(None));
        drop(core);
        drop(rt);
        drop(shared);
    });
}

/// A worker with nothing to do while its sibling is awake sleeps in timed stretches, to
/// look at the sibling between them (`Core::park`, `any_sibling_awake`): the sibling
/// here is stuck inside a task poll, and this worker's task waits on a source of the
/// sibling's reactor whose event has come. Only this worker's stand-in turn of that
/// reactor (`assist_siblings`, once the sibling has looked stuck twice) can wake its
/// task; a worker that sleeps without a timeout sleeps for ever (a deadlock to loom).
#[test]
fn a_worker_beside_an_awake_sibling_sleeps_in_stretches() {
    check("worker/timed_assist", None, || {
        let (a, core_a) = WorkerShared::new().unwrap();
        let (b, core_b) = WorkerShared::new().unwrap();
        core_a.set_siblings([b.clone()]);
        // The sibling is inside a task poll, for good (its thread never comes back).
        core_b.local.resume_poll();
        let kernel_b = b.reactor.kernel();
        let fd = kernel_b.new_file();
        let io = b.reactor.register(fd, Interest::Source).unwrap();
        kernel_b.set_ready(fd, EPOLLIN);
        let done = Arc::new(AtomicBool::new(false));
        let scope = context::set_worker(&core_a);
        let handle = {
            let (io, done) = (io.clone(), done.clone());
            core_a.local.spawn(PollFn(move |cx: &mut Context<'_>| {
                match io.poll_ready_slot(Direction::Read, cx.waker()) {
                    Some(_) => {
                        done.store(true, SeqCst);
                        Poll::Ready(())
                    }
                    None => Poll::Pending,
                }
            }))
        };
        core_a.run_loop(EVENT_INTERVAL, || done.load(SeqCst));
        drop(scope);
        assert!(handle.is_finished());
        drop(handle);
        assert!(
            a.metrics.parks.get() >= 2,
            "the stand-in turn came before the sibling looked stuck twice"
        );
        core_a.set_siblings([]);
        b.reactor.delete_source(fd).unwrap();
        drop(io);
        finish(a, core_a, 0);
        finish(b, core_b, 0);
    });
}

/// The awake gauge as metrics read it: true while the worker runs, false once it sleeps
/// in its reactor (the model waits for that), true again after the shutdown signal
/// woke it.
#[test]
fn the_awake_gauge_follows_the_worker_to_sleep_and_back() {
    check("worker/awake_gauge", None, || {
        let (shared, core) = WorkerShared::new().unwrap();
        assert!(shared.is_awake(), "a new worker reads asleep");
        let worker = thread::spawn(move || {
            let scope = context::set_worker(&core);
            core.run_until_shutdown(EVENT_INTERVAL);
            drop(scope);
            core
        });
        while shared.is_awake() {
            thread::yield_now();
        }
        shared.shutdown.store(true, SeqCst);
        shared.unpark();
        let core = worker.join().unwrap();
        assert!(
            shared.is_awake(),
            "a worker that left its loop reads asleep"
        );
        finish(shared, core, 0);
    });
}

/// Worker A's task holds the waker of worker B's task and wakes it, on A's thread,
/// while B runs, looks for work, parks or sleeps. The wake is B's: it goes to B's remote
/// queue and unparks B, which polls its task once more, on its own thread; A's queue,
/// list and counters never see it. A wake queued on A instead would have A run a task it
/// does not own while B sleeps on (a deadlock to loom).
#[test]
fn a_wake_from_another_workers_task_goes_to_the_owner() {
    check("worker/cross_worker_wake", None, || {
        let (a, core_a) = WorkerShared::new().unwrap();
        let (b, core_b) = WorkerShared::new().unwrap();
        let slot = OsArc::new(std::sync::Mutex::new(None));
        let polls = Arc::new(AtomicUsize::new(0));
        // The worker B's task's second poll ran under (its shared part's address).
        let ran_under = Arc::new(AtomicUsize::new(0));
        let done = Arc::new(AtomicBool::new(false));
        let handle_b = {
            let (slot, polls, ran_under, done) =
                (slot.clone(), polls.clone(), ran_under.clone(), done.clone());
            core_b.local.spawn(PollFn(move |cx: &mut Context<'_>| {
                if polls.fetch_add(1, SeqCst) == 0 {
                    *slot.lock().unwrap() = Some(cx.waker().clone());
                    return Poll::Pending;
                }
                let worker = with_worker(|w| w.map_or(0, |l| OsArc::as_ptr(&l.shared) as usize));
                ran_under.store(worker, SeqCst);
                done.store(true, SeqCst);
                Poll::Ready(())
            }))
        };
        // B's task's first poll, before B's thread starts: its waker is out.
        let scope = context::set_worker(&core_b);
        core_b.run_loop(EVENT_INTERVAL, || slot.lock().unwrap().is_some());
        drop(scope);
        let worker_b = thread::spawn(move || {
            let scope = context::set_worker(&core_b);
            core_b.run_loop(EVENT_INTERVAL, || done.load(SeqCst));
            drop(scope);
            core_b
        });
        let scope = context::set_worker(&core_a);
        let mut waker = slot.lock().unwrap().take();
        let handle_a = core_a.local.spawn(PollFn(move |_: &mut Context<'_>| {
            waker.take().expect("polled once").wake();
            Poll::Ready(())
        }));
        core_a.run_loop(EVENT_INTERVAL, || handle_a.is_finished());
        drop(scope);
        let core_b = worker_b.join().unwrap();
        assert_eq!(polls.load(SeqCst), 2, "B's task was polled once per wake");
        assert_eq!(
            ran_under.load(SeqCst),
            OsArc::as_ptr(&b) as usize,
            "B's task ran off its own worker"
        );
        assert!(handle_b.is_finished());
        drop((handle_a, handle_b));
        assert_eq!(b.metrics.remote_schedules.load(SeqCst), 1, "the wake's way");
        assert_eq!(
            a.metrics.local_schedules.get(),
            0,
            "queued on the waker's worker"
        );
        assert_eq!(a.metrics.remote_schedules.load(SeqCst), 0);
        assert_eq!((a.metrics.polls.get(), b.metrics.polls.get()), (1, 2));
        assert!(core_a.local.owned.first().is_none());
        assert!(core_b.local.owned.first().is_none());
        finish(a, core_a, 0);
        finish(b, core_b, 0);
    });
}

/// Tasks complete on their owner's thread, with one exception: a spawn its worker's
/// closed queue refuses is cancelled by the spawning thread (`spawn_remote`), which may
/// be another worker's. Here worker A's task spawns onto worker B after B's shutdown:
/// the task is cancelled on A's thread (its future dropped there, once; its handle
/// finished), counted as B's, and released as a task never bound to a worker, so A's
/// list keeps exactly its own task, which A's shutdown cancels.
#[test]
fn a_spawn_refused_by_a_shut_down_sibling_is_cancelled_on_the_spawners_worker() {
    check("worker/refused_on_a_sibling", None, || {
        let (a, core_a) = WorkerShared::new().unwrap();
        let (b, core_b) = WorkerShared::new().unwrap();
        let rt =
            super::block_in_place::runtime_of(Box::new([a.clone(), b.clone()]), EVENT_INTERVAL);
        core_b.local.shutdown();
        let scope = context::set_worker(&core_a);
        let own = core_a.local.spawn(pending_task());
        let drops = Arc::new(AtomicUsize::new(0));
        let refused = OsArc::new(std::sync::Mutex::new(None));
        let spawner = {
            let (rt, drops, refused) = (rt.clone(), drops.clone(), refused.clone());
            core_a.local.spawn(PollFn(move |_: &mut Context<'_>| {
                let guard = DropCounter(drops.clone());
                let handle = rt.spawn_on(1, async move { drop(guard) });
                *refused.lock().unwrap() = handle;
                Poll::Ready(())
            }))
        };
        core_a.run_loop(EVENT_INTERVAL, || spawner.is_finished());
        let refused = refused.lock().unwrap().take().expect("worker 1 exists");
        assert!(refused.is_finished(), "the refused task was not cancelled");
        assert_eq!(drops.load(SeqCst), 1, "its future was not dropped once");
        assert_eq!(
            (
                b.metrics.spawned.load(SeqCst),
                b.metrics.completed.load(SeqCst)
            ),
            (1, 1)
        );
        assert_eq!(
            a.metrics.completed.load(SeqCst),
            1,
            "A completed only its spawner"
        );
        drop(scope);
        drop((spawner, refused));
        rt.shutdown.store(true, SeqCst);
        assert!(rt.blocking.shutdown(None));
        drop(rt);
        // A's shutdown cancels the tasks on its list: its own task is still there.
        finish(a.clone(), core_a, 0);
        assert!(own.is_finished(), "A's list lost its own task");
        assert_eq!(a.metrics.completed.load(SeqCst), 2);
        drop((own, a));
        drop((core_b, b));
    });
}
