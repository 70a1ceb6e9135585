//! Signals, delivered through the reactor: [`ctrl_c`] and, for any catchable signal,
//! [`unix::signal`].
//!
//! The first listener of a signal installs a handler for it (through
//! [signal-hook-registry](https://docs.rs/signal-hook-registry), which chains with
//! handlers other libraries installed). The handler does two async-signal-safe things:
//! it counts the delivery and writes to an eventfd. Each listener watches that eventfd
//! through the reactor (an [`Async`](crate::io::Async) on its own duplicate of it) and
//! compares the count with the last one it saw. So:
//!
//! - it works whatever threads the process has: a handler runs on whichever thread the
//!   kernel picks, and nothing needs the signal blocked anywhere (as a `signalfd`
//!   would);
//! - any number of listeners, on any runtimes and workers, each see every delivery;
//! - a signal nobody ever listened to keeps its disposition (default, ignored, or
//!   another library's handler).
//!
//! As with tokio, deliveries that come faster than a listener looks are coalesced into
//! one, a listener sees only deliveries after it was created, and once a signal has had
//! a listener epitome's handler stays installed for the life of the process: after the
//! first `ctrl_c()`, Ctrl-C no longer ends the process by itself even when nobody
//! listens any more.
//!
//! ```no_run
//! #[epitome::main]
//! async fn main() -> std::io::Result<()> {
//!     println!("serving; press Ctrl-C to stop");
//!     epitome::signal::ctrl_c().await?;
//!     println!("shutting down");
//!     Ok(())
//! }
//! ```

mod registry;
pub mod unix;

use std::io;

/// Completes at the next Ctrl-C (SIGINT) delivered after this future is first polled.
///
/// Each call listens anew: keep a [`unix::Signal`] for SIGINT instead to see every
/// Ctrl-C (see the module docs for how deliveries are counted).
///
/// # Errors
///
/// If the handler cannot be installed or the listener cannot be registered with the
/// reactor (out of fds, for example).
///
/// # Panics
///
/// If polled outside an epitome runtime.
///
/// ```
/// # let rt = epitome::runtime::Builder::new_current_thread().build().unwrap();
/// # rt.block_on(async {
/// use std::future::Future;
/// use std::pin::pin;
/// use std::task::Poll;
///
/// let mut ctrl_c = pin!(epitome::signal::ctrl_c());
/// // Polled once, it listens; then a Ctrl-C arrives.
/// std::future::poll_fn(|cx| {
///     assert!(ctrl_c.as_mut().poll(cx).is_pending());
///     Poll::Ready(())
/// })
/// .await;
/// // SAFETY: kill(2) with our own pid and a valid signal.
/// unsafe { libc::kill(libc::getpid(), libc::SIGINT) };
/// ctrl_c.await.unwrap();
/// # });
/// ```
pub async fn ctrl_c() -> io::Result<()> {
    let mut interrupt = unix::signal(unix::SignalKind::interrupt())?;
    match interrupt.recv().await {
        Some(()) => Ok(()),
        None => Err(io::Error::other(
            "the reactor stopped before a Ctrl-C arrived",
        )),
    }
}
