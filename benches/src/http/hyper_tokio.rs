//! `hyper-tokio`: the same hyper server as `hyper-epitome` on tokio's current_thread
//! runtime, with hyper-util's `TokioIo`, `TokioExecutor` and `TokioTimer` (as
//! hyper-util's own server example): the accept loop in `block_on`, a task per
//! connection.

use std::io;
use std::net::TcpListener;

use hyper::service::service_fn;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};

use super::{HttpContender, Runtime, Stack, app};
use crate::echo::event_loop::accept_failed;

/// The entry in [`super::CONTENDERS`].
pub const CONTENDER: HttpContender = HttpContender {
    name: "hyper-tokio",
    about: "hyper-util auto::Builder, tokio current_thread (TokioIo)",
    stack: Stack::Hyper,
    runtime: Runtime::Tokio,
    serve,
};

fn serve(listener: TcpListener) -> io::Result<()> {
    super::tokio_runtime()?.block_on(async move {
        let listener = super::tokio_listener(listener)?;
        let builder = app::hyper_builder(TokioExecutor::new(), TokioTimer::new());
        loop {
            let stream = match listener.accept().await {
                Ok((stream, _)) => stream,
                Err(e) => {
                    accept_failed(&e);
                    continue;
                }
            };
            if stream.set_nodelay(true).is_err() {
                continue;
            }
            let conn = builder
                .serve_connection_with_upgrades(TokioIo::new(stream), service_fn(app::hello))
                .into_owned();
            tokio::spawn(async move {
                // A peer that goes away mid-request is no news in a benchmark.
                let _ = conn.await;
            });
        }
    })
}
