//! A channel that holds one value: senders replace it, receivers see the latest one
//! and can wait for it to change. tokio's `watch`, with the same API.
//!
//! ```
//! use epitome::sync::watch;
//!
//! let rt = epitome::runtime::Builder::new_current_thread().build().unwrap();
//! rt.block_on(async {
//!     let (tx, mut rx) = watch::channel("starting");
//!     let observer = epitome::spawn(async move {
//!         let mut seen = vec![*rx.borrow_and_update()];
//!         while rx.changed().await.is_ok() {
//!             seen.push(*rx.borrow_and_update());
//!         }
//!         seen // every sender is gone
//!     });
//!     tx.send("running").unwrap();
//!     tx.send("stopped").unwrap();
//!     drop(tx);
//!     let seen = observer.await.unwrap();
//!     // Values sent faster than the observer looks are not queued: it may have seen
//!     // "running" or not, but it ends with the latest.
//!     assert_eq!(seen.last(), Some(&"stopped"));
//! });
//! ```
//!
//! Values sent faster than a receiver looks are not queued: it sees the latest one.
//!
//! Who touches what: `value` is behind an `RwLock` (senders write, everyone reads);
//! `version` is bumped by senders while they hold the write lock, so a reader that
//! loads it under the read lock knows which value it is reading; `closed` is set once,
//! when the last sender goes. Receivers wait on `changed`, senders' `closed()` on
//! `receivers_gone`.

use std::fmt;
use std::ops::Deref;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, RwLock, RwLockReadGuard, RwLockWriteGuard};

use super::Notify;

/// Errors of the watch channel.
pub mod error {
    use std::fmt;

    /// `send` found no receiver: the value comes back.
    #[derive(PartialEq, Eq, Clone, Copy)]
    pub struct SendError<T>(pub T);

    impl<T> fmt::Debug for SendError<T> {
        fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.debug_struct("SendError").finish_non_exhaustive()
        }
    }

    impl<T> fmt::Display for SendError<T> {
        fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.write_str("channel closed")
        }
    }

    impl<T> std::error::Error for SendError<T> {}

    /// Every sender is gone (and, for `changed`, the latest value was already seen).
    #[derive(Debug, PartialEq, Eq, Clone, Copy)]
    pub struct RecvError(pub(super) ());

    impl fmt::Display for RecvError {
        fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.write_str("channel closed")
        }
    }

    impl std::error::Error for RecvError {}
}

use error::{RecvError, SendError};

struct Shared<T> {
    value: RwLock<T>,
    /// Bumped on every change, under the write lock.
    version: AtomicU64,
    closed: AtomicBool,
    senders: AtomicUsize,
    receivers: AtomicUsize,
    /// Woken on every change and when the last sender goes.
    changed: Notify,
    /// Woken when the last receiver goes.
    receivers_gone: Notify,
}

impl<T> Shared<T> {
    fn read(&self) -> RwLockReadGuard<'_, T> {
        // A panic in a `send_modify` closure poisons the lock; the value is still the
        // one the closure left, as tokio's.
        self.value.read().unwrap_or_else(|e| e.into_inner())
    }

    fn write(&self) -> RwLockWriteGuard<'_, T> {
        self.value.write().unwrap_or_else(|e| e.into_inner())
    }
}

/// Creates a watch channel holding `init`.
pub fn channel<T>(init: T) -> (Sender<T>, Receiver<T>) {
    let shared = Arc::new(Shared {
        value: RwLock::new(init),
        version: AtomicU64::new(0),
        closed: AtomicBool::new(false),
        senders: AtomicUsize::new(1),
        receivers: AtomicUsize::new(1),
        changed: Notify::new(),
        receivers_gone: Notify::new(),
    });
    let rx = Receiver {
        shared: shared.clone(),
        seen: 0,
    };
    (Sender { shared }, rx)
}

/// The sending half: replaces the value and wakes the receivers. Clonable; the channel
/// closes when the last sender is dropped.
pub struct Sender<T> {
    shared: Arc<Shared<T>>,
}

/// The receiving half: reads the value and waits for changes. Each clone remembers
/// which version it has seen.
pub struct Receiver<T> {
    shared: Arc<Shared<T>>,
    /// The version this receiver has marked seen (`u64::MAX`: none, see
    /// `mark_changed`).
    seen: u64,
}

