//! The runtime: building one, running futures on it, spawning, shutting down.
//!
//! Two flavours, one kind of worker each:
//!
//! - [`Builder::new_current_thread`]: one worker — one reactor (an `EventPoll` over
//!   its own kernel epoll instance), one run queue, one timer wheel — driven by the
//!   thread that calls [`Runtime::block_on`].
//! - [`Builder::new_multi_reactor`]: `reactors(n)` workers on their own threads, each
//!   with its own reactor, run queue and timers (the master/sub-reactor model). A task
//!   runs on the worker that spawned it; spawns from outside the workers are spread
//!   round-robin. There is no work stealing: a task's I/O sources, timers and wakes
//!   stay on one worker and one core.
//!
//! The API follows tokio's, so switching is mostly a change of imports (the
//! differences are listed in `docs/parity-runtime.md`).
//!
//! ```
//! use epitome_runtime::runtime::{Builder, Handle};
//!
//! # fn main() -> std::io::Result<()> {
//! let rt = Builder::new_multi_reactor().reactors(2).build()?;
//! let handle = rt.handle().clone();
//! // A handle spawns from anywhere, here from a plain thread.
//! let task = std::thread::spawn(move || handle.spawn(async { 6 * 7 }))
//!     .join()
//!     .expect("the spawning thread");
//! let answer = rt.block_on(async move {
//!     assert_eq!(Handle::current().id(), Handle::current().id());
//!     task.await
//! })?;
//! assert_eq!(answer, 42);
//! # Ok(())
//! # }
//! ```

mod builder;
mod current_thread;
mod metrics;

use std::fmt;
use std::future::Future;
use std::num::NonZeroU64;
use std::time::Duration;

pub use builder::Builder;
pub use metrics::RuntimeMetrics;

use crate::loom::os::sync::{Arc, Mutex};
use crate::loom::os::thread;
use crate::loom::sync::atomic::Ordering;
use crate::scheduler::worker::Core;
use crate::scheduler::{Kind, RuntimeShared, context};
use crate::task_core::JoinHandle;
use current_thread::{CoreSlot, park_on};

/// A running runtime. Dropping it shuts it down: every task is cancelled (its future
/// dropped, so its fds close), the worker threads exit, and the blocking pool waits for
/// closures already running.
///
/// Dropping it blocks the dropping thread until that is done. Unlike tokio, which
/// panics, epitome allows this inside another runtime's async context (it blocks that
/// worker meanwhile); a runtime dropped from a thread-local's destructor shuts down
/// without entering itself, so `spawn` from its tasks' destructors then fails as it
/// would off any runtime.
///
/// ```
/// # fn main() -> std::io::Result<()> {
/// let rt = epitome_runtime::runtime::Runtime::new()?;
/// let task = rt.spawn(async { "spawned from outside" });
/// let out = rt.block_on(async { task.await })?;
/// assert_eq!(out, "spawned from outside");
/// rt.shutdown_timeout(std::time::Duration::from_secs(1));
/// # Ok(())
/// # }
/// ```
pub struct Runtime {
    handle: Handle,
    flavor: Flavor,
}

enum Flavor {
    /// The single worker's loop state, taken by whichever thread drives it.
    CurrentThread { slot: CoreSlot },
    MultiReactor {
        threads: Mutex<Vec<thread::JoinHandle<()>>>,
    },
}

/// A cheap, clonable reference to a runtime: spawn onto it, enter it, read its
/// metrics. It does not keep the runtime running: once the `Runtime` is dropped,
/// spawns through a handle give tasks that report cancellation.
///
/// ```
/// use epitome_runtime::runtime::{Builder, Handle};
///
/// # fn main() -> std::io::Result<()> {
/// let rt = Builder::new_current_thread().build()?;
/// assert!(Handle::try_current().is_err());
/// {
///     let _guard = rt.enter();
///     // Entered: `spawn` and `Handle::current` find the runtime.
///     let handle = Handle::current();
///     assert_eq!(handle.id(), rt.handle().id());
///     let task = epitome_runtime::spawn(async { 1 });
///     assert_eq!(rt.block_on(task)?, 1);
/// }
/// assert!(Handle::try_current().is_err());
/// # Ok(())
/// # }
/// ```
#[derive(Clone)]
pub struct Handle {
    pub(crate) inner: Arc<RuntimeShared>,
}

