//! The ready list: an intrusive FIFO of item slots (the kernel's `ep->rdllist`).
//!
//! Links live inside the items themselves ([`Link`]), so appending and unlinking are
//! O(1) and allocate nothing. Each item also carries an on-list flag (the kernel tests
//! `ep_is_linked(epi)`); [`ReadyList::push_back`] refuses an item that is already on a
//! list, so an item is never linked twice and keeps its place when it becomes ready
//! again, which is what gives the kernel's round-robin order.
//!
//! The list does not own the items: it reaches them through a [`Nodes`] store (the
//! interest tree's slab in the eventpoll, a plain `Vec` in tests).

use super::rbtree::NIL;
use crate::loom::planted_bug;

/// Intrusive list links of one item. Meaningful only while the item is on a list.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Link {
    prev: u32,
    next: u32,
}

impl Default for Link {
    fn default() -> Self {
        Link {
            prev: NIL,
            next: NIL,
        }
    }
}

/// Something that can be on a ready list.
pub(crate) trait ListNode {
    fn link(&mut self) -> &mut Link;
    fn is_linked(&self) -> bool;
    fn set_linked(&mut self, linked: bool);
}

/// Where the list finds its nodes by slot.
pub(crate) trait Nodes {
    type Node: ListNode;
    /// The node in `slot`. Slots handed to a list must stay occupied while linked.
    fn node_mut(&mut self, slot: u32) -> &mut Self::Node;
}

/// A FIFO of slots with O(1) append, pop and unlink.
#[derive(Debug)]
pub(crate) struct ReadyList {
    head: u32,
    tail: u32,
    len: usize,
}

impl Default for ReadyList {
    fn default() -> Self {
        Self::new()
    }
}

impl ReadyList {
    pub(crate) const fn new() -> ReadyList {
        ReadyList {
            head: NIL,
            tail: NIL,
            len: 0,
        }
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.head == NIL
    }

    #[cfg(test)]
    pub(crate) fn len(&self) -> usize {
        self.len
    }

    /// Panics unless the list is well formed: walking from the head reaches the tail in
    /// `len` steps (so no item is on it twice), every item on it is flagged linked and
    /// its `prev` link names the item before it. `slots` bounds the walk (the number of
    /// items that could be on it). For the loom models.
    #[cfg(all(test, epitome_loom))]
    pub(crate) fn check<S: Nodes>(&self, nodes: &mut S, slots: usize) {
        let mut prev = NIL;
        let mut cur = self.head;
        let mut count = 0;
        while cur != NIL {
            count += 1;
            assert!(
                count <= self.len && count <= slots,
                "ready list: a cycle (an item linked twice)"
            );
            let node = nodes.node_mut(cur);
            assert!(
                node.is_linked(),
                "ready list: item {cur} on it but not flagged"
            );
            let link = *node.link();
            assert_eq!(link.prev, prev, "ready list: broken prev link at {cur}");
            prev = cur;
            cur = link.next;
        }
        assert_eq!(self.tail, prev, "ready list: tail is not the last item");
        assert_eq!(
            count, self.len,
            "ready list: length disagrees with the links"
        );
    }

    pub(crate) fn front(&self) -> Option<u32> {
        (self.head != NIL).then_some(self.head)
    }

    /// Appends `slot` at the tail unless it is already linked (the kernel's
    /// `if (!ep_is_linked(epi)) list_add_tail(...)`). Returns whether it was appended.
    pub(crate) fn push_back<S: Nodes>(&mut self, nodes: &mut S, slot: u32) -> bool {
        let node = nodes.node_mut(slot);
        // Planted bug: link an item that is already linked.
        let linked = planted_bug!("ready_double_link", bug: false, code: node.is_linked());
        if linked {
            return false;
        }
        node.set_linked(true);
        *node.link() = Link {
            prev: self.tail,
            next: NIL,
        };
        if self.tail == NIL {
            self.head = slot;
        } else {
            nodes.node_mut(self.tail).link().next = slot;
        }
        self.tail = slot;
        self.len += 1;
        true
    }

    /// Takes the head off the list.
    pub(crate) fn pop_front<S: Nodes>(&mut self, nodes: &mut S) -> Option<u32> {
        let slot = self.front()?;
        self.unlink(nodes, slot);
        Some(slot)
    }

