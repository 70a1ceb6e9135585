//! Model 10: the path every TCP read takes, end to end: a task's
//! `Registration::poll_io` (`poll_ready` → `ScheduledIo::poll_ready_slot`, the read,
//! `clear` on `WouldBlock`) racing a device that makes the fd readable and the reactor's
//! turn (`ReactorHandle::turn_into`: the eventpoll's wait over the `FakeKernel`,
//! `ScheduledIo::dispatch`, the wakes after the lock is released).
//!
//! - `registered_read`: a registration made up front (`Registration::with_interest`).
//!   A task that got `Pending` is woken exactly once and then reads the data; a task
//!   that read at once is never woken.
//! - `deferred_read`: a registration made by its first wait (`Registration::deferred`:
//!   `register_here` adds the fd to the reactor of the task's worker, `add_source`),
//!   with the device racing that add: the add reports a file that became ready before
//!   it, so the data is read or the task woken, never stranded.
//! - `two_registrations`: two threads register (one up front, one by its first wait)
//!   and deregister at once; the gauge of registered sources counts both and returns to
//!   zero.
//! - `shared_unclaimed`: a source shared across reactors; a read event that finds no
//!   waiter is handed on (the source's hook, run by the turn), exactly when the task
//!   polling beside it was not woken.
//! - `first_wait_vs_shutdown`: a deferred registration's first wait racing the
//!   reactor's shutdown: an error at once, or one wake and then the error.
//! - `deregister_vs_wait`: a source deregistered while a task waits on it: the task is
//!   told at once, or woken exactly once and then told.
//! - `deregister_wakes_all`: a deregistration wakes each waiter of every kind (slot,
//!   list, node, both directions) exactly once.
//!
//! All: the source's registration count returns to its baseline after `deregister`,
//! and nothing leaks (a leaked `ScheduledIo` is a leaked loom `Arc`).
use std::io;
use std::os::fd::RawFd;
use std::task::{Context, Poll};

use super::{check, counting_waker};
use crate::eventpoll::EPOLLIN;
use crate::reactor::context::{self, WorkerReactor};
use crate::reactor::registration::Registration;
use crate::reactor::scheduled_io::{Direction, UnclaimedHook, WaitPoll, WaiterNode};
use crate::reactor::{Interest, ReactorHandle};
use loom::sync::Arc;
use loom::sync::atomic::{AtomicUsize, Ordering::SeqCst};
use loom::thread;
use std::sync::Arc as OsArc;

/// A socket's receive buffer: the bytes there. The device stores before it makes the
/// file readable, as the kernel queues data before it runs the wakeup callbacks.
fn read(buf: &AtomicUsize) -> io::Result<usize> {
    match buf.swap(0, SeqCst) {
        0 => Err(io::ErrorKind::WouldBlock.into()),
        n => Ok(n),
    }
}

/// The task's first poll, the device and a reactor turn after the device's event, run
/// concurrently; then the liveness checks. `setup` runs on the task's thread first.
fn read_vs_event(
    reactor: Arc<ReactorHandle>,
    fd: RawFd,
    reg: Registration,
    setup: fn(&Arc<ReactorHandle>),
) {
    let reg = Arc::new(reg);
    let buf = Arc::new(AtomicUsize::new(0));
    let task = {
        let (reg, buf, reactor) = (reg.clone(), buf.clone(), reactor.clone());
        thread::spawn(move || {
            setup(&reactor);
            let (woken, waker) = counting_waker();
            let first = reg.poll_io(&mut Context::from_waker(&waker), Direction::Read, || {
                read(&buf)
            });
            context::set_worker(None);
            (first.map(|res| res.unwrap()), woken, waker)
        })
    };
    let device = {
        let (buf, reactor) = (buf.clone(), reactor.clone());
        thread::spawn(move || {
            buf.store(1, SeqCst);
            reactor.kernel().set_ready(fd, EPOLLIN);
        })
    };
    device.join().unwrap();
    reactor.turn_now();
    let (first, woken, waker) = task.join().unwrap();
    match first {
        Poll::Ready(n) => {
            assert_eq!(n, 1);
            assert_eq!(woken.count(), 0, "a task that read at once was woken");
        }
        Poll::Pending => {
            // The dispatch may have come before the add of a deferred registration
            // reported the file: one more turn delivers nothing new, but never hurts.
            reactor.turn_now();
            assert_eq!(
                woken.count(),
                1,
                "a task that got Pending was not woken exactly once: lost wakeup"
            );
            let again = reg.poll_io(&mut Context::from_waker(&waker), Direction::Read, || {
                read(&buf)
            });
            assert!(
                matches!(again, Poll::Ready(Ok(1))),
                "woken, yet the data is not read: {again:?}"
            );
        }
    }
    assert_eq!(buf.load(SeqCst), 0, "data left unread");
    assert_eq!(reactor.registered(), 1);
    reg.deregister().unwrap();
    assert_eq!(
        reactor.registered(),
        0,
        "the registration count is back to its baseline"
    );
    drop(waker);
}

