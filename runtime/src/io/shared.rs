//! `SharedAsync`: one fd waited on from several workers, with wake-one across them.
//!
//! # Fields and locking
//!
//! `Inner::slots` (one mutex) holds, per worker index that has used the fd, the
//! worker's reactor, its *home* registration (where that worker's tasks wait) and which
//! registration the reactor holds now ([`Entry`]). Pausing and resuming a worker change
//! its entry under the mutex, with the `epoll_ctl` made under it too, so the two never
//! race. Waking is done after the mutex is released (a waker may run anything).

use std::fmt;
use std::future::{Future, poll_fn};
use std::io;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, RawFd};
use std::pin::pin;
use std::task::{Context, Poll, Waker};

use crate::loom::os::sync::{Arc, Weak};
use crate::loom::sync::Arc as ReactorArc;
use crate::loom::sync::Mutex;
use crate::reactor::registration::{Registration, current_reactor};
use crate::reactor::scheduled_io::{Direction, ReadyEvent};
use crate::reactor::{Interest, ReactorHandle};

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
///
/// # Pausing a worker
///
/// The kernel gives each event to the first of the registered reactors that has a
/// thread waiting, in the order they registered, so a worker that is often idle takes
/// most of the events. [`pause`](Self::pause) takes a worker's reactor out of the
/// kernel's list (its tasks keep waiting, and are handed events only when no active
/// worker can take them); [`resume`](Self::resume), callable from any thread, puts it
/// back at the end of the list without waking it. A server that pauses a worker holding
/// more than its share of connections, and resumes it once the others have caught up
/// (nginx's `accept_disabled`), spreads connections evenly with one wakeup each.
pub struct SharedAsync<T: AsFd> {
    /// Always `Some` but during `into_inner`.
    io: Option<T>,
    inner: Arc<Inner>,
}

struct Inner {
    fd: RawFd,
    /// One slot per worker index that has used the fd.
    slots: Mutex<Vec<Option<Slot>>>,
    /// Tasks waiting in [`SharedAsync::poll_read_with`] (a `poll_accept`), on any
    /// worker: woken by an event that finds no exclusive waiter anywhere.
    pollers: Mutex<Vec<Waker>>,
}

/// One worker's use of the fd.
struct Slot {
    /// The worker's reactor, kept so that another thread can give the fd back to it.
    reactor: ReactorArc<ReactorHandle>,
    /// Where the worker's tasks wait: the worker's first registration, whose
    /// `ScheduledIo` lives as long as the slot.
    home: Arc<Registration>,
    entry: Entry,
}

/// Which registration of the fd a worker's reactor holds.
enum Entry {
    /// The home registration: events reach the waiters directly.
    Home,
    /// A registration made by [`SharedAsync::resume`] (the home one cannot be added
    /// again: its item was deleted): its events are handed to the home's waiters.
    Relay(Arc<Registration>),
    /// None: the kernel does not give this worker events ([`SharedAsync::pause`]).
    Paused,
}

impl Slot {
    fn is_paused(&self) -> bool {
        matches!(self.entry, Entry::Paused)
    }

    /// Wakes the home's waiters (the fd is going away) without touching the reactor.
    fn wake_home(&self) {
        let mut wake = Vec::new();
        self.home.io().wake_all(&mut wake);
        wake.into_iter().for_each(Waker::wake);
    }
}

