//! [`TaskList`]: an intrusive FIFO of notified tasks through each task's `queue_next`
//! link, so putting a task on a queue never allocates. The run queues and the blocking
//! pool are made of it.
//!
//! A task is on at most one queue at a time: only the holder of its `SCHEDULED` bit
//! (a [`Notified`]) may link it, and linking consumes the `Notified`.

use std::ptr::NonNull;

use super::{Header, Notified};
use crate::loom::CellExt;

/// A FIFO of notified tasks; owns their queue references.
#[derive(Default)]
pub(crate) struct TaskList {
    head: Option<NonNull<Header>>,
    tail: Option<NonNull<Header>>,
    len: usize,
}

// SAFETY: the list owns `Notified`s, which are Send; the links it touches belong to
// the queue holding each task.
unsafe impl Send for TaskList {}

impl TaskList {
    pub(crate) fn len(&self) -> usize {
        self.len
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.head.is_none()
    }

    pub(crate) fn push_back(&mut self, task: Notified) {
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

    pub(crate) fn pop_front(&mut self) -> Option<Notified> {
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
    pub(crate) fn append(&mut self, other: &mut TaskList) {
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
