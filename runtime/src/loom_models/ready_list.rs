//! Model 4: the ready list under concurrent append (the callback path) and removal
//! (a waiter).
//!
//! A `Poller` over the `FakeKernel`, with edge-triggered items A and C and a
//! level-triggered item B. A device thread wakes A twice (the second wakeup may find A
//! still queued: it must keep its place, not be linked again), then C and B, while
//! another thread deletes C (removal from the kernel's list by `epoll_ctl`). The waiter
//! waits until it has seen A and B, draining B when it sees it (so the poller's re-poll
//! drops B from its own list). Every change to the fake kernel's list, and the
//! poller's list after every wait, is checked to be well formed.
use super::check;
use crate::eventpoll::Event;
use crate::eventpoll::fake_kernel::FakeKernel;
use crate::eventpoll::poller::Poller;
use crate::eventpoll::{EPOLLET, EPOLLIN};
use loom::sync::Arc;
use loom::thread;

#[test]
fn never_linked_twice_never_lost() {
    check("ready_list", Some(5), || {
        let poller = Arc::new(Poller::new(FakeKernel::new()));
        let a = poller.kernel().new_file();
        let b = poller.kernel().new_file();
        let c = poller.kernel().new_file();
        poller.add(a, EPOLLIN | EPOLLET, 1).unwrap();
        poller.add(b, EPOLLIN, 2).unwrap();
        poller.add(c, EPOLLIN | EPOLLET, 3).unwrap();

        let device = {
            let poller = poller.clone();
            thread::spawn(move || {
                let kernel = poller.kernel();
                kernel.set_ready(a, EPOLLIN);
                kernel.set_ready(a, EPOLLIN);
                kernel.set_ready(c, EPOLLIN);
                kernel.set_ready(b, EPOLLIN);
            })
        };
        let deleter = {
            let poller = poller.clone();
            thread::spawn(move || poller.delete(c).unwrap())
        };

        let (mut seen_a, mut seen_b) = (false, false);
        let mut buf = [Event::default(); 2];
        while !(seen_a && seen_b) {
            let n = poller.wait(&mut buf, None).unwrap();
            assert!(n > 0, "a wait without timeout returned nothing");
            for ev in &buf[..n] {
                match ev.data {
                    1 => seen_a = true,
                    2 => {
                        seen_b = true;
                        // Read until EAGAIN.
                        poller.kernel().clear_ready(b, EPOLLIN);
                    }
                    3 => {} // C, if it was reported before its delete
                    other => panic!("unexpected report {other}"),
                }
            }
            poller.check_ready_list();
        }
        device.join().unwrap();
        deleter.join().unwrap();
        poller.check_ready_list();
        assert_eq!(poller.len(), 2);
    });
}
