//! Model 3: wake-one for exclusive waiters, with baton passing.
//!
//! Waiters A, B and C wait exclusively for readability, in that order. The reactor
//! dispatches one event while A's future is dropped on another thread without having
//! used its wakeup (`drop_waiter(.., consumed: false)`). Whichever comes first, the
//! event ends up waking B exactly once (directly, or passed on by A), and never C.
use super::{check, counting_waker, dispatch};
use crate::eventpoll::EPOLLIN;
use crate::reactor::scheduled_io::Direction;
use crate::reactor::scheduled_io::ScheduledIo;
use crate::reactor::scheduled_io::UnclaimedHook;
use crate::reactor::scheduled_io::WaitPoll;
use crate::reactor::scheduled_io::WaiterNode;
use loom::sync::Arc;
use loom::sync::atomic::{AtomicUsize, Ordering::SeqCst};
use loom::thread;
use std::sync::Arc as OsArc;

#[test]
fn a_dropped_waiter_passes_the_wakeup_on() {
    check("exclusive_baton", None, || {
        let io = Arc::new(ScheduledIo::new(None));
        // In loom `Arc`s, which never move them: pinned for the model's life.
        let nodes: Vec<Arc<WaiterNode>> = (0..3)
            .map(|_| Arc::new(WaiterNode::new(Direction::Read, true)))
            .collect();
        let wakers: Vec<_> = (0..3).map(|_| counting_waker()).collect();
        for (node, (_, waker)) in nodes.iter().zip(&wakers) {
            // SAFETY: pinned in an Arc; each is finished with `drop_waiter` or ends Ready.
            let polled = unsafe { io.poll_waiter(node, waker) };
            assert!(matches!(polled, WaitPoll::Pending));
        }

        let reactor = {
            let io = io.clone();
            thread::spawn(move || dispatch(&io, EPOLLIN))
        };
        let cancel = {
            let (io, a) = (io.clone(), nodes[0].clone());
            // SAFETY: A was only polled on `io`; its future is dropped unfinished.
            thread::spawn(move || unsafe { io.drop_waiter(&a, false) })
        };
        reactor.join().unwrap();
        cancel.join().unwrap();

        let counts: Vec<usize> = wakers.iter().map(|(c, _)| c.count()).collect();
        assert!(counts[0] <= 1, "A woken twice: {counts:?}");
        assert_eq!(counts[1], 1, "the event's wakeup was lost: {counts:?}");
        assert_eq!(
            counts[2], 0,
            "one event woke two exclusive waiters: {counts:?}"
        );

        // B consumes the event; C gives up.
        // SAFETY: as above.
        unsafe {
            let b = io.poll_waiter(&nodes[1], &wakers[1].1);
            assert!(matches!(b, WaitPoll::Ready(_)), "B woken but not ready");
            io.drop_waiter(&nodes[2], false);
        }
    });
}

/// Model 3b: the baton passed by a waiter that finished (`pass_baton_if_ready`, what a
/// worker runs after the poll of a task woken as an exclusive waiter).
///
/// Exclusive waiters A and B on a source shared with other workers (its hand-on hook
/// counts the events handed to them), behind an exclusive writer that no read event or
/// baton may wake. One event wakes A. A's task takes one connection
/// of several (readiness stays set), drops its node as used and passes the baton, while
/// the reactor dispatches a second event. B is woken exactly once (by the event or by
/// the baton, whichever finds it waiting), then finds the source ready; what finds no
/// waiter left is handed on at most once.
#[test]
fn a_finished_waiter_passes_readiness_on() {
    check("exclusive_baton/pass_if_ready", None, || {
        let handed_on = Arc::new(AtomicUsize::new(0));
        let hook: UnclaimedHook = {
            let handed_on = handed_on.clone();
            OsArc::new(move || {
                handed_on.fetch_add(1, SeqCst);
            })
        };
        let io = Arc::new(ScheduledIo::new(Some(hook)));
        // An exclusive writer, first on the list: a read baton must skip it.
        let writer = Arc::new(WaiterNode::new(Direction::Write, true));
        let (writer_woken, writer_waker) = counting_waker();
        // SAFETY: pinned in an Arc; finished with `drop_waiter` below.
        let polled = unsafe { io.poll_waiter(&writer, &writer_waker) };
        assert!(matches!(polled, WaitPoll::Pending));
        let nodes: Vec<Arc<WaiterNode>> = (0..2)
            .map(|_| Arc::new(WaiterNode::new(Direction::Read, true)))
            .collect();
        let wakers: Vec<_> = (0..2).map(|_| counting_waker()).collect();
        for (node, (_, waker)) in nodes.iter().zip(&wakers) {
            // SAFETY: pinned in an Arc; each is finished with `drop_waiter`.
            let polled = unsafe { io.poll_waiter(node, waker) };
            assert!(matches!(polled, WaitPoll::Pending));
        }
        dispatch(&io, EPOLLIN);
        assert_eq!(wakers[0].0.count(), 1, "the event did not wake A");

        let task_a = {
            let (io, a, waker) = (io.clone(), nodes[0].clone(), wakers[0].1.clone());
            thread::spawn(move || {
                // SAFETY: A was only polled on `io`; its future finishes here.
                unsafe {
                    let polled = io.poll_waiter(&a, &waker);
                    assert!(
                        matches!(polled, WaitPoll::Ready(_)),
                        "A woken but not ready"
                    );
                    io.drop_waiter(&a, true);
                }
                io.pass_baton_if_ready(Direction::Read);
            })
        };
        let reactor = {
            let io = io.clone();
            thread::spawn(move || dispatch(&io, EPOLLIN))
        };
        task_a.join().unwrap();
        reactor.join().unwrap();

        assert_eq!(
            wakers[1].0.count(),
            1,
            "B was not woken exactly once: the baton or the event was lost"
        );
        assert!(handed_on.load(SeqCst) <= 1, "handed on twice");
        assert_eq!(writer_woken.count(), 0, "a read baton woke a writer");
        // SAFETY: as above.
        unsafe {
            let b = io.poll_waiter(&nodes[1], &wakers[1].1);
            assert!(matches!(b, WaitPoll::Ready(_)), "B woken but not ready");
            io.drop_waiter(&nodes[1], true);
            io.drop_waiter(&writer, false);
        }
    });
}

