//! Per-worker counters, cheap enough to leave on.
//!
//! Counters written only by the worker's own thread use a plain load and store (no
//! read-modify-write, so no locked instruction on x86); counters other threads write
//! use `fetch_add`. Readers sum them with relaxed loads: the figures are statistics,
//! not synchronisation.

use crate::loom::sync::atomic::{AtomicU64, Ordering};

/// A counter with a single writer thread.
#[derive(Debug, Default)]
pub(crate) struct LocalCounter(AtomicU64);

impl LocalCounter {
    /// Adds one; only the owning worker's thread calls this.
    pub(crate) fn incr_local(&self) {
        self.add_local(1);
    }

    pub(crate) fn add_local(&self, n: u64) {
        self.0.store(
            self.0.load(Ordering::Relaxed).wrapping_add(n),
            Ordering::Relaxed,
        );
    }

    pub(crate) fn get(&self) -> u64 {
        self.0.load(Ordering::Relaxed)
    }
}

#[derive(Debug, Default)]
pub(crate) struct WorkerMetrics {
    /// Tasks spawned onto this worker (from any thread).
    pub(crate) spawned: AtomicU64,
    /// Tasks of this worker that completed (finished, panicked, cancelled).
    pub(crate) completed: AtomicU64,
    /// Task polls.
    pub(crate) polls: LocalCounter,
    /// Wakes from this worker's own thread (straight to the local queue).
    pub(crate) local_schedules: LocalCounter,
    /// Wakes and spawns from other threads (through the remote queue).
    pub(crate) remote_schedules: AtomicU64,
    /// Of those, spawns (the rest are wakes of this worker's tasks from other threads).
    pub(crate) remote_spawns: AtomicU64,
    /// Times the worker went to sleep in its reactor.
    pub(crate) parks: LocalCounter,
    /// Reactor waits (blocking or not), including this worker's non-blocking waits on
    /// the reactor of a sibling stuck in a task.
    pub(crate) reactor_waits: LocalCounter,
    /// Events those waits returned.
    pub(crate) events: LocalCounter,
    /// Resource polls answered `Pending` because a task's budget ran out.
    pub(crate) forced_yields: AtomicU64,
}

impl WorkerMetrics {
    /// One reactor wait that returned `events` events; only the owning worker's thread
    /// calls this.
    pub(crate) fn count_wait(&self, events: usize) {
        self.reactor_waits.incr_local();
        self.events.add_local(events as u64);
    }
}
