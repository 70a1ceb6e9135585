//! The herd client: opens connections, on each writes one message, and times from the
//! start of `connect` to the first echoed byte; the connections stay open until the
//! caller drops them. Two ways of arriving:
//!
//! - [`connect_one_by_one`]: each connection's echo is awaited before the next one
//!   opens, so each arrives while every worker is waiting: when a herd happens, and
//!   when an `EPOLLEXCLUSIVE` listener gives every connection to the same reactor.
//! - [`connect_in_bursts`]: [`BURST`] connections opened back to back (each writing its
//!   message at once), then their echoes read: the workers are busy while the burst
//!   arrives, so the kernel's wakeups and the accept loops' competition decide where
//!   connections land.

use std::io::{self, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::Instant;

use hdrhistogram::Histogram;

use super::{SETUP_TIMEOUT, latency_histogram, nanos};
use crate::echo;

/// Connections per burst in [`connect_in_bursts`]: below the listen backlog of the
/// herd servers (and of epitome's `ReusePort` listeners, 1024), so a burst never
/// overflows an accept queue.
pub const BURST: usize = 500;

/// How connections arrive in a herd run.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Arrival {
    /// [`connect_one_by_one`].
    OneAtATime,
    /// [`connect_in_bursts`].
    Burst,
}

impl Arrival {
    /// Its name in tables and on the command line.
    pub fn name(self) -> &'static str {
        match self {
            Arrival::OneAtATime => "one-at-a-time",
            Arrival::Burst => "burst",
        }
    }

    /// Opens `n` connections this way (see [`connect_one_by_one`]).
    pub fn connect(
        self,
        addr: SocketAddr,
        n: usize,
        size: usize,
    ) -> io::Result<(Vec<TcpStream>, Histogram<u64>)> {
        match self {
            Arrival::OneAtATime => connect_one_by_one(addr, n, size),
            Arrival::Burst => connect_in_bursts(addr, n, size),
        }
    }
}

/// Opens `n` connections to `addr`; returns them and the connect-to-first-echoed-byte
/// latencies (ns).
pub fn connect_one_by_one(
    addr: SocketAddr,
    n: usize,
    size: usize,
) -> io::Result<(Vec<TcpStream>, Histogram<u64>)> {
    let msg = echo::message(size);
    let mut back = vec![0; size];
    let mut latency = latency_histogram();
    let mut streams = Vec::with_capacity(n);
    for _ in 0..n {
        let start = Instant::now();
        let mut stream = TcpStream::connect(addr)?;
        stream.set_nodelay(true)?;
        stream.write_all(&msg)?;
        stream.set_read_timeout(Some(SETUP_TIMEOUT))?;
        let first = stream.read(&mut back)?;
        latency.saturating_record(nanos(start.elapsed()));
        if first == 0 {
            return Err(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                "the server closed a connection before echoing",
            ));
        }
        stream.read_exact(&mut back[first..])?;
        if back != msg {
            return Err(io::Error::other("the echo differs from the message sent"));
        }
        streams.push(stream);
    }
    Ok((streams, latency))
}

/// Opens `n` connections to `addr` in bursts of [`BURST`]: a burst's connections are
/// opened back to back, each writing its `size`-byte message as soon as it is open;
/// then each one's echo is read and checked. Returns the connections and the
/// connect-to-first-echoed-byte latencies (ns), which include the wait for the rest
/// of the burst to be opened.
pub fn connect_in_bursts(
    addr: SocketAddr,
    n: usize,
    size: usize,
) -> io::Result<(Vec<TcpStream>, Histogram<u64>)> {
    let msg = echo::message(size);
    let mut back = vec![0; size];
    let mut latency = latency_histogram();
    let mut streams = Vec::with_capacity(n);
    while streams.len() < n {
        let first = streams.len();
        let mut started = Vec::with_capacity(BURST);
        for _ in 0..BURST.min(n - first) {
            let start = Instant::now();
            let mut stream = TcpStream::connect(addr)?;
            stream.set_nodelay(true)?;
            stream.write_all(&msg)?;
            streams.push(stream);
            started.push(start);
        }
        for (stream, start) in streams[first..].iter_mut().zip(started) {
            stream.set_read_timeout(Some(SETUP_TIMEOUT))?;
            let got = stream.read(&mut back)?;
            latency.saturating_record(nanos(start.elapsed()));
            if got == 0 {
                return Err(io::Error::new(
                    io::ErrorKind::UnexpectedEof,
                    "the server closed a connection before echoing",
                ));
            }
            stream.read_exact(&mut back[got..])?;
            if back != msg {
                return Err(io::Error::other("the echo differs from the message sent"));
            }
        }
    }
    Ok((streams, latency))
}
