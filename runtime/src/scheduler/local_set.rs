//! `LocalSet`: a scheduler of `!Send` tasks that runs inside a future, on the thread
//! that owns the set.
//!
//! The set's tasks run only while something polls the set: awaiting the set itself,
//! or a future passed to [`LocalSet::run_until`]. Each such poll runs up to
//! [`MAX_TASKS_PER_TICK`] tasks, each with its own cooperative budget, then yields
//! (waking itself if tasks remain), so a set inside a runtime's task shares its
//! worker fairly.
//!
//! # Who touches what
//!
//! - `LocalShared::queue`, `owned` and `closed`: only the owner thread (the thread
//!   that created the set; `LocalSet` is neither `Send` nor `Sync`, so every
//!   `&LocalSet` is on that thread, and tasks only run and complete there).
//! - `LocalShared::remote`: wakes from other threads (locked).
//! - `LocalShared::waker`: the waker of whoever polls the set last (locked).

use std::fmt;
use std::future::{Future, poll_fn};
use std::marker::PhantomData;
use std::pin::Pin;
use std::ptr::NonNull;
use std::task::{Context, Poll, Waker};

use super::owned::OwnedTasks;
use super::owned::cancel_unbound;
use super::queue::{LocalQueue, RemoteQueue};
use crate::coop;
use crate::loom::os::cell::{Cell, RefCell};
use crate::loom::os::sync::Arc;
use crate::loom::planted_bug;
use crate::loom::sync::Mutex;
use crate::loom::thread::{self, ThreadId};
use crate::task_core::header::Header;
use crate::task_core::{JoinHandle, Notified, Schedule, new_task};

/// Tasks one poll of the set runs before it yields (tokio's number).
const MAX_TASKS_PER_TICK: usize = 61;

/// A set of `!Send` tasks that run on the thread that owns the set.
///
/// Spawn onto it with [`spawn_local`](LocalSet::spawn_local), or with the free
/// [`task::spawn_local`](crate::task::spawn_local) from inside it. Its tasks run while
/// the set is polled: by [`run_until`](LocalSet::run_until) (until a given future
/// completes; tasks left over run on the next `run_until` or await), by
/// [`block_on`](LocalSet::block_on), or by awaiting the set itself (until every task
/// in it has completed). Dropping the set cancels the tasks still in it, on this
/// thread.
///
/// It works on both runtimes (and on none, for tasks that need no reactor). Inside
/// its tasks `spawn` and I/O use the runtime the set is polled on.
///
/// ```
/// use std::rc::Rc;
/// use epitome_runtime::task::{self, LocalSet};
///
/// # fn main() -> std::io::Result<()> {
/// let rt = epitome_runtime::runtime::Builder::new_multi_reactor().reactors(2).build()?;
/// let local = LocalSet::new();
/// let greeting = Rc::new(String::from("hello"));
/// let g = greeting.clone();
/// // Spawned before the set runs: it starts on the first poll of the set.
/// let first = local.spawn_local(async move { g.len() });
/// let total = local.block_on(&rt, async move {
///     let g = greeting.clone();
///     let second = task::spawn_local(async move { g.len() * 2 });
///     Ok::<_, task::JoinError>(first.await? + second.await?)
/// })?;
/// assert_eq!(total, 15);
/// # Ok(())
/// # }
/// ```
pub struct LocalSet {
    shared: Arc<LocalShared>,
    _not_send: PhantomData<*const ()>,
}

pub(crate) struct LocalShared {
    owner: ThreadId,
    queue: LocalQueue,
    owned: OwnedTasks,
    /// The set was dropped: spawns are cancelled at once and wakes dropped.
    closed: Cell<bool>,
    remote: RemoteQueue,
    waker: Mutex<Option<Waker>>,
}

// SAFETY: the fields not `Sync` (`queue`, `owned`, `closed`) are only touched on the
// owner thread (see the module docs); `remote` and `waker` are locked.
unsafe impl Sync for LocalShared {}

/// The set being polled (or entered) on this thread.
struct Current {
    shared: Arc<LocalShared>,
    /// The set is being polled now: its loop will find what is queued locally.
    polling: bool,
}

crate::loom::thread_local! {
    static CURRENT: RefCell<Option<Current>> = const { RefCell::new(None) };
}

/// Restores the previous current set when dropped.
struct SetCurrent(Option<Option<Current>>);

fn set_current(shared: &Arc<LocalShared>, polling: bool) -> SetCurrent {
    let next = Current {
        shared: shared.clone(),
        polling,
    };
    SetCurrent(CURRENT.try_with(|c| c.replace(Some(next))).ok())
}

