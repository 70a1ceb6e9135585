//! Model 7: a worker's decision to park, raced by a remote spawn or a remote wake.
//!
//! The worker's loop is the runtime's in miniature: take the remote queue, run what is
//! there, and park (`Parker::park`) if the work is not done. Other threads queue work
//! with `RemoteQueue::push` and then `Parker::unpark`, exactly as
//! `WorkerShared::push_remote` does. The unpark eventfd is a loom semaphore behind the
//! `Wakeup` trait: a write adds a permit and wakes the sleeper; a sleep takes every
//! permit at once (the eventfd is edge-triggered and never read, so writes before a
//! wait wake it once). The worker must never sleep through queued work (loom reports
//! the deadlock), and it must see at most one eventfd write per park. A remote spawn,
//! a remote wake, and both at once.
use std::future::Future;
use std::ptr::NonNull;
use std::task::{Context, Poll, Waker};

use super::{PollFn, check};
use crate::scheduler::park::Parker;
use crate::scheduler::park::Wakeup;
use crate::scheduler::queue::RemoteQueue;
use crate::task_core::JoinHandle;
use crate::task_core::Notified;
use crate::task_core::Schedule;
use crate::task_core::header::Header;
use crate::task_core::new_task;
use loom::sync::atomic::{AtomicBool, AtomicUsize, Ordering::SeqCst};
use loom::sync::{Arc, Condvar, Mutex};
use loom::thread;

/// The unpark eventfd: a semaphore whose sleep takes every permit.
#[derive(Default)]
struct EventFdSem {
    permits: Mutex<usize>,
    cv: Condvar,
    writes: AtomicUsize,
}

impl Wakeup for EventFdSem {
    fn wake(&self) {
        self.writes.fetch_add(1, SeqCst);
        *self.permits.lock().unwrap() += 1;
        self.cv.notify_one();
    }
}

impl EventFdSem {
    /// The reactor's wait with no timeout, woken only by the eventfd.
    fn sleep(&self) {
        let mut permits = self.permits.lock().unwrap();
        while *permits == 0 {
            permits = self.cv.wait(permits).unwrap();
        }
        *permits = 0;
    }
}

struct Worker {
    remote: RemoteQueue,
    parker: Parker<EventFdSem>,
}

/// The worker as its tasks' scheduler: every schedule comes from another thread here.
#[derive(Clone)]
struct Remote(Arc<Worker>);

impl Schedule for Remote {
    fn schedule(&self, task: Notified) {
        // `WorkerShared::push_remote`.
        if self.0.remote.push(task).is_ok() {
            self.0.parker.unpark();
        }
    }
    fn release(&self, _: NonNull<Header>) -> bool {
        true
    }
}

fn new_worker() -> Remote {
    Remote(Arc::new(Worker {
        remote: RemoteQueue::default(),
        parker: Parker::new(EventFdSem::default()),
    }))
}

/// Runs the worker loop until `done`; returns how many times it slept.
fn run_worker(w: &Worker, done: &AtomicBool) -> usize {
    let mut parks = 0;
    loop {
        let mut queued = w.remote.take_all();
        while let Some(task) = queued.pop_front() {
            task.run();
        }
        if done.load(SeqCst) {
            return parks;
        }
        if w.parker.park(|| w.parker.wakeup().sleep()) {
            parks += 1;
        }
    }
}

/// A task that sets `done` when polled with `go` set (`go` None: at once).
fn task(
    done: &Arc<AtomicBool>,
    go: Option<Arc<AtomicBool>>,
    waker_slot: Arc<Mutex<Option<Waker>>>,
) -> impl Future<Output = ()> + Send + 'static {
    let done = done.clone();
    PollFn(move |cx: &mut Context<'_>| {
        if go.as_ref().is_none_or(|g| g.load(SeqCst)) {
            done.store(true, SeqCst);
            return Poll::Ready(());
        }
        *waker_slot.lock().unwrap() = Some(cx.waker().clone());
        Poll::Pending
    })
}

fn finish(worker: thread::JoinHandle<usize>, w: Remote, handle: JoinHandle<()>) {
    let parks = worker.join().unwrap();
    let writes = w.0.parker.wakeup().writes.load(SeqCst);
    assert!(
        writes <= parks,
        "{writes} eventfd writes for {parks} parks: not coalesced"
    );
    assert!(handle.is_finished());
}

