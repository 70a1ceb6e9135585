//! Test helpers: a hand-driven timer driver standing in for a worker loop, and wakers
//! that record their wakeups.

use crate::loom::os::sync::atomic::{AtomicUsize, Ordering};
use crate::loom::os::sync::{Arc, Mutex};
use std::future::Future;
use std::pin::{Pin, pin};
use std::task::{Context, Poll, Wake, Waker};
use std::time::Instant;

use super::driver::{self, TimerShared, Unpark};

/// SplitMix64: a tiny deterministic generator so every failure replays by seed.
pub(crate) struct Rng(pub(crate) u64);

impl Rng {
    pub(crate) fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    pub(crate) fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

/// Counts the driver's requests to wake its owner.
#[derive(Default)]
pub(crate) struct CountingUnpark(AtomicUsize);

impl CountingUnpark {
    pub(crate) fn count(&self) -> usize {
        self.0.load(Ordering::SeqCst)
    }
}

impl Unpark for CountingUnpark {
    fn unpark(&self) {
        self.0.fetch_add(1, Ordering::SeqCst);
    }
}

/// A timer driver installed as this thread's current one, driven by hand: the test
/// is the worker loop.
pub(crate) struct Harness {
    pub(crate) timer: Arc<TimerShared>,
    pub(crate) unpark: Arc<CountingUnpark>,
    previous: Option<Arc<TimerShared>>,
}

impl Harness {
    pub(crate) fn new() -> Harness {
        let unpark = Arc::new(CountingUnpark::default());
        let timer = TimerShared::new(unpark.clone());
        let previous = driver::set_current(Some(timer.clone()));
        Harness {
            timer,
            unpark,
            previous,
        }
    }

    /// One turn of a worker loop: wait until the wheel's next wake, then fire.
    ///
    /// # Panics
    ///
    /// If no timer is pending: the loop would wait forever.
    pub(crate) fn turn(&self) -> usize {
        let wake = self
            .timer
            .next_wake()
            .expect("no timer pending: a worker would wait forever");
        let now = Instant::now();
        if wake > now {
            crate::loom::os::thread::sleep(wake - now);
        }
        self.timer.fire_expired(Instant::now())
    }

    /// Polls `future` to completion, polling again only after it has been woken.
    pub(crate) fn block_on<F: Future>(&self, future: F) -> F::Output {
        let mut future = pin!(future);
        let rec = Recorder::new();
        loop {
            let seen = rec.wakes();
            if let Poll::Ready(out) = rec.poll(future.as_mut()) {
                return out;
            }
            while rec.wakes() == seen {
                self.turn();
            }
        }
    }
}

impl Drop for Harness {
    fn drop(&mut self) {
        driver::set_current(self.previous.take());
    }
}

/// The log shared by [`Recorder::logging`] wakers: (id, instant of the wake).
pub(crate) type WakeLog = Arc<Mutex<Vec<(usize, Instant)>>>;

struct Record {
    wakes: AtomicUsize,
    log: Option<(WakeLog, usize)>,
}

impl Wake for Record {
    fn wake(self: Arc<Self>) {
        self.wake_by_ref();
    }

    fn wake_by_ref(self: &Arc<Self>) {
        if let Some((log, id)) = &self.log {
            log.lock().push((*id, Instant::now()));
        }
        self.wakes.fetch_add(1, Ordering::SeqCst);
    }
}

/// A waker that counts its wakeups and, optionally, logs them with an id.
pub(crate) struct Recorder(Arc<Record>);

impl Recorder {
    pub(crate) fn new() -> Recorder {
        Recorder(Arc::new(Record {
            wakes: AtomicUsize::new(0),
            log: None,
        }))
    }

    pub(crate) fn shared_log() -> WakeLog {
        Arc::default()
    }

    pub(crate) fn logging(log: &WakeLog, id: usize) -> Recorder {
        Recorder(Arc::new(Record {
            wakes: AtomicUsize::new(0),
            log: Some((log.clone(), id)),
        }))
    }

    pub(crate) fn wakes(&self) -> usize {
        self.0.wakes.load(Ordering::SeqCst)
    }

    /// Strong references to the waker's state: this recorder's own, plus one per stored
    /// waker.
    pub(crate) fn waker_refs(&self) -> usize {
        Arc::strong_count(&self.0)
    }

    /// Polls `future` once with this recorder's waker.
    pub(crate) fn poll<F: Future + ?Sized>(&self, future: Pin<&mut F>) -> Poll<F::Output> {
        let waker = Waker::from(self.0.clone());
        future.poll(&mut Context::from_waker(&waker))
    }
}