impl Drop for SetCurrent {
    fn drop(&mut self) {
        if let Some(prev) = self.0.take() {
            // The value replaced is dropped outside the borrow.
            let replaced = CURRENT.try_with(|c| c.replace(prev));
            drop(replaced);
        }
    }
}

/// Spawns onto the set current on this thread, or gives the future back if there is
/// none (the free `spawn_local`).
pub(crate) fn spawn_on_current<F>(future: F) -> Result<JoinHandle<F::Output>, F>
where
    F: Future + 'static,
    F::Output: 'static,
{
    let shared = CURRENT
        .try_with(|c| c.borrow().as_ref().map(|cur| cur.shared.clone()))
        .ok()
        .flatten();
    match shared {
        Some(shared) => Ok(shared.spawn(future)),
        None => Err(future),
    }
}

/// Whether a set is being polled on this thread (`block_in_place` refuses to run
/// there, as tokio's does: the set's other tasks would stall).
pub(crate) fn is_running() -> bool {
    CURRENT
        .try_with(|c| c.borrow().as_ref().is_some_and(|cur| cur.polling))
        .unwrap_or(false)
}

/// Keeps a [`LocalSet`] entered on this thread until dropped (see
/// [`LocalSet::enter`]).
pub struct LocalEnterGuard {
    _current: SetCurrent,
    _not_send: PhantomData<*const ()>,
}

impl fmt::Debug for LocalEnterGuard {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("LocalEnterGuard").finish_non_exhaustive()
    }
}

impl LocalSet {
    /// An empty set, owned by this thread.
    pub fn new() -> LocalSet {
        LocalSet {
            shared: Arc::new(LocalShared {
                owner: thread::current().id(),
                queue: LocalQueue::default(),
                owned: OwnedTasks::default(),
                closed: Cell::new(false),
                remote: RemoteQueue::default(),
                waker: Mutex::new(None),
            }),
            _not_send: PhantomData,
        }
    }

    /// Spawns a `!Send` task onto the set. It runs when the set is next polled, even
    /// if the handle is never awaited.
    pub fn spawn_local<F>(&self, future: F) -> JoinHandle<F::Output>
    where
        F: Future + 'static,
        F::Output: 'static,
    {
        self.shared.spawn(future)
    }

    /// Runs `future` to completion with the set's tasks running beside it; inside it
    /// [`task::spawn_local`](crate::task::spawn_local) spawns onto this set. Tasks
    /// still in the set when `future` completes stay there for the next run.
    ///
    /// Cancel safe when `future` is.
    pub async fn run_until<F: Future>(&self, future: F) -> F::Output {
        let mut future = std::pin::pin!(future);
        poll_fn(|cx| {
            self.shared.register(cx.waker());
            let _current = set_current(&self.shared, true);
            if let Poll::Ready(out) = future.as_mut().poll(cx) {
                return Poll::Ready(out);
            }
            if self.shared.tick() {
                cx.waker().wake_by_ref();
            }
            Poll::Pending
        })
        .await
    }

    /// Enters the set on this thread without running it: until the guard drops,
    /// [`task::spawn_local`](crate::task::spawn_local) spawns onto it (the tasks run
    /// when the set is next polled).
    pub fn enter(&self) -> LocalEnterGuard {
        LocalEnterGuard {
            _current: set_current(&self.shared, false),
            _not_send: PhantomData,
        }
    }
}

impl LocalShared {
    fn spawn<F>(self: &Arc<Self>, future: F) -> JoinHandle<F::Output>
    where
        F: Future + 'static,
        F::Output: 'static,
    {
        let (notified, handle) = new_task(future, self.clone());
        if self.closed.get() {
            // The set is gone: the task is cancelled without running.
            cancel_unbound(notified);
            return handle;
        }
        // SAFETY: on the owner thread (the caller holds a `&LocalSet`, or the set is
        // current on this thread), with a new task: the list takes its reference.
        unsafe { self.owned.insert(notified.as_ptr()) };
        self.schedule(notified);
        handle
    }

    fn is_owner_thread(&self) -> bool {
        thread::current().id() == self.owner
    }

    /// Whether this set is being polled on this thread now.
    fn is_polling(&self) -> bool {
        CURRENT
            .try_with(|c| {
                c.borrow()
                    .as_ref()
                    .is_some_and(|cur| cur.polling && std::ptr::eq(&*cur.shared, self))
            })
            .unwrap_or(false)
    }

