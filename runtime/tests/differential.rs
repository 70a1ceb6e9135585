//! Differential test: the user-space `EventPoll` against the kernel's epoll.
//!
//! Random sequences of add / modify / delete (masks over IN, OUT, RDHUP and PRI, in
//! every trigger mode, some EXCLUSIVE, some deliberately invalid), interleaved with
//! writes, reads, buffer filling and draining, peer shutdown, fd replacement and
//! non-blocking waits with buffers of random size, run against a kernel epoll instance
//! and an `EventPoll` on the same fds at once. Every ctl result and every wait result
//! (count, masks, data and order) must be the kernel's.

mod util;

use std::collections::HashMap;
use std::io;
use std::os::fd::{AsRawFd, OwnedFd, RawFd};
use std::time::Duration;

use epitome_runtime::eventpoll::*;
use util::{Kernel, Rng, errno, eventfd, pipe, socketpair};

/// One pollable thing and what the test can do to it.
enum Object {
    /// Two ends of an AF_UNIX stream socketpair.
    Pair(OwnedFd, OwnedFd),
    /// Read end, write end.
    Pipe(OwnedFd, OwnedFd),
    Eventfd(OwnedFd),
}

impl Object {
    fn new(kind: u64) -> Object {
        match kind % 3 {
            0 => {
                let (a, b) = socketpair();
                Object::Pair(a, b)
            }
            1 => {
                let (r, w) = pipe();
                Object::Pipe(r, w)
            }
            _ => Object::Eventfd(eventfd()),
        }
    }

    fn fds(&self) -> Vec<RawFd> {
        match self {
            Object::Pair(a, b) | Object::Pipe(a, b) => vec![a.as_raw_fd(), b.as_raw_fd()],
            Object::Eventfd(e) => vec![e.as_raw_fd()],
        }
    }
}

fn write_some(fd: RawFd, len: usize) {
    let buf = vec![0xA5u8; len];
    // SAFETY: `buf` is valid for `len` bytes; a failed or short write is fine here.
    unsafe { libc::write(fd, buf.as_ptr().cast(), len) };
}

fn read_some(fd: RawFd, len: usize) {
    let mut buf = vec![0u8; len.max(8)];
    // SAFETY: `buf` is valid for its length; EAGAIN is fine here.
    unsafe { libc::read(fd, buf.as_mut_ptr().cast(), buf.len()) };
}

fn fill(fd: RawFd) {
    let buf = vec![0u8; 65536];
    // SAFETY: `buf` is valid for its length; the fd is non-blocking, so this stops at EAGAIN.
    while unsafe { libc::write(fd, buf.as_ptr().cast(), buf.len()) } > 0 {}
}

fn drain(fd: RawFd) {
    let mut buf = vec![0u8; 65536];
    // SAFETY: as in `fill`.
    while unsafe { libc::read(fd, buf.as_mut_ptr().cast(), buf.len()) } > 0 {}
}

fn random_mask(rng: &mut Rng) -> u32 {
    let mut ev = 0;
    for bit in [EPOLLIN, EPOLLOUT, EPOLLRDHUP] {
        if rng.chance(1, 2) {
            ev |= bit;
        }
    }
    if rng.chance(1, 16) {
        ev |= EPOLLPRI;
    }
    ev |= match rng.below(4) {
        0 => 0,
        1 => EPOLLET,
        2 => EPOLLONESHOT,
        _ => EPOLLET | EPOLLONESHOT,
    };
    if rng.chance(1, 10) {
        // Mostly valid EXCLUSIVE masks, sometimes with a bit the kernel refuses.
        ev = EPOLLEXCLUSIVE | (ev & (EPOLLIN | EPOLLOUT | EPOLLET));
        if rng.chance(1, 4) {
            ev |= [EPOLLONESHOT, EPOLLRDHUP, EPOLLPRI][rng.below(3) as usize];
        }
    }
    ev
}

struct Pair {
    kernel: Kernel,
    ours: EventPoll,
    log: Vec<String>,
}

impl Pair {
    fn ctl(&mut self, what: &str, k: io::Result<()>, u: io::Result<()>) {
        self.log
            .push(format!("{what} -> kernel {:?}", k.as_ref().map_err(errno)));
        assert_eq!(
            k.as_ref().map_err(errno),
            u.as_ref().map_err(errno),
            "{what}: kernel and EventPoll disagree\n{}",
            self.history()
        );
    }

