//! `LocalSet`: `!Send` tasks on the thread that owns the set, on both runtimes: spawning
//! before and while it runs, `run_until`, `block_on`, awaiting the set, `enter`, wakes
//! from other threads, cancellation when dropped, and fairness.

mod support;

use std::cell::{Cell, RefCell};
use std::rc::Rc;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::thread::ThreadId;
use std::time::Duration;

use epitome_runtime::task::{self, JoinSet, LocalSet, spawn_local, yield_now};
use epitome_runtime::time;
use support::{
    DropCounter, FLAVORS, Signal, block_on_plain, current_thread, panic_message_of, with_watchdog,
};

fn tid() -> ThreadId {
    std::thread::current().id()
}

#[test]
fn run_until_runs_local_tasks_on_this_thread_on_both_flavors() {
    let _watchdog = support::watchdog();
    for (name, make) in FLAVORS {
        with_watchdog(name, move || {
            let rt = make();
            let local = LocalSet::new();
            let here = tid();
            let out = rt.block_on(local.run_until(async move {
                let shared = Rc::new(RefCell::new(Vec::new()));
                let tasks: Vec<_> = (0..5)
                    .map(|i| {
                        let shared = shared.clone();
                        spawn_local(async move {
                            yield_now().await;
                            time::sleep(Duration::from_millis(1)).await;
                            shared.borrow_mut().push(i);
                            tid()
                        })
                    })
                    .collect();
                for t in tasks {
                    assert_eq!(t.await.unwrap(), here);
                }
                let mut v = shared.borrow().clone();
                v.sort();
                v
            }));
            assert_eq!(out, [0, 1, 2, 3, 4], "{name}");
        });
    }
}

#[test]
fn tasks_spawned_before_the_set_runs_start_when_it_is_polled() {
    let _watchdog = support::watchdog();
    for (name, make) in FLAVORS {
        let rt = make();
        let local = LocalSet::new();
        let started = Rc::new(Cell::new(false));
        let s = started.clone();
        let early = local.spawn_local(async move {
            s.set(true);
            7
        });
        assert!(
            !started.get(),
            "{name}: nothing runs until the set is polled"
        );
        // `run_until` on an unrelated future still runs the set's tasks.
        let out = local.block_on(&rt, async { early.await.unwrap() });
        assert_eq!(out, 7, "{name}");
        assert!(started.get());
    }
}

#[test]
fn tasks_left_over_by_run_until_run_on_the_next_run() {
    let _watchdog = support::watchdog();
    for (name, make) in FLAVORS {
        let rt = make();
        let local = LocalSet::new();
        let gate = Signal::new();
        let g = gate.clone();
        let leftover = local.spawn_local(async move {
            g.wait().await;
            "later"
        });
        // The first run ends while the task still waits.
        local.block_on(&rt, async { yield_now().await });
        assert!(!leftover.is_finished(), "{name}");
        gate.set();
        let out = local.block_on(&rt, leftover).unwrap();
        assert_eq!(out, "later", "{name}");
    }
}

#[test]
fn awaiting_the_set_runs_every_task_to_completion() {
    let _watchdog = support::watchdog();
    for (name, make) in FLAVORS {
        with_watchdog(name, move || {
            let rt = make();
            let local = LocalSet::new();
            let count = Rc::new(Cell::new(0));
            for i in 0..20u64 {
                let count = count.clone();
                local.spawn_local(async move {
                    time::sleep(Duration::from_millis(i % 3)).await;
                    // Tasks spawned by tasks belong to the set too.
                    let c = count.clone();
                    spawn_local(async move { c.set(c.get() + 1) });
                    count.set(count.get() + 1);
                });
            }
            rt.block_on(local);
            assert_eq!(count.get(), 40, "{name}");
        });
    }
}

#[test]
fn an_empty_set_is_ready_at_once_and_works_without_a_runtime() {
    let _watchdog = support::watchdog();
    block_on_plain(LocalSet::new());
    // Tasks that need no reactor run with no runtime at all.
    let local = LocalSet::new();
    let out = block_on_plain(local.run_until(async {
        let a = spawn_local(async { 1 });
        let b = spawn_local(async {
            yield_now().await;
            2
        });
        a.await.unwrap() + b.await.unwrap()
    }));
    assert_eq!(out, 3);
}

#[test]
fn enter_makes_spawn_local_target_the_set_without_running_it() {
    let _watchdog = support::watchdog();
    let local = LocalSet::new();
    let ran = Rc::new(Cell::new(false));
    let handle = {
        let _guard = local.enter();
        let r = ran.clone();
        spawn_local(async move { r.set(true) })
    };
    assert!(!ran.get());
    // Off any runtime and outside the set again: `spawn_local` refuses.
    let msg = panic_message_of(|| spawn_local(async {}));
    assert!(msg.contains("outside of a `task::LocalSet`"), "{msg}");
    block_on_plain(local.run_until(handle)).unwrap();
    assert!(ran.get());
}

#[test]
fn wakes_from_other_threads_reach_the_set() {
    let _watchdog = support::watchdog();
    for (name, make) in FLAVORS {
        with_watchdog(name, move || {
            let rt = make();
            let local = LocalSet::new();
            let signal = Signal::new();
            let s = signal.clone();
            let waiter = local.spawn_local(async move {
                let _not_send = Rc::new(());
                s.wait().await;
                tid()
            });
            let setter = std::thread::spawn(move || {
                std::thread::sleep(Duration::from_millis(10));
                signal.set();
            });
            // Also abort a task from another thread: it is cancelled on this one.
            let parked = local.spawn_local(std::future::pending::<()>());
            let abort = parked.abort_handle();
            std::thread::spawn(move || abort.abort()).join().unwrap();
            let here = tid();
            let (woke_on, cancelled) = local.block_on(&rt, async move {
                (
                    waiter.await.unwrap(),
                    parked.await.unwrap_err().is_cancelled(),
                )
            });
            setter.join().unwrap();
            assert_eq!(woke_on, here, "{name}");
            assert!(cancelled, "{name}");
        });
    }
}

