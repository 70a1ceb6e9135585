//! Model 2: a task registering for readiness while the reactor dispatches the event.
//!
//! Both ways of waiting: the fast path (`poll_ready_slot`, which stores the waker and
//! then looks again) and a waiter node (`poll_waiter`, which looks and links under the
//! source's lock), each alone with the reactor, then both at once. In every
//! interleaving each task either sees the readiness at once or its waker is woken,
//! after which its next poll sees it.
//!
//! And `assume_ready` (a fresh socket marked ready without an event) racing a task on
//! the fast path of each direction: the task sees the readiness or is woken exactly
//! once. Today's callers mark a socket before any task has it, so the wake finds no
//! waker; the model holds the wake to its contract should that change.
use super::{check, counting_waker, dispatch};
use crate::eventpoll::EPOLLIN;
use crate::reactor::scheduled_io::Direction;
use crate::reactor::scheduled_io::ScheduledIo;
use crate::reactor::scheduled_io::WaitPoll;
use crate::reactor::scheduled_io::WaiterNode;
use crate::reactor::scheduled_io::bits;
use loom::sync::Arc;
use loom::thread;

fn reactor(io: &Arc<ScheduledIo>) -> thread::JoinHandle<()> {
    let io = io.clone();
    thread::spawn(move || dispatch(&io, EPOLLIN))
}

#[test]
fn fast_path_no_lost_wakeup() {
    check("waiter_registration/fast_path", None, || {
        let io = Arc::new(ScheduledIo::new(None));
        let (woken, waker) = counting_waker();
        let r = reactor(&io);
        let ready = io.poll_ready_slot(Direction::Read, &waker).is_some();
        r.join().unwrap();
        assert!(
            ready || woken.count() == 1,
            "registered after the event's wakeup, and did not see it: lost wakeup"
        );
        if !ready {
            assert!(io.poll_ready_slot(Direction::Read, &waker).is_some());
        }
    });
}

#[test]
fn waiter_node_no_lost_wakeup() {
    check("waiter_registration/waiter_node", None, || {
        let io = Arc::new(ScheduledIo::new(None));
        let (woken, waker) = counting_waker();
        let node = Box::pin(WaiterNode::new(Direction::Read, false));
        let r = reactor(&io);
        // SAFETY: the node is pinned in its box; it ends Ready (not linked) or the model
        // panics, as `Readiness` would then not call `drop_waiter` either.
        let first = unsafe { io.poll_waiter(&node, &waker) };
        r.join().unwrap();
        if let WaitPoll::Pending = first {
            assert_eq!(
                woken.count(),
                1,
                "linked after the event, not woken: lost wakeup"
            );
            // SAFETY: as above.
            let again = unsafe { io.poll_waiter(&node, &waker) };
            assert!(matches!(again, WaitPoll::Ready(_)), "woken but not ready");
        }
    });
}

#[test]
fn both_kinds_of_waiter_and_the_reactor() {
    check("waiter_registration/both", None, || {
        let io = Arc::new(ScheduledIo::new(None));
        let fast = {
            let io = io.clone();
            thread::spawn(move || {
                let (woken, waker) = counting_waker();
                let ready = io.poll_ready_slot(Direction::Read, &waker).is_some();
                (ready, woken, waker)
            })
        };
        let r = reactor(&io);
        let (woken, waker) = counting_waker();
        let node = Box::pin(WaiterNode::new(Direction::Read, false));
        // SAFETY: as in `waiter_node_no_lost_wakeup`.
        let first = unsafe { io.poll_waiter(&node, &waker) };
        r.join().unwrap();
        let (fast_ready, fast_woken, _fast_waker) = fast.join().unwrap();
        assert!(
            fast_ready || fast_woken.count() == 1,
            "fast path: lost wakeup"
        );
        if let WaitPoll::Pending = first {
            assert_eq!(woken.count(), 1, "waiter node: lost wakeup");
            // SAFETY: as above.
            let again = unsafe { io.poll_waiter(&node, &waker) };
            assert!(matches!(again, WaitPoll::Ready(_)));
        }
    });
}

