//! The eventpoll logic: ctl, and delivery with the kernel's order.
//!
//! # Two lists make one
//!
//! The kernel's ready list (`ep->rdllist`) is kept in two parts: **ours** (this
//! module's [`ReadyList`]) in front, then **the kernel instance's** own ready list.
//! Every wakeup, and every add or modify of a ready fd, lands on the kernel
//! instance's list, in the order the kernel's own eventpoll would have put it on its
//! list. Our part holds the level-triggered items that earlier deliveries re-queued.
//!
//! A delivery (`ep_send_events`) walks our part first, re-polling its items with one
//! `poll(2)`, then asks the kernel instance for exactly the room that is left. The
//! kernel instance drops stale items as it walks, so it must never be asked for more
//! than the kernel's own walk would take: otherwise it would drop a stale item that the
//! real ready list keeps, and that item would come back at a different place.
//!
//! Level-triggered items delivered by a wait go back on the tail. When the kernel
//! instance walked its whole list, that tail is ours. When it may still hold items
//! (the caller's buffer filled first), those come first, so the re-queued items are
//! handed back to the kernel instance, which appends them behind.
//!
//! # Echoes
//!
//! While an item is on our list, wakeups for it still reach its kernel registration,
//! which queues it on the kernel instance's list. The real ready list ignores such a
//! wakeup (the item is already linked). A kernel report of an item that is on our list
//! is therefore an *echo* and is skipped. Echoes still queued when an item leaves our
//! list are removed by deleting and re-adding its registration (an add polls the fd,
//! which queues it again exactly when the real list would have it).
//!
//! One case cannot be mended that way: an item modified to edge-triggered while on our
//! list, delivered from it while its fd stays ready. The real eventpoll then holds the
//! item registered, armed and *not* queued; a kernel add or modify of a ready fd always
//! queues it, and only a kernel wait takes it off again. Such an item is moved to a
//! **proxy**: a private kernel instance holding only that item, itself registered
//! (edge-triggered) in the main one. The item is added there and the proxy waited on
//! once, which leaves it armed and not queued; from then on a wakeup of the item queues
//! the proxy in the main instance at the moment of the wakeup, so its place in the
//! order is exact. The item keeps its proxy until it is deleted.
//!
//! # Modifies that change only the data
//!
//! The data is ours: the kernel registration carries a token. So a modify that keeps
//! the mask and modes needs the kernel only for `ep_modify`'s re-poll, which queues a
//! ready registration that is not queued. An item that the kernel has not reported
//! since our last add or modify of it ([`state::QUIET`]) is queued if its fd is ready
//! (that ctl polled it, and every wakeup since queued it), so the re-poll would change
//! nothing and the kernel modify is left out. A report taken by a thread blocked in
//! the kernel wait clears the bit only when that thread checks in, so beside such a
//! thread the kernel modify is always made. And only for sockets, pipes, eventfds and
//! timerfds ([`state::POLL_PURE`]): for other files the kernel's poll may itself
//! change state (a nested epoll drops stale ready items, `/proc/self/mounts` consumes
//! its change event, a signalfd answers for the calling thread), which leaving it out
//! would not.
//!
//! # Fields and locking
//!
//! One mutex guards [`Inner`]: the tree, our list, every item, the waiter counts and
//! the scratch buffers. (The kernel needs `ep->mtx` and `ep->lock` because its
//! callback runs in interrupt context; here the callback is a kernel report read by a
//! waiter.) A waiter does not hold it while blocked in the kernel.

use std::io;
use std::os::fd::RawFd;
use std::time::{Duration, Instant};

use super::Event;
use super::item::{Item, kernel_mask, state};
use super::kernel::{Kernel, WAKE_TOKEN};
use super::rbtree::{Entry, InterestTree};
use super::ready_list::{Nodes, ReadyList};
use super::{EP_MAX_EVENTS, EPOLLET, EPOLLEXCLUSIVE, EPOLLIN};
use crate::loom::sync::{Condvar, Mutex, MutexGuard};
use crate::sys::epoll::CtlOp;

/// How many fds one `poll(2)` re-checks at most.
const POLL_BATCH: usize = 1024;

/// The item states in which a kernel report of the item is an echo (see the module
/// docs): it has its place on our lists, or it is disarmed here.
const UNUSUAL_REPORT: u32 = state::ON_READY_LIST | state::DISARMED | state::WALKED;

fn token(slot: u32, generation: u32) -> u64 {
    (u64::from(generation) << 32) | u64::from(slot)
}

fn is_stale(e: &io::Error) -> bool {
    matches!(e.raw_os_error(), Some(libc::ENOENT) | Some(libc::EBADF))
}

