//! Tasks: wakes and polls, `JoinHandle` (output, ids, drop before and after
//! completion), `yield_now`. (Aborting: `abort.rs`; `JoinError` and panics:
//! `join_error.rs`; `spawn_local`: `spawn_local.rs`.)

mod support;

use std::future::{Future, poll_fn};
use std::pin::Pin;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::mpsc;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll, Waker};
use std::thread::ThreadId;
use std::time::Duration;

use epitome_runtime::runtime::Handle;
use epitome_runtime::task::yield_now;
use epitome_runtime::time;
use support::{
    DropCounter, HANG, Signal, block_on_plain, both_flavors, current_thread, multi, wait_until,
    yield_until,
};

fn tid() -> ThreadId {
    std::thread::current().id()
}

/// A future that counts its polls, wakes itself `self_wakes` times (by reference and
/// by value) during its first poll, returns `Pending` once, then `Ready`.
struct WokenWhileRunning {
    polls: Arc<AtomicUsize>,
    self_wakes: usize,
}

impl Future for WokenWhileRunning {
    type Output = usize;
    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<usize> {
        let n = self.polls.fetch_add(1, Ordering::SeqCst) + 1;
        if n > 1 {
            return Poll::Ready(n);
        }
        for _ in 0..self.self_wakes {
            cx.waker().wake_by_ref();
            let by_value = cx.waker().clone();
            by_value.wake();
        }
        Poll::Pending
    }
}

#[test]
fn a_task_woken_while_running_is_polled_again_exactly_once() {
    let _watchdog = support::watchdog();
    for (name, rt) in both_flavors() {
        let polls = Arc::new(AtomicUsize::new(0));
        let before = rt.metrics().total_polls_count();
        let task = rt.spawn(WokenWhileRunning {
            polls: polls.clone(),
            self_wakes: 50,
        });
        assert_eq!(rt.block_on(task).unwrap(), 2, "{name}");
        // Give a stray extra poll the chance to show up.
        rt.block_on(time::sleep(Duration::from_millis(5)));
        assert_eq!(polls.load(Ordering::SeqCst), 2, "{name}");
        let m = rt.metrics();
        support::wait_until("the polls are counted", || {
            m.total_polls_count() - before >= 2
        });
        assert_eq!(m.total_polls_count() - before, 2, "{name}");
    }
}

#[test]
fn a_task_woken_from_another_thread_while_running_is_polled_again_exactly_once() {
    let _watchdog = support::watchdog();
    // The task is mid-poll on a worker while another thread wakes it many times.
    struct WokenElsewhere {
        polls: Arc<AtomicUsize>,
        waker_tx: mpsc::Sender<Waker>,
        woken_rx: mpsc::Receiver<()>,
    }
    impl Future for WokenElsewhere {
        type Output = usize;
        fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<usize> {
            let n = self.polls.fetch_add(1, Ordering::SeqCst) + 1;
            if n > 1 {
                return Poll::Ready(n);
            }
            self.waker_tx.send(cx.waker().clone()).unwrap();
            // Still inside the poll while the other thread wakes us.
            self.woken_rx
                .recv_timeout(HANG)
                .expect("the waking thread never finished");
            Poll::Pending
        }
    }
    let rt = multi(2);
    for _ in 0..20 {
        let polls = Arc::new(AtomicUsize::new(0));
        let (waker_tx, waker_rx) = mpsc::channel::<Waker>();
        let (woken_tx, woken_rx) = mpsc::channel();
        let waker_thread = std::thread::spawn(move || {
            let waker = waker_rx.recv_timeout(HANG).unwrap();
            for _ in 0..100 {
                waker.wake_by_ref();
                let by_value = waker.clone();
                by_value.wake();
            }
            woken_tx.send(()).unwrap();
        });
        let task = rt.spawn(WokenElsewhere {
            polls: polls.clone(),
            waker_tx,
            woken_rx,
        });
        assert_eq!(rt.block_on(task).unwrap(), 2);
        waker_thread.join().unwrap();
        assert_eq!(polls.load(Ordering::SeqCst), 2);
    }
}

#[test]
fn wakes_while_queued_coalesce_into_one_poll() {
    let _watchdog = support::watchdog();
    let rt = current_thread();
    rt.block_on(async {
        let polls = Arc::new(AtomicUsize::new(0));
        let stash: Arc<Mutex<Option<Waker>>> = Arc::default();
        let task = {
            let (polls, stash) = (polls.clone(), stash.clone());
            epitome_runtime::spawn(poll_fn(move |cx| {
                let n = polls.fetch_add(1, Ordering::SeqCst) + 1;
                *stash.lock().unwrap() = Some(cx.waker().clone());
                if n == 2 {
                    Poll::Ready(n)
                } else {
                    Poll::Pending
                }
            }))
        };
        yield_until("first poll", || polls.load(Ordering::SeqCst) == 1).await;
        let waker = stash.lock().unwrap().take().unwrap();
        // The task is idle: the first wake queues it, the others find it queued.
        for _ in 0..100 {
            waker.wake_by_ref();
        }
        drop(waker);
        assert_eq!(task.await.unwrap(), 2);
        assert_eq!(polls.load(Ordering::SeqCst), 2);
    });
}

