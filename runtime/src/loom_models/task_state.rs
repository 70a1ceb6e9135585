//! Model 6: the task state word, with real tasks (`new_task`) on a model scheduler.
//!
//! - A wake from another thread while the task is being polled: the task is polled
//!   exactly once more (not lost, not twice), and a wake after it completed is a no-op.
//! - A `JoinHandle` polled while the task completes: a joiner that got `Pending` is
//!   woken exactly once and then reads the output (one that got `Ready` is never
//!   woken); the output is read only after it was published, and dropped exactly once.
//! - A `JoinHandle` polled once and dropped while the task completes: the output is
//!   dropped exactly once, the task freed.
//! - `abort` racing a poll: the future is dropped exactly once and the handle reports
//!   cancellation.
//! - The last reference dropped by a waker on another thread, racing completion: the
//!   task is freed exactly once (a leak would show as a leaked loom `Arc`, a double
//!   free as a second drop of it).
use std::future::Future;
use std::task::{Context, Poll, Waker};

use super::{DropCounter, ModelScheduler, PollFn, check, counting_waker, poll_once};
use crate::task_core::new_task;
use loom::sync::atomic::{AtomicBool, AtomicUsize, Ordering::SeqCst};
use loom::sync::{Arc, Mutex};
use loom::thread;

/// A task that parks its waker in `slot` and stays pending until `flag` is set;
/// counts its polls.
fn waiting_task(
    flag: &Arc<AtomicBool>,
    slot: &Arc<Mutex<Option<Waker>>>,
    polls: &Arc<AtomicUsize>,
) -> impl Future<Output = ()> + Send + 'static {
    let (flag, slot, polls) = (flag.clone(), slot.clone(), polls.clone());
    PollFn(move |cx: &mut Context<'_>| {
        polls.fetch_add(1, SeqCst);
        if flag.load(SeqCst) {
            return Poll::Ready(());
        }
        *slot.lock().unwrap() = Some(cx.waker().clone());
        Poll::Pending
    })
}

#[test]
fn wake_while_running_polls_again_exactly_once() {
    check("task_state/wake_while_running", None, || {
        let sched = ModelScheduler::new(true);
        let flag = Arc::new(AtomicBool::new(false));
        let slot = Arc::new(Mutex::new(None));
        let polls = Arc::new(AtomicUsize::new(0));
        let (first, handle) = new_task(waiting_task(&flag, &slot, &polls), sched.clone());
        first.run();
        let waker = slot
            .lock()
            .unwrap()
            .take()
            .expect("the first poll parks its waker");
        // Queue it once more, for the worker to poll while the waker thread wakes.
        waker.wake_by_ref();

        let worker = {
            let sched = sched.clone();
            thread::spawn(move || {
                sched.run_queued();
            })
        };
        let waker_thread = {
            let flag = flag.clone();
            thread::spawn(move || {
                flag.store(true, SeqCst);
                waker.wake();
            })
        };
        worker.join().unwrap();
        waker_thread.join().unwrap();
        sched.run_queued();

        assert!(
            handle.is_finished(),
            "the wake was lost: the task never saw the flag (polls {}, queued {})",
            polls.load(SeqCst),
            sched.queued()
        );
        let polls = polls.load(SeqCst);
        assert!(
            polls == 2 || polls == 3,
            "{polls} polls: a wake while running must make exactly one more poll"
        );
        assert_eq!(sched.queued(), 0);
        drop(handle);
        drop(slot.lock().unwrap().take());
        assert_eq!(sched.tasks_alive(), 0, "task not freed");
    });
}

#[test]
fn join_handle_vs_completion() {
    check("task_state/join_handle_vs_completion", None, || {
        let sched = ModelScheduler::new(true);
        let output_drops = Arc::new(AtomicUsize::new(0));
        let out = DropCounter(output_drops.clone());
        let (task, mut handle) = new_task(async move { out }, sched.clone());
        let worker = thread::spawn(move || task.run());
        let joiner = thread::spawn(move || {
            let (woken, waker) = counting_waker();
            let first = poll_once(&mut handle, &waker).map(|res| {
                drop(res.expect("the task completed"));
            });
            (first, handle, woken, waker)
        });
        worker.join().unwrap();
        let (first, mut handle, woken, waker) = joiner.join().unwrap();
        match first {
            // Liveness: a joiner told to wait is woken by the completion, exactly once,
            // and then finds the output.
            Poll::Pending => {
                assert_eq!(
                    woken.count(),
                    1,
                    "a joiner that got Pending was not woken once"
                );
                match poll_once(&mut handle, &waker) {
                    Poll::Ready(res) => drop(res.expect("the task completed")),
                    Poll::Pending => panic!("woken, yet the output is not there"),
                }
            }
            Poll::Ready(()) => assert_eq!(woken.count(), 0, "a joiner that got Ready was woken"),
        }
        assert_eq!(
            output_drops.load(SeqCst),
            1,
            "output dropped {} times",
            output_drops.load(SeqCst)
        );
        drop(handle);
        assert_eq!(sched.tasks_alive(), 0, "task not freed");
    });
}

