//! loom models of every wakeup path in epitome-runtime.
//!
//! Each model runs the runtime's own code (not a copy) under [loom], which executes it
//! once per possible interleaving of its threads (up to a bound on preemptions) and
//! checks every atomic access against the C++ memory model, every `UnsafeCell` access
//! for races, and every execution for deadlocks and leaked `Arc`s. The runtime is built
//! against loom with `--cfg epitome_loom` (its `crate::loom` shim then re-exports loom's
//! primitives); the models are unit tests of the crate, compiled only in that build, so
//! they reach the internals they drive without making any of them public.
//!
//! Run them with `loom-tests/run.sh`, which also runs each planted bug (a *mutant*,
//! selected in the same build by `EPITOME_LOOM_MUTANT=NAME`) and checks that its model
//! fails, so a passing model is known to be able to fail; it prints the table kept in
//! `loom-tests/RESULTS.md`. `scripts/mutants.sh` measures the models with mutants no one
//! chose (`loom-tests/MUTANTS.md`; the method is in `docs/loom.md`). One model by hand:
//!
//! ```text
//! RUSTFLAGS="--cfg epitome_loom" CARGO_TARGET_DIR=target/loom/models \
//!     cargo test --release -p epitome-runtime --lib loom_models::park -- --nocapture
//! ```
//!
//! Each model sets its own preemption bound (most explore every interleaving);
//! `LOOM_MAX_PREEMPTIONS` overrides it. The crate's other unit tests are left out of
//! that build (they use the shim's primitives outside a model).
//!
//! # The models
//!
//! | file (`models/`) | what it checks | mutants it must catch |
//! |---|---|---|
//! | `readiness_clear` | The reactor records two events (`ScheduledIo::dispatch`), each after its data, while a task reads until `WouldBlock` and then clears readiness with the word it saw (`clear_readiness`): a newer event is never erased, so data that arrived is never left unread with readiness cleared. | `clear_without_generation` |
//! | `waiter_registration` | A task registering for readiness while the reactor dispatches an event, through the fast path (`poll_ready_slot`: register, then re-check), through a waiter node (`poll_waiter`: look and link under the source's lock), and both at once: each task either sees the readiness or is woken. No lost wakeup. And `assume_ready` racing a task on each direction's fast path: seen, or woken exactly once. | `slot_no_recheck`, `waiter_stale_readiness`, `assume_ready_no_wake` |
//! | `exclusive_baton` | Three exclusive waiters; an event wakes exactly the first, while that first waiter's future is dropped concurrently without using it (`drop_waiter`): the wakeup passes to the second (baton passing), the third is never woken. And a woken waiter that finished with readiness left (`pass_baton_if_ready`) racing a second event: the next waiter is woken exactly once, what finds no waiter is handed on at most once. And two events in turn, the second racing the first waiter's finish: each wakes one exclusive waiter. And a shared source's event in a turn that already collected other sources' wakers, its only waiter dropped meanwhile: handed on exactly once. | `no_baton`, `wake_all_exclusive`, `baton_not_passed`, `list_cleared_under_a_node` |
//! | `ready_list` | The ready list (`ReadyList`, the kernel's `rdllist`) under a device thread whose wakeups append (`ep_poll_callback`, twice for the same item), a thread deleting an item (`epoll_ctl` unlinking it), and a `Poller::wait` that removes (the kernel's walk, the poller's re-poll of level-triggered items and their drop once drained): both lists stay well formed, no item is ever linked twice, no event is lost. | `ready_double_link` |
//! | `eventpoll_waiters` | Two threads in `Poller::wait` on one eventpoll over the `FakeKernel` (exclusive wake-one wait queue, notify eventfd): an edge-triggered event is delivered to exactly one of them; a level-triggered event reaches both (the first re-queues it on the poller's own list and hands it on with a notify). And a timed-out wait (a zero timeout: loom has no time) beside a thread blocked in the kernel wait: it awaits that thread's check-in (waking it, if it holds nothing) and reports the level-triggered event that was ready before it began; it never hangs. | `poller_no_handoff`, `timed_out_skips_checkin` |
//! | `task_state` | Real tasks (`new_task` with a model scheduler): a wake while the task is being polled makes exactly one more poll; a wake after completion does nothing; `JoinHandle` drop or poll racing completion (the output is dropped exactly once, and read only after it was published); `abort` racing a poll (the future is dropped exactly once, the result is "cancelled"); the last reference dropped by a waker on another thread (freed exactly once: no leak, no double free). | `wake_while_running_lost`, `complete_relaxed`, `join_waker_not_woken` |
//! | `park` | A worker deciding to park (`Parker::park` over `ParkState`) while other threads spawn a task, wake one, or both, into its remote queue (`RemoteQueue::push`, `Parker::unpark`), with the unpark eventfd modelled as a loom semaphore (`Wakeup`): the worker never sleeps through work, and writes to the eventfd are coalesced (at most one per park). And a notify after a wakeup for another reason (an I/O event): the eventfd is written only if the worker went back to sleep. | `park_no_recheck` |
//! | `timer` | A timer fired by its worker (`TimerShared::fire_expired`) while its `Sleep` is dropped (`cancel`) and the slot is reused by a new timer: the stale cancel never removes the new timer; the fired waker is woken at most once. And a poll with a new waker racing the fire: it reports the fire or the new waker is woken. And a reset from another thread: to an earlier deadline it unparks the owner exactly once, to a later one not at all. | `timer_key_no_generation`, `reset_no_unpark` |
//! | `reactor_turn` | The path every TCP read takes, end to end: `Registration::poll_io` (the readiness slot, the read, the clear on `WouldBlock`) racing a device that makes the fd readable and a reactor turn (`ReactorHandle::turn_into` over the `FakeKernel`: wait, `dispatch`, wakes after the lock); with a registration made up front, and with one made by its first wait (`register_here`, `add_source`). A task that got `Pending` is woken exactly once and then reads; the registration count returns to its baseline. Also: registrations from two threads (the gauge stays exact), a shared source handing on an unclaimed event, a first wait racing shutdown, a deregistration racing a wait. | `turn_drops_wakes`, `first_wait_never_registers`, `first_wait_ignores_shutdown`, `deregister_drops_wakes` |
//! | `first_wait` | A deferred registration's first waits racing the device and a turn: a reader and a writer (the writer adds writing to the mask, `reactor_for`), two first waits on one reactor (`EEXIST`), and on two workers' reactors (the loser deletes its add): one registration, each waiter woken exactly once, the gauges back to their baseline. | `first_writer_no_modify`, `loser_keeps_its_add` |
//! | `bit_wait` | A wait for urgent data (`io::wait::wait`, `Interest::PRIORITY`) on a source already readable, racing the event that sets the bit: it parks its waker whatever the readiness and looks again, so it finds the bit or is woken exactly once. And a wait for an error racing the reactor's shutdown: the error at once, or one wake and then the error. | `bit_wait_no_second_look`, `bit_wait_ignores_gone` |
//! | `shared_hand_on` | `io::SharedAsync` on two workers' reactors: an event at worker 0's reactor, where nobody waits, is handed on (`Inner::hand_on`) to a task waiting on worker 1, in `read_with_exclusive` (`ScheduledIo::hand_event`) or in `poll_read_with` (the polling tasks are woken); and, after worker 1 was paused and resumed, from its relay registration to its home's waiter (`Inner::relay`), or on to worker 0's when none waits at home; and the baton an exclusive waiter passes at the end of its poll, leaving the listener ready, going on to the other worker's waiter when none waits here (`pass_baton_if_ready`, `hand_on`): it accepts at once, or is woken exactly once and accepts; both reactors' gauges back to their baseline. | `hand_event_no_wake`, `pollers_not_woken`, `relay_drops_event` |
//! | `local_set` | A `LocalSet`'s task woken from another thread (`RemoteQueue::push`, then the set's waker) while the owner polls the set: a poll that returns `Pending` with the task not run is followed by a wake of that poll's waker, and the task runs exactly once more. A local wake of an idle set wakes it; one during the set's poll runs in that poll and wakes nobody. | `local_set_remote_no_wake` |
//! | `worker` | A whole worker (`WorkerShared::new` over the fake kernel, its unpark eventfd a fake file of it) running its own loop (`Core::run_loop`, `park`, `turn`) while another thread spawns onto it or wakes its task (`push_remote`, `unpark`): it never sleeps through the work, the task is polled once per wake, the eventfd is written at most once per park. And a worker standing in for a sibling that looked stuck (`assist_siblings`) while the sibling parks and is sent work: the unpark wakeup the stand-in took is written again (`Parker::repost`). And `block_on`'s own future woken from another thread (`MainWaker`): polled exactly once more. And local work past a batch: never a park with it queued. And a worker thread told to shut down leaves its loop. And a worker out of work beside an awake sibling sleeps in timed stretches (`any_sibling_awake`) and stands in for the sibling once stuck, taking the event its task waits for from the sibling's reactor. And a timer registered from another thread on a worker asleep with none: the wheel unparks it (`TimerUnpark`). And its counters under racing spawns, remote schedules and completions (a local spawn beside remote ones, a shutdown beside a refused spawn): every count exact; its remote-queue and awake gauges as metrics read them. | `push_remote_no_unpark`, `assist_no_repost`, `main_waker_no_unpark` |
//! | `block_in_place` | A worker's thread blocks in place waiting for the worker's own queued task: the stand-in (a blocking-pool thread driving the lent core) runs it, exactly once; taking the core back (`give_back`, an unpark of a stand-in asleep in the worker's reactor, the wait for its `finish`) never hangs. | `take_back_no_unpark` |
//! | `blocking_pool` | The blocking pool with loom threads: a closure for an idle thread wakes it (one wakeup per idle thread); a thread looks at the queue before it sleeps; a second closure starts a second thread rather than wait behind a first that waits for it. Every closure runs exactly once, shutdown finds every thread gone. And a shutdown while a closure waits behind a busy thread: it runs or is cancelled (`cancel_queued`), exactly one of the two, dropped once. | `pool_no_notify` |
//! | `shutdown` | A spawn from another thread (`RemoteQueue::push`, `cancel_unbound` on refusal) racing runtime shutdown (`RemoteQueue::close`, then `cancel_unbound` of what was queued): the task is cancelled exactly once, its future dropped once, its `JoinHandle` reports cancellation, nothing leaks. | `push_closed_outside_lock` |
//!
//! The mutants are declared in the workspace's `unexpected_cfgs` list; each is a
//! `planted_bug!` at the exact place in `runtime/src` where the bug would be.
//!
//! # What the models found
//!
//! Three real bugs, all fixed in the runtime (see `runtime/src/task/state.rs`, "Wakes are
//! read-modify-writes", `ParkState::try_park` / `unparked`, and `io::wait::wait`):
//!
//! - `task_state/wake_while_running`: a wake that found SCHEDULED set only loaded the
//!   state word, so it could read a stale word while the scheduler's
//!   `transition_to_running` read the waker's data stale (store buffering): nobody
//!   polled again. Now such a wake writes the word back with a compare-and-swap.
//! - `park/spawn_and_wake`: with two notifiers, the worker consumed NOTIFIED with a
//!   plain store, erasing the second notifier's notification without synchronizing
//!   with its push; `RemoteQueue::take_all`'s lock-free length check could then read
//!   an empty queue and the worker parked for good. Now it consumes NOTIFIED with a
//!   swap.
//! - `bit_wait/error_vs_shutdown`: a wait for an error bit (`ready(Interest::ERROR)`)
//!   looked at the shutdown flag once, before parking its waker; a shutdown in between
//!   marked the source gone with no waker to take, and the wait's second look, which
//!   saw only "no error bit", parked for good. Now each look also answers a gone
//!   source with the "runtime gone" error.
//!
//! [loom]: https://docs.rs/loom

