//! The task state word: lifecycle bits and a reference count in one atomic.
//!
//! Every transition is one compare-and-swap (or one `fetch_*`), so a wake racing a
//! poll, a completion racing a `JoinHandle` drop, or an abort racing either, each
//! resolves to exactly one winner. The loom model `task_state` checks them.
//!
//! | bit | set when | cleared when |
//! |---|---|---|
//! | [`RUNNING`] | a scheduler starts polling the task ([`State::transition_to_running`]) | the poll returns (`transition_to_idle` / `transition_to_complete`) |
//! | [`SCHEDULED`] | the task is put on a run queue, or woken while running | a scheduler takes it off the queue to poll it |
//! | [`COMPLETE`] | the future finished, panicked or was cancelled; never cleared | — |
//! | [`CANCELLED`] | `abort()` or runtime shutdown asked for cancellation; never cleared | — |
//! | [`JOIN_INTEREST`] | at spawn: a `JoinHandle` exists and will read the output | the `JoinHandle` is dropped |
//! | [`JOIN_WAKER`] | the `JoinHandle` stored a waker for the task to wake on completion | the `JoinHandle` replaces it, or after completion |
//!
//! The remaining high bits count references (`REF_ONE` each): the owning worker's
//! task list, the `JoinHandle`, every `Waker`, and a queued notification each hold one.
//! The task is freed when the count reaches zero.
//!
//! # Wakes are read-modify-writes
//!
//! A wake that finds SCHEDULED set changes nothing, yet it still writes the word back
//! (a compare-and-swap of the value it read) instead of trusting a plain load. The
//! waker published something before waking (a flag, a channel slot) and counts on the
//! queued run seeing it. With only a load, the wake and the scheduler's
//! `transition_to_running` form a store-buffering pattern: the wake can read the word
//! from before that run started (SCHEDULED, not RUNNING) while the run reads the
//! waker's data from before it was written, so nobody polls again and the wakeup is
//! lost. (The loom model `task_state::wake_while_running` found this; x86 allows it
//! too, its store buffer delaying the waker's write past its load.) As a successful
//! read-modify-write, the wake is either ordered before the run's RMW, which then
//! acquires everything written before the wake, or after it, and then sees RUNNING
//! and sets SCHEDULED for another poll.

use crate::loom::planted_bug;
use crate::loom::sync::atomic::{AtomicUsize, Ordering};

pub(crate) const RUNNING: usize = 1 << 0;
pub(crate) const SCHEDULED: usize = 1 << 1;
pub(crate) const COMPLETE: usize = 1 << 2;
pub(crate) const CANCELLED: usize = 1 << 3;
pub(crate) const JOIN_INTEREST: usize = 1 << 4;
pub(crate) const JOIN_WAKER: usize = 1 << 5;

const REF_SHIFT: usize = 6;
const REF_ONE: usize = 1 << REF_SHIFT;
const REF_MASK: usize = !(REF_ONE - 1);

/// A copy of the state word.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(crate) struct Snapshot(pub(crate) usize);

impl Snapshot {
    pub(crate) fn has(self, bit: usize) -> bool {
        self.0 & bit != 0
    }
    pub(crate) fn refs(self) -> usize {
        self.0 >> REF_SHIFT
    }
}

impl std::fmt::Debug for Snapshot {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Snapshot")
            .field("running", &self.has(RUNNING))
            .field("scheduled", &self.has(SCHEDULED))
            .field("complete", &self.has(COMPLETE))
            .field("cancelled", &self.has(CANCELLED))
            .field("join_interest", &self.has(JOIN_INTEREST))
            .field("join_waker", &self.has(JOIN_WAKER))
            .field("refs", &self.refs())
            .finish()
    }
}

/// What a scheduler should do with a task it took off a queue.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum ToRunning {
    /// Poll it.
    Run,
    /// Cancelled before or while queued: drop the future and complete it as cancelled.
    Cancel,
    /// Already complete (cancelled by shutdown while queued): just drop the reference.
    Done,
}

