//! Model 5: two threads waiting on one eventpoll (`Poller<FakeKernel>`).
//!
//! - Edge-triggered: one event on A wakes exactly one waiter. The waiter that gets A
//!   then makes B ready, which releases the other; so each gets exactly one of them.
//! - Level-triggered: one event on A (which stays ready) reaches both waiters: the
//!   first re-queues A and, seeing a thread asleep in the kernel wait, wakes it with a
//!   notify, which then delivers A from the re-queued list.
//! - A non-blocking wait beside a blocked one, one level-triggered event: both get it.
//!   The non-blocking wait takes the poller's fast path only while no other thread is
//!   inside `wait`; beside a sleeping thread the fast path would re-queue the item
//!   without waking that thread, which would sleep on with the item ready.
//! - A modify that changes only the data, beside a blocked waiter, one edge-triggered
//!   event. The poller leaves the kernel modify out when it would change nothing (the
//!   registration is queued, or its file not ready), which it knows from the item's
//!   state only while no thread is in the kernel wait: a thread there may have taken
//!   the item's report and not delivered it yet, and then the kernel modify must queue
//!   the still-ready item again. In the loom build the poller asserts, against the fake
//!   kernel, that every kernel modify it leaves out would have changed nothing.
//! - A timed-out wait (`wait_locked` once its time is up; loom has no time, so the
//!   timeout is a zero one, whose kernel wait returns no events) beside a thread blocked
//!   in the kernel wait, after a level-triggered event: the blocked thread may have
//!   taken the report and not delivered it yet, so the timed-out wait awaits its
//!   check-in and looks again. It reports the event (which was ready before it began),
//!   never returns empty-handed before the check-in, and never hangs; the blocked
//!   thread gets the event too.
//! - The same timed-out wait with nothing ready: the thread in the kernel wait has
//!   taken nothing, but the timed-out wait cannot know that, so it wakes it (a notify)
//!   to check in, and returns empty-handed once it has; it never hangs. An event after
//!   it still reaches the blocked thread.
use super::check;
use crate::eventpoll::Event;
use crate::eventpoll::fake_kernel::FakeKernel;
use crate::eventpoll::poller::Poller;
use crate::eventpoll::{EPOLLET, EPOLLIN};
use loom::sync::Arc;
use loom::thread;
use std::time::Duration;

/// One wait, with room for more than the one event there is: the kernel instance's
/// list is walked to its end, so a level-triggered item is re-queued on the poller's
/// own list, from where only the poller's notify can hand it to a sleeping thread.
fn wait_one(poller: &Poller<FakeKernel>) -> u64 {
    let mut buf = [Event::default(); 2];
    let n = poller.wait(&mut buf, None).unwrap();
    assert_eq!(n, 1);
    buf[0].data
}

#[test]
fn edge_triggered_event_wakes_exactly_one() {
    check("eventpoll_waiters/edge_wakes_one", None, || {
        let poller = Arc::new(Poller::new(FakeKernel::new()));
        let a = poller.kernel().new_file();
        let b = poller.kernel().new_file();
        poller.add(a, EPOLLIN | EPOLLET, 1).unwrap();
        poller.add(b, EPOLLIN | EPOLLET, 2).unwrap();
        let waiters: Vec<_> = (0..2)
            .map(|_| {
                let poller = poller.clone();
                thread::spawn(move || {
                    let got = wait_one(&poller);
                    if got == 1 {
                        poller.kernel().set_ready(b, EPOLLIN);
                    }
                    got
                })
            })
            .collect();
        poller.kernel().set_ready(a, EPOLLIN);
        let mut got: Vec<u64> = waiters.into_iter().map(|w| w.join().unwrap()).collect();
        got.sort();
        assert_eq!(got, [1, 2], "an edge-triggered event reached both waiters");
    });
}

#[test]
fn level_triggered_event_reaches_both() {
    check("eventpoll_waiters/level_reaches_both", None, || {
        let poller = Arc::new(Poller::new(FakeKernel::new()));
        let a = poller.kernel().new_file();
        poller.add(a, EPOLLIN, 1).unwrap();
        let waiters: Vec<_> = (0..2)
            .map(|_| {
                let poller = poller.clone();
                thread::spawn(move || wait_one(&poller))
            })
            .collect();
        poller.kernel().set_ready(a, EPOLLIN);
        for w in waiters {
            assert_eq!(w.join().unwrap(), 1);
        }
        poller.check_ready_list();
    });
}

