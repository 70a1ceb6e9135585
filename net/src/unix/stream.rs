//! `UnixStream`.

use std::fmt;
use std::io::{self, IoSlice, IoSliceMut};
use std::net::Shutdown;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, RawFd};
use std::path::Path;
use std::time::Duration;

use epitome_runtime::io::Async;
use socket2::{Domain, Socket, Type};

use super::SocketAddr;
use crate::stream_io::StreamIo;

/// A connected Unix domain stream socket. Same shape as [`TcpStream`](crate::TcpStream):
/// reads and writes through `&self`, split halves, the I/O traits. A path whose first
/// byte is NUL (`"\0name"`) is an abstract address.
///
/// ```
/// use epitome_net::UnixStream;
/// use epitome_runtime::io::Interest;
///
/// let rt = epitome_runtime::runtime::Builder::new_current_thread().build()?;
/// rt.block_on(async {
///     let (a, b) = UnixStream::pair()?;
///     a.write_all(b"ping").await?;
///     let ready = b.ready(Interest::READABLE).await?;
///     assert!(ready.is_readable());
///     let mut buf = Vec::with_capacity(16);
///     let n = b.try_read_buf(&mut buf)?;
///     assert_eq!((n, &buf[..]), (4, &b"ping"[..]));
///     Ok::<_, std::io::Error>(())
/// })?;
/// # Ok::<_, std::io::Error>(())
/// ```
pub struct UnixStream {
    pub(crate) io: StreamIo<std::os::unix::net::UnixStream>,
}

crate::split::stream_impls!(
    UnixStream,
    ReadHalf,
    WriteHalf,
    OwnedReadHalf,
    OwnedWriteHalf,
    ReuniteError,
    super::SocketAddr
);

impl UnixStream {
    /// Connects to the socket at `path`. A path whose first byte is NUL (`"\0name"`) is
    /// an abstract address, as in [`connect_addr`](Self::connect_addr).
    pub async fn connect(path: impl AsRef<Path>) -> io::Result<UnixStream> {
        let addr = super::path_addr(path.as_ref())?;
        UnixStream::connect_sockaddr(super::to_sockaddr(&addr)?).await
    }

    /// Connects to `addr` (a path or an abstract address).
    pub async fn connect_addr(addr: &SocketAddr) -> io::Result<UnixStream> {
        UnixStream::connect_sockaddr(super::to_sockaddr(addr)?).await
    }

