//! Listening to any catchable Unix signal: [`signal`] gives a [`Signal`], whose
//! [`recv`](Signal::recv) completes once per delivery (deliveries close together may
//! be coalesced).
//!
//! ```
//! use epitome::signal::unix::{SignalKind, signal};
//!
//! # let rt = epitome::runtime::Builder::new_current_thread().build().unwrap();
//! # rt.block_on(async {
//! let mut hangup = signal(SignalKind::hangup())?;
//! // SAFETY: kill(2) with our own pid and a valid signal.
//! unsafe { libc::kill(libc::getpid(), libc::SIGHUP) };
//! hangup.recv().await;
//! println!("reloading the configuration");
//!
//! // Signals that cannot be caught are an error, not a listener that never wakes.
//! let err = signal(SignalKind::from_raw(libc::SIGKILL)).unwrap_err();
//! assert_eq!(err.kind(), std::io::ErrorKind::InvalidInput);
//! # Ok::<(), std::io::Error>(())
//! # }).unwrap();
//! ```

use std::fmt;
use std::future::poll_fn;
use std::io;
use std::os::fd::OwnedFd;
use std::task::{Context, Poll, ready};

use super::registry::{self, Slot};
use crate::io::Async;

/// Which signal to listen to: tokio's named constructors, or any number with
/// [`from_raw`](Self::from_raw).
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct SignalKind(i32);

impl SignalKind {
    /// Any signal, by number (`libc::SIGUSR1`, `libc::SIGRTMIN() + 1`, ...). Whether it
    /// can be listened to is checked by [`signal`].
    pub const fn from_raw(signum: i32) -> SignalKind {
        SignalKind(signum)
    }

    /// The signal number.
    pub const fn as_raw_value(&self) -> i32 {
        self.0
    }

    /// SIGALRM: a timer set with alarm(2) expired.
    pub const fn alarm() -> SignalKind {
        SignalKind(libc::SIGALRM)
    }

    /// SIGCHLD: a child process stopped or exited. ([`process`](crate::process) does
    /// not need it: it watches each child through a pidfd.)
    pub const fn child() -> SignalKind {
        SignalKind(libc::SIGCHLD)
    }

    /// SIGHUP: the terminal went away; by convention, "reload the configuration".
    pub const fn hangup() -> SignalKind {
        SignalKind(libc::SIGHUP)
    }

    /// SIGINT: Ctrl-C.
    pub const fn interrupt() -> SignalKind {
        SignalKind(libc::SIGINT)
    }

    /// SIGIO: I/O is possible on an fd set up for it.
    pub const fn io() -> SignalKind {
        SignalKind(libc::SIGIO)
    }

    /// SIGPIPE: a write to a pipe or socket with no reader (Rust programs ignore it by
    /// default, getting `BrokenPipe` errors instead).
    pub const fn pipe() -> SignalKind {
        SignalKind(libc::SIGPIPE)
    }

    /// SIGQUIT: Ctrl-\.
    pub const fn quit() -> SignalKind {
        SignalKind(libc::SIGQUIT)
    }

    /// SIGTERM: a polite request to stop (what `kill` and service managers send).
    pub const fn terminate() -> SignalKind {
        SignalKind(libc::SIGTERM)
    }

    /// SIGUSR1: for the application's own use.
    pub const fn user_defined1() -> SignalKind {
        SignalKind(libc::SIGUSR1)
    }

    /// SIGUSR2: for the application's own use.
    pub const fn user_defined2() -> SignalKind {
        SignalKind(libc::SIGUSR2)
    }

    /// SIGWINCH: the terminal changed size.
    pub const fn window_change() -> SignalKind {
        SignalKind(libc::SIGWINCH)
    }
}

impl From<i32> for SignalKind {
    fn from(signum: i32) -> SignalKind {
        SignalKind(signum)
    }
}

impl From<SignalKind> for i32 {
    fn from(kind: SignalKind) -> i32 {
        kind.0
    }
}

impl fmt::Debug for SignalKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "SignalKind({})", registry::name(self.0))
    }
}

/// A listener for one signal, registered with the reactor of the worker that created
/// it (see the [module docs](super) for how deliveries reach it).
pub struct Signal {
    /// This listener's duplicate of the signal's eventfd.
    wakeup: Async<OwnedFd>,
    slot: &'static Slot,
    /// The delivery count this listener has reported up to.
    seen: u64,
    signum: i32,
}

/// Starts listening to `kind`: deliveries from now on complete [`Signal::recv`].
///
/// # Errors
///
/// `InvalidInput` for a signal that does not exist, cannot be caught (SIGKILL,
/// SIGSTOP), or reports a synchronous fault (SIGSEGV, SIGILL, SIGFPE); the
/// kernel's error if sigaction(2) refuses the signal (`EINVAL` for the real-time
/// signals the C library keeps for itself); the error of creating or registering the
/// listener's fd.
///
/// # Panics
///
/// If called outside an epitome runtime.
#[track_caller]
pub fn signal(kind: SignalKind) -> io::Result<Signal> {
    let (slot, fd) = registry::listen(kind.0)?;
    // Read before registering: a delivery after this point is one this listener sees.
    let seen = slot.deliveries.load(std::sync::atomic::Ordering::SeqCst);
    let wakeup = Async::new(fd)?;
    Ok(Signal {
        wakeup,
        slot,
        seen,
        signum: kind.0,
    })
}

impl Signal {
    /// Waits for the next delivery. `None` if the reactor this listener is registered
    /// with can no longer report (its runtime is shutting down). Cancel-safe.
    pub async fn recv(&mut self) -> Option<()> {
        poll_fn(|cx| self.poll_recv(cx)).await
    }

    /// Polls for the next delivery (for hand-written futures and streams).
    pub fn poll_recv(&mut self, cx: &mut Context<'_>) -> Poll<Option<()>> {
        loop {
            let Ok(ready) = ready!(self.wakeup.poll_readable(cx)) else {
                return Poll::Ready(None);
            };
            let deliveries = self
                .slot
                .deliveries
                .load(std::sync::atomic::Ordering::SeqCst);
            if deliveries != self.seen {
                self.seen = deliveries;
                return Poll::Ready(Some(()));
            }
            // The eventfd is never drained (other listeners watch it too), so it stays
            // readable: count-checked, this wakeup was for deliveries already reported.
            // `clear_ready` keeps the readiness if a newer write arrived meanwhile.
            ready.clear_ready();
        }
    }
}

impl fmt::Debug for Signal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Signal")
            .field("signal", &registry::name(self.signum))
            .finish()
    }
}
