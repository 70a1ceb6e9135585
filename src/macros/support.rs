//! What the expansions of `select!`, `join!` and `try_join!` name through
//! `$crate::__private`. Not API: only the macros use it.

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll, ready};

pub use std::future::{IntoFuture, poll_fn};
pub use std::pin::pin;
pub use std::task::Poll as PollResult;

/// A branch index in `0..branches`, for `select!`'s random start.
pub fn random_below(branches: u32) -> u32 {
    fastrand::u32(..branches)
}

/// A future and then its output, for `join!` and `try_join!`.
pub enum MaybeDone<F: Future> {
    /// Still running.
    Future(F),
    /// Finished; the output not yet taken.
    Done(F::Output),
    /// The output was taken.
    Gone,
}

impl<F: Future> MaybeDone<F> {
    /// Wraps a future.
    pub fn new(future: F) -> MaybeDone<F> {
        MaybeDone::Future(future)
    }

    /// The output, once: `None` if not finished or already taken.
    pub fn take_output(self: Pin<&mut Self>) -> Option<F::Output> {
        // SAFETY: only the `Future` variant is pinned (structurally), and it is never
        // moved: `replace` runs only on the `Done` variant.
        let this = unsafe { self.get_unchecked_mut() };
        if !matches!(this, MaybeDone::Done(_)) {
            return None;
        }
        match std::mem::replace(this, MaybeDone::Gone) {
            MaybeDone::Done(out) => Some(out),
            _ => None,
        }
    }

    /// The output, borrowed, if finished and not taken.
    pub fn output_mut(self: Pin<&mut Self>) -> Option<&mut F::Output> {
        // SAFETY: the output is not structurally pinned; nothing is moved.
        match unsafe { self.get_unchecked_mut() } {
            MaybeDone::Done(out) => Some(out),
            _ => None,
        }
    }
}

impl<F: Future> Future for MaybeDone<F> {
    type Output = ();

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        // SAFETY: the `Future` variant's future is pinned in place and polled through
        // a pinned reference; it is dropped in place (by the assignment) once done,
        // never moved.
        let this = unsafe { self.get_unchecked_mut() };
        if let MaybeDone::Future(future) = this {
            // SAFETY: `future` lives in pinned memory (see above).
            let out = ready!(unsafe { Pin::new_unchecked(future) }.poll(cx));
            *this = MaybeDone::Done(out);
        }
        Poll::Ready(())
    }
}

/// `try_join!`'s check after a branch finished: its error, if it failed.
pub fn take_err<F, T, E>(done: Pin<&mut MaybeDone<F>>) -> Option<E>
where
    F: Future<Output = Result<T, E>>,
{
    let mut done = done;
    if matches!(done.as_mut().output_mut(), Some(Err(_))) {
        if let Some(Err(e)) = done.take_output() {
            return Some(e);
        }
    }
    None
}
