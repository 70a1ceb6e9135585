//! Model 11: the first waits of a deferred registration (`Registration::deferred`, a
//! socket accepted on one thread and served by a task on another), racing the device
//! and the reactor's turn.
//!
//! - `reader_and_writer`: a reader and a writer wait for the first time at once. The
//!   first of them registers the fd (`register_here`: `add_source`, for reading only);
//!   the writer adds writing to the mask (`reactor_for`: `watch_writes`, then
//!   `fetch_or` of `WRITES` into `done`). A device makes the fd readable and writable
//!   and a turn runs, racing both. Each task is woken exactly once and then finds its
//!   direction ready: a writer whose modify was left out would wait for an `EPOLLOUT`
//!   the reactor never asked for.
//! - `two_adders_one_reactor`: two first waits on the same worker's reactor: both add,
//!   one add answers `EEXIST`, which means the other's add is the one. Exactly one
//!   registration; the next event wakes both waiters, once each.
//! - `two_adders_two_reactors`: two first waits on two workers (the halves of a split
//!   stream): each adds the fd to its own reactor, the first to record its reactor
//!   keeps it and the other deletes its own add. Exactly one reactor holds the fd; the
//!   next event wakes both waiters, once each; both gauges return to their baseline.
//!
//! All: the registered-sources gauges return to their baseline after `deregister`, and
//! nothing leaks (a leaked `ScheduledIo` is a leaked loom `Arc`).
use std::task::{Context, Poll};

use super::{check, counting_waker};
use crate::eventpoll::{EPOLLIN, EPOLLOUT};
use crate::reactor::ReactorHandle;
use crate::reactor::context::{self, WorkerReactor};
use crate::reactor::registration::Registration;
use crate::reactor::scheduled_io::Direction;
use loom::sync::Arc;
use loom::thread;

/// A first wait for `dir` on `reg`, as a task of the worker `index` whose reactor is
/// `reactor`; returns whether it was ready, and its wake counter and waker.
fn first_wait(
    reg: Arc<Registration>,
    reactor: Arc<ReactorHandle>,
    index: usize,
    dir: Direction,
) -> thread::JoinHandle<(bool, std::sync::Arc<super::WakeCounter>, std::task::Waker)> {
    thread::spawn(move || {
        context::set_worker(Some(WorkerReactor { index, reactor }));
        let (woken, waker) = counting_waker();
        let polled = reg.poll_ready(&mut Context::from_waker(&waker), dir);
        context::set_worker(None);
        assert!(
            !matches!(polled, Poll::Ready(Err(_))),
            "a first wait failed: {polled:?}"
        );
        (polled.is_ready(), woken, waker)
    })
}

/// A waiter that got `Pending` was woken exactly once, and its next poll finds `dir`
/// ready; one that was ready at once was never woken.
fn assert_woken_once(
    reg: &Registration,
    dir: Direction,
    (ready, woken, waker): (bool, std::sync::Arc<super::WakeCounter>, std::task::Waker),
) {
    if ready {
        assert_eq!(woken.count(), 0, "a {dir:?} task that was ready was woken");
        return;
    }
    assert_eq!(
        woken.count(),
        1,
        "a {dir:?} first wait that got Pending was not woken exactly once"
    );
    let again = reg.poll_ready(&mut Context::from_waker(&waker), dir);
    assert!(
        matches!(again, Poll::Ready(Ok(_))),
        "a {dir:?} task was woken, yet its direction is not ready: {again:?}"
    );
}

#[test]
fn reader_and_writer_first_waits() {
    check("first_wait/reader_and_writer", Some(3), || {
        let reactor = ReactorHandle::new_model();
        let fd = reactor.kernel().new_file();
        let reg = Arc::new(Registration::deferred(fd));
        let reader = first_wait(reg.clone(), reactor.clone(), 0, Direction::Read);
        let writer = first_wait(reg.clone(), reactor.clone(), 0, Direction::Write);
        // The peer sends, and the send buffer has room; the worker turns.
        reactor.kernel().set_ready(fd, EPOLLIN | EPOLLOUT);
        reactor.turn_now();
        let (reader, writer) = (reader.join().unwrap(), writer.join().unwrap());
        // A modify after that turn reported the fd again: the next turn dispatches it.
        reactor.turn_now();
        assert_woken_once(&reg, Direction::Read, reader);
        assert_woken_once(&reg, Direction::Write, writer);
        assert_eq!(reactor.registered(), 1, "one registration, counted once");
        reg.deregister().unwrap();
        assert_eq!(
            reactor.registered(),
            0,
            "the gauge is not back to its baseline"
        );
    });
}

#[test]
fn two_first_waits_on_one_reactor() {
    check("first_wait/two_adders_one_reactor", Some(3), || {
        let reactor = ReactorHandle::new_model();
        let fd = reactor.kernel().new_file();
        let reg = Arc::new(Registration::deferred(fd));
        let waiters: Vec<_> = (0..2)
            .map(|_| first_wait(reg.clone(), reactor.clone(), 0, Direction::Read))
            .collect();
        let waiters: Vec<_> = waiters.into_iter().map(|w| w.join().unwrap()).collect();
        assert_eq!(reactor.registered(), 1, "two first waits, one registration");
        reactor.kernel().set_ready(fd, EPOLLIN);
        reactor.turn_now();
        for w in waiters {
            assert_woken_once(&reg, Direction::Read, w);
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
fn two_first_waits_on_two_reactors() {
    check("first_wait/two_adders_two_reactors", Some(2), || {
        // One socket, seen by two workers' reactors: the fake kernels are separate, so
        // the socket is file `fd` in each, and the device makes it ready in both.
        let reactors = [ReactorHandle::new_model(), ReactorHandle::new_model()];
        let fd = reactors[0].kernel().new_file();
        assert_eq!(reactors[1].kernel().new_file(), fd);
        let reg = Arc::new(Registration::deferred(fd));
        let waiters: Vec<_> = (0..2)
            .map(|i| first_wait(reg.clone(), reactors[i].clone(), i, Direction::Read))
            .collect();
        let device = {
            let reactors = reactors.clone();
            thread::spawn(move || {
                for reactor in &reactors {
                    reactor.kernel().set_ready(fd, EPOLLIN);
                }
            })
        };
        let waiters: Vec<_> = waiters.into_iter().map(|w| w.join().unwrap()).collect();
        assert_eq!(
            reactors[0].registered() + reactors[1].registered(),
            1,
            "the fd stays registered with both workers' reactors"
        );
        device.join().unwrap();
        reactors.iter().for_each(|r| {
            r.turn_now();
        });
        for w in waiters {
            assert_woken_once(&reg, Direction::Read, w);
        }
        reg.deregister().unwrap();
        for (i, reactor) in reactors.iter().enumerate() {
            assert_eq!(
                reactor.registered(),
                0,
                "reactor {i}'s gauge is not back to its baseline"
            );
        }
    });
}
