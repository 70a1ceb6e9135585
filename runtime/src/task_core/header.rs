//! The type-erased part every task starts with, and what can be done to a task through
//! it alone: count references, wake, abort. Wakers and handles (`waker.rs`, `join.rs`)
//! reach a task through this; the allocation and its poll are in `cell.rs`.
//!
//! # Who may touch which field
//!
//! - `state`: anyone holding a reference, through atomic transitions only.
//! - `queue_next`: whoever holds the task's queue entry (the `SCHEDULED` bit's owner);
//!   it links the task into at most one run queue at a time.
//! - `owned_prev` / `owned_next` / `bound`: only the thread of the worker that owns the
//!   task.

use std::ptr::NonNull;
use std::task::Waker;

use super::Id;
use super::state::{State, ToScheduled};
use crate::loom::cell::UnsafeCell;

/// The type-erased part every task starts with.
#[repr(C)]
pub(crate) struct Header {
    pub(crate) state: State,
    pub(crate) vtable: &'static Vtable,
    pub(crate) id: Id,
    /// Next task on the run queue this task is on (see the module docs).
    pub(crate) queue_next: UnsafeCell<Option<NonNull<Header>>>,
    /// Links in the owning worker's list of tasks.
    pub(crate) owned_prev: UnsafeCell<Option<NonNull<Header>>>,
    pub(crate) owned_next: UnsafeCell<Option<NonNull<Header>>>,
    /// Whether the owning worker has put the task on its list yet (a task spawned
    /// from another thread is bound when its worker first takes it off its queue).
    pub(crate) bound: UnsafeCell<bool>,
}

// SAFETY: the header is shared between threads through wakers and handles; its
// non-atomic fields are only touched under the ownership rules in the module docs.
unsafe impl Send for Header {}
// SAFETY: as above.
unsafe impl Sync for Header {}

pub(crate) struct Vtable {
    /// Runs the task: consumes the queue entry's reference.
    pub(crate) run: unsafe fn(NonNull<Header>),
    /// Puts the task on its scheduler's queue: consumes one reference.
    pub(crate) schedule: unsafe fn(NonNull<Header>),
    /// Frees the allocation (the count reached zero).
    pub(crate) dealloc: unsafe fn(NonNull<Header>),
    /// `JoinHandle::poll`: writes `Poll<Result<T, JoinError>>` to the pointer.
    pub(crate) try_read_output: unsafe fn(NonNull<Header>, *mut (), &Waker),
    /// `JoinHandle::drop`: drops join interest and the handle's reference.
    pub(crate) drop_join_handle: unsafe fn(NonNull<Header>),
    /// Shutdown on the owner's thread: cancel the task in place if it is idle or
    /// queued. Returns whether it did (then `complete` released it from its owner).
    pub(crate) shutdown: unsafe fn(NonNull<Header>) -> bool,
}

/// Drops one reference, freeing the task if it was the last.
///
/// # Safety
/// The caller owns one reference to a live task.
pub(crate) unsafe fn drop_reference(ptr: NonNull<Header>) {
    // SAFETY: the caller owns a reference, so the task is live.
    let header = unsafe { ptr.as_ref() };
    if header.state.ref_dec() {
        // SAFETY: that was the last reference; nobody else can reach the task.
        unsafe { (header.vtable.dealloc)(ptr) };
    }
}

/// Schedules a task through a borrowed reference (abort, `wake_by_ref`): takes a new
/// reference for the queue if the task must be queued.
///
/// # Safety
/// The caller holds a reference to a live task.
pub(crate) unsafe fn schedule_by_ref(ptr: NonNull<Header>) {
    // SAFETY: the caller holds a reference.
    let header = unsafe { ptr.as_ref() };
    if header.state.transition_to_scheduled_by_ref() == ToScheduled::Submit {
        // SAFETY: the transition took a reference for the queue.
        unsafe { (header.vtable.schedule)(ptr) };
    }
}

/// Schedules a task through a reference the caller gives up (`Waker::wake`).
///
/// # Safety
/// The caller owns one reference to a live task and gives it up.
pub(crate) unsafe fn schedule_by_val(ptr: NonNull<Header>) {
    // SAFETY: the caller's reference keeps the task live.
    let header = unsafe { ptr.as_ref() };
    match header.state.transition_to_scheduled_by_val() {
        // SAFETY: the caller's reference becomes the queue entry's.
        ToScheduled::Submit => unsafe { (header.vtable.schedule)(ptr) },
        // SAFETY: the caller's reference, no longer needed.
        ToScheduled::Nothing => unsafe { drop_reference(ptr) },
    }
}

/// Requests cancellation (abort).
///
/// # Safety
/// The caller holds a reference to a live task.
pub(crate) unsafe fn abort(ptr: NonNull<Header>) {
    // SAFETY: the caller holds a reference.
    let header = unsafe { ptr.as_ref() };
    if header.state.transition_to_cancelled() == ToScheduled::Submit {
        // SAFETY: the transition took a reference for the queue.
        unsafe { (header.vtable.schedule)(ptr) };
    }
}
