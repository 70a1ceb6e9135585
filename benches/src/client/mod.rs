//! The load client: opening connections, the closed-loop and open-loop drivers, and
//! the herd's connect-and-echo client.
//!
//! The drivers run on the calling thread with one kernel epoll instance for all
//! their connections (level-triggered, one read per wakeup, `EPOLLOUT` only while a
//! message is partly written), so a single client core keeps up with 10,000
//! connections. The report pins that thread to its own core.

pub mod closed;
pub mod herd;
pub mod open;

use std::io::{self, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::Duration;

use hdrhistogram::Histogram;

use crate::echo;

/// Connections opened before their first echo is awaited. Below the listen backlog,
/// so a server that accepts slowly (one thread per connection) never lets its
/// accept queue overflow.
pub const CONNECT_CHUNK: usize = 500;
/// How long setup waits for one echo before calling the server broken.
pub const SETUP_TIMEOUT: Duration = Duration::from_secs(10);
/// Bytes the client reads at once.
pub const CLIENT_READ_BUF: usize = 64 * 1024;

/// Opens `n` connections to `addr` and makes one round trip of a `size`-byte
/// message on each, checking the echo byte for byte, so every connection is
/// accepted and served before any measurement starts. The streams are left
/// blocking, with `TCP_NODELAY`.
pub fn connect(addr: SocketAddr, n: usize, size: usize) -> io::Result<Vec<TcpStream>> {
    let msg = echo::message(size);
    let mut back = vec![0; size];
    let mut streams = Vec::with_capacity(n);
    while streams.len() < n {
        let start = streams.len();
        let chunk = CONNECT_CHUNK.min(n - start);
        for _ in 0..chunk {
            let stream = TcpStream::connect(addr)?;
            stream.set_nodelay(true)?;
            stream.set_read_timeout(Some(SETUP_TIMEOUT))?;
            stream.set_write_timeout(Some(SETUP_TIMEOUT))?;
            streams.push(stream);
        }
        for mut stream in &streams[start..] {
            stream.write_all(&msg)?;
        }
        for mut stream in &streams[start..] {
            stream.read_exact(&mut back)?;
            if back != msg {
                return Err(io::Error::other("the echo differs from the message sent"));
            }
        }
    }
    Ok(streams)
}

/// A latency histogram in nanoseconds, 1 ns to 100 s, 3 significant digits.
pub fn latency_histogram() -> Histogram<u64> {
    Histogram::new_with_bounds(1, 100_000_000_000, 3).expect("valid histogram bounds")
}

/// Nanoseconds in `d`, saturating.
pub fn nanos(d: Duration) -> u64 {
    u64::try_from(d.as_nanos()).unwrap_or(u64::MAX)
}
