//! `tokio-ct`: tokio's current-thread runtime, as its documentation recommends
//! (`#[tokio::main(flavor = "current_thread")]` is this builder with `enable_all`),
//! serving the echo loop of tokio's README: a task per connection, each with its own
//! buffer, `read` then `write_all`.

use std::io;
use std::net::TcpListener;

use tokio::io::{AsyncReadExt, AsyncWriteExt};

use super::{Contender, Family, READ_BUF, ServeOptions};

/// The entry in [`super::CONTENDERS`].
pub const CONTENDER: Contender = Contender {
    name: "tokio-ct",
    about: "tokio current_thread runtime, task per connection",
    family: Family::Tokio,
    serve,
};

fn serve(listener: TcpListener, _: &ServeOptions) -> io::Result<()> {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?
        .block_on(accept_loop(listener))
}

/// The accept loop both tokio contenders run: a task per connection.
pub(super) async fn accept_loop(listener: TcpListener) -> io::Result<()> {
    listener.set_nonblocking(true)?;
    let listener = tokio::net::TcpListener::from_std(listener)?;
    loop {
        let (socket, _) = match listener.accept().await {
            Ok(accepted) => accepted,
            Err(e) => {
                super::event_loop::accept_failed(&e);
                continue;
            }
        };
        tokio::spawn(echo(socket));
    }
}

async fn echo(mut socket: tokio::net::TcpStream) {
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
