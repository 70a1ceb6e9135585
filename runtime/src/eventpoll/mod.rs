//! A user-space eventpoll: the kernel's `fs/eventpoll.c`, reimplemented over one raw
//! epoll instance, giving the same answers as the kernel's epoll for the same
//! operations on the same fds.
//!
//! # The parts
//!
//! - The **interest tree** (`rbtree.rs`) holds every item keyed by fd: the kernel's
//!   `ep->rbr`, a red-black tree whose nodes come from a slab (`epi_cache`).
//! - The **ready list** (`ready_list.rs`) holds the items that may have events to
//!   report, in the kernel's order: the kernel's `ep->rdllist`.
//! - Each **item** (`item.rs`) is the kernel's `epitem`: a mask, the user's data and a
//!   state word.
//! - Underneath, one kernel epoll instance. Every item is registered there
//!   edge-triggered with its own event mask, so the kernel still filters wakeups by
//!   mask (the test at the top of `ep_poll_callback`), still does the `vfs_poll` at
//!   add and modify (`ep_insert`, `ep_modify`), and still wakes exactly one of several
//!   instances for an EPOLLEXCLUSIVE fd. What the kernel instance reports is the
//!   stream of wakeups from the files; level-triggered re-reporting, oneshot
//!   disarming and the ready-list order are done here.
//!
//! # Delivery (`ep_send_events`)
//!
//! A wait first takes the kernel's reports onto the tail of the ready list (an item
//! already on the list keeps its place). It then walks the list from the head. Items
//! the kernel has just reported carry their current events with them; items carried
//! over from an earlier wait (level-triggered items, items the caller's buffer had no
//! room for) are re-polled, all of them with one `poll(2)`. An item with nothing
//! ready any more is dropped silently; a oneshot item is disarmed; a level-triggered
//! item goes back on the tail. So the list after a wait is: the items there was no
//! room for, in their old order, then items that became ready meanwhile, then the
//! re-queued level-triggered items, exactly as in the kernel.
//!
//! # Locking
//!
//! One mutex guards the tree, the list, every item and the waiter counts (the kernel
//! needs `ep->mtx` and `ep->lock`, because its callback runs in interrupt context;
//! here the callback is a kernel report read by a waiter, so one lock suffices). A
//! waiter does not hold it while blocked in the kernel.
//!
//! # Example
//!
//! Two sockets, one of them ready:
//!
//! ```
//! use std::io::Write;
//! use std::os::fd::AsRawFd;
//! use epitome_runtime::eventpoll::{EPOLLIN, EPOLLOUT, Event, EventPoll};
//!
//! # fn main() -> std::io::Result<()> {
//! let (mut a, b) = std::os::unix::net::UnixStream::pair()?;
//! let ep = EventPoll::new()?;
//! ep.add(b.as_raw_fd(), Event::new(EPOLLIN, 1))?;
//! ep.add(a.as_raw_fd(), Event::new(EPOLLOUT, 2))?;
//! a.write_all(b"ping")?;
//! let mut events = [Event::default(); 4];
//! let n = ep.wait(&mut events, None)?;
//! let mut data: Vec<u64> = events[..n].iter().map(|e| e.data).collect();
//! data.sort();
//! assert_eq!(data, [1, 2]); // b is readable, a is writable
//! ep.delete(a.as_raw_fd())?;
//! ep.delete(b.as_raw_fd())?;
//! # Ok(())
//! # }
//! ```

mod ctl;
mod ep_poll;
#[cfg(all(test, epitome_loom))]
pub(crate) mod fake_kernel;
mod item;
pub(crate) mod kernel;
pub(crate) mod poller;
mod proxy;
pub(crate) mod rbtree;
pub(crate) mod ready_list;
mod send_events;

pub(crate) use item::ItemData;

/// The bytes of one registered item carrying `D`, with the kernel's proxy type (the
/// runtime's per-connection footprint, `io::footprint`).
#[cfg(all(test, not(epitome_loom)))]
pub(crate) fn item_bytes<D>() -> usize {
    std::mem::size_of::<item::Item<<kernel::SysKernel as kernel::Kernel>::Proxy, D>>()
}

use std::io;
use std::os::fd::RawFd;
use std::time::Duration;

use kernel::SysKernel;
use poller::Poller;

