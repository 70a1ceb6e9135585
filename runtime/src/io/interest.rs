//! `Interest`: which readiness a caller waits for.

use std::fmt;
use std::ops;

const READABLE: u8 = 1 << 0;
const WRITABLE: u8 = 1 << 1;
const PRIORITY: u8 = 1 << 4;
const ERROR: u8 = 1 << 5;

/// The readiness a caller waits for in `ready(interest)`, or names in `try_io` and
/// `async_io` (tokio's `Interest`, with the same constants, methods and operators).
///
/// Interests combine with `|`. Every source is registered with its reactor for all of
/// them at once (edge-triggered, read and write), so an interest only says what to wait
/// for, never how the fd is registered.
///
/// ```
/// use epitome_runtime::io::Interest;
///
/// let both = Interest::READABLE | Interest::WRITABLE;
/// assert!(both.is_readable() && both.is_writable());
/// assert_eq!(both.remove(Interest::READABLE), Some(Interest::WRITABLE));
/// assert_eq!(format!("{both:?}"), "READABLE | WRITABLE");
/// ```
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct Interest(u8);

impl Interest {
    /// Readable, read-closed included (the peer shut down writing, or hung up).
    pub const READABLE: Interest = Interest(READABLE);

    /// Writable, write-closed included (hang-up).
    pub const WRITABLE: Interest = Interest(WRITABLE);

    /// Urgent data (`EPOLLPRI`: TCP out-of-band data, a `/proc/self/mounts` change,
    /// ...), read-closed included.
    pub const PRIORITY: Interest = Interest(PRIORITY);

    /// An error pending on the fd (`EPOLLERR`, which epoll always reports).
    pub const ERROR: Interest = Interest(ERROR);

    /// Whether the set includes [`READABLE`](Self::READABLE).
    pub const fn is_readable(self) -> bool {
        self.0 & READABLE != 0
    }

    /// Whether the set includes [`WRITABLE`](Self::WRITABLE).
    pub const fn is_writable(self) -> bool {
        self.0 & WRITABLE != 0
    }

    /// Whether the set includes [`PRIORITY`](Self::PRIORITY).
    pub const fn is_priority(self) -> bool {
        self.0 & PRIORITY != 0
    }

    /// Whether the set includes [`ERROR`](Self::ERROR).
    pub const fn is_error(self) -> bool {
        self.0 & ERROR != 0
    }

    /// The union of two sets (`|` in a `const`).
    #[must_use = "this returns the union, without modifying `self`"]
    pub const fn add(self, other: Interest) -> Interest {
        Interest(self.0 | other.0)
    }

    /// `self` without `other`, or `None` if nothing is left (an interest is never
    /// empty).
    #[must_use = "this returns the difference, without modifying `self`"]
    pub fn remove(self, other: Interest) -> Option<Interest> {
        let left = self.0 & !other.0;
        (left != 0).then_some(Interest(left))
    }

    /// Whether waiting for this interest involves the read direction's word (readable,
    /// priority and error are all recorded there).
    pub(crate) const fn uses_read(self) -> bool {
        self.0 & (READABLE | PRIORITY | ERROR) != 0
    }

    /// Whether it involves the write direction's word.
    pub(crate) const fn uses_write(self) -> bool {
        self.0 & WRITABLE != 0
    }
}

impl ops::BitOr for Interest {
    type Output = Interest;

    fn bitor(self, other: Interest) -> Interest {
        self.add(other)
    }
}

impl ops::BitOrAssign for Interest {
    fn bitor_assign(&mut self, other: Interest) {
        *self = self.add(other);
    }
}

impl fmt::Debug for Interest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let names = [
            (READABLE, "READABLE"),
            (WRITABLE, "WRITABLE"),
            (PRIORITY, "PRIORITY"),
            (ERROR, "ERROR"),
        ];
        let mut first = true;
        for (bit, name) in names {
            if self.0 & bit != 0 {
                if !first {
                    f.write_str(" | ")?;
                }
                f.write_str(name)?;
                first = false;
            }
        }
        Ok(())
    }
}
