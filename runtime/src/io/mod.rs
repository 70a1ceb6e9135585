//! Building I/O types on the reactor.
//!
//! [`Async<T>`] registers any fd-backed value with the current worker's reactor and
//! offers readiness futures, poll functions and retrying helpers, the same way
//! epitome's own sockets are built (it is epitome's counterpart of tokio's `AsyncFd`).
//! [`Interest`] names the readiness to wait for, [`Ready`] the readiness found.
//!
//! ```
//! use std::io::{Read, Write};
//! use std::os::unix::net::UnixStream;
//!
//! use epitome_runtime::io::{Async, Interest};
//!
//! let rt = epitome_runtime::runtime::Builder::new_current_thread().build()?;
//! rt.block_on(async {
//!     let (a, mut b) = UnixStream::pair()?;
//!     let a = Async::new(a)?;
//!     b.write_all(b"ping")?;
//!     // Waits for readability, reads, and clears readiness if the read would block.
//!     let mut buf = [0; 16];
//!     let n = a.read_with(|mut s| s.read(&mut buf)).await?;
//!     assert_eq!(&buf[..n], b"ping");
//!     let guard = a.ready(Interest::READABLE | Interest::WRITABLE).await?;
//!     assert!(guard.ready().is_writable());
//!     Ok::<_, std::io::Error>(())
//! })?;
//! # Ok::<_, std::io::Error>(())
//! ```

use std::fmt;
use std::io;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, RawFd};
use std::task::{Context, Poll};

mod guard;
mod interest;
mod ready;
mod shared;
pub(crate) mod wait;

#[cfg(all(test, not(epitome_loom)))]
mod footprint;

pub use guard::{ReadyGuard, TryIoError};
pub use interest::Interest;
pub use ready::Ready;
pub use shared::SharedAsync;

use crate::reactor::registration::Registration;
use crate::reactor::scheduled_io::Direction;

/// An fd-backed value registered with an epitome reactor.
///
/// `Async::new` makes the fd non-blocking and registers it, edge-triggered for
/// reading and writing, with the reactor of the current worker (on a thread that is
/// in a runtime but runs no worker, with a worker chosen round-robin). Dropping it
/// deletes the fd from the reactor, then drops (closes) the inner value.
///
/// # Readiness
///
/// Each direction remembers whether it is ready. Readiness is set by an event from the
/// reactor and cleared only when an operation reports `WouldBlock` — and only if no
/// event arrived since the readiness was observed, so a clear never erases a newer
/// event. The helpers ([`read_with`](Self::read_with), [`poll_read_with`](Self::poll_read_with), ...) do this
/// for you. With [`readable`](Self::readable) and friends you get a [`ReadyGuard`]
/// and clear it yourself after `WouldBlock`.
///
/// # Example
///
/// ```
/// use std::io::Write;
/// use std::os::unix::net::UnixStream;
///
/// use epitome_runtime::io::{Async, Interest};
///
/// let rt = epitome_runtime::runtime::Builder::new_current_thread().build()?;
/// rt.block_on(async {
///     let (a, b) = UnixStream::pair()?;
///     let b = Async::new(b)?;
///     (&a).write_all(b"hi")?;
///     let guard = b.ready(Interest::READABLE).await?;
///     assert!(guard.ready().is_readable());
///     let mut buf = [0; 8];
///     // Ready, so the closure runs; a `WouldBlock` from it would clear the readiness.
///     let n = b.try_io(Interest::READABLE, |s| std::io::Read::read(&mut &*s, &mut buf))?;
///     assert_eq!(&buf[..n], b"hi");
///     Ok::<_, std::io::Error>(())
/// })?;
/// # Ok::<_, std::io::Error>(())
/// ```
///
/// # Several tasks on one source
///
/// Waiting is cancel-safe and allocation-free (each waiting future owns its node). The
/// `_exclusive` variants wake one waiting task per event instead of all of them (what
/// an accept loop shared by many tasks wants); a woken exclusive waiter that is
/// cancelled before it gets to try passes the wakeup on to the next one.
pub struct Async<T: AsFd> {
    io: Option<T>,
    reg: Registration,
}

fn set_nonblocking(fd: RawFd) -> io::Result<()> {
    let flags = syscall!(fcntl(fd, libc::F_GETFL))?;
    if flags & libc::O_NONBLOCK == 0 {
        syscall!(fcntl(fd, libc::F_SETFL, flags | libc::O_NONBLOCK))?;
    }
    Ok(())
}

