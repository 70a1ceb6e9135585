//! Model 13: a listener shared by two workers (`io::SharedAsync`), each worker's
//! reactor holding the fd (`EPOLLEXCLUSIVE`: the kernel gives an event to one of
//! them). The event reaches worker 0's reactor, where no task waits; its turn runs the
//! fd's hook (`Inner::hand_on`), which hands the event to worker 1, where a task
//! waits, racing that task's wait.
//!
//! - `to_exclusive_waiter`: the task on worker 1 is in `read_with_exclusive` (an
//!   accept loop): the event is handed to it (`ScheduledIo::hand_event`: mark the read
//!   direction ready, wake the first exclusive waiter). It accepts at once (the
//!   connection came before it looked), or it waits and is woken exactly once and then
//!   accepts.
//! - `to_poller`: the task on worker 1 is in `poll_read_with` (a `poll_accept`): with
//!   no exclusive waiter anywhere, the hand-on wakes the polling tasks. Again: at once,
//!   or woken exactly once and then it accepts.
//!
//! - `baton_onward`: two connections arrive at worker 0's reactor, where a task waits
//!   in `read_with_exclusive`; it accepts one, and the baton it passes at the end of
//!   its poll (`ScheduledIo::pass_baton_if_ready`) finds no other waiter there and is
//!   handed on (`hand_on`) to worker 1's task, which accepts the other.
//!
//! - `relay`: worker 1 was paused (`SharedAsync::pause`) and resumed (`resume`), so its
//!   reactor holds a relay registration while its task waits at the home one: the
//!   event reaches worker 1's reactor, and the relay's hook (`Inner::relay`) hands it
//!   to the home's exclusive waiter (`hand_event`). Again: at once, or woken exactly
//!   once and then it accepts.
//! - `relay_onward`: as `relay`, with the task waiting on worker 0: the relay finds
//!   no waiter at its home and hands the event on (`Inner::hand_on`) to worker 0's.
//!
//! - `pause_rules`: one thread, the rules of `pause` and `pass_on` over a pipe whose
//!   readability the model controls (they poll(2) the real fd): a worker that never
//!   used the fd, a paused one and the last active one are not paused; a worker
//!   whose reactor let go of the fd already (ENOENT) is; a pause or a
//!   `pass_on` hands the event to an active worker's exclusive waiter only if the fd is
//!   readable, and clears the paused worker's readiness; `pass_on` of an active worker
//!   does nothing.
//!
//! - `errors`: one thread, `read_with_exclusive` and `poll_read_with` return the
//!   operation's own errors and retry an interrupted one; `poll_read_with` fails
//!   once its worker's reactor shut down.
//!
//! All: the connection is accepted exactly once, and `SharedAsync`'s drop takes the fd
//! out of both reactors (their gauges back to their baseline). A task that is never
//! woken blocks its model thread for good, which loom reports as a deadlock.
//!
//! The fd is a real one (`/dev/null`, never read: the accept is a model counter), so
//! `SharedAsync` can hold it; each reactor's fake kernel has a fake file of that
//! number, which the device makes readable in worker 0's kernel only.
use std::fs::File;
use std::future::Future;
use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::task::{Context, Poll, Wake, Waker};

use super::{PollFn, check};
use crate::eventpoll::EPOLLIN;
use crate::io::SharedAsync;
use crate::reactor::ReactorHandle;
use crate::reactor::context::{self, WorkerReactor};
use loom::sync::atomic::{AtomicUsize, Ordering::SeqCst};
use loom::sync::{Arc, Condvar, Mutex};
use loom::thread;

/// A task's waker that counts its wakes and lets the task's thread sleep until one.
struct ThreadWaker {
    wakes: Mutex<usize>,
    woken: Condvar,
}

impl ThreadWaker {
    fn new() -> std::sync::Arc<ThreadWaker> {
        std::sync::Arc::new(ThreadWaker {
            wakes: Mutex::new(0),
            woken: Condvar::new(),
        })
    }

