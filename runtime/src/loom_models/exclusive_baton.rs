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
use crate::reactor::scheduled_io::WaitPoll;
use crate::reactor::scheduled_io::WaiterNode;
use loom::sync::Arc;
use loom::thread;

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
