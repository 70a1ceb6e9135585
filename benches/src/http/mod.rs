//! The HTTP scenario's servers: three HTTP stacks, each on epitome and on tokio, and
//! the two clients that load them ([`wrk`] for the figures, [`client`] to check
//! answers and warm a server up).
//!
//! # What every contender serves
//!
//! `GET /` is answered with `200 OK`, a `text/plain` body of exactly [`BODY`], and the
//! connection kept alive (HTTP/1.1), which is what `wrk` sends and expects. Every
//! contender:
//! - serves on a listener it is given (bound by [`crate::sys::listen`]) from a
//!   current-thread runtime, so the whole server is one thread (the report pins the
//!   process to one CPU, like the echo servers);
//! - sets `TCP_NODELAY` on every accepted connection;
//! - runs each connection as a task of its own.
//!
//! # The pairs
//!
//! Each [`Stack`] runs once on each [`Runtime`], and the two sides of a pair differ
//! only in the runtime (its executor, timer and sockets):
//! - [`Stack::Hello`]: the `http_hello` example's hand-written HTTP/1.1 server
//!   ([`hello`] holds its request parser and responder, shared by both sides);
//! - [`Stack::Hyper`]: hyper-util's `auto::Builder` serving one `service_fn`, set up
//!   as the `hyper_server` example sets it up ([`app::hyper_builder`]);
//! - [`Stack::Axum`]: one axum Router ([`app::router`]), served on epitome the way
//!   `examples/support/axum_routes.rs` serves a Router, and on tokio with
//!   `axum::serve`, as axum's documentation recommends.
//!
//! # Adding a contender
//!
//! One module with a `pub const CONTENDER: HttpContender` and one entry in
//! [`CONTENDERS`]. The `http-server` command runs any entry in its own process.

pub mod app;
pub mod axum_epitome;
pub mod axum_tokio;
pub mod client;
pub mod hello;
pub mod hello_epitome;
pub mod hello_tokio;
pub mod hyper_epitome;
pub mod hyper_tokio;
pub mod wrk;

use std::io;
use std::net::TcpListener;

/// The body every contender answers `GET /` with.
pub const BODY: &str = "Hello, World!";
/// The connection count of the quick report, and the one the summary judges on.
pub const MAIN_CONNECTIONS: usize = 50;
/// The connection counts of `--full`.
pub const CONNECTION_COUNTS: [usize; 3] = [1, MAIN_CONNECTIONS, 1_000];

/// The HTTP code a contender runs: the same for both sides of a pair.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Stack {
    /// The `http_hello` example's hand-written server.
    Hello,
    /// hyper 1.x through hyper-util's `auto::Builder`.
    Hyper,
    /// An axum Router.
    Axum,
}

impl Stack {
    /// Every stack, in the order the report prints the pairs.
    pub const ALL: [Stack; 3] = [Stack::Hello, Stack::Hyper, Stack::Axum];

    /// `hello`, `hyper`, `axum`.
    pub fn name(self) -> &'static str {
        match self {
            Stack::Hello => "hello",
            Stack::Hyper => "hyper",
            Stack::Axum => "axum",
        }
    }
}

/// The runtime a contender runs on.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Runtime {
    /// epitome's current-thread runtime.
    Epitome,
    /// tokio's current_thread runtime, built as its documentation recommends.
    Tokio,
}

/// One HTTP server contender.
#[derive(Clone, Copy, Debug)]
pub struct HttpContender {
    /// Its name on the command line and in tables (`hyper-epitome`).
    pub name: &'static str,
    /// One line on what it is.
    pub about: &'static str,
    /// The HTTP code it runs.
    pub stack: Stack,
    /// The runtime it runs on.
    pub runtime: Runtime,
    /// Serves HTTP on `listener` until the process is killed. Returns only on an
    /// error that stops the whole server.
    pub serve: fn(TcpListener) -> io::Result<()>,
}

/// Every contender, in the order the report runs and prints them: pairs, epitome
/// first.
pub const CONTENDERS: &[HttpContender] = &[
    hello_epitome::CONTENDER,
    hello_tokio::CONTENDER,
    hyper_epitome::CONTENDER,
    hyper_tokio::CONTENDER,
    axum_epitome::CONTENDER,
    axum_tokio::CONTENDER,
];

/// The contender called `name`.
pub fn find(name: &str) -> Option<&'static HttpContender> {
    CONTENDERS.iter().find(|c| c.name == name)
}

/// The contender running `stack` on `runtime`.
pub fn contender(stack: Stack, runtime: Runtime) -> Option<&'static HttpContender> {
    CONTENDERS
        .iter()
        .find(|c| c.stack == stack && c.runtime == runtime)
}

/// A current-thread epitome runtime, as every epitome contender uses.
fn epitome_runtime() -> io::Result<epitome::runtime::Runtime> {
    epitome::runtime::Builder::new_current_thread().build()
}

/// A current_thread tokio runtime with every driver on, as
/// `#[tokio::main(flavor = "current_thread")]` builds it.
fn tokio_runtime() -> io::Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
}

/// `listener` for tokio (tokio needs it non-blocking).
fn tokio_listener(listener: TcpListener) -> io::Result<tokio::net::TcpListener> {
    listener.set_nonblocking(true)?;
    tokio::net::TcpListener::from_std(listener)
}

/// Reports an accept error on epitome. epitome's `accept` backs off by itself
/// before its next try after running out of fds, so there is nothing else to do.
fn epitome_accept_failed(e: &io::Error) {
    if !matches!(
        e.kind(),
        io::ErrorKind::ConnectionAborted | io::ErrorKind::Interrupted
    ) {
        eprintln!("accept: {e}");
    }
}
