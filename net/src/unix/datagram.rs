//! `UnixDatagram`.

use std::fmt;
use std::io;
use std::net::Shutdown;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, RawFd};
use std::os::unix::net::UnixDatagram as StdDatagram;
use std::path::Path;
use std::task::{Context, Poll};

use bytes::BufMut;
use epitome_runtime::io::{Async, Interest, Ready};
use socket2::SockRef;

use super::{SocketAddr, path_addr};
use crate::attempt::try_op;

/// A Unix domain datagram socket. Several tasks may receive on one socket: each
/// datagram wakes one of them.
///
/// A path whose first byte is NUL (`"\0name"`) is an abstract address wherever a path
/// is taken (`bind`, `connect`, `send_to`, ...), as the kernel and tokio read it. The
/// `async` / `poll_*` / `try_*` forms follow [`UdpSocket`](crate::UdpSocket)'s.
///
/// ```
/// use epitome_net::UnixDatagram;
///
/// let rt = epitome_runtime::runtime::Builder::new_current_thread().build()?;
/// rt.block_on(async {
///     let (a, b) = UnixDatagram::pair()?;
///     a.send(b"ping").await?;
///     let mut buf = Vec::with_capacity(64);
///     let n = b.recv_buf(&mut buf).await?;
///     assert_eq!((n, &buf[..]), (4, &b"ping"[..]));
///     Ok::<_, std::io::Error>(())
/// })?;
/// # Ok::<_, std::io::Error>(())
/// ```
pub struct UnixDatagram {
    io: Async<StdDatagram>,
}

impl UnixDatagram {
    /// Binds to `path` (`"\0name"`: the abstract address `name`).
    pub fn bind(path: impl AsRef<Path>) -> io::Result<UnixDatagram> {
        UnixDatagram::bind_addr(&path_addr(path.as_ref())?)
    }

    /// Binds to `addr` (a path or an abstract address).
    pub fn bind_addr(addr: &SocketAddr) -> io::Result<UnixDatagram> {
        UnixDatagram::fresh(StdDatagram::bind_addr(addr)?)
    }

    /// A socket bound to no address.
    pub fn unbound() -> io::Result<UnixDatagram> {
        UnixDatagram::fresh(StdDatagram::unbound()?)
    }

    /// A connected pair. Both start writable (the first send is tried at once);
    /// receiving waits for the peer's datagram.
    pub fn pair() -> io::Result<(UnixDatagram, UnixDatagram)> {
        let (a, b) = StdDatagram::pair()?;
        Ok((UnixDatagram::fresh(a)?, UnixDatagram::fresh(b)?))
    }

    /// A socket just made: nothing sent yet, so writable without waiting for the
    /// reactor's first event (a send that finds otherwise corrects it).
    fn fresh(socket: StdDatagram) -> io::Result<UnixDatagram> {
        socket.set_nonblocking(true)?;
        Ok(UnixDatagram {
            io: Async::new_writable(socket)?,
        })
    }

    /// Registers a std socket (made non-blocking here).
    pub fn from_std(socket: StdDatagram) -> io::Result<UnixDatagram> {
        Ok(UnixDatagram {
            io: Async::new(socket)?,
        })
    }

    /// Deregisters and gives the std socket back (still non-blocking).
    pub fn into_std(self) -> io::Result<StdDatagram> {
        self.io.into_inner()
    }

    /// Connects to the socket at `path` (`"\0name"`: abstract): `send` and `recv` then
    /// use it.
    pub fn connect(&self, path: impl AsRef<Path>) -> io::Result<()> {
        self.connect_addr(&path_addr(path.as_ref())?)
    }

    /// Connects to `addr` (a path or an abstract address).
    pub fn connect_addr(&self, addr: &SocketAddr) -> io::Result<()> {
        self.io.get_ref().connect_addr(addr)
    }

    // Readiness.

    /// Waits until the socket is ready for `interest` and says what it found.
    pub async fn ready(&self, interest: Interest) -> io::Result<Ready> {
        self.io.ready(interest).await.map(|g| g.ready())
    }

    /// Waits until readable.
    pub async fn readable(&self) -> io::Result<()> {
        self.io.readable().await.map(drop)
    }

    /// Waits until writable.
    pub async fn writable(&self) -> io::Result<()> {
        self.io.writable().await.map(drop)
    }

    /// Polls for read readiness (every distinct waker polled with is woken).
    pub fn poll_recv_ready(&self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        self.io.poll_readable(cx).map_ok(drop)
    }

