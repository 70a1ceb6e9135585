//! The blocking pool: threads for `spawn_blocking` closures.
//!
//! The pool starts empty, adds a thread when a closure arrives and no thread is idle
//! (up to `max_threads`; beyond that closures wait in the queue), and lets a thread
//! exit after it has idled for `keep_alive`. Closures are tasks like any other (the
//! same `JoinHandle`), whose scheduler is this pool.

use std::future::Future;
use std::io;
use std::pin::Pin;
use std::ptr::NonNull;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use crate::loom::os::sync::{Arc, OnceLock, Weak};
use crate::loom::planted_bug;
use crate::loom::sync::{Condvar, Mutex, MutexGuard};
use crate::loom::thread;
use crate::task_core::header::{self, Header};
use crate::task_core::{JoinHandle, Notified, Schedule, TaskList, new_task};

pub(crate) type Callback = Arc<dyn Fn() + Send + Sync>;

/// Pool settings.
pub(crate) struct Config {
    pub(crate) max_threads: usize,
    pub(crate) keep_alive: Duration,
    pub(crate) thread_name: Arc<dyn Fn() -> String + Send + Sync>,
    pub(crate) stack_size: Option<usize>,
    pub(crate) on_start: Option<Callback>,
    pub(crate) on_stop: Option<Callback>,
}

/// The runtime a pool serves, as the pool sees it (the scheduler implements it): its
/// threads run closures with the runtime entered, so a closure can spawn on it and make
/// I/O sources and timers.
pub(crate) trait PoolRuntime: Send + Sync {
    /// Runs `f` on this thread with the runtime entered.
    fn run_entered(self: Arc<Self>, f: &mut dyn FnMut());
}

pub(crate) struct BlockingPool {
    shared: Arc<PoolShared>,
}

struct PoolShared {
    state: Mutex<State>,
    /// Idle threads wait here for work.
    work: Condvar,
    /// Shutdown waits here for threads to exit.
    exited: Condvar,
    config: Config,
    /// Set by the runtime so closures can reach `Handle::current()`.
    runtime: OnceLock<Weak<dyn PoolRuntime>>,
}

struct State {
    queue: TaskList,
    threads: usize,
    idle: usize,
    /// Wakeups handed to idle threads and not yet taken.
    notified: usize,
    /// Threads started for a closure that have not yet looked at the queue.
    starting: usize,
    shutdown: bool,
    /// Handles of the threads started, joined at shutdown (and pruned when new threads
    /// start) so no pool thread outlives the runtime.
    handles: Vec<thread::JoinHandle<()>>,
}

/// The scheduler handle of a blocking task.
#[derive(Clone)]
struct Scheduler(Arc<PoolShared>);

impl Schedule for Scheduler {
    fn schedule(&self, task: Notified) {
        self.0.push(task);
    }

    fn release(&self, _task: NonNull<Header>) -> bool {
        // Blocking tasks are on no owner list.
        false
    }
}

/// Runs the closure on its first (and only) poll.
struct BlockingTask<F>(Option<F>);

impl<F> Unpin for BlockingTask<F> {}

impl<F: FnOnce() -> R, R> Future for BlockingTask<F> {
    type Output = R;
    fn poll(mut self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<R> {
        match self.0.take() {
            Some(f) => Poll::Ready(f()),
            None => unreachable!("a blocking task is polled once: it never returns Pending"),
        }
    }
}

impl BlockingPool {
    pub(crate) fn new(config: Config) -> BlockingPool {
        BlockingPool {
            shared: Arc::new(PoolShared {
                state: Mutex::new(State {
                    queue: TaskList::default(),
                    threads: 0,
                    idle: 0,
                    notified: 0,
                    starting: 0,
                    shutdown: false,
                    handles: Vec::new(),
                }),
                work: Condvar::new(),
                exited: Condvar::new(),
                config,
                runtime: OnceLock::new(),
            }),
        }
    }

    pub(crate) fn set_runtime(&self, rt: Weak<dyn PoolRuntime>) {
        let _ = self.shared.runtime.set(rt);
    }

    pub(crate) fn spawn<F, R>(&self, f: F) -> JoinHandle<R>
    where
        F: FnOnce() -> R + Send + 'static,
        R: Send + 'static,
    {
        let (notified, handle) = new_task(BlockingTask(Some(f)), Scheduler(self.shared.clone()));
        // No owner list: drop the reference reserved for one.
        // SAFETY: `new_task` counted a reference for the owner list, which we own.
        unsafe { header::drop_reference(notified.as_ptr()) };
        self.shared.push(notified);
        handle
    }

    /// Threads currently in the pool.
    pub(crate) fn threads(&self) -> usize {
        self.shared.lock().threads
    }

    /// Idle threads.
    pub(crate) fn idle_threads(&self) -> usize {
        self.shared.lock().idle
    }

    /// Closures waiting for a thread.
    pub(crate) fn queue_depth(&self) -> usize {
        self.shared.lock().queue.len()
    }