/// An opaque id of a runtime, unique among the runtimes of the process (never reused).
///
/// ```
/// # fn main() -> std::io::Result<()> {
/// let a = epitome_runtime::runtime::Builder::new_current_thread().build()?;
/// let b = epitome_runtime::runtime::Builder::new_current_thread().build()?;
/// assert_ne!(a.handle().id(), b.handle().id());
/// assert_eq!(a.handle().id(), a.handle().clone().id());
/// # Ok(())
/// # }
/// ```
#[derive(Clone, Copy, Debug, Hash, Eq, PartialEq)]
pub struct Id(NonZeroU64);

impl fmt::Display for Id {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

/// Which kind of runtime a [`Handle`] belongs to ([`Handle::runtime_flavor`]), with
/// tokio's names.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum RuntimeFlavor {
    /// [`Builder::new_current_thread`]: one worker, driven by `block_on`.
    CurrentThread,
    /// [`Builder::new_multi_reactor`] (tokio's `new_multi_thread`): workers on their own
    /// threads.
    MultiThread,
}

/// Returned by [`Handle::try_current`] off any runtime.
#[derive(Debug)]
pub struct TryCurrentError {
    destroyed: bool,
}

impl TryCurrentError {
    /// There is no runtime on this thread.
    pub fn is_missing_context(&self) -> bool {
        !self.destroyed
    }

    /// This thread's thread-locals are being destroyed (a thread-local's destructor
    /// asked), so no runtime can be found.
    pub fn is_thread_local_destroyed(&self) -> bool {
        self.destroyed
    }
}

impl fmt::Display for TryCurrentError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.destroyed {
            f.write_str(
                "the epitome context thread-local variable has been destroyed: there is no \
                 runtime on this thread any more",
            )
        } else {
            f.write_str("there is no epitome runtime on this thread")
        }
    }
}

impl std::error::Error for TryCurrentError {}

/// Keeps a runtime entered on this thread until dropped (see [`Handle::enter`]).
///
/// Guards must be dropped in the reverse order they were made. Dropping one out of
/// order panics (as tokio does) and leaves the runtime that was current before it
/// entered; the guards made after it were unwound with it and do nothing when dropped.
#[must_use = "dropping the guard leaves the runtime at once"]
pub struct EnterGuard<'a> {
    _guard: context::EnterGuard,
    _handle: std::marker::PhantomData<&'a Handle>,
}

impl fmt::Debug for EnterGuard<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("EnterGuard").finish_non_exhaustive()
    }
}

/// tokio's message (users and tests match on it), then epitome's specifics.
const NESTED: &str = "Cannot start a runtime from within a runtime. This happens because a function (like \
     `block_on`) attempted to block the current thread while the thread is being used to drive \
     asynchronous tasks. If you are in an async function, use `.await` on the future instead of \
     blocking on it. (epitome: this thread is a worker, or inside another `block_on`; \
     `spawn_blocking` or `block_in_place` leave the runtime first.)";

impl Runtime {
    /// A multi-reactor runtime with one worker per available core.
    pub fn new() -> std::io::Result<Runtime> {
        Builder::new_multi_reactor().build()
    }

    pub(crate) fn from_parts(
        inner: Arc<RuntimeShared>,
        core: Option<Box<Core>>,
        threads: Vec<thread::JoinHandle<()>>,
    ) -> Runtime {
        let flavor = match inner.kind {
            Kind::CurrentThread => Flavor::CurrentThread {
                slot: CoreSlot::new(core),
            },
            Kind::MultiReactor => Flavor::MultiReactor {
                threads: Mutex::new(threads),
            },
        };
        Runtime {
            handle: Handle { inner },
            flavor,
        }
    }

