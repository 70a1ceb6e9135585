//! [`Interval`]: ticks at a fixed period.

use std::fmt;
use std::future::{Future, poll_fn};
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use super::sleep::{Sleep, far_future, sleep_until};

/// An interval whose first tick completes immediately and whose later ticks come
/// every `period`, on the schedule `start + n * period`.
///
/// # Panics
///
/// If `period` is zero.
///
/// ```
/// use std::time::{Duration, Instant};
///
/// let rt = epitome_runtime::runtime::Builder::new_current_thread().build().unwrap();
/// rt.block_on(async {
///     let start = Instant::now();
///     let mut every_10ms = epitome_runtime::time::interval(Duration::from_millis(10));
///     for _ in 0..3 {
///         every_10ms.tick().await; // at 0, 10 and 20 ms
///     }
///     assert!(start.elapsed() >= Duration::from_millis(20));
/// });
/// ```
pub fn interval(period: Duration) -> Interval {
    interval_at(Instant::now(), period)
}

/// An interval whose first tick completes at `start` and whose later ticks come every
/// `period`, on the schedule `start + n * period`.
///
/// # Panics
///
/// If `period` is zero.
pub fn interval_at(start: Instant, period: Duration) -> Interval {
    assert!(period > Duration::ZERO, "`period` must be non-zero");
    Interval {
        delay: sleep_until(start),
        period,
        missed_tick_behavior: MissedTickBehavior::default(),
    }
}

/// What an [`Interval`] does when a tick is missed.
///
/// A tick is *missed* when, by the time it is delivered, the next tick's scheduled
/// time has already passed too: the consumer (or the thread running it) fell at
/// least a whole period behind. Smaller lateness never changes the schedule, so no
/// behavior drifts just because wakeups come a little late.
///
/// With a period of 10 ms, ticks scheduled at 0, 10, 20, ... ms, and tick 0 delivered
/// at 35 ms, the following ticks are:
///
/// | behavior | next ticks |
/// |---|---|
/// | [`Burst`](Self::Burst) | 10, 20, 30 (all at once), then 40, 50, ... |
/// | [`Delay`](Self::Delay) | 45, 55, 65, ... |
/// | [`Skip`](Self::Skip) | 40, 50, 60, ... |
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub enum MissedTickBehavior {
    /// Deliver the missed ticks as fast as they are asked for, until caught up with
    /// the original schedule. The default.
    #[default]
    Burst,
    /// Start a new schedule one period after the late tick was delivered.
    Delay,
    /// Drop the missed ticks and continue with the next one of the original schedule
    /// that is still in the future.
    Skip,
}

impl MissedTickBehavior {
    /// When the tick after the one scheduled at `timeout`, delivered at `now`, is due.
    fn next_timeout(self, timeout: Instant, now: Instant, period: Duration) -> Instant {
        let Some(next) = timeout.checked_add(period) else {
            return far_future();
        };
        if now < next {
            return next;
        }
        let later = match self {
            MissedTickBehavior::Burst => return next,
            MissedTickBehavior::Delay => now.checked_add(period),
            MissedTickBehavior::Skip => {
                // The first tick of the schedule after `now`.
                let behind = (now - timeout).as_nanos();
                let periods = behind / period.as_nanos() + 1;
                duration_from_nanos(periods * period.as_nanos())
                    .and_then(|ahead| timeout.checked_add(ahead))
            }
        };
        later.unwrap_or_else(far_future)
    }
}

fn duration_from_nanos(nanos: u128) -> Option<Duration> {
    let secs = u64::try_from(nanos / 1_000_000_000).ok()?;
    Some(Duration::new(secs, (nanos % 1_000_000_000) as u32))
}

/// Ticks at a fixed period; see [`interval`] and [`interval_at`].
///
/// Each tick returns the instant it was scheduled for, `start + n * period`, which
/// the schedule never drifts from (unless a missed tick is handled with
/// [`MissedTickBehavior::Delay`]). A tick never completes before its scheduled time.
pub struct Interval {
    /// Completes at the next tick's scheduled time.
    delay: Sleep,
    period: Duration,
    missed_tick_behavior: MissedTickBehavior,
}

impl Interval {
    /// Waits for the next tick and returns the instant it was scheduled for.
    ///
    /// Cancel safe: dropping the future before it completes loses no tick.
    pub async fn tick(&mut self) -> Instant {
        poll_fn(|cx| self.poll_tick(cx)).await
    }

