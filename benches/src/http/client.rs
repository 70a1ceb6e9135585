//! A minimal blocking HTTP/1.1 client: keep-alive `GET /` on plain connections, each
//! response read whole (by its `Content-Length`) and checked. Enough to see that a
//! contender answers correctly, and to warm a server up before `wrk` measures it;
//! the figures themselves come from [`super::wrk`].

use std::io::{self, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::{Duration, Instant};

use crate::sys;

/// The request sent: what `wrk` sends, bar its `Host` port.
pub const REQUEST: &[u8] = b"GET / HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n";
/// How long a connection waits for a response before calling the server broken.
pub const TIMEOUT: Duration = Duration::from_secs(10);
/// The largest response head accepted.
const MAX_HEAD: usize = 16 * 1024;

/// One response.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Response {
    /// The status code.
    pub status: u16,
    /// Header names (lower case) and values, in order.
    pub headers: Vec<(String, String)>,
    /// The body.
    pub body: Vec<u8>,
}

impl Response {
    /// The first value of header `name` (lower case).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }

    /// An error unless this is the contenders' answer to `GET /`: `200`, the body
    /// [`super::BODY`], `text/plain`, and the connection kept open.
    pub fn check(&self) -> io::Result<()> {
        let fail = |why: String| Err(io::Error::other(why));
        if self.status != 200 {
            return fail(format!("status {}, not 200", self.status));
        }
        if self.body != super::BODY.as_bytes() {
            return fail(format!(
                "body `{}`, not `{}`",
                String::from_utf8_lossy(&self.body),
                super::BODY
            ));
        }
        match self.header("content-type") {
            Some(t) if t.starts_with("text/plain") => {}
            other => return fail(format!("content-type {other:?}, not text/plain")),
        }
        if self
            .header("connection")
            .is_some_and(|c| c.eq_ignore_ascii_case("close"))
        {
            return fail("the server closes the connection".to_owned());
        }
        Ok(())
    }
}

/// A keep-alive connection.
#[derive(Debug)]
pub struct Connection {
    stream: TcpStream,
    /// Bytes read past the last response.
    buf: Vec<u8>,
}

impl Connection {
    /// Connects to `addr` (`TCP_NODELAY`, [`TIMEOUT`] on reads and writes).
    pub fn open(addr: SocketAddr) -> io::Result<Connection> {
        let stream = TcpStream::connect(addr)?;
        stream.set_nodelay(true)?;
        stream.set_read_timeout(Some(TIMEOUT))?;
        stream.set_write_timeout(Some(TIMEOUT))?;
        Ok(Connection {
            stream,
            buf: Vec::with_capacity(1024),
        })
    }

    /// Sends [`REQUEST`].
    pub fn send(&mut self) -> io::Result<()> {
        self.stream.write_all(REQUEST)
    }

    /// Reads one response.
    pub fn receive(&mut self) -> io::Result<Response> {
        let head_len = loop {
            if let Some(at) = self.buf.windows(4).position(|w| w == b"\r\n\r\n") {
                break at;
            }
            if self.buf.len() > MAX_HEAD {
                return Err(io::Error::other("a response head of more than 16 KiB"));
            }
            self.fill()?;
        };
        let (status, headers) = parse_head(&self.buf[..head_len])?;
        let mut response = Response {
            status,
            headers,
            body: Vec::new(),
        };
        if response.header("transfer-encoding").is_some() {
            return Err(io::Error::other(
                "a response without Content-Length (transfer-encoding)",
            ));
        }
        let body_len: usize = match response.header("content-length") {
            Some(v) => v
                .parse()
                .map_err(|e| io::Error::other(format!("content-length `{v}`: {e}")))?,
            None => 0,
        };
        let end = head_len + 4 + body_len;
        while self.buf.len() < end {
            self.fill()?;
        }
        response.body = self.buf[head_len + 4..end].to_vec();
        self.buf.drain(..end);
        Ok(response)
    }

    /// Sends [`REQUEST`] and reads its response.
    pub fn get(&mut self) -> io::Result<Response> {
        self.send()?;
        self.receive()
    }

    /// The connection, to close with a reset: no `TIME_WAIT` socket left behind.
    pub fn close(self) {
        let _ = sys::reset_on_close(&self.stream);
    }

    fn fill(&mut self) -> io::Result<()> {
        let mut chunk = [0; 4096];
        let n = self.stream.read(&mut chunk)?;
        if n == 0 {
            return Err(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                "the server closed the connection",
            ));
        }
        self.buf.extend_from_slice(&chunk[..n]);
        Ok(())
    }
}

/// The status code and headers of a response head (without its blank line).
fn parse_head(head: &[u8]) -> io::Result<(u16, Vec<(String, String)>)> {
    let bad = || {
        io::Error::other(format!(
            "a bad response head: {}",
            String::from_utf8_lossy(head)
        ))
    };
    let head = std::str::from_utf8(head).map_err(|_| bad())?;
    let mut lines = head.split("\r\n");
    let status_line = lines.next().unwrap_or("");
    let mut parts = status_line.splitn(3, ' ');
    let (Some(version), Some(code)) = (parts.next(), parts.next()) else {
        return Err(bad());
    };
    if !version.starts_with("HTTP/1.") {
        return Err(bad());
    }
    let status = code.parse().map_err(|_| bad())?;
    let headers = lines
        .map(|line| {
            let (name, value) = line.split_once(':').ok_or_else(bad)?;
            Ok((name.trim().to_ascii_lowercase(), value.trim().to_owned()))
        })
        .collect::<io::Result<_>>()?;
    Ok((status, headers))
}

/// Keeps `connections` connections to `addr` busy for `duration`, one request in
/// flight on each, checking every answer ([`Response::check`]); then closes them
/// with a reset. Returns the requests answered. The report's warm-up before each
/// `wrk` window, and a check that the server answers correctly.
pub fn warm_up(addr: SocketAddr, connections: usize, duration: Duration) -> io::Result<u64> {
    let mut conns = Vec::with_capacity(connections);
    let result = (|| {
        for _ in 0..connections {
            conns.push(Connection::open(addr)?);
        }
        let started = Instant::now();
        let mut answered = 0;
        loop {
            for c in &mut conns {
                c.send()?;
            }
            for c in &mut conns {
                c.receive()?.check()?;
                answered += 1;
            }
            if started.elapsed() >= duration {
                return Ok(answered);
            }
        }
    })();
    for c in conns {
        c.close();
    }
    result
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn heads() {
        let (status, headers) =
            parse_head(b"HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\nX-A:  b ").unwrap();
        assert_eq!(status, 404);
        assert_eq!(
            headers,
            vec![
                ("content-length".to_owned(), "0".to_owned()),
                ("x-a".to_owned(), "b".to_owned())
            ]
        );
        assert!(parse_head(b"SPDY 200").is_err());
        assert!(parse_head(b"HTTP/1.1 200 OK\r\nno colon").is_err());
    }
}
