//! `axum-epitome`: the axum Router ([`super::app::router`]) on epitome's
//! current-thread runtime, served the way `examples/support/axum_routes.rs` serves a
//! Router: the accept loop in `block_on`, a task per connection, each connection
//! through one shared hyper-util `auto::Builder` (epitome's executor) and
//! `TowerToHyperService`.
//!
//! One difference from that file, so that the pair does the same work: no hyper
//! timer. `axum::serve`, which `axum-tokio` runs, sets none, so hyper's default
//! 30 s header-read timeout stays off there; the example's
//! `http1().timer(Timer::new())` would switch it on here and arm a timer at every
//! request. (The hyper pair measures that timer path, on both runtimes.) The support
//! file itself is not included: it also carries the example's JSON routes and state
//! (serde, serde_json) and prints every connection error.

use std::io;
use std::net::TcpListener;
use std::sync::Arc;

use epitome::hyper::{Executor, Io};
use hyper_util::server::conn::auto;
use hyper_util::service::TowerToHyperService;

use super::{HttpContender, Runtime, Stack, app};

/// The entry in [`super::CONTENDERS`].
pub const CONTENDER: HttpContender = HttpContender {
    name: "axum-epitome",
    about: "axum Router via hyper-util auto::Builder, epitome current-thread",
    stack: Stack::Axum,
    runtime: Runtime::Epitome,
    serve,
};

fn serve(listener: TcpListener) -> io::Result<()> {
    super::epitome_runtime()?.block_on(async move {
        let listener = epitome::net::TcpListener::from_std(listener)?;
        let app = app::router();
        let builder = Arc::new(auto::Builder::new(Executor::new()));
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
            let builder = builder.clone();
            let service = TowerToHyperService::new(app.clone());
            epitome::spawn(async move {
                // A peer that goes away mid-request is no news in a benchmark.
                let _ = builder
                    .serve_connection_with_upgrades(Io::new(stream), service)
                    .await;
            });
        }
    })
}