use std::collections::VecDeque;
use std::future::Future;
use std::pin::Pin;
use std::ptr::NonNull;
use std::task::{Context, Poll, Wake, Waker};

use crate::reactor::scheduled_io::ScheduledIo;
use crate::task_core::header::Header;
use crate::task_core::{Notified, Schedule};

mod bit_wait;
mod block_in_place;
mod blocking_pool;
mod eventpoll_waiters;
mod exclusive_baton;
mod first_wait;
mod local_set;
mod park;
mod reactor_turn;
mod readiness_clear;
mod ready_list;
mod shared_hand_on;
mod shutdown;
mod task_state;
mod timer;
mod waiter_registration;
mod worker;
use loom::sync::atomic::{AtomicUsize, Ordering};
use loom::sync::{Arc, Mutex};

/// The preemption bound of every model under `EPITOME_LOOM_QUICK` (`scripts/mutants.sh`'s
/// first pass): an execution found at a lower bound is an execution of the full model
/// too, so a mutant a quick run kills, the full run kills; a survivor is run again in
/// full.
const QUICK_BOUND: usize = 2;

/// Runs `f` as a loom model named `name`, exploring every interleaving with at most
/// `preemptions` preemptions (`None`: every interleaving; `LOOM_MAX_PREEMPTIONS`
/// overrides either), and prints `loom-model NAME: bound B, N interleavings` for
/// `run.sh`'s table.
pub(crate) fn check<F>(name: &str, preemptions: Option<usize>, f: F)
where
    F: Fn() + Sync + Send + 'static,
{
    check_long(name, preemptions, 0, f);
}

