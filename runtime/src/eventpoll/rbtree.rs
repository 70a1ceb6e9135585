//! The interest tree: a red-black tree keyed by fd, with its nodes in a slab.
//!
//! This is the kernel's `ep->rbr` (an `rb_root_cached` of `epitem`s keyed by
//! `(file, fd)`) and `epi_cache` (the slab the `epitem`s come from). Nodes live in a
//! [`slab::Slab`] and refer to each other by `u32` slot, so a node never moves, a
//! slot doubles as a stable handle for the ready list and for kernel event tokens, and
//! freeing a node is O(1) reuse of its slot.
//!
//! The tree's links and keys live apart from the values, 16 bytes a node, so a search
//! touches four nodes per cache line instead of one: the search is what every ctl
//! pays on top of the kernel's own, and at thousands of registrations it is all cache
//! misses.
//!
//! The algorithms are the textbook ones (CLRS chapter 13, as in the kernel's
//! `lib/rbtree.c`): insertion recolours up the tree and makes at most two rotations;
//! deletion makes at most three. Every path from a node to a leaf has the same number of
//! black nodes and no red node has a red child, so the height stays below
//! `2 * log2(n + 1)` and every operation is O(log n).

use std::os::fd::RawFd;

use slab::Slab;

/// The slot value that means "no node" (the kernel's NULL child pointer). Slots are
/// below it: 31 bits, the top bit of a node's parent link holds its colour.
pub(crate) const NIL: u32 = 0x7FFF_FFFF;

const RED: u32 = 1 << 31;

/// One node's place in the tree.
#[derive(Clone, Copy, Debug)]
struct Node {
    key: RawFd,
    /// Parent slot in the low 31 bits, [`RED`] in the top bit.
    parent_color: u32,
    left: u32,
    right: u32,
}

impl Node {
    fn parent(&self) -> u32 {
        self.parent_color & !RED
    }
    fn red(&self) -> bool {
        self.parent_color & RED != 0
    }
}

/// The bytes of one node's links and key (beside its value in the slab).
#[cfg(all(test, not(epitome_loom)))]
pub(crate) const NODE_BYTES: usize = std::mem::size_of::<Node>();

/// A red-black tree from fd to `V`, with stable `u32` slots.
#[derive(Debug)]
pub(crate) struct InterestTree<V> {
    /// The values, by slot; its free list decides slots.
    values: Slab<V>,
    /// The links and key of each occupied slot (entries of vacant slots are stale).
    nodes: Vec<Node>,
    root: u32,
}

/// What [`InterestTree::entry`] found.
pub(crate) enum Entry<'a, V> {
    /// The key's node, by slot.
    Occupied(u32),
    /// The key is absent; this is where it goes.
    Vacant(VacantEntry<'a, V>),
}

/// The place of an absent key: its parent-to-be and the side it hangs on.
pub(crate) struct VacantEntry<'a, V> {
    tree: &'a mut InterestTree<V>,
    key: RawFd,
    parent: u32,
    left: bool,
}

impl<V> VacantEntry<'_, V> {
    /// The slot [`insert`](Self::insert) will use.
    pub(crate) fn slot(&self) -> u32 {
        self.tree.values.vacant_key() as u32
    }

    /// Links a red node at the place, rebalances, and returns its slot.
    pub(crate) fn insert(self, value: V) -> u32 {
        let tree = self.tree;
        assert!(
            tree.values.vacant_key() < NIL as usize,
            "interest tree is limited to 2^31 - 1 nodes"
        );
        let slot = tree.values.insert(value);
        let node = Node {
            key: self.key,
            parent_color: self.parent | RED,
            left: NIL,
            right: NIL,
        };
        if slot == tree.nodes.len() {
            tree.nodes.push(node);
        } else {
            tree.nodes[slot] = node;
        }
        let slot = slot as u32;
        if self.parent == NIL {
            tree.root = slot;
        } else if self.left {
            tree.node_mut(self.parent).left = slot;
        } else {
            tree.node_mut(self.parent).right = slot;
        }
        tree.insert_fixup(slot);
        slot
    }
}

impl<V> Default for InterestTree<V> {
    fn default() -> Self {
        Self::new()
    }
}

impl<V> InterestTree<V> {
    pub(crate) fn new() -> InterestTree<V> {
        InterestTree {
            values: Slab::new(),
            nodes: Vec::new(),
            root: NIL,
        }
    }

    /// Number of nodes.
    pub(crate) fn len(&self) -> usize {
        self.values.len()
    }

