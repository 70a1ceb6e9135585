//! `RuntimeMetrics`: counters of the scheduler and reactors, cheap enough to leave on.

use std::fmt;

use crate::loom::os::sync::Arc;
use crate::loom::sync::atomic::Ordering;
use crate::scheduler::RuntimeShared;

/// A view of a runtime's counters. Each read sums the workers' counters at that
/// moment; counters only grow, except the gauges (alive tasks, blocking threads).
#[derive(Clone)]
pub struct RuntimeMetrics {
    rt: Arc<RuntimeShared>,
}

impl RuntimeMetrics {
    pub(crate) fn new(rt: Arc<RuntimeShared>) -> RuntimeMetrics {
        RuntimeMetrics { rt }
    }

    fn sum(&self, f: impl Fn(&crate::scheduler::metrics::WorkerMetrics) -> u64) -> u64 {
        self.rt.workers.iter().map(|w| f(&w.metrics)).sum()
    }

    fn worker(&self, i: usize) -> &crate::scheduler::metrics::WorkerMetrics {
        &self.rt.workers[i].metrics
    }

    /// Number of workers (reactors).
    pub fn num_workers(&self) -> usize {
        self.rt.workers.len()
    }

    /// Tasks spawned since the runtime started (not counting blocking closures).
    pub fn spawned_tasks_count(&self) -> u64 {
        self.sum(|m| m.spawned.load(Ordering::Relaxed))
    }

    /// Tasks spawned and not yet completed.
    pub fn num_alive_tasks(&self) -> u64 {
        let spawned = self.spawned_tasks_count();
        let done = self.sum(|m| m.completed.load(Ordering::Relaxed));
        spawned.saturating_sub(done)
    }

    /// Task polls, all workers.
    pub fn total_polls_count(&self) -> u64 {
        self.sum(|m| m.polls.get())
    }

    /// Task polls of worker `i`.
    pub fn worker_poll_count(&self, i: usize) -> u64 {
        self.worker(i).polls.get()
    }

    /// Wakes made on the woken task's own worker thread (straight to its local queue).
    pub fn local_schedule_count(&self) -> u64 {
        self.sum(|m| m.local_schedules.get())
    }

    /// Wakes and spawns from other threads (through a worker's remote queue).
    pub fn remote_schedule_count(&self) -> u64 {
        self.sum(|m| m.remote_schedules.load(Ordering::Relaxed))
    }

    /// All task wakeups: local plus remote schedules.
    pub fn wakeup_count(&self) -> u64 {
        self.local_schedule_count() + self.remote_schedule_count()
    }

    /// Times a worker went to sleep in its reactor.
    pub fn total_park_count(&self) -> u64 {
        self.sum(|m| m.parks.get())
    }

    /// Times worker `i` went to sleep.
    pub fn worker_park_count(&self, i: usize) -> u64 {
        self.worker(i).parks.get()
    }

    /// Times worker `i` went to sleep plus times it woke up (tokio's count): odd while
    /// the worker sleeps, even while it is awake.
    pub fn worker_park_unpark_count(&self, i: usize) -> u64 {
        let parks = self.worker(i).parks.get();
        let asleep = !self.rt.workers[i].is_awake();
        (2 * parks).saturating_sub(u64::from(asleep))
    }

    /// Tasks spawned or woken from outside the workers and not yet taken by their
    /// worker: the sum of the workers' remote queues (epitome has no global queue;
    /// this is the nearest thing to tokio's).
    pub fn global_queue_depth(&self) -> usize {
        self.rt.workers.iter().map(|w| w.remote_depth()).sum()
    }

    /// Reactor waits (blocking or not), all workers; a worker standing in for a sibling
    /// stuck in a task counts its waits on that sibling's reactor as its own.
    pub fn reactor_wait_count(&self) -> u64 {
        self.sum(|m| m.reactor_waits.get())
    }

    /// Events the reactors' waits returned.
    pub fn reactor_event_count(&self) -> u64 {
        self.sum(|m| m.events.get())
    }

    /// Mean events per reactor wait.
    pub fn events_per_wait(&self) -> f64 {
        let waits = self.reactor_wait_count();
        if waits == 0 {
            0.0
        } else {
            self.reactor_event_count() as f64 / waits as f64
        }
    }

    /// Resource polls answered `Pending` because a task had spent its budget.
    pub fn budget_forced_yield_count(&self) -> u64 {
        self.sum(|m| m.forced_yields.load(Ordering::Relaxed))
    }

    /// I/O sources registered with the reactors now.
    pub fn num_registered_sources(&self) -> usize {
        self.rt.workers.iter().map(|w| w.reactor.registered()).sum()
    }

    /// I/O sources registered with worker `i`'s reactor now: its live connections, for
    /// a server (a connection registers at its first wait).
    ///
    /// # Panics
    ///
    /// If `i` is not below [`num_workers`](Self::num_workers), as tokio's per-worker
    /// metrics.
    pub fn worker_registered_sources(&self, i: usize) -> usize {
        self.rt.workers[i].reactor.registered()
    }

    /// Tasks spawned on worker `i` and not yet completed.
    ///
    /// # Panics
    ///
    /// If `i` is not below [`num_workers`](Self::num_workers).
    pub fn worker_alive_tasks(&self, i: usize) -> u64 {
        let m = self.worker(i);
        let spawned = m.spawned.load(Ordering::Relaxed);
        spawned.saturating_sub(m.completed.load(Ordering::Relaxed))
    }

    /// Of [`remote_schedule_count`](Self::remote_schedule_count), the spawns: the rest
    /// are wakes that crossed threads (a task woken from a thread other than its
    /// worker's, such as by an event another worker's reactor dispatched).
    pub fn remote_spawn_count(&self) -> u64 {
        self.sum(|m| m.remote_spawns.load(Ordering::Relaxed))
    }

    /// Timers pending in the workers' wheels now.
    pub fn num_pending_timers(&self) -> usize {
        self.rt.workers.iter().map(|w| w.timer.pending()).sum()
    }

    /// Threads in the blocking pool.
    pub fn num_blocking_threads(&self) -> usize {
        self.rt.blocking.threads()
    }

    /// Idle threads in the blocking pool.
    pub fn num_idle_blocking_threads(&self) -> usize {
        self.rt.blocking.idle_threads()
    }

    /// Blocking closures waiting for a thread.
    pub fn blocking_queue_depth(&self) -> usize {
        self.rt.blocking.queue_depth()
    }
}

impl fmt::Debug for RuntimeMetrics {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RuntimeMetrics")
            .field("workers", &self.num_workers())
            .field("spawned", &self.spawned_tasks_count())
            .field("alive", &self.num_alive_tasks())
            .field("polls", &self.total_polls_count())
            .field("local_schedules", &self.local_schedule_count())
            .field("remote_schedules", &self.remote_schedule_count())
            .field("parks", &self.total_park_count())
            .field("reactor_waits", &self.reactor_wait_count())
            .field("events_per_wait", &self.events_per_wait())
            .field("forced_yields", &self.budget_forced_yield_count())
            .finish()
    }
}
