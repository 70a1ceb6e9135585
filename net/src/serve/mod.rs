//! Serving a TCP listener on every reactor of the current runtime, with a named accept
//! strategy: [`serve`].
//!
//! ```
//! use epitome_net::serve::{Strategy, serve};
//! use epitome_net::{TcpListener, TcpStream};
//!
//! let rt = epitome_runtime::runtime::Builder::new_multi_reactor().reactors(2).build()?;
//! rt.block_on(async {
//!     let listener = TcpListener::bind("127.0.0.1:0").await?;
//!     let addr = listener.local_addr()?;
//!     // A client: one round trip, then it hangs up.
//!     let client = epitome_runtime::spawn(async move {
//!         let stream = TcpStream::connect(addr).await?;
//!         stream.write_all(b"ping").await?;
//!         let mut back = [0; 4];
//!         stream.read_exact(&mut back).await?;
//!         Ok::<_, std::io::Error>(back)
//!     });
//!     // An echo server on both workers, shut down gracefully once the client is done.
//!     let (done, echoed) = std::sync::mpsc::channel();
//!     serve(listener, |stream, _peer| async move {
//!         let mut buf = [0; 64];
//!         while let Ok(n @ 1..) = stream.read(&mut buf).await {
//!             stream.write_all(&buf[..n]).await?;
//!         }
//!         Ok::<_, std::io::Error>(())
//!     })
//!     .strategy(Strategy::Balanced)
//!     .with_graceful_shutdown(async move {
//!         let _ = done.send(client.await);
//!     })
//!     .await?;
//!     assert_eq!(echoed.recv().unwrap().unwrap()?, *b"ping");
//!     Ok::<_, std::io::Error>(())
//! })?;
//! # Ok::<_, std::io::Error>(())
//! ```
//!
//! # The strategies
//!
//! A multi-reactor runtime has one reactor per worker, and a task (with the
//! connections it waits on) stays on its worker for life, so where a connection is
//! accepted decides which reactor serves it until it closes. [`Strategy`] names the
//! ways to decide:
//!
//! - [`Exclusive`](Strategy::Exclusive): one accept loop per worker on the one
//!   listener, registered in every reactor with `EPOLLEXCLUSIVE`. One connection
//!   wakes one worker; but the kernel wakes the first idle reactor in the order they
//!   registered, so with connections arriving one at a time one worker takes nearly
//!   all of them.
//! - [`ReusePort`](Strategy::ReusePort): a listener per worker, all bound to the port
//!   with `SO_REUSEPORT`; the kernel spreads connections over them by a hash of the
//!   addresses ([`Steering::Hash`]) or by the CPU that received the SYN
//!   ([`Steering::IncomingCpu`]). Busy or idle, a worker gets its share.
//! - [`MainSub`](Strategy::MainSub): the seeds' main/sub reactors: worker 0 accepts
//!   every connection and hands it to a worker ([`Pick`]) through that worker's remote
//!   queue. Even spread, but two wakeups per connection handed to another worker.
//! - [`Balanced`](Strategy::Balanced), the default: `Exclusive`, plus load awareness
//!   (nginx's `accept_disabled`): a worker holding more than its share of live
//!   connections takes its reactor out of the listener's wake list until the others
//!   catch up. One wakeup per connection, and an even spread.
//!
//! `docs/server-models.md` measures them, and says when to use which.
//!
//! # Graceful shutdown
//!
//! [`Serve::with_graceful_shutdown`]: when the signal completes, accepting stops; each
//! listener gets a socket filter that drops new SYNs (so no connection starts on a
//! listener about to close, where closing would reset it: a client retrying its SYN a
//! second later finds the port closed, or served by another process), the handshakes
//! already under way complete, every connection in a backlog is accepted and handed
//! to a handler (the listeners close once two drains 10 ms apart both find
//! nothing), and the future completes once every handler has returned. Handlers that
//! keep connections open for long (idle keep-alive, chat) should watch the same
//! signal themselves.
//!
//! # Cheap idle connections
//!
//! [`read_pooled`] waits for a connection to become readable without holding a read
//! buffer, then reads into a buffer of the worker's: a handler built on it costs no
//! buffer memory while its connection is idle.

