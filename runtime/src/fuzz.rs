#![allow(missing_docs)]

//! The data structures the fuzz targets in `fuzz/` drive, wrapped so they are reachable
//! only under `--cfg fuzzing` (which cargo-fuzz sets). Not API.

use std::os::fd::RawFd;
use std::time::Instant;

use crate::eventpoll::rbtree;
use crate::eventpoll::ready_list::{self, Link, ListNode, Nodes};
use crate::time::wheel;

/// The interest tree (red-black, keyed by fd).
pub struct InterestTree<V>(rbtree::InterestTree<V>);

impl<V> Default for InterestTree<V> {
    fn default() -> Self {
        Self::new()
    }
}

impl<V> InterestTree<V> {
    pub fn new() -> Self {
        InterestTree(rbtree::InterestTree::new())
    }
    pub fn insert(&mut self, key: RawFd, value: V) -> Result<u32, V> {
        self.0.insert(key, value)
    }
    pub fn remove(&mut self, slot: u32) -> V {
        self.0.remove(slot)
    }
    pub fn find(&self, key: RawFd) -> Option<u32> {
        self.0.find(key)
    }
    pub fn len(&self) -> usize {
        self.0.len()
    }
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
    pub fn for_each(&self, f: impl FnMut(RawFd, u32)) {
        self.0.for_each(f)
    }
    pub fn check_invariants(&self) -> Result<usize, String> {
        self.0.check_invariants()
    }
}

/// A node of [`ListStore`].
#[derive(Default)]
pub struct ListNodeSlot {
    link: Link,
    linked: bool,
}

impl ListNode for ListNodeSlot {
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

/// Nodes for ready lists, by slot.
pub struct ListStore(Vec<ListNodeSlot>);

impl ListStore {
    pub fn new(slots: usize) -> Self {
        ListStore((0..slots).map(|_| ListNodeSlot::default()).collect())
    }
}

impl Nodes for ListStore {
    type Node = ListNodeSlot;
    fn node_mut(&mut self, slot: u32) -> &mut ListNodeSlot {
        &mut self.0[slot as usize]
    }
}

/// The ready list (intrusive FIFO with an on-list flag).
#[derive(Default)]
pub struct ReadyList(ready_list::ReadyList);

impl ReadyList {
    pub fn new() -> Self {
        ReadyList(ready_list::ReadyList::new())
    }
    pub fn push_back(&mut self, store: &mut ListStore, slot: u32) -> bool {
        self.0.push_back(store, slot)
    }
    pub fn pop_front(&mut self, store: &mut ListStore) -> Option<u32> {
        self.0.pop_front(store)
    }
    pub fn unlink(&mut self, store: &mut ListStore, slot: u32) -> bool {
        self.0.unlink(store, slot)
    }
    pub fn append(&mut self, store: &mut ListStore, other: &mut ReadyList) {
        self.0.append(store, &mut other.0)
    }
    pub fn front(&self) -> Option<u32> {
        self.0.front()
    }
}

/// Names one entry of a [`Wheel`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TimerKey(wheel::TimerKey);

/// The hierarchical timing wheel.
pub struct Wheel<T>(wheel::Wheel<T>);

impl<T> Wheel<T> {
    pub fn new(origin: Instant) -> Self {
        Wheel(wheel::Wheel::new(origin))
    }
    pub fn insert(&mut self, deadline: Instant, value: T) -> TimerKey {
        TimerKey(self.0.insert(deadline, value))
    }
    pub fn remove(&mut self, key: TimerKey) -> Option<T> {
        self.0.remove(key.0)
    }
    pub fn reset(&mut self, key: TimerKey, deadline: Instant) -> bool {
        self.0.reset(key.0, deadline)
    }
    pub fn next_wake(&self) -> Option<Instant> {
        self.0.next_wake()
    }
    pub fn process(&mut self, now: Instant, mut fire: impl FnMut(TimerKey, T)) {
        self.0.process(now, |key, value| fire(TimerKey(key), value))
    }
    pub fn len(&self) -> usize {
        self.0.len()
    }
    pub fn is_empty(&self) -> bool {
        self.0.len() == 0
    }
}
