//! A hierarchical timing wheel: O(1) insert, remove and reset, exact firing order.
//!
//! # Shape
//!
//! Time is counted in **ticks** of 1 µs since the wheel's `origin`. A deadline becomes
//! the tick it falls in, rounded *up* (`ceil((deadline - origin) / 1 µs)`), so an
//! entry's tick is never before its deadline. The wheel has [`LEVELS`] = 8 levels of
//! 64 slots. A slot of level `l` spans `64^l` ticks, so level 0 is 64 µs of 1 µs
//! slots, level 1 is 4 ms of 64 µs slots, ... and level 7 covers 2^48 µs, about 8.9
//! years. Each level keeps a `u64` occupancy bitmap, so finding the next non-empty
//! slot is one `trailing_zeros`.
//!
//! Where an entry goes is decided by `elapsed`, the tick the wheel has been processed
//! up to, exactly as in tokio's `runtime/time/wheel/mod.rs` (`level_for`): the level
//! is the highest base-64 digit in which the entry's tick differs from `elapsed`, and
//! the slot is the entry's digit at that level. So every entry in a level shares all
//! higher digits with `elapsed`, its own digit is greater than `elapsed`'s, and the
//! lowest non-empty level always holds the earliest entries. Entries whose tick
//! differs from `elapsed` above bit 48 (deadlines more than ~8.9 years out) go to an
//! **overflow** list, re-examined whenever `elapsed` crosses into the next 2^48-tick
//! block (the top level "wrapping"). Entries whose tick is not after `elapsed`
//! (deadlines already in the past, or within the current tick) go to the **due** list,
//! which the next [`Wheel::process`] looks at first.
//!
//! # Processing
//!
//! [`Wheel::process`] advances `elapsed` towards `now` one *occupied* slot at a time,
//! never stepping over empty ticks: the next slot is the first occupied slot of the
//! lowest non-empty level. Reaching a slot of level `l > 0` **cascades** it: its
//! entries are placed again relative to the new `elapsed`, which puts them in lower
//! levels (the old kernel wheel's `cascade()` in `kernel/time/timer.c`, and tokio's
//! `process_expiration`). Entries whose tick `elapsed` has reached (those of a
//! level-0 slot, and those of a cascaded slot that are due at its first tick) fire
//! instead. The due list fires before all of them. The entries of one tick are within
//! 1 µs of each other, and are fired sorted by exact deadline, then by insertion
//! order, so the whole run of fired entries is in deadline order. An entry fires only
//! if `deadline <= now` exactly: an entry in `now`'s own tick whose deadline is a
//! few nanoseconds after `now` moves to the due list instead.
//!
//! The kernel's current wheel (`kernel/time/timer.c` since 4.8: `calc_wheel_index`,
//! `pending_map`, `next_pending_bucket`) gave cascading up: an entry stays in the slot
//! it was put in and fires at that slot's granularity, up to 12.5 % late. That suits
//! kernel timeouts that are usually cancelled; an async runtime's sleeps usually
//! expire, and are expected to expire on time, so this wheel cascades like tokio and
//! the kernel's pre-4.8 wheel, paying at most one move per level per entry.
//!
//! # Storage
//!
//! Entries live in a [`slab::Slab`]. Each slot, the due list and the overflow list is
//! an intrusive doubly-linked list threaded through the entries by `u32` slab index
//! (the kernel's `hlist` through `timer_list`), and every entry records which list it
//! is on, so insert, remove and reset are O(1) and allocate nothing once the slab has
//! grown. A [`TimerKey`] is the slab index plus the generation the entry was given at
//! insertion (from a 64-bit counter that never repeats), so a key that outlived its
//! entry never touches the entry that reused the slot.
//!
//! # `next_wake`
//!
//! [`Wheel::next_wake`] answers from the due list's minimum, else the first occupied
//! slot of the lowest non-empty level, else the start of the next 2^48-tick block if
//! the overflow list is non-empty: a few bit operations per level. It is the first
//! instant that rounds up to that slot's first tick, so it is never after any
//! deadline in the wheel, and processing at it always makes progress: after
//! `process(now)`, `next_wake()` is `None` or later than `now`.

