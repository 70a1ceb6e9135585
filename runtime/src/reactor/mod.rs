//! The reactor: each worker's `EventPoll`, the turn that waits on it, and the I/O
//! sources registered with it.
//!
//! A turn is the user-space counterpart of the kernel's `ep_poll_callback` path: it
//! takes the events its `EventPoll` reports and, for each, records readiness on the
//! source and wakes the source's waiters ([`scheduled_io`]). Sources are registered
//! edge-triggered, for reading and writing. A connection registered by its first wait
//! (an accepted socket, assumed writable) is registered for reading only; writing is
//! added to its mask (one `modify`) the first time a task has to wait to write, so a
//! connection whose writes never block (most request / response connections) is not
//! reported for every event with its send buffer's space, which it never needed to
//! hear about.

pub(crate) mod context;
pub(crate) mod registration;
pub(crate) mod scheduled_io;
mod waiters;

use std::io;
#[cfg(not(all(test, epitome_loom)))]
use std::os::fd::AsRawFd;
use std::os::fd::RawFd;
use std::task::Waker;
use std::time::Duration;

use crate::eventpoll::poller::Poller;
use crate::eventpoll::{
    EPOLLET, EPOLLEXCLUSIVE, EPOLLIN, EPOLLOUT, EPOLLPRI, EPOLLRDHUP, Event, ItemData,
};
use crate::loom::sync::Arc;
use crate::loom::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
#[cfg(not(all(test, epitome_loom)))]
use crate::sys::eventfd::EventFd;
use scheduled_io::ScheduledIo;

/// The kernel under the reactor's eventpoll: the real one, or in the loom models' build
/// the fake one, so a model runs a whole turn (`ReactorHandle::turn_into`) and the
/// registrations that feed it.
#[cfg(not(all(test, epitome_loom)))]
type ReactorKernel = crate::eventpoll::kernel::SysKernel;
#[cfg(all(test, epitome_loom))]
type ReactorKernel = crate::eventpoll::fake_kernel::FakeKernel;

/// The token of the worker's unpark eventfd.
pub(crate) const UNPARK_TOKEN: u64 = u64::MAX - 1;

/// Events handled per turn at most, so one turn cannot flood the run queue.
pub(crate) const EVENTS_PER_TURN: usize = 1024;

/// The mask a source is registered with. EPOLLERR and EPOLLHUP are always reported,
/// and reach writers too.
const SOURCE_EVENTS: u32 = EPOLLIN | EPOLLRDHUP | EPOLLPRI | EPOLLET;

/// The mask of a source whose writer has had to wait.
const SOURCE_WRITE_EVENTS: u32 = SOURCE_EVENTS | EPOLLOUT;

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

/// What an item of the reactor's eventpoll carries: the source's readiness state, whose
/// address is the event's data (so a turn reaches it with no lookup), or nothing for the
/// worker's unpark eventfd.
pub(crate) struct Source {
    /// The event's data: `io`'s address, or [`UNPARK_TOKEN`]. Derivable from `io`,
    /// but kept: `data()` is read for every event delivered, and one load beats
    /// matching the option there (measured in the instruction count).
    data: u64,
    io: Option<Arc<ScheduledIo>>,
}

impl Source {
    fn new(io: Option<Arc<ScheduledIo>>) -> Source {
        let data = match &io {
            Some(io) => Arc::as_ptr(io) as u64,
            None => UNPARK_TOKEN,
        };
        Source { data, io }
    }
}

impl ItemData for Source {
    #[inline]
    fn data(&self) -> u64 {
        self.data
    }
}

/// What other threads reach: the eventpoll, whose items are the registry of sources.
pub(crate) struct ReactorHandle {
    poll: Poller<ReactorKernel, Source>,
    /// Sources registered now.
    registered: AtomicUsize,
    /// The runtime shut down: no turn will dispatch events any more.
    shut_down: AtomicBool,
}

impl ReactorHandle {
    /// Registers `fd` (edge-triggered, read and write): returns its shared state, which
    /// the eventpoll item holds too until [`deregister`](Self::deregister).
    pub(crate) fn register(&self, fd: RawFd, interest: Interest) -> io::Result<Arc<ScheduledIo>> {
        let (mask, hook) = match interest {
            Interest::Source => (SOURCE_WRITE_EVENTS, None),
            Interest::Shared(hook) => (SHARED_EVENTS, Some(hook)),
        };
        let io = Arc::new(ScheduledIo::new(hook));
        self.poll.add(fd, mask, Source::new(Some(io.clone())))?;
        self.registered.fetch_add(1, Ordering::Relaxed);
        Ok(io)
    }

