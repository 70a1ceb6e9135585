//! `block_in_place`: a task blocks its worker's thread, and the worker is lent to a
//! stand-in thread meanwhile.
//!
//! Tasks never move between workers, so the worker's tasks cannot be handed to its
//! siblings. Instead the whole worker (its [`Core`]: run queue, task list, reactor and
//! timer wheel) is driven by another thread for as long as the closure runs: a thread
//! of the runtime's blocking pool runs the worker's ordinary loop on the lent core,
//! and gives it back at its next pause between two task polls once the closure has
//! returned. The blocked task's thread then finishes the poll it was in, and the
//! worker carries on as before. `docs/parity-runtime.md` has the measurements behind
//! this design (against tokio's, which moves the worker to a new thread for good).
//!
//! # Why lending is sound
//!
//! The core is `!Sync` (its queues are plain cells). While it is lent, the blocked
//! thread does not touch it: its stack frames inside the worker loop are suspended in
//! the closure, which runs with no worker in the thread's context (its wakes and
//! spawns take the remote paths). The hand-over goes through [`Lend`]'s mutex both
//! ways, so each side sees the other's writes. `!Send` tasks would be polled on the
//! stand-in's thread, so a worker that has any (`spawn_local`) is never lent, and
//! `spawn_local` is refused while a worker is lent.
//!
//! # Who touches what
//!
//! - `Lend::state`: the blocked thread and the stand-in, under its mutex.
//! - `Lend::give_back`: set by the blocked thread; read by the stand-in's loop.

use std::panic::{AssertUnwindSafe, catch_unwind, resume_unwind};
use std::ptr::NonNull;

use super::context::Driving;
use super::worker::{self, Core, WorkerShared};
use super::{RuntimeShared, context, local_set};
use crate::coop;
use crate::loom::os::sync::Arc;
use crate::loom::planted_bug;
use crate::loom::sync::atomic::{AtomicBool, Ordering};
use crate::loom::sync::{Condvar, Mutex, MutexGuard};

/// tokio's message for a runtime that cannot block in place.
const NOT_MULTI_REACTOR: &str = "can call blocking only when running on the multi-threaded runtime: \
     `block_in_place` was called on a current-thread runtime or inside a `LocalSet`, where no \
     other thread can take the runtime's work over. Use `spawn_blocking` instead.";

const PINNED: &str = "`block_in_place` called on a worker that runs `!Send` tasks (`spawn_local`): \
     they may only be polled on this thread, so the worker cannot be lent to another thread while \
     this one blocks. Use `spawn_blocking` instead.";

/// See `task::block_in_place`.
#[track_caller]
pub(crate) fn block_in_place<F: FnOnce() -> R, R>(f: F) -> R {
    if local_set::is_running() {
        panic!("{NOT_MULTI_REACTOR}");
    }
    let core = worker::with_core(|core| core.map(NonNull::from));
    let Some(core) = core else {
        return match context::driving() {
            // Off any runtime, on a blocking-pool thread, or inside another
            // `block_in_place`: blocking here stalls nothing.
            Driving::No => f(),
            // A current-thread `block_on` waiting to drive its runtime.
            Driving::Runtime => panic!("{NOT_MULTI_REACTOR}"),
            // A `block_on` that only polls its future (a multi-reactor runtime's, or
            // `Handle::block_on`): run the closure outside the runtime's scope, so it
            // may `block_on` again.
            Driving::Future => {
                let _scope = context::clear_scope();
                coop::unconstrained(f)
            }
        };
    };
    // SAFETY: the context points at the core this thread drives, alive and in place
    // for the whole poll this call is in.
    let core = unsafe { core.as_ref() };
    let lend_to = core.local.lend_to.borrow().as_ref().map(|w| w.upgrade());
    let rt = match lend_to {
        // The current-thread runtime's worker: no other thread may drive it.
        None => panic!("{NOT_MULTI_REACTOR}"),
        Some(rt) => rt,
    };
    if core.local.pinned.get().is_some() {
        panic!("{PINNED}");
    }
    let shared = core.local.shared.clone();
    let lend = Arc::new(Lend::new());
    match rt {
        Some(rt) if !rt.shutdown.load(Ordering::Acquire) => lend_core(&rt, core, &lend),
        // Shutting down: there is nothing left to keep running.
        _ => lend.finish(),
    }
    let res = {
        let _scope = context::clear_scope();
        catch_unwind(AssertUnwindSafe(|| coop::unconstrained(f)))
    };
    lend.take_back(&shared);
    core.local.resume_poll();
    match res {
        Ok(out) => out,
        Err(payload) => resume_unwind(payload),
    }
}

