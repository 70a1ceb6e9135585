//! A fake kernel for the loom models: the kernel side of an eventpoll ([`Kernel`]),
//! with fake files and no syscalls, so a model can run the real [`Poller`] logic.
//!
//! It is a small eventpoll of its own, the way the real kernel instance behaves for the
//! registrations a `Poller` makes:
//!
//! - **Fake files** ([`FakeKernel::new_file`]): a readiness mask each. A device (a
//!   model thread) makes a file ready with [`FakeKernel::set_ready`], which is the
//!   file's wakeup, and consumes readiness with [`FakeKernel::clear_ready`].
//! - **The ready list** is the runtime's own [`ReadyList`] (the kernel's
//!   `ep->rdllist`): a wakeup runs the callback (`ep_poll_callback`), which appends the
//!   registration unless it is already linked; a wait takes registrations off the head
//!   (`ep_send_events`), drops those with nothing ready, disarms oneshot ones and
//!   re-queues level-triggered ones.
//! - **Waiters** block in [`Kernel::wait`] on a loom `Condvar` (the kernel's `ep->wq`),
//!   all exclusive: a callback wakes one of them, and a wait that leaves items on the
//!   list wakes another (`ep_done_scan`). A woken waiter that finds the list empty (a
//!   thread that was not asleep took the items) goes back to sleep, as in `ep_poll`.
//! - **Notify**: [`Kernel::prepare_notify`] registers a fake eventfd, edge-triggered,
//!   with [`WAKE_TOKEN`]; [`Kernel::notify`] is a write to it: a wakeup like any other.
//!
//! Not modelled: time (a wait with a timeout returns at once when nothing is ready: its
//! timeout is reached at once, one of the executions a real timed wait has), proxies (creating one
//! fails with `ENOMEM`, which the `Poller` handles), EPOLLEXCLUSIVE across instances.
//!
//! # Fields and locking
//!
//! One loom mutex guards every field of [`State`]; the condvar is waited on with it.

use std::io;
use std::os::fd::RawFd;
use std::time::Duration;

use super::Event;
use super::item::PRIVATE_BITS;
use super::kernel::{Kernel, WAKE_TOKEN};
#[cfg(doc)]
use super::poller::Poller;
use super::ready_list::{Link, ListNode, Nodes, ReadyList};
use super::{EPOLLERR, EPOLLET, EPOLLHUP, EPOLLIN, EPOLLONESHOT};
use crate::loom::sync::{Condvar, Mutex, MutexGuard};
use crate::sys::epoll::CtlOp;

/// The kernel side of an eventpoll, faked for loom (see the module docs).
#[derive(Debug)]
pub(crate) struct FakeKernel {
    state: Mutex<State>,
    /// The kernel's `ep->wq`: threads blocked in [`Kernel::wait`].
    wq: Condvar,
}

#[derive(Debug)]
struct State {
    /// Current readiness of each fake file; the fd is the index.
    files: Vec<u32>,
    /// The registration of each fd (index), registered or not.
    regs: Regs,
    ready: ReadyList,
    /// Threads blocked in `wait`.
    blocked: usize,
    /// The fake eventfd of `notify`, once `prepare_notify` made it.
    wake_fd: Option<RawFd>,
}

#[derive(Debug, Default)]
struct Regs(Vec<Reg>);

/// One fd's registration: the kernel's `epitem`.
#[derive(Debug, Default)]
struct Reg {
    registered: bool,
    /// The mask as given to `epoll_ctl`, private bits included.
    events: u32,
    token: u64,
    /// False once a oneshot registration has reported, until a modify.
    armed: bool,
    linked: bool,
    link: Link,
}

impl Reg {
    /// What the registration reports of: the events asked for, plus ERR and HUP.
    fn interest(&self) -> u32 {
        (self.events & !PRIVATE_BITS) | EPOLLERR | EPOLLHUP
    }
}

impl ListNode for Reg {
    fn link(&mut self) -> &mut Link {
        &mut self.link
    }
    fn is_linked(&self) -> bool {
        self.linked
    }
    fn set_linked(&mut self, linked: bool) {
        self.linked = linked;
    }
}

