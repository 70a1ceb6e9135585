//! Model 11: `LocalSet`, a scheduler that runs inside a future, woken from its own
//! thread and from others.
//!
//! - A task of the set woken from another thread (`Schedule::schedule` off the owner:
//!   `RemoteQueue::push`, then the set's waker) while the owner polls the set (register
//!   the waker, run what is queued, look at the remote queue again): if that poll
//!   returns `Pending` with the task not run, the waker of that poll is woken (not a
//!   stale one), and the next poll runs the task, exactly once.
//! - A task woken on the owner thread while the set is idle wakes the set's waker
//!   (nobody would poll the set otherwise); one woken by another task during the set's
//!   poll runs in that same poll and wakes nobody (no needless wakeup).
//! - `full_tick`: a poll runs at most 61 tasks; with more queued the set wakes itself
//!   once, with exactly 61 it completes and wakes nobody (`tick`'s last look at both
//!   queues).
use std::future::Future;
use std::task::{Context, Poll, Waker};

use super::{PollFn, check, check_long, counting_waker, poll_once};
use crate::scheduler::local_set::LocalSet;
use loom::sync::atomic::{AtomicBool, AtomicUsize, Ordering::SeqCst};
use loom::sync::{Arc, Mutex};
use loom::thread;

/// A task that parks its waker in `slot` on its first poll and completes on its second;
/// counts its polls.
fn two_poll_task(
    slot: &Arc<Mutex<Option<Waker>>>,
    polls: &Arc<AtomicUsize>,
) -> impl Future<Output = ()> + 'static {
    let (slot, polls) = (slot.clone(), polls.clone());
    PollFn(move |cx: &mut Context<'_>| {
        if polls.fetch_add(1, SeqCst) > 0 {
            return Poll::Ready(());
        }
        *slot.lock().unwrap() = Some(cx.waker().clone());
        Poll::Pending
    })
}

#[test]
fn a_remote_wake_racing_the_sets_poll_is_never_lost() {
    check("local_set/remote_wake", None, || {
        let mut set = LocalSet::new();
        let slot = Arc::new(Mutex::new(None));
        let polls = Arc::new(AtomicUsize::new(0));
        let handle = set.spawn_local(two_poll_task(&slot, &polls));
        // The first poll runs the task, which parks its waker.
        let (_, first) = counting_waker();
        assert!(poll_once(&mut set, &first).is_pending());
        assert_eq!(polls.load(SeqCst), 1);
        let task_waker = slot
            .lock()
            .unwrap()
            .take()
            .expect("the task parked its waker");

        let remote = thread::spawn(move || task_waker.wake());
        // A new waker: a wake that reaches only the first poll's is lost.
        let (woken, second) = counting_waker();
        let mut done = poll_once(&mut set, &second).is_ready();
        remote.join().unwrap();
        if !done {
            assert_eq!(
                polls.load(SeqCst),
                1,
                "the set is pending with its task run"
            );
            assert!(
                woken.count() >= 1,
                "the set returned Pending, its task was then queued from another thread, \
                 and the set's waker was never woken"
            );
            done = poll_once(&mut set, &second).is_ready();
        }
        assert!(done, "the woken task did not run");
        assert_eq!(polls.load(SeqCst), 2, "the task ran once per wake");
        assert!(handle.is_finished());
    });
}

#[test]
fn a_local_wake_wakes_the_set_only_when_idle() {
    check("local_set/local_wake", None, || {
        let mut set = LocalSet::new();
        let slot = Arc::new(Mutex::new(None));
        let polls = Arc::new(AtomicUsize::new(0));
        let idle = set.spawn_local(two_poll_task(&slot, &polls));
        let (woken, waker) = counting_waker();
        assert!(poll_once(&mut set, &waker).is_pending());
        let task_waker = slot
            .lock()
            .unwrap()
            .take()
            .expect("the task parked its waker");

        // Woken on the owner thread while nothing polls the set.
        task_waker.wake();
        assert_eq!(
            woken.count(),
            1,
            "a local wake of an idle set woke it {} times",
            woken.count()
        );

        // A task that wakes another task of the set while the set is polled: the woken
        // task runs in the same poll, and the set's waker is not woken.
        let (other_slot, other_polls) = (Arc::new(Mutex::new(None)), Arc::new(AtomicUsize::new(0)));
        let other = set.spawn_local(two_poll_task(&other_slot, &other_polls));
        assert!(poll_once(&mut set, &waker).is_pending());
        assert!(idle.is_finished());
        let other_waker = other_slot.lock().unwrap().take().expect("parked its waker");
        let waking = Arc::new(AtomicBool::new(false));
        let flag = waking.clone();
        let mut other_waker = Some(other_waker);
        let waking_task = set.spawn_local(PollFn(move |_: &mut Context<'_>| {
            flag.store(true, SeqCst);
            if let Some(w) = other_waker.take() {
                w.wake();
            }
            Poll::Ready(())
        }));
        let before = woken.count();
        // The idle wake and both spawns from outside a poll woke the set.
        assert_eq!(before, 3);
        assert!(
            poll_once(&mut set, &waker).is_ready(),
            "the task woken during the poll did not run in it"
        );
        assert!(waking.load(SeqCst) && other.is_finished() && waking_task.is_finished());
        assert_eq!(other_polls.load(SeqCst), 2);
        assert_eq!(
            woken.count(),
            before,
            "a wake during the set's poll woke the set"
        );
    });
}

/// `n` tasks that each count their one poll.
fn spawn_counted(set: &LocalSet, n: usize, runs: &Arc<AtomicUsize>) {
    for _ in 0..n {
        let runs = runs.clone();
        drop(set.spawn_local(PollFn(move |_: &mut Context<'_>| {
            runs.fetch_add(1, SeqCst);
            Poll::Ready(())
        })));
    }
}

/// A poll of the set runs at most `MAX_TASKS_PER_TICK` (61) tasks: with more queued it
/// yields and wakes itself (or the rest would wait for a wake that never comes); with
/// exactly that many it completes, waking nobody.
#[test]
fn a_full_tick_yields_and_wakes_itself() {
    check_long("local_set/full_tick", None, 20_000, || {
        let mut set = LocalSet::new();
        let runs = Arc::new(AtomicUsize::new(0));
        let (woken, waker) = counting_waker();
        // Queued on the owner while the set is idle: the spawns wake it.
        spawn_counted(&set, 62, &runs);
        let spawn_wakes = woken.count();
        assert!(poll_once(&mut set, &waker).is_pending());
        assert_eq!(runs.load(SeqCst), 61);
        assert_eq!(
            woken.count(),
            spawn_wakes + 1,
            "a full tick did not wake the set once"
        );
        assert!(poll_once(&mut set, &waker).is_ready());
        assert_eq!(runs.load(SeqCst), 62);

        let mut set = LocalSet::new();
        spawn_counted(&set, 61, &runs);
        let before = woken.count();
        assert!(
            poll_once(&mut set, &waker).is_ready(),
            "61 tasks fit one tick: the set is done"
        );
        assert_eq!(woken.count(), before, "a tick that emptied the set woke it");
    });
}
