//! Platform calls: raw epoll, eventfd and poll(2), each returning `io::Result`.
//!
//! Nothing outside `sys/` touches `libc` for these calls. Every fd is held as an
//! [`OwnedFd`](std::os::fd::OwnedFd) so it is closed exactly once, and every call that
//! fails comes back as the kernel's errno in an [`std::io::Error`].

/// Calls a libc function and turns its `-1` return into `io::Error::last_os_error()`.
macro_rules! syscall {
    ($fn:ident ( $($arg:expr),* $(,)? )) => {{
        // SAFETY: the caller passes arguments that satisfy the libc function's contract;
        // each call site states why.
        let res = unsafe { libc::$fn($($arg),*) };
        if res == -1 {
            Err(std::io::Error::last_os_error())
        } else {
            Ok(res)
        }
    }};
}

pub(crate) mod epoll;
pub(crate) mod eventfd;
