//! A non-blocking, close-on-exec eventfd used to wake threads blocked in `epoll_wait`.

use std::io;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, FromRawFd, OwnedFd, RawFd};

/// An eventfd counter. Writes add to the counter and wake the fd's waiters.
#[derive(Debug)]
pub(crate) struct EventFd {
    fd: OwnedFd,
}

impl EventFd {
    pub(crate) fn new() -> io::Result<EventFd> {
        let fd = syscall!(eventfd(0, libc::EFD_CLOEXEC | libc::EFD_NONBLOCK))?;
        // SAFETY: eventfd just returned this fd and nothing else owns it.
        let fd = unsafe { OwnedFd::from_raw_fd(fd) };
        Ok(EventFd { fd })
    }

    /// Adds one to the counter, waking whoever polls the fd. A full counter
    /// (`EAGAIN`, after 2^64 - 2 unread writes) is already readable, so it is not an
    /// error for a wakeup.
    pub(crate) fn write(&self) -> io::Result<()> {
        let one: u64 = 1;
        let ptr = (&one as *const u64).cast();
        // SAFETY: `ptr` points to 8 readable bytes, as eventfd writes require.
        match syscall!(write(self.fd.as_raw_fd(), ptr, 8)) {
            Ok(_) => Ok(()),
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => Ok(()),
            Err(e) => Err(e),
        }
    }
}

impl AsRawFd for EventFd {
    fn as_raw_fd(&self) -> RawFd {
        self.fd.as_raw_fd()
    }
}

impl AsFd for EventFd {
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.fd.as_fd()
    }
}
