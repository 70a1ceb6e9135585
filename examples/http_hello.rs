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
use std::net::Shutdown;
use std::sync::Arc;

use epitome::net::{TcpListener, TcpStream};

#[path = "support/cli.rs"]
mod cli;

const USAGE: &str = "\
usage: http_hello [--addr ADDR] [--reactors N]
  --addr ADDR     address to listen on (default 127.0.0.1:8080)
  --reactors N    0: current-thread runtime (default); N: multi-reactor, N workers";

const BODY: &[u8] = b"Hello, World!";
/// The response head up to the connection header; its Content-Length is BODY's.
const HEAD: &[u8] =
    b"HTTP/1.1 200 OK\r\nServer: epitome\r\nContent-Type: text/plain\r\nContent-Length: 13\r\n";
const _: () = assert!(BODY.len() == 13, "HEAD's Content-Length must match BODY");
const MAX_HEAD: usize = 16 * 1024;
const MAX_BODY: usize = 1024 * 1024;

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
                                let _ = serve(stream).await;
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

/// One connection: read, answer every complete request received, repeat.
async fn serve(stream: TcpStream) -> io::Result<()> {
    stream.set_nodelay(true)?;
    let mut received: Vec<u8> = Vec::with_capacity(4096);
    let mut out: Vec<u8> = Vec::with_capacity(4096);
    let mut chunk = vec![0u8; 16 * 1024];
    loop {
        let mut used = 0;
        let mut close = false;
        loop {
            match parse(&received[used..]) {
                Parse::Request(req) => {
                    respond(&mut out, &req);
                    used += req.len;
                    if !req.keep_alive {
                        close = true;
                        break;
                    }
                }
                Parse::Incomplete => break,
                Parse::Reject(status) => {
                    out.extend_from_slice(
                        format!(
                            "HTTP/1.1 {status}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
                        )
                        .as_bytes(),
                    );
                    close = true;
                    break;
                }
            }
        }
        received.drain(..used);
        if !out.is_empty() {
            stream.write_all(&out).await?;
            out.clear();
        }
        if close {
            // FIN after the last response; the client closes its side.
            return stream.shutdown(Shutdown::Write).await;
        }
        let n = stream.read(&mut chunk).await?;
        if n == 0 {
            return Ok(());
        }
        received.extend_from_slice(&chunk[..n]);
    }
}

/// A complete request, as far as this server cares.
struct Request {
    /// Bytes of head and body.
    len: usize,
    keep_alive: bool,
    head_only: bool,
    http10: bool,
}

enum Parse {
    Request(Request),
    Incomplete,
    Reject(&'static str),
}

fn parse(buf: &[u8]) -> Parse {
    let Some(head_len) = buf.windows(4).position(|w| w == b"\r\n\r\n") else {
        return if buf.len() > MAX_HEAD {
            Parse::Reject("431 Request Header Fields Too Large")
        } else {
            Parse::Incomplete
        };
    };
    let Ok(head) = std::str::from_utf8(&buf[..head_len]) else {
        return Parse::Reject("400 Bad Request");
    };
    let mut lines = head.split("\r\n");
    let request_line = lines.next().unwrap_or("");
    let mut parts = request_line.split(' ');
    let (Some(method), Some(_target), Some(version), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Parse::Reject("400 Bad Request");
    };
    let http10 = match version {
        "HTTP/1.1" => false,
        "HTTP/1.0" => true,
        _ => return Parse::Reject("505 HTTP Version Not Supported"),
    };
    let mut keep_alive = !http10;
    let mut body_len = 0usize;
    for line in lines {
        let Some((name, value)) = line.split_once(':') else {
            return Parse::Reject("400 Bad Request");
        };
        let value = value.trim();
        if name.eq_ignore_ascii_case("content-length") {
            match value.parse() {
                Ok(n) if n <= MAX_BODY => body_len = n,
                Ok(_) => return Parse::Reject("413 Content Too Large"),
                Err(_) => return Parse::Reject("400 Bad Request"),
            }
        } else if name.eq_ignore_ascii_case("transfer-encoding") {
            return Parse::Reject("501 Not Implemented");
        } else if name.eq_ignore_ascii_case("connection") {
            for token in value.split(',').map(str::trim) {
                if token.eq_ignore_ascii_case("close") {
                    keep_alive = false;
                } else if token.eq_ignore_ascii_case("keep-alive") {
                    keep_alive = true;
                }
            }
        }
    }
    let len = head_len + 4 + body_len;
    if buf.len() < len {
        return Parse::Incomplete;
    }
    Parse::Request(Request {
        len,
        keep_alive,
        head_only: method == "HEAD",
        http10,
    })
}

fn respond(out: &mut Vec<u8>, req: &Request) {
    out.extend_from_slice(HEAD);
    if !req.keep_alive {
        out.extend_from_slice(b"Connection: close\r\n");
    } else if req.http10 {
        out.extend_from_slice(b"Connection: keep-alive\r\n");
    }
    out.extend_from_slice(b"\r\n");
    if !req.head_only {
        out.extend_from_slice(BODY);
    }
}