/// Everything the eventpoll lock guards.
#[derive(Debug)]
struct Inner<P> {
    tree: InterestTree<Item<P>>,
    /// Our part of the ready list, in front of the kernel instance's.
    ready: ReadyList,
    /// Tickets of the threads blocked (or about to block) in the kernel wait. A
    /// thread removes its ticket when it has re-taken the lock after the kernel wait
    /// returned (its *check-in*).
    blocked: Vec<u64>,
    next_ticket: u64,
    /// Threads waiting in [`Poller::await_checkins`].
    awaiting_checkins: u32,
    /// Threads inside `wait`.
    in_wait: u32,
    generations: Generations,
    /// Scratch for the batched re-poll.
    pollfds: Vec<libc::pollfd>,
    polled: Vec<u32>,
    /// Scratch: items of our list dropped as stale during this delivery. This list and
    /// the next are empty between deliveries (`place_requeue` clears both).
    dropped: Vec<u32>,
    /// Scratch: items marked [`state::WALKED`] during this delivery.
    walked: Vec<u32>,
    /// The kernel instance's own fd (-1 if it has none), and our other fds: the
    /// notify eventfd's once it is made and those of the proxy instances items hold
    /// now (see [`Poller::own_fd`]).
    instance_fd: RawFd,
    other_own_fds: Vec<RawFd>,
}

impl<P> Nodes for InterestTree<Item<P>> {
    type Node = Item<P>;
    fn node_mut(&mut self, slot: u32) -> &mut Item<P> {
        self.value_mut(slot)
    }
}

/// The source of item generations (see [`Item::generation`]).
#[derive(Debug)]
struct Generations(u32);

impl Generations {
    fn next(&mut self) -> u32 {
        let g = self.0;
        // Generation 0 never names a live item, so a zeroed token is never valid.
        self.0 = g.checked_add(1).unwrap_or(1);
        g
    }
}

/// The level-triggered items one delivery re-queues: first those that came from our
/// list, then those the kernel reported.
#[derive(Default)]
struct Requeue {
    list: ReadyList,
    from_ours: usize,
}

/// The eventpoll logic over any [`Kernel`].
#[derive(Debug)]
pub struct Poller<K: Kernel> {
    kernel: K,
    inner: Mutex<Inner<K::Proxy>>,
    /// Signalled at every check-in while a thread awaits check-ins.
    checkin: Condvar,
}

impl<K: Kernel> Poller<K> {
    pub fn new(kernel: K) -> Poller<K> {
        let instance_fd = kernel.instance_fd().unwrap_or(-1);
        Poller {
            kernel,
            inner: Mutex::new(Inner {
                tree: InterestTree::new(),
                ready: ReadyList::new(),
                blocked: Vec::new(),
                next_ticket: 0,
                awaiting_checkins: 0,
                in_wait: 0,
                generations: Generations(1),
                pollfds: Vec::new(),
                polled: Vec::new(),
                dropped: Vec::new(),
                walked: Vec::new(),
                instance_fd,
                other_own_fds: Vec::new(),
            }),
            checkin: Condvar::new(),
        }
    }

    /// The kernel underneath (for the loom models, whose devices drive the fake one).
    #[cfg(epitome_loom)]
    pub fn kernel(&self) -> &K {
        &self.kernel
    }

    /// Checks our ready list (for the loom models): every item on it is linked once,
    /// the links agree both ways, and the on-list flags match membership.
    #[cfg(epitome_loom)]
    pub fn check_ready_list(&self) {
        let mut guard = self.lock();
        let inner = &mut *guard;
        let slots = inner.tree.len();
        inner.ready.check(&mut inner.tree, slots);
        let mut linked = 0;
        let tree = &inner.tree;
        tree.for_each(|_, slot| {
            if tree
                .get(slot)
                .is_some_and(|item| item.has(state::ON_READY_LIST))
            {
                linked += 1;
            }
        });
        assert_eq!(
            linked,
            inner.ready.len(),
            "an item flagged linked is not on the list"
        );
    }

    fn lock(&self) -> MutexGuard<'_, Inner<K::Proxy>> {
        // A panic while the lock is held would be a bug here, and every structure is
        // left consistent between statements that could panic; keep serving.
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The number of registered fds.
    pub fn len(&self) -> usize {
        self.lock().tree.len()
    }

    /// Whether no fd is registered.
    // The loom build exports `Poller`, where a `len` wants an `is_empty`; the
    // `EventPoll` API asks `len` itself.
    #[allow(dead_code)]
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// `EPOLL_CTL_ADD` (the kernel's `ep_insert`).
    pub fn add(&self, fd: RawFd, event: Event) -> io::Result<()> {
        let mut guard = self.lock();
        let inner = &mut *guard;
        self.own_fd(inner, fd)?;
        let generation = inner.generations.next();
        match inner.tree.entry(fd) {
            Entry::Vacant(vacant) => {
                // The kernel polls the fd and, if it is ready, queues it on its own
                // ready list, where a wait finds it in the kernel's order.
                self.kernel.ctl(
                    CtlOp::Add,
                    fd,
                    kernel_mask(event.events),
                    token(vacant.slot(), generation),
                )?;
                vacant.insert(Item::new(event.events, event.data, generation));
            }
            Entry::Occupied(slot) => {
                // Either the item is live (the kernel answers EEXIST: a proxied item's
                // fd is not in the main instance, so ask its proxy first) or its file
                // was closed without a delete and the fd now names a new file, which
                // the kernel accepts: the stale item gives way, as the kernel dropped
                // its own when the old file closed.
                if let Some(proxy) = &inner.tree.value_mut(slot).proxy {
                    // The kernel's answer to this add, against the instance that holds
                    // the item: EEXIST if it is live, or an earlier check's errno.
                    self.kernel
                        .proxy_ctl(proxy, CtlOp::Add, fd, kernel_mask(event.events), 0)?;
                    // Accepted: the item there is stale. Undo the probe.
                    let _ = self.kernel.proxy_ctl(proxy, CtlOp::Delete, fd, 0, 0);
                }
                self.kernel.ctl(
                    CtlOp::Add,
                    fd,
                    kernel_mask(event.events),
                    token(slot, generation),
                )?;
                inner.ready.unlink(&mut inner.tree, slot);
                let old = std::mem::replace(
                    inner.tree.value_mut(slot),
                    Item::new(event.events, event.data, generation),
                );
                if let Some(proxy) = old.proxy {
                    inner.drop_proxy(&self.kernel, proxy);
                }
            }
        }
        Ok(())
    }

