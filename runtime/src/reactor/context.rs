//! Which reactor this thread registers sources with, and the batons it passes after a
//! task's poll: a thread-local the layers above set, so the reactor needs nothing from
//! them (as the timers' current wheel, `time::set_current`).
//!
//! - A worker sets [`Current::Worker`] for as long as it runs on the thread: its index
//!   and its reactor. Sources made in its tasks register there.
//! - A thread in a runtime that runs no worker (a multi-reactor `block_on`, a blocking
//!   pool thread, after `Runtime::enter`) has [`Current::Runtime`]: the runtime picks a
//!   worker's reactor for each registration.
//!
//! A task woken as an exclusive waiter that completed its operation must pass the wakeup
//! on once its poll returns if the source is still ready (`Registration::defer_baton`).
//! On a worker the baton waits in [`BATONS`] until the worker calls
//! [`pass_batons`] after the poll; elsewhere it is passed at once.

use super::ReactorHandle;
use super::scheduled_io::{Direction, ScheduledIo};
use crate::loom::os::cell::{Cell, RefCell};
use crate::loom::sync::Arc;

/// Picks the reactor of one of a runtime's workers, for a source made on a thread that
/// runs none (the scheduler implements it).
pub(crate) trait PickReactor: Send + Sync {
    /// The worker's index in its runtime, and its reactor.
    fn pick_reactor(&self) -> (usize, Arc<ReactorHandle>);
}

/// This thread's reactor.
#[derive(Clone)]
pub(crate) enum Current {
    /// A worker runs on this thread: its index in its runtime, and its reactor.
    Worker(usize, Arc<ReactorHandle>),
    /// This thread is in a runtime but runs no worker.
    Runtime(crate::loom::os::sync::Arc<dyn PickReactor>),
}

crate::loom::os::thread_local! {
    static CURRENT: RefCell<Option<Current>> = const { RefCell::new(None) };
    /// Exclusive wakeups to pass on once the current task poll returns, if their source
    /// is still ready (see `ScheduledIo::pass_baton_if_ready`). Only on a worker.
    static BATONS: RefCell<Vec<(Arc<ScheduledIo>, Direction)>> = const { RefCell::new(Vec::new()) };
    /// Whether [`BATONS`] holds any: the one check every task poll pays.
    static BATONS_PENDING: Cell<bool> = const { Cell::new(false) };
}

/// Makes `current` this thread's reactor; returns the previous one, for the caller to
/// restore. `None` while the thread-local is being destroyed.
pub(crate) fn set_current(current: Option<Current>) -> Option<Current> {
    CURRENT.try_with(|c| c.replace(current)).ok().flatten()
}

/// This thread's reactor, with the worker's index: the worker's own, or one the
/// runtime picks. `None` outside every runtime.
pub(crate) fn current() -> Option<(usize, Arc<ReactorHandle>)> {
    let current = CURRENT.try_with(|c| c.borrow().clone()).ok().flatten()?;
    Some(match current {
        Current::Worker(index, reactor) => (index, reactor),
        Current::Runtime(picker) => picker.pick_reactor(),
    })
}

/// Passes the baton of `io`'s direction `dir` once the current task poll returns, if a
/// worker runs here; at once otherwise.
pub(crate) fn defer_baton(io: &Arc<ScheduledIo>, dir: Direction) {
    let on_worker = CURRENT
        .try_with(|c| matches!(*c.borrow(), Some(Current::Worker(..))))
        .unwrap_or(false);
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