#[test]
fn a_wake_after_completion_is_a_no_op() {
    let _watchdog = support::watchdog();
    for (name, rt) in both_flavors() {
        let polls = Arc::new(AtomicUsize::new(0));
        let stash: Arc<Mutex<Option<Waker>>> = Arc::default();
        let drops = DropCounter::new();
        let task = {
            let (polls, stash, guard) = (polls.clone(), stash.clone(), drops.guard());
            rt.spawn(poll_fn(move |cx| {
                let _keep = &guard;
                polls.fetch_add(1, Ordering::SeqCst);
                *stash.lock().unwrap() = Some(cx.waker().clone());
                Poll::Ready(5)
            }))
        };
        assert_eq!(rt.block_on(task).unwrap(), 5, "{name}");
        // The future is gone; the waker keeps only the task's allocation alive.
        assert_eq!(drops.count(), 1, "{name}");
        let waker = stash.lock().unwrap().take().unwrap();
        let m = rt.metrics();
        support::wait_until("polls counted", || m.total_polls_count() >= 1);
        let (polls_before, wakeups_before) = (m.total_polls_count(), m.wakeup_count());
        // From a foreign thread, from this thread, and from inside the runtime.
        let w = waker.clone();
        std::thread::spawn(move || {
            w.wake_by_ref();
            w.wake();
        })
        .join()
        .unwrap();
        waker.wake_by_ref();
        let w = waker.clone();
        rt.block_on(async move {
            w.wake_by_ref();
            w.wake();
            time::sleep(Duration::from_millis(5)).await;
        });
        waker.wake();
        rt.block_on(time::sleep(Duration::from_millis(5)));
        assert_eq!(polls.load(Ordering::SeqCst), 1, "{name}");
        assert_eq!(m.total_polls_count(), polls_before, "{name}");
        assert_eq!(m.wakeup_count(), wakeups_before, "{name}");
        assert_eq!(drops.count(), 1, "{name}");
    }
}

#[test]
fn join_handle_reports_is_finished_and_ids() {
    let _watchdog = support::watchdog();
    for (name, rt) in both_flavors() {
        let gate = Signal::new();
        let task = {
            let gate = gate.clone();
            rt.spawn(async move {
                gate.wait().await;
                3
            })
        };
        let other = rt.spawn(async {});
        assert_ne!(task.id(), other.id(), "{name}");
        let abort = task.abort_handle();
        assert_eq!(abort.id(), task.id(), "{name}");
        assert_eq!(abort.clone().id(), task.id(), "{name}");
        assert!(!task.is_finished() && !abort.is_finished(), "{name}");
        assert!(format!("{task:?}").contains("JoinHandle"), "{name}");
        gate.set();
        rt.block_on(async {
            yield_until("the task finishes", || task.is_finished()).await;
        });
        assert!(abort.is_finished(), "{name}");
        assert_eq!(rt.block_on(task).unwrap(), 3, "{name}");
        rt.block_on(other).unwrap();
    }
}

#[test]
fn dropping_the_join_handle_before_completion_drops_the_output_on_the_worker() {
    let _watchdog = support::watchdog();
    let rt = multi(2);
    let drops = DropCounter::new();
    let gate = Signal::new();
    let worker = Arc::new(Mutex::new(None));
    let task = {
        let (gate, worker, drops) = (gate.clone(), worker.clone(), drops.clone());
        rt.spawn(async move {
            gate.wait().await;
            *worker.lock().unwrap() = Some(tid());
            drops.guard()
        })
    };
    drop(task);
    gate.set();
    wait_until("the detached task completes", || drops.count() == 1);
    rt.block_on(time::sleep(Duration::from_millis(5)));
    assert_eq!(drops.count(), 1, "the output is dropped exactly once");
    assert_eq!(drops.threads(), [worker.lock().unwrap().unwrap()]);
    assert_ne!(drops.threads()[0], tid());

    // On a current-thread runtime: at completion, while `block_on` drives it.
    let rt = current_thread();
    let drops = DropCounter::new();
    let gate = Signal::new();
    let task = {
        let (gate, drops) = (gate.clone(), drops.clone());
        rt.spawn(async move {
            gate.wait().await;
            drops.guard()
        })
    };
    drop(task);
    assert_eq!(drops.count(), 0);
    rt.block_on(async {
        gate.set();
        yield_until("the detached task completes", || drops.count() == 1).await;
    });
    assert_eq!(drops.count(), 1);
}

