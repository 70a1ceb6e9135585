//! Aborting tasks through `JoinHandle::abort` and `AbortHandle`: running (mid-poll on
//! a worker, from another thread), sleeping, queued, finished, racing, and self-abort.
//! The future is dropped exactly once, on its worker, and the result says what won.

mod support;

use std::future::{Future, pending};
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::mpsc;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::thread::ThreadId;
use std::time::Duration;

use epitome_runtime::task::{AbortHandle, yield_now};
use epitome_runtime::time;
use support::{DropCounter, HANG, Signal, both_flavors, current_thread, multi, yield_until};

fn tid() -> ThreadId {
    std::thread::current().id()
}

/// What the task that is mid-poll does once it has been aborted.
#[derive(Clone, Copy, Debug)]
enum AfterAbort {
    /// Returns `Pending` without waking itself.
    Pending,
    /// Wakes itself, then returns `Pending`.
    WakeAndPending,
    /// Returns `Ready`.
    Ready,
}

struct MidPoll {
    polls: Arc<AtomicUsize>,
    in_poll: mpsc::Sender<ThreadId>,
    go: mpsc::Receiver<AfterAbort>,
    _guard: support::DropGuard,
}

impl Future for MidPoll {
    type Output = u32;
    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<u32> {
        if self.polls.fetch_add(1, Ordering::SeqCst) > 0 {
            return Poll::Ready(2);
        }
        self.in_poll.send(tid()).unwrap();
        match self.go.recv_timeout(HANG).expect("never told how to go on") {
            AfterAbort::Pending => Poll::Pending,
            AfterAbort::WakeAndPending => {
                cx.waker().wake_by_ref();
                Poll::Pending
            }
            AfterAbort::Ready => Poll::Ready(1),
        }
    }
}

#[test]
fn abort_a_task_that_is_running_on_a_worker() {
    let _watchdog = support::watchdog();
    let rt = multi(2);
    for round in 0..10 {
        for after in [
            AfterAbort::Pending,
            AfterAbort::WakeAndPending,
            AfterAbort::Ready,
        ] {
            let polls = Arc::new(AtomicUsize::new(0));
            let drops = DropCounter::new();
            let (in_poll_tx, in_poll) = mpsc::channel();
            let (go, go_rx) = mpsc::channel();
            let task = rt.spawn(MidPoll {
                polls: polls.clone(),
                in_poll: in_poll_tx,
                go: go_rx,
                _guard: drops.guard(),
            });
            let worker = in_poll.recv_timeout(HANG).expect("the task never ran");
            // Mid-poll, on the worker; this thread aborts it.
            task.abort();
            task.abort();
            assert!(!task.is_finished(), "{round} {after:?}: finished mid-poll");
            go.send(after).unwrap();
            let res = rt.block_on(task);
            match after {
                AfterAbort::Pending | AfterAbort::WakeAndPending => {
                    let err = res.expect_err("a task aborted mid-poll that then returned Pending");
                    assert!(err.is_cancelled() && !err.is_panic(), "{after:?}: {err}");
                    // Cancelled when its poll returned: never polled again.
                    assert_eq!(polls.load(Ordering::SeqCst), 1, "{after:?}");
                }
                AfterAbort::Ready => {
                    // The poll completed the task before the abort could take effect.
                    assert_eq!(res.unwrap(), 1, "{after:?}");
                }
            }
            assert_eq!(drops.count(), 1, "{round} {after:?}: future drops");
            assert_eq!(drops.threads(), [worker], "dropped on its worker");
        }
    }
}

#[test]
fn abort_a_sleeping_task() {
    let _watchdog = support::watchdog();
    for (name, rt) in both_flavors() {
        let drops = DropCounter::new();
        let m = rt.metrics();
        let guard = drops.guard();
        let task = rt.spawn(async move {
            let _guard = guard;
            time::sleep(Duration::from_secs(3600)).await;
        });
        let res = rt.block_on(async {
            yield_until("the task sleeps", || m.num_pending_timers() == 1).await;
            task.abort();
            task.await
        });
        assert!(res.unwrap_err().is_cancelled(), "{name}");
        assert_eq!(drops.count(), 1, "{name}");
        // Dropping the sleep removed its timer.
        assert_eq!(m.num_pending_timers(), 0, "{name}");
    }
}

#[test]
fn abort_a_finished_task_keeps_its_output() {
    let _watchdog = support::watchdog();
    for (name, rt) in both_flavors() {
        let task = rt.spawn(async { 5 });
        let abort = task.abort_handle();
        rt.block_on(async { yield_until("finished", || task.is_finished()).await });
        task.abort();
        abort.abort();
        assert_eq!(rt.block_on(task).unwrap(), 5, "{name}");
        // Aborting after the output was taken is harmless too.
        abort.abort();
        assert!(abort.is_finished(), "{name}");
    }
}

