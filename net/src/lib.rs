//! epitome-net: TCP, UDP and Unix sockets for the epitome runtime.
//!
//! Every socket is registered, edge-triggered, with the reactor (the user-space
//! eventpoll) of the worker that creates it, and deleted from it before it is closed.
//! Listeners are registered in every worker that accepts on them, with
//! `EPOLLEXCLUSIVE`, and accepting tasks are exclusive waiters: one connection wakes
//! one worker and one task.
//!
//! [`serve`] serves a listener on every reactor of the runtime with a named accept
//! strategy (`serve::Strategy`: exclusive, reuse-port, main/sub reactors, or balanced),
//! graceful shutdown included.
//!
//! Streams implement `futures_io::AsyncRead` / `AsyncWrite` (and tokio's, with the
//! `tokio-io` feature). No type here buffers, so none implements `AsyncBufRead`: wrap
//! a stream in a `BufReader` from `futures-util` or tokio for that.
//!
//! Errors are the kernel's: end of stream is `Ok(0)`, a reset peer is
//! `ConnectionReset`, writing to a closed peer is `BrokenPipe` (never a `SIGPIPE`: Rust
//! programs ignore it), and `EINTR` is retried inside.
//!
//! The names, signatures and documented behaviour are tokio's (`tokio::net`), so code
//! moves by renaming imports; where epitome differs on purpose the item says so, and
//! `docs/parity-net.md` lists every difference. Each operation comes as an `async fn`
//! that waits, a `poll_*` function for hand-written futures, and a `try_*` function
//! that tries once and never touches the task's cooperative budget.
//!
//! ```
//! use epitome_net::{TcpListener, TcpStream};
//!
//! let rt = epitome_runtime::runtime::Builder::new_current_thread().build()?;
//! rt.block_on(async {
//!     let listener = TcpListener::bind("127.0.0.1:0").await?;
//!     let addr = listener.local_addr()?;
//!     // An echo server for one connection.
//!     let server = epitome_runtime::spawn(async move {
//!         let (stream, _) = listener.accept().await?;
//!         let mut buf = [0; 64];
//!         loop {
//!             let n = stream.read(&mut buf).await?;
//!             if n == 0 {
//!                 return Ok::<_, std::io::Error>(());
//!             }
//!             stream.write_all(&buf[..n]).await?;
//!         }
//!     });
//!     let client = TcpStream::connect(addr).await?;
//!     client.write_all(b"echo").await?;
//!     let mut buf = [0; 4];
//!     client.read_exact(&mut buf).await?;
//!     assert_eq!(&buf, b"echo");
//!     drop(client);
//!     server.await.map_err(std::io::Error::other)?
//! })?;
//! # Ok::<_, std::io::Error>(())
//! ```

#![warn(missing_docs)]

mod accept_error;
mod addr;
mod attempt;
mod buf;
pub mod serve;
mod split;
mod stream_api;
mod stream_io;
pub mod tcp;
mod udp;
pub mod unix;

pub use addr::{ToSocketAddrs, lookup_host};
pub use tcp::{TcpListener, TcpSocket, TcpStream};
pub use udp::UdpSocket;
pub use unix::{UnixDatagram, UnixListener, UnixStream};
