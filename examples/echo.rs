//! A TCP echo server: every byte a client sends comes back to it, until the client
//! closes. One accept loop per worker shares one listener; each connection is a task.
//!
//! ```sh
//! cargo run --release --example echo -- --addr 127.0.0.1:7000 --reactors 2
//! ```
//!
//! `--reactors 0` (the default) runs a current-thread runtime on the main thread;
//! `--reactors N` a multi-reactor runtime with N workers. Try it with `nc 127.0.0.1
//! 7000`, or load it with the `echo_client` example. The server code itself is in
//! `support/echo_server.rs`, which the acceptance test in `net/tests/echo_example.rs`
//! runs too.

use std::io;

use epitome::net::TcpListener;

#[path = "support/cli.rs"]
mod cli;
#[path = "support/echo_server.rs"]
mod echo_server;

const USAGE: &str = "\
usage: echo [--addr ADDR] [--reactors N]
  --addr ADDR     address to listen on (default 127.0.0.1:7000)
  --reactors N    0: current-thread runtime (default); N: multi-reactor, N workers";

fn main() -> io::Result<()> {
    let flags = cli::Flags::parse(USAGE, &["--addr", "--reactors"]);
    let addr: String = flags.get("--addr", "127.0.0.1:7000".to_string());
    let reactors: usize = flags.get("--reactors", 0);

    let rt = cli::runtime(reactors)?;
    let listener = rt.block_on(TcpListener::bind(addr.as_str()))?;
    println!(
        "echo server listening on {} ({})",
        listener.local_addr()?,
        cli::describe(reactors)
    );
    let loops = echo_server::start(&rt, listener);
    // The accept loops never end; this drives a current-thread runtime meanwhile.
    rt.block_on(async {
        for l in loops {
            let _ = l.await;
        }
    });
    Ok(())
}
