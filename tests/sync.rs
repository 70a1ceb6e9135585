//! `epitome::sync`: `Notify` and `watch` (written here) in depth, and the re-exported
//! channels and locks as applications use them, across tasks on both runtimes.

mod util;

use std::future::Future;
use std::pin::pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::task::{Context, Poll, Waker};
use std::time::Duration;

use epitome::sync::{Barrier, Mutex, Notify, RwLock, Semaphore, broadcast, mpsc, oneshot, watch};
use epitome::task::yield_now;
use util::{on_both, spawn_spread};

/// Polls once with a no-op waker.
fn poll_once<F: Future + Unpin>(f: &mut F) -> Poll<F::Output> {
    let mut cx = Context::from_waker(Waker::noop());
    std::pin::Pin::new(f).poll(&mut cx)
}

#[test]
fn notify_one_without_waiter_leaves_one_permit() {
    let notify = Notify::new();
    notify.notify_one();
    notify.notify_one(); // still one permit
    let mut first = notify.notified();
    assert!(poll_once(&mut first).is_ready());
    let mut second = notify.notified();
    assert!(poll_once(&mut second).is_pending());
}

#[test]
fn notify_one_wakes_in_line_order_and_notify_last_from_the_back() {
    let notify = Notify::new();
    let mut a = notify.notified();
    let mut b = notify.notified();
    let mut c = notify.notified();
    assert!(poll_once(&mut a).is_pending());
    assert!(poll_once(&mut b).is_pending());
    assert!(poll_once(&mut c).is_pending());
    notify.notify_one();
    assert!(poll_once(&mut a).is_ready());
    assert!(poll_once(&mut b).is_pending());
    notify.notify_last();
    assert!(poll_once(&mut c).is_ready());
    assert!(poll_once(&mut b).is_pending());
}

#[test]
fn notify_waiters_completes_futures_created_before_even_unpolled() {
    let notify = Notify::new();
    let mut polled = notify.notified();
    assert!(poll_once(&mut polled).is_pending());
    let mut unpolled = notify.notified();
    notify.notify_waiters();
    let mut after = notify.notified();
    assert!(poll_once(&mut polled).is_ready());
    assert!(poll_once(&mut unpolled).is_ready());
    // No permit is left for a later waiter.
    assert!(poll_once(&mut after).is_pending());
}

#[test]
fn a_dropped_notified_passes_its_notify_one_on() {
    let notify = Notify::new();
    let mut a = notify.notified();
    let mut b = notify.notified();
    assert!(poll_once(&mut a).is_pending());
    assert!(poll_once(&mut b).is_pending());
    notify.notify_one(); // goes to `a`...
    drop(a); // ...which never takes it: `b` gets it
    assert!(poll_once(&mut b).is_ready());

    // With nobody else in line, it becomes the permit.
    let mut c = notify.notified();
    assert!(poll_once(&mut c).is_pending());
    notify.notify_one();
    drop(c);
    assert!(poll_once(&mut notify.notified()).is_ready());
}

#[test]
fn a_dropped_waiter_leaves_the_line() {
    let notify = Notify::new();
    let mut a = notify.notified();
    let mut b = notify.notified();
    assert!(poll_once(&mut a).is_pending());
    assert!(poll_once(&mut b).is_pending());
    drop(a); // not notified: just leaves
    notify.notify_one();
    assert!(poll_once(&mut b).is_ready());
}

#[test]
fn enable_joins_the_line_without_polling() {
    let notify = Notify::new();
    let mut enabled = pin!(notify.notified());
    assert!(!enabled.as_mut().enable());
    notify.notify_one();
    assert!(enabled.as_mut().enable()); // notified, and stays so for the poll
    let mut cx = Context::from_waker(Waker::noop());
    assert!(enabled.as_mut().poll(&mut cx).is_ready());
}

#[test]
fn notify_wakes_tasks_on_other_workers() {
    on_both(|| async {
        let notify = Arc::new(Notify::new());
        let woken = Arc::new(AtomicUsize::new(0));
        let (in_line_tx, in_line_rx) = mpsc::unbounded_channel();
        let mut tasks = Vec::new();
        for _ in 0..4 {
            let (notify, woken, in_line) = (notify.clone(), woken.clone(), in_line_tx.clone());
            tasks.push(spawn_spread(async move {
                let mut notified = pin!(notify.notified());
                notified.as_mut().enable();
                in_line.try_send(()).unwrap();
                notified.await;
                woken.fetch_add(1, Ordering::SeqCst);
            }));
        }
        for _ in 0..4 {
            in_line_rx.recv().await.unwrap();
        }
        // All four are in line: each notify_one wakes one of them.
        for _ in 0..4 {
            notify.notify_one();
        }
        for t in tasks {
            t.await.unwrap();
        }
        assert_eq!(woken.load(Ordering::SeqCst), 4);
    });
}