mod accept;
mod balance;
mod pooled;
mod reuseport;
mod tracker;

use std::fmt;
use std::future::{Future, IntoFuture};
use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;

use epitome_runtime::runtime::Handle;
use epitome_runtime::task::JoinHandle;

pub use crate::accept_error::{is_connection_error, is_resource_exhaustion};
use crate::{TcpListener, TcpStream};
pub use pooled::read_pooled;
use tracker::Tracker;

/// How the workers of the runtime share the accepting (see the [module docs](self)).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub enum Strategy {
    /// One listener, in every worker's reactor with `EPOLLEXCLUSIVE`; each worker
    /// accepts and serves what it accepted.
    Exclusive,
    /// A listener per worker, bound with `SO_REUSEPORT` (the listener given to
    /// [`serve`] must have it: see [`TcpSocket::set_reuseport`](crate::TcpSocket::set_reuseport));
    /// the kernel picks the listener, as [`Steering`] says.
    ReusePort(Steering),
    /// Worker 0 accepts everything and hands each connection to a worker chosen as
    /// [`Pick`] says (worker 0 included), through that worker's remote queue.
    MainSub(Pick),
    /// [`Exclusive`](Self::Exclusive), and a worker holding more than its share of the
    /// live connections stops taking new ones until the others catch up.
    #[default]
    Balanced,
}

/// How the kernel picks one of the [`ReusePort`](Strategy::ReusePort) listeners for a
/// new connection.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub enum Steering {
    /// The kernel's hash of the connection's addresses and ports.
    #[default]
    Hash,
    /// The listener of worker `cpu % workers`, where `cpu` is the CPU that received the
    /// connection's SYN (a classic BPF program on the group,
    /// `SO_ATTACH_REUSEPORT_CBPF`). Worth it when worker `i` runs on CPU `i` and the
    /// network card spreads flows over the CPUs; on loopback the receiving CPU is the
    /// client's, so every connection of one client thread lands on one worker.
    IncomingCpu,
}

/// Which worker [`MainSub`](Strategy::MainSub) hands a connection to.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub enum Pick {
    /// Each worker in turn.
    RoundRobin,
    /// The worker with the fewest live connections of this server.
    #[default]
    LeastLoaded,
}

/// Serves `listener` on the current runtime's workers: each accepted connection is
/// passed, with its peer's address, to `handler`, whose future runs as a task of its
/// own on the worker whose reactor serves the connection. `handler`'s output is
/// dropped.
///
/// The returned [`Serve`] does nothing until awaited (it runs until the task awaiting
/// it is dropped; dropping it stops the accepting, and the connections go on being
/// served); set the strategy with [`Serve::strategy`] (the default is
/// [`Strategy::Balanced`]) and a shutdown signal with
/// [`Serve::with_graceful_shutdown`]. Await it inside a runtime: in `block_on`, or in
/// a task.
///
/// # Accept errors
///
/// The server never stops on one. Running out of fds or memory (`EMFILE`, `ENFILE`,
/// `ENOBUFS`, `ENOMEM`) makes the worker wait before accepting again, doubling from 1
/// ms to 100 ms while the errors go on (see [`TcpListener`]); an error that belongs to
/// one incoming connection (`ECONNABORTED`, ...) is skipped; any other error makes the
/// worker wait a second before it tries again.
pub fn serve<H, F>(listener: TcpListener, handler: H) -> Serve<H>
where
    H: Fn(TcpStream, SocketAddr) -> F + Send + Sync + 'static,
    F: Future + Send + 'static,
{
    Serve {
        listener,
        handler,
        strategy: Strategy::default(),
    }
}

