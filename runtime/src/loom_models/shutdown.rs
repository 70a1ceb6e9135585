//! Model 9: runtime shutdown vs. a spawn from another thread.
//!
//! The spawner does what `RuntimeShared::spawn` does from outside the workers:
//! `new_task`, `RemoteQueue::push`, and `cancel_unbound` if the queue refuses. The
//! worker shuts down as `WorkerLocal::shutdown` does: `RemoteQueue::close`, then
//! `cancel_unbound` for everything that was queued. Whatever the order, the task is
//! cancelled exactly once (its future dropped once), its `JoinHandle` reports
//! cancellation, and the task is freed once the handle goes. Two spawners, every
//! interleaving.
use std::task::{Context, Poll, Waker};

use super::{DropCounter, ModelScheduler, PollFn, check, poll_once};
use crate::scheduler::owned::cancel_unbound;
use crate::scheduler::queue::RemoteQueue;
use crate::task_core::JoinHandle;
use crate::task_core::new_task;
use loom::sync::Arc;
use loom::sync::atomic::{AtomicUsize, Ordering::SeqCst};
use loom::thread;

/// Spawns, from another thread, a task that never completes on its own, as
/// `RuntimeShared::spawn` does; returns its `JoinHandle`.
fn spawner(
    remote: &Arc<RemoteQueue>,
    sched: &ModelScheduler,
    drops: &Arc<AtomicUsize>,
) -> thread::JoinHandle<JoinHandle<()>> {
    let (remote, sched, drops) = (remote.clone(), sched.clone(), drops.clone());
    thread::spawn(move || {
        let guard = DropCounter(drops);
        let future = PollFn(move |_: &mut Context<'_>| {
            let _keep = &guard;
            Poll::<()>::Pending
        });
        let (task, handle) = new_task(future, sched);
        if let Err(task) = remote.push(task) {
            cancel_unbound(task);
        }
        handle
    })
}

#[test]
fn spawns_vs_close() {
    check("shutdown/spawn_vs_close", None, || {
        let remote = Arc::new(RemoteQueue::default());
        // Unbound tasks: no owner list holds them.
        let sched = ModelScheduler::new(false);
        let future_drops = Arc::new(AtomicUsize::new(0));
        let spawners = [
            spawner(&remote, &sched, &future_drops),
            spawner(&remote, &sched, &future_drops),
        ];

        // Shutdown, on the worker.
        let mut queued = remote.close();
        while let Some(task) = queued.pop_front() {
            cancel_unbound(task);
        }

        for s in spawners {
            let mut handle = s.join().unwrap();
            match poll_once(&mut handle, Waker::noop()) {
                Poll::Ready(Err(e)) => assert!(e.is_cancelled(), "{e}"),
                _ => panic!("a task spawned as the runtime shut down was never cancelled"),
            }
        }
        assert_eq!(
            future_drops.load(SeqCst),
            2,
            "each spawned future must be dropped exactly once"
        );
        drop(remote);
        assert_eq!(sched.tasks_alive(), 0, "task not freed");
    });
}
