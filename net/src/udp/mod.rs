//! `UdpSocket`.

mod options;

use std::fmt;
use std::future::poll_fn;
use std::io;
use std::net::SocketAddr;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, RawFd};
use std::task::{Context, Poll};

use bytes::BufMut;
use epitome_runtime::io::{Async, Interest, Ready};
use socket2::{Domain, Protocol, SockAddr, SockRef, Socket, Type};

use crate::addr::{ToSocketAddrs, each_addr, first_addr};
use crate::attempt::try_op;

/// A UDP socket.
///
/// All operations take `&self`; several tasks may receive on one socket (an
/// `Arc<UdpSocket>`), and each datagram wakes one of them.
///
/// Every operation comes in tokio's three forms: `async` (waits), `poll_*` (for hand
/// written futures; spends the task's cooperative budget like the `async` form) and
/// `try_*` (one attempt, `WouldBlock` if it would wait; never touches the budget).
/// `poll_recv`, `poll_recv_from`, `poll_peek` and `poll_peek_from` take any
/// [`BufMut`] (tokio's take its `ReadBuf`, which is one) and advance it by the datagram's
/// length.
///
/// ```
/// use epitome_net::UdpSocket;
///
/// let rt = epitome_runtime::runtime::Builder::new_current_thread().build()?;
/// rt.block_on(async {
///     let a = UdpSocket::bind("127.0.0.1:0").await?;
///     let b = UdpSocket::bind("127.0.0.1:0").await?;
///     a.send_to(b"ping", b.local_addr()?).await?;
///     let mut buf = [0; 16];
///     let (n, from) = b.recv_from(&mut buf).await?;
///     assert_eq!((&buf[..n], from), (&b"ping"[..], a.local_addr()?));
///     Ok::<_, std::io::Error>(())
/// })?;
/// # Ok::<_, std::io::Error>(())
/// ```
pub struct UdpSocket {
    io: Async<std::net::UdpSocket>,
}

/// The IP address of a datagram's sender.
fn ip_addr(addr: SockAddr) -> io::Result<SocketAddr> {
    addr.as_socket()
        .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidData, "the sender has no IP address"))
}

impl UdpSocket {
    /// Binds to `addr`, trying each resolved address in turn.
    pub async fn bind<A: ToSocketAddrs>(addr: A) -> io::Result<UdpSocket> {
        each_addr(addr, |a| async move {
            let domain = if a.is_ipv4() {
                Domain::IPV4
            } else {
                Domain::IPV6
            };
            let socket = Socket::new(
                domain,
                Type::DGRAM.nonblocking().cloexec(),
                Some(Protocol::UDP),
            )?;
            socket.bind(&a.into())?;
            // Fresh, so its send buffer is empty: writable without waiting for the
            // reactor's first event (a send that finds otherwise corrects it).
            Ok(UdpSocket {
                io: Async::new_writable(std::net::UdpSocket::from(socket))?,
            })
        })
        .await
    }

    /// Registers a std socket (made non-blocking here).
    pub fn from_std(socket: std::net::UdpSocket) -> io::Result<UdpSocket> {
        socket.set_nonblocking(true)?;
        Ok(UdpSocket {
            io: Async::new_nonblocking(socket)?,
        })
    }

    /// Deregisters and gives the std socket back (still non-blocking).
    pub fn into_std(self) -> io::Result<std::net::UdpSocket> {
        self.io.into_inner()
    }

    /// Connects to `addr`: `send` and `recv` then use it, and datagrams from other
    /// addresses are dropped by the kernel.
    pub async fn connect<A: ToSocketAddrs>(&self, addr: A) -> io::Result<()> {
        each_addr(addr, |a| async move { self.io.get_ref().connect(a) }).await
    }

    /// The local address.
    pub fn local_addr(&self) -> io::Result<SocketAddr> {
        self.io.get_ref().local_addr()
    }

    /// The connected peer's address (`NotConnected` if there is none).
    pub fn peer_addr(&self) -> io::Result<SocketAddr> {
        self.io.get_ref().peer_addr()
    }

    // Readiness.

    /// Waits until the socket is ready for `interest` and says what it found.
    /// Cancel-safe. The answer may be stale by the time you act on it (a `try_recv`
    /// may still say `WouldBlock`, which clears it).
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

    /// Polls for read readiness. Unlike tokio, which keeps only the waker of the latest
    /// call, every distinct waker polled with is woken by the next event.
    pub fn poll_recv_ready(&self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        self.io.poll_readable(cx).map_ok(drop)
    }

