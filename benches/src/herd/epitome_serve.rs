//! The `epitome-<strategy>` herd variants: an epitome multi-reactor runtime with one
//! worker (and reactor) per herd worker, serving the port with `epitome::net::serve`
//! and one of its accept strategies (see `docs/server-models.md`):
//!
//! - `epitome-exclusive`: `Strategy::Exclusive`, the shared listener in every reactor
//!   with `EPOLLEXCLUSIVE`;
//! - `epitome-reuseport`: `Strategy::ReusePort(Steering::Hash)`, a listener per worker;
//! - `epitome-reuseport-cpu`: the same, steered to worker `cpu % workers` of the CPU
//!   that received the SYN (on loopback, the client's CPU: one worker takes all);
//! - `epitome-mainsub`: `Strategy::MainSub(Pick::LeastLoaded)`, worker 0 accepts and
//!   hands each connection to the least loaded worker;
//! - `epitome-balanced`: `Strategy::Balanced`, the default.
//!
//! `accepted` counts, per worker, the connections it serves (for `MainSub`, the worker
//! it was handed to): with every connection kept open, its live connections. The
//! reactor hides listener reports and empty accepts, which stay 0 (n/a).

use std::io;
use std::sync::atomic::{AtomicUsize, Ordering};

use epitome::net::serve::{Pick, Steering, Strategy, serve};
use epitome::runtime::Builder;

use super::{HerdConfig, THREAD_PREFIX};

pub(super) fn run_exclusive(config: HerdConfig) -> io::Result<()> {
    run(config, Strategy::Exclusive)
}

pub(super) fn run_reuseport(config: HerdConfig) -> io::Result<()> {
    run(config, Strategy::ReusePort(Steering::Hash))
}

pub(super) fn run_reuseport_cpu(config: HerdConfig) -> io::Result<()> {
    run(config, Strategy::ReusePort(Steering::IncomingCpu))
}

pub(super) fn run_main_sub(config: HerdConfig) -> io::Result<()> {
    run(config, Strategy::MainSub(Pick::LeastLoaded))
}

pub(super) fn run_balanced(config: HerdConfig) -> io::Result<()> {
    run(config, Strategy::Balanced)
}

/// Serves the herd with `strategy` until the process is killed.
fn run(config: HerdConfig, strategy: Strategy) -> io::Result<()> {
    let next = AtomicUsize::new(0);
    // Workers are the only threads this runtime starts (nothing here blocks), so the
    // names run herd-w0 .. herd-w{workers-1}; `serve` runs in `block_on` on the
    // calling thread, which is not counted.
    let rt = Builder::new_multi_reactor()
        .reactors(config.workers)
        .thread_name_fn(move || format!("{THREAD_PREFIX}{}", next.fetch_add(1, Ordering::Relaxed)))
        .build()?;
    let reuseport = matches!(strategy, Strategy::ReusePort(_));
    let listener = crate::sys::listen(config.addr, reuseport)?;
    let addr = listener.local_addr()?;
    let stats = config.stats;
    rt.block_on(async move {
        let listener = epitome::net::TcpListener::from_std(listener)?;
        let server = serve(listener, move |stream, _peer| {
            let stats = stats.clone();
            // Counted in the task, on the worker that serves the connection (the
            // handler itself is called where the connection was accepted).
            async move {
                if let Some(worker) = epitome::runtime::worker_index() {
                    if let Some(w) = stats.workers.get(worker) {
                        w.accepted.fetch_add(1, Ordering::Relaxed);
                    }
                }
                crate::echo::epitome_ct::echo(stream).await;
            }
        })
        .strategy(strategy);
        let _ = config.bound.send(addr);
        server.await
    })
}
