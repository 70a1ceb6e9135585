//! Tasks: spawning, awaiting and cancelling them, and running `!Send` futures.
//!
//! - [`spawn`] (also at the crate root, as `tokio::spawn`), [`spawn_local`], [`spawn_blocking`] and [`block_in_place`] start work;
//!   [`JoinHandle`] awaits a task's output, [`AbortHandle`] cancels it, [`JoinSet`]
//!   awaits many in completion order.
//! - [`LocalSet`] runs `!Send` futures on the thread that drives it.
//! - [`yield_now`] and [`consume_budget`] give other tasks their turn ([`coop`] has the
//!   rest of the cooperative budget's API); [`id`] / [`try_id`] name the running task.
//!
//! ```
//! use epitome_runtime::task;
//!
//! # fn main() -> std::io::Result<()> {
//! let rt = epitome_runtime::runtime::Builder::new_current_thread().build()?;
//! let sum = rt.block_on(async {
//!     let cpu = task::spawn_blocking(|| (1..=10u64).product::<u64>());
//!     let io = epitome_runtime::spawn(async {
//!         task::yield_now().await;
//!         task::id()
//!     });
//!     let id = io.id();
//!     assert_eq!(io.await?, id);
//!     cpu.await
//! })?;
//! assert_eq!(sum, 3_628_800);
//! # Ok(())
//! # }
//! ```
//!
//!
//! This module is the public face of the task layer (`task_core`, below the
//! scheduler), with what needs the scheduler and the runtime on top: spawning,
//! `JoinSet`, `LocalSet`, `block_in_place`.

pub mod coop;
mod join_set;

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};

pub use crate::scheduler::local_set::{LocalEnterGuard, LocalSet};
pub use crate::spawn;
pub use crate::task_core::{AbortHandle, Id, JoinError, JoinHandle, id, try_id};
pub use coop::{Unconstrained, consume_budget, unconstrained};
pub use join_set::JoinSet;

/// Spawns a `!Send` future onto this thread: onto the [`LocalSet`] being run or
/// entered here if there is one, else onto the worker running on this thread (a
/// current-thread runtime's `block_on`, or any task). Its future is only ever polled
/// and dropped on this thread.
///
/// Spawning onto a worker pins that worker to this thread: a current-thread runtime
/// with local tasks is only driven by this thread's `block_on` from then on (another
/// thread's `block_on` polls its own future but never takes the runtime over), and a
/// multi-reactor worker with local tasks cannot hand its work over in
/// [`block_in_place`]. Tokio has no such worker spawns: there, `spawn_local` outside a
/// `LocalSet` (or `LocalRuntime`) panics.
///
/// ```
/// use std::rc::Rc;
///
/// # fn main() -> std::io::Result<()> {
/// let rt = epitome_runtime::runtime::Builder::new_current_thread().build()?;
/// let len = rt.block_on(async {
///     let shared = Rc::new(String::from("not Send"));
///     let copy = shared.clone();
///     epitome_runtime::task::spawn_local(async move { copy.len() }).await
/// })?;
/// assert_eq!(len, 8);
/// # Ok(())
/// # }
/// ```
///
/// # Panics
///
/// Outside a `LocalSet` and off any worker (a plain thread, a blocking-pool thread, the
/// `block_on` thread of a multi-reactor runtime).
#[track_caller]
pub fn spawn_local<F>(future: F) -> JoinHandle<F::Output>
where
    F: Future + 'static,
    F::Output: 'static,
{
    let future = match crate::scheduler::local_set::spawn_on_current(future) {
        Ok(handle) => return handle,
        Err(future) => future,
    };
    match crate::scheduler::spawn_local(future) {
        Ok(handle) => handle,
        Err(_) => panic!(
            "`spawn_local` called from outside of a `task::LocalSet` or `runtime::LocalRuntime` \
             (tokio's words; in epitome: outside a `LocalSet` and off every worker): a `!Send` \
             future must be spawned inside `LocalSet::run_until`, from a task, or from \
             `block_on` on a current-thread runtime"
        ),
    }
}

