//! Model 8: timer cancel vs. fire (`TimerShared`).
//!
//! - The worker fires timer A (its deadline passed) and a task on the worker then
//!   registers timer B, which may reuse A's slot; meanwhile A's `Sleep` is dropped on
//!   another thread, cancelling A by its key. The late cancel must not touch B, and
//!   A's waker is woken at most once.
//! - A `Sleep` polled again with a new waker while the worker fires it: the poll
//!   reports the fire, or the new waker is the one woken.
use std::sync::Arc as StdArc;
use std::time::{Duration, Instant};

use super::{check, counting_waker};
use crate::time::driver::Polled;
use crate::time::driver::TimerShared;
use crate::time::driver::Unpark;
use loom::sync::atomic::{AtomicUsize, Ordering::SeqCst};
use loom::thread;

#[derive(Default)]
struct CountUnparks(AtomicUsize);

impl Unpark for CountUnparks {
    fn unpark(&self) {
        self.0.fetch_add(1, SeqCst);
    }
}

fn wheel() -> (StdArc<TimerShared>, Instant) {
    let base = Instant::now();
    (TimerShared::new(StdArc::new(CountUnparks::default())), base)
}

#[test]
fn a_late_cancel_never_removes_another_timer() {
    check("timer/cancel_vs_fire", None, || {
        let (timer, base) = wheel();
        let (a_woken, a_waker) = counting_waker();
        let key_a = timer.register(base + Duration::from_millis(10), a_waker);
        let worker = {
            let timer = timer.clone();
            thread::spawn(move || {
                timer.fire_expired(base + Duration::from_secs(1));
                let (b_woken, b_waker) = counting_waker();
                let key_b = timer.register(base + Duration::from_secs(3600), b_waker);
                (key_b, b_woken)
            })
        };
        timer.cancel(key_a); // A's Sleep dropped
        let (key_b, b_woken) = worker.join().unwrap();

        assert!(a_woken.count() <= 1);
        assert_eq!(timer.pending(), 1, "B must still be pending");
        let (_, probe) = counting_waker();
        assert!(
            matches!(timer.poll(key_b, &probe), Polled::Pending),
            "B reported fired an hour early: A's stale key cancelled it"
        );
        assert_eq!(b_woken.count(), 0);
        timer.cancel(key_b);
    });
}

#[test]
fn a_new_waker_racing_the_fire_is_woken() {
    check("timer/poll_vs_fire", None, || {
        let (timer, base) = wheel();
        let (_, old) = counting_waker();
        let key = timer.register(base + Duration::from_millis(10), old);
        let worker = {
            let timer = timer.clone();
            thread::spawn(move || {
                timer.fire_expired(base + Duration::from_secs(1));
            })
        };
        // The task moved: poll with its new waker.
        let (woken, new) = counting_waker();
        let polled = timer.poll(key, &new);
        worker.join().unwrap();
        if let Polled::Pending = polled {
            assert_eq!(
                woken.count(),
                1,
                "the fire woke the replaced waker: lost wakeup"
            );
        }
        assert_eq!(timer.pending(), 0);
    });
}

/// A `Sleep` reset from another thread while the owner looks at its wheel
/// (`TimerShared::reset` vs `next_wake`): a reset to an earlier deadline unparks the
/// owner exactly once (it may be about to sleep until the old deadline); a reset to a
/// later one does not (no needless wakeup). The timer fires at the deadline set last.
/// (And registering the first timer unparks the owner once.)
#[test]
fn a_reset_earlier_unparks_the_owner_once() {
    check("timer/reset_vs_owner", None, || {
        let unparks = StdArc::new(CountUnparks::default());
        let timer = TimerShared::new(unparks.clone());
        let base = Instant::now();
        let (woken, waker) = counting_waker();
        let key = timer.register(base + Duration::from_secs(3600), waker);
        let after_register = unparks.0.load(SeqCst);
        assert_eq!(
            after_register, 1,
            "a first timer must make its owner look at the wheel"
        );
        let other = {
            let timer = timer.clone();
            thread::spawn(move || {
                assert!(timer.reset(key, base + Duration::from_millis(10)));
            })
        };
        let _seen = timer.next_wake();
        other.join().unwrap();
        assert_eq!(
            unparks.0.load(SeqCst),
            after_register + 1,
            "a reset to an earlier deadline must unpark the owner exactly once"
        );
        assert!(timer.reset(key, base + Duration::from_secs(7200)));
        assert_eq!(
            unparks.0.load(SeqCst),
            after_register + 1,
            "a later deadline unparked"
        );
        assert_eq!(
            timer.fire_expired(base + Duration::from_secs(3601)),
            0,
            "fired before its deadline"
        );
        assert_eq!(timer.fire_expired(base + Duration::from_secs(7201)), 1);
        assert_eq!(woken.count(), 1);
        assert!(!timer.reset(key, base), "a fired timer was reset");
    });
}
