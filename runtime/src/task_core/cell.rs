//! The task allocation: header, scheduler handle, future-or-output and join waker in
//! one `Box`, reached through a type-erased header pointer and a vtable.
//!
//! # Who may touch which field
//!
//! - `header.state`: anyone holding a reference, through atomic transitions only.
//! - `header.queue_next`: whoever holds the task's queue entry (the `SCHEDULED` bit's
//!   owner); it links the task into at most one run queue at a time.
//! - `header.owned_prev` / `owned_next` / `bound`: only the thread of the worker
//!   that owns the task.
//! - `stage` (the future, then the output): the thread that set `RUNNING` while it
//!   holds it; after `COMPLETE`, the `JoinHandle` (if `JOIN_INTEREST` was still set
//!   at completion) or else the completing thread.
//! - `join_waker`: the `JoinHandle` while `JOIN_WAKER` is clear and the task is not
//!   complete; the completing thread while `JOIN_WAKER` is set after `COMPLETE`.

use std::future::Future;
use std::mem::ManuallyDrop;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::pin::Pin;
use std::ptr::NonNull;
use std::task::{Context, Poll, Waker};

use super::error::JoinError;
use super::header::{Header, Vtable, drop_reference};
use super::state::{JOIN_INTEREST, JOIN_WAKER, State, ToIdle, ToRunning};
use super::waker;
use super::{Id, Schedule};
use crate::loom::cell::UnsafeCell;

enum Stage<F: Future> {
    Running(F),
    Finished(Result<F::Output, JoinError>),
    Consumed,
}

#[repr(C)]
struct Cell<F: Future, S> {
    header: Header,
    scheduler: S,
    stage: UnsafeCell<Stage<F>>,
    join_waker: UnsafeCell<Option<Waker>>,
}

/// The bytes of a task's allocation for future `F` and scheduler `S` (the runtime's
/// per-connection footprint, `io::footprint`).
#[cfg(all(test, not(epitome_loom)))]
pub(crate) fn cell_bytes<F: Future, S>() -> usize {
    std::mem::size_of::<Cell<F, S>>()
}

/// Allocates a task. The returned header carries three references: the owner's list,
/// the `JoinHandle`, and the first queue entry; it starts `SCHEDULED`.
pub(crate) fn allocate<F, S>(future: F, scheduler: S, id: Id) -> NonNull<Header>
where
    F: Future + 'static,
    F::Output: 'static,
    S: Schedule,
{
    let cell = Box::new(Cell {
        header: Header {
            state: State::new(),
            vtable: &Vtable {
                run: run::<F, S>,
                schedule: schedule::<F, S>,
                dealloc: dealloc::<F, S>,
                try_read_output: try_read_output::<F, S>,
                drop_join_handle: drop_join_handle::<F, S>,
                shutdown: shutdown::<F, S>,
            },
            id,
            queue_next: UnsafeCell::new(None),
            owned_prev: UnsafeCell::new(None),
            owned_next: UnsafeCell::new(None),
            bound: UnsafeCell::new(false),
        },
        scheduler,
        stage: UnsafeCell::new(Stage::Running(future)),
        join_waker: UnsafeCell::new(None),
    });
    // `Cell` is repr(C) with the header first, so the cell pointer is the header's.
    NonNull::from(Box::leak(cell)).cast()
}

/// # Safety
/// `ptr` must point to the header of a live `Cell<F, S>`.
unsafe fn cell<'a, F: Future, S>(ptr: NonNull<Header>) -> &'a Cell<F, S> {
    // SAFETY: the caller guarantees the type; the header is the cell's first field.
    unsafe { ptr.cast::<Cell<F, S>>().as_ref() }
}

unsafe fn dealloc<F: Future, S>(ptr: NonNull<Header>) {
    // SAFETY: the last reference is gone; `allocate` made this Box.
    let cell = unsafe { Box::from_raw(ptr.cast::<Cell<F, S>>().as_ptr()) };
    // In the loom models, freeing the task is a write to its cells, which loom then
    // checks against every access another thread made before its reference was
    // dropped (loom does not see a drop as an access).
    #[cfg(all(test, epitome_loom))]
    {
        cell.stage.with_mut(|_| ());
        cell.join_waker.with_mut(|_| ());
    }
    drop(cell);
}

