//! epitome: an async runtime for Rust on Linux whose reactor is a user-space
//! reimplementation of the kernel's eventpoll.
//!
//! It runs what you would write on tokio, with tokio's names: tasks, timers, TCP / UDP /
//! Unix sockets, and hyper and axum through `hyper::serve` (feature
//! `hyper-server`). Its reactor, [`eventpoll::EventPoll`], has the kernel's epoll
//! semantics (interest tree, ready list, level/edge-triggered, oneshot, exclusive
//! wake-one) and is public; on the multi-reactor runtime each worker has its own, and a
//! shared listener wakes one worker per connection. Every wakeup path is model-checked
//! with loom.
//!
//! # Quick start
//!
//! ```toml
//! [dependencies]
//! epitome = "0.1"
//! ```
//!
//! ```
//! use epitome::net::{TcpListener, TcpStream};
//!
//! # fn main() -> std::io::Result<()> {
//! let rt = epitome::runtime::Builder::new_current_thread().build()?;
//! rt.block_on(async {
//!     let listener = TcpListener::bind("127.0.0.1:0").await?;
//!     let addr = listener.local_addr()?;
//!     // An echo server: one task per connection.
//!     epitome::spawn(async move {
//!         while let Ok((stream, _)) = listener.accept().await {
//!             epitome::spawn(async move {
//!                 let mut buf = [0u8; 1024];
//!                 while let Ok(n @ 1..) = stream.read(&mut buf).await {
//!                     if stream.write_all(&buf[..n]).await.is_err() {
//!                         break;
//!                     }
//!                 }
//!             });
//!         }
//!     });
//!     let client = TcpStream::connect(addr).await?;
//!     client.write_all(b"hello").await?;
//!     let mut back = [0u8; 5];
//!     client.read_exact(&mut back).await?;
//!     assert_eq!(&back, b"hello");
//!     // A timer.
//!     epitome::time::sleep(std::time::Duration::from_millis(1)).await;
//!     Ok(())
//! })
//! # }
//! ```
//!
//! For a multi-reactor runtime (one reactor per worker thread, tasks never migrate),
//! build with `Builder::new_multi_reactor().reactors(n)`.
//!
//! # Modules
//!
//! - [`runtime`]: the current-thread and multi-reactor runtimes ([`runtime::Builder`]).
//! - [`task`] and [`spawn`]: tasks, `JoinHandle`, `JoinSet`, `spawn_local`,
//!   `spawn_blocking`.
//! - [`time`]: `sleep`, `timeout`, `interval`.
//! - [`net`]: TCP, UDP and Unix sockets.
//! - [`io`]: [`io::Async`], for building I/O types on the reactor.
//! - [`eventpoll`]: the user-space eventpoll, with the kernel's epoll semantics.
//! - `hyper` (features `hyper-server`, `hyper-client`): `serve` (epitome's
//!   `axum::serve`), and hyper's runtime traits on epitome.
//! - `compat` (feature `tokio-compat`): running crates that need tokio's runtime.
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
//! # Feature flags
//!
//! | feature | what it brings |
//! |---|---|
//! | (none) | runtimes, tasks, timers, `EventPoll`, `io::Async`, sockets with the `futures-io` traits |
//! | `tokio-io` | tokio's `AsyncRead` / `AsyncWrite` on epitome's streams (tokio-util codecs) |
//! | `hyper-server` | `hyper::serve` and the hyper adapters; compiles no tokio networking code (no mio) |
//! | `hyper-client` | `hyper::Connector` for hyper-util's legacy `Client` (hyper-util compiles tokio's `net` for it, never run) |
//! | `hyper` | both hyper features |
//! | `tokio-compat` | `compat`: async-compat's background tokio runtime for tokio-bound crates |
//! | `signal` | `signal`: `ctrl_c()` and Unix signals |
//! | `process` | `process`: `Command`, `Child`, pipes |
//! | `fs` | `fs`: files and directories on the blocking pool |
//! | `sync` | `sync`: channels, locks, `Notify`, `watch` (smol-rs's crates re-exported, and ours) |
//! | `macros` | `#[main]`, `#[test]`, `select!`, `join!`, `try_join!` |
//! | `full` | the five above |
//!
//! # Learn more
//!
//! The repository's `docs/` folder: migrating from tokio (`migrating-from-tokio.md`),
//! the toolkit against tokio's names (`toolkit.md`),
//! serving hyper and axum (`serving.md`), tokio-bound crates (`tokio-bound-crates.md`),
//! the eventpoll's semantics and known limitations (`eventpoll.md`), and the benchmarks,
//! reliability runs and loom models, each figure with its date.
//!
//! Linux only.

#![warn(missing_docs)]

// The README's examples (one serves axum), compiled by `cargo test --doc` so that they
// stay true.
#[cfg(all(doctest, feature = "hyper-server"))]
#[doc = include_str!("../README.md")]
struct ReadmeExamples;

pub use epitome_runtime::{eventpoll, io, runtime, spawn, task, time};

/// Networking types.
pub use epitome_net as net;

#[cfg(any(feature = "hyper-server", feature = "hyper-client"))]
pub mod hyper;

#[cfg(feature = "tokio-compat")]
pub mod compat;

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