    /// `EPOLL_CTL_MOD` (the kernel's `ep_modify`).
    pub fn modify(&self, fd: RawFd, event: Event) -> io::Result<()> {
        let mut guard = self.lock();
        let inner = &mut *guard;
        self.own_fd(inner, fd)?;
        let slot = match inner.tree.entry(fd) {
            Entry::Occupied(slot) => slot,
            Entry::Vacant(vacant) => {
                // Not ours: the kernel gives the errno (EBADF, EPERM, EINVAL or
                // ENOENT). Should it accept (a registration we forgot after a failed
                // delete of a dup'ed file came back under the same fd), track it as a
                // new item.
                let generation = inner.generations.next();
                let token = token(vacant.slot(), generation);
                self.kernel
                    .ctl(CtlOp::Modify, fd, kernel_mask(event.events), token)?;
                vacant.insert(Item::new(event.events, event.data, generation));
                return Ok(());
            }
        };
        let item = inner.tree.value_mut(slot);
        // Only the data changes and the kernel side is quiet: the kernel modify would
        // change nothing there, and the data lives here. Unless a waiter is blocked in
        // (or just back from) the kernel wait: it may hold a report of the item that
        // has not cleared QUIET yet.
        // Planted bug: leave the kernel modify out beside a thread in the kernel wait.
        let no_report_in_flight =
            inner.blocked.is_empty() || cfg!(epitome_loom_mutant = "data_only_ignores_waiters");
        if item.modify_is_data_only(event.events)
            && no_report_in_flight
            && Self::poll_is_pure_and_open(&self.kernel, fd, item)
        {
            #[cfg(epitome_loom)]
            assert!(
                self.kernel.modify_changes_nothing(fd),
                "a data-only modify left out a kernel modify that would queue the item"
            );
            item.data = event.data;
            return Ok(());
        }
        let mask = kernel_mask(event.events);
        let res = if item.has(state::MAY_ECHO) && event.events & EPOLLEXCLUSIVE == 0 {
            // A queued echo would keep its place through a modify; delete and add
            // instead, which polls and queues the fd exactly as `ep_modify` would for
            // an item that is not on the ready list.
            inner.reinsert(&self.kernel, slot, mask)
        } else {
            // The kernel re-arms its side and re-polls; if the fd is ready it is queued
            // there, unless it is on our list, where it keeps its place (the kernel's
            // report of it is then an echo).
            inner.home_ctl(&self.kernel, slot, CtlOp::Modify, mask)
        };
        match res {
            Ok(()) => {
                inner.tree.value_mut(slot).rearm(event.events, event.data);
                Ok(())
            }
            Err(e) => {
                if is_stale(&e) {
                    inner.remove(&self.kernel, slot);
                }
                Err(e)
            }
        }
    }

    /// `EPOLL_CTL_DEL` (the kernel's `ep_remove`).
    pub fn delete(&self, fd: RawFd) -> io::Result<()> {
        let mut guard = self.lock();
        let inner = &mut *guard;
        self.own_fd(inner, fd)?;
        let Some(slot) = inner.tree.find(fd) else {
            return self.kernel.ctl(CtlOp::Delete, fd, 0, 0);
        };
        let res = inner.home_ctl(&self.kernel, slot, CtlOp::Delete, 0);
        match &res {
            Ok(()) => inner.remove(&self.kernel, slot),
            Err(e) if is_stale(e) => inner.remove(&self.kernel, slot),
            Err(_) => {}
        }
        res
    }

