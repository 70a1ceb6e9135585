//! Park and unpark: the decision to sleep, raced against wakes from other threads.
//!
//! A worker sleeps in its reactor's wait. Another thread that queues work for it calls
//! [`ParkState::notify`]; only a notify that finds the worker `PARKED` has to write the
//! unpark eventfd, so any number of notifies during one park cost one write. A notify
//! that comes before the worker commits to parking leaves `NOTIFIED`, and the worker's
//! [`try_park`](ParkState::try_park) then refuses to sleep. The loom model `park`
//! checks that no interleaving sleeps through a notify.
//!
//! [`Parker`] puts the state together with the wakeup it writes (the worker's unpark
//! eventfd, behind the [`Wakeup`] trait so the model can use a semaphore instead).
//!
//! # Who touches what
//!
//! - `ParkState`'s word: the worker moves it EMPTY → PARKED → EMPTY and consumes
//!   NOTIFIED; any thread sets NOTIFIED. Every access is one atomic operation.
//! - `Parker::wakeup`: written by whichever unparker saw PARKED; the worker's sleep
//!   reads it (for an eventfd: the reactor's wait returns).

use crate::loom::planted_bug;
use crate::loom::sync::atomic::{AtomicUsize, Ordering};
use crate::sys::eventfd::EventFd;

/// The worker's wakeup, as the park logic sees it.
pub(crate) trait Wakeup: Send + Sync {
    /// Wakes the worker's current sleep, or its next one if it is not asleep yet
    /// (sticky); any number of calls before a sleep wake that sleep once.
    fn wake(&self);
}

impl Wakeup for EventFd {
    fn wake(&self) {
        // A failed write means the counter is full, i.e. already readable.
        let _ = self.write();
    }
}

/// The park state and the wakeup it writes.
#[derive(Debug)]
pub(crate) struct Parker<W> {
    state: ParkState,
    wakeup: W,
}

impl<W: Wakeup> Parker<W> {
    /// A parker for an awake worker that sleeps until `wakeup` is woken.
    pub(crate) fn new(wakeup: W) -> Parker<W> {
        Parker {
            state: ParkState::new(),
            wakeup,
        }
    }

    /// The wakeup (for the loom model, whose worker sleeps on it).
    #[cfg(all(test, epitome_loom))]
    pub(crate) fn wakeup(&self) -> &W {
        &self.wakeup
    }

    /// Another thread queued work (after queueing it): wakes the worker if it sleeps,
    /// with at most one wakeup per sleep.
    pub(crate) fn unpark(&self) {
        if self.state.notify() {
            self.wakeup.wake();
        }
    }

    /// Writes the wakeup again, whatever the state: for a wakeup another thread took
    /// from the worker's reactor on its behalf (a sibling standing in for it) while the
    /// worker may be asleep waiting for it. At worst one spurious wakeup.
    pub(crate) fn repost(&self) {
        planted_bug!(
            "assist_no_repost",
            // The sibling's wakeup, taken on its behalf, is dropped: it sleeps on.
            bug: (),
            code: self.wakeup.wake(),
        );
    }

    /// The worker found no work: runs `sleep` (which returns once woken, or for any
    /// other reason) unless an unpark came since the last park. Returns whether it
    /// slept; if not, the caller must look for work again.
    pub(crate) fn park(&self, sleep: impl FnOnce()) -> bool {
        if !self.state.try_park() {
            return false;
        }
        sleep();
        self.state.unparked();
        true
    }
}

