//! The eventpoll logic over any [`Kernel`]: the state one lock guards, and what the
//! parts share. The parts carry the names of the kernel's `fs/eventpoll.c`:
//!
//! - `ctl.rs`: `EPOLL_CTL_ADD` / `MOD` / `DEL` (`ep_insert`, `ep_modify`, `ep_remove`);
//! - `send_events.rs`: delivery (`ep_send_events`), the two-part ready list and echoes;
//! - `proxy.rs`: the private instances an edge-triggered item moves to;
//! - `ep_poll.rs`: `epoll_wait` (`ep_poll`), several waiters and their hand-offs.
//!
//! # What an item carries
//!
//! Each item holds a `D` ([`ItemData`]) and reports `D::data()`: the user's `u64` for
//! the public `EventPoll`, the address of the source's readiness state for the
//! reactor, whose delivery then reaches the waiters with no lookup of its own (the
//! kernel's epitem points at its file the same way). A late kernel report of a deleted
//! item is dropped here by its generation, and `wait_then` runs its closure before the
//! lock is released, so the data it sees always belongs to a live item. An item's `D`
//! is never dropped under the lock (it may hold the last reference to something whose
//! drop calls back in): a ctl that removes or replaces data hands it to a local declared
//! before its guard, so it is dropped after the lock is released.
//!
//! # Fields and locking
//!
//! One mutex guards [`Inner`]: the tree, our list, every item, the waiter counts and
//! the scratch buffers. (The kernel needs `ep->mtx` and `ep->lock` because its
//! callback runs in interrupt context; here the callback is a kernel report read by a
//! waiter.) A waiter does not hold it while blocked in the kernel. The condition
//! variable `checkin` is signalled at every check-in while a thread awaits check-ins
//! (see `ep_poll.rs`).

use std::io;
use std::os::fd::RawFd;

use super::item::{Item, ItemData};
use super::kernel::Kernel;
use super::rbtree::InterestTree;
use super::ready_list::{Nodes, ReadyList};
use super::{EPOLLET, EPOLLIN};
use crate::loom::sync::{Condvar, Mutex, MutexGuard};
use crate::sys::epoll::CtlOp;

pub(super) fn token(slot: u32, generation: u32) -> u64 {
    (u64::from(generation) << 32) | u64::from(slot)
}

pub(super) fn is_stale(e: &io::Error) -> bool {
    matches!(e.raw_os_error(), Some(libc::ENOENT) | Some(libc::EBADF))
}

/// Everything the eventpoll lock guards.
#[derive(Debug)]
pub(super) struct Inner<P, D> {
    pub(super) tree: InterestTree<Item<P, D>>,
    /// Our part of the ready list, in front of the kernel instance's.
    pub(super) ready: ReadyList,
    /// Tickets of the threads blocked (or about to block) in the kernel wait. A
    /// thread removes its ticket when it has re-taken the lock after the kernel wait
    /// returned (its *check-in*).
    pub(super) blocked: Vec<u64>,
    pub(super) next_ticket: u64,
    /// Threads waiting in `Poller::await_checkins`.
    pub(super) awaiting_checkins: u32,
    /// Threads inside `wait`.
    pub(super) in_wait: u32,
    pub(super) generations: Generations,
    /// Scratch for the batched re-poll.
    pub(super) pollfds: Vec<libc::pollfd>,
    pub(super) polled: Vec<u32>,
    /// Scratch: items of our list dropped as stale during this delivery. This list and
    /// the next are empty between deliveries (`place_requeue` clears both).
    pub(super) dropped: Vec<u32>,
    /// Scratch: items marked `WALKED` during this delivery.
    pub(super) walked: Vec<u32>,
    /// The kernel instance's own fd (-1 if it has none), and our other fds: the
    /// notify eventfd's once it is made and those of the proxy instances items hold
    /// now (see [`Poller::own_fd`]).
    pub(super) instance_fd: RawFd,
    pub(super) other_own_fds: Vec<RawFd>,
}

