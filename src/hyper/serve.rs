//! `serve`: epitome's `axum::serve`.

use std::fmt;
use std::future::{Future, IntoFuture, poll_fn};
use std::io;
use std::marker::PhantomData;
use std::pin::{Pin, pin};
use std::sync::Arc;
use std::task::Poll;
use std::time::Duration;

use epitome_net::serve::{is_connection_error, is_resource_exhaustion};
use hyper_util::server::conn::auto;
use tokio::sync::watch;

use super::connection::serve_connection;
use super::service::IntoConnectionService;
use super::{Executor, Listener, Timer};

/// How long `serve` waits before accepting again after running out of fds or memory:
/// doubling from the first to the last while the errors go on, so a server at its fd
/// limit neither spins nor waits long once fds free up.
const BACKOFF_FIRST: Duration = Duration::from_millis(1);
const BACKOFF_MAX: Duration = Duration::from_millis(100);

/// How long `serve` waits after an accept error it does not expect of a listening
/// socket (as `axum::serve` does), rather than retrying at once and spinning.
const UNEXPECTED_ERROR_PAUSE: Duration = Duration::from_secs(1);

/// How many connections a graceful shutdown takes from the kernel's backlog before it
/// closes the listener: the backlog `TcpListener::bind` asks for.
const DRAIN_MAX: usize = 1024;

/// Serves HTTP/1 and HTTP/2 on `listener` with `service`: epitome's `axum::serve`.
///
/// `service` is an axum `Router`, any tower `Service<Request<Incoming>>` that is `Clone`,
/// a hyper service such as `service_fn`, or a make-service called with each peer
/// address, such as `router.into_make_service_with_connect_info::<SocketAddr>()` (see
/// [`IntoConnectionService`]). Await the returned [`Serve`] to run the server (it runs
/// until the task is dropped), or call [`with_graceful_shutdown`](Serve::with_graceful_shutdown)
/// first.
///
/// Each connection runs in a task of its own (spawned on the current runtime: on a
/// multi-reactor runtime, on the worker that accepted it), with hyper-util's auto
/// builder: HTTP/1 (keep-alive, upgrades such as WebSockets) or HTTP/2 with prior
/// knowledge (h2c), detected from the first bytes. hyper's timer is epitome's, so
/// hyper's default 30-second limit on reading a request head applies. TCP connections
/// get `TCP_NODELAY`.
///
/// # Errors of `accept`
///
/// `serve` never stops on an accept error. Running out of fds or memory (`EMFILE`,
/// `ENFILE`, `ENOBUFS`, `ENOMEM`) makes it wait before accepting again, doubling from
/// 1 ms to 100 ms while the errors go on, while the connections it has keep being
/// served; a connection that failed before it was accepted (`ECONNABORTED`, ...) is
/// skipped; any other error waits a second before the next try.
///
/// # Example
///
/// ```
/// use axum::{Router, routing::get};
///
/// # fn main() -> std::io::Result<()> {
/// let rt = epitome::runtime::Builder::new_current_thread().build()?;
/// rt.block_on(async {
///     let app = Router::new().route("/", get(|| async { "hello\n" }));
///     let listener = epitome::net::TcpListener::bind("127.0.0.1:0").await?;
///     let server = epitome::hyper::serve(listener, app);
///     println!("listening on http://{}", server.local_addr()?);
///     # let server = server.with_graceful_shutdown(async {});
///     server.await
/// })
/// # }
/// ```
pub fn serve<L, M, Marker>(listener: L, service: M) -> Serve<L, M, Marker>
where
    L: Listener,
    M: IntoConnectionService<L::Addr, Marker>,
{
    Serve {
        listener,
        service,
        _marker: PhantomData,
    }
}

/// The server [`serve`] makes: await it to run.
#[must_use = "a server does nothing until awaited"]
pub struct Serve<L, M, Marker> {
    listener: L,
    service: M,
    _marker: PhantomData<fn() -> Marker>,
}

impl<L, M, Marker> Serve<L, M, Marker>
where
    L: Listener,
    M: IntoConnectionService<L::Addr, Marker>,
{
    /// Shuts down gracefully when `signal` completes: stops accepting (taking the
    /// connections the kernel has already completed, so none is reset), lets every
    /// request in progress finish, closes idle keep-alive connections, and returns once
    /// every connection is closed.
    ///
    /// A request whose bytes reached the server before the signal is answered (the
    /// response carries `Connection: close`; HTTP/2 connections get a GOAWAY). A client
    /// that sends a request on an idle keep-alive connection after the signal reads end
    /// of stream, never a reset, and may retry (RFC 9112, section 9.3.1).
    ///
    /// The returned future waits for every connection, however long its requests take:
    /// wrap it in [`epitome::time::timeout`](crate::time::timeout) to bound the wait.
    pub fn with_graceful_shutdown<F>(self, signal: F) -> WithGracefulShutdown<L, M, F, Marker>
    where
        F: Future<Output = ()> + Send + 'static,
    {
        WithGracefulShutdown {
            serve: self,
            signal,
        }
    }

    /// The listener's local address.
    pub fn local_addr(&self) -> io::Result<L::Addr> {
        self.listener.local_addr()
    }
}

impl<L, M, Marker: 'static> IntoFuture for Serve<L, M, Marker>
where
    L: Listener,
    M: IntoConnectionService<L::Addr, Marker>,
{
    type Output = io::Result<()>;
    type IntoFuture = Pin<Box<dyn Future<Output = io::Result<()>> + Send>>;

    fn into_future(self) -> Self::IntoFuture {
        Box::pin(run(self.listener, self.service, std::future::pending()))
    }
}