    #[allow(dead_code)]
    pub(crate) fn is_empty(&self) -> bool {
        self.root == NIL
    }

    /// The slot holding `key` (the kernel's `ep_find`).
    pub(crate) fn find(&self, key: RawFd) -> Option<u32> {
        // Inlined, the unused place of an absent key costs nothing.
        self.search(key).ok()
    }

    /// The slot holding `key`, or the parent and side an absent key would hang from.
    #[inline(always)]
    fn search(&self, key: RawFd) -> Result<u32, (u32, bool)> {
        let nodes = self.nodes.as_slice();
        let mut parent = NIL;
        let mut left = false;
        let mut cur = self.root;
        // NIL is above every slot, so one bounds check both ends the walk at a leaf and
        // keeps the access in bounds: every search pays it once per level, and it is
        // the whole of what every ctl adds to the kernel's own lookup.
        while let Some(node) = nodes.get(cur as usize) {
            if key == node.key {
                return Ok(cur);
            }
            parent = cur;
            // A select rather than a three-way branch: the compiler can make it a
            // conditional move, and a search over shuffled fds would mispredict the
            // branch on about half the levels.
            left = key < node.key;
            cur = if left { node.left } else { node.right };
        }
        Err((parent, left))
    }

    /// The value in `slot`, if the slot is occupied.
    #[allow(dead_code)]
    pub(crate) fn get(&self, slot: u32) -> Option<&V> {
        self.values.get(slot as usize)
    }

    /// The value in `slot`, if the slot is occupied.
    pub(crate) fn get_mut(&mut self, slot: u32) -> Option<&mut V> {
        self.values.get_mut(slot as usize)
    }

    /// The value in `slot`.
    ///
    /// # Panics
    ///
    /// If `slot` is vacant. Callers pass slots they hold, so that would be a bug.
    pub(crate) fn value_mut(&mut self, slot: u32) -> &mut V {
        &mut self.values[slot as usize]
    }

    /// The key of the node in `slot`.
    pub(crate) fn key(&self, slot: u32) -> RawFd {
        self.node(slot).key
    }

    /// Inserts `key` (the kernel's `ep_rbtree_insert`). Returns the new node's slot, or
    /// gives `value` back if the key is already present. (The poller inserts through
    /// [`entry`](Self::entry); the property tests and the fuzz target use this.)
    #[allow(dead_code)]
    pub(crate) fn insert(&mut self, key: RawFd, value: V) -> Result<u32, V> {
        match self.entry(key) {
            Entry::Vacant(vacant) => Ok(vacant.insert(value)),
            Entry::Occupied(_) => Err(value),
        }
    }

