//! Model 2: a task registering for readiness while the reactor dispatches the event.
//!
//! Both ways of waiting: the fast path (`poll_ready_slot`, which stores the waker and
//! then looks again) and a waiter node (`poll_waiter`, which looks and links under the
//! source's lock), each alone with the reactor, then both at once. In every
//! interleaving each task either sees the readiness at once or its waker is woken,
//! after which its next poll sees it.
use super::{check, counting_waker, dispatch};
use crate::eventpoll::EPOLLIN;
use crate::reactor::scheduled_io::Direction;
use crate::reactor::scheduled_io::ScheduledIo;
use crate::reactor::scheduled_io::WaitPoll;
use crate::reactor::scheduled_io::WaiterNode;
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
