//! The workers: where tasks run, how spawns from outside are spread, park and unpark,
//! `event_interval`, and the cooperative budget.

mod support;

use std::collections::HashMap;
use std::os::unix::net::UnixStream;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::ThreadId;
use std::time::Duration;

use epitome_runtime::io::Async;
use epitome_runtime::runtime::{Builder, Runtime};
use epitome_runtime::task::{JoinHandle, spawn_blocking, yield_now};
use epitome_runtime::time;
use support::{FLAVORS, HANG, Signal, both_flavors, current_thread, multi, multi1, with_watchdog};

fn tid() -> ThreadId {
    std::thread::current().id()
}

#[test]
fn tasks_run_on_the_worker_that_spawned_them() {
    let _watchdog = support::watchdog();
    let rt = multi(3);
    let parents: Vec<JoinHandle<(ThreadId, Vec<ThreadId>)>> = (0..6)
        .map(|_| {
            rt.spawn(async {
                let parent = tid();
                let children: Vec<_> = (0..3)
                    .map(|i| {
                        epitome_runtime::spawn(async move {
                            let mut seen = vec![tid()];
                            yield_now().await;
                            seen.push(tid());
                            time::sleep(Duration::from_millis(1 + i)).await;
                            seen.push(tid());
                            // Off to the blocking pool and back.
                            let elsewhere = spawn_blocking(tid).await.unwrap();
                            assert_ne!(elsewhere, tid());
                            seen.push(tid());
                            seen
                        })
                    })
                    .collect();
                let mut seen = Vec::new();
                for child in children {
                    seen.extend(child.await.unwrap());
                }
                seen.push(tid());
                (parent, seen)
            })
        })
        .collect();
    let results = rt.block_on(async {
        let mut out = Vec::new();
        for p in parents {
            out.push(p.await.unwrap());
        }
        out
    });
    for (parent, seen) in results {
        assert_eq!(seen.len(), 13);
        assert!(
            seen.iter().all(|t| *t == parent),
            "a task or its children moved between workers"
        );
    }
}

#[test]
fn spawns_from_outside_are_spread_round_robin_over_the_workers() {
    let _watchdog = support::watchdog();
    let rt = multi(3);
    let handles: Vec<_> = (0..9).map(|_| rt.spawn(async { tid() })).collect();
    let mut per_thread: HashMap<ThreadId, usize> = HashMap::new();
    for h in handles {
        *per_thread.entry(rt.block_on(h).unwrap()).or_default() += 1;
    }
    assert_eq!(
        per_thread.len(),
        3,
        "every worker got tasks: {per_thread:?}"
    );
    assert!(per_thread.values().all(|&n| n == 3), "{per_thread:?}");
    let m = rt.metrics();
    for i in 0..3 {
        assert_eq!(m.worker_poll_count(i), 3, "worker {i}");
    }
    // Spawns from a foreign thread are spread too.
    let handle = rt.handle().clone();
    let from_thread: Vec<_> = std::thread::spawn(move || {
        (0..30)
            .map(|_| handle.spawn(async { tid() }))
            .collect::<Vec<_>>()
    })
    .join()
    .unwrap();
    let mut threads = std::collections::HashSet::new();
    for h in from_thread {
        threads.insert(rt.block_on(h).unwrap());
    }
    assert_eq!(threads.len(), 3);
}

#[test]
fn spawns_between_block_on_calls_are_spread_too() {
    let _watchdog = support::watchdog();
    // A common pattern: spawn from outside, then `block_on` the handle. Each spawn
    // must still go to the next worker, whatever else `block_on` does.
    let rt = multi(2);
    let mut per_thread: HashMap<ThreadId, usize> = HashMap::new();
    for _ in 0..10 {
        let h = rt.spawn(async { tid() });
        *per_thread.entry(rt.block_on(h).unwrap()).or_default() += 1;
    }
    assert_eq!(
        per_thread.len(),
        2,
        "all 10 spawns landed on one worker of 2: {per_thread:?}"
    );
}

