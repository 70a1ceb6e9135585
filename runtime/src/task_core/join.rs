//! `JoinHandle` and `AbortHandle`.

use std::fmt;
use std::future::Future;
use std::marker::PhantomData;
use std::pin::Pin;
use std::ptr::NonNull;
use std::task::{Context, Poll};

use super::Id;
use super::error::JoinError;
use super::header::{self, Header};
use super::state::COMPLETE;
use crate::coop;

/// An owned permission to await a task's output (`Result<T, JoinError>`).
///
/// Dropping a `JoinHandle` detaches the task: it keeps running and its output is
/// dropped when it completes. [`abort`](Self::abort) cancels it instead.
///
/// Awaiting a handle spends one unit of the awaiting task's cooperative budget (see
/// [`task::coop`](crate::task::coop)); [`is_finished`](Self::is_finished) and
/// [`id`](Self::id) are plain reads that never do.
///
/// ```
/// use std::future::pending;
///
/// # fn main() -> std::io::Result<()> {
/// let rt = epitome_runtime::runtime::Builder::new_current_thread().build()?;
/// rt.block_on(async {
///     let done = epitome_runtime::spawn(async { "done" });
///     let stuck = epitome_runtime::spawn(pending::<()>());
///     stuck.abort();
///     assert_eq!(done.await?, "done");
///     let err = stuck.await.unwrap_err();
///     assert!(err.is_cancelled());
///     println!("{err}"); // task 2 was cancelled
///     Ok(())
/// })
/// # }
/// ```
pub struct JoinHandle<T> {
    raw: NonNull<Header>,
    _output: PhantomData<T>,
}

// SAFETY: the handle only moves the output (a `T`) across threads.
unsafe impl<T: Send> Send for JoinHandle<T> {}
// SAFETY: `&JoinHandle` only reads the state word.
unsafe impl<T: Send> Sync for JoinHandle<T> {}

impl<T> Unpin for JoinHandle<T> {}

impl<T> JoinHandle<T> {
    /// # Safety
    /// `raw` carries the JoinHandle's reference of a task whose output is `T`.
    pub(crate) unsafe fn from_raw(raw: NonNull<Header>) -> JoinHandle<T> {
        JoinHandle {
            raw,
            _output: PhantomData,
        }
    }

    fn header(&self) -> &Header {
        // SAFETY: the handle holds a reference, so the header is live.
        unsafe { self.raw.as_ref() }
    }

    /// Cancels the task. A task that is running is cancelled when its current poll
    /// returns; one that is idle or queued is cancelled by its own worker (so a `!Send`
    /// future is dropped on its thread). Awaiting the handle then gives a cancelled
    /// `JoinError`, unless the task completed first. Aborting a finished task does
    /// nothing.
    pub fn abort(&self) {
        // SAFETY: the handle holds a reference.
        unsafe { header::abort(self.raw) }
    }

    /// Whether the task has completed (finished, panicked or been cancelled).
    pub fn is_finished(&self) -> bool {
        self.header().state.load().has(COMPLETE)
    }

    /// A handle that can abort the task without awaiting it.
    pub fn abort_handle(&self) -> AbortHandle {
        self.header().state.ref_inc();
        AbortHandle { raw: self.raw }
    }

    /// The task's id.
    pub fn id(&self) -> Id {
        self.header().id
    }
}

impl<T> JoinHandle<T> {
    /// Takes the output if the task completed, else registers `cx`'s waker; spends no
    /// cooperative budget (for callers that charge it themselves, or never should).
    pub(crate) fn poll_output(&mut self, cx: &mut Context<'_>) -> Poll<Result<T, JoinError>> {
        let mut out: Poll<Result<T, JoinError>> = Poll::Pending;
        // SAFETY: the handle holds a reference and `out` has the task's output type.
        unsafe {
            (self.header().vtable.try_read_output)(
                self.raw,
                (&mut out as *mut Poll<_>).cast(),
                cx.waker(),
            )
        };
        out
    }
}

impl<T> Future for JoinHandle<T> {
    type Output = Result<T, JoinError>;

    /// Spends one unit of the awaiting task's cooperative budget per poll that finds
    /// the output (a spent budget answers `Pending` and wakes the task at once).
    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let coop = std::task::ready!(coop::poll_proceed(cx));
        let out = self.poll_output(cx);
        if out.is_ready() {
            coop.made_progress();
        }
        out
    }
}

impl<T> Drop for JoinHandle<T> {
    fn drop(&mut self) {
        // SAFETY: gives up the handle's reference.
        unsafe { (self.header().vtable.drop_join_handle)(self.raw) }
    }
}

impl<T> fmt::Debug for JoinHandle<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("JoinHandle")
            .field("id", &self.id())
            .finish()
    }
}

/// A handle that cancels a task; it cannot await the output.
pub struct AbortHandle {
    raw: NonNull<Header>,
}

// SAFETY: an AbortHandle only touches the state word and the task's scheduler.
unsafe impl Send for AbortHandle {}
// SAFETY: as above.
unsafe impl Sync for AbortHandle {}

impl AbortHandle {
    /// Cancels the task (see [`JoinHandle::abort`]).
    pub fn abort(&self) {
        // SAFETY: the handle holds a reference.
        unsafe { header::abort(self.raw) }
    }

