//! `block_on` of a current-thread runtime: whichever thread holds the core drives the
//! runtime; every other thread in `block_on` polls its own future meanwhile and takes
//! the core over when it comes back (as tokio's current-thread scheduler does).
//!
//! # Who touches what
//!
//! - [`CoreSlot`]'s mutex guards the parked core and the wakers of the threads waiting
//!   for it. A thread takes the core out under the lock and drives it with the lock
//!   released; it puts it back, and wakes every waiter, when its `block_on` returns
//!   (or unwinds).
//! - A parked core is touched only under the lock (to read which thread it is pinned
//!   to); no thread drives it then.

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll, Wake, Waker};

use crate::coop;
use crate::loom::os::sync::atomic::AtomicBool;
use crate::loom::os::sync::{Arc, Mutex, MutexGuard};
use crate::loom::os::thread;
use crate::loom::sync::atomic::Ordering;
use crate::scheduler::worker::Core;
use crate::scheduler::{RuntimeShared, context};

/// The core of a current-thread runtime while no `block_on` drives it.
pub(super) struct CoreSlot {
    state: Mutex<SlotState>,
}

struct SlotState {
    core: Option<Box<Core>>,
    /// The `block_on` threads waiting for the core.
    waiters: Vec<Waker>,
}

impl CoreSlot {
    pub(super) fn new(core: Option<Box<Core>>) -> CoreSlot {
        CoreSlot {
            state: Mutex::new(SlotState {
                core,
                waiters: Vec::new(),
            }),
        }
    }

    fn lock(&self) -> MutexGuard<'_, SlotState> {
        self.state.lock()
    }

    /// Takes the core out for good (shutdown: no `block_on` can be running, they
    /// borrow the runtime being dropped).
    pub(super) fn take(&self) -> Option<Box<Core>> {
        self.lock().core.take()
    }

    /// The core if it is parked and this thread may drive it (it is not pinned to
    /// another thread by `spawn_local` tasks); else `waker` is registered to hear when
    /// it comes back.
    fn take_or_wait(&self, waker: &Waker) -> Option<Box<Core>> {
        let mut state = self.lock();
        let drivable = state.core.as_ref().is_some_and(|core| {
            core.local
                .pinned
                .get()
                .is_none_or(|owner| owner == thread::current().id())
        });
        if drivable {
            return state.core.take();
        }
        if !state.waiters.iter().any(|w| w.will_wake(waker)) {
            state.waiters.push(waker.clone());
        }
        None
    }

    /// This thread stopped waiting (its future completed without the core).
    fn stop_waiting(&self, waker: &Waker) {
        self.lock().waiters.retain(|w| !w.will_wake(waker));
    }

    /// Parks the core again and wakes every waiting thread: the first to look takes it
    /// (one it is pinned away from does not, and goes on waiting).
    fn put_back(&self, core: Box<Core>) {
        let waiters = {
            let mut state = self.lock();
            state.core = Some(core);
            std::mem::take(&mut state.waiters)
        };
        waiters.into_iter().for_each(Waker::wake);
    }
}

/// Gives the core back when dropped, even if the future panics.
struct Driving<'a> {
    slot: &'a CoreSlot,
    core: Option<Box<Core>>,
}

impl Drop for Driving<'_> {
    fn drop(&mut self) {
        if let Some(core) = self.core.take() {
            self.slot.put_back(core);
        }
    }
}

/// Runs `future` to completion on this thread: driving the runtime whenever this
/// thread holds the core, polling `future` alone (and sleeping between polls) while
/// another thread does.
pub(super) fn block_on<F: Future>(
    rt: &Arc<RuntimeShared>,
    slot: &CoreSlot,
    future: F,
) -> F::Output {
    let _enter = context::enter_with_timer(rt.clone(), rt.workers[0].timer.clone());
    let _driving = context::set_driving(context::Driving::Runtime);
    let mut future = std::pin::pin!(future);
    let thread = Arc::new(ThreadWaker::current());
    let waker = Waker::from(thread.clone());
    let mut cx = Context::from_waker(&waker);
    loop {
        if let Some(core) = slot.take_or_wait(&waker) {
            let driving = Driving {
                slot,
                core: Some(core),
            };
            let Some(core) = driving.core.as_deref() else {
                unreachable!("just stored")
            };
            let _worker = context::set_worker(core);
            return core.block_on(rt.event_interval, future.as_mut());
        }
        // Another thread drives the runtime. Our future's wakes, and the core's
        // return, both wake this thread.
        if let Poll::Ready(out) = coop::with_budget(|| future.as_mut().poll(&mut cx)) {
            slot.stop_waiting(&waker);
            return out;
        }
        thread.sleep();
    }
}

/// Blocks this thread until `future` completes, sleeping between polls (the
/// multi-reactor runtime's `block_on`, and `Handle::block_on`). Each poll has a
/// cooperative budget, as a task's does (and as tokio's `block_on` does).
pub(super) fn park_on<F: Future>(future: F) -> F::Output {
    let thread = Arc::new(ThreadWaker::current());
    let waker = Waker::from(thread.clone());
    let mut cx = Context::from_waker(&waker);
    let mut future = std::pin::pin!(future);
    loop {
        if let Poll::Ready(out) = coop::with_budget(|| Pin::as_mut(&mut future).poll(&mut cx)) {
            return out;
        }
        thread.sleep();
    }
}

/// Wakes a thread sleeping in [`ThreadWaker::sleep`]; a wake before the sleep is kept.
struct ThreadWaker {
    thread: thread::Thread,
    woken: AtomicBool,
}

impl ThreadWaker {
    fn current() -> ThreadWaker {
        ThreadWaker {
            thread: thread::current(),
            woken: AtomicBool::new(false),
        }
    }

    /// Sleeps until woken (at once if woken since the last sleep).
    fn sleep(&self) {
        while !self.woken.swap(false, Ordering::AcqRel) {
            thread::park();
        }
    }
}

impl Wake for ThreadWaker {
    fn wake(self: Arc<Self>) {
        self.wake_by_ref();
    }
    fn wake_by_ref(self: &Arc<Self>) {
        self.woken.store(true, Ordering::Release);
        self.thread.unpark();
    }
}
