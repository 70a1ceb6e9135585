//! `JoinSet`: a set of tasks awaited in completion order.

use std::fmt;
use std::future::{Future, poll_fn};
use std::pin::Pin;
use std::task::{Context, Poll, Wake, Waker};

use slab::Slab;

use super::{AbortHandle, JoinError, JoinHandle};
use crate::loom::os::sync::Arc;
use crate::loom::sync::Mutex;

/// A collection of spawned tasks, awaited in the order they complete.
///
/// Each task gets its own waker that marks it as worth polling, so
/// [`join_next`](Self::join_next) polls only the tasks that have been woken: its
/// cost does not grow with the number of tasks in the set. Dropping the set aborts
/// every task still in it.
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
            let mut st = self.shared.state.lock().unwrap_or_else(|e| e.into_inner());
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

    /// The number of tasks in the set.
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
        self.shared
            .state
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .ready
            .push_back(slot);
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
        self.shared
            .state
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .ready
            .clear();
    }

    /// Waits for the next task to complete and returns its output; `None` once the set
    /// is empty.
    pub async fn join_next(&mut self) -> Option<Result<T, JoinError>> {
        poll_fn(|cx| self.poll_join_next(cx)).await
    }

    /// The output of a task that has already completed, if any, without waiting.
    pub fn try_join_next(&mut self) -> Option<Result<T, JoinError>> {
        let noop = Waker::noop();
        let mut cx = Context::from_waker(noop);
        match self.poll_join_next(&mut cx) {
            Poll::Ready(r) => r,
            Poll::Pending => None,
        }
    }

    /// Polls for the next completed task.
    pub fn poll_join_next(&mut self, cx: &mut Context<'_>) -> Poll<Option<Result<T, JoinError>>> {
        if self.entries.is_empty() {
            return Poll::Ready(None);
        }
        // The set spends one unit of the caller's budget per poll and polls its handles
        // unconstrained: a handle answering `Pending` for budget reasons would wake its
        // entry at once and this loop would pop it forever.
        let coop = std::task::ready!(crate::coop::poll_proceed(cx));
        crate::coop::unconstrained(|| self.poll_join_next_inner(cx)).map(|r| {
            coop.made_progress();
            r
        })
    }

    fn poll_join_next_inner(&mut self, cx: &mut Context<'_>) -> Poll<Option<Result<T, JoinError>>> {
        loop {
            let next = {
                let mut st = self.shared.state.lock().unwrap_or_else(|e| e.into_inner());
                match st.ready.pop_front() {
                    Some(slot) => slot,
                    None => {
                        st.waiter = Some(cx.waker().clone());
                        return Poll::Pending;
                    }
                }
            };
            // A wake may name a slot that was since joined (and maybe reused): polling
            // the current occupant once more is harmless.
            let Some(entry) = self.entries.get_mut(next) else {
                continue;
            };
            let mut ecx = Context::from_waker(&entry.waker);
            if let Poll::Ready(res) = Pin::new(&mut entry.handle).poll(&mut ecx) {
                self.entries.remove(next);
                return Poll::Ready(Some(res));
            }
        }
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
    #[track_caller]
    pub fn spawn_blocking<F>(&mut self, f: F) -> AbortHandle
    where
        F: FnOnce() -> T + Send + 'static,
    {
        self.insert(super::spawn_blocking(f))
    }
}

impl<T: 'static> JoinSet<T> {
    /// Spawns a `!Send` task on the current worker and adds it to the set.
    #[track_caller]
    pub fn spawn_local<F>(&mut self, future: F) -> AbortHandle
    where
        F: Future<Output = T> + 'static,
    {
        self.insert(super::spawn_local(future))
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