impl Nodes for Regs {
    type Node = Reg;
    fn node_mut(&mut self, slot: u32) -> &mut Reg {
        &mut self.0[slot as usize]
    }
}

fn errno(e: i32) -> io::Error {
    io::Error::from_raw_os_error(e)
}

impl Default for FakeKernel {
    fn default() -> Self {
        FakeKernel::new()
    }
}

impl FakeKernel {
    /// A fake kernel instance with no files.
    pub(crate) fn new() -> FakeKernel {
        FakeKernel {
            state: Mutex::new(State {
                files: Vec::new(),
                regs: Regs::default(),
                ready: ReadyList::new(),
                blocked: 0,
                wake_fd: None,
            }),
            wq: Condvar::new(),
        }
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock()
    }

    /// A new fake file, not ready; returns its fd.
    pub(crate) fn new_file(&self) -> RawFd {
        let mut st = self.lock();
        st.new_file()
    }

    /// Makes fake files up to `fd` (not ready), for a model whose fake file carries a
    /// real fd's number; one lock whatever the number, so the model stays deterministic.
    pub(crate) fn new_files_up_to(&self, fd: RawFd) {
        let mut st = self.lock();
        while st.files.len() <= fd as usize {
            st.new_file();
        }
    }

    /// The file `fd` becomes ready for `events`: its wakeup. Every registration whose
    /// mask matches is queued (unless already queued) and one waiter woken.
    pub(crate) fn set_ready(&self, fd: RawFd, events: u32) {
        let mut st = self.lock();
        st.files[fd as usize] |= events;
        self.callback(&mut st, fd, events);
    }

    /// The file `fd` is no longer ready for `events` (a read until `EAGAIN`). No
    /// wakeup: a queued registration is dropped by the next wait that finds it empty.
    pub(crate) fn clear_ready(&self, fd: RawFd, events: u32) {
        self.lock().files[fd as usize] &= !events;
    }

    /// `ep_poll_callback`: queue `fd`'s registration unless it is linked already, and
    /// wake one waiter.
    fn callback(&self, st: &mut State, fd: RawFd, events: u32) {
        let Some(reg) = st.regs.0.get(fd as usize) else {
            return;
        };
        if !reg.registered || !reg.armed || events & reg.interest() == 0 {
            return;
        }
        st.ready.push_back(&mut st.regs, fd as u32);
        st.check();
        if st.blocked > 0 {
            self.wq.notify_one();
        }
    }

    /// Queues a registration whose file is ready at add or modify (`ep_insert`,
    /// `ep_modify`).
    fn queue_if_ready(&self, st: &mut State, fd: RawFd) {
        let ready = st.files[fd as usize];
        self.callback(st, fd, ready);
    }
}

impl State {
    fn new_file(&mut self) -> RawFd {
        self.files.push(0);
        self.regs.0.push(Reg::default());
        (self.files.len() - 1) as RawFd
    }

    fn check(&mut self) {
        let slots = self.regs.0.len();
        self.ready.check(&mut self.regs, slots);
    }

    /// `ep_send_events`: moves up to `buf.len()` reports off the ready list.
    fn send_events(&mut self, buf: &mut [Event]) -> usize {
        let mut n = 0;
        let mut requeue = ReadyList::new();
        while n < buf.len() {
            let Some(slot) = self.ready.pop_front(&mut self.regs) else {
                break;
            };
            let files = &self.files;
            let reg = self.regs.node_mut(slot);
            let events = files[slot as usize] & reg.interest();
            if events == 0 {
                continue;
            }
            buf[n] = Event::new(events, reg.token);
            n += 1;
            if reg.events & EPOLLONESHOT != 0 {
                reg.armed = false;
            } else if reg.events & EPOLLET == 0 {
                requeue.push_back(&mut self.regs, slot);
            }
        }
        self.ready.append(&mut self.regs, &mut requeue);
        self.check();
        n
    }
}

impl Kernel for FakeKernel {
    /// No proxies: creating one fails.
    type Proxy = ();

