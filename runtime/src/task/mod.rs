//! Tasks: one allocation each, a state word, a waker vtable, and the handles users
//! hold (`JoinHandle`, `AbortHandle`, `JoinSet`).
//!
//! A task is a `Box` holding a [`raw::Header`] (state word, vtable, queue and list
//! links), the handle of the scheduler that owns it, the future (later its output)
//! and the join waker. See [`state`] for the state word and [`raw`] for who may touch
//! which field.

mod error;
mod join;
mod join_set;
pub(crate) mod raw;
pub(crate) mod state;
mod waker;

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::ptr::NonNull;
use std::sync::atomic::{AtomicU64, Ordering};
use std::task::{Context, Poll};

pub use error::JoinError;
pub use join::{AbortHandle, JoinHandle};
pub use join_set::JoinSet;

use raw::Header;

/// A task's id, unique among the tasks of the process.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Id(u64);

impl Id {
    pub(crate) fn next() -> Id {
        static NEXT: AtomicU64 = AtomicU64::new(1);
        Id(NEXT.fetch_add(1, Ordering::Relaxed))
    }
}

impl fmt::Display for Id {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

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
        unsafe { raw::drop_reference(self.0) }
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
    let ptr = raw::allocate(future, scheduler, Id::next());
    // SAFETY: `allocate` returned three references: one each for these two, one for
    // the owner's list.
    unsafe { (Notified::from_raw(ptr), JoinHandle::from_raw(ptr)) }
}

/// Spawns a `!Send` future on the current worker. It is only ever polled (and dropped)
/// on this thread.
///
/// # Panics
///
/// If the current thread is not a worker of an epitome runtime (inside
/// `Runtime::block_on` of a current-thread runtime, or in a task).
#[track_caller]
pub fn spawn_local<F>(future: F) -> JoinHandle<F::Output>
where
    F: Future + 'static,
    F::Output: 'static,
{
    match crate::scheduler::spawn_local(future) {
        Ok(handle) => handle,
        Err(_) => panic!(
            "`spawn_local` called from outside a worker of an epitome runtime: a `!Send` future \
             must be spawned from a task or from `block_on` on a current-thread runtime"
        ),
    }
}

/// Runs a blocking closure on the runtime's blocking pool and returns a handle to its
/// result. The pool grows to `max_blocking_threads` and shrinks after threads idle.
///
/// # Panics
///
/// If there is no epitome runtime on this thread.
#[track_caller]
pub fn spawn_blocking<F, R>(f: F) -> JoinHandle<R>
where
    F: FnOnce() -> R + Send + 'static,
    R: Send + 'static,
{
    crate::runtime::Handle::current().spawn_blocking(f)
}

/// Yields to the scheduler once: the task goes to the back of its run queue.
pub async fn yield_now() {
    struct YieldNow(bool);
    impl Future for YieldNow {
        type Output = ();
        fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
            if self.0 {
                return Poll::Ready(());
            }
            self.0 = true;
            cx.waker().wake_by_ref();
            Poll::Pending
        }
    }
    YieldNow(false).await
}
