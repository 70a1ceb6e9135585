//! One I/O source's readiness and waiters.
//!
//! # Readiness
//!
//! Each direction (read, write) has its own word: readiness and waiter bits in the low
//! byte ([`bits`]) and a 56-bit generation above, bumped by every event. A task that
//! sees readiness, tries the operation and gets `WouldBlock` clears the readiness bits
//! only if the generation is still the one it saw, so a clear can never erase an event
//! that arrived after the failed attempt. (tokio keeps a truncated "tick" for this,
//! whose wrap-around lets a stale clear win: tokio #6133, #8054, #8331. A 56-bit counter
//! does not wrap in practice.)
//!
//! # Waiters
//!
//! Tasks wait in two ways:
//!
//! - the **fast path**: `poll_readable` / `poll_writable` (what `AsyncRead` /
//!   `AsyncWrite` impls use) park the task's waker in the direction's **slot**, a cell
//!   beside the word that the word's bits hand from thread to thread with no lock (see
//!   below). One task per direction is the common case; a second task's waker, found
//!   while the slot holds another's, is kept in the source's list beside it rather than
//!   replacing it (replacing loses the first task's wakeup: tokio #1413), and a replaced
//!   waker is never woken merely for being replaced (that busy-loops: async-io);
//! - **waiter nodes**: `readable()` / `writable()` futures own an intrusive node,
//!   linked on the source's list while they wait (`waiters.rs`). No allocation per
//!   wait, and a node unlinks itself when its future is dropped.
//!
//! A node may ask for **exclusive** readiness (accept on a shared listener, several
//! tasks receiving on one datagram socket). An event wakes every non-exclusive waiter
//! of its direction but only the first exclusive one, in FIFO order (the user-space
//! counterpart of EPOLLEXCLUSIVE, with the same reason: no stampede). An exclusive
//! waiter that was woken and is dropped (cancelled) without having completed its
//! operation passes the wakeup on to the next exclusive waiter (baton passing), so no
//! event is lost.
//!
//! # The slot and the word
//!
//! The slot's cell holds a waker exactly while the word has [`bits::SLOT`]. Whoever
//! clears `SLOT` with a compare-and-swap owns the cell: an event (`record`) clears it and
//! sets [`bits::BUSY`] in the same step, takes the waker, then clears `BUSY`; a
//! registrant (`register_slot`) does the same to look at the parked waker, then
//! publishes its waker by clearing `BUSY` and setting `SLOT` in one more step. That step
//! fails if an event changed the word meanwhile, and the registrant then sees the
//! readiness itself; an event that finds `BUSY` set leaves the cell alone and the word
//! tells the registrant. `SLOT` and `BUSY` are never set together. So a wakeup cannot
//! fall between a registrant's look at readiness and its waker being found: every
//! decision is a change of the one word.
//!
//! The list (nodes, and second wakers) is guarded by the source's mutex. Its presence is
//! the word's [`bits::LIST`], set under the mutex when a waiter is linked (by an RMW that
//! reads readiness in the same step) and cleared under it when an event finds none left;
//! an event takes the mutex only when the word it replaced had `LIST`. Wakers are
//! collected during dispatch and woken after every lock is released.

use std::ptr::NonNull;
use std::task::Waker;

use super::waiters::{NodeState, Waiters};
use crate::eventpoll::{EPOLLERR, EPOLLHUP, EPOLLIN, EPOLLOUT, EPOLLPRI, EPOLLRDHUP};
use crate::loom::cell::UnsafeCell;
use crate::loom::os::sync::Arc as OsArc;
use crate::loom::planted_bug;
use crate::loom::sync::atomic::{AtomicU64, Ordering};
use crate::loom::sync::{Mutex, MutexGuard};

pub(crate) use super::waiters::{Direction, WaiterNode};

/// The bits of a direction's word.
pub(crate) mod bits {
    /// The operation may succeed without blocking.
    pub(crate) const READY: u64 = 1 << 0;
    /// The direction is closed (read: the peer shut down writing, or hang-up; write:
    /// hang-up): every later operation returns at once.
    pub(crate) const CLOSED: u64 = 1 << 1;
    /// An error is pending on the socket (EPOLLERR).
    pub(crate) const ERROR: u64 = 1 << 2;
    /// Urgent data (EPOLLPRI), read direction only.
    pub(crate) const PRIORITY: u64 = 1 << 3;
    /// The readiness bits: set by events, cleared after `WouldBlock`.
    pub(crate) const READINESS: u64 = READY | CLOSED | ERROR | PRIORITY;
    /// The direction's slot holds a parked waker. Set by a registrant as it publishes
    /// its waker (clearing `BUSY`); cleared by whoever takes the waker.
    pub(crate) const SLOT: u64 = 1 << 4;
    /// One thread has the slot's cell to itself: a registrant, or an event taking the
    /// parked waker. Never set together with `SLOT`.
    pub(crate) const BUSY: u64 = 1 << 5;
    /// The source's list may hold waiters of this direction. Set under the source's
    /// mutex when one is linked, cleared under it when an event finds none left (it
    /// may stay set for a while after the last one leaves).
    pub(crate) const LIST: u64 = 1 << 6;
    /// The runtime that drives the source shut down: every later poll reports an
    /// error. Set with READY and CLOSED by the shutdown; never cleared.
    pub(crate) const GONE: u64 = 1 << 7;
    pub(crate) const MASK: u64 = 0xFF;
    pub(crate) const GEN_ONE: u64 = 1 << 8;
}

/// Whether `word` lets a poll return: ready, closed, errored, or gone.
#[inline]
fn is_ready(word: u64) -> bool {
    word & (bits::READY | bits::CLOSED | bits::ERROR | bits::GONE) != 0
}

/// What a task saw when it found a direction ready: the word, to hand back to
/// [`ScheduledIo::clear_readiness`] if the operation then returns `WouldBlock`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct ReadyEvent {
    pub(crate) word: u64,
    pub(crate) direction: Direction,
    /// The waiter that saw this was woken as an exclusive waiter: it holds the
    /// event's baton, to pass on if it leaves readiness unconsumed (see
    /// [`ScheduledIo::pass_baton_if_ready`]).
    pub(crate) baton: bool,
}

impl ReadyEvent {
    pub(crate) fn is_closed(&self) -> bool {
        self.word & (bits::CLOSED | bits::ERROR) != 0
    }

    pub(crate) fn is_ready(&self) -> bool {
        is_ready(self.word)
    }

    /// The runtime that drove the source shut down (see [`bits::GONE`]).
    #[inline]
    pub(crate) fn is_gone(&self) -> bool {
        self.word & bits::GONE != 0
    }
}