    fn register(&self, waker: &Waker) {
        let mut slot = self.waker.lock();
        if !slot.as_ref().is_some_and(|w| w.will_wake(waker)) {
            let replaced = slot.replace(waker.clone());
            drop(slot);
            // Outside the lock: a waker's destructor may wake this set.
            drop(replaced);
        }
    }

    fn wake(&self) {
        let waker = self.waker.lock().clone();
        if let Some(w) = waker {
            w.wake();
        }
    }

    /// Runs up to [`MAX_TASKS_PER_TICK`] queued tasks; returns whether more are queued.
    /// On the owner thread.
    fn tick(&self) -> bool {
        let mut remote = self.remote.take_all();
        self.queue.append(&mut remote);
        for _ in 0..MAX_TASKS_PER_TICK {
            let task = match self.queue.pop() {
                Some(task) => task,
                None => {
                    let mut remote = self.remote.take_all();
                    if remote.is_empty() {
                        return false;
                    }
                    self.queue.append(&mut remote);
                    continue;
                }
            };
            coop::with_budget(|| task.run());
        }
        !self.queue.is_empty() || !self.remote.is_empty()
    }
}

impl Schedule for Arc<LocalShared> {
    fn schedule(&self, task: Notified) {
        if !self.is_owner_thread() {
            // Refused once the set is dropped: the task is complete, drop the entry.
            if self.remote.push(task).is_ok() {
                planted_bug!(
                    "local_set_remote_no_wake",
                    // The task is queued but nobody polls the set to find it.
                    bug: (),
                    code: self.wake(),
                );
            }
            return;
        }
        if self.closed.get() {
            // The set is shutting down (its loop cancels every task) or gone: a queue
            // entry would keep the set alive through its own task (a cycle).
            return;
        }
        self.queue.push(task);
        if !self.is_polling() {
            self.wake();
        }
    }

    fn release(&self, task: NonNull<Header>) -> bool {
        if !self.is_owner_thread() {
            return false;
        }
        // SAFETY: tasks of a set complete on its owner thread, where the list lives.
        unsafe { self.owned.remove(task) }
    }
}

/// Runs the set's tasks until every one has completed.
impl Future for LocalSet {
    type Output = ();

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        self.shared.register(cx.waker());
        let more = {
            let _current = set_current(&self.shared, true);
            self.shared.tick()
        };
        if more {
            cx.waker().wake_by_ref();
            Poll::Pending
        } else if self.shared.owned.first().is_none() {
            Poll::Ready(())
        } else {
            Poll::Pending
        }
    }
}

impl Default for LocalSet {
    fn default() -> LocalSet {
        LocalSet::new()
    }
}

impl fmt::Debug for LocalSet {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("LocalSet").finish_non_exhaustive()
    }
}