/// Runs a blocking closure on the runtime's blocking pool and returns a handle to its
/// result. The pool grows to `max_blocking_threads` and shrinks after threads idle.
///
/// The closure cannot be cancelled: aborting the handle only stops a closure that has
/// not started. Shutting the runtime down waits for running closures (see
/// [`Runtime::shutdown_timeout`](crate::runtime::Runtime::shutdown_timeout)).
///
/// ```
/// # fn main() -> std::io::Result<()> {
/// let rt = epitome_runtime::runtime::Builder::new_multi_reactor().reactors(1).build()?;
/// let n = rt.block_on(async {
///     epitome_runtime::task::spawn_blocking(|| std::fs::read_dir(".").map(|d| d.count()))
///         .await
/// })??;
/// assert!(n > 0);
/// # Ok(())
/// # }
/// ```
///
/// # Panics
///
/// If there is no epitome runtime on this thread.
#[track_caller]
pub fn spawn_blocking<F, R>(f: F) -> JoinHandle<R>
where
    F: FnOnce() -> R + Send + 'static,
    R: Send + 'static,
{
    crate::runtime::Handle::current().spawn_blocking(f)
}

/// Runs a blocking closure on this thread, first handing this worker's other tasks,
/// reactor and timers to a stand-in thread so they keep running meanwhile.
///
/// On a multi-reactor worker the worker is lent to a thread of the blocking pool for
/// the closure's duration and taken back when it returns (at the stand-in's next pause
/// between two task polls). Tasks stay on their worker; only the thread driving it
/// changes while the closure runs. The closure runs outside the runtime's worker
/// scope, without a cooperative budget, and may call
/// [`Handle::block_on`](crate::runtime::Handle::block_on).
///
/// Elsewhere: on the `block_on` thread of a multi-reactor runtime, or off any runtime,
/// the closure simply runs.
///
/// Prefer [`spawn_blocking`]: it costs a thread hand-over less, and other code of the
/// calling task (a `join!` beside this call) keeps running. `block_in_place` suspends
/// the whole task.
///
/// ```
/// # fn main() -> std::io::Result<()> {
/// let rt = epitome_runtime::runtime::Builder::new_multi_reactor().reactors(2).build()?;
/// let out = rt.block_on(async {
///     epitome_runtime::spawn(async {
///         epitome_runtime::task::block_in_place(|| (1..=20u64).sum::<u64>())
///     })
///     .await
/// })?;
/// assert_eq!(out, 210);
/// # Ok(())
/// # }
/// ```
///
/// # Panics
///
/// - On a current-thread runtime (there is no other thread to hand the work to), or
///   inside a [`LocalSet`], as tokio does.
/// - On a multi-reactor worker that runs `!Send` tasks ([`spawn_local`]): they may not
///   be polled on another thread, so the worker cannot be handed over. Use
///   [`spawn_blocking`] there.
///
/// Panics of the closure propagate to the caller, after the worker is taken back.
#[track_caller]
pub fn block_in_place<F, R>(f: F) -> R
where
    F: FnOnce() -> R,
{
    crate::scheduler::block_in_place::block_in_place(f)
}

/// Yields to the scheduler once: the task goes to the back of its run queue.
pub async fn yield_now() {
    struct YieldNow(bool);
    impl Future for YieldNow {
        type Output = ();
        fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
            if self.0 {
                return Poll::Ready(());
            }
            self.0 = true;
            cx.waker().wake_by_ref();
            Poll::Pending
        }
    }
    YieldNow(false).await
}

// The runtime's `block_on` is above the scheduler, where `LocalSet` lives.
impl LocalSet {
    /// Runs `future` to completion on `rt`, running the set's tasks meanwhile:
    /// `rt.block_on(self.run_until(future))`.
    ///
    /// # Panics
    ///
    /// As [`Runtime::block_on`](crate::runtime::Runtime::block_on).
    #[track_caller]
    pub fn block_on<F: Future>(&self, rt: &crate::runtime::Runtime, future: F) -> F::Output {
        rt.block_on(self.run_until(future))
    }
}