    /// Polls for write readiness (see [`poll_recv_ready`](Self::poll_recv_ready)).
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

    /// One send attempt to the connected peer, no waiting.
    pub fn try_send(&self, buf: &[u8]) -> io::Result<usize> {
        try_op(&self.io, Interest::WRITABLE, |s| s.send(buf))
    }

    /// Sends a datagram to `target` (resolved first; only its first address is used).
    pub async fn send_to<A: ToSocketAddrs>(&self, buf: &[u8], target: A) -> io::Result<usize> {
        let target = first_addr(target).await?;
        self.io.write_with(|s| s.send_to(buf, target)).await
    }

    /// Polls a send to `target`.
    pub fn poll_send_to(
        &self,
        cx: &mut Context<'_>,
        buf: &[u8],
        target: SocketAddr,
    ) -> Poll<io::Result<usize>> {
        self.io.poll_write_with(cx, |s| s.send_to(buf, target))
    }

    /// One send attempt to `target`, no waiting.
    pub fn try_send_to(&self, buf: &[u8], target: SocketAddr) -> io::Result<usize> {
        try_op(&self.io, Interest::WRITABLE, |s| s.send_to(buf, target))
    }

    // Receiving. A datagram longer than the buffer is truncated to it; the rest is lost.

    /// Receives a datagram from the connected peer. Several tasks receiving on one
    /// socket are woken one per datagram. Cancel-safe.
    pub async fn recv(&self, buf: &mut [u8]) -> io::Result<usize> {
        self.io.read_with_exclusive(|s| s.recv(buf)).await
    }

    /// Polls a receive into `buf`'s spare capacity, advancing it by the datagram's
    /// length.
    pub fn poll_recv<B: BufMut>(&self, cx: &mut Context<'_>, buf: &mut B) -> Poll<io::Result<()>> {
        // SAFETY: `recv(2)` writes only the datagram, at the start of the chunk, and
        // reports its length.
        let res = unsafe {
            crate::buf::poll_fill(buf, |dst| {
                self.io
                    .poll_read_with(cx, |s| SockRef::from(s).recv(&mut *dst))
                    .map_ok(|n| (n, ()))
            })
        };
        res.map_ok(drop)
    }

    /// One receive attempt from the connected peer, no waiting.
    pub fn try_recv(&self, buf: &mut [u8]) -> io::Result<usize> {
        try_op(&self.io, Interest::READABLE, |s| s.recv(buf))
    }

    /// Receives a datagram into `buf`'s spare capacity (which grows by a little if it
    /// has none: reserve room for the largest datagram you expect).
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

    /// Receives a datagram and its sender's address. Cancel-safe.
    pub async fn recv_from(&self, buf: &mut [u8]) -> io::Result<(usize, SocketAddr)> {
        self.io.read_with_exclusive(|s| s.recv_from(buf)).await
    }

    /// Polls a receive into `buf`'s spare capacity: the sender's address, with `buf`
    /// advanced by the datagram's length.
    pub fn poll_recv_from<B: BufMut>(
        &self,
        cx: &mut Context<'_>,
        buf: &mut B,
    ) -> Poll<io::Result<SocketAddr>> {
        // SAFETY: `recvfrom(2)` writes only the datagram and reports its length.
        let res = unsafe {
            crate::buf::poll_fill(buf, |dst| {
                self.io
                    .poll_read_with(cx, |s| SockRef::from(s).recv_from(&mut *dst))
            })
        };
        res.map(|r| r.and_then(|(_, from)| ip_addr(from)))
    }

    /// One receive attempt, no waiting: the datagram's length and its sender.
    pub fn try_recv_from(&self, buf: &mut [u8]) -> io::Result<(usize, SocketAddr)> {
        try_op(&self.io, Interest::READABLE, |s| s.recv_from(buf))
    }

    /// [`recv_from`](Self::recv_from) into `buf`'s spare capacity.
    pub async fn recv_buf_from<B: BufMut>(&self, buf: &mut B) -> io::Result<(usize, SocketAddr)> {
        // SAFETY: `recvfrom(2)` only writes the datagram into the chunk.
        let dst = unsafe { crate::buf::spare(buf) };
        let room = dst.len();
        let (n, from) = self
            .io
            .read_with_exclusive(|s| SockRef::from(s).recv_from(&mut *dst))
            .await?;
        // SAFETY: `recvfrom(2)` wrote the first `n` bytes; `buf` is untouched.
        unsafe { crate::buf::commit(buf, n, room) }?;
        Ok((n, ip_addr(from)?))
    }

