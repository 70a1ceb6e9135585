//! epitome-net: TCP, UDP and Unix sockets for the epitome runtime.
//!
//! Every socket is registered, edge-triggered, with the reactor (the user-space
//! eventpoll) of the worker that creates it, and deleted from it before it is closed.
//! Listeners are registered in every worker that accepts on them, with
//! `EPOLLEXCLUSIVE`, and accepting tasks are exclusive waiters: one connection wakes
//! one worker and one task.
//!
//! Streams implement `futures_io::AsyncRead` / `AsyncWrite` (and tokio's, with the
//! `tokio-io` feature). No type here buffers, so none implements `AsyncBufRead`: wrap
//! a stream in a `BufReader` from `futures-util` or tokio for that.
//!
//! Errors are the kernel's: end of stream is `Ok(0)`, a reset peer is
//! `ConnectionReset`, writing to a closed peer is `BrokenPipe` (never a `SIGPIPE`: Rust
//! programs ignore it), and `EINTR` is retried inside.

#![warn(missing_docs)]

mod addr;
mod split;
mod stream_io;
pub mod tcp;
mod udp;
pub mod unix;

pub use addr::ToSocketAddrs;
pub use tcp::{TcpListener, TcpSocket, TcpStream};
pub use udp::UdpSocket;
pub use unix::{UnixDatagram, UnixListener, UnixStream};
