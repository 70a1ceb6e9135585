//! Schedulers: the workers that run tasks, how spawns reach them, and shutdown.
//!
//! Both runtimes are made of the same [`worker`]s. A task belongs to the worker that
//! spawned it and only ever runs there; a spawn from outside the runtime's workers
//! goes to a worker chosen round-robin (see [`RuntimeShared::pick_worker`]).

pub(crate) mod block_in_place;
pub(crate) mod context;
pub(crate) mod local_set;
pub(crate) mod metrics;
pub(crate) mod owned;
pub(crate) mod park;
pub(crate) mod queue;
pub(crate) mod worker;

use std::future::Future;

use crate::blocking::{BlockingPool, PoolRuntime};
use crate::loom::os::sync::Arc;
use crate::loom::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use crate::reactor::ReactorHandle;
use crate::reactor::context::PickReactor;
use crate::task_core::{JoinHandle, new_task};
use owned::cancel_unbound;
use worker::WorkerShared;

/// Which runtime this is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Kind {
    CurrentThread,
    MultiReactor,
}

/// Everything the runtime's handles share.
pub(crate) struct RuntimeShared {
    /// The runtime's id (`runtime::Id`), unique in the process.
    pub(crate) id: std::num::NonZeroU64,
    /// The name given with `Builder::name`.
    pub(crate) name: Option<String>,
    pub(crate) kind: Kind,
    pub(crate) workers: Box<[Arc<WorkerShared>]>,
    pub(crate) blocking: BlockingPool,
    next_worker: AtomicUsize,
    /// A separate rotation for timers and I/O sources made off the workers, so they do
    /// not skew where spawns go.
    next_resource_worker: AtomicUsize,
    pub(crate) event_interval: u32,
    pub(crate) shutdown: AtomicBool,
}

impl RuntimeShared {
    pub(crate) fn new(
        kind: Kind,
        name: Option<String>,
        workers: Box<[Arc<WorkerShared>]>,
        blocking: BlockingPool,
        event_interval: u32,
    ) -> RuntimeShared {
        static NEXT_ID: crate::loom::os::sync::atomic::AtomicU64 =
            crate::loom::os::sync::atomic::AtomicU64::new(1);
        let id = loop {
            // Zero only after the counter wraps: skip it.
            let next = NEXT_ID.fetch_add(1, crate::loom::os::sync::atomic::Ordering::Relaxed);
            if let Some(id) = std::num::NonZeroU64::new(next) {
                break id;
            }
        };
        RuntimeShared {
            id,
            name,
            kind,
            workers,
            blocking,
            next_worker: AtomicUsize::new(0),
            next_resource_worker: AtomicUsize::new(0),
            event_interval,
            shutdown: AtomicBool::new(false),
        }
    }

    /// The worker a spawn from outside the workers goes to: round-robin. (Measured
    /// against least-loaded, the queue-length reads cost more than the balance they
    /// buy for spawns, which are cheap and short-lived; see the scheduler benchmark.)
    pub(crate) fn pick_worker(&self) -> &Arc<WorkerShared> {
        let i = self.next_worker.fetch_add(1, Ordering::Relaxed);
        &self.workers[i % self.workers.len()]
    }

    /// The worker whose wheel or reactor gets a timer or I/O source created on a thread
    /// that runs no worker: round-robin too, on its own rotation.
    pub(crate) fn pick_resource_worker(&self) -> &Arc<WorkerShared> {
        let i = self.next_resource_worker.fetch_add(1, Ordering::Relaxed);
        &self.workers[i % self.workers.len()]
    }

    /// The index of `worker` among this runtime's workers.
    pub(crate) fn index_of(&self, worker: &Arc<WorkerShared>) -> usize {
        self.workers
            .iter()
            .position(|w| Arc::ptr_eq(w, worker))
            .unwrap_or(0)
    }