/// Hands `core` to a stand-in thread of the blocking pool.
fn lend_core(rt: &Arc<RuntimeShared>, core: &Core, lend: &Arc<Lend>) {
    let stand_in = StandIn {
        lend: lend.clone(),
        core: LentCore(NonNull::from(core)),
        rt: rt.clone(),
    };
    // Detached: the lend's state says when the stand-in is done, and a stand-in the
    // pool drops unrun (at shutdown) marks the lend finished from its `Drop`.
    drop(rt.blocking.spawn(move || stand_in.run()));
}

/// A core on loan to a stand-in thread.
struct LentCore(NonNull<Core>);

// SAFETY: the lending thread touches the core again only after the stand-in has given
// it back through `Lend`'s mutex (see the module docs); the core holds no `!Send`
// tasks (checked before lending, and `spawn_local` is refused while lent).
unsafe impl Send for LentCore {}

struct StandIn {
    lend: Arc<Lend>,
    core: LentCore,
    rt: Arc<RuntimeShared>,
}

impl StandIn {
    /// Drives the lent worker until its task's thread wants it back (or the runtime
    /// shuts down).
    fn run(self) {
        if !self.lend.start() {
            // Taken back before this thread got to it.
            return;
        }
        // SAFETY: lent to this thread until `finish` (in `Drop`) gives it back.
        let core = unsafe { self.core.0.as_ref() };
        let shared = core.local.shared.clone();
        let _enter = context::enter_with_timer(self.rt.clone(), shared.timer.clone());
        let _worker = context::set_worker(core);
        core.local.lent.set(true);
        core.run_loop(self.rt.event_interval, || {
            self.lend.give_back.load(Ordering::Acquire) || shared.shutdown.load(Ordering::Acquire)
        });
        core.local.lent.set(false);
    }
}

impl Drop for StandIn {
    fn drop(&mut self) {
        self.lend.finish();
    }
}

/// The state of one loan.
struct Lend {
    state: Mutex<LendState>,
    changed: Condvar,
    /// The blocked thread wants the core back.
    give_back: AtomicBool,
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum LendState {
    /// The stand-in has not started.
    Waiting,
    /// The stand-in drives the core.
    Driving,
    /// The core is back with its thread (or was never lent).
    Done,
}

impl Lend {
    fn new() -> Lend {
        Lend {
            state: Mutex::new(LendState::Waiting),
            changed: Condvar::new(),
            give_back: AtomicBool::new(false),
        }
    }

    fn lock(&self) -> MutexGuard<'_, LendState> {
        self.state.lock()
    }

    /// The stand-in starts driving; false if the core was taken back already.
    fn start(&self) -> bool {
        let mut state = self.lock();
        if *state != LendState::Waiting {
            return false;
        }
        *state = LendState::Driving;
        true
    }

    /// The stand-in is done with the core (or will never use it).
    fn finish(&self) {
        *self.lock() = LendState::Done;
        self.changed.notify_all();
    }

    /// The blocked thread takes its core back: at once if the stand-in never started,
    /// else once it pauses between two task polls.
    fn take_back(&self, worker: &WorkerShared) {
        let mut state = self.lock();
        match *state {
            LendState::Waiting => *state = LendState::Done,
            LendState::Done => {}
            LendState::Driving => {
                self.give_back.store(true, Ordering::Release);
                planted_bug!(
                    "take_back_no_unpark",
                    // The stand-in, asleep in the worker's reactor, is not told.
                    bug: (),
                    // The stand-in may sleep in the worker's reactor.
                    code: worker.unpark(),
                );
                while *state != LendState::Done {
                    state = self.changed.wait(state);
                }
            }
        }
    }
}
