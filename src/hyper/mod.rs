//! hyper 1.x and axum on epitome: `serve`, and the executor, timer, I/O adapters and
//! client connector it is built from.
//!
//! hyper abstracts its runtime behind `hyper::rt::{Executor, Timer, Sleep, Read,
//! Write}`. The types here implement them with epitome's tasks, timers and sockets, so a
//! hyper (or axum) server or client runs on epitome with no tokio runtime.
//!
//! # Features
//!
//! `hyper-server` brings `serve` and the adapters; `hyper-client` brings `Connector` for
//! hyper-util's legacy `Client` (whose `client-legacy` feature also compiles tokio's
//! networking code, which epitome never runs); `hyper` is both.
#![cfg_attr(
    feature = "hyper-server",
    doc = r#"
# Serving

[`serve`] is epitome's `axum::serve`: it accepts connections, speaks HTTP/1 or
HTTP/2 on each (detected per connection), hands the peer address to axum's
`ConnectInfo`, keeps going when `accept` fails for lack of fds or memory, and shuts
down gracefully ([`Serve::with_graceful_shutdown`]).

```
use std::net::SocketAddr;
use axum::{Router, extract::ConnectInfo, routing::get};

async fn hello(ConnectInfo(peer): ConnectInfo<SocketAddr>) -> String {
    format!("hello, {peer}
")
}

# fn main() -> std::io::Result<()> {
let rt = epitome::runtime::Builder::new_current_thread().build()?;
rt.block_on(async {
    let app = Router::new().route("/", get(hello));
    let listener = epitome::net::TcpListener::bind("127.0.0.1:0").await?;
    # let stop = async {};
    // `stop` is any future: a Ctrl-C signal, a channel, a timer.
    epitome::hyper::serve(listener, app.into_make_service_with_connect_info::<SocketAddr>())
        .with_graceful_shutdown(stop)
        .await
})
# }
```

# Building blocks

For a hand-made accept loop, [`Executor`], [`Timer`] and [`Io`] plug into hyper's
and hyper-util's connection builders:

```no_run
use epitome::hyper::{Io, Timer};
# async fn serve(stream: epitome::net::TcpStream) {
let service = hyper::service::service_fn(|_req: hyper::Request<hyper::body::Incoming>| async {
    Ok::<_, std::convert::Infallible>(hyper::Response::new(String::from("hello")))
});
hyper::server::conn::http1::Builder::new()
    .timer(Timer::new())
    .serve_connection(Io::new(stream), service)
    .await
    .ok();
# }
```
"#
)]

use std::future::Future;
use std::io;
use std::os::fd::{AsFd, BorrowedFd};
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use epitome_net::{TcpStream, UnixStream};
use hyper::rt::{ReadBufCursor, Sleep as HyperSleep};

#[cfg(feature = "hyper-client")]
mod client;
#[cfg(feature = "hyper-server")]
mod connection;
#[cfg(feature = "hyper-server")]
mod listener;
#[cfg(feature = "hyper-server")]
mod peer_addr;
#[cfg(feature = "hyper-server")]
mod serve;
#[cfg(feature = "hyper-server")]
mod service;

#[cfg(feature = "hyper-client")]
pub use client::Connector;
#[cfg(feature = "hyper-server")]
pub use listener::Listener;
#[cfg(feature = "hyper-server")]
pub use peer_addr::{AddPeerAddr, PeerAddr, WithPeerAddr, with_peer_addr};
#[cfg(feature = "hyper-server")]
pub use serve::{Serve, WithGracefulShutdown, serve};
#[cfg(feature = "hyper-server")]
pub use service::{BoxError, IntoConnectionService, ViaHyper, ViaMakeService, ViaTower};

/// Spawns `Send` futures (hyper's connection tasks, HTTP/2 streams) on the current
/// epitome runtime, or on the runtime of the handle it was made with.
#[derive(Clone, Debug, Default)]
pub struct Executor {
    handle: Option<crate::runtime::Handle>,
}

impl Executor {
    /// Spawns on whichever epitome runtime the spawning thread is in.
    pub fn new() -> Executor {
        Executor { handle: None }
    }

    /// Spawns on the runtime of `handle`.
    pub fn with_handle(handle: crate::runtime::Handle) -> Executor {
        Executor {
            handle: Some(handle),
        }
    }
}

impl<F> hyper::rt::Executor<F> for Executor
where
    F: Future + Send + 'static,
    F::Output: Send + 'static,
{
    fn execute(&self, fut: F) {
        match &self.handle {
            Some(h) => drop(h.spawn(fut)),
            None => drop(crate::spawn(fut)),
        }
    }
}

/// Spawns `!Send` futures on the current worker (`spawn_local`), for servers and
/// clients whose services are not `Send`.
#[derive(Clone, Copy, Debug, Default)]
pub struct LocalExecutor;

impl<F> hyper::rt::Executor<F> for LocalExecutor
where
    F: Future + 'static,
{
    fn execute(&self, fut: F) {
        drop(crate::task::spawn_local(fut));
    }
}

/// hyper's timer on epitome's timing wheel.
#[derive(Clone, Copy, Debug, Default)]
pub struct Timer;

impl Timer {
    /// The timer.
    pub fn new() -> Timer {
        Timer
    }
}

/// A `hyper::rt::Sleep`: epitome's `Sleep`, which is `Send + Sync` as it is.
#[derive(Debug)]
pub struct Sleep(crate::time::Sleep);