#[test]
fn a_non_blocking_wait_never_strands_a_blocked_one() {
    check("eventpoll_waiters/nonblocking_beside_blocked", None, || {
        let poller = Arc::new(Poller::new(FakeKernel::new()));
        let a = poller.kernel().new_file();
        poller.add(a, EPOLLIN, 1).unwrap();
        let waiter = {
            let poller = poller.clone();
            thread::spawn(move || wait_one(&poller))
        };
        poller.kernel().set_ready(a, EPOLLIN);
        let mut buf = [Event::default(); 2];
        let n = poller.wait(&mut buf, Some(Duration::ZERO)).unwrap();
        assert!(n <= 1, "one item, {n} events");
        if n == 1 {
            assert_eq!(buf[0].data, 1);
        }
        // A stays ready: the blocked waiter gets it whoever delivered first.
        assert_eq!(waiter.join().unwrap(), 1);
        poller.check_ready_list();
    });
}

#[test]
fn a_data_only_modify_beside_a_waiter_leaves_out_only_no_ops() {
    check("eventpoll_waiters/data_only_modify", None, || {
        let poller = Arc::new(Poller::new(FakeKernel::new()));
        let a = poller.kernel().new_file();
        poller.add(a, EPOLLIN | EPOLLET, 1).unwrap();
        // An item's first data-only modify always reaches the kernel and its second
        // looks the file up; after these two, the one below may be left out.
        poller.modify(a, EPOLLIN | EPOLLET, 1).unwrap();
        poller.modify(a, EPOLLIN | EPOLLET, 1).unwrap();
        let waiter = {
            let poller = poller.clone();
            thread::spawn(move || wait_one(&poller))
        };
        poller.kernel().set_ready(a, EPOLLIN);
        poller.modify(a, EPOLLIN | EPOLLET, 2).unwrap();
        let got = waiter.join().unwrap();
        assert!(got == 1 || got == 2, "unknown data {got}");
        // A is still ready; whether it is reported once more depends on whether the
        // modify came after the waiter took it. If it is, it carries the new data.
        let mut buf = [Event::default(); 2];
        let n = poller.wait(&mut buf, Some(Duration::ZERO)).unwrap();
        assert!(n <= 1, "one item, {n} events");
        if n == 1 {
            assert_eq!(
                buf[0].data, 2,
                "reported with the data from before the modify"
            );
        }
        poller.check_ready_list();
    });
}

#[test]
fn a_timed_out_wait_awaits_the_checkin() {
    check("eventpoll_waiters/timed_out_awaits_checkin", None, || {
        let poller = Arc::new(Poller::new(FakeKernel::new()));
        let a = poller.kernel().new_file();
        poller.add(a, EPOLLIN, 1).unwrap();
        let waiter = {
            let poller = poller.clone();
            thread::spawn(move || wait_one(&poller))
        };
        poller.kernel().set_ready(a, EPOLLIN);
        let mut buf = [Event::default(); 2];
        let n = poller.wait(&mut buf, Some(Duration::ZERO)).unwrap();
        assert_eq!(
            n, 1,
            "a level-triggered item ready before the wait was not reported: the timed-out \
             wait returned before the thread holding the report checked in"
        );
        assert_eq!(buf[0].data, 1);
        assert_eq!(waiter.join().unwrap(), 1, "the blocked waiter");
        poller.check_ready_list();
    });
}

#[test]
fn a_timed_out_wait_beside_an_idle_waiter_returns() {
    check("eventpoll_waiters/timed_out_beside_idle", None, || {
        let poller = Arc::new(Poller::new(FakeKernel::new()));
        let a = poller.kernel().new_file();
        poller.add(a, EPOLLIN, 1).unwrap();
        let waiter = {
            let poller = poller.clone();
            thread::spawn(move || wait_one(&poller))
        };
        let mut buf = [Event::default(); 2];
        let n = poller.wait(&mut buf, Some(Duration::ZERO)).unwrap();
        assert_eq!(n, 0, "nothing was ready");
        poller.kernel().set_ready(a, EPOLLIN);
        assert_eq!(waiter.join().unwrap(), 1, "the blocked waiter");
        poller.check_ready_list();
    });
}