    /// Registers `fd` for reading (edge-triggered) for an existing `io`: a connection
    /// registered by its first wait; see [`watch_writes`](Self::watch_writes).
    pub(crate) fn add_source(&self, fd: RawFd, io: &Arc<ScheduledIo>) -> io::Result<()> {
        self.poll
            .add(fd, SOURCE_EVENTS, Source::new(Some(io.clone())))?;
        self.registered.fetch_add(1, Ordering::Relaxed);
        Ok(())
    }

    /// Adds writing to `fd`'s mask (a writer must wait for buffer space). The modify
    /// polls the fd, so space that came since the writer's `WouldBlock` is reported.
    pub(crate) fn watch_writes(&self, fd: RawFd, io: &Arc<ScheduledIo>) -> io::Result<()> {
        self.poll
            .modify(fd, SOURCE_WRITE_EVENTS, Source::new(Some(io.clone())))
    }

    /// Deletes `fd` from the eventpoll (before its owner closes it: the contract of a
    /// user-space eventpoll), which drops the item's hold on its source. Once this
    /// returns, no turn dispatches to that source: a turn dispatches under the
    /// eventpoll's lock, which the delete takes.
    pub(crate) fn delete_source(&self, fd: RawFd) -> io::Result<()> {
        let res = self.poll.delete(fd);
        if res.is_ok() {
            self.registered.fetch_sub(1, Ordering::Relaxed);
        }
        res
    }

