//! hyper 1.x on epitome: an executor, a timer, I/O adapters and a client connector.
//!
//! hyper abstracts its runtime behind `hyper::rt::{Executor, Timer, Sleep, Read,
//! Write}`. These types implement them with epitome's tasks, timers and sockets, so a
//! hyper (or axum) server or client runs on epitome with no tokio runtime.
//!
//! ```no_run
//! use epitome::hyper::{Executor, Io, Timer};
//! # async fn serve(stream: epitome::net::TcpStream) {
//! let service = hyper::service::service_fn(|_req: hyper::Request<hyper::body::Incoming>| async {
//!     Ok::<_, std::convert::Infallible>(hyper::Response::new(String::from("hello")))
//! });
//! hyper::server::conn::http1::Builder::new()
//!     .timer(Timer::new())
//!     .serve_connection(Io::new(stream), service)
//!     .await
//!     .ok();
//! # }
//! ```

use std::future::Future;
use std::io;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use epitome_net::{TcpStream, UnixStream};
use hyper::rt::{ReadBufCursor, Sleep as HyperSleep};

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

/// The epitome streams `Io` can wrap.
pub trait Stream: sealed::Sealed + futures_io::AsyncWrite + Unpin {
    #[doc(hidden)]
    fn poll_read_uninit(
        &self,
        cx: &mut Context<'_>,
        buf: &mut [std::mem::MaybeUninit<u8>],
    ) -> Poll<io::Result<usize>>;
}

impl sealed::Sealed for TcpStream {}
impl Stream for TcpStream {
    fn poll_read_uninit(
        &self,
        cx: &mut Context<'_>,
        buf: &mut [std::mem::MaybeUninit<u8>],
    ) -> Poll<io::Result<usize>> {
        TcpStream::poll_read_uninit(self, cx, buf)
    }
}

impl sealed::Sealed for UnixStream {}
impl Stream for UnixStream {
    fn poll_read_uninit(
        &self,
        cx: &mut Context<'_>,
        buf: &mut [std::mem::MaybeUninit<u8>],
    ) -> Poll<io::Result<usize>> {
        UnixStream::poll_read_uninit(self, cx, buf)
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

impl<T: Stream> hyper::rt::Read for Io<T> {
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

impl<T: Stream> hyper::rt::Write for Io<T> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.0).poll_write(cx, buf)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.0).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        true
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.0).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.0).poll_close(cx)
    }
}

impl hyper_util::client::legacy::connect::Connection for Io<TcpStream> {
    fn connected(&self) -> hyper_util::client::legacy::connect::Connected {
        hyper_util::client::legacy::connect::Connected::new()
    }
}

/// A connector for hyper-util's legacy `Client`: resolves the URI's host (on the
/// blocking pool for names) and connects with epitome's `TcpStream` (`TCP_NODELAY` on).
/// Plain `http` only; TLS belongs to a TLS connector wrapping this one.
#[derive(Clone, Debug, Default)]
pub struct Connector {
    _private: (),
}

impl Connector {
    /// A connector.
    pub fn new() -> Connector {
        Connector { _private: () }
    }
}

impl tower_service::Service<http::Uri> for Connector {
    type Response = Io<TcpStream>;
    type Error = io::Error;
    type Future = Pin<Box<dyn Future<Output = io::Result<Io<TcpStream>>> + Send>>;

    fn poll_ready(&mut self, _cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, uri: http::Uri) -> Self::Future {
        Box::pin(async move {
            match uri.scheme_str() {
                Some("http") | None => {}
                Some(other) => {
                    return Err(io::Error::new(
                        io::ErrorKind::Unsupported,
                        format!("the epitome connector speaks plain http, not {other}"),
                    ));
                }
            }
            let host = uri
                .host()
                .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidInput, "URI has no host"))?
                .trim_start_matches('[')
                .trim_end_matches(']')
                .to_string();
            let port = uri.port_u16().unwrap_or(80);
            let stream = TcpStream::connect((host, port)).await?;
            stream.set_nodelay(true)?;
            Ok(Io::new(stream))
        })
    }
}