    /// Whether the kernel modify's poll of the item's fd would change nothing but the
    /// queueing (see [`state::POLL_PURE`]), and the fd is still open: if it is closed,
    /// the kernel's answer (EBADF, and the stale item forgotten) is the modify's. The
    /// file's kind is looked up once per item (`fstat`, which also says whether the fd
    /// is open and costs about what the kernel modify does, then for an anonymous-inode
    /// file a `readlink`, a few microseconds), at its second data-only modify, so an
    /// item modified once never pays for it. After that a file whose poll changes
    /// nothing costs an open-fd check (`fcntl`, about two thirds of a kernel modify)
    /// and any other file goes straight to the kernel.
    fn poll_is_pure_and_open(kernel: &K, fd: RawFd, item: &mut Item<K::Proxy>) -> bool {
        if item.has(state::FILE_KNOWN) {
            return item.has(state::POLL_PURE) && kernel.check_open(fd).is_ok();
        }
        if !item.has(state::DATA_MODIFIED) {
            item.state |= state::DATA_MODIFIED;
            return false;
        }
        match kernel.poll_is_pure(fd) {
            Ok(pure) => {
                item.state |= state::FILE_KNOWN;
                if pure {
                    item.state |= state::POLL_PURE;
                }
                pure
            }
            Err(_) => false,
        }
    }

    /// Refuses a ctl on one of our own fds: the kernel instance, the notify eventfd
    /// or a proxy instance. The caller never opened them; if it names one, its own fd
    /// of that number was closed (and the number taken by ours), so it gets the answer
    /// for a closed fd, EBADF, and an item it left registered under that number is
    /// forgotten, as the kernel dropped its own at the close. Without this, a late
    /// delete of such an item would remove our registration of the eventfd (a second
    /// waiter would sleep through a hand-off), and a modify would make its wakeups
    /// look like reports of that item.
    #[inline]
    // `contains` is a vectorised loop whose set-up costs more than this whole short
    // list: under callgrind, 24 instructions per modify against 11 for this.
    #[allow(clippy::manual_contains)]
    fn own_fd(&self, inner: &mut Inner<K::Proxy>, fd: RawFd) -> io::Result<()> {
        // Every ctl pays this: two compares while there is no other own fd, and a
        // plain loop over a few fds after.
        if fd != inner.instance_fd && !inner.other_own_fds.iter().any(|&own| own == fd) {
            return Ok(());
        }
        self.forget_own_fd(inner, fd)
    }

    #[cold]
    #[inline(never)]
    fn forget_own_fd(&self, inner: &mut Inner<K::Proxy>, fd: RawFd) -> io::Result<()> {
        if let Some(slot) = inner.tree.find(fd) {
            inner.remove(&self.kernel, slot);
        }
        Err(io::Error::from_raw_os_error(libc::EBADF))
    }

    /// `epoll_wait` (the kernel's `ep_poll`).
    pub fn wait(&self, out: &mut [Event], timeout: Option<Duration>) -> io::Result<usize> {
        if out.is_empty() || out.len() > EP_MAX_EVENTS {
            return Err(io::Error::from_raw_os_error(libc::EINVAL));
        }
        let mut guard = self.lock();
        // Planted bug: take the fast path beside a thread asleep in the kernel wait.
        let alone = guard.in_wait == 0 || cfg!(epitome_loom_mutant = "fast_path_ignores_waiters");
        if timeout == Some(Duration::ZERO) && alone && guard.ready.is_empty() {
            // The most frequent call (a runtime's turn between tasks, the benchmark's
            // steady state): a wait that cannot block, with nothing on our part of the
            // list and nobody else inside `wait`, so no waiter to hand on to and no
            // check-in to await. The delivery is the kernel instance's reports alone,
            // as `ep_poll` with a zero timeout goes straight to `ep_send_events`.
            return guard.deliver_reports(&self.kernel, out);
        }
        self.wait_slow(guard, out, timeout)
    }

