//! `epitome-pool`: the seeds' "single reactor + worker pool" model. One thread runs a
//! current-thread runtime and does only I/O (accept, read, write); each message's
//! handling (here: taking the bytes to echo, the handler's whole work) runs on the
//! runtime's blocking pool, bounded to `--threads` threads (default 1), and the reactor
//! writes the answer when it comes back. What it measures is the price of the hand-off:
//! two cross-thread wakeups per request. A server model of the report's "server
//! models" section ([`super::MODELS`]); connections are read readiness-first, like the
//! `serve` models, so an idle one holds no buffer.

use std::io;
use std::net::TcpListener;

use epitome::net::TcpStream;
use epitome::net::serve::read_pooled;
use epitome::runtime::Builder;

use super::{Contender, Family, ServeOptions};

/// The entry in [`super::MODELS`].
pub const CONTENDER: Contender = Contender {
    name: "epitome-pool",
    about: "one reactor thread for I/O, each message handled on the blocking pool",
    family: Family::EpitomeRuntime {
        tokio_peer: "tokio-ct",
    },
    serve,
};

fn serve(listener: TcpListener, options: &ServeOptions) -> io::Result<()> {
    let pool = options.threads.map_or(1, |n| n.get());
    let rt = Builder::new_current_thread()
        .max_blocking_threads(pool)
        .build()?;
    rt.block_on(async move {
        let listener = epitome::net::TcpListener::from_std(listener)?;
        loop {
            match listener.accept().await {
                Ok((socket, _)) => {
                    epitome::spawn(async move {
                        let _ = converse(socket).await;
                    });
                }
                // epitome's `accept` backs off by itself on EMFILE and the like.
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
    })
}

/// Reads on the reactor thread, hands each message to the pool, writes its answer.
async fn converse(stream: TcpStream) -> io::Result<()> {
    stream.set_nodelay(true)?;
    loop {
        let request = read_pooled(&stream, <[u8]>::to_vec).await?;
        if request.is_empty() {
            return Ok(());
        }
        // The handler: on a pool thread, never on the reactor's.
        let answer = epitome::task::spawn_blocking(move || request)
            .await
            .map_err(io::Error::other)?;
        stream.write_all(&answer).await?;
    }
}