    /// Spawns a `Send` future: on this thread's worker if it belongs to this runtime,
    /// else on a picked worker through its remote queue.
    pub(crate) fn spawn<F>(self: &Arc<Self>, future: F) -> JoinHandle<F::Output>
    where
        F: Future + Send + 'static,
        F::Output: Send + 'static,
    {
        let future = match worker::with_worker(|w| match w {
            Some(local) if self.workers.iter().any(|s| Arc::ptr_eq(s, &local.shared)) => {
                Err(local.spawn(future))
            }
            _ => Ok(future),
        }) {
            Ok(f) => f,
            Err(handle) => return handle,
        };
        self.spawn_remote(self.pick_worker(), future)
    }

    /// Spawns a `Send` future on worker `index` (on this thread if it runs that
    /// worker); `None` if there is no such worker.
    pub(crate) fn spawn_on<F>(
        self: &Arc<Self>,
        index: usize,
        future: F,
    ) -> Option<JoinHandle<F::Output>>
    where
        F: Future + Send + 'static,
        F::Output: Send + 'static,
    {
        let worker = self.workers.get(index)?;
        let future = match worker::with_worker(|w| match w {
            Some(local) if Arc::ptr_eq(worker, &local.shared) => Err(local.spawn(future)),
            _ => Ok(future),
        }) {
            Ok(f) => f,
            Err(handle) => return Some(handle),
        };
        Some(self.spawn_remote(worker, future))
    }

    /// Spawns `future` on `worker` through its remote queue.
    fn spawn_remote<F>(&self, worker: &Arc<WorkerShared>, future: F) -> JoinHandle<F::Output>
    where
        F: Future + Send + 'static,
        F::Output: Send + 'static,
    {
        let (notified, handle) = new_task(future, worker.clone());
        worker.metrics.spawned.fetch_add(1, Ordering::Relaxed);
        worker.metrics.remote_spawns.fetch_add(1, Ordering::Relaxed);
        if let Err(notified) = worker.push_remote(notified) {
            // The runtime is shutting down: cancel the task here, so its future is
            // dropped and awaiting the handle reports cancellation.
            cancel_unbound(notified);
        }
        handle
    }

    /// The index of the worker that runs on this thread, if it is one of this
    /// runtime's.
    pub(crate) fn current_worker(&self) -> Option<usize> {
        worker::with_worker(|w| {
            let local = w?;
            self.workers
                .iter()
                .position(|s| Arc::ptr_eq(s, &local.shared))
        })
    }
}

impl PoolRuntime for RuntimeShared {
    fn run_entered(self: Arc<Self>, f: &mut dyn FnMut()) {
        let _entered = context::enter(self);
        f();
    }
}

impl PickReactor for RuntimeShared {
    fn pick_reactor(&self) -> (usize, crate::loom::sync::Arc<ReactorHandle>) {
        let w = self.pick_resource_worker();
        (self.index_of(w), w.reactor.clone())
    }

    fn is_shut_down(&self) -> bool {
        self.shutdown.load(Ordering::Acquire)
    }
}

/// `spawn_local`: a `!Send` future on this thread's worker; the future back if no
/// worker runs on this thread.
pub(crate) fn spawn_local<F>(future: F) -> Result<JoinHandle<F::Output>, F>
where
    F: Future + 'static,
    F::Output: 'static,
{
    worker::with_worker(|w| match w {
        Some(local) => {
            if local.lent.get() {
                panic!(
                    "`spawn_local` called in a task a stand-in thread runs while another task of \
                     its worker blocks in `block_in_place`: the `!Send` task would be tied to the \
                     stand-in's thread. Use a `task::LocalSet`, or `spawn_blocking` instead of \
                     `block_in_place`"
                );
            }
            if local.pinned.get().is_none() {
                local
                    .pinned
                    .set(Some(crate::loom::os::thread::current().id()));
            }
            Ok(local.spawn(future))
        }
        None => Err(future),
    })
}
