//! The HTTP/1.1 logic of the `http_hello` example: the request parser, the
//! responder, and the step that answers every complete request a read has brought.
//! The HTTP benchmark's `hello-epitome` and `hello-tokio` servers include this same
//! file (`benches/src/http/hello.rs`), so the benchmark measures the example's code.
//!
//! Keep-alive, pipelined requests answered in order with one write, request bodies
//! skipped by their `Content-Length`, `HEAD` answered without a body, close after
//! `Connection: close` (or an HTTP/1.0 request without keep-alive); no chunked request
//! bodies (501), heads of at most 16 KiB (431), bodies of at most 1 MiB (413), no
//! `Date` header.

/// Bytes a connection reads at once (the example's `chunk`).
pub const READ_CHUNK: usize = 16 * 1024;

/// What `GET /` is answered with.
pub const BODY: &[u8] = b"Hello, World!";
/// The response head up to the connection header; its Content-Length is BODY's.
const HEAD: &[u8] =
    b"HTTP/1.1 200 OK\r\nServer: epitome\r\nContent-Type: text/plain\r\nContent-Length: 13\r\n";
const _: () = assert!(BODY.len() == 13, "HEAD's Content-Length must match BODY");
const MAX_HEAD: usize = 16 * 1024;
const MAX_BODY: usize = 1024 * 1024;

/// Answers every complete request at the front of `received` into `out` and drops
/// them from `received`. Returns whether the connection is to be closed once `out`
/// is written (the last request asked for it, or was rejected).
pub fn answer(received: &mut Vec<u8>, out: &mut Vec<u8>) -> bool {
    let mut used = 0;
    let mut close = false;
    loop {
        match parse(&received[used..]) {
            Parse::Request(req) => {
                respond(out, &req);
                used += req.len;
                if !req.keep_alive {
                    close = true;
                    break;
                }
            }
            Parse::Incomplete => break,
            Parse::Reject(status) => {
                out.extend_from_slice(
                    format!("HTTP/1.1 {status}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")
                        .as_bytes(),
                );
                close = true;
                break;
            }
        }
    }
    received.drain(..used);
    close
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

/// One connection on epitome: read, answer every complete request received, repeat.
pub async fn serve(stream: epitome::net::TcpStream) -> std::io::Result<()> {
    stream.set_nodelay(true)?;
    let mut received: Vec<u8> = Vec::with_capacity(4096);
    let mut out: Vec<u8> = Vec::with_capacity(4096);
    let mut chunk = vec![0u8; READ_CHUNK];
    loop {
        let close = answer(&mut received, &mut out);
        if !out.is_empty() {
            stream.write_all(&out).await?;
            out.clear();
        }
        if close {
            // FIN after the last response; the client closes its side.
            return stream.shutdown(std::net::Shutdown::Write).await;
        }
        let n = stream.read(&mut chunk).await?;
        if n == 0 {
            return Ok(());
        }
        received.extend_from_slice(&chunk[..n]);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pipelined_requests_are_answered_in_order() {
        let mut received =
            b"GET / HTTP/1.1\r\nHost: x\r\n\r\nHEAD / HTTP/1.1\r\n\r\nGET /".to_vec();
        let mut out = Vec::new();
        assert!(!answer(&mut received, &mut out));
        let text = String::from_utf8(out).unwrap();
        assert_eq!(text.matches("HTTP/1.1 200 OK").count(), 2);
        assert_eq!(text.matches("Hello, World!").count(), 1, "HEAD has no body");
        assert_eq!(received, b"GET /", "the incomplete request stays");
    }

    #[test]
    fn close_and_reject() {
        let mut out = Vec::new();
        let mut received = b"GET / HTTP/1.0\r\n\r\nGET / HTTP/1.1\r\n\r\n".to_vec();
        assert!(answer(&mut received, &mut out), "HTTP/1.0 closes");
        assert!(String::from_utf8_lossy(&out).contains("Connection: close"));
        out.clear();
        let mut received = b"POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n".to_vec();
        assert!(answer(&mut received, &mut out));
        assert!(out.starts_with(b"HTTP/1.1 501"));
    }
}