impl<P, D> Nodes for InterestTree<Item<P, D>> {
    type Node = Item<P, D>;
    fn node_mut(&mut self, slot: u32) -> &mut Item<P, D> {
        self.value_mut(slot)
    }
}

/// Item data taken out under the lock (see the module docs): a ctl declares one before
/// its guard, so the data is dropped after the lock is released.
pub(super) struct Dead<D>(Option<D>);

impl<D> Dead<D> {
    pub(super) fn new() -> Dead<D> {
        Dead(None)
    }

    /// Keeps `data` until this is dropped. A ctl takes out at most one item's data.
    pub(super) fn bury(&mut self, data: D) {
        debug_assert!(self.0.is_none(), "a ctl took out two items' data");
        self.0 = Some(data);
    }
}

/// The source of item generations (see [`Item::generation`]).
#[derive(Debug)]
pub(super) struct Generations(u32);

impl Generations {
    pub(super) fn next(&mut self) -> u32 {
        let g = self.0;
        // Generation 0 never names a live item, so a zeroed token is never valid.
        self.0 = g.checked_add(1).unwrap_or(1);
        g
    }
}

/// The eventpoll logic over any [`Kernel`], its items carrying `D`.
#[derive(Debug)]
pub(crate) struct Poller<K: Kernel, D = u64> {
    pub(super) kernel: K,
    pub(super) inner: Mutex<Inner<K::Proxy, D>>,
    /// Signalled at every check-in while a thread awaits check-ins.
    pub(super) checkin: Condvar,
}

