//! What TCP and Unix streams share: a registered connected socket and its read and
//! write paths.
//!
//! Two syscalls are saved where the kernel has already told us the answer: a read
//! that returns less than the buffer (`0 < n < len`) drained the socket, so read
//! readiness is cleared without trying another read that would only say `EAGAIN`; a
//! write that takes less than offered filled the send buffer, likewise. Both clears
//! are generation-checked: data that arrived after the read keeps readiness set.

use std::io::{self, IoSlice, IoSliceMut, Read, Write};
use std::net::Shutdown;
use std::os::fd::{AsFd, BorrowedFd};
use std::task::{Context, Poll, ready};

use bytes::BufMut;
use epitome_runtime::io::{Async, Interest, Ready};
use socket2::SockRef;

/// A connected stream socket registered with a reactor.
pub(crate) struct StreamIo<T: AsFd> {
    pub(crate) io: Async<T>,
}

/// The std socket types: `&T` reads and writes, and the socket can shut down.
pub(crate) trait StdStream: AsFd + Send + Sync + 'static
where
    for<'a> &'a Self: Read + Write,
{
    fn shutdown(&self, how: Shutdown) -> io::Result<()>;
    fn peek(&self, buf: &mut [u8]) -> io::Result<usize>;
}

impl StdStream for std::net::TcpStream {
    fn shutdown(&self, how: Shutdown) -> io::Result<()> {
        std::net::TcpStream::shutdown(self, how)
    }
    fn peek(&self, buf: &mut [u8]) -> io::Result<usize> {
        std::net::TcpStream::peek(self, buf)
    }
}

impl StdStream for std::os::unix::net::UnixStream {
    fn shutdown(&self, how: Shutdown) -> io::Result<()> {
        std::os::unix::net::UnixStream::shutdown(self, how)
    }
    fn peek(&self, buf: &mut [u8]) -> io::Result<usize> {
        use std::os::fd::AsRawFd;
        loop {
            // SAFETY: `buf` is valid for `buf.len()` writable bytes.
            let n = unsafe {
                libc::recv(
                    self.as_raw_fd(),
                    buf.as_mut_ptr().cast(),
                    buf.len(),
                    libc::MSG_PEEK,
                )
            };
            if n >= 0 {
                return Ok(n as usize);
            }
            let e = io::Error::last_os_error();
            if e.kind() != io::ErrorKind::Interrupted {
                return Err(e);
            }
        }
    }
}

/// `recv(2)` on a stream socket: the bytes read, or the errno.
///
/// The read and write of every request go through these two, straight to the kernel
/// (rustix's raw syscalls). Through std (`Read` for `&TcpStream`) or libc they would
/// cost twice as many user-space instructions in a multi-threaded process: libc's
/// wrappers of blocking calls are thread-cancellation points, and switch asynchronous
/// cancellation on and off around each syscall. These sockets are non-blocking and
/// epitome's threads are never cancelled, so that is never needed.
#[inline]
fn recv(fd: BorrowedFd<'_>, buf: &mut [u8]) -> Result<usize, i32> {
    match rustix::net::recv(fd, buf, rustix::net::RecvFlags::empty()) {
        Ok((_, n)) => Ok(n),
        Err(e) => Err(e.raw_os_error()),
    }
}

/// `send(2)` on a stream socket (never raising SIGPIPE): the bytes taken, or the errno.
/// See [`recv`].
#[inline]
fn send(fd: BorrowedFd<'_>, buf: &[u8]) -> Result<usize, i32> {
    rustix::net::send(fd, buf, rustix::net::SendFlags::NOSIGNAL).map_err(|e| e.raw_os_error())
}

