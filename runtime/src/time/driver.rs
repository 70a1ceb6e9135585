//! The timer driver: one timing wheel per worker, shared with every thread that
//! registers a timer on it.
//!
//! # Who touches what
//!
//! - `TimerShared::inner` (the wheel, the wake buffer and the shutdown flag) is
//!   guarded by its mutex. Any thread locks it to register, move, re-arm or cancel a
//!   timer (the first poll of a [`Sleep`](super::Sleep), its `reset`, a later poll
//!   with a new waker, its drop); the owning worker locks it in
//!   [`TimerShared::next_wake`] and [`TimerShared::fire_expired`]. Nothing else is
//!   done under the lock: wakers are woken, and replaced or cancelled wakers are
//!   dropped, after it is released, since either may run arbitrary code (a task's
//!   drop may drop another `Sleep` on this very wheel).
//! - `TimerShared::unpark` is immutable. It is called, outside the lock, whenever a
//!   registration or reset makes the wheel's [`next_wake`](TimerShared::next_wake)
//!   earlier, because the owner may be blocked with a timeout computed from the old
//!   one. The call must be sticky (an eventfd write, a flag the worker checks before
//!   blocking), since it can come between the owner reading `next_wake` and
//!   blocking.
//! - The thread-local *current* timer is set by the worker loop with
//!   [`set_current`]; a `Sleep` reads it once, at its first poll, and keeps the
//!   `Arc` it found, so it keeps using that wheel from any thread.
//!
//! # Shutdown
//!
//! The wheel holds the wakers of tasks whose futures hold `Arc`s of the wheel: a
//! cycle. [`TimerShared::shutdown`] breaks it by dropping every pending waker; the
//! runtime calls it when it shuts down.

use std::mem;
use std::task::Waker;
use std::time::Instant;

use super::wheel::{TimerKey, Wheel};
use crate::loom::os::cell::RefCell;
use crate::loom::os::sync::Arc;
use crate::loom::sync::{Mutex, MutexGuard};

/// Wakes the worker that owns a wheel, so it recomputes its wait timeout.
pub(crate) trait Unpark: Send + Sync + 'static {
    /// Makes the owner's current or next wait return promptly.
    fn unpark(&self);
}

/// A worker's timing wheel, shared with the timers registered on it.
pub(crate) struct TimerShared {
    inner: Mutex<Inner>,
    unpark: Arc<dyn Unpark>,
}

struct Inner {
    wheel: Wheel<Waker>,
    /// The wakers of the entries being fired, kept between calls so firing does not
    /// allocate once it has grown; empty whenever the lock is free.
    wake_buf: Vec<Waker>,
    shut_down: bool,
}

/// What a poll of a registered timer found.
pub(crate) enum Polled {
    /// Still pending; the waker is up to date.
    Pending,
    /// The entry has fired.
    Fired,
}

const SHUT_DOWN: &str = "the epitome runtime that owns this timer has shut down";

impl TimerShared {
    /// A driver with an empty wheel whose tick 0 is now.
    pub(crate) fn new(unpark: Arc<dyn Unpark>) -> Arc<TimerShared> {
        Arc::new(TimerShared {
            inner: Mutex::new(Inner {
                wheel: Wheel::new(Instant::now()),
                wake_buf: Vec::new(),
                shut_down: false,
            }),
            unpark,
        })
    }