use crate::loom::planted_bug;
use std::mem;
use std::time::{Duration, Instant};

use slab::Slab;

/// Levels of the wheel. With 64 slots per level, 8 levels span 2^48 ticks of 1 µs.
const LEVELS: usize = 8;
/// Slots per level, one bit each in a `u64` occupancy word.
const SLOTS: usize = 64;
/// log2 of [`SLOTS`]: the bits of a tick that select a slot at one level.
const SLOT_BITS: u32 = 6;
const SLOT_MASK: u64 = SLOTS as u64 - 1;
/// The bits of a tick the levels cover; ticks differing from `elapsed` above them go
/// to the overflow list.
const WHEEL_BITS: u32 = SLOT_BITS * LEVELS as u32;

/// The link value meaning "no entry". Slab indices stay below it.
const NIL: u32 = u32::MAX;

/// List ids, stored in each entry: `level * 64 + slot` for the wheel's slots, then the
/// due list, the overflow list, and "in the batch being fired".
type ListId = u16;
const DUE: ListId = (LEVELS * SLOTS) as ListId;
const OVERFLOW: ListId = DUE + 1;
const DETACHED: ListId = DUE + 2;
/// Number of list heads: one per slot, plus due and overflow.
const HEADS: usize = LEVELS * SLOTS + 2;

/// Names one entry of a [`Wheel`]: its slab index and its generation.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct TimerKey {
    index: u32,
    generation: u64,
}

struct Entry<T> {
    value: T,
    deadline: Instant,
    /// `deadline` in ticks since the origin, rounded up.
    tick: u64,
    /// Order among entries with equal deadlines: taken from the wheel's counter at
    /// insert and again at reset.
    seq: u64,
    /// Taken from the same counter at insert only; must match the key's.
    generation: u64,
    prev: u32,
    next: u32,
    list: ListId,
}

/// A hierarchical timing wheel of values `T` keyed by [`TimerKey`]. See the module
/// documentation for the design.
pub(crate) struct Wheel<T> {
    entries: Slab<Entry<T>>,
    /// Tick 0.
    origin: Instant,
    /// Every entry in the levels and the overflow list has a tick after this one;
    /// every entry in the due list a tick at or before it.
    elapsed: u64,
    /// Bit `s` of `occupied[l]` is set iff slot `s` of level `l` is non-empty.
    occupied: [u64; LEVELS],
    /// The first entry of each list, indexed by [`ListId`].
    heads: [u32; HEADS],
    /// No later than every deadline in the due list (exact after a `process`; may be
    /// stale-early after a removal). Meaningless while the due list is empty.
    due_min: Instant,
    /// Source of generations and sequence numbers.
    counter: u64,
    /// The entries of the tick being fired, as (deadline, seq, index); kept between
    /// calls so processing does not allocate once it has grown.
    batch: Vec<(Instant, u64, u32)>,
}

impl<T> Wheel<T> {
    /// An empty wheel whose tick 0 is `origin`. Deadlines before `origin` are in
    /// tick 0 and fire on the first [`process`](Self::process).
    pub(crate) fn new(origin: Instant) -> Wheel<T> {
        Wheel {
            entries: Slab::new(),
            origin,
            elapsed: 0,
            occupied: [0; LEVELS],
            heads: [NIL; HEADS],
            due_min: origin,
            counter: 0,
            batch: Vec::new(),
        }
    }

    /// Number of pending entries.
    pub(crate) fn len(&self) -> usize {
        self.entries.len()
    }

