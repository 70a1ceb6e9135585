//! Errors returned by the timer utilities.

use std::error::Error;
use std::fmt;
use std::io;

/// The error of a [`Timeout`](super::Timeout) whose deadline passed before its future
/// completed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Elapsed(());

impl Elapsed {
    pub(crate) fn new() -> Elapsed {
        Elapsed(())
    }
}

impl fmt::Display for Elapsed {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("deadline has elapsed")
    }
}

impl Error for Elapsed {}

impl From<Elapsed> for io::Error {
    /// An [`io::ErrorKind::TimedOut`] error, so `?` works in functions returning
    /// `io::Result`.
    fn from(elapsed: Elapsed) -> io::Error {
        io::Error::new(io::ErrorKind::TimedOut, elapsed)
    }
}

#[cfg(all(test, not(epitome_loom)))]
mod tests {
    use super::*;

    #[test]
    fn elapsed_converts_to_timed_out() {
        let e = Elapsed::new();
        assert_eq!(e.to_string(), "deadline has elapsed");
        assert_eq!(e.clone(), e);
        let io: io::Error = e.into();
        assert_eq!(io.kind(), io::ErrorKind::TimedOut);
        assert_eq!(io.to_string(), "deadline has elapsed");
        assert!(io.get_ref().unwrap().is::<Elapsed>());
    }
}
