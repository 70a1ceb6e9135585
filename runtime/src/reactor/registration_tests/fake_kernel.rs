//! Registrations of reactors over the fake kernel: first waits that register, the I/O
//! retry loops (`poll_io`, `async_io`) over scripted operations, and the readiness
//! futures' finish, drop and shutdown. The loom build only (a child module of
//! `reactor::registration`).

use super::*;
use crate::eventpoll::{EPOLLIN, EPOLLOUT};
use crate::loom::os::sync::atomic::{AtomicBool, Ordering as OsOrdering};
use crate::reactor::context::WorkerReactor;
use crate::reactor::scheduled_io::bits;
use std::task::Waker;

fn poll(reg: &Registration, dir: Direction, waker: &Waker) -> Poll<io::Result<ReadyEvent>> {
    reg.poll_ready(&mut Context::from_waker(waker), dir)
}

fn worker(reactor: &Arc<ReactorHandle>) -> Option<WorkerReactor> {
    Some(WorkerReactor {
        index: 0,
        reactor: reactor.clone(),
    })
}

/// A runtime that picks one reactor for threads off its workers.
struct Picks(Arc<ReactorHandle>);
impl PickReactor for Picks {
    fn pick_reactor(&self) -> (usize, Arc<ReactorHandle>) {
        (1, self.0.clone())
    }
    fn is_shut_down(&self) -> bool {
        false
    }
}

fn runtime(reactor: &Arc<ReactorHandle>) -> OsArc<dyn PickReactor> {
    OsArc::new(Picks(reactor.clone()))
}

/// A fresh reactor whose fake kernel has file `fd`.
fn reactor_with(fd: RawFd) -> Arc<ReactorHandle> {
    let reactor = ReactorHandle::new_model();
    reactor.kernel().new_files_up_to(fd);
    reactor
}

#[test]
fn a_readers_first_wait_leaves_writing_out_of_the_mask_until_a_writer_waits() {
    crate::loom::unit_test(|| {
        let reactor = ReactorHandle::new_model();
        let fd = reactor.kernel().new_file();
        let reg = Registration::deferred(fd);
        let outer = context::set_worker(worker(&reactor));
        let (reader, writer) = (counting_waker(), counting_waker());
        assert!(poll(&reg, Direction::Read, &reader.1).is_pending());
        assert_eq!(reactor.registered(), 1);
        // Room in the send buffer: nobody asked to hear of it.
        reactor.kernel().set_ready(fd, EPOLLOUT);
        assert_eq!(
            reactor.turn_now(),
            0,
            "a reader's first wait watches writes"
        );
        assert_eq!(reg.readiness(Direction::Write).word & bits::READY, 0);
        // A writer has to wait: its first wait adds writing, and hears of the room.
        assert!(poll(&reg, Direction::Write, &writer.1).is_pending());
        assert_eq!(reactor.turn_now(), 1);
        assert_eq!(writer.0.count(), 1);
        assert_eq!(reader.0.count(), 0);
        assert!(matches!(
            poll(&reg, Direction::Write, &writer.1),
            Poll::Ready(Ok(_))
        ));
        reactor.kernel().set_ready(fd, EPOLLIN);
        assert_eq!(reactor.turn_now(), 1);
        assert_eq!(reader.0.count(), 1);
        drop(context::set_worker(outer));
        reg.deregister().unwrap();
        assert_eq!(reactor.registered(), 0);
    });
}

#[test]
fn a_first_wait_on_a_worker_of_the_sources_runtime_registers_there() {
    crate::loom::unit_test(|| {
        let fd = 0;
        let (picked, own) = (reactor_with(fd), reactor_with(fd));
        let origin = runtime(&picked);
        let outer = context::set_runtime(Some(origin.clone()));
        let reg = Registration::deferred(fd);
        // A task of this runtime's worker whose reactor is `own`.
        let outer_worker = context::set_worker(worker(&own));
        assert!(poll(&reg, Direction::Read, Waker::noop()).is_pending());
        drop(context::set_worker(outer_worker));
        drop(context::set_runtime(outer));
        assert_eq!(own.registered(), 1, "not registered with the task's worker");
        assert_eq!(picked.registered(), 0);
        reg.deregister().unwrap();
        assert_eq!(own.registered(), 0);
    });
}