/// What to do after a poll returned `Pending`.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum ToIdle {
    /// Nothing: drop the reference the run held.
    Idle,
    /// Woken while running: queue it again, reusing the run's reference.
    Requeue,
    /// Aborted while running: cancel it now.
    Cancel,
}

/// What a wake should do.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum ToScheduled {
    /// Put the task on its scheduler's queue (a reference was taken for the queue).
    Submit,
    /// Nothing (already queued, running, or complete).
    Nothing,
}

#[derive(Debug)]
pub(crate) struct State(AtomicUsize);

impl State {
    /// A new task: three references (owner list, `JoinHandle`, first queue entry),
    /// scheduled, with join interest.
    pub(crate) fn new() -> State {
        State(AtomicUsize::new((3 * REF_ONE) | SCHEDULED | JOIN_INTEREST))
    }

    pub(crate) fn load(&self) -> Snapshot {
        Snapshot(self.0.load(Ordering::Acquire))
    }

    #[inline]
    fn update<R>(&self, mut f: impl FnMut(usize) -> (Option<usize>, R)) -> R {
        let mut cur = self.0.load(Ordering::Acquire);
        loop {
            let (next, r) = f(cur);
            let Some(next) = next else { return r };
            match self
                .0
                .compare_exchange_weak(cur, next, Ordering::AcqRel, Ordering::Acquire)
            {
                Ok(_) => return r,
                Err(actual) => cur = actual,
            }
        }
    }

    /// A scheduler took the task off a queue (the queue's reference is now the run's).
    #[inline]
    pub(crate) fn transition_to_running(&self) -> ToRunning {
        self.update(|cur| {
            debug_assert!(
                cur & SCHEDULED != 0,
                "running a task that was not scheduled"
            );
            if cur & COMPLETE != 0 {
                return (Some(cur & !SCHEDULED), ToRunning::Done);
            }
            let next = (cur & !SCHEDULED) | RUNNING;
            if cur & CANCELLED != 0 {
                (Some(next), ToRunning::Cancel)
            } else {
                (Some(next), ToRunning::Run)
            }
        })
    }

    /// The poll returned `Pending`.
    #[inline]
    pub(crate) fn transition_to_idle(&self) -> ToIdle {
        self.update(|cur| {
            debug_assert!(cur & RUNNING != 0);
            if cur & CANCELLED != 0 {
                return (None, ToIdle::Cancel);
            }
            let next = cur & !RUNNING;
            if cur & SCHEDULED != 0 {
                (Some(next), ToIdle::Requeue)
            } else {
                (Some(next), ToIdle::Idle)
            }
        })
    }

    /// The future finished (or was dropped by cancellation); returns the snapshot after.
    pub(crate) fn transition_to_complete(&self) -> Snapshot {
        let order = planted_bug!(
            "complete_relaxed",
            // Publish COMPLETE without releasing the output stored before.
            bug: Ordering::Relaxed,
            code: Ordering::AcqRel,
        );
        let prev = self.0.fetch_xor(RUNNING | COMPLETE, order);
        debug_assert!(prev & RUNNING != 0 && prev & COMPLETE == 0);
        Snapshot(prev ^ (RUNNING | COMPLETE))
    }

    /// A wake through a reference the waker gives up (`Waker::wake`). On `Submit`
    /// that reference becomes the queue's; otherwise the caller drops it.
    #[inline]
    pub(crate) fn transition_to_scheduled_by_val(&self) -> ToScheduled {
        self.update(|cur| {
            if cur & COMPLETE != 0 {
                (None, ToScheduled::Nothing)
            } else if cur & SCHEDULED != 0 {
                // Already queued: nothing changes, but see "Wakes are read-modify-writes".
                (Some(cur), ToScheduled::Nothing)
            } else if cur & RUNNING != 0 {
                // Polled again once the current poll returns.
                planted_bug!(
                    "wake_while_running_lost",
                    // A wake while running is dropped instead of recorded.
                    bug: (None, ToScheduled::Nothing),
                    code: (Some(cur | SCHEDULED), ToScheduled::Nothing),
                )
            } else {
                (Some(cur | SCHEDULED), ToScheduled::Submit)
            }
        })
    }