/// Two tasks on one direction's fast path (a `&TcpStream` read from two tasks), and an
/// event: the slot holds one waker, the second goes to the list (or finds the slot busy
/// for an instant, and goes there too). Each task sees the readiness or is woken exactly
/// once, and no waker is left behind in the slot or the list.
#[test]
fn two_tasks_on_the_fast_path() {
    // Every interleaving is 1.3 million (two minutes); three preemptions find every
    // planted bug of the slot.
    check("waiter_registration/two_fast_paths", Some(3), || {
        let io = Arc::new(ScheduledIo::new(None));
        let other = {
            let io = io.clone();
            thread::spawn(move || {
                let (woken, waker) = counting_waker();
                let ready = io.poll_ready_slot(Direction::Read, &waker).is_some();
                (ready, woken)
            })
        };
        let r = reactor(&io);
        let (woken, waker) = counting_waker();
        let ready = io.poll_ready_slot(Direction::Read, &waker).is_some();
        r.join().unwrap();
        let (other_ready, other_woken) = other.join().unwrap();
        for (ready, count) in [(ready, woken.count()), (other_ready, other_woken.count())] {
            assert!(ready || count == 1, "a fast-path waiter lost its wakeup");
            assert!(count <= 1, "a waker woken twice by one event");
        }
        // Every waker clone was taken and dropped: nothing of either task stays
        // registered (each task's own waker is gone with its thread, or held here).
        assert_eq!(
            std::sync::Arc::strong_count(&woken),
            2,
            "a waker clone left behind"
        );
        assert_eq!(
            std::sync::Arc::strong_count(&other_woken),
            1,
            "a waker clone left behind"
        );
    });
}

/// A task polls twice without an event between (it is woken for something else),
/// while the event arrives: the re-registration keeps one waker (the same task's,
/// not cloned again) and the event finds it or the poll sees the event.
#[test]
fn a_re_registration_beside_the_event() {
    check("waiter_registration/re_registration", None, || {
        let io = Arc::new(ScheduledIo::new(None));
        let (woken, waker) = counting_waker();
        assert!(io.poll_ready_slot(Direction::Read, &waker).is_none());
        let r = reactor(&io);
        let ready = io.poll_ready_slot(Direction::Read, &waker).is_some();
        r.join().unwrap();
        assert!(
            ready || woken.count() == 1,
            "re-registration lost the wakeup"
        );
        assert!(woken.count() <= 1, "one event, two wakes");
        assert!(io.poll_ready_slot(Direction::Read, &waker).is_some());
        // The waker is not left parked: the event took it, or the poll that saw the
        // event took it back.
        assert_eq!(
            std::sync::Arc::strong_count(&woken),
            2,
            "a waker clone left behind"
        );
    });
}

/// A task that finds the event, would block, clears and parks its waker again while
/// the reactor may still be taking the previous one out of the slot: the cell passes
/// from the event back to the task only through the word (the event's release of
/// BUSY, acquired by the task's claim), and the next event wakes the task once.
#[test]
fn parking_again_right_after_an_event() {
    check("waiter_registration/park_again", None, || {
        let io = Arc::new(ScheduledIo::new(None));
        let (woken, waker) = counting_waker();
        assert!(io.poll_ready_slot(Direction::Read, &waker).is_none());
        let r = reactor(&io);
        if let Some(seen) = io.poll_ready_slot(Direction::Read, &waker) {
            // The operation would block: clear what was seen, and park again.
            assert!(io.clear_readiness(seen), "no newer event to keep");
            assert!(io.poll_ready_slot(Direction::Read, &waker).is_none());
        }
        r.join().unwrap();
        let before = woken.count();
        assert!(before <= 1, "one event, two wakes");
        // The task's next poll (it was woken, or polls anyway): it finds the event and
        // parks again after its clear, or is still parked. The next event wakes it once.
        if let Some(seen) = io.poll_ready_slot(Direction::Read, &waker) {
            assert!(io.clear_readiness(seen), "no newer event to keep");
            assert!(io.poll_ready_slot(Direction::Read, &waker).is_none());
        }
        dispatch(&io, EPOLLIN);
        // Once, or twice in one interleaving: a registrant that found the slot BUSY
        // (the event taking the old waker) keeps its waker in the list, and its next
        // registration finds the slot free and parks it there too. The second wake of
        // a task already woken is a no-op in the task's state word; it is the one
        // needless wake this model knows of (docs/loom.md).
        let after = woken.count();
        assert!(after > before, "parked again, not woken");
        assert!(after <= before + 2, "woken more than twice by one event");
        assert_eq!(
            std::sync::Arc::strong_count(&woken),
            2,
            "a waker clone left behind"
        );
    });
}

/// Two events recorded at once on one source: the reactor's own and one handed from
/// another worker's reactor (`hand_event`, a shared source). Neither is lost: the
/// generation counts both (a lost count would let a stale clear erase the second
/// event), and the parked waiter is woken once.
#[test]
fn two_events_at_once_with_a_parked_waker() {
    check("waiter_registration/two_events_slot", None, || {
        let io = Arc::new(ScheduledIo::new(None));
        let (woken, waker) = counting_waker();
        assert!(io.poll_ready_slot(Direction::Read, &waker).is_none());
        let handed = {
            let io = io.clone();
            thread::spawn(move || io.hand_event(Direction::Read))
        };
        dispatch(&io, EPOLLIN);
        handed.join().unwrap();
        let word = io.readiness(Direction::Read).word;
        assert_eq!(word >> 8, 2, "an event's generation lost");
        assert_eq!(word & (bits::SLOT | bits::BUSY), 0);
        assert_eq!(woken.count(), 1);
    });
}