    fn ctl(&self, op: CtlOp, fd: RawFd, events: u32, token: u64) -> io::Result<()> {
        let mut guard = self.lock();
        let st = &mut *guard;
        if fd < 0 || fd as usize >= st.files.len() {
            return Err(errno(libc::EBADF));
        }
        let reg = st.regs.node_mut(fd as u32);
        match op {
            CtlOp::Add if reg.registered => Err(errno(libc::EEXIST)),
            CtlOp::Modify | CtlOp::Delete if !reg.registered => Err(errno(libc::ENOENT)),
            CtlOp::Add | CtlOp::Modify => {
                reg.registered = true;
                reg.events = events;
                reg.token = token;
                reg.armed = true;
                self.queue_if_ready(st, fd);
                Ok(())
            }
            CtlOp::Delete => {
                reg.registered = false;
                st.ready.unlink(&mut st.regs, fd as u32);
                st.check();
                Ok(())
            }
        }
    }

    fn wait(&self, buf: &mut [Event], timeout: Option<Duration>) -> io::Result<usize> {
        // No time: a timed wait that finds nothing ready has reached its timeout.
        let mut st = self.lock();
        loop {
            let n = st.send_events(buf);
            if n > 0 {
                // `ep_done_scan`: items remain and a waiter sleeps: wake one.
                if !st.ready.is_empty() && st.blocked > 0 {
                    self.wq.notify_one();
                }
                return Ok(n);
            }
            if timeout.is_some() {
                return Ok(0);
            }
            st.blocked += 1;
            st = self.wq.wait(st);
            st.blocked -= 1;
        }
    }

    fn modify_changes_nothing(&self, fd: RawFd) -> bool {
        let st = self.lock();
        let reg = &st.regs.0[fd as usize];
        reg.registered && reg.armed && (reg.linked || st.files[fd as usize] & reg.interest() == 0)
    }

    fn check_open(&self, fd: RawFd) -> io::Result<()> {
        // Fake files are never closed.
        if fd < 0 || fd as usize >= self.lock().files.len() {
            return Err(errno(libc::EBADF));
        }
        Ok(())
    }

    fn poll_is_pure(&self, fd: RawFd) -> io::Result<bool> {
        // A fake file's poll only reads its readiness.
        self.check_open(fd).map(|()| true)
    }

    fn poll(&self, fds: &mut [libc::pollfd]) -> io::Result<()> {
        let st = self.lock();
        for p in fds {
            p.revents = match st.files.get(p.fd as usize) {
                Some(&ready) if p.fd >= 0 => {
                    (ready & (p.events as u16 as u32 | EPOLLERR | EPOLLHUP)) as u16 as i16
                }
                _ => libc::POLLNVAL,
            };
        }
        Ok(())
    }

    fn prepare_notify(&self) -> io::Result<Option<RawFd>> {
        let mut st = self.lock();
        if st.wake_fd.is_some() {
            return Ok(None);
        }
        let fd = st.new_file();
        st.wake_fd = Some(fd);
        let reg = st.regs.node_mut(fd as u32);
        reg.registered = true;
        reg.events = EPOLLIN | EPOLLET;
        reg.token = WAKE_TOKEN;
        reg.armed = true;
        Ok(Some(fd))
    }

    fn notify(&self) {
        let mut st = self.lock();
        if let Some(fd) = st.wake_fd {
            // An eventfd write: readable from now on, and a new wakeup every time.
            st.files[fd as usize] |= EPOLLIN;
            self.callback(&mut st, fd, EPOLLIN);
        }
    }

    /// The fake instance is not an fd.
    fn instance_fd(&self) -> Option<RawFd> {
        None
    }

    fn new_proxy(&self) -> io::Result<()> {
        Err(errno(libc::ENOMEM))
    }

    fn proxy_fd(_proxy: &()) -> RawFd {
        -1
    }

    fn proxy_ctl(&self, _: &(), _: CtlOp, _: RawFd, _: u32, _: u64) -> io::Result<()> {
        Err(errno(libc::ENOMEM))
    }

    fn proxy_wait(&self, _: &()) -> io::Result<Option<u32>> {
        Err(errno(libc::ENOMEM))
    }
}
