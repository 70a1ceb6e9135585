//! One registered (fd, mask, data): the kernel's `struct epitem`.
//!
//! All fields are guarded by the eventpoll's mutex (the kernel's `ep->mtx` plus
//! `ep->lock`); nothing here is touched without it.

use super::ready_list::{Link, ListNode};
use super::{EPOLLERR, EPOLLET, EPOLLEXCLUSIVE, EPOLLHUP, EPOLLONESHOT, EPOLLWAKEUP};

/// The item's state word. Each bit says when it is set and cleared.
pub(crate) mod state {
    /// On our ready list, or on the list of level-triggered items the current delivery
    /// is re-queueing. Set by `ReadyList::push_back`, cleared by `ReadyList::unlink`;
    /// the kernel's `ep_is_linked(epi)`. (An item whose place in the kernel's order is
    /// held by the kernel instance's own ready list is not on ours.)
    pub(crate) const ON_READY_LIST: u32 = 1 << 0;
    /// A oneshot item that has delivered its event: it reports nothing, not even
    /// ERR or HUP, until `modify` re-arms it. Set by delivery, cleared by modify.
    /// The kernel encodes this as `epi->event.events &= EP_PRIVATE_BITS`.
    pub(crate) const DISARMED: u32 = 1 << 1;
    /// The kernel registration (which mirrors EPOLLONESHOT) has fired and disarmed
    /// itself while the item here is still armed: the kernel reported the item while it
    /// was on our ready list (after a modify re-armed it there). Cleared by delivery
    /// (both sides are then disarmed), by modify (which re-arms the kernel side), and by
    /// the re-arm that delivery makes when it drops the item as stale.
    pub(crate) const KERNEL_DISARMED: u32 = 1 << 2;
    /// A oneshot item delivered from our ready list whose kernel registration may still
    /// hold a queued entry (an echo of a wakeup it had while on our list, which the
    /// kernel's ready list would have absorbed). The echo is skipped when reported;
    /// a modify before that deletes and re-adds the registration, so the echo cannot
    /// keep a place in the kernel's order. Set by delivery from our list; cleared when
    /// the echo is reported, by modify, and by delete.
    pub(crate) const MAY_ECHO: u32 = 1 << 3;
    /// Delivered from our ready list during the current delivery and not re-queued,
    /// where moving it to a proxy failed. A kernel report of it in the same delivery is
    /// an echo and is skipped. Set and cleared within one delivery.
    pub(crate) const WALKED: u32 = 1 << 4;
    /// Edge-triggered (EPOLLET): not re-queued after delivery. Set by add/modify.
    pub(crate) const EDGE: u32 = 1 << 5;
    /// EPOLLONESHOT: disarmed after one delivery. Set by add/modify.
    pub(crate) const ONESHOT: u32 = 1 << 6;
    /// Added with EPOLLEXCLUSIVE: modify is refused (EINVAL, by the kernel's check),
    /// and one event wakes one of the instances that hold the fd. Set by add only.
    pub(crate) const EXCLUSIVE: u32 = 1 << 7;
    /// EPOLLWAKEUP was requested (passed to the kernel; it changes nothing reported).
    pub(crate) const WAKEUP: u32 = 1 << 8;
    /// The item's registration is in the main kernel instance and the kernel has
    /// reported nothing for it since our latest add or modify of it. That ctl polled
    /// the fd and queued the registration if it was ready, and every wakeup since has
    /// queued it (an armed edge-triggered registration is queued by each wakeup and
    /// taken off only by a report). So if the fd is ready now, the registration is
    /// queued, and a kernel modify with the same mask and token would change nothing
    /// (`ep_modify` queues only a ready item that is not queued): a modify that
    /// changes only the data need not make it. Set by add and modify (after their
    /// kernel ctl); cleared by every kernel report of the item.
    pub(crate) const QUIET: u32 = 1 << 9;
    /// A modify that changed only the data has been made (through the kernel). The
    /// next one looks the file up (see [`FILE_KNOWN`]), so an item modified once
    /// never pays for the lookup. Set by the first such modify; kept for the item's
    /// life.
    pub(crate) const DATA_MODIFIED: u32 = 1 << 10;
    /// Whether the fd's poll changes no state has been looked up ([`POLL_PURE`] holds
    /// the answer). Set by the second modify that changes only the data; kept for the
    /// item's life, as the file behind a registered fd does not change while the fd
    /// is open (closing it without a delete breaks the contract).
    pub(crate) const FILE_KNOWN: u32 = 1 << 11;
    /// The fd is a socket, a pipe, an eventfd or a timerfd, whose poll changes no
    /// state (see `sys::epoll::poll_is_pure`): leaving a kernel modify out skips
    /// nothing but the queueing that [`QUIET`] shows is not needed. Meaningful with
    /// [`FILE_KNOWN`].
    pub(crate) const POLL_PURE: u32 = 1 << 12;
    /// The bits that describe the file rather than the registration.
    pub(crate) const FILE_BITS: u32 = DATA_MODIFIED | FILE_KNOWN | POLL_PURE;
}

