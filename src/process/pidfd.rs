//! pidfds: an fd per child that becomes readable when the child exits (Linux 5.3+), so
//! a child's exit is an event on the reactor like any other — no SIGCHLD handler and
//! no thread blocked in waitpid.

use std::io;
use std::os::fd::{FromRawFd, OwnedFd};
use std::sync::atomic::{AtomicU8, Ordering};

const UNKNOWN: u8 = 0;
const AVAILABLE: u8 = 1;
const MISSING: u8 = 2;

/// Whether this kernel has pidfd_open(2), found out once.
static PIDFD_OPEN: AtomicU8 = AtomicU8::new(UNKNOWN);

/// A pidfd for process `pid` (close-on-exec, as pidfd_open always makes them).
pub(super) fn open(pid: u32) -> io::Result<OwnedFd> {
    let Ok(pid) = libc::pid_t::try_from(pid) else {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            format!("process id {pid} is out of range"),
        ));
    };
    // SAFETY: pidfd_open(2) takes a pid and flags and returns a new fd or -1; no
    // memory is passed.
    let fd = unsafe { libc::syscall(libc::SYS_pidfd_open, pid, 0) };
    if fd < 0 {
        return Err(io::Error::last_os_error());
    }
    let Ok(fd) = i32::try_from(fd) else {
        unreachable!("the kernel returns fds as ints")
    };
    // SAFETY: `fd` is a new fd that nothing else owns.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

/// Fails, before any child is started, if the kernel has no pidfd_open(2): a child
/// whose exit could not be seen would make `wait` hang.
pub(super) fn check_available() -> io::Result<()> {
    match PIDFD_OPEN.load(Ordering::Relaxed) {
        AVAILABLE => return Ok(()),
        MISSING => return Err(unsupported()),
        _ => {}
    }
    match open(std::process::id()) {
        Ok(_probe) => {
            PIDFD_OPEN.store(AVAILABLE, Ordering::Relaxed);
            Ok(())
        }
        Err(e) if e.raw_os_error() == Some(libc::ENOSYS) => {
            PIDFD_OPEN.store(MISSING, Ordering::Relaxed);
            Err(unsupported())
        }
        // Out of fds, say: not an answer about the kernel, so not remembered.
        Err(e) => Err(e),
    }
}

fn unsupported() -> io::Error {
    io::Error::new(
        io::ErrorKind::Unsupported,
        "pidfd_open(2) is not available (ENOSYS): epitome::process needs Linux 5.3 or later \
         to see child processes exit",
    )
}
