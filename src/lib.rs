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

#[cfg(any(feature = "hyper-server", feature = "hyper-client"))]
pub mod hyper;

#[cfg(feature = "tokio-compat")]
pub mod compat;
