//! Cooperative scheduling, as tokio's `task::coop`: every task poll has a budget of
//! operations; resources spend it, and a task that has spent it is made to yield.
//!
//! Epitome's own resources (I/O readiness, `JoinHandle`, `JoinSet::join_next`, timers)
//! spend one unit per poll that makes progress. A loop that meets none of them can
//! spend units itself with [`consume_budget`], or wrap a future from another crate with
//! [`cooperative`]. [`unconstrained`] opts a future out.
//!
//! ```
//! use epitome_runtime::task::coop;
//!
//! # fn main() -> std::io::Result<()> {
//! let rt = epitome_runtime::runtime::Builder::new_current_thread().build()?;
//! let spent = rt.block_on(rt.spawn(async {
//!     assert!(coop::has_budget_remaining());
//!     for _ in 0..128 {
//!         coop::consume_budget().await;
//!     }
//!     // Spent: the next resource poll would yield first.
//!     !coop::has_budget_remaining()
//! }))?;
//! assert!(spent);
//! # Ok(())
//! # }
//! ```

use std::future::{Future, poll_fn};
use std::pin::Pin;
use std::task::{Context, Poll};

use crate::coop as budget;

/// Spends one unit of the running task's cooperative budget, yielding to the
/// scheduler only if the budget is spent.
///
/// A task that loops over work needing no I/O (and so never meets a resource that
/// would make it yield) can call this in the loop: it costs nothing until the task has
/// had its share (128 units per poll), then yields once. A `block_on` future has a
/// budget too; off any runtime and inside
/// [`block_in_place`](crate::task::block_in_place) the budget is unlimited and this
/// never yields.
///
/// ```
/// async fn sum(values: &[u64]) -> u64 {
///     let mut total = 0;
///     for v in values {
///         total += v;
///         epitome_runtime::task::consume_budget().await;
///     }
///     total
/// }
/// # let rt = epitome_runtime::runtime::Builder::new_current_thread().build().unwrap();
/// # let values: Vec<u64> = (0..1000).collect();
/// # let total = rt.block_on(async move { epitome_runtime::spawn(async move { sum(&values).await }).await });
/// # assert_eq!(total.unwrap(), 499_500);
/// ```
pub async fn consume_budget() {
    let mut spent = false;
    poll_fn(move |cx| {
        if spent {
            return Poll::Ready(());
        }
        let polled = budget::poll_proceed(cx).map(|unit| unit.made_progress());
        spent = polled.is_ready();
        polled
    })
    .await
}

/// Whether the running task has budget left (always true off a budget: outside a
/// task, off any runtime).
pub fn has_budget_remaining() -> bool {
    budget::has_remaining()
}

/// Runs `future` outside the cooperative budget: resources polled inside it neither
/// spend the task's budget nor make it yield.
///
/// Use with care: a future that is always ready then never lets other tasks run.
pub fn unconstrained<F: Future>(future: F) -> Unconstrained<F> {
    Unconstrained { future }
}

/// The future of [`unconstrained`].
#[derive(Debug)]
#[must_use = "futures do nothing unless polled"]
pub struct Unconstrained<F> {
    future: F,
}

impl<F: Future> Future for Unconstrained<F> {
    type Output = F::Output;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<F::Output> {
        // SAFETY: structural pinning of the only field: it is never moved out, and
        // `Unconstrained` has no `Drop` and no `Unpin` impl of its own.
        let future = unsafe { self.map_unchecked_mut(|s| &mut s.future) };
        budget::unconstrained(|| future.poll(cx))
    }
}

/// Makes `future` spend one unit of the task's budget per poll that completes it, and
/// yield first when the budget is spent (as epitome's own resources do): for futures
/// from crates that know nothing of the budget.
pub fn cooperative<F: Future>(future: F) -> Coop<F> {
    Coop { future }
}

/// The future of [`cooperative`].
#[derive(Debug)]
#[must_use = "futures do nothing unless polled"]
pub struct Coop<F> {
    future: F,
}

impl<F: Future> Future for Coop<F> {
    type Output = F::Output;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<F::Output> {
        let unit = std::task::ready!(budget::poll_proceed(cx));
        // SAFETY: structural pinning of the only field, as in `Unconstrained`.
        let future = unsafe { self.map_unchecked_mut(|s| &mut s.future) };
        let out = std::task::ready!(future.poll(cx));
        unit.made_progress();
        Poll::Ready(out)
    }
}
