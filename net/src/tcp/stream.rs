//! `TcpStream`.

use std::fmt;
use std::io::{self, IoSlice, IoSliceMut};
use std::net::{Shutdown, SocketAddr};
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, RawFd};
use std::time::Duration;

use epitome_runtime::io::Async;
use socket2::SockRef;

use crate::addr::{ToSocketAddrs, each_addr};
use crate::stream_io::StreamIo;
use crate::tcp::TcpSocket;

/// A TCP connection.
///
/// ```
/// use epitome_net::{TcpListener, TcpStream};
///
/// let rt = epitome_runtime::runtime::Builder::new_current_thread().build()?;
/// rt.block_on(async {
///     let listener = TcpListener::bind("127.0.0.1:0").await?;
///     let client = TcpStream::connect(listener.local_addr()?).await?;
///     let (server, _peer) = listener.accept().await?;
///     client.write_all(b"hello").await?;
///     let mut buf = [0; 5];
///     server.read_exact(&mut buf).await?;
///     assert_eq!(&buf, b"hello");
///     Ok::<_, std::io::Error>(())
/// })?;
/// # Ok::<_, std::io::Error>(())
/// ```
///
/// Reads and writes take `&self`, so a stream can be shared (`&TcpStream` also
/// implements the I/O traits) and split without locks. Every operation waits for the
/// socket's readiness in the reactor of the worker that created the stream.
///
/// Dropping the stream deletes it from its reactor, then closes it.
///
/// # Cancellation
///
/// `read`, `write`, `peek`, `readable` and `writable` are cancel-safe: a dropped future
/// has either done its one syscall or none, so no received byte is lost. `read_exact`
/// and `write_all` may have made partial progress (into and out of your buffer) when
/// dropped.
pub struct TcpStream {
    pub(crate) io: StreamIo<std::net::TcpStream>,
}

crate::split::stream_impls!(
    TcpStream,
    ReadHalf,
    WriteHalf,
    OwnedReadHalf,
    OwnedWriteHalf,
    ReuniteError,
    std::net::SocketAddr
);

impl TcpStream {
    /// Connects to `addr`, trying each resolved address in turn: a non-blocking
    /// `connect`, then waiting for writability, then `SO_ERROR`.
    pub async fn connect<A: ToSocketAddrs>(addr: A) -> io::Result<TcpStream> {
        each_addr(addr, |a| async move {
            let socket = if a.is_ipv4() {
                TcpSocket::new_v4()?
            } else {
                TcpSocket::new_v6()?
            };
            socket.connect(a).await
        })
        .await
    }

    /// Registers a connected socket (made non-blocking here).
    pub fn from_std(stream: std::net::TcpStream) -> io::Result<TcpStream> {
        stream.set_nonblocking(true)?;
        Ok(TcpStream {
            io: StreamIo {
                io: Async::new_nonblocking(stream)?,
            },
        })
    }

    /// A just-accepted or just-connected socket: assumed readable and writable, so the
    /// first operation is tried without waiting for an event.
    pub(crate) fn from_ready(stream: std::net::TcpStream) -> io::Result<TcpStream> {
        Ok(TcpStream {
            io: StreamIo {
                io: Async::new_ready(stream)?,
            },
        })
    }

    /// A socket whose non-blocking connect is in progress.
    pub(crate) fn from_connecting(stream: std::net::TcpStream) -> io::Result<TcpStream> {
        Ok(TcpStream {
            io: StreamIo {
                io: Async::new_nonblocking(stream)?,
            },
        })
    }

    /// Deregisters and gives the std socket back (still non-blocking).
    pub fn into_std(self) -> io::Result<std::net::TcpStream> {
        self.io.io.into_inner()
    }

    /// Polls a read into memory that may be uninitialised (for runtime adapters such as
    /// hyper's `Read`): on `Ready(Ok(n))` the first `n` bytes of `buf` are initialised.
    pub fn poll_read_uninit(
        &self,
        cx: &mut std::task::Context<'_>,
        buf: &mut [std::mem::MaybeUninit<u8>],
    ) -> std::task::Poll<io::Result<usize>> {
        self.io.poll_read_uninit(cx, buf)
    }

    /// Polls a write of `buf`.
    pub fn poll_write(
        &self,
        cx: &mut std::task::Context<'_>,
        buf: &[u8],
    ) -> std::task::Poll<io::Result<usize>> {
        self.io.poll_write(cx, buf)
    }