unsafe fn schedule<F: Future + 'static, S: Schedule>(ptr: NonNull<Header>) {
    // SAFETY: the caller gives us a reference; the vtable matches the type.
    let cell = unsafe { cell::<F, S>(ptr) };
    // SAFETY: the caller's reference becomes the queue entry's.
    cell.scheduler
        .schedule(unsafe { super::Notified::from_raw(ptr) });
}

/// Polls the future under `catch_unwind`, with a waker that borrows the run's
/// reference (no count change). The caller has made the task's id current.
///
/// A poll that panics drops the future while the panic unwinds (from a guard's `Drop`,
/// as tokio does), not after it was caught: the future's destructors then see
/// `std::thread::panicking()`, and a `MutexGuard` it holds poisons its mutex, as in
/// plain code that panics. (A destructor that panics again during that unwind aborts
/// the process, as it would there.)
unsafe fn poll_future<F: Future, S>(ptr: NonNull<Header>) -> Option<Result<F::Output, JoinError>> {
    // SAFETY: the run holds a reference for as long as this waker is used, and the
    // `ManuallyDrop` keeps the borrowed waker from dropping a reference it never took.
    let waker = ManuallyDrop::new(unsafe { waker::from_header(ptr) });
    let mut cx = Context::from_waker(&waker);
    // SAFETY: the vtable matches; we hold RUNNING, so the stage is ours.
    let cell = unsafe { cell::<F, S>(ptr) };
    let res = catch_unwind(AssertUnwindSafe(|| {
        let drop_on_unwind = DropOnUnwind(&cell.stage);
        let polled = cell.stage.with_mut(|stage| {
            // SAFETY: RUNNING gives exclusive access to the stage; the future is
            // never moved out of the heap allocation, so pinning it here is sound.
            match unsafe { &mut *stage } {
                // SAFETY: see above: the future never moves.
                Stage::Running(f) => unsafe { Pin::new_unchecked(f) }.poll(&mut cx),
                _ => unreachable!("polled a task whose future is gone"),
            }
        });
        std::mem::forget(drop_on_unwind);
        polled
    }));
    match res {
        Ok(Poll::Pending) => None,
        Ok(Poll::Ready(out)) => Some(Ok(out)),
        Err(payload) => Some(Err(JoinError::panic(cell.header.id, payload))),
    }
}

/// Drops the future when dropped: armed around a poll and forgotten if the poll
/// returns, so it only runs while a panic unwinds out of the poll.
struct DropOnUnwind<'a, F: Future>(&'a UnsafeCell<Stage<F>>);

impl<F: Future> Drop for DropOnUnwind<'_, F> {
    fn drop(&mut self) {
        // SAFETY: armed only by `poll_future`, whose caller holds RUNNING; the poll's
        // borrow of the stage ended when its frame unwound.
        self.0.with_mut(|stage| unsafe { *stage = Stage::Consumed });
    }
}

/// Drops the future in place (cancellation); a panic from its destructor becomes the
/// task's result. The caller has made the task's id current.
unsafe fn cancel_future<F: Future, S>(ptr: NonNull<Header>) -> Result<F::Output, JoinError> {
    // SAFETY: the vtable matches; the caller holds RUNNING.
    let cell = unsafe { cell::<F, S>(ptr) };
    let id = cell.header.id;
    let res = catch_unwind(AssertUnwindSafe(|| {
        // SAFETY: RUNNING gives exclusive access to the stage.
        cell.stage
            .with_mut(|stage| unsafe { *stage = Stage::Consumed });
    }));
    match res {
        Ok(()) => Err(JoinError::cancelled(id)),
        Err(payload) => Err(JoinError::panic(id, payload)),
    }
}

unsafe fn run<F: Future + 'static, S: Schedule>(ptr: NonNull<Header>) {
    // SAFETY: the caller gives us the queue entry's reference; the vtable matches.
    let header = unsafe { ptr.as_ref() };
    // The task's id is current for the whole run: its poll, and the drop of its future
    // (finished or cancelled) and of an output nobody will read.
    let _current = super::id::set_current(header.id);
    match header.state.transition_to_running() {
        ToRunning::Done => {
            // SAFETY: the queue entry's reference.
            unsafe { drop_reference(ptr) };
        }
        ToRunning::Cancel => {
            // SAFETY: we hold RUNNING and the run's reference.
            let res = unsafe { cancel_future::<F, S>(ptr) };
            // SAFETY: as above.
            unsafe { complete::<F, S>(ptr, res) };
        }
        ToRunning::Run => {
            // SAFETY: we hold RUNNING and the run's reference.
            match unsafe { poll_future::<F, S>(ptr) } {
                // SAFETY: as above.
                Some(res) => unsafe { complete::<F, S>(ptr, res) },
                None => match header.state.transition_to_idle() {
                    // SAFETY: the run's reference.
                    ToIdle::Idle => unsafe { drop_reference(ptr) },
                    // SAFETY: the run's reference becomes the new queue entry's.
                    ToIdle::Requeue => unsafe { schedule::<F, S>(ptr) },
                    ToIdle::Cancel => {
                        // SAFETY: we still hold RUNNING and the run's reference.
                        let res = unsafe { cancel_future::<F, S>(ptr) };
                        // SAFETY: as above.
                        unsafe { complete::<F, S>(ptr, res) };
                    }
                },
            }
        }
    }
}