/// The worker is awake and nobody has notified it since it last looked for work. Set
/// by the worker when it wakes (`unparked`) or consumes a notification (`try_park`).
const EMPTY: usize = 0;
/// The worker is asleep or about to sleep (its reactor wait with no timeout). Set only
/// by the worker (`try_park`, from EMPTY); a notify that finds it must write the
/// wakeup.
const PARKED: usize = 1;
/// Work was queued since the worker last looked. Set by any thread (`notify`); consumed
/// by the worker (`try_park` refuses to sleep, `unparked`).
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
                // NOTIFIED (PARKED is impossible: only the worker parks). Consume it
                // with a swap, not a store: the failed compare-exchange was only a load
                // and may have read an earlier notifier's NOTIFIED, while a later one
                // (whose swap found NOTIFIED, so it wrote no wakeup) has queued work
                // this thread has not synchronized with. A store would erase that
                // notification unseen and the caller could find its queue looking
                // empty (`RemoteQueue::take_all` reads the length without the lock),
                // then park for good: the loom model `park/spawn_and_wake`. The swap
                // reads the latest NOTIFIED and acquires every push before it.
                self.0.swap(EMPTY, Ordering::SeqCst);
                false
            }
        }
    }

    /// The worker woke up (for whatever reason) and will look for work.
    pub(crate) fn unparked(&self) {
        // A swap for the reason given in `try_park`: a notifier may have set NOTIFIED
        // since the wakeup, without writing one (it found NOTIFIED already); this
        // consumes it and acquires that notifier's queued work, which the worker's next
        // look at its queue (a bare load of the queue's length) must see.
        self.0.swap(EMPTY, Ordering::SeqCst);
    }

    /// Another thread queued work. Returns whether the worker is asleep and must be
    /// woken (the caller then writes the eventfd, once).
    pub(crate) fn notify(&self) -> bool {
        planted_bug!(
            "park_no_recheck",
            // A notify that finds the worker awake is forgotten, so a worker about to
            // park sleeps through it.
            bug: self.0.load(Ordering::SeqCst) == PARKED
                && self.0.swap(NOTIFIED, Ordering::SeqCst) == PARKED,
            code: self.0.swap(NOTIFIED, Ordering::SeqCst) == PARKED,
        )
    }
}

// Single-threaded: both builds (in the loom build each is a one-thread model). The races
// are the `park` models'.
#[cfg(test)]
mod tests {
    use super::*;
    use crate::loom::os::sync::atomic::{AtomicUsize as Count, Ordering as CountOrdering};
    use std::io::Read;
    use std::os::fd::AsFd;

    /// A wakeup that counts its writes.
    #[derive(Default)]
    struct Counted(Count);
    impl Wakeup for Counted {
        fn wake(&self) {
            self.0.fetch_add(1, CountOrdering::SeqCst);
        }
    }

    fn writes(p: &Parker<Counted>) -> usize {
        p.wakeup.0.load(CountOrdering::SeqCst)
    }

    #[test]
    fn a_notification_refuses_one_park_and_a_parked_worker_asks_for_one_wakeup() {
        crate::loom::unit_test(|| {
            let s = ParkState::new();
            assert!(
                !s.notify(),
                "a notify of an awake worker asked for a wakeup"
            );
            assert!(!s.notify());
            assert!(!s.try_park(), "parked through a notification");
            assert!(
                s.try_park(),
                "a consumed notification refused the next park"
            );
            assert!(
                s.notify(),
                "a notify of a parked worker asked for no wakeup"
            );
            assert!(!s.notify(), "two wakeups for one park");
            // Woken: the notification that woke it is consumed with the wakeup.
            s.unparked();
            assert!(
                s.try_park(),
                "the last sleep's notification refused this park"
            );
            s.unparked();
            assert!(!s.notify());
        });
    }

    #[test]
    fn a_parker_sleeps_unless_unparked_and_writes_once_per_sleep() {
        crate::loom::unit_test(|| {
            let p = Parker::new(Counted::default());
            p.unpark();
            assert_eq!(writes(&p), 0, "a wakeup written for an awake worker");
            let mut slept = false;
            assert!(!p.park(|| slept = true), "slept through an unpark");
            assert!(!slept);
            assert!(p.park(|| {
                p.unpark();
                p.unpark();
            }));
            assert_eq!(writes(&p), 1, "not one write for one sleep");
            // Awake again, nothing pending: the next park sleeps.
            let mut slept = false;
            assert!(p.park(|| slept = true));
            assert!(slept);
            // A wakeup taken on the worker's behalf is written again, whatever the state.
            p.repost();
            assert_eq!(writes(&p), 2);
        });
    }

    #[test]
    fn the_eventfd_wakeup_adds_to_its_counter() {
        crate::loom::unit_test(|| {
            let efd = EventFd::new().unwrap();
            Wakeup::wake(&efd);
            Wakeup::wake(&efd);
            let mut counter = std::fs::File::from(efd.as_fd().try_clone_to_owned().unwrap());
            let mut buf = [0; 8];
            counter.read_exact(&mut buf).unwrap();
            assert_eq!(u64::from_ne_bytes(buf), 2);
        });
    }
}
