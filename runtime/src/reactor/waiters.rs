//! What a source's mutex guards: the waiter nodes of `readable()` / `writable()`
//! futures (an intrusive FIFO, no allocation per wait) and the wakers of tasks that
//! poll a direction's fast path while another task's waker holds its slot.
//!
//! Every field of a waiter node (its links, state and waker) is guarded by the mutex of
//! the source it waits on, and is reached only through [`WaiterNode::with`], one short
//! access at a time (the node's cell is the `crate::loom` shim's, so the loom models
//! check that rule).

use std::marker::PhantomPinned;
use std::ptr::NonNull;
use std::task::Waker;

use crate::loom::cell::UnsafeCell;
use crate::loom::planted_bug;

/// A direction of readiness.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Direction {
    Read,
    Write,
}

/// Everything guarded by the source's mutex.
#[derive(Default)]
pub(crate) struct Waiters {
    /// Fast-path wakers that found another task's waker in the direction's slot, by
    /// direction. Boxed, and made on first need: most sources never have two tasks on
    /// one direction, and two empty `Vec`s in every source would cost 40 bytes more
    /// per connection.
    overflow: Option<Box<[Vec<Waker>; 2]>>,
    /// Intrusive FIFO of waiter nodes.
    head: Option<NonNull<WaiterNode>>,
    tail: Option<NonNull<WaiterNode>>,
}

// SAFETY: the node pointers are only followed under the source's mutex, and a node
// unlinks itself (under the mutex) before its memory goes away.
unsafe impl Send for Waiters {}

/// A waiting future's node. Its fields are guarded by the source's mutex (the future
/// itself only reads them while holding it), and reached only through
/// [`WaiterNode::with`], one short access at a time.
pub(crate) struct WaiterNode {
    inner: UnsafeCell<NodeInner>,
    _pinned: PhantomPinned,
}

pub(crate) struct NodeInner {
    pub(crate) direction: Direction,
    pub(crate) exclusive: bool,
    pub(crate) waker: Option<Waker>,
    pub(crate) state: NodeState,
    prev: Option<NonNull<WaiterNode>>,
    next: Option<NonNull<WaiterNode>>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum NodeState {
    /// Not on the list, never notified.
    Idle,
    /// On the list.
    Waiting,
    /// Taken off the list by an event; its owner has the wakeup.
    Notified,
}

// SAFETY: the node is touched only under the source's mutex.
unsafe impl Send for WaiterNode {}
// SAFETY: as above.
unsafe impl Sync for WaiterNode {}

impl WaiterNode {
    pub(crate) fn new(direction: Direction, exclusive: bool) -> WaiterNode {
        WaiterNode {
            inner: UnsafeCell::new(NodeInner {
                direction,
                exclusive,
                waker: None,
                state: NodeState::Idle,
                prev: None,
                next: None,
            }),
            _pinned: PhantomPinned,
        }
    }

    /// Runs `f` on the node's fields. Accesses never nest: `f` touches no other node.
    ///
    /// # Safety
    /// The node is live and the caller holds the mutex of the source it is polled on.
    pub(crate) unsafe fn with<R>(&self, f: impl FnOnce(&mut NodeInner) -> R) -> R {
        // SAFETY: per the caller, the mutex gives exclusive access to the fields.
        self.inner.with_mut(|p| f(unsafe { &mut *p }))
    }
}

/// [`WaiterNode::with`] through a list link.
///
/// # Safety
/// As for [`WaiterNode::with`].
unsafe fn with_node<R>(node: NonNull<WaiterNode>, f: impl FnOnce(&mut NodeInner) -> R) -> R {
    // SAFETY: per the caller, the node is live and guarded by the held mutex.
    unsafe { node.as_ref().with(f) }
}

impl Waiters {
    /// The fast-path wakers of `dir` kept here (making room for them on first need).
    pub(crate) fn wakers(&mut self, dir: Direction) -> &mut Vec<Waker> {
        &mut self.overflow.get_or_insert_with(Box::default)[dir as usize]
    }

    /// Whether a fast-path waker of `dir` is kept here.
    fn has_wakers(&self, dir: Direction) -> bool {
        self.overflow
            .as_ref()
            .is_some_and(|o| !o[dir as usize].is_empty())
    }

    /// Whether anything here waits for `dir`.
    pub(crate) fn has(&mut self, dir: Direction) -> bool {
        // Planted bug: a direction with nodes but no fast-path waker counts as empty, so
        // its LIST bit is cleared under a waiting node.
        planted_bug!(
            "list_cleared_under_a_node",
            bug: self.has_wakers(dir) && self.first_node(dir, false).is_some(),
            code: self.has_wakers(dir) || self.first_node(dir, false).is_some(),
        )
    }