    /// Polls for write readiness.
    pub fn poll_send_ready(&self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        self.io.poll_writable(cx).map_ok(drop)
    }

    // Sending.

    /// Sends a datagram to the connected peer.
    pub async fn send(&self, buf: &[u8]) -> io::Result<usize> {
        self.io.write_with(|s| s.send(buf)).await
    }

    /// Polls a send to the connected peer.
    pub fn poll_send(&self, cx: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
        self.io.poll_write_with(cx, |s| s.send(buf))
    }

    /// One send attempt to the connected peer, no waiting (and no budget).
    pub fn try_send(&self, buf: &[u8]) -> io::Result<usize> {
        try_op(&self.io, Interest::WRITABLE, |s| s.send(buf))
    }

    /// Sends a datagram to `path` (`"\0name"`: abstract).
    pub async fn send_to(&self, buf: &[u8], path: impl AsRef<Path>) -> io::Result<usize> {
        let addr = path_addr(path.as_ref())?;
        self.send_to_addr(buf, &addr).await
    }

    /// Sends a datagram to `addr` (a path or an abstract address).
    pub async fn send_to_addr(&self, buf: &[u8], addr: &SocketAddr) -> io::Result<usize> {
        self.io.write_with(|s| s.send_to_addr(buf, addr)).await
    }

    /// Polls a send to `path` (`"\0name"`: abstract).
    pub fn poll_send_to(
        &self,
        cx: &mut Context<'_>,
        buf: &[u8],
        path: impl AsRef<Path>,
    ) -> Poll<io::Result<usize>> {
        let addr = match path_addr(path.as_ref()) {
            Ok(a) => a,
            Err(e) => return Poll::Ready(Err(e)),
        };
        self.io.poll_write_with(cx, |s| s.send_to_addr(buf, &addr))
    }

    /// One send attempt to `path` (`"\0name"`: abstract), no waiting.
    pub fn try_send_to(&self, buf: &[u8], path: impl AsRef<Path>) -> io::Result<usize> {
        let addr = path_addr(path.as_ref())?;
        try_op(&self.io, Interest::WRITABLE, |s| s.send_to_addr(buf, &addr))
    }

    // Receiving. A datagram longer than the buffer is truncated to it.

    /// Receives a datagram from the connected peer (one waiting task per datagram).
    pub async fn recv(&self, buf: &mut [u8]) -> io::Result<usize> {
        self.io.read_with_exclusive(|s| s.recv(buf)).await
    }

    /// Polls a receive into `buf`'s spare capacity, advancing it by the datagram's
    /// length (tokio's takes its `ReadBuf`, which is a `BufMut`).
    pub fn poll_recv<B: BufMut>(&self, cx: &mut Context<'_>, buf: &mut B) -> Poll<io::Result<()>> {
        // SAFETY: `recv(2)` writes only the datagram and reports its length.
        let res = unsafe {
            crate::buf::poll_fill(buf, |dst| {
                self.io
                    .poll_read_with(cx, |s| SockRef::from(s).recv(&mut *dst))
                    .map_ok(|n| (n, ()))
            })
        };
        res.map_ok(drop)
    }

    /// One receive attempt, no waiting.
    pub fn try_recv(&self, buf: &mut [u8]) -> io::Result<usize> {
        try_op(&self.io, Interest::READABLE, |s| s.recv(buf))
    }

    /// Receives a datagram into `buf`'s spare capacity.
    pub async fn recv_buf<B: BufMut>(&self, buf: &mut B) -> io::Result<usize> {
        // SAFETY: `recv(2)` only writes the datagram into the chunk.
        let dst = unsafe { crate::buf::spare(buf) };
        let room = dst.len();
        let n = self
            .io
            .read_with_exclusive(|s| SockRef::from(s).recv(&mut *dst))
            .await?;
        // SAFETY: `recv(2)` wrote the first `n` bytes; `buf` is untouched since `spare`.
        unsafe { crate::buf::commit(buf, n, room) }?;
        Ok(n)
    }

    /// [`recv_buf`](Self::recv_buf) without waiting.
    pub fn try_recv_buf<B: BufMut>(&self, buf: &mut B) -> io::Result<usize> {
        // SAFETY: `recv(2)` writes only the datagram and reports its length.
        let res = unsafe {
            crate::buf::fill(buf, |dst| {
                try_op(&self.io, Interest::READABLE, |s| {
                    SockRef::from(s).recv(&mut *dst)
                })
                .map(|n| (n, ()))
            })
        };
        res.map(|(n, ())| n)
    }

