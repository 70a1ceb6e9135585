//! The cooperative budget: `consume_budget` spends it (yielding only once it is spent),
//! and non-async inspection (`JoinSet::try_join_next`, `JoinHandle::is_finished`,
//! metrics) never consults or spends it.

mod support;

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::task::{Context, Poll};

use epitome_runtime::task::{JoinSet, consume_budget, yield_now};
use support::{FLAVORS, block_on_plain, poll_once, with_watchdog, yield_until};

/// The budget of one task poll (tokio's figure).
const BUDGET: usize = 128;

/// Counts the polls of the future it wraps.
struct CountPolls<F> {
    inner: Pin<Box<F>>,
    polls: Arc<AtomicUsize>,
}

impl<F: Future> Future for CountPolls<F> {
    type Output = F::Output;
    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<F::Output> {
        self.polls.fetch_add(1, Ordering::SeqCst);
        self.inner.as_mut().poll(cx)
    }
}

/// Issue 20's case: 1,000 finished tasks, looked at with `try_join_next` by a task
/// that has spent its budget. All 1,000 come back.
#[test]
fn try_join_next_finds_every_finished_task_even_with_the_budget_spent() {
    let _watchdog = support::watchdog();
    for (name, make) in FLAVORS {
        let (joined, left, pending_after) = with_watchdog(name, move || {
            let rt = make();
            rt.block_on(async {
                epitome_runtime::spawn(async {
                    let mut set = JoinSet::new();
                    let aborts: Vec<_> =
                        (0..1000u32).map(|i| set.spawn(async move { i })).collect();
                    yield_until("every task finished", || {
                        aborts.iter().all(|a| a.is_finished())
                    })
                    .await;
                    // Spend the whole budget (the next resource poll would yield).
                    for _ in 0..BUDGET {
                        consume_budget().await;
                    }
                    // `poll_join_next` is an await point: with the budget spent it
                    // answers `Pending`...
                    let pending =
                        std::future::poll_fn(|cx| Poll::Ready(set.poll_join_next(cx).is_pending()))
                            .await;
                    // ...but `try_join_next` is not, and takes them all.
                    let mut sum = 0u64;
                    let mut joined = 0;
                    while let Some(res) = set.try_join_next() {
                        sum += u64::from(res.unwrap());
                        joined += 1;
                    }
                    assert_eq!(sum, (0..1000u64).sum());
                    (joined, set.len(), pending)
                })
                .await
                .unwrap()
            })
        });
        assert_eq!(joined, 1000, "{name}");
        assert_eq!(left, 0, "{name}");
        assert!(
            pending_after,
            "{name}: poll_join_next respects the spent budget"
        );
    }
}

#[test]
fn try_join_next_returns_none_while_tasks_run_and_their_outputs_once_done() {
    let _watchdog = support::watchdog();
    for (name, make) in FLAVORS {
        with_watchdog(name, move || {
            let rt = make();
            let gate = support::Signal::new();
            let mut set = JoinSet::new();
            let g = gate.clone();
            set.spawn_on(
                async move {
                    g.wait().await;
                    1
                },
                rt.handle(),
            );
            set.spawn_on(async { 2 }, rt.handle());
            rt.block_on(async {
                yield_until("the quick task finished", || {
                    // `try_join_next` takes it as soon as it is done.
                    matches!(set.try_join_next(), Some(Ok(2)))
                })
                .await;
                assert!(
                    set.try_join_next().is_none(),
                    "{name}: the other still waits"
                );
                assert_eq!(set.len(), 1);
                gate.set();
                yield_until("the gated task finished", || {
                    matches!(set.try_join_next(), Some(Ok(1)))
                })
                .await;
                assert!(set.is_empty());
                assert!(set.try_join_next().is_none());
            });
        });
    }
}

#[test]
fn is_finished_and_metrics_answer_with_the_budget_spent() {
    let _watchdog = support::watchdog();
    for (name, make) in FLAVORS {
        let rt = make();
        let metrics = rt.metrics();
        let ok = rt.block_on(async move {
            epitome_runtime::spawn(async move {
                let done = epitome_runtime::spawn(async {});
                yield_until("done", || done.is_finished()).await;
                for _ in 0..BUDGET {
                    consume_budget().await;
                }
                let before = metrics.budget_forced_yield_count();
                // None of these yield or spend: they are plain reads.
                let finished = done.is_finished() && done.abort_handle().is_finished();
                let spawned = metrics.spawned_tasks_count();
                finished && spawned >= 2 && metrics.budget_forced_yield_count() == before
            })
            .await
            .unwrap()
        });
        assert!(ok, "{name}");
    }
}