/// Kernel event bits to (read bits, write bits), indexed by the six bits that matter:
/// EPOLLIN, EPOLLPRI, EPOLLOUT, EPOLLERR, EPOLLHUP (bits 0-4 of the kernel's mask) and
/// EPOLLRDHUP (moved to bit 5). Built at compile time from the rules in `split_rule`.
static SPLIT: [(u8, u8); 64] = {
    let mut table = [(0, 0); 64];
    let mut i = 0;
    while i < 64 {
        let events = (i as u32 & 0x1F) | if i & 0x20 != 0 { EPOLLRDHUP } else { 0 };
        let (r, w) = split_rule(events);
        table[i] = (r as u8, w as u8);
        i += 1;
    }
    table
};

/// How kernel event bits become readiness bits of each direction.
const fn split_rule(events: u32) -> (u64, u64) {
    let mut read = 0;
    let mut write = 0;
    if events & (EPOLLIN | EPOLLPRI | EPOLLRDHUP | EPOLLHUP | EPOLLERR) != 0 {
        read |= bits::READY;
    }
    if events & EPOLLPRI != 0 {
        read |= bits::PRIORITY;
    }
    if events & (EPOLLRDHUP | EPOLLHUP) != 0 {
        read |= bits::CLOSED;
    }
    if events & (EPOLLOUT | EPOLLHUP | EPOLLERR) != 0 {
        write |= bits::READY;
    }
    if events & EPOLLHUP != 0 {
        write |= bits::CLOSED;
    }
    if events & EPOLLERR != 0 {
        read |= bits::ERROR;
        write |= bits::ERROR;
    }
    (read, write)
}

const _: () =
    assert!(EPOLLIN | EPOLLPRI | EPOLLOUT | EPOLLERR | EPOLLHUP == 0x1F && EPOLLRDHUP == 0x2000);

/// Turns kernel event bits into (read bits, write bits).
#[inline]
pub(crate) fn split_events(events: u32) -> (u64, u64) {
    let (r, w) = SPLIT[((events & 0x1F) | ((events >> 8) & 0x20)) as usize];
    (u64::from(r), u64::from(w))
}

/// Called when a read event reaches a source that has no reader waiting.
pub(crate) type UnclaimedHook = OsArc<dyn Fn() + Send + Sync>;

/// One direction: its word, and the slot's cell (see the module docs).
struct DirState {
    word: AtomicU64,
    slot: UnsafeCell<Option<Waker>>,
}

/// The per-source state shared by the reactor and the tasks using the source.
pub(crate) struct ScheduledIo {
    read: DirState,
    write: DirState,
    waiters: Mutex<Waiters>,
    /// For a source shared by several workers (see `io::SharedAsync`): hands a read
    /// event nobody here waits for to another worker.
    unclaimed: Option<UnclaimedHook>,
}

// SAFETY: each slot's cell is only touched by the thread the word's SLOT / BUSY bits
// give it to (see the module docs); everything else is atomic or behind the mutex.
unsafe impl Sync for ScheduledIo {}

/// How a waiter poll went.
pub(crate) enum WaitPoll {
    Ready(ReadyEvent),
    Pending,
}

impl ScheduledIo {
    pub(crate) fn new(unclaimed: Option<UnclaimedHook>) -> ScheduledIo {
        let dir = || DirState {
            word: AtomicU64::new(0),
            slot: UnsafeCell::new(None),
        };
        ScheduledIo {
            read: dir(),
            write: dir(),
            waiters: Mutex::new(Waiters::default()),
            unclaimed,
        }
    }

    #[inline]
    fn dir(&self, dir: Direction) -> &DirState {
        match dir {
            Direction::Read => &self.read,
            Direction::Write => &self.write,
        }
    }

