//! A task that never yields stalls its own worker, but never the reactor: another
//! worker of a multi-reactor runtime stands in, so I/O events and timers of the stuck
//! worker still reach tasks on other workers.

use std::future::{Future, poll_fn};
use std::io::Write;
use std::os::unix::net::UnixStream;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc;
use std::task::Poll;
use std::time::Duration;

use epitome_runtime::io::Async;
use epitome_runtime::runtime::Builder;
use epitome_runtime::task::yield_now;
use epitome_runtime::time;

#[test]
fn a_stuck_worker_s_sources_and_timers_are_served_by_another() {
    let rt = Builder::new_multi_reactor().reactors(2).build().unwrap();
    let stop = Arc::new(AtomicBool::new(false));
    let (tx, rx) = mpsc::channel();
    let (done_tx, done_rx) = mpsc::channel();
    let spinner_stop = stop.clone();
    // Spawned first from outside: lands on worker 0.
    let spinner = rt.spawn(async move {
        let (r, w) = UnixStream::pair().unwrap();
        let r = Async::new(r).unwrap();
        // Register a timer on this worker's wheel by polling it once here.
        let mut sleep = time::sleep(Duration::from_millis(50));
        poll_fn(|cx| {
            let _ = Pin::new(&mut sleep).poll(cx);
            Poll::Ready(())
        })
        .await;
        tx.send((r, w, sleep)).unwrap();
        // Never yield until told to stop.
        while !spinner_stop.load(Ordering::Acquire) {
            std::hint::spin_loop();
        }
    });
    // Spawned second: lands on worker 1.
    let waiter = rt.spawn(async move {
        let (r, mut w, sleep) = loop {
            if let Ok(x) = rx.try_recv() {
                break x;
            }
            yield_now().await;
        };
        w.write_all(b"x").unwrap();
        // The event lands on the stuck worker's reactor.
        r.readable().await.unwrap();
        // The timer fires on the stuck worker's wheel.
        sleep.await;
        done_tx.send(()).unwrap();
        drop(r);
    });
    let served = done_rx.recv_timeout(Duration::from_secs(20));
    stop.store(true, Ordering::Release);
    assert!(
        served.is_ok(),
        "the stuck worker's reactor was never polled by the other worker"
    );
    rt.block_on(async {
        spinner.await.unwrap();
        waiter.await.unwrap();
    });
}