    /// A wake through a borrowed reference (`Waker::wake_by_ref`, abort). On `Submit`
    /// a new reference was taken for the queue.
    pub(crate) fn transition_to_scheduled_by_ref(&self) -> ToScheduled {
        self.update(|cur| {
            if cur & COMPLETE != 0 {
                (None, ToScheduled::Nothing)
            } else if cur & SCHEDULED != 0 {
                // Already queued: nothing changes, but see "Wakes are read-modify-writes".
                (Some(cur), ToScheduled::Nothing)
            } else if cur & RUNNING != 0 {
                planted_bug!(
                    "wake_while_running_lost",
                    // As in `transition_to_scheduled_by_val`.
                    bug: (None, ToScheduled::Nothing),
                    code: (Some(cur | SCHEDULED), ToScheduled::Nothing),
                )
            } else {
                (Some((cur | SCHEDULED) + REF_ONE), ToScheduled::Submit)
            }
        })
    }

    /// Requests cancellation. Returns `Submit` if the task was idle and must be queued
    /// (a reference was taken) so its own scheduler drops the future; `Nothing` if it
    /// is complete, already cancelled, queued or running (its runner will see the bit).
    pub(crate) fn transition_to_cancelled(&self) -> ToScheduled {
        self.update(|cur| {
            if cur & (COMPLETE | CANCELLED) != 0 {
                (None, ToScheduled::Nothing)
            } else if cur & (RUNNING | SCHEDULED) != 0 {
                (Some(cur | CANCELLED), ToScheduled::Nothing)
            } else {
                (
                    Some((cur | CANCELLED | SCHEDULED) + REF_ONE),
                    ToScheduled::Submit,
                )
            }
        })
    }

    /// Sets CANCELLED and, if the task is idle, claims it for the caller to cancel in
    /// place (used at shutdown by the thread that owns the task). Returns whether the
    /// caller must now drop the future and complete the task.
    pub(crate) fn transition_to_shutdown(&self) -> bool {
        self.update(|cur| {
            if cur & (COMPLETE | RUNNING) != 0 {
                (Some(cur | CANCELLED), false)
            } else {
                (Some(cur | CANCELLED | RUNNING), true)
            }
        })
    }

    /// The `JoinHandle` stores a waker: set JOIN_WAKER unless the task completed.
    pub(crate) fn set_join_waker(&self) -> Result<Snapshot, Snapshot> {
        let mut out = Err(Snapshot(0));
        self.update(|cur| {
            debug_assert!(cur & JOIN_INTEREST != 0 && cur & JOIN_WAKER == 0);
            if cur & COMPLETE != 0 {
                out = Err(Snapshot(cur));
                (None, ())
            } else {
                out = Ok(Snapshot(cur | JOIN_WAKER));
                (Some(cur | JOIN_WAKER), ())
            }
        });
        out
    }

    /// The `JoinHandle` takes its waker back to replace it: clear JOIN_WAKER unless
    /// the task completed (then the task may be reading it).
    pub(crate) fn unset_join_waker(&self) -> Result<Snapshot, Snapshot> {
        let mut out = Err(Snapshot(0));
        self.update(|cur| {
            debug_assert!(cur & JOIN_INTEREST != 0 && cur & JOIN_WAKER != 0);
            if cur & COMPLETE != 0 {
                out = Err(Snapshot(cur));
                (None, ())
            } else {
                out = Ok(Snapshot(cur & !JOIN_WAKER));
                (Some(cur & !JOIN_WAKER), ())
            }
        });
        out
    }

    /// After completion the task has woken the join waker; hand the slot back.
    pub(crate) fn unset_join_waker_after_complete(&self) -> Snapshot {
        Snapshot(self.0.fetch_and(!JOIN_WAKER, Ordering::AcqRel) & !JOIN_WAKER)
    }

