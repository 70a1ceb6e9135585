//! First waits that register, with reactors over the fake kernel: the loom build only
//! (a child module of `reactor::registration`).

use std::time::Duration;

use super::*;
use crate::eventpoll::{EPOLLIN, EPOLLOUT, Event};
use crate::loom::os::sync::atomic::{AtomicBool, Ordering as OsOrdering};
use crate::reactor::context::WorkerReactor;
use crate::reactor::scheduled_io::bits;
use std::task::Waker;

/// One non-blocking turn, waking what it dispatched; returns how many events it took.
fn turn(reactor: &ReactorHandle) -> usize {
    let mut events = [Event::default(); 4];
    let (mut wake, mut unclaimed) = (Vec::new(), Vec::new());
    reactor
        .turn_into(
            &mut events,
            &mut wake,
            &mut unclaimed,
            Some(Duration::ZERO),
            |_| {},
        )
        .unwrap()
}

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
        assert_eq!(turn(&reactor), 0, "a reader's first wait watches writes");
        assert_eq!(reg.readiness(Direction::Write).word & bits::READY, 0);
        // A writer has to wait: its first wait adds writing, and hears of the room.
        assert!(poll(&reg, Direction::Write, &writer.1).is_pending());
        assert_eq!(turn(&reactor), 1);
        assert_eq!(writer.0.count(), 1);
        assert_eq!(reader.0.count(), 0);
        assert!(matches!(
            poll(&reg, Direction::Write, &writer.1),
            Poll::Ready(Ok(_))
        ));
        reactor.kernel().set_ready(fd, EPOLLIN);
        assert_eq!(turn(&reactor), 1);
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
        assert_eq!(turn(&reactor), 1);
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