#[test]
fn ten_thousand_tasks_spawned_from_four_foreign_threads_all_complete() {
    let _watchdog = support::watchdog();
    for (name, rt) in both_flavors() {
        const THREADS: usize = 4;
        const PER_THREAD: usize = 2_500;
        let ran = Arc::new(AtomicUsize::new(0));
        let all_ran = Signal::new();
        let spawners: Vec<_> = (0..THREADS)
            .map(|t| {
                let handle = rt.handle().clone();
                let (ran, all_ran) = (ran.clone(), all_ran.clone());
                std::thread::spawn(move || {
                    (0..PER_THREAD)
                        .map(|i| {
                            let (ran, all_ran) = (ran.clone(), all_ran.clone());
                            handle.spawn(async move {
                                if ran.fetch_add(1, Ordering::SeqCst) + 1 == THREADS * PER_THREAD {
                                    all_ran.set();
                                }
                                t * PER_THREAD + i
                            })
                        })
                        .collect::<Vec<_>>()
                })
            })
            .collect();
        let out = rt.block_on(async {
            // The current-thread runtime runs the tasks while this waits; the spawning
            // threads race with it.
            time::timeout(HANG, all_ran.wait())
                .await
                .unwrap_or_else(|_| panic!("{name}: not every task ran"));
            let mut out = Vec::new();
            for s in spawners {
                for h in s.join().unwrap() {
                    out.push(h.await.unwrap());
                }
            }
            out
        });
        assert_eq!(ran.load(Ordering::SeqCst), THREADS * PER_THREAD, "{name}");
        let expected: Vec<_> = (0..THREADS * PER_THREAD).collect();
        assert_eq!(out, expected, "{name}: outputs");
        let m = rt.metrics();
        assert_eq!(
            m.spawned_tasks_count(),
            (THREADS * PER_THREAD) as u64,
            "{name}"
        );
        assert_eq!(m.num_alive_tasks(), 0, "{name}");
    }
}

#[test]
fn a_parked_current_thread_runtime_is_woken_from_another_thread() {
    let _watchdog = support::watchdog();
    let rt = current_thread();
    // A wake of `block_on`'s own future from a foreign thread.
    let signal = Signal::new();
    let setter = {
        let signal = signal.clone();
        std::thread::spawn(move || {
            std::thread::sleep(Duration::from_millis(20));
            signal.set();
        })
    };
    rt.block_on(async { time::timeout(HANG, signal.wait()).await.unwrap() });
    setter.join().unwrap();
    let parks = rt.metrics().total_park_count();
    assert!(parks >= 1, "the runtime should have slept while waiting");

    // A spawn from a foreign thread, while `block_on` sleeps waiting for it.
    let handle = rt.handle().clone();
    let ran = Signal::new();
    let ran2 = ran.clone();
    let spawner = std::thread::spawn(move || {
        std::thread::sleep(Duration::from_millis(20));
        handle.spawn(async move { ran2.set() })
    });
    rt.block_on(async { time::timeout(HANG, ran.wait()).await.unwrap() });
    rt.block_on(spawner.join().unwrap()).unwrap();

    // A wake of a task from a foreign thread, while `block_on` waits on that task.
    let gate = Signal::new();
    let task = {
        let gate = gate.clone();
        rt.spawn(async move { gate.wait().await })
    };
    let opener = std::thread::spawn(move || {
        std::thread::sleep(Duration::from_millis(20));
        gate.set();
    });
    rt.block_on(async { time::timeout(HANG, task).await.unwrap().unwrap() });
    opener.join().unwrap();
    let m = rt.metrics();
    assert!(m.total_park_count() > parks);
    // The spawn and the wake came through the remote queue.
    assert!(m.remote_schedule_count() >= 3, "{m:?}");
}

#[test]
fn idle_multi_reactor_workers_park() {
    let _watchdog = support::watchdog();
    let rt = multi(2);
    // Let the workers go idle.
    std::thread::sleep(Duration::from_millis(50));
    let before = rt.metrics();
    let waits_before = before.reactor_wait_count();
    std::thread::sleep(Duration::from_millis(100));
    let m = rt.metrics();
    for i in 0..2 {
        assert!(
            m.worker_park_count(i) >= 1,
            "worker {i} never parked while idle (it busy-polls its reactor): {m:?}"
        );
    }
    // An idle worker sleeps in one reactor wait; it does not spin through thousands.
    let waits = m.reactor_wait_count() - waits_before;
    assert!(
        waits < 100,
        "{waits} reactor waits in 100 ms of idling: {m:?}"
    );
}

/// Runs a task that yields `yields` times on a runtime built by `build`, and returns
/// how many reactor waits that took.
fn reactor_waits_for_yields(rt: &Runtime, yields: usize) -> u64 {
    let before = rt.metrics().reactor_wait_count();
    let task = rt.spawn(async move {
        for _ in 0..yields {
            yield_now().await;
        }
    });
    rt.block_on(task).unwrap();
    rt.metrics().reactor_wait_count() - before
}