#[test]
fn watch_receivers_see_the_latest_value_and_the_close() {
    on_both(|| async {
        let (tx, mut rx) = watch::channel(0u32);
        assert_eq!(*rx.borrow(), 0);
        assert!(!rx.has_changed().unwrap());

        // Sent faster than looked at: the receiver sees the last.
        for n in 1..=5 {
            tx.send(n).unwrap();
        }
        assert!(rx.has_changed().unwrap());
        rx.changed().await.unwrap();
        assert_eq!(*rx.borrow_and_update(), 5);
        assert!(!rx.has_changed().unwrap());

        let observer = epitome::spawn({
            let mut rx = rx.clone();
            async move {
                let mut seen = Vec::new();
                while rx.changed().await.is_ok() {
                    seen.push(*rx.borrow_and_update());
                }
                seen
            }
        });
        yield_now().await;
        tx.send(6).unwrap();
        drop(tx);
        // Whatever it saw before, the observer ends with the last value, then the close.
        let seen = observer.await.unwrap();
        assert_eq!(seen.last(), Some(&6));
        // Closed: the value can still be read, `changed` and `has_changed` fail.
        assert!(rx.changed().await.is_ok()); // 6 was not seen by this receiver yet
        assert!(rx.changed().await.is_err());
        assert!(rx.has_changed().is_err());
        assert_eq!(*rx.borrow(), 6);
    });
}

#[test]
fn watch_send_needs_a_receiver_and_send_replace_does_not() {
    let (tx, rx) = watch::channel("a");
    drop(rx);
    assert!(tx.is_closed());
    assert_eq!(tx.send("b").unwrap_err().0, "b");
    assert_eq!(*tx.borrow(), "a");
    assert_eq!(tx.send_replace("c"), "a");
    assert_eq!(*tx.borrow(), "c");
    // A new receiver sees the stored value as already seen.
    let rx = tx.subscribe();
    assert!(!rx.has_changed().unwrap());
    assert_eq!(*rx.borrow(), "c");
    assert_eq!(tx.receiver_count(), 1);

    // A sender made on its own has no receiver until one subscribes.
    let tx = watch::Sender::new(1);
    assert!(tx.send(2).is_err());
    let rx = tx.subscribe();
    tx.send(3).unwrap();
    assert!(rx.has_changed().unwrap());
    assert_eq!(*rx.borrow(), 3);
}

#[test]
fn watch_modify_mark_and_wait_for() {
    on_both(|| async {
        let (tx, mut rx) = watch::channel(vec![1]);
        assert!(!tx.send_if_modified(|v| {
            v.clear();
            false // says nothing changed: no notification
        }));
        assert!(!rx.has_changed().unwrap());
        tx.send_modify(|v| v.push(2));
        assert!(rx.has_changed().unwrap());
        rx.mark_unchanged();
        assert!(!rx.has_changed().unwrap());
        rx.mark_changed();
        assert!(rx.has_changed().unwrap());
        assert!(rx.borrow_and_update().has_changed());

        let tx2 = tx.clone();
        assert_eq!(tx.sender_count(), 2);
        let setter = epitome::spawn(async move {
            for n in 3..=10 {
                yield_now().await;
                tx2.send_modify(|v| v.push(n));
            }
        });
        let len = rx.wait_for(|v| v.len() >= 6).await.unwrap().len();
        assert!(len >= 6);
        setter.await.unwrap();
        drop(tx);
        // The condition already holds: returns even though the channel is closed.
        assert!(rx.wait_for(|v| v.contains(&10)).await.is_ok());
        assert!(rx.wait_for(|v| v.is_empty()).await.is_err());
    });
}

#[test]
fn watch_sender_closed_resolves_when_receivers_go() {
    on_both(|| async {
        let (tx, rx) = watch::channel(());
        let rx2 = rx.clone();
        let dropper = epitome::spawn(async move {
            yield_now().await;
            drop(rx);
            yield_now().await;
            drop(rx2);
        });
        tx.closed().await;
        assert!(tx.is_closed());
        dropper.await.unwrap();
    });
}

#[test]
fn mpsc_carries_messages_across_workers_and_reports_closing() {
    on_both(|| async {
        let (tx, rx) = mpsc::channel::<u64>(4);
        let producers: Vec<_> = (0..4u64)
            .map(|p| {
                let tx = tx.clone();
                spawn_spread(async move {
                    for i in 0..250 {
                        tx.send(p * 1000 + i).await.unwrap();
                    }
                })
            })
            .collect();
        drop(tx);
        let mut sum = 0;
        let mut count = 0;
        while let Ok(v) = rx.recv().await {
            sum += v;
            count += 1;
        }
        assert_eq!(count, 1000);
        assert_eq!(sum, (0..4u64).map(|p| p * 1000 * 250 + 249 * 250 / 2).sum());
        for p in producers {
            p.await.unwrap();
        }
        // Closed the other way: every receiver gone, sending fails with the value.
        let (tx, rx) = mpsc::unbounded_channel();
        drop(rx);
        assert_eq!(tx.send(7).await.unwrap_err().0, 7);
        assert!(tx.try_send(8).is_err());
    });
}