    /// The node holding `key`, or the place where it would go. `EPOLL_CTL_ADD` looks
    /// the fd up (the kernel's `ep_find`) and then inserts it (`ep_rbtree_insert`,
    /// which walks the tree again); one walk serves both here. The entry borrows the
    /// tree, so the place cannot go stale before the insertion.
    pub(crate) fn entry(&mut self, key: RawFd) -> Entry<'_, V> {
        match self.search(key) {
            Ok(slot) => Entry::Occupied(slot),
            Err((parent, left)) => Entry::Vacant(VacantEntry {
                tree: self,
                key,
                parent,
                left,
            }),
        }
    }

    /// Removes the node in `slot` (the kernel's `rb_erase_cached` in `ep_remove`) and
    /// returns its value.
    ///
    /// # Panics
    ///
    /// If `slot` is not occupied: slots come from this tree, so that is a bug here.
    pub(crate) fn remove(&mut self, z: u32) -> V {
        let (zl, zr, zp, z_red) = {
            let n = self.node(z);
            (n.left, n.right, n.parent(), n.red())
        };
        let x;
        let x_parent;
        let removed_black;
        if zl == NIL {
            x = zr;
            x_parent = zp;
            removed_black = !z_red;
            self.transplant(z, zr);
        } else if zr == NIL {
            x = zl;
            x_parent = zp;
            removed_black = !z_red;
            self.transplant(z, zl);
        } else {
            // Two children: the in-order successor `y` takes z's place and colour.
            let y = self.minimum(zr);
            removed_black = !self.node(y).red();
            x = self.node(y).right;
            if self.node(y).parent() == z {
                x_parent = y;
            } else {
                x_parent = self.node(y).parent();
                self.transplant(y, x);
                self.node_mut(y).right = zr;
                self.set_parent(zr, y);
            }
            self.transplant(z, y);
            self.node_mut(y).left = zl;
            self.set_parent(zl, y);
            self.set_red(y, z_red);
        }
        if removed_black {
            self.delete_fixup(x, x_parent);
        }
        self.values.remove(z as usize)
    }

    /// Visits every (key, slot) in key order.
    #[allow(dead_code)]
    pub(crate) fn for_each(&self, mut f: impl FnMut(RawFd, u32)) {
        // Iterative in-order walk by parent links: no allocation, O(n).
        let mut cur = self.root;
        if cur == NIL {
            return;
        }
        cur = self.minimum(cur);
        while cur != NIL {
            f(self.node(cur).key, cur);
            cur = self.successor(cur);
        }
    }

    /// Checks every red-black and search-tree invariant; returns the black height.
    /// Used by the property tests and the fuzz target.
    #[allow(dead_code)]
    pub(crate) fn check_invariants(&self) -> Result<usize, String> {
        if self.root != NIL {
            if self.node(self.root).red() {
                return Err("root is red".into());
            }
            if self.node(self.root).parent() != NIL {
                return Err("root has a parent".into());
            }
        }
        let mut count = 0;
        let bh = self.check_subtree(self.root, None, None, &mut count)?;
        if count != self.values.len() {
            return Err(format!(
                "tree reaches {count} nodes but the slab holds {}",
                self.values.len()
            ));
        }
        Ok(bh)
    }

    fn check_subtree(
        &self,
        n: u32,
        lo: Option<RawFd>,
        hi: Option<RawFd>,
        count: &mut usize,
    ) -> Result<usize, String> {
        if n == NIL {
            return Ok(1);
        }
        *count += 1;
        let node = self.node(n);
        if lo.is_some_and(|lo| node.key <= lo) || hi.is_some_and(|hi| node.key >= hi) {
            return Err(format!("key {} out of search order", node.key));
        }
        for child in [node.left, node.right] {
            if child != NIL {
                if self.node(child).parent() != n {
                    return Err(format!("child of {} has a wrong parent link", node.key));
                }
                if node.red() && self.node(child).red() {
                    return Err(format!("red node {} has a red child", node.key));
                }
            }
        }
        let lh = self.check_subtree(node.left, lo, Some(node.key), count)?;
        let rh = self.check_subtree(node.right, Some(node.key), hi, count)?;
        if lh != rh {
            return Err(format!(
                "unequal black heights {lh} and {rh} under {}",
                node.key
            ));
        }
        Ok(lh + usize::from(!node.red()))
    }

    // ---- internals -------------------------------------------------------------

    fn node(&self, slot: u32) -> &Node {
        &self.nodes[slot as usize]
    }

    fn node_mut(&mut self, slot: u32) -> &mut Node {
        &mut self.nodes[slot as usize]
    }

    fn set_parent(&mut self, slot: u32, parent: u32) {
        let n = self.node_mut(slot);
        n.parent_color = (n.parent_color & RED) | parent;
    }

    fn set_red(&mut self, slot: u32, red: bool) {
        let n = self.node_mut(slot);
        n.parent_color = if red {
            n.parent_color | RED
        } else {
            n.parent_color & !RED
        };
    }

    fn is_red(&self, slot: u32) -> bool {
        slot != NIL && self.node(slot).red()
    }

    fn set_black(&mut self, slot: u32) {
        if slot != NIL {
            self.set_red(slot, false);
        }
    }

    fn minimum(&self, mut n: u32) -> u32 {
        while self.node(n).left != NIL {
            n = self.node(n).left;
        }
        n
    }

    fn successor(&self, mut n: u32) -> u32 {
        if self.node(n).right != NIL {
            return self.minimum(self.node(n).right);
        }
        let mut p = self.node(n).parent();
        while p != NIL && n == self.node(p).right {
            n = p;
            p = self.node(p).parent();
        }
        p
    }

    /// Puts `v` where `u` hangs from its parent.
    fn transplant(&mut self, u: u32, v: u32) {
        let p = self.node(u).parent();
        if p == NIL {
            self.root = v;
        } else if self.node(p).left == u {
            self.node_mut(p).left = v;
        } else {
            self.node_mut(p).right = v;
        }
        if v != NIL {
            self.set_parent(v, p);
        }
    }

    fn rotate_left(&mut self, x: u32) {
        let y = self.node(x).right;
        let yl = self.node(y).left;
        self.node_mut(x).right = yl;
        if yl != NIL {
            self.set_parent(yl, x);
        }
        self.transplant(x, y);
        self.node_mut(y).left = x;
        self.set_parent(x, y);
    }

    fn rotate_right(&mut self, x: u32) {
        let y = self.node(x).left;
        let yr = self.node(y).right;
        self.node_mut(x).left = yr;
        if yr != NIL {
            self.set_parent(yr, x);
        }
        self.transplant(x, y);
        self.node_mut(y).right = x;
        self.set_parent(x, y);
    }

    fn insert_fixup(&mut self, mut z: u32) {
        loop {
            let p = self.node(z).parent();
            if !self.is_red(p) {
                break;
            }
            // `p` is red, so it is not the root and has a parent.
            let g = self.node(p).parent();
            if p == self.node(g).left {
                let u = self.node(g).right;
                if self.is_red(u) {
                    self.set_red(p, false);
                    self.set_red(u, false);
                    self.set_red(g, true);
                    z = g;
                } else {
                    if z == self.node(p).right {
                        z = p;
                        self.rotate_left(z);
                    }
                    let p = self.node(z).parent();
                    let g = self.node(p).parent();
                    self.set_red(p, false);
                    self.set_red(g, true);
                    self.rotate_right(g);
                }
            } else {
                let u = self.node(g).left;
                if self.is_red(u) {
                    self.set_red(p, false);
                    self.set_red(u, false);
                    self.set_red(g, true);
                    z = g;
                } else {
                    if z == self.node(p).left {
                        z = p;
                        self.rotate_right(z);
                    }
                    let p = self.node(z).parent();
                    let g = self.node(p).parent();
                    self.set_red(p, false);
                    self.set_red(g, true);
                    self.rotate_left(g);
                }
            }
        }
        let root = self.root;
        self.set_black(root);
    }

    /// Restores the black height after a black node left the tree. `x` (possibly NIL)
    /// carries an extra black; `xp` is its parent, tracked separately because NIL has
    /// no parent link.
    fn delete_fixup(&mut self, mut x: u32, mut xp: u32) {
        while x != self.root && !self.is_red(x) {
            // A doubly black `x` always has a real sibling, so when `x` is NIL the
            // NIL child of `xp` is `x`'s side.
            if x == self.node(xp).left {
                let mut w = self.node(xp).right;
                if self.is_red(w) {
                    self.set_red(w, false);
                    self.set_red(xp, true);
                    self.rotate_left(xp);
                    w = self.node(xp).right;
                }
                if !self.is_red(self.node(w).left) && !self.is_red(self.node(w).right) {
                    self.set_red(w, true);
                    x = xp;
                    xp = self.node(x).parent();
                } else {
                    if !self.is_red(self.node(w).right) {
                        let wl = self.node(w).left;
                        self.set_black(wl);
                        self.set_red(w, true);
                        self.rotate_right(w);
                        w = self.node(xp).right;
                    }
                    let xp_red = self.node(xp).red();
                    self.set_red(w, xp_red);
                    self.set_red(xp, false);
                    let wr = self.node(w).right;
                    self.set_black(wr);
                    self.rotate_left(xp);
                    x = self.root;
                    xp = NIL;
                }
            } else {
                let mut w = self.node(xp).left;
                if self.is_red(w) {
                    self.set_red(w, false);
                    self.set_red(xp, true);
                    self.rotate_right(xp);
                    w = self.node(xp).left;
                }
                if !self.is_red(self.node(w).left) && !self.is_red(self.node(w).right) {
                    self.set_red(w, true);
                    x = xp;
                    xp = self.node(x).parent();
                } else {
                    if !self.is_red(self.node(w).left) {
                        let wr = self.node(w).right;
                        self.set_black(wr);
                        self.set_red(w, true);
                        self.rotate_left(w);
                        w = self.node(xp).left;
                    }
                    let xp_red = self.node(xp).red();
                    self.set_red(w, xp_red);
                    self.set_red(xp, false);
                    let wl = self.node(w).left;
                    self.set_black(wl);
                    self.rotate_right(xp);
                    x = self.root;
                    xp = NIL;
                }
            }
        }
        self.set_black(x);
    }
}