#[test]
fn registered_read() {
    check("reactor_turn/registered_read", None, || {
        let reactor = ReactorHandle::new_model();
        let fd = reactor.kernel().new_file();
        let reg = Registration::with_interest(reactor.clone(), fd, Interest::Source).unwrap();
        read_vs_event(reactor, fd, reg, |_| {});
    });
}

#[test]
fn deferred_read() {
    check("reactor_turn/deferred_read", None, || {
        let reactor = ReactorHandle::new_model();
        let fd = reactor.kernel().new_file();
        let reg = Registration::deferred(fd);
        read_vs_event(reactor, fd, reg, |reactor| {
            context::set_worker(Some(WorkerReactor {
                index: 0,
                reactor: reactor.clone(),
            }));
        });
    });
}

/// Two threads register a source each on one reactor at once, one up front
/// (`register`), one by its first wait (`add_source`), then deregister them at once: the
/// registered-sources gauge (which balances sources across workers and shows leaks)
/// counts both and returns to zero.
#[test]
fn registrations_from_two_threads() {
    check("reactor_turn/two_registrations", None, || {
        let reactor = ReactorHandle::new_model();
        let (a, b) = (reactor.kernel().new_file(), reactor.kernel().new_file());
        let up_front = {
            let reactor = reactor.clone();
            thread::spawn(move || {
                Registration::with_interest(reactor, a, Interest::Source).unwrap()
            })
        };
        let by_first_wait = {
            let reactor = reactor.clone();
            thread::spawn(move || {
                context::set_worker(Some(WorkerReactor { index: 0, reactor }));
                let reg = Registration::deferred(b);
                let (_, waker) = counting_waker();
                let polled = reg.poll_ready(&mut Context::from_waker(&waker), Direction::Read);
                assert!(
                    polled.is_pending(),
                    "nothing made the file ready: {polled:?}"
                );
                context::set_worker(None);
                reg
            })
        };
        let regs = [up_front.join().unwrap(), by_first_wait.join().unwrap()];
        assert_eq!(reactor.registered(), 2, "a registration was not counted");
        let threads: Vec<_> = regs
            .into_iter()
            .map(|reg| thread::spawn(move || reg.deregister().unwrap()))
            .collect();
        threads.into_iter().for_each(|t| t.join().unwrap());
        assert_eq!(
            reactor.registered(),
            0,
            "the gauge is not back to its baseline"
        );
    });
}

/// A source shared by several workers' reactors (`Interest::Shared`, what
/// `io::SharedAsync` registers): a read event that finds no waiter here is handed on
/// (the source's hook, run by the turn after its wakes). A task polling while the event
/// is dispatched either is woken (the event claimed) or reads at once (the event was
/// handed on before it looked): exactly one of the two.
#[test]
fn shared_source_hands_on_an_unclaimed_event() {
    check("reactor_turn/shared_unclaimed", None, || {
        let reactor = ReactorHandle::new_model();
        let fd = reactor.kernel().new_file();
        let handed_on = Arc::new(AtomicUsize::new(0));
        let hook: UnclaimedHook = {
            let handed_on = handed_on.clone();
            OsArc::new(move || {
                handed_on.fetch_add(1, SeqCst);
            })
        };
        let reg = Arc::new(
            Registration::with_interest(reactor.clone(), fd, Interest::Shared(hook)).unwrap(),
        );
        let task = {
            let reg = reg.clone();
            thread::spawn(move || {
                let (woken, waker) = counting_waker();
                let polled = reg.poll_ready(&mut Context::from_waker(&waker), Direction::Read);
                (polled.is_ready(), woken)
            })
        };
        let device = {
            let reactor = reactor.clone();
            thread::spawn(move || reactor.kernel().set_ready(fd, EPOLLIN))
        };
        device.join().unwrap();
        reactor.turn_now();
        let (ready, woken) = task.join().unwrap();
        let handed_on = handed_on.load(SeqCst);
        if ready {
            assert_eq!(
                (woken.count(), handed_on),
                (0, 1),
                "the unclaimed event was not handed on once"
            );
        } else {
            assert_eq!(
                (woken.count(), handed_on),
                (1, 0),
                "the waiting task was not woken once"
            );
        }
        reg.deregister().unwrap();
        assert_eq!(reactor.registered(), 0);
    });
}

