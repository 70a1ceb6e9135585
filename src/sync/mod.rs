//! Channels, locks and notifications for tasks, on any runtime or none.
//!
//! Where a well-kept runtime-free crate already does a job well, this module re-exports
//! it (as smol does) rather than growing a copy: channels from
//! [async-channel](https://docs.rs/async-channel) and
//! [async-broadcast](https://docs.rs/async-broadcast), locks from
//! [async-lock](https://docs.rs/async-lock), the one-shot channel from
//! [futures-channel](https://docs.rs/futures-channel). [`Notify`] and [`watch`], which no
//! such crate offers with tokio's semantics, are written here.
//!
//! | tokio | epitome | difference |
//! | --- | --- | --- |
//! | `mpsc::channel(n)` | [`mpsc::channel`] (= [`mpsc::bounded`]) | `recv()` gives `Result<T, RecvError>`, not `Option<T>`; receivers are clonable (MPMC) |
//! | `mpsc::unbounded_channel()` | [`mpsc::unbounded_channel`] (= [`mpsc::unbounded`]) | sending is `send(v).await` on both kinds (never waits on an unbounded one) or `try_send(v)` |
//! | `oneshot::channel()` | [`oneshot::channel`] | the receiver resolves to `Result<T, Canceled>`; `Sender::is_canceled` / `cancellation()` for `is_closed` / `closed()` |
//! | `broadcast::channel(n)` | [`broadcast::channel`] | send is `try_broadcast(v)` (sync) or `broadcast(v).await`; a lagging receiver gets `Overflowed(n)`; `subscribe()` is `new_receiver()` |
//! | `watch::channel(v)` | [`watch::channel`] | same API |
//! | `Notify` | [`Notify`] | same API; `Notified` is `Unpin` |
//! | `Mutex` | [`Mutex`] | `try_lock()` gives `Option`; `lock_owned()` is `lock_arc()` |
//! | `RwLock` | [`RwLock`] | `try_read()` / `try_write()` give `Option`; also upgradable reads |
//! | `Semaphore` | [`Semaphore`] | `acquire()` cannot fail (no `close()`); `try_acquire()` gives `Option`; `acquire_owned()` is `acquire_arc()`; no `acquire_many` |
//! | `Barrier` | [`Barrier`] | same API |
//! | `OnceCell` | [`OnceCell`] | `get_or_init` takes a closure returning a future, as tokio's |
//!
//! docs/toolkit.md has the full table, method by method.
//!
//! ```
//! use std::sync::Arc;
//! use epitome::sync::{Mutex, mpsc};
//!
//! let rt = epitome::runtime::Builder::new_current_thread().build().unwrap();
//! rt.block_on(async {
//!     let (tx, rx) = mpsc::channel(16);
//!     let total = Arc::new(Mutex::new(0));
//!     let adder = {
//!         let total = total.clone();
//!         epitome::spawn(async move {
//!             while let Ok(n) = rx.recv().await {
//!                 *total.lock().await += n;
//!             }
//!         })
//!     };
//!     for n in 1..=10 {
//!         tx.send(n).await.unwrap();
//!     }
//!     drop(tx); // closes the channel: the adder's loop ends
//!     adder.await.unwrap();
//!     assert_eq!(*total.lock().await, 55);
//! });
//! ```

mod notify;
pub mod watch;

pub use notify::{Notified, Notify};

pub use async_lock::{
    Barrier, BarrierWaitResult, Mutex, MutexGuard, MutexGuardArc, OnceCell, RwLock,
    RwLockReadGuard, RwLockReadGuardArc, RwLockUpgradableReadGuard, RwLockUpgradableReadGuardArc,
    RwLockWriteGuard, RwLockWriteGuardArc, Semaphore, SemaphoreGuard, SemaphoreGuardArc,
};

pub mod mpsc {
    //! Multi-producer channels, bounded and unbounded: [async-channel]'s, re-exported.
    //!
    //! Differences from tokio's `mpsc`:
    //!
    //! - `Receiver::recv()` resolves to `Result<T, RecvError>` (an error once the channel
    //!   is empty and every sender is gone), not `Option<T>`: write
    //!   `while let Ok(v) = rx.recv().await`.
    //! - Receivers can be cloned: each message goes to one of them (multi-consumer).
    //! - An unbounded channel is sent to with `send(v).await` (which never waits) or
    //!   `try_send(v)`, not a synchronous `send`.
    //! - The receiver is a `Stream`.
    //!
    //! [async-channel]: https://docs.rs/async-channel
    //!
    //! ```
    //! use epitome::sync::mpsc;
    //!
    //! let rt = epitome::runtime::Builder::new_current_thread().build().unwrap();
    //! rt.block_on(async {
    //!     let (tx, rx) = mpsc::unbounded_channel();
    //!     tx.try_send("hello").unwrap();
    //!     drop(tx);
    //!     assert_eq!(rx.recv().await, Ok("hello"));
    //!     assert!(rx.recv().await.is_err()); // empty, and no sender left
    //! });
    //! ```

