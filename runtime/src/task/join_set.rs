//! `JoinSet`: a set of tasks awaited in completion order.

use std::fmt;
use std::future::{Future, poll_fn};
use std::task::{Context, Poll, Wake, Waker};

use slab::Slab;

use super::{AbortHandle, Id, JoinError, JoinHandle};
use crate::loom::os::sync::Arc;
use crate::loom::sync::Mutex;

/// A collection of spawned tasks, awaited in the order they complete.
///
/// Each task gets its own waker that marks it as worth polling, so
/// [`join_next`](Self::join_next) polls only the tasks that have been woken: its
/// cost does not grow with the number of tasks in the set. Dropping the set aborts
/// every task still in it.
///
/// ```
/// use epitome_runtime::task::JoinSet;
///
/// # fn main() -> std::io::Result<()> {
/// let rt = epitome_runtime::runtime::Builder::new_current_thread().build()?;
/// rt.block_on(async {
///     let mut set: JoinSet<u32> = (0..10).map(|i| async move { i * i }).collect();
///     set.spawn(async { 100 });
///     let mut sum = 0;
///     while let Some(res) = set.join_next().await {
///         sum += res?;
///     }
///     assert_eq!(sum, 385);
///     Ok(())
/// })
/// # }
/// ```
pub struct JoinSet<T> {
    entries: Slab<Entry<T>>,
    shared: Arc<Shared>,
}

struct Entry<T> {
    handle: JoinHandle<T>,
    waker: Waker,
}

struct Shared {
    state: Mutex<Notifications>,
}

struct Notifications {
    /// Slots whose task woke us (or that were just added), oldest first.
    ready: std::collections::VecDeque<usize>,
    /// The waker of whoever awaits `join_next`.
    waiter: Option<Waker>,
}

struct EntryWaker {
    slot: usize,
    shared: Arc<Shared>,
}

impl Wake for EntryWaker {
    fn wake(self: Arc<Self>) {
        self.wake_by_ref();
    }
    fn wake_by_ref(self: &Arc<Self>) {
        let waiter = {
            let mut st = self.shared.state.lock();
            st.ready.push_back(self.slot);
            st.waiter.take()
        };
        if let Some(w) = waiter {
            w.wake();
        }
    }
}

impl<T> Default for JoinSet<T> {
    fn default() -> Self {
        Self::new()
    }
}

impl<T> JoinSet<T> {
    /// An empty set.
    pub fn new() -> JoinSet<T> {
        JoinSet {
            entries: Slab::new(),
            shared: Arc::new(Shared {
                state: Mutex::new(Notifications {
                    ready: Default::default(),
                    waiter: None,
                }),
            }),
        }
    }

    /// The number of tasks in the set (finished ones not yet joined included).
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// Whether the set is empty.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// Adds an already spawned task to the set.
    pub fn insert(&mut self, handle: JoinHandle<T>) -> AbortHandle {
        let abort = handle.abort_handle();
        let slot = self.entries.vacant_key();
        let waker = Waker::from(Arc::new(EntryWaker {
            slot,
            shared: self.shared.clone(),
        }));
        self.entries.insert(Entry { handle, waker });
        // Poll it once so it registers our waker.
        self.shared.state.lock().ready.push_back(slot);
        abort
    }

    /// Aborts every task in the set; they stay in it until joined.
    pub fn abort_all(&mut self) {
        for (_, e) in &self.entries {
            e.handle.abort();
        }
    }

    /// Aborts every task and waits for them all to finish.
    pub async fn shutdown(&mut self) {
        self.abort_all();
        while self.join_next().await.is_some() {}
    }

    /// Removes every task from the set without aborting them.
    pub fn detach_all(&mut self) {
        self.entries.clear();
        self.shared.state.lock().ready.clear();
    }

    /// Waits for the next task to complete and returns its output; `None` once the set
    /// is empty.
    ///
    /// Cancel safe: dropping the future before it completes loses no output.
    pub async fn join_next(&mut self) -> Option<Result<T, JoinError>> {
        poll_fn(|cx| self.poll_join_next(cx)).await
    }

    /// As [`join_next`](Self::join_next), with the id of the task that completed.
    pub async fn join_next_with_id(&mut self) -> Option<Result<(Id, T), JoinError>> {
        poll_fn(|cx| self.poll_join_next_with_id(cx)).await
    }

    /// The output of a task that has already completed, if any, without waiting:
    /// `None` if no task has completed (or the set is empty).
    ///
    /// Not an await point: it never consults or spends the cooperative budget, so it
    /// finds every completed task however many there are.
    pub fn try_join_next(&mut self) -> Option<Result<T, JoinError>> {
        self.try_join_next_with_id()
            .map(|res| res.map(|(_, out)| out))
    }

    /// As [`try_join_next`](Self::try_join_next), with the id of the task.
    pub fn try_join_next_with_id(&mut self) -> Option<Result<(Id, T), JoinError>> {
        loop {
            let slot = self.shared.state.lock().ready.pop_front()?;
            if let Poll::Ready(res) = self.poll_slot(slot) {
                return Some(res);
            }
        }
    }

    /// Waits for every task and returns their outputs, in the order they completed.
    ///
    /// # Panics
    ///
    /// If a task panicked, with that panic's payload; if one was cancelled, with its
    /// `JoinError`. The tasks still in the set are then aborted (the set is dropped).
    pub async fn join_all(mut self) -> Vec<T> {
        let mut outputs = Vec::with_capacity(self.len());
        while let Some(res) = self.join_next().await {
            match res {
                Ok(out) => outputs.push(out),
                Err(e) if e.is_panic() => std::panic::resume_unwind(e.into_panic()),
                Err(e) => panic!("{e}"),
            }
        }
        outputs
    }

