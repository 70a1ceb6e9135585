//! `SharedAsync`: one fd waited on from several workers, with wake-one across them.

use std::fmt;
use std::future::{Future, poll_fn};
use std::io;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, RawFd};
use std::pin::pin;
use std::task::{Context, Poll, Waker};

use crate::loom::os::sync::{Arc, Weak};
use crate::loom::sync::Mutex;
use crate::reactor::Interest;
use crate::reactor::registration::{Registration, current_reactor};
use crate::reactor::scheduled_io::Direction;

/// An fd (a listening socket, typically) that tasks on several workers wait on for
/// readability, one waking per event.
///
/// Each worker that uses it registers the fd in its own `EventPoll` with
/// `EPOLLEXCLUSIVE`, so the kernel wakes one of the workers' reactors per event; within
/// a worker, waiting tasks are exclusive waiters, so the event wakes one task. A worker
/// whose reactor gets an event while none of its tasks waits hands the event to a worker
/// where one does, so no event is stranded on an idle worker.
///
/// Use [`read_with_exclusive`](Self::read_with_exclusive) for the operation (`accept`).
/// It links its waiter before trying the operation, then sleeps only if the operation
/// would block, so an event that arrives in between always finds it.
pub struct SharedAsync<T: AsFd> {
    /// Always `Some` but during `into_inner`.
    io: Option<T>,
    inner: Arc<Inner>,
}

struct Inner {
    fd: RawFd,
    /// One registration per worker index that has used the fd.
    regs: Mutex<Vec<Option<Arc<Registration>>>>,
    /// Tasks waiting in [`SharedAsync::poll_read_with`] (a `poll_accept`), on any
    /// worker: woken by an event that finds no exclusive waiter anywhere.
    pollers: Mutex<Vec<Waker>>,
}

impl Inner {
    /// A read event reached worker `from`'s registration with nobody waiting there:
    /// give it to the next worker (round-robin from `from`) that has a waiter, or else
    /// to the tasks polling.
    fn hand_on(&self, from: usize) {
        let target = {
            let regs = self.regs.lock();
            let n = regs.len();
            (1..n)
                .map(|k| (from + k) % n)
                .filter_map(|j| regs[j].clone())
                .find(|r| r.io().has_exclusive_waiter(Direction::Read))
        };
        match target {
            Some(reg) => reg.io().hand_event(Direction::Read),
            None => {
                let pollers = std::mem::take(&mut *self.pollers.lock());
                for w in pollers {
                    w.wake();
                }
            }
        }
    }

    fn add_poller(&self, waker: &Waker) {
        let mut pollers = self.pollers.lock();
        if !pollers.iter().any(|w| w.will_wake(waker)) {
            pollers.push(waker.clone());
        }
    }
}

impl<T: AsFd> SharedAsync<T> {
    /// Wraps `io`, whose fd the caller guarantees is non-blocking. Registration happens
    /// lazily, on each worker that waits on it.
    pub fn new(io: T) -> SharedAsync<T> {
        let fd = io.as_fd().as_raw_fd();
        SharedAsync {
            io: Some(io),
            inner: Arc::new(Inner {
                fd,
                regs: Mutex::new(Vec::new()),
                pollers: Mutex::new(Vec::new()),
            }),
        }
    }

    /// The inner value.
    pub fn get_ref(&self) -> &T {
        match &self.io {
            Some(io) => io,
            None => unreachable!("the value is only taken by into_inner, which consumes self"),
        }
    }

    /// Deletes the fd from every reactor and gives the value back.
    pub fn into_inner(mut self) -> T {
        self.deregister_all();
        match self.io.take() {
            Some(io) => io,
            None => unreachable!("the value is only taken here"),
        }
    }

    fn deregister_all(&self) {
        let regs = std::mem::take(&mut *self.inner.regs.lock());
        for reg in regs.into_iter().flatten() {
            let _ = reg.deregister();
        }
    }

