//! epitome: an async runtime for Rust on Linux whose reactor is a user-space
//! reimplementation of the kernel's eventpoll.
//!
//! - [`eventpoll`]: the user-space eventpoll, with the kernel's epoll semantics.
//! - [`runtime`]: the current-thread and multi-reactor runtimes ([`runtime::Builder`]).
//! - [`task`] and [`spawn`]: tasks, `JoinHandle`, `JoinSet`, `spawn_local`,
//!   `spawn_blocking`.
//! - [`time`]: `sleep`, `timeout`, `interval`.
//! - [`io`]: [`io::Async`], for building I/O types on the reactor.
//! - [`net`]: TCP, UDP and Unix sockets.
//! - `hyper` (cargo feature `hyper`): hyper's runtime traits on epitome, so hyper and
//!   axum servers and clients run without a tokio runtime.
//!
//! The application toolkit, each piece behind its own cargo feature (`full` enables
//! them all; a server that enables none compiles none of it):
//!
//! - `signal`: `ctrl_c()` and Unix signals, delivered through the reactor.
//! - `process`: child processes, their exit seen through a pidfd; pipes as streams.
//! - `fs`: tokio::fs's functions and `File`, on the blocking pool.
//! - `sync`: channels (mpsc, oneshot, broadcast, watch), `Mutex`, `RwLock`,
//!   `Semaphore`, `Notify`, `Barrier`.
//! - `macros`: `#[epitome::main]`, `#[epitome::test]`, `select!`, `join!`, `try_join!`.
//!
//! docs/toolkit.md maps tokio's names to epitome's.
//!
//! ```
//! let rt = epitome::runtime::Builder::new_current_thread().build().unwrap();
//! let answer = rt.block_on(async {
//!     let task = epitome::spawn(async { 6 * 7 });
//!     task.await.unwrap()
//! });
//! assert_eq!(answer, 42);
//! ```

#![warn(missing_docs)]

pub use epitome_runtime::{eventpoll, io, runtime, spawn, task, time};

/// Networking types.
pub use epitome_net as net;

#[cfg(feature = "hyper")]
pub mod hyper;

#[cfg(feature = "fs")]
pub mod fs;
#[cfg(feature = "process")]
pub mod process;
#[cfg(feature = "signal")]
pub mod signal;
#[cfg(feature = "sync")]
pub mod sync;

#[cfg(feature = "macros")]
mod macros;

/// Runs `async fn main` on an epitome runtime (feature `macros`).
///
/// ```
/// #[epitome::main]
/// async fn main() -> std::io::Result<()> {
///     let listener = epitome::net::TcpListener::bind("127.0.0.1:0").await?;
///     println!("listening on {}", listener.local_addr()?);
///     Ok(())
/// }
/// ```
///
/// The body runs in `Runtime::block_on` of a multi-reactor runtime with one reactor per
/// core, unless the arguments say otherwise:
///
/// - `flavor = "current_thread"`: a current-thread runtime (the main thread drives it);
///   `flavor = "multi_reactor"` (or tokio's `"multi_thread"`): the default.
/// - `reactors = N` (or tokio's `worker_threads = N`): `N` reactor threads (multi-reactor
///   only; at least 1).
/// - `crate = "path"`: where to find epitome, for a crate that re-exports it.
///
/// ```
/// #[epitome::main(flavor = "multi_reactor", reactors = 2)]
/// async fn main() {
///     let workers = epitome::runtime::Handle::current().metrics().num_workers();
///     assert_eq!(workers, 2);
/// }
/// ```
///
/// Misuse is a compile error that names the problem: a function that is not `async`,
/// takes arguments, an unknown argument or value, `reactors = 0`, or `reactors` with
/// `current_thread`. A runtime that fails to build (no fds left, say) panics with the
/// error, as tokio's.
#[cfg(feature = "macros")]
pub use epitome_macros::main;

/// Runs an `async fn` test on an epitome runtime (feature `macros`): a current-thread
/// runtime per test unless `flavor = "multi_reactor"`. The arguments are those of
/// [`main`](macro@main).
///
/// ```
/// #[epitome::test]
/// async fn sends_and_receives() {
///     let (tx, rx) = epitome::sync::oneshot::channel();
///     tx.send(1).unwrap();
///     assert_eq!(rx.await, Ok(1));
/// }
///
/// #[epitome::test(flavor = "multi_reactor", reactors = 2)]
/// async fn on_two_reactors() {
///     let task = epitome::spawn(async { 6 * 7 });
///     assert_eq!(task.await.unwrap(), 42);
/// }
/// ```
#[cfg(feature = "macros")]
pub use epitome_macros::test;

/// What the expansions of `select!`, `join!` and `try_join!` use. Not API.
#[cfg(feature = "macros")]
#[doc(hidden)]
pub mod __private {
    pub use crate::macros::support::*;
}