    /// Every other wait: one that may block, one that must deliver our part of the
    /// list first, or one with other threads inside `wait`.
    #[inline(never)]
    fn wait_slow<'a>(
        &'a self,
        mut guard: MutexGuard<'a, Inner<K::Proxy>>,
        out: &mut [Event],
        timeout: Option<Duration>,
    ) -> io::Result<usize> {
        let deadline = match timeout {
            Some(d) if !d.is_zero() => Instant::now().checked_add(d),
            _ => None,
        };
        guard.in_wait += 1;
        if guard.in_wait > 1 {
            // A second waiter: from now on a delivery may have to wake another thread.
            match self.kernel.prepare_notify() {
                Ok(made) => guard.other_own_fds.extend(made),
                Err(e) => {
                    guard.in_wait -= 1;
                    return Err(e);
                }
            }
        }
        let (mut guard, res) = self.wait_locked(guard, out, timeout, deadline);
        guard.in_wait -= 1;
        // Items left on our list and a thread asleep: wake one, which will deliver and
        // wake the next if items remain (the end of `ep_send_events`). Items left on the
        // kernel instance's list are the kernel's to announce, and it does.
        let notify = !guard.ready.is_empty() && !guard.blocked.is_empty();
        // Planted bug: keep the items and let the sleeping thread sleep on.
        let notify = notify && !cfg!(epitome_loom_mutant = "poller_no_handoff");
        drop(guard);
        if notify {
            self.kernel.notify();
        }
        res
    }

    fn wait_locked<'a>(
        &'a self,
        mut guard: MutexGuard<'a, Inner<K::Proxy>>,
        out: &mut [Event],
        timeout: Option<Duration>,
        deadline: Option<Instant>,
    ) -> (MutexGuard<'a, Inner<K::Proxy>>, io::Result<usize>) {
        let mut checked_in = false;
        loop {
            let mut requeue = Requeue::default();
            // Our part of the list comes first in the kernel's order.
            let mut n = match guard.walk_ours(&self.kernel, out, &mut requeue) {
                Ok(n) => n,
                Err(e) => {
                    guard.place_requeue(&self.kernel, requeue, false);
                    return (guard, Err(e));
                }
            };
            // Then the kernel instance's part, for exactly the room that is left.
            let mut kernel_empty = false;
            if n < out.len() {
                // Sleep only with nothing to report and nothing left to tidy: items just
                // dropped from our list still need `place_requeue` after this walk.
                let res = if n == 0 && guard.dropped.is_empty() && !checked_in {
                    // Nothing to report yet: this is where a wait sleeps.
                    let t = match (timeout, deadline) {
                        (None, _) => None,
                        (Some(_), Some(deadline)) => {
                            Some(deadline.saturating_duration_since(Instant::now()))
                        }
                        // A zero timeout, or one so long that the deadline overflowed.
                        (Some(d), None) => d.is_zero().then_some(Duration::ZERO),
                    };
                    if t == Some(Duration::ZERO) {
                        self.kernel.wait(&mut out[n..], t)
                    } else {
                        let ticket = guard.next_ticket;
                        guard.next_ticket += 1;
                        guard.blocked.push(ticket);
                        drop(guard);
                        let res = self.kernel.wait(&mut out[n..], t);
                        guard = self.lock();
                        let pos = guard.blocked.iter().position(|&t| t == ticket);
                        if let Some(pos) = pos {
                            guard.blocked.swap_remove(pos);
                        }
                        if guard.awaiting_checkins > 0 {
                            self.checkin.notify_all();
                        }
                        res
                    }
                } else {
                    self.kernel.wait(&mut out[n..], Some(Duration::ZERO))
                };
                match res {
                    Ok(k) => match guard.take_kernel_reports(&self.kernel, out, n, k, &mut requeue)
                    {
                        Ok((m, empty)) => (n, kernel_empty) = (m, empty),
                        Err(e) => {
                            guard.place_requeue(&self.kernel, requeue, false);
                            return (guard, Err(e));
                        }
                    },
                    Err(e) if n == 0 => {
                        guard.place_requeue(&self.kernel, requeue, false);
                        return (guard, Err(e));
                    }
                    // Deliver what our list gave; the kernel's side waits for next time.
                    Err(_) => {}
                }
            }
            guard.place_requeue(&self.kernel, requeue, kernel_empty);
            if n > 0 {
                return (guard, Ok(n));
            }
            // Nothing to report: every candidate was stale. Keep waiting while time
            // remains (ep_poll loops back in the same case).
            let expired = match (timeout, deadline) {
                (None, _) => false,
                (Some(_), Some(deadline)) => Instant::now() >= deadline,
                (Some(d), None) => d.is_zero(),
            };
            if expired {
                if checked_in || guard.blocked.is_empty() {
                    return (guard, Ok(0));
                }
                // Another thread is, or was just, blocked in the kernel wait: it may
                // have taken reports it has not delivered yet (a level-triggered item
                // it will re-queue). The kernel's `ep_poll` would see those events as
                // available and wait for `ep->mtx`; wait for that thread to check in,
                // then look once more.
                guard = self.await_checkins(guard);
                checked_in = true;
            }
        }
    }

    /// Waits until every thread now blocked in the kernel wait has checked in, waking
    /// them one at a time with the notify fd.
    fn await_checkins<'a>(
        &'a self,
        mut guard: MutexGuard<'a, Inner<K::Proxy>>,
    ) -> MutexGuard<'a, Inner<K::Proxy>> {
        let pending: Vec<u64> = guard.blocked.clone();
        guard.awaiting_checkins += 1;
        while pending.iter().any(|t| guard.blocked.contains(t)) {
            // A thread still blocked needs a wakeup to check in; one that is between
            // the kernel's return and the lock checks in by itself. Each notify wakes
            // one blocked thread, so notify again after each check-in.
            self.kernel.notify();
            guard = self.checkin.wait(guard).unwrap_or_else(|e| e.into_inner());
        }
        guard.awaiting_checkins -= 1;
        guard
    }
}

impl<P> Inner<P> {
    /// Forgets an item whose kernel registration is already gone.
    fn remove<K: Kernel<Proxy = P>>(&mut self, kernel: &K, slot: u32) {
        self.ready.unlink(&mut self.tree, slot);
        let item = self.tree.remove(slot);
        if let Some(proxy) = item.proxy {
            self.drop_proxy(kernel, proxy);
        }
    }

    /// Unregisters and closes a proxy instance no item holds any more.
    fn drop_proxy<K: Kernel<Proxy = P>>(&mut self, kernel: &K, proxy: P) {
        let pfd = K::proxy_fd(&proxy);
        let _ = kernel.ctl(CtlOp::Delete, pfd, 0, 0);
        self.other_own_fds.retain(|&fd| fd != pfd);
    }

