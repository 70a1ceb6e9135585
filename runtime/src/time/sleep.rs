//! [`Sleep`]: a future that completes at a deadline.

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use super::driver::{self, Polled, TimerShared};
use super::wheel::TimerKey;
use crate::loom::os::sync::Arc;

/// Waits until `duration` has elapsed.
///
/// Equivalent to `sleep_until(Instant::now() + duration)`; a duration too large to
/// add to now sleeps for about 30 years instead. A zero duration completes on the
/// first poll without touching the timer wheel.
///
/// The timer is registered on the first poll, with the wheel of the worker thread
/// polling it, so a `Sleep` can be created anywhere; polling it panics on a thread
/// without an epitome runtime.
///
/// ```
/// use std::time::{Duration, Instant};
///
/// let rt = epitome_runtime::runtime::Builder::new_current_thread().build().unwrap();
/// rt.block_on(async {
///     let start = Instant::now();
///     epitome_runtime::time::sleep(Duration::from_millis(20)).await;
///     assert!(start.elapsed() >= Duration::from_millis(20));
/// });
/// ```
pub fn sleep(duration: Duration) -> Sleep {
    let deadline = Instant::now()
        .checked_add(duration)
        .unwrap_or_else(far_future);
    sleep_until(deadline)
}

/// Waits until `deadline` is reached. A deadline already reached completes on the
/// first poll. See [`sleep`].
pub fn sleep_until(deadline: Instant) -> Sleep {
    Sleep {
        deadline,
        timer: None,
        key: None,
        elapsed: false,
    }
}

/// About 30 years from now: the stand-in for deadlines too far to represent.
pub(crate) fn far_future() -> Instant {
    let now = Instant::now();
    now.checked_add(Duration::from_secs(86_400 * 365 * 30))
        .unwrap_or(now)
}

/// A future that completes once its deadline has passed; see [`sleep`] and
/// [`sleep_until`].
///
/// The timer is an entry in the timing wheel of the worker that first polled it, and
/// stays on that wheel for the life of the `Sleep`, whichever thread polls it later.
/// Registration happens at the first poll; [`reset`](Sleep::reset) moves the entry
/// in O(1) without allocating; dropping the `Sleep` removes the entry in O(1).
///
/// A `Sleep` never completes before its deadline. It completes when the owning worker
/// fires its timers after the deadline, so typically within a millisecond of it.
///
/// # Panics
///
/// Polling a `Sleep` that is not yet registered on a thread without an epitome runtime
/// panics with "there is no epitome runtime on this thread; timers need one".
///
/// # Example
///
/// Moving a deadline (a keep-alive timer pushed back on activity):
///
/// ```
/// use std::pin::pin;
/// use std::time::{Duration, Instant};
///
/// let rt = epitome_runtime::runtime::Builder::new_current_thread().build().unwrap();
/// rt.block_on(async {
///     let mut idle = pin!(epitome_runtime::time::sleep(Duration::from_millis(5)));
///     let later = Instant::now() + Duration::from_millis(20);
///     idle.as_mut().reset(later);
///     assert_eq!(idle.deadline(), later);
///     idle.as_mut().await;
///     assert!(idle.is_elapsed() && Instant::now() >= later);
/// });
/// ```
#[must_use = "futures do nothing unless polled"]
pub struct Sleep {
    deadline: Instant,
    /// The wheel found at the first poll, kept for the life of the `Sleep`.
    timer: Option<Arc<TimerShared>>,
    /// The wheel entry, while there is one that has not fired.
    key: Option<TimerKey>,
    /// Set once a poll has returned `Ready`, until a reset.
    elapsed: bool,
}

impl Sleep {
    /// The instant at which this sleep completes.
    pub fn deadline(&self) -> Instant {
        self.deadline
    }