#[test]
fn a_first_wait_from_another_runtime_registers_with_the_sources_own() {
    crate::loom::unit_test(|| {
        let fd = 0;
        let (home, elsewhere) = (reactor_with(fd), reactor_with(fd));
        let origin = runtime(&home);
        let outer = context::set_runtime(Some(origin.clone()));
        let reg = Registration::deferred(fd);
        // Waited on from a thread in another runtime: it stays with its own.
        drop(context::set_runtime(Some(runtime(&elsewhere))));
        assert!(poll(&reg, Direction::Read, Waker::noop()).is_pending());
        drop(context::set_runtime(outer));
        drop(origin);
        assert_eq!(home.registered(), 1, "not registered with its own runtime");
        assert_eq!(elsewhere.registered(), 0);
        reg.deregister().unwrap();
        assert_eq!(home.registered(), 0);
    });
}

#[test]
fn a_first_wait_that_cannot_add_the_fd_fails_with_the_kernels_error() {
    crate::loom::unit_test(|| {
        let reactor = ReactorHandle::new_model();
        // No such file in the fake kernel: its add answers EBADF.
        let reg = Registration::deferred(7);
        let outer = context::set_worker(worker(&reactor));
        let polled = poll(&reg, Direction::Read, Waker::noop());
        drop(context::set_worker(outer));
        match polled {
            Poll::Ready(Err(e)) => assert_eq!(e.raw_os_error(), Some(libc::EBADF)),
            other => panic!("a failed add was not the wait's error: {other:?}"),
        }
        assert!(reg.reactor.get().is_none());
        assert_eq!(reactor.registered(), 0);
    });
}

#[test]
fn a_registered_source_hears_of_shutdown_from_its_reactor_not_its_runtime() {
    crate::loom::unit_test(|| {
        let reactor = ReactorHandle::new_model();
        let fd = reactor.kernel().new_file();
        let origin = OsArc::new(Flagged(reactor.clone(), AtomicBool::new(false)));
        let as_runtime: OsArc<dyn PickReactor> = origin.clone();
        let outer = context::set_runtime(Some(as_runtime));
        let reg = Registration::deferred(fd);
        drop(context::set_runtime(outer));
        assert!(poll(&reg, Direction::Read, Waker::noop()).is_pending());
        reactor.kernel().set_ready(fd, EPOLLIN);
        assert_eq!(reactor.turn_now(), 1);
        // The runtime's flag is up; its reactor has not shut down yet: the ready
        // source's poll is the one load of the fast path, and the read is tried.
        origin.1.store(true, OsOrdering::SeqCst);
        assert!(matches!(
            poll(&reg, Direction::Read, Waker::noop()),
            Poll::Ready(Ok(_))
        ));
        // The reactor's shutdown marks it gone.
        reactor.shutdown();
        assert!(matches!(
            poll(&reg, Direction::Read, Waker::noop()),
            Poll::Ready(Err(_))
        ));
        reg.deregister().unwrap();
        assert_eq!(reactor.registered(), 0);
    });
}

/// A runtime with one reactor and a shutdown flag.
struct Flagged(Arc<ReactorHandle>, AtomicBool);
impl PickReactor for Flagged {
    fn pick_reactor(&self) -> (usize, Arc<ReactorHandle>) {
        (0, self.0.clone())
    }
    fn is_shut_down(&self) -> bool {
        self.1.load(OsOrdering::SeqCst)
    }
}

/// Counts its wakes (the loom models' own helper is out of this layer's reach).
struct WakeCounter(crate::loom::sync::atomic::AtomicUsize);

impl WakeCounter {
    fn count(&self) -> usize {
        self.0.load(crate::loom::sync::atomic::Ordering::SeqCst)
    }
}

impl std::task::Wake for WakeCounter {
    fn wake(self: std::sync::Arc<Self>) {
        self.wake_by_ref();
    }
    fn wake_by_ref(self: &std::sync::Arc<Self>) {
        self.0
            .fetch_add(1, crate::loom::sync::atomic::Ordering::SeqCst);
    }
}

fn counting_waker() -> (std::sync::Arc<WakeCounter>, Waker) {
    let counter = std::sync::Arc::new(WakeCounter(crate::loom::sync::atomic::AtomicUsize::new(0)));
    (counter.clone(), Waker::from(counter))
}