    /// Polls for the next tick: `Ready` with its scheduled instant once it is due.
    ///
    /// When this returns `Pending`, the waker of `cx` is woken at the tick; only the
    /// waker of the latest call is.
    pub fn poll_tick(&mut self, cx: &mut Context<'_>) -> Poll<Instant> {
        if Pin::new(&mut self.delay).poll(cx).is_pending() {
            return Poll::Pending;
        }
        let timeout = self.delay.deadline();
        let next = self
            .missed_tick_behavior
            .next_timeout(timeout, Instant::now(), self.period);
        Pin::new(&mut self.delay).reset(next);
        Poll::Ready(timeout)
    }

    /// Restarts the schedule so that the next tick comes one period from now.
    pub fn reset(&mut self) {
        self.reset_after(self.period);
    }

    /// Restarts the schedule so that the next tick comes immediately.
    pub fn reset_immediately(&mut self) {
        self.reset_at(Instant::now());
    }

    /// Restarts the schedule so that the next tick comes `after` from now.
    pub fn reset_after(&mut self, after: Duration) {
        let at = Instant::now().checked_add(after).unwrap_or_else(far_future);
        self.reset_at(at);
    }

    /// Restarts the schedule so that the next tick comes at `deadline`.
    pub fn reset_at(&mut self, deadline: Instant) {
        Pin::new(&mut self.delay).reset(deadline);
    }

    /// The time between ticks.
    pub fn period(&self) -> Duration {
        self.period
    }

    /// What this interval does when a tick is missed.
    pub fn missed_tick_behavior(&self) -> MissedTickBehavior {
        self.missed_tick_behavior
    }

    /// Sets what this interval does when a tick is missed.
    pub fn set_missed_tick_behavior(&mut self, behavior: MissedTickBehavior) {
        self.missed_tick_behavior = behavior;
    }
}

impl fmt::Debug for Interval {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Interval")
            .field("next", &self.delay.deadline())
            .field("period", &self.period)
            .field("missed_tick_behavior", &self.missed_tick_behavior)
            .finish()
    }
}

const _: fn() = || {
    fn assert<T: Send + Sync + Unpin>() {}
    assert::<Interval>();
};

#[cfg(all(test, not(epitome_loom)))]
mod tests {
    use super::MissedTickBehavior::{Burst, Delay, Skip};
    use super::*;
    use crate::time::test_util::{Harness, Recorder};

    const P: Duration = Duration::from_millis(10);

    fn ms(n: u64) -> Duration {
        Duration::from_millis(n)
    }

    #[test]
    fn schedule_after_a_missed_tick() {
        let t0 = Instant::now();
        // Tick 0 (due at 0) delivered at 35 ms: ticks 1, 2 and 3 were missed.
        let (timeout, now) = (t0, t0 + ms(35));
        assert_eq!(Burst.next_timeout(timeout, now, P), t0 + ms(10));
        assert_eq!(Delay.next_timeout(timeout, now, P), t0 + ms(45));
        assert_eq!(Skip.next_timeout(timeout, now, P), t0 + ms(40));
        // Burst catching up: tick 1 delivered at 35 ms.
        assert_eq!(Burst.next_timeout(t0 + ms(10), now, P), t0 + ms(20));
        // Exactly on the next tick's time counts as missed.
        assert_eq!(Skip.next_timeout(t0, t0 + ms(10), P), t0 + ms(20));
        assert_eq!(Delay.next_timeout(t0, t0 + ms(10), P), t0 + ms(20));
        // Late by less than a period: every behavior keeps the schedule.
        for b in [Burst, Delay, Skip] {
            assert_eq!(b.next_timeout(t0, t0 + ms(9), P), t0 + ms(10));
            assert_eq!(b.next_timeout(t0, t0, P), t0 + ms(10));
        }
        // Far behind with a tiny period.
        let tiny = Duration::from_nanos(3);
        let skip = Skip.next_timeout(t0, t0 + Duration::from_secs(1_000), tiny);
        assert!(skip > t0 + Duration::from_secs(1_000));
        assert_eq!((skip - t0).as_nanos() % 3, 0);
        assert!(skip - t0 <= Duration::from_secs(1_000) + tiny);
    }

    #[test]
    #[should_panic(expected = "`period` must be non-zero")]
    fn zero_period_panics() {
        let _ = interval(Duration::ZERO);
    }

    #[test]
    fn ticks_on_schedule() {
        let h = Harness::new();
        let mut iv = interval(P);
        assert_eq!(iv.period(), P);
        assert_eq!(iv.missed_tick_behavior(), Burst);
        let start = h.block_on(iv.tick());
        for n in 1..=5 {
            let tick = h.block_on(iv.tick());
            assert_eq!(tick, start + P * n);
            assert!(Instant::now() >= tick, "ticked early");
        }
    }