    /// Adds an entry that fires at the first [`process`](Self::process) whose `now`
    /// is at or after `deadline`. O(1).
    pub(crate) fn insert(&mut self, deadline: Instant, value: T) -> TimerKey {
        assert!(
            self.entries.vacant_key() < NIL as usize,
            "a timer wheel holds at most 2^32 - 1 entries"
        );
        let generation = self.next_count();
        let entry = Entry {
            value,
            deadline,
            tick: self.tick_of(deadline),
            seq: generation,
            generation,
            prev: NIL,
            next: NIL,
            list: DETACHED,
        };
        let index = self.entries.insert(entry) as u32;
        self.place(index);
        TimerKey { index, generation }
    }

    /// Removes the entry of `key` and returns its value, or `None` if it has fired, has
    /// been removed, or `key` is stale. O(1).
    pub(crate) fn remove(&mut self, key: TimerKey) -> Option<T> {
        let index = self.index_of(key)?;
        self.unlink(index);
        Some(self.entries.remove(index as usize).value)
    }

    /// Moves the entry of `key` to `deadline` in place, ordering it after entries
    /// already set for the same deadline. Returns `false` if the entry is gone. O(1).
    pub(crate) fn reset(&mut self, key: TimerKey, deadline: Instant) -> bool {
        let Some(index) = self.index_of(key) else {
            return false;
        };
        self.unlink(index);
        let tick = self.tick_of(deadline);
        let seq = self.next_count();
        let entry = &mut self.entries[index as usize];
        entry.deadline = deadline;
        entry.tick = tick;
        entry.seq = seq;
        self.place(index);
        true
    }

    /// The value of `key`'s entry, if it is still pending.
    pub(crate) fn get_mut(&mut self, key: TimerKey) -> Option<&mut T> {
        let index = self.index_of(key)?;
        Some(&mut self.entries[index as usize].value)
    }

    /// The deadline of `key`'s entry, if it is still pending.
    pub(crate) fn deadline(&self, key: TimerKey) -> Option<Instant> {
        let index = self.index_of(key)?;
        Some(self.entries[index as usize].deadline)
    }

    /// When the wheel next needs [`process`](Self::process)ing: no later than the
    /// earliest pending deadline, `None` if the wheel is empty. O(levels).
    pub(crate) fn next_wake(&self) -> Option<Instant> {
        if self.heads[DUE as usize] != NIL {
            return Some(self.due_min);
        }
        let (_, start) = self.next_expiration()?;
        Some(self.tick_start(start))
    }

    /// Fires, through `fire`, every entry whose deadline is at or before `now`, in
    /// deadline order (equal deadlines in insertion order), and none other.
    ///
    /// The cost is in the entries, not in the time: each occupied slot reached is
    /// visited once, each entry moves at most once per level on its way down, and each
    /// tick's fired entries are sorted. Nothing is allocated once the batch buffer
    /// has grown to the largest tick fired.
    pub(crate) fn process(&mut self, now: Instant, mut fire: impl FnMut(TimerKey, T)) {
        let target = self.tick_of(now);
        if self.entries.is_empty() {
            self.elapsed = self.elapsed.max(target);
            return;
        }

        // The due list's ticks are at or before `elapsed`, so before every tick in
        // the levels: it fires first.
        let mut cur = self.heads[DUE as usize];
        let mut due_min = None;
        while cur != NIL {
            let entry = &self.entries[cur as usize];
            let next = entry.next;
            if entry.deadline <= now {
                self.unlink(cur);
                self.detach_to_batch(cur);
            } else {
                let min = due_min.get_or_insert(entry.deadline);
                *min = (*min).min(entry.deadline);
            }
            cur = next;
        }
        if let Some(min) = due_min {
            self.due_min = min;
        }
        self.fire_batch(now, &mut fire);

        while let Some((list, start)) = self.next_expiration() {
            if start > target {
                break;
            }
            debug_assert!(start > self.elapsed, "wheel went backwards");
            self.elapsed = start;
            let mut cur = self.take_list(list);
            while cur != NIL {
                let next = self.entries[cur as usize].next;
                if self.entries[cur as usize].tick <= self.elapsed {
                    self.detach_to_batch(cur);
                } else {
                    // A cascade: the entry lands in a lower level (or, from the
                    // overflow list, in the levels or back in overflow).
                    self.place(cur);
                }
                cur = next;
            }
            self.fire_batch(now, &mut fire);
        }

        // Every occupied slot starts after `target` (and the next overflow block too),
        // so moving `elapsed` there leaves every entry's placement valid.
        self.elapsed = self.elapsed.max(target);
    }

