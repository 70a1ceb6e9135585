//! The synchronisation both contenders share, so neither runtime's own primitives
//! are part of what is compared: a countdown [`Latch`] and a [`oneshot`] channel,
//! each a `Mutex` and a `Waker` over `std`.

use std::future::Future;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Poll, Waker};

/// Counts down from N; one waiter is woken when it reaches zero.
pub(super) struct Latch {
    remaining: AtomicUsize,
    waiter: Mutex<Option<Waker>>,
}

impl Latch {
    pub(super) fn new(n: usize) -> Arc<Latch> {
        Arc::new(Latch {
            remaining: AtomicUsize::new(n),
            waiter: Mutex::new(None),
        })
    }

    pub(super) fn count_down(&self) {
        if self.remaining.fetch_sub(1, Ordering::AcqRel) == 1 {
            let waker = self.waiter.lock().unwrap_or_else(|e| e.into_inner()).take();
            if let Some(w) = waker {
                w.wake();
            }
        }
    }

    /// Completes once the count is zero.
    pub(super) fn wait(&self) -> impl Future<Output = ()> + '_ {
        std::future::poll_fn(move |cx| {
            if self.remaining.load(Ordering::Acquire) == 0 {
                return Poll::Ready(());
            }
            {
                let mut waiter = self.waiter.lock().unwrap_or_else(|e| e.into_inner());
                match &mut *waiter {
                    Some(w) => w.clone_from(cx.waker()),
                    None => *waiter = Some(cx.waker().clone()),
                }
            }
            // The last `count_down` may have looked for a waker before it was stored:
            // look again now that it is.
            if self.remaining.load(Ordering::Acquire) == 0 {
                Poll::Ready(())
            } else {
                Poll::Pending
            }
        })
    }
}

/// A single-value channel: one send, one receive; the receiver is a future.
pub(super) mod oneshot {
    use std::future::Future;
    use std::pin::Pin;
    use std::sync::{Arc, Mutex};
    use std::task::{Context, Poll, Waker};

    /// The sender went away without sending.
    #[derive(Debug)]
    pub(in super::super) struct Closed;

    enum Slot<T> {
        /// Nothing sent yet; the receiver's waker, once it has polled.
        Waiting(Option<Waker>),
        Sent(T),
        /// Received, or the sender dropped without sending.
        Done,
    }

    pub(in super::super) struct Sender<T>(Option<Arc<Mutex<Slot<T>>>>);
    pub(in super::super) struct Receiver<T>(Arc<Mutex<Slot<T>>>);

    pub(in super::super) fn channel<T>() -> (Sender<T>, Receiver<T>) {
        let slot = Arc::new(Mutex::new(Slot::Waiting(None)));
        (Sender(Some(slot.clone())), Receiver(slot))
    }

    impl<T> Sender<T> {
        /// Sends `value` (dropped if the receiver is gone).
        pub(in super::super) fn send(mut self, value: T) {
            if let Some(slot) = self.0.take() {
                finish(&slot, Slot::Sent(value));
            }
        }
    }

    impl<T> Drop for Sender<T> {
        fn drop(&mut self) {
            if let Some(slot) = self.0.take() {
                finish(&slot, Slot::Done);
            }
        }
    }

    fn finish<T>(slot: &Mutex<Slot<T>>, to: Slot<T>) {
        let prev = std::mem::replace(&mut *slot.lock().unwrap_or_else(|e| e.into_inner()), to);
        if let Slot::Waiting(Some(w)) = prev {
            w.wake();
        }
    }

    impl<T> Future for Receiver<T> {
        type Output = Result<T, Closed>;

        fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
            let mut slot = self.0.lock().unwrap_or_else(|e| e.into_inner());
            match &mut *slot {
                Slot::Waiting(waker) => {
                    match waker {
                        Some(w) => w.clone_from(cx.waker()),
                        None => *waker = Some(cx.waker().clone()),
                    }
                    Poll::Pending
                }
                Slot::Sent(_) => match std::mem::replace(&mut *slot, Slot::Done) {
                    Slot::Sent(v) => Poll::Ready(Ok(v)),
                    _ => unreachable!("matched as sent"),
                },
                Slot::Done => Poll::Ready(Err(Closed)),
            }
        }
    }
}
