//! Cooperative budget: a task that keeps finding its resources ready must still yield.
//!
//! Each task poll starts with a budget of [`BUDGET`] operations (tokio uses the same
//! number). Every resource poll that could make progress (I/O readiness, a
//! `JoinHandle`, a timer) spends one unit through [`poll_proceed`]; when the budget is
//! spent the resource answers `Pending` and wakes the task at once, so it goes to the
//! back of its run queue and the other tasks (and the reactor) get their turn. A
//! resource that turns out not to make progress gives its unit back (the guard's
//! `Drop`) unless it calls [`RestoreOnPending::made_progress`].
//!
//! `task::consume_budget` spends a unit the same way, for loops that meet no resource.
//! Non-async inspection (`JoinSet::try_join_next`, `JoinHandle::is_finished`, metrics)
//! never calls [`poll_proceed`]: it neither needs nor spends the budget.
//!
//! A task's poll and every poll of a `block_on` future (either runtime's, and
//! `Handle::block_on`'s) have a budget, as in tokio. Off any runtime and inside
//! `block_in_place` the budget is unconstrained.

use std::task::{Context, Poll};

use crate::loom::os::cell::Cell;

/// Operations per task poll.
pub(crate) const BUDGET: u8 = 128;

crate::loom::thread_local! {
    /// `None`: unconstrained.
    static CURRENT: Cell<Option<u8>> = const { Cell::new(None) };
    /// Polls answered `Pending` because the budget ran out, not yet collected.
    static FORCED_YIELDS: Cell<u64> = const { Cell::new(0) };
}

/// Runs `f` (a task poll) with a fresh budget, restoring the previous one after.
pub(crate) fn with_budget<R>(f: impl FnOnce() -> R) -> R {
    struct Reset(Option<u8>);
    impl Drop for Reset {
        fn drop(&mut self) {
            let prev = self.0;
            let _ = CURRENT.try_with(|c| c.set(prev));
        }
    }
    let prev = CURRENT.with(|c| c.replace(Some(BUDGET)));
    let _reset = Reset(prev);
    f()
}

/// Gives the task about to be polled on this worker thread a fresh budget (the worker
/// loop's [`with_budget`]: nothing outside a task poll has a budget there, so there is
/// no previous one to restore; [`end_task_poll`] takes it away after).
#[inline]
pub(crate) fn start_task_poll() {
    let _ = CURRENT.try_with(|c| c.set(Some(BUDGET)));
}

/// After [`start_task_poll`]'s poll.
#[inline]
pub(crate) fn end_task_poll() {
    let _ = CURRENT.try_with(|c| c.set(None));
}

/// Runs `f` with the budget unconstrained, restoring it after (for a resource that
/// charges its own poll once and then polls inner resources on its caller's behalf).
pub(crate) fn unconstrained<R>(f: impl FnOnce() -> R) -> R {
    struct Reset(Option<u8>);
    impl Drop for Reset {
        fn drop(&mut self) {
            let prev = self.0;
            let _ = CURRENT.try_with(|c| c.set(prev));
        }
    }
    let prev = CURRENT.try_with(|c| c.replace(None)).unwrap_or(None);
    let _reset = Reset(prev);
    f()
}

/// Spends one unit of the current task's budget, or answers `Pending` (having woken
/// the task) when it is spent.
#[inline]
pub(crate) fn poll_proceed(cx: &mut Context<'_>) -> Poll<RestoreOnPending> {
    let current = CURRENT.try_with(Cell::get).unwrap_or(None);
    match current {
        None => Poll::Ready(RestoreOnPending(Cell::new(None))),
        Some(0) => {
            cx.waker().wake_by_ref();
            let _ = FORCED_YIELDS.try_with(|c| c.set(c.get() + 1));
            Poll::Pending
        }
        Some(n) => {
            let _ = CURRENT.try_with(|c| c.set(Some(n - 1)));
            Poll::Ready(RestoreOnPending(Cell::new(Some(n))))
        }
    }
}

/// Whether the current task may make progress on one more resource: `false` (having
/// woken the task, so it goes to the back of its queue) when its budget is spent. A
/// resource that then makes progress calls [`spend`]; one that does not spends nothing.
/// The same budget as [`poll_proceed`], without a guard to restore.
#[inline]
pub(crate) fn has_budget(cx: &mut Context<'_>) -> bool {
    if CURRENT.try_with(Cell::get).ok().flatten() == Some(0) {
        cx.waker().wake_by_ref();
        let _ = FORCED_YIELDS.try_with(|c| c.set(c.get() + 1));
        return false;
    }
    true
}

/// Spends one unit of the current task's budget (after [`has_budget`], when the
/// resource made progress).
#[inline]
pub(crate) fn spend() {
    let _ = CURRENT.try_with(|c| {
        if let Some(n) = c.get() {
            c.set(Some(n.saturating_sub(1)));
        }
    });
}

/// Whether the current budget has units left (an unconstrained one always has).
pub(crate) fn has_remaining() -> bool {
    CURRENT.try_with(Cell::get).ok().flatten() != Some(0)
}

/// Takes the count of budget-forced yields on this thread since the last call.
pub(crate) fn take_forced_yields() -> u64 {
    FORCED_YIELDS.try_with(|c| c.replace(0)).unwrap_or(0)
}

/// Returned by [`poll_proceed`]: gives the unit back if dropped before
/// [`made_progress`](Self::made_progress).
pub(crate) struct RestoreOnPending(Cell<Option<u8>>);

impl RestoreOnPending {
    /// The operation made progress: keep the unit spent.
    #[inline]
    pub(crate) fn made_progress(&self) {
        self.0.set(None);
    }
}

impl Drop for RestoreOnPending {
    #[inline]
    fn drop(&mut self) {
        if let Some(n) = self.0.get() {
            let _ = CURRENT.try_with(|c| c.set(Some(n)));
        }
    }
}
