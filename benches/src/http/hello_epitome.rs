//! `hello-epitome`: the `http_hello` example on epitome's current-thread runtime, as
//! the example runs with `--reactors 0`: the accept loop spawned as a task, a task per
//! connection, each connection read, answered ([`super::hello::answer`]) and written
//! in one loop.

use std::io;
use std::net::{Shutdown, TcpListener};

use epitome::net::TcpStream;

use super::hello::{self, READ_CHUNK};
use super::{HttpContender, Runtime, Stack};

/// The entry in [`super::CONTENDERS`].
pub const CONTENDER: HttpContender = HttpContender {
    name: "hello-epitome",
    about: "the http_hello example, epitome current-thread",
    stack: Stack::Hello,
    runtime: Runtime::Epitome,
    serve,
};

fn serve(listener: TcpListener) -> io::Result<()> {
    let rt = super::epitome_runtime()?;
    let listener = rt.block_on(async { epitome::net::TcpListener::from_std(listener) })?;
    let accept_loop = rt.spawn(async move {
        loop {
            match listener.accept().await {
                Ok((stream, _)) => {
                    epitome::spawn(async move {
                        let _ = connection(stream).await;
                    });
                }
                Err(e) => super::epitome_accept_failed(&e),
            }
        }
    });
    rt.block_on(accept_loop)
        .map_err(|e| io::Error::other(format!("the accept loop ended: {e}")))
}

/// One connection: read, answer every complete request received, repeat.
async fn connection(stream: TcpStream) -> io::Result<()> {
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
            return stream.shutdown(Shutdown::Write).await;
        }
        let n = stream.read(&mut chunk).await?;
        if n == 0 {
            return Ok(());
        }
        received.extend_from_slice(&chunk[..n]);
    }
}