#[test]
fn mpsc_bounded_channel_holds_back_senders_when_full() {
    let (tx, rx) = mpsc::channel(1);
    tx.try_send(1).unwrap();
    assert!(tx.try_send(2).unwrap_err().is_full());
    assert_eq!(rx.try_recv(), Ok(1));
    assert!(rx.try_recv().unwrap_err().is_empty());
}

#[test]
#[should_panic]
fn mpsc_channel_of_zero_capacity_panics_as_tokio() {
    let _ = mpsc::channel::<()>(0);
}

#[test]
fn oneshot_delivers_once_and_reports_a_dropped_sender() {
    on_both(|| async {
        let (tx, rx) = oneshot::channel();
        epitome::spawn(async move {
            tx.send("done").unwrap();
        });
        assert_eq!(rx.await, Ok("done"));

        let (tx, rx) = oneshot::channel::<()>();
        drop(tx);
        assert_eq!(rx.await, Err(oneshot::Canceled));

        let (tx, rx) = oneshot::channel::<u8>();
        drop(rx);
        assert!(tx.is_canceled());
        assert_eq!(tx.send(3), Err(3));
    });
}

#[test]
fn broadcast_reaches_every_receiver_and_reports_lag() {
    on_both(|| async {
        let (tx, rx) = broadcast::channel::<u32>(4);
        let (ack_tx, ack_rx) = mpsc::unbounded_channel();
        let listeners: Vec<_> = (0..3)
            .map(|_| {
                let (mut rx, ack_tx) = (rx.clone(), ack_tx.clone());
                spawn_spread(async move {
                    let mut got = Vec::new();
                    while let Ok(v) = rx.recv().await {
                        got.push(v);
                        ack_tx.try_send(()).unwrap();
                    }
                    got
                })
            })
            .collect();
        // `rx` itself never reads; with overflow on, the sender never waits for it.
        for n in 0..20 {
            tx.try_broadcast(n).unwrap();
            for _ in 0..3 {
                ack_rx.recv().await.unwrap();
            }
        }
        drop(tx);
        for l in listeners {
            assert_eq!(l.await.unwrap(), (0..20).collect::<Vec<_>>());
        }
        // The idle receiver lost all but the last four.
        let mut rx = rx;
        assert_eq!(rx.recv().await, Err(broadcast::RecvError::Overflowed(16)));
        assert_eq!(rx.recv().await, Ok(16));
    });
}

#[test]
fn mutex_rwlock_semaphore_barrier_across_tasks() {
    on_both(|| async {
        let counter = Arc::new(Mutex::new(0u32));
        let tasks: Vec<_> = (0..8)
            .map(|_| {
                let counter = counter.clone();
                spawn_spread(async move {
                    for _ in 0..100 {
                        let mut guard = counter.lock().await;
                        let v = *guard;
                        yield_now().await; // held across a yield: others must wait
                        *guard = v + 1;
                    }
                })
            })
            .collect();
        for t in tasks {
            t.await.unwrap();
        }
        assert_eq!(*counter.lock().await, 800);
        assert!(counter.try_lock().is_some());

        let lock = RwLock::new(1);
        let r1 = lock.read().await;
        let r2 = lock.read().await;
        assert!(lock.try_write().is_none());
        drop((r1, r2));
        *lock.write().await += 1;
        assert_eq!(*lock.read().await, 2);

        let permits = Arc::new(Semaphore::new(2));
        let in_use = Arc::new(AtomicUsize::new(0));
        let most = Arc::new(AtomicUsize::new(0));
        let tasks: Vec<_> = (0..6)
            .map(|_| {
                let (permits, in_use, most) = (permits.clone(), in_use.clone(), most.clone());
                spawn_spread(async move {
                    let _permit = permits.acquire_arc().await;
                    let now = in_use.fetch_add(1, Ordering::SeqCst) + 1;
                    most.fetch_max(now, Ordering::SeqCst);
                    epitome::time::sleep(Duration::from_millis(1)).await;
                    in_use.fetch_sub(1, Ordering::SeqCst);
                })
            })
            .collect();
        for t in tasks {
            t.await.unwrap();
        }
        assert!(most.load(Ordering::SeqCst) <= 2);
        assert_eq!(permits.available_permits(), 2);

        let barrier = Arc::new(Barrier::new(3));
        let tasks: Vec<_> = (0..3)
            .map(|_| {
                let barrier = barrier.clone();
                spawn_spread(async move { barrier.wait().await.is_leader() })
            })
            .collect();
        let mut leaders = 0;
        for t in tasks {
            leaders += t.await.unwrap() as usize;
        }
        assert_eq!(leaders, 1);
    });
}