    /// Whether the deadline has been reached: the sleep has completed, or its timer
    /// has fired and the next poll will complete it.
    pub fn is_elapsed(&self) -> bool {
        if self.elapsed {
            return true;
        }
        match (&self.timer, self.key) {
            (Some(timer), Some(key)) => !timer.is_pending(key),
            _ => false,
        }
    }

    /// Changes the deadline, making the sleep pending again if it had completed.
    ///
    /// A registered timer is moved in place (O(1), no allocation); one that has fired
    /// is registered again, on the same wheel, at the next poll. The future must be
    /// polled again for the new deadline to wake the task.
    pub fn reset(self: Pin<&mut Self>, deadline: Instant) {
        let this = self.get_mut();
        this.deadline = deadline;
        this.elapsed = false;
        if let (Some(timer), Some(key)) = (&this.timer, this.key) {
            if !timer.reset(key, deadline) {
                this.key = None;
            }
        }
    }
}

impl Future for Sleep {
    type Output = ();

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        let this = self.get_mut();
        if this.elapsed {
            return Poll::Ready(());
        }
        let timer = this.timer.get_or_insert_with(|| {
            driver::current().unwrap_or_else(|| {
                panic!("there is no epitome runtime on this thread; timers need one")
            })
        });
        if let Some(key) = this.key {
            return match timer.poll(key, cx.waker()) {
                Polled::Pending => Poll::Pending,
                Polled::Fired => {
                    this.key = None;
                    this.elapsed = true;
                    Poll::Ready(())
                }
            };
        }
        // Not in the wheel: the first poll, or the first since a fired timer was
        // reset. A deadline already reached needs no entry.
        if this.deadline <= Instant::now() {
            this.elapsed = true;
            return Poll::Ready(());
        }
        this.key = Some(timer.register(this.deadline, cx.waker().clone()));
        Poll::Pending
    }
}

impl Drop for Sleep {
    fn drop(&mut self) {
        if let (Some(timer), Some(key)) = (&self.timer, self.key) {
            timer.cancel(key);
        }
    }
}

impl fmt::Debug for Sleep {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Sleep")
            .field("deadline", &self.deadline)
            .field("registered", &self.key.is_some())
            .field("elapsed", &self.elapsed)
            .finish()
    }
}

// `Sleep` holds only an `Arc` of a `Send + Sync` driver and plain data, so it is
// `Send + Sync` (and `Unpin`) without any unsafe impl.
const _: fn() = || {
    fn assert<T: Send + Sync + Unpin>() {}
    assert::<Sleep>();
};

#[cfg(all(test, not(epitome_loom)))]
mod tests {
    use super::*;
    use crate::time::test_util::{Harness, Recorder, Rng};
    use std::pin::pin;

    #[test]
    fn completes_not_before_its_deadline() {
        let h = Harness::new();
        for ms in [1, 5, 20] {
            let start = Instant::now();
            let sleep = sleep(Duration::from_millis(ms));
            let deadline = sleep.deadline();
            assert!(deadline >= start + Duration::from_millis(ms));
            h.block_on(sleep);
            assert!(Instant::now() >= deadline);
        }
        assert_eq!(h.timer.pending(), 0);
    }

    #[test]
    fn zero_and_past_deadlines_complete_without_the_wheel() {
        let h = Harness::new();
        let rec = Recorder::new();
        let mut s = pin!(sleep(Duration::ZERO));
        assert!(rec.poll(s.as_mut()).is_ready());
        assert!(s.is_elapsed());
        let past = pin!(sleep_until(Instant::now() - Duration::from_millis(1)));
        assert!(rec.poll(past).is_ready());
        assert_eq!(h.timer.pending(), 0);
        assert_eq!(h.unpark.count(), 0);
    }

    #[test]
    #[should_panic(expected = "there is no epitome runtime on this thread; timers need one")]
    fn polling_outside_a_runtime_panics() {
        let rec = Recorder::new();
        let _ = rec.poll(pin!(sleep(Duration::from_secs(1))));
    }

