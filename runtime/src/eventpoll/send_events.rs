//! Delivery: the kernel's `ep_send_events`.
//!
//! # Two lists make one
//!
//! The kernel's ready list (`ep->rdllist`) is kept in two parts: **ours** (this
//! module's [`ReadyList`]) in front, then **the kernel instance's** own ready list.
//! Every wakeup, and every add or modify of a ready fd, lands on the kernel
//! instance's list, in the order the kernel's own eventpoll would have put it on its
//! list. Our part holds the level-triggered items that earlier deliveries re-queued.
//!
//! A delivery walks our part first, re-polling its items with one `poll(2)`, then asks
//! the kernel instance for exactly the room that is left. The kernel instance drops
//! stale items as it walks, so it must never be asked for more than the kernel's own
//! walk would take: otherwise it would drop a stale item that the real ready list
//! keeps, and that item would come back at a different place.
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
//! which queues it again exactly when the real list would have it). The one case that
//! cannot be mended that way moves the item to a proxy (`proxy.rs`).

use std::io;
use std::time::Duration;

use super::Event;
use super::item::{ItemData, state};
use super::kernel::{Kernel, WAKE_TOKEN};
use super::poller::Inner;
use super::ready_list::ReadyList;
use crate::sys::epoll::CtlOp;

/// How many fds one `poll(2)` re-checks at most.
const POLL_BATCH: usize = 1024;

/// The item states in which a kernel report of the item is an echo (see the module
/// docs): it has its place on our lists, or it is disarmed here.
const UNUSUAL_REPORT: u32 = state::ON_READY_LIST | state::DISARMED | state::WALKED;

/// The level-triggered items one delivery re-queues: first those that came from our
/// list, then those the kernel reported.
#[derive(Default)]
pub(super) struct Requeue {
    list: ReadyList,
    from_ours: usize,
}

impl<P, D: ItemData> Inner<P, D> {
    /// A whole delivery without blocking when our part of the list is empty: the kernel
    /// instance's reports, then the re-queued items placed (see [`Poller::wait`]).
    #[inline(always)]
    pub(super) fn deliver_reports<K: Kernel<Proxy = P>>(
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
    pub(super) fn take_kernel_reports<K: Kernel<Proxy = P>>(
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
    pub(super) fn walk_ours<K: Kernel<Proxy = P>>(
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
                    data: item.data.data(),
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
                data: item.data.data(),
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
    pub(super) fn place_requeue<K: Kernel<Proxy = P>>(
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