    fn lock(&self) -> MutexGuard<'_, Waiters> {
        // Nothing under the lock runs foreign code (wakers are woken after it).
        self.waiters.lock()
    }

    /// The direction's current word.
    #[inline]
    pub(crate) fn readiness(&self, dir: Direction) -> ReadyEvent {
        ReadyEvent {
            baton: false,
            word: self.dir(dir).word.load(Ordering::Acquire),
            direction: dir,
        }
    }

    /// Marks a direction ready without an event (a freshly accepted socket is assumed
    /// readable and writable, so its first operation is tried at once).
    pub(crate) fn assume_ready(&self, dir: Direction) {
        let mut wake = Vec::new();
        self.record(dir, bits::READY, &mut wake);
        // Planted bug: the waker taken from the slot is dropped.
        planted_bug!(
            "assume_ready_no_wake",
            bug: drop(wake),
            code: wake.into_iter().for_each(Waker::wake),
        );
    }

    /// Records an event's readiness bits for `dir` (`new_bits`, never empty): sets
    /// them, bumps the generation, and takes the slot's parked waker into `wake`.
    /// Returns the word it replaced.
    #[inline(always)]
    fn record(&self, dir: Direction, new_bits: u64, wake: &mut Vec<Waker>) -> u64 {
        let state = self.dir(dir);
        let mut cur = state.word.load(Ordering::Acquire);
        loop {
            let mut next =
                ((cur | new_bits) & bits::MASK) | ((cur & !bits::MASK).wrapping_add(bits::GEN_ONE));
            if cur & bits::SLOT != 0 {
                // Take the parked waker: the cell is ours until BUSY is cleared.
                next = (next & !bits::SLOT) | bits::BUSY;
            }
            match state
                .word
                .compare_exchange_weak(cur, next, Ordering::AcqRel, Ordering::Acquire)
            {
                Ok(_) => break,
                Err(actual) => cur = actual,
            }
        }
        if cur & bits::SLOT != 0 {
            // SAFETY: our compare-and-swap cleared SLOT and set BUSY: the cell is ours
            // (no one else touches it while BUSY is set).
            if let Some(w) = state.slot.with_mut(|w| unsafe { (*w).take() }) {
                wake.push(w);
            }
            state.word.fetch_and(!bits::BUSY, Ordering::Release);
        }
        cur
    }

    /// After `WouldBlock`: clears the readiness bits unless an event arrived since
    /// `seen`. Returns whether it cleared.
    #[inline]
    pub(crate) fn clear_readiness(&self, seen: ReadyEvent) -> bool {
        // Every readiness bit goes, closed and error included: the operation just said
        // it would block, so whatever they announced has been consumed (a socket error
        // is taken once; a datagram socket shut down for reading reports readable yet
        // never has data). A later error or hang-up is a new event and sets them
        // again. A stream at end of stream never gets here: its reads return 0, not
        // `WouldBlock`.
        let word = &self.dir(seen.direction).word;
        planted_bug!(
            "clear_without_generation",
            // Clear whatever is there, erasing a newer event.
            bug: word.fetch_and(!bits::READINESS, Ordering::AcqRel) != 0,
            code: self.clear_if_same_generation(word, seen.word, bits::READINESS),
        )
    }

    /// After a short read or write (less than offered): the socket was drained, so the
    /// next attempt would block; clears READY alone, unless the direction is closed or
    /// errored (the end of stream, or the error, is still to be read) or an event
    /// arrived since `seen`. Returns whether it cleared.
    #[inline]
    pub(crate) fn clear_drained(&self, seen: ReadyEvent) -> bool {
        if seen.word & (bits::CLOSED | bits::ERROR) != 0 {
            return false;
        }
        self.clear_if_same_generation(&self.dir(seen.direction).word, seen.word, bits::READY)
    }

    /// Clears `clear` from `word` if its generation is still `seen`'s (the waiter bits
    /// may have changed meanwhile: they are not readiness).
    #[inline]
    fn clear_if_same_generation(&self, word: &AtomicU64, seen: u64, clear: u64) -> bool {
        let mut cur = seen;
        loop {
            match word.compare_exchange(cur, cur & !clear, Ordering::AcqRel, Ordering::Acquire) {
                Ok(_) => return true,
                Err(actual) if (actual ^ seen) & !bits::MASK == 0 => cur = actual,
                Err(_) => return false,
            }
        }
    }

    /// The reactor's callback for one event: records readiness, then collects the
    /// wakers of the waiters that the event concerns into `wake`. A read event that
    /// woke nobody on a shared source pushes its hook to `unclaimed`.
    #[inline(always)]
    pub(crate) fn dispatch(
        &self,
        events: u32,
        wake: &mut Vec<Waker>,
        unclaimed: &mut Vec<UnclaimedHook>,
    ) {
        let (r, w) = split_events(events);
        let (mut read_was, mut write_was) = (0, 0);
        if r != 0 {
            read_was = self.record(Direction::Read, r, wake);
        }
        if w != 0 {
            write_was = self.record(Direction::Write, w, wake);
        }
        // The usual event: one waiter in the slot, none in the list, not shared.
        if (read_was | write_was) & bits::LIST != 0 || self.unclaimed.is_some() {
            self.dispatch_unusual(r != 0, read_was, write_was, wake, unclaimed);
        }
    }

    /// The rest of [`dispatch`](Self::dispatch) when a list had waiters when the
    /// event was recorded (`read_was` / `write_was` are the words it replaced), or the
    /// source is shared (`read`: the event was a read event).
    #[inline(never)]
    fn dispatch_unusual(
        &self,
        read: bool,
        read_was: u64,
        write_was: u64,
        wake: &mut Vec<Waker>,
        unclaimed: &mut Vec<UnclaimedHook>,
    ) {
        let (read_list, write_list) = (read_was & bits::LIST != 0, write_was & bits::LIST != 0);
        // A parked waker was taken from the read slot (SLOT is only set over one).
        let mut read_woken = read_was & bits::SLOT != 0;
        if read_list || write_list {
            read_woken |= self.wake_lists(read_list, write_list, wake) > 0;
        }
        if read && !read_woken {
            if let Some(hook) = &self.unclaimed {
                unclaimed.push(hook.clone());
            }
        }
    }

    /// The part of [`dispatch`](Self::dispatch) that takes the mutex: the list had
    /// waiters of `read` / `write` when the event was recorded. Returns how many read
    /// waiters it woke.
    fn wake_lists(&self, read: bool, write: bool, wake: &mut Vec<Waker>) -> usize {
        let mut waiters = self.lock();
        let mut read_woken = 0;
        if read {
            read_woken = waiters.wake_direction(Direction::Read, wake);
            self.clear_list_if_empty(&mut waiters, Direction::Read);
        }
        if write {
            waiters.wake_direction(Direction::Write, wake);
            self.clear_list_if_empty(&mut waiters, Direction::Write);
        }
        read_woken
    }

    /// Under the mutex: clears `dir`'s LIST bit if nothing in the list waits for `dir`
    /// any more (only linking sets it, and linking takes the mutex).
    fn clear_list_if_empty(&self, waiters: &mut Waiters, dir: Direction) {
        if !waiters.has(dir) {
            self.dir(dir).word.fetch_and(!bits::LIST, Ordering::AcqRel);
        }
    }

    /// Sets `dir`'s LIST bit (under the mutex, after linking a waiter); returns the word
    /// it replaced, whose readiness an event may have set before it saw LIST.
    fn set_list(&self, dir: Direction) -> u64 {
        self.dir(dir).word.fetch_or(bits::LIST, Ordering::AcqRel)
    }

    /// Whether an exclusive waiter waits for `dir` here.
    pub(crate) fn has_exclusive_waiter(&self, dir: Direction) -> bool {
        self.lock().has_exclusive(dir)
    }

    /// Hands an event to this source: marks `dir` ready and wakes its first exclusive
    /// waiter (the cross-worker baton of a shared source).
    pub(crate) fn hand_event(&self, dir: Direction) {
        let mut wake = Vec::new();
        self.record(dir, bits::READY, &mut wake);
        // Planted bug: the handed event marks the source ready but wakes nobody.
        planted_bug!(
            "hand_event_no_wake",
            bug: (),
            code: wake.extend(self.lock().notify_first_exclusive(dir)),
        );
        wake.into_iter().for_each(Waker::wake);
    }

    /// The runtime shut down: marks both directions [`bits::GONE`] (for good, so every
    /// later poll reports it instead of parking a waker no turn will wake) and wakes
    /// every waiter.
    pub(crate) fn shut_down(&self, wake: &mut Vec<Waker>) {
        self.record(
            Direction::Read,
            bits::READY | bits::CLOSED | bits::GONE,
            wake,
        );
        self.record(
            Direction::Write,
            bits::READY | bits::CLOSED | bits::GONE,
            wake,
        );
        self.lock().wake_all(wake);
    }

    /// Wakes every waiter (deregistration: their next poll finds out). Both
    /// directions are marked closed, so a task registering at this moment finds them
    /// ready instead of parking a waker nobody will wake.
    pub(crate) fn wake_all(&self, wake: &mut Vec<Waker>) {
        // Planted bug: take the parked wakers without marking the directions, so a
        // registration that comes just after parks for good.
        let gone = planted_bug!(
            "wake_all_leaves_readiness",
            bug: 0,
            code: bits::READY | bits::CLOSED,
        );
        self.record(Direction::Read, gone, wake);
        self.record(Direction::Write, gone, wake);
        self.lock().wake_all(wake);
    }

    /// The fast path: `Ready` if `dir` is ready, else parks `waker` in the direction's
    /// slot (see the module docs) and re-checks.
    ///
    /// Inlined, with the registration out of line: a ready source (the common case on
    /// a busy connection) costs one load and a branch.
    #[inline]
    pub(crate) fn poll_ready_slot(&self, dir: Direction, waker: &Waker) -> Option<ReadyEvent> {
        let ev = self.readiness(dir);
        if ev.is_ready() {
            return Some(ev);
        }
        self.register_slot(dir, waker, false)
    }

    /// Parks `waker` in `dir`'s slot whatever the readiness, so the next event of `dir`
    /// wakes it: for a waiter that wants one bit (urgent data, an error) while the
    /// direction is ready for other reasons. The caller looks at the word again after.
    pub(crate) fn park_waker(&self, dir: Direction, waker: &Waker) {
        let _ = self.register_slot(dir, waker, true);
    }

    /// Parks `waker` in `dir`'s slot unless `dir` is ready (or `even_if_ready`).
    #[inline(never)]
    fn register_slot(
        &self,
        dir: Direction,
        waker: &Waker,
        even_if_ready: bool,
    ) -> Option<ReadyEvent> {
        let state = self.dir(dir);
        let mut cur = state.word.load(Ordering::Acquire);
        loop {
            if is_ready(cur) && !even_if_ready {
                return Some(self.event(dir, cur));
            }
            if cur & bits::BUSY != 0 {
                // Another task is registering on this direction, or an event is taking
                // the parked waker: wait in the list instead.
                return self.register_in_list(dir, waker);
            }
            let next = (cur | bits::BUSY) & !bits::SLOT;
            match state
                .word
                .compare_exchange_weak(cur, next, Ordering::AcqRel, Ordering::Acquire)
            {
                Ok(_) => break,
                Err(actual) => cur = actual,
            }
        }
        // The cell is ours (BUSY). A waker that was parked (SLOT) is in it.
        // SAFETY: BUSY, set by our compare-and-swap, gives this thread the cell.
        let parked = state.slot.with_mut(|w| unsafe { (*w).take() });
        let (parked, others) = match parked {
            Some(w) if w.will_wake(waker) => (w, false),
            None => (waker.clone(), false),
            // Another task's waker: it keeps the slot, ours goes to the list.
            Some(w) => planted_bug!(
                "slot_replaces_other_waker",
                // Replace it (tokio #1413): the other task's wakeup is lost.
                bug: (waker.clone(), false),
                code: (w, true),
            ),
        };
        // SAFETY: as above.
        state.slot.with_mut(|w| unsafe { *w = Some(parked) });
        if let Some(ev) = self.publish_slot(dir, others, even_if_ready) {
            return Some(ev);
        }
        if others {
            return self.register_in_list(dir, waker);
        }
        None
    }

    /// Ends a registrant's hold on the slot: clears BUSY and sets SLOT, unless an event
    /// came while it held the cell (the event left the cell alone; see the module
    /// docs). Then the registrant takes the waker back out and returns the readiness,
    /// waking the waker if it is another task's (`others`): the event is news to it.
    fn publish_slot(
        &self,
        dir: Direction,
        others: bool,
        even_if_ready: bool,
    ) -> Option<ReadyEvent> {
        let state = self.dir(dir);
        let mut cur = state.word.load(Ordering::Acquire);
        loop {
            let look = planted_bug!(
                "slot_no_recheck",
                // Publish without looking, so an event that came while the cell was
                // held leaves the waker parked with readiness set: lost wakeup.
                bug: false,
                code: is_ready(cur) && !even_if_ready,
            );
            if look {
                // SAFETY: we still hold BUSY: the cell is ours.
                let parked = state.slot.with_mut(|w| unsafe { (*w).take() });
                planted_bug!(
                    "busy_release_by_store",
                    // A load and a store: an event recorded between them is lost.
                    bug: {
                        let w = state.word.load(Ordering::Acquire);
                        state.word.store(w & !bits::BUSY, Ordering::Release);
                    },
                    code: {
                        state.word.fetch_and(!bits::BUSY, Ordering::Release);
                    },
                );
                if let Some(w) = parked.filter(|_| others) {
                    w.wake();
                }
                return Some(self.event(dir, cur));
            }
            let next = (cur & !bits::BUSY) | bits::SLOT;
            match state
                .word
                .compare_exchange_weak(cur, next, Ordering::AcqRel, Ordering::Acquire)
            {
                Ok(_) => return None,
                Err(actual) => cur = actual,
            }
        }
    }

    /// The fast path's fallback: keeps `waker` in the list (another task's waker holds
    /// the slot, or the slot is busy this instant). Under the mutex, sets LIST and
    /// reads readiness in one step, so an event either finds LIST or shows here.
    #[cold]
    #[inline(never)]
    fn register_in_list(&self, dir: Direction, waker: &Waker) -> Option<ReadyEvent> {
        let mut waiters = self.lock();
        let wakers = waiters.wakers(dir);
        let added = !wakers.iter().any(|w| w.will_wake(waker));
        if added {
            wakers.push(waker.clone());
        }
        let cur = self.set_list(dir);
        if is_ready(cur) {
            if added {
                // Ready after all: no need to stay.
                wakers.pop();
            }
            return Some(self.event(dir, cur));
        }
        None
    }

    fn event(&self, dir: Direction, word: u64) -> ReadyEvent {
        ReadyEvent {
            word,
            direction: dir,
            baton: false,
        }
    }

    /// Polls a waiter node (a `readable()` / `writable()` future).
    ///
    /// # Safety
    /// `node` is pinned and stays alive until [`drop_waiter`](Self::drop_waiter) is
    /// called for it.
    pub(crate) unsafe fn poll_waiter(&self, node: &WaiterNode, waker: &Waker) -> WaitPoll {
        let mut waiters = self.lock();
        // SAFETY: the node is live (the caller) and its fields are guarded by the mutex
        // we hold; the same holds for every `node.with` below.
        let (direction, exclusive, state) =
            unsafe { node.with(|n| (n.direction, n.exclusive, n.state)) };
        let ev = self.readiness(direction);
        let mut replaced = None;
        let res = match state {
            NodeState::Notified | NodeState::Idle if ev.is_ready() => {
                // SAFETY: see above.
                replaced = unsafe { to_idle(node) };
                WaitPoll::Ready(ReadyEvent {
                    baton: exclusive && state == NodeState::Notified,
                    ..ev
                })
            }
            NodeState::Waiting if ev.is_ready() && !exclusive => {
                // Readiness arrived while waiting (the event woke us, or we are polled
                // early): leave the list.
                // SAFETY: the node is on the list, under the mutex.
                unsafe { waiters.unlink(NonNull::from(node)) };
                // SAFETY: see above.
                replaced = unsafe { to_idle(node) };
                WaitPoll::Ready(ev)
            }
            NodeState::Waiting => {
                // Still waiting (an exclusive waiter waits for its turn even if the
                // direction is ready: the waiter ahead of it got that event).
                // SAFETY: see above.
                unsafe {
                    node.with(|n| match &n.waker {
                        Some(w) if w.will_wake(waker) => {}
                        _ => replaced = n.waker.replace(waker.clone()),
                    })
                };
                WaitPoll::Pending
            }
            NodeState::Notified | NodeState::Idle => {
                // Not ready: join the list (again, after a notification that turned out
                // to be consumed by someone else).
                // SAFETY: the caller's contract, and we hold the mutex.
                let (res, wakers) = unsafe { self.join_list(&mut waiters, node, waker, ev.word) };
                drop(waiters);
                // Wakers are dropped outside the lock: a drop may run any code.
                drop(wakers);
                return res;
            }
        };
        drop(waiters);
        drop(replaced);
        res
    }

    /// `poll_waiter` of a node that is not on the list and found its direction not
    /// ready: links it, then re-checks the readiness an event may have set meanwhile
    /// (the re-check after registration of `ep_poll`'s wait-queue insertion). Returns
    /// the poll's answer and the wakers to drop once the lock is released. `seen` is
    /// the readiness word `poll_waiter` read before linking.
    ///
    /// # Safety
    ///
    /// As `poll_waiter`; `waiters` is this source's locked list and the node is not on it.
    unsafe fn join_list(
        &self,
        waiters: &mut MutexGuard<'_, Waiters>,
        node: &WaiterNode,
        waker: &Waker,
        seen: u64,
    ) -> (WaitPoll, [Option<Waker>; 2]) {
        // SAFETY: the node is live and its fields are guarded by the mutex we hold.
        let (direction, replaced) = unsafe {
            node.with(|n| {
                n.state = NodeState::Waiting;
                (n.direction, n.waker.replace(waker.clone()))
            })
        };
        // SAFETY: the node is pinned and alive until `drop_waiter`.
        unsafe { waiters.push_back(NonNull::from(node)) };
        let linked = self.set_list(direction);
        let now = planted_bug!(
            "waiter_stale_readiness",
            // Trust the readiness read before linking, so an event that came in
            // between, and found no LIST, leaves this node asleep.
            bug: seen,
            code: linked,
        );
        if is_ready(now) && now & bits::LIST == 0 {
            // An event came since we looked and did not see LIST, so it will not look
            // at the list: leave it and take the readiness. (If LIST was set, the event
            // waits for the mutex and will wake waiters in FIFO order, this one
            // included if it is first.)
            // SAFETY: on the list, under the mutex.
            unsafe { waiters.unlink(NonNull::from(node)) };
            // SAFETY: as above.
            let mine = unsafe { to_idle(node) };
            return (
                WaitPoll::Ready(self.event(direction, now)),
                [replaced, mine],
            );
        }
        (WaitPoll::Pending, [replaced, None])
    }

    /// A waiter node's future is done with it: unlinks it, and if it held an exclusive
    /// wakeup it did not use (`consumed` false), passes the wakeup to the next
    /// exclusive waiter.
    ///
    /// # Safety
    /// `node` was only ever polled on this source.
    pub(crate) unsafe fn drop_waiter(&self, node: &WaiterNode, consumed: bool) {
        let mut wake = None;
        let old;
        {
            let mut waiters = self.lock();
            // SAFETY: the node is live (the caller's future owns it) and its fields are
            // guarded by the mutex we hold.
            let (state, exclusive, direction) =
                unsafe { node.with(|n| (n.state, n.exclusive, n.direction)) };
            match state {
                // SAFETY: on the list, under the mutex.
                NodeState::Waiting => unsafe { waiters.unlink(NonNull::from(node)) },
                NodeState::Notified
                    if exclusive
                        && !consumed
                        // Keep the unused wakeup instead of passing it on.
                        && planted_bug!("no_baton", bug: false, code: true) =>
                {
                    wake = Some(waiters.notify_first_exclusive(direction));
                }
                _ => {}
            }
            // SAFETY: as above.
            old = unsafe {
                node.with(|n| {
                    n.state = NodeState::Idle;
                    n.waker.take()
                })
            };
        }
        drop(old);
        match wake {
            Some(Some(w)) => w.wake(),
            // Nobody else waits here: a source shared by several workers hands the
            // event to another worker's waiter.
            Some(None) => self.hand_on(),
            None => {}
        }
    }

    /// A woken exclusive waiter completed its operation and left the direction still
    /// ready (it took one connection or datagram of several): passes the wakeup on to
    /// the next exclusive waiter, here or on another worker, so the rest are not left
    /// with everyone asleep. Called once the waiter's task has finished its poll, so a
    /// task that loops and drains the source itself (clearing readiness on
    /// `WouldBlock`) passes nothing.
    pub(crate) fn pass_baton_if_ready(&self, dir: Direction) {
        if self.readiness(dir).word & bits::READY == 0 {
            return;
        }
        let w = self.lock().notify_first_exclusive(dir);
        match w {
            Some(w) => planted_bug!("baton_not_passed", bug: drop(w), code: w.wake()),
            None => planted_bug!(
                "baton_not_handed_on",
                // Nobody here: the baton stops, and another worker's waiter sleeps on.
                bug: (),
                code: self.hand_on(),
            ),
        }
    }

    fn hand_on(&self) {
        if let Some(hook) = &self.unclaimed {
            hook();
        }
    }

    /// Clears only the readiness bits `mask` of `seen`'s direction, unless an event
    /// arrived since `seen` (`io::ReadyGuard::clear_ready_matching`: a caller that
    /// consumed urgent data leaves ordinary readability set).
    pub(crate) fn clear_matching(&self, seen: ReadyEvent, mask: u64) -> bool {
        let word = &self.dir(seen.direction).word;
        self.clear_if_same_generation(word, seen.word, mask & bits::READINESS)
    }
}

