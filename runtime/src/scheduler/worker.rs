//! A worker: one thread, one reactor (its own `EventPoll` over its own kernel epoll
//! instance), one run queue, one timer wheel. The current-thread runtime is one worker
//! driven by `block_on`; the multi-reactor runtime is several, each on its own thread.
//!
//! # Who touches what
//!
//! - [`WorkerShared`] is reached from any thread (task wakers hold it): the remote
//!   queue (locked), the park state (atomic), the unpark eventfd, the metrics
//!   (atomics), the reactor handle (`EventPoll` is `Sync`).
//! - [`WorkerLocal`] lives on the worker's own thread while it runs: the local run
//!   queue and the list of owned tasks, reached from wakers and `spawn` on that thread
//!   through the thread-local context, never across threads.
//! - [`Core`] holds the `WorkerLocal` and the reactor's event buffer; whichever
//!   thread drives the worker holds the `Core` (for a current-thread runtime it moves
//!   between `block_on` calls, with the task list and queue in it).

use std::future::Future;
use std::io;
use std::ptr::NonNull;
use std::task::{Context, Poll, Wake, Waker};
use std::time::{Duration, Instant};

use super::metrics::WorkerMetrics;
use super::owned::OwnedTasks;
use super::park::Parker;
use super::queue::{LocalQueue, RemoteQueue};
use crate::coop;
use crate::loom::CellExt;
use crate::loom::os::cell::{Cell, RefCell};
use crate::loom::os::sync::{Arc, Weak};
use crate::loom::sync::atomic::{AtomicBool, Ordering};
use crate::reactor::{self, Driver, ReactorHandle};
#[cfg(not(all(test, epitome_loom)))]
use crate::sys::eventfd::EventFd;
use crate::task_core::header::Header;
use crate::task_core::{JoinHandle, Notified, Schedule, new_task};
use crate::time::{TimerShared, Unpark};

/// The part of a worker other threads reach.
pub(crate) struct WorkerShared {
    remote: RemoteQueue,
    /// The park state and the unpark eventfd.
    parker: Parker<UnparkFd>,
    /// The reactor: sources register here; deregistration may come from any thread.
    pub(crate) reactor: crate::loom::sync::Arc<ReactorHandle>,
    pub(crate) timer: Arc<TimerShared>,
    pub(crate) metrics: WorkerMetrics,
    /// `block_on`'s own future was woken (current-thread runtime).
    main_woken: AtomicBool,
    /// The runtime is shutting down: leave the loop.
    pub(crate) shutdown: AtomicBool,
    /// The worker is inside a task's poll (set around every poll, by the owner).
    in_poll: AtomicBool,
    /// The worker is awake (not asleep in its reactor), by the owner.
    awake: AtomicBool,
}

/// The worker's unpark eventfd; in the loom models' build, a fake one of its reactor's
/// fake kernel, so a model runs the worker's own functions.
#[cfg(not(all(test, epitome_loom)))]
type UnparkFd = EventFd;
#[cfg(all(test, epitome_loom))]
type UnparkFd = crate::reactor::ModelUnpark;

/// How often a worker with nothing to do looks at its siblings while one of them is
/// awake, to stand in for a sibling stuck in a task that never yields.
const ASSIST_INTERVAL: Duration = Duration::from_millis(10);

/// The worker's unpark, as the timer wheel sees it.
struct TimerUnpark(Weak<WorkerShared>);

impl Unpark for TimerUnpark {
    fn unpark(&self) {
        if let Some(w) = self.0.upgrade() {
            crate::loom::planted_bug!(
                "timer_unpark_lost",
                // A timer registered from another thread leaves the worker asleep.
                bug: drop(w),
                code: w.unpark(),
            );
        }
    }
}