    async fn connect_sockaddr(addr: socket2::SockAddr) -> io::Result<UnixStream> {
        let socket = Socket::new(Domain::UNIX, Type::STREAM.nonblocking().cloexec(), None)?;
        // A non-blocking AF_UNIX connect completes at once, or fails with EAGAIN when the
        // listener's backlog is full; the socket does not signal when to retry, so
        // retry after a short, growing pause.
        let mut pause = Duration::from_micros(500);
        loop {
            match socket.connect(&addr) {
                Ok(()) => break,
                Err(e) if e.raw_os_error() == Some(libc::EINPROGRESS) => break,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                    epitome_runtime::time::sleep(pause).await;
                    pause = (pause * 2).min(Duration::from_millis(50));
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
        let stream = UnixStream {
            io: StreamIo {
                io: Async::new_nonblocking(std::os::unix::net::UnixStream::from(socket))?,
            },
        };
        stream.writable().await?;
        if let Some(e) = stream.take_error()? {
            return Err(e);
        }
        Ok(stream)
    }

    /// A connected pair of streams. Both start writable (their buffers are empty), so
    /// the first write is tried at once; reading waits for the peer's data.
    pub fn pair() -> io::Result<(UnixStream, UnixStream)> {
        let (a, b) = std::os::unix::net::UnixStream::pair()?;
        let fresh = |s: std::os::unix::net::UnixStream| -> io::Result<UnixStream> {
            s.set_nonblocking(true)?;
            Ok(UnixStream {
                io: StreamIo {
                    io: Async::new_writable(s)?,
                },
            })
        };
        Ok((fresh(a)?, fresh(b)?))
    }

    /// Registers a connected std stream (made non-blocking here).
    pub fn from_std(stream: std::os::unix::net::UnixStream) -> io::Result<UnixStream> {
        stream.set_nonblocking(true)?;
        Ok(UnixStream {
            io: StreamIo {
                io: Async::new_nonblocking(stream)?,
            },
        })
    }

    pub(crate) fn from_ready(stream: std::os::unix::net::UnixStream) -> io::Result<UnixStream> {
        Ok(UnixStream {
            io: StreamIo {
                io: Async::new_ready(stream)?,
            },
        })
    }

    /// Deregisters and gives the std stream back (still non-blocking).
    pub fn into_std(self) -> io::Result<std::os::unix::net::UnixStream> {
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

    /// Reads into `buf`; `Ok(0)` is end of stream.
    pub fn read<'a>(&'a self, buf: &'a mut [u8]) -> impl Future<Output = io::Result<usize>> + 'a {
        self.io.read(buf)
    }

    /// Reads exactly `buf.len()` bytes.
    pub fn read_exact<'a>(
        &'a self,
        buf: &'a mut [u8],
    ) -> impl Future<Output = io::Result<usize>> + 'a {
        self.io.read_exact(buf)
    }

    /// Reads into several buffers.
    pub fn read_vectored<'a>(
        &'a self,
        bufs: &'a mut [IoSliceMut<'_>],
    ) -> impl Future<Output = io::Result<usize>> + 'a {
        self.io.read_vectored(bufs)
    }

    /// Writes from `buf`.
    pub fn write<'a>(&'a self, buf: &'a [u8]) -> impl Future<Output = io::Result<usize>> + 'a {
        self.io.write(buf)
    }

    /// Writes all of `buf`.
    pub fn write_all<'a>(&'a self, buf: &'a [u8]) -> impl Future<Output = io::Result<()>> + 'a {
        self.io.write_all(buf)
    }

    /// Writes from several buffers.
    pub fn write_vectored<'a>(
        &'a self,
        bufs: &'a [IoSlice<'_>],
    ) -> impl Future<Output = io::Result<usize>> + 'a {
        self.io.write_vectored(bufs)
    }

    /// Reads without removing the data.
    pub fn peek<'a>(&'a self, buf: &'a mut [u8]) -> impl Future<Output = io::Result<usize>> + 'a {
        self.io.peek(buf)
    }

    crate::stream_api::readiness_methods!();

    /// Waits until readable.
    pub async fn readable(&self) -> io::Result<()> {
        self.io.readable().await
    }

    /// Waits until writable.
    pub async fn writable(&self) -> io::Result<()> {
        self.io.writable().await
    }

    /// Shuts down reading, writing or both.
    pub async fn shutdown(&self, how: Shutdown) -> io::Result<()> {
        self.io.shutdown(how)
    }

    /// The local address.
    pub fn local_addr(&self) -> io::Result<SocketAddr> {
        self.io.io.get_ref().local_addr()
    }

    /// The peer's address.
    pub fn peer_addr(&self) -> io::Result<SocketAddr> {
        self.io.io.get_ref().peer_addr()
    }

    /// Takes the pending socket error, if any.
    pub fn take_error(&self) -> io::Result<Option<io::Error>> {
        self.io.io.get_ref().take_error()
    }
}

impl AsFd for UnixStream {
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.io.io.as_fd()
    }
}

impl AsRawFd for UnixStream {
    fn as_raw_fd(&self) -> RawFd {
        self.io.io.as_raw_fd()
    }
}

impl fmt::Debug for UnixStream {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("UnixStream")
            .field("local", &self.local_addr().ok())
            .field("peer", &self.peer_addr().ok())
            .field("fd", &self.as_raw_fd())
            .finish()
    }
}