impl<K: Kernel, D: ItemData> Poller<K, D> {
    pub(crate) fn new(kernel: K) -> Poller<K, D> {
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
    #[cfg(all(test, epitome_loom))]
    pub(crate) fn kernel(&self) -> &K {
        &self.kernel
    }

    /// Checks our ready list (for the loom models): every item on it is linked once,
    /// the links agree both ways, and the on-list flags match membership.
    #[cfg(all(test, epitome_loom))]
    pub(crate) fn check_ready_list(&self) {
        let mut guard = self.lock();
        let inner = &mut *guard;
        let slots = inner.tree.len();
        use super::item::state;
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

    pub(super) fn lock(&self) -> MutexGuard<'_, Inner<K::Proxy, D>> {
        // A panic while the lock is held would be a bug here, and every structure is
        // left consistent between statements that could panic; keep serving.
        self.inner.lock()
    }

    /// The number of registered fds.
    pub(crate) fn len(&self) -> usize {
        self.lock().tree.len()
    }

    /// Runs `f` on the data of every item, under the lock (the reactor's shutdown
    /// wakes every source's waiters this way; `f` must not call back in).
    pub(crate) fn for_each_data(&self, mut f: impl FnMut(&D)) {
        let guard = self.lock();
        let tree = &guard.tree;
        tree.for_each(|_, slot| {
            if let Some(item) = tree.get(slot) {
                f(&item.data);
            }
        });
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
    pub(super) fn own_fd(
        &self,
        inner: &mut Inner<K::Proxy, D>,
        fd: RawFd,
        dead: &mut Dead<D>,
    ) -> io::Result<()> {
        // Every ctl pays this: two compares while there is no other own fd, and a
        // plain loop over a few fds after.
        if fd != inner.instance_fd && !inner.other_own_fds.iter().any(|&own| own == fd) {
            return Ok(());
        }
        self.forget_own_fd(inner, fd, dead)
    }

    /// [`own_fd`](Self::own_fd)'s refusal; the forgotten item's data goes to `dead`,
    /// for the caller to drop after the lock.
    #[cold]
    #[inline(never)]
    fn forget_own_fd(
        &self,
        inner: &mut Inner<K::Proxy, D>,
        fd: RawFd,
        dead: &mut Dead<D>,
    ) -> io::Result<()> {
        if let Some(slot) = inner.tree.find(fd) {
            dead.bury(inner.remove(&self.kernel, slot));
        }
        Err(io::Error::from_raw_os_error(libc::EBADF))
    }
}

impl<P, D: ItemData> Inner<P, D> {
    /// Forgets an item whose kernel registration is already gone. Returns its data,
    /// for the caller to drop once the lock is released.
    pub(super) fn remove<K: Kernel<Proxy = P>>(&mut self, kernel: &K, slot: u32) -> D {
        self.ready.unlink(&mut self.tree, slot);
        let item = self.tree.remove(slot);
        if let Some(proxy) = item.proxy {
            self.drop_proxy(kernel, proxy);
        }
        item.data
    }

    /// `epoll_ctl` on the instance that holds the item's registration.
    pub(super) fn home_ctl<K: Kernel<Proxy = P>>(
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
    pub(super) fn reinsert<K: Kernel<Proxy = P>>(
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
}

// Over the fake kernel, whose files a test makes ready: the loom build only.
#[cfg(all(test, epitome_loom))]
mod tests {
    use super::*;
    use crate::eventpoll::fake_kernel::FakeKernel;
    use crate::eventpoll::{EPOLLOUT, Event};
    use crate::loom::os::sync::atomic::{AtomicUsize, Ordering};
    use crate::loom::os::sync::{Arc as OsArc, OnceLock, Weak as OsWeak};
    use std::time::Duration;

    fn errno(res: io::Result<()>) -> Option<i32> {
        res.err().and_then(|e| e.raw_os_error())
    }

    /// The events a non-blocking wait delivers.
    fn wait(poller: &Poller<FakeKernel>) -> Vec<(u32, u64)> {
        let mut out = [Event::default(); 4];
        let n = poller.wait(&mut out, Some(Duration::ZERO)).unwrap();
        out[..n].iter().map(|e| (e.events, e.data)).collect()
    }

    #[test]
    fn a_ctl_on_an_own_fd_gets_ebadf_and_forgets_the_item_under_that_number() {
        crate::loom::unit_test(|| {
            let poller: Poller<FakeKernel> = Poller::new(FakeKernel::new());
            let kernel = poller.kernel();
            let (closed, instance, theirs) =
                (kernel.new_file(), kernel.new_file(), kernel.new_file());
            poller.add(closed, EPOLLIN, 1).unwrap();
            // The caller's file under `closed` was closed without a delete, and the
            // number now names one of our fds (a proxy instance).
            poller.lock().other_own_fds.push(closed);
            assert_eq!(errno(poller.modify(closed, EPOLLIN, 2)), Some(libc::EBADF));
            assert_eq!(poller.len(), 0, "the item under our fd's number was kept");
            assert_eq!(errno(poller.add(closed, EPOLLIN, 3)), Some(libc::EBADF));
            assert_eq!(errno(poller.delete(closed)), Some(libc::EBADF));
            // The kernel instance's own fd is refused the same way.
            poller.lock().instance_fd = instance;
            assert_eq!(errno(poller.add(instance, EPOLLIN, 4)), Some(libc::EBADF));
            assert_eq!(poller.len(), 0);
            // The caller's own fds are served.
            poller.add(theirs, EPOLLIN, 5).unwrap();
            poller.modify(theirs, EPOLLIN | EPOLLOUT, 6).unwrap();
            poller.delete(theirs).unwrap();
            assert_eq!(poller.len(), 0);
        });
    }

    #[test]
    fn a_late_report_of_a_forgotten_item_never_reaches_the_item_in_its_slot() {
        crate::loom::unit_test(|| {
            let poller: Poller<FakeKernel> = Poller::new(FakeKernel::new());
            let kernel = poller.kernel();
            let (old, new) = (kernel.new_file(), kernel.new_file());
            poller.add(old, EPOLLIN, 1).unwrap();
            // Forgotten here (its number became one of ours) while the kernel still
            // holds its registration, which reports it late.
            poller.lock().other_own_fds.push(old);
            assert_eq!(errno(poller.delete(old)), Some(libc::EBADF));
            poller.add(new, EPOLLIN, 2).unwrap();
            kernel.set_ready(old, EPOLLIN);
            assert_eq!(
                wait(&poller),
                [],
                "the old item's report reached the new one"
            );
            kernel.set_ready(new, EPOLLIN);
            assert_eq!(wait(&poller), [(EPOLLIN, 2)]);
        });
    }

    #[test]
    fn a_closed_files_item_is_forgotten_when_the_kernel_says_it_is_gone() {
        crate::loom::unit_test(|| {
            let poller: Poller<FakeKernel> = Poller::new(FakeKernel::new());
            let kernel = poller.kernel();
            let fd = kernel.new_file();
            for op in ["modify", "delete"] {
                poller.add(fd, EPOLLIN, 1).unwrap();
                // The file closed without a delete: the kernel dropped its registration.
                kernel.ctl(CtlOp::Delete, fd, 0, 0).unwrap();
                let res = match op {
                    "modify" => poller.modify(fd, EPOLLOUT, 2),
                    _ => poller.delete(fd),
                };
                assert_eq!(errno(res), Some(libc::ENOENT), "{op}");
                assert_eq!(poller.len(), 0, "{op}: a stale item was kept");
            }
        });
    }

    #[test]
    fn a_modify_changes_what_the_kernel_reports() {
        crate::loom::unit_test(|| {
            let poller: Poller<FakeKernel> = Poller::new(FakeKernel::new());
            let kernel = poller.kernel();
            let fd = kernel.new_file();
            poller.add(fd, EPOLLIN, 1).unwrap();
            poller.modify(fd, EPOLLOUT, 2).unwrap();
            kernel.set_ready(fd, EPOLLIN);
            assert_eq!(wait(&poller), []);
            kernel.set_ready(fd, EPOLLOUT);
            assert_eq!(wait(&poller), [(EPOLLOUT, 2)]);
            poller.delete(fd).unwrap();
            kernel.set_ready(fd, EPOLLOUT);
            assert_eq!(wait(&poller), []);
        });
    }

    /// Item data whose drop calls back into its eventpoll.
    struct CallsBack {
        poller: OsArc<OnceLock<OsWeak<Poller<FakeKernel, CallsBack>>>>,
        /// 1 + the number of items its drop saw.
        seen: OsArc<AtomicUsize>,
    }

    impl ItemData for CallsBack {
        fn data(&self) -> u64 {
            7
        }
    }

    impl Drop for CallsBack {
        fn drop(&mut self) {
            if let Some(poller) = self.poller.get().and_then(OsWeak::upgrade) {
                // Takes the eventpoll's lock: a deadlock if dropped under it.
                self.seen.store(1 + poller.len(), Ordering::SeqCst);
            }
        }
    }

    #[test]
    fn removed_data_is_dropped_after_the_lock_is_released() {
        crate::loom::unit_test(|| {
            let poller = OsArc::new(Poller::new(FakeKernel::new()));
            let cell = OsArc::new(OnceLock::new());
            let _ = cell.set(OsArc::downgrade(&poller));
            let seen = OsArc::new(AtomicUsize::new(0));
            let data = || CallsBack {
                poller: cell.clone(),
                seen: seen.clone(),
            };
            let (a, b) = (poller.kernel().new_file(), poller.kernel().new_file());
            poller.add(a, EPOLLIN, data()).unwrap();
            poller.add(b, EPOLLIN, data()).unwrap();
            // Replaced data (a modify), then removed data (a delete).
            poller.modify(a, EPOLLIN | EPOLLOUT, data()).unwrap();
            assert_eq!(seen.swap(0, Ordering::SeqCst), 1 + 2);
            poller.delete(b).unwrap();
            assert_eq!(seen.swap(0, Ordering::SeqCst), 1 + 1);
            poller.delete(a).unwrap();
            assert_eq!(seen.load(Ordering::SeqCst), 1);
        });
    }
}