    /// Whether the task has completed.
    pub fn is_finished(&self) -> bool {
        // SAFETY: the handle holds a reference.
        unsafe { self.raw.as_ref() }.state.load().has(COMPLETE)
    }

    /// The task's id.
    pub fn id(&self) -> Id {
        // SAFETY: the handle holds a reference.
        unsafe { self.raw.as_ref() }.id
    }
}

impl Clone for AbortHandle {
    fn clone(&self) -> AbortHandle {
        // SAFETY: the handle holds a reference.
        unsafe { self.raw.as_ref() }.state.ref_inc();
        AbortHandle { raw: self.raw }
    }
}

impl Drop for AbortHandle {
    fn drop(&mut self) {
        // SAFETY: gives up the handle's reference.
        unsafe { header::drop_reference(self.raw) }
    }
}

impl fmt::Debug for AbortHandle {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AbortHandle")
            .field("id", &self.id())
            .finish()
    }
}

#[cfg(test)]
pub(super) mod tests {
    use std::collections::VecDeque;
    use std::sync::{Arc, Mutex};
    use std::task::Waker;

    use super::super::{Notified, Schedule, new_task};
    use super::*;

    /// A run queue for the task layer's unit tests; every task counts as held by an
    /// owner list (`release` answers true, as a worker's does).
    #[derive(Clone, Default)]
    pub(in crate::task_core) struct TestScheduler(Arc<Mutex<VecDeque<Notified>>>);

    impl TestScheduler {
        /// Runs queued tasks until none is left.
        pub(in crate::task_core) fn run_queued(&self) {
            loop {
                let task = self.0.lock().unwrap().pop_front();
                match task {
                    Some(task) => task.run(),
                    None => return,
                }
            }
        }

        /// Tasks not yet freed (each holds a clone of the scheduler).
        pub(in crate::task_core) fn tasks_alive(&self) -> usize {
            Arc::strong_count(&self.0) - 1
        }
    }

    impl Schedule for TestScheduler {
        fn schedule(&self, task: Notified) {
            self.0.lock().unwrap().push_back(task);
        }
        fn release(&self, _task: NonNull<Header>) -> bool {
            true
        }
    }

    fn poll_handle<T>(handle: &mut JoinHandle<T>) -> Poll<Result<T, JoinError>> {
        Pin::new(handle).poll(&mut Context::from_waker(Waker::noop()))
    }

    /// An `AbortHandle` (and its clone) cancels an idle task, reports it finished,
    /// names it, and gives its references back: the task is freed once every handle
    /// is gone.
    #[test]
    fn an_abort_handle_cancels_names_and_frees_the_task() {
        crate::loom::unit_test(|| {
            let sched = TestScheduler::default();
            let (first, mut handle) = new_task(std::future::pending::<()>(), sched.clone());
            first.run();
            let abort = handle.abort_handle();
            let clone = abort.clone();
            assert_eq!(abort.id(), handle.id());
            assert_eq!(clone.id(), handle.id());
            assert!(!abort.is_finished() && !clone.is_finished() && !handle.is_finished());
            assert!(
                format!("{abort:?}").contains(&format!("{:?}", handle.id())),
                "{abort:?}"
            );
            assert!(
                format!("{handle:?}").starts_with("JoinHandle")
                    && format!("{handle:?}").contains(&format!("{:?}", handle.id())),
                "{handle:?}"
            );

            clone.abort();
            drop(clone);
            sched.run_queued();
            assert!(abort.is_finished() && handle.is_finished());
            match poll_handle(&mut handle) {
                Poll::Ready(Err(e)) => assert!(e.is_cancelled(), "{e}"),
                other => panic!(
                    "an aborted task's handle gave {:?}",
                    other.map(|r| r.is_ok())
                ),
            }
            assert_eq!(sched.tasks_alive(), 1, "freed with an AbortHandle left");
            drop(handle);
            assert_eq!(sched.tasks_alive(), 1, "freed with an AbortHandle left");
            drop(abort);
            assert_eq!(sched.tasks_alive(), 0, "the task outlived its handles");
        });
    }

    /// `JoinHandle::abort` cancels an idle task; a handle dropped unread frees it; and
    /// every task has its own id.
    #[test]
    fn a_join_handle_aborts_its_task_and_ids_differ() {
        crate::loom::unit_test(|| {
            let sched = TestScheduler::default();
            let (first, mut handle) = new_task(std::future::pending::<()>(), sched.clone());
            let (second, mut done) = new_task(async { 7 }, sched.clone());
            assert_ne!(handle.id(), done.id());
            first.run();
            second.run();
            assert!(done.is_finished() && !handle.is_finished());
            assert!(matches!(poll_handle(&mut done), Poll::Ready(Ok(7))));
            drop(done);
            assert_eq!(sched.tasks_alive(), 1);

            handle.abort();
            sched.run_queued();
            assert!(handle.is_finished());
            assert!(matches!(poll_handle(&mut handle), Poll::Ready(Err(e)) if e.is_cancelled()));
            drop(handle);
            assert_eq!(sched.tasks_alive(), 0, "the task outlived its handle");
        });
    }
}