    #[test]
    fn creating_and_dropping_outside_a_runtime_is_fine() {
        let s = sleep(Duration::from_secs(1));
        assert!(!s.is_elapsed());
        drop(s);
    }

    #[test]
    fn wakeups_follow_deadlines() {
        let h = Harness::new();
        let mut rng = Rng(42);
        let log = Recorder::shared_log();
        let base = Instant::now() + Duration::from_millis(20);
        let mut sleeps = Vec::new();
        let mut registered = 0;
        for i in 0..10_000 {
            // Some deadlines are shared, most are spread over 30 ms with ns precision.
            let offset = if i % 8 == 0 {
                Duration::from_millis(rng.below(30))
            } else {
                Duration::from_nanos(rng.below(30_000_000))
            };
            let rec = Recorder::logging(&log, i);
            let mut s = Box::pin(sleep_until(base + offset));
            match rec.poll(s.as_mut()) {
                Poll::Pending => registered += 1,
                // A slow machine took past this deadline while registering the others.
                Poll::Ready(()) => assert!(Instant::now() >= s.deadline()),
            }
            sleeps.push((s, rec));
        }
        assert_eq!(h.timer.pending(), registered);
        while log.lock().len() < registered {
            h.turn();
        }
        let log = log.lock().clone();
        assert_eq!(log.len(), registered);
        for pair in log.windows(2) {
            let (a, b) = (&sleeps[pair[0].0].0, &sleeps[pair[1].0].0);
            assert!(a.deadline() <= b.deadline(), "woken out of deadline order");
            if a.deadline() == b.deadline() {
                assert!(
                    pair[0].0 < pair[1].0,
                    "equal deadlines out of insertion order"
                );
            }
        }
        for &(i, woken_at) in &log {
            assert!(
                woken_at >= sleeps[i].0.deadline(),
                "woken before its deadline"
            );
            assert_eq!(sleeps[i].1.wakes(), 1);
        }
        for (s, rec) in &mut sleeps {
            assert!(rec.poll(s.as_mut()).is_ready());
        }
        assert_eq!(h.timer.pending(), 0);
    }

    #[test]
    fn reset_moves_the_entry() {
        let h = Harness::new();
        let rec = Recorder::new();
        let mut s = pin!(sleep(Duration::from_secs(3600)));
        assert!(rec.poll(s.as_mut()).is_pending());
        assert_eq!(h.timer.pending(), 1);

        // Earlier: same entry, completes at the new deadline.
        let earlier = Instant::now() + Duration::from_millis(10);
        s.as_mut().reset(earlier);
        assert_eq!(h.timer.pending(), 1);
        assert_eq!(s.deadline(), earlier);
        h.block_on(s.as_mut());
        assert!(Instant::now() >= earlier);

        // Reset after completion: pending again, registered again on first poll.
        let later = Instant::now() + Duration::from_millis(5);
        s.as_mut().reset(later);
        assert!(!s.is_elapsed());
        assert!(rec.poll(s.as_mut()).is_pending());
        assert_eq!(h.timer.pending(), 1);

        // Later: the old deadline passes without a wake.
        let much_later = later + Duration::from_millis(20);
        s.as_mut().reset(much_later);
        assert_eq!(h.timer.pending(), 1);
        while Instant::now() < later + Duration::from_millis(1) {
            crate::loom::os::thread::sleep(Duration::from_millis(1));
        }
        assert_eq!(h.timer.fire_expired(Instant::now()), 0);
        assert_eq!(rec.wakes(), 0);
        h.block_on(s.as_mut());
        assert!(Instant::now() >= much_later);
        assert_eq!(h.timer.pending(), 0);
    }

