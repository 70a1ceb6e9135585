//! `JoinSet`: completion order, `len`, aborting, dropping, detaching, the
//! cooperative budget, `join_all`, the `_with_id` variants, `FromIterator` / `Extend`.

mod support;

use std::future::pending;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use epitome_runtime::task::{JoinSet, yield_now};
use epitome_runtime::time;
use support::{DropCounter, FLAVORS, Signal, both_flavors, current_thread, multi, with_watchdog};

#[test]
fn join_next_returns_outputs_in_completion_order() {
    let _watchdog = support::watchdog();
    for (name, rt) in both_flavors() {
        let order = rt.block_on(async {
            let mut set = JoinSet::new();
            let gates: Vec<_> = (0..5).map(|_| Signal::new()).collect();
            for (i, gate) in gates.iter().enumerate() {
                let gate = gate.clone();
                set.spawn(async move {
                    gate.wait().await;
                    i
                });
            }
            let mut order = Vec::new();
            for i in [3, 0, 4, 1, 2] {
                gates[i].set();
                order.push(set.join_next().await.unwrap().unwrap());
            }
            assert!(set.join_next().await.is_none());
            order
        });
        assert_eq!(order, [3, 0, 4, 1, 2], "{name}");
    }
}

#[test]
fn join_next_follows_timer_order() {
    let _watchdog = support::watchdog();
    let rt = current_thread();
    let order = rt.block_on(async {
        let mut set = JoinSet::new();
        for ms in [30u64, 10, 20, 1] {
            set.spawn(async move {
                time::sleep(Duration::from_millis(ms)).await;
                ms
            });
        }
        let mut order = Vec::new();
        while let Some(r) = set.join_next().await {
            order.push(r.unwrap());
        }
        order
    });
    assert_eq!(order, [1, 10, 20, 30]);
}

#[test]
fn len_and_is_empty_track_the_tasks_in_the_set() {
    let _watchdog = support::watchdog();
    for (name, rt) in both_flavors() {
        rt.block_on(async {
            let mut set = JoinSet::new();
            assert!(set.is_empty());
            assert_eq!(set.len(), 0);
            // An empty set answers at once.
            assert!(set.join_next().await.is_none());
            assert!(set.try_join_next().is_none());
            let gate = Signal::new();
            for i in 0..4 {
                let gate = gate.clone();
                set.spawn(async move {
                    gate.wait().await;
                    i
                });
            }
            assert_eq!(set.len(), 4, "{name}");
            assert!(format!("{set:?}").contains("len: 4"));
            // Nothing has completed: nothing to take without waiting.
            yield_now().await;
            assert!(set.try_join_next().is_none(), "{name}");
            assert_eq!(set.len(), 4, "{name}");
            gate.set();
            set.join_next().await.unwrap().unwrap();
            assert_eq!(set.len(), 3, "{name}");
            let mut n = 0;
            while set.join_next().await.is_some() {
                n += 1;
            }
            assert_eq!(n, 3, "{name}");
            assert!(set.is_empty(), "{name}");
        });
    }
}

#[test]
fn try_join_next_takes_a_completed_task_without_waiting() {
    let _watchdog = support::watchdog();
    let rt = multi(2);
    rt.block_on(async {
        let mut set = JoinSet::new();
        set.spawn(async { 7 });
        let mut got = None;
        for _ in 0..10_000 {
            if let Some(r) = set.try_join_next() {
                got = Some(r.unwrap());
                break;
            }
            time::sleep(Duration::from_micros(100)).await;
        }
        assert_eq!(got, Some(7));
        assert!(set.is_empty());
    });
}

#[test]
fn abort_all_cancels_the_tasks_which_stay_in_the_set_until_joined() {
    let _watchdog = support::watchdog();
    for (name, rt) in both_flavors() {
        let drops = DropCounter::new();
        rt.block_on(async {
            let mut set = JoinSet::new();
            let first = set.spawn(async { Some(0) });
            // Let the first one complete before the abort.
            support::yield_until("the first task completes", || first.is_finished()).await;
            for _ in 0..4 {
                let guard = drops.guard();
                set.spawn(async move {
                    let _guard = guard;
                    pending::<Option<i32>>().await
                });
            }
            yield_now().await;
            set.abort_all();
            assert_eq!(set.len(), 5, "{name}");
            let (mut ok, mut cancelled) = (0, 0);
            while let Some(r) = set.join_next().await {
                match r {
                    Ok(v) => {
                        assert_eq!(v, Some(0));
                        ok += 1;
                    }
                    Err(e) => {
                        assert!(e.is_cancelled(), "{name}: {e}");
                        cancelled += 1;
                    }
                }
            }
            assert_eq!((ok, cancelled), (1, 4), "{name}");
        });
        assert_eq!(drops.count(), 4, "{name}");
    }
}

