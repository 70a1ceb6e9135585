//! The `epitome-mr` herd variant: an epitome multi-reactor runtime with one worker per
//! herd worker, one accept loop per worker on the shared listener. Each worker
//! registers the listener in its own reactor with `EPOLLEXCLUSIVE` (the runtime's
//! shared-source registration), so the kernel wakes one worker's epoll per
//! connection, and within a worker the reactor wakes one waiting accept (wake-one, as
//! in the kernel's `ep_poll_callback` for exclusive waiters).
//!
//! The reactor hides the listener reports and the accepts that found the queue
//! empty, so only `accepted` is counted (the report shows the others as n/a); the
//! kernel-counted wakeups come from the worker threads, named like every variant's.

use std::io;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use epitome::runtime::Builder;

use super::{HerdConfig, HerdStats, THREAD_PREFIX};

/// Serves the herd with epitome's multi-reactor runtime until the process is killed.
pub(super) fn run(config: HerdConfig) -> io::Result<()> {
    let next = AtomicUsize::new(0);
    // Workers are the only threads this runtime starts (nothing here blocks), so the
    // names run herd-w0 .. herd-w{workers-1}.
    let rt = Builder::new_multi_reactor()
        .reactors(config.workers)
        .thread_name_fn(move || format!("{THREAD_PREFIX}{}", next.fetch_add(1, Ordering::Relaxed)))
        .build()?;
    let listener = crate::sys::listen(config.addr, false)?;
    let addr = listener.local_addr()?;
    let listener = {
        let _entered = rt.enter();
        Arc::new(epitome::net::TcpListener::from_std(listener)?)
    };
    // Spawned from outside the runtime, so the loops are spread over the workers,
    // one each.
    let loops: Vec<_> = (0..config.workers)
        .map(|_| {
            let listener = Arc::clone(&listener);
            let stats = Arc::clone(&config.stats);
            rt.spawn(async move { accept_loop(&listener, &stats).await })
        })
        .collect();
    let _ = config.bound.send(addr);
    rt.block_on(async move {
        for accept_loop in loops {
            accept_loop.await.map_err(io::Error::other)?;
        }
        Ok(())
    })
}

/// Accepts on the shared listener and serves each connection on this worker,
/// counting the accepts against the worker the loop runs on.
async fn accept_loop(listener: &epitome::net::TcpListener, stats: &HerdStats) {
    let Some(worker) = current_worker().filter(|&i| i < stats.workers.len()) else {
        eprintln!("herd: an accept loop runs outside the herd workers");
        return;
    };
    loop {
        match listener.accept().await {
            Ok((stream, _)) => {
                stats.workers[worker]
                    .accepted
                    .fetch_add(1, Ordering::Relaxed);
                epitome::spawn(crate::echo::epitome_ct::echo(stream));
            }
            Err(e) => eprintln!("accept: {e}"),
        }
    }
}

/// The index in this thread's `herd-wN` name.
fn current_worker() -> Option<usize> {
    std::thread::current()
        .name()?
        .strip_prefix(THREAD_PREFIX)?
        .parse()
        .ok()
}