    #[test]
    fn drop_cancels() {
        let h = Harness::new();
        let (keep_rec, drop_rec) = (Recorder::new(), Recorder::new());
        let mut keep = Box::pin(sleep(Duration::from_millis(2)));
        let mut gone = Box::pin(sleep(Duration::from_millis(1)));
        assert!(keep_rec.poll(keep.as_mut()).is_pending());
        assert!(drop_rec.poll(gone.as_mut()).is_pending());
        assert_eq!(h.timer.pending(), 2);
        drop(gone);
        assert_eq!(h.timer.pending(), 1);
        h.block_on(keep);
        assert_eq!(drop_rec.wakes(), 0);
        assert_eq!(h.timer.pending(), 0);
    }

    #[test]
    fn a_new_waker_replaces_the_old_one() {
        let h = Harness::new();
        let (a, b) = (Recorder::new(), Recorder::new());
        let mut s = pin!(sleep(Duration::from_millis(1)));
        assert!(a.poll(s.as_mut()).is_pending());
        assert!(a.poll(s.as_mut()).is_pending());
        assert!(b.poll(s.as_mut()).is_pending());
        while b.wakes() == 0 {
            h.turn();
        }
        assert_eq!(a.wakes(), 0);
        assert!(b.poll(s.as_mut()).is_ready());
    }

    #[test]
    fn earlier_registrations_unpark_the_owner() {
        let h = Harness::new();
        let rec = Recorder::new();
        let now = Instant::now();
        let mut sleeps: Vec<Pin<Box<Sleep>>> = Vec::new();
        let mut register = |secs: u64| {
            let mut s = Box::pin(sleep_until(now + Duration::from_secs(secs)));
            assert!(rec.poll(s.as_mut()).is_pending());
            sleeps.push(s);
        };
        register(100); // the first timer: the owner had no timeout at all
        assert_eq!(h.unpark.count(), 1);
        register(200); // later than the earliest: no unpark
        assert_eq!(h.unpark.count(), 1);
        register(50); // a new earliest deadline
        assert_eq!(h.unpark.count(), 2);
        // Moving the latest timer in front of the others, then back.
        sleeps[1].as_mut().reset(now + Duration::from_secs(10));
        assert_eq!(h.unpark.count(), 3);
        sleeps[1].as_mut().reset(now + Duration::from_secs(300));
        assert_eq!(h.unpark.count(), 3);
        // Cancelling never needs the owner.
        sleeps.clear();
        assert_eq!(h.unpark.count(), 3);
        assert_eq!(h.timer.pending(), 0);
    }

    #[test]
    fn keeps_its_wheel_on_other_threads() {
        let h = Harness::new();
        let rec = Recorder::new();
        let mut s = Box::pin(sleep(Duration::from_millis(5)));
        assert!(rec.poll(s.as_mut()).is_pending());
        let mut other = Box::pin(sleep(Duration::from_secs(60)));
        assert!(rec.poll(other.as_mut()).is_pending());
        assert_eq!(h.timer.pending(), 2);
        // No runtime on this thread: polling, resetting and dropping use the wheel
        // the sleeps registered on.
        let (s, rec) = crate::loom::os::thread::spawn(move || {
            assert!(rec.poll(s.as_mut()).is_pending());
            other
                .as_mut()
                .reset(Instant::now() + Duration::from_secs(120));
            drop(other);
            (s, rec)
        })
        .join()
        .unwrap();
        assert_eq!(h.timer.pending(), 1);
        while rec.wakes() == 0 {
            h.turn();
        }
        let mut s = s;
        crate::loom::os::thread::spawn(move || assert!(rec.poll(s.as_mut()).is_ready()))
            .join()
            .unwrap();
    }

    #[test]
    fn shutdown_drops_wakers() {
        let h = Harness::new();
        let rec = Recorder::new();
        let mut s = Box::pin(sleep(Duration::from_secs(60)));
        assert!(rec.poll(s.as_mut()).is_pending());
        assert_eq!(rec.waker_refs(), 2);
        h.timer.shutdown();
        assert_eq!(rec.waker_refs(), 1);
        assert_eq!(h.timer.pending(), 0);
        drop(s);
    }
}
