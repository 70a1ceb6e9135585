//! A source's registration with a reactor, and the futures that wait on it.

use std::future::Future;
use std::io;
use std::os::fd::RawFd;
use std::pin::Pin;
use std::task::{Context, Poll};

use super::context::{self, PickReactor};
use super::scheduled_io::{Direction, ReadyEvent, ScheduledIo, WaitPoll, WaiterNode};
use super::{Interest, ReactorHandle};
use crate::coop;
use crate::loom::os::sync::{Arc as OsArc, OnceLock, Weak as OsWeak};
use crate::loom::sync::Arc;
use crate::loom::sync::atomic::{AtomicU8, Ordering};

/// An fd registered with one worker's reactor: at once, or (a deferred registration)
/// by the first task that waits on it, with the reactor of that task's worker.
pub(crate) struct Registration {
    io: Arc<ScheduledIo>,
    fd: RawFd,
    /// The reactor that holds the fd; empty until a deferred registration's first wait.
    reactor: OnceLock<Arc<ReactorHandle>>,
    /// What a task that parks its waker needs done first, done: [`REGISTERED`] (the fd
    /// is in `reactor`) and [`WRITES`] (writing is in the registered mask: see the
    /// reactor's docs; set by the first writer that has to wait). One load on the way
    /// to `Pending`.
    done: AtomicU8,
    /// The runtime a deferred registration was made in: its first wait registers with
    /// one of that runtime's reactors (the waiting task's worker's, if the task runs on
    /// one), and fails if that runtime has shut down.
    origin: Option<OsWeak<dyn PickReactor>>,
}

/// See [`Registration::done`].
const REGISTERED: u8 = 1 << 0;
/// See [`Registration::done`].
const WRITES: u8 = 1 << 1;

/// What a wait for `dir` needs done first.
#[inline]
fn needs(dir: Direction) -> u8 {
    match dir {
        Direction::Read => REGISTERED,
        Direction::Write => REGISTERED | WRITES,
    }
}

fn gone() -> io::Error {
    io::Error::other("the epitome runtime that drives this I/O source has shut down")
}

fn no_runtime() -> io::Error {
    io::Error::other(
        "there is no epitome runtime on this thread: an I/O source can only wait inside a task, \
         inside `Runtime::block_on`, or after `Runtime::enter`",
    )
}

impl Registration {
    /// Registers `fd` with the reactor of this thread's worker, or (on a thread that is
    /// in a runtime but runs no worker, such as a multi-reactor `block_on`) with a worker
    /// picked round-robin.
    ///
    /// # Panics
    ///
    /// If there is no epitome runtime on this thread.
    #[track_caller]
    pub(crate) fn new(fd: RawFd) -> io::Result<Registration> {
        Registration::with_interest(current_reactor().1, fd, Interest::Source)
    }

    /// Registers `fd` with `handle`.
    pub(crate) fn with_interest(
        handle: Arc<ReactorHandle>,
        fd: RawFd,
        interest: Interest,
    ) -> io::Result<Registration> {
        let io = handle.register(fd, interest)?;
        Ok(Registration {
            io,
            fd,
            reactor: OnceLock::from(handle),
            // Registered for writing too (a listener never writes).
            done: AtomicU8::new(REGISTERED | WRITES),
            origin: None,
        })
    }

    /// A registration made by the first task that waits on `fd`, with the reactor of
    /// that task's worker (or, off the workers, one the runtime picks): a socket
    /// accepted on one thread and served by a task on another is then served by the
    /// reactor of the worker that runs the task. The fd must be pollable (a socket);
    /// a failure to register is the first wait's error.
    pub(crate) fn deferred(fd: RawFd) -> Registration {
        Registration {
            io: Arc::new(ScheduledIo::new(None)),
            fd,
            reactor: OnceLock::new(),
            done: AtomicU8::new(0),
            origin: context::current_runtime().map(|rt| OsArc::downgrade(&rt)),
        }
    }

    /// Whether a deferred registration's runtime has shut down (or is gone).
    #[cold]
    fn origin_gone(&self) -> bool {
        match &self.origin {
            None => false,
            Some(origin) => origin.upgrade().is_none_or(|rt| rt.is_shut_down()),
        }
    }