    fn lock(&self) -> MutexGuard<'_, Inner> {
        // Nothing under the lock can panic halfway through a change to the wheel (the
        // only foreign code run under it is a waker's clone, before the change), so
        // poisoning carries no information.
        self.inner.lock()
    }

    /// When the owner must next call [`fire_expired`](Self::fire_expired): no later
    /// than the earliest pending deadline; `None` if no timer is pending.
    pub(crate) fn next_wake(&self) -> Option<Instant> {
        self.lock().wheel.next_wake()
    }

    /// Wakes every timer whose deadline is at or before `now`, in deadline order,
    /// outside the lock. Returns how many it woke.
    pub(crate) fn fire_expired(&self, now: Instant) -> usize {
        let mut wakers = {
            let mut guard = self.lock();
            let Inner {
                wheel, wake_buf, ..
            } = &mut *guard;
            wheel.process(now, |_, waker| wake_buf.push(waker));
            if wake_buf.is_empty() {
                return 0;
            }
            mem::take(wake_buf)
        };
        let fired = wakers.len();
        for waker in wakers.drain(..) {
            waker.wake();
        }
        // Give the buffer back unless a concurrent call has installed its own.
        let mut guard = self.lock();
        if guard.wake_buf.capacity() == 0 {
            guard.wake_buf = wakers;
        }
        fired
    }

    /// Number of timers in the wheel.
    pub(crate) fn pending(&self) -> usize {
        self.lock().wheel.len()
    }

    /// Drops every pending timer's waker and refuses new registrations, breaking the
    /// cycle between the wheel and the tasks whose timers it holds. Polling a timer
    /// of this wheel afterwards panics.
    pub(crate) fn shutdown(&self) {
        let old = {
            let mut inner = self.lock();
            inner.shut_down = true;
            mem::replace(&mut inner.wheel, Wheel::new(Instant::now()))
        };
        drop(old);
    }

    /// Registers a timer that wakes `waker` at `deadline`.
    pub(crate) fn register(&self, deadline: Instant, waker: Waker) -> TimerKey {
        let (key, earlier) = {
            let mut inner = self.lock();
            assert!(!inner.shut_down, "{SHUT_DOWN}");
            let before = inner.wheel.next_wake();
            let key = inner.wheel.insert(deadline, waker);
            (key, wakes_earlier(before, inner.wheel.next_wake()))
        };
        if earlier {
            self.unpark.unpark();
        }
        key
    }

    /// Moves the timer of `key` to `deadline`. Returns `false` if it has fired (or was
    /// dropped by a shutdown).
    pub(crate) fn reset(&self, key: TimerKey, deadline: Instant) -> bool {
        let earlier = {
            let mut inner = self.lock();
            let before = inner.wheel.next_wake();
            if !inner.wheel.reset(key, deadline) {
                return false;
            }
            wakes_earlier(before, inner.wheel.next_wake())
        };
        // Planted bug: an earlier deadline leaves the owner asleep until the old one.
        if crate::loom::planted_bug!("reset_no_unpark", bug: false, code: earlier) {
            self.unpark.unpark();
        }
        true
    }

    /// Whether the timer of `key` is still pending; if so, makes sure it will wake
    /// `waker` (replacing the stored waker only if it would not wake the same task).
    pub(crate) fn poll(&self, key: TimerKey, waker: &Waker) -> Polled {
        let replaced;
        {
            let mut inner = self.lock();
            let shut_down = inner.shut_down;
            let Some(stored) = inner.wheel.get_mut(key) else {
                assert!(!shut_down, "{SHUT_DOWN}");
                return Polled::Fired;
            };
            if stored.will_wake(waker) {
                return Polled::Pending;
            }
            replaced = mem::replace(stored, waker.clone());
        }
        drop(replaced);
        Polled::Pending
    }

    /// Whether the timer of `key` is still pending.
    pub(crate) fn is_pending(&self, key: TimerKey) -> bool {
        self.lock().wheel.deadline(key).is_some()
    }

    /// Cancels the timer of `key`, if it is still pending.
    pub(crate) fn cancel(&self, key: TimerKey) {
        let removed = self.lock().wheel.remove(key);
        drop(removed);
    }
}

/// Whether a wheel whose next wake went from `before` to `after` must be looked at
/// sooner than its owner planned.
fn wakes_earlier(before: Option<Instant>, after: Option<Instant>) -> bool {
    match (before, after) {
        (_, None) => false,
        (None, Some(_)) => true,
        (Some(before), Some(after)) => after < before,
    }
}

// A modelled thread-local: each thread of a loom model sees its own.
crate::loom::thread_local! {
    static CURRENT: RefCell<Option<Arc<TimerShared>>> = const { RefCell::new(None) };
}

/// Makes `timer` the wheel that timers first polled on this thread register on, and
/// returns the previous one. The worker loop sets it before running tasks. While the
/// thread's thread-locals are being destroyed there is no slot: `timer` is dropped and
/// `None` returned.
pub(crate) fn set_current(timer: Option<Arc<TimerShared>>) -> Option<Arc<TimerShared>> {
    CURRENT
        .try_with(|current| current.replace(timer))
        .ok()
        .flatten()
}