#[test]
fn abort_a_task_before_its_first_poll() {
    let _watchdog = support::watchdog();
    let rt = current_thread();
    // Queued from outside, never run: the runtime is not driven until `block_on`.
    let polls = Arc::new(AtomicUsize::new(0));
    let drops = DropCounter::new();
    let task = {
        let (polls, guard) = (polls.clone(), drops.guard());
        rt.spawn(async move {
            let _guard = guard;
            polls.fetch_add(1, Ordering::SeqCst);
        })
    };
    task.abort();
    assert!(rt.block_on(task).unwrap_err().is_cancelled());
    assert_eq!(polls.load(Ordering::SeqCst), 0);
    assert_eq!(drops.count(), 1);
    // Queued locally, from inside the runtime.
    rt.block_on(async {
        let polls = Arc::new(AtomicUsize::new(0));
        let task = {
            let polls = polls.clone();
            epitome_runtime::spawn(async move {
                polls.fetch_add(1, Ordering::SeqCst);
            })
        };
        task.abort();
        assert!(task.await.unwrap_err().is_cancelled());
        assert_eq!(polls.load(Ordering::SeqCst), 0);
    });
}

#[test]
fn abort_racing_with_polls_and_completion_is_consistent() {
    let _watchdog = support::watchdog();
    // Each task completes (setting `completed`) or is cancelled, never both; its
    // future is dropped exactly once either way.
    #[derive(Default)]
    struct Track {
        completed: AtomicBool,
        drops: AtomicUsize,
    }
    struct Guard(Arc<Track>);
    impl Drop for Guard {
        fn drop(&mut self) {
            self.0.drops.fetch_add(1, Ordering::SeqCst);
        }
    }
    let rt = multi(2);
    let tracks: Vec<Arc<Track>> = (0..600).map(|_| Arc::default()).collect();
    let gate = Signal::new();
    let tasks: Vec<_> = tracks
        .iter()
        .enumerate()
        .map(|(i, t)| {
            let (guard, gate) = (Guard(t.clone()), gate.clone());
            rt.spawn(async move {
                // All start together, once the gate opens, then run for a while: the
                // aborts that follow land before, during and after their runs.
                gate.wait().await;
                for _ in 0..i % 50 {
                    yield_now().await;
                }
                guard.0.completed.store(true, Ordering::SeqCst);
                i
            })
        })
        .collect();
    support::wait_until("every task waits at the gate", || {
        rt.metrics().total_polls_count() >= 600
    });
    gate.set();
    for (i, task) in tasks.iter().enumerate() {
        if i % 3 != 0 {
            task.abort();
        }
    }
    let results = rt.block_on(async {
        let mut out = Vec::new();
        for t in tasks {
            out.push(t.await);
        }
        out
    });
    let mut cancelled = 0;
    for (i, (res, track)) in results.into_iter().zip(&tracks).enumerate() {
        match res {
            Ok(v) => {
                assert_eq!(v, i);
                assert!(track.completed.load(Ordering::SeqCst), "task {i}");
            }
            Err(e) => {
                assert!(e.is_cancelled(), "task {i}: {e}");
                assert!(i % 3 != 0, "task {i} was never aborted");
                assert!(!track.completed.load(Ordering::SeqCst), "task {i}");
                cancelled += 1;
            }
        }
        assert_eq!(track.drops.load(Ordering::SeqCst), 1, "task {i}");
    }
    // Not a requirement, but a race test that never races proves little.
    eprintln!("{cancelled} of the 400 aborted tasks were cancelled, the others had completed");
}

#[test]
fn a_task_can_abort_itself() {
    let _watchdog = support::watchdog();
    for (name, rt) in both_flavors() {
        let slot: Arc<Mutex<Option<AbortHandle>>> = Arc::default();
        let reached = Arc::new(AtomicBool::new(false));
        let task = {
            let (slot, reached) = (slot.clone(), reached.clone());
            rt.spawn(async move {
                yield_until("the abort handle", || slot.lock().unwrap().is_some()).await;
                let me = slot.lock().unwrap().take().unwrap();
                me.abort();
                // Cancelled when this poll returns: never resumed.
                yield_now().await;
                reached.store(true, Ordering::SeqCst);
            })
        };
        *slot.lock().unwrap() = Some(task.abort_handle());
        assert!(rt.block_on(task).unwrap_err().is_cancelled(), "{name}");
        assert!(!reached.load(Ordering::SeqCst), "{name}");
    }
}

#[test]
fn an_abort_handle_from_another_thread_cancels_an_idle_task() {
    let _watchdog = support::watchdog();
    for (name, rt) in both_flavors() {
        let drops = DropCounter::new();
        let guard = drops.guard();
        let task = rt.spawn(async move {
            let _guard = guard;
            pending::<()>().await;
        });
        let abort = task.abort_handle();
        let res = rt.block_on(async {
            // Let it run and go idle first.
            time::sleep(Duration::from_millis(2)).await;
            std::thread::spawn(move || abort.abort()).join().unwrap();
            task.await
        });
        assert!(res.unwrap_err().is_cancelled(), "{name}");
        assert_eq!(drops.count(), 1, "{name}");
    }
}
