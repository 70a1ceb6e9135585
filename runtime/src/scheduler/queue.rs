//! Run queues: intrusive FIFOs through each task's `queue_next` link, so putting a task
//! on a queue never allocates.
//!
//! A task is on at most one queue at a time: only the holder of its `SCHEDULED` bit
//! (a [`Notified`]) may link it, and linking consumes the `Notified`.

use std::ptr::NonNull;

use crate::loom::CellExt;
use crate::loom::os::cell::RefCell;
use crate::loom::sync::Mutex;
use crate::loom::sync::atomic::{AtomicUsize, Ordering};
use crate::task::Notified;
use crate::task::raw::Header;

/// A FIFO of notified tasks; owns their queue references.
#[derive(Default)]
pub struct TaskList {
    head: Option<NonNull<Header>>,
    tail: Option<NonNull<Header>>,
    len: usize,
}

// SAFETY: the list owns `Notified`s, which are Send; the links it touches belong to
// the queue holding each task.
unsafe impl Send for TaskList {}

impl TaskList {
    pub fn len(&self) -> usize {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.head.is_none()
    }

    pub fn push_back(&mut self, task: Notified) {
        let ptr = task.into_raw();
        // SAFETY: we hold the task's queue entry, so its link is ours, and the tail is
        // a task this list owns.
        unsafe {
            ptr.as_ref().queue_next.write(None);
            match self.tail {
                Some(tail) => tail.as_ref().queue_next.write(Some(ptr)),
                None => self.head = Some(ptr),
            }
        }
        self.tail = Some(ptr);
        self.len += 1;
    }

    pub fn pop_front(&mut self) -> Option<Notified> {
        let head = self.head?;
        // SAFETY: the head is a task this list owns.
        let next = unsafe { head.as_ref().queue_next.read() };
        self.head = next;
        if next.is_none() {
            self.tail = None;
        }
        self.len -= 1;
        // SAFETY: the list held this task's queue reference.
        Some(unsafe { Notified::from_raw(head) })
    }

    /// Moves all of `other` to the back of `self`. O(1).
    pub fn append(&mut self, other: &mut TaskList) {
        let Some(other_head) = other.head else { return };
        match self.tail {
            // SAFETY: the tail is a task this list owns.
            Some(tail) => unsafe { tail.as_ref().queue_next.write(Some(other_head)) },
            None => self.head = Some(other_head),
        }
        self.tail = other.tail;
        self.len += other.len;
        // The tasks are ours now: empty `other` without running its `Drop`.
        other.head = None;
        other.tail = None;
        other.len = 0;
    }
}

impl Drop for TaskList {
    fn drop(&mut self) {
        while let Some(task) = self.pop_front() {
            drop(task);
        }
    }
}

/// The run queue of the worker's own thread.
#[derive(Default)]
pub(crate) struct LocalQueue {
    list: RefCell<TaskList>,
}

impl LocalQueue {
    pub(crate) fn push(&self, task: Notified) {
        self.list.borrow_mut().push_back(task);
    }

    pub(crate) fn pop(&self) -> Option<Notified> {
        self.list.borrow_mut().pop_front()
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.list.borrow().is_empty()
    }

    pub(crate) fn append(&self, other: &mut TaskList) {
        self.list.borrow_mut().append(other);
    }
}

/// Wakes and spawns from other threads: a locked list, plus a length readable without
/// the lock so the worker can skip the lock when it is empty.
#[derive(Default)]
pub struct RemoteQueue {
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
    pub fn push(&self, task: Notified) -> Result<(), Notified> {
        // Planted bug: look at `closed` under one lock and push under another, so a
        // close in between strands the task on a queue nobody will drain.
        #[cfg(epitome_loom_mutant = "push_closed_outside_lock")]
        if self.inner.lock().unwrap_or_else(|e| e.into_inner()).closed {
            return Err(task);
        }
        let mut remote = self.inner.lock().unwrap_or_else(|e| e.into_inner());
        #[cfg(not(epitome_loom_mutant = "push_closed_outside_lock"))]
        if remote.closed {
            return Err(task);
        }
        remote.list.push_back(task);
        self.len.store(remote.list.len(), Ordering::Release);
        Ok(())
    }

    /// How many tasks are queued (a lock-free look; a statistic).
    pub fn len(&self) -> usize {
        self.len.load(Ordering::Relaxed)
    }

    /// Whether nothing is queued (a lock-free look).
    pub fn is_empty(&self) -> bool {
        self.len.load(Ordering::Acquire) == 0
    }

    /// Takes everything queued.
    pub fn take_all(&self) -> TaskList {
        if self.len.load(Ordering::Acquire) == 0 {
            return TaskList::default();
        }
        let mut remote = self.inner.lock().unwrap_or_else(|e| e.into_inner());
        self.len.store(0, Ordering::Release);
        std::mem::take(&mut remote.list)
    }

    /// Refuses every later push; returns what is queued.
    pub fn close(&self) -> TaskList {
        let mut remote = self.inner.lock().unwrap_or_else(|e| e.into_inner());
        remote.closed = true;
        self.len.store(0, Ordering::Release);
        std::mem::take(&mut remote.list)
    }
}
