//! The herd client: opens connections one after another, and on each writes one
//! message and times from the start of `connect` to the first echoed byte. One
//! connection at a time, so each one arrives while every worker is waiting, which is
//! when a herd happens; the connections stay open until the caller drops them.

use std::io::{self, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::Instant;

use hdrhistogram::Histogram;

use super::{SETUP_TIMEOUT, latency_histogram, nanos};
use crate::echo;

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
