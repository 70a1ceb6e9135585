//! One I/O source's readiness and waiters.
//!
//! # Readiness
//!
//! Each direction (read, write) has its own word: readiness bits in the low byte and
//! a 56-bit generation above, bumped by every event. A task that sees readiness,
//! tries the operation and gets `WouldBlock` clears the READY bit only if the
//! generation is still the one it saw (a compare-and-swap on the whole word), so a
//! clear can never erase an event that arrived after the failed attempt. (tokio keeps
//! a truncated "tick" for this, whose wrap-around lets a stale clear win: tokio
//! #6133, #8054, #8331. A 56-bit counter does not wrap in practice.)
//!
//! # Waiters
//!
//! Tasks wait in two ways:
//!
//! - the **fast path**: `poll_readable` / `poll_writable` (what `AsyncRead` /
//!   `AsyncWrite` impls use) keep one waker slot per direction; a second distinct
//!   waker is kept beside it rather than replacing it (replacing loses the first
//!   task's wakeup: tokio #1413), and a replaced waker is never woken merely for being
//!   replaced (that busy-loops: async-io);
//! - **waiter nodes**: `readable()` / `writable()` futures own an intrusive node,
//!   linked on the source's list while they wait. No allocation per wait, and a node
//!   unlinks itself when its future is dropped.
//!
//! A node may ask for **exclusive** readiness (accept on a shared listener, several
//! tasks receiving on one datagram socket). An event wakes every non-exclusive waiter
//! of its direction but only the first exclusive one, in FIFO order (the user-space
//! counterpart of EPOLLEXCLUSIVE, with the same reason: no stampede). An exclusive
//! waiter that was woken and is dropped (cancelled) without having completed its
//! operation passes the wakeup on to the next exclusive waiter (baton passing), so no
//! event is lost.
//!
//! # Locking
//!
//! The readiness words are atomics. The waker slots and the waiter list are guarded by
//! the source's mutex; wakers are collected under it and woken after it is released.
//! Every field of a waiter node (its links, state and waker) is guarded by the mutex of
//! the source it waits on, and is reached only through `WaiterNode::with`, one short
//! access at a time (the node's cell is the `crate::loom` shim's, so the loom models
//! check that rule).

use std::marker::PhantomPinned;
use std::ptr::NonNull;
use std::task::Waker;

use crate::eventpoll::{EPOLLERR, EPOLLHUP, EPOLLIN, EPOLLOUT, EPOLLPRI, EPOLLRDHUP};
use crate::loom::cell::UnsafeCell;
use crate::loom::os::sync::Arc as OsArc;
use crate::loom::sync::Mutex;
use crate::loom::sync::atomic::{AtomicU64, Ordering};

/// A direction of readiness.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Direction {
    Read,
    Write,
}

/// Readiness bits of one direction.
pub mod bits {
    /// The operation may succeed without blocking.
    pub const READY: u64 = 1 << 0;
    /// The direction is closed for good (read: the peer shut down writing, or hang-up;
    /// write: hang-up). Never cleared: every later operation returns at once.
    pub const CLOSED: u64 = 1 << 1;
    /// An error is pending on the socket (EPOLLERR). Never cleared.
    pub const ERROR: u64 = 1 << 2;
    /// Urgent data (EPOLLPRI), read direction only.
    pub const PRIORITY: u64 = 1 << 3;

    pub const MASK: u64 = 0xFF;
    pub const GEN_ONE: u64 = 1 << 8;
}

/// What a task saw when it found a direction ready: the bits, and the word to hand back
/// to [`ScheduledIo::clear_readiness`] if the operation then returns `WouldBlock`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ReadyEvent {
    pub word: u64,
    pub direction: Direction,
    /// The waiter that saw this was woken as an exclusive waiter: it holds the
    /// event's baton, to pass on if it leaves readiness unconsumed (see
    /// [`ScheduledIo::pass_baton_if_ready`]).
    pub baton: bool,
}

impl ReadyEvent {
    pub fn is_closed(&self) -> bool {
        self.word & (bits::CLOSED | bits::ERROR) != 0
    }
}

