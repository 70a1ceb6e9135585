//! `epitome-ct`: epitome's current-thread runtime, the way its README and `echo`
//! example use it: one accept loop, a task per connection, each with its own buffer,
//! `read` then `write_all`. The same shape as `tokio-ct`, so only the runtime differs.

use std::io;
use std::net::TcpListener;

use epitome::runtime::Builder;

use super::{Contender, Family, READ_BUF, ServeOptions};

/// The entry in [`super::CONTENDERS`].
pub const CONTENDER: Contender = Contender {
    name: "epitome-ct",
    about: "epitome current-thread runtime, task per connection",
    family: Family::EpitomeRuntime {
        tokio_peer: "tokio-ct",
    },
    serve,
};

fn serve(listener: TcpListener, _: &ServeOptions) -> io::Result<()> {
    let rt = Builder::new_current_thread().build()?;
    rt.block_on(async move {
        let listener = epitome::net::TcpListener::from_std(listener)?;
        accept_loop(&listener).await
    })
}

/// The accept loop both epitome contenders run (the multi-reactor one runs one per
/// worker on the shared listener): a task per connection.
pub(super) async fn accept_loop(listener: &epitome::net::TcpListener) -> io::Result<()> {
    loop {
        match listener.accept().await {
            Ok((socket, _)) => {
                epitome::spawn(echo(socket));
            }
            // Out of fds and the like: epitome's `accept` backs off by itself before
            // its next try (a sleep here would stall every connection of the
            // worker), so only report it.
            Err(e) => {
                if !matches!(
                    e.kind(),
                    io::ErrorKind::ConnectionAborted | io::ErrorKind::Interrupted
                ) {
                    eprintln!("accept: {e}");
                }
            }
        }
    }
}

/// Echoes on `socket` until the peer closes or an error ends the connection.
pub(crate) async fn echo(socket: epitome::net::TcpStream) {
    if let Err(e) = socket.set_nodelay(true) {
        eprintln!("connection setup: {e}");
        return;
    }
    let mut buf = vec![0; READ_BUF];
    loop {
        let n = match socket.read(&mut buf).await {
            Ok(0) | Err(_) => return,
            Ok(n) => n,
        };
        if socket.write_all(&buf[..n]).await.is_err() {
            return;
        }
    }
}