impl<L: fmt::Debug, M, Marker> fmt::Debug for Serve<L, M, Marker> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Serve")
            .field("listener", &self.listener)
            .finish_non_exhaustive()
    }
}

/// A [`Serve`] that shuts down gracefully when its signal completes: await it to run.
#[must_use = "a server does nothing until awaited"]
pub struct WithGracefulShutdown<L, M, F, Marker> {
    serve: Serve<L, M, Marker>,
    signal: F,
}

impl<L, M, F, Marker> WithGracefulShutdown<L, M, F, Marker>
where
    L: Listener,
    M: IntoConnectionService<L::Addr, Marker>,
{
    /// The listener's local address.
    pub fn local_addr(&self) -> io::Result<L::Addr> {
        self.serve.listener.local_addr()
    }
}

impl<L, M, F, Marker: 'static> IntoFuture for WithGracefulShutdown<L, M, F, Marker>
where
    L: Listener,
    M: IntoConnectionService<L::Addr, Marker>,
    F: Future<Output = ()> + Send + 'static,
{
    type Output = io::Result<()>;
    type IntoFuture = Pin<Box<dyn Future<Output = io::Result<()>> + Send>>;

    fn into_future(self) -> Self::IntoFuture {
        Box::pin(run(self.serve.listener, self.serve.service, self.signal))
    }
}

impl<L: fmt::Debug, M, F, Marker> fmt::Debug for WithGracefulShutdown<L, M, F, Marker> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("WithGracefulShutdown")
            .field("listener", &self.serve.listener)
            .finish_non_exhaustive()
    }
}

/// The accept loop, then the graceful shutdown.
async fn run<L, M, F, Marker>(listener: L, mut service: M, signal: F) -> io::Result<()>
where
    L: Listener,
    M: IntoConnectionService<L::Addr, Marker>,
    F: Future<Output = ()> + Send + 'static,
{
    let mut builder = auto::Builder::new(Executor::new());
    builder.http1().timer(Timer::new());
    builder.http2().timer(Timer::new());
    let builder = Arc::new(builder);
    let (stop_tx, stop_rx) = watch::channel(false);
    let mut signal = pin!(signal);
    let mut backoff: Option<Duration> = None;
    loop {
        let accepted = {
            let mut accept = pin!(listener.accept());
            let first = poll_fn(|cx| match accept.as_mut().poll(cx) {
                Poll::Ready(r) => Poll::Ready(Some(r)),
                Poll::Pending => signal.as_mut().poll(cx).map(|()| None),
            });
            match first.await {
                Some(r) => r,
                None => break,
            }
        };
        match accepted {
            Ok((io, peer)) => {
                backoff = None;
                start_connection::<L, M, Marker>(&builder, &mut service, io, peer, stop_rx.clone())
                    .await;
            }
            Err(e) if is_resource_exhaustion(&e) => {
                let delay = backoff.map_or(BACKOFF_FIRST, |d| (d * 2).min(BACKOFF_MAX));
                backoff = Some(delay);
                // The signal still ends the wait.
                let mut wait = pin!(crate::time::sleep(delay));
                let stopped = poll_fn(|cx| match wait.as_mut().poll(cx) {
                    Poll::Ready(()) => Poll::Ready(false),
                    Poll::Pending => signal.as_mut().poll(cx).map(|()| true),
                });
                if stopped.await {
                    break;
                }
            }
            Err(e) if is_connection_error(&e) => {}
            Err(_) => {
                let mut wait = pin!(crate::time::sleep(UNEXPECTED_ERROR_PAUSE));
                let stopped = poll_fn(|cx| match wait.as_mut().poll(cx) {
                    Poll::Ready(()) => Poll::Ready(false),
                    Poll::Pending => signal.as_mut().poll(cx).map(|()| true),
                });
                if stopped.await {
                    break;
                }
            }
        }
    }

    // Graceful shutdown. Connections whose handshake the kernel completed are in the
    // backlog, and closing the listener would reset them: take them first. (One that
    // completes between the last accept and the close is still reset; the window is
    // a few microseconds.)
    for _ in 0..DRAIN_MAX {
        match listener.accept_now() {
            Ok(Some((io, peer))) => {
                start_connection::<L, M, Marker>(&builder, &mut service, io, peer, stop_rx.clone())
                    .await
            }
            Ok(None) | Err(_) => break,
        }
    }
    drop(listener);
    stop_tx.send_replace(true);
    drop(stop_rx);
    // Every connection holds a receiver until its socket is closed.
    stop_tx.closed().await;
    Ok(())
}

/// Makes the connection's service and spawns the task that serves it.
async fn start_connection<L, M, Marker>(
    builder: &Arc<auto::Builder<Executor>>,
    service: &mut M,
    io: L::Io,
    peer: L::Addr,
    stop: watch::Receiver<bool>,
) where
    L: Listener,
    M: IntoConnectionService<L::Addr, Marker>,
{
    // A make-service that fails is one connection refused, not the server stopped.
    if poll_fn(|cx| service.poll_ready(cx)).await.is_err() {
        return;
    }
    let made = service.connection_service(&peer);
    let builder = builder.clone();
    drop(crate::spawn(async move {
        if let Ok(service) = made.await {
            serve_connection(builder, io, service, stop).await;
        }
    }));
}
