//! EventPoll operation sequences against the kernel's epoll on the same fds: every ctl
//! result and every wait result (count, masks, data, order) must be the kernel's.

#![no_main]

use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::time::Duration;

use epitome_runtime::eventpoll::*;
use libfuzzer_sys::fuzz_target;

fn owned(fd: libc::c_int) -> OwnedFd {
    assert!(fd >= 0, "{}", std::io::Error::last_os_error());
    // SAFETY: a fresh fd nothing else owns.
    unsafe { OwnedFd::from_raw_fd(fd) }
}

/// The fds of one run: two socketpairs, a pipe, an eventfd.
fn make_fds() -> Vec<OwnedFd> {
    let mut fds = Vec::new();
    for _ in 0..2 {
        let mut sv = [0; 2];
        // SAFETY: `sv` has room for two fds.
        let r = unsafe {
            libc::socketpair(
                libc::AF_UNIX,
                libc::SOCK_STREAM | libc::SOCK_NONBLOCK | libc::SOCK_CLOEXEC,
                0,
                sv.as_mut_ptr(),
            )
        };
        assert_eq!(r, 0);
        fds.push(owned(sv[0]));
        fds.push(owned(sv[1]));
    }
    let mut p = [0; 2];
    // SAFETY: `p` has room for two fds.
    assert_eq!(
        unsafe { libc::pipe2(p.as_mut_ptr(), libc::O_NONBLOCK | libc::O_CLOEXEC) },
        0
    );
    fds.push(owned(p[0]));
    fds.push(owned(p[1]));
    // SAFETY: plain syscall.
    fds.push(owned(unsafe {
        libc::eventfd(0, libc::EFD_NONBLOCK | libc::EFD_CLOEXEC)
    }));
    fds
}

fn kctl(ep: RawFd, op: libc::c_int, fd: RawFd, ev: Event) -> Result<(), i32> {
    let mut raw = libc::epoll_event {
        events: ev.events,
        u64: ev.data,
    };
    // SAFETY: `raw` is valid for the call.
    if unsafe { libc::epoll_ctl(ep, op, fd, &mut raw) } == 0 {
        Ok(())
    } else {
        Err(std::io::Error::last_os_error().raw_os_error().unwrap_or(-1))
    }
}

fn kwait(ep: RawFd, room: usize) -> Result<Vec<Event>, i32> {
    let mut raw = vec![libc::epoll_event { events: 0, u64: 0 }; room];
    // SAFETY: `raw` has room for `room` events.
    let n = unsafe { libc::epoll_wait(ep, raw.as_mut_ptr(), room as i32, 0) };
    if n < 0 {
        return Err(std::io::Error::last_os_error().raw_os_error().unwrap_or(-1));
    }
    Ok(raw[..n as usize]
        .iter()
        .map(|r| Event {
            events: r.events,
            data: r.u64,
        })
        .collect())
}

fn errno(r: std::io::Result<()>) -> Result<(), i32> {
    r.map_err(|e| e.raw_os_error().unwrap_or(-1))
}

fuzz_target!(|data: &[u8]| {
    // libFuzzer's main does not ignore SIGPIPE as Rust's does; writes to a pipe or
    // socket whose peer is gone must fail with EPIPE, not kill the process.
    static IGNORE_SIGPIPE: std::sync::Once = std::sync::Once::new();
    // SAFETY: installing SIG_IGN for SIGPIPE, once, before any write.
    IGNORE_SIGPIPE.call_once(|| unsafe {
        libc::signal(libc::SIGPIPE, libc::SIG_IGN);
    });
    let fds = make_fds();
    // SAFETY: plain syscall.
    let kernel = owned(unsafe { libc::epoll_create1(libc::EPOLL_CLOEXEC) });
    let ours = EventPoll::new().unwrap();
    let modes = [0, EPOLLET, EPOLLONESHOT, EPOLLET | EPOLLONESHOT];
    for chunk in data.chunks(3) {
        let [op, a, b] = match chunk {
            [x, y, z] => [*x, *y, *z],
            _ => break,
        };
        let fd = fds[usize::from(a) % fds.len()].as_raw_fd();
        let mut mask = [EPOLLIN, EPOLLOUT, EPOLLRDHUP, EPOLLPRI]
            .iter()
            .enumerate()
            .filter(|(i, _)| b & (1 << i) != 0)
            .fold(0, |m, (_, bit)| m | bit);
        mask |= modes[usize::from(b >> 4) % 4];
        if b & 0x40 != 0 {
            mask = EPOLLEXCLUSIVE
                | (mask & (EPOLLIN | EPOLLOUT | EPOLLET))
                | if b & 0x80 != 0 { EPOLLONESHOT } else { 0 };
        }
        let ev = Event::new(mask, u64::from(a));
        match op % 8 {
            0 => assert_eq!(
                kctl(kernel.as_raw_fd(), libc::EPOLL_CTL_ADD, fd, ev),
                errno(ours.add(fd, ev))
            ),
            1 => assert_eq!(
                kctl(kernel.as_raw_fd(), libc::EPOLL_CTL_MOD, fd, ev),
                errno(ours.modify(fd, ev))
            ),
            2 => assert_eq!(
                kctl(kernel.as_raw_fd(), libc::EPOLL_CTL_DEL, fd, ev),
                errno(ours.delete(fd))
            ),
            3 | 4 => {
                let buf = [0xA5u8; 512];
                let len = 1 + usize::from(b) * 2;
                // SAFETY: `buf` is valid for `len <= 512` bytes; errors are fine here.
                unsafe {
                    libc::write(
                        fd,
                        buf.as_ptr().cast(),
                        if fd == fds[6].as_raw_fd() { 8 } else { len },
                    )
                };
            }
            5 => {
                let mut buf = [0u8; 512];
                // SAFETY: `buf` is valid for its length; EAGAIN is fine.
                unsafe { libc::read(fd, buf.as_mut_ptr().cast(), 1 + usize::from(b) * 2) };
            }
            6 if b & 0x0F == 0 => {
                // SAFETY: plain syscall on our fd; errors (not a socket) are fine.
                unsafe { libc::shutdown(fd, i32::from(b >> 6) % 3) };
            }
            _ => {
                let room = 1 + usize::from(b % 8);
                let k = kwait(kernel.as_raw_fd(), room);
                let mut ubuf = vec![Event::default(); room];
                let u = ours
                    .wait(&mut ubuf, Some(Duration::ZERO))
                    .map(|n| ubuf[..n].to_vec())
                    .map_err(|e| e.raw_os_error().unwrap_or(-1));
                assert_eq!(k, u);
            }
        }
    }
    // Delete before close (the contract), then everything drops.
    for f in &fds {
        let _ = ours.delete(f.as_raw_fd());
    }
});