/// The file has data to read.
pub const EPOLLIN: u32 = libc::EPOLLIN as u32;
/// There is urgent data (TCP out-of-band, a pseudo-terminal state change, ...).
pub const EPOLLPRI: u32 = libc::EPOLLPRI as u32;
/// The file can be written.
pub const EPOLLOUT: u32 = libc::EPOLLOUT as u32;
/// Normal data can be read (same as EPOLLIN for sockets and pipes).
pub const EPOLLRDNORM: u32 = libc::EPOLLRDNORM as u32;
/// Priority band data can be read.
pub const EPOLLRDBAND: u32 = libc::EPOLLRDBAND as u32;
/// Normal data can be written (same as EPOLLOUT for sockets and pipes).
pub const EPOLLWRNORM: u32 = libc::EPOLLWRNORM as u32;
/// Priority band data can be written.
pub const EPOLLWRBAND: u32 = libc::EPOLLWRBAND as u32;
/// Unused by Linux files; accepted and never reported.
pub const EPOLLMSG: u32 = libc::EPOLLMSG as u32;
/// An error condition. Always reported, whether requested or not.
pub const EPOLLERR: u32 = libc::EPOLLERR as u32;
/// Hang up (both directions shut down, or the write end of a pipe closed). Always
/// reported, whether requested or not.
pub const EPOLLHUP: u32 = libc::EPOLLHUP as u32;
/// The peer shut down its writing half (stream sockets).
pub const EPOLLRDHUP: u32 = libc::EPOLLRDHUP as u32;
/// Exclusive wakeup: with one fd in several eventpolls, one event wakes one of them.
/// Only with `add`, and only together with EPOLLIN, EPOLLOUT, EPOLLERR, EPOLLHUP,
/// EPOLLWAKEUP and EPOLLET.
pub const EPOLLEXCLUSIVE: u32 = libc::EPOLLEXCLUSIVE as u32;
/// Keep the system from suspending while the event is pending. Accepted and passed to
/// the kernel; it changes nothing reported.
pub const EPOLLWAKEUP: u32 = libc::EPOLLWAKEUP as u32;
/// Report the item once, then disarm it until `modify`.
pub const EPOLLONESHOT: u32 = libc::EPOLLONESHOT as u32;
/// Edge-triggered: report an item when a wakeup arrives, not again until the next one.
pub const EPOLLET: u32 = libc::EPOLLET as u32;

/// The kernel's `EP_MAX_EVENTS`: a wait with a longer buffer is refused with EINVAL.
pub(crate) const EP_MAX_EVENTS: usize =
    i32::MAX as usize / std::mem::size_of::<libc::epoll_event>();

/// An event mask and the user's data: `struct epoll_event`.
///
/// `events` uses the kernel's EPOLL* bit values; `data` is returned as given. In
/// `add` and `modify` it is the request; in `wait` it is a report (never with the
/// private bits EPOLLET, EPOLLONESHOT, EPOLLEXCLUSIVE or EPOLLWAKEUP).
///
/// The layout is `repr(C)`; on every Linux target it is at least as large and as
/// aligned as the kernel's `struct epoll_event`, so a wait can let the kernel write
/// straight into the caller's buffer.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct Event {
    /// EPOLL* bits.
    pub events: u32,
    /// Opaque user data, returned with every report.
    pub data: u64,
}

impl Event {
    /// An event with the given mask and data.
    pub const fn new(events: u32, data: u64) -> Event {
        Event { events, data }
    }
}

const _: () = assert!(std::mem::size_of::<libc::epoll_event>() <= std::mem::size_of::<Event>());
const _: () = assert!(std::mem::align_of::<libc::epoll_event>() <= std::mem::align_of::<Event>());

