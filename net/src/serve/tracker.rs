//! The server's live connections, per worker: what `Balanced` and `MainSub`'s
//! least-loaded pick look at, and what a graceful shutdown waits for.
//!
//! `live[i]` and `total` are changed with atomics by whoever opens a connection (the
//! accepting task) and by the connection's task when it ends ([`Live`]'s drop); they
//! are read without a lock, so a reader may see one connection's open or close late,
//! which only makes a balancing decision one connection off. `closed` holds the task
//! waiting for the count to reach zero.

use std::future::{Future, poll_fn};
use std::pin::Pin;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, Weak};
use std::task::{Context, Poll, Waker};

use super::balance::Balance;
use crate::TcpListener;

/// One worker's count, on its own cache line (each is written by its worker).
#[derive(Debug, Default)]
#[repr(align(64))]
struct Count(AtomicUsize);

#[derive(Debug)]
pub(super) struct Tracker {
    live: Box<[Count]>,
    /// The sum of `live`, kept apart: the close that brings it to zero must know it did
    /// (one `fetch_sub`), which a sum of per-worker counts read without a lock cannot
    /// tell.
    total: AtomicUsize,
    /// The graceful shutdown's task, waiting for `total` to reach zero.
    closed: Mutex<Option<Waker>>,
    /// `Balanced`'s pausing and resuming of workers.
    pub(super) balance: Option<Balance>,
}

impl Tracker {
    /// Counts for `workers` workers; with the shared listener's handle if the
    /// strategy is `Balanced`.
    pub(super) fn new(workers: usize, balanced: Option<Weak<TcpListener>>) -> Tracker {
        Tracker {
            live: (0..workers).map(|_| Count::default()).collect(),
            total: AtomicUsize::new(0),
            closed: Mutex::new(None),
            balance: balanced.map(|listener| Balance::new(listener, workers)),
        }
    }

    /// Counts a new connection served by `worker` until the returned value drops.
    pub(super) fn open(this: &Arc<Tracker>, worker: usize) -> Live {
        this.live[worker].0.fetch_add(1, Ordering::Relaxed);
        this.total.fetch_add(1, Ordering::SeqCst);
        Live {
            tracker: this.clone(),
            worker,
        }
    }

    pub(super) fn workers(&self) -> usize {
        self.live.len()
    }

    /// `worker`'s live connections.
    pub(super) fn live(&self, worker: usize) -> usize {
        self.live[worker].0.load(Ordering::Relaxed)
    }

    /// Every worker's live connections.
    pub(super) fn total(&self) -> usize {
        self.total.load(Ordering::Relaxed)
    }

    /// The worker with the fewest live connections, looking from `start` on (so ties
    /// go round).
    pub(super) fn least_loaded(&self, start: usize) -> usize {
        let n = self.live.len();
        (0..n)
            .map(|k| (start + k) % n)
            .min_by_key(|&i| self.live(i))
            .unwrap_or(0)
    }

    /// Completes once no connection is live.
    pub(super) async fn all_closed(&self) {
        poll_fn(|cx| {
            *self.closed.lock().unwrap_or_else(|e| e.into_inner()) = Some(cx.waker().clone());
            // Read after the waker is in place: a close that brings the count to zero
            // after this finds it (the mutex orders the two).
            if self.total.load(Ordering::SeqCst) == 0 {
                Poll::Ready(())
            } else {
                Poll::Pending
            }
        })
        .await;
    }

    fn close(&self, worker: usize) {
        self.live[worker].0.fetch_sub(1, Ordering::Relaxed);
        if self.total.fetch_sub(1, Ordering::SeqCst) == 1 {
            let waiting = self.closed.lock().unwrap_or_else(|e| e.into_inner()).take();
            if let Some(w) = waiting {
                w.wake();
            }
        }
        if let Some(balance) = &self.balance {
            balance.closed(self, worker);
        }
    }
}

/// A live connection, counted until dropped.
#[derive(Debug)]
pub(super) struct Live {
    tracker: Arc<Tracker>,
    worker: usize,
}

impl Drop for Live {
    fn drop(&mut self) {
        self.tracker.close(self.worker);
    }
}

/// A handler's future, counted as one of its worker's live connections until it is
/// dropped (the task drops it on completion, cancellation, or a runtime shutdown).
///
/// A struct, not `async move { let _live = live; handling.await }`: an async block
/// keeps the captured future and the future it awaits in separate fields, so every
/// connection's task would hold the handler's state twice (hundreds of bytes each,
/// `docs/server-models.md`).
pub(super) struct Counted<F> {
    handling: F,
    _live: Live,
}

impl<F> Counted<F> {
    pub(super) fn new(handling: F, live: Live) -> Counted<F> {
        Counted {
            handling,
            _live: live,
        }
    }
}

impl<F: Future> Future for Counted<F> {
    type Output = ();

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        // SAFETY: `handling` is pinned structurally: it is never moved out of a pinned
        // `Counted`, which has no `Drop` of its own and is `Unpin` only if `F` is.
        let handling = unsafe { self.map_unchecked_mut(|c| &mut c.handling) };
        handling.poll(cx).map(drop)
    }
}