    /// `epoll_ctl` on the instance that holds the item's registration.
    fn home_ctl<K: Kernel<Proxy = P>>(
        &mut self,
        kernel: &K,
        slot: u32,
        op: CtlOp,
        mask: u32,
    ) -> io::Result<()> {
        let fd = self.tree.key(slot);
        let item = self.tree.value_mut(slot);
        let token = token(slot, item.generation);
        match &item.proxy {
            Some(proxy) => kernel.proxy_ctl(proxy, op, fd, mask, token),
            None => kernel.ctl(op, fd, mask, token),
        }
    }

    /// Deletes and re-adds the item's registration with `mask` (and its proxy's, if it
    /// has one): this removes any queued echo, and the add polls the fd and queues it
    /// at the tail of the kernel's list if it is ready.
    fn reinsert<K: Kernel<Proxy = P>>(
        &mut self,
        kernel: &K,
        slot: u32,
        mask: u32,
    ) -> io::Result<()> {
        self.home_ctl(kernel, slot, CtlOp::Delete, 0)?;
        self.home_ctl(kernel, slot, CtlOp::Add, mask)?;
        let item = self.tree.value_mut(slot);
        let token = token(slot, item.generation);
        if let Some(proxy) = &item.proxy {
            let pfd = K::proxy_fd(proxy);
            kernel.ctl(CtlOp::Delete, pfd, 0, 0)?;
            kernel.ctl(CtlOp::Add, pfd, EPOLLIN | EPOLLET, token)?;
        }
        Ok(())
    }

    /// Leaves a delivered, still-ready edge-triggered item registered, armed and not
    /// queued, by moving it to a proxy instance (see the module docs).
    fn move_to_proxy<K: Kernel<Proxy = P>>(&mut self, kernel: &K, slot: u32) -> io::Result<()> {
        let fd = self.tree.key(slot);
        let item = self.tree.value_mut(slot);
        let (mask, token) = (item.kernel_mask(), token(slot, item.generation));
        match &item.proxy {
            None => {
                // Everything on the proxy first, so a failure leaves the item as it was
                // (dropping the proxy closes it, which unregisters it everywhere).
                let proxy = kernel.new_proxy()?;
                kernel.proxy_ctl(&proxy, CtlOp::Add, fd, mask, token)?;
                // The add queued the ready fd; one wait takes it off, armed.
                kernel.proxy_wait(&proxy)?;
                kernel.ctl(CtlOp::Add, K::proxy_fd(&proxy), EPOLLIN | EPOLLET, token)?;
                // Removes the main registration and any echo it had queued.
                let _ = kernel.ctl(CtlOp::Delete, fd, 0, 0);
                self.other_own_fds.push(K::proxy_fd(&proxy));
                item.proxy = Some(proxy);
            }
            Some(proxy) => {
                kernel.proxy_ctl(proxy, CtlOp::Delete, fd, 0, 0)?;
                kernel.proxy_ctl(proxy, CtlOp::Add, fd, mask, token)?;
                kernel.proxy_wait(proxy)?;
                // Re-register the proxy, now not ready, so no stale entry of it keeps a
                // place in the main instance.
                let pfd = K::proxy_fd(proxy);
                kernel.ctl(CtlOp::Delete, pfd, 0, 0)?;
                kernel.ctl(CtlOp::Add, pfd, EPOLLIN | EPOLLET, token)?;
            }
        }
        Ok(())
    }

    /// A whole delivery without blocking when our part of the list is empty: the kernel
    /// instance's reports, then the re-queued items placed (see [`Poller::wait`]).
    #[inline(always)]
    fn deliver_reports<K: Kernel<Proxy = P>>(
        &mut self,
        kernel: &K,
        out: &mut [Event],
    ) -> io::Result<usize> {
        debug_assert!(self.ready.is_empty() && self.dropped.is_empty() && self.walked.is_empty());
        let mut requeue = Requeue::default();
        let k = kernel.wait(out, Some(Duration::ZERO))?;
        let res = self.take_kernel_reports(kernel, out, 0, k, &mut requeue);
        let kernel_empty = res.as_ref().is_ok_and(|&(_, empty)| empty);
        self.place_requeue(kernel, requeue, kernel_empty);
        res.map(|(n, _)| n)
    }

    /// The kernel instance's part of a delivery: takes the `k` reports its wait just
    /// wrote at `out[n..]` and, if they filled the room, asks for more (see
    /// [`take_more_reports`](Self::take_more_reports)). Returns the new count and
    /// whether the instance walked its whole list.
    #[inline(always)]
    fn take_kernel_reports<K: Kernel<Proxy = P>>(
        &mut self,
        kernel: &K,
        out: &mut [Event],
        n: usize,
        k: usize,
        requeue: &mut Requeue,
    ) -> io::Result<(usize, bool)> {
        let room = out.len() - n;
        let n = n + self.take_reports(kernel, out, n, k, requeue);
        if k < room {
            return Ok((n, true));
        }
        self.take_more_reports(kernel, out, n, requeue)
    }

