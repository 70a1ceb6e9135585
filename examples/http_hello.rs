//! A minimal HTTP/1.1 server that answers every request with `Hello, World!`: enough
//! HTTP for `wrk` and friends. It keeps connections alive, answers pipelined requests
//! in order (all the complete requests a read brings are answered with one write),
//! skips request bodies by their `Content-Length`, answers `HEAD` without a body, and
//! closes after `Connection: close` (or an HTTP/1.0 request without keep-alive).
//!
//! ```sh
//! cargo run --release --example http_hello -- --addr 127.0.0.1:8080 --reactors 2
//! curl -i http://127.0.0.1:8080/
//! wrk -t2 -c100 -d10s http://127.0.0.1:8080/
//! ```
//!
//! Not a general HTTP server: no chunked request bodies (answered with 501), heads of
//! at most 16 KiB (else 431), bodies of at most 1 MiB (else 413), no `Date` header.

use std::io;
use std::sync::Arc;

use epitome::net::TcpListener;

#[path = "support/cli.rs"]
mod cli;
#[path = "support/http1.rs"]
mod http1;

const USAGE: &str = "\
usage: http_hello [--addr ADDR] [--reactors N]
  --addr ADDR     address to listen on (default 127.0.0.1:8080)
  --reactors N    0: current-thread runtime (default); N: multi-reactor, N workers";

fn main() -> io::Result<()> {
    let flags = cli::Flags::parse(USAGE, &["--addr", "--reactors"]);
    let addr: String = flags.get("--addr", "127.0.0.1:8080".to_string());
    let reactors: usize = flags.get("--reactors", 0);

    let rt = cli::runtime(reactors)?;
    let listener = Arc::new(rt.block_on(TcpListener::bind(addr.as_str()))?);
    println!(
        "http_hello listening on http://{}/ ({})",
        listener.local_addr()?,
        cli::describe(reactors)
    );
    // One accept loop per worker (spawned from outside the runtime, they spread over
    // the workers); each connection is a task on the worker that accepted it.
    let loops: Vec<_> = (0..rt.metrics().num_workers())
        .map(|_| {
            let listener = listener.clone();
            rt.spawn(async move {
                loop {
                    match listener.accept().await {
                        Ok((stream, _)) => {
                            epitome::spawn(async move {
                                let _ = http1::serve(stream).await;
                            });
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
