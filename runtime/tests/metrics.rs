//! `RuntimeMetrics`: every counter moves when, and as much as, it should.

mod support;

use std::io::{Read, Write};
use std::os::unix::net::UnixStream;
use std::sync::{Arc, Mutex};
use std::task::{Poll, Waker};
use std::time::Duration;

use epitome_runtime::io::Async;
use epitome_runtime::task::yield_now;
use epitome_runtime::time;
use support::{Signal, both_flavors, current_thread, multi, wait_until, yield_until};

#[test]
fn spawned_and_alive_tasks() {
    let _watchdog = support::watchdog();
    for (name, rt) in both_flavors() {
        let m = rt.metrics();
        assert_eq!(
            (m.spawned_tasks_count(), m.num_alive_tasks()),
            (0, 0),
            "{name}"
        );
        let gate = Signal::new();
        let tasks: Vec<_> = (0..10)
            .map(|_| {
                let gate = gate.clone();
                rt.spawn(async move { gate.wait().await })
            })
            .collect();
        assert_eq!(m.spawned_tasks_count(), 10, "{name}");
        assert_eq!(m.num_alive_tasks(), 10, "{name}");
        // Tasks spawned by tasks count; blocking closures do not.
        rt.block_on(async {
            epitome_runtime::spawn(async { epitome_runtime::spawn(async {}).await.unwrap() })
                .await
                .unwrap();
            epitome_runtime::task::spawn_blocking(|| ()).await.unwrap();
        });
        assert_eq!(m.spawned_tasks_count(), 12, "{name}");
        wait_until("the finished tasks are counted", || {
            m.num_alive_tasks() == 10
        });
        gate.set();
        rt.block_on(async {
            for t in tasks {
                t.await.unwrap();
            }
        });
        wait_until("every task completed", || m.num_alive_tasks() == 0);
        assert_eq!(m.spawned_tasks_count(), 12, "{name}");
        // Cancelled and panicked tasks complete too.
        let t = rt.spawn(std::future::pending::<()>());
        t.abort();
        let _ = rt.block_on(t);
        wait_until("the cancelled task is counted", || m.num_alive_tasks() == 0);
    }
}

#[test]
fn polls_count_every_task_poll() {
    let _watchdog = support::watchdog();
    let rt = current_thread();
    let m = rt.metrics();
    let task = rt.spawn(async {
        for _ in 0..5 {
            yield_now().await;
        }
    });
    rt.block_on(task).unwrap();
    // Five yields: six polls. `block_on`'s own future is not a task.
    assert_eq!(m.total_polls_count(), 6);
    assert_eq!(m.worker_poll_count(0), 6);

    let rt = multi(2);
    let m = rt.metrics();
    let tasks: Vec<_> = (0..4)
        .map(|_| {
            rt.spawn(async {
                for _ in 0..5 {
                    yield_now().await;
                }
            })
        })
        .collect();
    rt.block_on(async {
        for t in tasks {
            t.await.unwrap();
        }
    });
    wait_until("the polls are counted", || m.total_polls_count() == 24);
    assert_eq!(m.worker_poll_count(0) + m.worker_poll_count(1), 24);
    // Round-robin: two tasks on each worker.
    assert_eq!(m.worker_poll_count(0), 12);
}

#[test]
fn local_and_remote_wakeups() {
    let _watchdog = support::watchdog();
    let rt = current_thread();
    let m = rt.metrics();
    // A spawn from outside goes through the remote queue.
    let task = rt.spawn(async {
        for _ in 0..5 {
            yield_now().await;
        }
    });
    assert_eq!(m.remote_schedule_count(), 1);
    rt.block_on(task).unwrap();
    // Each yield is a wake on the task's own worker thread.
    assert_eq!(m.local_schedule_count(), 5);
    assert_eq!(m.remote_schedule_count(), 1);

    // A wake from a foreign thread goes through the remote queue too.
    let stash: Arc<Mutex<Option<Waker>>> = Arc::default();
    let task = {
        let stash = stash.clone();
        rt.spawn(std::future::poll_fn(move |cx| {
            let mut slot = stash.lock().unwrap();
            if slot.is_none() {
                *slot = Some(cx.waker().clone());
                Poll::Pending
            } else {
                Poll::Ready(())
            }
        }))
    };
    rt.block_on(async {
        yield_until("the task waits", || stash.lock().unwrap().is_some()).await;
    });
    let (local, remote) = (m.local_schedule_count(), m.remote_schedule_count());
    let waker = stash.lock().unwrap().clone().unwrap();
    std::thread::spawn(move || waker.wake()).join().unwrap();
    assert_eq!(m.remote_schedule_count(), remote + 1);
    rt.block_on(task).unwrap();
    assert_eq!(m.local_schedule_count(), local);
    assert_eq!(
        m.wakeup_count(),
        m.local_schedule_count() + m.remote_schedule_count()
    );
}

#[test]
fn parks_and_reactor_waits() {
    let _watchdog = support::watchdog();
    for (name, rt) in both_flavors() {
        let m = rt.metrics();
        rt.block_on(time::sleep(Duration::from_millis(20)));
        let task = rt.spawn(time::sleep(Duration::from_millis(20)));
        rt.block_on(task).unwrap();
        wait_until("an idle worker parks", || m.total_park_count() >= 1);
        // Every park is a blocking reactor wait, counted when the wait returns (a
        // worker asleep right now has parked but not finished its wait).
        let parked_now = m.num_workers() as u64;
        assert!(
            m.reactor_wait_count() + parked_now >= m.total_park_count(),
            "{name}: {m:?}"
        );
        let per_worker: u64 = (0..m.num_workers()).map(|i| m.worker_park_count(i)).sum();
        assert_eq!(per_worker, m.total_park_count(), "{name}");
    }
}