#[test]
fn an_abort_handle_from_spawn_cancels_one_task() {
    let _watchdog = support::watchdog();
    for (name, rt) in both_flavors() {
        let results = rt.block_on(async {
            let mut set = JoinSet::new();
            let gate = Signal::new();
            let mut handles = Vec::new();
            for i in 0..3 {
                let gate = gate.clone();
                handles.push(set.spawn(async move {
                    gate.wait().await;
                    i
                }));
            }
            handles[1].abort();
            gate.set();
            let mut results = Vec::new();
            while let Some(r) = set.join_next().await {
                results.push(r.map_err(|e| e.is_cancelled()));
            }
            results.sort();
            results
        });
        assert_eq!(results, [Ok(0), Ok(2), Err(true)], "{name}");
    }
}

#[test]
fn dropping_a_join_set_aborts_its_tasks() {
    let _watchdog = support::watchdog();
    for (name, rt) in both_flavors() {
        let drops = DropCounter::new();
        let aborts = rt.block_on(async {
            let mut set = JoinSet::new();
            let mut aborts = Vec::new();
            for _ in 0..5 {
                let guard = drops.guard();
                aborts.push(set.spawn(async move {
                    let _guard = guard;
                    pending::<()>().await;
                }));
            }
            yield_now().await;
            drop(set);
            support::yield_until("the aborted tasks are dropped", || drops.count() == 5).await;
            aborts
        });
        assert!(aborts.iter().all(|a| a.is_finished()), "{name}");
        assert_eq!(drops.count(), 5, "{name}");
    }
}

#[test]
fn detach_all_leaves_the_tasks_running() {
    let _watchdog = support::watchdog();
    let rt = multi(2);
    let done = Arc::new(AtomicUsize::new(0));
    let gate = Signal::new();
    rt.block_on(async {
        let mut set = JoinSet::new();
        for _ in 0..3 {
            let (done, gate) = (done.clone(), gate.clone());
            set.spawn(async move {
                gate.wait().await;
                done.fetch_add(1, Ordering::SeqCst);
            });
        }
        set.detach_all();
        assert!(set.is_empty());
        assert!(set.join_next().await.is_none());
        drop(set);
    });
    gate.set();
    support::wait_until("the detached tasks complete", || {
        done.load(Ordering::SeqCst) == 3
    });
}

#[test]
fn shutdown_aborts_every_task_and_waits_for_them() {
    let _watchdog = support::watchdog();
    for (name, rt) in both_flavors() {
        let drops = DropCounter::new();
        rt.block_on(async {
            let mut set = JoinSet::new();
            for _ in 0..4 {
                let guard = drops.guard();
                set.spawn(async move {
                    let _guard = guard;
                    time::sleep(Duration::from_secs(3600)).await;
                });
            }
            set.shutdown().await;
            assert!(set.is_empty(), "{name}");
            assert_eq!(drops.count(), 4, "{name}");
        });
    }
}

#[test]
fn spawn_on_spawn_blocking_and_insert() {
    let _watchdog = support::watchdog();
    let rt = multi(2);
    // `spawn_on` needs no runtime context on this thread.
    let mut set = JoinSet::new();
    set.spawn_on(async { 1 }, rt.handle());
    set.insert(rt.spawn(async { 2 }));
    let sum = rt.block_on(async move {
        set.spawn_blocking(|| 3);
        set.spawn(async { 4 });
        let mut sum = 0;
        while let Some(r) = set.join_next().await {
            sum += r.unwrap();
        }
        sum
    });
    assert_eq!(sum, 10);
}

