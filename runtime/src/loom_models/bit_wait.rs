//! Model 12: a wait for one bit of the read word (`io::wait::wait` with an interest in
//! urgent data or errors alone: `AsyncFd::ready(Interest::PRIORITY)`), on a source
//! already readable for another reason, racing the event that sets the bit (a device
//! sending urgent data, and the reactor's turn).
//!
//! The wait cannot use the readiness slot's "park unless ready" (the direction is
//! ready, without the bit): it looks at the word, parks its waker whatever the
//! readiness (`ScheduledIo::park_waker`), and looks again. The task either finds the
//! bit at once, or gets `Pending` and is woken exactly once, after which the bit is
//! there (one that found the bit at its second look may be woken once by the event
//! that set it: its waker was parked); the registration count returns to its baseline.
//!
//! And a wait for an error (`Interest::ERROR`) racing the reactor's shutdown
//! (`ReactorHandle::shutdown`), which marks the source ready, closed and gone but sets
//! no error bit: the wait gets the "runtime gone" error at once, or is woken exactly
//! once and then gets it; it never parks again for a bit no turn will deliver.
use std::future::Future;
use std::pin::pin;
use std::task::{Context, Poll};

use super::{check, counting_waker};
use crate::eventpoll::{EPOLLIN, EPOLLPRI};
use crate::io::Interest;
use crate::io::wait::{Found, wait};
use crate::reactor::registration::Registration;
use crate::reactor::{Interest as Registered, ReactorHandle};
use loom::sync::Arc;
use loom::thread;

/// One poll of a wait for `interest` on `reg`, with `waker`.
fn poll_wait(
    reg: &Registration,
    interest: Interest,
    waker: &std::task::Waker,
) -> Poll<std::io::Result<Found>> {
    let fut = pin!(wait(reg, interest));
    fut.poll(&mut Context::from_waker(waker))
}

/// One poll of a wait for urgent data on `reg`, with `waker`.
fn poll_priority(reg: &Registration, waker: &std::task::Waker) -> Poll<std::io::Result<Found>> {
    poll_wait(reg, Interest::PRIORITY, waker)
}

/// Whether `found` reports urgent data.
fn reports_priority(found: &Found) -> bool {
    found.ready(Interest::PRIORITY).is_priority()
}

#[test]
fn priority_wait_vs_urgent_data() {
    check("bit_wait/priority_vs_event", None, || {
        let reactor = ReactorHandle::new_model();
        let fd = reactor.kernel().new_file();
        let reg =
            Arc::new(Registration::with_interest(reactor.clone(), fd, Registered::Source).unwrap());
        // Ordinary data first: the read direction is ready, without the bit.
        reactor.kernel().set_ready(fd, EPOLLIN);
        reactor.turn_now();
        let task = {
            let reg = reg.clone();
            thread::spawn(move || {
                let (woken, waker) = counting_waker();
                let first = poll_priority(&reg, &waker);
                let first = first.map(|res| reports_priority(&res.unwrap()));
                (first, woken, waker)
            })
        };
        let device = {
            let reactor = reactor.clone();
            thread::spawn(move || reactor.kernel().set_ready(fd, EPOLLPRI))
        };
        device.join().unwrap();
        reactor.turn_now();
        let (first, woken, waker) = task.join().unwrap();
        match first {
            Poll::Ready(priority) => {
                assert!(priority, "the wait returned without urgent data");
                // Found at the second look: the waker it parked first stays in the
                // slot, and the event that set the bit may have taken and woken it.
                assert!(
                    woken.count() <= 1,
                    "a task that found the bit was woken twice"
                );
            }
            Poll::Pending => {
                assert_eq!(
                    woken.count(),
                    1,
                    "a bit wait that got Pending was not woken exactly once: lost wakeup"
                );
                let again = poll_priority(&reg, &waker);
                assert!(
                    matches!(&again, Poll::Ready(Ok(found)) if reports_priority(found)),
                    "woken, yet no urgent data: {again:?}"
                );
            }
        }
        reg.deregister().unwrap();
        assert_eq!(
            reactor.registered(),
            0,
            "the gauge is not back to its baseline"
        );
    });
}

#[test]
fn error_wait_vs_shutdown() {
    check("bit_wait/error_vs_shutdown", None, || {
        let reactor = ReactorHandle::new_model();
        let fd = reactor.kernel().new_file();
        let reg =
            Arc::new(Registration::with_interest(reactor.clone(), fd, Registered::Source).unwrap());
        let task = {
            let reg = reg.clone();
            thread::spawn(move || {
                let (woken, waker) = counting_waker();
                let first = poll_wait(&reg, Interest::ERROR, &waker).map(|res| res.is_err());
                (first, woken, waker)
            })
        };
        reactor.shutdown();
        let (first, woken, waker) = task.join().unwrap();
        match first {
            Poll::Ready(gone) => assert!(gone, "a bit wait beside the shutdown succeeded"),
            Poll::Pending => {
                assert_eq!(
                    woken.count(),
                    1,
                    "a bit wait beside the shutdown was not woken exactly once"
                );
                let again = poll_wait(&reg, Interest::ERROR, &waker);
                assert!(
                    matches!(again, Poll::Ready(Err(_))),
                    "woken by the shutdown, yet not told: {again:?}"
                );
            }
        }
        reg.deregister().unwrap();
        assert_eq!(reactor.registered(), 0);
    });
}