/// The server [`serve`] makes: await it to run.
#[must_use = "a server does nothing until awaited"]
pub struct Serve<H> {
    listener: TcpListener,
    handler: H,
    strategy: Strategy,
}

impl<H, F> Serve<H>
where
    H: Fn(TcpStream, SocketAddr) -> F + Send + Sync + 'static,
    F: Future + Send + 'static,
{
    /// Sets the accept strategy.
    pub fn strategy(mut self, strategy: Strategy) -> Self {
        self.strategy = strategy;
        self
    }

    /// Shuts down gracefully when `signal` completes (see the
    /// [module docs](self#graceful-shutdown)): stops accepting, serves every connection
    /// already in the backlog, closes the listeners, and completes once every handler
    /// has returned. Bound the wait with `epitome::time::timeout` if handlers may run
    /// for long.
    pub fn with_graceful_shutdown<S>(self, signal: S) -> WithGracefulShutdown<H, S>
    where
        S: Future<Output = ()> + Send + 'static,
    {
        WithGracefulShutdown {
            serve: self,
            signal,
        }
    }

    /// The listener's local address.
    pub fn local_addr(&self) -> io::Result<SocketAddr> {
        self.listener.local_addr()
    }
}

impl<H, F> IntoFuture for Serve<H>
where
    H: Fn(TcpStream, SocketAddr) -> F + Send + Sync + 'static,
    F: Future + Send + 'static,
{
    type Output = io::Result<()>;
    type IntoFuture = Pin<Box<dyn Future<Output = io::Result<()>> + Send>>;

    fn into_future(self) -> Self::IntoFuture {
        Box::pin(run(
            self.listener,
            self.handler,
            self.strategy,
            std::future::pending(),
        ))
    }
}

impl<H> fmt::Debug for Serve<H> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Serve")
            .field("listener", &self.listener)
            .field("strategy", &self.strategy)
            .finish_non_exhaustive()
    }
}

/// A [`Serve`] that shuts down gracefully when its signal completes: await it to run.
#[must_use = "a server does nothing until awaited"]
pub struct WithGracefulShutdown<H, S> {
    serve: Serve<H>,
    signal: S,
}

impl<H, F, S> WithGracefulShutdown<H, S>
where
    H: Fn(TcpStream, SocketAddr) -> F + Send + Sync + 'static,
    F: Future + Send + 'static,
    S: Future<Output = ()> + Send + 'static,
{
    /// The listener's local address.
    pub fn local_addr(&self) -> io::Result<SocketAddr> {
        self.serve.listener.local_addr()
    }
}

impl<H, F, S> IntoFuture for WithGracefulShutdown<H, S>
where
    H: Fn(TcpStream, SocketAddr) -> F + Send + Sync + 'static,
    F: Future + Send + 'static,
    S: Future<Output = ()> + Send + 'static,
{
    type Output = io::Result<()>;
    type IntoFuture = Pin<Box<dyn Future<Output = io::Result<()>> + Send>>;

    fn into_future(self) -> Self::IntoFuture {
        let Serve {
            listener,
            handler,
            strategy,
        } = self.serve;
        Box::pin(run(listener, handler, strategy, self.signal))
    }
}

impl<H, S> fmt::Debug for WithGracefulShutdown<H, S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("WithGracefulShutdown")
            .field("serve", &self.serve)
            .finish_non_exhaustive()
    }
}

/// How long a graceful shutdown waits, with new handshakes refused, for the ones under
/// way to complete: longer than a round trip on a local network (a client farther
/// away whose final ACK is still in flight when the listener closes is reset).
const HANDSHAKE_SETTLE: std::time::Duration = std::time::Duration::from_millis(10);
/// The most drains a graceful shutdown makes before closing the listeners.
const SETTLE_ROUNDS: usize = 100;

/// What every accept loop shares: the handler, the runtime, the connection counts.
struct Server<H> {
    handler: H,
    handle: Handle,
    tracker: Arc<Tracker>,
}

