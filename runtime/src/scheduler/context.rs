//! The thread-local runtime context: which runtime this thread is in, and which worker
//! (if any) runs here.
//!
//! Two parts, set in two ways:
//!
//! - The **entered runtime** (`Handle::current`, `spawn`, I/O registration, the timer
//!   wheel new timers go to) is set by [`EnterGuard`]s, which users hold too
//!   (`Runtime::enter`) and may drop in any order. The live guards of a thread form a
//!   stack ([`Entered::live`]); each guard remembers what it replaced. Dropping the
//!   innermost guard restores that. Dropping one further down (out of order) restores
//!   what *it* replaced, which also unwinds every guard entered after it (they do
//!   nothing when dropped later), and panics to say so, as tokio does. Either way the
//!   context names a runtime only while a guard that entered it is live.
//! - The **worker scope** (which worker runs on this thread, and whether this thread is
//!   driving a runtime) is set only by the runtime's own code, around `block_on` and a
//!   worker thread's loop, through [`ScopeGuard`]s that are always dropped in order.
//!   Its two cells need no destructor, so they work even while the thread's
//!   thread-locals are being destroyed.
//!
//! # Thread-local destruction
//!
//! `Entered` holds `Arc`s, so it is destroyed with the thread's other thread-locals. A
//! runtime dropped from another thread-local's destructor may run after that:
//! [`available`] says whether the entered-runtime slot can still be used, and every
//! access here goes through `try_with`.

use std::marker::PhantomData;
use std::ptr::NonNull;

use super::RuntimeShared;
use super::worker::{self, Core};
use crate::loom::os::cell::{Cell, RefCell};
use crate::loom::os::sync::Arc;
use crate::reactor::context::{self as reactor, PickReactor, WorkerReactor};
use crate::time::{self, TimerShared};

/// What the [`EnterGuard`]s of this thread have set.
struct Entered {
    /// The runtime of the innermost live guard.
    runtime: Option<Arc<RuntimeShared>>,
    /// The serial numbers of the live guards, innermost last.
    live: Vec<u64>,
    /// The next guard's serial number.
    next: u64,
}

crate::loom::thread_local! {
    static ENTERED: RefCell<Entered> = const {
        RefCell::new(Entered { runtime: None, live: Vec::new(), next: 0 })
    };
    /// What this thread drives (a worker loop or a `block_on`): blocking on another
    /// runtime here would stall it.
    static DRIVING: Cell<Driving> = const { Cell::new(Driving::No) };
}

/// The runtime this thread is in.
pub(crate) fn runtime() -> Option<Arc<RuntimeShared>> {
    ENTERED
        .try_with(|e| e.borrow().runtime.clone())
        .ok()
        .flatten()
}

/// The runtime this thread is in; `Err` while this thread's thread-locals are being
/// destroyed.
pub(crate) fn try_runtime() -> Result<Option<Arc<RuntimeShared>>, ()> {
    ENTERED
        .try_with(|e| e.borrow().runtime.clone())
        .map_err(|_| ())
}

/// Whether the entered-runtime slot is usable: false while this thread's
/// thread-locals are being destroyed (a runtime dropped from a thread-local's
/// destructor then shuts down without entering itself).
pub(crate) fn available() -> bool {
    ENTERED.try_with(|_| ()).is_ok()
}

/// What this thread drives.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Driving {
    No,
    /// A worker, or the `block_on` of a current-thread runtime (which drives it, or
    /// waits to): `block_in_place` is refused.
    Runtime,
    /// A `block_on` that only polls its future (a multi-reactor runtime's, or
    /// `Handle::block_on`): `block_in_place` just runs its closure, as in tokio.
    Future,
}

pub(crate) fn is_driving() -> bool {
    driving() != Driving::No
}

pub(crate) fn driving() -> Driving {
    DRIVING.try_with(Cell::get).unwrap_or(Driving::No)
}

/// The message of an out-of-order drop (tokio's, with this crate's names).
const OUT_OF_ORDER: &str = "`EnterGuard` values dropped out of order. Guards returned by \
     `epitome::runtime::Handle::enter()` (or `Runtime::enter()`) must be dropped in the reverse \
     order as they were acquired. The runtime entered before the dropped guard is current again; \
     the guards entered after it were unwound with it and do nothing when dropped.";

/// Keeps a runtime entered on this thread; restores the previous one when dropped (see
/// the module docs for out-of-order drops).
pub(crate) struct EnterGuard {
    serial: u64,
    prev_runtime: Option<Arc<RuntimeShared>>,
    prev_timer: Option<Arc<TimerShared>>,
    prev_reactors: Option<Arc<dyn PickReactor>>,
    /// A guard belongs to the thread whose context it changed.
    _not_send: PhantomData<*const ()>,
}