/// Takes a waiter node off duty: `Idle`, its waker handed back to drop outside the lock.
///
/// # Safety
///
/// The node is live and the caller holds its source's waiter mutex.
unsafe fn to_idle(node: &WaiterNode) -> Option<Waker> {
    // SAFETY: the caller's contract: the fields are guarded by the mutex it holds.
    unsafe {
        node.with(|n| {
            n.state = NodeState::Idle;
            n.waker.take()
        })
    }
}

// Single-threaded: they run in the loom build too (`unit_test`), as part of the loom
// suite that measures mutants.
#[cfg(test)]
mod tests {
    use super::*;
    use crate::loom::os::sync::Arc as StdArc;
    use crate::loom::os::sync::atomic::AtomicUsize as StdAtomicUsize;
    use std::task::Wake;

    struct CountWaker(StdAtomicUsize);
    impl Wake for CountWaker {
        fn wake(self: StdArc<Self>) {
            self.0.fetch_add(1, Ordering::SeqCst);
        }
    }
    fn counter() -> (StdArc<CountWaker>, Waker) {
        let c = StdArc::new(CountWaker(StdAtomicUsize::new(0)));
        (c.clone(), Waker::from(c))
    }
    fn count(c: &StdArc<CountWaker>) -> usize {
        c.0.load(Ordering::SeqCst)
    }