    /// Takes `slot` off this list (the kernel's `list_del_init`).
    ///
    /// The caller guarantees that `slot`, if linked, is linked on *this* list.
    /// Returns whether it was linked.
    pub(crate) fn unlink<S: Nodes>(&mut self, nodes: &mut S, slot: u32) -> bool {
        let node = nodes.node_mut(slot);
        if !node.is_linked() {
            return false;
        }
        node.set_linked(false);
        let Link { prev, next } = std::mem::take(node.link());
        if prev == NIL {
            self.head = next;
        } else {
            nodes.node_mut(prev).link().next = next;
        }
        if next == NIL {
            self.tail = prev;
        } else {
            nodes.node_mut(next).link().prev = prev;
        }
        self.len -= 1;
        true
    }

    /// Moves every item of `other` to the tail of `self`, keeping order (the kernel's
    /// `list_splice_tail_init`). O(1).
    #[inline]
    pub(crate) fn append<S: Nodes>(&mut self, nodes: &mut S, other: &mut ReadyList) {
        if other.is_empty() {
            return;
        }
        if self.is_empty() {
            *self = std::mem::take(other);
            return;
        }
        nodes.node_mut(self.tail).link().next = other.head;
        nodes.node_mut(other.head).link().prev = self.tail;
        self.tail = other.tail;
        self.len += other.len;
        *other = ReadyList::new();
    }

    /// The slot after `slot` on its list.
    pub(crate) fn next<S: Nodes>(nodes: &mut S, slot: u32) -> Option<u32> {
        let next = nodes.node_mut(slot).link().next;
        (next != NIL).then_some(next)
    }
}

// Plain data, no loom primitive: the same tests in both builds (the loom build is the
// mutation tests' first pass).
#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::VecDeque;

    #[derive(Default)]
    struct TestNode {
        link: Link,
        linked: bool,
    }
    impl ListNode for TestNode {
        fn link(&mut self) -> &mut Link {
            &mut self.link
        }
        fn is_linked(&self) -> bool {
            self.linked
        }
        fn set_linked(&mut self, linked: bool) {
            self.linked = linked;
        }
    }
    struct Store(Vec<TestNode>);
    impl Nodes for Store {
        type Node = TestNode;
        fn node_mut(&mut self, slot: u32) -> &mut TestNode {
            &mut self.0[slot as usize]
        }
    }

    fn contents(list: &ReadyList, store: &mut Store) -> Vec<u32> {
        let mut out = Vec::new();
        let mut cur = list.front();
        while let Some(s) = cur {
            out.push(s);
            cur = ReadyList::next(store, s);
        }
        // Walk backwards too, so prev links are checked.
        let mut back = Vec::new();
        let mut cur = list.tail;
        while cur != NIL {
            back.push(cur);
            cur = store.node_mut(cur).link().prev;
        }
        back.reverse();
        assert_eq!(out, back);
        assert_eq!(out.len(), list.len());
        out
    }

    #[test]
    fn fifo_against_vecdeque() {
        const N: u32 = 64;
        let mut store = Store((0..N).map(|_| TestNode::default()).collect());
        let mut list = ReadyList::new();
        let mut model: VecDeque<u32> = VecDeque::new();
        let mut x: u64 = 0x2545_F491_4F6C_DD1D;
        for _ in 0..200_000 {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            let slot = (x % N as u64) as u32;
            match (x >> 32) % 4 {
                0 | 1 => {
                    let appended = list.push_back(&mut store, slot);
                    assert_eq!(appended, !model.contains(&slot));
                    if appended {
                        model.push_back(slot);
                    }
                }
                2 => assert_eq!(list.pop_front(&mut store), model.pop_front()),
                _ => {
                    let pos = model.iter().position(|&s| s == slot);
                    assert_eq!(list.unlink(&mut store, slot), pos.is_some());
                    if let Some(p) = pos {
                        model.remove(p);
                    }
                }
            }
            assert_eq!(list.len(), model.len());
            assert_eq!(list.front(), model.front().copied());
        }
        assert_eq!(
            contents(&list, &mut store),
            model.iter().copied().collect::<Vec<_>>()
        );
    }

    #[test]
    fn append_splices_in_order() {
        let mut store = Store((0..8).map(|_| TestNode::default()).collect());
        let mut a = ReadyList::new();
        let mut b = ReadyList::new();
        for s in [0, 1, 2] {
            a.push_back(&mut store, s);
        }
        for s in [5, 6] {
            b.push_back(&mut store, s);
        }
        a.append(&mut store, &mut b);
        assert!(b.is_empty());
        assert_eq!(contents(&a, &mut store), [0, 1, 2, 5, 6]);
        let mut empty = ReadyList::new();
        empty.append(&mut store, &mut a);
        assert_eq!(contents(&empty, &mut store), [0, 1, 2, 5, 6]);
        // A linked node cannot be pushed again, whichever list holds it.
        assert!(!b.push_back(&mut store, 5));
    }
}