#[test]
fn reactor_events_and_events_per_wait() {
    let _watchdog = support::watchdog();
    for (name, rt) in both_flavors() {
        let m = rt.metrics();
        let (events_before, waits_before) = (m.reactor_event_count(), m.reactor_wait_count());
        let (a, mut peer) = UnixStream::pair().unwrap();
        let echoed = rt.block_on(async {
            let a = Async::new(a).unwrap();
            let mut got = Vec::new();
            for i in 0..5u8 {
                peer.write_all(&[i]).unwrap();
                let guard = a.readable().await.unwrap();
                let mut buf = [0; 8];
                let n = guard.try_io(|s| (&*s).read(&mut buf)).unwrap().unwrap();
                got.extend_from_slice(&buf[..n]);
                // Drained: clearing the readiness makes the next wait need an event.
                assert!(guard.try_io(|s| (&*s).read(&mut buf)).is_err());
            }
            got
        });
        assert_eq!(echoed, [0, 1, 2, 3, 4], "{name}");
        let events = m.reactor_event_count() - events_before;
        let waits = m.reactor_wait_count() - waits_before;
        assert!(events >= 5, "{name}: {events} events for 5 writes");
        assert!(waits >= 1, "{name}");
        assert!(m.events_per_wait() > 0.0, "{name}");
        if name == "current-thread" {
            // Nothing runs between these reads: the mean is exactly events / waits.
            let expected = m.reactor_event_count() as f64 / m.reactor_wait_count() as f64;
            assert_eq!(m.events_per_wait(), expected);
        }
        drop(peer);
    }
}

#[test]
fn budget_forced_yields_are_counted() {
    let _watchdog = support::watchdog();
    let rt = current_thread();
    let m = rt.metrics();
    assert_eq!(m.budget_forced_yield_count(), 0);
    let task = rt.spawn(async {
        let done: Vec<_> = (0..500).map(|_| epitome_runtime::spawn(async {})).collect();
        yield_until("all done", || done.iter().all(|h| h.is_finished())).await;
        for h in done {
            h.await.unwrap();
        }
    });
    rt.block_on(task).unwrap();
    // 500 ready handles at 128 per poll: at least 3 forced yields.
    assert!(m.budget_forced_yield_count() >= 3, "{m:?}");
}

#[test]
fn registered_sources_and_pending_timers() {
    let _watchdog = support::watchdog();
    for (name, rt) in both_flavors() {
        let m = rt.metrics();
        rt.block_on(async {
            assert_eq!(m.num_registered_sources(), 0, "{name}");
            let (a, b) = UnixStream::pair().unwrap();
            let a = Async::new(a).unwrap();
            let b = Async::new(b).unwrap();
            assert_eq!(m.num_registered_sources(), 2, "{name}");
            drop(a);
            assert_eq!(m.num_registered_sources(), 1, "{name}");
            let _std = b.into_inner().unwrap();
            assert_eq!(m.num_registered_sources(), 0, "{name}");

            assert_eq!(m.num_pending_timers(), 0, "{name}");
            let sleeper = epitome_runtime::spawn(time::sleep(Duration::from_secs(3600)));
            yield_until("the timer is registered", || m.num_pending_timers() == 1).await;
            sleeper.abort();
            let _ = sleeper.await;
            assert_eq!(m.num_pending_timers(), 0, "{name}");
            time::sleep(Duration::from_millis(1)).await;
            assert_eq!(m.num_pending_timers(), 0, "{name}");
        });
    }
}

#[test]
fn metrics_are_readable_from_any_thread_and_printable() {
    let _watchdog = support::watchdog();
    let rt = multi(2);
    let m = rt.metrics();
    rt.block_on(rt.spawn(async {})).unwrap();
    let dbg = std::thread::spawn(move || {
        assert_eq!(m.num_workers(), 2);
        format!("{m:?}")
    })
    .join()
    .unwrap();
    for field in [
        "workers",
        "spawned",
        "alive",
        "polls",
        "local_schedules",
        "remote_schedules",
        "parks",
        "reactor_waits",
        "events_per_wait",
        "forced_yields",
    ] {
        assert!(dbg.contains(field), "{field} missing from {dbg}");
    }
}

#[test]
fn global_queue_depth_and_park_unpark_counts() {
    let _watchdog = support::watchdog();
    let rt = support::current_thread();
    let m = rt.metrics();
    assert_eq!(m.global_queue_depth(), 0);
    // Spawned from outside a runtime nobody drives: they wait in the remote queue.
    let tasks: Vec<_> = (0..3).map(|i| rt.spawn(async move { i })).collect();
    assert_eq!(m.global_queue_depth(), 3);
    let before = m.worker_park_unpark_count(0);
    assert_eq!(
        before % 2,
        0,
        "awake (nobody drives it, so it is not asleep)"
    );
    rt.block_on(async {
        for t in tasks {
            t.await.unwrap();
        }
        // Sleep, so the worker parks at least once.
        epitome_runtime::time::sleep(std::time::Duration::from_millis(2)).await;
    });
    assert_eq!(m.global_queue_depth(), 0);
    let after = m.worker_park_unpark_count(0);
    assert!(after >= before + 2, "{before} -> {after}");
    assert_eq!(after % 2, 0, "awake again");
    assert_eq!(after, 2 * m.worker_park_count(0));
}
