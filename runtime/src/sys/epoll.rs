//! One kernel epoll instance, and poll(2) for batched re-polls.
//!
//! This is all the kernel the user-space eventpoll needs: `epoll_ctl`, a wait with a
//! sub-millisecond timeout (`epoll_pwait2` where the kernel has it, else `epoll_wait`
//! with the timeout rounded up to whole milliseconds, so it never fires early), and a
//! zero-timeout `poll(2)` that reads the current readiness of many fds in one call.

use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::time::Duration;

use crate::loom::os::sync::atomic::{AtomicU8, Ordering};

/// A kernel epoll instance.
#[derive(Debug)]
pub(crate) struct Epoll {
    fd: OwnedFd,
}

/// `epoll_ctl` operations.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum CtlOp {
    Add,
    Modify,
    Delete,
}

impl CtlOp {
    fn raw(self) -> libc::c_int {
        match self {
            CtlOp::Add => libc::EPOLL_CTL_ADD,
            CtlOp::Modify => libc::EPOLL_CTL_MOD,
            CtlOp::Delete => libc::EPOLL_CTL_DEL,
        }
    }
}

/// Whether `epoll_pwait2` exists: 0 unknown, 1 yes, 2 no (`ENOSYS`, kernels before 5.11).
static PWAIT2: AtomicU8 = AtomicU8::new(0);

impl Epoll {
    pub(crate) fn new() -> io::Result<Epoll> {
        let fd = syscall!(epoll_create1(libc::EPOLL_CLOEXEC))?;
        // SAFETY: epoll_create1 just returned this fd and nothing else owns it.
        let fd = unsafe { OwnedFd::from_raw_fd(fd) };
        Ok(Epoll { fd })
    }

    /// `epoll_ctl(op, fd, {events, data: token})`. The kernel does every argument check,
    /// so the errno is the kernel's, in the kernel's order.
    pub(crate) fn ctl(&self, op: CtlOp, fd: RawFd, events: u32, token: u64) -> io::Result<()> {
        let mut ev = libc::epoll_event { events, u64: token };
        // SAFETY: `ev` is a valid epoll_event for the duration of the call (the kernel
        // ignores it for EPOLL_CTL_DEL, but a non-null pointer keeps pre-2.6.9 rules happy).
        syscall!(epoll_ctl(self.fd.as_raw_fd(), op.raw(), fd, &mut ev))?;
        Ok(())
    }

    /// Waits for events, writing up to `cap` of them at `buf`.
    ///
    /// # Safety
    ///
    /// `buf` must be valid for writes of `cap` `libc::epoll_event`s (it need not be
    /// aligned beyond `epoll_event`'s own alignment) and `cap` must be at least 1.
    #[inline]
    pub(crate) unsafe fn wait(
        &self,
        buf: *mut libc::epoll_event,
        cap: usize,
        timeout: Option<Duration>,
    ) -> io::Result<usize> {
        let cap = cap.min(libc::c_int::MAX as usize) as libc::c_int;
        let epfd = self.fd.as_raw_fd();
        let n = match timeout {
            None => syscall!(epoll_wait(epfd, buf, cap, -1))?,
            Some(d) if d.is_zero() => syscall!(epoll_wait(epfd, buf, cap, 0))?,
            // SAFETY: buf/cap as the caller promised.
            Some(d) => return unsafe { wait_timed(epfd, buf, cap, d) },
        };
        Ok(n as usize)
    }
}