    /// One turn: waits up to `timeout` on the eventpoll into `events`, calls `waited`
    /// with the number of events, records each event on its source (collecting the
    /// waiters to wake), then wakes them once the eventpoll's lock is released, then
    /// runs the hand-on hooks of events nobody here waited for. The owning worker
    /// calls it with its own buffers; another worker may call it, without blocking, to
    /// stand in for a worker stuck in a task that does not yield.
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
        let res = self.poll.wait_then(events, timeout, |events| {
            waited(events.len());
            for ev in events {
                if ev.data == UNPARK_TOKEN {
                    continue;
                }
                // SAFETY: every other item's data is the address of the `ScheduledIo`
                // its `Source` holds an `Arc` of, and the item is alive while this
                // closure runs (under the eventpoll's lock; see `Poller::wait_then`).
                let io = unsafe { &*(ev.data as *const ScheduledIo) };
                io.dispatch(ev.events, wake, unclaimed);
            }
        });
        let n = match res {
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => return Ok(0),
            Err(e) => return Err(e),
        };
        for w in wake.drain(..) {
            crate::loom::planted_bug!("turn_drops_wakes", bug: drop(w), code: w.wake());
        }
        // Outside every lock: a hook takes other reactors' source locks.
        for hook in unclaimed.drain(..) {
            hook();
        }
        Ok(n)
    }

    /// A reactor over the fake kernel, without a driver (for the loom models, whose
    /// threads turn it with [`turn_into`](Self::turn_into)).
    #[cfg(all(test, epitome_loom))]
    pub(crate) fn new_model() -> Arc<ReactorHandle> {
        Arc::new(ReactorHandle {
            poll: Poller::new(ReactorKernel::new()),
            registered: AtomicUsize::new(0),
            shut_down: AtomicBool::new(false),
        })
    }

    /// The fake kernel underneath (for the loom models, whose devices make its files
    /// ready).
    #[cfg(all(test, epitome_loom))]
    pub(crate) fn kernel(&self) -> &ReactorKernel {
        self.poll.kernel()
    }

    /// One non-blocking turn, waking what it dispatched; returns how many events it
    /// took (for the loom models and the loom build's unit tests).
    #[cfg(all(test, epitome_loom))]
    pub(crate) fn turn_now(&self) -> usize {
        let mut events = [Event::default(); 4];
        let (mut wake, mut unclaimed) = (Vec::new(), Vec::new());
        self.turn_into(
            &mut events,
            &mut wake,
            &mut unclaimed,
            Some(Duration::ZERO),
            |_| {},
        )
        .expect("the fake kernel's non-blocking wait cannot fail")
    }

    /// Sources registered now (a gauge for metrics, balancing and leak checks).
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
        self.poll.for_each_data(|source| {
            if let Some(io) = &source.io {
                io.shut_down(&mut wake);
            }
        });
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
    #[cfg(not(all(test, epitome_loom)))]
    pub(crate) fn new(unpark: &EventFd) -> io::Result<(Driver, Arc<ReactorHandle>)> {
        let poll = Poller::new(ReactorKernel::new()?);
        poll.add(unpark.as_raw_fd(), EPOLLIN | EPOLLET, Source::new(None))?;
        Ok(Driver::over(poll))
    }

    /// In the loom models' build: a reactor over the fake kernel, watching a fake unpark
    /// eventfd as [`new`](Self::new) watches the real one, and that eventfd, so a model
    /// runs a whole worker (`WorkerShared::new`).
    #[cfg(all(test, epitome_loom))]
    pub(crate) fn new_model() -> (Driver, Arc<ReactorHandle>, ModelUnpark) {
        let kernel = ReactorKernel::new();
        let fd = kernel.new_file();
        let poll = Poller::new(kernel);
        let added = poll.add(fd, EPOLLIN | EPOLLET, Source::new(None));
        assert!(added.is_ok(), "the fake kernel adds a new file");
        let (driver, handle) = Driver::over(poll);
        let unpark = ModelUnpark {
            reactor: handle.clone(),
            fd,
            writes: AtomicUsize::new(0),
        };
        (driver, handle, unpark)
    }

    /// The driver of `poll` and the handle other threads reach it by.
    fn over(poll: Poller<ReactorKernel, Source>) -> (Driver, Arc<ReactorHandle>) {
        let handle = Arc::new(ReactorHandle {
            poll,
            registered: AtomicUsize::new(0),
            shut_down: AtomicBool::new(false),
        });
        let events = vec![Event::default(); EVENTS_PER_TURN].into_boxed_slice();
        (
            Driver {
                handle: handle.clone(),
                events,
                wake: Vec::new(),
                unclaimed: Vec::new(),
            },
            handle,
        )
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

/// In the loom models' build, the worker's unpark eventfd: a fake file of its reactor's
/// fake kernel, watched edge-triggered with [`UNPARK_TOKEN`] and never read, as the
/// real one is, so each write is a new wakeup of the reactor's wait.
#[cfg(all(test, epitome_loom))]
pub(crate) struct ModelUnpark {
    reactor: Arc<ReactorHandle>,
    fd: RawFd,
    /// Writes so far.
    pub(crate) writes: AtomicUsize,
}

#[cfg(all(test, epitome_loom))]
impl crate::scheduler::park::Wakeup for ModelUnpark {
    fn wake(&self) {
        self.writes.fetch_add(1, Ordering::SeqCst);
        self.reactor.kernel().set_ready(self.fd, EPOLLIN);
    }
}

// Over the fake kernel, whose files a test makes ready: the loom build only.
#[cfg(all(test, epitome_loom))]
mod tests {
    use super::*;
    use crate::eventpoll::{EPOLLHUP, EPOLLOUT};
    use crate::loom::os::sync::Arc as OsArc;
    use crate::loom::os::sync::atomic::AtomicUsize as OsAtomicUsize;
    use scheduled_io::{Direction, bits};

    fn word(io: &ScheduledIo, dir: Direction) -> u64 {
        io.readiness(dir).word & bits::READINESS
    }

    #[test]
    fn a_source_hears_reads_priority_data_hang_ups_and_writes_once_per_edge() {
        crate::loom::unit_test(|| {
            let reactor = ReactorHandle::new_model();
            let kernel = reactor.kernel();
            let fd = kernel.new_file();
            let io = reactor.register(fd, Interest::Source).unwrap();
            kernel.set_ready(fd, EPOLLIN | EPOLLOUT);
            assert_eq!(reactor.turn_now(), 1);
            assert_eq!(word(&io, Direction::Read), bits::READY);
            assert_eq!(word(&io, Direction::Write), bits::READY);
            // Edge-triggered: nothing new, nothing reported, though the file stays ready.
            assert_eq!(reactor.turn_now(), 0);
            // Urgent data, then the peer's shutdown: each is a new edge for readers.
            assert!(io.clear_readiness(io.readiness(Direction::Read)));
            kernel.set_ready(fd, EPOLLPRI);
            assert_eq!(reactor.turn_now(), 1);
            assert_ne!(word(&io, Direction::Read) & bits::PRIORITY, 0);
            kernel.set_ready(fd, EPOLLRDHUP);
            assert_eq!(reactor.turn_now(), 1);
            assert!(io.readiness(Direction::Read).is_closed());
            reactor.delete_source(fd).unwrap();
            assert_eq!(reactor.registered(), 0);
        });
    }

    #[test]
    fn a_connection_hears_of_write_space_only_once_a_writer_waited() {
        crate::loom::unit_test(|| {
            let reactor = ReactorHandle::new_model();
            let kernel = reactor.kernel();
            let fd = kernel.new_file();
            let io = Arc::new(ScheduledIo::new(None));
            reactor.add_source(fd, &io).unwrap();
            // Writable from the start (an accepted socket): not reported to a
            // connection whose writes never blocked.
            kernel.set_ready(fd, EPOLLOUT);
            assert_eq!(reactor.turn_now(), 0);
            assert_eq!(word(&io, Direction::Write), 0);
            kernel.set_ready(fd, EPOLLIN);
            assert_eq!(reactor.turn_now(), 1);
            assert_eq!(word(&io, Direction::Read), bits::READY);
            assert_eq!(word(&io, Direction::Write), 0);
            // A writer had to wait: the modify polls the file, whose space is reported.
            reactor.watch_writes(fd, &io).unwrap();
            assert_eq!(reactor.turn_now(), 1);
            assert_eq!(word(&io, Direction::Write), bits::READY);
            reactor.delete_source(fd).unwrap();
        });
    }

    #[test]
    fn a_shared_source_hands_on_reads_nobody_here_waits_for() {
        crate::loom::unit_test(|| {
            let reactor = ReactorHandle::new_model();
            let kernel = reactor.kernel();
            let fd = kernel.new_file();
            let handed_on = OsArc::new(OsAtomicUsize::new(0));
            let hook: scheduled_io::UnclaimedHook = {
                let handed_on = handed_on.clone();
                OsArc::new(move || {
                    handed_on.fetch_add(1, Ordering::SeqCst);
                })
            };
            let io = reactor.register(fd, Interest::Shared(hook)).unwrap();
            kernel.set_ready(fd, EPOLLIN);
            assert_eq!(reactor.turn_now(), 1);
            assert_eq!(word(&io, Direction::Read), bits::READY);
            assert_eq!(handed_on.load(Ordering::SeqCst), 1);
            // Edge-triggered: one connection burst, one event.
            assert_eq!(reactor.turn_now(), 0);
            assert_eq!(handed_on.load(Ordering::SeqCst), 1);
            // A listener is never watched for writes: a hang-up (always reported)
            // reaches it, but write space is not asked for.
            kernel.set_ready(fd, EPOLLOUT);
            assert_eq!(reactor.turn_now(), 0);
            kernel.set_ready(fd, EPOLLHUP);
            assert_eq!(reactor.turn_now(), 1);
            reactor.delete_source(fd).unwrap();
        });
    }

    #[test]
    fn a_turn_with_no_room_for_events_fails() {
        crate::loom::unit_test(|| {
            // epoll_wait(2) with maxevents 0: EINVAL, which the caller must see (only
            // EINTR, a wait cut short, is absorbed as a turn with no events).
            let reactor = ReactorHandle::new_model();
            let (mut wake, mut unclaimed) = (Vec::new(), Vec::new());
            let res = reactor.turn_into(&mut [], &mut wake, &mut unclaimed, None, |_| {});
            assert_eq!(res.unwrap_err().raw_os_error(), Some(libc::EINVAL));
        });
    }

    #[test]
    fn a_driver_turn_dispatches_what_it_waited_for() {
        crate::loom::unit_test(|| {
            let (mut driver, reactor, _unpark) = Driver::new_model();
            let fd = reactor.kernel().new_file();
            let io = reactor.register(fd, Interest::Source).unwrap();
            let waited = std::cell::Cell::new(usize::MAX);
            assert_eq!(
                driver
                    .turn(Some(Duration::ZERO), |n| waited.set(n))
                    .unwrap(),
                0
            );
            assert_eq!(waited.get(), 0);
            reactor.kernel().set_ready(fd, EPOLLIN);
            assert_eq!(
                driver
                    .turn(Some(Duration::ZERO), |n| waited.set(n))
                    .unwrap(),
                1
            );
            assert_eq!(waited.get(), 1);
            assert_eq!(word(&io, Direction::Read), bits::READY);
            reactor.delete_source(fd).unwrap();
        });
    }
}
