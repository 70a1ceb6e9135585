//! The echo protocol, and one module per server contender.
//!
//! # Protocol
//!
//! A client writes a message of exactly `S` bytes ([`MESSAGE_SIZES`]) and waits until
//! it has read `S` bytes back; then it sends the next one. The server echoes whatever
//! it reads, as it reads it: it knows nothing of message boundaries, so a 16 KiB
//! message that arrives in pieces is echoed in pieces, and a write that the socket
//! only partly accepts keeps the rest until the socket is writable again (and reads
//! no more from that connection meanwhile).
//!
//! Every contender follows the same rules, so that only the I/O model differs:
//! - it serves on a listener it is given (bound by [`crate::sys::listen`], backlog
//!   [`crate::sys::BACKLOG`]);
//! - it sets `TCP_NODELAY` on every accepted connection (without it a piecewise echo
//!   of a large message meets Nagle's algorithm and the peer's delayed ACK: 40 ms
//!   stalls that measure the TCP stack, not the server);
//! - it reads into a buffer of [`READ_BUF`] bytes (one per thread for the event
//!   loops, one per connection where the I/O model keeps it across a wait: a blocking
//!   thread, an async task) and waits with room for [`EVENTS`] events.
//!
//! # Adding a contender
//!
//! One module with a `pub const CONTENDER: Contender` and one entry in
//! [`CONTENDERS`]. The `server` command runs any entry in its own process; the report
//! runs every entry in every scenario and judges the targets by [`Family`].

pub mod blocking;
pub mod epitome_ct;
pub mod epitome_mr;
pub mod epitome_pool;
pub mod epitome_serve;
pub mod epoll_et;
pub mod epoll_lt;
pub mod event_loop;
pub mod eventpoll_api;
pub mod mio_server;
pub mod tokio_ct;
pub mod tokio_mt;

use std::io;
use std::net::TcpListener;
use std::num::NonZeroUsize;

/// Message sizes, in bytes.
pub const MESSAGE_SIZES: [usize; 3] = [64, 1024, 16 * 1024];
/// Connection counts of the scenarios (besides [`MAIN_CONNECTIONS`]).
pub const CONNECTION_COUNTS: [usize; 5] = [1, 10, 100, 1_000, 10_000];
/// The scenario the targets are judged on: 50 connections, 64-byte messages.
pub const MAIN_CONNECTIONS: usize = 50;
/// See [`MAIN_CONNECTIONS`].
pub const MAIN_SIZE: usize = 64;
/// Idle connections for the memory figure.
pub const IDLE_CONNECTIONS: usize = 10_000;
/// Bytes a server reads at once: the largest message, so one read can take a whole
/// message that has arrived.
pub const READ_BUF: usize = 16 * 1024;
/// Room for events per wait (tokio's and mio's usual 1024).
pub const EVENTS: usize = 1024;

/// What kind of contender this is, which decides how the report judges it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Family {
    /// A reference point: blocking threads, raw epoll, mio.
    Baseline,
    /// tokio, used as its documentation recommends.
    Tokio,
    /// epitome's own `EventPoll` driven by hand, without a runtime. Compared with
    /// `tokio_peer` for information while the runtime contenders are missing; never
    /// counted as the runtime's result.
    EventPollApi {
        /// The tokio contender it is shown against.
        tokio_peer: &'static str,
    },
    /// An epitome runtime; the targets are judged on these, each against its
    /// `tokio_peer` (current-thread against `tokio-ct`, multi-reactor against
    /// `tokio-mt`).
    EpitomeRuntime {
        /// The tokio contender it is judged against.
        tokio_peer: &'static str,
    },
}

/// How a contender should run, from the `server` command's options.
#[derive(Clone, Copy, Debug, Default)]
pub struct ServeOptions {
    /// Worker threads for contenders that have several; `None` leaves the choice to
    /// the runtime's default (for tokio: the CPUs the process may run on, so 1 when
    /// the server is pinned to one core).
    pub threads: Option<NonZeroUsize>,
}

/// One server contender.
#[derive(Clone, Copy, Debug)]
pub struct Contender {
    /// Its name on the command line and in tables (`epoll-lt`).
    pub name: &'static str,
    /// One line on what it is.
    pub about: &'static str,
    /// How the report judges it.
    pub family: Family,
    /// Serves the echo protocol on `listener` until the process is killed. Returns
    /// only on an error that stops the whole server.
    pub serve: fn(TcpListener, &ServeOptions) -> io::Result<()>,
}

/// Every contender, in the order the report runs and prints them.
pub const CONTENDERS: &[Contender] = &[
    blocking::CONTENDER,
    epoll_lt::CONTENDER,
    epoll_et::CONTENDER,
    mio_server::CONTENDER,
    eventpoll_api::CONTENDER,
    epitome_ct::CONTENDER,
    epitome_mr::CONTENDER,
    tokio_ct::CONTENDER,
    tokio_mt::CONTENDER,
];

/// The server models the report's "server models" section runs (besides `epitome-ct`,
/// the seeds' single reactor, and `tokio-mt`, tokio's idiomatic server, from
/// [`CONTENDERS`]): the seeds' single reactor + worker pool, and `epitome::net::serve`
/// with every accept strategy (`epitome-mainsub` is also the seeds' main/sub model).
pub const MODELS: &[Contender] = &[
    epitome_pool::CONTENDER,
    epitome_serve::MAIN_SUB,
    epitome_serve::EXCLUSIVE,
    epitome_serve::REUSEPORT,
    epitome_serve::REUSEPORT_CPU,
    epitome_serve::BALANCED,
];

/// The contenders that run several worker threads, and the count the report gives
/// each of them, so that they compare like for like: the same number of threads on
/// the same CPU (left to themselves, epitome-mr would start a reactor per CPU of the
/// machine and tokio-mt a worker per CPU the process may run on).
pub const MULTI_THREADED: [&str; 2] = [epitome_mr::CONTENDER.name, tokio_mt::CONTENDER.name];
/// See [`MULTI_THREADED`].
pub const LIKE_FOR_LIKE_THREADS: usize = 2;

/// The contender (or server model) called `name`.
pub fn find(name: &str) -> Option<&'static Contender> {
    CONTENDERS.iter().chain(MODELS).find(|c| c.name == name)
}

/// Whether contender `name` serves listeners bound with `SO_REUSEPORT` (its listener
/// must be bound with it).
pub fn wants_reuseport(name: &str) -> bool {
    name == epitome_serve::REUSEPORT.name || name == epitome_serve::REUSEPORT_CPU.name
}

/// The message a client sends: `size` bytes of a pattern that shows misordering.
pub fn message(size: usize) -> Vec<u8> {
    (0..size).map(|i| (i % 251) as u8).collect()
}