    fn dispatch(io: &ScheduledIo, events: u32) -> Vec<Waker> {
        let mut wake = Vec::new();
        let mut unclaimed = Vec::new();
        io.dispatch(events, &mut wake, &mut unclaimed);
        wake
    }

    #[test]
    fn ready_wouldblock_clear_new_event() {
        crate::loom::unit_test(|| {
            let io = ScheduledIo::new(None);
            assert_eq!(io.readiness(Direction::Read).word & bits::READY, 0);
            dispatch(&io, EPOLLIN);
            let seen = io.readiness(Direction::Read);
            assert_ne!(seen.word & bits::READY, 0);
            // The operation would block: clear with what we saw.
            assert!(io.clear_readiness(seen));
            assert_eq!(io.readiness(Direction::Read).word & bits::READY, 0);
            // A new event sets it again, with a newer generation.
            dispatch(&io, EPOLLIN);
            let again = io.readiness(Direction::Read);
            assert_ne!(again.word & bits::READY, 0);
            assert!(again.word >> 8 > seen.word >> 8);
            // Directions are independent.
            assert_eq!(io.readiness(Direction::Write).word & bits::READY, 0);
        });
    }

    #[test]
    fn a_clear_that_races_an_event_loses() {
        crate::loom::unit_test(|| {
            let io = ScheduledIo::new(None);
            dispatch(&io, EPOLLIN);
            let seen = io.readiness(Direction::Read);
            // The event arrives after the task read `seen` and hit WouldBlock, before the
            // clear: the clear must fail and readiness must survive.
            dispatch(&io, EPOLLIN);
            assert!(!io.clear_readiness(seen));
            assert_ne!(io.readiness(Direction::Read).word & bits::READY, 0);
        });
    }

