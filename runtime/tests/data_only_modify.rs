//! A modify that changes only the data, against the kernel's epoll.
//!
//! `EventPoll` keeps each item's data itself, so a modify with the item's mask and
//! modes unchanged needs the kernel only for what `ep_modify` would do there: poll the
//! fd and queue the registration if it is ready and not queued. When the kernel has
//! reported nothing for the item since its last add or modify, every wakeup since has
//! queued it, so that kernel modify would change nothing and is left out (one
//! `fcntl(F_GETFD)` still checks the fd is open). These steps compare every answer and
//! every report with the kernel's in the states where it matters: reported and still
//! ready, queued and not reported, not ready, oneshot armed and disarmed, carried over
//! on the ready list, after another thread's blocked wait, and closed without a delete.
//!
//! The last case closes a registered fd and must find its number still closed, and
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
use util::{Both, errno, eventfd};

fn write_one(fd: RawFd) {
    let one = 1u64.to_ne_bytes();
    // SAFETY: `one` is valid for its 8 bytes.
    let n = unsafe { libc::write(fd, one.as_ptr().cast(), 8) };
    assert_eq!(n, 8, "eventfd write: {}", std::io::Error::last_os_error());
}

fn drain(fd: RawFd) {
    let mut buf = [0u8; 8];
    // SAFETY: `buf` is valid for its 8 bytes.
    unsafe { libc::read(fd, buf.as_mut_ptr().cast(), 8) };
}

/// Edge-triggered, reported and still ready: the kernel queues it again at every
/// modify, so each data-only modify is followed by one report with the new data.
fn reported_and_still_ready() {
    let both = Both::new();
    let efd = eventfd();
    let fd = efd.as_raw_fd();
    both.ctl("et", "add", fd, EPOLLIN | EPOLLET, 1);
    write_one(fd);
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
fn queued_or_not_ready() {
    let both = Both::new();
    let efd = eventfd();
    let fd = efd.as_raw_fd();
    both.ctl("quiet", "add", fd, EPOLLIN | EPOLLET, 1);
    both.ctl("quiet: not ready", "mod", fd, EPOLLIN | EPOLLET, 2);
    assert_eq!(both.wait("quiet: nothing"), []);
    write_one(fd);
    both.ctl("quiet: queued", "mod", fd, EPOLLIN | EPOLLET, 3);
    both.ctl("quiet: queued", "mod", fd, EPOLLIN | EPOLLET, 4);
    assert_eq!(both.wait("quiet: one report"), [(EPOLLIN, 4)]);
    assert_eq!(both.wait("quiet: only one"), []);
    // Drained while queued: the report is dropped, by both.
    drain(fd);
    both.ctl("quiet", "mod", fd, EPOLLIN | EPOLLET, 5);
    write_one(fd);
    drain(fd);
    both.ctl("quiet: queued, drained", "mod", fd, EPOLLIN | EPOLLET, 6);
    assert_eq!(both.wait("quiet: drained"), []);
    write_one(fd);
    assert_eq!(both.wait("quiet: a new wakeup"), [(EPOLLIN, 6)]);
    both.ctl("quiet", "del", fd, 0, 0);
}

/// Oneshot: armed and not fired, the modify changes only the data; fired, it re-arms.
fn oneshot() {
    let both = Both::new();
    let efd = eventfd();
    let fd = efd.as_raw_fd();
    for mode in [EPOLLONESHOT, EPOLLONESHOT | EPOLLET] {
        both.ctl("oneshot", "add", fd, EPOLLIN | mode, 1);
        both.ctl("oneshot: armed", "mod", fd, EPOLLIN | mode, 2);
        write_one(fd);
        both.ctl("oneshot: armed, queued", "mod", fd, EPOLLIN | mode, 3);
        assert_eq!(both.wait("oneshot: fires"), [(EPOLLIN, 3)]);
        assert_eq!(both.wait("oneshot: disarmed"), []);
        write_one(fd);
        assert_eq!(both.wait("oneshot: disarmed, new wakeup"), []);
        both.ctl("oneshot: re-arm", "mod", fd, EPOLLIN | mode, 4);
        assert_eq!(both.wait("oneshot: re-armed"), [(EPOLLIN, 4)]);
        both.ctl("oneshot: re-arm", "mod", fd, EPOLLIN | mode, 5);
        both.ctl("oneshot: armed again", "mod", fd, EPOLLIN | mode, 6);
        assert_eq!(both.wait("oneshot: once"), [(EPOLLIN, 6)]);
        assert_eq!(both.wait("oneshot: once only"), []);
        both.ctl("oneshot", "del", fd, 0, 0);
        drain(fd);
    }
}

/// Level-triggered items carried over from wait to wait, with one event of room:
/// data-only modifies keep each item's place in the round robin.
fn carried_over_keeps_its_place() {
    let both = Both::new();
    let fds: Vec<OwnedFd> = (0..4).map(|_| eventfd()).collect();
    for (i, f) in fds.iter().enumerate() {
        both.ctl("lt", "add", f.as_raw_fd(), EPOLLIN, i as u64);
        write_one(f.as_raw_fd());
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
        both.ctl("lt: data only", "mod", fds[i].as_raw_fd(), EPOLLIN, data[i]);
    }
    // One of them drained: the next pass drops it.
    drain(fds[2].as_raw_fd());
    both.ctl("lt", "mod", fds[2].as_raw_fd(), EPOLLIN, 99);
    for _ in 0..6 {
        both.wait_room("lt: after drain", 2);
    }
    for f in &fds {
        both.ctl("lt", "del", f.as_raw_fd(), 0, 0);
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
fn closed_without_delete() {
    let both = Both::new();
    let efd = eventfd();
    let fd = efd.as_raw_fd();
    both.ctl("closed", "add", fd, EPOLLIN | EPOLLET, 1);
    both.ctl("closed: quiet", "mod", fd, EPOLLIN | EPOLLET, 2);
    let len = both.ep.len();
    drop(efd);
    let k = both.kernel.modify(fd, Event::new(EPOLLIN | EPOLLET, 3));
    let e = both.ep.modify(fd, Event::new(EPOLLIN | EPOLLET, 3));
    assert_eq!(k.map_err(|e| errno(&e)), Err(libc::EBADF));
    assert_eq!(e.map_err(|e| errno(&e)), Err(libc::EBADF));
    assert_eq!(both.ep.len(), len - 1, "the stale item is forgotten");
}

#[test]
fn data_only_modifies_match_the_kernel() {
    reported_and_still_ready();
    queued_or_not_ready();
    oneshot();
    carried_over_keeps_its_place();
    after_another_threads_wait();
    closed_without_delete();
}
