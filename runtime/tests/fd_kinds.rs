//! Kinds of fd the differential test does not create, against the kernel's epoll.
//!
//! The differential test drives socketpairs, pipes and eventfds. Each test here takes
//! one other kind of file (character devices without a poll method, a `/proc` file,
//! timerfd, TCP with urgent data and half-close, a nested epoll instance, inotify) and
//! applies the same steps to a kernel epoll instance and an `EventPoll` at once: every
//! ctl must give the kernel's result and every non-blocking wait the kernel's events,
//! masks, data and order. Before each wait the file is brought to a settled state
//! (`poll(2)` until the event the step produced is visible), so both instances see
//! the same thing.

mod util;

use std::fs::File;
use std::io::Write;
use std::net::{Shutdown, TcpListener, TcpStream};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};

use epitome_runtime::eventpoll::*;
use util::{Both, Kernel, eventfd};

/// Waits (up to 5 s) until `poll(2)` shows `events` on `fd`.
fn settle(fd: RawFd, events: i16) {
    let mut p = libc::pollfd {
        fd,
        events,
        revents: 0,
    };
    // SAFETY: one valid pollfd.
    let n = unsafe { libc::poll(&mut p, 1, 5_000) };
    assert_eq!(n, 1, "fd {fd} never showed {events:#x}");
}

fn owned(fd: libc::c_int) -> OwnedFd {
    assert!(fd >= 0, "{}", std::io::Error::last_os_error());
    // SAFETY: the fd was just created and nothing else owns it.
    unsafe { OwnedFd::from_raw_fd(fd) }
}

#[test]
fn character_devices_without_poll_are_eperm() {
    let both = Both::new();
    for path in ["/dev/null", "/dev/zero", "/dev/full"] {
        let Ok(file) = File::open(path) else { continue };
        for events in [EPOLLIN, EPOLLOUT | EPOLLET, EPOLLIN | EPOLLEXCLUSIVE] {
            let res = both.ctl(path, "add", file.as_raw_fd(), events, 1);
            assert_eq!(res, libc::EPERM, "{path}");
        }
        assert_eq!(
            both.ctl(path, "mod", file.as_raw_fd(), EPOLLIN, 1),
            libc::EPERM
        );
        assert_eq!(both.ctl(path, "del", file.as_raw_fd(), 0, 0), libc::EPERM);
    }
    assert!(both.ep.is_empty());
}

#[test]
fn proc_file_with_its_own_poll() {
    // /proc/self/mounts polls readable always, and PRI | ERR after a mount change.
    let both = Both::new();
    let file = File::open("/proc/self/mounts").expect("open /proc/self/mounts");
    let fd = file.as_raw_fd();
    both.ctl("mounts", "add", fd, EPOLLIN | EPOLLPRI, 7);
    assert_eq!(both.wait("mounts LT"), [(EPOLLIN, 7)]);
    assert_eq!(both.wait("mounts LT again"), [(EPOLLIN, 7)]);
    both.ctl("mounts", "mod", fd, EPOLLIN | EPOLLET, 8);
    assert_eq!(both.wait("mounts ET after modify"), [(EPOLLIN, 8)]);
    assert_eq!(both.wait("mounts ET, no new wakeup"), []);
    both.ctl("mounts", "del", fd, 0, 0);
}

#[test]
fn timerfd_expiry_level_and_edge() {
    let both = Both::new();
    // SAFETY: plain syscall.
    let tfd = owned(unsafe {
        libc::timerfd_create(
            libc::CLOCK_MONOTONIC,
            libc::TFD_NONBLOCK | libc::TFD_CLOEXEC,
        )
    });
    let fd = tfd.as_raw_fd();
    let arm = |nanos: i64| {
        let spec = libc::itimerspec {
            it_interval: libc::timespec {
                tv_sec: 0,
                tv_nsec: 0,
            },
            it_value: libc::timespec {
                tv_sec: 0,
                tv_nsec: nanos,
            },
        };
        // SAFETY: `spec` is valid; the old value is not wanted.
        let res = unsafe { libc::timerfd_settime(fd, 0, &spec, std::ptr::null_mut()) };
        assert_eq!(res, 0);
    };
    let read = || {
        let mut buf = [0u8; 8];
        // SAFETY: `buf` has room for the 8-byte expiry count.
        unsafe { libc::read(fd, buf.as_mut_ptr().cast(), 8) }
    };

    both.ctl("timerfd", "add", fd, EPOLLIN, 1);
    assert_eq!(both.wait("unarmed"), []);
    arm(1_000);
    settle(fd, libc::POLLIN);
    assert_eq!(both.wait("expired, LT"), [(EPOLLIN, 1)]);
    assert_eq!(both.wait("expired, LT again"), [(EPOLLIN, 1)]);
    assert_eq!(read(), 8);
    assert_eq!(both.wait("read: dropped from the ready list"), []);

    both.ctl("timerfd", "mod", fd, EPOLLIN | EPOLLET | EPOLLONESHOT, 2);
    arm(1_000);
    settle(fd, libc::POLLIN);
    assert_eq!(both.wait("expired, oneshot"), [(EPOLLIN, 2)]);
    assert_eq!(both.wait("oneshot disarmed"), []);
    both.ctl("timerfd", "mod", fd, EPOLLIN | EPOLLET, 3);
    assert_eq!(both.wait("re-armed while still expired"), [(EPOLLIN, 3)]);
    assert_eq!(both.wait("ET, nothing new"), []);
    both.ctl("timerfd", "del", fd, 0, 0);
}