impl WorkerShared {
    pub(crate) fn new() -> io::Result<(Arc<WorkerShared>, Core)> {
        #[cfg(not(all(test, epitome_loom)))]
        let (driver, reactor, unpark_fd) = {
            let unpark_fd = EventFd::new()?;
            let (driver, reactor) = Driver::new(&unpark_fd)?;
            (driver, reactor, unpark_fd)
        };
        #[cfg(all(test, epitome_loom))]
        let (driver, reactor, unpark_fd) = Driver::new_model();
        let shared = Arc::new_cyclic(|weak: &Weak<WorkerShared>| WorkerShared {
            remote: RemoteQueue::default(),
            parker: Parker::new(unpark_fd),
            reactor,
            timer: TimerShared::new(Arc::new(TimerUnpark(weak.clone()))),
            metrics: WorkerMetrics::default(),
            main_woken: AtomicBool::new(false),
            shutdown: AtomicBool::new(false),
            in_poll: AtomicBool::new(false),
            awake: AtomicBool::new(true),
        });
        let local = WorkerLocal {
            shared: shared.clone(),
            queue: LocalQueue::default(),
            owned: OwnedTasks::default(),
            pinned: Cell::new(None),
            lend_to: RefCell::new(None),
            lent: Cell::new(false),
            took_remote: Cell::new(false),
        };
        Ok((
            shared,
            Core {
                siblings: RefCell::new(Vec::new()),
                assist: RefCell::new((Vec::new(), Vec::new(), Vec::new())),
                local,
                driver: RefCell::new(driver),
                tick: Cell::new(0),
            },
        ))
    }

    /// Wakes the worker if it sleeps (at most one eventfd write per sleep).
    pub(crate) fn unpark(&self) {
        self.parker.unpark();
    }

    /// Queues a task from another thread. A closed queue (shutdown) gives it back.
    pub(crate) fn push_remote(&self, task: Notified) -> Result<(), Notified> {
        self.remote.push(task)?;
        self.metrics
            .remote_schedules
            .fetch_add(1, Ordering::Relaxed);
        crate::loom::planted_bug!(
            "push_remote_no_unpark",
            // Queued, but a parked worker sleeps on.
            bug: (),
            code: self.unpark(),
        );
        Ok(())
    }

    /// Tasks waiting in the remote queue (for metrics).
    pub(crate) fn remote_depth(&self) -> usize {
        self.remote.len()
    }

    /// Whether the worker is awake, not asleep in its reactor (for metrics).
    pub(crate) fn is_awake(&self) -> bool {
        self.awake.load(Ordering::Relaxed)
    }

    fn is_current(self: &Arc<Self>, local: &WorkerLocal) -> bool {
        crate::loom::planted_bug!(
            "wake_onto_another_worker",
            // A wake of another worker's task on this worker's thread queues it here:
            // this worker runs a task it does not own, and its owner is never unparked.
            bug: true,
            code: Arc::ptr_eq(self, &local.shared),
        )
    }

    /// The park state and unpark eventfd (for the loom models, which count its writes).
    #[cfg(all(test, epitome_loom))]
    pub(crate) fn parker(&self) -> &Parker<UnparkFd> {
        &self.parker
    }
}

impl Schedule for Arc<WorkerShared> {
    fn schedule(&self, task: Notified) {
        let done = with_worker(|w| match w {
            Some(local) if self.is_current(local) => {
                local.queue.push(task);
                self.metrics.local_schedules.incr_local();
                None
            }
            _ => Some(task),
        });
        if let Some(task) = done {
            // Refused only at shutdown, once the worker has cancelled its tasks: the
            // wake is moot, so the entry's reference is simply dropped.
            let _ = self.push_remote(task);
        }
    }

    fn release(&self, task: NonNull<Header>) -> bool {
        self.metrics.completed.fetch_add(1, Ordering::Relaxed);
        with_worker(|w| match w {
            // SAFETY: tasks complete on their owner's thread, where the list lives.
            Some(local) if self.is_current(local) => unsafe { local.owned.remove(task) },
            // An unbound task cancelled by the thread that tried to spawn it.
            _ => false,
        })
    }
}

/// The worker's thread-local part, alive while the worker runs on this thread.
pub(crate) struct WorkerLocal {
    pub(crate) shared: Arc<WorkerShared>,
    pub(crate) queue: LocalQueue,
    pub(crate) owned: OwnedTasks,
    /// The thread that spawned `!Send` tasks here (`spawn_local`): this worker may only
    /// be driven, or shut down, on that thread from then on.
    pub(crate) pinned: Cell<Option<crate::loom::os::thread::ThreadId>>,
    /// The runtime whose blocking pool may stand in for this worker while one of its
    /// tasks blocks in `block_in_place` (set for multi-reactor workers only).
    pub(crate) lend_to: RefCell<Option<Weak<super::RuntimeShared>>>,
    /// A stand-in thread drives this worker for a task blocked in `block_in_place`:
    /// `spawn_local` is refused (its task would be pinned to the stand-in's thread).
    pub(crate) lent: Cell<bool>,
    /// Tasks came through the remote queue since the worker last parked.
    took_remote: Cell<bool>,
}