#[test]
fn consume_budget_yields_once_per_budget_and_not_before() {
    let _watchdog = support::watchdog();
    for (name, make) in FLAVORS {
        let rt = make();
        let polls = Arc::new(AtomicUsize::new(0));
        let sibling_turns = Arc::new(AtomicUsize::new(0));
        let forced_before = rt.metrics().budget_forced_yield_count();
        let (p, turns) = (polls.clone(), sibling_turns.clone());
        rt.block_on(async move {
            epitome_runtime::spawn(async move {
                // A sibling on the same worker: it runs only when the loop below yields.
                let done = Arc::new(AtomicUsize::new(0));
                let d = done.clone();
                let sibling = epitome_runtime::spawn(async move {
                    while d.load(Ordering::SeqCst) == 0 {
                        turns.fetch_add(1, Ordering::SeqCst);
                        yield_now().await;
                    }
                });
                let work = CountPolls {
                    inner: Box::pin(async {
                        for _ in 0..1000 {
                            consume_budget().await;
                        }
                    }),
                    polls: p,
                };
                // The budget is per task poll: run the loop as a task of its own.
                epitome_runtime::spawn(work).await.unwrap();
                done.store(1, Ordering::SeqCst);
                sibling.await.unwrap();
            })
            .await
            .unwrap()
        });
        // 1000 units at 128 a poll: 7 forced yields, 8 polls. Not one yield per call.
        assert_eq!(polls.load(Ordering::SeqCst), 1000 / BUDGET + 1, "{name}");
        assert!(
            sibling_turns.load(Ordering::SeqCst) >= 1,
            "{name}: others got turns"
        );
        // A worker adds its thread's forced yields to the metrics after each batch of
        // tasks, which may end just after `block_on` returns.
        support::wait_until("the forced yields are counted", || {
            rt.metrics().budget_forced_yield_count() - forced_before >= (1000 / BUDGET) as u64
        });
    }
}

#[test]
fn consume_budget_off_a_runtime_never_yields() {
    let _watchdog = support::watchdog();
    for _ in 0..1000 {
        let mut fut = Box::pin(consume_budget());
        assert!(poll_once(&mut fut).is_ready());
    }
    block_on_plain(async {
        for _ in 0..10_000 {
            consume_budget().await;
        }
    });
}

#[test]
fn a_block_on_future_has_a_budget_on_both_flavors_and_handle_block_on() {
    let _watchdog = support::watchdog();
    let work = |polls: Arc<AtomicUsize>| CountPolls {
        inner: Box::pin(async {
            for _ in 0..1000 {
                consume_budget().await;
            }
        }),
        polls,
    };
    for (name, make) in FLAVORS {
        let rt = make();
        let polls = Arc::new(AtomicUsize::new(0));
        rt.block_on(work(polls.clone()));
        // As tokio's `block_on`: each poll of the future has a budget.
        assert_eq!(polls.load(Ordering::SeqCst), 1000 / BUDGET + 1, "{name}");
        let polls = Arc::new(AtomicUsize::new(0));
        let handle = rt.handle().clone();
        let p = polls.clone();
        std::thread::spawn(move || handle.block_on(work(p)))
            .join()
            .unwrap();
        assert_eq!(
            polls.load(Ordering::SeqCst),
            1000 / BUDGET + 1,
            "{name}: Handle::block_on"
        );
    }
}

#[test]
fn the_coop_module_reports_wraps_and_lifts_the_budget() {
    use epitome_runtime::task::coop;
    let _watchdog = support::watchdog();
    assert!(coop::has_budget_remaining(), "off a runtime: unconstrained");
    for (name, make) in FLAVORS {
        let rt = make();
        let (before, after, unconstrained_ok, cooperative_yields) = rt
            .block_on(rt.spawn(async {
                let before = coop::has_budget_remaining();
                for _ in 0..BUDGET {
                    coop::consume_budget().await;
                }
                let after = coop::has_budget_remaining();
                // Inside `unconstrained` the spent budget does not apply...
                let unconstrained_ok = coop::unconstrained(async {
                    for _ in 0..1000 {
                        coop::consume_budget().await;
                    }
                    coop::has_budget_remaining()
                })
                .await;
                // ...and outside it, a `cooperative` future yields first (its inner future
                // is ready at once, yet it answers `Pending` once).
                let polls = Arc::new(AtomicUsize::new(0));
                CountPolls {
                    inner: Box::pin(coop::cooperative(std::future::ready(()))),
                    polls: polls.clone(),
                }
                .await;
                (
                    before,
                    after,
                    unconstrained_ok,
                    polls.load(Ordering::SeqCst),
                )
            }))
            .unwrap();
        assert!(before, "{name}");
        assert!(!after, "{name}");
        assert!(unconstrained_ok, "{name}");
        assert_eq!(
            cooperative_yields, 2,
            "{name}: one forced yield, then ready"
        );
    }
}