/// Stores the result, marks the task complete, wakes or drops as the join state says,
/// releases the task from its owner and drops the run's reference. The caller has
/// made the task's id current (the future and an unread output are dropped here).
///
/// # Safety
/// The caller holds RUNNING and one reference (the run's).
unsafe fn complete<F: Future + 'static, S: Schedule>(
    ptr: NonNull<Header>,
    res: Result<F::Output, JoinError>,
) {
    // SAFETY: the vtable matches; RUNNING gives exclusive access to the stage.
    let cell = unsafe { cell::<F, S>(ptr) };
    // Storing the output drops the future, here on the task's own thread (the caller
    // has made the task's id current). A panic in the future's destructor is caught
    // and becomes the output instead.
    let id = cell.header.id;
    let stored = catch_unwind(AssertUnwindSafe(|| {
        // SAFETY: as above.
        cell.stage
            .with_mut(|stage| unsafe { *stage = Stage::Finished(res) });
    }));
    if let Err(payload) = stored {
        // SAFETY: as above; the stage was left `Finished` or the old value is gone.
        cell.stage.with_mut(|stage| unsafe {
            *stage = Stage::Finished(Err(JoinError::panic(id, payload)))
        });
    }
    let snapshot = cell.header.state.transition_to_complete();
    if !snapshot.has(JOIN_INTEREST) {
        // Nobody will read the output: drop it here. A panic in its destructor has
        // nowhere to go and is swallowed.
        let _ = catch_unwind(AssertUnwindSafe(|| {
            // SAFETY: without join interest the completing thread owns the stage.
            cell.stage
                .with_mut(|stage| unsafe { *stage = Stage::Consumed });
        }));
    } else if snapshot.has(JOIN_WAKER) {
        cell.join_waker.with(|w| {
            // SAFETY: JOIN_WAKER set after COMPLETE: the slot is ours until we unset it.
            if let Some(w) = unsafe { &*w } {
                crate::loom::planted_bug!("join_waker_not_woken", bug: (), code: w.wake_by_ref());
            }
        });
        cell.header.state.unset_join_waker_after_complete();
    }
    // The owner's list gives its reference back; with the run's, drop both.
    let released = cell.scheduler.release(ptr);
    let last = if released {
        cell.header.state.ref_dec_twice()
    } else {
        cell.header.state.ref_dec()
    };
    if last {
        // SAFETY: no references remain.
        unsafe { dealloc::<F, S>(ptr) };
    }
}

unsafe fn shutdown<F: Future + 'static, S: Schedule>(ptr: NonNull<Header>) -> bool {
    // SAFETY: the caller (the owning worker, at shutdown) holds a reference.
    let header = unsafe { ptr.as_ref() };
    if !header.state.transition_to_shutdown() {
        return false;
    }
    // We claimed the task (RUNNING set): cancel it here, with its id current.
    // `complete` needs a run reference of its own, separate from the caller's.
    header.state.ref_inc();
    let _current = super::id::set_current(header.id);
    // SAFETY: we hold RUNNING and the reference just taken.
    let res = unsafe { cancel_future::<F, S>(ptr) };
    // SAFETY: as above.
    unsafe { complete::<F, S>(ptr, res) };
    true
}