impl Drop for LocalSet {
    fn drop(&mut self) {
        let shared = &self.shared;
        shared.closed.set(true);
        // Remote wakes of tasks about to be cancelled: their entries go.
        drop(shared.remote.close());
        // Cancelled futures' destructors see the set as current (a `spawn_local` from
        // one is cancelled at once).
        let _current = set_current(shared, true);
        shared.owned.cancel_all(&shared.queue);
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc as StdArc;
    use std::sync::atomic::{AtomicUsize, Ordering::SeqCst};
    use std::task::Wake;

    use super::*;

    /// Counts the wakes of the waker made from it.
    struct Wakes(AtomicUsize);

    impl Wake for Wakes {
        fn wake(self: StdArc<Self>) {
            self.wake_by_ref();
        }
        fn wake_by_ref(self: &StdArc<Self>) {
            self.0.fetch_add(1, SeqCst);
        }
    }

    /// `run_until`'s own poll runs at most `MAX_TASKS_PER_TICK` of the set's tasks: with
    /// more queued it wakes itself (its future may wait on something that never comes,
    /// and then the tasks left would wait for ever), and once they have all run it wakes
    /// nobody.
    #[test]
    fn run_until_wakes_itself_after_a_full_tick() {
        crate::loom::unit_test(|| {
            let set = LocalSet::new();
            let runs = StdArc::new(AtomicUsize::new(0));
            for _ in 0..=MAX_TASKS_PER_TICK {
                let runs = runs.clone();
                drop(set.spawn_local(async move {
                    runs.fetch_add(1, SeqCst);
                }));
            }
            let wakes = StdArc::new(Wakes(AtomicUsize::new(0)));
            let waker = Waker::from(wakes.clone());
            let mut cx = Context::from_waker(&waker);
            let mut run = std::pin::pin!(set.run_until(std::future::pending::<()>()));

            assert!(run.as_mut().poll(&mut cx).is_pending());
            assert_eq!(runs.load(SeqCst), MAX_TASKS_PER_TICK);
            assert_eq!(
                wakes.0.load(SeqCst),
                1,
                "run_until left a task queued without waking itself"
            );

            assert!(run.as_mut().poll(&mut cx).is_pending());
            assert_eq!(runs.load(SeqCst), MAX_TASKS_PER_TICK + 1);
            assert_eq!(
                wakes.0.load(SeqCst),
                1,
                "run_until woke itself with nothing left to run"
            );
        });
    }

    /// A set counts as running (so `block_in_place` refuses) only while it is polled,
    /// not while it is merely entered; it and its enter guard print their names.
    #[test]
    fn a_set_runs_only_while_polled() {
        crate::loom::unit_test(|| {
            let mut set = LocalSet::new();
            assert!(!is_running());
            let seen = StdArc::new(AtomicUsize::new(0));
            let inside = seen.clone();
            drop(set.spawn_local(async move {
                inside.store(1 + usize::from(is_running()), SeqCst);
            }));
            {
                let guard = set.enter();
                assert!(!is_running(), "an entered set counted as running");
                assert!(format!("{guard:?}").starts_with("LocalEnterGuard"));
            }
            let mut cx = Context::from_waker(Waker::noop());
            assert!(Pin::new(&mut set).poll(&mut cx).is_ready());
            assert_eq!(
                seen.load(SeqCst),
                2,
                "a task of a polled set saw it not running"
            );
            assert!(
                !is_running(),
                "the set still counts as running after its poll"
            );
            assert!(format!("{set:?}").starts_with("LocalSet"));
        });
    }

    /// A task woken on the owner thread while its set is only entered (not polled)
    /// wakes the set: nobody would poll it otherwise.
    #[test]
    fn a_wake_while_the_set_is_only_entered_wakes_the_set() {
        crate::loom::unit_test(|| {
            let mut set = LocalSet::new();
            let parked = StdArc::new(std::sync::Mutex::new(None::<Waker>));
            let slot = parked.clone();
            let mut polls = 0;
            let task = set.spawn_local(std::future::poll_fn(move |cx| {
                polls += 1;
                if polls > 1 {
                    return Poll::Ready(());
                }
                *slot.lock().unwrap() = Some(cx.waker().clone());
                Poll::Pending
            }));
            let wakes = StdArc::new(Wakes(AtomicUsize::new(0)));
            let waker = Waker::from(wakes.clone());
            let mut cx = Context::from_waker(&waker);
            assert!(Pin::new(&mut set).poll(&mut cx).is_pending());
            let task_waker = parked
                .lock()
                .unwrap()
                .take()
                .expect("the task parked its waker");
            {
                let _entered = set.enter();
                task_waker.wake();
            }
            assert_eq!(wakes.0.load(SeqCst), 1, "the entered set was not woken");
            assert!(Pin::new(&mut set).poll(&mut cx).is_ready());
            assert!(task.is_finished());
        });
    }

    /// Dropping a set cancels the tasks still in it: their futures are dropped and
    /// their handles report the cancellation.
    #[test]
    fn dropping_the_set_cancels_its_tasks() {
        crate::loom::unit_test(|| {
            let mut set = LocalSet::new();
            let dropped = StdArc::new(AtomicUsize::new(0));
            struct CountDrop(StdArc<AtomicUsize>);
            impl Drop for CountDrop {
                fn drop(&mut self) {
                    self.0.fetch_add(1, SeqCst);
                }
            }
            let guard = CountDrop(dropped.clone());
            let idle = set.spawn_local(async move {
                let _guard = guard;
                std::future::pending::<()>().await;
            });
            let never_run = set.spawn_local(std::future::pending::<()>());
            let mut cx = Context::from_waker(Waker::noop());
            assert!(Pin::new(&mut set).poll(&mut cx).is_pending());
            let never_run_too = set.spawn_local(std::future::pending::<()>());
            drop(set);
            assert_eq!(
                dropped.load(SeqCst),
                1,
                "the idle task's future was not dropped"
            );
            for mut handle in [idle, never_run, never_run_too] {
                assert!(handle.is_finished());
                match Pin::new(&mut handle).poll(&mut cx) {
                    Poll::Ready(Err(e)) => assert!(e.is_cancelled(), "{e}"),
                    _ => panic!("a task of a dropped set was not cancelled"),
                }
            }
        });
    }
}
