//! Park and unpark: the decision to sleep, raced against wakes from other threads.
//!
//! A worker sleeps in its reactor's wait. Another thread that queues work for it calls
//! [`ParkState::notify`]; only a notify that finds the worker `PARKED` has to write the
//! unpark eventfd, so any number of notifies during one park cost one write. A notify
//! that comes before the worker commits to parking leaves `NOTIFIED`, and the worker's
//! [`try_park`](ParkState::try_park) then refuses to sleep. The loom model `park`
//! checks that no interleaving sleeps through a notify.

use crate::loom::sync::atomic::{AtomicUsize, Ordering};

const EMPTY: usize = 0;
const PARKED: usize = 1;
const NOTIFIED: usize = 2;

#[derive(Debug, Default)]
pub(crate) struct ParkState(AtomicUsize);

impl ParkState {
    pub(crate) fn new() -> ParkState {
        ParkState(AtomicUsize::new(EMPTY))
    }

    /// The worker is about to sleep. Returns `false` (and consumes the notification)
    /// if a notify came first: the caller must look for work instead of sleeping.
    pub(crate) fn try_park(&self) -> bool {
        match self
            .0
            .compare_exchange(EMPTY, PARKED, Ordering::SeqCst, Ordering::SeqCst)
        {
            Ok(_) => true,
            Err(_) => {
                // NOTIFIED (PARKED is impossible: only the worker parks).
                self.0.store(EMPTY, Ordering::SeqCst);
                false
            }
        }
    }

    /// The worker woke up (for whatever reason) and will look for work.
    pub(crate) fn unparked(&self) {
        self.0.store(EMPTY, Ordering::SeqCst);
    }

    /// Another thread queued work. Returns whether the worker is asleep and must be
    /// woken (the caller then writes the eventfd, once).
    pub(crate) fn notify(&self) -> bool {
        #[cfg(epitome_loom_mutant = "park_no_recheck")]
        {
            // Planted bug: a notify that finds the worker awake is forgotten, so a
            // worker about to park sleeps through it.
            return self.0.load(Ordering::SeqCst) == PARKED
                && self.0.swap(NOTIFIED, Ordering::SeqCst) == PARKED;
        }
        #[allow(unreachable_code)]
        {
            self.0.swap(NOTIFIED, Ordering::SeqCst) == PARKED
        }
    }
}
