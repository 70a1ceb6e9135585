//! `Notify`: wake one waiting task, or all of them, with tokio's semantics.
//!
//! Who touches what: everything lives in `Notify::state` under its mutex — the permit,
//! the waiters (a slab, one entry per `Notified` that has registered) and the FIFO list
//! threading the entries not yet notified. A `Notified` owns its slab entry: only it
//! removes it (when it completes or is dropped), so a key is never reused under it.
//! `waiters_calls` counts `notify_waiters` calls; it is written under the lock and read
//! without it by `Notify::notified`, which only needs a value no newer than the call.

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Mutex, MutexGuard};
use std::task::{Context, Poll, Waker};

use slab::Slab;

/// Wakes tasks waiting for an event: [`notify_one`](Self::notify_one) wakes one waiter
/// (or leaves a permit for the next one if none waits), and
/// [`notify_waiters`](Self::notify_waiters) wakes every waiter without leaving a permit.
///
/// A waiter is a [`Notified`] future from [`notified`](Self::notified). It waits in line
/// once polled (or [`enable`](Notified::enable)d), and `notify_one` wakes the longest
/// waiting one. `notify_waiters` also completes every `Notified` *created* before the
/// call, even one not yet polled, so the usual pattern has no lost wakeup:
///
/// ```
/// use std::sync::Arc;
/// use std::sync::atomic::{AtomicBool, Ordering};
/// use epitome::sync::Notify;
///
/// let rt = epitome::runtime::Builder::new_current_thread().build().unwrap();
/// rt.block_on(async {
///     let notify = Arc::new(Notify::new());
///     let done = Arc::new(AtomicBool::new(false));
///     let waiter = {
///         let (notify, done) = (notify.clone(), done.clone());
///         epitome::spawn(async move {
///             loop {
///                 let notified = notify.notified(); // before the check
///                 if done.load(Ordering::Acquire) {
///                     return;
///                 }
///                 notified.await;
///             }
///         })
///     };
///     done.store(true, Ordering::Release);
///     notify.notify_waiters();
///     waiter.await.unwrap();
/// });
/// ```
///
/// A notification that reached a `Notified` through `notify_one` is not lost if that
/// `Notified` is dropped before completing: it passes to the next waiter, or becomes the
/// permit.
pub struct Notify {
    state: Mutex<State>,
    waiters_calls: AtomicU64,
}

#[derive(Default)]
struct State {
    /// A `notify_one` found nobody waiting: the next waiter completes at once.
    permit: bool,
    waiters: Slab<Waiter>,
    /// Oldest un-notified waiter (`notify_one` takes it).
    head: Option<usize>,
    /// Newest un-notified waiter (`notify_last` takes it).
    tail: Option<usize>,
}

struct Waiter {
    waker: Option<Waker>,
    notified: Option<Kind>,
    prev: Option<usize>,
    next: Option<usize>,
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Kind {
    /// By `notify_one` / `notify_last`: to be passed on if not consumed.
    One,
    /// By `notify_waiters`.
    All,
}

impl State {
    fn push_back(&mut self, waker: Option<Waker>) -> usize {
        let key = self.waiters.insert(Waiter {
            waker,
            notified: None,
            prev: self.tail,
            next: None,
        });
        match self.tail {
            Some(tail) => self.waiters[tail].next = Some(key),
            None => self.head = Some(key),
        }
        self.tail = Some(key);
        key
    }

    /// Takes `key` out of the line (it stays in the slab).
    fn unlink(&mut self, key: usize) {
        let (prev, next) = {
            let w = &mut self.waiters[key];
            (w.prev.take(), w.next.take())
        };
        self.bridge(prev, next);
    }

    /// Joins the neighbours of an entry leaving the line.
    fn bridge(&mut self, prev: Option<usize>, next: Option<usize>) {
        match prev {
            Some(p) => self.waiters[p].next = next,
            None => self.head = next,
        }
        match next {
            Some(n) => self.waiters[n].prev = prev,
            None => self.tail = prev,
        }
    }

    /// Notifies the waiter at the front (or back) of the line, or leaves a permit.
    fn notify_one(&mut self, from_back: bool) -> Option<Waker> {
        let key = if from_back { self.tail } else { self.head };
        match key {
            Some(key) => {
                self.unlink(key);
                let w = &mut self.waiters[key];
                w.notified = Some(Kind::One);
                w.waker.take()
            }
            None => {
                self.permit = true;
                None
            }
        }
    }
}

impl Notify {
    /// A `Notify` with no permit and no waiter.
    pub fn new() -> Notify {
        Notify {
            state: Mutex::new(State::default()),
            waiters_calls: AtomicU64::new(0),
        }
    }

    /// A future that completes when this `Notify` is notified (see the type docs). It
    /// joins the line of waiters when first polled or [`enable`](Notified::enable)d.
    pub fn notified(&self) -> Notified<'_> {
        Notified {
            notify: self,
            waiters_calls: self.waiters_calls.load(Ordering::Acquire),
            state: NotifiedState::Init,
        }
    }