    /// Polls a vectored write of `bufs`.
    pub fn poll_write_vectored(
        &self,
        cx: &mut std::task::Context<'_>,
        bufs: &[IoSlice<'_>],
    ) -> std::task::Poll<io::Result<usize>> {
        self.io.poll_write_vectored(cx, bufs)
    }

    /// Reads into `buf`; `Ok(0)` is end of stream (or an empty `buf`).
    pub fn read<'a>(&'a self, buf: &'a mut [u8]) -> impl Future<Output = io::Result<usize>> + 'a {
        self.io.read(buf)
    }

    /// Reads exactly `buf.len()` bytes; `UnexpectedEof` if the stream ends first.
    pub fn read_exact<'a>(
        &'a self,
        buf: &'a mut [u8],
    ) -> impl Future<Output = io::Result<usize>> + 'a {
        self.io.read_exact(buf)
    }

    /// Reads into several buffers with one `readv`.
    pub fn read_vectored<'a>(
        &'a self,
        bufs: &'a mut [IoSliceMut<'_>],
    ) -> impl Future<Output = io::Result<usize>> + 'a {
        self.io.read_vectored(bufs)
    }

    /// Writes from `buf`; returns how much was taken.
    pub fn write<'a>(&'a self, buf: &'a [u8]) -> impl Future<Output = io::Result<usize>> + 'a {
        self.io.write(buf)
    }

    /// Writes all of `buf`.
    pub fn write_all<'a>(&'a self, buf: &'a [u8]) -> impl Future<Output = io::Result<()>> + 'a {
        self.io.write_all(buf)
    }

    /// Writes from several buffers with one `writev`.
    pub fn write_vectored<'a>(
        &'a self,
        bufs: &'a [IoSlice<'_>],
    ) -> impl Future<Output = io::Result<usize>> + 'a {
        self.io.write_vectored(bufs)
    }

    /// Reads into `buf` without removing the data from the socket.
    pub fn peek<'a>(&'a self, buf: &'a mut [u8]) -> impl Future<Output = io::Result<usize>> + 'a {
        self.io.peek(buf)
    }

    crate::stream_api::readiness_methods!();

    /// Waits until the socket is readable (or closed).
    pub async fn readable(&self) -> io::Result<()> {
        self.io.readable().await
    }

    /// Waits until the socket is writable (or closed).
    pub async fn writable(&self) -> io::Result<()> {
        self.io.writable().await
    }

    /// Shuts down reading, writing or both. Shutting down writing sends FIN: the peer
    /// reads end of stream, and can still send to us.
    pub async fn shutdown(&self, how: Shutdown) -> io::Result<()> {
        self.io.shutdown(how)
    }

    /// Sets `TCP_NODELAY` (disables Nagle's algorithm).
    pub fn set_nodelay(&self, nodelay: bool) -> io::Result<()> {
        self.io.io.get_ref().set_nodelay(nodelay)
    }

    /// Whether `TCP_NODELAY` is set.
    pub fn nodelay(&self) -> io::Result<bool> {
        self.io.io.get_ref().nodelay()
    }

    /// Sets `SO_LINGER`: with `Some(Duration::ZERO)` a close resets the connection.
    ///
    /// A non-zero linger makes the close of the socket (when the stream is dropped)
    /// block the worker thread until the data is sent or the time runs out; tokio
    /// deprecates this method for that reason. epitome keeps it undeprecated (existing
    /// code uses it for the zero case); prefer [`set_zero_linger`](Self::set_zero_linger).
    pub fn set_linger(&self, linger: Option<Duration>) -> io::Result<()> {
        SockRef::from(self).set_linger(linger)
    }

    /// Sets a zero `SO_LINGER`: closing the stream then aborts the connection (the peer
    /// gets a reset, unsent data is dropped, no `TIME_WAIT`). Never blocks.
    pub fn set_zero_linger(&self) -> io::Result<()> {
        SockRef::from(self).set_linger(Some(Duration::ZERO))
    }

    /// The `SO_LINGER` setting.
    pub fn linger(&self) -> io::Result<Option<Duration>> {
        SockRef::from(self).linger()
    }

    /// Sets `TCP_QUICKACK` (send ACKs at once rather than delayed; the kernel may turn
    /// it off again by itself, as `tcp(7)` says).
    pub fn set_quickack(&self, quickack: bool) -> io::Result<()> {
        SockRef::from(self).set_tcp_quickack(quickack)
    }

    /// Whether `TCP_QUICKACK` is set.
    pub fn quickack(&self) -> io::Result<bool> {
        SockRef::from(self).tcp_quickack()
    }

    /// Sets the IP time-to-live.
    pub fn set_ttl(&self, ttl: u32) -> io::Result<()> {
        self.io.io.get_ref().set_ttl(ttl)
    }

    /// The IP time-to-live.
    pub fn ttl(&self) -> io::Result<u32> {
        self.io.io.get_ref().ttl()
    }

    /// The local address.
    pub fn local_addr(&self) -> io::Result<SocketAddr> {
        self.io.io.get_ref().local_addr()
    }

    /// The peer's address.
    pub fn peer_addr(&self) -> io::Result<SocketAddr> {
        self.io.io.get_ref().peer_addr()
    }

    /// Takes the pending socket error (`SO_ERROR`), if any.
    pub fn take_error(&self) -> io::Result<Option<io::Error>> {
        self.io.io.get_ref().take_error()
    }
}

impl AsFd for TcpStream {
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.io.io.as_fd()
    }
}

impl AsRawFd for TcpStream {
    fn as_raw_fd(&self) -> RawFd {
        self.io.io.as_raw_fd()
    }
}

impl TryFrom<std::net::TcpStream> for TcpStream {
    type Error = io::Error;
    fn try_from(s: std::net::TcpStream) -> io::Result<TcpStream> {
        TcpStream::from_std(s)
    }
}

impl fmt::Debug for TcpStream {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TcpStream")
            .field("local", &self.local_addr().ok())
            .field("peer", &self.peer_addr().ok())
            .field("fd", &self.as_raw_fd())
            .finish()
    }
}
