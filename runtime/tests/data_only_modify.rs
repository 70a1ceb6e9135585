//! A modify that changes only the data, against the kernel's epoll.
//!
//! `EventPoll` keeps each item's data itself, so a modify with the item's mask and
//! modes unchanged needs the kernel only for what `ep_modify` would do there: poll the
//! fd and queue the registration if it is ready and not queued. When the kernel has
//! reported nothing for the item since its last add or modify, every wakeup since has
//! queued it, so for a socket, a pipe, an eventfd or a timerfd, whose poll changes
//! nothing else, that kernel modify would change nothing and is left out from the
//! item's second data-only modify on (a lookup of the file once per item, then one
//! `fcntl(F_GETFD)` per modify, still checks the fd is open). Every other kind of fd
//! gets the kernel modify, because its poll may change state. These steps compare
//! every answer and every report with the kernel's, on each of those four kinds, in
//! the states where it matters: reported and still ready, queued and not
//! reported, not ready, oneshot armed and disarmed, carried over on the ready list,
//! after another thread's blocked wait, and closed without a delete; then on the two
//! kinds of file whose poll changes state: a nested epoll and a signalfd.
//!
//! The closed case closes a registered fd and must find its number still closed, and
//! tests in one binary run on parallel threads that open fds; so this file has one test,
//! and its cases run one after another.

mod util;

use std::io::{Read, Write};
use std::os::fd::{AsRawFd, OwnedFd, RawFd};
use std::os::unix::net::UnixStream;
use std::sync::Arc;
use std::thread;
use std::time::Duration;

use epitome_runtime::eventpoll::*;
use util::{Both, Kernel, errno, eventfd, owned, pipe, socketpair};

/// The kinds of fd the cases run on, all of them files whose poll changes nothing, so
/// that `EventPoll` leaves out the kernel modify of a quiet item from its second
/// data-only modify on.
#[derive(Clone, Copy, Debug)]
enum Kind {
    EventFd,
    TimerFd,
    Pipe,
    Socket,
}

const KINDS: [Kind; 4] = [Kind::EventFd, Kind::TimerFd, Kind::Pipe, Kind::Socket];

/// A registered fd and the fd that makes it readable.
struct Source {
    watched: OwnedFd,
    /// None for an eventfd or a timerfd, which are made readable through themselves.
    writer: Option<OwnedFd>,
    kind: Kind,
}

impl Source {
    fn new(kind: Kind) -> Source {
        match kind {
            Kind::EventFd => Source {
                watched: eventfd(),
                writer: None,
                kind,
            },
            Kind::TimerFd => {
                let flags = libc::TFD_NONBLOCK | libc::TFD_CLOEXEC;
                Source {
                    // SAFETY: plain syscall.
                    watched: owned(unsafe { libc::timerfd_create(libc::CLOCK_MONOTONIC, flags) }),
                    writer: None,
                    kind,
                }
            }
            Kind::Pipe => {
                let (r, w) = pipe();
                Source {
                    watched: r,
                    writer: Some(w),
                    kind,
                }
            }
            Kind::Socket => {
                let (a, b) = socketpair();
                Source {
                    watched: a,
                    writer: Some(b),
                    kind,
                }
            }
        }
    }

    fn fd(&self) -> RawFd {
        self.watched.as_raw_fd()
    }

    /// A wakeup: one more unit of data to read.
    fn write_one(&self) {
        if let Kind::TimerFd = self.kind {
            // One expiry a nanosecond from now; its wakeup has happened once the fd
            // polls readable.
            let it = libc::itimerspec {
                it_interval: libc::timespec {
                    tv_sec: 0,
                    tv_nsec: 0,
                },
                it_value: libc::timespec {
                    tv_sec: 0,
                    tv_nsec: 1,
                },
            };
            let mut pfd = libc::pollfd {
                fd: self.fd(),
                events: libc::POLLIN,
                revents: 0,
            };
            // SAFETY: `it` and `pfd` are valid for the calls; a null old value is
            // allowed.
            unsafe {
                assert_eq!(
                    libc::timerfd_settime(self.fd(), 0, &it, std::ptr::null_mut()),
                    0
                );
                assert_eq!(libc::poll(&mut pfd, 1, 10_000), 1, "the timer expired");
            }
            return;
        }
        let one = 1u64.to_ne_bytes();
        let fd = self.writer.as_ref().unwrap_or(&self.watched).as_raw_fd();
        // An eventfd takes 8 bytes; a pipe or socket gets 1.
        let len = if self.writer.is_some() { 1 } else { 8 };
        // SAFETY: `one` is valid for its 8 bytes.
        let n = unsafe { libc::write(fd, one.as_ptr().cast(), len) };
        assert_eq!(
            n,
            len as isize,
            "write: {}",
            std::io::Error::last_os_error()
        );
    }