#[test]
fn dropping_the_set_cancels_its_tasks_on_its_thread() {
    let _watchdog = support::watchdog();
    for (name, make) in FLAVORS {
        let rt = make();
        let drops = DropCounter::new();
        let local = LocalSet::new();
        let mut handles = Vec::new();
        for _ in 0..3 {
            let guard = drops.guard();
            handles.push(local.spawn_local(async move {
                let _g = guard;
                std::future::pending::<()>().await;
            }));
        }
        // One never polled, the others parked after a run.
        local.block_on(&rt, async { yield_now().await });
        let never = drops.guard();
        handles.push(local.spawn_local(async move {
            let _g = never;
        }));
        drop(local);
        assert_eq!(drops.count(), 4, "{name}");
        assert!(drops.threads().iter().all(|t| *t == tid()), "{name}");
        for h in handles {
            let err = block_on_plain(h).unwrap_err();
            assert!(err.is_cancelled(), "{name}");
        }
    }
}

#[test]
fn a_spawn_local_from_a_destructor_during_the_drop_is_cancelled() {
    let _watchdog = support::watchdog();
    struct SpawnsOnDrop(Rc<Cell<Option<task::JoinHandle<()>>>>);
    impl Drop for SpawnsOnDrop {
        fn drop(&mut self) {
            self.0.set(Some(spawn_local(async {})));
        }
    }
    let slot = Rc::new(Cell::new(None));
    let local = LocalSet::new();
    let s = SpawnsOnDrop(slot.clone());
    local.spawn_local(async move {
        let _s = s;
        std::future::pending::<()>().await;
    });
    block_on_plain(local.run_until(yield_now()));
    drop(local);
    let late = slot.take().expect("the destructor spawned");
    assert!(block_on_plain(late).unwrap_err().is_cancelled());
}

#[test]
fn a_busy_set_yields_to_the_runtime_between_batches() {
    let _watchdog = support::watchdog();
    for (name, make) in FLAVORS {
        with_watchdog(name, move || {
            let rt = make();
            let spins = Arc::new(AtomicUsize::new(0));
            let other_ran = Arc::new(AtomicUsize::new(0));
            let (s, o) = (spins.clone(), other_ran.clone());
            // On the current-thread runtime the set runs inside a task; a sibling task
            // must get turns while the set's tasks keep yielding.
            let s2 = s.clone();
            rt.block_on(async move {
                let o2 = o.clone();
                let sibling = epitome_runtime::spawn(async move {
                    // How far the set had got when this task got its turn.
                    o2.store(s2.load(Ordering::SeqCst) + 1, Ordering::SeqCst);
                });
                let local = LocalSet::new();
                for _ in 0..4 {
                    let s = s.clone();
                    local.spawn_local(async move {
                        for _ in 0..100 {
                            s.fetch_add(1, Ordering::SeqCst);
                            yield_now().await;
                        }
                    });
                }
                local.await;
                sibling.await.unwrap();
            });
            assert_eq!(spins.load(Ordering::SeqCst), 400, "{name}");
            let seen = other_ran.load(Ordering::SeqCst);
            assert!(seen >= 1, "{name}: the sibling ran");
            if name == "current-thread" {
                // Same thread: it ran between two batches of the set, not after it.
                assert!(
                    seen - 1 < 400,
                    "{name}: the set starved the runtime ({seen})"
                );
            }
        });
    }
}

#[test]
fn a_local_set_inside_a_local_task_of_a_multi_reactor_worker() {
    let _watchdog = support::watchdog();
    let rt = support::multi(2);
    let out = rt.block_on(async {
        epitome_runtime::spawn(async {
            // A `LocalSet` is `!Send`: it lives in a local task of this worker.
            spawn_local(async {
                let local = LocalSet::new();
                let mut set = JoinSet::new();
                for i in 0..10u32 {
                    set.spawn_local_on(async move { i }, &local);
                }
                local
                    .run_until(async move {
                        let mut sum = 0;
                        while let Some(r) = set.join_next().await {
                            sum += r.unwrap();
                        }
                        sum
                    })
                    .await
            })
            .await
            .unwrap()
        })
        .await
        .unwrap()
    });
    assert_eq!(out, 45);
}

#[test]
fn local_tasks_in_a_set_do_not_pin_the_current_thread_runtime() {
    let _watchdog = support::watchdog();
    with_watchdog("no pinning", || {
        let rt = current_thread();
        let local = LocalSet::new();
        local.block_on(&rt, async {
            spawn_local(async {}).await.unwrap();
        });
        drop(local);
        // Another thread may drive the runtime afterwards.
        std::thread::scope(|s| {
            s.spawn(|| rt.block_on(async { time::sleep(Duration::from_millis(1)).await }))
                .join()
                .unwrap();
        });
    });
}

#[test]
fn a_panicking_local_task_reports_a_panic_and_the_set_goes_on() {
    let _watchdog = support::watchdog();
    support::quiet_panics();
    for (name, make) in FLAVORS {
        let rt = make();
        let local = LocalSet::new();
        let out = local.block_on(&rt, async {
            let bad = spawn_local(async { std::panic::panic_any(support::ExpectedPanic(3)) });
            let good = spawn_local(async { 5 });
            (bad.await.unwrap_err().is_panic(), good.await.unwrap())
        });
        assert_eq!(out, (true, 5), "{name}");
    }
}