impl Inner {
    /// A read event reached worker `from` with nobody waiting there: give it to the
    /// next worker (round-robin from `from`) that has a waiter, an active one before a
    /// paused one (if `to_paused`), or else to the tasks polling.
    fn hand_on(&self, from: usize, to_paused: bool) {
        let target = {
            let slots = self.slots.lock();
            let n = slots.len();
            let mut paused = None;
            let mut active = None;
            for j in (1..n).map(|k| (from + k) % n) {
                let Some(slot) = &slots[j] else { continue };
                if !slot.home.io().has_exclusive_waiter(Direction::Read) {
                    continue;
                }
                if slot.is_paused() {
                    if to_paused {
                        paused.get_or_insert_with(|| slot.home.clone());
                    }
                } else {
                    active = Some(slot.home.clone());
                    break;
                }
            }
            active.or(paused)
        };
        match target {
            Some(reg) => reg.io().hand_event(Direction::Read),
            None => {
                let pollers = std::mem::take(&mut *self.pollers.lock());
                for w in pollers {
                    // Planted bug: the polling tasks' wakers are dropped.
                    crate::loom::planted_bug!("pollers_not_woken", bug: drop(w), code: w.wake());
                }
            }
        }
    }

    /// A read event reached worker `worker`'s relay registration: wake a task waiting
    /// at its home, or hand the event on.
    fn relay(&self, worker: usize) {
        let home = {
            let slots = self.slots.lock();
            match slots.get(worker) {
                Some(Some(slot)) => slot.home.clone(),
                _ => return,
            }
        };
        if home.io().has_exclusive_waiter(Direction::Read) {
            // Planted bug: the relayed event is dropped.
            crate::loom::planted_bug!(
                "relay_drops_event",
                bug: (),
                code: home.io().hand_event(Direction::Read),
            );
        } else {
            self.hand_on(worker, true);
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
                slots: Mutex::new(Vec::new()),
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
        let slots = std::mem::take(&mut *self.inner.slots.lock());
        for slot in slots.into_iter().flatten() {
            match &slot.entry {
                // Deletes the home's item and wakes its waiters.
                Entry::Home => {
                    let _ = slot.home.deregister();
                }
                Entry::Relay(relay) => {
                    let _ = relay.deregister();
                    slot.wake_home();
                }
                Entry::Paused => slot.wake_home(),
            }
        }
    }

    /// This worker's home registration, made on first use.
    fn registration(&self) -> io::Result<Arc<Registration>> {
        let (index, reactor) = current_reactor();
        let mut slots = self.inner.slots.lock();
        if slots.len() <= index {
            slots.resize_with(index + 1, || None);
        }
        if let Some(slot) = &slots[index] {
            return Ok(slot.home.clone());
        }
        let weak: Weak<Inner> = Arc::downgrade(&self.inner);
        let hook = Arc::new(move || {
            if let Some(inner) = weak.upgrade() {
                inner.hand_on(index, true);
            }
        });
        let home = Arc::new(Registration::with_interest(
            reactor.clone(),
            self.inner.fd,
            Interest::Shared(hook),
        )?);
        slots[index] = Some(Slot {
            reactor,
            home: home.clone(),
            entry: Entry::Home,
        });
        Ok(home)
    }

    /// Takes worker `worker`'s reactor out of the kernel's list for this fd: it gets
    /// no more events of its own, and its waiting tasks are handed events only when no
    /// active worker has a task waiting. Returns `false`, changing nothing, if the
    /// worker has not used the fd, is paused already, or is the last active worker
    /// (one must stay, or events would reach nobody).
    ///
    /// Call it from the worker itself (from another thread it works too, and an event
    /// its reactor had received but not dispatched is passed on like the rest). If the
    /// fd is readable when the worker is taken out, the event is handed to an active
    /// worker's waiting task, and the worker's own readiness is cleared: its tasks
    /// wait for an event handed to them, or for one after [`resume`](Self::resume).
    ///
    /// # Errors
    ///
    /// The reactor refused to delete the fd (it is then left as it was).
    pub fn pause(&self, worker: usize) -> io::Result<bool> {
        let (home, seen) = {
            let mut slots = self.inner.slots.lock();
            let active = slots.iter().flatten().filter(|s| !s.is_paused()).count();
            let Some(Some(slot)) = slots.get_mut(worker) else {
                return Ok(false);
            };
            if slot.is_paused() || active <= 1 {
                return Ok(false);
            }
            let seen = slot.home.readiness(Direction::Read);
            let deleted = match &slot.entry {
                Entry::Home => slot.reactor.delete_source(self.inner.fd),
                Entry::Relay(relay) => relay.deregister(),
                Entry::Paused => Ok(()),
            };
            match deleted {
                // ENOENT: the reactor did not hold it (its runtime shut down, say).
                Err(e) if e.raw_os_error() != Some(libc::ENOENT) => return Err(e),
                _ => slot.entry = Entry::Paused,
            }
            (slot.home.clone(), seen)
        };
        // An event the reactor held and had not dispatched went with its item.
        self.pass_readiness_on(worker, &home, seen);
        Ok(true)
    }

    /// For a paused worker that has taken what it was handed (say, one connection):
    /// if the fd is still readable, hands the event to an active worker's waiting
    /// task, and clears this worker's readiness, so that its tasks wait for the next
    /// event handed to them instead of taking the rest of a burst. Does nothing for a
    /// worker that is not paused.
    pub fn pass_on(&self, worker: usize) {
        let home = match self.inner.slots.lock().get(worker) {
            Some(Some(slot)) if slot.is_paused() => slot.home.clone(),
            _ => return,
        };
        let seen = home.readiness(Direction::Read);
        self.pass_readiness_on(worker, &home, seen);
    }

    /// If the fd is readable now, hands the event to an active worker (never a paused
    /// one: an active worker without a waiting task is running, and tries again before
    /// it waits); then clears `home`'s readiness unless an event came after `seen`.
    fn pass_readiness_on(&self, worker: usize, home: &Registration, seen: ReadyEvent) {
        let mut pollfd = [libc::pollfd {
            fd: self.inner.fd,
            events: libc::POLLIN,
            revents: 0,
        }];
        let readable = crate::sys::epoll::poll_now(&mut pollfd).is_ok()
            && pollfd[0].revents & libc::POLLIN != 0;
        let readable = crate::loom::planted_bug!(
            "pass_on_without_poll",
            // Hands on whether or not there is anything to take.
            bug: true,
            code: readable,
        );
        if readable {
            self.inner.hand_on(worker, false);
        }
        home.clear(seen);
    }

    /// Gives worker `worker`'s reactor back its place in the kernel's list (at the
    /// end), from any thread and without waking the worker; its waiting tasks get the
    /// next event the kernel gives it. Returns `false` if the worker is not paused.
    ///
    /// # Errors
    ///
    /// The reactor could not add the fd (`ENOMEM`, `ENOSPC`); the worker stays paused.
    pub fn resume(&self, worker: usize) -> io::Result<bool> {
        let mut slots = self.inner.slots.lock();
        let Some(Some(slot)) = slots.get_mut(worker) else {
            return Ok(false);
        };
        if !slot.is_paused() {
            return Ok(false);
        }
        let weak: Weak<Inner> = Arc::downgrade(&self.inner);
        let hook = Arc::new(move || {
            if let Some(inner) = weak.upgrade() {
                inner.relay(worker);
            }
        });
        let relay = Registration::with_interest(
            slot.reactor.clone(),
            self.inner.fd,
            Interest::Shared(hook),
        )?;
        slot.entry = Entry::Relay(Arc::new(relay));
        Ok(true)
    }

    /// Whether worker `worker` is paused (see [`pause`](Self::pause)).
    pub fn is_paused(&self, worker: usize) -> bool {
        matches!(self.inner.slots.lock().get(worker), Some(Some(slot)) if slot.is_paused())
    }

    /// Waits, as an exclusive waiter on this worker, until the fd is readable (an
    /// event, or one handed on from another worker), without trying any operation: a
    /// paused worker's accept loop waits here for its turn rather than taking
    /// connections from the backlog.
    pub async fn ready_exclusive(&self) -> io::Result<()> {
        let reg = self.registration()?;
        reg.readiness_future(Direction::Read, true).await.map(drop)
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