    /// Runs `future` to completion on this thread and returns its output.
    ///
    /// On a current-thread runtime this thread drives the runtime (its reactor, timers
    /// and tasks) while it waits. If another thread is already driving it (from its own
    /// `block_on`), this thread polls `future` by itself meanwhile, and takes the
    /// runtime over when that thread's `block_on` returns. A runtime with `!Send` tasks
    /// (`spawn_local`) is only ever driven by the thread that spawned them: on other
    /// threads, `block_on` polls its own future and never drives the runtime.
    ///
    /// On a multi-reactor runtime the workers drive the runtime, and this thread only
    /// polls `future`, sleeping until it can make progress. Spawning inside the future
    /// spawns onto this runtime.
    ///
    /// ```
    /// # fn main() -> std::io::Result<()> {
    /// let rt = epitome_runtime::runtime::Builder::new_current_thread().build()?;
    /// let out = rt.block_on(async {
    ///     epitome_runtime::time::sleep(std::time::Duration::from_millis(1)).await;
    ///     epitome_runtime::spawn(async { 5 }).await
    /// })?;
    /// assert_eq!(out, 5);
    /// # Ok(())
    /// # }
    /// ```
    ///
    /// # Panics
    ///
    /// If this thread is already driving a runtime (a worker thread, or inside another
    /// `block_on`): nesting would stall it. Panics in `future` propagate.
    #[track_caller]
    pub fn block_on<F: Future>(&self, future: F) -> F::Output {
        if context::is_driving() {
            panic!("{NESTED}");
        }
        match &self.flavor {
            Flavor::CurrentThread { slot } => {
                current_thread::block_on(&self.handle.inner, slot, future)
            }
            Flavor::MultiReactor { .. } => {
                let _enter = context::enter(self.handle.inner.clone());
                let _driving = context::set_driving(context::Driving::Future);
                park_on(future)
            }
        }
    }

    /// Spawns a task onto this runtime (see [`Handle::spawn`]).
    pub fn spawn<F>(&self, future: F) -> JoinHandle<F::Output>
    where
        F: Future + Send + 'static,
        F::Output: Send + 'static,
    {
        self.handle.spawn(future)
    }

    /// Runs a blocking closure on this runtime's blocking pool.
    pub fn spawn_blocking<F, R>(&self, f: F) -> JoinHandle<R>
    where
        F: FnOnce() -> R + Send + 'static,
        R: Send + 'static,
    {
        self.handle.spawn_blocking(f)
    }

    /// A handle to this runtime.
    pub fn handle(&self) -> &Handle {
        &self.handle
    }

    /// Enters this runtime on this thread without driving it (see [`Handle::enter`]).
    pub fn enter(&self) -> EnterGuard<'_> {
        self.handle.enter()
    }

    /// The runtime's counters.
    pub fn metrics(&self) -> RuntimeMetrics {
        self.handle.metrics()
    }

    /// Shuts down: cancels every task, stops the workers, and waits up to `timeout` for
    /// blocking closures that are running. Closures still running after that are left
    /// to finish on their own threads (they cannot be interrupted).
    pub fn shutdown_timeout(mut self, timeout: Duration) {
        self.shutdown(Some(timeout));
    }

    /// Shuts down without waiting for running blocking closures.
    pub fn shutdown_background(self) {
        self.shutdown_timeout(Duration::ZERO);
    }

    fn shutdown(&mut self, blocking_timeout: Option<Duration>) {
        let rt = &self.handle.inner;
        if rt.shutdown.swap(true, Ordering::AcqRel) {
            return;
        }
        match &self.flavor {
            Flavor::CurrentThread { slot } => {
                // No `block_on` can hold the core: they borrow the runtime, which is
                // being consumed.
                if let Some(core) = slot.take() {
                    shutdown_core(rt, core);
                }
            }
            Flavor::MultiReactor { threads } => {
                for w in rt.workers.iter() {
                    w.shutdown.store(true, Ordering::Release);
                    w.unpark();
                }
                let threads = std::mem::take(&mut *threads.lock());
                let current = thread::current().id();
                for t in threads {
                    // A worker dropping the runtime cannot join itself.
                    if t.thread().id() != current {
                        let _ = t.join();
                    }
                }
            }
        }
        rt.blocking.shutdown(blocking_timeout);
    }
}

