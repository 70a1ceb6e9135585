//! How a task meets its scheduler: the [`Schedule`] trait a scheduler implements, the
//! [`Notified`] entries its run queues hold, and [`new_task`].

use std::future::Future;
use std::ptr::NonNull;

use super::cell;
use super::header::{self, Header};
use super::{Id, JoinHandle};

/// What a task needs from the scheduler that owns it.
pub(crate) trait Schedule: Send + Sync + 'static {
    /// Puts a notified task on a run queue (on the owner's thread: its local queue;
    /// elsewhere: its remote queue, unparking it).
    fn schedule(&self, task: Notified);
    /// The task completed on its owner's thread: take it off the owner's task list.
    /// Returns whether the list held it (and so handed its reference back).
    fn release(&self, task: NonNull<Header>) -> bool;
}

/// A task on (or on its way to) a run queue: owns the queue entry's reference.
pub(crate) struct Notified(NonNull<Header>);

// SAFETY: a Notified is the permission to run a task on its owner's thread; sending it
// to that thread (through a remote queue) is what it is for. Running a `!Send` task
// elsewhere is prevented by the scheduler, which only runs tasks it owns.
unsafe impl Send for Notified {}

impl Notified {
    /// # Safety
    /// `ptr` carries a queue entry's reference.
    pub(crate) unsafe fn from_raw(ptr: NonNull<Header>) -> Notified {
        Notified(ptr)
    }

    /// Gives up ownership without dropping the reference.
    pub(crate) fn into_raw(self) -> NonNull<Header> {
        let ptr = self.0;
        std::mem::forget(self);
        ptr
    }

    pub(crate) fn header(&self) -> &Header {
        // SAFETY: the entry's reference keeps the header live.
        unsafe { self.0.as_ref() }
    }

    pub(crate) fn as_ptr(&self) -> NonNull<Header> {
        self.0
    }

    /// Runs the task (consumes the entry).
    pub(crate) fn run(self) {
        let ptr = self.into_raw();
        // SAFETY: the entry's reference is handed to `run`, which consumes it.
        unsafe { (ptr.as_ref().vtable.run)(ptr) }
    }
}

impl Drop for Notified {
    fn drop(&mut self) {
        // SAFETY: the entry's reference.
        unsafe { header::drop_reference(self.0) }
    }
}

/// Allocates a task owned by `scheduler`. Returns the first queue entry and the
/// `JoinHandle`; the third reference belongs to the owner's task list.
pub(crate) fn new_task<F, S>(future: F, scheduler: S) -> (Notified, JoinHandle<F::Output>)
where
    F: Future + 'static,
    F::Output: 'static,
    S: Schedule,
{
    let ptr = cell::allocate(future, scheduler, Id::next());
    // SAFETY: `allocate` returned three references: one each for these two, one for
    // the owner's list.
    unsafe { (Notified::from_raw(ptr), JoinHandle::from_raw(ptr)) }
}