#[test]
fn tcp_urgent_data_half_close_and_reset() {
    let both = Both::new();
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
    let mut client = TcpStream::connect(listener.local_addr().unwrap()).expect("connect");
    let (server, _) = listener.accept().expect("accept");
    server.set_nonblocking(true).unwrap();
    let fd = server.as_raw_fd();

    both.ctl(
        "tcp",
        "add",
        fd,
        EPOLLIN | EPOLLPRI | EPOLLRDHUP | EPOLLET,
        1,
    );
    assert_eq!(both.wait("idle"), []);
    // One byte of urgent data: PRI.
    // SAFETY: a one-byte buffer.
    let sent = unsafe { libc::send(client.as_raw_fd(), b"!".as_ptr().cast(), 1, libc::MSG_OOB) };
    assert_eq!(sent, 1);
    settle(fd, libc::POLLPRI);
    let got = both.wait("urgent data");
    assert_eq!(got.len(), 1);
    assert_ne!(got[0].0 & EPOLLPRI, 0, "{got:x?}");
    assert_eq!(both.wait("ET, nothing new"), []);

    client.write_all(b"hello").unwrap();
    settle(fd, libc::POLLIN);
    assert_eq!(both.wait("data").len(), 1);

    // Level-triggered with OUT too: the same fd reported on every wait.
    both.ctl(
        "tcp",
        "mod",
        fd,
        EPOLLIN | EPOLLOUT | EPOLLPRI | EPOLLRDHUP,
        2,
    );
    let first = both.wait("LT after modify");
    assert_eq!(both.wait("LT again"), first);

    client.shutdown(Shutdown::Write).unwrap();
    settle(fd, libc::POLLRDHUP);
    let got = both.wait("peer half-closed");
    assert_ne!(got[0].0 & EPOLLRDHUP, 0, "{got:x?}");

    // A reset: linger 0 then close sends RST; ERR and HUP come unasked.
    both.ctl("tcp", "mod", fd, EPOLLOUT | EPOLLET, 3);
    both.wait("before the reset");
    let linger = libc::linger {
        l_onoff: 1,
        l_linger: 0,
    };
    // SAFETY: `linger` is a valid option value of its size.
    let res = unsafe {
        libc::setsockopt(
            client.as_raw_fd(),
            libc::SOL_SOCKET,
            libc::SO_LINGER,
            (&linger as *const libc::linger).cast(),
            std::mem::size_of::<libc::linger>() as libc::socklen_t,
        )
    };
    assert_eq!(res, 0);
    drop(client);
    settle(fd, libc::POLLHUP);
    let got = both.wait("reset");
    assert_ne!(got[0].0 & (EPOLLHUP | EPOLLERR), 0, "{got:x?}");
    both.ctl("tcp", "del", fd, 0, 0);
}

