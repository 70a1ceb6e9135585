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

// Single-threaded: both builds (in the loom build each is a one-thread model). The races
// are the `park`, `shutdown`, `worker` and `local_set` models'.
#[cfg(test)]
mod tests {
    use std::ptr::NonNull;

    use super::*;
    use crate::task_core::header::Header;
    use crate::task_core::{JoinHandle, Schedule, new_task};

    /// The scheduler of tasks that complete on their one run, never woken.
    struct RunOnce;
    impl Schedule for RunOnce {
        fn schedule(&self, _: Notified) {
            unreachable!("a task that completes on its first run is never woken")
        }
        fn release(&self, _: NonNull<Header>) -> bool {
            // No owner list holds it: its reference is dropped with the task's others.
            true
        }
    }

    fn task() -> (Notified, JoinHandle<()>) {
        new_task(async {}, RunOnce)
    }

    /// Runs every task of `list` in order; returns their headers, in that order.
    fn run_all(mut list: TaskList) -> Vec<NonNull<Header>> {
        let mut ran = Vec::new();
        while let Some(t) = list.pop_front() {
            ran.push(t.as_ptr());
            t.run();
        }
        ran
    }

    #[test]
    fn the_remote_queue_counts_hands_over_and_refuses_once_closed() {
        crate::loom::unit_test(|| {
            let q = RemoteQueue::default();
            // `len` is a load of its own (a statistic), not `is_empty`'s.
            assert_eq!(q.len(), 0);
            assert!(q.is_empty() && q.take_all().is_empty());
            let ((a, ha), (b, hb)) = (task(), task());
            let order = [a.as_ptr(), b.as_ptr()];
            assert!(q.push(a).is_ok() && q.push(b).is_ok());
            assert!(!q.is_empty());
            assert_eq!(q.len(), 2);
            assert_eq!(run_all(q.take_all()), order);
            // `len` is a load of its own (a statistic), not `is_empty`'s.
            assert_eq!(q.len(), 0);
            assert!(q.is_empty() && q.take_all().is_empty());
            assert!(ha.is_finished() && hb.is_finished());
            // Closing hands back what is queued and refuses the rest.
            let ((c, hc), (d, hd)) = (task(), task());
            let queued = c.as_ptr();
            assert!(q.push(c).is_ok());
            let left = q.close();
            assert_eq!(q.len(), 0);
            assert!(q.is_empty());
            assert_eq!(run_all(left), [queued]);
            let Err(refused) = q.push(d) else {
                panic!("a push after close was queued")
            };
            assert!(q.is_empty() && q.take_all().is_empty());
            refused.run();
            assert!(hc.is_finished() && hd.is_finished());
        });
    }

    #[test]
    fn the_local_queue_is_a_fifo_that_takes_whole_lists() {
        crate::loom::unit_test(|| {
            let q = LocalQueue::default();
            assert!(q.is_empty() && q.pop().is_none());
            let ((a, ha), (b, hb), (c, hc)) = (task(), task(), task());
            let order = [a.as_ptr(), b.as_ptr(), c.as_ptr()];
            q.push(a);
            assert!(!q.is_empty());
            let mut more = TaskList::default();
            more.push_back(b);
            more.push_back(c);
            q.append(&mut more);
            assert!(more.is_empty());
            let mut ran = Vec::new();
            while let Some(t) = q.pop() {
                ran.push(t.as_ptr());
                t.run();
            }
            assert_eq!(ran, order);
            assert!(q.is_empty());
            assert!(ha.is_finished() && hb.is_finished() && hc.is_finished());
        });
    }
}
