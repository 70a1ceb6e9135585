//! `epoll_wait`: the kernel's `ep_poll`. Several threads may wait at once; waiters are
//! exclusive (one wakeup wakes one), and a thread that delivers while items remain on
//! our ready list wakes another (the end of `ep_send_events`).
//!
//! A waiter holds the lock except while blocked in the kernel wait. It takes a ticket
//! in `Inner::blocked` before it blocks and hands it back when it has re-taken the lock
//! after the kernel wait returned: its *check-in*. A report it took in between is not
//! delivered yet, so other threads treat a pending ticket as events in flight.

use std::io;
use std::time::{Duration, Instant};

use super::item::ItemData;
use super::kernel::Kernel;
use super::poller::{Inner, Poller};
use super::send_events::Requeue;
use super::{EP_MAX_EVENTS, Event};
use crate::loom::planted_bug;
use crate::loom::sync::MutexGuard;

type Guard<'a, K, D> = MutexGuard<'a, Inner<<K as Kernel>::Proxy, D>>;

impl<K: Kernel, D: ItemData> Poller<K, D> {
    /// `epoll_wait` (the kernel's `ep_poll`).
    pub(crate) fn wait(&self, out: &mut [Event], timeout: Option<Duration>) -> io::Result<usize> {
        self.wait_then(out, timeout, |_| {})
    }

    /// [`wait`](Self::wait), then `deliver` on the delivered events (also when there
    /// are none) before the lock is released: while it runs, every event's data
    /// belongs to a live item, since a delete waits for the lock. The reactor follows
    /// the data straight to its source this way. `deliver` must not call back in.
    #[inline]
    pub(crate) fn wait_then(
        &self,
        out: &mut [Event],
        timeout: Option<Duration>,
        deliver: impl FnOnce(&[Event]),
    ) -> io::Result<usize> {
        if out.is_empty() || out.len() > EP_MAX_EVENTS {
            return Err(io::Error::from_raw_os_error(libc::EINVAL));
        }
        let mut guard = self.lock();
        let alone = planted_bug!(
            "fast_path_ignores_waiters",
            // Take the fast path beside a thread asleep in the kernel wait.
            bug: true,
            code: guard.in_wait == 0,
        );
        if timeout == Some(Duration::ZERO) && alone && guard.ready.is_empty() {
            // The most frequent call (a runtime's turn between tasks, the benchmark's
            // steady state): a wait that cannot block, with nothing on our part of the
            // list and nobody else inside `wait`, so no waiter to hand on to and no
            // check-in to await. The delivery is the kernel instance's reports alone,
            // as `ep_poll` with a zero timeout goes straight to `ep_send_events`.
            let n = guard.deliver_reports(&self.kernel, out)?;
            deliver(&out[..n]);
            return Ok(n);
        }
        self.wait_slow(guard, out, timeout, deliver)
    }

    /// Every other wait: one that may block, one that must deliver our part of the
    /// list first, or one with other threads inside `wait`.
    #[inline(never)]
    fn wait_slow(
        &self,
        mut guard: Guard<'_, K, D>,
        out: &mut [Event],
        timeout: Option<Duration>,
        deliver: impl FnOnce(&[Event]),
    ) -> io::Result<usize> {
        let deadline = match timeout {
            Some(d) if !d.is_zero() => Instant::now().checked_add(d),
            _ => None,
        };
        guard.in_wait += 1;
        if guard.in_wait > 1 {
            // A second waiter: from now on a delivery may have to wake another thread.
            match self.kernel.prepare_notify() {
                Ok(made) => guard.other_own_fds.extend(made),
                Err(e) => {
                    guard.in_wait -= 1;
                    return Err(e);
                }
            }
        }
        let (mut guard, res) = self.wait_locked(guard, out, timeout, deadline);
        guard.in_wait -= 1;
        if let Ok(n) = res {
            deliver(&out[..n]);
        }
        // Items left on our list and a thread asleep: wake one, which will deliver and
        // wake the next if items remain (the end of `ep_send_events`). Items left on the
        // kernel instance's list are the kernel's to announce, and it does.
        let notify = planted_bug!(
            "poller_no_handoff",
            // Keep the items and let the sleeping thread sleep on.
            bug: false,
            code: !guard.ready.is_empty() && !guard.blocked.is_empty(),
        );
        drop(guard);
        if notify {
            self.kernel.notify();
        }
        res
    }

