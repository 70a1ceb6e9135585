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
//!
//! # Learn more
//!
//! The repository's `docs/` folder: migrating from tokio (`migrating-from-tokio.md`),
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
