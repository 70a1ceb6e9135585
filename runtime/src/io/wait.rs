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

// What a wait found, and what clearing it does, on a source no reactor holds (its
// events recorded by hand): both builds (in the loom build each is a one-thread model).
#[cfg(test)]
mod tests {
    use super::*;
    use crate::eventpoll::{EPOLLIN, EPOLLOUT, EPOLLPRI};
    use crate::reactor::scheduled_io::bits;

    /// A source whose events the test records by hand: a deferred registration that no
    /// wait ever registers (its fd is never handed to a kernel).
    fn source() -> Registration {
        Registration::deferred(-1)
    }

    /// Records `events` on `reg` as a reactor turn would.
    fn event(reg: &Registration, events: u32) {
        let (mut wake, mut unclaimed) = (Vec::new(), Vec::new());
        reg.io().dispatch(events, &mut wake, &mut unclaimed);
        wake.into_iter().for_each(std::task::Waker::wake);
    }

    /// The readiness bits of `dir`'s word.
    fn readiness(reg: &Registration, dir: Direction) -> u64 {
        reg.readiness(dir).word & bits::READINESS
    }

    #[test]
    fn ready_reports_what_the_interest_asked_for_or_else_all_it_found() {
        crate::loom::unit_test(|| {
            let reg = source();
            event(&reg, EPOLLIN | EPOLLOUT);
            let readable = snapshot(&reg, Interest::READABLE);
            assert_eq!(readable.ready(Interest::READABLE), Ready::READABLE);
            let both = Interest::READABLE | Interest::WRITABLE;
            assert_eq!(
                snapshot(&reg, both).ready(both),
                Ready::READABLE | Ready::WRITABLE
            );
            // Nothing the interest asked for: what was found rather than nothing.
            assert_eq!(readable.ready(Interest::ERROR), Ready::READABLE);
        });
    }

    #[test]
    fn answers_only_when_a_word_holds_what_the_interest_asked_for() {
        crate::loom::unit_test(|| {
            let reg = source();
            assert!(!snapshot(&reg, Interest::READABLE).answers(Interest::READABLE));
            assert!(!snapshot(&reg, Interest::WRITABLE).answers(Interest::WRITABLE));
            event(&reg, EPOLLIN);
            assert!(snapshot(&reg, Interest::READABLE).answers(Interest::READABLE));
            // Readable, but no urgent data: a priority interest is not answered.
            assert!(!snapshot(&reg, Interest::PRIORITY).answers(Interest::PRIORITY));
            event(&reg, EPOLLPRI);
            assert!(snapshot(&reg, Interest::PRIORITY).answers(Interest::PRIORITY));
        });
    }

    #[test]
    fn a_readable_interest_clears_its_whole_direction() {
        crate::loom::unit_test(|| {
            let reg = source();
            event(&reg, EPOLLPRI);
            assert_eq!(
                readiness(&reg, Direction::Read),
                bits::READY | bits::PRIORITY
            );
            snapshot(&reg, Interest::READABLE).clear(&reg, Interest::READABLE);
            assert_eq!(readiness(&reg, Direction::Read), 0);
        });
    }

    #[test]
    fn a_priority_interest_clears_urgent_data_alone() {
        crate::loom::unit_test(|| {
            let reg = source();
            event(&reg, EPOLLIN | EPOLLPRI);
            snapshot(&reg, Interest::PRIORITY).clear(&reg, Interest::PRIORITY);
            assert_eq!(readiness(&reg, Direction::Read), bits::READY);
        });
    }

    #[test]
    fn clearing_writability_leaves_readability() {
        crate::loom::unit_test(|| {
            let reg = source();
            event(&reg, EPOLLIN | EPOLLOUT);
            let both = Interest::READABLE | Interest::WRITABLE;
            snapshot(&reg, both).clear_matching(&reg, Ready::WRITABLE);
            assert_eq!(readiness(&reg, Direction::Write), 0);
            assert_eq!(readiness(&reg, Direction::Read), bits::READY);
        });
    }
}

// `wait` itself needs a reactor to register with: the fake kernel's, so the loom build
// only.
#[cfg(all(test, epitome_loom))]
mod wait_tests {
    use std::sync::Arc as StdArc;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::task::{Context, Wake, Waker};

    use super::*;
    use crate::eventpoll::{EPOLLERR, EPOLLIN, EPOLLOUT, EPOLLPRI};
    use crate::loom::sync::Arc;
    use crate::reactor::scheduled_io::bits;
    use crate::reactor::{Interest as Registered, ReactorHandle};

    struct CountWaker(AtomicUsize);
    impl Wake for CountWaker {
        fn wake(self: StdArc<Self>) {
            self.0.fetch_add(1, Ordering::SeqCst);
        }
    }

    fn counter() -> (StdArc<CountWaker>, Waker) {
        let c = StdArc::new(CountWaker(AtomicUsize::new(0)));
        (c.clone(), Waker::from(c))
    }