/// The wheel set by [`set_current`] on this thread, if any.
pub(crate) fn current() -> Option<Arc<TimerShared>> {
    // During thread-local destruction there is no runtime on this thread any more.
    CURRENT
        .try_with(|current| current.borrow().clone())
        .ok()
        .flatten()
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicUsize, Ordering::SeqCst};
    use std::task::Wake;
    use std::time::Duration;

    use super::*;

    /// Counts unparks, or wakes (as a waker).
    #[derive(Default)]
    struct Count(AtomicUsize);

    impl Count {
        fn get(&self) -> usize {
            self.0.load(SeqCst)
        }
    }

    impl Unpark for Count {
        fn unpark(&self) {
            self.0.fetch_add(1, SeqCst);
        }
    }

    impl Wake for Count {
        fn wake(self: Arc<Self>) {
            self.0.fetch_add(1, SeqCst);
        }
    }

    /// Registering or moving a timer unparks the owner exactly when the wheel's next
    /// wake moves earlier; firing wakes what is due, once; a fired or cancelled timer
    /// is gone; a shutdown empties the wheel.
    #[test]
    fn the_owner_is_unparked_only_for_an_earlier_next_wake() {
        crate::loom::unit_test(|| {
            let base = Instant::now();
            let at = |secs: u64| base + Duration::from_secs(secs);
            let unparks = Arc::new(Count::default());
            let timer = TimerShared::new(unparks.clone());
            let wakes = Arc::new(Count::default());
            let waker = Waker::from(wakes.clone());
            assert_eq!(timer.next_wake(), None);
            assert_eq!(timer.pending(), 0);

            let hour = timer.register(at(3600), waker.clone());
            assert_eq!(
                unparks.get(),
                1,
                "the first timer makes the next wake earlier"
            );
            let next = timer.next_wake().expect("a timer is pending");
            assert!(next <= at(3600));
            let same = timer.register(at(3600), waker.clone());
            let later = timer.register(at(7200), waker.clone());
            assert_eq!(
                unparks.get(),
                1,
                "a timer no earlier than the next wake unparked"
            );
            assert_eq!(timer.next_wake(), Some(next));
            let minute = timer.register(at(60), waker.clone());
            assert_eq!(unparks.get(), 2, "an earlier timer did not unpark");
            assert_eq!(timer.pending(), 4);
            assert!(timer.is_pending(minute) && timer.is_pending(later));

            assert!(timer.reset(later, at(1)));
            assert_eq!(
                unparks.get(),
                3,
                "a reset to an earlier deadline did not unpark"
            );
            assert!(timer.reset(same, at(10_800)));
            assert_eq!(unparks.get(), 3, "a reset to a later deadline unparked");
            timer.cancel(minute);
            assert!(!timer.is_pending(minute));
            assert_eq!(timer.pending(), 3);

            assert_eq!(timer.fire_expired(at(5400)), 2, "two timers were due");
            assert_eq!(wakes.get(), 2);
            assert_eq!(timer.pending(), 1);
            assert!(!timer.is_pending(hour) && timer.is_pending(same));
            assert!(matches!(timer.poll(hour, &waker), Polled::Fired));
            assert!(matches!(timer.poll(same, &waker), Polled::Pending));
            assert!(!timer.reset(hour, at(1)), "a fired timer was moved");
            assert_eq!(timer.fire_expired(at(5400)), 0);
            assert_eq!(wakes.get(), 2);

            timer.shutdown();
            assert_eq!(timer.pending(), 0);
            assert_eq!(timer.next_wake(), None);
            assert_eq!(wakes.get(), 2, "a shutdown drops the wakers, waking none");
        });
    }

    /// The current timer is per thread, set and read back.
    #[test]
    fn the_current_timer_is_the_one_set() {
        crate::loom::unit_test(|| {
            let timer = TimerShared::new(Arc::new(Count::default()));
            assert!(current().is_none());
            assert!(set_current(Some(timer.clone())).is_none());
            let got = current().expect("a timer was set");
            assert!(Arc::ptr_eq(&got, &timer));
            let prev = set_current(None).expect("the timer set before");
            assert!(Arc::ptr_eq(&prev, &timer));
            assert!(current().is_none());
        });
    }
}
