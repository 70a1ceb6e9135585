//! `JoinError`: why a task did not produce its output.

use std::any::Any;
use std::fmt;
use std::sync::Mutex;

use super::Id;

/// A task failed to complete: it was cancelled (aborted, or the runtime shut down) or
/// it panicked. The panic payload can be taken back with
/// [`into_panic`](JoinError::into_panic), for example to resume unwinding.
///
/// `Send + Sync`, so it converts into `Box<dyn Error + Send + Sync>` and
/// `io::Error::other` like any other error.
pub struct JoinError {
    id: Id,
    repr: Repr,
}

enum Repr {
    Cancelled,
    /// The payload is only `Send`; the mutex makes the error `Sync` without `unsafe`
    /// (it is only ever taken out by value). The message is read once, when the
    /// panic is caught, so `Display` never needs the payload.
    Panic {
        payload: Mutex<Box<dyn Any + Send + 'static>>,
        message: Option<String>,
    },
}

impl JoinError {
    pub(crate) fn cancelled(id: Id) -> JoinError {
        JoinError {
            id,
            repr: Repr::Cancelled,
        }
    }

    pub(crate) fn panic(id: Id, payload: Box<dyn Any + Send + 'static>) -> JoinError {
        JoinError {
            id,
            repr: Repr::Panic {
                message: panic_message(payload.as_ref()).map(str::to_owned),
                payload: Mutex::new(payload),
            },
        }
    }

    /// The task was cancelled before it completed.
    pub fn is_cancelled(&self) -> bool {
        matches!(self.repr, Repr::Cancelled)
    }

    /// The task panicked.
    pub fn is_panic(&self) -> bool {
        matches!(self.repr, Repr::Panic { .. })
    }

    /// The panic payload.
    ///
    /// # Panics
    ///
    /// If the task did not panic (check [`is_panic`](Self::is_panic) first, or use
    /// [`try_into_panic`](Self::try_into_panic)).
    #[track_caller]
    pub fn into_panic(self) -> Box<dyn Any + Send + 'static> {
        match self.try_into_panic() {
            Ok(payload) => payload,
            Err(e) => panic!("`JoinError` reason is not a panic: {e}"),
        }
    }

    /// The panic payload, or the error back if the task did not panic.
    pub fn try_into_panic(self) -> Result<Box<dyn Any + Send + 'static>, JoinError> {
        match self.repr {
            Repr::Panic { payload, .. } => Ok(payload
                .into_inner()
                .unwrap_or_else(|poisoned| poisoned.into_inner())),
            Repr::Cancelled => Err(self),
        }
    }

    /// The id of the task that failed.
    pub fn id(&self) -> Id {
        self.id
    }
}

/// Prints as tokio does, word for word (logs are matched on it): `task 7 was
/// cancelled`, `task 7 panicked with message "boom"`, or `task 7 panicked` for a
/// payload that is not a string.
impl fmt::Display for JoinError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.repr {
            Repr::Cancelled => write!(f, "task {} was cancelled", self.id),
            Repr::Panic { message, .. } => match message {
                Some(msg) => write!(f, "task {} panicked with message {msg:?}", self.id),
                None => write!(f, "task {} panicked", self.id),
            },
        }
    }
}

/// Prints as tokio does: `JoinError::Cancelled(Id(7))`,
/// `JoinError::Panic(Id(7), "boom", ...)`, or `JoinError::Panic(Id(7), ...)`.
impl fmt::Debug for JoinError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.repr {
            Repr::Cancelled => write!(f, "JoinError::Cancelled({:?})", self.id),
            Repr::Panic { message, .. } => match message {
                Some(msg) => write!(f, "JoinError::Panic({:?}, {msg:?}, ...)", self.id),
                None => write!(f, "JoinError::Panic({:?}, ...)", self.id),
            },
        }
    }
}

impl std::error::Error for JoinError {}

/// An `io::Error` of kind `Other` saying `task was cancelled` or `task panicked`, as
/// tokio's conversion does.
impl From<JoinError> for std::io::Error {
    fn from(e: JoinError) -> std::io::Error {
        std::io::Error::other(match e.repr {
            Repr::Cancelled => "task was cancelled",
            Repr::Panic { .. } => "task panicked",
        })
    }
}

/// Boxes a panic payload's message for display.
pub(crate) fn panic_message(payload: &(dyn Any + Send)) -> Option<&str> {
    payload
        .downcast_ref::<&str>()
        .copied()
        .or_else(|| payload.downcast_ref::<String>().map(String::as_str))
}

#[cfg(all(test, not(epitome_loom)))]
mod tests {
    use super::*;

    #[test]
    fn join_error_is_send_sync_and_converts_to_boxed_errors() {
        fn send_sync<T: Send + Sync + 'static>() {}
        send_sync::<JoinError>();
        let e = JoinError::panic(Id::next(), Box::new("boom"));
        assert!(e.is_panic());
        assert!(e.to_string().contains("\"boom\""), "{e}");
        let boxed: Box<dyn std::error::Error + Send + Sync> = Box::new(e);
        let io = std::io::Error::other(boxed);
        assert!(io.to_string().contains("boom"));
    }

    #[test]
    fn the_payload_comes_back_by_value() {
        let e = JoinError::panic(Id::next(), Box::new(42_u32));
        assert_eq!(e.to_string(), format!("task {} panicked", e.id()));
        let payload = e.into_panic();
        assert_eq!(payload.downcast_ref::<u32>(), Some(&42));
        let c = JoinError::cancelled(Id::next());
        assert!(c.is_cancelled());
        assert!(c.try_into_panic().is_err());
    }
}
