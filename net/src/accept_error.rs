//! What an accept error means for an accept loop: [`is_connection_error`] (one
//! incoming connection failed; go on) and [`is_resource_exhaustion`] (out of fds or
//! memory; back off, the connection waits in the backlog). Re-exported from
//! [`serve`](crate::serve) for accept loops written by hand.

use std::io;

/// The process or the system ran out of fds or memory (`EMFILE`, `ENFILE`, `ENOBUFS`,
/// `ENOMEM`): the connection stays in the listener's backlog, to be accepted once
/// something is freed. A loop should back off rather than retry at once
/// ([`TcpListener::accept`](crate::TcpListener::accept) does it for its next call).
///
/// ```
/// use std::io;
/// use epitome_net::serve::is_resource_exhaustion;
///
/// assert!(is_resource_exhaustion(&io::Error::from_raw_os_error(libc::EMFILE)));
/// assert!(!is_resource_exhaustion(&io::Error::from(io::ErrorKind::ConnectionAborted)));
/// ```
pub fn is_resource_exhaustion(e: &io::Error) -> bool {
    matches!(
        e.raw_os_error(),
        Some(libc::EMFILE | libc::ENFILE | libc::ENOBUFS | libc::ENOMEM)
    )
}

/// The error belongs to one incoming connection, not to the listener: accept(2) says
/// to treat the network errors it passes on (`EPROTO`, `ENETDOWN`, `EHOSTUNREACH`, ...)
/// like `EAGAIN` and retry, and a connection reset or aborted before it was accepted
/// is the same. An accept loop goes on to the next connection.
///
/// ```
/// use std::io;
/// use epitome_net::serve::is_connection_error;
///
/// assert!(is_connection_error(&io::Error::from(io::ErrorKind::ConnectionAborted)));
/// assert!(is_connection_error(&io::Error::from_raw_os_error(libc::EPROTO)));
/// assert!(!is_connection_error(&io::Error::from_raw_os_error(libc::EBADF)));
/// ```
pub fn is_connection_error(e: &io::Error) -> bool {
    matches!(
        e.kind(),
        io::ErrorKind::ConnectionAborted
            | io::ErrorKind::ConnectionReset
            | io::ErrorKind::ConnectionRefused
            | io::ErrorKind::Interrupted
            | io::ErrorKind::WouldBlock
    ) || matches!(
        e.raw_os_error(),
        Some(
            libc::EPROTO
                | libc::ENOPROTOOPT
                | libc::EHOSTDOWN
                | libc::ENONET
                | libc::EHOSTUNREACH
                | libc::EOPNOTSUPP
                | libc::ENETUNREACH
                | libc::ENETDOWN
                | libc::EPERM
        )
    )
}
