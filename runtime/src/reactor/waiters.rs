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

// The list on its own (no source, no event): both builds (in the loom build each is a
// one-thread model, its nodes' cells loom's).
#[cfg(test)]
mod tests {
    use super::*;
    use crate::loom::os::sync::Arc;
    use crate::loom::os::sync::atomic::{AtomicUsize, Ordering};
    use std::task::Wake;

    /// A waker that counts its wakes, tagged with the number of its node.
    struct Tag(usize, AtomicUsize);
    impl Wake for Tag {
        fn wake(self: Arc<Self>) {
            self.1.fetch_add(1, Ordering::SeqCst);
        }
    }

    fn tag(n: usize) -> (Arc<Tag>, Waker) {
        let t = Arc::new(Tag(n, AtomicUsize::new(0)));
        (t.clone(), Waker::from(t))
    }

    /// A node of `dir` holding a waker tagged `n`.
    fn node(dir: Direction, exclusive: bool, n: usize) -> (WaiterNode, Arc<Tag>) {
        let node = WaiterNode::new(dir, exclusive);
        let (t, waker) = tag(n);
        // SAFETY: the node is the test's own; no list holds it yet.
        unsafe { node.with(|n| n.waker = Some(waker)) };
        (node, t)
    }

    /// Links `nodes` in order, as `poll_waiter` links a waiting node.
    fn link(w: &mut Waiters, nodes: &[&WaiterNode]) {
        for n in nodes {
            // SAFETY: the nodes live for the whole test, are on no list, and the test
            // has the list to itself (it stands for the source's mutex).
            unsafe {
                n.with(|n| n.state = NodeState::Waiting);
                w.push_back(NonNull::from(*n));
            }
        }
    }

    fn state(node: &WaiterNode) -> NodeState {
        // SAFETY: the test has the list to itself.
        unsafe { node.with(|n| n.state) }
    }

    /// Wakes `wakers`; returns the tags (among `tags`) that woke, each once, in order.
    fn woken(wakers: Vec<Waker>, tags: &[&Arc<Tag>]) -> Vec<usize> {
        wakers.into_iter().for_each(Waker::wake);
        let mut woken = Vec::new();
        for t in tags {
            match t.1.swap(0, Ordering::SeqCst) {
                0 => {}
                1 => woken.push(t.0),
                n => panic!("waker {} woken {n} times", t.0),
            }
        }
        woken
    }

    #[test]
    fn an_event_wakes_its_directions_shared_nodes_and_first_exclusive_one() {
        crate::loom::unit_test(|| {
            let mut w = Waiters::default();
            let (a, ta) = node(Direction::Write, true, 0);
            let (b, tb) = node(Direction::Read, false, 1);
            let (c, tc) = node(Direction::Read, true, 2);
            let (d, td) = node(Direction::Read, true, 3);
            let (e, te) = node(Direction::Read, false, 4);
            link(&mut w, &[&a, &b, &c, &d, &e]);
            let all = [&ta, &tb, &tc, &td, &te];
            assert!(w.has(Direction::Read) && w.has(Direction::Write));
            assert!(w.has_exclusive(Direction::Read) && w.has_exclusive(Direction::Write));
            // Counted apart from wakers collected before (another source's, say).
            let (other, other_waker) = tag(9);
            let mut wake = vec![other_waker];
            assert_eq!(w.wake_direction(Direction::Read, &mut wake), 3);
            assert_eq!(
                woken(wake, &[&other, &ta, &tb, &tc, &td, &te]),
                [9, 1, 2, 4]
            );
            assert_eq!(state(&b), NodeState::Notified);
            assert_eq!(state(&c), NodeState::Notified);
            assert_eq!(state(&d), NodeState::Waiting);
            // The second exclusive reader is next; the writer is untouched.
            assert!(w.has(Direction::Read) && w.has_exclusive(Direction::Read));
            let mut wake = Vec::new();
            assert_eq!(w.wake_direction(Direction::Read, &mut wake), 1);
            assert_eq!(woken(wake, &all), [3]);
            assert!(!w.has(Direction::Read) && !w.has_exclusive(Direction::Read));
            let mut wake = Vec::new();
            assert_eq!(w.wake_direction(Direction::Read, &mut wake), 0);
            assert!(wake.is_empty());
            assert!(w.has(Direction::Write));
            assert_eq!(w.wake_direction(Direction::Write, &mut wake), 1);
            assert_eq!(woken(wake, &all), [0]);
            assert!(!w.has(Direction::Write) && !w.has_exclusive(Direction::Write));
        });
    }