    /// Wakes the waiter that has waited longest; with no waiter, stores a permit so the
    /// next [`notified`](Self::notified) future completes at once (one permit at most:
    /// several calls with nobody waiting make one).
    pub fn notify_one(&self) {
        let waker = self.lock().notify_one(false);
        if let Some(w) = waker {
            w.wake();
        }
    }

    /// Like [`notify_one`](Self::notify_one), but wakes the waiter that joined last.
    pub fn notify_last(&self) {
        let waker = self.lock().notify_one(true);
        if let Some(w) = waker {
            w.wake();
        }
    }

    /// Wakes every waiter, and completes every [`Notified`] created before this call
    /// even if not polled yet. Stores no permit.
    pub fn notify_waiters(&self) {
        let mut wakers = Vec::new();
        {
            let mut state = self.lock();
            // Under the lock: a `Notified` that joins the line after this sees the new
            // count and is not notified, one that joined before is in the list.
            self.waiters_calls.fetch_add(1, Ordering::Release);
            while let Some(key) = state.head {
                state.unlink(key);
                let w = &mut state.waiters[key];
                w.notified = Some(Kind::All);
                if let Some(waker) = w.waker.take() {
                    wakers.push(waker);
                }
            }
        }
        // Woken outside the lock: a woken task may run at once on another worker.
        for w in wakers {
            w.wake();
        }
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        // Nothing panics while holding the lock; recover rather than propagate anyway.
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }
}

impl Default for Notify {
    fn default() -> Notify {
        Notify::new()
    }
}

impl fmt::Debug for Notify {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let state = self.lock();
        f.debug_struct("Notify")
            .field("permit", &state.permit)
            .field("waiters", &state.waiters.len())
            .finish()
    }
}

/// The future of [`Notify::notified`]. Cancel-safe: dropping it gives up its place in
/// line, and passes on a `notify_one` it had received but not yet returned.
#[must_use = "futures do nothing unless polled"]
pub struct Notified<'a> {
    notify: &'a Notify,
    /// `Notify::waiters_calls` when this was created.
    waiters_calls: u64,
    state: NotifiedState,
}

enum NotifiedState {
    /// Not in line yet.
    Init,
    /// In line (or notified and not yet polled) at this slab key.
    Waiting(usize),
    /// Returned `Ready`.
    Done,
}

impl Notified<'_> {
    /// Joins the line of waiters without polling, so a later `notify_one` can pick this
    /// future. Returns whether it is already notified (then the next poll completes).
    pub fn enable(self: Pin<&mut Self>) -> bool {
        self.get_mut().poll_with(None).is_ready_or_notified()
    }

    fn poll_with(&mut self, waker: Option<&Waker>) -> Progress {
        let mut state = self.notify.lock();
        match self.state {
            NotifiedState::Done => Progress::Ready,
            NotifiedState::Init => {
                if self.notify.waiters_calls.load(Ordering::Acquire) != self.waiters_calls {
                    self.state = NotifiedState::Done;
                    return Progress::Ready;
                }
                if state.permit {
                    state.permit = false;
                    self.state = NotifiedState::Done;
                    return Progress::Ready;
                }
                let key = state.push_back(waker.cloned());
                self.state = NotifiedState::Waiting(key);
                Progress::Waiting
            }
            NotifiedState::Waiting(key) => {
                let w = &mut state.waiters[key];
                if w.notified.is_some() {
                    if waker.is_none() {
                        // `enable` on a notified waiter: keep it for the poll.
                        return Progress::Notified;
                    }
                    state.waiters.remove(key);
                    self.state = NotifiedState::Done;
                    return Progress::Ready;
                }
                if let Some(new) = waker {
                    match &mut w.waker {
                        Some(old) if old.will_wake(new) => {}
                        slot => *slot = Some(new.clone()),
                    }
                }
                Progress::Waiting
            }
        }
    }
}

enum Progress {
    Ready,
    Notified,
    Waiting,
}

impl Progress {
    fn is_ready_or_notified(&self) -> bool {
        !matches!(self, Progress::Waiting)
    }
}

impl Future for Notified<'_> {
    type Output = ();

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        match self.get_mut().poll_with(Some(cx.waker())) {
            Progress::Ready => Poll::Ready(()),
            Progress::Notified | Progress::Waiting => Poll::Pending,
        }
    }
}

impl Drop for Notified<'_> {
    fn drop(&mut self) {
        let NotifiedState::Waiting(key) = self.state else {
            return;
        };
        let waker = {
            let mut state = self.notify.lock();
            let waiter = state.waiters.remove(key);
            match waiter.notified {
                None => {
                    // Not notified, so still in line.
                    state.bridge(waiter.prev, waiter.next);
                    None
                }
                // A `notify_one` this future will never consume: hand it on.
                Some(Kind::One) => state.notify_one(false),
                Some(Kind::All) => None,
            }
        };
        if let Some(w) = waker {
            w.wake();
        }
    }
}

impl fmt::Debug for Notified<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Notified").finish_non_exhaustive()
    }
}