    /// Returns whether both accepted it.
    fn add(&mut self, fd: RawFd, ev: Event) -> bool {
        let k = self.kernel.add(fd, ev);
        let u = self.ours.add(fd, ev);
        let ok = k.is_ok();
        self.ctl(&format!("add({fd}, {:#x}, {})", ev.events, ev.data), k, u);
        ok
    }

    /// Returns whether both accepted it.
    fn modify(&mut self, fd: RawFd, ev: Event) -> bool {
        let k = self.kernel.modify(fd, ev);
        let u = self.ours.modify(fd, ev);
        let ok = k.is_ok();
        self.ctl(
            &format!("modify({fd}, {:#x}, {})", ev.events, ev.data),
            k,
            u,
        );
        ok
    }

    fn delete(&mut self, fd: RawFd) {
        let k = self.kernel.delete(fd);
        let u = self.ours.delete(fd);
        self.ctl(&format!("delete({fd})"), k, u);
    }

    fn wait(&mut self, room: usize) -> usize {
        let mut kbuf = vec![Event::default(); room];
        let mut ubuf = vec![Event::default(); room];
        let k = self.kernel.wait(&mut kbuf, 0).map(|n| kbuf[..n].to_vec());
        let u = self
            .ours
            .wait(&mut ubuf, Some(Duration::ZERO))
            .map(|n| ubuf[..n].to_vec());
        self.log.push(format!(
            "wait({room}) -> kernel {:?}",
            k.as_ref().map_err(errno)
        ));
        assert_eq!(
            k.as_ref().map_err(errno),
            u.as_ref().map_err(errno),
            "wait({room}): kernel and EventPoll disagree\n{}",
            self.history()
        );
        k.map(|v| v.len()).unwrap_or(0)
    }

    fn history(&self) -> String {
        let keep = std::env::var("DIFF_LOG")
            .ok()
            .and_then(|v| v.parse().ok())
            .unwrap_or(40);
        let start = self.log.len().saturating_sub(keep);
        self.log[start..].join("\n")
    }
}

fn run(seed: u64, ops: usize) -> (usize, usize) {
    let mut rng = Rng::new(seed);
    // Seeds alternate between profiles: mixed buffers over a few objects, and tiny
    // buffers over many objects (the kernel's list then rarely empties in one wait).
    let tiny = seed % 2 == 0;
    let count = if tiny { 16 } else { 9 };
    let mut objects: Vec<Object> = (0..count).map(Object::new).collect();
    let mut pair = Pair {
        kernel: Kernel::new(),
        ours: EventPoll::new().unwrap(),
        log: Vec::new(),
    };
    // The mask each fd was last added or modified with (entries of deleted fds linger,
    // harmlessly: a modify with one is just another mask).
    let mut masks: HashMap<RawFd, u32> = HashMap::new();
    let mut reported = 0;
    let mut waits = 0;
    for _ in 0..ops {
        let obj = rng.below(objects.len() as u64) as usize;
        let fds = objects[obj].fds();
        let fd = fds[rng.below(fds.len() as u64) as usize];
        match rng.below(100) {
            0..=11 => {
                let ev = Event::new(random_mask(&mut rng), rng.below(1000));
                if pair.add(fd, ev) {
                    masks.insert(fd, ev.events);
                }
            }
            12..=21 => {
                // Half the time the mask the fd was last given, so that only the data
                // changes: EventPoll then makes no kernel modify when it can tell the
                // kernel's would change nothing.
                let mask = match masks.get(&fd) {
                    Some(&mask) if rng.chance(1, 2) => mask,
                    _ => random_mask(&mut rng),
                };
                let ev = Event::new(mask, rng.below(1000));
                if pair.modify(fd, ev) {
                    masks.insert(fd, mask);
                }
            }
            22..=26 => pair.delete(fd),
            27..=39 => {
                pair.log.push(format!("write({fd})"));
                match &objects[obj] {
                    Object::Eventfd(e) => {
                        let one = 1u64.to_ne_bytes();
                        write_some_bytes(e.as_raw_fd(), &one);
                    }
                    _ => write_some(fd, 1 + rng.below(300) as usize),
                }
            }
            40..=49 => {
                pair.log.push(format!("read({fd})"));
                read_some(fd, 1 + rng.below(300) as usize);
            }
            50..=52 => {
                pair.log.push(format!("fill({fd})"));
                fill(fd);
            }
            53..=56 => {
                pair.log.push(format!("drain({fd})"));
                drain(fd);
            }
            57..=58 => {
                if let Object::Pair(..) = objects[obj] {
                    let how =
                        [libc::SHUT_WR, libc::SHUT_RD, libc::SHUT_RDWR][rng.below(3) as usize];
                    pair.log.push(format!("shutdown({fd}, {how})"));
                    // SAFETY: plain syscall on an fd we own.
                    unsafe { libc::shutdown(fd, how) };
                }
            }
            59..=60 => {
                // Replace the object: delete its fds from both (the contract), close
                // them, open a new one (which usually reuses the fd numbers).
                pair.log.push(format!("replace object {obj}"));
                for fd in objects[obj].fds() {
                    pair.delete(fd);
                }
                objects[obj] = Object::new(rng.below(3));
            }
            61..=62 => {
                // Close one end of a pipe or pair (deleting it first, the contract) and
                // look at the survivor: HUP, ERR or RDHUP, requested or not.
                if let Object::Pair(..) | Object::Pipe(..) = objects[obj] {
                    let old = std::mem::replace(&mut objects[obj], Object::new(rng.below(3)));
                    let (Object::Pair(a, b) | Object::Pipe(a, b)) = old else {
                        unreachable!()
                    };
                    let (a, b) = if rng.chance(1, 2) { (a, b) } else { (b, a) };
                    pair.log.push(format!(
                        "close({}) keeping {}",
                        b.as_raw_fd(),
                        a.as_raw_fd()
                    ));
                    pair.delete(b.as_raw_fd());
                    drop(b);
                    let ev = Event::new(random_mask(&mut rng), 4242);
                    pair.add(a.as_raw_fd(), ev);
                    reported += pair.wait(1 + rng.below(8) as usize);
                    waits += 1;
                    pair.delete(a.as_raw_fd());
                }
            }
            _ => {
                let span = if tiny {
                    2
                } else if rng.chance(1, 3) {
                    24
                } else {
                    4
                };
                let room = 1 + rng.below(span) as usize;
                reported += pair.wait(room);
                waits += 1;
            }
        }
        // Keep the log short: only the tail matters for a failure report.
        if pair.log.len() > 400 {
            pair.log.drain(..300);
        }
    }
    // Clean up: delete everything from both before closing.
    for obj in &objects {
        for fd in obj.fds() {
            let _ = pair.kernel.delete(fd);
            let _ = pair.ours.delete(fd);
        }
    }
    assert_eq!(pair.ours.len(), 0);
    (waits, reported)
}

