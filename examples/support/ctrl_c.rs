//! Ctrl-C for the examples: SIGINT blocked in every thread and read from a `signalfd`
//! registered with the reactor.

use std::io;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, FromRawFd, OwnedFd};

pub struct CtrlC {
    fd: OwnedFd,
}

struct SignalFd<'a>(BorrowedFd<'a>);

impl AsFd for SignalFd<'_> {
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.0
    }
}

impl CtrlC {
    /// Call before starting any thread: the mask is inherited.
    pub fn new() -> io::Result<CtrlC> {
        // SAFETY: plain libc calls on a local, zero-initialised sigset.
        unsafe {
            let mut set: libc::sigset_t = std::mem::zeroed();
            libc::sigemptyset(&mut set);
            libc::sigaddset(&mut set, libc::SIGINT);
            if libc::pthread_sigmask(libc::SIG_BLOCK, &set, std::ptr::null_mut()) != 0 {
                return Err(io::Error::last_os_error());
            }
            let fd = libc::signalfd(-1, &set, libc::SFD_NONBLOCK | libc::SFD_CLOEXEC);
            if fd < 0 {
                return Err(io::Error::last_os_error());
            }
            Ok(CtrlC {
                fd: OwnedFd::from_raw_fd(fd),
            })
        }
    }

    /// Resolves at the first Ctrl-C.
    pub async fn wait(&self) -> io::Result<()> {
        let source = epitome::io::Async::new(SignalFd(self.fd.as_fd()))?;
        source
            .read_with(|s| {
                let mut info = [0u8; 128];
                // SAFETY: `info` is large enough for one `signalfd_siginfo` (128 bytes).
                let n =
                    unsafe { libc::read(s.0.as_raw_fd(), info.as_mut_ptr().cast(), info.len()) };
                if n < 0 {
                    Err(io::Error::last_os_error())
                } else {
                    Ok(())
                }
            })
            .await
    }
}