#[test]
fn a_join_set_of_many_tasks_on_several_workers() {
    let _watchdog = support::watchdog();
    let rt = multi(2);
    let sum = rt.block_on(async {
        let mut set = JoinSet::new();
        for i in 0..2000u64 {
            set.spawn(async move {
                for _ in 0..i % 4 {
                    yield_now().await;
                }
                i
            });
        }
        let mut sum = 0;
        while let Some(r) = set.join_next().await {
            sum += r.unwrap();
        }
        sum
    });
    assert_eq!(sum, (0..2000).sum());
}

#[test]
fn join_next_after_the_budget_is_spent_yields_instead_of_spinning() {
    let _watchdog = support::watchdog();
    for (name, make) in FLAVORS {
        let n = with_watchdog(name, move || {
            let rt = make();
            rt.block_on(async {
                // In a task: its polls have a budget of 128 resource polls.
                epitome_runtime::spawn(async {
                    let mut set = JoinSet::new();
                    for i in 0..300 {
                        set.spawn(async move { i });
                    }
                    // Let them all complete first (one trip through the queue puts
                    // this task behind all of them), so every handle is ready.
                    yield_now().await;
                    yield_now().await;
                    let mut n = 0;
                    while let Some(r) = set.join_next().await {
                        r.unwrap();
                        n += 1;
                    }
                    n
                })
                .await
                .unwrap()
            })
        });
        assert_eq!(n, 300, "{name}");
    }
}

#[test]
fn join_all_returns_every_output_in_completion_order() {
    let _watchdog = support::watchdog();
    for (name, make) in FLAVORS {
        let out = with_watchdog(name, move || {
            let rt = make();
            // Spawned from one task, so all on its worker's wheel: timers of one wheel
            // fire in deadline order.
            rt.block_on(rt.spawn(async {
                let mut set = JoinSet::new();
                for i in (0..5u64).rev() {
                    set.spawn(async move {
                        time::sleep(Duration::from_millis(i * 3)).await;
                        i
                    });
                }
                set.join_all().await
            }))
            .unwrap()
        });
        assert_eq!(out, [0, 1, 2, 3, 4], "{name}");
    }
}

#[test]
fn join_all_resumes_a_tasks_panic_and_aborts_the_rest() {
    let _watchdog = support::watchdog();
    support::quiet_panics();
    for (name, make) in FLAVORS {
        with_watchdog(name, move || {
            let rt = make();
            let drops = support::DropCounter::new();
            let guard = drops.guard();
            let payload = rt.block_on(async move {
                let mut set = JoinSet::new();
                set.spawn(async move {
                    let _g = guard;
                    std::future::pending::<()>().await;
                });
                set.spawn(async { std::panic::panic_any(support::ExpectedPanic(21)) });
                // `join_all` panics; catch it around the future.
                let caught = std::panic::AssertUnwindSafe(set.join_all());
                let res = futures_catch(caught).await;
                res.expect_err("join_all panics")
            });
            assert_eq!(
                payload.downcast_ref::<support::ExpectedPanic>(),
                Some(&support::ExpectedPanic(21)),
                "{name}"
            );
            // The parked task was aborted when the set was dropped by the panic.
            rt.block_on(async {
                support::yield_until("the parked task dropped", || drops.count() == 1).await
            });
        });
    }
}

/// Polls `future` under `catch_unwind`.
async fn futures_catch<F: std::future::Future + std::panic::UnwindSafe>(
    future: F,
) -> std::thread::Result<F::Output> {
    let mut future = Box::pin(future);
    std::future::poll_fn(move |cx| {
        match std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| future.as_mut().poll(cx))) {
            Ok(std::task::Poll::Pending) => std::task::Poll::Pending,
            Ok(std::task::Poll::Ready(v)) => std::task::Poll::Ready(Ok(v)),
            Err(p) => std::task::Poll::Ready(Err(p)),
        }
    })
    .await
}

#[test]
fn join_all_panics_with_the_join_error_of_a_cancelled_task() {
    let _watchdog = support::watchdog();
    support::quiet_panics();
    let rt = support::current_thread();
    let msg = rt.block_on(async {
        let mut set = JoinSet::new();
        let abort = set.spawn(std::future::pending::<()>());
        abort.abort();
        let res = futures_catch(std::panic::AssertUnwindSafe(set.join_all())).await;
        support::panic_str(res.expect_err("panics").as_ref()).map(str::to_owned)
    });
    let msg = msg.expect("a string payload");
    assert!(msg.ends_with("was cancelled"), "{msg}");
}