    /// The reactor holding the fd, registering it now if it is deferred.
    #[inline]
    fn reactor(&self) -> io::Result<&Arc<ReactorHandle>> {
        match self.reactor.get() {
            Some(reactor) => Ok(reactor),
            None => self.register_here(),
        }
    }

    /// The reactor holding the fd, for a task about to wait for `dir` (its waker or
    /// node is in place): registers a deferred registration, and for a first writer
    /// adds writing to the mask.
    #[inline]
    fn reactor_for(&self, dir: Direction) -> io::Result<&Arc<ReactorHandle>> {
        let reactor = self.reactor()?;
        if self.done.load(Ordering::Acquire) & needs(dir) != needs(dir) {
            // A first writer (two may both get here: the second modify changes
            // nothing). Planted bug: the mask is left without writing.
            crate::loom::planted_bug!(
                "first_writer_no_modify",
                bug: (),
                code: reactor.watch_writes(self.fd, &self.io)?,
            );
            self.done.fetch_or(WRITES, Ordering::Release);
        }
        Ok(reactor)
    }

    /// A deferred registration's first wait: registers the fd with this thread's
    /// reactor. Two threads may get here at once (the halves of a split stream polled
    /// on two workers): each adds the fd to its reactor, the first to record its
    /// reactor keeps it, and the other deletes its own (an add to the same reactor
    /// answers `EEXIST`, which means the other thread's add is the one).
    #[cold]
    #[inline(never)]
    fn register_here(&self) -> io::Result<&Arc<ReactorHandle>> {
        let (_, here) = match self.origin.as_ref().map(OsWeak::upgrade) {
            // Made outside every runtime: whichever this thread is in.
            None => context::current().ok_or_else(no_runtime)?,
            Some(None) => return Err(gone()),
            Some(Some(origin)) => match context::current_runtime() {
                Some(rt) if OsArc::ptr_eq(&rt, &origin) => {
                    context::current().ok_or_else(no_runtime)?
                }
                // Waited on from elsewhere: it stays with its runtime.
                _ => origin.pick_reactor(),
            },
        };
        if here.is_shut_down() {
            return Err(gone());
        }
        let added = match here.add_source(self.fd, &self.io) {
            Ok(()) => true,
            Err(e) if e.raw_os_error() == Some(libc::EEXIST) => false,
            Err(e) => return Err(e),
        };
        // The loom models cannot see `reactor` (a std `OnceLock`), so nothing they track
        // sits between this add and the `set` below, and they never let a rival first
        // wait record its reactor in between (our add then kept, or deleted, by the
        // wrong rule). This no-op read-modify-write of `done`, which the rival's
        // `fetch_or` also writes, puts that order in their reach (a load would not: loom
        // explores which store a load reads, not which thread runs first).
        #[cfg(all(test, epitome_loom))]
        self.done.fetch_or(0, Ordering::Relaxed);
        if let Err(here) = self.reactor.set(here) {
            let same = self.reactor.get().is_some_and(|r| Arc::ptr_eq(r, &here));
            if added && !same {
                // Planted bug: the loser keeps its add, so two reactors hold the fd.
                crate::loom::planted_bug!(
                    "loser_keeps_its_add",
                    bug: (),
                    code: drop(here.delete_source(self.fd)),
                );
            }
        }
        self.done.fetch_or(REGISTERED, Ordering::Release);
        match self.reactor.get() {
            Some(reactor) => Ok(reactor),
            None => unreachable!("the registration was just recorded"),
        }
    }

    pub(crate) fn io(&self) -> &ScheduledIo {
        &self.io
    }

    /// The fd is assumed ready in both directions (a freshly accepted or connected
    /// socket), so its first operation is tried without waiting for an event.
    pub(crate) fn assume_ready(&self) {
        self.io.assume_ready(Direction::Read);
        self.io.assume_ready(Direction::Write);
    }

    /// Deletes the fd from the reactor, if it was registered, and wakes its waiters.
    /// Call before closing it.
    pub(crate) fn deregister(&self) -> io::Result<()> {
        let res = match self.reactor.get() {
            Some(reactor) => reactor.delete_source(self.fd),
            None => Ok(()),
        };
        let mut wake = Vec::new();
        self.io.wake_all(&mut wake);
        for w in wake {
            crate::loom::planted_bug!("deregister_drops_wakes", bug: drop(w), code: w.wake());
        }
        res
    }

