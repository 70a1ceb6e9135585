//! epitome-runtime: the user-space eventpoll, reactor, executor and timers of the
//! [epitome](https://github.com/epitome-rs/epitome) async runtime.
//!
//! - [`eventpoll`]: a reimplementation of the kernel's `fs/eventpoll.c` (interest
//!   tree, ready list, level- and edge-triggered, oneshot and exclusive items) over one
//!   raw kernel epoll instance, giving the kernel's answers errno for errno.
//! - [`runtime`]: the current-thread and multi-reactor runtimes; each worker owns one
//!   reactor (an `EventPoll`), one run queue and one timer wheel.
//! - [`task`]: spawning, `JoinHandle`, `JoinSet`, `spawn_local`, `spawn_blocking`.
//! - [`io`]: [`io::Async`], for building I/O types on the reactor.
//! - [`time`]: sleeps, timeouts and intervals on a hierarchical timing wheel.

#![warn(missing_docs)]
#![cfg(target_os = "linux")]

pub(crate) mod loom;
#[macro_use]
pub(crate) mod sys;

mod blocking;
mod coop;
pub mod eventpoll;
pub mod io;
mod reactor;
pub mod runtime;
mod scheduler;
pub mod task;
mod task_core;
pub mod time;

use std::future::Future;

use task_core::JoinHandle;

/// The data structures the fuzz targets drive, only under `--cfg fuzzing`. Not API.
#[cfg(fuzzing)]
#[doc(hidden)]
#[allow(missing_docs)]
pub mod __fuzz {
    pub use crate::fuzz::*;
}

#[cfg(fuzzing)]
mod fuzz;

/// The loom models of every wakeup path: unit tests of this crate in its loom build
/// only (`--cfg epitome_loom`; `loom-tests/run.sh` runs them and their planted bugs).
/// They sit above every layer they drive.
#[cfg(all(test, epitome_loom))]
mod loom_models;

/// Spawns a task onto the current runtime: onto this worker if called from one of its
/// tasks, else onto a worker chosen round-robin. The task starts running at once, even
/// if its handle is never awaited; dropping the handle detaches it.
///
/// ```
/// # fn main() -> std::io::Result<()> {
/// let rt = epitome_runtime::runtime::Builder::new_multi_reactor().reactors(2).build()?;
/// let out = rt.block_on(async {
///     let handles: Vec<_> = (0..4u32)
///         .map(|i| epitome_runtime::spawn(async move { i * 10 }))
///         .collect();
///     let mut sum = 0;
///     for h in handles {
///         sum += h.await?;
///     }
///     Ok::<_, epitome_runtime::task::JoinError>(sum)
/// })?;
/// assert_eq!(out, 60);
/// # Ok(())
/// # }
/// ```
///
/// # Panics
///
/// If there is no epitome runtime on this thread.
#[track_caller]
pub fn spawn<F>(future: F) -> JoinHandle<F::Output>
where
    F: Future + Send + 'static,
    F::Output: Send + 'static,
{
    match scheduler::context::runtime() {
        Some(rt) => rt.spawn(future),
        None => panic!(
            "`epitome::spawn` called outside of an epitome runtime: call it from a task, from inside \
             `Runtime::block_on`, or after `Runtime::enter`"
        ),
    }
}
