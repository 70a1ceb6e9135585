//! Run queues: intrusive FIFOs through each task's `queue_next` link, so putting a task
//! on a queue never allocates.
//!
//! A task is on at most one queue at a time: only the holder of its `SCHEDULED` bit
//! (a [`Notified`]) may link it, and linking consumes the `Notified`.

use std::cell::UnsafeCell;

use crate::loom::planted_bug;
use crate::loom::sync::Mutex;
use crate::loom::sync::atomic::{AtomicUsize, Ordering};
use crate::task_core::{Notified, TaskList};

/// The run queue of the worker's own thread.
///
/// An `UnsafeCell` rather than a `RefCell`: each method is one `TaskList` call, which
/// runs no foreign code, so no two borrows can overlap; the `RefCell`'s flag was a
/// measured share of a wake-and-run (a push and a pop per request).
#[derive(Default)]
pub(crate) struct LocalQueue {
    list: UnsafeCell<TaskList>,
}

impl LocalQueue {
    #[inline]
    fn with<R>(&self, f: impl FnOnce(&mut TaskList) -> R) -> R {
        // SAFETY: the queue is not `Sync`, and `f` is one `TaskList` call that cannot
        // reach this queue again: the borrow is the only one.
        f(unsafe { &mut *self.list.get() })
    }

    #[inline]
    pub(crate) fn push(&self, task: Notified) {
        self.with(|l| l.push_back(task));
    }

    #[inline]
    pub(crate) fn pop(&self) -> Option<Notified> {
        self.with(TaskList::pop_front)
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.with(|l| l.is_empty())
    }

    pub(crate) fn append(&self, other: &mut TaskList) {
        self.with(|l| l.append(other));
    }
}

/// Wakes and spawns from other threads: a locked list, plus a length readable without
/// the lock so the worker can skip the lock when it is empty.
#[derive(Default)]
pub(crate) struct RemoteQueue {
    inner: Mutex<Remote>,
    len: AtomicUsize,
}

#[derive(Default)]
struct Remote {
    list: TaskList,
    closed: bool,
}

impl RemoteQueue {
    /// Queues `task`, or gives it back if the queue is closed (the runtime is shutting
    /// down).
    pub(crate) fn push(&self, task: Notified) -> Result<(), Notified> {
        let closed = planted_bug!(
            "push_closed_outside_lock",
            // Look at `closed` under one lock and push under another, so a close in
            // between strands the task on a queue nobody will drain.
            bug: Some(self.inner.lock().closed),
            code: None,
        );
        let mut remote = self.inner.lock();
        if closed.unwrap_or(remote.closed) {
            return Err(task);
        }
        remote.list.push_back(task);
        self.len.store(remote.list.len(), Ordering::Release);
        Ok(())
    }

    /// How many tasks are queued (a lock-free look; a statistic).
    pub(crate) fn len(&self) -> usize {
        self.len.load(Ordering::Relaxed)
    }

    /// Whether nothing is queued (a lock-free look).
    pub(crate) fn is_empty(&self) -> bool {
        self.len.load(Ordering::Acquire) == 0
    }

    /// Takes everything queued.
    pub(crate) fn take_all(&self) -> TaskList {
        if self.len.load(Ordering::Acquire) == 0 {
            return TaskList::default();
        }
        let mut remote = self.inner.lock();
        self.len.store(0, Ordering::Release);
        std::mem::take(&mut remote.list)
    }

    /// Refuses every later push; returns what is queued.
    pub(crate) fn close(&self) -> TaskList {
        let mut remote = self.inner.lock();
        remote.closed = true;
        self.len.store(0, Ordering::Release);
        std::mem::take(&mut remote.list)
    }
}