#[test]
fn dropping_the_join_handle_after_completion_drops_the_output_in_the_dropper() {
    let _watchdog = support::watchdog();
    for (name, rt) in both_flavors() {
        let drops = DropCounter::new();
        let task = {
            let drops = drops.clone();
            rt.spawn(async move { drops.guard() })
        };
        rt.block_on(async {
            yield_until("finished", || task.is_finished()).await;
            time::sleep(Duration::from_millis(2)).await;
        });
        // The completed task keeps the output for the handle.
        assert_eq!(drops.count(), 0, "{name}");
        let dropper = std::thread::spawn(move || {
            drop(task);
            tid()
        })
        .join()
        .unwrap();
        assert_eq!(drops.count(), 1, "{name}");
        assert_eq!(drops.threads(), [dropper], "{name}");
    }
}

#[test]
fn an_awaited_output_belongs_to_the_awaiter() {
    let _watchdog = support::watchdog();
    for (name, rt) in both_flavors() {
        let drops = DropCounter::new();
        let task = {
            let drops = drops.clone();
            rt.spawn(async move { drops.guard() })
        };
        let out = rt.block_on(task).unwrap();
        assert_eq!(drops.count(), 0, "{name}");
        drop(out);
        assert_eq!(drops.count(), 1, "{name}");
    }
}

#[test]
fn join_handle_drops_racing_completion_drop_each_output_exactly_once() {
    let _watchdog = support::watchdog();
    let rt = multi(2);
    let drops = DropCounter::new();
    const N: usize = 2000;
    for i in 0..N {
        let d = drops.clone();
        let task = rt.spawn(async move {
            for _ in 0..i % 3 {
                yield_now().await;
            }
            d.guard()
        });
        for _ in 0..i % 5 {
            std::hint::spin_loop();
        }
        drop(task);
    }
    wait_until("every output dropped", || drops.count() >= N);
    rt.block_on(time::sleep(Duration::from_millis(5)));
    assert_eq!(drops.count(), N);
}

#[test]
// The first task hands the `JoinHandle` back as its output, on purpose.
#[allow(clippy::async_yields_async)]
fn a_join_handle_can_be_awaited_by_another_task_after_a_first_one_gave_up() {
    let _watchdog = support::watchdog();
    for (name, rt) in both_flavors() {
        let out = rt.block_on(async {
            let gate = Signal::new();
            let mut target = {
                let gate = gate.clone();
                epitome_runtime::spawn(async move {
                    gate.wait().await;
                    9
                })
            };
            // Task A polls the handle (storing its waker), then gives up on it.
            let target = epitome_runtime::spawn(async move {
                let res = time::timeout(Duration::from_millis(5), &mut target).await;
                assert!(res.is_err(), "the target cannot be done yet");
                target
            })
            .await
            .unwrap();
            // Task B awaits it: completion must wake B, not A.
            let b = epitome_runtime::spawn(async move { target.await.unwrap() });
            time::sleep(Duration::from_millis(5)).await;
            gate.set();
            time::timeout(HANG, b)
                .await
                .expect("completion woke the first awaiter's waker, not the second's")
                .unwrap()
        });
        assert_eq!(out, 9, "{name}");
    }
}

#[test]
fn yield_now_sends_the_task_to_the_back_of_its_queue() {
    let _watchdog = support::watchdog();
    let rt = current_thread();
    let log = Arc::new(Mutex::new(Vec::new()));
    rt.block_on(async {
        let tasks: Vec<_> = ["a", "b", "c"]
            .into_iter()
            .map(|name| {
                let log = log.clone();
                epitome_runtime::spawn(async move {
                    for round in 0..3 {
                        log.lock().unwrap().push(format!("{name}{round}"));
                        yield_now().await;
                    }
                })
            })
            .collect();
        for t in tasks {
            t.await.unwrap();
        }
    });
    assert_eq!(
        *log.lock().unwrap(),
        ["a0", "b0", "c0", "a1", "b1", "c1", "a2", "b2", "c2"]
    );
}

#[test]
fn handle_current_in_a_task_spawns_onto_the_same_worker() {
    let _watchdog = support::watchdog();
    let rt = multi(3);
    let same = rt
        .block_on(rt.spawn(async {
            let t = Handle::current().spawn(async { tid() });
            t.await.unwrap() == tid()
        }))
        .unwrap();
    assert!(same);
}

#[test]
fn awaiting_a_join_handle_outside_any_runtime_works() {
    let _watchdog = support::watchdog();
    let rt = multi(1);
    let task = rt.spawn(async {
        time::sleep(Duration::from_millis(2)).await;
        8
    });
    assert_eq!(block_on_plain(task).unwrap(), 8);
}
