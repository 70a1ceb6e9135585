//! The reactor: each worker's `EventPoll`, the turn that waits on it, and the I/O
//! sources registered with it.
//!
//! A turn is the user-space counterpart of the kernel's `ep_poll_callback` path: it
//! takes the events its `EventPoll` reports and, for each, records readiness on the
//! source and wakes the source's waiters ([`scheduled_io`]). Sources are registered
//! edge-triggered, for reading and writing at once, so a source costs one `add` and one
//! `delete` in its lifetime, whatever its tasks wait for.

pub(crate) mod registration;
pub(crate) mod scheduled_io;

use std::io;
use std::os::fd::{AsRawFd, RawFd};
use std::task::Waker;
use std::time::Duration;

use slab::Slab;

use crate::eventpoll::{
    EPOLLET, EPOLLEXCLUSIVE, EPOLLIN, EPOLLOUT, EPOLLPRI, EPOLLRDHUP, Event, EventPoll,
};
use crate::loom::os::sync::atomic::AtomicU32;
use crate::loom::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use crate::loom::sync::{Arc, Mutex};
use crate::sys::eventfd::EventFd;
use scheduled_io::ScheduledIo;

/// The token of the worker's unpark eventfd.
pub(crate) const UNPARK_TOKEN: u64 = u64::MAX - 1;

/// Events handled per turn at most, so one turn cannot flood the run queue.
pub(crate) const EVENTS_PER_TURN: usize = 1024;

/// The mask every source is registered with.
const SOURCE_EVENTS: u32 = EPOLLIN | EPOLLOUT | EPOLLRDHUP | EPOLLPRI | EPOLLET;

/// The mask of a source shared by several workers (a listener): readable only, and
/// EPOLLEXCLUSIVE, so one event wakes one of the workers' reactors.
const SHARED_EVENTS: u32 = EPOLLIN | EPOLLET | EPOLLEXCLUSIVE;

/// How a source is registered.
pub(crate) enum Interest {
    /// Read and write, edge-triggered.
    Source,
    /// Read only, edge-triggered and exclusive across reactors; the hook receives read
    /// events that find no waiter on this reactor.
    Shared(scheduled_io::UnclaimedHook),
}

/// What other threads reach: the `EventPoll` and the registry of sources.
pub(crate) struct ReactorHandle {
    pub(crate) poll: EventPoll,
    sources: Mutex<Slab<Entry>>,
    /// Registered sources (a gauge for metrics and leak checks).
    registered: AtomicUsize,
    /// The runtime shut down: no turn will dispatch events any more.
    shut_down: AtomicBool,
}

struct Entry {
    io: Arc<ScheduledIo>,
    generation: u32,
}

fn token(slot: usize, generation: u32) -> u64 {
    (u64::from(generation) << 32) | slot as u64
}

impl ReactorHandle {
    /// Registers `fd` (edge-triggered, read and write): returns its shared state and its
    /// token for [`deregister`](Self::deregister).
    pub(crate) fn register(
        &self,
        fd: RawFd,
        interest: Interest,
    ) -> io::Result<(Arc<ScheduledIo>, u64)> {
        let (mask, hook) = match interest {
            Interest::Source => (SOURCE_EVENTS, None),
            Interest::Shared(hook) => (SHARED_EVENTS, Some(hook)),
        };
        let io = Arc::new(ScheduledIo::new(hook));
        let mut sources = self.sources.lock().unwrap_or_else(|e| e.into_inner());
        let slot = sources.vacant_key();
        if slot >= u32::MAX as usize {
            return Err(io::Error::from_raw_os_error(libc::ENOSPC));
        }
        // A per-registration generation, so a late event for a freed slot is ignored.
        static GENERATION: AtomicU32 = AtomicU32::new(1);
        let generation = GENERATION.fetch_add(1, Ordering::Relaxed);
        let token = token(slot, generation);
        // Hold the registry lock across the add, so no event for the token can be
        // dispatched before the entry exists.
        self.poll.add(fd, Event::new(mask, token))?;
        sources.insert(Entry {
            io: io.clone(),
            generation,
        });
        self.registered.fetch_add(1, Ordering::Relaxed);
        Ok((io, token))
    }

    /// Deletes `fd` from the `EventPoll` (before its owner closes it: the contract of a
    /// user-space eventpoll) and forgets the source, waking its waiters so none sleeps
    /// on a source that is gone.
    pub(crate) fn deregister(&self, fd: RawFd, token: u64) -> io::Result<()> {
        let res = self.poll.delete(fd);
        let slot = (token & u64::from(u32::MAX)) as usize;
        let generation = (token >> 32) as u32;
        let mut wake = Vec::new();
        {
            let mut sources = self.sources.lock().unwrap_or_else(|e| e.into_inner());
            if sources
                .get(slot)
                .is_some_and(|e| e.generation == generation)
            {
                let entry = sources.remove(slot);
                self.registered.fetch_sub(1, Ordering::Relaxed);
                entry.io.wake_all(&mut wake);
            }
        }
        wake.into_iter().for_each(Waker::wake);
        res
    }