    /// `ep_poll`'s loop: delivers until something is delivered, an error, or the time
    /// is up.
    fn wait_locked<'a>(
        &'a self,
        mut guard: Guard<'a, K, D>,
        out: &mut [Event],
        timeout: Option<Duration>,
        deadline: Option<Instant>,
    ) -> (Guard<'a, K, D>, io::Result<usize>) {
        let mut checked_in = false;
        loop {
            let res;
            (guard, res) = self.deliver_once(guard, out, (timeout, deadline), !checked_in);
            match res {
                Ok(0) => {}
                res => return (guard, res),
            }
            // Nothing to report: every candidate was stale. Keep waiting while time
            // remains (ep_poll loops back in the same case).
            if !expired(timeout, deadline) {
                continue;
            }
            if checked_in || guard.blocked.is_empty() {
                return (guard, Ok(0));
            }
            // Planted bug: time is up; return without awaiting the blocked thread's
            // check-in.
            if planted_bug!("timed_out_skips_checkin", bug: true, code: false) {
                return (guard, Ok(0));
            }
            // Another thread is, or was just, blocked in the kernel wait: it may have
            // taken reports it has not delivered yet (a level-triggered item it will
            // re-queue). The kernel's `ep_poll` would see those events as available and
            // wait for `ep->mtx`; wait for that thread to check in, then look once more.
            guard = self.await_checkins(guard);
            checked_in = true;
        }
    }

    /// One delivery: our part of the list first (the kernel's order), then the kernel
    /// instance's part for exactly the room that is left. With nothing to report yet
    /// and `may_block`, this is where a wait sleeps, while its `(timeout, deadline)`
    /// allows.
    fn deliver_once<'a>(
        &'a self,
        mut guard: Guard<'a, K, D>,
        out: &mut [Event],
        (timeout, deadline): (Option<Duration>, Option<Instant>),
        may_block: bool,
    ) -> (Guard<'a, K, D>, io::Result<usize>) {
        let mut requeue = Requeue::default();
        let mut n = match guard.walk_ours(&self.kernel, out, &mut requeue) {
            Ok(n) => n,
            Err(e) => {
                guard.place_requeue(&self.kernel, requeue, false);
                return (guard, Err(e));
            }
        };
        let mut kernel_empty = false;
        if n < out.len() {
            // Sleep only with nothing to report and nothing left to tidy: items just
            // dropped from our list still need `place_requeue` after this walk.
            let res = if n == 0 && guard.dropped.is_empty() && may_block {
                let res;
                (guard, res) = self.kernel_wait(guard, &mut out[n..], remaining(timeout, deadline));
                res
            } else {
                self.kernel.wait(&mut out[n..], Some(Duration::ZERO))
            };
            match res {
                Ok(k) => match guard.take_kernel_reports(&self.kernel, out, n, k, &mut requeue) {
                    Ok((m, empty)) => (n, kernel_empty) = (m, empty),
                    Err(e) => {
                        guard.place_requeue(&self.kernel, requeue, false);
                        return (guard, Err(e));
                    }
                },
                Err(e) if n == 0 => {
                    guard.place_requeue(&self.kernel, requeue, false);
                    return (guard, Err(e));
                }
                // Deliver what our list gave; the kernel's side waits for next time.
                Err(_) => {}
            }
        }
        guard.place_requeue(&self.kernel, requeue, kernel_empty);
        (guard, Ok(n))
    }

    /// The kernel wait, for up to `time_left`: without the lock if it may block, with
    /// a ticket in `blocked` until this thread checks in again.
    fn kernel_wait<'a>(
        &'a self,
        mut guard: Guard<'a, K, D>,
        out: &mut [Event],
        time_left: Option<Duration>,
    ) -> (Guard<'a, K, D>, io::Result<usize>) {
        if time_left == Some(Duration::ZERO) {
            let res = self.kernel.wait(out, time_left);
            return (guard, res);
        }
        let ticket = guard.next_ticket;
        guard.next_ticket += 1;
        guard.blocked.push(ticket);
        drop(guard);
        let res = self.kernel.wait(out, time_left);
        let mut guard = self.lock();
        if let Some(pos) = guard.blocked.iter().position(|&t| t == ticket) {
            guard.blocked.swap_remove(pos);
        }
        if guard.awaiting_checkins > 0 {
            self.checkin.notify_all();
        }
        (guard, res)
    }

    /// Waits until every thread now blocked in the kernel wait has checked in, waking
    /// them one at a time with the notify fd.
    fn await_checkins<'a>(&'a self, mut guard: Guard<'a, K, D>) -> Guard<'a, K, D> {
        let pending: Vec<u64> = guard.blocked.clone();
        guard.awaiting_checkins += 1;
        while pending.iter().any(|t| guard.blocked.contains(t)) {
            // A thread still blocked needs a wakeup to check in; one that is between
            // the kernel's return and the lock checks in by itself. Each notify wakes
            // one blocked thread, so notify again after each check-in.
            self.kernel.notify();
            guard = self.checkin.wait(guard);
        }
        guard.awaiting_checkins -= 1;
        guard
    }
}

/// How long a wait with `timeout`, ending at `deadline`, may still block: `None` for
/// ever (no timeout, or one so long that its deadline overflowed), zero for a
/// non-blocking wait.
fn remaining(timeout: Option<Duration>, deadline: Option<Instant>) -> Option<Duration> {
    match (timeout, deadline) {
        (None, _) => None,
        (Some(_), Some(deadline)) => Some(deadline.saturating_duration_since(Instant::now())),
        (Some(d), None) => d.is_zero().then_some(Duration::ZERO),
    }
}

/// Whether a wait with `timeout`, ending at `deadline`, has run out of time.
fn expired(timeout: Option<Duration>, deadline: Option<Instant>) -> bool {
    // The loom models' fake kernel has no time: a timed wait it returned from with
    // nothing has reached its timeout (else the loop would spin on the real clock).
    #[cfg(all(test, epitome_loom))]
    if timeout.is_some() {
        return true;
    }
    match (timeout, deadline) {
        (None, _) => false,
        (Some(_), Some(deadline)) => Instant::now() >= deadline,
        (Some(d), None) => d.is_zero(),
    }
}
