//! A source's registration with a reactor, and the futures that wait on it.

use std::future::Future;
use std::io;
use std::os::fd::RawFd;
use std::pin::Pin;
use std::task::{Context, Poll};

use super::scheduled_io::{Direction, ReadyEvent, ScheduledIo, WaitPoll, WaiterNode};
use super::{Interest, ReactorHandle};
use crate::coop;
use crate::loom::os::sync::Arc as OsArc;
use crate::loom::sync::Arc;
use crate::scheduler::context;

/// An fd registered with one worker's reactor.
pub(crate) struct Registration {
    handle: Arc<ReactorHandle>,
    io: Arc<ScheduledIo>,
    token: u64,
    fd: RawFd,
}

fn gone() -> io::Error {
    io::Error::other("the epitome runtime that drives this I/O source has shut down")
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
        let (io, token) = handle.register(fd, interest)?;
        Ok(Registration {
            handle,
            io,
            token,
            fd,
        })
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

    /// Deletes the fd from the reactor. Call before closing it.
    pub(crate) fn deregister(&self) -> io::Result<()> {
        self.handle.deregister(self.fd, self.token)
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
    #[inline]
    pub(crate) fn poll_ready(
        &self,
        cx: &mut Context<'_>,
        dir: Direction,
    ) -> Poll<io::Result<ReadyEvent>> {
        if self.handle.is_shut_down() {
            return Poll::Ready(Err(gone()));
        }
        let coop = std::task::ready!(coop::poll_proceed(cx));
        match self.io.poll_ready_slot(dir, cx.waker()) {
            Some(ev) => {
                coop.made_progress();
                Poll::Ready(Ok(ev))
            }
            None => Poll::Pending,
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
        let io = self.io.clone();
        let deferred = context::with_worker(|w| match w {
            Some(local) => {
                local.defer_baton(io, dir);
                None
            }
            None => Some(io),
        });
        if let Some(io) = deferred {
            io.pass_baton_if_ready(dir);
        }
    }

    /// A future that resolves when `dir` is ready; `exclusive` asks for wake-one.
    pub(crate) fn readiness_future(&self, dir: Direction, exclusive: bool) -> Readiness<'_> {
        Readiness {
            reg: self,
            node: WaiterNode::new(dir, exclusive),
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
        self.handle.is_shut_down()
    }
}

/// The reactor of this thread's worker (with the worker's index), or, on a thread in a
/// runtime that runs no worker, of a worker picked round-robin.
///
/// # Panics
///
/// If there is no epitome runtime on this thread.
#[track_caller]
pub(crate) fn current_reactor() -> (usize, Arc<ReactorHandle>) {
    let rt = context::runtime();
    let local = context::with_worker(|w| w.map(|local| local.shared.clone()));
    match (rt, local) {
        (Some(rt), Some(shared)) => {
            let index = rt
                .workers
                .iter()
                .position(|w| OsArc::ptr_eq(w, &shared))
                .unwrap_or(0);
            (index, shared.reactor.clone())
        }
        (Some(rt), None) => {
            let w = rt.pick_resource_worker();
            let index = rt
                .workers
                .iter()
                .position(|x| OsArc::ptr_eq(x, w))
                .unwrap_or(0);
            (index, w.reactor.clone())
        }
        (None, _) => panic!(
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
    polled: bool,
    done: bool,
}

impl Future for Readiness<'_> {
    type Output = io::Result<Ready>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<Ready>> {
        // SAFETY: the node is never moved out of the pinned future; it is unlinked in
        // `Drop` before the memory goes away.
        let this = unsafe { self.get_unchecked_mut() };
        if this.reg.handle.is_shut_down() {
            return Poll::Ready(Err(gone()));
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