    /// Reads everything there is (the fds are non-blocking).
    fn drain(&self) {
        let mut buf = [0u8; 256];
        // SAFETY: `buf` is valid for its 256 bytes.
        while unsafe { libc::read(self.fd(), buf.as_mut_ptr().cast(), buf.len()) } > 0 {}
    }
}

/// Edge-triggered, reported and still ready: the kernel queues it again at every
/// modify, so each data-only modify is followed by one report with the new data.
fn reported_and_still_ready(kind: Kind) {
    let both = Both::new();
    let src = Source::new(kind);
    let fd = src.fd();
    both.ctl("et", "add", fd, EPOLLIN | EPOLLET, 1);
    src.write_one();
    assert_eq!(both.wait("et: first report"), [(EPOLLIN, 1)]);
    for data in 2..6 {
        both.ctl("et: data only", "mod", fd, EPOLLIN | EPOLLET, data);
        assert_eq!(both.wait("et: after modify"), [(EPOLLIN, data)]);
        assert_eq!(both.wait("et: nothing new"), []);
    }
    // Two modifies in a row: the first queues it, the second finds it queued.
    both.ctl("et", "mod", fd, EPOLLIN | EPOLLET, 10);
    both.ctl("et", "mod", fd, EPOLLIN | EPOLLET, 11);
    assert_eq!(both.wait("et: once, newest data"), [(EPOLLIN, 11)]);
    assert_eq!(both.wait("et: not twice"), []);
    both.ctl("et", "del", fd, 0, 0);
}

/// Queued by a wakeup and not reported yet, or not ready at all: modifies change only
/// the data, and the item is reported once, with the latest.
fn queued_or_not_ready(kind: Kind) {
    let both = Both::new();
    let src = Source::new(kind);
    let fd = src.fd();
    both.ctl("quiet", "add", fd, EPOLLIN | EPOLLET, 1);
    both.ctl("quiet: not ready", "mod", fd, EPOLLIN | EPOLLET, 2);
    assert_eq!(both.wait("quiet: nothing"), []);
    src.write_one();
    both.ctl("quiet: queued", "mod", fd, EPOLLIN | EPOLLET, 3);
    both.ctl("quiet: queued", "mod", fd, EPOLLIN | EPOLLET, 4);
    assert_eq!(both.wait("quiet: one report"), [(EPOLLIN, 4)]);
    assert_eq!(both.wait("quiet: only one"), []);
    // Drained while queued: the report is dropped, by both.
    src.drain();
    both.ctl("quiet", "mod", fd, EPOLLIN | EPOLLET, 5);
    src.write_one();
    src.drain();
    both.ctl("quiet: queued, drained", "mod", fd, EPOLLIN | EPOLLET, 6);
    assert_eq!(both.wait("quiet: drained"), []);
    src.write_one();
    assert_eq!(both.wait("quiet: a new wakeup"), [(EPOLLIN, 6)]);
    both.ctl("quiet", "del", fd, 0, 0);
}

/// Oneshot: armed and not fired, the modify changes only the data; fired, it re-arms.
fn oneshot(kind: Kind) {
    let both = Both::new();
    let src = Source::new(kind);
    let fd = src.fd();
    for mode in [EPOLLONESHOT, EPOLLONESHOT | EPOLLET] {
        both.ctl("oneshot", "add", fd, EPOLLIN | mode, 1);
        both.ctl("oneshot: armed", "mod", fd, EPOLLIN | mode, 2);
        src.write_one();
        both.ctl("oneshot: armed, queued", "mod", fd, EPOLLIN | mode, 3);
        assert_eq!(both.wait("oneshot: fires"), [(EPOLLIN, 3)]);
        assert_eq!(both.wait("oneshot: disarmed"), []);
        src.write_one();
        assert_eq!(both.wait("oneshot: disarmed, new wakeup"), []);
        both.ctl("oneshot: re-arm", "mod", fd, EPOLLIN | mode, 4);
        assert_eq!(both.wait("oneshot: re-armed"), [(EPOLLIN, 4)]);
        both.ctl("oneshot: re-arm", "mod", fd, EPOLLIN | mode, 5);
        both.ctl("oneshot: armed again", "mod", fd, EPOLLIN | mode, 6);
        assert_eq!(both.wait("oneshot: once"), [(EPOLLIN, 6)]);
        assert_eq!(both.wait("oneshot: once only"), []);
        both.ctl("oneshot", "del", fd, 0, 0);
        src.drain();
    }
}