/// [`check`] for a model whose one thread takes more than loom's default 1,000 steps
/// (`max_branches`; a guard against spin loops) on an execution: up to `branches`.
pub(crate) fn check_long<F>(name: &str, preemptions: Option<usize>, branches: usize, f: F)
where
    F: Fn() + Sync + Send + 'static,
{
    let runs = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let counter = runs.clone();
    let mut builder = loom::model::Builder::new();
    builder.max_branches = builder.max_branches.max(branches);
    if builder.preemption_bound.is_none() {
        builder.preemption_bound = preemptions;
    }
    if std::env::var_os("EPITOME_LOOM_QUICK").is_some() {
        builder.preemption_bound = Some(
            builder
                .preemption_bound
                .map_or(QUICK_BOUND, |b| b.min(QUICK_BOUND)),
        );
    }
    let bound = match builder.preemption_bound {
        Some(b) => b.to_string(),
        None => "none".to_string(),
    };
    builder.check(move || {
        counter.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        f();
    });
    println!(
        "loom-model {name}: bound {bound}, {} interleavings",
        runs.load(std::sync::atomic::Ordering::Relaxed)
    );
}

/// A waker that counts its wakes (in a loom atomic, so a count read after a `join`
/// sees every wake of the joined thread).
pub(crate) struct WakeCounter(AtomicUsize);

