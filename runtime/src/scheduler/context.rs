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

// Single-threaded: both builds (in the loom build each is a one-thread model, its
// runtime's worker over the fake kernel).
#[cfg(test)]
mod tests {
    use std::panic::{AssertUnwindSafe, catch_unwind};
    use std::time::Duration;

    use super::*;
    use crate::blocking::{BlockingPool, Config};
    use crate::scheduler::Kind;
    use crate::scheduler::worker::WorkerShared;

    /// A one-worker runtime, and its worker's core.
    fn new_runtime() -> (Arc<RuntimeShared>, Core) {
        let (shared, core) = WorkerShared::new().unwrap();
        let pool = BlockingPool::new(Config {
            max_threads: 1,
            keep_alive: Duration::from_secs(10),
            thread_name: Arc::new(|| "unused".to_string()),
            stack_size: None,
            on_start: None,
            on_stop: None,
        });
        let rt = RuntimeShared::new(Kind::CurrentThread, None, Box::new([shared]), pool, 61);
        (Arc::new(rt), core)
    }

    fn shut_down((rt, core): (Arc<RuntimeShared>, Core)) {
        core.local.shutdown();
        assert!(rt.blocking.shutdown(None));
    }

    /// Whether the entered runtime is `rt`.
    fn is_in(rt: &Arc<RuntimeShared>) -> bool {
        runtime().is_some_and(|cur| Arc::ptr_eq(&cur, rt))
            && matches!(try_runtime(), Ok(Some(cur)) if Arc::ptr_eq(&cur, rt))
    }

    fn in_none() -> bool {
        runtime().is_none() && matches!(try_runtime(), Ok(None))
    }

    #[test]
    fn guards_dropped_in_order_restore_the_runtime_each_replaced() {
        crate::loom::unit_test(|| {
            assert!(available() && in_none());
            let (a, b) = (new_runtime(), new_runtime());
            let outer = enter(a.0.clone());
            assert!(is_in(&a.0));
            let inner = enter(b.0.clone());
            assert!(is_in(&b.0));
            drop(inner);
            assert!(
                is_in(&a.0),
                "the inner guard did not restore the outer runtime"
            );
            drop(outer);
            assert!(in_none(), "the last guard left a runtime entered");
            shut_down(a);
            shut_down(b);
        });
    }

    #[test]
    fn an_out_of_order_drop_restores_what_it_replaced_and_unwinds_the_later_guards() {
        crate::loom::unit_test(|| {
            let (a, b) = (new_runtime(), new_runtime());
            let outer = enter(a.0.clone());
            let inner = enter(b.0.clone());
            let dropped = catch_unwind(AssertUnwindSafe(|| drop(outer)));
            assert!(dropped.is_err(), "an out-of-order drop did not panic");
            assert!(in_none());
            // Unwound with it: does nothing now.
            drop(inner);
            assert!(in_none());
            shut_down(a);
            shut_down(b);
        });
    }

    #[test]
    fn the_worker_scope_is_set_and_restored_in_order() {
        crate::loom::unit_test(|| {
            assert!(!is_driving() && driving() == Driving::No);
            let future = set_driving(Driving::Future);
            assert!(is_driving() && driving() == Driving::Future);
            let blocking = clear_scope();
            assert!(!is_driving());
            drop(blocking);
            assert_eq!(driving(), Driving::Future);
            drop(future);
            assert!(!is_driving());
            let rt = new_runtime();
            let worker = set_worker(&rt.1);
            assert_eq!(driving(), Driving::Runtime);
            drop(worker);
            assert_eq!(driving(), Driving::No);
            shut_down(rt);
        });
    }

    /// What `available` said from a thread-local's destructor (0: not run yet).
    static SEEN_FROM_DESTRUCTOR: crate::loom::os::sync::atomic::AtomicU8 =
        crate::loom::os::sync::atomic::AtomicU8::new(0);

    /// Records `available()` when its thread's thread-locals are destroyed.
    struct Probe;
    impl Drop for Probe {
        fn drop(&mut self) {
            let seen = if available() { 1 } else { 2 };
            SEEN_FROM_DESTRUCTOR.store(seen, crate::loom::os::sync::atomic::Ordering::SeqCst);
        }
    }

    crate::loom::thread_local! {
        static PROBE: Probe = const { Probe };
    }

    #[test]
    fn the_context_is_unavailable_once_the_threads_locals_are_destroyed() {
        crate::loom::unit_test(|| {
            crate::loom::thread::spawn(|| {
                // The probe first, the context after: the context's destructor runs
                // first (std runs them in reverse; loom takes every local before
                // dropping any).
                PROBE.with(|_| {});
                assert!(in_none() && available());
            })
            .join()
            .unwrap();
            assert_eq!(
                SEEN_FROM_DESTRUCTOR.load(crate::loom::os::sync::atomic::Ordering::SeqCst),
                2,
                "the context looked available during thread-local destruction"
            );
        });
    }
}
