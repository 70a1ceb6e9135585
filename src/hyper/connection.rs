//! One connection of [`serve`](super::serve): HTTP/1 or HTTP/2 through hyper-util's
//! auto builder, told to shut down gracefully without dropping a request the kernel
//! has already received, and closed without a reset.
//!
//! # Graceful shutdown of one connection
//!
//! hyper's `graceful_shutdown` finishes a request in progress and closes an idle
//! connection at once. "Idle" is hyper's view: a request whose bytes sit in the
//! socket's receive buffer, not yet read, counts as idle and would be dropped. So when
//! the shutdown starts, a connection whose socket holds unread bytes (a `MSG_PEEK`)
//! first lets hyper read them, and is told to shut down once it has (at most
//! [`DEFER_MAX`] later): the request is then in progress, answered, and the connection
//! closed after it (`Connection: close` in HTTP/1, GOAWAY in HTTP/2).
//!
//! # Closing without a reset
//!
//! Closing a socket whose receive buffer holds unread bytes makes the kernel send a
//! reset, which can destroy the response the peer has not read yet. Once hyper is done
//! with a connection it is half-closed (`shutdown(SHUT_WR)`: the peer reads end of
//! stream after everything sent) and read until the peer closes its side, an error, or
//! [`LINGER_MAX`], and only then closed: the "lingering close" of Apache and nginx.

use std::future::{Future, poll_fn};
use std::mem::MaybeUninit;
use std::pin::{Pin, pin};
use std::sync::Arc;
use std::task::Poll;
use std::time::Duration;

use hyper::Request;
use hyper::body::Incoming;
use hyper_util::server::conn::auto;
use socket2::SockRef;
use tokio::sync::watch;

use super::service::BoxError;
use super::{Executor, Io, Stream};

/// How long a connection with unread request bytes may defer its graceful shutdown.
pub(super) const DEFER_MAX: Duration = Duration::from_secs(1);

/// How long a finished connection is read (and the bytes dropped) before it is closed.
pub(super) const LINGER_MAX: Duration = Duration::from_secs(2);

/// Serves one connection until it ends; `stop` turns true when a graceful shutdown
/// starts. Holding `stop` until the socket is closed is what `serve` waits for.
pub(super) async fn serve_connection<I, S, B>(
    builder: Arc<auto::Builder<Executor>>,
    stream: I,
    service: S,
    mut stop: watch::Receiver<bool>,
) where
    I: Stream + Send + Sync + Unpin + 'static,
    S: hyper::service::Service<Request<Incoming>, Response = hyper::Response<B>> + Send + 'static,
    S::Future: Send + 'static,
    S::Error: Into<BoxError>,
    B: hyper::body::Body<Data: Send, Error: Into<BoxError>> + Send + 'static,
{
    let stream = Arc::new(stream);
    {
        let conn = builder.serve_connection_with_upgrades(Io::new(stream.clone()), service);
        let mut conn = pin!(conn);
        let mut stop_signal = pin!(stop.wait_for(|stop| *stop));
        // None: waiting for the signal; Some(false): signalled, hyper not told yet;
        // Some(true): hyper told. A closed channel (serve dropped without a graceful
        // shutdown) is no signal: the connection goes on.
        let mut signalled: Option<bool> = None;
        let mut signal_gone = false;
        let mut defer_limit: Option<crate::time::Sleep> = None;
        poll_fn(|cx| {
            if signalled.is_none() && !signal_gone {
                match stop_signal.as_mut().poll(cx) {
                    Poll::Ready(Ok(_)) => signalled = Some(false),
                    Poll::Ready(Err(_)) => signal_gone = true,
                    Poll::Pending => {}
                }
            }
            if signalled == Some(false) {
                let limit = defer_limit.get_or_insert_with(|| crate::time::sleep(DEFER_MAX));
                if !has_unread_bytes(&*stream) || Pin::new(limit).poll(cx).is_ready() {
                    conn.as_mut().graceful_shutdown();
                    signalled = Some(true);
                }
            }
            let polled = conn.as_mut().poll(cx);
            if polled.is_pending() && signalled == Some(false) && !has_unread_bytes(&*stream) {
                // hyper read the waiting bytes in this poll: the request is in progress.
                conn.as_mut().graceful_shutdown();
                signalled = Some(true);
                return conn.as_mut().poll(cx);
            }
            polled
        })
        .await
        // A connection's error (a reset peer, a malformed request, a timeout) ends that
        // connection only; there is no one to report it to.
        .ok();
    }
    linger(stream).await;
    drop(stop);
}

/// Whether the kernel holds received bytes not read yet.
fn has_unread_bytes<I: Stream>(stream: &I) -> bool {
    let mut byte = [MaybeUninit::<u8>::uninit(); 1];
    // The socket is non-blocking: an empty buffer is `WouldBlock`; end of stream is 0.
    matches!(SockRef::from(stream).peek(&mut byte), Ok(n) if n > 0)
}

/// Half-closes, reads until the peer closes (or [`LINGER_MAX`]), then closes.
async fn linger<I: Stream>(stream: Arc<I>) {
    // If hyper handed the socket to an upgrade (a WebSocket, CONNECT), the upgrade owns
    // its end.
    let Some(stream) = Arc::into_inner(stream) else {
        return;
    };
    // ENOTCONN after a reset: nothing to linger on.
    if stream.shutdown_write().is_err() {
        return;
    }
    let drain = async {
        let mut buf = [MaybeUninit::<u8>::uninit(); 4096];
        loop {
            match poll_fn(|cx| stream.poll_read_uninit(cx, &mut buf)).await {
                Ok(0) | Err(_) => break,
                Ok(_) => {}
            }
        }
    };
    // Elapsed: the peer keeps its side open; close anyway.
    let _ = crate::time::timeout(LINGER_MAX, drain).await;
}
