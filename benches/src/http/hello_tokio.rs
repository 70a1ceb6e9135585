//! `hello-tokio`: the `http_hello` example's server on tokio's current_thread
//! runtime, line for line as `hello-epitome` runs it: the accept loop spawned as a
//! task, a task per connection, each connection read, answered
//! ([`super::hello::answer`]) and written in one loop; tokio's sockets instead of
//! epitome's.

use std::io;
use std::net::TcpListener;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use super::hello::{self, READ_CHUNK};
use super::{HttpContender, Runtime, Stack};
use crate::echo::event_loop::accept_failed;

/// The entry in [`super::CONTENDERS`].
pub const CONTENDER: HttpContender = HttpContender {
    name: "hello-tokio",
    about: "the http_hello example's server, tokio current_thread",
    stack: Stack::Hello,
    runtime: Runtime::Tokio,
    serve,
};

fn serve(listener: TcpListener) -> io::Result<()> {
    let rt = super::tokio_runtime()?;
    let listener = rt.block_on(async { super::tokio_listener(listener) })?;
    let accept_loop = rt.spawn(async move {
        loop {
            match listener.accept().await {
                Ok((stream, _)) => {
                    tokio::spawn(async move {
                        let _ = connection(stream).await;
                    });
                }
                Err(e) => accept_failed(&e),
            }
        }
    });
    rt.block_on(accept_loop)
        .map_err(|e| io::Error::other(format!("the accept loop ended: {e}")))
}

/// One connection: read, answer every complete request received, repeat.
async fn connection(mut stream: TcpStream) -> io::Result<()> {
    stream.set_nodelay(true)?;
    let mut received: Vec<u8> = Vec::with_capacity(4096);
    let mut out: Vec<u8> = Vec::with_capacity(4096);
    let mut chunk = vec![0u8; READ_CHUNK];
    loop {
        let close = hello::answer(&mut received, &mut out);
        if !out.is_empty() {
            stream.write_all(&out).await?;
            out.clear();
        }
        if close {
            // FIN after the last response; the client closes its side.
            return stream.shutdown().await;
        }
        let n = stream.read(&mut chunk).await?;
        if n == 0 {
            return Ok(());
        }
        received.extend_from_slice(&chunk[..n]);
    }
}