    /// Ticks of an interval that started `behind` before now with period `P`; the
    /// first ones are missed.
    fn late_ticks(behavior: MissedTickBehavior, n: usize) -> (Instant, Instant, Vec<Instant>) {
        let h = Harness::new();
        let t0 = Instant::now();
        let start = t0 - ms(35);
        let mut iv = interval_at(start, P);
        iv.set_missed_tick_behavior(behavior);
        let mut ticks = vec![h.block_on(iv.tick())];
        let after_first = Instant::now();
        for _ in 1..n {
            let tick = h.block_on(iv.tick());
            assert!(Instant::now() >= tick, "ticked early");
            ticks.push(tick);
        }
        assert_eq!(ticks[0], start);
        (t0, after_first, ticks)
    }

    #[test]
    fn missed_ticks_burst() {
        let (t0, _, ticks) = late_ticks(Burst, 6);
        let start = t0 - ms(35);
        for (n, tick) in ticks.into_iter().enumerate() {
            assert_eq!(tick, start + P * n as u32);
        }
    }

    #[test]
    fn missed_ticks_skip() {
        let (t0, after_first, ticks) = late_ticks(Skip, 4);
        let start = t0 - ms(35);
        // The first tick delivered at or after t0 skips to the schedule's next
        // future tick: 40 ms after start or, on a slow machine, a later one.
        assert!(ticks[1] >= start + ms(40));
        assert!(ticks[1] <= after_first + P);
        for pair in ticks.windows(2) {
            assert!(pair[1] > pair[0]);
        }
        for tick in &ticks {
            assert_eq!((*tick - start).as_nanos() % P.as_nanos(), 0, "off schedule");
        }
    }

    #[test]
    fn missed_ticks_delay() {
        let (t0, after_first, ticks) = late_ticks(Delay, 4);
        // A new schedule one period after the late tick was delivered.
        assert!(ticks[1] >= t0 + P);
        assert!(ticks[1] <= after_first + P);
        for pair in ticks.windows(2) {
            assert!(pair[1] >= pair[0] + P);
        }
    }

    #[test]
    fn stalled_consumer() {
        for behavior in [Burst, Delay, Skip] {
            let h = Harness::new();
            let mut iv = interval(P);
            iv.set_missed_tick_behavior(behavior);
            let start = h.block_on(iv.tick());
            assert_eq!(h.block_on(iv.tick()), start + P);
            // Miss at least two ticks: the next one is delivered 45 ms after start
            // or later.
            crate::loom::os::thread::sleep(ms(35));
            let stall_end = Instant::now();
            let late = h.block_on(iv.tick());
            let delivered = Instant::now();
            let next = h.block_on(iv.tick());
            assert!(Instant::now() >= next, "ticked early");
            match behavior {
                Burst => {
                    assert_eq!(late, start + P * 2);
                    assert_eq!(next, start + P * 3);
                    assert_eq!(h.block_on(iv.tick()), start + P * 4);
                }
                Delay => {
                    assert!(late >= start + P * 2);
                    assert!(next >= stall_end + P);
                    assert!(next <= delivered + P);
                }
                Skip => {
                    assert_eq!((late - start).as_nanos() % P.as_nanos(), 0);
                    assert_eq!((next - start).as_nanos() % P.as_nanos(), 0);
                    assert!(next >= start + P * 5);
                    assert!(next <= delivered + P);
                }
            }
        }
    }

    #[test]
    fn reset_restarts_the_schedule() {
        let h = Harness::new();
        let rec = Recorder::new();
        let mut iv = interval(Duration::from_secs(3600));
        h.block_on(iv.tick());
        let before = Instant::now();
        iv.reset_immediately();
        let tick = h.block_on(iv.tick());
        assert!(tick >= before);
        assert_eq!(iv.delay.deadline(), tick + iv.period());
        drop(iv);

        let mut iv = interval(P);
        h.block_on(iv.tick());
        let before = Instant::now();
        iv.reset();
        let mut cx = Context::from_waker(std::task::Waker::noop());
        assert!(iv.poll_tick(&mut cx).is_pending());
        let tick = h.block_on(iv.tick());
        assert!(tick >= before + P);
        iv.reset_after(ms(1));
        assert!(rec.poll(std::pin::pin!(iv.tick())).is_pending());
        assert_eq!(h.timer.pending(), 1);
        drop(iv);
        assert_eq!(h.timer.pending(), 0);
    }

    #[test]
    fn tick_future_is_send() {
        fn assert_send<T: Send>(_: &T) {}
        let mut iv = interval(P);
        assert_send(&iv.tick());
    }
}