    /// Polls for the next completed task (see [`join_next`](Self::join_next)).
    ///
    /// Spends one unit of the caller's cooperative budget per poll that finds an
    /// output; with the budget spent it answers `Pending` and wakes the caller.
    pub fn poll_join_next(&mut self, cx: &mut Context<'_>) -> Poll<Option<Result<T, JoinError>>> {
        self.poll_join_next_with_id(cx)
            .map(|r| r.map(|res| res.map(|(_, out)| out)))
    }

    /// As [`poll_join_next`](Self::poll_join_next), with the id of the task.
    pub fn poll_join_next_with_id(
        &mut self,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<(Id, T), JoinError>>> {
        if self.entries.is_empty() {
            return Poll::Ready(None);
        }
        let coop = std::task::ready!(crate::coop::poll_proceed(cx));
        loop {
            let next = {
                let mut st = self.shared.state.lock();
                match st.ready.pop_front() {
                    Some(slot) => slot,
                    None => {
                        let replaced = match &st.waiter {
                            Some(w) if w.will_wake(cx.waker()) => None,
                            _ => st.waiter.replace(cx.waker().clone()),
                        };
                        drop(st);
                        // Outside the lock: a waker's destructor may run anything,
                        // polling this very set's tasks (and waking its entries) included.
                        drop(replaced);
                        return Poll::Pending;
                    }
                }
            };
            if let Poll::Ready(res) = self.poll_slot(next) {
                coop.made_progress();
                return Poll::Ready(Some(res));
            }
        }
    }

    /// Polls one entry's handle with the entry's own waker (spending no budget: the
    /// caller charges its own), removing it if its task completed.
    fn poll_slot(&mut self, slot: usize) -> Poll<Result<(Id, T), JoinError>> {
        // A wake may name a slot that was since joined (and maybe reused): polling the
        // current occupant once more is harmless.
        let Some(entry) = self.entries.get_mut(slot) else {
            return Poll::Pending;
        };
        let mut ecx = Context::from_waker(&entry.waker);
        let res = std::task::ready!(entry.handle.poll_output(&mut ecx));
        let id = entry.handle.id();
        self.entries.remove(slot);
        Poll::Ready(res.map(|out| (id, out)))
    }
}

impl<T: Send + 'static> JoinSet<T> {
    /// Spawns a task on the current runtime and adds it to the set.
    ///
    /// # Panics
    ///
    /// If there is no epitome runtime on this thread.
    #[track_caller]
    pub fn spawn<F>(&mut self, future: F) -> AbortHandle
    where
        F: Future<Output = T> + Send + 'static,
    {
        self.insert(crate::spawn(future))
    }

    /// Spawns a task on the given runtime and adds it to the set.
    pub fn spawn_on<F>(&mut self, future: F, handle: &crate::runtime::Handle) -> AbortHandle
    where
        F: Future<Output = T> + Send + 'static,
    {
        self.insert(handle.spawn(future))
    }

    /// Runs a blocking closure on the blocking pool and adds it to the set.
    ///
    /// # Panics
    ///
    /// If there is no epitome runtime on this thread.
    #[track_caller]
    pub fn spawn_blocking<F>(&mut self, f: F) -> AbortHandle
    where
        F: FnOnce() -> T + Send + 'static,
    {
        self.insert(super::spawn_blocking(f))
    }

    /// Runs a blocking closure on the given runtime's blocking pool and adds it to the
    /// set.
    pub fn spawn_blocking_on<F>(&mut self, f: F, handle: &crate::runtime::Handle) -> AbortHandle
    where
        F: FnOnce() -> T + Send + 'static,
    {
        self.insert(handle.spawn_blocking(f))
    }
}

impl<T: 'static> JoinSet<T> {
    /// Spawns a `!Send` task with [`spawn_local`](super::spawn_local) (on the current
    /// `LocalSet`, or else the current worker) and adds it to the set.
    #[track_caller]
    pub fn spawn_local<F>(&mut self, future: F) -> AbortHandle
    where
        F: Future<Output = T> + 'static,
    {
        self.insert(super::spawn_local(future))
    }

    /// Spawns a `!Send` task on `local_set` and adds it to the set.
    pub fn spawn_local_on<F>(&mut self, future: F, local_set: &super::LocalSet) -> AbortHandle
    where
        F: Future<Output = T> + 'static,
    {
        self.insert(local_set.spawn_local(future))
    }
}

/// Spawns every future on the current runtime (as [`JoinSet::spawn`]).
///
/// # Panics
///
/// If there is no epitome runtime on this thread.
impl<T, F> FromIterator<F> for JoinSet<T>
where
    F: Future<Output = T> + Send + 'static,
    T: Send + 'static,
{
    fn from_iter<I: IntoIterator<Item = F>>(iter: I) -> Self {
        let mut set = JoinSet::new();
        set.extend(iter);
        set
    }
}

/// Spawns every future on the current runtime and adds it (as [`JoinSet::spawn`]).
///
/// # Panics
///
/// If there is no epitome runtime on this thread.
impl<T, F> Extend<F> for JoinSet<T>
where
    F: Future<Output = T> + Send + 'static,
    T: Send + 'static,
{
    fn extend<I: IntoIterator<Item = F>>(&mut self, iter: I) {
        for future in iter {
            self.spawn(future);
        }
    }
}

impl<T> Drop for JoinSet<T> {
    fn drop(&mut self) {
        self.abort_all();
    }
}

impl<T> fmt::Debug for JoinSet<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("JoinSet").field("len", &self.len()).finish()
    }
}