/// A worker's loop state, held by whichever thread drives the worker.
pub(crate) struct Core {
    pub(crate) local: WorkerLocal,
    driver: RefCell<Driver>,
    tick: Cell<u32>,
    /// The other workers of a multi-reactor runtime, and the poll count each had when
    /// this worker last looked (see [`Core::assist_siblings`]).
    siblings: RefCell<Vec<(Arc<WorkerShared>, u64)>>,
    /// Buffers for standing in for a sibling's reactor.
    assist: RefCell<(
        Vec<crate::eventpoll::Event>,
        Vec<Waker>,
        Vec<crate::reactor::scheduled_io::UnclaimedHook>,
    )>,
}

impl WorkerLocal {
    /// Spawns a task owned by this worker, on this thread.
    pub(crate) fn spawn<F>(&self, future: F) -> JoinHandle<F::Output>
    where
        F: Future + 'static,
        F::Output: 'static,
    {
        let (notified, handle) = new_task(future, self.shared.clone());
        // SAFETY: on the owner's thread, a new task: the list takes its reference.
        unsafe { self.owned.insert(notified.as_ptr()) };
        self.shared.metrics.spawned.fetch_add(1, Ordering::Relaxed);
        self.queue.push(notified);
        handle
    }

    fn run_task(&self, task: Notified) {
        // SAFETY: `bound` is an owner-thread field and this is the owner's thread.
        let bound = unsafe { task.header().bound.read() };
        if !bound {
            // Spawned from another thread: the list takes the reference reserved for it.
            // SAFETY: as above; a new task.
            unsafe { self.owned.insert(task.as_ptr()) };
        }
        self.shared.metrics.polls.incr_local();
        self.shared.in_poll.store(true, Ordering::Release);
        // A task's poll catches its future's panics, so nothing unwinds through here.
        coop::start_task_poll();
        task.run();
        coop::end_task_poll();
        self.shared.in_poll.store(false, Ordering::Release);
        reactor::context::pass_batons();
    }

    /// A task's poll goes on after its worker was lent and taken back
    /// (`block_in_place`): the stand-in's polls cleared the flag.
    pub(crate) fn resume_poll(&self) {
        self.shared.in_poll.store(true, Ordering::Release);
    }

    fn take_remote(&self) -> bool {
        let mut list = self.shared.remote.take_all();
        if list.is_empty() {
            return false;
        }
        self.queue.append(&mut list);
        self.took_remote.set(true);
        true
    }

    /// Runs up to `budget` tasks; returns how many ran.
    fn run_tasks(&self, budget: u32) -> u32 {
        let mut n = 0;
        while n < budget {
            let task = match self.queue.pop() {
                Some(t) => t,
                None => {
                    if !self.take_remote() {
                        break;
                    }
                    match self.queue.pop() {
                        Some(t) => t,
                        None => break,
                    }
                }
            };
            self.run_task(task);
            n += 1;
            if self.shared.main_woken.load(Ordering::Relaxed) {
                break;
            }
        }
        let forced = coop::take_forced_yields();
        if forced > 0 {
            self.shared
                .metrics
                .forced_yields
                .fetch_add(forced, Ordering::Relaxed);
        }
        n
    }

    /// Cancels every task this worker owns and every task queued for it, on this
    /// thread. Wakes that arrive later are dropped by the closed remote queue.
    pub(crate) fn shutdown(&self) {
        let mut remote = self.shared.remote.close();
        self.queue.append(&mut remote);
        self.owned.cancel_all(&self.queue);
        // Sources and timers still held outside any task: their waiters learn the
        // runtime is gone, and the wheel lets go of wakers (which hold tasks, which may
        // hold the wheel).
        self.shared.reactor.shutdown();
        self.shared.timer.shutdown();
    }
}

impl Core {
    /// One reactor turn: waits up to `timeout` for events, dispatches them, fires
    /// expired timers, and collects remote work.
    fn turn(&self, timeout: Option<Duration>) {
        let local = &self.local;
        let next_timer = local.shared.timer.next_wake();
        let timeout = match (timeout, next_timer) {
            (Some(t), _) if t.is_zero() => Some(t),
            (t, Some(at)) => {
                let until = at.saturating_duration_since(Instant::now());
                Some(t.map_or(until, |t| t.min(until)))
            }
            (t, None) => t,
        };
        // Counted before the events are dispatched, so a task they wake sees them
        // counted. An error (not EINTR, which the driver absorbs) would be a bug in the
        // reactor's own fds; keep serving rather than spin or die.
        let _ = self
            .driver
            .borrow_mut()
            .turn(timeout, |n| local.shared.metrics.count_wait(n));
        // With no timer pending before the wait, none can be due after it: a timer
        // registered meanwhile unparks this worker, and the next turn fires it.
        // Skipping the clock read and the wheel's lock is most of a turn's cost on a
        // server without timers.
        if next_timer.is_some() {
            local.shared.timer.fire_expired(Instant::now());
        }
        local.take_remote();
    }