    /// The first node waiting for `dir` (an exclusive one, if `exclusive`).
    fn first_node(&self, dir: Direction, exclusive: bool) -> Option<NonNull<WaiterNode>> {
        let mut cur = self.head;
        while let Some(node) = cur {
            // SAFETY: nodes on the list are live (they unlink before going away) and
            // guarded by the mutex the caller holds.
            let (next, direction, is_exclusive) =
                unsafe { with_node(node, |n| (n.next, n.direction, n.exclusive)) };
            if direction == dir && (is_exclusive || !exclusive) {
                return Some(node);
            }
            cur = next;
        }
        None
    }

    /// Whether an exclusive node waits for `dir`.
    pub(crate) fn has_exclusive(&self, dir: Direction) -> bool {
        self.first_node(dir, true).is_some()
    }

    /// Wakes what waits for `dir` (an event): every fast-path waker and non-exclusive
    /// node, and the first exclusive node. Returns how many it woke.
    pub(crate) fn wake_direction(&mut self, dir: Direction, wake: &mut Vec<Waker>) -> usize {
        let before = wake.len();
        if let Some(overflow) = &mut self.overflow {
            wake.append(&mut overflow[dir as usize]);
        }
        let mut exclusive_woken = false;
        let mut cur = self.head;
        while let Some(node) = cur {
            // SAFETY: as in `first_node`.
            let (next, direction, exclusive) =
                unsafe { with_node(node, |n| (n.next, n.direction, n.exclusive)) };
            cur = next;
            if direction != dir {
                continue;
            }
            if exclusive {
                // Planted bug: wake every exclusive waiter.
                let one = planted_bug!("wake_all_exclusive", bug: false, code: true);
                if exclusive_woken && one {
                    continue;
                }
                exclusive_woken = true;
            }
            // SAFETY: live and on the list, ours to notify, under the mutex.
            if let Some(w) = unsafe { self.notify(node) } {
                wake.push(w);
            }
        }
        wake.len() - before
    }

    /// Notifies the first exclusive waiter of `dir` (baton passing).
    pub(crate) fn notify_first_exclusive(&mut self, dir: Direction) -> Option<Waker> {
        let node = self.first_node(dir, true)?;
        // SAFETY: live and on the list, ours to notify, under the mutex.
        unsafe { self.notify(node) }
    }

    /// Wakes everything (deregistration or shutdown: their next poll finds out).
    pub(crate) fn wake_all(&mut self, wake: &mut Vec<Waker>) {
        if let Some(overflow) = &mut self.overflow {
            for wakers in overflow.iter_mut() {
                wake.append(wakers);
            }
        }
        while let Some(node) = self.head {
            // SAFETY: the head is live and on the list, under the mutex.
            if let Some(w) = unsafe { self.notify(node) } {
                wake.push(w);
            }
        }
    }

    /// Takes `node` off the list as notified; returns its waker.
    ///
    /// # Safety
    /// `node` is live and on the list, under the mutex the caller holds.
    unsafe fn notify(&mut self, node: NonNull<WaiterNode>) -> Option<Waker> {
        // SAFETY: per the caller.
        unsafe {
            self.unlink(node);
            with_node(node, |n| {
                n.state = NodeState::Notified;
                n.waker.take()
            })
        }
    }

    /// # Safety
    /// `node` is live, not on the list, and guarded by the mutex the caller holds.
    pub(crate) unsafe fn push_back(&mut self, node: NonNull<WaiterNode>) {
        let tail = self.tail;
        // SAFETY: per the caller.
        unsafe {
            with_node(node, |n| {
                n.prev = tail;
                n.next = None;
            })
        };
        match tail {
            // SAFETY: the tail is a live node on the list.
            Some(t) => unsafe { with_node(t, |n| n.next = Some(node)) },
            None => self.head = Some(node),
        }
        self.tail = Some(node);
    }

    /// # Safety
    /// `node` is live and on the list, under the mutex the caller holds.
    pub(crate) unsafe fn unlink(&mut self, node: NonNull<WaiterNode>) {
        // SAFETY: per the caller.
        let (prev, next) = unsafe { with_node(node, |n| (n.prev, n.next)) };
        match prev {
            // SAFETY: neighbours on the list are live.
            Some(p) => unsafe { with_node(p, |n| n.next = next) },
            None => self.head = next,
        }
        match next {
            // SAFETY: as above.
            Some(x) => unsafe { with_node(x, |n| n.prev = prev) },
            None => self.tail = prev,
        }
        // SAFETY: per the caller.
        unsafe {
            with_node(node, |n| {
                n.prev = None;
                n.next = None;
            })
        };
    }
}
