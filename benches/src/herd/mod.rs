//! The thundering-herd servers: [`WORKERS`] worker threads accepting from one port.
//!
//! Each worker accepts connections and echoes on the ones it accepted (the echo
//! protocol of [`crate::echo`]). The variants differ in how the workers wait for the
//! port:
//!
//! - `plain`: one shared listener, in every worker's own epoll, level-triggered. A
//!   new connection wakes every worker blocked in `epoll_wait` (the listener's wait
//!   queue holds one non-exclusive entry per epoll instance).
//! - `exclusive`: the same with `EPOLLEXCLUSIVE`, so the kernel wakes one.
//! - `reuseport`: one listener per worker, all bound with `SO_REUSEPORT`; the kernel
//!   hashes each connection to one listener's queue.
//!
//! - `epitome-mr`: epitome's multi-reactor runtime, a worker (and reactor) per herd
//!   worker, each registering the shared listener with `EPOLLEXCLUSIVE`.
//! - `epitome-exclusive`, `epitome-reuseport`, `epitome-reuseport-cpu`,
//!   `epitome-mainsub`, `epitome-balanced`: the same runtime serving the port with
//!   `epitome::net::serve` and each of its accept strategies (see `epitome_serve.rs`).
//!
//! [`measure`] runs a variant the way the report does, with connections arriving one
//! at a time or in bursts (the `herd` command).
//!
//! # What each worker counts
//!
//! - `accepted`: connections it accepted;
//! - `listener_reports`: waits that returned with the listener reported ready (the
//!   user-visible wakeups);
//! - `accept_eagain`: accepts that found the queue empty (a report that lost the race
//!   to another worker).
//!
//! The workers are threads named [`THREAD_PREFIX`]`N`, so the report can also count
//! their kernel wakeups (voluntary context switches, from `/proc`), including the
//! ones that never reach user space: a woken waiter that finds the listener already
//! drained goes back to sleep inside `epoll_wait`.

mod epitome_mr;
mod epitome_serve;
mod epoll_workers;
pub mod measure;

use std::io;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::Sender;

/// Worker threads per herd server.
pub const WORKERS: usize = 8;
/// Connections per herd run.
pub const CONNECTIONS: usize = 10_000;
/// Worker thread names start with this, then the worker's index.
pub const THREAD_PREFIX: &str = "herd-w";

/// One worker's counters, on its own cache line. A variant that cannot observe
/// `listener_reports` and `accept_eagain` (a runtime's reactor hides them) leaves
/// them at 0, and the report shows them as n/a; `accepted` is always counted.
#[derive(Debug, Default)]
#[repr(align(64))]
pub struct WorkerStats {
    /// Connections accepted.
    pub accepted: AtomicU64,
    /// Waits that returned with the listener reported.
    pub listener_reports: AtomicU64,
    /// Accepts that found the queue empty.
    pub accept_eagain: AtomicU64,
}

/// A snapshot of one worker's counters.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct WorkerCounts {
    /// See [`WorkerStats::accepted`].
    pub accepted: u64,
    /// See [`WorkerStats::listener_reports`].
    pub listener_reports: u64,
    /// See [`WorkerStats::accept_eagain`].
    pub accept_eagain: u64,
}

/// Every worker's counters.
#[derive(Debug)]
pub struct HerdStats {
    /// Indexed by worker.
    pub workers: Vec<WorkerStats>,
}

impl HerdStats {
    /// Zeroed counters for `workers` workers.
    pub fn new(workers: usize) -> HerdStats {
        HerdStats {
            workers: (0..workers).map(|_| WorkerStats::default()).collect(),
        }
    }

    /// The counters now.
    pub fn snapshot(&self) -> Vec<WorkerCounts> {
        self.workers
            .iter()
            .map(|w| WorkerCounts {
                accepted: w.accepted.load(Ordering::Relaxed),
                listener_reports: w.listener_reports.load(Ordering::Relaxed),
                accept_eagain: w.accept_eagain.load(Ordering::Relaxed),
            })
            .collect()
    }
}

/// The counters as one line: `stats a,r,e a,r,e ...`, one triple per worker.
pub fn format_counts(counts: &[WorkerCounts]) -> String {
    let mut line = String::from("stats");
    for c in counts {
        line.push_str(&format!(
            " {},{},{}",
            c.accepted, c.listener_reports, c.accept_eagain
        ));
    }
    line
}

/// Parses [`format_counts`]'s line.
pub fn parse_counts(line: &str) -> Option<Vec<WorkerCounts>> {
    let mut words = line.split_whitespace();
    if words.next()? != "stats" {
        return None;
    }
    words
        .map(|triple| {
            let mut it = triple.split(',').map(|n| n.parse::<u64>().ok());
            let counts = WorkerCounts {
                accepted: it.next()??,
                listener_reports: it.next()??,
                accept_eagain: it.next()??,
            };
            it.next().is_none().then_some(counts)
        })
        .collect()
}

