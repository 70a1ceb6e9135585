//! The tasks a worker owns: an intrusive doubly-linked list through each task's
//! `owned_prev` / `owned_next`, touched only on the worker's thread, so shutdown can
//! cancel every task still alive. The list holds one reference to each task.

use std::ptr::NonNull;

use super::queue::LocalQueue;
use crate::loom::CellExt;
use crate::loom::os::cell::Cell;
use crate::task_core::header::{self, Header};
use crate::task_core::{Notified, TaskList};

#[derive(Default)]
pub(crate) struct OwnedTasks {
    head: Cell<Option<NonNull<Header>>>,
}

// SAFETY: the list is touched only by the thread driving its worker. It moves between
// threads only with the worker's whole `Core`, inside the runtime's mutex while no thread
// drives it; the tasks it links are `Send`, except `spawn_local` tasks, which pin the
// `Core` to their thread (`WorkerLocal::pinned`, checked before a `Core` is driven or
// shut down elsewhere).
unsafe impl Send for OwnedTasks {}

impl OwnedTasks {
    /// Adds a task (its owner-list reference, counted at allocation, is now ours).
    ///
    /// # Safety
    /// Called on the owner's thread, once per task, with a live task.
    pub(crate) unsafe fn insert(&self, ptr: NonNull<Header>) {
        let head = self.head.get();
        // SAFETY: the task is live (caller) and tasks on the list are live; their
        // owner-thread fields are only touched on this thread.
        unsafe {
            let header = ptr.as_ref();
            header.owned_prev.write(None);
            header.owned_next.write(head);
            if let Some(h) = head {
                h.as_ref().owned_prev.write(Some(ptr));
            }
            header.bound.write(true);
        }
        self.head.set(Some(ptr));
    }

    /// Takes a task off the list; returns whether it was on it (then its reference is
    /// the caller's to drop).
    ///
    /// # Safety
    /// Called on the owner's thread with a live task.
    pub(crate) unsafe fn remove(&self, ptr: NonNull<Header>) -> bool {
        // SAFETY: as in `insert`: live tasks, owner-thread fields, on their thread.
        unsafe {
            let header = ptr.as_ref();
            if !header.bound.read() {
                return false;
            }
            header.bound.write(false);
            let prev = header.owned_prev.read();
            let next = header.owned_next.read();
            match prev {
                Some(p) => p.as_ref().owned_next.write(next),
                None => self.head.set(next),
            }
            if let Some(n) = next {
                n.as_ref().owned_prev.write(prev);
            }
        }
        true
    }

    pub(crate) fn first(&self) -> Option<NonNull<Header>> {
        self.head.get()
    }

    /// Cancels every task on the list and every task on `queue`, on the owner's thread,
    /// until both are empty (the cancelled futures' destructors may wake or spawn
    /// others). The caller has closed the owner's remote queue first, so wakes that
    /// come later are dropped there.
    pub(crate) fn cancel_all(&self, queue: &LocalQueue) {
        loop {
            while let Some(ptr) = self.first() {
                // SAFETY: the list holds a reference; when `shutdown` claims the task
                // (every idle or queued one), completing it releases that reference.
                let claimed = unsafe { (ptr.as_ref().vtable.shutdown)(ptr) };
                // Not claimed means complete (completion releases, so it cannot be on
                // the list unless its release found no owner: a completion during
                // thread-local destruction) or running (nothing runs during
                // shutdown): unlink anyway.
                // SAFETY: owner thread; the list's reference is dropped after.
                if !claimed && unsafe { self.remove(ptr) } {
                    // SAFETY: the list's reference, just unlinked.
                    unsafe { header::drop_reference(ptr) };
                }
            }
            // Queued entries: bound tasks are complete now; unbound ones (spawned from
            // elsewhere, never run) are cancelled here.
            let mut queued = TaskList::default();
            while let Some(task) = queue.pop() {
                queued.push_back(task);
            }
            if queued.is_empty() && self.first().is_none() {
                break;
            }
            while let Some(task) = queued.pop_front() {
                cancel_unbound(task);
            }
        }
    }
}

/// Cancels a task that was never bound to a worker (its spawn was refused, or it was
/// still queued at shutdown), then drops the entry. Bound tasks are left alone: their
/// owner cancels them.
pub(crate) fn cancel_unbound(task: Notified) {
    let ptr = task.as_ptr();
    // SAFETY: the entry keeps the task live.
    let header = unsafe { ptr.as_ref() };
    // SAFETY: an unbound task's owner-thread fields belong to whoever holds its only
    // queue entry, which is us.
    let bound = unsafe { header.bound.read() };
    // SAFETY: we hold a reference; `shutdown` claims and cancels the task, and
    // `complete` finds it unbound, so the owner-list reference stays: drop it after.
    if !bound && unsafe { (header.vtable.shutdown)(ptr) } {
        // SAFETY: the owner-list reference of a task no list will ever hold.
        unsafe { header::drop_reference(ptr) };
    }
    drop(task);
}