/// An operation that gives `answers` in turn (`Ok(0)` once they run out) and counts its
/// calls: what a read or an accept returns to `poll_io` / `async_io`.
fn scripted(
    answers: Vec<io::Result<usize>>,
) -> (
    std::rc::Rc<std::cell::Cell<usize>>,
    impl FnMut() -> io::Result<usize>,
) {
    let calls = std::rc::Rc::new(std::cell::Cell::new(0));
    let counted = calls.clone();
    let mut answers = answers.into_iter();
    let op = move || {
        counted.set(counted.get() + 1);
        answers.next().unwrap_or(Ok(0))
    };
    (calls, op)
}

fn kind(kind: io::ErrorKind) -> io::Result<usize> {
    Err(kind.into())
}

/// The direction's readiness is set again: its fd's wakeup, and the turn that takes it.
fn event(reactor: &ReactorHandle, fd: RawFd) {
    reactor.kernel().set_ready(fd, EPOLLIN);
    assert_eq!(reactor.turn_now(), 1);
}

/// Runs `test` as a task of a worker over a fresh reactor, with a deferred source of a
/// fresh fake file (its first wait registers it); then takes the source out and checks
/// the reactor's gauge is back to 0.
fn on_a_worker(test: impl Fn(&Arc<ReactorHandle>, RawFd, &Registration) + Sync + Send + 'static) {
    crate::loom::unit_test(move || {
        let reactor = ReactorHandle::new_model();
        let fd = reactor.kernel().new_file();
        let reg = Registration::deferred(fd);
        let outer = context::set_worker(worker(&reactor));
        test(&reactor, fd, &reg);
        drop(context::set_worker(outer));
        reg.deregister().unwrap();
        assert_eq!(reactor.registered(), 0);
    });
}

#[test]
fn poll_io_waits_on_would_block_retries_interrupts_and_returns_the_rest() {
    on_a_worker(|reactor, fd, reg| {
        let (woken, waker) = counting_waker();
        let mut cx = Context::from_waker(&waker);
        // Not ready: the operation is not tried.
        let (calls, op) = scripted(vec![]);
        assert!(reg.poll_io(&mut cx, Direction::Read, op).is_pending());
        assert_eq!(calls.get(), 0);
        event(reactor, fd);
        assert_eq!(woken.count(), 1);
        // An interrupted operation is tried again at once; `WouldBlock` clears the
        // readiness and waits.
        let (calls, op) = scripted(vec![
            kind(io::ErrorKind::Interrupted),
            kind(io::ErrorKind::WouldBlock),
        ]);
        assert!(reg.poll_io(&mut cx, Direction::Read, op).is_pending());
        assert_eq!(calls.get(), 2, "an interrupted operation was not retried");
        assert!(!reg.readiness(Direction::Read).is_ready());
        event(reactor, fd);
        assert_eq!(woken.count(), 2, "the wait after WouldBlock was not woken");
        // Any other error is the operation's answer, returned as it is.
        let (calls, op) = scripted(vec![kind(io::ErrorKind::ConnectionReset), Ok(1)]);
        match reg.poll_io(&mut cx, Direction::Read, op) {
            Poll::Ready(Err(e)) => assert_eq!(e.kind(), io::ErrorKind::ConnectionReset),
            other => panic!("the operation's error was not returned: {other:?}"),
        }
        assert_eq!(calls.get(), 1, "an error was retried");
        let (_, op) = scripted(vec![Ok(5)]);
        assert!(matches!(
            reg.poll_io(&mut cx, Direction::Read, op),
            Poll::Ready(Ok(5))
        ));
        // An event during the operation: the clear after its `WouldBlock` fails, and
        // the operation is tried again at once instead of waiting for the next one.
        let mut tries = 0;
        let polled = reg.poll_io(&mut cx, Direction::Read, || {
            tries += 1;
            if tries == 1 {
                event(reactor, fd);
                return kind(io::ErrorKind::WouldBlock);
            }
            Ok(tries)
        });
        assert!(matches!(polled, Poll::Ready(Ok(2))), "{polled:?}");
    });
}