/// As above with a waiter node linked (the event that empties the list clears LIST
/// while the handed event is recorded).
#[test]
fn two_events_at_once_with_a_linked_node() {
    check("waiter_registration/two_events_node", None, || {
        let io = Arc::new(ScheduledIo::new(None));
        let (woken, waker) = counting_waker();
        let node = Box::pin(WaiterNode::new(Direction::Read, false));
        // SAFETY: pinned in its box, dropped through drop_waiter below.
        let first = unsafe { io.poll_waiter(&node, &waker) };
        assert!(matches!(first, WaitPoll::Pending));
        let handed = {
            let io = io.clone();
            thread::spawn(move || io.hand_event(Direction::Read))
        };
        dispatch(&io, EPOLLIN);
        handed.join().unwrap();
        let word = io.readiness(Direction::Read).word;
        assert_eq!(word >> 8, 2, "an event's generation lost");
        assert_eq!(woken.count(), 1);
        // SAFETY: as above.
        unsafe { io.drop_waiter(&node, true) };
    });
}

/// Two tasks on one direction (two readers of one datagram socket), each polling: on
/// readiness it tries, would block, clears and polls again. One found the event while
/// registering and gave its waker back; the other then clears and registers: the
/// cell passes between them through the word (the giving back releases BUSY). Each
/// task that ends parked is woken by the next event.
#[test]
fn two_tasks_clear_and_park_beside_the_event() {
    check("waiter_registration/two_clear_and_park", Some(3), || {
        let io = Arc::new(ScheduledIo::new(None));
        let task = |io: Arc<ScheduledIo>| {
            let (woken, waker) = counting_waker();
            let mut parked = io.poll_ready_slot(Direction::Read, &waker).is_none();
            if !parked {
                let seen = io.readiness(Direction::Read);
                io.clear_readiness(seen);
                parked = io.poll_ready_slot(Direction::Read, &waker).is_none();
            }
            (woken, parked)
        };
        let t = {
            let io = io.clone();
            thread::spawn(move || task(io))
        };
        let r = reactor(&io);
        let (a, a_parked) = task(io.clone());
        let (b, b_parked) = t.join().unwrap();
        r.join().unwrap();
        // A task that ended parked is woken, by the event or by the next one.
        dispatch(&io, EPOLLIN);
        for (woken, parked) in [(a, a_parked), (b, b_parked)] {
            assert!(!parked || woken.count() >= 1, "a parked task never woken");
        }
    });
}

/// Deregistration or shutdown (`wake_all`) racing a registration: the task is woken,
/// or its poll finds the source ready (the caller then learns the runtime is gone),
/// never parked for ever.
#[test]
fn registration_beside_wake_all() {
    check("waiter_registration/beside_wake_all", None, || {
        let io = Arc::new(ScheduledIo::new(None));
        let closer = {
            let io = io.clone();
            thread::spawn(move || {
                let mut wake = Vec::new();
                io.wake_all(&mut wake);
                wake.into_iter().for_each(std::task::Waker::wake);
            })
        };
        let (woken, waker) = counting_waker();
        let ready = io.poll_ready_slot(Direction::Write, &waker).is_some();
        closer.join().unwrap();
        assert!(
            ready || woken.count() == 1,
            "parked after wake_all: never woken"
        );
    });
}

#[test]
fn assume_ready_vs_fast_path() {
    check("waiter_registration/assume_ready", None, || {
        let io = Arc::new(ScheduledIo::new(None));
        let tasks: Vec<_> = [Direction::Read, Direction::Write]
            .into_iter()
            .map(|dir| {
                let io = io.clone();
                thread::spawn(move || {
                    let (woken, waker) = counting_waker();
                    let ready = io.poll_ready_slot(dir, &waker).is_some();
                    (dir, ready, woken, waker)
                })
            })
            .collect();
        io.assume_ready(Direction::Read);
        io.assume_ready(Direction::Write);
        for task in tasks {
            let (dir, ready, woken, waker) = task.join().unwrap();
            if ready {
                assert_eq!(woken.count(), 0, "{dir:?}: ready at once, yet woken");
            } else {
                assert_eq!(
                    woken.count(),
                    1,
                    "{dir:?}: registered before the socket was marked ready, not woken once"
                );
                assert!(
                    io.poll_ready_slot(dir, &waker).is_some(),
                    "woken but not ready"
                );
            }
        }
    });
}
