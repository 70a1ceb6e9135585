//! `epoll_ctl`: the kernel's `ep_insert`, `ep_modify` and `ep_remove`.
//!
//! Every ctl first refuses the eventpoll's own fds (`Poller::own_fd`), then does the
//! kernel's ctl on the instance that holds the item (its argument checks give the
//! errno, in the kernel's order), then updates the tree.
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

use std::io;
use std::os::fd::RawFd;

use super::EPOLLEXCLUSIVE;
use super::item::{Item, ItemData, kernel_mask, state};
use super::kernel::Kernel;
use super::poller::{Dead, Poller, is_stale, token};
use super::rbtree::Entry;
use crate::loom::planted_bug;
use crate::sys::epoll::CtlOp;

/// The value an `Option` holds, which the caller knows is there.
fn take<D>(data: &mut Option<D>) -> D {
    match data.take() {
        Some(d) => d,
        // Each ctl takes its data once, on the one path that stores it.
        None => unreachable!("the ctl's data was already stored"),
    }
}

impl<K: Kernel, D: ItemData> Poller<K, D> {
    /// `EPOLL_CTL_ADD` (the kernel's `ep_insert`).
    pub(crate) fn add(&self, fd: RawFd, events: u32, data: D) -> io::Result<()> {
        // Declared before the guard, so dropped after it (see the module docs of
        // `poller.rs`): the new data if the add fails, a stale item's.
        let mut data = Some(data);
        let mut dead = Dead::new();
        let mut guard = self.lock();
        let inner = &mut *guard;
        self.own_fd(inner, fd, &mut dead)?;
        let generation = inner.generations.next();
        match inner.tree.entry(fd) {
            Entry::Vacant(vacant) => {
                // The kernel polls the fd and, if it is ready, queues it on its own
                // ready list, where a wait finds it in the kernel's order.
                self.kernel.ctl(
                    CtlOp::Add,
                    fd,
                    kernel_mask(events),
                    token(vacant.slot(), generation),
                )?;
                vacant.insert(Item::new(events, take(&mut data), generation));
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
                        .proxy_ctl(proxy, CtlOp::Add, fd, kernel_mask(events), 0)?;
                    // Accepted: the item there is stale. Undo the probe.
                    let _ = self.kernel.proxy_ctl(proxy, CtlOp::Delete, fd, 0, 0);
                }
                self.kernel
                    .ctl(CtlOp::Add, fd, kernel_mask(events), token(slot, generation))?;
                inner.ready.unlink(&mut inner.tree, slot);
                let old = std::mem::replace(
                    inner.tree.value_mut(slot),
                    Item::new(events, take(&mut data), generation),
                );
                if let Some(proxy) = old.proxy {
                    inner.drop_proxy(&self.kernel, proxy);
                }
                dead.bury(old.data);
            }
        }
        Ok(())
    }

    /// `EPOLL_CTL_MOD` (the kernel's `ep_modify`).
    pub(crate) fn modify(&self, fd: RawFd, events: u32, data: D) -> io::Result<()> {
        // Dropped after the guard: the new data if refused, the old data otherwise.
        let mut data = Some(data);
        let mut dead = Dead::new();
        let mut guard = self.lock();
        let inner = &mut *guard;
        self.own_fd(inner, fd, &mut dead)?;
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
                    .ctl(CtlOp::Modify, fd, kernel_mask(events), token)?;
                vacant.insert(Item::new(events, take(&mut data), generation));
                return Ok(());
            }
        };
        let item = inner.tree.value_mut(slot);
        // Only the data changes and the kernel side is quiet: the kernel modify would
        // change nothing there, and the data lives here. Unless a waiter is blocked in
        // (or just back from) the kernel wait: it may hold a report of the item that
        // has not cleared QUIET yet.
        let no_report_in_flight = planted_bug!(
            "data_only_ignores_waiters",
            // Leave the kernel modify out beside a thread in the kernel wait.
            bug: true,
            code: inner.blocked.is_empty(),
        );
        if item.modify_is_data_only(events)
            && no_report_in_flight
            && Self::poll_is_pure_and_open(&self.kernel, fd, item)
        {
            #[cfg(all(test, epitome_loom))]
            assert!(
                self.kernel.modify_changes_nothing(fd),
                "a data-only modify left out a kernel modify that would queue the item"
            );
            dead.bury(std::mem::replace(&mut item.data, take(&mut data)));
            return Ok(());
        }
        let mask = kernel_mask(events);
        let res = if item.has(state::MAY_ECHO) && events & EPOLLEXCLUSIVE == 0 {
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
                let item = inner.tree.value_mut(slot);
                dead.bury(item.rearm(events, take(&mut data)));
                Ok(())
            }
            Err(e) => {
                if is_stale(&e) {
                    dead.bury(inner.remove(&self.kernel, slot));
                }
                Err(e)
            }
        }
    }

    /// `EPOLL_CTL_DEL` (the kernel's `ep_remove`).
    pub(crate) fn delete(&self, fd: RawFd) -> io::Result<()> {
        // Dropped after the guard: the removed item's data.
        let mut dead = Dead::new();
        let mut guard = self.lock();
        let inner = &mut *guard;
        self.own_fd(inner, fd, &mut dead)?;
        let Some(slot) = inner.tree.find(fd) else {
            return self.kernel.ctl(CtlOp::Delete, fd, 0, 0);
        };
        let res = inner.home_ctl(&self.kernel, slot, CtlOp::Delete, 0);
        match &res {
            Err(e) if !is_stale(e) => {}
            _ => dead.bury(inner.remove(&self.kernel, slot)),
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
    fn poll_is_pure_and_open(kernel: &K, fd: RawFd, item: &mut Item<K::Proxy, D>) -> bool {
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
}