impl<T: AsFd> Async<T> {
    /// Makes `io`'s fd non-blocking and registers it with the current reactor.
    ///
    /// # Errors
    ///
    /// `fcntl` or the reactor's `add` failed (for example `EPERM` for a regular file,
    /// which cannot be polled, or `EEXIST` if the fd is already registered).
    ///
    /// # Panics
    ///
    /// If there is no epitome runtime on this thread.
    #[track_caller]
    pub fn new(io: T) -> io::Result<Async<T>> {
        set_nonblocking(io.as_fd().as_raw_fd())?;
        Async::new_nonblocking(io)
    }

    /// Registers `io`, whose fd the caller guarantees is already non-blocking.
    #[track_caller]
    pub fn new_nonblocking(io: T) -> io::Result<Async<T>> {
        let reg = Registration::new(io.as_fd().as_raw_fd())?;
        Ok(Async { io: Some(io), reg })
    }

    /// For a socket just accepted or connected (non-blocking already): both directions
    /// are assumed ready, so its first operation is tried without waiting for an
    /// event, and the fd is registered by the first task that has to wait on it, with
    /// the reactor of that task's worker. A connection accepted on one thread and
    /// served by a task on another is then served where its task runs, and one that
    /// never has to wait costs no registration at all.
    ///
    /// The fd must be pollable (any socket is); should registering it fail (`ENOMEM`,
    /// or `ENOSPC` at the `max_user_watches` limit), the first wait returns the error.
    /// A wait needs an epitome runtime on its thread (else it returns an error);
    /// creating the value does not.
    pub fn new_ready(io: T) -> io::Result<Async<T>> {
        let reg = Registration::deferred(io.as_fd().as_raw_fd());
        reg.assume_ready();
        Ok(Async { io: Some(io), reg })
    }

    /// Like [`new_nonblocking`](Self::new_nonblocking), and assumes the write direction
    /// ready: for a fresh socket pair, whose buffers are empty, so the first write is
    /// tried at once while reading still waits for data.
    #[track_caller]
    pub fn new_writable(io: T) -> io::Result<Async<T>> {
        let this = Async::new_nonblocking(io)?;
        this.reg.io().assume_ready(Direction::Write);
        Ok(this)
    }

    /// The inner value.
    #[inline]
    pub fn get_ref(&self) -> &T {
        match &self.io {
            Some(io) => io,
            None => {
                unreachable!("the inner value is only taken by into_inner, which consumes self")
            }
        }
    }

    /// The inner value, mutably. Do not replace its fd.
    pub fn get_mut(&mut self) -> &mut T {
        match &mut self.io {
            Some(io) => io,
            None => {
                unreachable!("the inner value is only taken by into_inner, which consumes self")
            }
        }
    }

    /// Deregisters the fd and gives the inner value back.
    pub fn into_inner(mut self) -> io::Result<T> {
        let res = self.reg.deregister();
        let io = self.io.take();
        res?;
        match io {
            Some(io) => Ok(io),
            None => unreachable!("into_inner consumes self"),
        }
    }