    /// Sleeps in the reactor unless work is pending.
    fn park(&self) {
        let shared = &self.local.shared;
        if !self.local.queue.is_empty()
            || shared.main_woken.load(Ordering::Acquire)
            || shared.shutdown.load(Ordering::Acquire)
        {
            self.turn(Some(Duration::ZERO));
            return;
        }
        // Remote work came in since the last park, so more is likely on its way from a
        // thread spawning a burst. If that thread shares this CPU, parking now would
        // have each of its spawns write the unpark eventfd and switch to this worker
        // for one task (the scheduler benchmark's spawn_many measured one write per
        // spawn). Yield the CPU once first, and look again.
        if self.local.took_remote.replace(false) {
            std::thread::yield_now();
            if self.local.take_remote() {
                return;
            }
        }
        // While a sibling is awake it may get stuck in a task that never yields; sleep
        // in short stretches then, to stand in for it (the reactor of a stuck worker is
        // still polled, by another worker).
        let timeout = crate::loom::planted_bug!(
            "no_timed_sleep_beside_siblings",
            // Sleeps until woken even beside an awake sibling that may get stuck.
            bug: false,
            code: self.any_sibling_awake(),
        )
        .then_some(ASSIST_INTERVAL);
        let slept = shared.parker.park(|| {
            shared.metrics.parks.incr_local();
            shared.awake.store(false, Ordering::Release);
            self.turn(timeout);
            shared.awake.store(true, Ordering::Release);
        });
        if !slept {
            self.turn(Some(Duration::ZERO));
        }
        self.assist_siblings();
    }

    /// The other workers of this multi-reactor runtime.
    pub(crate) fn set_siblings(&self, siblings: impl IntoIterator<Item = Arc<WorkerShared>>) {
        *self.siblings.borrow_mut() = siblings.into_iter().map(|s| (s, u64::MAX)).collect();
    }

    fn any_sibling_awake(&self) -> bool {
        self.siblings
            .borrow()
            .iter()
            .any(|(s, _)| s.awake.load(Ordering::Acquire))
    }

    /// Stands in for siblings stuck in one task poll since this worker last looked (at
    /// least [`ASSIST_INTERVAL`] ago): takes their reactor's events without blocking,
    /// waking those events' waiters, and fires their expired timers. Tasks woken here
    /// that belong to the stuck worker wait for it; tasks on other workers, waiting on
    /// its sources or timers, go on.
    pub(crate) fn assist_siblings(&self) {
        let mut siblings = self.siblings.borrow_mut();
        if siblings.is_empty() {
            return;
        }
        let mut assist = self.assist.borrow_mut();
        let (events, wake, unclaimed) = &mut *assist;
        for (sibling, last_polls) in siblings.iter_mut() {
            let polls = sibling.metrics.polls.get();
            let stuck = sibling.in_poll.load(Ordering::Acquire) && polls == *last_polls;
            *last_polls = polls;
            if !stuck {
                continue;
            }
            if events.is_empty() {
                events.resize(256, crate::eventpoll::Event::default());
            }
            // Counted as this worker's wait: the events are taken here, and only this
            // thread writes its own counters.
            let taken = sibling
                .reactor
                .turn_into(events, wake, unclaimed, Some(Duration::ZERO), |n| {
                    self.local.shared.metrics.count_wait(n)
                })
                .unwrap_or(0);
            // A wakeup of the sibling's own sleep is not ours to take: it means the
            // sibling parked after it looked stuck (the unpark eventfd is written only
            // for a parked worker). Taken here, its edge is gone and the sibling would
            // sleep through it: write it again.
            if events[..taken]
                .iter()
                .any(|e| e.data == crate::reactor::UNPARK_TOKEN)
            {
                sibling.parker.repost();
            }
            sibling.timer.fire_expired(Instant::now());
        }
    }

