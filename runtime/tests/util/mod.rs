//! Helpers shared by the eventpoll integration tests: the kernel's own epoll as a
//! reference, the two side by side, fd constructors and a seeded random generator.

#![allow(dead_code)]

use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};

use std::time::Duration;

use epitome_runtime::eventpoll::{Event, EventPoll};

/// The kernel's epoll, called directly: the oracle.
pub struct Kernel {
    fd: OwnedFd,
}

fn check(res: libc::c_int) -> io::Result<libc::c_int> {
    if res == -1 {
        Err(io::Error::last_os_error())
    } else {
        Ok(res)
    }
}

impl Kernel {
    pub fn new() -> Kernel {
        // SAFETY: plain syscall.
        let fd = check(unsafe { libc::epoll_create1(libc::EPOLL_CLOEXEC) }).unwrap();
        // SAFETY: epoll_create1 returned a new fd that nothing else owns.
        let fd = unsafe { OwnedFd::from_raw_fd(fd) };
        Kernel { fd }
    }

    fn ctl(&self, op: libc::c_int, fd: RawFd, ev: Event) -> io::Result<()> {
        let mut raw = libc::epoll_event {
            events: ev.events,
            u64: ev.data,
        };
        // SAFETY: `raw` is a valid epoll_event for the call.
        check(unsafe { libc::epoll_ctl(self.fd.as_raw_fd(), op, fd, &mut raw) }).map(drop)
    }

    pub fn add(&self, fd: RawFd, ev: Event) -> io::Result<()> {
        self.ctl(libc::EPOLL_CTL_ADD, fd, ev)
    }

    pub fn modify(&self, fd: RawFd, ev: Event) -> io::Result<()> {
        self.ctl(libc::EPOLL_CTL_MOD, fd, ev)
    }

    pub fn delete(&self, fd: RawFd) -> io::Result<()> {
        self.ctl(libc::EPOLL_CTL_DEL, fd, Event::default())
    }

    /// `epoll_wait` with a timeout in milliseconds (-1 forever).
    pub fn wait(&self, out: &mut [Event], timeout_ms: i32) -> io::Result<usize> {
        let mut raw = vec![libc::epoll_event { events: 0, u64: 0 }; out.len()];
        // SAFETY: `raw` has room for `raw.len()` events.
        let n = check(unsafe {
            libc::epoll_wait(
                self.fd.as_raw_fd(),
                raw.as_mut_ptr(),
                raw.len() as i32,
                timeout_ms,
            )
        })? as usize;
        for (o, r) in out.iter_mut().zip(&raw[..n]) {
            *o = Event {
                events: r.events,
                data: r.u64,
            };
        }
        Ok(n)
    }
}

impl AsRawFd for Kernel {
    fn as_raw_fd(&self) -> RawFd {
        self.fd.as_raw_fd()
    }
}

/// A kernel epoll instance and an `EventPoll`, given the same steps.
pub struct Both {
    pub kernel: Kernel,
    pub ep: EventPoll,
}

impl Both {
    pub fn new() -> Both {
        Both {
            kernel: Kernel::new(),
            ep: EventPoll::new().expect("EventPoll::new"),
        }
    }

    /// Applies one ctl to both; returns the shared result as an errno (0 for success).
    pub fn ctl(&self, what: &str, op: &str, fd: RawFd, events: u32, data: u64) -> i32 {
        let ev = Event { events, data };
        let (k, e) = match op {
            "add" => (self.kernel.add(fd, ev), self.ep.add(fd, ev)),
            "mod" => (self.kernel.modify(fd, ev), self.ep.modify(fd, ev)),
            "del" => (self.kernel.delete(fd), self.ep.delete(fd)),
            _ => unreachable!("op {op}"),
        };
        let (k, e) = (
            k.err().map_or(0, |e| errno(&e)),
            e.err().map_or(0, |e| errno(&e)),
        );
        assert_eq!(
            e, k,
            "{what}: {op} fd {fd}: EventPoll errno {e}, kernel {k}"
        );
        k
    }

    /// One non-blocking wait on both, with room for 16 events; returns the shared
    /// (events, data) list.
    pub fn wait(&self, what: &str) -> Vec<(u32, u64)> {
        self.wait_room(what, 16)
    }

    /// One non-blocking wait on both, with room for `room` events.
    pub fn wait_room(&self, what: &str, room: usize) -> Vec<(u32, u64)> {
        let mut k = vec![Event::default(); room];
        let mut e = vec![Event::default(); room];
        let nk = self.kernel.wait(&mut k, 0).expect("epoll_wait");
        let ne = self
            .ep
            .wait(&mut e, Some(Duration::ZERO))
            .expect("EventPoll::wait");
        let k: Vec<_> = k[..nk].iter().map(|e| (e.events, e.data)).collect();
        let e: Vec<_> = e[..ne].iter().map(|e| (e.events, e.data)).collect();
        assert_eq!(e, k, "{what}: EventPoll reported {e:x?}, the kernel {k:x?}");
        k
    }
}

/// The errno of an error (what the tests compare).
pub fn errno(e: &io::Error) -> i32 {
    e.raw_os_error().unwrap_or(-1)
}

/// Takes ownership of an fd a syscall just returned (panics with the errno if it
/// failed).
pub fn owned(fd: libc::c_int) -> OwnedFd {
    assert!(fd >= 0, "{}", io::Error::last_os_error());
    // SAFETY: the fd was just created and nothing else owns it.
    unsafe { OwnedFd::from_raw_fd(fd) }
}

/// A non-blocking AF_UNIX stream socketpair.
pub fn socketpair() -> (OwnedFd, OwnedFd) {
    let mut fds = [0; 2];
    let ty = libc::SOCK_STREAM | libc::SOCK_NONBLOCK | libc::SOCK_CLOEXEC;
    // SAFETY: `fds` has room for two fds.
    let res = unsafe { libc::socketpair(libc::AF_UNIX, ty, 0, fds.as_mut_ptr()) };
    assert_eq!(res, 0, "{}", io::Error::last_os_error());
    (owned(fds[0]), owned(fds[1]))
}

/// A non-blocking pipe: (read end, write end).
pub fn pipe() -> (OwnedFd, OwnedFd) {
    let mut fds = [0; 2];
    // SAFETY: `fds` has room for two fds.
    let res = unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_NONBLOCK | libc::O_CLOEXEC) };
    assert_eq!(res, 0, "{}", io::Error::last_os_error());
    (owned(fds[0]), owned(fds[1]))
}

/// A non-blocking eventfd.
pub fn eventfd() -> OwnedFd {
    // SAFETY: plain syscall.
    owned(unsafe { libc::eventfd(0, libc::EFD_NONBLOCK | libc::EFD_CLOEXEC) })
}

/// SplitMix64: small, seeded, so every failure replays.
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Rng {
        Rng(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) ^ 0xD1B5_4A32_D192_ED03)
    }

    pub fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    pub fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }

    /// True with probability `num / den`.
    pub fn chance(&mut self, num: u64, den: u64) -> bool {
        self.below(den) < num
    }
}