    /// One turn: waits up to `timeout` on the `EventPoll` into `events`, calls
    /// `waited` with the number of events, records each event on its source and wakes
    /// the waiters (after the registry lock is released), then runs the hand-on hooks
    /// of events nobody here waited for. The owning worker calls it with its own
    /// buffers; another worker may call it, without blocking, to stand in for a worker
    /// stuck in a task that does not yield.
    ///
    /// `waited` runs before any waiter is woken, so whatever it records (the metrics'
    /// wait and event counts) is visible to a task woken by one of the events.
    pub(crate) fn turn_into(
        &self,
        events: &mut [Event],
        wake: &mut Vec<Waker>,
        unclaimed: &mut Vec<scheduled_io::UnclaimedHook>,
        timeout: Option<Duration>,
        waited: impl FnOnce(usize),
    ) -> io::Result<usize> {
        let n = match self.poll.wait(events, timeout) {
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => 0,
            Err(e) => return Err(e),
        };
        waited(n);
        if n == 0 {
            return Ok(0);
        }
        {
            let sources = self.sources.lock().unwrap_or_else(|e| e.into_inner());
            for ev in &events[..n] {
                if ev.data == UNPARK_TOKEN {
                    continue;
                }
                let slot = (ev.data & u64::from(u32::MAX)) as usize;
                let generation = (ev.data >> 32) as u32;
                if let Some(entry) = sources.get(slot).filter(|e| e.generation == generation) {
                    entry.io.dispatch(ev.events, wake, unclaimed);
                }
            }
        }
        for w in wake.drain(..) {
            w.wake();
        }
        // Outside every lock: a hook takes other reactors' source locks.
        for hook in unclaimed.drain(..) {
            hook();
        }
        Ok(n)
    }

    /// Sources registered now.
    pub(crate) fn registered(&self) -> usize {
        self.registered.load(Ordering::Relaxed)
    }

    #[inline]
    pub(crate) fn is_shut_down(&self) -> bool {
        self.shut_down.load(Ordering::Acquire)
    }

    /// The runtime is shutting down: later polls of its sources fail instead of waiting
    /// for events that no turn will dispatch, and current waiters are woken to see it.
    pub(crate) fn shutdown(&self) {
        self.shut_down.store(true, Ordering::Release);
        let mut wake = Vec::new();
        for (_, e) in self
            .sources
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .iter()
        {
            e.io.wake_all(&mut wake);
        }
        wake.into_iter().for_each(Waker::wake);
    }
}

/// What the worker's loop owns: the event buffer and reusable waker buffers.
pub(crate) struct Driver {
    handle: Arc<ReactorHandle>,
    events: Box<[Event]>,
    wake: Vec<Waker>,
    unclaimed: Vec<scheduled_io::UnclaimedHook>,
}

impl Driver {
    /// A reactor whose `EventPoll` also watches `unpark` (edge-triggered: every write is
    /// a wakeup, so the eventfd never needs reading).
    pub(crate) fn new(unpark: &EventFd) -> io::Result<(Driver, Arc<ReactorHandle>)> {
        let poll = EventPoll::new()?;
        poll.add(
            unpark.as_raw_fd(),
            Event::new(EPOLLIN | EPOLLET, UNPARK_TOKEN),
        )?;
        let handle = Arc::new(ReactorHandle {
            poll,
            sources: Mutex::new(Slab::new()),
            registered: AtomicUsize::new(0),
            shut_down: AtomicBool::new(false),
        });
        let events = vec![Event::default(); EVENTS_PER_TURN].into_boxed_slice();
        Ok((
            Driver {
                handle: handle.clone(),
                events,
                wake: Vec::new(),
                unclaimed: Vec::new(),
            },
            handle,
        ))
    }

    /// Waits up to `timeout` for events and dispatches them: `waited` gets the number of
    /// events before anything is dispatched, then readiness is recorded on each source
    /// and its waiters are woken (after the registry lock is released). Returns how
    /// many events the wait reported.
    pub(crate) fn turn(
        &mut self,
        timeout: Option<Duration>,
        waited: impl FnOnce(usize),
    ) -> io::Result<usize> {
        self.handle.turn_into(
            &mut self.events,
            &mut self.wake,
            &mut self.unclaimed,
            timeout,
            waited,
        )
    }
}
