//! The kernel side of an eventpoll, behind a trait so the loom models can run the
//! wakeup logic against a fake kernel that makes no syscalls.

use std::io;
use std::os::fd::{AsRawFd, RawFd};
use std::time::Duration;

use super::{EPOLLET, EPOLLIN, Event};
use crate::loom::os::sync::OnceLock;
use crate::sys::epoll::{CtlOp, Epoll, check_open, poll_is_pure, poll_now};
use crate::sys::eventfd::EventFd;

/// The token the notify eventfd reports with.
pub(crate) const WAKE_TOKEN: u64 = u64::MAX;

/// What an eventpoll needs from the kernel.
pub(crate) trait Kernel {
    /// A private kernel instance that holds one item on its own (see
    /// `Poller`'s docs on proxies), itself registered in the main instance.
    type Proxy;

    /// `epoll_ctl` on the main instance; the kernel performs every argument check.
    fn ctl(&self, op: CtlOp, fd: RawFd, events: u32, token: u64) -> io::Result<()>;
    /// Waits on the main instance; on success `buf[..n]` holds `(events, token)` pairs.
    fn wait(&self, buf: &mut [Event], timeout: Option<Duration>) -> io::Result<usize>;
    /// `EBADF` if `fd` is not an open fd; changes nothing.
    fn check_open(&self, fd: RawFd) -> io::Result<()>;
    /// Whether polling `fd` is known to change no state (`EBADF` if it is not open):
    /// only then may a kernel modify whose poll would queue nothing be left out.
    fn poll_is_pure(&self, fd: RawFd) -> io::Result<bool>;
    /// Reads the current readiness of each fd into its `revents`, without blocking.
    fn poll(&self, fds: &mut [libc::pollfd]) -> io::Result<()>;
    /// Makes sure [`notify`](Self::notify) can wake a waiter. Called with the
    /// eventpoll's lock held, when a second thread enters `wait`. Returns the fd it
    /// opened for that, on the call that opened it.
    fn prepare_notify(&self) -> io::Result<Option<RawFd>>;
    /// Wakes one thread blocked in [`wait`](Self::wait).
    fn notify(&self);
    /// The main instance's own fd, if it has one.
    fn instance_fd(&self) -> Option<RawFd>;

    /// Creates a proxy instance.
    fn new_proxy(&self) -> io::Result<Self::Proxy>;
    /// The fd to register in the main instance for `proxy`.
    fn proxy_fd(proxy: &Self::Proxy) -> RawFd;
    /// `epoll_ctl` on a proxy instance.
    fn proxy_ctl(
        &self,
        proxy: &Self::Proxy,
        op: CtlOp,
        fd: RawFd,
        events: u32,
        token: u64,
    ) -> io::Result<()>;
    /// A non-blocking wait on a proxy instance, for its one item.
    fn proxy_wait(&self, proxy: &Self::Proxy) -> io::Result<Option<u32>>;

    /// Whether a modify of `fd`'s registration, with the mask and token it has, would
    /// change nothing in the kernel: the registration is armed, and queued if its file
    /// is ready. Only the fake kernel can tell; the loom models assert it wherever the
    /// eventpoll leaves such a modify out.
    #[cfg(all(test, epitome_loom))]
    fn modify_changes_nothing(&self, _fd: RawFd) -> bool {
        true
    }
}

/// The real kernel: one epoll instance, plus an eventfd (made on first need) that wakes
/// a waiter when a delivery leaves items on the ready list.
#[derive(Debug)]
pub(crate) struct SysKernel {
    epoll: Epoll,
    wake: OnceLock<EventFd>,
}

impl SysKernel {
    pub(crate) fn new() -> io::Result<SysKernel> {
        Ok(SysKernel {
            epoll: Epoll::new()?,
            wake: OnceLock::new(),
        })
    }
}

/// Waits on `epoll` into `buf`, widening the kernel's records in place.
fn wait_into(epoll: &Epoll, buf: &mut [Event], timeout: Option<Duration>) -> io::Result<usize> {
    let events = buf.as_mut_ptr();
    let raw = events.cast::<libc::epoll_event>();
    // SAFETY: `buf` is valid for `buf.len()` Events, each at least as large and as
    // aligned as an epoll_event (checked at compile time in the parent module), so it
    // is valid for `buf.len()` epoll_events; callers never pass an empty buffer.
    let n = unsafe { epoll.wait(raw, buf.len(), timeout)? };
    // Widen the records in place, last first: record i is read from byte
    // `i * size_of::<epoll_event>()` before anything at or after
    // `i * size_of::<Event>()` is written, and every unread record lies below that.
    for i in (0..n).rev() {
        // SAFETY: `i < n <= buf.len()`: the kernel wrote record i, not yet overwritten.
        let ev = unsafe { std::ptr::read_unaligned(raw.add(i)) };
        let widened = Event {
            events: ev.events,
            data: ev.u64,
        };
        // SAFETY: `i < buf.len()`, and `events` is the buffer's own aligned pointer.
        unsafe { events.add(i).write(widened) };
    }
    Ok(n)
}

impl Kernel for SysKernel {
    type Proxy = Epoll;

    fn ctl(&self, op: CtlOp, fd: RawFd, events: u32, token: u64) -> io::Result<()> {
        self.epoll.ctl(op, fd, events, token)
    }

    fn wait(&self, buf: &mut [Event], timeout: Option<Duration>) -> io::Result<usize> {
        wait_into(&self.epoll, buf, timeout)
    }

    fn check_open(&self, fd: RawFd) -> io::Result<()> {
        check_open(fd)
    }

    fn poll_is_pure(&self, fd: RawFd) -> io::Result<bool> {
        poll_is_pure(fd)
    }

    fn poll(&self, fds: &mut [libc::pollfd]) -> io::Result<()> {
        poll_now(fds)
    }

    fn prepare_notify(&self) -> io::Result<Option<RawFd>> {
        if self.wake.get().is_some() {
            return Ok(None);
        }
        let efd = EventFd::new()?;
        let fd = efd.as_raw_fd();
        // Edge-triggered: every write is a new wakeup, so it never needs reading.
        self.epoll
            .ctl(CtlOp::Add, fd, EPOLLIN | EPOLLET, WAKE_TOKEN)?;
        // Callers hold the eventpoll lock, so no other thread can have set it.
        let _ = self.wake.set(efd);
        Ok(Some(fd))
    }

    fn notify(&self) {
        if let Some(efd) = self.wake.get() {
            // A write to an eventfd fails only when the counter is full, and a full
            // counter is already readable; nothing to report.
            let _ = efd.write();
        }
    }

    fn instance_fd(&self) -> Option<RawFd> {
        Some(self.epoll.as_raw_fd())
    }

    fn new_proxy(&self) -> io::Result<Epoll> {
        Epoll::new()
    }

    fn proxy_fd(proxy: &Epoll) -> RawFd {
        proxy.as_raw_fd()
    }

    fn proxy_ctl(
        &self,
        proxy: &Epoll,
        op: CtlOp,
        fd: RawFd,
        events: u32,
        token: u64,
    ) -> io::Result<()> {
        proxy.ctl(op, fd, events, token)
    }

    fn proxy_wait(&self, proxy: &Epoll) -> io::Result<Option<u32>> {
        let mut buf = [Event::default()];
        let n = wait_into(proxy, &mut buf, Some(Duration::ZERO))?;
        Ok((n == 1).then_some(buf[0].events))
    }
}