    #[test]
    fn closed_and_error_clear_on_wouldblock_and_come_back_with_an_event() {
        crate::loom::unit_test(|| {
            let io = ScheduledIo::new(None);
            dispatch(&io, EPOLLIN | EPOLLRDHUP);
            let seen = io.readiness(Direction::Read);
            assert!(seen.is_closed());
            // An operation that still would block (a datagram socket shut down for
            // reading) consumes it.
            assert!(io.clear_readiness(seen));
            assert!(!io.readiness(Direction::Read).is_closed());
            dispatch(&io, EPOLLERR);
            let w = io.readiness(Direction::Write);
            assert!(w.is_closed());
            assert_ne!(w.word & bits::READY, 0);
            // A newer event than the one observed survives the clear.
            let stale = io.readiness(Direction::Read);
            dispatch(&io, EPOLLERR);
            assert!(!io.clear_readiness(stale));
            assert!(io.readiness(Direction::Read).is_closed());
        });
    }

    #[test]
    fn the_split_table_follows_the_rules() {
        crate::loom::unit_test(|| {
            // Every combination of the bits that matter, with some that do not.
            let relevant = [EPOLLIN, EPOLLPRI, EPOLLOUT, EPOLLERR, EPOLLHUP, EPOLLRDHUP];
            let noise = crate::eventpoll::EPOLLRDNORM | crate::eventpoll::EPOLLWRBAND;
            for combo in 0..64u32 {
                let mut events = 0;
                for (i, bit) in relevant.iter().enumerate() {
                    if combo & (1 << i) != 0 {
                        events |= bit;
                    }
                }
                assert_eq!(split_events(events), split_rule(events), "{events:#x}");
                assert_eq!(
                    split_events(events | noise),
                    split_rule(events),
                    "{events:#x}"
                );
            }
        });
    }

    #[test]
    fn a_waker_parked_twice_is_kept_once_and_woken_once() {
        crate::loom::unit_test(|| {
            let io = ScheduledIo::new(None);
            let (a, wa) = counter();
            assert!(io.poll_ready_slot(Direction::Read, &wa).is_none());
            assert!(io.poll_ready_slot(Direction::Read, &wa).is_none());
            let word = io.readiness(Direction::Read).word;
            assert_ne!(word & bits::SLOT, 0);
            assert_eq!(word & (bits::BUSY | bits::LIST), 0, "one task: no list");
            for w in dispatch(&io, EPOLLIN | EPOLLOUT) {
                w.wake();
            }
            assert_eq!(count(&a), 1);
            assert_eq!(io.readiness(Direction::Read).word & bits::SLOT, 0);
        });
    }

    #[test]
    fn an_event_with_nobody_parked_leaves_the_slot_free() {
        crate::loom::unit_test(|| {
            let io = ScheduledIo::new(None);
            for dir in [Direction::Read, Direction::Write] {
                assert!(dispatch(&io, EPOLLIN | EPOLLOUT).is_empty());
                let seen = io.readiness(dir);
                assert_eq!(seen.word & (bits::SLOT | bits::BUSY | bits::LIST), 0);
                assert!(io.clear_readiness(seen));
                // Not ready any more: a task parks, and the next event wakes it once.
                let (c, w) = counter();
                assert!(io.poll_ready_slot(dir, &w).is_none());
                assert_ne!(io.readiness(dir).word & bits::SLOT, 0);
                for w in dispatch(&io, EPOLLIN | EPOLLOUT) {
                    w.wake();
                }
                assert_eq!(count(&c), 1);
                assert_eq!(io.readiness(dir).word & (bits::SLOT | bits::BUSY), 0);
            }
        });
    }

    #[test]
    fn a_drained_direction_loses_ready_alone_unless_closed_errored_or_newer() {
        crate::loom::unit_test(|| {
            // Drained (a short read): READY goes, urgent data stays.
            let io = ScheduledIo::new(None);
            dispatch(&io, EPOLLIN | EPOLLPRI);
            let seen = io.readiness(Direction::Read);
            assert!(io.clear_drained(seen));
            let word = io.readiness(Direction::Read).word;
            assert_eq!(word & bits::READY, 0);
            assert_ne!(word & bits::PRIORITY, 0);
            // Closed or errored: the end of stream or the error is still to be read.
            for (events, dir) in [
                (EPOLLIN | EPOLLRDHUP, Direction::Read),
                (EPOLLERR, Direction::Write),
            ] {
                let io = ScheduledIo::new(None);
                dispatch(&io, events);
                let seen = io.readiness(dir);
                assert!(!io.clear_drained(seen));
                assert_eq!(io.readiness(dir).word, seen.word);
            }
            // An event since the short read: readiness stays.
            let io = ScheduledIo::new(None);
            dispatch(&io, EPOLLOUT);
            let seen = io.readiness(Direction::Write);
            dispatch(&io, EPOLLOUT);
            assert!(!io.clear_drained(seen));
            assert_ne!(io.readiness(Direction::Write).word & bits::READY, 0);
        });
    }

    #[test]
    fn one_event_for_both_directions_wakes_both_lists() {
        crate::loom::unit_test(|| {
            let io = ScheduledIo::new(None);
            let reader = Box::pin(WaiterNode::new(Direction::Read, false));
            let writer = Box::pin(WaiterNode::new(Direction::Write, false));
            let (r, wr) = counter();
            let (w, ww) = counter();
            // SAFETY: pinned in their boxes, dropped through drop_waiter below.
            unsafe {
                assert!(matches!(io.poll_waiter(&reader, &wr), WaitPoll::Pending));
                assert!(matches!(io.poll_waiter(&writer, &ww), WaitPoll::Pending));
            }
            for w in dispatch(&io, EPOLLIN | EPOLLOUT) {
                w.wake();
            }
            assert_eq!((count(&r), count(&w)), (1, 1));
            // SAFETY: as above.
            unsafe {
                io.drop_waiter(&reader, true);
                io.drop_waiter(&writer, true);
            }
        });
    }