/// A wait with a non-zero timeout: `epoll_pwait2` for nanoseconds where the kernel has
/// it, else `epoll_wait` with the timeout rounded up to whole milliseconds. Kept out of
/// line so the zero-timeout and infinite waits stay a plain call.
///
/// # Safety
///
/// As for [`Epoll::wait`], with `cap` already clamped to `c_int`.
#[inline(never)]
unsafe fn wait_timed(
    epfd: RawFd,
    buf: *mut libc::epoll_event,
    cap: libc::c_int,
    d: Duration,
) -> io::Result<usize> {
    if PWAIT2.load(Ordering::Relaxed) != 2 {
        let ts = libc::timespec {
            tv_sec: d.as_secs().min(libc::time_t::MAX as u64) as libc::time_t,
            tv_nsec: d.subsec_nanos() as libc::c_long,
        };
        // SAFETY: buf/cap as the caller promised; `ts` outlives the call; a null sigmask
        // means "do not change the mask", as for epoll_wait.
        let res = unsafe {
            libc::syscall(
                libc::SYS_epoll_pwait2,
                epfd,
                buf,
                cap,
                &ts as *const libc::timespec,
                std::ptr::null::<libc::sigset_t>(),
                0usize,
            )
        };
        if res >= 0 {
            PWAIT2.store(1, Ordering::Relaxed);
            return Ok(res as usize);
        }
        let err = io::Error::last_os_error();
        if err.raw_os_error() != Some(libc::ENOSYS) {
            return Err(err);
        }
        PWAIT2.store(2, Ordering::Relaxed);
    }
    // Round up so the wait never ends before the deadline.
    let ms = d
        .as_nanos()
        .div_ceil(1_000_000)
        .min(libc::c_int::MAX as u128);
    let n = syscall!(epoll_wait(epfd, buf, cap, ms as libc::c_int))?;
    Ok(n as usize)
}

impl AsRawFd for Epoll {
    fn as_raw_fd(&self) -> RawFd {
        self.fd.as_raw_fd()
    }
}

/// `fcntl(fd, F_GETFD)`: `Ok` if `fd` is an open fd, `EBADF` if not. The cheapest
/// syscall that looks an fd up (the kernel's `fdget_raw`) and changes nothing.
pub(crate) fn check_open(fd: RawFd) -> io::Result<()> {
    syscall!(fcntl(fd, libc::F_GETFD)).map(drop)
}

/// Whether polling `fd` is known to change nothing: a socket, a pipe, an eventfd or a
/// timerfd (`EBADF` if it is not open). Their poll functions (`sock_poll` and the
/// protocols', `pipe_poll`, `eventfd_poll`, `timerfd_poll`) only read state; a poll
/// that connects a wakeup relay (`unix_dgram_poll`'s `unix_dgram_peer_wake_me`)
/// leaves it as the last poll left it. Other files may change state when polled: a
/// nested epoll drops its stale ready items (`__ep_eventpoll_poll`),
/// `/proc/self/mounts` and sysctl files consume their change event (`mounts_poll`,
/// `proc_sys_poll`), and a signalfd answers for the calling thread.
///
/// `fstat` tells sockets and pipes; eventfds, timerfds, epolls and signalfds share one
/// anonymous inode, told apart only by the name the kernel gives the file
/// (`anon_inode_getfile`), read from `/proc/self/fd` (a few microseconds: callers look
/// a file up once). Without `/proc` such a file counts as unknown.
pub(crate) fn poll_is_pure(fd: RawFd) -> io::Result<bool> {
    let mut st = std::mem::MaybeUninit::<libc::stat>::uninit();
    // SAFETY: `st` is a writable stat buffer; fstat fills it or fails.
    syscall!(fstat(fd, st.as_mut_ptr()))?;
    // SAFETY: fstat succeeded, so it filled `st`.
    let kind = unsafe { st.assume_init() }.st_mode & libc::S_IFMT;
    if kind == libc::S_IFSOCK || kind == libc::S_IFIFO {
        return Ok(true);
    }
    // The link of any file with a path starts with '/', so these names are only ever
    // the kernel's own.
    let pure = std::fs::read_link(format!("/proc/self/fd/{fd}")).is_ok_and(|name| {
        name.as_os_str() == "anon_inode:[eventfd]" || name.as_os_str() == "anon_inode:[timerfd]"
    });
    Ok(pure)
}

/// `poll(fds, 0)`: fills each `revents` with the fd's current readiness filtered by its
/// `events` plus `POLLERR | POLLHUP | POLLNVAL`. Never blocks. `EINTR` cannot happen
/// with a zero timeout, but is retried anyway.
pub(crate) fn poll_now(fds: &mut [libc::pollfd]) -> io::Result<()> {
    loop {
        match syscall!(poll(fds.as_mut_ptr(), fds.len() as libc::nfds_t, 0)) {
            Ok(_) => return Ok(()),
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        }
    }
}
