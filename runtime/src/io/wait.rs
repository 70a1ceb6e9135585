//! Waiting for an [`Interest`]: one direction or both, or a bit (urgent data, an error)
//! that a direction's readiness alone does not single out.

use std::future::{Future, poll_fn};
use std::io;
use std::pin::pin;
use std::task::{Poll, ready};

use super::{Interest, Ready};
use crate::coop;
use crate::reactor::registration::Registration;
use crate::reactor::scheduled_io::{Direction, ReadyEvent};

/// What a wait found: the word of each direction that answered (generation included, for
/// a later generation-checked clear).
#[derive(Clone, Copy, Debug)]
pub(crate) struct Found {
    pub(crate) read: Option<ReadyEvent>,
    pub(crate) write: Option<ReadyEvent>,
}

impl Found {
    /// The readiness found, restricted to what `interest` asked for (as tokio reports
    /// it). Never empty: if the words hold only bits outside the interest (an error
    /// left after readability was cleared, say), those are reported rather than nothing.
    pub(crate) fn ready(&self, interest: Interest) -> Ready {
        let mut all = Ready::EMPTY;
        if let Some(ev) = self.read {
            all |= Ready::from_read_word(ev.word);
        }
        if let Some(ev) = self.write {
            all |= Ready::from_write_word(ev.word);
        }
        let asked = all & Ready::mask_of(interest);
        if asked.is_empty() { all } else { asked }
    }

    /// Whether the words found answer `interest` (`try_io` calls its closure only then).
    pub(crate) fn answers(&self, interest: Interest) -> bool {
        let mut all = Ready::EMPTY;
        if let Some(ev) = self.read {
            all |= Ready::from_read_word(ev.word);
        }
        if let Some(ev) = self.write {
            all |= Ready::from_write_word(ev.word);
        }
        !(all & Ready::mask_of(interest)).is_empty()
    }

    /// After the operation said `WouldBlock`: clears what was found, unless an event
    /// arrived since. A readable or writable interest clears its whole direction (as
    /// `clear_ready` always has); an interest in urgent data or errors alone clears
    /// just those bits, leaving ordinary readability alone.
    pub(crate) fn clear(&self, reg: &Registration, interest: Interest) {
        if interest.is_readable() || interest.is_writable() {
            for ev in [self.read, self.write].into_iter().flatten() {
                reg.clear(ev);
            }
        } else {
            self.clear_matching(reg, self.ready(interest));
        }
    }

    /// Clears the bits of `ready` in the directions found (generation-checked).
    pub(crate) fn clear_matching(&self, reg: &Registration, ready: Ready) {
        if let Some(ev) = self.read {
            let bits = ready.read_word_bits();
            if bits != 0 {
                reg.io().clear_matching(ev, bits);
            }
        }
        if let Some(ev) = self.write {
            let bits = ready.write_word_bits();
            if bits != 0 {
                reg.io().clear_matching(ev, bits);
            }
        }
    }
}

/// The current words of the directions `interest` involves, without waiting or
/// spending budget (for `try_io`).
pub(crate) fn snapshot(reg: &Registration, interest: Interest) -> Found {
    Found {
        read: interest.uses_read().then(|| reg.readiness(Direction::Read)),
        write: interest
            .uses_write()
            .then(|| reg.readiness(Direction::Write)),
    }
}

/// Waits until `interest` is answered.
///
/// Readable and writable interests wait as waiter nodes (cancel-safe, no allocation).
/// Urgent data and errors are recorded in the read word, but a read waiter returns as
/// soon as the direction is readable for any reason; so an interest in those alone
/// looks at the word's bits and, if they are not there, leaves a waker in the read
/// slot, which the next read-side event wakes (urgent data and errors are read-side
/// events).
pub(crate) async fn wait(reg: &Registration, interest: Interest) -> io::Result<Found> {
    let mut read = pin!(reg.readiness_future(Direction::Read, false));
    let mut write = pin!(reg.readiness_future(Direction::Write, false));
    let bits_only = (interest.is_priority() || interest.is_error()) && !interest.is_readable();
    let wanted = Ready::mask_of(interest).read_word_bits();
    poll_fn(|cx| {
        if interest.is_readable() {
            if let Poll::Ready(res) = read.as_mut().poll(cx) {
                let ev = res?.event;
                return Poll::Ready(Ok(with_other(reg, interest, Some(ev), None)));
            }
        }
        if interest.is_writable() {
            if let Poll::Ready(res) = write.as_mut().poll(cx) {
                let ev = res?.event;
                return Poll::Ready(Ok(with_other(reg, interest, None, Some(ev))));
            }
        }
        if bits_only {
            if reg.is_shut_down() {
                return Poll::Ready(Err(gone()));
            }
            let coop = ready!(coop::poll_proceed(cx));
            for attempt in 0..2 {
                let ev = reg.readiness(Direction::Read);
                if ev.word & wanted != 0 {
                    coop.made_progress();
                    return Poll::Ready(Ok(with_other(reg, interest, Some(ev), None)));
                }
                // The runtime shut down since the check above, and its wake may have
                // come before our waker was parked: no turn will set the bit. Planted
                // bug: not looking, which parks for good.
                let gone_now =
                    crate::loom::planted_bug!("bit_wait_ignores_gone", bug: false, code: ev.is_gone());
                if gone_now {
                    return Poll::Ready(Err(gone()));
                }
                if attempt == 0 {
                    // Register, then look again: an event between the first look and the
                    // registration is seen by the second.
                    reg.park_waker(Direction::Read, cx.waker())?;
                    // Planted bug: no second look.
                    crate::loom::planted_bug!("bit_wait_no_second_look", bug: break, code: ());
                }
            }
        }
        Poll::Pending
    })
    .await
}

/// A wait answered in one direction: adds the other direction's word if the interest
/// names it and it is ready too, so `ready()` reports both.
fn with_other(
    reg: &Registration,
    interest: Interest,
    read: Option<ReadyEvent>,
    write: Option<ReadyEvent>,
) -> Found {
    let mask = Ready::mask_of(interest);
    let read = read.or_else(|| {
        let ev = reg.readiness(Direction::Read);
        (interest.uses_read() && !(Ready::from_read_word(ev.word) & mask).is_empty()).then_some(ev)
    });
    let write = write.or_else(|| {
        let ev = reg.readiness(Direction::Write);
        (interest.uses_write() && !(Ready::from_write_word(ev.word) & mask).is_empty())
            .then_some(ev)
    });
    Found { read, write }
}

pub(crate) fn gone() -> io::Error {
    io::Error::other("the epitome runtime that drives this I/O source has shut down")
}
