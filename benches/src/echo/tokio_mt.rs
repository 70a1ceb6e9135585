//! `tokio-mt`: tokio's multi-thread runtime, as its documentation recommends
//! (`#[tokio::main]` is this builder with `enable_all`), with the same accept loop
//! and echo task as `tokio-ct`. The worker count is tokio's default unless
//! `--threads` sets it: the CPUs the process may run on, so one worker when the
//! server is pinned to one core (the report prints the thread count it saw).

use std::io;
use std::net::TcpListener;

use super::{Contender, Family, ServeOptions};

/// The entry in [`super::CONTENDERS`].
pub const CONTENDER: Contender = Contender {
    name: "tokio-mt",
    about: "tokio multi_thread runtime, task per connection",
    family: Family::Tokio,
    serve,
};

fn serve(listener: TcpListener, options: &ServeOptions) -> io::Result<()> {
    let mut builder = tokio::runtime::Builder::new_multi_thread();
    builder.enable_all();
    if let Some(threads) = options.threads {
        builder.worker_threads(threads.get());
    }
    builder
        .build()?
        .block_on(super::tokio_ct::accept_loop(listener))
}
