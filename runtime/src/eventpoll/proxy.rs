//! Proxies: private kernel instances that each hold one item.
//!
//! One case of echoes cannot be mended by deleting and re-adding a registration: an
//! item modified to edge-triggered while on our ready list, delivered from it while its
//! fd stays ready. The real eventpoll then holds the item registered, armed and *not*
//! queued; a kernel add or modify of a ready fd always queues it, and only a kernel wait
//! takes it off again. Such an item is moved to a **proxy**: a private kernel instance
//! holding only that item, itself registered (edge-triggered) in the main one. The item
//! is added there and the proxy waited on once, which leaves it armed and not queued;
//! from then on a wakeup of the item queues the proxy in the main instance at the
//! moment of the wakeup, so its place in the order is exact. The item keeps its proxy
//! until it is deleted.

use std::io;

use super::item::ItemData;
use super::kernel::Kernel;
use super::poller::{Inner, token};
use super::{EPOLLET, EPOLLIN};
use crate::sys::epoll::CtlOp;

impl<P, D: ItemData> Inner<P, D> {
    /// Leaves a delivered, still-ready edge-triggered item registered, armed and not
    /// queued, by moving it to a proxy instance (see the module docs).
    pub(super) fn move_to_proxy<K: Kernel<Proxy = P>>(
        &mut self,
        kernel: &K,
        slot: u32,
    ) -> io::Result<()> {
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

    /// Unregisters and closes a proxy instance no item holds any more.
    pub(super) fn drop_proxy<K: Kernel<Proxy = P>>(&mut self, kernel: &K, proxy: P) {
        let pfd = K::proxy_fd(&proxy);
        let _ = kernel.ctl(CtlOp::Delete, pfd, 0, 0);
        self.other_own_fds.retain(|&fd| fd != pfd);
    }
}
