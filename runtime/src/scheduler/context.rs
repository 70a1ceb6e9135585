//! The thread-local runtime context: which runtime this thread is in, and which worker
//! (if any) runs here.

use std::ptr::NonNull;

use super::RuntimeShared;
use super::worker::WorkerLocal;
use crate::loom::os::cell::{Cell, RefCell};
use crate::loom::os::sync::Arc;
use crate::reactor::context::{self as reactor, Current};
use crate::time::{self, TimerShared};

crate::loom::os::thread_local! {
    static RUNTIME: RefCell<Option<Arc<RuntimeShared>>> = const { RefCell::new(None) };
    static WORKER: Cell<Option<NonNull<WorkerLocal>>> = const { Cell::new(None) };
    /// Set while this thread drives a runtime (a worker loop or `block_on`): blocking
    /// on another runtime here would stall it.
    static DRIVING: Cell<bool> = const { Cell::new(false) };
}

/// The runtime this thread is in.
pub(crate) fn runtime() -> Option<Arc<RuntimeShared>> {
    RUNTIME.try_with(|r| r.borrow().clone()).ok().flatten()
}

/// Runs `f` with the worker of this thread, if one runs here.
pub(crate) fn with_worker<R>(f: impl FnOnce(Option<&WorkerLocal>) -> R) -> R {
    let ptr = WORKER.try_with(Cell::get).ok().flatten();
    // SAFETY: the pointer is set by `WorkerGuard` for exactly as long as the worker it
    // points to is alive on this thread's stack (see `enter_worker`).
    f(ptr.map(|p| unsafe { p.as_ref() }))
}

pub(crate) fn is_driving() -> bool {
    DRIVING.try_with(Cell::get).unwrap_or(false)
}

/// Restores the previous context when dropped.
pub(crate) struct EnterGuard {
    prev_runtime: Option<Arc<RuntimeShared>>,
    prev_worker: Option<NonNull<WorkerLocal>>,
    prev_driving: bool,
    prev_timer: Option<Arc<TimerShared>>,
    prev_reactor: Option<Current>,
}

/// Enters `rt` on this thread (spawn, `Handle::current`, I/O registration and timers
/// then find it). Timers created here go to the wheel of a worker chosen round-robin,
/// I/O sources to the reactor of one chosen at each registration.
pub(crate) fn enter(rt: Arc<RuntimeShared>) -> EnterGuard {
    let timer = rt.pick_resource_worker().timer.clone();
    let reactor = Current::Runtime(rt.clone());
    enter_with(rt, timer, reactor)
}

fn enter_with(rt: Arc<RuntimeShared>, timer: Arc<TimerShared>, reactor: Current) -> EnterGuard {
    let prev_runtime = RUNTIME.with(|r| r.replace(Some(rt)));
    let prev_timer = time::set_current(Some(timer));
    let prev_reactor = reactor::set_current(Some(reactor));
    EnterGuard {
        prev_runtime,
        prev_worker: WORKER.with(Cell::get),
        prev_driving: DRIVING.with(Cell::get),
        prev_timer,
        prev_reactor,
    }
}

/// Enters `rt` with `worker` running on this thread, as its driver; timers and I/O
/// sources go to the worker's own wheel and reactor.
///
/// The caller keeps `worker` alive and in place until the guard drops.
pub(crate) fn enter_worker(rt: Arc<RuntimeShared>, worker: &WorkerLocal) -> EnterGuard {
    let index = rt.index_of(&worker.shared);
    let reactor = Current::Worker(index, worker.shared.reactor.clone());
    let guard = enter_with(rt, worker.shared.timer.clone(), reactor);
    WORKER.with(|w| w.set(Some(NonNull::from(worker))));
    DRIVING.with(|d| d.set(true));
    guard
}

/// Marks this thread as driving a runtime (the `block_on` thread of a multi-reactor
/// runtime, which runs no worker).
pub(crate) fn enter_driving(rt: Arc<RuntimeShared>) -> EnterGuard {
    let guard = enter(rt);
    DRIVING.with(|d| d.set(true));
    guard
}

impl Drop for EnterGuard {
    fn drop(&mut self) {
        let prev = self.prev_runtime.take();
        let _ = RUNTIME.try_with(|r| *r.borrow_mut() = prev);
        let _ = WORKER.try_with(|w| w.set(self.prev_worker));
        let _ = DRIVING.try_with(|d| d.set(self.prev_driving));
        time::set_current(self.prev_timer.take());
        reactor::set_current(self.prev_reactor.take());
    }
}