/// A user-space eventpoll with the kernel's epoll semantics.
///
/// `EventPoll` holds a set of registered fds (*items*), each with an event mask and a
/// `u64` of user data, and reports the ones that are ready. It answers every
/// operation exactly as the kernel's epoll would for the same operations on the same
/// fds (see the module documentation for how), with the same errno.
///
/// # Trigger modes
///
/// - **Level-triggered** (the default): an item is reported by every `wait` for as
///   long as it is ready. Items take turns: a reported item goes to the back of the
///   ready list, so with more ready items than buffer room, successive waits report
///   every item in strict round robin.
/// - **Edge-triggered** ([`EPOLLET`]): an item is reported once per wakeup from its
///   file (new data, new buffer space, a peer shutdown, an error), then not again
///   until the next wakeup. A new write to an already-readable socket is a new
///   wakeup. An fd that is already ready when added (or modified) is reported once.
///   Read until `EAGAIN` before waiting again.
/// - **Oneshot** ([`EPOLLONESHOT`], with either of the above): after one report the
///   item is disarmed and reports nothing, not even [`EPOLLERR`] or [`EPOLLHUP`],
///   until [`modify`](Self::modify) re-arms it.
/// - **Exclusive** ([`EPOLLEXCLUSIVE`], `add` only): when one fd is in several
///   eventpolls, each with a blocked waiter, one event wakes one of them instead of
///   all. An eventpoll without a blocked waiter still queues the item.
///
/// Reported events are always the fd's current readiness at delivery, filtered by the
/// mask; [`EPOLLERR`] and [`EPOLLHUP`] are reported even when not requested. An item
/// whose readiness went away before delivery is silently dropped from the ready list,
/// whatever its mode. Reports never carry the private bits.
///
/// # Several threads waiting
///
/// Any number of threads may call [`wait`](Self::wait) at once. Waiters are
/// exclusive: one wakeup wakes one of them, and a thread that delivers while items
/// remain on the ready list wakes another. So an edge-triggered event wakes exactly
/// one waiter and a level-triggered one reaches every waiter in turn.
///
/// # Delete before close
///
/// The kernel drops an item when the last reference to its file is closed. A
/// user-space eventpoll cannot see a close, so the contract is: **delete an fd before
/// closing it**. An item whose fd was closed anyway stays harmless: it never disturbs
/// other items, a re-poll that finds the fd closed drops it from the ready list, and an
/// `add` of the fd number (reused by a new file) replaces it, as the kernel would
/// accept that add. Until then its slot in the tree is kept, and should the fd number
/// be reused by a file that is not added, the stale item may report that file, and a
/// [`modify`](Self::modify) that changes only its data may succeed where the kernel
/// answers `ENOENT` (while the number is closed, it answers `EBADF`, as the kernel).
///
/// # Its own fds
///
/// An eventpoll holds fds of its own: its kernel instance, an eventfd that hands a
/// delivery on to another waiting thread (opened when a second thread first waits),
/// and a private instance for each item modified to edge-triggered while on the ready
/// list. The caller never opened them, so a ctl that names one of their numbers (the
/// number of a closed fd that one of them took) answers as for a closed fd, `EBADF`,
/// forgets an item left registered under that number, and leaves the eventpoll's own
/// registration alone.
///
/// # Errors
///
/// Every error is an [`io::Error`] whose [`raw_os_error`](io::Error::raw_os_error) is
/// the kernel's errno, from the kernel's checks in the kernel's order (each method
/// lists its own).
///
/// # Example
///
/// A pipe, registered level-triggered and then edge-triggered:
///
/// ```
/// use std::io::Write;
/// use std::os::fd::AsRawFd;
/// use std::time::Duration;
/// use epitome_runtime::eventpoll::{EPOLLET, EPOLLIN, Event, EventPoll};
///
/// # fn main() -> std::io::Result<()> {
/// let (reader, mut writer) = std::io::pipe()?;
/// let ep = EventPoll::new()?;
/// ep.add(reader.as_raw_fd(), Event::new(EPOLLIN, 7))?;
/// let mut events = [Event::default(); 8];
///
/// // Nothing to read: a wait with a zero timeout reports nothing.
/// assert_eq!(ep.wait(&mut events, Some(Duration::ZERO))?, 0);
///
/// // Level-triggered: reported by every wait while the data is there.
/// writer.write_all(b"x")?;
/// for _ in 0..2 {
///     assert_eq!(ep.wait(&mut events, None)?, 1);
///     assert_eq!(events[0], Event::new(EPOLLIN, 7));
/// }
///
/// // Edge-triggered: reported once per new write.
/// ep.modify(reader.as_raw_fd(), Event::new(EPOLLIN | EPOLLET, 8))?;
/// assert_eq!(ep.wait(&mut events, None)?, 1); // already readable when modified
/// assert_eq!(ep.wait(&mut events, Some(Duration::ZERO))?, 0);
/// writer.write_all(b"y")?;
/// assert_eq!(ep.wait(&mut events, None)?, 1);
///
/// // The errors are the kernel's: adding twice is EEXIST.
/// let err = ep.add(reader.as_raw_fd(), Event::new(EPOLLIN, 0)).unwrap_err();
/// assert_eq!(err.raw_os_error(), Some(libc::EEXIST));
///
/// // Delete before close.
/// ep.delete(reader.as_raw_fd())?;
/// # Ok(())
/// # }
/// ```
#[derive(Debug)]
pub struct EventPoll {
    poller: Poller<SysKernel>,
}

impl EventPoll {
    /// Creates an eventpoll with its own kernel epoll instance (close-on-exec).
    ///
    /// # Errors
    ///
    /// `EMFILE` / `ENFILE` when no fd is available, `ENOMEM`.
    pub fn new() -> io::Result<EventPoll> {
        Ok(EventPoll {
            poller: Poller::new(SysKernel::new()?),
        })
    }