#[test]
fn async_io_waits_on_would_block_retries_interrupts_and_returns_the_rest() {
    on_a_worker(|reactor, fd, reg| {
        let (woken, waker) = counting_waker();
        let mut cx = Context::from_waker(&waker);
        {
            let (calls, op) = scripted(vec![
                kind(io::ErrorKind::Interrupted),
                kind(io::ErrorKind::WouldBlock),
                Ok(3),
            ]);
            let mut io = std::pin::pin!(reg.async_io(Direction::Read, false, op));
            assert!(io.as_mut().poll(&mut cx).is_pending());
            assert_eq!(calls.get(), 0, "tried before the source was ready");
            event(reactor, fd);
            assert_eq!(woken.count(), 1);
            assert!(io.as_mut().poll(&mut cx).is_pending());
            assert_eq!(calls.get(), 2, "an interrupted operation was not retried");
            assert!(!reg.readiness(Direction::Read).is_ready());
            event(reactor, fd);
            assert_eq!(woken.count(), 2, "the wait after WouldBlock was not woken");
            assert!(matches!(io.as_mut().poll(&mut cx), Poll::Ready(Ok(3))));
        }
        let (calls, op) = scripted(vec![kind(io::ErrorKind::ConnectionReset), Ok(1)]);
        let polled = std::pin::pin!(reg.async_io(Direction::Read, false, op)).poll(&mut cx);
        match polled {
            Poll::Ready(Err(e)) => assert_eq!(e.kind(), io::ErrorKind::ConnectionReset),
            other => panic!("the operation's error was not returned: {other:?}"),
        }
        assert_eq!(calls.get(), 1, "an error was retried");
    });
}

#[test]
fn a_woken_exclusive_waiter_passes_its_wakeup_on_unless_it_used_it() {
    on_a_worker(|reactor, fd, reg| {
        let [(first, a), (second, b), (third, c)] = [(); 3].map(|()| counting_waker());
        let mut second_wait = std::pin::pin!(reg.readiness_future(Direction::Read, true));
        {
            let mut first_wait = std::pin::pin!(reg.readiness_future(Direction::Read, true));
            assert!(
                first_wait
                    .as_mut()
                    .poll(&mut Context::from_waker(&a))
                    .is_pending()
            );
            assert!(
                second_wait
                    .as_mut()
                    .poll(&mut Context::from_waker(&b))
                    .is_pending()
            );
            event(reactor, fd);
            assert_eq!((first.count(), second.count()), (1, 0), "not wake-one");
            // The first task's operation succeeded without another poll of its wait
            // (`read_with_exclusive`'s first try): it used the wakeup and keeps it.
            first_wait.as_mut().finish(true);
        }
        assert_eq!(second.count(), 0, "a wakeup that was used was passed on");
        // The operation drained the source.
        assert!(reg.clear(reg.readiness(Direction::Read)));
        let mut third_wait = std::pin::pin!(reg.readiness_future(Direction::Read, true));
        assert!(
            third_wait
                .as_mut()
                .poll(&mut Context::from_waker(&c))
                .is_pending()
        );
        event(reactor, fd);
        assert_eq!((second.count(), third.count()), (1, 0), "not wake-one");
        // The second task is dropped (cancelled) before it polls its wait again: its
        // wakeup goes to the next exclusive waiter.
        second_wait.set(reg.readiness_future(Direction::Read, true));
        assert_eq!(third.count(), 1, "a dropped waiter's wakeup was lost");
        assert!(matches!(
            third_wait.as_mut().poll(&mut Context::from_waker(&c)),
            Poll::Ready(Ok(ready)) if ready.event.baton
        ));
    });
}

#[test]
fn a_readiness_future_fails_once_its_reactor_shut_down() {
    on_a_worker(|reactor, _, reg| {
        let (woken, waker) = counting_waker();
        let mut cx = Context::from_waker(&waker);
        let mut wait = std::pin::pin!(reg.readiness_future(Direction::Read, false));
        assert!(wait.as_mut().poll(&mut cx).is_pending());
        reactor.shutdown();
        assert_eq!(woken.count(), 1, "the shutdown did not wake the waiter");
        // The shutdown left the direction ready (so no waiter sleeps on); the future
        // says why.
        assert!(matches!(wait.as_mut().poll(&mut cx), Poll::Ready(Err(_))));
        let later = std::pin::pin!(reg.readiness_future(Direction::Write, true)).poll(&mut cx);
        assert!(
            matches!(later, Poll::Ready(Err(_))),
            "{:?}",
            later.map(|r| r.map(|_| ()))
        );
        assert!(reg.is_shut_down());
    });
}
