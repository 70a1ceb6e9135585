//! `TcpListener`.

use std::fmt;
use std::io;
use std::net::SocketAddr;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, RawFd};
use std::pin::Pin;
use std::sync::Mutex;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use epitome_runtime::io::SharedAsync;

use crate::accept_error::is_resource_exhaustion;
use futures_core::Stream;
use socket2::SockRef;

use super::{TcpSocket, TcpStream};
use crate::addr::{BoxFuture, ToSocketAddrs, each_addr};

/// How long `accept` waits before retrying after running out of fds or memory: doubles
/// from the first to the last, so a process at its fd limit neither spins nor waits
/// long once fds free up.
const BACKOFF_FIRST: Duration = Duration::from_millis(1);
const BACKOFF_MAX: Duration = Duration::from_millis(100);

/// A TCP listening socket.
///
/// ```
/// use epitome_net::{TcpListener, TcpStream};
///
/// let rt = epitome_runtime::runtime::Builder::new_multi_reactor().reactors(2).build()?;
/// rt.block_on(async {
///     let listener = TcpListener::bind("127.0.0.1:0").await?;
///     let addr = listener.local_addr()?;
///     let server = epitome_runtime::spawn(async move {
///         let (stream, _peer) = listener.accept().await?;
///         stream.write_all(b"hi").await
///     });
///     let client = TcpStream::connect(addr).await?;
///     let mut buf = [0; 2];
///     client.read_exact(&mut buf).await?;
///     assert_eq!(&buf, b"hi");
///     server.await.map_err(std::io::Error::other)?
/// })?;
/// # Ok::<_, std::io::Error>(())
/// ```
///
/// `accept` takes `&self`, so an `Arc<TcpListener>` can be accepted on from many tasks
/// and many workers at once. Each worker that accepts registers the listener in its own
/// `EventPoll` with `EPOLLEXCLUSIVE`, and within a worker the accepting tasks are
/// exclusive waiters: one incoming connection wakes one worker and one task.
///
/// # Running out of fds
///
/// When `accept` fails with `EMFILE`, `ENFILE`, `ENOBUFS` or `ENOMEM`, the error is
/// returned (so it can be logged or counted: see
/// [`resource_errors`](Self::resource_errors)), and the next `accept` first waits a
/// little, doubling from 1 ms to 100 ms while the errors go on. The pending connection
/// stays in the kernel's backlog; the server keeps serving the connections it has, uses
/// next to no CPU while at the limit, and resumes accepting within 100 ms of fds
/// freeing up.
pub struct TcpListener {
    io: SharedAsync<std::net::TcpListener>,
    backoff: Mutex<Backoff>,
}

#[derive(Default)]
struct Backoff {
    until: Option<Instant>,
    delay: Duration,
    errors: u64,
}

impl TcpListener {
    /// Binds to `addr` (trying each resolved address in turn) with `SO_REUSEADDR`, and
    /// listens with a backlog of 1024.
    pub async fn bind<A: ToSocketAddrs>(addr: A) -> io::Result<TcpListener> {
        each_addr(addr, |a| async move {
            let socket = if a.is_ipv4() {
                TcpSocket::new_v4()?
            } else {
                TcpSocket::new_v6()?
            };
            socket.set_reuseaddr(true)?;
            socket.bind(a)?;
            socket.listen(1024)
        })
        .await
    }

    /// Wraps a listening std socket (made non-blocking here).
    pub fn from_std(listener: std::net::TcpListener) -> io::Result<TcpListener> {
        listener.set_nonblocking(true)?;
        TcpListener::from_listening(listener)
    }

    pub(crate) fn from_listening(listener: std::net::TcpListener) -> io::Result<TcpListener> {
        Ok(TcpListener {
            io: SharedAsync::new(listener),
            backoff: Mutex::new(Backoff::default()),
        })
    }

    /// Deregisters and gives the std listener back (still non-blocking).
    pub fn into_std(self) -> io::Result<std::net::TcpListener> {
        Ok(self.io.into_inner())
    }

    /// Accepts a connection. The new stream is registered with this worker's reactor
    /// and assumed readable and writable, so its first read is tried at once.
    ///
    /// Cancel-safe: a dropped `accept` leaves the connection in the backlog (and, if it
    /// had been woken for it, hands the wakeup to another waiting `accept`).
    pub async fn accept(&self) -> io::Result<(TcpStream, SocketAddr)> {
        self.wait_backoff().await;
        let res = self
            .io
            .read_with_exclusive(|l| {
                SockRef::from(l).accept4(libc::SOCK_NONBLOCK | libc::SOCK_CLOEXEC)
            })
            .await;
        self.accepted(res)
    }