#[cfg(all(test, not(epitome_loom)))]
mod tests {
    use super::*;
    use std::collections::BTreeMap;

    /// SplitMix64: a tiny deterministic generator so every failure replays by seed.
    struct Rng(u64);
    impl Rng {
        fn next(&mut self) -> u64 {
            self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
            let mut z = self.0;
            z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
            z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
            z ^ (z >> 31)
        }
        fn below(&mut self, n: u64) -> u64 {
            self.next() % n
        }
    }

    fn check_against(tree: &InterestTree<u64>, model: &BTreeMap<RawFd, (u32, u64)>) {
        tree.check_invariants().unwrap();
        assert_eq!(tree.len(), model.len());
        let mut keys = Vec::new();
        tree.for_each(|k, slot| {
            assert_eq!(model[&k].0, slot);
            assert_eq!(*tree.get(slot).unwrap(), model[&k].1);
            keys.push(k);
        });
        assert!(keys.iter().copied().eq(model.keys().copied()));
    }

    /// Random insert / remove / find sequences against `BTreeMap`, checking every
    /// red-black invariant after every operation.
    fn property(seed: u64, ops: usize, key_space: u64) {
        let mut rng = Rng(seed);
        let mut tree = InterestTree::new();
        let mut model: BTreeMap<RawFd, (u32, u64)> = BTreeMap::new();
        for i in 0..ops {
            let key = rng.below(key_space) as RawFd;
            match rng.below(10) {
                0..=4 => {
                    let value = rng.next();
                    match tree.insert(key, value) {
                        Ok(slot) => assert!(model.insert(key, (slot, value)).is_none()),
                        Err(v) => {
                            assert_eq!(v, value);
                            assert!(model.contains_key(&key));
                        }
                    }
                }
                5..=7 => match model.remove(&key) {
                    Some((slot, value)) => {
                        assert_eq!(tree.find(key), Some(slot));
                        assert_eq!(tree.remove(slot), value);
                    }
                    None => assert_eq!(tree.find(key), None),
                },
                _ => assert_eq!(tree.find(key), model.get(&key).map(|e| e.0)),
            }
            tree.check_invariants()
                .unwrap_or_else(|e| panic!("seed {seed} op {i}: {e}"));
            assert_eq!(tree.len(), model.len());
        }
        check_against(&tree, &model);
        // Drain in random order so every deletion case runs down to the empty tree.
        let mut keys: Vec<RawFd> = model.keys().copied().collect();
        while !keys.is_empty() {
            let k = keys.swap_remove(rng.below(keys.len() as u64) as usize);
            let (slot, value) = model.remove(&k).unwrap();
            assert_eq!(tree.remove(slot), value);
            tree.check_invariants().unwrap();
        }
        assert!(tree.is_empty());
    }