/// Level-triggered items carried over from wait to wait, with one event of room:
/// data-only modifies keep each item's place in the round robin.
fn carried_over_keeps_its_place(kind: Kind) {
    let both = Both::new();
    let fds: Vec<Source> = (0..4).map(|_| Source::new(kind)).collect();
    for (i, f) in fds.iter().enumerate() {
        both.ctl("lt", "add", f.fd(), EPOLLIN, i as u64);
        f.write_one();
    }
    let mut data = [0, 1, 2, 3];
    for step in 0..24u64 {
        let room = 1 + (step % 3) as usize;
        let got = both.wait_room("lt: round robin", room);
        assert_eq!(got.len(), room);
        // Modify an item that was just delivered (on the ready list again) and one
        // that was not.
        let i = (step % 4) as usize;
        data[i] += 10;
        both.ctl("lt: data only", "mod", fds[i].fd(), EPOLLIN, data[i]);
    }
    // One of them drained: the next pass drops it.
    fds[2].drain();
    both.ctl("lt", "mod", fds[2].fd(), EPOLLIN, 99);
    for _ in 0..6 {
        both.wait_room("lt: after drain", 2);
    }
    for f in &fds {
        both.ctl("lt", "del", f.fd(), 0, 0);
    }
}

/// A thread blocked in `wait` takes the report; a data-only modify after it returns
/// must queue the still-ready item again, as the kernel's modify does.
fn after_another_threads_wait() {
    let ep = Arc::new(EventPoll::new().expect("EventPoll::new"));
    let (mut a, b) = UnixStream::pair().expect("socketpair");
    let fd = b.as_raw_fd();
    ep.add(fd, Event::new(EPOLLIN | EPOLLET, 1)).unwrap();
    let waiter = {
        let ep = ep.clone();
        thread::spawn(move || {
            let mut buf = [Event::default(); 4];
            let n = ep.wait(&mut buf, Some(Duration::from_secs(10))).unwrap();
            buf[..n].to_vec()
        })
    };
    // Whether the waiter is asleep in the kernel yet or not, it gets the report.
    thread::sleep(Duration::from_millis(20));
    a.write_all(b"x").unwrap();
    let got = waiter.join().unwrap();
    assert_eq!(got, [Event::new(EPOLLIN, 1)]);
    ep.modify(fd, Event::new(EPOLLIN | EPOLLET, 2)).unwrap();
    let mut buf = [Event::default(); 4];
    let n = ep.wait(&mut buf, Some(Duration::ZERO)).unwrap();
    assert_eq!(&buf[..n], [Event::new(EPOLLIN, 2)], "not queued again");
    let n = ep.wait(&mut buf, Some(Duration::ZERO)).unwrap();
    assert_eq!(n, 0);
    ep.delete(fd).unwrap();
    let mut sink = [0u8; 1];
    (&b).read_exact(&mut sink).unwrap();
}

/// Closed without a delete (against the contract) and the number still free: the
/// kernel dropped its item and answers EBADF; so does `EventPoll`, which forgets its
/// stale item.
fn closed_without_delete(kind: Kind) {
    let both = Both::new();
    let src = Source::new(kind);
    let fd = src.fd();
    both.ctl("closed", "add", fd, EPOLLIN | EPOLLET, 1);
    both.ctl("closed: quiet", "mod", fd, EPOLLIN | EPOLLET, 2);
    let len = both.ep.len();
    drop(src);
    let k = both.kernel.modify(fd, Event::new(EPOLLIN | EPOLLET, 3));
    let e = both.ep.modify(fd, Event::new(EPOLLIN | EPOLLET, 3));
    assert_eq!(k.map_err(|e| errno(&e)), Err(libc::EBADF));
    assert_eq!(e.map_err(|e| errno(&e)), Err(libc::EBADF));
    assert_eq!(both.ep.len(), len - 1, "the stale item is forgotten");
}

