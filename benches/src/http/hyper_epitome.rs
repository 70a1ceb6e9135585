//! `hyper-epitome`: hyper through hyper-util's `auto::Builder` on epitome's
//! current-thread runtime, with `epitome::hyper`'s executor, timer and I/O adapter,
//! as the `hyper_server` example serves: the accept loop in `block_on`, a task per
//! connection.

use std::io;
use std::net::TcpListener;

use epitome::hyper::{Executor, Io, Timer};
use hyper::service::service_fn;

use super::{HttpContender, Runtime, Stack, app};

/// The entry in [`super::CONTENDERS`].
pub const CONTENDER: HttpContender = HttpContender {
    name: "hyper-epitome",
    about: "hyper-util auto::Builder, epitome current-thread (epitome::hyper)",
    stack: Stack::Hyper,
    runtime: Runtime::Epitome,
    serve,
};

fn serve(listener: TcpListener) -> io::Result<()> {
    super::epitome_runtime()?.block_on(async move {
        let listener = epitome::net::TcpListener::from_std(listener)?;
        let builder = app::hyper_builder(Executor::new(), Timer::new());
        loop {
            let stream = match listener.accept().await {
                Ok((stream, _)) => stream,
                Err(e) => {
                    super::epitome_accept_failed(&e);
                    continue;
                }
            };
            if stream.set_nodelay(true).is_err() {
                continue;
            }
            let conn = builder
                .serve_connection_with_upgrades(Io::new(stream), service_fn(app::hello))
                .into_owned();
            epitome::spawn(async move {
                // A peer that goes away mid-request is no news in a benchmark.
                let _ = conn.await;
            });
        }
    })
}