    /// Sleeps until the first wake (for ever if none comes: a deadlock to loom).
    fn sleep(&self) {
        let mut wakes = self.wakes.lock().unwrap();
        while *wakes == 0 {
            wakes = self.woken.wait(wakes).unwrap();
        }
    }

    fn count(&self) -> usize {
        *self.wakes.lock().unwrap()
    }
}

impl Wake for ThreadWaker {
    fn wake(self: std::sync::Arc<Self>) {
        self.wake_by_ref();
    }
    fn wake_by_ref(self: &std::sync::Arc<Self>) {
        *self.wakes.lock().unwrap() += 1;
        self.woken.notify_one();
    }
}

/// The listen backlog: connections queued (the device queues one before it makes the
/// fd readable, as the kernel does).
fn accept(backlog: &AtomicUsize) -> io::Result<usize> {
    match backlog.swap(0, SeqCst) {
        0 => Err(io::ErrorKind::WouldBlock.into()),
        n => Ok(n),
    }
}

/// An accept of one connection from the backlog.
fn accept_one(backlog: &AtomicUsize) -> io::Result<usize> {
    let mut n = backlog.load(SeqCst);
    loop {
        if n == 0 {
            return Err(io::ErrorKind::WouldBlock.into());
        }
        match backlog.compare_exchange(n, n - 1, SeqCst, SeqCst) {
            Ok(_) => return Ok(1),
            Err(actual) => n = actual,
        }
    }
}

/// Two reactors, each with a fake file numbered as `file`'s fd.
fn two_reactors(file: &impl AsRawFd) -> [Arc<ReactorHandle>; 2] {
    let fd: RawFd = file.as_raw_fd();
    [(); 2].map(|()| {
        let reactor = ReactorHandle::new_model();
        reactor.kernel().new_files_up_to(fd);
        reactor
    })
}

/// Runs `f` as a task of worker `index`, whose reactor is `reactor`.
fn on_worker<R>(index: usize, reactor: &Arc<ReactorHandle>, f: impl FnOnce() -> R) -> R {
    context::set_worker(Some(WorkerReactor {
        index,
        reactor: reactor.clone(),
    }));
    let res = f();
    context::set_worker(None);
    res
}

/// A listener both workers have used (each reactor holds its fd); nobody waits yet.
fn listener_on_two_workers() -> (RawFd, [Arc<ReactorHandle>; 2], Arc<SharedAsync<File>>) {
    let file = File::open("/dev/null").unwrap();
    let fd = file.as_raw_fd();
    let reactors = two_reactors(&file);
    let shared = Arc::new(SharedAsync::new(file));
    for (i, reactor) in reactors.iter().enumerate() {
        let polled = on_worker(i, reactor, || {
            let (_, waker) = super::counting_waker();
            shared.poll_read_with(&mut Context::from_waker(&waker), |_| Ok(()))
        });
        assert!(matches!(polled, Poll::Ready(Ok(()))));
    }
    (fd, reactors, shared)
}

/// `SharedAsync`'s drop takes the fd out of both reactors.
fn drop_listener(shared: Arc<SharedAsync<File>>, reactors: &[Arc<ReactorHandle>; 2]) {
    drop(Arc::try_unwrap(shared).ok());
    for (i, reactor) in reactors.iter().enumerate() {
        assert_eq!(
            reactor.registered(),
            0,
            "reactor {i}'s gauge is not back to its baseline"
        );
    }
}

/// Where the connection's event arrives.
#[derive(Clone, Copy, PartialEq)]
enum Arrival {
    /// At worker 0's reactor (its home registration), where nobody waits.
    OtherWorker,
    /// At worker 1's reactor, through the relay registration `resume` made after a
    /// `pause` (its waiters wait at its home registration).
    Relay,
    /// As `Relay`, with the task waiting on worker 0: the relay finds no waiter at its
    /// home and hands the event on.
    RelayOnward,
}