#[test]
fn with_id_variants_name_the_task_that_finished() {
    let _watchdog = support::watchdog();
    for (name, make) in FLAVORS {
        let rt = make();
        rt.block_on(async {
            let mut set = JoinSet::new();
            let a = set.spawn(async { "a" });
            let b = set.spawn(async {
                yield_now().await;
                "b"
            });
            let mut seen = Vec::new();
            while let Some(res) = set.join_next_with_id().await {
                let (id, out) = res.unwrap();
                seen.push((id, out));
            }
            seen.sort_by_key(|(_, out)| *out);
            assert_eq!(seen, [(a.id(), "a"), (b.id(), "b")], "{name}");
            // try_join_next_with_id, and the id of a failed task in its error.
            let c = set.spawn(async { "c" });
            let d = set.spawn(std::future::pending::<&str>());
            d.abort();
            let mut got = Vec::new();
            support::yield_until("both done", || {
                if let Some(res) = set.try_join_next_with_id() {
                    got.push(res.map_err(|e| e.id()));
                }
                got.len() == 2
            })
            .await;
            got.sort_by_key(|r| r.is_err());
            assert_eq!(got, [Ok((c.id(), "c")), Err(d.id())], "{name}");
        });
    }
}

#[test]
fn from_iterator_and_extend_spawn_onto_the_current_runtime() {
    let _watchdog = support::watchdog();
    for (name, make) in FLAVORS {
        let rt = make();
        let sum = rt.block_on(async {
            let mut set: JoinSet<u32> = (1..=4).map(|i| async move { i }).collect();
            assert_eq!(set.len(), 4);
            set.extend((5..=6).map(|i| async move { i }));
            assert_eq!(set.len(), 6);
            set.join_all().await.into_iter().sum::<u32>()
        });
        assert_eq!(sum, 21, "{name}");
        assert_eq!(rt.metrics().spawned_tasks_count(), 6, "{name}");
    }
    // Off any runtime, collecting panics as `spawn` does.
    let msg = support::panic_message_of(|| {
        let _set: JoinSet<()> = std::iter::once(async {}).collect();
    });
    assert!(msg.contains("outside of an epitome runtime"), "{msg}");
}

#[test]
fn spawn_blocking_on_and_spawn_local_on() {
    let _watchdog = support::watchdog();
    let rt = support::multi(1);
    let mut set = JoinSet::new();
    set.spawn_blocking_on(|| 1, rt.handle());
    let local = epitome_runtime::task::LocalSet::new();
    let rc = std::rc::Rc::new(2);
    set.spawn_local_on(async move { *rc }, &local);
    let mut outs = local.block_on(&rt, set.join_all());
    outs.sort();
    assert_eq!(outs, [1, 2]);
}

/// A waker whose destructor drives the runtime (and so completes the set's task, whose
/// entry waker takes the set's lock) must be dropped outside that lock.
#[test]
fn a_replaced_waker_is_dropped_outside_the_sets_lock() {
    let _watchdog = support::watchdog();
    with_watchdog("waker dropped outside the lock", || {
        struct DrivesOnDrop(Option<epitome_runtime::runtime::Runtime>);
        impl std::task::Wake for DrivesOnDrop {
            fn wake(self: Arc<Self>) {}
        }
        impl Drop for DrivesOnDrop {
            fn drop(&mut self) {
                if let Some(rt) = self.0.take() {
                    rt.block_on(yield_now());
                }
            }
        }
        let rt = current_thread();
        let mut set = JoinSet::new();
        set.spawn_on(async { 42 }, rt.handle());
        let waker = std::task::Waker::from(Arc::new(DrivesOnDrop(Some(rt))));
        assert!(
            set.poll_join_next(&mut std::task::Context::from_waker(&waker))
                .is_pending()
        );
        drop(waker);
        // Replacing the stored waker drops the last clone: it runs the runtime.
        assert!(
            set.poll_join_next(&mut std::task::Context::from_waker(std::task::Waker::noop()))
                .is_pending()
        );
        assert_eq!(set.try_join_next().unwrap().unwrap(), 42);
    });
}
