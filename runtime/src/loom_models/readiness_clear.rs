//! Model 1: readiness set by the reactor vs. clear-on-`WouldBlock` by a task.
//!
//! The source starts ready with nothing to read (a fresh socket is assumed ready).
//! The reactor thread delivers two chunks of data, each followed by its event; the task
//! runs `poll_io`'s loop: while ready, read, and after `WouldBlock` clear readiness
//! with the word it saw. Whatever the interleaving, data that arrived is either read or
//! still shows as ready: a clear never erases the newer event. Every interleaving.
//!
//! And `shutdown_in_publish`: a task registering in the slot while data comes and the
//! runtime shuts down, from two other threads: it learns of the shutdown, never sleeps
//! for good (the release of the slot's BUSY loses no concurrent event).
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

/// Unparks a model thread (a task's waker that lets its thread sleep until woken).
struct Unparker(loom::thread::Thread);

impl std::task::Wake for Unparker {
    fn wake(self: std::sync::Arc<Self>) {
        self.0.unpark();
    }
}

/// A task registering in the direction's slot (`poll_ready_slot`) while data comes and
/// then the runtime shuts down, from two threads (the reactor's turn and the
/// shutdown's walk): the registration finds the data's event when it publishes the slot
/// (`publish_slot`, which then only releases BUSY), and the shutdown may come in the
/// middle of that release. The task reads until `WouldBlock`, clears, registers again:
/// it must learn of the shutdown (GONE stays in the word, and its generation makes the
/// clear of the older event fail), never park for good.
#[test]
fn a_shutdown_during_the_slots_release_is_never_lost() {
    check("readiness_clear/shutdown_in_publish", Some(3), || {
        let io = Arc::new(ScheduledIo::new(None));
        let data = Arc::new(AtomicUsize::new(0));
        let reactor = {
            let (io, data) = (io.clone(), data.clone());
            thread::spawn(move || {
                data.fetch_add(1, SeqCst);
                dispatch(&io, EPOLLIN);
            })
        };
        let shutdown = {
            let io = io.clone();
            thread::spawn(move || {
                let mut wake = Vec::new();
                io.shut_down(&mut wake);
                wake.into_iter().for_each(std::task::Waker::wake);
            })
        };
        // The task: `Registration::poll_io`'s loop, sleeping between wakes.
        let waker = std::task::Waker::from(std::sync::Arc::new(Unparker(thread::current())));
        loop {
            match io.poll_ready_slot(Direction::Read, &waker) {
                Some(seen) if seen.is_gone() => break,
                Some(seen) => {
                    if data.swap(0, SeqCst) == 0 {
                        io.clear_readiness(seen); // WouldBlock
                    }
                }
                // Woken by the next event, or a deadlock to loom.
                None => thread::park(),
            }
        }
        reactor.join().unwrap();
        shutdown.join().unwrap();
    });
}
