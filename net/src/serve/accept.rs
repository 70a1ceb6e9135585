//! The accept loops of the strategies, and the graceful shutdown's drain.

use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use super::{Pick, Server};
use crate::accept_error::{is_connection_error, is_resource_exhaustion};
use crate::{TcpListener, TcpStream};

/// How long a worker waits after an accept error it does not expect of a listening
/// socket, rather than retrying at once and spinning.
const UNEXPECTED_ERROR_PAUSE: Duration = Duration::from_secs(1);

/// How long the drain waits before retrying after running out of fds or memory.
const DRAIN_BACKOFF_FIRST: Duration = Duration::from_millis(1);
const DRAIN_BACKOFF_MAX: Duration = Duration::from_millis(100);

/// Worker `worker`'s loop for `Exclusive`, `Balanced` and `ReusePort`: accepts on
/// `listener` and serves each connection on this worker.
pub(super) async fn per_worker<H, F>(
    server: Arc<Server<H>>,
    listener: Arc<TcpListener>,
    worker: usize,
) where
    H: Fn(TcpStream, SocketAddr) -> F + Send + Sync + 'static,
    F: Future + Send + 'static,
{
    let balance = server.tracker.balance.as_ref();
    loop {
        if balance.is_some_and(|b| b.is_paused(worker)) {
            // Wait for an event handed here, or for the next one after a resume,
            // rather than taking connections the active workers are there for.
            if let Err(e) = listener.shared().ready_exclusive().await {
                after_error(&e).await;
                continue;
            }
        }
        match listener.accept().await {
            Ok((stream, peer)) => {
                server.start(worker, stream, peer);
                if let Some(balance) = balance {
                    balance.accepted(&server.tracker, &listener, worker);
                }
            }
            Err(e) => after_error(&e).await,
        }
    }
}

/// `MainSub`'s main reactor (on worker 0): accepts everything and hands each
/// connection to the worker `pick` chooses.
pub(super) async fn main<H, F>(server: Arc<Server<H>>, listener: Arc<TcpListener>, pick: Pick)
where
    H: Fn(TcpStream, SocketAddr) -> F + Send + Sync + 'static,
    F: Future + Send + 'static,
{
    let next = AtomicUsize::new(0);
    loop {
        match listener.accept().await {
            Ok((stream, peer)) => {
                let worker = choose(&server, pick, &next);
                server.start(worker, stream, peer);
            }
            Err(e) => after_error(&e).await,
        }
    }
}

/// The worker `pick` hands the next connection to.
fn choose<H>(server: &Server<H>, pick: Pick, next: &AtomicUsize) -> usize {
    let workers = server.tracker.workers();
    let turn = next.fetch_add(1, Ordering::Relaxed) % workers;
    match pick {
        Pick::RoundRobin => turn,
        Pick::LeastLoaded => server.tracker.least_loaded(turn),
    }
}

/// Graceful shutdown: accepts every connection already in `listener`'s backlog
/// (listener `index` of `count`) and hands it to a handler; returns how many.
pub(super) async fn drain<H, F>(
    server: &Server<H>,
    listener: &TcpListener,
    index: usize,
    count: usize,
) -> usize
where
    H: Fn(TcpStream, SocketAddr) -> F + Send + Sync + 'static,
    F: Future + Send + 'static,
{
    let next = AtomicUsize::new(index);
    let mut backoff = None;
    let mut taken = 0;
    loop {
        match listener.accept_now() {
            Ok(Some((stream, peer))) => {
                backoff = None;
                // A `ReusePort` listener's connections go to its worker; the shared
                // listener's to the least loaded.
                let worker = if count > 1 {
                    index
                } else {
                    choose(server, Pick::LeastLoaded, &next)
                };
                server.start(worker, stream, peer);
                taken += 1;
            }
            Ok(None) => return taken,
            // Out of fds: closing the listener would reset the rest, so wait for
            // handlers to free some (the shutdown waits for them anyway).
            Err(e) if is_resource_exhaustion(&e) => {
                let delay: Duration = backoff.map_or(DRAIN_BACKOFF_FIRST, |d: Duration| {
                    (d * 2).min(DRAIN_BACKOFF_MAX)
                });
                backoff = Some(delay);
                epitome_runtime::time::sleep(delay).await;
            }
            Err(e) if is_connection_error(&e) => {}
            Err(_) => return taken,
        }
    }
}

/// What an accept loop does after `e`: skip a connection's own error; after running
/// out of fds, nothing (the listener's next `accept` backs off); otherwise wait.
async fn after_error(e: &io::Error) {
    if is_connection_error(e) || is_resource_exhaustion(e) {
        return;
    }
    epitome_runtime::time::sleep(UNEXPECTED_ERROR_PAUSE).await;
}