/// A task's wait in a model: polls until it accepts from the backlog, sleeping on the
/// waker between polls; returns what it accepted and whether a poll was `Pending`.
type Wait = fn(&SharedAsync<File>, &AtomicUsize, &std::sync::Arc<ThreadWaker>) -> (usize, bool);

/// The model: `wait` runs on a worker (polling until it accepts, sleeping on its waker
/// between polls) while a connection arrives (`arrival`) and that reactor's turn runs.
/// `wait` returns what it accepted and whether its first poll was `Pending`.
fn hand_on_vs_wait(arrival: Arrival, wait: Wait) {
    let backlog = Arc::new(AtomicUsize::new(0));
    let (fd, reactors, shared) = listener_on_two_workers();
    if arrival != Arrival::OtherWorker {
        // Worker 1 leaves the kernel's list and comes back through a relay (the pause
        // polls the real fd, /dev/null, readable: it hands an event on to nobody).
        assert!(shared.pause(1).unwrap());
        assert!(shared.resume(1).unwrap());
    }
    // The reactor the event reaches, and the worker whose task waits.
    let (at, waiting) = match arrival {
        Arrival::OtherWorker => (0, 1),
        Arrival::Relay => (1, 1),
        Arrival::RelayOnward => (1, 0),
    };
    let waker = ThreadWaker::new();
    let task = {
        let (shared, backlog, reactor, waker) = (
            shared.clone(),
            backlog.clone(),
            reactors[waiting].clone(),
            waker.clone(),
        );
        thread::spawn(move || on_worker(waiting, &reactor, || wait(&shared, &backlog, &waker)))
    };
    let device = {
        let (backlog, reactor) = (backlog.clone(), reactors[at].clone());
        thread::spawn(move || {
            // A read-modify-write, as the accepts are: loom may order a plain store
            // before earlier swaps it did not see, and then read their 0 after it.
            backlog.fetch_add(1, SeqCst);
            reactor.kernel().set_ready(fd, EPOLLIN);
        })
    };
    device.join().unwrap();
    reactors[at].turn_now();
    let (accepted, waited) = task.join().unwrap();
    assert_eq!(accepted, 1, "the connection was not accepted once");
    assert_eq!(backlog.load(SeqCst), 0, "a connection left in the backlog");
    if waited {
        assert_eq!(
            waker.count(),
            1,
            "the waiting task was not woken exactly once by the handed-on event"
        );
    } else {
        assert!(
            waker.count() <= 1,
            "a task that accepted at once woken twice"
        );
    }
    drop_listener(shared, &reactors);
}

/// Polls `fut` with `waker` until it is ready, sleeping until a wake between polls;
/// returns its output and whether a poll was ever `Pending`.
fn run<F: Future>(fut: F, waker: &std::sync::Arc<ThreadWaker>) -> (F::Output, bool) {
    let mut fut = std::pin::pin!(fut);
    let as_waker = Waker::from(waker.clone());
    let mut cx = Context::from_waker(&as_waker);
    let mut waited = false;
    loop {
        if let Poll::Ready(out) = fut.as_mut().poll(&mut cx) {
            return (out, waited);
        }
        assert!(!waited, "polled again after its wake, and still Pending");
        waited = true;
        waker.sleep();
    }
}

#[test]
fn hand_on_to_an_exclusive_waiter() {
    check("shared_hand_on/to_exclusive_waiter", None, || {
        hand_on_vs_wait(Arrival::OtherWorker, |shared, backlog, waker| {
            let (accepted, waited) = run(shared.read_with_exclusive(|_| accept(backlog)), waker);
            (accepted.unwrap(), waited)
        });
    });
}

#[test]
fn hand_on_to_a_poller() {
    check("shared_hand_on/to_poller", None, || {
        hand_on_vs_wait(Arrival::OtherWorker, |shared, backlog, waker| {
            let poll = |cx: &mut Context<'_>| shared.poll_read_with(cx, |_| accept(backlog));
            let (accepted, waited) = run(PollFn(poll), waker);
            (accepted.unwrap(), waited)
        });
    });
}