    /// This worker's registration, made on first use.
    fn registration(&self) -> io::Result<Arc<Registration>> {
        let (index, reactor) = current_reactor();
        let mut regs = self.inner.regs.lock();
        if regs.len() <= index {
            regs.resize(index + 1, None);
        }
        if let Some(r) = &regs[index] {
            return Ok(r.clone());
        }
        let weak: Weak<Inner> = Arc::downgrade(&self.inner);
        let hook = Arc::new(move || {
            if let Some(inner) = weak.upgrade() {
                inner.hand_on(index);
            }
        });
        let reg = Arc::new(Registration::with_interest(
            reactor,
            self.inner.fd,
            Interest::Shared(hook),
        )?);
        regs[index] = Some(reg.clone());
        Ok(reg)
    }

    /// Runs `f` (which must be non-blocking) until it does not return `WouldBlock`,
    /// waiting for readability as an exclusive waiter between tries.
    pub async fn read_with_exclusive<R>(
        &self,
        mut f: impl FnMut(&T) -> io::Result<R>,
    ) -> io::Result<R> {
        let reg = self.registration()?;
        // Whether we were woken as the exclusive waiter of an event (see below).
        let mut baton = false;
        loop {
            let mut wait = pin!(reg.readiness_future(Direction::Read, true));
            // Link the waiter (or see readiness) first: from here on, an event, or one
            // handed on from another worker, reaches us.
            let first = poll_fn(|cx| Poll::Ready(wait.as_mut().poll(cx))).await;
            match f(self.get_ref()) {
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => match first {
                    Poll::Ready(Ok(ready)) => {
                        reg.clear(ready.event);
                    }
                    Poll::Ready(Err(e)) => return Err(e),
                    Poll::Pending => {
                        baton = wait.as_mut().await?.event.baton;
                    }
                },
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                res => {
                    wait.as_mut().finish(true);
                    if baton {
                        // A burst may hold more: pass the wakeup on if still ready.
                        reg.defer_baton(Direction::Read);
                    }
                    return res;
                }
            }
        }
    }
}

impl<T: AsFd> SharedAsync<T> {
    /// The poll form of [`read_with_exclusive`](Self::read_with_exclusive), for
    /// `poll_accept`: tries `f` (non-blocking) and, if it would block, returns `Pending`
    /// with the task's waker kept until a read event finds no exclusive waiter on any
    /// worker (polling tasks come after the `read_with_exclusive` waiters, which take
    /// their events one each). Spends a unit of the task's cooperative budget when it
    /// completes.
    pub fn poll_read_with<R>(
        &self,
        cx: &mut Context<'_>,
        mut f: impl FnMut(&T) -> io::Result<R>,
    ) -> Poll<io::Result<R>> {
        // Registering makes events reach this fd's hook (on this worker at least).
        let reg = match self.registration() {
            Ok(reg) => reg,
            Err(e) => return Poll::Ready(Err(e)),
        };
        if reg.is_shut_down() {
            return Poll::Ready(Err(super::wait::gone()));
        }
        let coop = std::task::ready!(crate::coop::poll_proceed(cx));
        let mut waiting = false;
        loop {
            match f(self.get_ref()) {
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                    if waiting {
                        return Poll::Pending;
                    }
                    // Keep the waker, then try once more: an event between the first
                    // try and the keeping finds the waker, or the second try finds the
                    // connection.
                    self.inner.add_poller(cx.waker());
                    waiting = true;
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                res => {
                    coop.made_progress();
                    return Poll::Ready(res);
                }
            }
        }
    }
}

impl<T: AsFd> AsFd for SharedAsync<T> {
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.get_ref().as_fd()
    }
}

impl<T: AsFd> AsRawFd for SharedAsync<T> {
    fn as_raw_fd(&self) -> RawFd {
        self.inner.fd
    }
}

impl<T: AsFd> Drop for SharedAsync<T> {
    fn drop(&mut self) {
        // Delete from every reactor before the fd closes (when `io` drops after this).
        if self.io.is_some() {
            self.deregister_all();
        }
    }
}

impl<T: AsFd + fmt::Debug> fmt::Debug for SharedAsync<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SharedAsync")
            .field("io", self.get_ref())
            .finish()
    }
}