/// Cancels the tasks of a current-thread runtime's core, on this thread.
fn shutdown_core(rt: &Arc<RuntimeShared>, core: Box<Core>) {
    let foreign = core
        .local
        .pinned
        .get()
        .is_some_and(|owner| owner != thread::current().id());
    if foreign {
        // `!Send` futures may not be dropped on this thread, and their own thread no
        // longer drives the runtime: leak them (and the worker) rather than drop them
        // here. Its sources and timers still learn that the runtime is gone, as on the
        // normal path (`WorkerLocal::shutdown`), so a task elsewhere waiting on one gets
        // an error rather than a wait for ever. The wakes this sends to leaked tasks only
        // queue them on a worker nobody drives, and the leaked owner list keeps each of
        // them alive: none is dropped here.
        core.local.shared.reactor.shutdown();
        core.local.shared.timer.shutdown();
        std::mem::forget(core);
        return;
    }
    // The runtime is entered while the futures are dropped (their destructors may
    // spawn or read `Handle::current`), unless this thread's thread-locals are being
    // destroyed (a runtime dropped from a thread-local's destructor): then nothing is
    // entered, and spawns from those destructors fail as they would off any runtime.
    // The worker scope needs no destructor-bearing thread-local, so it is always set:
    // completions unlink their tasks from the worker's list.
    let enter = context::available()
        .then(|| context::enter_with_timer(rt.clone(), core.local.shared.timer.clone()));
    let worker = context::set_worker(&core);
    core.local.shutdown();
    drop(worker);
    drop(enter);
    drop(core);
}

impl Drop for Runtime {
    fn drop(&mut self) {
        self.shutdown(None);
    }
}

impl fmt::Debug for Runtime {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Runtime")
            .field("id", &self.handle.id())
            .field("flavor", &self.handle.inner.kind)
            .field("workers", &self.handle.inner.workers.len())
            .finish()
    }
}

impl Handle {
    /// The runtime this thread is in.
    ///
    /// # Panics
    ///
    /// If there is none (use [`try_current`](Self::try_current) to check).
    #[track_caller]
    pub fn current() -> Handle {
        match Handle::try_current() {
            Ok(h) => h,
            Err(_) => panic!(
                "there is no epitome runtime on this thread: call this from a task, from inside \
                 `Runtime::block_on`, or after `Runtime::enter`"
            ),
        }
    }

    /// The runtime this thread is in, if any.
    pub fn try_current() -> Result<Handle, TryCurrentError> {
        match context::try_runtime() {
            Ok(Some(inner)) => Ok(Handle { inner }),
            Ok(None) => Err(TryCurrentError { destroyed: false }),
            Err(()) => Err(TryCurrentError { destroyed: true }),
        }
    }

    /// The runtime's id.
    pub fn id(&self) -> Id {
        Id(self.inner.id)
    }

    /// The runtime's flavour.
    pub fn runtime_flavor(&self) -> RuntimeFlavor {
        match self.inner.kind {
            Kind::CurrentThread => RuntimeFlavor::CurrentThread,
            Kind::MultiReactor => RuntimeFlavor::MultiThread,
        }
    }

    /// The runtime's name, if [`Builder::name`] gave it one.
    pub fn name(&self) -> Option<&str> {
        self.inner.name.as_deref()
    }

    /// Spawns a `Send` future. On one of this runtime's worker threads it goes to that
    /// worker's local queue; elsewhere, to a worker chosen round-robin.
    ///
    /// Once the runtime is shut down, the task is cancelled at once: awaiting its
    /// handle gives a cancelled `JoinError`.
    pub fn spawn<F>(&self, future: F) -> JoinHandle<F::Output>
    where
        F: Future + Send + 'static,
        F::Output: Send + 'static,
    {
        self.inner.spawn(future)
    }

    /// Spawns a `Send` future on worker `worker` (`0..num_workers()`), where it runs for
    /// its whole life: its I/O sources registered by its first waits, its timers and its
    /// wakes stay on that worker's thread and reactor. A server uses this to serve a
    /// connection where it was accepted, or to start something on every worker.
    ///
    /// # Errors
    ///
    /// [`NoSuchWorker`] if `worker` is not one of this runtime's (the future is dropped).
    ///
    /// ```
    /// let rt = epitome_runtime::runtime::Builder::new_multi_reactor().reactors(2).build()?;
    /// let on_1 = rt.handle().spawn_on(1, async { epitome_runtime::runtime::worker_index() });
    /// assert_eq!(rt.block_on(on_1.unwrap()).unwrap(), Some(1));
    /// assert!(rt.handle().spawn_on(2, async {}).is_err());
    /// # Ok::<_, std::io::Error>(())
    /// ```
    pub fn spawn_on<F>(
        &self,
        worker: usize,
        future: F,
    ) -> Result<JoinHandle<F::Output>, NoSuchWorker>
    where
        F: Future + Send + 'static,
        F::Output: Send + 'static,
    {
        self.inner.spawn_on(worker, future).ok_or(NoSuchWorker {
            index: worker,
            workers: self.inner.workers.len(),
        })
    }