/// Turns kernel event bits into (read bits, write bits).
pub(crate) fn split_events(events: u32) -> (u64, u64) {
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

/// Called when a read event reaches a source that has no reader waiting.
pub type UnclaimedHook = OsArc<dyn Fn() + Send + Sync>;

/// The per-source state shared by the reactor and the tasks using the source.
pub struct ScheduledIo {
    read: AtomicU64,
    write: AtomicU64,
    waiters: Mutex<Waiters>,
    /// For a source shared by several workers (see `io::SharedAsync`): hands a read
    /// event nobody here waits for to another worker.
    unclaimed: Option<UnclaimedHook>,
}

/// Everything guarded by the source's mutex.
struct Waiters {
    reader: Vec<Waker>,
    writer: Vec<Waker>,
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
pub struct WaiterNode {
    inner: UnsafeCell<NodeInner>,
    _pinned: PhantomPinned,
}

struct NodeInner {
    direction: Direction,
    exclusive: bool,
    waker: Option<Waker>,
    state: NodeState,
    prev: Option<NonNull<WaiterNode>>,
    next: Option<NonNull<WaiterNode>>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum NodeState {
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
    pub fn new(direction: Direction, exclusive: bool) -> WaiterNode {
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
    unsafe fn with<R>(&self, f: impl FnOnce(&mut NodeInner) -> R) -> R {
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

/// How a waiter poll went.
pub enum WaitPoll {
    Ready(ReadyEvent),
    Pending,
}

impl ScheduledIo {
    pub fn new(unclaimed: Option<UnclaimedHook>) -> ScheduledIo {
        ScheduledIo {
            read: AtomicU64::new(0),
            write: AtomicU64::new(0),
            waiters: Mutex::new(Waiters {
                reader: Vec::new(),
                writer: Vec::new(),
                head: None,
                tail: None,
            }),
            unclaimed,
        }
    }
}

impl ScheduledIo {
    #[inline]
    fn word(&self, dir: Direction) -> &AtomicU64 {
        match dir {
            Direction::Read => &self.read,
            Direction::Write => &self.write,
        }
    }

    /// The direction's current word.
    #[inline]
    pub fn readiness(&self, dir: Direction) -> ReadyEvent {
        ReadyEvent {
            baton: false,
            word: self.word(dir).load(Ordering::Acquire),
            direction: dir,
        }
    }

    /// Marks a direction ready without an event (a freshly accepted socket is assumed
    /// readable and writable, so its first operation is tried at once).
    pub fn assume_ready(&self, dir: Direction) {
        self.set_readiness(dir, bits::READY);
    }

    /// Records an event for `dir` (the reactor's callback). Returns whether anything
    /// was recorded.
    fn set_readiness(&self, dir: Direction, new_bits: u64) -> bool {
        if new_bits == 0 {
            return false;
        }
        let word = self.word(dir);
        let mut cur = word.load(Ordering::Acquire);
        loop {
            let next =
                ((cur | new_bits) & bits::MASK) | ((cur & !bits::MASK).wrapping_add(bits::GEN_ONE));
            match word.compare_exchange_weak(cur, next, Ordering::AcqRel, Ordering::Acquire) {
                Ok(_) => return true,
                Err(actual) => cur = actual,
            }
        }
    }

    /// After `WouldBlock`: clears READY if no event arrived since `seen`. Returns
    /// whether it cleared.
    #[inline]
    pub fn clear_readiness(&self, seen: ReadyEvent) -> bool {
        // Every bit goes, closed and error included: the operation just said it would
        // block, so whatever they announced has been consumed (a socket error is taken
        // once; a datagram socket shut down for reading reports readable yet never has
        // data). A later error or hang-up is a new event and sets them again. A stream
        // at end of stream never gets here: its reads return 0, not `WouldBlock`.
        let word = self.word(seen.direction);
        #[cfg(epitome_loom_mutant = "clear_without_generation")]
        {
            // Planted bug: clear whatever is there, erasing a newer event.
            let _ = word.fetch_and(!bits::MASK, Ordering::AcqRel);
            return true;
        }
        #[allow(unreachable_code)]
        word.compare_exchange(
            seen.word,
            seen.word & !bits::MASK,
            Ordering::AcqRel,
            Ordering::Acquire,
        )
        .is_ok()
    }

    /// After a short read or write (less than offered): the socket was drained, so the
    /// next attempt would block; clears READY alone, unless the direction is closed or
    /// errored (the end of stream, or the error, is still to be read) or an event
    /// arrived since `seen`. Returns whether it cleared.
    #[inline]
    pub fn clear_drained(&self, seen: ReadyEvent) -> bool {
        if seen.word & (bits::CLOSED | bits::ERROR) != 0 {
            return false;
        }
        self.word(seen.direction)
            .compare_exchange(
                seen.word,
                seen.word & !bits::READY,
                Ordering::AcqRel,
                Ordering::Acquire,
            )
            .is_ok()
    }

    /// The reactor's callback for one event: records readiness, then wakes the waiters
    /// that the event concerns (pushing their wakers to `wake`). A read event that
    /// woke nobody on a shared source pushes its hook to `unclaimed`.
    pub fn dispatch(&self, events: u32, wake: &mut Vec<Waker>, unclaimed: &mut Vec<UnclaimedHook>) {
        let (r, w) = split_events(events);
        let read = self.set_readiness(Direction::Read, r);
        let write = self.set_readiness(Direction::Write, w);
        if read || write {
            let mut waiters = self.waiters.lock().unwrap_or_else(|e| e.into_inner());
            if read {
                let woken = waiters.wake_direction(Direction::Read, wake);
                if woken == 0 {
                    if let Some(hook) = &self.unclaimed {
                        unclaimed.push(hook.clone());
                    }
                }
            }
            if write {
                waiters.wake_direction(Direction::Write, wake);
            }
        }
    }

    /// Whether an exclusive waiter waits for `dir` here.
    pub fn has_exclusive_waiter(&self, dir: Direction) -> bool {
        let waiters = self.waiters.lock().unwrap_or_else(|e| e.into_inner());
        let mut cur = waiters.head;
        while let Some(node) = cur {
            // SAFETY: nodes on the list are live and guarded by the mutex we hold.
            let (direction, exclusive, next) =
                unsafe { with_node(node, |n| (n.direction, n.exclusive, n.next)) };
            if direction == dir && exclusive {
                return true;
            }
            cur = next;
        }
        false
    }

    /// Hands an event to this source: marks `dir` ready and wakes its first exclusive
    /// waiter (the cross-worker baton of a shared source).
    pub fn hand_event(&self, dir: Direction) {
        self.set_readiness(dir, bits::READY);
        let w = self
            .waiters
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .notify_first_exclusive(dir);
        if let Some(w) = w {
            w.wake();
        }
    }

    /// Wakes every waiter (deregistration or shutdown: their next poll finds out).
    pub fn wake_all(&self, wake: &mut Vec<Waker>) {
        let mut waiters = self.waiters.lock().unwrap_or_else(|e| e.into_inner());
        wake.append(&mut waiters.reader);
        wake.append(&mut waiters.writer);
        while let Some(node) = waiters.pop_front() {
            // SAFETY: under the mutex; the node is live until it unlinks, and it was
            // just unlinked by us, so we finish the notification.
            let w = unsafe {
                with_node(node, |n| {
                    n.state = NodeState::Notified;
                    n.waker.take()
                })
            };
            if let Some(w) = w {
                wake.push(w);
            }
        }
    }

    /// The fast path: `Ready` if `dir` is ready, else stores `waker` (beside any other
    /// distinct waker already waiting) and re-checks.
    ///
    /// Inlined, with the registration out of line: a ready source (the common case on
    /// a busy connection) costs one load and a branch.
    #[inline]
    pub fn poll_ready_slot(&self, dir: Direction, waker: &Waker) -> Option<ReadyEvent> {
        let ev = self.readiness(dir);
        if ev.word & bits::READY != 0 || ev.is_closed() {
            return Some(ev);
        }
        self.register_slot(dir, waker)
    }

    #[inline(never)]
    fn register_slot(&self, dir: Direction, waker: &Waker) -> Option<ReadyEvent> {
        let mut waiters = self.waiters.lock().unwrap_or_else(|e| e.into_inner());
        let slot = match dir {
            Direction::Read => &mut waiters.reader,
            Direction::Write => &mut waiters.writer,
        };
        if !slot.iter().any(|w| w.will_wake(waker)) {
            slot.push(waker.clone());
        }
        drop(waiters);
        if cfg!(epitome_loom_mutant = "slot_no_recheck") {
            // Planted bug: trust the first look, missing an event that came between it
            // and the registration.
            return None;
        }
        // An event may have come between the first look and the registration.
        let ev = self.readiness(dir);
        (ev.word & bits::READY != 0 || ev.is_closed()).then_some(ev)
    }

    /// Polls a waiter node (a `readable()` / `writable()` future).
    ///
    /// # Safety
    /// `node` is pinned and stays alive until [`drop_waiter`](Self::drop_waiter) is
    /// called for it.
    pub unsafe fn poll_waiter(&self, node: &WaiterNode, waker: &Waker) -> WaitPoll {
        // Planted bug: read readiness before taking the lock, so an event that comes
        // between the read and the registration finds no waiter, and the registration
        // trusts the stale read.
        #[cfg(epitome_loom_mutant = "waiter_stale_readiness")]
        let stale = (
            self.readiness(Direction::Read),
            self.readiness(Direction::Write),
        );
        let mut waiters = self.waiters.lock().unwrap_or_else(|e| e.into_inner());
        // SAFETY: the node is live (the caller) and its fields are guarded by the mutex
        // we hold; the same holds for every `node.with` below.
        let (direction, exclusive, state) =
            unsafe { node.with(|n| (n.direction, n.exclusive, n.state)) };
        #[cfg(epitome_loom_mutant = "waiter_stale_readiness")]
        let ev = match direction {
            Direction::Read => stale.0,
            Direction::Write => stale.1,
        };
        #[cfg(not(epitome_loom_mutant = "waiter_stale_readiness"))]
        let ev = self.readiness(direction);
        let ready = ev.word & bits::READY != 0 || ev.is_closed();
        let mut replaced = None;
        let res = match state {
            NodeState::Notified | NodeState::Idle if ready => {
                // SAFETY: see above.
                replaced = unsafe {
                    node.with(|n| {
                        n.state = NodeState::Idle;
                        n.waker.take()
                    })
                };
                WaitPoll::Ready(ReadyEvent {
                    baton: exclusive && state == NodeState::Notified,
                    ..ev
                })
            }
            NodeState::Waiting if ready && !exclusive => {
                // Readiness arrived while waiting (the event woke us, or we are polled
                // early): leave the list.
                // SAFETY: the node is on the list, under the mutex.
                unsafe { waiters.unlink(NonNull::from(node)) };
                // SAFETY: see above.
                replaced = unsafe {
                    node.with(|n| {
                        n.state = NodeState::Idle;
                        n.waker.take()
                    })
                };
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
                // SAFETY: see above.
                replaced = unsafe {
                    node.with(|n| {
                        n.state = NodeState::Waiting;
                        n.waker.replace(waker.clone())
                    })
                };
                // SAFETY: the node is pinned and alive until `drop_waiter`.
                unsafe { waiters.push_back(NonNull::from(node)) };
                WaitPoll::Pending
            }
        };
        drop(replaced);
        res
    }

    /// A waiter node's future is done with it: unlinks it, and if it held an exclusive
    /// wakeup it did not use (`consumed` false), passes the wakeup to the next
    /// exclusive waiter.
    ///
    /// # Safety
    /// `node` was only ever polled on this source.
    pub unsafe fn drop_waiter(&self, node: &WaiterNode, consumed: bool) {
        let mut wake = None;
        {
            let mut waiters = self.waiters.lock().unwrap_or_else(|e| e.into_inner());
            // SAFETY: the node is live (the caller's future owns it) and its fields are
            // guarded by the mutex we hold.
            let (state, exclusive, direction) =
                unsafe { node.with(|n| (n.state, n.exclusive, n.direction)) };
            match state {
                // SAFETY: on the list, under the mutex.
                NodeState::Waiting => unsafe { waiters.unlink(NonNull::from(node)) },
                // (The planted bug `no_baton` keeps the unused wakeup.)
                NodeState::Notified
                    if exclusive && !consumed && !cfg!(epitome_loom_mutant = "no_baton") =>
                {
                    wake = Some(waiters.notify_first_exclusive(direction));
                }
                _ => {}
            }
            // SAFETY: as above.
            let old = unsafe {
                node.with(|n| {
                    n.state = NodeState::Idle;
                    n.waker.take()
                })
            };
            drop(old);
        }
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
    pub fn pass_baton_if_ready(&self, dir: Direction) {
        if self.readiness(dir).word & bits::READY == 0 {
            return;
        }
        let w = self
            .waiters
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .notify_first_exclusive(dir);
        match w {
            Some(w) => w.wake(),
            None => self.hand_on(),
        }
    }

    fn hand_on(&self) {
        if let Some(hook) = &self.unclaimed {
            hook();
        }
    }

    /// Clears only the bits `mask` of `seen`'s direction, unless an event arrived since
    /// `seen` (`io::ReadyGuard::clear_ready_matching`: a caller that consumed urgent data
    /// leaves ordinary readability set).
    pub fn clear_matching(&self, seen: ReadyEvent, mask: u64) -> bool {
        let mask = mask & bits::MASK;
        self.word(seen.direction)
            .compare_exchange(
                seen.word,
                seen.word & !mask,
                Ordering::AcqRel,
                Ordering::Acquire,
            )
            .is_ok()
    }

    /// Stores `waker` in `dir`'s fast-path slot whatever the readiness, so the next event
    /// of `dir` wakes it: for a waiter that wants one bit (urgent data, an error) while
    /// the direction is ready for other reasons.
    pub fn register_waker(&self, dir: Direction, waker: &Waker) {
        let _ = self.register_slot(dir, waker);
    }
}

impl Waiters {
    /// Wakes the fast-path slots and the nodes of `dir`: every non-exclusive node, and
    /// the first exclusive one.
    #[inline]
    fn wake_direction(&mut self, dir: Direction, wake: &mut Vec<Waker>) -> usize {
        let slot_empty = match dir {
            Direction::Read => self.reader.is_empty(),
            Direction::Write => self.writer.is_empty(),
        };
        // Nobody waits for this direction (a writer that never filled its buffer, on
        // every event of an ET registration that reports both directions).
        if slot_empty && self.head.is_none() {
            return 0;
        }
        self.wake_direction_slow(dir, wake)
    }

    #[inline(never)]
    fn wake_direction_slow(&mut self, dir: Direction, wake: &mut Vec<Waker>) -> usize {
        let before = wake.len();
        match dir {
            Direction::Read => wake.append(&mut self.reader),
            Direction::Write => wake.append(&mut self.writer),
        }
        let mut exclusive_woken = false;
        let mut cur = self.head;
        while let Some(node) = cur {
            // SAFETY: nodes on the list are live (they unlink before going away) and
            // guarded by the mutex the caller holds.
            let (next, direction, exclusive) =
                unsafe { with_node(node, |n| (n.next, n.direction, n.exclusive)) };
            cur = next;
            if direction != dir {
                continue;
            }
            if exclusive {
                // (The planted bug `wake_all_exclusive` wakes every exclusive waiter.)
                if exclusive_woken && !cfg!(epitome_loom_mutant = "wake_all_exclusive") {
                    continue;
                }
                exclusive_woken = true;
            }
            // SAFETY: on the list, under the mutex.
            unsafe { self.unlink(node) };
            // SAFETY: live (it is ours to notify now), under the mutex.
            let w = unsafe {
                with_node(node, |n| {
                    n.state = NodeState::Notified;
                    n.waker.take()
                })
            };
            if let Some(w) = w {
                wake.push(w);
            }
        }
        wake.len() - before
    }

    /// Notifies the first exclusive waiter of `dir` (baton passing).
    fn notify_first_exclusive(&mut self, dir: Direction) -> Option<Waker> {
        let mut cur = self.head;
        while let Some(node) = cur {
            // SAFETY: as in `wake_direction`.
            let (next, direction, exclusive) =
                unsafe { with_node(node, |n| (n.next, n.direction, n.exclusive)) };
            cur = next;
            if direction == dir && exclusive {
                // SAFETY: on the list, under the mutex.
                unsafe { self.unlink(node) };
                // SAFETY: live (it is ours to notify now), under the mutex.
                return unsafe {
                    with_node(node, |n| {
                        n.state = NodeState::Notified;
                        n.waker.take()
                    })
                };
            }
        }
        None
    }

    /// # Safety
    /// `node` is live, not on the list, and guarded by the mutex the caller holds.
    unsafe fn push_back(&mut self, node: NonNull<WaiterNode>) {
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
    unsafe fn unlink(&mut self, node: NonNull<WaiterNode>) {
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

    fn pop_front(&mut self) -> Option<NonNull<WaiterNode>> {
        let head = self.head?;
        // SAFETY: the head is a live node on the list, under the caller's mutex.
        unsafe { self.unlink(head) };
        Some(head)
    }
}

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
    }

    #[test]
    fn a_clear_that_races_an_event_loses() {
        let io = ScheduledIo::new(None);
        dispatch(&io, EPOLLIN);
        let seen = io.readiness(Direction::Read);
        // The event arrives after the task read `seen` and hit WouldBlock, before the
        // clear: the clear must fail and readiness must survive.
        dispatch(&io, EPOLLIN);
        assert!(!io.clear_readiness(seen));
        assert_ne!(io.readiness(Direction::Read).word & bits::READY, 0);
    }

    #[test]
    fn closed_and_error_clear_on_wouldblock_and_come_back_with_an_event() {
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
    }

    #[test]
    fn event_split() {
        assert_eq!(split_events(EPOLLIN), (bits::READY, 0));
        assert_eq!(split_events(EPOLLOUT), (0, bits::READY));
        assert_eq!(
            split_events(EPOLLHUP),
            (bits::READY | bits::CLOSED, bits::READY | bits::CLOSED)
        );
        assert_eq!(split_events(EPOLLPRI), (bits::READY | bits::PRIORITY, 0));
    }

    #[test]
    fn fast_path_keeps_distinct_wakers_and_never_wakes_a_replaced_one() {
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
    }

    #[test]
    fn an_event_wakes_one_exclusive_waiter_and_all_others() {
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
    }

    #[test]
    fn a_waiting_node_unlinks_when_dropped() {
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
    }
}