/// A deferred registration's first wait racing the reactor's shutdown
/// (`ReactorHandle::shutdown`: the flag, then every registered source marked gone and
/// its waiters woken): the task either gets the "runtime gone" error or is woken once
/// and then gets it; it never waits for a turn that will not come.
#[test]
fn first_wait_vs_shutdown() {
    check("reactor_turn/first_wait_vs_shutdown", None, || {
        let reactor = ReactorHandle::new_model();
        let fd = reactor.kernel().new_file();
        let reg = Arc::new(Registration::deferred(fd));
        let task = {
            let (reg, reactor) = (reg.clone(), reactor.clone());
            thread::spawn(move || {
                context::set_worker(Some(WorkerReactor { index: 0, reactor }));
                let (woken, waker) = counting_waker();
                let polled = reg.poll_ready(&mut Context::from_waker(&waker), Direction::Read);
                context::set_worker(None);
                (polled.map(|res| res.is_err()), woken, waker)
            })
        };
        reactor.shutdown();
        let (polled, woken, waker) = task.join().unwrap();
        match polled {
            Poll::Ready(gone) => assert!(gone, "a wait on a shut-down reactor succeeded"),
            Poll::Pending => {
                assert_eq!(
                    woken.count(),
                    1,
                    "a first wait beside the shutdown was never woken"
                );
                let again = reg.poll_ready(&mut Context::from_waker(&waker), Direction::Read);
                assert!(
                    matches!(again, Poll::Ready(Err(_))),
                    "woken by the shutdown, yet not told: {again:?}"
                );
            }
        }
        let _ = reg.deregister();
        assert_eq!(
            reactor.registered(),
            0,
            "the gauge is not back to its baseline"
        );
    });
}

/// A source deregistered (`Registration::deregister`: the delete, then every waiter
/// woken and both directions marked closed) while a task waits on it: the task is told
/// at once, or woken exactly once and then told; never left waiting on a source no turn
/// will dispatch to again.
#[test]
fn deregister_vs_wait() {
    check("reactor_turn/deregister_vs_wait", None, || {
        let reactor = ReactorHandle::new_model();
        let fd = reactor.kernel().new_file();
        let reg =
            Arc::new(Registration::with_interest(reactor.clone(), fd, Interest::Source).unwrap());
        let task = {
            let reg = reg.clone();
            thread::spawn(move || {
                let (woken, waker) = counting_waker();
                let polled = reg.poll_ready(&mut Context::from_waker(&waker), Direction::Read);
                (polled.is_ready(), woken, waker)
            })
        };
        reg.deregister().unwrap();
        let (ready, woken, waker) = task.join().unwrap();
        if !ready {
            assert_eq!(
                woken.count(),
                1,
                "a waiter on a deregistered source was not woken once"
            );
            let again = reg.poll_ready(&mut Context::from_waker(&waker), Direction::Read);
            assert!(
                again.is_ready(),
                "woken by the deregistration, yet still waiting"
            );
        } else {
            assert_eq!(woken.count(), 0);
        }
        assert_eq!(reactor.registered(), 0);
    });
}

/// A deregistration wakes every kind of waiter, each exactly once: the readiness slot and
/// the list of further wakers of each direction, and a waiter node; while one more task
/// polls beside it (told at once, or woken once).
#[test]
fn deregister_wakes_every_waiter() {
    check("reactor_turn/deregister_wakes_all", None, || {
        let reactor = ReactorHandle::new_model();
        let fd = reactor.kernel().new_file();
        let reg =
            Arc::new(Registration::with_interest(reactor.clone(), fd, Interest::Source).unwrap());
        // Two wakers per direction: the first takes the slot, the second goes to the list.
        let waiters: Vec<_> = [
            Direction::Read,
            Direction::Read,
            Direction::Write,
            Direction::Write,
        ]
        .into_iter()
        .map(|dir| {
            let (woken, waker) = counting_waker();
            let polled = reg.poll_ready(&mut Context::from_waker(&waker), dir);
            assert!(polled.is_pending());
            (woken, waker)
        })
        .collect();
        let node = Arc::new(WaiterNode::new(Direction::Read, true));
        let (node_woken, node_waker) = counting_waker();
        // SAFETY: pinned in an Arc, finished with `drop_waiter` below.
        let polled = unsafe { reg.io().poll_waiter(&node, &node_waker) };
        assert!(matches!(polled, WaitPoll::Pending));

        let task = {
            let reg = reg.clone();
            thread::spawn(move || {
                let (woken, waker) = counting_waker();
                let polled = reg.poll_ready(&mut Context::from_waker(&waker), Direction::Read);
                (polled.is_ready(), woken)
            })
        };
        reg.deregister().unwrap();
        let (ready, woken) = task.join().unwrap();
        assert_eq!(woken.count(), usize::from(!ready), "the polling task");
        for (i, (woken, _)) in waiters.iter().enumerate() {
            assert_eq!(
                woken.count(),
                1,
                "waker {i} (slot or list) not woken once by the deregistration"
            );
        }
        assert_eq!(node_woken.count(), 1, "the waiter node was not woken once");
        // SAFETY: as above.
        unsafe { reg.io().drop_waiter(&node, true) };
        assert_eq!(reactor.registered(), 0);
    });
}
