//! The seeds' "single reactor + worker pool" server model: one thread runs the reactor
//! and does only I/O (accepting, reading requests, writing answers); the handlers' work
//! runs on a pool of threads, here the runtime's blocking pool, bounded to the number
//! of CPUs. Each request line `N` is answered with the number of primes up to `N`.
//!
//! ```sh
//! cargo run --release --example worker_pool -- --addr 127.0.0.1:7002
//! printf '10\n1000000\n' | nc 127.0.0.1 7002
//! ```
//!
//! When to use it: handlers whose work is CPU-heavy next to their I/O, on a machine
//! where one reactor thread keeps up with the connections. The reactor never runs a
//! handler's computation, so a slow request does not delay the others' I/O; the pool
//! bounds how many computations run at once. (With light handlers a multi-reactor
//! runtime, which does I/O and work on every core, is faster; see
//! `docs/server-models.md`.) The server code is in `support/worker_pool_server.rs`,
//! which `tests/worker_pool_example.rs` runs too.

use std::io;

use epitome::net::TcpListener;
use epitome::runtime::Builder;

// Only the flag parsing: this example builds its own runtime.
#[allow(dead_code)]
#[path = "support/cli.rs"]
mod cli;
#[path = "support/worker_pool_server.rs"]
mod worker_pool_server;

const USAGE: &str = "\
usage: worker_pool [--addr ADDR] [--pool N]
  --addr ADDR   address to listen on (default 127.0.0.1:7002)
  --pool N      threads computing at most at once (default: the number of CPUs)";

fn main() -> io::Result<()> {
    let flags = cli::Flags::parse(USAGE, &["--addr", "--pool"]);
    let addr: String = flags.get("--addr", "127.0.0.1:7002".to_string());
    let cpus = std::thread::available_parallelism().map_or(1, usize::from);
    let pool: usize = flags.get("--pool", cpus).max(1);

    // The single reactor: a current-thread runtime, driven by this thread. Its
    // blocking pool is the worker pool.
    let rt = Builder::new_current_thread()
        .max_blocking_threads(pool)
        .build()?;
    rt.block_on(async {
        let listener = TcpListener::bind(addr.as_str()).await?;
        println!(
            "worker-pool server listening on {} (one reactor thread, {pool} pool threads)",
            listener.local_addr()?
        );
        worker_pool_server::run(listener, std::future::pending()).await
    })
}