    /// Asks the kernel instance, without blocking, for the room left in `out` after `n`
    /// events, again and again while its reports fill that room (some may be echoes,
    /// which take no room in the end). Returns the new count and whether the instance
    /// walked its whole list. A kernel error ends the walk; it is returned only when
    /// nothing has been delivered.
    #[inline(never)]
    fn take_more_reports<K: Kernel<Proxy = P>>(
        &mut self,
        kernel: &K,
        out: &mut [Event],
        mut n: usize,
        requeue: &mut Requeue,
    ) -> io::Result<(usize, bool)> {
        while n < out.len() {
            let room = out.len() - n;
            let k = match kernel.wait(&mut out[n..], Some(Duration::ZERO)) {
                Ok(k) => k,
                Err(e) if n == 0 => return Err(e),
                Err(_) => return Ok((n, false)),
            };
            n += self.take_reports(kernel, out, n, k, requeue);
            if k < room {
                return Ok((n, true));
            }
        }
        Ok((n, false))
    }

    /// Delivers from our list into `out` (the first part of `ep_send_events`'s walk):
    /// each item is re-polled, with one `poll(2)` for a batch of them. Stops when `out`
    /// is full or the list is empty; returns how many events it wrote.
    fn walk_ours<K: Kernel<Proxy = P>>(
        &mut self,
        kernel: &K,
        out: &mut [Event],
        requeue: &mut Requeue,
    ) -> io::Result<usize> {
        let mut n = 0;
        while n < out.len() && !self.ready.is_empty() {
            self.poll_batch(kernel, out.len() - n)?;
            for i in 0..self.polled.len() {
                let slot = self.polled[i];
                let revents = u32::from(self.pollfds[i].revents as u16);
                self.ready.unlink(&mut self.tree, slot);
                let item = self.tree.value_mut(slot);
                let events = revents & item.interest;
                if events == 0 || revents & libc::POLLNVAL as u32 != 0 {
                    // Nothing ready any more (or the fd is closed): dropped silently,
                    // level-triggered or not, as `ep_send_events` skips an item whose
                    // re-poll is empty.
                    if item.has(state::KERNEL_DISARMED) {
                        // The item here stays armed; so must the kernel side. If the fd
                        // is gone the item is stale and nothing is lost.
                        item.state &= !state::KERNEL_DISARMED;
                        let mask = item.kernel_mask();
                        let _ = self.home_ctl(kernel, slot, CtlOp::Modify, mask);
                    }
                    self.dropped.push(slot);
                    continue;
                }
                out[n] = Event {
                    events,
                    data: item.data,
                };
                n += 1;
                if item.has(state::ONESHOT) {
                    // Unless the kernel side already fired, a wakeup while the item was
                    // on our list may have queued an echo there.
                    if !item.has(state::KERNEL_DISARMED) {
                        item.state |= state::MAY_ECHO;
                    }
                    item.state = (item.state | state::DISARMED) & !state::KERNEL_DISARMED;
                } else if !item.has(state::EDGE) {
                    requeue.list.push_back(&mut self.tree, slot);
                    requeue.from_ours += 1;
                } else if self.move_to_proxy(kernel, slot).is_err() {
                    // Out of fds or memory: skip its echo in this delivery at least.
                    self.tree.value_mut(slot).state |= state::WALKED;
                    self.walked.push(slot);
                }
            }
        }
        Ok(n)
    }

    /// Re-polls the first `room` items of our list (at most `POLL_BATCH`) with one
    /// `poll(2)`, leaving the results in `pollfds` / `polled`.
    fn poll_batch<K: Kernel<Proxy = P>>(&mut self, kernel: &K, room: usize) -> io::Result<()> {
        self.pollfds.clear();
        self.polled.clear();
        let mut cur = self.ready.front();
        while let Some(slot) = cur {
            if self.polled.len() == room.min(POLL_BATCH) {
                break;
            }
            let fd = self.tree.key(slot);
            // Every EPOLL* event bit has the same value in poll's 16-bit mask.
            let events = self.tree.value_mut(slot).interest as i16;
            self.pollfds.push(libc::pollfd {
                fd,
                events,
                revents: 0,
            });
            self.polled.push(slot);
            cur = ReadyList::next(&mut self.tree, slot);
        }
        kernel.poll(&mut self.pollfds)
    }

