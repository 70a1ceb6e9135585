//! A TCP forwarder: every connection accepted on `--listen` is connected to `--to`,
//! and bytes are copied both ways until both directions have ended.
//!
//! ```sh
//! cargo run --release --example echo -- --addr 127.0.0.1:7000 &
//! cargo run --release --example proxy -- --listen 127.0.0.1:7001 --to 127.0.0.1:7000 --reactors 2
//! nc 127.0.0.1 7001
//! ```
//!
//! Half-closes pass through: when one side shuts down writing (end of stream), the
//! proxy shuts down writing to the other side, which can still answer; the connection
//! ends once both directions have. A reset or error on one side resets the other (the
//! proxy closes it with `SO_LINGER` 0) rather than leave it hanging.

use std::io;
use std::sync::Arc;
use std::time::Duration;

use epitome::net::tcp::{OwnedReadHalf, OwnedWriteHalf};
use epitome::net::{TcpListener, TcpStream};
use epitome::task::JoinSet;

#[path = "support/cli.rs"]
mod cli;

const USAGE: &str = "\
usage: proxy [--listen ADDR] [--to ADDR] [--reactors N]
  --listen ADDR   address to accept on (default 127.0.0.1:7001)
  --to ADDR       address to forward to (default 127.0.0.1:7000)
  --reactors N    0: current-thread runtime (default); N: multi-reactor, N workers";

fn main() -> io::Result<()> {
    let flags = cli::Flags::parse(USAGE, &["--listen", "--to", "--reactors"]);
    let listen: String = flags.get("--listen", "127.0.0.1:7001".to_string());
    let to: Arc<str> = Arc::from(flags.get("--to", "127.0.0.1:7000".to_string()));
    let reactors: usize = flags.get("--reactors", 0);

    let rt = cli::runtime(reactors)?;
    let listener = Arc::new(rt.block_on(TcpListener::bind(listen.as_str()))?);
    println!(
        "proxy listening on {}, forwarding to {to} ({})",
        listener.local_addr()?,
        cli::describe(reactors)
    );
    // One accept loop per worker (spawned from outside the runtime, they spread over
    // the workers); each connection is forwarded by tasks on the worker that accepted
    // it.
    let loops: Vec<_> = (0..rt.metrics().num_workers())
        .map(|_| {
            let (listener, to) = (listener.clone(), to.clone());
            rt.spawn(async move {
                loop {
                    match listener.accept().await {
                        Ok((client, _)) => {
                            epitome::spawn(forward(client, to.clone()));
                        }
                        Err(e) => eprintln!("accept: {e}"),
                    }
                }
            })
        })
        .collect();
    rt.block_on(async {
        for l in loops {
            let _ = l.await;
        }
    });
    Ok(())
}

/// Forwards one connection.
async fn forward(client: TcpStream, to: Arc<str>) {
    let peer = client
        .peer_addr()
        .map_or_else(|_| "?".to_string(), |a| a.to_string());
    let upstream = match TcpStream::connect(&*to).await {
        Ok(s) => s,
        Err(e) => {
            eprintln!("{peer}: connecting to {to}: {e}");
            // Tell the client at once, with a reset.
            let _ = client.set_linger(Some(Duration::ZERO));
            return;
        }
    };
    let _ = client.set_nodelay(true);
    let _ = upstream.set_nodelay(true);
    let (client_r, client_w) = client.into_split();
    let (upstream_r, upstream_w) = upstream.into_split();
    let mut directions = JoinSet::new();
    directions.spawn(pipe(client_r, upstream_w, UP));
    directions.spawn(pipe(upstream_r, client_w, DOWN));
    let mut bytes = [None; 2];
    while let Some(done) = directions.join_next().await {
        match done {
            Ok(Ok((direction, n))) => bytes[direction] = Some(n),
            Ok(Err(e)) => {
                // One side failed: drop the other direction too (its sockets close,
                // with a reset where `pipe` asked for one).
                eprintln!("{peer}: {e}");
                directions.abort_all();
            }
            Err(e) => eprintln!("{peer}: {e}"),
        }
    }
    if let [Some(up), Some(down)] = bytes {
        println!("{peer}: done, {up} bytes up and {down} bytes down");
    }
}

/// Client to upstream.
const UP: usize = 0;
/// Upstream to client.
const DOWN: usize = 1;

/// Copies `from` to `to` until end of stream, then shuts `to` down for writing
/// (dropping an owned write half does), so the half-close reaches the other side.
/// Returns `direction` with the byte count.
async fn pipe(
    mut from: OwnedReadHalf,
    mut to: OwnedWriteHalf,
    direction: usize,
) -> io::Result<(usize, u64)> {
    let mut buf = vec![0u8; 64 * 1024];
    let mut total = 0u64;
    loop {
        let n = match from.read(&mut buf).await {
            Ok(0) => return Ok((direction, total)),
            Ok(n) => n,
            Err(e) => {
                // The reading side reset or failed: reset the writing side too (when
                // its socket closes), without a FIN first.
                let _ = to.as_ref().set_linger(Some(Duration::ZERO));
                to.forget();
                return Err(e);
            }
        };
        if let Err(e) = to.write_all(&buf[..n]).await {
            // The writing side is gone: reset the reading side, which would otherwise
            // go on sending into the void.
            let _ = from.as_ref().set_linger(Some(Duration::ZERO));
            return Err(e);
        }
        total += n as u64;
    }
}