#[test]
fn relay_to_the_home_waiter() {
    check("shared_hand_on/relay", None, || {
        hand_on_vs_wait(Arrival::Relay, |shared, backlog, waker| {
            let (accepted, waited) = run(shared.read_with_exclusive(|_| accept(backlog)), waker);
            (accepted.unwrap(), waited)
        });
    });
}

#[test]
fn relay_onward_to_another_worker() {
    check("shared_hand_on/relay_onward", None, || {
        hand_on_vs_wait(Arrival::RelayOnward, |shared, backlog, waker| {
            let (accepted, waited) = run(shared.read_with_exclusive(|_| accept(backlog)), waker);
            (accepted.unwrap(), waited)
        });
    });
}

/// Two connections for two exclusive waiters on two workers, both arriving at worker
/// 0's reactor: its waiter is woken, accepts one and leaves the listener ready, and at
/// the end of its poll passes the baton on (`ScheduledIo::pass_baton_if_ready`, from
/// `reactor::context::pass_batons`); with no other waiter on worker 0 it goes to
/// worker 1's (`hand_on`), racing that task's wait. Each accepts exactly one; worker
/// 1's task, if it waited, is woken exactly once.
#[test]
fn the_baton_goes_on_to_another_worker() {
    check("shared_hand_on/baton_onward", None, || {
        let backlog = Arc::new(AtomicUsize::new(0));
        let (fd, reactors, shared) = listener_on_two_workers();
        let waker = ThreadWaker::new();
        let other = {
            let (shared, backlog, reactor, waker) = (
                shared.clone(),
                backlog.clone(),
                reactors[1].clone(),
                waker.clone(),
            );
            thread::spawn(move || {
                on_worker(1, &reactor, || {
                    let (accepted, waited) =
                        run(shared.read_with_exclusive(|_| accept_one(&backlog)), &waker);
                    (accepted.unwrap(), waited)
                })
            })
        };
        // Worker 0's task waits (nothing to accept yet), then both connections come.
        {
            let (woken, own_waker) = super::counting_waker();
            let mut cx = Context::from_waker(&own_waker);
            let mut accept = std::pin::pin!(shared.read_with_exclusive(|_| accept_one(&backlog)));
            let polled = on_worker(0, &reactors[0], || accept.as_mut().poll(&mut cx));
            assert!(polled.is_pending());
            backlog.fetch_add(2, SeqCst);
            reactors[0].kernel().set_ready(fd, EPOLLIN);
            reactors[0].turn_now();
            assert_eq!(woken.count(), 1, "worker 0's waiter was not woken once");
            // Its poll takes one; the worker passes its baton when the poll returns.
            let polled = on_worker(0, &reactors[0], || {
                let polled = accept.as_mut().poll(&mut cx);
                context::pass_batons();
                polled
            });
            assert!(matches!(polled, Poll::Ready(Ok(1))));
        }
        let (accepted, waited) = other.join().unwrap();
        assert_eq!(accepted, 1, "worker 1's task did not accept once");
        assert_eq!(backlog.load(SeqCst), 0, "a connection left in the backlog");
        if waited {
            assert_eq!(
                waker.count(),
                1,
                "worker 1's task was not woken exactly once"
            );
        } else {
            assert!(
                waker.count() <= 1,
                "a task that accepted at once woken twice"
            );
        }
        drop_listener(shared, &reactors);
    });
}

/// A pipe, both ends non-blocking: (read end, write end).
fn pipe() -> (OwnedFd, OwnedFd) {
    let mut fds = [0; 2];
    // SAFETY: pipe2 writes two fds into the array it is given.
    let rc = unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_NONBLOCK | libc::O_CLOEXEC) };
    assert_eq!(rc, 0, "pipe2: {}", io::Error::last_os_error());
    // SAFETY: pipe2 succeeded: both fds are new and ours.
    unsafe { (OwnedFd::from_raw_fd(fds[0]), OwnedFd::from_raw_fd(fds[1])) }
}