    /// Registers `fd` with the mask and data of `event` (`EPOLL_CTL_ADD`).
    ///
    /// The fd is polled at once: if it is ready for a requested event it joins the tail
    /// of the ready list and a waiter is woken, in every mode (an edge-triggered item
    /// that is already ready is reported once). EPOLLERR and EPOLLHUP are always added
    /// to the mask; a mask of 0 means "only those".
    ///
    /// # Errors
    ///
    /// In the kernel's order:
    /// - `EBADF`: `fd` is not open, or is one of the eventpoll's [own
    ///   fds](Self#its-own-fds);
    /// - `EPERM`: `fd` cannot be polled (a regular file, a directory);
    /// - `EINVAL`: EPOLLEXCLUSIVE together with a bit other than EPOLLIN, EPOLLOUT,
    ///   EPOLLERR, EPOLLHUP, EPOLLWAKEUP or EPOLLET;
    /// - `ELOOP`: `fd` is an epoll instance and adding it would make a cycle or nest
    ///   too deep;
    /// - `EEXIST`: `fd` is already registered;
    /// - `ENOMEM`, `ENOSPC` (the per-user `max_user_watches` limit).
    pub fn add(&self, fd: RawFd, event: Event) -> io::Result<()> {
        self.poller.add(fd, event.events, event.data)
    }

    /// Replaces the mask and data of a registered `fd` (`EPOLL_CTL_MOD`).
    ///
    /// The fd is polled again; if it is ready and not already on the ready list, it
    /// joins the tail (if it is on the list it keeps its place). So modify re-arms a
    /// disarmed oneshot item and re-reports a ready edge-triggered one.
    ///
    /// A modify that changes only the data (same events and modes) of a socket, a
    /// pipe, an eventfd or a timerfd usually makes no `epoll_ctl`: the data is kept
    /// here, and when the kernel has reported nothing for the item since its last add
    /// or modify, the item is already queued if its fd is ready, so the kernel's
    /// modify would change nothing. It then costs one `fcntl(F_GETFD)`, which checks
    /// the fd is still open. The second such modify of an item looks its file up once
    /// (`fstat`, and for an anonymous-inode file its name in `/proc/self/fd`); the
    /// first, and every one of another kind of fd (a nested epoll, a signalfd, a
    /// `/proc` file: files whose poll may change state), make the `epoll_ctl`. So does
    /// one made while another thread is blocked in [`wait`](Self::wait), which may hold
    /// a report of the item.
    ///
    /// # Errors
    ///
    /// In the kernel's order:
    /// - `EBADF`: `fd` is not open, or is one of the eventpoll's [own
    ///   fds](Self#its-own-fds);
    /// - `EPERM`: `fd` cannot be polled;
    /// - `EINVAL`: the new mask contains EPOLLEXCLUSIVE (even when `fd` is not
    ///   registered), or the item was added with EPOLLEXCLUSIVE;
    /// - `ENOENT`: `fd` is not registered.
    pub fn modify(&self, fd: RawFd, event: Event) -> io::Result<()> {
        self.poller.modify(fd, event.events, event.data)
    }

    /// Removes `fd` from the interest tree and the ready list (`EPOLL_CTL_DEL`). Call it
    /// before closing the fd.
    ///
    /// # Errors
    ///
    /// - `EBADF`: `fd` is not open (a stale item for it is dropped), or is one of the
    ///   eventpoll's [own fds](Self#its-own-fds);
    /// - `EPERM`: `fd` cannot be polled;
    /// - `ENOENT`: `fd` is not registered.
    pub fn delete(&self, fd: RawFd) -> io::Result<()> {
        self.poller.delete(fd)
    }

    /// Waits for ready items and fills `events` from the front; returns how many.
    ///
    /// `timeout`: `None` waits forever; `Some(Duration::ZERO)` never blocks; otherwise
    /// the wait ends at a monotonic deadline that far ahead (with nanosecond resolution
    /// where the kernel has `epoll_pwait2`, else rounded up to a millisecond; never
    /// early). A wakeup that turns out stale does not end the wait while time remains.
    /// Returns `Ok(0)` when the time runs out. Entries of `events` past the returned
    /// count are unspecified.
    ///
    /// # Errors
    ///
    /// - `EINVAL`: `events` is empty (or longer than the kernel's `EP_MAX_EVENTS`);
    /// - `EINTR`: a signal handler ran while blocked; nothing was consumed, wait again.
    pub fn wait(&self, events: &mut [Event], timeout: Option<Duration>) -> io::Result<usize> {
        self.poller.wait(events, timeout)
    }

    /// The number of registered fds.
    pub fn len(&self) -> usize {
        self.poller.len()
    }

    /// Whether no fd is registered.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}
