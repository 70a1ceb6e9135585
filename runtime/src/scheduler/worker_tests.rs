//! The worker's single-threaded tests: both builds (a child module of
//! `scheduler::worker`).

use std::cell::Cell as StdCell;
use std::future::poll_fn;
use std::rc::Rc;

use super::*;
use crate::scheduler::context;

/// The batch of `run_loop`, small to keep the loom model short.
const EVENT_INTERVAL: u32 = 3;

/// A local task that yields for ever (wakes itself, returns `Pending`) until a task
/// from the remote queue has run: the batch ends after `EVENT_INTERVAL` polls, and
/// the non-blocking turn that follows takes the remote task, queued behind the
/// yielder's requeued entry. So it runs after exactly `EVENT_INTERVAL + 1` polls of
/// the yielder; a batch that never ends would starve it for ever.
#[test]
fn a_task_yielding_for_ever_lets_remote_work_in_after_one_batch() {
    crate::loom::unit_test(|| {
        let (shared, core) = WorkerShared::new().unwrap();
        let scope = context::set_worker(&core);
        let polls = Rc::new(StdCell::new(0));
        let arrived_after = Rc::new(StdCell::new(None));
        let yielder = {
            let (polls, arrived_after) = (polls.clone(), arrived_after.clone());
            core.local.spawn(poll_fn(move |cx| {
                polls.set(polls.get() + 1);
                if arrived_after.get().is_some() {
                    return Poll::Ready(());
                }
                cx.waker().wake_by_ref();
                Poll::Pending
            }))
        };
        // Queued the way a spawn from another thread queues it.
        let (notified, remote) = {
            let (polls, arrived_after) = (polls.clone(), arrived_after.clone());
            new_task(
                poll_fn(move |_| {
                    arrived_after.set(Some(polls.get()));
                    Poll::Ready(())
                }),
                shared.clone(),
            )
        };
        assert!(shared.push_remote(notified).is_ok(), "the queue is open");
        core.run_loop(EVENT_INTERVAL, || yielder.is_finished());
        drop(scope);
        assert_eq!(
            arrived_after.get(),
            Some(EVENT_INTERVAL + 1),
            "the remote task ran after one batch of the yielder's polls and the \
             one queued ahead of it"
        );
        assert_eq!(polls.get(), EVENT_INTERVAL + 2);
        assert!(remote.is_finished());
        assert_eq!(shared.metrics.parks.get(), 0, "parked with work queued");
        drop((yielder, remote));
        assert!(core.local.owned.first().is_none());
        core.local.shutdown();
    });
}

/// A task that spends its whole cooperative budget in one poll (as a resource that
/// is always ready would make it) is told to yield, woken, and polled again; the
/// worker counts the forced yield in its metrics.
#[test]
fn a_task_out_of_budget_is_counted_as_a_forced_yield() {
    crate::loom::unit_test(|| {
        let (shared, core) = WorkerShared::new().unwrap();
        let scope = context::set_worker(&core);
        let (polls, spent) = (Rc::new(StdCell::new(0)), Rc::new(StdCell::new(0)));
        let task = {
            let (polls, spent) = (polls.clone(), spent.clone());
            core.local.spawn(poll_fn(move |cx| {
                polls.set(polls.get() + 1);
                if polls.get() > 1 {
                    return Poll::Ready(());
                }
                // A resource's look: `has_budget` wakes the task once it is spent.
                while coop::has_budget(cx) {
                    coop::spend();
                    spent.set(spent.get() + 1);
                }
                Poll::Pending
            }))
        };
        core.run_loop(EVENT_INTERVAL, || task.is_finished());
        drop(scope);
        assert_eq!(spent.get(), u32::from(coop::BUDGET), "a poll's budget");
        assert_eq!(polls.get(), 2, "the forced yield woke the task once");
        assert_eq!(
            shared.metrics.forced_yields.load(Ordering::Relaxed),
            1,
            "the forced yield went uncounted"
        );
        drop(task);
        core.local.shutdown();
    });
}

/// A park that finds an unpark pending does not sleep, yet still turns the reactor once
/// without blocking: an event that came meanwhile is dispatched by this park, not left
/// for a later one (a stream of unparks, one before each park, would otherwise keep
/// postponing I/O). The loom build only: the event comes from the fake kernel.
#[cfg(epitome_loom)]
#[test]
fn a_park_that_does_not_sleep_still_turns_the_reactor() {
    use crate::loom::os::sync::atomic::{AtomicUsize, Ordering as OsOrdering};
    use crate::reactor::Interest;
    use crate::reactor::scheduled_io::Direction;

    struct Counter(AtomicUsize);
    impl Wake for Counter {
        fn wake(self: Arc<Self>) {
            self.0.fetch_add(1, OsOrdering::SeqCst);
        }
    }

    crate::loom::unit_test(|| {
        let (shared, core) = WorkerShared::new().unwrap();
        let scope = context::set_worker(&core);
        let kernel = shared.reactor.kernel();
        let fd = kernel.new_file();
        let io = shared.reactor.register(fd, Interest::Source).unwrap();
        let woken = Arc::new(Counter(AtomicUsize::new(0)));
        let waker = Waker::from(woken.clone());
        assert!(io.poll_ready_slot(Direction::Read, &waker).is_none());
        kernel.set_ready(fd, crate::eventpoll::EPOLLIN);
        // Another thread queued work: the park will not sleep.
        shared.unpark();
        let parks = shared.metrics.parks.get();
        core.park();
        assert_eq!(
            shared.metrics.parks.get(),
            parks,
            "slept with an unpark pending"
        );
        assert_eq!(
            woken.0.load(OsOrdering::SeqCst),
            1,
            "the event waited for a later park"
        );
        drop(scope);
        shared.reactor.delete_source(fd).unwrap();
        drop(io);
        core.local.shutdown();
    });
}