fn write_some_bytes(fd: RawFd, bytes: &[u8]) {
    // SAFETY: `bytes` is valid for its length.
    unsafe { libc::write(fd, bytes.as_ptr().cast(), bytes.len()) };
}

#[test]
fn random_sequences_match_the_kernel() {
    let mut total_waits = 0;
    let mut total_events = 0;
    // DIFF_SEEDS / DIFF_OPS widen the search (for example DIFF_SEEDS=1000).
    let seeds: u64 = std::env::var("DIFF_SEEDS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(8);
    let ops: usize = std::env::var("DIFF_OPS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(7_000);
    for seed in 1..=seeds {
        let (waits, events) = run(seed, ops);
        total_waits += waits;
        total_events += events;
    }
    // The sequences must actually exercise delivery, not just agree on nothing.
    assert!(total_waits > 10_000, "only {total_waits} waits");
    assert!(total_events > 10_000, "only {total_events} events reported");
}

/// With more ready level-triggered items than buffer room, the kernel reports them in
/// strict round robin: 13 fds, 3 per wait, 52 events = every fd exactly 4 times.
#[test]
fn round_robin_order_matches_the_kernel() {
    let fds: Vec<OwnedFd> = (0..13).map(|_| eventfd()).collect();
    let kernel = Kernel::new();
    let ours = EventPoll::new().unwrap();
    for (i, fd) in fds.iter().enumerate() {
        write_some_bytes(fd.as_raw_fd(), &1u64.to_ne_bytes());
        kernel
            .add(fd.as_raw_fd(), Event::new(EPOLLIN, i as u64))
            .unwrap();
        ours.add(fd.as_raw_fd(), Event::new(EPOLLIN, i as u64))
            .unwrap();
    }
    let mut kseq = Vec::new();
    let mut useq = Vec::new();
    while kseq.len() < 52 {
        let mut kbuf = [Event::default(); 3];
        let mut ubuf = [Event::default(); 3];
        let kn = kernel.wait(&mut kbuf, 0).unwrap();
        let un = ours.wait(&mut ubuf, Some(Duration::ZERO)).unwrap();
        assert_eq!(kn, 3);
        assert_eq!(&kbuf[..kn], &ubuf[..un]);
        kseq.extend(kbuf[..kn].iter().map(|e| e.data));
        useq.extend(ubuf[..un].iter().map(|e| e.data));
    }
    assert_eq!(kseq, useq);
    kseq.truncate(52);
    for i in 0..13 {
        assert_eq!(kseq.iter().filter(|&&d| d == i).count(), 4, "fd {i}");
    }
    // Strict rotation: the sequence is the 13 fds in a fixed order, repeated.
    for (n, d) in kseq.iter().enumerate() {
        assert_eq!(*d, kseq[n % 13]);
    }
    for fd in &fds {
        kernel.delete(fd.as_raw_fd()).unwrap();
        ours.delete(fd.as_raw_fd()).unwrap();
    }
}

/// Round robin with new wakeups interleaved: items made ready between waits join
/// behind the items already waiting, and re-queued items go behind them, as in the
/// kernel.
#[test]
fn round_robin_with_new_arrivals_matches_the_kernel() {
    let fds: Vec<OwnedFd> = (0..10).map(|_| eventfd()).collect();
    let kernel = Kernel::new();
    let ours = EventPoll::new().unwrap();
    for (i, fd) in fds.iter().enumerate() {
        let mode = if i % 2 == 0 { 0 } else { EPOLLET };
        kernel
            .add(fd.as_raw_fd(), Event::new(EPOLLIN | mode, i as u64))
            .unwrap();
        ours.add(fd.as_raw_fd(), Event::new(EPOLLIN | mode, i as u64))
            .unwrap();
    }
    let mut rng = Rng::new(99);
    for round in 0..2_000 {
        for _ in 0..rng.below(3) {
            let fd = &fds[rng.below(10) as usize];
            write_some_bytes(fd.as_raw_fd(), &1u64.to_ne_bytes());
        }
        if rng.chance(1, 5) {
            read_some(fds[rng.below(10) as usize].as_raw_fd(), 8);
        }
        let room = 1 + rng.below(4) as usize;
        let mut kbuf = vec![Event::default(); room];
        let mut ubuf = vec![Event::default(); room];
        let kn = kernel.wait(&mut kbuf, 0).unwrap();
        let un = ours.wait(&mut ubuf, Some(Duration::ZERO)).unwrap();
        assert_eq!(&kbuf[..kn], &ubuf[..un], "round {round}");
    }
    for fd in &fds {
        kernel.delete(fd.as_raw_fd()).unwrap();
        ours.delete(fd.as_raw_fd()).unwrap();
    }
}

/// A full kernel buffer: more freshly reported items than the caller's buffer, with a
/// mix of level- and edge-triggered items, must keep the kernel's order over the
/// following waits.
#[test]
fn more_reports_than_room_keeps_the_kernel_order() {
    let fds: Vec<OwnedFd> = (0..40).map(|_| eventfd()).collect();
    let kernel = Kernel::new();
    let ours = EventPoll::new().unwrap();
    for (i, fd) in fds.iter().enumerate() {
        let mode = [0, EPOLLET, EPOLLONESHOT][i % 3];
        kernel
            .add(fd.as_raw_fd(), Event::new(EPOLLIN | mode, i as u64))
            .unwrap();
        ours.add(fd.as_raw_fd(), Event::new(EPOLLIN | mode, i as u64))
            .unwrap();
    }
    let mut rng = Rng::new(7);
    for round in 0..500 {
        for fd in &fds {
            if rng.chance(1, 2) {
                write_some_bytes(fd.as_raw_fd(), &1u64.to_ne_bytes());
            }
        }
        if rng.chance(1, 4) {
            for (i, fd) in fds.iter().enumerate().filter(|(i, _)| i % 3 == 2) {
                let ev = Event::new(EPOLLIN | EPOLLONESHOT, i as u64 + 100);
                kernel.modify(fd.as_raw_fd(), ev).unwrap();
                ours.modify(fd.as_raw_fd(), ev).unwrap();
            }
        }
        for _ in 0..3 {
            let room = 1 + rng.below(16) as usize;
            let mut kbuf = vec![Event::default(); room];
            let mut ubuf = vec![Event::default(); room];
            let kn = kernel.wait(&mut kbuf, 0).unwrap();
            let un = ours.wait(&mut ubuf, Some(Duration::ZERO)).unwrap();
            assert_eq!(&kbuf[..kn], &ubuf[..un], "round {round}");
        }
        if rng.chance(1, 3) {
            for fd in &fds {
                read_some(fd.as_raw_fd(), 8);
            }
        }
    }
    for fd in &fds {
        kernel.delete(fd.as_raw_fd()).unwrap();
        ours.delete(fd.as_raw_fd()).unwrap();
    }
}