    /// Polls for a connection (tokio's `poll_accept`), for hand-written futures and
    /// streams. Spends a unit of the task's cooperative budget when it accepts.
    ///
    /// A polling task waits behind the tasks in [`accept`](Self::accept) (those take
    /// the connections one each, wherever they run) and is woken by a connection that
    /// none of them waits for. After running out of fds it does not pause as `accept`
    /// does: a poller that retries at once should pause itself (the errors are counted
    /// in [`resource_errors`](Self::resource_errors) all the same).
    pub fn poll_accept(&self, cx: &mut Context<'_>) -> Poll<io::Result<(TcpStream, SocketAddr)>> {
        let res = std::task::ready!(self.io.poll_read_with(cx, |l| {
            SockRef::from(l).accept4(libc::SOCK_NONBLOCK | libc::SOCK_CLOEXEC)
        }));
        Poll::Ready(self.accepted(res))
    }

    /// Accepts a connection already in the kernel's backlog without waiting and
    /// without looking at the reactor's readiness (`Ok(None)`: the backlog is empty):
    /// for a graceful shutdown, which takes every completed connection before it
    /// closes the listener.
    pub(crate) fn accept_now(&self) -> io::Result<Option<(TcpStream, SocketAddr)>> {
        match SockRef::from(self.io.get_ref()).accept4(libc::SOCK_NONBLOCK | libc::SOCK_CLOEXEC) {
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => Ok(None),
            res => self.accepted(res).map(Some),
        }
    }

    /// The listener as shared by the workers, for the accept strategies of
    /// [`serve`](crate::serve): pausing and resuming a worker's registration.
    pub(crate) fn shared(&self) -> &SharedAsync<std::net::TcpListener> {
        &self.io
    }

    /// Turns an `accept4` result into a stream, keeping the backoff state.
    fn accepted(
        &self,
        res: io::Result<(socket2::Socket, socket2::SockAddr)>,
    ) -> io::Result<(TcpStream, SocketAddr)> {
        match res {
            Ok((socket, addr)) => {
                self.backoff.lock().unwrap_or_else(|e| e.into_inner()).until = None;
                let addr = addr.as_socket().ok_or_else(|| {
                    io::Error::new(io::ErrorKind::InvalidData, "accepted a non-IP peer")
                })?;
                Ok((TcpStream::from_ready(socket.into())?, addr))
            }
            Err(e) => {
                if is_resource_exhaustion(&e) {
                    let mut b = self.backoff.lock().unwrap_or_else(|e| e.into_inner());
                    b.delay = if b.until.is_none() {
                        BACKOFF_FIRST
                    } else {
                        (b.delay * 2).min(BACKOFF_MAX)
                    };
                    b.until = Some(Instant::now() + b.delay);
                    b.errors += 1;
                }
                Err(e)
            }
        }
    }

    async fn wait_backoff(&self) {
        let until = self.backoff.lock().unwrap_or_else(|e| e.into_inner()).until;
        if let Some(until) = until {
            if until > Instant::now() {
                epitome_runtime::time::sleep_until(until).await;
            }
        }
    }

    /// How many times `accept` failed for lack of fds or memory.
    pub fn resource_errors(&self) -> u64 {
        self.backoff
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .errors
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

    /// Sets the IP time-to-live of accepted sockets.
    pub fn set_ttl(&self, ttl: u32) -> io::Result<()> {
        self.io.get_ref().set_ttl(ttl)
    }

    /// The IP time-to-live.
    pub fn ttl(&self) -> io::Result<u32> {
        self.io.get_ref().ttl()
    }

    /// Takes the pending socket error, if any.
    pub fn take_error(&self) -> io::Result<Option<io::Error>> {
        self.io.get_ref().take_error()
    }
}

/// The stream of [`TcpListener::incoming`]: each item is an accepted connection or an
/// accept error (after which the stream goes on).
pub struct Incoming<'a> {
    listener: &'a TcpListener,
    accept: Option<BoxFuture<'a, io::Result<(TcpStream, SocketAddr)>>>,
}

impl Stream for Incoming<'_> {
    type Item = io::Result<TcpStream>;

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

impl fmt::Debug for Incoming<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Incoming")
            .field("listener", self.listener)
            .finish()
    }
}

impl AsFd for TcpListener {
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.io.as_fd()
    }
}

impl AsRawFd for TcpListener {
    fn as_raw_fd(&self) -> RawFd {
        self.io.as_raw_fd()
    }
}

impl TryFrom<std::net::TcpListener> for TcpListener {
    type Error = io::Error;
    fn try_from(l: std::net::TcpListener) -> io::Result<TcpListener> {
        TcpListener::from_std(l)
    }
}

impl fmt::Debug for TcpListener {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TcpListener")
            .field("local", &self.local_addr().ok())
            .field("fd", &self.as_raw_fd())
            .finish()
    }
}
