//! Which reactor this thread registers sources with, and the batons it passes after a
//! task's poll: a thread-local the layers above set, so the reactor needs nothing from
//! them (as the timers' current wheel, `time::set_current`).
//!
//! - A worker sets its [`WorkerReactor`] for as long as it runs on the thread: its index
//!   and its reactor. Sources its tasks wait on register there.
//! - Entering a runtime sets it as a [`PickReactor`]: on a thread that runs no worker
//!   (a multi-reactor `block_on`, a blocking pool thread, after `Runtime::enter`) the
//!   runtime picks a worker's reactor for each registration.
//!
//! A task woken as an exclusive waiter that completed its operation must pass the wakeup
//! on once its poll returns if the source is still ready (`Registration::defer_baton`).
//! On a worker the baton waits in [`BATONS`] until the worker calls
//! [`pass_batons`] after the poll; elsewhere it is passed at once.

use super::ReactorHandle;
use super::scheduled_io::{Direction, ScheduledIo};
use crate::loom::os::cell::{Cell, RefCell};
use crate::loom::os::sync::Arc as OsArc;
use crate::loom::sync::Arc;

/// Picks the reactor of one of a runtime's workers, for a source made on a thread that
/// runs none (the scheduler implements it).
pub(crate) trait PickReactor: Send + Sync {
    /// The worker's index in its runtime, and its reactor.
    fn pick_reactor(&self) -> (usize, Arc<ReactorHandle>);

    /// Whether the runtime has shut down.
    fn is_shut_down(&self) -> bool;
}

/// The worker that runs on this thread: its index in its runtime, and its reactor.
pub(crate) struct WorkerReactor {
    pub(crate) index: usize,
    pub(crate) reactor: Arc<ReactorHandle>,
}

crate::loom::thread_local! {
    /// Set by the worker running on this thread, around its loop.
    static WORKER: RefCell<Option<WorkerReactor>> = const { RefCell::new(None) };
    /// Set by whoever enters a runtime on this thread.
    static RUNTIME: RefCell<Option<OsArc<dyn PickReactor>>> = const { RefCell::new(None) };
    /// Exclusive wakeups to pass on once the current task poll returns, if their source
    /// is still ready (see `ScheduledIo::pass_baton_if_ready`). Only on a worker.
    static BATONS: RefCell<Vec<(Arc<ScheduledIo>, Direction)>> = const { RefCell::new(Vec::new()) };
    /// Whether [`BATONS`] holds any: the one check every task poll pays.
    static BATONS_PENDING: Cell<bool> = const { Cell::new(false) };
}

/// Makes `worker` the one running on this thread; returns the previous one, for the
/// caller to restore.
pub(crate) fn set_worker(worker: Option<WorkerReactor>) -> Option<WorkerReactor> {
    WORKER.try_with(|w| w.replace(worker)).ok().flatten()
}

/// Makes `runtime` the one this thread is in, for sources registered off its workers;
/// returns the previous one, for the caller to restore.
pub(crate) fn set_runtime(
    runtime: Option<OsArc<dyn PickReactor>>,
) -> Option<OsArc<dyn PickReactor>> {
    RUNTIME.try_with(|r| r.replace(runtime)).ok().flatten()
}

/// The runtime this thread is in, as the reactor sees it.
pub(crate) fn current_runtime() -> Option<OsArc<dyn PickReactor>> {
    RUNTIME.try_with(|r| r.borrow().clone()).ok().flatten()
}

/// This thread's reactor, with its worker's index: the worker's own, or one the
/// runtime this thread is in picks. `None` outside every runtime.
pub(crate) fn current() -> Option<(usize, Arc<ReactorHandle>)> {
    let worker = WORKER
        .try_with(|w| w.borrow().as_ref().map(|w| (w.index, w.reactor.clone())))
        .ok()
        .flatten();
    if worker.is_some() {
        return worker;
    }
    let runtime = RUNTIME.try_with(|r| r.borrow().clone()).ok().flatten()?;
    Some(runtime.pick_reactor())
}

/// Passes the baton of `io`'s direction `dir` once the current task poll returns, if a
/// worker runs here; at once otherwise.
pub(crate) fn defer_baton(io: &Arc<ScheduledIo>, dir: Direction) {
    let on_worker = WORKER.try_with(|w| w.borrow().is_some()).unwrap_or(false);
    if on_worker {
        BATONS.with(|b| b.borrow_mut().push((io.clone(), dir)));
        BATONS_PENDING.with(|p| p.set(true));
    } else {
        io.pass_baton_if_ready(dir);
    }
}

/// After a task's poll: passes the batons it deferred (the worker calls this).
#[inline]
pub(crate) fn pass_batons() {
    if BATONS_PENDING.with(Cell::get) {
        pass_batons_slow();
    }
}