unsafe fn try_read_output<F: Future + 'static, S: Schedule>(
    ptr: NonNull<Header>,
    dst: *mut (),
    waker: &Waker,
) {
    // SAFETY: the JoinHandle holds a reference; the vtable matches.
    let cell = unsafe { cell::<F, S>(ptr) };
    let state = &cell.header.state;
    let mut snapshot = state.load();
    if !snapshot.has(super::state::COMPLETE) {
        let stored = if !snapshot.has(JOIN_WAKER) {
            // SAFETY: JOIN_WAKER clear and not complete: the slot is the handle's.
            cell.join_waker
                .with_mut(|w| unsafe { *w = Some(waker.clone()) });
            state.set_join_waker()
        } else {
            // SAFETY: with JOIN_WAKER set the task may only read the slot after
            // COMPLETE; reading it here to compare is a shared read.
            let same = cell
                .join_waker
                .with(|w| unsafe { &*w }.as_ref().is_some_and(|w| w.will_wake(waker)));
            if same {
                return;
            }
            match state.unset_join_waker() {
                Ok(_) => {
                    // SAFETY: JOIN_WAKER is clear again and the task is not complete.
                    cell.join_waker
                        .with_mut(|w| unsafe { *w = Some(waker.clone()) });
                    state.set_join_waker()
                }
                Err(s) => Err(s),
            }
        };
        match stored {
            Ok(_) => return,
            Err(s) => snapshot = s,
        }
    }
    debug_assert!(snapshot.has(super::state::COMPLETE));
    // SAFETY: COMPLETE with join interest: the stage belongs to the handle.
    let out = cell
        .stage
        .with_mut(|stage| unsafe { std::mem::replace(&mut *stage, Stage::Consumed) });
    let dst = dst.cast::<Poll<Result<F::Output, JoinError>>>();
    match out {
        // SAFETY: the JoinHandle passes a valid, initialised `Poll` of this type.
        Stage::Finished(res) => unsafe { *dst = Poll::Ready(res) },
        _ => panic!("JoinHandle polled after completion"),
    }
}

unsafe fn drop_join_handle<F: Future + 'static, S: Schedule>(ptr: NonNull<Header>) {
    // SAFETY: the JoinHandle's reference; the vtable matches.
    let cell = unsafe { cell::<F, S>(ptr) };
    let before = cell.header.state.drop_join_interest();
    if before.has(super::state::COMPLETE) {
        // The output is ours to drop, with the task's id current (its destructor may
        // ask, as in tokio); a panic in its destructor is the dropper's.
        // SAFETY: COMPLETE seen with join interest: the stage is the handle's.
        let out = cell
            .stage
            .with_mut(|stage| unsafe { std::mem::replace(&mut *stage, Stage::Consumed) });
        let _current = super::id::set_current(cell.header.id);
        drop(out);
    } else if before.has(JOIN_WAKER) {
        // We cleared JOIN_WAKER before completion: the slot is ours.
        // SAFETY: as stated.
        cell.join_waker.with_mut(|w| unsafe { *w = None });
    }
    // SAFETY: the handle's reference.
    unsafe { drop_reference(ptr) };
}

#[cfg(test)]
mod tests {
    use std::panic::resume_unwind;
    use std::sync::{Arc, Mutex};
    use std::task::{Context, Poll, Waker};

    use super::super::join::tests::TestScheduler;
    use super::super::new_task;
    use super::*;

    /// Records, when dropped, whether a panic was unwinding.
    struct Witness(Arc<Mutex<Option<bool>>>);

    impl Drop for Witness {
        fn drop(&mut self) {
            *self.0.lock().unwrap() = Some(std::thread::panicking());
        }
    }

    /// A poll that panics drops the future while the panic unwinds (its destructors
    /// see `panicking()`, as in plain code), and the handle reports the panic.
    #[test]
    fn a_panicking_poll_drops_its_future_during_the_unwind() {
        crate::loom::unit_test(|| {
            let sched = TestScheduler::default();
            let seen = Arc::new(Mutex::new(None));
            let witness = Witness(seen.clone());
            let (task, handle) = new_task(
                std::future::poll_fn(move |_| -> Poll<()> {
                    let _witness = &witness;
                    // `resume_unwind` skips the panic hook: nothing printed.
                    resume_unwind(Box::new("the poll panics"))
                }),
                sched.clone(),
            );
            task.run();
            assert_eq!(
                *seen.lock().unwrap(),
                Some(true),
                "the future was not dropped during the unwind"
            );
            let mut handle = handle;
            match Pin::new(&mut handle).poll(&mut Context::from_waker(Waker::noop())) {
                Poll::Ready(Err(e)) => assert!(e.is_panic(), "{e}"),
                other => panic!(
                    "a panicked task's handle gave {:?}",
                    other.map(|r| r.is_ok())
                ),
            }
            drop(handle);
            assert_eq!(sched.tasks_alive(), 0);
        });
    }
}