/// A read-locked reference to the value. Holding it blocks senders: drop it soon, and
/// never hold it across an `.await`.
pub struct Ref<'a, T> {
    guard: RwLockReadGuard<'a, T>,
    has_changed: bool,
}

impl<T> Ref<'_, T> {
    /// Whether this value was unseen by the receiver when it was borrowed (always false
    /// for a sender's borrow).
    pub fn has_changed(&self) -> bool {
        self.has_changed
    }
}

impl<T> Deref for Ref<'_, T> {
    type Target = T;
    fn deref(&self) -> &T {
        &self.guard
    }
}

impl<T: fmt::Debug> fmt::Debug for Ref<'_, T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        (**self).fmt(f)
    }
}

impl<T> Sender<T> {
    /// A sender with no receiver yet (make them with [`subscribe`](Self::subscribe));
    /// until then `send` fails and `send_replace` stores the value.
    pub fn new(init: T) -> Sender<T> {
        channel(init).0
    }

    /// Replaces the value and notifies the receivers. Fails, giving the value back, if
    /// there is no receiver (use [`send_replace`](Self::send_replace) to store it anyway).
    pub fn send(&self, value: T) -> Result<(), SendError<T>> {
        if self.shared.receivers.load(Ordering::Acquire) == 0 {
            return Err(SendError(value));
        }
        self.send_replace(value);
        Ok(())
    }

    /// Replaces the value, receivers or not, notifies them, and returns the old value.
    pub fn send_replace(&self, value: T) -> T {
        let mut value = Some(value);
        let mut old = None;
        self.send_if_modified(|current| {
            if let Some(v) = value.take() {
                old = Some(std::mem::replace(current, v));
            }
            true
        });
        match old {
            Some(old) => old,
            None => unreachable!("the closure ran once and swapped the value"),
        }
    }

    /// Modifies the value in place and notifies the receivers.
    pub fn send_modify(&self, modify: impl FnOnce(&mut T)) {
        self.send_if_modified(|v| {
            modify(v);
            true
        });
    }

    /// Modifies the value in place; notifies the receivers only if `modify` returns
    /// true (it says whether it changed anything). Returns what `modify` returned.
    pub fn send_if_modified(&self, modify: impl FnOnce(&mut T) -> bool) -> bool {
        {
            let mut guard = self.shared.write();
            if !modify(&mut guard) {
                return false;
            }
            // Under the write lock, so a reader that loads the version under the read
            // lock reads the value of that version.
            self.shared.version.fetch_add(1, Ordering::Release);
        }
        self.shared.changed.notify_waiters();
        true
    }

    /// The current value (never counted as changed).
    pub fn borrow(&self) -> Ref<'_, T> {
        Ref {
            guard: self.shared.read(),
            has_changed: false,
        }
    }

    /// Whether every receiver is gone.
    pub fn is_closed(&self) -> bool {
        self.receiver_count() == 0
    }

    /// Waits until every receiver is gone.
    pub async fn closed(&self) {
        loop {
            let gone = self.shared.receivers_gone.notified();
            if self.is_closed() {
                return;
            }
            gone.await;
        }
    }

    /// A new receiver; the current value counts as seen by it.
    pub fn subscribe(&self) -> Receiver<T> {
        self.shared.receivers.fetch_add(1, Ordering::AcqRel);
        let guard = self.shared.read();
        let seen = self.shared.version.load(Ordering::Acquire);
        drop(guard);
        Receiver {
            shared: self.shared.clone(),
            seen,
        }
    }

    /// How many receivers there are.
    pub fn receiver_count(&self) -> usize {
        self.shared.receivers.load(Ordering::Acquire)
    }

    /// How many senders there are.
    pub fn sender_count(&self) -> usize {
        self.shared.senders.load(Ordering::Acquire)
    }

    /// Whether both are of the same channel.
    pub fn same_channel(&self, other: &Sender<T>) -> bool {
        Arc::ptr_eq(&self.shared, &other.shared)
    }
}

impl<T> Clone for Sender<T> {
    fn clone(&self) -> Sender<T> {
        self.shared.senders.fetch_add(1, Ordering::Relaxed);
        Sender {
            shared: self.shared.clone(),
        }
    }
}