/// A one-byte read of the pipe (`WouldBlock` when it is empty).
fn read_one(reader: &OwnedFd) -> io::Result<usize> {
    let mut byte = 0u8;
    // SAFETY: reads at most one byte into a live local.
    let n = unsafe { libc::read(reader.as_raw_fd(), (&raw mut byte).cast(), 1) };
    if n < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(n as usize)
}

/// Writes one byte into the pipe: it becomes readable.
fn write_one(writer: &OwnedFd) {
    // SAFETY: writes one byte from a live local.
    let n = unsafe { libc::write(writer.as_raw_fd(), (&raw const b"x"[0]).cast(), 1) };
    assert_eq!(n, 1, "write: {}", io::Error::last_os_error());
}

/// Polls `fut` once as a task of worker `index`, passing its batons after the poll as
/// the worker does.
fn poll_on<F: Future>(
    index: usize,
    reactor: &Arc<ReactorHandle>,
    fut: std::pin::Pin<&mut F>,
    waker: &Waker,
) -> Poll<F::Output> {
    on_worker(index, reactor, || {
        let polled = fut.poll(&mut Context::from_waker(waker));
        context::pass_batons();
        polled
    })
}

#[test]
fn pause_and_pass_on_follow_their_rules() {
    check("shared_hand_on/pause_rules", None, || {
        let (reader, writer) = pipe();
        let fd = reader.as_raw_fd();
        let reactors = two_reactors(&reader);
        let shared = SharedAsync::new(reader);
        assert!(
            !shared.pause(0).unwrap(),
            "paused a worker that never used the fd"
        );
        for (i, reactor) in reactors.iter().enumerate() {
            let (_, waker) = super::counting_waker();
            let polled = on_worker(i, reactor, || {
                shared.poll_read_with(&mut Context::from_waker(&waker), |_| Ok(()))
            });
            assert!(matches!(polled, Poll::Ready(Ok(()))));
        }
        // Worker 1's reactor has let go of the fd already (as a runtime that shut
        // down has): the pause's delete fails with ENOENT, which is no error here.
        reactors[1].delete_source(fd).unwrap();
        assert!(shared.pause(1).unwrap());
        assert!(shared.is_paused(1));
        assert_eq!(
            reactors[1].registered(),
            0,
            "the paused reactor holds the fd"
        );
        assert!(!shared.pause(1).unwrap(), "paused twice");
        assert!(
            !shared.pause(0).unwrap(),
            "the last active worker was paused"
        );
        assert!(!shared.is_paused(0));
        assert!(shared.resume(1).unwrap());

        // A pause while the fd is readable hands the event to worker 0's waiter and
        // leaves worker 1 not ready.
        let (woken, waker) = super::counting_waker();
        {
            let mut wait = std::pin::pin!(shared.read_with_exclusive(read_one));
            assert!(poll_on(0, &reactors[0], wait.as_mut(), &waker).is_pending());
            write_one(&writer);
            assert!(shared.pause(1).unwrap());
            assert_eq!(woken.count(), 1, "the pause did not hand the event on");
            let (_, probe) = super::counting_waker();
            let mut ready = std::pin::pin!(shared.ready_exclusive());
            assert!(
                poll_on(1, &reactors[1], ready.as_mut(), &probe).is_pending(),
                "the paused worker was left ready"
            );
            assert!(matches!(
                poll_on(0, &reactors[0], wait.as_mut(), &waker),
                Poll::Ready(Ok(1))
            ));
        }

        // `pass_on`: nothing while the fd is not readable, nothing for an active
        // worker; for the paused one with the fd readable, the event goes to worker 0.
        let (polled, poller) = super::counting_waker();
        let polling = on_worker(1, &reactors[1], || {
            shared.poll_read_with(&mut Context::from_waker(&poller), |_| {
                Err::<(), _>(io::ErrorKind::WouldBlock.into())
            })
        });
        assert!(polling.is_pending());
        let before = woken.count();
        {
            let mut wait = std::pin::pin!(shared.read_with_exclusive(read_one));
            assert!(poll_on(0, &reactors[0], wait.as_mut(), &waker).is_pending());
            shared.pass_on(1);
            assert_eq!(woken.count(), before, "handed on with nothing to read");
            write_one(&writer);
            shared.pass_on(0);
            assert_eq!(
                woken.count(),
                before,
                "an active worker's pass_on handed on"
            );
            assert_eq!(
                polled.count(),
                0,
                "an active worker's pass_on woke the pollers"
            );
            shared.pass_on(1);
            assert_eq!(
                woken.count(),
                before + 1,
                "the paused worker did not hand on"
            );
            assert!(matches!(
                poll_on(0, &reactors[0], wait.as_mut(), &waker),
                Poll::Ready(Ok(1))
            ));
        }
        drop(shared);
        for reactor in &reactors {
            assert_eq!(reactor.registered(), 0);
        }
    });
}