/// What a variant's `run` is given.
#[derive(Debug)]
pub struct HerdConfig {
    /// Where to listen (port 0: any).
    pub addr: SocketAddr,
    /// Worker threads.
    pub workers: usize,
    /// The counters to fill, one entry per worker.
    pub stats: Arc<HerdStats>,
    /// Receives the bound address once, as soon as the port is listening.
    pub bound: Sender<SocketAddr>,
}

/// One way to share a port among workers.
#[derive(Clone, Copy, Debug)]
pub struct HerdVariant {
    /// Its name on the command line and in tables.
    pub name: &'static str,
    /// One line on what it is.
    pub about: &'static str,
    /// Whether one connection should wake one worker (judged against the
    /// wakeups-per-connection target).
    pub exclusive: bool,
    /// Whether it is epitome's (a target subject) rather than a reference point.
    pub epitome: bool,
    /// Binds, reports the address, and serves until the process is killed.
    pub run: fn(HerdConfig) -> io::Result<()>,
}

/// Every variant, in the order the report runs them.
pub const VARIANTS: &[HerdVariant] = &[
    HerdVariant {
        name: "plain",
        about: "shared listener, epoll per worker (all wake)",
        exclusive: false,
        epitome: false,
        run: epoll_workers::run_plain,
    },
    HerdVariant {
        name: "exclusive",
        about: "shared listener, EPOLLEXCLUSIVE",
        exclusive: true,
        epitome: false,
        run: epoll_workers::run_exclusive,
    },
    HerdVariant {
        name: "reuseport",
        about: "a listener per worker, SO_REUSEPORT",
        exclusive: true,
        epitome: false,
        run: epoll_workers::run_reuseport,
    },
    HerdVariant {
        name: "epitome-mr",
        about: "epitome multi-reactor, accept loop per worker",
        exclusive: true,
        epitome: true,
        run: epitome_mr::run,
    },
    HerdVariant {
        name: "epitome-exclusive",
        about: "epitome serve, Strategy::Exclusive",
        exclusive: true,
        epitome: true,
        run: epitome_serve::run_exclusive,
    },
    HerdVariant {
        name: "epitome-reuseport",
        about: "epitome serve, Strategy::ReusePort (hash)",
        exclusive: true,
        epitome: true,
        run: epitome_serve::run_reuseport,
    },
    HerdVariant {
        name: "epitome-reuseport-cpu",
        about: "epitome serve, Strategy::ReusePort (incoming CPU)",
        exclusive: true,
        epitome: true,
        run: epitome_serve::run_reuseport_cpu,
    },
    HerdVariant {
        name: "epitome-mainsub",
        about: "epitome serve, Strategy::MainSub (least loaded)",
        // Two wakeups per connection handed to another worker, by design.
        exclusive: false,
        epitome: true,
        run: epitome_serve::run_main_sub,
    },
    HerdVariant {
        name: "epitome-balanced",
        about: "epitome serve, Strategy::Balanced (the default)",
        exclusive: true,
        epitome: true,
        run: epitome_serve::run_balanced,
    },
];

/// The variant called `name`.
pub fn find(name: &str) -> Option<&'static HerdVariant> {
    VARIANTS.iter().find(|v| v.name == name)
}

/// Jain's fairness index of `xs`: (Σx)² / (n·Σx²); 1 when all are equal, 1/n when
/// one has everything. `None` for an empty or all-zero list.
pub fn jain_index(xs: &[u64]) -> Option<f64> {
    let sum: f64 = xs.iter().map(|&x| x as f64).sum();
    let squares: f64 = xs.iter().map(|&x| (x as f64) * (x as f64)).sum();
    if xs.is_empty() || squares == 0.0 {
        return None;
    }
    Some(sum * sum / (xs.len() as f64 * squares))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn jain() {
        assert_eq!(jain_index(&[5, 5, 5, 5]), Some(1.0));
        assert_eq!(jain_index(&[8, 0, 0, 0]), Some(0.25));
        assert_eq!(jain_index(&[]), None);
        assert_eq!(jain_index(&[0, 0]), None);
        let j = jain_index(&[1, 2, 3]).unwrap();
        assert!((j - 36.0 / 42.0).abs() < 1e-12);
    }

    #[test]
    fn counts_round_trip() {
        let counts = vec![
            WorkerCounts {
                accepted: 1,
                listener_reports: 2,
                accept_eagain: 3,
            },
            WorkerCounts::default(),
        ];
        let line = format_counts(&counts);
        assert_eq!(line, "stats 1,2,3 0,0,0");
        assert_eq!(parse_counts(&line), Some(counts));
        assert_eq!(parse_counts("stats 1,2"), None);
        assert_eq!(parse_counts("nope"), None);
    }
}