    /// Stops accepting work, cancels the queued closures no thread was committed to,
    /// and waits up to `timeout` (or for ever) for the others and running closures to
    /// finish. Returns whether every thread exited.
    ///
    /// A closure a thread was started or woken for runs even if that thread gets to it
    /// after shutdown began (as with tokio: such a closure has in effect started); one
    /// waiting for a thread at `max_blocking_threads` is cancelled.
    pub(crate) fn shutdown(&self, timeout: Option<Duration>) -> bool {
        let deadline = timeout.and_then(|t| Instant::now().checked_add(t));
        let mut state = self.shared.lock();
        state.shutdown = true;
        let committed = state.starting + state.notified;
        let mut queued = std::mem::take(&mut state.queue);
        for _ in 0..committed {
            match queued.pop_front() {
                Some(task) => state.queue.push_back(task),
                None => break,
            }
        }
        self.shared.work.notify_all();
        drop(state);
        while let Some(task) = queued.pop_front() {
            planted_bug!(
                "queued_closure_not_cancelled",
                // The entry is dropped uncancelled: the closure is never run nor
                // dropped, and its handle waits for ever.
                bug: drop(task),
                code: cancel_queued(task),
            );
        }
        let mut state = self.shared.lock();
        let all_exited = loop {
            if state.threads == 0 {
                break true;
            }
            match deadline {
                None => state = self.shared.exited.wait(state),
                Some(d) => {
                    let now = Instant::now();
                    if now >= d {
                        break false;
                    }
                    let (s, _) = self.shared.exited.wait_timeout(state, d - now);
                    state = s;
                }
            }
        };
        // Every counted-out thread has only its return left: join those (all of them
        // when all exited; after a timeout, the ones already finished).
        let handles = std::mem::take(&mut state.handles);
        drop(state);
        for h in handles {
            if all_exited || thread::is_finished(&h) {
                let _ = h.join();
            }
        }
        all_exited
    }
}

/// Cancels a queued blocking task without running its closure.
fn cancel_queued(task: Notified) {
    let ptr = task.as_ptr();
    // SAFETY: the entry keeps the task live; `shutdown` claims and cancels it.
    unsafe { (ptr.as_ref().vtable.shutdown)(ptr) };
    drop(task);
}

impl PoolShared {
    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock()
    }

    fn push(self: &Arc<Self>, task: Notified) {
        let mut state = self.lock();
        if state.shutdown {
            drop(state);
            cancel_queued(task);
            return;
        }
        state.queue.push_back(task);
        if state.idle > state.notified {
            state.notified += 1;
            planted_bug!(
                "pool_no_notify",
                // Counted as handed to an idle thread, which sleeps on.
                bug: (),
                code: self.work.notify_one(),
            );
        } else if state.threads < self.config.max_threads {
            state.threads += 1;
            state.starting += 1;
            drop(state);
            if let Err(e) = self.spawn_thread() {
                // No thread: the closure stays queued for an existing thread, if any.
                let mut state = self.lock();
                state.threads -= 1;
                state.starting -= 1;
                if state.threads == 0 {
                    // Nothing will ever run it: fail it rather than hang its awaiter.
                    let mut queued = std::mem::take(&mut state.queue);
                    drop(state);
                    while let Some(task) = queued.pop_front() {
                        cancel_queued(task);
                    }
                }
                let _ = e;
            }
        }
    }

    fn spawn_thread(self: &Arc<Self>) -> io::Result<()> {
        let mut builder = thread::Builder::new().name((self.config.thread_name)());
        if let Some(size) = self.config.stack_size {
            builder = builder.stack_size(size);
        }
        let shared = self.clone();
        let handle = builder.spawn(move || shared.run())?;
        let mut state = self.lock();
        // Threads that shrank away are finished: reap them so the list stays short.
        let (done, live): (Vec<_>, Vec<_>) = std::mem::take(&mut state.handles)
            .into_iter()
            .partition(thread::is_finished);
        state.handles = live;
        state.handles.push(handle);
        drop(state);
        for h in done {
            let _ = h.join();
        }
        Ok(())
    }

    fn run(self: Arc<Self>) {
        let rt = self.runtime.get().and_then(Weak::upgrade);
        let mut work = || {
            if let Some(f) = &self.config.on_start {
                f();
            }
            self.serve();
        };
        match rt {
            Some(rt) => rt.run_entered(&mut work),
            None => work(),
        }
        // The runtime's context (its `Arc`) is left: run the stop hook before counting
        // this thread out, so a shutdown that sees zero threads is really done with them.
        if let Some(f) = &self.config.on_stop {
            f();
        }
        let mut state = self.lock();
        state.threads -= 1;
        drop(state);
        self.exited.notify_all();
    }

    fn serve(&self) {
        let mut state = self.lock();
        // This thread was started for a queued closure: it takes one now (under this
        // same lock), so it no longer counts as committed.
        state.starting -= 1;
        loop {
            if let Some(task) = state.queue.pop_front() {
                drop(state);
                task.run();
                state = self.lock();
                continue;
            }
            if state.shutdown {
                break;
            }
            state.idle += 1;
            let (s, timed_out) = self.work.wait_timeout(state, self.config.keep_alive);
            state = s;
            state.idle -= 1;
            if state.notified > 0 {
                state.notified -= 1;
            } else if timed_out && state.queue.is_empty() {
                // Idle for `keep_alive`: shrink.
                break;
            }
        }
        drop(state);
    }
}