    fn next_count(&mut self) -> u64 {
        self.counter += 1;
        self.counter
    }

    /// The index of `key`'s entry, if that entry is still in the wheel.
    fn index_of(&self, key: TimerKey) -> Option<u32> {
        let entry = self.entries.get(key.index as usize)?;
        let live = planted_bug!(
            "timer_key_no_generation",
            // A key that outlived its entry names whatever reused the slot.
            bug: true,
            code: entry.generation == key.generation,
        );
        live.then_some(key.index)
    }

    /// `deadline` in ticks since the origin, rounded up (so a tick's entries are all
    /// due by its end); deadlines before the origin are tick 0.
    fn tick_of(&self, deadline: Instant) -> u64 {
        let nanos = deadline.saturating_duration_since(self.origin).as_nanos();
        u64::try_from(nanos.div_ceil(1_000)).unwrap_or(u64::MAX)
    }

    /// The first instant whose tick is `tick`.
    ///
    /// Only called for ticks at or before the tick of some deadline in the wheel, so
    /// the result is at or before that deadline and representable.
    fn tick_start(&self, tick: u64) -> Instant {
        let offset = match tick.checked_sub(1) {
            None => Duration::ZERO,
            Some(before) => Duration::from_micros(before) + Duration::from_nanos(1),
        };
        // Cannot fail: `tick` is at most the tick of a pending deadline, and a tick
        // starts no later than any instant in it (a deadline too far off for a u64 of
        // microseconds saturates to the last tick, which starts before it), so the sum
        // is at most that deadline, an `Instant` that exists.
        self.origin
            .checked_add(offset)
            .expect("a slot starts no later than a deadline in it")
    }

    /// The next list to process and the tick at which to process it: the first
    /// occupied slot of the lowest non-empty level, else the overflow list at the
    /// start of the next 2^48-tick block.
    fn next_expiration(&self) -> Option<(ListId, u64)> {
        for (level, &occupied) in self.occupied.iter().enumerate() {
            if occupied != 0 {
                let slot = u64::from(occupied.trailing_zeros());
                let shift = SLOT_BITS * level as u32;
                let above = self.elapsed & !((1u64 << (shift + SLOT_BITS)) - 1);
                let start = above | (slot << shift);
                debug_assert!(start > self.elapsed, "an occupied slot is behind elapsed");
                return Some(((level * SLOTS) as ListId + slot as ListId, start));
            }
        }
        if self.heads[OVERFLOW as usize] != NIL {
            // Overflow entries are in a later block than `elapsed`, so there is one.
            let block_end = self.elapsed | ((1u64 << WHEEL_BITS) - 1);
            let start = block_end.checked_add(1)?;
            return Some((OVERFLOW, start));
        }
        None
    }

    /// Puts a detached entry on the list its tick calls for, relative to `elapsed`.
    fn place(&mut self, index: u32) {
        let entry = &self.entries[index as usize];
        let tick = entry.tick;
        let list = if tick <= self.elapsed {
            let deadline = entry.deadline;
            if self.heads[DUE as usize] == NIL || deadline < self.due_min {
                self.due_min = deadline;
            }
            DUE
        } else {
            // The highest base-64 digit in which `tick` differs from `elapsed`.
            let differ = (self.elapsed ^ tick) | SLOT_MASK;
            let level = (63 - differ.leading_zeros()) / SLOT_BITS;
            if level as usize >= LEVELS {
                OVERFLOW
            } else {
                let slot = (tick >> (SLOT_BITS * level)) & SLOT_MASK;
                self.occupied[level as usize] |= 1 << slot;
                (level as usize * SLOTS) as ListId + slot as ListId
            }
        };
        let head = self.heads[list as usize];
        if head != NIL {
            self.entries[head as usize].prev = index;
        }
        let entry = &mut self.entries[index as usize];
        entry.prev = NIL;
        entry.next = head;
        entry.list = list;
        self.heads[list as usize] = index;
    }

