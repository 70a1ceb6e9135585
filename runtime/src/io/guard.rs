//! `ReadyGuard`: readiness found, and what to do after trying the operation.

use std::fmt;
use std::io;
use std::os::fd::AsFd;

use super::wait::Found;
use super::{Async, Interest, Ready};
use crate::reactor::scheduled_io::{Direction, ReadyEvent};

/// Readiness was found (tokio's `AsyncFdReadyGuard`). If the operation you then try
/// returns `WouldBlock`, call [`clear_ready`](Self::clear_ready) (or use
/// [`try_io`](Self::try_io), which does).
///
/// Unlike tokio's guard, `clear_ready` takes `&self`, and [`get_ref`](Self::get_ref)
/// and `try_io`'s closure give the inner value (`&T`), not the `Async` (epitome's guard
/// came first; [`get_inner`](Self::get_inner) is tokio's name for the same).
pub struct ReadyGuard<'a, T: AsFd> {
    source: &'a Async<T>,
    /// The direction that answered (for `readable()`, `poll_readable`, ...: the only one).
    event: ReadyEvent,
    /// What a plain guard does not need: `None` for one direction found for a readable
    /// or writable interest (every guard of the I/O fast path, which this keeps at
    /// the size of a reference and an event).
    extra: Option<Box<Extra>>,
}

/// The rest of a guard from `ready(interest)` that found both directions, or waited
/// for urgent data or errors, or had part of its readiness cleared.
struct Extra {
    /// The write direction, when both were found.
    other: Option<ReadyEvent>,
    interest: Interest,
    /// Cleared by `clear_ready_matching`, so no longer reported by `ready()`.
    cleared: Ready,
}

impl<'a, T: AsFd> ReadyGuard<'a, T> {
    /// A guard for one direction's event (the fast path: no allocation, no lookups).
    #[inline]
    pub(super) fn new(source: &'a Async<T>, event: ReadyEvent) -> Self {
        ReadyGuard {
            source,
            event,
            extra: None,
        }
    }

    pub(super) fn from_found(source: &'a Async<T>, found: Found, interest: Interest) -> Self {
        let (event, other) = match (found.read, found.write) {
            (Some(r), w) => (r, w),
            (None, Some(w)) => (w, None),
            (None, None) => unreachable!("a wait answers with at least one direction"),
        };
        // One direction, asked as readable or writable: a plain guard says the same.
        let plain = other.is_none() && !interest.is_priority() && !interest.is_error();
        ReadyGuard {
            source,
            event,
            extra: (!plain).then(|| {
                Box::new(Extra {
                    other,
                    interest,
                    cleared: Ready::EMPTY,
                })
            }),
        }
    }

    /// The interest a plain guard answers: its direction's.
    fn interest(&self) -> Interest {
        match &self.extra {
            Some(extra) => extra.interest,
            None => match self.event.direction {
                Direction::Read => Interest::READABLE,
                Direction::Write => Interest::WRITABLE,
            },
        }
    }

    fn found(&self) -> Found {
        let mut found = Found {
            read: None,
            write: None,
        };
        let other = self.extra.as_ref().and_then(|e| e.other);
        for ev in [Some(self.event), other].into_iter().flatten() {
            match ev.direction {
                Direction::Read => found.read = Some(ev),
                Direction::Write => found.write = Some(ev),
            }
        }
        found
    }

    /// The operation returned `WouldBlock`: clear readiness (closed and error states
    /// included: the operation says they are consumed), unless an event arrived since
    /// it was observed (then the next wait returns at once). A guard of
    /// `ready(Interest::PRIORITY)` or `ready(Interest::ERROR)` clears only those bits.
    #[inline]
    pub fn clear_ready(&self) {
        match &self.extra {
            None => {
                self.source.reg.clear(self.event);
            }
            Some(extra) => self.found().clear(&self.source.reg, extra.interest),
        }
    }

    /// Clears only the readiness in `ready` (generation-checked like
    /// [`clear_ready`](Self::clear_ready)); [`ready`](Self::ready) stops reporting it.
    /// For a guard of `ready(READABLE | WRITABLE)` whose write turned out to block
    /// while reading still can.
    pub fn clear_ready_matching(&mut self, ready: Ready) {
        self.found().clear_matching(&self.source.reg, ready);
        let interest = self.interest();
        let extra = self.extra.get_or_insert_with(|| {
            Box::new(Extra {
                other: None,
                interest,
                cleared: Ready::EMPTY,
            })
        });
        extra.cleared |= ready;
    }

    /// The operation took less than it was offered (a short read or write), so the
    /// socket is drained for now: clear readiness without spending a syscall on the
    /// `WouldBlock` that would confirm it. Nothing is cleared if the direction is closed
    /// or errored (end of stream or the error is still to come) or if an event arrived
    /// since readiness was observed.
    #[inline]
    pub fn clear_drained(&self) {
        self.source.reg.clear_drained(self.event);
    }

    /// Keep readiness set (the operation did not exhaust it).
    pub fn retain_ready(&self) {}

    /// The readiness found, as far as the interest asked for it (a `readable()` guard
    /// reports readable and read-closed; an error shows only to an interest that
    /// includes [`Interest::ERROR`]).
    pub fn ready(&self) -> Ready {
        let cleared = self.extra.as_ref().map_or(Ready::EMPTY, |e| e.cleared);
        self.found().ready(self.interest()) - cleared
    }

    /// The peer closed this direction (read: end of stream or hang-up; write: hang-up)
    /// or an error is pending: operations return at once from now on.
    pub fn is_closed(&self) -> bool {
        self.event.is_closed()
    }

    /// Runs `f`; on `WouldBlock` clears readiness and returns `Err(TryIoError)`.
    pub fn try_io<R>(
        &self,
        f: impl FnOnce(&T) -> io::Result<R>,
    ) -> Result<io::Result<R>, TryIoError> {
        match f(self.source.get_ref()) {
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                self.clear_ready();
                Err(TryIoError(()))
            }
            res => Ok(res),
        }
    }

    /// The registered value.
    pub fn get_ref(&self) -> &'a T {
        self.source.get_ref()
    }

    /// The registered value (tokio's name; the same as [`get_ref`](Self::get_ref)).
    pub fn get_inner(&self) -> &'a T {
        self.source.get_ref()
    }
}

impl<T: AsFd + fmt::Debug> fmt::Debug for ReadyGuard<'_, T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ReadyGuard")
            .field("source", self.source)
            .field("ready", &self.ready())
            .finish()
    }
}

/// `try_io` found the operation would block (readiness was cleared).
#[derive(Debug)]
pub struct TryIoError(());

impl fmt::Display for TryIoError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("operation would block")
    }
}

impl std::error::Error for TryIoError {}
