//! Task ids, and which task this thread is running now.

use std::fmt;
use std::num::NonZeroU64;

use crate::loom::os::cell::Cell;
use crate::loom::os::sync::atomic::{AtomicU64, Ordering};

/// An opaque id of a task, unique among the tasks of the process.
///
/// Ids come from one process-wide counter that never repeats, so an id is never
/// reused (tokio allows reuse once a task and its handles are gone; epitome never needs
/// to). They say nothing else: not the order of spawns, nor the runtime.
///
/// Read it from outside the task with [`JoinHandle::id`](super::JoinHandle::id) or
/// [`AbortHandle::id`](super::AbortHandle::id), from inside with [`id()`] or
/// [`try_id()`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Id(NonZeroU64);

impl Id {
    pub(crate) fn next() -> Id {
        static NEXT: AtomicU64 = AtomicU64::new(1);
        loop {
            // Zero only after 2^64 spawns wrap the counter; skip it.
            if let Some(id) = NonZeroU64::new(NEXT.fetch_add(1, Ordering::Relaxed)) {
                return Id(id);
            }
        }
    }
}

impl fmt::Display for Id {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

crate::loom::os::thread_local! {
    /// The task being polled (or dropped) on this thread.
    static CURRENT: Cell<Option<Id>> = const { Cell::new(None) };
}

/// The id of the task running now.
///
/// # Panics
///
/// Outside a task: `block_on`'s own future is not a task and has no id (use
/// [`try_id`] to check).
///
/// ```
/// let rt = epitome_runtime::runtime::Builder::new_current_thread().build().unwrap();
/// rt.block_on(async {
///     let task = epitome_runtime::spawn(async { epitome_runtime::task::id() });
///     let expected = task.id();
///     assert_eq!(task.await.unwrap(), expected);
/// });
/// ```
#[track_caller]
pub fn id() -> Id {
    match try_id() {
        Some(id) => id,
        None => panic!("Can't get a task id when not inside a task"),
    }
}

/// The id of the task running now, or `None` outside a task (in `block_on`'s own
/// future, or off any runtime).
///
/// It is set while the task is polled and while its future is dropped (cancelled or
/// finished), so destructors of the task's state see it too.
pub fn try_id() -> Option<Id> {
    // No destructor: this works even during thread-local destruction.
    CURRENT.with(Cell::get)
}

/// Marks `id` as the running task until the guard drops.
pub(crate) struct CurrentGuard(Option<Id>);

#[inline]
pub(crate) fn set_current(id: Id) -> CurrentGuard {
    CurrentGuard(CURRENT.with(|c| c.replace(Some(id))))
}

impl Drop for CurrentGuard {
    #[inline]
    fn drop(&mut self) {
        CURRENT.with(|c| c.set(self.0));
    }
}