#[test]
fn event_interval_sets_how_many_tasks_run_between_reactor_turns_on_a_current_thread_runtime() {
    let _watchdog = support::watchdog();
    let every_task = Builder::new_current_thread()
        .event_interval(1)
        .build()
        .unwrap();
    let waits = reactor_waits_for_yields(&every_task, 1000);
    assert!(
        waits >= 1000,
        "event_interval(1): only {waits} reactor turns"
    );
    let rarely = Builder::new_current_thread()
        .event_interval(500)
        .build()
        .unwrap();
    let waits = reactor_waits_for_yields(&rarely, 1000);
    assert!(waits <= 20, "event_interval(500): {waits} reactor turns");
}

#[test]
fn event_interval_sets_how_many_tasks_run_between_reactor_turns_on_a_multi_reactor_runtime() {
    let _watchdog = support::watchdog();
    let every_task = Builder::new_multi_reactor()
        .reactors(1)
        .event_interval(1)
        .build()
        .unwrap();
    let waits = reactor_waits_for_yields(&every_task, 1000);
    assert!(
        waits >= 1000,
        "event_interval(1): only {waits} reactor turns"
    );
    drop(every_task);
    let rarely = Builder::new_multi_reactor()
        .reactors(1)
        .event_interval(500)
        .build()
        .unwrap();
    let waits = reactor_waits_for_yields(&rarely, 1000);
    assert!(
        waits <= 50,
        "event_interval(500): {waits} reactor turns for 1001 polls of one task"
    );
}

#[test]
fn timers_fire_while_the_run_queue_never_empties() {
    let _watchdog = support::watchdog();
    for (name, make) in FLAVORS {
        let fired = Arc::new(AtomicBool::new(false));
        let out = with_watchdog(name, move || {
            make().block_on(async move {
                // All on one worker: spawned from a task.
                epitome_runtime::spawn(async move {
                    let spinners: Vec<_> = (0..2)
                        .map(|_| {
                            let fired = fired.clone();
                            epitome_runtime::spawn(async move {
                                let mut yields = 0u64;
                                while !fired.load(Ordering::SeqCst) {
                                    yield_now().await;
                                    yields += 1;
                                }
                                yields
                            })
                        })
                        .collect();
                    let timer = {
                        let fired = fired.clone();
                        epitome_runtime::spawn(async move {
                            time::sleep(Duration::from_millis(10)).await;
                            fired.store(true, Ordering::SeqCst);
                        })
                    };
                    timer.await.unwrap();
                    let mut yields = 0;
                    for s in spinners {
                        yields += s.await.unwrap();
                    }
                    yields
                })
                .await
                .unwrap()
            })
        });
        assert!(out > 0, "{name}");
    }
}

#[test]
fn the_budget_interleaves_a_task_that_awaits_ready_join_handles() {
    let _watchdog = support::watchdog();
    let rt = current_thread();
    let order = rt.block_on(async {
        let done: Vec<_> = (0..1000)
            .map(|i| epitome_runtime::spawn(async move { i }))
            .collect();
        support::yield_until("the 1000 tasks complete", || {
            done.iter().all(JoinHandle::is_finished)
        })
        .await;
        let forced_before = epitome_runtime::runtime::Handle::current()
            .metrics()
            .budget_forced_yield_count();
        let seq = Arc::new(AtomicUsize::new(0));
        // Queued first: awaits 1000 handles that are all ready, so it never waits
        // on anything; only the budget makes it yield.
        let greedy = {
            let seq = seq.clone();
            epitome_runtime::spawn(async move {
                let mut sum = 0;
                for h in done {
                    sum += h.await.unwrap();
                }
                assert_eq!(sum, (0..1000).sum::<i32>());
                seq.fetch_add(1, Ordering::SeqCst)
            })
        };
        let polite = {
            let seq = seq.clone();
            epitome_runtime::spawn(async move { seq.fetch_add(1, Ordering::SeqCst) })
        };
        let (g, p) = (greedy.await.unwrap(), polite.await.unwrap());
        let forced = epitome_runtime::runtime::Handle::current()
            .metrics()
            .budget_forced_yield_count()
            - forced_before;
        (g, p, forced)
    });
    let (greedy, polite, forced) = order;
    assert!(
        polite < greedy,
        "the task queued behind never ran before the greedy one finished"
    );
    // 1000 ready handles at 128 per poll.
    assert!(forced >= 7, "budget-forced yields: {forced}");
}