impl<T: StdStream> StreamIo<T>
where
    for<'a> &'a T: Read + Write,
{
    #[inline]
    pub(crate) fn poll_read(
        &self,
        cx: &mut Context<'_>,
        buf: &mut [u8],
    ) -> Poll<io::Result<usize>> {
        if buf.is_empty() {
            return Poll::Ready(Ok(0));
        }
        loop {
            let guard = ready!(self.io.poll_readable(cx))?;
            match recv(self.io.as_fd(), buf) {
                Ok(n) => {
                    if n > 0 && n < buf.len() {
                        guard.clear_drained();
                    }
                    return Poll::Ready(Ok(n));
                }
                Err(libc::EAGAIN) => guard.clear_ready(),
                Err(libc::EINTR) => {}
                Err(errno) => return Poll::Ready(Err(io::Error::from_raw_os_error(errno))),
            }
        }
    }

    /// `poll_read` into memory that may be uninitialised (`read(2)` only writes it).
    pub(crate) fn poll_read_uninit(
        &self,
        cx: &mut Context<'_>,
        buf: &mut [std::mem::MaybeUninit<u8>],
    ) -> Poll<io::Result<usize>> {
        // SAFETY: the bytes are only written by `read(2)`, never read, and the caller
        // treats only the `n` bytes reported as initialised.
        let buf = unsafe { crate::buf::write_only_bytes(buf) };
        self.poll_read(cx, buf)
    }

    pub(crate) fn poll_read_vectored(
        &self,
        cx: &mut Context<'_>,
        bufs: &mut [IoSliceMut<'_>],
    ) -> Poll<io::Result<usize>> {
        let total: usize = bufs.iter().map(|b| b.len()).sum();
        if total == 0 {
            return Poll::Ready(Ok(0));
        }
        loop {
            let guard = ready!(self.io.poll_readable(cx))?;
            match (&mut self.io.get_ref()).read_vectored(bufs) {
                Ok(n) => {
                    if n > 0 && n < total {
                        guard.clear_drained();
                    }
                    return Poll::Ready(Ok(n));
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => guard.clear_ready(),
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Poll::Ready(Err(e)),
            }
        }
    }

    #[inline]
    pub(crate) fn poll_write(&self, cx: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
        if buf.is_empty() {
            return Poll::Ready(Ok(0));
        }
        loop {
            let guard = ready!(self.io.poll_writable(cx))?;
            match send(self.io.as_fd(), buf) {
                Ok(n) => {
                    if n > 0 && n < buf.len() {
                        guard.clear_drained();
                    }
                    return Poll::Ready(Ok(n));
                }
                Err(libc::EAGAIN) => guard.clear_ready(),
                Err(libc::EINTR) => {}
                Err(errno) => return Poll::Ready(Err(io::Error::from_raw_os_error(errno))),
            }
        }
    }

    pub(crate) fn poll_write_vectored(
        &self,
        cx: &mut Context<'_>,
        bufs: &[IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let total: usize = bufs.iter().map(|b| b.len()).sum();
        if total == 0 {
            return Poll::Ready(Ok(0));
        }
        loop {
            let guard = ready!(self.io.poll_writable(cx))?;
            match (&mut self.io.get_ref()).write_vectored(bufs) {
                Ok(n) => {
                    if n > 0 && n < total {
                        guard.clear_drained();
                    }
                    return Poll::Ready(Ok(n));
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => guard.clear_ready(),
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Poll::Ready(Err(e)),
            }
        }
    }

    pub(crate) fn poll_peek(
        &self,
        cx: &mut Context<'_>,
        buf: &mut [u8],
    ) -> Poll<io::Result<usize>> {
        self.io.poll_read_with(cx, |s| s.peek(buf))
    }

    // The futures below are `poll_fn` closures rather than `async fn`s: an
    // `async fn` awaiting `poll_fn` is a second state machine around the first, and
    // on an echo's read-write turn the extra layers were measured (callgrind) as a
    // visible share of the runtime's instructions per request.

    pub(crate) fn read<'a>(
        &'a self,
        buf: &'a mut [u8],
    ) -> impl Future<Output = io::Result<usize>> + 'a {
        std::future::poll_fn(move |cx| self.poll_read(cx, buf))
    }

    pub(crate) fn read_vectored<'a>(
        &'a self,
        bufs: &'a mut [IoSliceMut<'_>],
    ) -> impl Future<Output = io::Result<usize>> + 'a {
        std::future::poll_fn(move |cx| self.poll_read_vectored(cx, bufs))
    }

    pub(crate) fn read_exact<'a>(
        &'a self,
        buf: &'a mut [u8],
    ) -> impl Future<Output = io::Result<usize>> + 'a {
        let len = buf.len();
        let mut filled = 0;
        std::future::poll_fn(move |cx| {
            while filled < len {
                match ready!(self.poll_read(cx, &mut buf[filled..])) {
                    Ok(0) => {
                        return Poll::Ready(Err(io::Error::new(
                            io::ErrorKind::UnexpectedEof,
                            "stream ended before the buffer was filled",
                        )));
                    }
                    Ok(n) => filled += n,
                    Err(e) => return Poll::Ready(Err(e)),
                }
            }
            Poll::Ready(Ok(len))
        })
    }

    pub(crate) fn write<'a>(
        &'a self,
        buf: &'a [u8],
    ) -> impl Future<Output = io::Result<usize>> + 'a {
        std::future::poll_fn(move |cx| self.poll_write(cx, buf))
    }

    pub(crate) fn write_vectored<'a>(
        &'a self,
        bufs: &'a [IoSlice<'_>],
    ) -> impl Future<Output = io::Result<usize>> + 'a {
        std::future::poll_fn(move |cx| self.poll_write_vectored(cx, bufs))
    }

    pub(crate) fn write_all<'a>(
        &'a self,
        mut buf: &'a [u8],
    ) -> impl Future<Output = io::Result<()>> + 'a {
        std::future::poll_fn(move |cx| {
            while !buf.is_empty() {
                match ready!(self.poll_write(cx, buf)) {
                    Ok(0) => {
                        return Poll::Ready(Err(io::Error::new(
                            io::ErrorKind::WriteZero,
                            "failed to write the whole buffer",
                        )));
                    }
                    Ok(n) => buf = &buf[n..],
                    Err(e) => return Poll::Ready(Err(e)),
                }
            }
            Poll::Ready(Ok(()))
        })
    }

    pub(crate) async fn peek(&self, buf: &mut [u8]) -> io::Result<usize> {
        std::future::poll_fn(|cx| self.poll_peek(cx, buf)).await
    }

    // The `try_*` operations ask the socket, never the task's cooperative budget: a
    // task that has spent its budget still reads what is there (tokio's `try_read` is
    // likewise budget-free). `Interrupted` is retried. An empty buffer is `Ok(0)`
    // without a syscall, as tokio documents it (and as `read` answers): the kernel
    // says `EAGAIN` to an empty read of a TCP socket with nothing queued.

    pub(crate) fn try_read(&self, buf: &mut [u8]) -> io::Result<usize> {
        if buf.is_empty() {
            return Ok(0);
        }
        self.try_op(Interest::READABLE, |s| (&mut &*s).read(buf))
    }

    pub(crate) fn try_read_vectored(&self, bufs: &mut [IoSliceMut<'_>]) -> io::Result<usize> {
        if bufs.iter().all(|b| b.is_empty()) {
            return Ok(0);
        }
        self.try_op(Interest::READABLE, |s| (&mut &*s).read_vectored(bufs))
    }

    pub(crate) fn try_read_buf<B: BufMut + ?Sized>(&self, buf: &mut B) -> io::Result<usize> {
        if !buf.has_remaining_mut() {
            return Ok(0);
        }
        // SAFETY: `recv(2)` writes only the bytes it received, at the start of the
        // chunk, and reports how many.
        let res = unsafe {
            crate::buf::fill(buf, |dst| {
                self.try_op(Interest::READABLE, |s| SockRef::from(s).recv(&mut *dst))
                    .map(|n| (n, ()))
            })
        };
        res.map(|(n, ())| n)
    }

    pub(crate) fn try_write(&self, buf: &[u8]) -> io::Result<usize> {
        if buf.is_empty() {
            return Ok(0);
        }
        self.try_op(Interest::WRITABLE, |s| (&mut &*s).write(buf))
    }

    pub(crate) fn try_write_vectored(&self, bufs: &[IoSlice<'_>]) -> io::Result<usize> {
        if bufs.iter().all(|b| b.is_empty()) {
            return Ok(0);
        }
        self.try_op(Interest::WRITABLE, |s| (&mut &*s).write_vectored(bufs))
    }

    fn try_op<R>(&self, interest: Interest, f: impl FnMut(&T) -> io::Result<R>) -> io::Result<R> {
        crate::attempt::try_op(&self.io, interest, f)
    }

    pub(crate) fn try_io<R>(
        &self,
        interest: Interest,
        f: impl FnOnce() -> io::Result<R>,
    ) -> io::Result<R> {
        self.io.try_io(interest, |_| f())
    }

    pub(crate) async fn async_io<R>(
        &self,
        interest: Interest,
        mut f: impl FnMut() -> io::Result<R>,
    ) -> io::Result<R> {
        self.io.async_io(interest, |_| f()).await
    }

    pub(crate) fn poll_read_buf<B: BufMut + ?Sized>(
        &self,
        cx: &mut Context<'_>,
        buf: &mut B,
    ) -> Poll<io::Result<usize>> {
        // SAFETY: `read(2)` writes only the bytes it read, at the start of the chunk,
        // and reports how many.
        let res = unsafe {
            crate::buf::poll_fill(buf, |dst| {
                self.poll_read_uninit(cx, dst).map_ok(|n| (n, ()))
            })
        };
        res.map_ok(|(n, ())| n)
    }

    pub(crate) fn read_buf<'a, B: BufMut + ?Sized>(
        &'a self,
        buf: &'a mut B,
    ) -> impl Future<Output = io::Result<usize>> + 'a {
        std::future::poll_fn(move |cx| self.poll_read_buf(cx, buf))
    }

    /// Peeks into `buf`'s spare capacity (tokio's `poll_peek`, with any `BufMut`).
    pub(crate) fn poll_peek_buf<B: BufMut + ?Sized>(
        &self,
        cx: &mut Context<'_>,
        buf: &mut B,
    ) -> Poll<io::Result<usize>> {
        // SAFETY: `recv(2)` with `MSG_PEEK` writes only the bytes it returns, at the
        // start of the chunk, and reports how many.
        let res = unsafe {
            crate::buf::poll_fill(buf, |dst| {
                self.io
                    .poll_read_with(cx, |s| SockRef::from(s).peek(&mut *dst))
                    .map_ok(|n| (n, ()))
            })
        };
        res.map_ok(|(n, ())| n)
    }

    pub(crate) async fn ready(&self, interest: Interest) -> io::Result<Ready> {
        self.io.ready(interest).await.map(|g| g.ready())
    }

    pub(crate) fn poll_read_ready(&self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        self.io.poll_readable(cx).map_ok(drop)
    }

    pub(crate) fn poll_write_ready(&self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        self.io.poll_writable(cx).map_ok(drop)
    }

    pub(crate) async fn readable(&self) -> io::Result<()> {
        self.io.readable().await.map(drop)
    }

    pub(crate) async fn writable(&self) -> io::Result<()> {
        self.io.writable().await.map(drop)
    }

    pub(crate) fn shutdown(&self, how: Shutdown) -> io::Result<()> {
        match self.io.get_ref().shutdown(how) {
            // The peer already closed: shutting down is moot, not an error.
            Err(e) if e.raw_os_error() == Some(libc::ENOTCONN) => Ok(()),
            res => res,
        }
    }
}
