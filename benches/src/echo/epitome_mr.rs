//! `epitome-mr`: epitome's multi-reactor runtime: one worker per CPU the process may
//! run on (so one when the server is pinned to one core, as for `tokio-mt`) unless
//! `--threads` sets it, each with its own reactor. Every worker runs the `epitome-ct`
//! accept loop on the shared listener (registered `EPOLLEXCLUSIVE` in each worker's
//! reactor, so a connection wakes one), and serves the connections it accepts.

use std::io;
use std::net::TcpListener;
use std::sync::Arc;

use epitome::runtime::Builder;

use super::{Contender, Family, ServeOptions};

/// The entry in [`super::CONTENDERS`].
pub const CONTENDER: Contender = Contender {
    name: "epitome-mr",
    about: "epitome multi-reactor runtime, accept loop per worker",
    family: Family::EpitomeRuntime {
        tokio_peer: "tokio-mt",
    },
    serve,
};

fn serve(listener: TcpListener, options: &ServeOptions) -> io::Result<()> {
    let mut builder = Builder::new_multi_reactor();
    if let Some(threads) = options.threads {
        builder.reactors(threads.get());
    }
    let rt = builder.build()?;
    let listener = {
        let _entered = rt.enter();
        Arc::new(epitome::net::TcpListener::from_std(listener)?)
    };
    // Spawned from outside the runtime, so they are spread over the workers.
    let loops: Vec<_> = (0..rt.metrics().num_workers())
        .map(|_| {
            let listener = Arc::clone(&listener);
            rt.spawn(async move { super::epitome_ct::accept_loop(&listener).await })
        })
        .collect();
    rt.block_on(async move {
        for accept_loop in loops {
            accept_loop.await.map_err(io::Error::other)??;
        }
        Ok(())
    })
}