    #[test]
    fn property_small_key_space() {
        // Many collisions: inserts of present keys and removes of absent ones.
        property(1, 120_000, 64);
    }

    #[test]
    fn property_medium_key_space() {
        for seed in 2..6 {
            property(seed, 100_000, 2_000);
        }
    }

    #[test]
    fn property_growing_then_shrinking() {
        // Sequential keys are the worst case for an unbalanced tree.
        let mut tree = InterestTree::new();
        for k in 0..20_000 {
            tree.insert(k, k as u64).unwrap();
        }
        let bh = tree.check_invariants().unwrap();
        // Black height bounds the height: h <= 2 * bh.
        assert!(bh <= 16, "black height {bh} too large for 20k nodes");
        for k in (0..20_000).step_by(2) {
            let slot = tree.find(k).unwrap();
            tree.remove(slot);
        }
        tree.check_invariants().unwrap();
        assert_eq!(tree.len(), 10_000);
        for k in (1..20_000).step_by(2) {
            assert!(tree.find(k).is_some());
        }
    }

    #[test]
    fn negative_and_extreme_keys() {
        let mut tree = InterestTree::new();
        for k in [i32::MIN, -1, 0, 1, i32::MAX] {
            tree.insert(k, 0u64).unwrap();
        }
        assert!(tree.insert(0, 1).is_err());
        let mut seen = Vec::new();
        tree.for_each(|k, _| seen.push(k));
        assert_eq!(seen, [i32::MIN, -1, 0, 1, i32::MAX]);
        tree.check_invariants().unwrap();
    }

    #[test]
    fn slots_are_stable_and_reused() {
        let mut tree = InterestTree::new();
        let a = tree.insert(10, 1u64).unwrap();
        let b = tree.insert(20, 2).unwrap();
        assert!(matches!(tree.entry(30), Entry::Vacant(v) if v.slot() == 2));
        assert!(matches!(tree.entry(20), Entry::Occupied(s) if s == b));
        tree.remove(a);
        assert!(matches!(tree.entry(10), Entry::Vacant(v) if v.slot() == a));
        assert_eq!(*tree.get(b).unwrap(), 2);
        assert!(tree.get(a).is_none());
        let c = tree.insert(5, 3).unwrap();
        assert_eq!(c, a);
    }
}