    /// Receives a datagram and its sender's address.
    pub async fn recv_from(&self, buf: &mut [u8]) -> io::Result<(usize, SocketAddr)> {
        self.io.read_with_exclusive(|s| s.recv_from(buf)).await
    }

    /// Polls a receive into `buf`'s spare capacity: the sender's address.
    pub fn poll_recv_from<B: BufMut>(
        &self,
        cx: &mut Context<'_>,
        buf: &mut B,
    ) -> Poll<io::Result<SocketAddr>> {
        // SAFETY: std's `recv_from` is `recvfrom(2)`, which only writes the datagram
        // into the bytes, and only the `n` it reports are committed.
        let res = unsafe {
            crate::buf::poll_fill(buf, |dst| {
                let dst = crate::buf::write_only_bytes(dst);
                self.io.poll_read_with(cx, |s| s.recv_from(&mut *dst))
            })
        };
        res.map_ok(|(_, from)| from)
    }

    /// One receive attempt with the sender's address, no waiting.
    pub fn try_recv_from(&self, buf: &mut [u8]) -> io::Result<(usize, SocketAddr)> {
        try_op(&self.io, Interest::READABLE, |s| s.recv_from(buf))
    }

    /// [`recv_from`](Self::recv_from) into `buf`'s spare capacity.
    pub async fn recv_buf_from<B: BufMut>(&self, buf: &mut B) -> io::Result<(usize, SocketAddr)> {
        // SAFETY: `recvfrom(2)` only writes the datagram into the bytes, and only the
        // `n` it reports are committed.
        let dst = unsafe { crate::buf::write_only_bytes(crate::buf::spare(buf)) };
        let room = dst.len();
        let (n, from) = self
            .io
            .read_with_exclusive(|s| s.recv_from(&mut *dst))
            .await?;
        // SAFETY: `recvfrom(2)` wrote the first `n` bytes; `buf` is untouched.
        unsafe { crate::buf::commit(buf, n, room) }?;
        Ok((n, from))
    }

    /// [`recv_buf_from`](Self::recv_buf_from) without waiting.
    pub fn try_recv_buf_from<B: BufMut>(&self, buf: &mut B) -> io::Result<(usize, SocketAddr)> {
        // SAFETY: as in `poll_recv_from`.
        unsafe {
            crate::buf::fill(buf, |dst| {
                let dst = crate::buf::write_only_bytes(dst);
                try_op(&self.io, Interest::READABLE, |s| s.recv_from(&mut *dst))
            })
        }
    }

    // Your own operations.

    /// Runs `f`, your own non-blocking operation on the socket, once, if the socket is
    /// ready for `interest` (else `WouldBlock` without calling it); a `WouldBlock` from
    /// `f` clears that readiness. Budget-free.
    pub fn try_io<R>(
        &self,
        interest: Interest,
        f: impl FnOnce() -> io::Result<R>,
    ) -> io::Result<R> {
        self.io.try_io(interest, |_| f())
    }

    /// Runs `f` until it does not return `WouldBlock`, waiting for `interest` between
    /// tries.
    pub async fn async_io<R>(
        &self,
        interest: Interest,
        mut f: impl FnMut() -> io::Result<R>,
    ) -> io::Result<R> {
        self.io.async_io(interest, |_| f()).await
    }

    /// Shuts down reading, writing or both.
    pub fn shutdown(&self, how: Shutdown) -> io::Result<()> {
        self.io.get_ref().shutdown(how)
    }

    /// The local address.
    pub fn local_addr(&self) -> io::Result<SocketAddr> {
        self.io.get_ref().local_addr()
    }

    /// The connected peer's address.
    pub fn peer_addr(&self) -> io::Result<SocketAddr> {
        self.io.get_ref().peer_addr()
    }

    /// Takes the pending socket error, if any.
    pub fn take_error(&self) -> io::Result<Option<io::Error>> {
        self.io.get_ref().take_error()
    }
}

impl AsFd for UnixDatagram {
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.io.as_fd()
    }
}

impl AsRawFd for UnixDatagram {
    fn as_raw_fd(&self) -> RawFd {
        self.io.as_raw_fd()
    }
}

impl TryFrom<StdDatagram> for UnixDatagram {
    type Error = io::Error;
    fn try_from(s: StdDatagram) -> io::Result<UnixDatagram> {
        UnixDatagram::from_std(s)
    }
}

impl fmt::Debug for UnixDatagram {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("UnixDatagram")
            .field("local", &self.local_addr().ok())
            .finish()
    }
}