impl<H, F> Server<H>
where
    H: Fn(TcpStream, SocketAddr) -> F + Send + Sync + 'static,
    F: Future + Send + 'static,
{
    /// Counts the connection as `worker`'s and spawns its handler there.
    fn start(&self, worker: usize, stream: TcpStream, peer: SocketAddr) {
        let live = Tracker::open(&self.tracker, worker);
        let handling = (self.handler)(stream, peer);
        // A runtime shutting down drops the task's future, and with it the count.
        let _ = self
            .handle
            .spawn_on(worker, tracker::Counted::new(handling, live));
    }
}

/// Aborts the accept loops when dropped (the serving future dropped, or shutdown).
struct Loops(Vec<JoinHandle<()>>);

impl Loops {
    /// Stops every loop and waits until each is gone (and has dropped its listener).
    async fn stop(mut self) {
        let loops = std::mem::take(&mut self.0);
        for l in &loops {
            l.abort();
        }
        for l in loops {
            let _ = l.await;
        }
    }
}

impl Drop for Loops {
    fn drop(&mut self) {
        for l in &self.0 {
            l.abort();
        }
    }
}

async fn run<H, F, S>(
    listener: TcpListener,
    handler: H,
    strategy: Strategy,
    signal: S,
) -> io::Result<()>
where
    H: Fn(TcpStream, SocketAddr) -> F + Send + Sync + 'static,
    F: Future + Send + 'static,
    S: Future<Output = ()> + Send + 'static,
{
    let handle = Handle::try_current().map_err(io::Error::other)?;
    let workers = handle.num_workers();
    let listeners: Vec<Arc<TcpListener>> = match strategy {
        Strategy::ReusePort(steering) => reuseport::group(listener, workers, steering)?,
        _ => vec![Arc::new(listener)],
    };
    let balanced = matches!(strategy, Strategy::Balanced);
    let tracker = Arc::new(Tracker::new(
        workers,
        balanced.then(|| Arc::downgrade(&listeners[0])),
    ));
    let server = Arc::new(Server {
        handler,
        handle: handle.clone(),
        tracker: tracker.clone(),
    });
    let loops = match strategy {
        Strategy::MainSub(pick) => {
            let main = handle
                .spawn_on(0, accept::main(server.clone(), listeners[0].clone(), pick))
                .map_err(io::Error::other)?;
            vec![main]
        }
        _ => handle.spawn_on_each(|i| {
            let listener = listeners[i.min(listeners.len() - 1)].clone();
            accept::per_worker(server.clone(), listener, i)
        }),
    };
    let loops = Loops(loops);
    signal.await;

    loops.stop().await;
    // Refuse new handshakes everywhere first, then take what the kernel completed.
    // Best effort: without the filter (a kernel refusing it), a connection completed
    // between the last accept and the close is reset.
    // (Every listener gets its filter, even after one fails: no short-circuit.)
    let refused: Vec<bool> = listeners
        .iter()
        .map(|l| reuseport::refuse_new(l).is_ok())
        .collect();
    let refusing = refused.iter().all(|&ok| ok);
    // A handshake under way when the filter went on completes once its final ACK
    // arrives; closing before that would reset a client that believes it is
    // connected. So the listeners close after a drain that follows a pause of
    // `HANDSHAKE_SETTLE` finds nothing (no new handshake starts meanwhile; the
    // rounds are bounded all the same).
    let mut settled = false;
    for _ in 0..SETTLE_ROUNDS {
        let mut taken = 0;
        for (i, l) in listeners.iter().enumerate() {
            taken += accept::drain(&server, l, i, listeners.len()).await;
        }
        if !refusing || (taken == 0 && settled) {
            break;
        }
        settled = taken == 0;
        epitome_runtime::time::sleep(HANDSHAKE_SETTLE).await;
    }
    drop(listeners);
    tracker.all_closed().await;
    Ok(())
}
