//! [`Timeout`]: a future with a deadline.

use std::fmt;
use std::future::{Future, IntoFuture};
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use super::error::Elapsed;
use super::sleep::{Sleep, far_future, sleep_until};

/// Runs `future` for at most `duration`.
///
/// The result is `Ok` with the future's output if it completes first, or
/// `Err(`[`Elapsed`]`)` once the duration has passed. The future is polled before the
/// timer on every poll, so a future that is ready when the deadline passes still
/// counts as in time. Dropping the `Timeout` drops the future (cancelling it).
///
/// A duration too large to add to now means about 30 years. As with
/// [`sleep`](fn@super::sleep), the timer is registered on the first poll, which must
/// happen on a thread with an epitome runtime.
///
/// ```
/// use std::time::Duration;
/// use epitome_runtime::time::{sleep, timeout};
///
/// let rt = epitome_runtime::runtime::Builder::new_current_thread().build().unwrap();
/// rt.block_on(async {
///     let quick = timeout(Duration::from_secs(5), async { "done" }).await;
///     assert_eq!(quick, Ok("done"));
///     let slow = timeout(Duration::from_millis(10), sleep(Duration::from_secs(60))).await;
///     assert!(slow.is_err()); // Elapsed; the sleep was dropped
/// });
/// ```
pub fn timeout<F: IntoFuture>(duration: Duration, future: F) -> Timeout<F::IntoFuture> {
    let deadline = Instant::now()
        .checked_add(duration)
        .unwrap_or_else(far_future);
    timeout_at(deadline, future)
}

/// Runs `future` until `deadline` at most. See [`timeout`].
pub fn timeout_at<F: IntoFuture>(deadline: Instant, future: F) -> Timeout<F::IntoFuture> {
    Timeout {
        value: future.into_future(),
        delay: sleep_until(deadline),
    }
}

/// A future with a deadline; see [`timeout`] and [`timeout_at`].
#[must_use = "futures do nothing unless polled"]
pub struct Timeout<F> {
    /// Structurally pinned: see `poll`.
    value: F,
    delay: Sleep,
}

impl<F> Timeout<F> {
    /// The inner future, without its deadline.
    pub fn into_inner(self) -> F {
        self.value
    }

    /// A reference to the inner future.
    pub fn get_ref(&self) -> &F {
        &self.value
    }

    /// A mutable reference to the inner future.
    pub fn get_mut(&mut self) -> &mut F {
        &mut self.value
    }
}

impl<F: Future> Future for Timeout<F> {
    type Output = Result<F::Output, Elapsed>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        // SAFETY: `value` is pinned whenever the `Timeout` is. Nothing moves it out of
        // a pinned `Timeout`: `into_inner` and `get_mut` need the `Timeout` by value or
        // by `&mut`, which a pinned one only yields if it is `Unpin`, that is (`Sleep`
        // being `Unpin`) if `F` is; and `Timeout` has no `Drop` impl. `delay` is
        // `Unpin`, so a plain `&mut` to it is fine. Neither field is moved here.
        let (value, delay) = unsafe {
            let this = self.get_unchecked_mut();
            (Pin::new_unchecked(&mut this.value), &mut this.delay)
        };
        if let Poll::Ready(out) = value.poll(cx) {
            return Poll::Ready(Ok(out));
        }
        match Pin::new(delay).poll(cx) {
            Poll::Ready(()) => Poll::Ready(Err(Elapsed::new())),
            Poll::Pending => Poll::Pending,
        }
    }
}

impl<F: fmt::Debug> fmt::Debug for Timeout<F> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Timeout")
            .field("value", &self.value)
            .field("deadline", &self.delay.deadline())
            .finish()
    }
}

const _: fn() = || {
    fn assert<T: Send + Sync>() {}
    assert::<Timeout<std::future::Pending<()>>>();
};

#[cfg(all(test, not(epitome_loom)))]
mod tests {
    use super::*;
    use crate::time::sleep::sleep;
    use crate::time::test_util::{Harness, Recorder};
    use std::future::{pending, ready};
    use std::pin::pin;

    #[test]
    fn ready_inner_future_wins() {
        let h = Harness::new();
        assert_eq!(
            h.block_on(timeout(Duration::from_secs(60), ready(7))),
            Ok(7)
        );
        // Polled first, so it wins even against a deadline already passed.
        let past = Instant::now() - Duration::from_millis(1);
        assert_eq!(h.block_on(timeout_at(past, ready(8))), Ok(8));
        assert_eq!(h.timer.pending(), 0);
    }

    #[test]
    fn inner_future_completing_later_wins() {
        let h = Harness::new();
        let inner = async {
            sleep(Duration::from_millis(5)).await;
            "done"
        };
        assert_eq!(
            h.block_on(timeout(Duration::from_secs(60), inner)),
            Ok("done")
        );
        // The timeout's own timer went with it.
        assert_eq!(h.timer.pending(), 0);
    }

    #[test]
    fn elapses_after_the_deadline() {
        let h = Harness::new();
        let t = timeout(Duration::from_millis(10), pending::<()>());
        let deadline = t.delay.deadline();
        assert_eq!(h.block_on(t), Err(Elapsed::new()));
        assert!(Instant::now() >= deadline);
        let zero = timeout(Duration::ZERO, pending::<()>());
        assert_eq!(h.block_on(zero), Err(Elapsed::new()));
    }

    #[test]
    fn accessors_and_drop() {
        let h = Harness::new();
        let rec = Recorder::new();
        let mut t = timeout(Duration::from_secs(60), sleep(Duration::from_secs(120)));
        assert!(!t.get_ref().is_elapsed());
        assert!(!t.get_mut().is_elapsed());
        {
            let mut pinned = pin!(t);
            assert!(rec.poll(pinned.as_mut()).is_pending());
            // Two timers: the inner sleep's and the timeout's.
            assert_eq!(h.timer.pending(), 2);
        }
        assert_eq!(h.timer.pending(), 0);
        let t = timeout(Duration::from_secs(1), sleep(Duration::from_secs(2)));
        let inner = t.into_inner();
        assert!(!inner.is_elapsed());
    }
}
