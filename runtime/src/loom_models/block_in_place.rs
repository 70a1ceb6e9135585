//! Model 14: `block_in_place` lending a worker's core to a stand-in and taking it back.
//!
//! A worker (over the fake kernel) of a runtime whose blocking pool runs on loom
//! threads has a task queued when the thread driving it blocks in place, in a closure
//! that waits for that task: only the stand-in (a pool thread driving the lent core,
//! `StandIn::run`) can run it. The task runs while its worker's thread is blocked; the
//! closure returns; `Lend::take_back` asks for the core back (`give_back`, then an
//! unpark of the stand-in, which may be asleep in the worker's reactor by then) and
//! returns once the stand-in has let go (`Lend::finish`). Never a hang, the task run
//! exactly once, nothing left behind at shutdown.
//!
//! `no_lend_at_shutdown`: once the runtime is shutting down, `block_in_place` lends
//! nothing (`Lend::finish` at once): no stand-in polls the worker's queued task.
use std::sync::Arc as OsArc;
use std::task::{Context, Poll};

use super::{PollFn, check};
use crate::scheduler::block_in_place::block_in_place;
use crate::scheduler::worker::{Core, WorkerShared};
use crate::scheduler::{Kind, RuntimeShared, context};
use loom::sync::atomic::{AtomicUsize, Ordering::SeqCst};
use loom::sync::{Arc, Condvar, Mutex};

/// A multi-reactor runtime of one worker (over the fake kernel) whose blocking pool
/// (one thread) runs on loom threads; the worker may be lent.
pub(super) fn one_worker() -> (OsArc<WorkerShared>, Core, OsArc<RuntimeShared>) {
    let (shared, core) = WorkerShared::new().unwrap();
    let rt = runtime_of(Box::new([shared.clone()]), 61);
    *core.local.lend_to.borrow_mut() = Some(OsArc::downgrade(&rt));
    (shared, core, rt)
}

/// A multi-reactor runtime of `workers`, with a blocking pool of one loom thread.
pub(super) fn runtime_of(
    workers: Box<[OsArc<WorkerShared>]>,
    event_interval: u32,
) -> OsArc<RuntimeShared> {
    OsArc::new(RuntimeShared::new(
        Kind::MultiReactor,
        None,
        workers,
        super::blocking_pool::pool(1),
        event_interval,
    ))
}

#[test]
fn a_lent_worker_runs_its_task_and_comes_back() {
    check("block_in_place/lend", Some(4), || {
        let (shared, core, rt) = one_worker();
        let scope = context::set_worker(&core);

        let runs = Arc::new(AtomicUsize::new(0));
        let ran = Arc::new((Mutex::new(false), Condvar::new()));
        let handle = {
            let (runs, ran) = (runs.clone(), ran.clone());
            core.local.spawn(PollFn(move |_: &mut Context<'_>| {
                runs.fetch_add(1, SeqCst);
                *ran.0.lock().unwrap() = true;
                ran.1.notify_all();
                Poll::Ready(())
            }))
        };
        block_in_place(|| {
            let mut r = ran.0.lock().unwrap();
            while !*r {
                r = ran.1.wait(r).unwrap();
            }
        });
        drop(scope);
        assert_eq!(runs.load(SeqCst), 1);
        assert!(handle.is_finished());
        drop(handle);

        rt.shutdown.store(true, SeqCst);
        assert!(rt.blocking.shutdown(None), "the stand-in outlived the pool");
        core.local.shutdown();
        drop(core);
        drop(rt);
        drop(shared);
    });
}

/// A runtime that is shutting down lends no worker: a task queued on the blocked
/// worker is not polled while the closure runs (shutdown cancels it instead).
#[test]
fn a_shutting_down_runtime_lends_no_worker() {
    check("block_in_place/no_lend_at_shutdown", Some(2), || {
        let (shared, core, rt) = one_worker();
        let scope = context::set_worker(&core);
        let runs = Arc::new(AtomicUsize::new(0));
        let handle = {
            let runs = runs.clone();
            core.local.spawn(PollFn(move |_: &mut Context<'_>| {
                runs.fetch_add(1, SeqCst);
                Poll::Ready(())
            }))
        };
        rt.shutdown.store(true, SeqCst);
        block_in_place(|| ());
        drop(scope);
        assert_eq!(
            runs.load(SeqCst),
            0,
            "a task was polled by a stand-in lent while the runtime shut down"
        );

        assert!(rt.blocking.shutdown(None), "a stand-in outlived the pool");
        core.local.shutdown();
        assert!(handle.is_finished(), "shutdown left the task");
        assert_eq!(runs.load(SeqCst), 0);
        drop(handle);
        drop(core);
        drop(rt);
        drop(shared);
    });
}
