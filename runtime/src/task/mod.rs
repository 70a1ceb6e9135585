//! Tasks: one allocation each, a state word, a waker vtable, and the handles users
//! hold (`JoinHandle`, `AbortHandle`, `JoinSet`).
//!
//! A task is a `Box` holding a `raw::Header` (state word, vtable, queue and list
//! links), the handle of the scheduler that owns it, the future (later its output)
//! and the join waker. See `state.rs` for the state word and `raw.rs` for who may touch
//! which field.

mod error;
mod join;
mod join_set;
pub(crate) mod raw;
pub(crate) mod schedule;
pub(crate) mod state;
mod waker;

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};

pub use error::JoinError;
pub use join::{AbortHandle, JoinHandle};
pub use join_set::JoinSet;
pub(crate) use schedule::{Notified, Schedule, new_task};

use crate::loom::os::sync::atomic::{AtomicU64, Ordering};

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
