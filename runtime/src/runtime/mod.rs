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
//! The API follows tokio's, so switching is mostly a change of imports.

mod builder;
mod metrics;

use std::fmt;
use std::future::Future;
use std::task::{Context, Poll, Wake, Waker};
use std::time::Duration;

pub use builder::Builder;
pub use metrics::RuntimeMetrics;

use crate::loom::os::sync::atomic::AtomicBool;
use crate::loom::os::sync::{Arc, Condvar, Mutex};
use crate::loom::os::thread;
use crate::loom::sync::atomic::Ordering;
use crate::scheduler::worker::Core;
use crate::scheduler::{Kind, RuntimeShared, context};
use crate::task::JoinHandle;

/// A running runtime. Dropping it shuts it down: every task is cancelled (its future
/// dropped, so its fds close), the worker threads exit, and the blocking pool waits for
/// closures already running.
pub struct Runtime {
    handle: Handle,
    flavor: Flavor,
}

enum Flavor {
    /// The single worker's loop state, taken by whichever thread drives it.
    CurrentThread {
        core: Mutex<Option<Box<Core>>>,
        core_returned: Condvar,
    },
    MultiReactor {
        threads: Mutex<Vec<thread::JoinHandle<()>>>,
    },
}

/// A cheap, clonable reference to a runtime: spawn onto it, enter it, read its
/// metrics.
#[derive(Clone)]
pub struct Handle {
    pub(crate) inner: Arc<RuntimeShared>,
}

/// Returned by [`Handle::try_current`] off any runtime.
#[derive(Debug)]
pub struct TryCurrentError(());

impl fmt::Display for TryCurrentError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("there is no epitome runtime on this thread")
    }
}

impl std::error::Error for TryCurrentError {}

/// Keeps a runtime entered on this thread until dropped (see [`Handle::enter`]).
pub struct EnterGuard<'a> {
    _guard: context::EnterGuard,
    _handle: std::marker::PhantomData<&'a Handle>,
}

const NESTED: &str = "Cannot start a runtime from within a runtime: `block_on` was called on a thread that \
     is already driving an epitome runtime (a worker, or inside another `block_on`). Use `.await` \
     instead, or `spawn_blocking` to leave the runtime first.";

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
                core: Mutex::new(core),
                core_returned: Condvar::new(),
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
    /// and tasks) while it waits. On a multi-reactor runtime the workers do that, and
    /// this thread only sleeps until the future can make progress. Spawning inside the
    /// future spawns onto this runtime.
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
            Flavor::CurrentThread {
                core,
                core_returned,
            } => {
                let mut slot = core.lock().unwrap_or_else(|e| e.into_inner());
                // Another thread drives the runtime: wait for it to hand the core back.
                while slot.is_none() {
                    slot = core_returned.wait(slot).unwrap_or_else(|e| e.into_inner());
                }
                let taken = slot.take();
                drop(slot);
                let Some(taken) = taken else {
                    unreachable!("waited for the core")
                };
                // Give the core back even if the future panics.
                struct Return<'a>(&'a Mutex<Option<Box<Core>>>, &'a Condvar, Option<Box<Core>>);
                impl Drop for Return<'_> {
                    fn drop(&mut self) {
                        *self.0.lock().unwrap_or_else(|e| e.into_inner()) = self.2.take();
                        self.1.notify_one();
                    }
                }
                let ret = Return(core, core_returned, Some(taken));
                let Some(core) = ret.2.as_deref() else {
                    unreachable!("just stored")
                };
                if let Some(owner) = core.local.pinned.get() {
                    if owner != thread::current().id() {
                        drop(ret);
                        panic!(
                            "this current-thread runtime has `!Send` tasks spawned with `spawn_local` on \
                             thread {owner:?}; only that thread may drive it with `block_on`"
                        );
                    }
                }
                let _enter = context::enter_worker(self.handle.inner.clone(), &core.local);
                core.block_on(self.handle.inner.event_interval, future)
            }
            Flavor::MultiReactor { .. } => {
                let _enter = context::enter_driving(self.handle.inner.clone());
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
            Flavor::CurrentThread { core, .. } => {
                // No `block_on` can hold the core: they borrow the runtime, which is
                // being consumed.
                let taken = core.lock().unwrap_or_else(|e| e.into_inner()).take();
                if let Some(core) = taken {
                    let foreign = core
                        .local
                        .pinned
                        .get()
                        .is_some_and(|owner| owner != thread::current().id());
                    if foreign {
                        // `!Send` futures may not be dropped on this thread, and their
                        // own thread no longer drives the runtime: leak them (and the
                        // worker) rather than drop them here.
                        std::mem::forget(core);
                    } else {
                        let enter = context::enter_worker(rt.clone(), &core.local);
                        core.local.shutdown();
                        drop(enter);
                        drop(core);
                    }
                }
            }
            Flavor::MultiReactor { threads } => {
                for w in rt.workers.iter() {
                    w.shutdown.store(true, Ordering::Release);
                    w.unpark();
                }
                let threads =
                    std::mem::take(&mut *threads.lock().unwrap_or_else(|e| e.into_inner()));
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

impl Drop for Runtime {
    fn drop(&mut self) {
        self.shutdown(None);
    }
}

impl fmt::Debug for Runtime {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Runtime")
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
        context::runtime()
            .map(|inner| Handle { inner })
            .ok_or(TryCurrentError(()))
    }

    /// Spawns a `Send` future. On one of this runtime's worker threads it goes to that
    /// worker's local queue; elsewhere, to a worker chosen round-robin.
    pub fn spawn<F>(&self, future: F) -> JoinHandle<F::Output>
    where
        F: Future + Send + 'static,
        F::Output: Send + 'static,
    {
        self.inner.spawn(future)
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
    /// this runtime). It does not drive a current-thread runtime's reactor: use
    /// [`Runtime::block_on`] for that.
    ///
    /// # Panics
    ///
    /// If this thread is already driving a runtime.
    #[track_caller]
    pub fn block_on<F: Future>(&self, future: F) -> F::Output {
        if context::is_driving() {
            panic!("{NESTED}");
        }
        let _enter = context::enter_driving(self.inner.clone());
        park_on(future)
    }

    /// Enters the runtime on this thread until the guard drops: `spawn`,
    /// `Handle::current()` and I/O registration then use it.
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

impl fmt::Debug for Handle {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Handle")
            .field("flavor", &self.inner.kind)
            .finish()
    }
}

/// Blocks this thread until `future` completes, sleeping between polls.
fn park_on<F: Future>(future: F) -> F::Output {
    struct ThreadWaker {
        thread: thread::Thread,
        woken: AtomicBool,
    }
    impl Wake for ThreadWaker {
        fn wake(self: Arc<Self>) {
            self.wake_by_ref();
        }
        fn wake_by_ref(self: &Arc<Self>) {
            self.woken.store(true, Ordering::Release);
            self.thread.unpark();
        }
    }
    let waker_state = Arc::new(ThreadWaker {
        thread: thread::current(),
        woken: AtomicBool::new(false),
    });
    let waker = Waker::from(waker_state.clone());
    let mut cx = Context::from_waker(&waker);
    let mut future = std::pin::pin!(future);
    loop {
        if let Poll::Ready(out) = future.as_mut().poll(&mut cx) {
            return out;
        }
        while !waker_state.woken.swap(false, Ordering::AcqRel) {
            thread::park();
        }
    }
}
