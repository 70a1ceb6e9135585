//! A TCP echo server: every byte a client sends comes back to it, until the client
//! closes. `epitome::net::serve` accepts on every worker with an accept strategy; each
//! connection is a task that holds no read buffer while the connection is idle.
//!
//! ```sh
//! cargo run --release --example echo -- --addr 127.0.0.1:7000 --reactors 2
//! ```
//!
//! `--reactors 0` (the default) runs a current-thread runtime on the main thread;
//! `--reactors N` a multi-reactor runtime with N workers. `--strategy` picks how the
//! workers share the accepting: `balanced` (the default), `exclusive`, `reuseport`,
//! `reuseport-cpu`, `mainsub` or `mainsub-rr` (see `docs/server-models.md`). Try it
//! with `nc 127.0.0.1 7000`, or load it with the `echo_client` example, which also
//! measures what an idle connection costs the server (`--server-pid`). The server code
//! itself is in `support/echo_server.rs`, which the acceptance test in
//! `net/tests/echo_example.rs` runs too.

use std::io;

use epitome::net::serve::{Pick, Steering, Strategy};
use epitome::net::{TcpListener, TcpSocket};

#[path = "support/cli.rs"]
mod cli;
#[path = "support/echo_server.rs"]
mod echo_server;

const USAGE: &str = "\
usage: echo [--addr ADDR] [--reactors N] [--strategy S]
  --addr ADDR     address to listen on (default 127.0.0.1:7000)
  --reactors N    0: current-thread runtime (default); N: multi-reactor, N workers
  --strategy S    balanced (default), exclusive, reuseport, reuseport-cpu, mainsub, mainsub-rr";

fn main() -> io::Result<()> {
    let flags = cli::Flags::parse(USAGE, &["--addr", "--reactors", "--strategy"]);
    let addr: String = flags.get("--addr", "127.0.0.1:7000".to_string());
    let reactors: usize = flags.get("--reactors", 0);
    let strategy = match flags.get("--strategy", "balanced".to_string()).as_str() {
        "balanced" => Strategy::Balanced,
        "exclusive" => Strategy::Exclusive,
        "reuseport" => Strategy::ReusePort(Steering::Hash),
        "reuseport-cpu" => Strategy::ReusePort(Steering::IncomingCpu),
        "mainsub" => Strategy::MainSub(Pick::LeastLoaded),
        "mainsub-rr" => Strategy::MainSub(Pick::RoundRobin),
        other => {
            eprintln!("error: unknown strategy `{other}`\n\n{USAGE}");
            std::process::exit(2);
        }
    };

    let rt = cli::runtime(reactors)?;
    let listener = rt.block_on(bind(&addr, strategy))?;
    println!(
        "echo server listening on {} ({}, {strategy:?})",
        listener.local_addr()?,
        cli::describe(reactors)
    );
    let server = echo_server::start_with(&rt, listener, strategy);
    // The server runs until the process is killed; this drives a current-thread
    // runtime meanwhile.
    let _ = rt.block_on(server);
    Ok(())
}

/// Binds `addr`: with `SO_REUSEPORT` for a `ReusePort` strategy, which opens one
/// listener per worker on the port.
async fn bind(addr: &str, strategy: Strategy) -> io::Result<TcpListener> {
    if !matches!(strategy, Strategy::ReusePort(_)) {
        return TcpListener::bind(addr).await;
    }
    let addr = epitome::net::lookup_host(addr)
        .await?
        .next()
        .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidInput, "no address"))?;
    let socket = if addr.is_ipv4() {
        TcpSocket::new_v4()?
    } else {
        TcpSocket::new_v6()?
    };
    socket.set_reuseaddr(true)?;
    socket.set_reuseport(true)?;
    socket.bind(addr)?;
    socket.listen(1024)
}