/// The bits that are never reported (the kernel's `EP_PRIVATE_BITS`).
pub(crate) const PRIVATE_BITS: u32 = EPOLLWAKEUP | EPOLLONESHOT | EPOLLET | EPOLLEXCLUSIVE;

/// What an item carries for its owner, and reports as [`Event::data`](super::Event):
/// the user's `u64` for the public `EventPoll`, the source's readiness state for the
/// reactor (the kernel's epitem points straight at its file in the same way).
pub(crate) trait ItemData {
    /// The value reported with the item's events.
    fn data(&self) -> u64;
}

impl ItemData for u64 {
    #[inline]
    fn data(&self) -> u64 {
        *self
    }
}

/// A registered item. `P` is the kernel's proxy type (see `Poller`), `D` what the item
/// carries (see [`ItemData`]).
#[derive(Debug)]
pub(crate) struct Item<P, D> {
    /// Requested events with EPOLLERR | EPOLLHUP always added (as `ep_insert` and
    /// `ep_modify` do), private bits removed.
    pub(crate) interest: u32,
    /// Returned with every event (its [`ItemData::data`]); the latest add/modify's.
    pub(crate) data: D,
    /// See [`state`].
    pub(crate) state: u32,
    /// Distinguishes this item from earlier occupants of its slot in kernel tokens.
    pub(crate) generation: u32,
    /// The private kernel instance that holds this item's registration, if it has one;
    /// otherwise the registration is in the main instance.
    pub(crate) proxy: Option<P>,
    link: Link,
}

impl<P, D> Item<P, D> {
    pub(crate) fn new(events: u32, data: D, generation: u32) -> Item<P, D> {
        Item {
            interest: interest_of(events),
            data,
            // Made right after the kernel add (or modify) that registered it and polled
            // the fd.
            state: mode_of(events) | state::QUIET,
            generation,
            proxy: None,
            link: Link::default(),
        }
    }

    pub(crate) fn has(&self, bit: u32) -> bool {
        self.state & bit != 0
    }

    /// Whether a modify to `events` changes only the data, and the kernel side need not
    /// hear of it (see [`state::QUIET`]): same mask and modes, no proxy, nothing
    /// disarmed or pending an echo, not exclusive (the kernel refuses that modify).
    /// The caller also makes sure no kernel report is in flight.
    pub(crate) fn modify_is_data_only(&self, events: u32) -> bool {
        events & EPOLLEXCLUSIVE == 0
            && self.proxy.is_none()
            && self.interest == interest_of(events)
            && self.state & !(state::ON_READY_LIST | state::FILE_BITS)
                == state::QUIET | mode_of(events)
    }

    /// Applies a modify: new mask and data, re-armed. Returns the old data.
    pub(crate) fn rearm(&mut self, events: u32, data: D) -> D {
        self.interest = interest_of(events);
        let old = std::mem::replace(&mut self.data, data);
        // The kernel refuses to modify an EXCLUSIVE item and refuses EXCLUSIVE in a
        // modify, so the mode bits can simply be recomputed.
        // Applied right after the kernel modify (or delete and add) that polled the fd.
        self.state = (self.state & (state::ON_READY_LIST | state::FILE_BITS))
            | mode_of(events)
            | state::QUIET;
        old
    }

    /// The mask registered with the kernel for this item (see [`kernel_mask`]).
    pub(crate) fn kernel_mask(&self) -> u32 {
        let mut events = self.interest | EPOLLET;
        if self.has(state::ONESHOT) {
            events |= EPOLLONESHOT;
        }
        if self.has(state::EXCLUSIVE) {
            events |= EPOLLEXCLUSIVE;
        }
        if self.has(state::WAKEUP) {
            events |= EPOLLWAKEUP;
        }
        events
    }
}

/// The mask registered with the kernel for a requested mask: the requested events,
/// always edge-triggered (level-triggered re-reporting is done here), with EPOLLONESHOT
/// and EPOLLEXCLUSIVE passed through (oneshot so the kernel stops waking us for a
/// disarmed item; exclusive so one event wakes one of the instances holding the fd).
pub(crate) fn kernel_mask(events: u32) -> u32 {
    events | EPOLLET
}

fn interest_of(events: u32) -> u32 {
    (events & !PRIVATE_BITS) | EPOLLERR | EPOLLHUP
}

fn mode_of(events: u32) -> u32 {
    let mut s = 0;
    if events & EPOLLET != 0 {
        s |= state::EDGE;
    }
    if events & EPOLLONESHOT != 0 {
        s |= state::ONESHOT;
    }
    if events & EPOLLEXCLUSIVE != 0 {
        s |= state::EXCLUSIVE;
    }
    if events & EPOLLWAKEUP != 0 {
        s |= state::WAKEUP;
    }
    s
}

impl<P, D> ListNode for Item<P, D> {
    fn link(&mut self) -> &mut Link {
        &mut self.link
    }
    fn is_linked(&self) -> bool {
        self.has(state::ON_READY_LIST)
    }
    fn set_linked(&mut self, linked: bool) {
        if linked {
            self.state |= state::ON_READY_LIST;
        } else {
            self.state &= !state::ON_READY_LIST;
        }
    }
}