    #[test]
    fn shared_nodes_alone_have_no_exclusive_waiter() {
        crate::loom::unit_test(|| {
            let mut w = Waiters::default();
            let (a, ta) = node(Direction::Read, false, 0);
            let (b, tb) = node(Direction::Write, true, 1);
            link(&mut w, &[&a, &b]);
            assert!(w.has(Direction::Read));
            assert!(!w.has_exclusive(Direction::Read));
            assert!(w.notify_first_exclusive(Direction::Read).is_none());
            assert_eq!(state(&a), NodeState::Waiting);
            let mut wake = Vec::new();
            w.wake_all(&mut wake);
            assert_eq!(woken(wake, &[&ta, &tb]), [0, 1]);
        });
    }

    #[test]
    fn the_baton_goes_to_the_first_exclusive_node_of_its_direction() {
        crate::loom::unit_test(|| {
            let mut w = Waiters::default();
            let (a, ta) = node(Direction::Read, false, 0);
            let (b, tb) = node(Direction::Write, true, 1);
            let (c, tc) = node(Direction::Read, true, 2);
            let (d, td) = node(Direction::Read, true, 3);
            link(&mut w, &[&a, &b, &c, &d]);
            let all = [&ta, &tb, &tc, &td];
            let first = w.notify_first_exclusive(Direction::Read);
            assert_eq!(woken(first.into_iter().collect(), &all), [2]);
            assert_eq!(state(&c), NodeState::Notified);
            assert_eq!(state(&a), NodeState::Waiting);
            let next = w.notify_first_exclusive(Direction::Read);
            assert_eq!(woken(next.into_iter().collect(), &all), [3]);
            assert!(w.notify_first_exclusive(Direction::Read).is_none());
            // The others are still linked, in order.
            let mut wake = Vec::new();
            w.wake_all(&mut wake);
            assert_eq!(woken(wake, &all), [0, 1]);
        });
    }

    #[test]
    fn fast_path_wakers_wait_by_direction_and_wake_with_it() {
        crate::loom::unit_test(|| {
            let mut w = Waiters::default();
            assert!(!w.has(Direction::Read) && !w.has(Direction::Write));
            let (r, rw) = tag(0);
            let (x, xw) = tag(1);
            w.wakers(Direction::Read).push(rw);
            assert!(w.has(Direction::Read));
            assert!(!w.has(Direction::Write), "a read waker counted for writes");
            assert!(!w.has_exclusive(Direction::Read));
            w.wakers(Direction::Write).push(xw);
            let mut wake = Vec::new();
            assert_eq!(w.wake_direction(Direction::Read, &mut wake), 1);
            assert_eq!(woken(wake, &[&r, &x]), [0]);
            assert!(!w.has(Direction::Read) && w.has(Direction::Write));
            let mut wake = Vec::new();
            w.wake_all(&mut wake);
            assert_eq!(woken(wake, &[&r, &x]), [1]);
            assert!(!w.has(Direction::Write));
        });
    }

    #[test]
    fn wake_all_takes_every_node_and_waker_off_the_list() {
        crate::loom::unit_test(|| {
            let mut w = Waiters::default();
            let (a, ta) = node(Direction::Read, true, 0);
            let (b, tb) = node(Direction::Read, true, 1);
            let (c, tc) = node(Direction::Write, false, 2);
            link(&mut w, &[&a, &b, &c]);
            let (r, rw) = tag(3);
            let (x, xw) = tag(4);
            w.wakers(Direction::Read).push(rw);
            w.wakers(Direction::Write).push(xw);
            let mut wake = Vec::new();
            w.wake_all(&mut wake);
            assert_eq!(woken(wake, &[&ta, &tb, &tc, &r, &x]), [0, 1, 2, 3, 4]);
            for n in [&a, &b, &c] {
                assert_eq!(state(n), NodeState::Notified);
            }
            assert!(!w.has(Direction::Read) && !w.has(Direction::Write));
            assert!(w.head.is_none() && w.tail.is_none());
        });
    }

    #[test]
    fn unlinking_any_node_keeps_the_rest_in_order() {
        crate::loom::unit_test(|| {
            for gone in 0..3 {
                let mut w = Waiters::default();
                let made: Vec<_> = (0..4).map(|n| node(Direction::Read, false, n)).collect();
                let nodes: Vec<&WaiterNode> = made.iter().map(|(n, _)| n).collect();
                let tags: Vec<&Arc<Tag>> = made.iter().map(|(_, t)| t).collect();
                link(&mut w, &nodes[..3]);
                // SAFETY: linked just above; the list is the test's.
                unsafe { w.unlink(NonNull::from(nodes[gone])) };
                // A node linked after the unlink goes to the tail.
                link(&mut w, &nodes[3..]);
                let mut wake = Vec::new();
                assert_eq!(w.wake_direction(Direction::Read, &mut wake), 3);
                let expected: Vec<usize> = (0..4).filter(|&n| n != gone).collect();
                assert_eq!(woken(wake, &tags), expected, "unlinked node {gone}");
                assert!(w.head.is_none() && w.tail.is_none());
            }
        });
    }
}