    #[inline]
    pub(crate) fn readiness(&self, dir: Direction) -> ReadyEvent {
        self.io.readiness(dir)
    }

    /// After `WouldBlock`: clears readiness unless an event arrived since `seen`.
    #[inline]
    pub(crate) fn clear(&self, seen: ReadyEvent) -> bool {
        self.io.clear_readiness(seen)
    }

    /// After a short read or write: clears readiness unless closed, errored, or newer.
    #[inline]
    pub(crate) fn clear_drained(&self, seen: ReadyEvent) -> bool {
        self.io.clear_drained(seen)
    }

    /// The fast path for `AsyncRead` / `AsyncWrite`-style polling: `Ready` when `dir` is
    /// ready (spending a unit of the task's budget).
    ///
    /// A source whose runtime shut down reports an error: its reactor's shutdown marks
    /// every registered source gone (`ScheduledIo::shut_down`, which wakes its
    /// waiters), and a poll that finds that answers the error at once; a deferred
    /// source not registered yet looks at its runtime instead. The fast path is the
    /// one load: a ready source whose reactor has not marked it yet is answered ready.
    #[inline(always)]
    pub(crate) fn poll_ready(
        &self,
        cx: &mut Context<'_>,
        dir: Direction,
    ) -> Poll<io::Result<ReadyEvent>> {
        if !coop::has_budget(cx) {
            return Poll::Pending;
        }
        let polled = self.io.poll_ready_slot(dir, cx.waker());
        let done = self.done.load(Ordering::Acquire);
        match polled {
            Some(ev) if !ev.is_gone() && done != 0 => {
                coop::spend();
                Poll::Ready(Ok(ev))
            }
            // The waker is parked; an event from now on wakes it.
            None if done & needs(dir) == needs(dir) => Poll::Pending,
            polled => self.poll_ready_unusual(polled, dir),
        }
    }

    /// The rest of [`poll_ready`](Self::poll_ready): the runtime is gone; or the source
    /// is ready but not registered yet (its runtime's shutdown could not mark it); or
    /// the waker is parked for a first wait, which registers a deferred registration,
    /// or adds writing to the mask for a first writer (the add or modify reports the fd
    /// if it is ready already).
    #[cold]
    #[inline(never)]
    fn poll_ready_unusual(
        &self,
        polled: Option<ReadyEvent>,
        dir: Direction,
    ) -> Poll<io::Result<ReadyEvent>> {
        match polled {
            Some(ev) if ev.is_gone() || self.origin_gone() => Poll::Ready(Err(gone())),
            Some(ev) => {
                coop::spend();
                Poll::Ready(Ok(ev))
            }
            None if crate::loom::planted_bug!(
                "first_wait_never_registers",
                bug: true,
                code: false
            ) =>
            {
                Poll::Pending
            }
            None => match self.reactor_for(dir) {
                // Planted bug: no second look at the reactor after the first wait's add.
                Ok(reactor)
                    if crate::loom::planted_bug!(
                        "first_wait_ignores_shutdown",
                        bug: false,
                        code: reactor.is_shut_down()
                    ) =>
                {
                    Poll::Ready(Err(gone()))
                }
                Ok(_) => Poll::Pending,
                Err(e) => Poll::Ready(Err(e)),
            },
        }
    }

    /// Polls `f` until it does not return `WouldBlock`, waiting for readiness in `dir`
    /// and clearing it (generation-checked) after each `WouldBlock`.
    pub(crate) fn poll_io<R>(
        &self,
        cx: &mut Context<'_>,
        dir: Direction,
        mut f: impl FnMut() -> io::Result<R>,
    ) -> Poll<io::Result<R>> {
        loop {
            let ev = std::task::ready!(self.poll_ready(cx, dir))?;
            match f() {
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                    self.clear(ev);
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                res => return Poll::Ready(res),
            }
        }
    }

    /// This task was woken as an exclusive waiter and completed an operation: once its
    /// poll returns, if `dir` is still ready, wake the next exclusive waiter (a burst
    /// of connections or datagrams arrives as one event; a task that takes one and
    /// leaves must not strand the rest). Off a worker thread, at once.
    pub(crate) fn defer_baton(&self, dir: Direction) {
        context::defer_baton(&self.io, dir);
    }

