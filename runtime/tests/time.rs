//! Timers inside both runtimes: `sleep`, `timeout`, `interval`, never early, in
//! deadline order, cancelled with their task.

mod support;

use std::future::pending;
use std::time::{Duration, Instant};

use epitome_runtime::time::{self, MissedTickBehavior};
use support::{DropCounter, both_flavors, current_thread, panic_message_of};

const MS: Duration = Duration::from_millis(1);

#[test]
fn sleep_is_never_early_in_block_on_and_in_tasks() {
    let _watchdog = support::watchdog();
    for (name, rt) in both_flavors() {
        let start = Instant::now();
        rt.block_on(time::sleep(20 * MS));
        assert!(start.elapsed() >= 20 * MS, "{name}: block_on woke early");
        let tasks: Vec<_> = [5u32, 15, 10]
            .into_iter()
            .map(|ms| {
                rt.spawn(async move {
                    let start = Instant::now();
                    let sleep = time::sleep(ms * MS);
                    let deadline = sleep.deadline();
                    sleep.await;
                    (start.elapsed() >= ms * MS, Instant::now() >= deadline)
                })
            })
            .collect();
        for t in tasks {
            assert_eq!(rt.block_on(t).unwrap(), (true, true), "{name}");
        }
        // A zero sleep and a past deadline complete at once.
        rt.block_on(async {
            time::sleep(Duration::ZERO).await;
            time::sleep_until(Instant::now() - MS).await;
        });
    }
}

#[test]
fn sleeps_complete_in_deadline_order() {
    let _watchdog = support::watchdog();
    let rt = current_thread();
    let order = rt.block_on(async {
        let log = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
        let tasks: Vec<_> = [30u32, 10, 20, 1, 25]
            .into_iter()
            .map(|ms| {
                let log = log.clone();
                epitome_runtime::spawn(async move {
                    time::sleep(ms * MS).await;
                    log.lock().unwrap().push(ms);
                })
            })
            .collect();
        for t in tasks {
            t.await.unwrap();
        }
        log.lock().unwrap().clone()
    });
    assert_eq!(order, [1, 10, 20, 25, 30]);
}

#[test]
fn timeout_elapses_on_a_pending_future_and_drops_it() {
    let _watchdog = support::watchdog();
    for (name, rt) in both_flavors() {
        let drops = DropCounter::new();
        let guard = drops.guard();
        let start = Instant::now();
        let res = rt.block_on(time::timeout(15 * MS, async move {
            let _guard = guard;
            pending::<()>().await;
        }));
        let err = res.unwrap_err();
        assert!(start.elapsed() >= 15 * MS, "{name}: timed out early");
        assert_eq!(drops.count(), 1, "{name}: the inner future was not dropped");
        assert!(!err.to_string().is_empty());
        // In a task too.
        let task = rt.spawn(async {
            let start = Instant::now();
            let res = time::timeout(10 * MS, pending::<()>()).await;
            (res.is_err(), start.elapsed())
        });
        let (elapsed, took) = rt.block_on(task).unwrap();
        assert!(elapsed && took >= 10 * MS, "{name}: {took:?}");
    }
}

#[test]
fn timeout_passes_a_ready_output_through() {
    let _watchdog = support::watchdog();
    for (name, rt) in both_flavors() {
        let out = rt.block_on(async {
            let quick = time::timeout(Duration::from_secs(3600), async { 5 }).await;
            let slower = time::timeout(Duration::from_secs(3600), async {
                time::sleep(2 * MS).await;
                6
            })
            .await;
            (quick.unwrap(), slower.unwrap())
        });
        assert_eq!(out, (5, 6), "{name}");
        assert_eq!(rt.metrics().num_pending_timers(), 0, "{name}");
    }
}

#[test]
fn timeout_on_a_join_handle_leaves_the_handle_usable() {
    let _watchdog = support::watchdog();
    for (name, rt) in both_flavors() {
        let out = rt.block_on(async {
            let mut task = epitome_runtime::spawn(async {
                time::sleep(20 * MS).await;
                7
            });
            assert!(time::timeout(MS, &mut task).await.is_err());
            task.await.unwrap()
        });
        assert_eq!(out, 7, "{name}");
    }
}

#[test]
fn interval_ticks_are_never_early() {
    let _watchdog = support::watchdog();
    for (name, rt) in both_flavors() {
        rt.block_on(async {
            let start = Instant::now();
            let mut ticks = time::interval(5 * MS);
            ticks.set_missed_tick_behavior(MissedTickBehavior::Delay);
            assert_eq!(ticks.period(), 5 * MS);
            // The first tick is immediate.
            ticks.tick().await;
            for k in 1..=4u32 {
                ticks.tick().await;
                assert!(start.elapsed() >= k * 5 * MS, "{name}: tick {k} early");
            }
        });
    }
}

#[test]
fn a_timer_created_outside_runs_once_polled_inside() {
    let _watchdog = support::watchdog();
    for (name, rt) in both_flavors() {
        // Creating needs no runtime; the first poll registers it.
        let sleep = time::sleep(5 * MS);
        let deadline = sleep.deadline();
        rt.block_on(rt.spawn(sleep)).unwrap();
        assert!(Instant::now() >= deadline, "{name}");
    }
}

#[test]
fn polling_a_timer_outside_a_runtime_panics_clearly() {
    let _watchdog = support::watchdog();
    let msg = panic_message_of(|| support::block_on_plain(time::sleep(Duration::from_secs(1))));
    assert!(msg.contains("timers need one"), "{msg}");
}

#[test]
fn many_concurrent_sleeps_on_several_workers() {
    let _watchdog = support::watchdog();
    let rt = support::multi(2);
    let start = Instant::now();
    let tasks: Vec<_> = (0..500u32)
        .map(|i| {
            rt.spawn(async move {
                let d = (i % 10 + 1) * MS;
                let t = Instant::now();
                time::sleep(d).await;
                t.elapsed() >= d
            })
        })
        .collect();
    rt.block_on(async {
        for t in tasks {
            assert!(t.await.unwrap(), "a sleep woke early");
        }
    });
    assert!(start.elapsed() >= 10 * MS);
    assert_eq!(rt.metrics().num_pending_timers(), 0);
}
