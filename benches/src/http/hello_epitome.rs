//! `hello-epitome`: the `http_hello` example on epitome's current-thread runtime, as
//! the example runs with `--reactors 0`: the accept loop spawned as a task, a task per
//! connection, each served by the example's own connection loop
//! ([`super::hello::serve`]).

use std::io;
use std::net::TcpListener;

use super::hello;
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
                        let _ = hello::serve(stream).await;
                    });
                }
                Err(e) => super::epitome_accept_failed(&e),
            }
        }
    });
    rt.block_on(accept_loop)
        .map_err(|e| io::Error::other(format!("the accept loop ended: {e}")))
}
