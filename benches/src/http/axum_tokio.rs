//! `axum-tokio`: the axum Router ([`super::app::router`]) with `axum::serve` on
//! tokio's current_thread runtime, as axum's documentation recommends, with
//! `TCP_NODELAY` set through `ListenerExt::tap_io` as its docs show.

use std::io;
use std::net::TcpListener;

use axum::serve::ListenerExt;

use super::{HttpContender, Runtime, Stack, app};

/// The entry in [`super::CONTENDERS`].
pub const CONTENDER: HttpContender = HttpContender {
    name: "axum-tokio",
    about: "axum Router with axum::serve, tokio current_thread",
    stack: Stack::Axum,
    runtime: Runtime::Tokio,
    serve,
};

fn serve(listener: TcpListener) -> io::Result<()> {
    super::tokio_runtime()?.block_on(async move {
        let listener = super::tokio_listener(listener)?.tap_io(|stream| {
            let _ = stream.set_nodelay(true);
        });
        axum::serve(listener, app::router()).await
    })
}