    /// A future that resolves when `dir` is ready; `exclusive` asks for wake-one.
    pub(crate) fn readiness_future(&self, dir: Direction, exclusive: bool) -> Readiness<'_> {
        Readiness {
            reg: self,
            node: WaiterNode::new(dir, exclusive),
            node_direction: dir,
            polled: false,
            done: false,
        }
    }

    /// Runs `f` once readiness in `dir` allows, retrying after `WouldBlock`.
    pub(crate) async fn async_io<R>(
        &self,
        dir: Direction,
        exclusive: bool,
        mut f: impl FnMut() -> io::Result<R>,
    ) -> io::Result<R> {
        loop {
            let ready = self.readiness_future(dir, exclusive).await?;
            match f() {
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                    // Whoever consumed the event consumed it; if a newer event came
                    // meanwhile, the clear fails and we try again at once.
                    self.clear(ready.event);
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                res => {
                    if ready.event.baton {
                        self.defer_baton(dir);
                    }
                    return res;
                }
            }
        }
    }

    /// Whether the runtime that drives this registration has shut down (no event will
    /// come any more).
    pub(crate) fn is_shut_down(&self) -> bool {
        self.reactor.get().is_some_and(|r| r.is_shut_down())
    }

    /// Parks `waker` for the next event of `dir` whatever the readiness (see
    /// `ScheduledIo::park_waker`), registering a deferred registration first.
    pub(crate) fn park_waker(&self, dir: Direction, waker: &std::task::Waker) -> io::Result<()> {
        self.io.park_waker(dir, waker);
        self.reactor_for(dir).map(drop)
    }
}

/// The reactor of this thread's worker (with the worker's index), or, on a thread in a
/// runtime that runs no worker, of a worker the runtime picks (see [`context`]).
///
/// # Panics
///
/// If there is no epitome runtime on this thread.
#[track_caller]
pub(crate) fn current_reactor() -> (usize, Arc<ReactorHandle>) {
    match context::current() {
        Some(current) => current,
        None => panic!(
            "there is no epitome runtime on this thread: I/O sources must be created inside a task, \
             inside `Runtime::block_on`, or after `Runtime::enter`"
        ),
    }
}

/// What a readiness future resolves to.
pub(crate) struct Ready {
    pub(crate) event: ReadyEvent,
}

/// Waits for readiness through an intrusive waiter node owned by this future.
pub(crate) struct Readiness<'a> {
    reg: &'a Registration,
    node: WaiterNode,
    node_direction: Direction,
    polled: bool,
    done: bool,
}

impl Future for Readiness<'_> {
    type Output = io::Result<Ready>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<Ready>> {
        // SAFETY: the node is never moved out of the pinned future; it is unlinked in
        // `Drop` before the memory goes away.
        let this = unsafe { self.get_unchecked_mut() };
        let dir = this.node_direction;
        match this.reg.reactor_for(dir) {
            Ok(reactor) if reactor.is_shut_down() => return Poll::Ready(Err(gone())),
            Ok(_) => {}
            Err(e) => return Poll::Ready(Err(e)),
        }
        let coop = std::task::ready!(coop::poll_proceed(cx));
        this.polled = true;
        // SAFETY: the node is pinned (we are) and `Drop` calls `drop_waiter`.
        match unsafe { this.reg.io.poll_waiter(&this.node, cx.waker()) } {
            WaitPoll::Ready(event) => {
                coop.made_progress();
                this.done = true;
                Poll::Ready(Ok(Ready { event }))
            }
            WaitPoll::Pending => Poll::Pending,
        }
    }
}

impl Readiness<'_> {
    /// Done with the wait: unlinks the node if it is still waiting; if it holds an
    /// exclusive wakeup and `consumed` is false, passes the wakeup on.
    pub(crate) fn finish(self: Pin<&mut Self>, consumed: bool) {
        // SAFETY: the node is not moved; we only touch it through the source.
        let this = unsafe { self.get_unchecked_mut() };
        if this.polled && !this.done {
            // SAFETY: the node was only polled on this source and is still pinned.
            unsafe { this.reg.io.drop_waiter(&this.node, consumed) };
        }
        this.done = true;
    }
}

impl Drop for Readiness<'_> {
    fn drop(&mut self) {
        if self.polled && !self.done {
            // SAFETY: the node was only polled on this source; it is still pinned.
            unsafe { self.reg.io.drop_waiter(&self.node, false) };
        }
    }
}

