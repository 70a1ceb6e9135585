//! Model 1: readiness set by the reactor vs. clear-on-`WouldBlock` by a task.
//!
//! The source starts ready with nothing to read (a fresh socket is assumed ready).
//! The reactor thread delivers two chunks of data, each followed by its event; the task
//! runs `poll_io`'s loop: while ready, read, and after `WouldBlock` clear readiness
//! with the word it saw. Whatever the interleaving, data that arrived is either read or
//! still shows as ready: a clear never erases the newer event. Every interleaving.
use super::{check, dispatch};
use crate::eventpoll::EPOLLIN;
use crate::reactor::scheduled_io::Direction;
use crate::reactor::scheduled_io::ScheduledIo;
use crate::reactor::scheduled_io::bits;
use loom::sync::Arc;
use loom::sync::atomic::{AtomicUsize, Ordering::SeqCst};
use loom::thread;

#[test]
fn a_newer_event_is_never_erased() {
    check("readiness_clear", None, || {
        let io = Arc::new(ScheduledIo::new(None));
        // The socket's receive buffer: bytes not yet read.
        let data = Arc::new(AtomicUsize::new(0));
        io.assume_ready(Direction::Read);

        let reactor = {
            let (io, data) = (io.clone(), data.clone());
            thread::spawn(move || {
                for _ in 0..2 {
                    data.fetch_add(1, SeqCst);
                    dispatch(&io, EPOLLIN);
                }
            })
        };

        // The task: `Registration::poll_io`, reading until `WouldBlock`.
        loop {
            let seen = io.readiness(Direction::Read);
            if seen.word & bits::READY == 0 {
                break; // would wait for the next event
            }
            if data.swap(0, SeqCst) == 0 {
                io.clear_readiness(seen); // WouldBlock
            }
        }
        reactor.join().unwrap();

        if data.load(SeqCst) > 0 {
            assert_ne!(
                io.readiness(Direction::Read).word & bits::READY,
                0,
                "unread data, but the clear erased the event that announced it"
            );
        }
    });
}