    /// Waits until the fd is readable.
    pub async fn readable(&self) -> io::Result<ReadyGuard<'_, T>> {
        self.ready_dir(Direction::Read, false).await
    }

    /// Waits until the fd is readable; one waiting task is woken per event (see the
    /// type docs).
    pub async fn readable_exclusive(&self) -> io::Result<ReadyGuard<'_, T>> {
        self.ready_dir(Direction::Read, true).await
    }

    /// Waits until the fd is writable.
    pub async fn writable(&self) -> io::Result<ReadyGuard<'_, T>> {
        self.ready_dir(Direction::Write, false).await
    }

    /// Waits until the fd is writable; one waiting task is woken per event.
    pub async fn writable_exclusive(&self) -> io::Result<ReadyGuard<'_, T>> {
        self.ready_dir(Direction::Write, true).await
    }

    async fn ready_dir(&self, dir: Direction, exclusive: bool) -> io::Result<ReadyGuard<'_, T>> {
        let ready = self.reg.readiness_future(dir, exclusive).await?;
        Ok(ReadyGuard::new(self, ready.event))
    }

    /// Polls for read readiness (for `AsyncRead`-style code). After `Ready`, if the read
    /// returns `WouldBlock`, call [`ReadyGuard::clear_ready`] on the guard; or use
    /// [`poll_read_with`](Self::poll_read_with), which does it for you.
    #[inline]
    pub fn poll_readable(&self, cx: &mut Context<'_>) -> Poll<io::Result<ReadyGuard<'_, T>>> {
        self.reg
            .poll_ready(cx, Direction::Read)
            .map_ok(|event| ReadyGuard::new(self, event))
    }

    /// Polls for write readiness (see [`poll_readable`](Self::poll_readable)).
    #[inline]
    pub fn poll_writable(&self, cx: &mut Context<'_>) -> Poll<io::Result<ReadyGuard<'_, T>>> {
        self.reg
            .poll_ready(cx, Direction::Write)
            .map_ok(|event| ReadyGuard::new(self, event))
    }

    /// Runs `f` until it does not return `WouldBlock`, waiting for readability between
    /// tries and clearing readiness after each `WouldBlock`.
    pub async fn read_with<R>(&self, mut f: impl FnMut(&T) -> io::Result<R>) -> io::Result<R> {
        let io = self.get_ref();
        self.reg.async_io(Direction::Read, false, || f(io)).await
    }

    /// [`read_with`](Self::read_with) with exclusive (wake-one) waiting.
    pub async fn read_with_exclusive<R>(
        &self,
        mut f: impl FnMut(&T) -> io::Result<R>,
    ) -> io::Result<R> {
        let io = self.get_ref();
        self.reg.async_io(Direction::Read, true, || f(io)).await
    }

    /// Runs `f` until it does not return `WouldBlock`, waiting for writability.
    pub async fn write_with<R>(&self, mut f: impl FnMut(&T) -> io::Result<R>) -> io::Result<R> {
        let io = self.get_ref();
        self.reg.async_io(Direction::Write, false, || f(io)).await
    }

    /// [`read_with`](Self::read_with) with mutable access to the inner value.
    pub async fn read_with_mut<R>(
        &mut self,
        mut f: impl FnMut(&mut T) -> io::Result<R>,
    ) -> io::Result<R> {
        let Async { io, reg } = self;
        let Some(io) = io else {
            unreachable!("the inner value is present until into_inner")
        };
        reg.async_io(Direction::Read, false, || f(io)).await
    }

    /// [`write_with`](Self::write_with) with mutable access to the inner value.
    pub async fn write_with_mut<R>(
        &mut self,
        mut f: impl FnMut(&mut T) -> io::Result<R>,
    ) -> io::Result<R> {
        let Async { io, reg } = self;
        let Some(io) = io else {
            unreachable!("the inner value is present until into_inner")
        };
        reg.async_io(Direction::Write, false, || f(io)).await
    }

    /// The poll form of [`read_with`](Self::read_with), for `AsyncRead` impls.
    pub fn poll_read_with<R>(
        &self,
        cx: &mut Context<'_>,
        mut f: impl FnMut(&T) -> io::Result<R>,
    ) -> Poll<io::Result<R>> {
        let io = self.get_ref();
        self.reg.poll_io(cx, Direction::Read, || f(io))
    }

    /// The poll form of [`write_with`](Self::write_with), for `AsyncWrite` impls.
    pub fn poll_write_with<R>(
        &self,
        cx: &mut Context<'_>,
        mut f: impl FnMut(&T) -> io::Result<R>,
    ) -> Poll<io::Result<R>> {
        let io = self.get_ref();
        self.reg.poll_io(cx, Direction::Write, || f(io))
    }

    /// One attempt at a read-side operation without waiting (and without touching the
    /// task's cooperative budget): on `WouldBlock` read readiness is cleared (unless an
    /// event arrived meanwhile), so a following [`readable`](Self::readable) waits
    /// instead of returning at once.
    pub fn try_read_with<R>(&self, f: impl FnOnce(&T) -> io::Result<R>) -> io::Result<R> {
        self.try_with(Direction::Read, f)
    }

    /// One attempt at a write-side operation without waiting (see
    /// [`try_read_with`](Self::try_read_with)).
    pub fn try_write_with<R>(&self, f: impl FnOnce(&T) -> io::Result<R>) -> io::Result<R> {
        self.try_with(Direction::Write, f)
    }

    fn try_with<R>(&self, dir: Direction, f: impl FnOnce(&T) -> io::Result<R>) -> io::Result<R> {
        let seen = self.reg.readiness(dir);
        let res = f(self.get_ref());
        if matches!(&res, Err(e) if e.kind() == io::ErrorKind::WouldBlock) {
            self.reg.clear(seen);
        }
        res
    }

    /// Whether the read direction is ready right now (no waiting, no budget).
    pub fn is_read_ready(&self) -> bool {
        self.reg.readiness(Direction::Read).word & crate::reactor::scheduled_io::bits::READY != 0
    }

    /// Whether the write direction is ready right now (no waiting, no budget).
    pub fn is_write_ready(&self) -> bool {
        self.reg.readiness(Direction::Write).word & crate::reactor::scheduled_io::bits::READY != 0
    }

    /// Waits until the fd is ready for `interest` (tokio's `AsyncFd::ready`): the guard's
    /// [`ready`](ReadyGuard::ready) says what was found (for `READABLE | WRITABLE`, both
    /// directions if both are ready). After a `WouldBlock`, clear it with
    /// [`clear_ready`](ReadyGuard::clear_ready) or
    /// [`clear_ready_matching`](ReadyGuard::clear_ready_matching).
    ///
    /// Cancel-safe. Urgent data ([`Interest::PRIORITY`]) and errors ([`Interest::ERROR`])
    /// are found however much ordinary data is waiting.
    ///
    /// # Errors
    ///
    /// The runtime driving the fd has shut down.
    pub async fn ready(&self, interest: Interest) -> io::Result<ReadyGuard<'_, T>> {
        let found = wait::wait(&self.reg, interest).await?;
        Ok(ReadyGuard::from_found(self, found, interest))
    }

    /// tokio's name for [`poll_readable`](Self::poll_readable). Unlike tokio, every
    /// distinct waker polled with is woken by the next event, not only the last one.
    #[inline]
    pub fn poll_read_ready(&self, cx: &mut Context<'_>) -> Poll<io::Result<ReadyGuard<'_, T>>> {
        self.poll_readable(cx)
    }

    /// tokio's name for [`poll_writable`](Self::poll_writable).
    #[inline]
    pub fn poll_write_ready(&self, cx: &mut Context<'_>) -> Poll<io::Result<ReadyGuard<'_, T>>> {
        self.poll_writable(cx)
    }

    /// One attempt at an operation of `interest`, without waiting and without touching
    /// the task's cooperative budget (tokio's `AsyncFd::try_io`): if the fd is ready for
    /// `interest` (as far as the reactor has reported), runs `f`, and if `f` returns
    /// `WouldBlock`, clears that readiness (unless an event arrived meanwhile). If it is
    /// not ready, `f` is not called and the answer is `WouldBlock`.
    ///
    /// [`try_read_with`](Self::try_read_with) and
    /// [`try_write_with`](Self::try_write_with) run the operation whatever the
    /// remembered readiness says.
    pub fn try_io<R>(
        &self,
        interest: Interest,
        f: impl FnOnce(&T) -> io::Result<R>,
    ) -> io::Result<R> {
        let seen = wait::snapshot(&self.reg, interest);
        if !seen.answers(interest) {
            return Err(io::ErrorKind::WouldBlock.into());
        }
        let res = f(self.get_ref());
        if matches!(&res, Err(e) if e.kind() == io::ErrorKind::WouldBlock) {
            seen.clear(&self.reg, interest);
        }
        res
    }

    /// [`try_io`](Self::try_io) with mutable access to the inner value.
    pub fn try_io_mut<R>(
        &mut self,
        interest: Interest,
        f: impl FnOnce(&mut T) -> io::Result<R>,
    ) -> io::Result<R> {
        let seen = wait::snapshot(&self.reg, interest);
        if !seen.answers(interest) {
            return Err(io::ErrorKind::WouldBlock.into());
        }
        let res = f(self.get_mut());
        if matches!(&res, Err(e) if e.kind() == io::ErrorKind::WouldBlock) {
            seen.clear(&self.reg, interest);
        }
        res
    }

    /// [`async_io`](Self::async_io) with mutable access to the inner value.
    pub async fn async_io_mut<R>(
        &mut self,
        interest: Interest,
        mut f: impl FnMut(&mut T) -> io::Result<R>,
    ) -> io::Result<R> {
        let Async { io, reg } = self;
        let Some(io) = io else {
            unreachable!("the inner value is present until into_inner")
        };
        loop {
            let found = wait::wait(reg, interest).await?;
            match f(io) {
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => found.clear(reg, interest),
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                res => return res,
            }
        }
    }

    /// Runs `f` until it does not return `WouldBlock`, waiting for `interest` between
    /// tries and clearing readiness after each `WouldBlock` (tokio's
    /// `AsyncFd::async_io`). `Interrupted` is retried.
    pub async fn async_io<R>(
        &self,
        interest: Interest,
        mut f: impl FnMut(&T) -> io::Result<R>,
    ) -> io::Result<R> {
        if interest == Interest::READABLE {
            return self.read_with(f).await;
        }
        if interest == Interest::WRITABLE {
            return self.write_with(f).await;
        }
        loop {
            let found = wait::wait(&self.reg, interest).await?;
            match f(self.get_ref()) {
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => found.clear(&self.reg, interest),
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                res => return res,
            }
        }
    }
}

impl<T: AsFd> AsFd for Async<T> {
    #[inline]
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.get_ref().as_fd()
    }
}

impl<T: AsFd> AsRawFd for Async<T> {
    fn as_raw_fd(&self) -> RawFd {
        self.get_ref().as_fd().as_raw_fd()
    }
}

impl<T: AsFd> Drop for Async<T> {
    fn drop(&mut self) {
        if self.io.is_some() {
            // Delete before close: a user-space eventpoll cannot see a close.
            let _ = self.reg.deregister();
        }
    }
}

impl<T: AsFd + fmt::Debug> fmt::Debug for Async<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Async").field("io", self.get_ref()).finish()
    }
}