impl Future for Sleep {
    type Output = ();
    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        Pin::new(&mut self.0).poll(cx)
    }
}

impl HyperSleep for Sleep {}

impl hyper::rt::Timer for Timer {
    fn sleep(&self, duration: Duration) -> Pin<Box<dyn HyperSleep>> {
        Box::pin(Sleep(crate::time::sleep(duration)))
    }

    fn sleep_until(&self, deadline: Instant) -> Pin<Box<dyn HyperSleep>> {
        Box::pin(Sleep(crate::time::sleep_until(deadline)))
    }

    /// Moves the timer entry of an epitome sleep in place (no new allocation, no new
    /// wheel entry); other sleeps are replaced.
    fn reset(&self, sleep: &mut Pin<Box<dyn HyperSleep>>, new_deadline: Instant) {
        match sleep.as_mut().downcast_mut_pin::<Sleep>() {
            Some(mut s) => Pin::new(&mut s.0).reset(new_deadline),
            None => *sleep = self.sleep_until(new_deadline),
        }
    }

    fn now(&self) -> Instant {
        Instant::now()
    }
}

mod sealed {
    pub trait Sealed {}
}

/// The epitome streams `Io` can wrap: `TcpStream`, `UnixStream`, and an `Arc` of either.
pub trait Stream: sealed::Sealed + AsFd {
    #[doc(hidden)]
    fn poll_read_uninit(
        &self,
        cx: &mut Context<'_>,
        buf: &mut [std::mem::MaybeUninit<u8>],
    ) -> Poll<io::Result<usize>>;
    #[doc(hidden)]
    fn poll_write(&self, cx: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>>;
    #[doc(hidden)]
    fn poll_write_vectored(
        &self,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>>;
    /// Shuts the write side down (the peer reads end of stream).
    #[doc(hidden)]
    fn shutdown_write(&self) -> io::Result<()>;
}

macro_rules! stream_impl {
    ($t:ty) => {
        impl sealed::Sealed for $t {}
        impl Stream for $t {
            fn poll_read_uninit(
                &self,
                cx: &mut Context<'_>,
                buf: &mut [std::mem::MaybeUninit<u8>],
            ) -> Poll<io::Result<usize>> {
                <$t>::poll_read_uninit(self, cx, buf)
            }
            fn poll_write(&self, cx: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
                <$t>::poll_write(self, cx, buf)
            }
            fn poll_write_vectored(
                &self,
                cx: &mut Context<'_>,
                bufs: &[io::IoSlice<'_>],
            ) -> Poll<io::Result<usize>> {
                <$t>::poll_write_vectored(self, cx, bufs)
            }
            fn shutdown_write(&self) -> io::Result<()> {
                // `AsyncWrite::poll_close` of `&stream` is a plain `shutdown(SHUT_WR)`,
                // ready at once.
                let mut noop = Context::from_waker(std::task::Waker::noop());
                match futures_io::AsyncWrite::poll_close(Pin::new(&mut &*self), &mut noop) {
                    Poll::Ready(r) => r,
                    Poll::Pending => Ok(()),
                }
            }
        }
    };
}

stream_impl!(TcpStream);
stream_impl!(UnixStream);

impl<T: Stream> sealed::Sealed for Arc<T> {}
impl<T: Stream> Stream for Arc<T> {
    fn poll_read_uninit(
        &self,
        cx: &mut Context<'_>,
        buf: &mut [std::mem::MaybeUninit<u8>],
    ) -> Poll<io::Result<usize>> {
        (**self).poll_read_uninit(cx, buf)
    }
    fn poll_write(&self, cx: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
        (**self).poll_write(cx, buf)
    }
    fn poll_write_vectored(
        &self,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        (**self).poll_write_vectored(cx, bufs)
    }
    fn shutdown_write(&self) -> io::Result<()> {
        (**self).shutdown_write()
    }
}

/// An epitome stream as hyper's `Read` and `Write` (vectored writes passed through).
#[derive(Debug)]
pub struct Io<T>(T);

impl<T> Io<T> {
    /// Wraps a stream.
    pub fn new(stream: T) -> Io<T> {
        Io(stream)
    }

    /// The stream.
    pub fn inner(&self) -> &T {
        &self.0
    }

    /// The stream, back.
    pub fn into_inner(self) -> T {
        self.0
    }
}

impl<T: Stream> AsFd for Io<T> {
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.0.as_fd()
    }
}

impl<T: Stream + Unpin> hyper::rt::Read for Io<T> {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        mut buf: ReadBufCursor<'_>,
    ) -> Poll<io::Result<()>> {
        // SAFETY: `poll_read_uninit` only writes the memory and reports how many bytes
        // it initialised; only those are advanced over.
        let n = std::task::ready!(self.0.poll_read_uninit(cx, unsafe { buf.as_mut() }))?;
        // SAFETY: the first `n` bytes were just initialised by `read(2)`.
        unsafe { buf.advance(n) };
        Poll::Ready(Ok(()))
    }
}

impl<T: Stream + Unpin> hyper::rt::Write for Io<T> {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        self.0.poll_write(cx, buf)
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        self.0.poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        true
    }

    fn poll_flush(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        // Sockets buffer nothing in user space.
        Poll::Ready(Ok(()))
    }

    fn poll_shutdown(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Poll::Ready(self.0.shutdown_write())
    }
}
