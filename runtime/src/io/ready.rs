//! `Ready`: the readiness a source was found in.

use std::fmt;
use std::ops;

use super::Interest;
use crate::reactor::scheduled_io::bits;

const READABLE: u8 = 1 << 0;
const WRITABLE: u8 = 1 << 1;
const READ_CLOSED: u8 = 1 << 2;
const WRITE_CLOSED: u8 = 1 << 3;
const PRIORITY: u8 = 1 << 4;
const ERROR: u8 = 1 << 5;

/// The readiness an I/O source was found in (tokio's `Ready`: the same constants,
/// predicates and operators).
///
/// `is_readable` is true for read-closed too, and `is_writable` for write-closed: an
/// operation then returns at once (end of stream, or an error), which is what a caller
/// waiting to read or write wants to know.
///
/// ```
/// use epitome_runtime::io::Ready;
///
/// let r = Ready::READABLE | Ready::WRITE_CLOSED;
/// assert!(r.is_readable() && r.is_writable() && r.is_write_closed());
/// assert!(!r.is_read_closed() && !r.is_error());
/// assert_eq!(r - Ready::READABLE, Ready::WRITE_CLOSED);
/// assert!(Ready::EMPTY.is_empty());
/// ```
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Ready(u8);

impl Ready {
    /// No readiness.
    pub const EMPTY: Ready = Ready(0);
    /// Readable.
    pub const READABLE: Ready = Ready(READABLE);
    /// Writable.
    pub const WRITABLE: Ready = Ready(WRITABLE);
    /// The read direction is closed (the peer shut down writing, or hang-up).
    pub const READ_CLOSED: Ready = Ready(READ_CLOSED);
    /// The write direction is closed (hang-up).
    pub const WRITE_CLOSED: Ready = Ready(WRITE_CLOSED);
    /// Urgent data (`EPOLLPRI`).
    pub const PRIORITY: Ready = Ready(PRIORITY);
    /// An error is pending (`EPOLLERR`).
    pub const ERROR: Ready = Ready(ERROR);
    /// Every readiness.
    pub const ALL: Ready =
        Ready(READABLE | WRITABLE | READ_CLOSED | WRITE_CLOSED | PRIORITY | ERROR);

    /// Whether nothing is ready.
    pub fn is_empty(self) -> bool {
        self.0 == 0
    }

    /// Readable or read-closed.
    pub fn is_readable(self) -> bool {
        self.0 & (READABLE | READ_CLOSED) != 0
    }

    /// Writable or write-closed.
    pub fn is_writable(self) -> bool {
        self.0 & (WRITABLE | WRITE_CLOSED) != 0
    }

    /// Read-closed.
    pub fn is_read_closed(self) -> bool {
        self.0 & READ_CLOSED != 0
    }

    /// Write-closed.
    pub fn is_write_closed(self) -> bool {
        self.0 & WRITE_CLOSED != 0
    }

    /// Urgent data.
    pub fn is_priority(self) -> bool {
        self.0 & PRIORITY != 0
    }

    /// An error is pending.
    pub fn is_error(self) -> bool {
        self.0 & ERROR != 0
    }

    /// The readiness recorded in a read-direction word.
    pub(crate) fn from_read_word(word: u64) -> Ready {
        let mut r = 0;
        if word & bits::READY != 0 {
            r |= READABLE;
        }
        if word & bits::CLOSED != 0 {
            r |= READ_CLOSED;
        }
        if word & bits::PRIORITY != 0 {
            r |= PRIORITY;
        }
        if word & bits::ERROR != 0 {
            r |= ERROR;
        }
        Ready(r)
    }

    /// The readiness recorded in a write-direction word.
    pub(crate) fn from_write_word(word: u64) -> Ready {
        let mut r = 0;
        if word & bits::READY != 0 {
            r |= WRITABLE;
        }
        if word & bits::CLOSED != 0 {
            r |= WRITE_CLOSED;
        }
        if word & bits::ERROR != 0 {
            r |= ERROR;
        }
        Ready(r)
    }

    /// The readiness that answers `interest` (as tokio: readable interest is answered
    /// by readable or read-closed, priority by priority or read-closed, ...).
    pub(crate) fn mask_of(interest: Interest) -> Ready {
        let mut r = 0;
        if interest.is_readable() {
            r |= READABLE | READ_CLOSED;
        }
        if interest.is_writable() {
            r |= WRITABLE | WRITE_CLOSED;
        }
        if interest.is_priority() {
            r |= PRIORITY | READ_CLOSED;
        }
        if interest.is_error() {
            r |= ERROR;
        }
        Ready(r)
    }

    /// The bits of a read-direction word that this readiness names.
    pub(crate) fn read_word_bits(self) -> u64 {
        let mut b = 0;
        if self.0 & READABLE != 0 {
            b |= bits::READY;
        }
        if self.0 & READ_CLOSED != 0 {
            b |= bits::CLOSED;
        }
        if self.0 & PRIORITY != 0 {
            b |= bits::PRIORITY;
        }
        if self.0 & ERROR != 0 {
            b |= bits::ERROR;
        }
        b
    }

    /// The bits of a write-direction word that this readiness names.
    pub(crate) fn write_word_bits(self) -> u64 {
        let mut b = 0;
        if self.0 & WRITABLE != 0 {
            b |= bits::READY;
        }
        if self.0 & WRITE_CLOSED != 0 {
            b |= bits::CLOSED;
        }
        if self.0 & ERROR != 0 {
            b |= bits::ERROR;
        }
        b
    }
}

impl ops::BitOr for Ready {
    type Output = Ready;

    fn bitor(self, other: Ready) -> Ready {
        Ready(self.0 | other.0)
    }
}

impl ops::BitOrAssign for Ready {
    fn bitor_assign(&mut self, other: Ready) {
        self.0 |= other.0;
    }
}

impl ops::BitAnd for Ready {
    type Output = Ready;

    fn bitand(self, other: Ready) -> Ready {
        Ready(self.0 & other.0)
    }
}

impl ops::Sub for Ready {
    type Output = Ready;

    fn sub(self, other: Ready) -> Ready {
        Ready(self.0 & !other.0)
    }
}

impl fmt::Debug for Ready {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Ready")
            .field("is_readable", &self.is_readable())
            .field("is_writable", &self.is_writable())
            .field("is_read_closed", &self.is_read_closed())
            .field("is_write_closed", &self.is_write_closed())
            .field("is_error", &self.is_error())
            .field("is_priority", &self.is_priority())
            .finish()
    }
}
