//! `UnixListener`.

use std::fmt;
use std::io;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, RawFd};
use std::path::Path;
use std::pin::Pin;
use std::task::{Context, Poll};

use epitome_runtime::io::SharedAsync;
use futures_core::Stream;

use super::{SocketAddr, UnixStream};
use crate::addr::BoxFuture;

/// A Unix domain listening socket; like [`TcpListener`](crate::TcpListener), `accept`
/// takes `&self` and wakes one waiting task (and one worker) per connection.
///
/// ```
/// use epitome_net::{UnixListener, UnixStream};
///
/// let rt = epitome_runtime::runtime::Builder::new_current_thread().build()?;
/// rt.block_on(async {
///     // A leading NUL names an abstract address: no file to clean up.
///     let name = format!("\0epitome-doc-listener-{}", std::process::id());
///     let listener = UnixListener::bind(&name)?;
///     let client = UnixStream::connect(&name).await?;
///     let (server, _peer) = listener.accept().await?;
///     client.write_all(b"hi").await?;
///     let mut buf = [0; 2];
///     server.read_exact(&mut buf).await?;
///     assert_eq!(&buf, b"hi");
///     Ok::<_, std::io::Error>(())
/// })?;
/// # Ok::<_, std::io::Error>(())
/// ```
pub struct UnixListener {
    io: SharedAsync<std::os::unix::net::UnixListener>,
}

impl UnixListener {
    /// Binds to `path` and listens. A path whose first byte is NUL (`"\0name"`) is an
    /// abstract address, as in [`bind_addr`](Self::bind_addr).
    pub fn bind(path: impl AsRef<Path>) -> io::Result<UnixListener> {
        UnixListener::bind_addr(&super::path_addr(path.as_ref())?)
    }

    /// Binds to `addr` (a path or an abstract address) and listens.
    pub fn bind_addr(addr: &SocketAddr) -> io::Result<UnixListener> {
        UnixListener::from_std(std::os::unix::net::UnixListener::bind_addr(addr)?)
    }

    /// Wraps a listening std socket (made non-blocking here).
    pub fn from_std(listener: std::os::unix::net::UnixListener) -> io::Result<UnixListener> {
        listener.set_nonblocking(true)?;
        Ok(UnixListener {
            io: SharedAsync::new(listener),
        })
    }

    /// Deregisters and gives the std listener back (still non-blocking).
    pub fn into_std(self) -> io::Result<std::os::unix::net::UnixListener> {
        Ok(self.io.into_inner())
    }

    /// Accepts a connection (cancel-safe).
    pub async fn accept(&self) -> io::Result<(UnixStream, SocketAddr)> {
        let (stream, addr) = self.io.read_with_exclusive(|l| l.accept()).await?;
        stream.set_nonblocking(true)?;
        Ok((UnixStream::from_ready(stream)?, addr))
    }

    /// Polls for a connection (tokio's `poll_accept`). As for
    /// [`TcpListener::poll_accept`](crate::TcpListener::poll_accept), polling tasks
    /// wait behind the tasks in [`accept`](Self::accept).
    pub fn poll_accept(&self, cx: &mut Context<'_>) -> Poll<io::Result<(UnixStream, SocketAddr)>> {
        let (stream, addr) = std::task::ready!(self.io.poll_read_with(cx, |l| l.accept()))?;
        stream.set_nonblocking(true)?;
        Poll::Ready(Ok((UnixStream::from_ready(stream)?, addr)))
    }

    /// The accepted connections as a stream.
    pub fn incoming(&self) -> Incoming<'_> {
        Incoming {
            listener: self,
            accept: None,
        }
    }

    /// The local address.
    pub fn local_addr(&self) -> io::Result<SocketAddr> {
        self.io.get_ref().local_addr()
    }

    /// Takes the pending socket error, if any.
    pub fn take_error(&self) -> io::Result<Option<io::Error>> {
        self.io.get_ref().take_error()
    }
}

/// The stream of [`UnixListener::incoming`].
pub struct Incoming<'a> {
    listener: &'a UnixListener,
    accept: Option<BoxFuture<'a, io::Result<(UnixStream, SocketAddr)>>>,
}

impl Stream for Incoming<'_> {
    type Item = io::Result<UnixStream>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let listener = self.listener;
        let fut = self
            .accept
            .get_or_insert_with(|| Box::pin(listener.accept()));
        match fut.as_mut().poll(cx) {
            Poll::Ready(res) => {
                self.accept = None;
                Poll::Ready(Some(res.map(|(s, _)| s)))
            }
            Poll::Pending => Poll::Pending,
        }
    }
}

impl AsFd for UnixListener {
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.io.as_fd()
    }
}

impl AsRawFd for UnixListener {
    fn as_raw_fd(&self) -> RawFd {
        self.io.as_raw_fd()
    }
}

impl fmt::Debug for UnixListener {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("UnixListener")
            .field("local", &self.local_addr().ok())
            .finish()
    }
}