    #[test]
    fn shutdown_leaves_both_directions_ready_closed_and_gone() {
        crate::loom::unit_test(|| {
            let io = ScheduledIo::new(None);
            let (c, w) = counter();
            assert!(io.poll_ready_slot(Direction::Write, &w).is_none());
            let mut wake = Vec::new();
            io.shut_down(&mut wake);
            wake.into_iter().for_each(Waker::wake);
            assert_eq!(count(&c), 1);
            for dir in [Direction::Read, Direction::Write] {
                let ev = io.readiness(dir);
                let all = bits::READY | bits::CLOSED | bits::GONE;
                assert_eq!(ev.word & all, all, "{dir:?}");
                assert!(ev.is_gone() && ev.is_closed());
            }
        });
    }

    #[test]
    fn wake_all_leaves_both_directions_ready() {
        crate::loom::unit_test(|| {
            let io = ScheduledIo::new(None);
            let (a, wa) = counter();
            assert!(io.poll_ready_slot(Direction::Write, &wa).is_none());
            let mut wake = Vec::new();
            io.wake_all(&mut wake);
            wake.into_iter().for_each(Waker::wake);
            assert_eq!(count(&a), 1);
            // A registration after it finds readiness instead of parking for ever.
            assert!(io.poll_ready_slot(Direction::Write, &wa).is_some());
            assert!(io.poll_ready_slot(Direction::Read, &wa).is_some());
        });
    }

    /// What each kernel event means for each direction (the rules of `split_rule`, as
    /// tokio and the socket man pages give them), one bit at a time.
    const SINGLE: [(u32, (u64, u64)); 6] = [
        (EPOLLIN, (bits::READY, 0)),
        (EPOLLPRI, (bits::READY | bits::PRIORITY, 0)),
        (EPOLLOUT, (0, bits::READY)),
        (
            EPOLLERR,
            (bits::READY | bits::ERROR, bits::READY | bits::ERROR),
        ),
        (
            EPOLLHUP,
            (bits::READY | bits::CLOSED, bits::READY | bits::CLOSED),
        ),
        (EPOLLRDHUP, (bits::READY | bits::CLOSED, 0)),
    ];

    #[test]
    fn every_event_bit_and_every_combination_splits_by_the_rules() {
        crate::loom::unit_test(|| {
            assert_eq!(split_events(0), (0, 0));
            for (event, expected) in SINGLE {
                assert_eq!(split_events(event), expected, "{event:#x}");
            }
            // A combination means what its bits mean, together.
            for combo in 0..64u32 {
                let (mut events, mut read, mut write) = (0, 0, 0);
                for (i, (event, (r, w))) in SINGLE.iter().enumerate() {
                    if combo & (1 << i) != 0 {
                        events |= event;
                        read |= r;
                        write |= w;
                    }
                }
                assert_eq!(split_events(events), (read, write), "{events:#x}");
            }
        });
    }

    #[test]
    fn the_word_bits_are_distinct_and_below_the_generation() {
        crate::loom::unit_test(|| {
            let flags = [
                bits::READY,
                bits::CLOSED,
                bits::ERROR,
                bits::PRIORITY,
                bits::SLOT,
                bits::BUSY,
                bits::LIST,
                bits::GONE,
            ];
            let mut all = 0;
            for f in flags {
                assert!(f.is_power_of_two(), "{f:#x}");
                assert_eq!(all & f, 0, "{f:#x} shared");
                all |= f;
            }
            assert_eq!(all, bits::MASK);
            assert_eq!(bits::GEN_ONE, bits::MASK + 1);
            assert_eq!(
                bits::READINESS,
                bits::READY | bits::CLOSED | bits::ERROR | bits::PRIORITY
            );
        });
    }

    #[test]
    fn which_words_let_a_poll_return_and_which_are_closed() {
        crate::loom::unit_test(|| {
            for (bit, ready, closed) in [
                (bits::READY, true, false),
                (bits::CLOSED, true, true),
                (bits::ERROR, true, true),
                (bits::GONE, true, false),
                (bits::PRIORITY, false, false),
                (bits::SLOT | bits::BUSY | bits::LIST, false, false),
                (0, false, false),
            ] {
                let word = bit | (5 * bits::GEN_ONE);
                let ev = ReadyEvent {
                    word,
                    direction: Direction::Read,
                    baton: false,
                };
                assert_eq!(is_ready(word), ready, "{bit:#x}");
                assert_eq!(ev.is_ready(), ready, "{bit:#x}");
                assert_eq!(ev.is_closed(), closed, "{bit:#x}");
                assert_eq!(ev.is_gone(), bit == bits::GONE, "{bit:#x}");
            }
        });
    }

    #[test]
    fn event_split() {
        crate::loom::unit_test(|| {
            assert_eq!(split_events(EPOLLIN), (bits::READY, 0));
            assert_eq!(split_events(EPOLLOUT), (0, bits::READY));
            assert_eq!(
                split_events(EPOLLHUP),
                (bits::READY | bits::CLOSED, bits::READY | bits::CLOSED)
            );
            assert_eq!(split_events(EPOLLPRI), (bits::READY | bits::PRIORITY, 0));
        });
    }

    #[test]
    fn fast_path_keeps_distinct_wakers_and_never_wakes_a_replaced_one() {
        crate::loom::unit_test(|| {
            let io = ScheduledIo::new(None);
            let (a, wa) = counter();
            let (b, wb) = counter();
            assert!(io.poll_ready_slot(Direction::Read, &wa).is_none());
            // The same waker again is not stored twice, and nothing is woken.
            assert!(io.poll_ready_slot(Direction::Read, &wa).is_none());
            // A second task: kept beside the first, not replacing it.
            assert!(io.poll_ready_slot(Direction::Read, &wb).is_none());
            assert_eq!((count(&a), count(&b)), (0, 0));
            for w in dispatch(&io, EPOLLIN) {
                w.wake();
            }
            assert_eq!((count(&a), count(&b)), (1, 1));
            // Ready now: no registration needed.
            assert!(io.poll_ready_slot(Direction::Read, &wa).is_some());
        });
    }

    #[test]
    fn an_event_wakes_one_exclusive_waiter_and_all_others() {
        crate::loom::unit_test(|| {
            let io = ScheduledIo::new(None);
            let nodes: Vec<_> = (0..3)
                .map(|_| Box::pin(WaiterNode::new(Direction::Read, true)))
                .collect();
            let plain = Box::pin(WaiterNode::new(Direction::Read, false));
            let counters: Vec<_> = (0..4).map(|_| counter()).collect();
            for (n, (_, w)) in nodes.iter().zip(&counters) {
                // SAFETY: the nodes are pinned in boxes and dropped via drop_waiter below.
                assert!(matches!(unsafe { io.poll_waiter(n, w) }, WaitPoll::Pending));
            }
            // SAFETY: as above.
            let polled = unsafe { io.poll_waiter(&plain, &counters[3].1) };
            assert!(matches!(polled, WaitPoll::Pending));
            for w in dispatch(&io, EPOLLIN) {
                w.wake();
            }
            let woken: Vec<usize> = counters.iter().map(|(c, _)| count(c)).collect();
            assert_eq!(
                woken,
                [1, 0, 0, 1],
                "FIFO: the first exclusive waiter and the plain one"
            );
            // The woken exclusive waiter is cancelled without trying: the baton passes.
            // SAFETY: node 0 was only polled on `io`.
            unsafe { io.drop_waiter(&nodes[0], false) };
            let woken: Vec<usize> = counters.iter().map(|(c, _)| count(c)).collect();
            assert_eq!(woken, [1, 1, 0, 1]);
            // Node 1 consumed its wakeup: nothing passes on.
            // SAFETY: as above.
            unsafe { io.drop_waiter(&nodes[1], true) };
            assert_eq!(count(&counters[2].0), 0);
            // SAFETY: as above.
            unsafe {
                io.drop_waiter(&nodes[2], false);
                io.drop_waiter(&plain, false);
            }
        });
    }