    /// Takes the kernel's reports in `out[at..at + k]` (the rest of `ep_send_events`'s
    /// walk) and compacts the deliverable ones to `out[at..]`; returns how many.
    #[inline(always)]
    fn take_reports<K: Kernel<Proxy = P>>(
        &mut self,
        kernel: &K,
        out: &mut [Event],
        at: usize,
        k: usize,
        requeue: &mut Requeue,
    ) -> usize {
        let out = &mut out[..at + k];
        let mut n = at;
        for i in at..out.len() {
            let report = out[i];
            if report.data == WAKE_TOKEN {
                continue;
            }
            let slot = report.data as u32;
            let generation = (report.data >> 32) as u32;
            let item = match self.tree.get_mut(slot) {
                Some(item) if item.generation == generation => item,
                // Deleted (and maybe replaced) after the kernel reported it.
                _ => continue,
            };
            item.state &= !state::QUIET;
            let events = report.events & item.interest;
            let usual = item.proxy.is_none() && item.state & UNUSUAL_REPORT == 0 && events != 0;
            let (events, item) = if usual {
                (events, item)
            } else {
                match self.take_unusual_report(kernel, slot, report.events) {
                    Some(events) => (events, self.tree.value_mut(slot)),
                    None => continue,
                }
            };
            out[n] = Event {
                events,
                data: item.data,
            };
            n += 1;
            match item.state & (state::ONESHOT | state::EDGE) {
                // Level-triggered: back on the tail after this delivery.
                0 => {
                    requeue.list.push_back(&mut self.tree, slot);
                }
                state::EDGE => {}
                _ => item.state |= state::DISARMED,
            }
        }
        n - at
    }

    /// A report of a live item that is proxied, an echo, or for events the item no
    /// longer asks for: returns the events to deliver, if any.
    #[cold]
    #[inline(never)]
    fn take_unusual_report<K: Kernel<Proxy = P>>(
        &mut self,
        kernel: &K,
        slot: u32,
        reported: u32,
    ) -> Option<u32> {
        let item = self.tree.value_mut(slot);
        let revents = match &item.proxy {
            None => reported,
            // The proxy is ready: take the item's own report from it, which also leaves
            // the item armed and not queued there.
            Some(proxy) => match kernel.proxy_wait(proxy) {
                Ok(Some(events)) => events,
                _ => return None,
            },
        };
        if item.state & UNUSUAL_REPORT != 0 {
            // An echo: the item has its place on our lists, or is disarmed here. The
            // kernel's oneshot side has now fired.
            if item.has(state::ONESHOT) && !item.has(state::DISARMED) {
                item.state |= state::KERNEL_DISARMED;
            }
            item.state &= !state::MAY_ECHO;
            return None;
        }
        let events = revents & item.interest;
        if events == 0 {
            // Only possible if a modify narrowed the mask after the kernel's report; the
            // kernel side of a oneshot item fired, so re-arm it.
            if item.has(state::ONESHOT) {
                let mask = item.kernel_mask();
                let _ = self.home_ctl(kernel, slot, CtlOp::Modify, mask);
            }
            return None;
        }
        Some(events)
    }

    /// Puts the re-queued level-triggered items at the tail of the ready list (the end
    /// of `ep_send_events`), and makes sure no echo outlives this delivery.
    ///
    /// If the kernel instance walked its whole list, every echo was reported (and
    /// skipped) or found stale, and the tail is the tail of ours. If it may still hold
    /// items, those come first, so the re-queued items are handed to the kernel, which
    /// appends them behind: a modify for items it just reported (they cannot have an
    /// echo), a delete and add for items from our list (which also removes an echo).
    /// Items of our list dropped as stale get the same delete and add, which removes
    /// their echoes and, the fd not being ready, queues nothing.
    #[inline(always)]
    fn place_requeue<K: Kernel<Proxy = P>>(
        &mut self,
        kernel: &K,
        requeue: Requeue,
        kernel_empty: bool,
    ) {
        // Nearly every delivery: the kernel instance walked its whole list and nothing
        // was walked on our list, so the re-queued items just join our tail.
        if kernel_empty && self.walked.is_empty() && self.dropped.is_empty() {
            if !requeue.list.is_empty() {
                let mut list = requeue.list;
                self.ready.append(&mut self.tree, &mut list);
            }
            return;
        }
        self.place_requeue_slow(kernel, requeue, kernel_empty);
    }

    #[inline(never)]
    fn place_requeue_slow<K: Kernel<Proxy = P>>(
        &mut self,
        kernel: &K,
        mut requeue: Requeue,
        kernel_empty: bool,
    ) {
        for i in 0..self.walked.len() {
            let slot = self.walked[i];
            self.tree.value_mut(slot).state &= !state::WALKED;
        }
        self.walked.clear();
        if kernel_empty {
            self.ready.append(&mut self.tree, &mut requeue.list);
            self.dropped.clear();
            return;
        }
        let mut i = 0;
        while let Some(slot) = requeue.list.pop_front(&mut self.tree) {
            let item = self.tree.value_mut(slot);
            let mask = item.kernel_mask();
            // EXCLUSIVE registrations cannot be modified, only deleted and added.
            let res = if i < requeue.from_ours || item.has(state::EXCLUSIVE) {
                self.reinsert(kernel, slot, mask)
            } else {
                self.home_ctl(kernel, slot, CtlOp::Modify, mask)
            };
            i += 1;
            if res.is_err() {
                // The kernel would not take it (ENOMEM, ENOSPC, a closed fd): keep it
                // on our list, where the next re-poll decides.
                self.ready.push_back(&mut self.tree, slot);
            }
        }
        for i in 0..self.dropped.len() {
            let slot = self.dropped[i];
            let mask = self.tree.value_mut(slot).kernel_mask();
            let _ = self.reinsert(kernel, slot, mask);
        }
        self.dropped.clear();
    }
}
