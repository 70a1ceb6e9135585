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

#[cfg(not(epitome_loom))]
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

// The same, modelled in the loom build: each thread of a model is a worker of its own
// (as `time::driver`'s current wheel). loom's macro takes no `const` initialiser.
#[cfg(epitome_loom)]
crate::loom::thread_local! {
    static WORKER: RefCell<Option<WorkerReactor>> = RefCell::new(None);
    static RUNTIME: RefCell<Option<OsArc<dyn PickReactor>>> = RefCell::new(None);
    static BATONS: RefCell<Vec<(Arc<ScheduledIo>, Direction)>> = RefCell::new(Vec::new());
    static BATONS_PENDING: Cell<bool> = Cell::new(false);
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