    /// [`recv_buf_from`](Self::recv_buf_from) without waiting.
    pub fn try_recv_buf_from<B: BufMut>(&self, buf: &mut B) -> io::Result<(usize, SocketAddr)> {
        // SAFETY: `recvfrom(2)` writes only the datagram and reports its length.
        let (n, from) = unsafe {
            crate::buf::fill(buf, |dst| {
                try_op(&self.io, Interest::READABLE, |s| {
                    SockRef::from(s).recv_from(&mut *dst)
                })
            })
        }?;
        Ok((n, ip_addr(from)?))
    }

    // Peeking: like receiving, but the datagram stays queued.

    /// Copies the next datagram from the connected peer without removing it.
    pub async fn peek(&self, buf: &mut [u8]) -> io::Result<usize> {
        self.io.read_with(|s| s.peek(buf)).await
    }

    /// Polls a peek into `buf`'s spare capacity.
    pub fn poll_peek<B: BufMut>(&self, cx: &mut Context<'_>, buf: &mut B) -> Poll<io::Result<()>> {
        // SAFETY: `recv(2)` with `MSG_PEEK` writes only the datagram.
        let res = unsafe {
            crate::buf::poll_fill(buf, |dst| {
                self.io
                    .poll_read_with(cx, |s| SockRef::from(s).peek(&mut *dst))
                    .map_ok(|n| (n, ()))
            })
        };
        res.map_ok(drop)
    }

    /// One peek attempt, no waiting.
    pub fn try_peek(&self, buf: &mut [u8]) -> io::Result<usize> {
        try_op(&self.io, Interest::READABLE, |s| s.peek(buf))
    }

    /// Copies the next datagram and its sender without removing it.
    pub async fn peek_from(&self, buf: &mut [u8]) -> io::Result<(usize, SocketAddr)> {
        self.io.read_with(|s| s.peek_from(buf)).await
    }

    /// Polls a peek into `buf`'s spare capacity: the sender's address.
    pub fn poll_peek_from<B: BufMut>(
        &self,
        cx: &mut Context<'_>,
        buf: &mut B,
    ) -> Poll<io::Result<SocketAddr>> {
        // SAFETY: `recvfrom(2)` with `MSG_PEEK` writes only the datagram.
        let res = unsafe {
            crate::buf::poll_fill(buf, |dst| {
                self.io
                    .poll_read_with(cx, |s| SockRef::from(s).peek_from(&mut *dst))
            })
        };
        res.map(|r| r.and_then(|(_, from)| ip_addr(from)))
    }

    /// One peek attempt with the sender, no waiting.
    pub fn try_peek_from(&self, buf: &mut [u8]) -> io::Result<(usize, SocketAddr)> {
        try_op(&self.io, Interest::READABLE, |s| s.peek_from(buf))
    }

    /// The sender of the next datagram, which stays queued (cheaper than `peek_from`
    /// when only the sender matters: nothing is copied).
    pub async fn peek_sender(&self) -> io::Result<SocketAddr> {
        poll_fn(|cx| self.poll_peek_sender(cx)).await
    }

    /// Polls for the sender of the next datagram.
    pub fn poll_peek_sender(&self, cx: &mut Context<'_>) -> Poll<io::Result<SocketAddr>> {
        self.io
            .poll_read_with(cx, |s| SockRef::from(s).peek_sender())
            .map(|r| r.and_then(ip_addr))
    }

    /// The sender of the next datagram, no waiting.
    pub fn try_peek_sender(&self) -> io::Result<SocketAddr> {
        try_op(&self.io, Interest::READABLE, |s| {
            SockRef::from(s).peek_sender()
        })
        .and_then(ip_addr)
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
}

impl AsFd for UdpSocket {
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.io.as_fd()
    }
}

impl AsRawFd for UdpSocket {
    fn as_raw_fd(&self) -> RawFd {
        self.io.as_raw_fd()
    }
}

impl TryFrom<std::net::UdpSocket> for UdpSocket {
    type Error = io::Error;
    fn try_from(s: std::net::UdpSocket) -> io::Result<UdpSocket> {
        UdpSocket::from_std(s)
    }
}

impl fmt::Debug for UdpSocket {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("UdpSocket")
            .field("local", &self.local_addr().ok())
            .field("fd", &self.as_raw_fd())
            .finish()
    }
}
