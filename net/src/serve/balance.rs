//! `Balanced`: the exclusive listener, with load awareness (nginx's `accept_disabled`).
//!
//! The kernel gives a connection on an `EPOLLEXCLUSIVE` listener to the first reactor
//! in the listener's wait list that has a thread waiting, in the order the reactors
//! registered. When connections arrive one at a time every reactor is idle, so the
//! first one takes them all (Jain's fairness 1/n), and since tasks never move between
//! workers, the imbalance lasts as long as the connections.
//!
//! So a worker whose live connections exceed the mean by more than [`SLACK`] pauses:
//! its reactor leaves the listener's wait list (`SharedAsync::pause`, one
//! `epoll_ctl`), and the next idle reactor in the list gets the next connection. A
//! paused worker is resumed once its count is back to the mean: by whichever worker's
//! accept brings the mean up to it, or by its own connections closing. Resuming puts
//! the reactor back at the end of the wait list with one `epoll_ctl` from any thread,
//! without waking it. So the spread stays within a connection or two of even, and each
//! connection still costs one wakeup: pausing and resuming wake nobody.
//!
//! # State
//!
//! Each worker's state (`ACTIVE`, `PAUSED`, or `CHANGING` while one thread pauses or
//! resumes it) is one atomic: the compare-and-swap into `CHANGING` makes that thread
//! the only one changing the worker's registration; the registration itself is
//! guarded in `SharedAsync`.

use std::sync::Weak;
use std::sync::atomic::{AtomicU8, Ordering};

use super::tracker::Tracker;
use crate::TcpListener;

/// How many connections above the mean a worker may hold before it pauses.
const SLACK: usize = 1;

const ACTIVE: u8 = 0;
const PAUSED: u8 = 1;
const CHANGING: u8 = 2;

#[derive(Debug)]
pub(super) struct Balance {
    /// Weak: connections (which close through here) must not keep the listener open
    /// after a graceful shutdown closed it.
    listener: Weak<TcpListener>,
    state: Box<[AtomicU8]>,
}

/// Whether `live` exceeds the mean of `total` over `workers` by more than the slack.
fn over_share(live: usize, total: usize, workers: usize) -> bool {
    live * workers > total + SLACK * workers
}

/// Whether `live` is no more than the mean of `total` over `workers`.
fn caught_up(live: usize, total: usize, workers: usize) -> bool {
    live * workers <= total
}

impl Balance {
    pub(super) fn new(listener: Weak<TcpListener>, workers: usize) -> Balance {
        Balance {
            listener,
            state: (0..workers).map(|_| AtomicU8::new(ACTIVE)).collect(),
        }
    }

    /// Whether `worker` is paused: its accept loop waits to be handed an event
    /// instead of accepting.
    pub(super) fn is_paused(&self, worker: usize) -> bool {
        self.state[worker].load(Ordering::Acquire) == PAUSED
    }

    /// `worker` accepted a connection (counted already): resumes the paused workers
    /// that are back at the mean, and pauses `worker` if it is over its share. A
    /// paused worker that accepted (it was handed an event) passes any rest on.
    pub(super) fn accepted(&self, tracker: &Tracker, listener: &TcpListener, worker: usize) {
        let workers = tracker.workers();
        if workers < 2 {
            return;
        }
        let total = tracker.total();
        for other in (0..workers).filter(|&w| w != worker) {
            if self.is_paused(other) && caught_up(tracker.live(other), total, workers) {
                self.resume(listener, other);
            }
        }
        match self.state[worker].load(Ordering::Acquire) {
            PAUSED => listener.shared().pass_on(worker),
            ACTIVE if over_share(tracker.live(worker), total, workers) => {
                self.pause(listener, worker);
            }
            _ => {}
        }
    }

    /// A connection of `worker` closed: a paused worker back at the mean resumes.
    pub(super) fn closed(&self, tracker: &Tracker, worker: usize) {
        if !self.is_paused(worker)
            || !caught_up(tracker.live(worker), tracker.total(), tracker.workers())
        {
            return;
        }
        if let Some(listener) = self.listener.upgrade() {
            self.resume(&listener, worker);
        }
    }

    fn pause(&self, listener: &TcpListener, worker: usize) {
        let state = &self.state[worker];
        if state
            .compare_exchange(ACTIVE, CHANGING, Ordering::AcqRel, Ordering::Acquire)
            .is_err()
        {
            return;
        }
        // Refused (the last active worker) or failed: it goes on accepting.
        let paused = matches!(listener.shared().pause(worker), Ok(true));
        state.store(if paused { PAUSED } else { ACTIVE }, Ordering::Release);
    }

    fn resume(&self, listener: &TcpListener, worker: usize) {
        let state = &self.state[worker];
        if state
            .compare_exchange(PAUSED, CHANGING, Ordering::AcqRel, Ordering::Acquire)
            .is_err()
        {
            return;
        }
        // Failed (no memory for the registration): it stays paused, and the next
        // accept or close tries again.
        let resumed = listener.shared().resume(worker).is_ok();
        state.store(if resumed { ACTIVE } else { PAUSED }, Ordering::Release);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shares() {
        // 8 workers, 16 connections: a mean of 2.
        assert!(!over_share(3, 16, 8));
        assert!(over_share(4, 16, 8));
        assert!(caught_up(2, 16, 8));
        assert!(!caught_up(3, 16, 8));
        // The first connections: one ahead is allowed, two is not.
        assert!(!over_share(1, 1, 8));
        assert!(over_share(2, 2, 8));
    }
}
