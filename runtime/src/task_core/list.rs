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

#[cfg(test)]
mod tests {
    use super::super::join::tests::TestScheduler;
    use super::super::{Id, JoinHandle, new_task};
    use super::*;

    /// `n` new tasks (each with its first queue entry) on `sched`.
    fn tasks(n: usize, sched: &TestScheduler) -> (Vec<Notified>, Vec<JoinHandle<()>>) {
        (0..n).map(|_| new_task(async {}, sched.clone())).unzip()
    }

    /// Tasks come off in the order they went on, an appended list after the tasks
    /// already there (the other list left empty), and the counts follow.
    #[test]
    fn tasks_come_off_in_order_and_append_moves_a_whole_list() {
        crate::loom::unit_test(|| {
            let sched = TestScheduler::default();
            let (entries, handles) = tasks(5, &sched);
            let ids: Vec<Id> = handles.iter().map(JoinHandle::id).collect();
            let (mut list, mut other) = (TaskList::default(), TaskList::default());
            assert!(list.is_empty());
            assert_eq!(list.len(), 0);
            let mut entries = entries.into_iter();
            for task in entries.by_ref().take(3) {
                list.push_back(task);
            }
            other.append(&mut TaskList::default());
            assert!(other.is_empty());
            for task in entries {
                other.push_back(task);
            }
            assert_eq!((list.len(), other.len()), (3, 2));
            assert!(!list.is_empty() && !other.is_empty());
            list.append(&mut TaskList::default());
            assert_eq!(list.len(), 3);
            list.append(&mut other);
            assert!(other.is_empty());
            assert_eq!(other.len(), 0);
            assert!(other.pop_front().is_none());
            assert_eq!(list.len(), 5);

            let mut order = Vec::new();
            while let Some(task) = list.pop_front() {
                order.push(task.header().id);
                assert_eq!(list.len(), 5 - order.len());
                task.run();
            }
            assert!(list.is_empty());
            assert_eq!(order, ids);
            // An emptied list takes tasks again.
            let (entries, more) = tasks(2, &sched);
            let more_ids: Vec<Id> = more.iter().map(JoinHandle::id).collect();
            let mut empty = TaskList::default();
            for task in entries {
                empty.push_back(task);
            }
            list.append(&mut empty);
            let ran: Vec<Id> = std::iter::from_fn(|| list.pop_front())
                .map(|task| {
                    let id = task.header().id;
                    task.run();
                    id
                })
                .collect();
            assert_eq!(ran, more_ids);
            drop((handles, more));
            assert_eq!(sched.tasks_alive(), 0);
        });
    }

    /// A list dropped with tasks on it gives their queue references back.
    #[test]
    fn a_dropped_list_gives_its_references_back() {
        crate::loom::unit_test(|| {
            let sched = TestScheduler::default();
            let (entries, handles) = tasks(2, &sched);
            let ptrs: Vec<NonNull<Header>> = entries.iter().map(Notified::as_ptr).collect();
            let mut list = TaskList::default();
            for task in entries {
                list.push_back(task);
            }
            drop(list);
            for ptr in ptrs {
                // SAFETY: the JoinHandle's reference keeps the task alive.
                let header = unsafe { ptr.as_ref() };
                // The JoinHandle's and the owner list's (the test scheduler's, unheld).
                assert_eq!(header.state.load().refs(), 2, "the queue entry was kept");
                // SAFETY: as above; cancels the task as its owner's shutdown would,
                // handing back the owner list's reference.
                assert!(unsafe { (header.vtable.shutdown)(ptr) });
            }
            drop(handles);
            assert_eq!(sched.tasks_alive(), 0);
        });
    }
}