/// Enters `rt` on this thread (spawn, `Handle::current`, I/O registration and timers
/// then find it). Timers created here go to the wheel of a worker chosen round-robin;
/// I/O sources registered here, off a worker, to the reactor of one chosen at each
/// registration.
pub(crate) fn enter(rt: Arc<RuntimeShared>) -> EnterGuard {
    let timer = rt.pick_resource_worker().timer.clone();
    enter_with_timer(rt, timer)
}

/// Enters `rt`, with new timers going to `timer` (a worker's own wheel).
///
/// # Panics
///
/// While this thread's thread-locals are being destroyed (check [`available`]).
pub(crate) fn enter_with_timer(rt: Arc<RuntimeShared>, timer: Arc<TimerShared>) -> EnterGuard {
    let rt_for_reactors = rt.clone();
    let entered = ENTERED.try_with(|e| {
        let mut e = e.borrow_mut();
        let serial = e.next;
        e.next += 1;
        e.live.push(serial);
        (serial, e.runtime.replace(rt))
    });
    let Ok((serial, prev_runtime)) = entered else {
        panic!("cannot enter an epitome runtime while this thread's thread-locals are destroyed")
    };
    let reactors: Arc<dyn PickReactor> = rt_for_reactors;
    EnterGuard {
        serial,
        prev_runtime,
        prev_timer: time::set_current(Some(timer)),
        prev_reactors: reactor::set_runtime(Some(reactors)),
        _not_send: PhantomData,
    }
}

/// How a guard's drop found the stack of live guards.
enum Unwind {
    Innermost,
    /// Guards entered after this one were still live.
    OutOfOrder,
    /// An earlier out-of-order drop unwound this guard already.
    Gone,
}

impl Drop for EnterGuard {
    fn drop(&mut self) {
        let prev = self.prev_runtime.take();
        let unwound = ENTERED.try_with(|e| {
            let mut e = e.borrow_mut();
            match e.live.iter().rposition(|&s| s == self.serial) {
                None => (Unwind::Gone, prev),
                Some(i) => {
                    let how = if i + 1 == e.live.len() {
                        Unwind::Innermost
                    } else {
                        Unwind::OutOfOrder
                    };
                    e.live.truncate(i);
                    // The runtime replaced is dropped below, outside the borrow: its
                    // destructor may reach this context again.
                    (how, std::mem::replace(&mut e.runtime, prev))
                }
            }
        });
        let (how, replaced) = match unwound {
            Ok(v) => v,
            // Thread-locals are being destroyed: there is no context left to restore.
            Err(_) => (Unwind::Innermost, None),
        };
        drop(replaced);
        if matches!(how, Unwind::Gone) {
            return;
        }
        drop(time::set_current(self.prev_timer.take()));
        drop(reactor::set_runtime(self.prev_reactors.take()));
        if matches!(how, Unwind::OutOfOrder) && !std::thread::panicking() {
            panic!("{OUT_OF_ORDER}");
        }
    }
}

/// Restores the previous worker scope when dropped. Only the runtime's own code makes
/// these, and always drops them in order.
pub(crate) struct ScopeGuard {
    prev_worker: Option<NonNull<Core>>,
    prev_driving: Driving,
    prev_reactor: Option<WorkerReactor>,
}

fn set_scope(
    worker: Option<NonNull<Core>>,
    driving: Driving,
    reactor: Option<WorkerReactor>,
) -> ScopeGuard {
    // Neither cell has a destructor: `with` cannot fail, even during thread-local
    // destruction (nor can the reactor's: see `reactor::context`).
    ScopeGuard {
        prev_worker: worker::set_current_core(worker),
        prev_driving: DRIVING.with(|d| d.replace(driving)),
        prev_reactor: reactor::set_worker(reactor),
    }
}

/// Runs the worker of `core` on this thread, as its driver, until the guard drops:
/// sources its tasks create register with its reactor.
///
/// The caller keeps `core` alive and in place, and drives it only on this thread,
/// until the guard drops.
pub(crate) fn set_worker(core: &Core) -> ScopeGuard {
    let shared = &core.local.shared;
    let reactor = runtime().map(|rt| WorkerReactor {
        index: rt.index_of(shared),
        reactor: shared.reactor.clone(),
    });
    set_scope(Some(NonNull::from(core)), Driving::Runtime, reactor)
}

/// Marks this thread as inside a `block_on` that runs no worker (yet): `how` says
/// whether it drives the runtime (a current-thread `block_on`, which takes the worker
/// once it can) or only its future.
pub(crate) fn set_driving(how: Driving) -> ScopeGuard {
    set_scope(None, how, None)
}

/// Leaves the worker scope: no worker runs here and the thread drives nothing (the
/// closure of `block_in_place`).
pub(crate) fn clear_scope() -> ScopeGuard {
    set_scope(None, Driving::No, None)
}

impl Drop for ScopeGuard {
    fn drop(&mut self) {
        worker::set_current_core(self.prev_worker);
        DRIVING.with(|d| d.set(self.prev_driving));
        reactor::set_worker(self.prev_reactor.take());
    }
}