    /// A source registered with a reactor over the fake kernel.
    fn source() -> (Arc<ReactorHandle>, Registration) {
        let reactor = ReactorHandle::new_model();
        let fd = reactor.kernel().new_file();
        let reg = Registration::with_interest(reactor.clone(), fd, Registered::Source).unwrap();
        (reactor, reg)
    }

    /// Records `events` on `reg` as a reactor turn would, and wakes whom they concern.
    fn event(reg: &Registration, events: u32) {
        let (mut wake, mut unclaimed) = (Vec::new(), Vec::new());
        reg.io().dispatch(events, &mut wake, &mut unclaimed);
        wake.into_iter().for_each(Waker::wake);
    }

    /// One wait for `interest`, answered at once.
    fn found_now(reg: &Registration, interest: Interest) -> Found {
        let (_, waker) = counter();
        let fut = pin!(wait(reg, interest));
        match fut.poll(&mut Context::from_waker(&waker)) {
            Poll::Ready(found) => found.unwrap(),
            Poll::Pending => panic!("a wait for {interest:?} found nothing"),
        }
    }

    fn done(reactor: &ReactorHandle, reg: Registration) {
        reg.deregister().unwrap();
        assert_eq!(reactor.registered(), 0);
    }

    #[test]
    fn a_wait_for_writing_is_not_woken_by_reads() {
        crate::loom::unit_test(|| {
            let (reactor, reg) = source();
            let (woken, waker) = counter();
            let mut cx = Context::from_waker(&waker);
            {
                let mut fut = pin!(wait(&reg, Interest::WRITABLE));
                assert!(fut.as_mut().poll(&mut cx).is_pending());
                event(&reg, EPOLLIN);
                assert_eq!(woken.0.load(Ordering::SeqCst), 0, "a needless wakeup");
                event(&reg, EPOLLOUT);
                assert_eq!(woken.0.load(Ordering::SeqCst), 1);
                match fut.as_mut().poll(&mut cx) {
                    Poll::Ready(Ok(found)) => {
                        assert_eq!(found.ready(Interest::WRITABLE), Ready::WRITABLE);
                    }
                    other => panic!("woken for writing, yet {other:?}"),
                }
            }
            done(&reactor, reg);
        });
    }

    #[test]
    fn a_wait_answered_by_writing_takes_reads_only_if_they_answer_it_too() {
        crate::loom::unit_test(|| {
            let interest = Interest::PRIORITY | Interest::WRITABLE;
            let (reactor, reg) = source();
            // Readable without urgent data: not part of the answer, and a clear after
            // the write's WouldBlock must leave it for the reader.
            event(&reg, EPOLLIN | EPOLLOUT);
            let found = found_now(&reg, interest);
            assert!(found.read.is_none(), "{found:?}");
            assert_eq!(found.ready(interest), Ready::WRITABLE);
            found.clear(&reg, interest);
            assert_eq!(reg.readiness(Direction::Write).word & bits::READINESS, 0);
            assert_eq!(
                reg.readiness(Direction::Read).word & bits::READINESS,
                bits::READY,
                "readability the answer did not include was cleared"
            );
            // Urgent data too: both directions answer.
            event(&reg, EPOLLPRI | EPOLLOUT);
            let found = found_now(&reg, interest);
            assert_eq!(found.ready(interest), Ready::PRIORITY | Ready::WRITABLE);
            done(&reactor, reg);
        });
    }

    #[test]
    fn a_wait_answered_by_reading_takes_writes_only_if_they_answer_it_too() {
        crate::loom::unit_test(|| {
            let interest = Interest::READABLE | Interest::WRITABLE;
            let (reactor, reg) = source();
            event(&reg, EPOLLIN | EPOLLOUT);
            let found = found_now(&reg, interest);
            assert!(found.write.is_some(), "{found:?}");
            assert_eq!(found.ready(interest), Ready::READABLE | Ready::WRITABLE);
            done(&reactor, reg);

            // An error left on the write side once its writability was cleared: not
            // what this interest asks for, so a clear of the answer leaves it.
            let (reactor, reg) = source();
            event(&reg, EPOLLERR);
            snapshot(&reg, Interest::WRITABLE).clear_matching(&reg, Ready::WRITABLE);
            assert_eq!(
                reg.readiness(Direction::Write).word & bits::READINESS,
                bits::ERROR
            );
            let found = found_now(&reg, interest);
            assert!(found.write.is_none(), "{found:?}");
            found.clear(&reg, interest);
            assert_eq!(reg.readiness(Direction::Read).word & bits::READINESS, 0);
            assert_eq!(
                reg.readiness(Direction::Write).word & bits::READINESS,
                bits::ERROR,
                "an error the answer did not include was cleared"
            );
            done(&reactor, reg);
        });
    }
}