impl WakeCounter {
    /// Wakes so far.
    pub(crate) fn count(&self) -> usize {
        self.0.load(Ordering::SeqCst)
    }
}

impl Wake for WakeCounter {
    fn wake(self: std::sync::Arc<Self>) {
        self.wake_by_ref();
    }
    fn wake_by_ref(self: &std::sync::Arc<Self>) {
        self.0.fetch_add(1, Ordering::SeqCst);
    }
}

/// A counting waker and its counter.
pub(crate) fn counting_waker() -> (std::sync::Arc<WakeCounter>, Waker) {
    let counter = std::sync::Arc::new(WakeCounter(AtomicUsize::new(0)));
    (counter.clone(), Waker::from(counter))
}

/// The reactor's turn for one event on one source: record it, wake the waiters it
/// concerns after the source's lock is released.
pub(crate) fn dispatch(io: &ScheduledIo, events: u32) {
    let mut wake = Vec::new();
    let mut unclaimed = Vec::new();
    io.dispatch(events, &mut wake, &mut unclaimed);
    wake.into_iter().for_each(Waker::wake);
}

/// Polls `fut` once with `waker`.
pub(crate) fn poll_once<F: Future + Unpin>(fut: &mut F, waker: &Waker) -> Poll<F::Output> {
    Pin::new(fut).poll(&mut Context::from_waker(waker))
}

/// A future that calls `f` with its context on every poll.
pub(crate) struct PollFn<F>(pub F);

impl<T, F: FnMut(&mut Context<'_>) -> Poll<T> + Unpin> Future for PollFn<F> {
    type Output = T;
    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<T> {
        (self.0)(cx)
    }
}

/// Counts its drops: put one in a future or an output to check it is dropped exactly
/// once.
pub(crate) struct DropCounter(pub Arc<AtomicUsize>);

impl Drop for DropCounter {
    fn drop(&mut self) {
        self.0.fetch_add(1, Ordering::SeqCst);
    }
}

/// A model scheduler: one locked FIFO of notified tasks, run by whichever model thread
/// calls [`ModelScheduler::run_queued`].
///
/// Each task holds a clone (a loom `Arc`), so a task that is never freed shows up as a
/// leaked `Arc` at the end of the model, and [`ModelScheduler::tasks_alive`] counts the
/// tasks not yet freed.
#[derive(Clone)]
pub(crate) struct ModelScheduler(Arc<Queue>);

/// The state behind a [`ModelScheduler`].
pub(crate) struct Queue {
    tasks: Mutex<VecDeque<Notified>>,
    /// What `release` answers: whether an owner list holds the task (the worker's
    /// answer for a bound task; false for one cancelled before it was ever bound).
    bound: bool,
}

impl ModelScheduler {
    /// `bound`: see [`Queue`]; true for tasks run by their worker.
    pub(crate) fn new(bound: bool) -> ModelScheduler {
        ModelScheduler(Arc::new(Queue {
            tasks: Mutex::new(VecDeque::new()),
            bound,
        }))
    }

    /// Runs queued tasks until the queue is empty; returns how many runs.
    pub(crate) fn run_queued(&self) -> usize {
        let mut n = 0;
        loop {
            let task = self.0.tasks.lock().unwrap().pop_front();
            match task {
                Some(t) => t.run(),
                None => return n,
            }
            n += 1;
        }
    }

    /// Tasks queued now.
    pub(crate) fn queued(&self) -> usize {
        self.0.tasks.lock().unwrap().len()
    }

    /// Handles to this scheduler other than `self`: one per task not yet freed.
    pub(crate) fn tasks_alive(&self) -> usize {
        Arc::strong_count(&self.0) - 1
    }
}

impl Schedule for ModelScheduler {
    fn schedule(&self, task: Notified) {
        self.0.tasks.lock().unwrap().push_back(task);
    }

    fn release(&self, _task: NonNull<Header>) -> bool {
        self.0.bound
    }
}