#[test]
fn nested_epoll_instance() {
    let both = Both::new();
    let inner = Kernel::new();
    let efd = eventfd();
    inner
        .add(
            efd.as_raw_fd(),
            Event {
                events: EPOLLIN,
                data: 9,
            },
        )
        .unwrap();
    let fd = inner.as_raw_fd();

    // An epoll fd reports only IN; OUT is asked for and never comes.
    both.ctl("nested", "add", fd, EPOLLIN | EPOLLOUT, 1);
    assert_eq!(both.wait("inner idle"), []);
    // SAFETY: plain syscall on an fd this test owns.
    assert_eq!(unsafe { libc::eventfd_write(efd.as_raw_fd(), 1) }, 0);
    settle(fd, libc::POLLIN);
    assert_eq!(both.wait("inner ready"), [(EPOLLIN, 1)]);
    assert_eq!(both.wait("inner ready, LT"), [(EPOLLIN, 1)]);
    let mut v = 0u64;
    // SAFETY: `v` is a valid u64 to read into.
    assert_eq!(unsafe { libc::eventfd_read(efd.as_raw_fd(), &mut v) }, 0);
    assert_eq!(both.wait("inner drained"), []);

    both.ctl("nested", "mod", fd, EPOLLIN | EPOLLET, 2);
    assert_eq!(both.wait("ET, inner not ready"), []);
    // SAFETY: as above.
    assert_eq!(unsafe { libc::eventfd_write(efd.as_raw_fd(), 1) }, 0);
    settle(fd, libc::POLLIN);
    assert_eq!(both.wait("ET, inner ready"), [(EPOLLIN, 2)]);
    assert_eq!(both.wait("ET, nothing new"), []);
    both.ctl("nested", "del", fd, 0, 0);
}

#[test]
fn inotify_oneshot_and_rearm() {
    let both = Both::new();
    // SAFETY: plain syscall.
    let ifd = owned(unsafe { libc::inotify_init1(libc::IN_NONBLOCK | libc::IN_CLOEXEC) });
    let dir = std::env::temp_dir().join(format!("epitome-fd-kinds-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let cdir = std::ffi::CString::new(dir.to_str().unwrap()).unwrap();
    // SAFETY: `cdir` is a valid C string.
    let wd = unsafe { libc::inotify_add_watch(ifd.as_raw_fd(), cdir.as_ptr(), libc::IN_CREATE) };
    assert!(wd >= 0);
    let fd = ifd.as_raw_fd();

    both.ctl("inotify", "add", fd, EPOLLIN | EPOLLONESHOT, 1);
    std::fs::write(dir.join("a"), b"").unwrap();
    settle(fd, libc::POLLIN);
    assert_eq!(both.wait("event"), [(EPOLLIN, 1)]);
    assert_eq!(both.wait("oneshot disarmed"), []);
    std::fs::write(dir.join("b"), b"").unwrap();
    assert_eq!(both.wait("disarmed: a new event stays unreported"), []);
    both.ctl("inotify", "mod", fd, EPOLLIN, 2);
    assert_eq!(both.wait("re-armed, LT"), [(EPOLLIN, 2)]);
    assert_eq!(both.wait("LT again"), [(EPOLLIN, 2)]);
    both.ctl("inotify", "del", fd, 0, 0);
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn unknown_and_alias_bits_in_the_mask() {
    let both = Both::new();
    let efd = eventfd();
    let fd = efd.as_raw_fd();
    // SAFETY: plain syscall on an fd this test owns.
    assert_eq!(unsafe { libc::eventfd_write(fd, 1) }, 0);
    // Bits no file reports are accepted and never reported.
    both.ctl("eventfd", "add", fd, EPOLLIN | (1 << 20) | (1 << 25), 1);
    assert_eq!(both.wait("unknown bits"), [(EPOLLIN, 1)]);
    // eventfd reports IN and OUT, never their RDNORM / WRNORM aliases: nothing here.
    both.ctl(
        "eventfd",
        "mod",
        fd,
        EPOLLRDNORM | EPOLLWRNORM | EPOLLWRBAND | EPOLLMSG,
        2,
    );
    assert_eq!(both.wait("alias bits only"), []);
    // A socketpair reports the aliases too.
    let (a, b) = util::socketpair();
    both.ctl("socket", "add", a.as_raw_fd(), EPOLLRDNORM | EPOLLWRNORM, 3);
    assert_eq!(both.wait("writable socket"), [(EPOLLWRNORM, 3)]);
    // SAFETY: a one-byte buffer.
    let written = unsafe { libc::write(b.as_raw_fd(), b"x".as_ptr().cast(), 1) };
    assert_eq!(written, 1);
    assert_eq!(
        both.wait("readable socket"),
        [(EPOLLRDNORM | EPOLLWRNORM, 3)]
    );
    both.ctl("socket", "del", a.as_raw_fd(), 0, 0);
    both.ctl("eventfd", "del", fd, 0, 0);
}