/// A nested epoll: polling it drops the items of its ready list that are no longer
/// ready (`__ep_eventpoll_poll`), so an item dropped by the modify's poll and woken
/// again joins the tail of the nested list, behind an item it was in front of. The
/// sequence runs once under the kernel's epoll and once under `EventPoll`, each with
/// its own nested instance, and the nested instances must report in the same order.
fn nested_epoll() {
    fn run(add: impl Fn(RawFd, Event), modify: impl Fn(RawFd, Event)) -> Vec<u64> {
        let inner = Kernel::new();
        let (a, b) = (Source::new(Kind::EventFd), Source::new(Kind::EventFd));
        inner.add(a.fd(), Event::new(EPOLLIN, 1)).unwrap();
        inner.add(b.fd(), Event::new(EPOLLIN, 2)).unwrap();
        a.write_one();
        b.write_one();
        // The nested ready list is [a, b]; the add's poll stops at a, which is ready,
        // and so do the polls of the first data-only modifies (`EventPoll` looks the
        // file up at the second).
        add(inner.as_raw_fd(), Event::new(EPOLLIN, 7));
        modify(inner.as_raw_fd(), Event::new(EPOLLIN, 8));
        modify(inner.as_raw_fd(), Event::new(EPOLLIN, 9));
        // a is no longer ready but still on the nested list, until a poll drops it.
        a.drain();
        modify(inner.as_raw_fd(), Event::new(EPOLLIN, 10));
        a.write_one();
        let mut out = [Event::default(); 4];
        let n = inner.wait(&mut out, 0).unwrap();
        out[..n].iter().map(|e| e.data).collect()
    }
    let kernel = Kernel::new();
    let want = run(
        |fd, ev| kernel.add(fd, ev).unwrap(),
        |fd, ev| kernel.modify(fd, ev).unwrap(),
    );
    assert_eq!(
        want,
        [2, 1],
        "the kernel's modify dropped a from the nested list"
    );
    let ep = EventPoll::new().unwrap();
    let got = run(
        |fd, ev| ep.add(fd, ev).unwrap(),
        |fd, ev| ep.modify(fd, ev).unwrap(),
    );
    assert_eq!(
        got, want,
        "the nested epoll's order after a data-only modify"
    );
}

/// A signalfd answers for the thread that polls it: a signal pending on another
/// thread makes it ready there only. Added by this thread (not ready), modified by a
/// thread with the signal pending: the kernel's modify polls from that thread and
/// queues the item, so a data-only modify must reach the kernel too, however many
/// data-only modifies came before.
fn signalfd_polled_by_another_thread() {
    /// The set holding SIGUSR2 alone.
    fn sigusr2_set() -> libc::sigset_t {
        // SAFETY: a zeroed sigset is valid storage, which sigemptyset initialises.
        unsafe {
            let mut set = std::mem::zeroed::<libc::sigset_t>();
            libc::sigemptyset(&mut set);
            libc::sigaddset(&mut set, libc::SIGUSR2);
            set
        }
    }
    let both = Both::new();
    let set = sigusr2_set();
    // SAFETY: `set` is an initialised sigset.
    let sfd = owned(unsafe { libc::signalfd(-1, &set, libc::SFD_NONBLOCK | libc::SFD_CLOEXEC) });
    let fd = sfd.as_raw_fd();
    let (pending_tx, pending_rx) = std::sync::mpsc::channel();
    let (added_tx, added_rx) = std::sync::mpsc::channel();
    thread::scope(|scope| {
        let both = &both;
        scope.spawn(move || {
            // SAFETY: `set` is an initialised sigset; the signal is blocked in this
            // thread only, sent to this thread only, and read back below.
            unsafe {
                assert_eq!(
                    libc::pthread_sigmask(libc::SIG_BLOCK, &set, std::ptr::null_mut()),
                    0
                );
                let tid = libc::syscall(libc::SYS_gettid) as libc::pid_t;
                assert_eq!(
                    libc::syscall(libc::SYS_tgkill, libc::getpid(), tid, libc::SIGUSR2),
                    0
                );
            }
            pending_tx.send(()).unwrap();
            added_rx.recv().unwrap();
            both.ctl("signalfd: data only, other thread", "mod", fd, EPOLLIN, 2);
            assert_eq!(both.wait("signalfd: ready here"), [(EPOLLIN, 2)]);
            // Take the signal, so it is not left pending.
            let mut info = [0u8; 128];
            // SAFETY: `info` is valid for its 128 bytes, one signalfd_siginfo.
            let n = unsafe { libc::read(fd, info.as_mut_ptr().cast(), info.len()) };
            assert_eq!(n, 128, "the signal read back");
        });
        pending_rx.recv().unwrap();
        both.ctl("signalfd: not ready in this thread", "add", fd, EPOLLIN, 1);
        // Data-only modifies here, where it is not ready: `EventPoll` has looked the
        // file up by the second.
        for data in [3, 4, 5] {
            both.ctl("signalfd: data only, this thread", "mod", fd, EPOLLIN, data);
        }
        assert_eq!(both.wait("signalfd: nothing here"), []);
        added_tx.send(()).unwrap();
    });
    both.ctl("signalfd", "del", fd, 0, 0);
}

#[test]
fn data_only_modifies_match_the_kernel() {
    for kind in KINDS {
        eprintln!("{kind:?}");
        reported_and_still_ready(kind);
        queued_or_not_ready(kind);
        oneshot(kind);
        carried_over_keeps_its_place(kind);
        closed_without_delete(kind);
    }
    after_another_threads_wait();
    nested_epoll();
    signalfd_polled_by_another_thread();
}
