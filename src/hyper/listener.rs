//! The listeners [`serve`](super::serve) accepts on.

use std::future::Future;
use std::io;
use std::os::fd::OwnedFd;
use std::sync::Arc;

use epitome_net::{TcpListener, TcpStream, UnixListener, UnixStream};
use socket2::SockRef;

use super::Stream;

mod sealed {
    pub trait Sealed {}
}

/// A listening socket [`serve`](super::serve) accepts on: [`TcpListener`],
/// [`UnixListener`], or an `Arc` of either (to keep a handle, for example to read
/// [`TcpListener::resource_errors`] while serving).
pub trait Listener: sealed::Sealed + Send + Sync + 'static {
    /// The accepted stream.
    type Io: Stream + Send + Sync + Unpin + 'static;
    /// The peer's address: what a make-service such as axum's
    /// `into_make_service_with_connect_info` is called with.
    type Addr: Clone + Send + Sync + 'static;

    /// Accepts a connection (the listener's own `accept`).
    fn accept(&self) -> impl Future<Output = io::Result<(Self::Io, Self::Addr)>> + Send;

    /// The local address.
    fn local_addr(&self) -> io::Result<Self::Addr>;

    /// Accepts a connection already in the backlog without waiting (`Ok(None)`: none),
    /// straight from the kernel rather than through the reactor's readiness, so that a
    /// graceful shutdown can take every connection the kernel has completed before it
    /// closes the listener (which would reset them).
    #[doc(hidden)]
    fn accept_now(&self) -> io::Result<Option<(Self::Io, Self::Addr)>>;
}

/// `accept4` on the listener's fd, non-blocking; `None` when the backlog is empty.
fn accept_raw(listener: SockRef<'_>) -> io::Result<Option<(OwnedFd, socket2::SockAddr)>> {
    match listener.accept() {
        Ok((socket, addr)) => Ok(Some((socket.into(), addr))),
        Err(e) if e.kind() == io::ErrorKind::WouldBlock => Ok(None),
        Err(e) => Err(e),
    }
}

impl sealed::Sealed for TcpListener {}
impl Listener for TcpListener {
    type Io = TcpStream;
    type Addr = std::net::SocketAddr;

    /// Also sets `TCP_NODELAY`: hyper writes whole responses, and a small one must not
    /// wait for the peer's delayed ACK.
    async fn accept(&self) -> io::Result<(TcpStream, Self::Addr)> {
        let (stream, peer) = TcpListener::accept(self).await?;
        // Best effort: a connection without it is slower, not wrong.
        let _ = stream.set_nodelay(true);
        Ok((stream, peer))
    }

    fn local_addr(&self) -> io::Result<Self::Addr> {
        TcpListener::local_addr(self)
    }

    fn accept_now(&self) -> io::Result<Option<(TcpStream, Self::Addr)>> {
        let Some((fd, addr)) = accept_raw(SockRef::from(self))? else {
            return Ok(None);
        };
        let stream = TcpStream::from_std(std::net::TcpStream::from(fd))?;
        let _ = stream.set_nodelay(true);
        let addr = addr
            .as_socket()
            .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidData, "accepted a non-IP peer"))?;
        Ok(Some((stream, addr)))
    }
}

impl sealed::Sealed for UnixListener {}
impl Listener for UnixListener {
    type Io = UnixStream;
    type Addr = epitome_net::unix::SocketAddr;

    fn accept(&self) -> impl Future<Output = io::Result<(UnixStream, Self::Addr)>> + Send {
        UnixListener::accept(self)
    }

    fn local_addr(&self) -> io::Result<Self::Addr> {
        UnixListener::local_addr(self)
    }

    fn accept_now(&self) -> io::Result<Option<(UnixStream, Self::Addr)>> {
        let Some((fd, _)) = accept_raw(SockRef::from(self))? else {
            return Ok(None);
        };
        let stream = UnixStream::from_std(std::os::unix::net::UnixStream::from(fd))?;
        let addr = stream.peer_addr()?;
        Ok(Some((stream, addr)))
    }
}

impl<L: Listener> sealed::Sealed for Arc<L> {}
impl<L: Listener> Listener for Arc<L> {
    type Io = L::Io;
    type Addr = L::Addr;

    fn accept(&self) -> impl Future<Output = io::Result<(L::Io, L::Addr)>> + Send {
        (**self).accept()
    }

    fn local_addr(&self) -> io::Result<L::Addr> {
        (**self).local_addr()
    }

    fn accept_now(&self) -> io::Result<Option<(L::Io, L::Addr)>> {
        (**self).accept_now()
    }
}
