//! Unix domain sockets: stream listeners and streams, and datagram sockets, with path
//! or abstract (Linux) addresses.

mod datagram;
mod listener;
mod stream;

pub use datagram::UnixDatagram;
pub use listener::UnixListener;
pub use std::os::unix::net::SocketAddr;
pub use stream::{OwnedReadHalf, OwnedWriteHalf, ReadHalf, ReuniteError, UnixStream, WriteHalf};

use std::io;
use std::os::linux::net::SocketAddrExt;
use std::os::unix::ffi::OsStrExt;
use std::path::Path;

/// The socket2 form of a std Unix address (path or abstract; unnamed has no form).
pub(crate) fn to_sockaddr(addr: &SocketAddr) -> io::Result<socket2::SockAddr> {
    if let Some(path) = addr.as_pathname() {
        return socket2::SockAddr::unix(path);
    }
    if let Some(name) = addr.as_abstract_name() {
        let mut bytes = Vec::with_capacity(name.len() + 1);
        bytes.push(0);
        bytes.extend_from_slice(name);
        let os = <std::ffi::OsStr as std::os::unix::ffi::OsStrExt>::from_bytes(&bytes);
        return socket2::SockAddr::unix(os);
    }
    Err(io::Error::new(
        io::ErrorKind::InvalidInput,
        "an unnamed Unix address cannot be connected or bound to",
    ))
}

/// The address a path names: a path whose first byte is NUL (`"\0name"`) is the
/// abstract address `name` (Linux), as the kernel and tokio read it; any other path is
/// a filesystem path.
pub(crate) fn path_addr(path: &Path) -> io::Result<SocketAddr> {
    match path.as_os_str().as_bytes().split_first() {
        Some((0, name)) => SocketAddr::from_abstract_name(name),
        _ => SocketAddr::from_pathname(path),
    }
}

/// A std Unix address for an abstract name.
pub fn abstract_addr(name: impl AsRef<[u8]>) -> io::Result<SocketAddr> {
    SocketAddr::from_abstract_name(name)
}