#[test]
fn the_budget_stops_a_task_spinning_on_a_ready_io_resource() {
    let _watchdog = support::watchdog();
    for (name, make) in [
        ("current-thread", current_thread as support::MakeRuntime),
        ("multi-reactor", multi1),
    ] {
        let (spins, forced) = with_watchdog(name, move || {
            let rt = make();
            let spins = rt.block_on(async {
                epitome_runtime::spawn(async {
                    let (a, _b) = UnixStream::pair().unwrap();
                    let a = Arc::new(Async::new(a).unwrap());
                    // The first event makes it writable; from then on it stays so.
                    a.writable().await.unwrap();
                    let stop = Arc::new(AtomicBool::new(false));
                    // A socket with room in its buffer stays writable: this loop never
                    // meets a `Pending` of its own.
                    let spinner = {
                        let (a, stop) = (a.clone(), stop.clone());
                        epitome_runtime::spawn(async move {
                            let mut spins = 0u64;
                            while !stop.load(Ordering::SeqCst) {
                                a.writable().await.unwrap();
                                spins += 1;
                            }
                            spins
                        })
                    };
                    // Same worker, queued after the spinner.
                    let stopper = epitome_runtime::spawn(async move {
                        stop.store(true, Ordering::SeqCst);
                    });
                    stopper.await.unwrap();
                    spinner.await.unwrap()
                })
                .await
                .unwrap()
            });
            // Each worker adds up its forced yields after a batch of polls: wait for it.
            let m = rt.metrics();
            support::wait_until("the forced yields are counted", || {
                m.budget_forced_yield_count() > 0
            });
            (spins, m.budget_forced_yield_count())
        });
        assert!(spins >= 128, "{name}: {spins}");
        assert!(forced > 0, "{name}: the budget never forced a yield");
    }
}

#[test]
fn block_on_s_own_future_has_a_budget_on_a_current_thread_runtime() {
    let _watchdog = support::watchdog();
    let spins = with_watchdog("block_on spinning on a ready source", move || {
        current_thread().block_on(async {
            let (a, _b) = UnixStream::pair().unwrap();
            let a = Async::new(a).unwrap();
            a.writable().await.unwrap();
            let stop = Arc::new(AtomicBool::new(false));
            let stopper = {
                let stop = stop.clone();
                epitome_runtime::spawn(async move { stop.store(true, Ordering::SeqCst) })
            };
            let mut spins = 0u64;
            while !stop.load(Ordering::SeqCst) {
                a.writable().await.unwrap();
                spins += 1;
            }
            stopper.await.unwrap();
            spins
        })
    });
    assert!(spins >= 128, "{spins}");
}

#[test]
fn a_multi_reactor_runtime_keeps_serving_while_one_worker_is_busy() {
    let _watchdog = support::watchdog();
    // No work stealing: a worker stuck in a long poll delays only its own tasks;
    // the others keep running theirs.
    let rt = multi(2);
    let release = Signal::new();
    let busy_thread = Arc::new(Mutex::new(None));
    let stuck = {
        let (release, busy_thread) = (release.clone(), busy_thread.clone());
        rt.spawn(async move {
            *busy_thread.lock().unwrap() = Some(tid());
            // Blocks its worker on purpose.
            release.wait_or_fail("release the busy worker");
        })
    };
    support::wait_until("the busy task runs", || {
        busy_thread.lock().unwrap().is_some()
    });
    let busy = busy_thread.lock().unwrap().unwrap();
    // Round-robin: of the next two spawns, one lands on the free worker.
    let a = rt.spawn(async { tid() });
    let b = rt.spawn(async { tid() });
    // Whichever landed on the free worker completes while the other worker is stuck.
    support::wait_until("a task on the free worker completes", || {
        a.is_finished() || b.is_finished()
    });
    let (free, queued) = if a.is_finished() { (a, b) } else { (b, a) };
    assert!(!queued.is_finished(), "ran on the stuck worker");
    assert_ne!(rt.block_on(free).unwrap(), busy);
    release.set();
    assert_eq!(rt.block_on(queued).unwrap(), busy);
    rt.block_on(stuck).unwrap();
}