    /// The `JoinHandle` is dropped. Returns the snapshot before: if COMPLETE was set,
    /// the output is the caller's to drop; if JOIN_WAKER was not set (or the task is
    /// complete and has handed it back), the waker slot is the caller's too.
    pub(crate) fn drop_join_interest(&self) -> Snapshot {
        let mut out = Snapshot(0);
        self.update(|cur| {
            out = Snapshot(cur);
            let next = if cur & COMPLETE != 0 {
                cur & !JOIN_INTEREST
            } else {
                cur & !(JOIN_INTEREST | JOIN_WAKER)
            };
            (Some(next), ())
        });
        out
    }

    pub(crate) fn ref_inc(&self) {
        let prev = self.0.fetch_add(REF_ONE, Ordering::Relaxed);
        // A count this large means a leak of wakers; stop before it wraps.
        if prev > isize::MAX as usize {
            std::process::abort();
        }
    }

    /// Drops one reference; returns whether it was the last.
    pub(crate) fn ref_dec(&self) -> bool {
        let prev = self.0.fetch_sub(REF_ONE, Ordering::AcqRel);
        debug_assert!(prev & REF_MASK >= REF_ONE);
        prev & REF_MASK == REF_ONE
    }

    /// Drops two references at once; returns whether they were the last.
    pub(crate) fn ref_dec_twice(&self) -> bool {
        let prev = self.0.fetch_sub(2 * REF_ONE, Ordering::AcqRel);
        debug_assert!(prev & REF_MASK >= 2 * REF_ONE);
        prev & REF_MASK == 2 * REF_ONE
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every bit of a word but the references: what the transitions below compare.
    const FLAGS: usize = RUNNING | SCHEDULED | COMPLETE | CANCELLED | JOIN_INTEREST | JOIN_WAKER;

    /// The count of two references.
    const TWO_REFS: usize = 2 * REF_ONE;

    /// A state word with `flags` and two references (none of the transitions below
    /// reaches zero or overflows from there).
    fn at(flags: usize) -> State {
        State(AtomicUsize::new(flags | TWO_REFS))
    }

    fn flags(state: &State) -> usize {
        state.load().0 & FLAGS
    }

    #[test]
    fn the_bits_are_distinct_and_below_the_count() {
        crate::loom::unit_test(|| {
            let bits = [
                RUNNING,
                SCHEDULED,
                COMPLETE,
                CANCELLED,
                JOIN_INTEREST,
                JOIN_WAKER,
            ];
            for (i, bit) in bits.iter().enumerate() {
                assert_eq!(*bit, 1 << i, "bit {i}");
            }
            assert_eq!(REF_ONE, FLAGS + 1);
            assert_eq!(REF_MASK, !FLAGS);
            let s = State::new().load();
            assert_eq!(s.refs(), 3);
            assert_eq!(s.0 & FLAGS, SCHEDULED | JOIN_INTEREST);
            for bit in bits {
                assert_eq!(s.has(bit), bit == SCHEDULED || bit == JOIN_INTEREST);
            }
            let shown = format!("{s:?}");
            assert!(
                shown.contains("scheduled: true")
                    && shown.contains("running: false")
                    && shown.contains("refs: 3"),
                "{shown}"
            );
        });
    }

    #[test]
    fn running_takes_the_queue_entry_and_says_what_to_do() {
        crate::loom::unit_test(|| {
            for (from, to, answer) in [
                (
                    SCHEDULED | JOIN_INTEREST,
                    RUNNING | JOIN_INTEREST,
                    ToRunning::Run,
                ),
                (
                    SCHEDULED | CANCELLED,
                    RUNNING | CANCELLED,
                    ToRunning::Cancel,
                ),
                (
                    SCHEDULED | COMPLETE | CANCELLED,
                    COMPLETE | CANCELLED,
                    ToRunning::Done,
                ),
                (SCHEDULED | COMPLETE, COMPLETE, ToRunning::Done),
            ] {
                let s = at(from);
                assert_eq!(s.transition_to_running(), answer, "from {from:#b}");
                assert_eq!(flags(&s), to, "from {from:#b}");
                assert_eq!(s.load().refs(), 2);
            }
        });
    }

    #[test]
    fn idle_requeues_a_task_woken_while_running_and_leaves_a_cancelled_one() {
        crate::loom::unit_test(|| {
            for (from, to, answer) in [
                (RUNNING | JOIN_INTEREST, JOIN_INTEREST, ToIdle::Idle),
                (RUNNING | SCHEDULED, SCHEDULED, ToIdle::Requeue),
                (RUNNING | CANCELLED, RUNNING | CANCELLED, ToIdle::Cancel),
                (
                    RUNNING | SCHEDULED | CANCELLED,
                    RUNNING | SCHEDULED | CANCELLED,
                    ToIdle::Cancel,
                ),
            ] {
                let s = at(from);
                assert_eq!(s.transition_to_idle(), answer, "from {from:#b}");
                assert_eq!(flags(&s), to, "from {from:#b}");
                assert_eq!(s.load().refs(), 2);
            }
        });
    }

    #[test]
    fn complete_clears_running_and_returns_the_word_after() {
        crate::loom::unit_test(|| {
            let s = at(RUNNING | JOIN_INTEREST | JOIN_WAKER | SCHEDULED);
            let after = s.transition_to_complete();
            assert_eq!(after, s.load());
            assert_eq!(
                after.0 & FLAGS,
                COMPLETE | JOIN_INTEREST | JOIN_WAKER | SCHEDULED
            );
            assert_eq!(after.refs(), 2);
        });
    }

    #[test]
    fn a_wake_queues_only_an_idle_task_and_marks_a_running_one() {
        crate::loom::unit_test(|| {
            for by_ref in [false, true] {
                for (from, to, answer) in [
                    (
                        JOIN_INTEREST,
                        SCHEDULED | JOIN_INTEREST,
                        ToScheduled::Submit,
                    ),
                    (SCHEDULED, SCHEDULED, ToScheduled::Nothing),
                    (RUNNING, RUNNING | SCHEDULED, ToScheduled::Nothing),
                    (
                        RUNNING | SCHEDULED,
                        RUNNING | SCHEDULED,
                        ToScheduled::Nothing,
                    ),
                    (COMPLETE, COMPLETE, ToScheduled::Nothing),
                ] {
                    let s = at(from);
                    let got = if by_ref {
                        s.transition_to_scheduled_by_ref()
                    } else {
                        s.transition_to_scheduled_by_val()
                    };
                    assert_eq!(got, answer, "by_ref {by_ref}, from {from:#b}");
                    assert_eq!(flags(&s), to, "by_ref {by_ref}, from {from:#b}");
                    // By reference, a submit takes a new reference for the queue; by
                    // value it is the waker's.
                    let refs = if by_ref && answer == ToScheduled::Submit {
                        3
                    } else {
                        2
                    };
                    assert_eq!(s.load().refs(), refs, "by_ref {by_ref}, from {from:#b}");
                }
            }
        });
    }

    #[test]
    fn cancelling_queues_only_an_idle_task() {
        crate::loom::unit_test(|| {
            for (from, to, answer, refs) in [
                (
                    JOIN_INTEREST,
                    JOIN_INTEREST | CANCELLED | SCHEDULED,
                    ToScheduled::Submit,
                    3,
                ),
                (RUNNING, RUNNING | CANCELLED, ToScheduled::Nothing, 2),
                (SCHEDULED, SCHEDULED | CANCELLED, ToScheduled::Nothing, 2),
                (
                    CANCELLED | SCHEDULED,
                    CANCELLED | SCHEDULED,
                    ToScheduled::Nothing,
                    2,
                ),
                (COMPLETE, COMPLETE, ToScheduled::Nothing, 2),
            ] {
                let s = at(from);
                assert_eq!(s.transition_to_cancelled(), answer, "from {from:#b}");
                assert_eq!(flags(&s), to, "from {from:#b}");
                assert_eq!(s.load().refs(), refs, "from {from:#b}");
            }
        });
    }

    #[test]
    fn shutdown_claims_only_a_task_nobody_runs() {
        crate::loom::unit_test(|| {
            for (from, to, claimed) in [
                (JOIN_INTEREST, JOIN_INTEREST | CANCELLED | RUNNING, true),
                (SCHEDULED, SCHEDULED | CANCELLED | RUNNING, true),
                (SCHEDULED | CANCELLED, SCHEDULED | CANCELLED | RUNNING, true),
                (RUNNING, RUNNING | CANCELLED, false),
                (RUNNING | CANCELLED, RUNNING | CANCELLED, false),
                (COMPLETE, COMPLETE | CANCELLED, false),
            ] {
                let s = at(from);
                assert_eq!(s.transition_to_shutdown(), claimed, "from {from:#b}");
                assert_eq!(flags(&s), to, "from {from:#b}");
                assert_eq!(s.load().refs(), 2);
            }
        });
    }

    #[test]
    fn the_join_waker_bit_moves_only_before_completion() {
        crate::loom::unit_test(|| {
            let s = at(JOIN_INTEREST);
            let set = s.set_join_waker().map(|w| w.0 & FLAGS);
            assert_eq!(set, Ok(JOIN_INTEREST | JOIN_WAKER));
            assert_eq!(flags(&s), JOIN_INTEREST | JOIN_WAKER);
            let unset = s.unset_join_waker().map(|w| w.0 & FLAGS);
            assert_eq!(unset, Ok(JOIN_INTEREST));
            assert_eq!(flags(&s), JOIN_INTEREST);

            let s = at(JOIN_INTEREST | COMPLETE);
            let set = s.set_join_waker().map_err(|w| w.0);
            assert_eq!(set, Err(JOIN_INTEREST | COMPLETE | TWO_REFS));
            assert_eq!(flags(&s), JOIN_INTEREST | COMPLETE);

            let s = at(JOIN_INTEREST | JOIN_WAKER | COMPLETE);
            let unset = s.unset_join_waker().map_err(|w| w.0);
            assert_eq!(unset, Err(JOIN_INTEREST | JOIN_WAKER | COMPLETE | TWO_REFS));
            assert_eq!(flags(&s), JOIN_INTEREST | JOIN_WAKER | COMPLETE);

            let after = s.unset_join_waker_after_complete();
            assert_eq!(after.0, JOIN_INTEREST | COMPLETE | TWO_REFS);
            assert_eq!(after, s.load());
        });
    }

    #[test]
    fn dropping_join_interest_keeps_the_waker_bit_only_after_completion() {
        crate::loom::unit_test(|| {
            for (from, to) in [
                (JOIN_INTEREST | JOIN_WAKER | RUNNING, RUNNING),
                (JOIN_INTEREST | SCHEDULED, SCHEDULED),
                (JOIN_INTEREST | JOIN_WAKER | COMPLETE, JOIN_WAKER | COMPLETE),
                (JOIN_INTEREST | COMPLETE, COMPLETE),
            ] {
                let s = at(from);
                assert_eq!(s.drop_join_interest().0, from | TWO_REFS);
                assert_eq!(flags(&s), to, "from {from:#b}");
                assert_eq!(s.load().refs(), 2);
            }
        });
    }

    #[test]
    fn references_count_up_and_down_to_the_last() {
        crate::loom::unit_test(|| {
            let s = at(JOIN_INTEREST);
            s.ref_inc();
            assert_eq!(s.load().refs(), 3);
            assert_eq!(flags(&s), JOIN_INTEREST);
            assert!(!s.ref_dec());
            assert_eq!(s.load().refs(), 2);
            s.ref_inc();
            assert!(!s.ref_dec_twice());
            assert_eq!(s.load().refs(), 1);
            assert!(s.ref_dec());
            assert_eq!(s.load().0, JOIN_INTEREST);

            let s = at(COMPLETE);
            assert!(s.ref_dec_twice());
            assert_eq!(s.load().0, COMPLETE);
        });
    }
}
