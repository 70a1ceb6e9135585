//! The epoll herd variants: `plain`, `exclusive` and `reuseport`. Every worker runs
//! the level-triggered loop of [`crate::echo::event_loop`] on its own epoll, and
//! accepts one connection per report of its listener.

use std::io;
use std::net::TcpListener;
use std::os::fd::AsRawFd;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::thread::JoinHandle;

use super::{HerdConfig, THREAD_PREFIX, WorkerStats};
use crate::echo::EVENTS;
use crate::echo::event_loop::{self, Connections, LISTENER, Trigger};
use crate::sys::{self, Epoll};

const EPOLLIN: u32 = libc::EPOLLIN as u32;
const EPOLLEXCLUSIVE: u32 = libc::EPOLLEXCLUSIVE as u32;

/// One shared listener, plain level-triggered registration in every worker.
pub(super) fn run_plain(config: HerdConfig) -> io::Result<()> {
    run_shared(config, EPOLLIN)
}

/// One shared listener, registered `EPOLLIN | EPOLLEXCLUSIVE` in every worker.
pub(super) fn run_exclusive(config: HerdConfig) -> io::Result<()> {
    run_shared(config, EPOLLIN | EPOLLEXCLUSIVE)
}

fn run_shared(config: HerdConfig, events: u32) -> io::Result<()> {
    let listener = Arc::new(sys::listen(config.addr, false)?);
    listener.set_nonblocking(true)?;
    let addr = listener.local_addr()?;
    let workers = (0..config.workers)
        .map(|i| {
            let listener = Arc::clone(&listener);
            let stats = Arc::clone(&config.stats);
            spawn_worker(i, move || worker(&listener, events, &stats.workers[i]))
        })
        .collect::<io::Result<Vec<_>>>()?;
    let _ = config.bound.send(addr);
    join(workers)
}

/// A listener per worker, all on one port with `SO_REUSEPORT`.
pub(super) fn run_reuseport(config: HerdConfig) -> io::Result<()> {
    // The first bind picks the port; the others join it.
    let first = sys::listen(config.addr, true)?;
    let addr = first.local_addr()?;
    let mut listeners = vec![first];
    for _ in 1..config.workers {
        listeners.push(sys::listen(addr, true)?);
    }
    let workers = listeners
        .into_iter()
        .enumerate()
        .map(|(i, listener)| {
            listener.set_nonblocking(true)?;
            let stats = Arc::clone(&config.stats);
            spawn_worker(i, move || worker(&listener, EPOLLIN, &stats.workers[i]))
        })
        .collect::<io::Result<Vec<_>>>()?;
    let _ = config.bound.send(addr);
    join(workers)
}

fn spawn_worker(
    index: usize,
    body: impl FnOnce() -> io::Result<()> + Send + 'static,
) -> io::Result<JoinHandle<io::Result<()>>> {
    std::thread::Builder::new()
        .name(format!("{THREAD_PREFIX}{index}"))
        .spawn(body)
}

fn join(workers: Vec<JoinHandle<io::Result<()>>>) -> io::Result<()> {
    for worker in workers {
        worker
            .join()
            .map_err(|_| io::Error::other("a herd worker panicked"))??;
    }
    Ok(())
}

/// One worker: its own epoll with the listener and its connections; one accept per
/// report of the listener.
fn worker(listener: &TcpListener, events: u32, stats: &WorkerStats) -> io::Result<()> {
    let epoll = Epoll::new()?;
    epoll.add(listener.as_raw_fd(), events, LISTENER)?;
    let mut conns = Connections::new(&epoll, Trigger::Level);
    let mut buf = sys::epoll_events(EVENTS);
    loop {
        let n = epoll.wait(&mut buf, -1)?;
        for event in &buf[..n] {
            let event = *event;
            let token = event.u64;
            if token != LISTENER {
                conns.ready(token as i32);
                continue;
            }
            stats.listener_reports.fetch_add(1, Ordering::Relaxed);
            match sys::accept_nonblocking(listener) {
                Ok(stream) => {
                    stats.accepted.fetch_add(1, Ordering::Relaxed);
                    conns.insert(stream);
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                    stats.accept_eagain.fetch_add(1, Ordering::Relaxed);
                }
                Err(e) => event_loop::accept_failed(&e),
            }
        }
    }
}