    /// The scheduling loop, until `done` says to stop.
    ///
    /// Runs up to `event_interval` tasks between reactor turns, so a busy local queue
    /// never starves I/O, timers or remote work; sleeps in the reactor when idle.
    pub(crate) fn run_loop(&self, event_interval: u32, mut done: impl FnMut() -> bool) {
        loop {
            if done() {
                return;
            }
            let ran = self
                .local
                .run_tasks(event_interval - self.tick.get().min(event_interval - 1));
            // `tick` counts tasks run since the last reactor turn.
            self.tick.set(self.tick.get() + ran);
            if done() {
                return;
            }
            if self.local.queue.is_empty() {
                // Out of work: sleep in the reactor (or just look, if woken meanwhile).
                self.tick.set(0);
                self.park();
            } else if self.tick.get() >= event_interval {
                // Still busy after `event_interval` tasks: a non-blocking turn so
                // events, timers and remote work are not starved.
                self.tick.set(0);
                self.turn(Some(Duration::ZERO));
            }
            // Otherwise the batch stopped early (`block_on`'s future was woken): poll
            // it and go on with the queue, without a reactor turn per task.
        }
    }

    /// Drives `future` to completion on this worker (the current-thread runtime's
    /// `block_on`, once its thread holds the core).
    pub(crate) fn block_on<F: Future>(
        &self,
        event_interval: u32,
        mut future: std::pin::Pin<&mut F>,
    ) -> F::Output {
        let shared = self.local.shared.clone();
        let waker = Waker::from(Arc::new(MainWaker(shared.clone())));
        let mut cx = Context::from_waker(&waker);
        shared.main_woken.store(true, Ordering::Release);
        let mut output = None;
        self.run_loop(event_interval, || {
            if output.is_some() {
                return true;
            }
            if shared.main_woken.swap(false, Ordering::AcqRel) {
                let polled = coop::with_budget(|| future.as_mut().poll(&mut cx));
                reactor::context::pass_batons();
                if let Poll::Ready(out) = polled {
                    output = Some(out);
                    return true;
                }
            }
            false
        });
        match output {
            Some(out) => out,
            None => unreachable!("the loop only stops once the future is ready"),
        }
    }

    /// Runs the loop of a multi-reactor worker thread until shutdown.
    pub(crate) fn run_until_shutdown(&self, event_interval: u32) {
        let shared = self.local.shared.clone();
        self.run_loop(event_interval, || shared.shutdown.load(Ordering::Acquire));
    }
}

/// The waker of `block_on`'s own future on a current-thread runtime.
struct MainWaker(Arc<WorkerShared>);

impl Wake for MainWaker {
    fn wake(self: Arc<Self>) {
        self.wake_by_ref();
    }
    fn wake_by_ref(self: &Arc<Self>) {
        // The loop swaps the flag: see `store_beside_swap` (a store in this build).
        crate::loom::store_beside_swap(&self.0.main_woken, true, Ordering::Release);
        crate::loom::planted_bug!(
            "main_waker_no_unpark",
            // The flag is set, but a worker asleep in its reactor never looks at it.
            bug: (),
            code: self.0.unpark(),
        );
    }
}

crate::loom::thread_local! {
    /// The core of the worker this thread drives, set by `context::set_worker` for as
    /// long as the core is alive, in place and driven here.
    static WORKER: Cell<Option<NonNull<Core>>> = const { Cell::new(None) };
}

/// Makes `core` the worker driven on this thread; returns the previous one. The cell
/// has no destructor, so this works during thread-local destruction too.
pub(crate) fn set_current_core(core: Option<NonNull<Core>>) -> Option<NonNull<Core>> {
    WORKER.with(|w| w.replace(core))
}

/// Runs `f` with the worker of this thread, if one runs here.
pub(crate) fn with_worker<R>(f: impl FnOnce(Option<&WorkerLocal>) -> R) -> R {
    with_core(|core| f(core.map(|c| &c.local)))
}

/// Runs `f` with the core of the worker this thread drives, if any.
pub(crate) fn with_core<R>(f: impl FnOnce(Option<&Core>) -> R) -> R {
    let ptr = WORKER.try_with(Cell::get).ok().flatten();
    // SAFETY: the pointer is set by a `ScopeGuard` for exactly as long as the core it
    // points to is alive, in place and driven by this thread (see
    // `context::set_worker`).
    f(ptr.map(|p| unsafe { p.as_ref() }))
}

// Single-threaded: both builds (in the loom build each is a one-thread model over the
// fake kernel, part of the loom suite; in the std build, over a real epoll instance).
#[cfg(test)]
#[path = "worker_tests.rs"]
mod tests;