// A deferred registration that no wait registers: both builds (in the loom build each
// is a one-thread model).
#[cfg(test)]
mod tests {
    use super::*;
    use crate::loom::os::sync::atomic::{AtomicBool, Ordering as OsOrdering};
    use std::task::Waker;

    /// A runtime, as a deferred registration made in it sees it.
    struct Origin {
        shut_down: AtomicBool,
    }
    impl PickReactor for Origin {
        fn pick_reactor(&self) -> (usize, Arc<ReactorHandle>) {
            unreachable!("the test's source is ready: no wait registers it")
        }
        fn is_shut_down(&self) -> bool {
            self.shut_down.load(OsOrdering::SeqCst)
        }
    }

    /// A registration deferred in `origin` (an accepted socket), assumed ready.
    fn accepted_in(origin: &OsArc<Origin>) -> Registration {
        let origin: OsArc<dyn PickReactor> = origin.clone();
        let outer = context::set_runtime(Some(origin));
        // Never handed to a kernel: no wait registers it.
        let reg = Registration::deferred(-1);
        drop(context::set_runtime(outer));
        reg.assume_ready();
        reg
    }

    fn poll_read(reg: &Registration) -> Poll<io::Result<ReadyEvent>> {
        reg.poll_ready(&mut Context::from_waker(Waker::noop()), Direction::Read)
    }

    #[test]
    fn a_ready_deferred_source_fails_once_its_runtime_shut_down_or_went_away() {
        crate::loom::unit_test(|| {
            let origin = OsArc::new(Origin {
                shut_down: AtomicBool::new(false),
            });
            let reg = accepted_in(&origin);
            assert!(reg.readiness(Direction::Read).is_ready());
            assert!(reg.readiness(Direction::Write).is_ready());
            // Ready: its first operation is tried without registering.
            assert!(matches!(poll_read(&reg), Poll::Ready(Ok(ev)) if ev.is_ready()));
            assert!(reg.reactor.get().is_none());
            // Its runtime shut down before it was registered: the shutdown could not
            // mark it gone, so the poll looks at the runtime.
            origin.shut_down.store(true, OsOrdering::SeqCst);
            assert!(matches!(poll_read(&reg), Poll::Ready(Err(_))));
            // Its runtime is gone altogether.
            let reg = accepted_in(&origin);
            drop(origin);
            assert!(matches!(poll_read(&reg), Poll::Ready(Err(_))));
        });
    }

    #[test]
    fn a_clear_after_would_block_takes_readiness_unless_an_event_came_since() {
        crate::loom::unit_test(|| {
            let origin = OsArc::new(Origin {
                shut_down: AtomicBool::new(false),
            });
            let reg = accepted_in(&origin);
            let seen = reg.readiness(Direction::Read);
            assert!(reg.clear(seen));
            assert!(!reg.readiness(Direction::Read).is_ready());
            // An event since what the task saw: the clear leaves it.
            let seen = reg.readiness(Direction::Write);
            reg.io().assume_ready(Direction::Write);
            assert!(!reg.clear(seen));
            assert!(reg.readiness(Direction::Write).is_ready());
        });
    }

    #[test]
    fn a_drained_direction_loses_readiness_unless_closed() {
        crate::loom::unit_test(|| {
            let origin = OsArc::new(Origin {
                shut_down: AtomicBool::new(false),
            });
            let reg = accepted_in(&origin);
            assert!(reg.clear_drained(reg.readiness(Direction::Read)));
            assert!(!reg.readiness(Direction::Read).is_ready());
            // The peer hung up: the end of stream is still to be read.
            let (mut wake, mut unclaimed) = (Vec::new(), Vec::new());
            reg.io()
                .dispatch(crate::eventpoll::EPOLLHUP, &mut wake, &mut unclaimed);
            assert!(!reg.clear_drained(reg.readiness(Direction::Read)));
            assert!(reg.readiness(Direction::Read).is_closed());
        });
    }
}

// Registrations of reactors over the fake kernel (first waits, the I/O retry loops,
// readiness futures): the loom build only.
#[cfg(all(test, epitome_loom))]
#[path = "registration_tests/fake_kernel.rs"]
mod fake_kernel_tests;