#[inline(never)]
fn pass_batons_slow() {
    BATONS_PENDING.with(|p| p.set(false));
    let batons = BATONS.with(|b| std::mem::take(&mut *b.borrow_mut()));
    for (io, dir) in batons {
        io.pass_baton_if_ready(dir);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::eventpoll::EPOLLIN;
    use crate::loom::os::sync::atomic::{AtomicUsize, Ordering};
    use crate::reactor::Driver;
    use crate::reactor::scheduled_io::{WaitPoll, WaiterNode};
    #[cfg(not(epitome_loom))]
    use crate::sys::eventfd::EventFd;
    use std::task::{Wake, Waker};

    struct CountWaker(AtomicUsize);
    impl Wake for CountWaker {
        fn wake(self: OsArc<Self>) {
            self.0.fetch_add(1, Ordering::SeqCst);
        }
    }
    fn counter() -> (OsArc<CountWaker>, Waker) {
        let c = OsArc::new(CountWaker(AtomicUsize::new(0)));
        (c.clone(), Waker::from(c))
    }
    fn count(c: &CountWaker) -> usize {
        c.0.load(Ordering::SeqCst)
    }

    /// A reactor (over the fake kernel in the loom build).
    fn reactor() -> Arc<ReactorHandle> {
        #[cfg(not(epitome_loom))]
        {
            let unpark = EventFd::new().unwrap();
            Driver::new(&unpark).unwrap().1
        }
        #[cfg(epitome_loom)]
        {
            Driver::new_model().1
        }
    }

    /// Two exclusive readers A and B wait on a source; one event wakes A, whose task
    /// takes one connection of several (readiness stays) and is done with its node.
    /// Returns the source, B's node (still waiting) and B's wake count.
    fn a_took_one(a: &WaiterNode, b: &WaiterNode) -> (Arc<ScheduledIo>, OsArc<CountWaker>) {
        let io = Arc::new(ScheduledIo::new(None));
        let (woken_a, waker_a) = counter();
        let (woken_b, waker_b) = counter();
        // SAFETY: the caller keeps both nodes in place until the end of its model and
        // finishes them with `drop_waiter`.
        unsafe {
            assert!(matches!(io.poll_waiter(a, &waker_a), WaitPoll::Pending));
            assert!(matches!(io.poll_waiter(b, &waker_b), WaitPoll::Pending));
        }
        let (mut wake, mut unclaimed) = (Vec::new(), Vec::new());
        io.dispatch(EPOLLIN, &mut wake, &mut unclaimed);
        wake.into_iter().for_each(Waker::wake);
        assert_eq!((count(&woken_a), count(&woken_b)), (1, 0), "wake-one");
        // SAFETY: as above.
        unsafe {
            match io.poll_waiter(a, &waker_a) {
                WaitPoll::Ready(ev) => assert!(ev.baton, "A holds the exclusive wakeup"),
                WaitPoll::Pending => panic!("A woken but not ready"),
            }
            io.drop_waiter(a, true);
        }
        (io, woken_b)
    }

    #[test]
    fn a_baton_off_a_worker_is_passed_at_once() {
        crate::loom::unit_test(|| {
            let (a, b) = (
                WaiterNode::new(Direction::Read, true),
                WaiterNode::new(Direction::Read, true),
            );
            let (io, woken_b) = a_took_one(&a, &b);
            defer_baton(&io, Direction::Read);
            assert_eq!(count(&woken_b), 1, "the rest of the burst was stranded");
            // Nothing was left for a worker to pass later.
            pass_batons();
            assert_eq!(count(&woken_b), 1);
            // SAFETY: B was only polled on `io`; woken, it leaves without using it.
            unsafe { io.drop_waiter(&b, true) };
        });
    }

    #[test]
    fn a_baton_on_a_worker_waits_for_the_end_of_the_poll() {
        crate::loom::unit_test(|| {
            let (a, b) = (
                WaiterNode::new(Direction::Read, true),
                WaiterNode::new(Direction::Read, true),
            );
            let prev = set_worker(Some(WorkerReactor {
                index: 0,
                reactor: reactor(),
            }));
            let (io, woken_b) = a_took_one(&a, &b);
            defer_baton(&io, Direction::Read);
            // A's task is still being polled: B is not woken yet (it would be polled on
            // this worker only after A's task anyway).
            assert_eq!(count(&woken_b), 0, "the baton did not wait for the poll");
            pass_batons();
            assert_eq!(count(&woken_b), 1, "the worker did not pass the baton");
            // Passed once: the next task's poll passes nothing.
            pass_batons();
            assert_eq!(count(&woken_b), 1, "a baton passed twice");
            // SAFETY: B was only polled on `io`; woken, it leaves without using it.
            unsafe { io.drop_waiter(&b, true) };
            drop(set_worker(prev));
        });
    }

    /// Picks one worker's reactor, always the same.
    struct OneWorker(Arc<ReactorHandle>);
    impl PickReactor for OneWorker {
        fn pick_reactor(&self) -> (usize, Arc<ReactorHandle>) {
            (3, self.0.clone())
        }
        fn is_shut_down(&self) -> bool {
            false
        }
    }

    #[test]
    fn a_thread_in_a_runtime_registers_with_the_reactor_it_picks() {
        crate::loom::unit_test(|| {
            let reactor = reactor();
            let runtime: OsArc<dyn PickReactor> = OsArc::new(OneWorker(reactor.clone()));
            let outer = set_runtime(Some(runtime.clone()));
            assert!(current_runtime().is_some_and(|rt| OsArc::ptr_eq(&rt, &runtime)));
            let (index, picked) = current().expect("in a runtime");
            assert_eq!(index, 3);
            assert!(Arc::ptr_eq(&picked, &reactor));
            // Leaving gives the runtime back, for the caller to see it restored.
            let left = set_runtime(outer);
            assert!(left.is_some_and(|rt| OsArc::ptr_eq(&rt, &runtime)));
            assert!(current_runtime().is_none() && current().is_none());
        });
    }
}