    pub use async_channel::{
        Receiver, Recv, RecvError, Send, SendError, Sender, TryRecvError, TrySendError,
        WeakReceiver, WeakSender, bounded, unbounded,
    };

    /// A channel holding at most `buffer` messages: `send` waits while it is full.
    /// tokio's name for [`bounded`].
    ///
    /// # Panics
    ///
    /// If `buffer` is 0 (as tokio's).
    #[track_caller]
    pub fn channel<T>(buffer: usize) -> (Sender<T>, Receiver<T>) {
        bounded(buffer)
    }

    /// A channel without a limit: sending never waits. tokio's name for [`unbounded`].
    pub fn unbounded_channel<T>() -> (Sender<T>, Receiver<T>) {
        unbounded()
    }
}

pub mod oneshot {
    //! A channel for one value: [futures-channel]'s `oneshot`, re-exported.
    //!
    //! The receiver is a future resolving to `Result<T, Canceled>` (`Canceled` if the
    //! sender was dropped without sending); `Sender::send` gives the value back if the
    //! receiver is gone. tokio's `Sender::is_closed` / `closed()` are
    //! [`Sender::is_canceled`] / [`Sender::cancellation`], and `Receiver::try_recv`
    //! gives `Result<Option<T>, Canceled>`.
    //!
    //! [futures-channel]: https://docs.rs/futures-channel
    //!
    //! ```
    //! use epitome::sync::oneshot;
    //!
    //! let rt = epitome::runtime::Builder::new_current_thread().build().unwrap();
    //! rt.block_on(async {
    //!     let (tx, rx) = oneshot::channel();
    //!     epitome::spawn(async move {
    //!         let _ = tx.send(42);
    //!     });
    //!     assert_eq!(rx.await, Ok(42));
    //! });
    //! ```

    pub use futures_channel::oneshot::{Canceled, Cancellation, Receiver, Sender, channel};
}

pub mod broadcast {
    //! A multi-consumer channel where every receiver sees every message:
    //! [async-broadcast]'s, re-exported, and [`channel`] to make one that behaves as
    //! tokio's.
    //!
    //! Differences from tokio's `broadcast`:
    //!
    //! - Sending is [`Sender::try_broadcast`] (synchronous, as tokio's `send`) or
    //!   [`Sender::broadcast`]`.await`. A channel from [`channel`] never makes a sender
    //!   wait: when it is full the oldest message is dropped, and a receiver that had not
    //!   read it gets [`RecvError::Overflowed`]`(n)` (tokio's `Lagged(n)`) and then the
    //!   oldest message still held. A channel from [`broadcast()`] makes senders wait
    //!   instead, until every receiver has read.
    //! - `Sender::subscribe()` is [`Sender::new_receiver`] (or clone a receiver).
    //! - The channel closes when every sender *or every receiver* is dropped; keep an
    //!   [`InactiveReceiver`] (`receiver.deactivate()`) to keep it open with no active
    //!   receiver, and `activate_cloned()` it to subscribe.
    //!
    //! [async-broadcast]: https://docs.rs/async-broadcast
    //!
    //! ```
    //! use epitome::sync::broadcast::{self, RecvError};
    //!
    //! let rt = epitome::runtime::Builder::new_current_thread().build().unwrap();
    //! rt.block_on(async {
    //!     let (tx, mut rx1) = broadcast::channel(2);
    //!     let mut rx2 = rx1.clone();
    //!     tx.try_broadcast(1).unwrap();
    //!     assert_eq!(rx1.recv().await, Ok(1));
    //!     assert_eq!(rx2.recv().await, Ok(1));
    //!
    //!     // rx2 falls behind: the channel holds 2, the oldest is dropped for it.
    //!     for n in 2..=4 {
    //!         tx.try_broadcast(n).unwrap();
    //!     }
    //!     assert_eq!(rx2.recv().await, Err(RecvError::Overflowed(1)));
    //!     assert_eq!(rx2.recv().await, Ok(3));
    //! });
    //! ```

    pub use async_broadcast::{
        InactiveReceiver, Receiver, Recv, RecvError, Send, SendError, Sender, TryRecvError,
        TrySendError, broadcast,
    };

    /// A broadcast channel holding `capacity` messages that behaves as tokio's: sending
    /// never waits (a full channel drops its oldest message, and receivers that missed it
    /// get [`RecvError::Overflowed`]) and does not wait for a receiver to exist.
    ///
    /// # Panics
    ///
    /// If `capacity` is 0 (as tokio's).
    #[track_caller]
    pub fn channel<T>(capacity: usize) -> (Sender<T>, Receiver<T>) {
        let (mut tx, rx) = broadcast(capacity);
        tx.set_overflow(true);
        tx.set_await_active(false);
        (tx, rx)
    }
}