/// Model 3c: one exclusive waiter per event. Exclusive waiters A and B; one event wakes
/// A; then, while A's task consumes its wakeup and drops its node, a second event
/// arrives: it wakes B (its list entry must still be seen after the first event's
/// wake left it alone on the list), exactly once.
#[test]
fn each_event_wakes_the_next_exclusive_waiter() {
    check("exclusive_baton/one_per_event", None, || {
        let io = Arc::new(ScheduledIo::new(None));
        let nodes: Vec<Arc<WaiterNode>> = (0..2)
            .map(|_| Arc::new(WaiterNode::new(Direction::Read, true)))
            .collect();
        let wakers: Vec<_> = (0..2).map(|_| counting_waker()).collect();
        for (node, (_, waker)) in nodes.iter().zip(&wakers) {
            // SAFETY: pinned in an Arc; each is finished with `drop_waiter`.
            let polled = unsafe { io.poll_waiter(node, waker) };
            assert!(matches!(polled, WaitPoll::Pending));
        }
        dispatch(&io, EPOLLIN);
        let task_a = {
            let (io, a, waker) = (io.clone(), nodes[0].clone(), wakers[0].1.clone());
            thread::spawn(move || {
                // SAFETY: A was only polled on `io`; its future finishes here.
                unsafe {
                    let polled = io.poll_waiter(&a, &waker);
                    assert!(
                        matches!(polled, WaitPoll::Ready(_)),
                        "A woken but not ready"
                    );
                    io.drop_waiter(&a, true);
                }
            })
        };
        let reactor = {
            let io = io.clone();
            thread::spawn(move || dispatch(&io, EPOLLIN))
        };
        task_a.join().unwrap();
        reactor.join().unwrap();
        let counts: Vec<usize> = wakers.iter().map(|(c, _)| c.count()).collect();
        assert_eq!(
            counts,
            [1, 1],
            "each event must wake one exclusive waiter: {counts:?}"
        );
        // SAFETY: as above.
        unsafe {
            let b = io.poll_waiter(&nodes[1], &wakers[1].1);
            assert!(matches!(b, WaitPoll::Ready(_)), "B woken but not ready");
            io.drop_waiter(&nodes[1], true);
        }
    });
}

/// Model 3d: a shared source's event in a turn that already woke others. One turn
/// dispatches an event to a plain source (its waiter's waker collected first) and then
/// to a shared source whose only waiter, an exclusive node, is dropped unused on another
/// thread meanwhile. The shared source's event is handed on exactly once: by the turn
/// (nobody claimed it) or by the dropped node (it had claimed it). Whether a source's
/// event was claimed must not depend on the wakers other sources collected.
#[test]
fn a_shared_event_in_a_busy_turn_is_handed_on_once() {
    check("exclusive_baton/busy_turn", None, || {
        let handed_on = Arc::new(AtomicUsize::new(0));
        let hook: UnclaimedHook = {
            let handed_on = handed_on.clone();
            OsArc::new(move || {
                handed_on.fetch_add(1, SeqCst);
            })
        };
        let plain = ScheduledIo::new(None);
        let (plain_woken, plain_waker) = counting_waker();
        assert!(
            plain
                .poll_ready_slot(Direction::Read, &plain_waker)
                .is_none()
        );
        let shared = Arc::new(ScheduledIo::new(Some(hook)));
        let node = Arc::new(WaiterNode::new(Direction::Read, true));
        let (node_woken, node_waker) = counting_waker();
        // SAFETY: pinned in an Arc; finished with `drop_waiter` on the other thread.
        let polled = unsafe { shared.poll_waiter(&node, &node_waker) };
        assert!(matches!(polled, WaitPoll::Pending));

        let dropper = {
            let (shared, node) = (shared.clone(), node.clone());
            // SAFETY: only polled on `shared`; its future is dropped unfinished.
            thread::spawn(move || unsafe { shared.drop_waiter(&node, false) })
        };
        let (mut wake, mut unclaimed) = (Vec::new(), Vec::new());
        plain.dispatch(EPOLLIN, &mut wake, &mut unclaimed);
        shared.dispatch(EPOLLIN, &mut wake, &mut unclaimed);
        wake.into_iter().for_each(std::task::Waker::wake);
        unclaimed.into_iter().for_each(|hook| hook());
        dropper.join().unwrap();

        assert_eq!(plain_woken.count(), 1);
        assert!(node_woken.count() <= 1);
        assert_eq!(
            handed_on.load(SeqCst),
            1,
            "the shared source's event was not handed on exactly once"
        );
    });
}