#[test]
fn remote_spawn_vs_park() {
    check("park/remote_spawn", None, || {
        let w = new_worker();
        let done = Arc::new(AtomicBool::new(false));
        let worker = {
            let (w, done) = (w.clone(), done.clone());
            thread::spawn(move || run_worker(&w.0, &done))
        };
        let spawner = {
            let (w, done) = (w.clone(), done.clone());
            thread::spawn(move || {
                let (first, handle) = new_task(task(&done, None, Default::default()), w.clone());
                w.schedule(first);
                handle
            })
        };
        let handle = spawner.join().unwrap();
        finish(worker, w, handle);
    });
}

#[test]
fn remote_wake_vs_park() {
    check("park/remote_wake", None, || {
        let w = new_worker();
        let done = Arc::new(AtomicBool::new(false));
        let go = Arc::new(AtomicBool::new(false));
        let slot = Arc::new(Mutex::new(None));
        let (first, handle) = new_task(task(&done, Some(go.clone()), slot.clone()), w.clone());
        // The first poll, on the worker before the model starts racing: it parks the
        // task's waker, which another thread then uses.
        first.run();
        let waker = slot.lock().unwrap().take().expect("parked its waker");
        drop(slot);
        let worker = {
            let (w, done) = (w.clone(), done.clone());
            thread::spawn(move || run_worker(&w.0, &done))
        };
        let waker_thread = thread::spawn(move || {
            go.store(true, SeqCst);
            waker.wake();
        });
        waker_thread.join().unwrap();
        finish(worker, w, handle);
    });
}

#[test]
fn remote_spawn_and_wake_vs_park() {
    check("park/spawn_and_wake", Some(5), || {
        let w = new_worker();
        let done = Arc::new(AtomicBool::new(false));
        let woken_done = Arc::new(AtomicBool::new(false));
        let go = Arc::new(AtomicBool::new(false));
        let slot = Arc::new(Mutex::new(None));
        let (first, woken) = new_task(task(&woken_done, Some(go.clone()), slot.clone()), w.clone());
        first.run();
        let waker = slot.lock().unwrap().take().expect("parked its waker");
        drop(slot);
        // The worker is done once both tasks are.
        let all_done = Arc::new(AtomicBool::new(false));
        let worker = {
            let (w, all_done) = (w.clone(), all_done.clone());
            let (done, woken_done) = (done.clone(), woken_done.clone());
            thread::spawn(move || {
                let mut parks = 0;
                loop {
                    let mut queued = w.0.remote.take_all();
                    while let Some(task) = queued.pop_front() {
                        task.run();
                    }
                    if done.load(SeqCst) && woken_done.load(SeqCst) {
                        all_done.store(true, SeqCst);
                        return parks;
                    }
                    if w.0.parker.park(|| w.0.parker.wakeup().sleep()) {
                        parks += 1;
                    }
                }
            })
        };
        let spawner = {
            let (w, done) = (w.clone(), done.clone());
            thread::spawn(move || {
                let (first, handle) = new_task(task(&done, None, Default::default()), w.clone());
                w.schedule(first);
                handle
            })
        };
        go.store(true, SeqCst);
        waker.wake();
        let spawned = spawner.join().unwrap();
        finish(worker, w, spawned);
        assert!(all_done.load(SeqCst) && woken.is_finished());
    });
}

/// A worker woken by something other than a notify (an I/O event, a timer: its sleep
/// returns at once) looks for work and parks again while another thread notifies it:
/// the eventfd is written only if the worker went back to sleep (no needless wakeup of
/// a running worker), and then exactly once.
#[test]
fn notify_after_a_spurious_wakeup() {
    check("park/spurious_wakeup", None, || {
        let w = new_worker();
        assert!(
            w.0.parker.park(|| {}),
            "nothing notified: the worker sleeps"
        );
        let notifier = {
            let w = w.clone();
            thread::spawn(move || w.0.parker.unpark())
        };
        let slept = w.0.parker.park(|| w.0.parker.wakeup().sleep());
        notifier.join().unwrap();
        assert_eq!(
            w.0.parker.wakeup().writes.load(SeqCst),
            usize::from(slept),
            "the eventfd written for a worker that was awake, or not for one asleep"
        );
    });
}