/// A `JoinHandle` polled once and dropped on its own thread while the task completes:
/// whoever is last (the task storing its output, or the handle's drop) drops the output,
/// exactly once, and the task is freed.
#[test]
fn join_handle_dropped_vs_completion() {
    check("task_state/join_handle_drop_vs_completion", None, || {
        let sched = ModelScheduler::new(true);
        let output_drops = Arc::new(AtomicUsize::new(0));
        let out = DropCounter(output_drops.clone());
        let (task, mut handle) = new_task(async move { out }, sched.clone());
        let worker = thread::spawn(move || task.run());
        let joiner = thread::spawn(move || {
            let (woken, waker) = counting_waker();
            if let Poll::Ready(res) = poll_once(&mut handle, &waker) {
                drop(res.expect("the task completed"));
            }
            drop(handle);
            woken
        });
        worker.join().unwrap();
        let woken = joiner.join().unwrap();
        assert_eq!(
            output_drops.load(SeqCst),
            1,
            "output dropped {} times",
            output_drops.load(SeqCst)
        );
        assert!(
            woken.count() <= 1,
            "a dropped joiner woken {} times",
            woken.count()
        );
        assert_eq!(sched.tasks_alive(), 0, "task not freed");
    });
}

#[test]
fn abort_vs_poll() {
    check("task_state/abort_vs_poll", None, || {
        let sched = ModelScheduler::new(true);
        let future_drops = Arc::new(AtomicUsize::new(0));
        let guard = DropCounter(future_drops.clone());
        let pending = PollFn(move |_: &mut Context<'_>| {
            let _keep = &guard;
            Poll::<()>::Pending
        });
        let (task, mut handle) = new_task(pending, sched.clone());
        let abort = handle.abort_handle();
        let worker = thread::spawn(move || task.run());
        let aborter = thread::spawn(move || abort.abort());
        worker.join().unwrap();
        aborter.join().unwrap();
        sched.run_queued();

        assert_eq!(
            future_drops.load(SeqCst),
            1,
            "the future must be dropped exactly once"
        );
        match poll_once(&mut handle, Waker::noop()) {
            Poll::Ready(Err(e)) => assert!(e.is_cancelled(), "{e}"),
            Poll::Ready(Ok(())) => panic!("an always-pending future completed"),
            Poll::Pending => panic!("aborted, yet not finished"),
        }
        drop(handle);
        assert_eq!(sched.tasks_alive(), 0, "task not freed");
    });
}

#[test]
fn last_reference_dropped_by_a_waker_elsewhere() {
    check("task_state/last_ref_from_waker", None, || {
        let sched = ModelScheduler::new(true);
        let flag = Arc::new(AtomicBool::new(false));
        let slot = Arc::new(Mutex::new(None));
        let polls = Arc::new(AtomicUsize::new(0));
        let (first, handle) = new_task(waiting_task(&flag, &slot, &polls), sched.clone());
        drop(handle); // detached
        first.run();
        let waker = slot.lock().unwrap().take().expect("parked its waker");
        flag.store(true, SeqCst);
        waker.wake_by_ref();
        drop(slot);

        let worker = {
            let sched = sched.clone();
            thread::spawn(move || {
                sched.run_queued();
            })
        };
        // The waker is now the only other reference: dropped (after a wake) elsewhere.
        let other = thread::spawn(move || waker.wake());
        worker.join().unwrap();
        other.join().unwrap();
        sched.run_queued();
        assert_eq!(polls.load(SeqCst), 2);
        assert_eq!(sched.tasks_alive(), 0, "task not freed");
    });
}