    /// Takes an entry off its list, leaving it detached.
    fn unlink(&mut self, index: u32) {
        let Entry {
            prev, next, list, ..
        } = self.entries[index as usize];
        if list == DETACHED {
            return;
        }
        if prev == NIL {
            self.heads[list as usize] = next;
            if next == NIL && (list as usize) < LEVELS * SLOTS {
                self.occupied[list as usize / SLOTS] &= !(1 << (list as usize % SLOTS));
            }
        } else {
            self.entries[prev as usize].next = next;
        }
        if next != NIL {
            self.entries[next as usize].prev = prev;
        }
        self.entries[index as usize].list = DETACHED;
    }

    /// Empties a list and returns its former head; the entries keep their `next`
    /// links, so the caller can walk them while placing each one anew.
    fn take_list(&mut self, list: ListId) -> u32 {
        if (list as usize) < LEVELS * SLOTS {
            self.occupied[list as usize / SLOTS] &= !(1 << (list as usize % SLOTS));
        }
        mem::replace(&mut self.heads[list as usize], NIL)
    }

    fn detach_to_batch(&mut self, index: u32) {
        let entry = &mut self.entries[index as usize];
        entry.list = DETACHED;
        self.batch.push((entry.deadline, entry.seq, index));
    }

    /// Fires the batch (entries of ticks at or before `elapsed`) in deadline order;
    /// entries not yet due at `now` (a few nanoseconds into `now`'s own tick) go to
    /// the due list.
    fn fire_batch(&mut self, now: Instant, fire: &mut impl FnMut(TimerKey, T)) {
        if self.batch.is_empty() {
            return;
        }
        let mut batch = mem::take(&mut self.batch);
        // Sequence numbers are unique, so the unstable sort is deterministic.
        batch.sort_unstable_by_key(|&(deadline, seq, _)| (deadline, seq));
        for &(deadline, _, index) in &batch {
            if deadline <= now {
                let entry = self.entries.remove(index as usize);
                let key = TimerKey {
                    index,
                    generation: entry.generation,
                };
                fire(key, entry.value);
            } else {
                self.place(index);
            }
        }
        batch.clear();
        self.batch = batch;
    }

    /// Checks the lists against the slab and the bitmaps (tests only).
    #[cfg(all(test, not(epitome_loom)))]
    fn check_invariants(&self) {
        let mut seen = 0;
        for list in 0..HEADS {
            let mut prev = NIL;
            let mut cur = self.heads[list];
            if list < LEVELS * SLOTS {
                let bit = (self.occupied[list / SLOTS] >> (list % SLOTS)) & 1;
                assert_eq!(bit == 1, cur != NIL, "occupancy bit of list {list}");
            }
            while cur != NIL {
                let entry = &self.entries[cur as usize];
                assert_eq!(entry.list as usize, list);
                assert_eq!(entry.prev, prev);
                match entry.list {
                    DUE => {
                        assert!(entry.tick <= self.elapsed);
                        assert!(self.due_min <= entry.deadline);
                    }
                    OVERFLOW => assert!((entry.tick ^ self.elapsed) >> WHEEL_BITS != 0),
                    slot => {
                        let level = slot as u32 / SLOTS as u32;
                        assert!(entry.tick > self.elapsed);
                        let differ = (self.elapsed ^ entry.tick) | SLOT_MASK;
                        assert_eq!((63 - differ.leading_zeros()) / SLOT_BITS, level);
                    }
                }
                seen += 1;
                prev = cur;
                cur = entry.next;
            }
        }
        assert_eq!(seen, self.entries.len(), "entries not on any list");
        assert!(self.batch.is_empty());
    }
}

#[cfg(all(test, not(epitome_loom)))]
mod tests;