    #[test]
    fn a_baton_passes_only_while_the_direction_is_ready() {
        crate::loom::unit_test(|| {
            let handed_on = StdArc::new(StdAtomicUsize::new(0));
            let hook = handed_on.clone();
            let io = ScheduledIo::new(Some(OsArc::new(move || {
                hook.fetch_add(1, Ordering::SeqCst);
            })));
            let nodes: Vec<_> = (0..3)
                .map(|_| Box::pin(WaiterNode::new(Direction::Read, true)))
                .collect();
            let counters: Vec<_> = (0..3).map(|_| counter()).collect();
            for (n, (_, w)) in nodes.iter().zip(&counters).take(2) {
                // SAFETY: the nodes are pinned in boxes and dropped via drop_waiter below.
                assert!(matches!(unsafe { io.poll_waiter(n, w) }, WaitPoll::Pending));
            }
            dispatch(&io, EPOLLIN).into_iter().for_each(Waker::wake);
            // SAFETY: as above.
            let poll = |i: usize| unsafe { io.poll_waiter(&nodes[i], &counters[i].1) };
            let WaitPoll::Ready(seen) = poll(0) else {
                panic!("the woken exclusive waiter was not ready");
            };
            assert!(seen.baton);
            // Its operation drained the source (WouldBlock cleared the readiness): the
            // next waiter is not woken for nothing.
            assert!(io.clear_readiness(seen));
            assert!(matches!(poll(2), WaitPoll::Pending));
            io.pass_baton_if_ready(Direction::Read);
            assert_eq!(count(&counters[1].0), 0, "a baton passed while not ready");
            // The next event wakes it; it takes one of several: the baton goes on.
            dispatch(&io, EPOLLIN).into_iter().for_each(Waker::wake);
            assert_eq!(count(&counters[1].0), 1);
            assert_eq!(count(&counters[2].0), 0, "not wake-one");
            assert!(matches!(poll(1), WaitPoll::Ready(ev) if ev.baton));
            io.pass_baton_if_ready(Direction::Read);
            assert_eq!(count(&counters[2].0), 1, "the baton did not go on");
            // Nobody waits here any more: ready, the baton goes to another worker's
            // waiter (the hook); drained, it goes nowhere.
            assert!(matches!(poll(2), WaitPoll::Ready(_)));
            io.pass_baton_if_ready(Direction::Read);
            assert_eq!(handed_on.load(Ordering::SeqCst), 1);
            assert!(io.clear_readiness(io.readiness(Direction::Read)));
            io.pass_baton_if_ready(Direction::Read);
            assert_eq!(
                handed_on.load(Ordering::SeqCst),
                1,
                "handed on while not ready"
            );
            for n in &nodes {
                // SAFETY: as above.
                unsafe { io.drop_waiter(n, true) };
            }
        });
    }

    /// A waiting node's rules: a new waker replaces the old (the event wakes the task
    /// where it polls now); an exclusive node waits for its turn while another took the
    /// event, a shared one returns as soon as the direction is ready; the baton (the
    /// duty to pass the wakeup on) goes only with an exclusive node's notification.
    #[test]
    fn a_waiting_nodes_waker_turn_and_baton() {
        crate::loom::unit_test(|| {
            let io = ScheduledIo::new(None);
            let first = Box::pin(WaiterNode::new(Direction::Read, true));
            let second = Box::pin(WaiterNode::new(Direction::Read, true));
            let shared = Box::pin(WaiterNode::new(Direction::Read, false));
            let [
                (old, old_waker),
                (new, new_waker),
                (b, b_waker),
                (s, s_waker),
            ] = [(); 4].map(|()| counter());
            // SAFETY: the nodes are pinned in boxes and dropped via drop_waiter below.
            let poll = |n: &WaiterNode, w: &Waker| unsafe { io.poll_waiter(n, w) };
            assert!(matches!(poll(&first, &old_waker), WaitPoll::Pending));
            // Polled again from elsewhere (a select, a JoinSet): the newest waker counts.
            assert!(matches!(poll(&first, &new_waker), WaitPoll::Pending));
            assert!(matches!(poll(&second, &b_waker), WaitPoll::Pending));
            assert!(matches!(poll(&shared, &s_waker), WaitPoll::Pending));
            dispatch(&io, EPOLLIN).into_iter().for_each(Waker::wake);
            assert_eq!(count(&old), 0, "a replaced waker was woken");
            assert_eq!(count(&new), 1, "the newest waker was not woken");
            assert_eq!((count(&b), count(&s)), (0, 1));
            // The second exclusive node, polled while ready, still waits its turn.
            assert!(
                matches!(poll(&second, &b_waker), WaitPoll::Pending),
                "an exclusive waiter took an event another was woken for"
            );
            // The shared node returns, with no baton to pass; the woken exclusive one
            // returns with it.
            assert!(matches!(poll(&shared, &s_waker), WaitPoll::Ready(ev) if !ev.baton));
            assert!(matches!(poll(&first, &new_waker), WaitPoll::Ready(ev) if ev.baton));
            // An exclusive node that finds the direction ready at its first poll was
            // woken by nobody: no baton either.
            let late = Box::pin(WaiterNode::new(Direction::Read, true));
            assert!(matches!(poll(&late, &b_waker), WaitPoll::Ready(ev) if !ev.baton));
            for n in [&first, &second, &shared, &late] {
                // SAFETY: as above.
                unsafe { io.drop_waiter(n, true) };
            }
        });
    }

    #[test]
    fn a_waiting_node_unlinks_when_dropped() {
        crate::loom::unit_test(|| {
            let io = ScheduledIo::new(None);
            let node = Box::pin(WaiterNode::new(Direction::Write, true));
            let (c, w) = counter();
            // SAFETY: pinned, dropped via drop_waiter.
            let polled = unsafe { io.poll_waiter(&node, &w) };
            assert!(matches!(polled, WaitPoll::Pending));
            // SAFETY: as above.
            unsafe { io.drop_waiter(&node, false) };
            for w in dispatch(&io, EPOLLOUT) {
                w.wake();
            }
            assert_eq!(count(&c), 0);
            assert!(!io.has_exclusive_waiter(Direction::Write));
        });
    }
}