    /// Spawns `make(i)` on every worker `i` (see [`spawn_on`](Self::spawn_on)): one accept
    /// loop per worker, say. Returns the handles in worker order.
    ///
    /// ```
    /// let rt = epitome_runtime::runtime::Builder::new_multi_reactor().reactors(3).build()?;
    /// let handles = rt.handle().spawn_on_each(|i| async move { i * 10 });
    /// let out: Vec<usize> = rt.block_on(async {
    ///     let mut out = Vec::new();
    ///     for h in handles {
    ///         out.push(h.await.unwrap());
    ///     }
    ///     out
    /// });
    /// assert_eq!(out, [0, 10, 20]);
    /// # Ok::<_, std::io::Error>(())
    /// ```
    pub fn spawn_on_each<F, Fut>(&self, mut make: F) -> Vec<JoinHandle<Fut::Output>>
    where
        F: FnMut(usize) -> Fut,
        Fut: Future + Send + 'static,
        Fut::Output: Send + 'static,
    {
        (0..self.inner.workers.len())
            .filter_map(|i| self.inner.spawn_on(i, make(i)))
            .collect()
    }

    /// The number of workers: 1 for a current-thread runtime, the reactor count of a
    /// multi-reactor one.
    pub fn num_workers(&self) -> usize {
        self.inner.workers.len()
    }

    /// Runs a blocking closure on this runtime's blocking pool.
    pub fn spawn_blocking<F, R>(&self, f: F) -> JoinHandle<R>
    where
        F: FnOnce() -> R + Send + 'static,
        R: Send + 'static,
    {
        self.inner.blocking.spawn(f)
    }

    /// Blocks this thread on `future` with the runtime entered (spawns inside it go to
    /// this runtime). It does not drive a current-thread runtime: its timers, I/O and
    /// tasks make progress only while a thread is in [`Runtime::block_on`] (as with
    /// tokio).
    ///
    /// # Panics
    ///
    /// If this thread is already driving a runtime.
    #[track_caller]
    pub fn block_on<F: Future>(&self, future: F) -> F::Output {
        if context::is_driving() {
            panic!("{NESTED}");
        }
        let _enter = context::enter(self.inner.clone());
        let _driving = context::set_driving(context::Driving::Future);
        park_on(future)
    }

    /// Enters the runtime on this thread until the guard drops: `spawn`,
    /// `Handle::current()` and I/O registration then use it. Guards nest, and must be
    /// dropped in the reverse order (see [`EnterGuard`]).
    pub fn enter(&self) -> EnterGuard<'_> {
        EnterGuard {
            _guard: context::enter(self.inner.clone()),
            _handle: std::marker::PhantomData,
        }
    }

    /// The runtime's counters.
    pub fn metrics(&self) -> RuntimeMetrics {
        RuntimeMetrics::new(self.inner.clone())
    }
}

/// [`Handle::spawn_on`] named a worker the runtime does not have.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct NoSuchWorker {
    index: usize,
    workers: usize,
}

impl fmt::Display for NoSuchWorker {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "no worker {}: the runtime has {} (0..{})",
            self.index, self.workers, self.workers
        )
    }
}

impl std::error::Error for NoSuchWorker {}

/// The index of the worker running on this thread in its runtime (`0..num_workers()`),
/// or `None` off the workers (a multi-reactor runtime's `block_on` thread, a blocking
/// pool thread, a thread outside every runtime). A current-thread runtime's one worker
/// is 0 inside its `block_on`.
pub fn worker_index() -> Option<usize> {
    context::runtime()?.current_worker()
}

impl fmt::Debug for Handle {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Handle")
            .field("id", &self.id())
            .field("flavor", &self.inner.kind)
            .finish()
    }
}