impl<T> Drop for Sender<T> {
    fn drop(&mut self) {
        if self.shared.senders.fetch_sub(1, Ordering::AcqRel) == 1 {
            self.shared.closed.store(true, Ordering::Release);
            self.shared.changed.notify_waiters();
        }
    }
}

impl<T: fmt::Debug> fmt::Debug for Sender<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Sender")
            .field("value", &*self.borrow())
            .finish()
    }
}

impl<T> Receiver<T> {
    /// The current value, without marking it seen.
    pub fn borrow(&self) -> Ref<'_, T> {
        let guard = self.shared.read();
        let version = self.shared.version.load(Ordering::Acquire);
        Ref {
            guard,
            has_changed: version != self.seen,
        }
    }

    /// The current value, marking it seen.
    pub fn borrow_and_update(&mut self) -> Ref<'_, T> {
        let guard = self.shared.read();
        let version = self.shared.version.load(Ordering::Acquire);
        let has_changed = version != self.seen;
        self.seen = version;
        Ref { guard, has_changed }
    }

    /// Whether there is a value this receiver has not seen. An error once every sender
    /// is gone (the last value can still be borrowed).
    pub fn has_changed(&self) -> Result<bool, RecvError> {
        if self.shared.closed.load(Ordering::Acquire) {
            return Err(RecvError(()));
        }
        Ok(self.shared.version.load(Ordering::Acquire) != self.seen)
    }

    /// Makes the current value count as unseen.
    pub fn mark_changed(&mut self) {
        self.seen = u64::MAX;
    }

    /// Makes the current value count as seen.
    pub fn mark_unchanged(&mut self) {
        self.seen = self.shared.version.load(Ordering::Acquire);
    }

    /// Waits for a value this receiver has not seen, and marks it seen (read it with
    /// [`borrow`](Self::borrow)). Returns at once if there is one already. An error once
    /// every sender is gone and the latest value was seen. Cancel-safe.
    pub async fn changed(&mut self) -> Result<(), RecvError> {
        let shared: &Shared<T> = &self.shared;
        loop {
            // Created before the check, so a change made between the check and the
            // `.await` still completes it.
            let notified = shared.changed.notified();
            let version = shared.version.load(Ordering::Acquire);
            if version != self.seen {
                self.seen = version;
                return Ok(());
            }
            if shared.closed.load(Ordering::Acquire) {
                return Err(RecvError(()));
            }
            notified.await;
        }
    }

    /// Waits until the value satisfies `f` (checking the current value first), marks
    /// it seen and returns it. An error if every sender goes before that.
    pub async fn wait_for(
        &mut self,
        mut f: impl FnMut(&T) -> bool,
    ) -> Result<Ref<'_, T>, RecvError> {
        let shared: &Shared<T> = &self.shared;
        loop {
            let notified = shared.changed.notified();
            // Loaded before the value: if the channel was closed then, this value is
            // the last one.
            let closed = shared.closed.load(Ordering::Acquire);
            {
                // In a block of its own: the guard must not live across the `.await`.
                let guard = shared.read();
                let version = shared.version.load(Ordering::Acquire);
                let has_changed = version != self.seen;
                self.seen = version;
                if f(&guard) {
                    return Ok(Ref { guard, has_changed });
                }
            }
            if closed {
                return Err(RecvError(()));
            }
            notified.await;
        }
    }

    /// Whether both are of the same channel.
    pub fn same_channel(&self, other: &Receiver<T>) -> bool {
        Arc::ptr_eq(&self.shared, &other.shared)
    }
}

impl<T> Clone for Receiver<T> {
    fn clone(&self) -> Receiver<T> {
        self.shared.receivers.fetch_add(1, Ordering::Relaxed);
        Receiver {
            shared: self.shared.clone(),
            seen: self.seen,
        }
    }
}

impl<T> Drop for Receiver<T> {
    fn drop(&mut self) {
        if self.shared.receivers.fetch_sub(1, Ordering::AcqRel) == 1 {
            self.shared.receivers_gone.notify_waiters();
        }
    }
}

impl<T: fmt::Debug> fmt::Debug for Receiver<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Receiver")
            .field("value", &*self.borrow())
            .finish()
    }
}