/// One thread: `read_with_exclusive` returns the operation's own errors, retries an
/// interrupted one, and waits only on `WouldBlock`.
#[test]
fn read_with_exclusive_returns_errors_and_retries_interrupts() {
    check("shared_hand_on/errors", None, || {
        let (_fd, reactors, shared) = listener_on_two_workers();
        let (_, waker) = super::counting_waker();
        {
            let mut failed = std::pin::pin!(shared.read_with_exclusive(|_| {
                Err::<(), _>(io::Error::from(io::ErrorKind::ConnectionAborted))
            }));
            match poll_on(0, &reactors[0], failed.as_mut(), &waker) {
                Poll::Ready(Err(e)) => assert_eq!(e.kind(), io::ErrorKind::ConnectionAborted),
                other => panic!("the operation's error was not returned: {other:?}"),
            }
            let mut tries = 0;
            let mut interrupted = std::pin::pin!(shared.read_with_exclusive(|_| {
                tries += 1;
                if tries == 1 {
                    Err(io::ErrorKind::Interrupted.into())
                } else {
                    Ok(tries)
                }
            }));
            assert!(matches!(
                poll_on(0, &reactors[0], interrupted.as_mut(), &waker),
                Poll::Ready(Ok(2))
            ));
        }
        // The poll form alike.
        let mut cx = Context::from_waker(&waker);
        let failed = on_worker(0, &reactors[0], || {
            shared.poll_read_with(&mut cx, |_| {
                Err::<(), _>(io::Error::from(io::ErrorKind::ConnectionAborted))
            })
        });
        match failed {
            Poll::Ready(Err(e)) => assert_eq!(e.kind(), io::ErrorKind::ConnectionAborted),
            other => panic!("poll_read_with did not return the error: {other:?}"),
        }
        let mut tries = 0;
        let retried = on_worker(0, &reactors[0], || {
            shared.poll_read_with(&mut cx, |_| {
                tries += 1;
                if tries == 1 {
                    Err(io::ErrorKind::Interrupted.into())
                } else {
                    Ok(tries)
                }
            })
        });
        assert!(matches!(retried, Poll::Ready(Ok(2))));
        // Worker 0's runtime shut down: its poll fails before trying an operation that
        // would succeed (a listener's fd outlives its runtime).
        reactors[0].shutdown();
        let tried = std::cell::Cell::new(false);
        let after = on_worker(0, &reactors[0], || {
            shared.poll_read_with(&mut cx, |_| {
                tried.set(true);
                Ok(())
            })
        });
        assert!(matches!(after, Poll::Ready(Err(_))), "{after:?}");
        assert!(!tried.get(), "an operation was tried after the shutdown");
        drop_listener(shared, &reactors);
    });
}
