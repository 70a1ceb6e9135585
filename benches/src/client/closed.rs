//! The closed-loop driver: every connection has one message in flight; when its
//! echo is complete the next is sent at once. Throughput is completions per second;
//! each completion's round-trip time goes into a histogram (closed-loop latency
//! under full load, which hides queueing, unlike [`super::open`]).

use std::io::{self, Read};
use std::net::TcpStream;
use std::os::fd::AsRawFd;
use std::time::{Duration, Instant};

use hdrhistogram::Histogram;

use super::{CLIENT_READ_BUF, nanos};
use crate::echo::event_loop::write_some;
use crate::echo::{self, EVENTS};
use crate::sys::{self, Epoll};

const EPOLLIN: u32 = libc::EPOLLIN as u32;
const EPOLLOUT: u32 = libc::EPOLLOUT as u32;
const EPOLLERR: u32 = libc::EPOLLERR as u32;
const EPOLLHUP: u32 = libc::EPOLLHUP as u32;

/// One connection's message in flight.
#[derive(Clone, Copy, Debug)]
struct Flight {
    /// Bytes of the message not yet written.
    to_write: usize,
    /// Bytes of the echo not yet read.
    to_read: usize,
    /// When the message was first written.
    sent_at: Instant,
    /// Whether `EPOLLOUT` is in the interest mask.
    out: bool,
}

/// What one [`ClosedLoop::run_for`] did.
#[derive(Clone, Copy, Debug)]
pub struct Window {
    /// Round trips completed.
    pub completed: u64,
    /// How long it ran.
    pub elapsed: Duration,
}

/// `N` connections driven closed-loop. Between calls to [`run_for`](Self::run_for)
/// the messages in flight stay in flight.
#[derive(Debug)]
pub struct ClosedLoop {
    epoll: Epoll,
    streams: Vec<TcpStream>,
    flights: Vec<Flight>,
    started: bool,
    msg: Vec<u8>,
    buf: Vec<u8>,
    events: Vec<libc::epoll_event>,
}

impl ClosedLoop {
    /// Takes connections opened by [`super::connect`], idle, for `size`-byte
    /// messages.
    pub fn new(streams: Vec<TcpStream>, size: usize) -> io::Result<ClosedLoop> {
        let epoll = Epoll::new()?;
        for (i, stream) in streams.iter().enumerate() {
            stream.set_nonblocking(true)?;
            epoll.add(stream.as_raw_fd(), EPOLLIN, i as u64)?;
        }
        let now = Instant::now();
        let flights = vec![
            Flight {
                to_write: 0,
                to_read: 0,
                sent_at: now,
                out: false,
            };
            streams.len()
        ];
        Ok(ClosedLoop {
            epoll,
            streams,
            flights,
            started: false,
            msg: echo::message(size),
            buf: vec![0; CLIENT_READ_BUF],
            events: sys::epoll_events(EVENTS),
        })
    }

    /// Drives the connections for `duration`, recording each completed round trip
    /// in `latency` (ns).
    pub fn run_for(
        &mut self,
        duration: Duration,
        latency: &mut Histogram<u64>,
    ) -> io::Result<Window> {
        let start = Instant::now();
        if !self.started {
            self.started = true;
            for i in 0..self.streams.len() {
                self.send(i, start)?;
            }
        }
        let deadline = start + duration;
        let mut completed = 0;
        loop {
            let now = Instant::now();
            if now >= deadline {
                return Ok(Window {
                    completed,
                    elapsed: now - start,
                });
            }
            let timeout = (deadline - now).as_millis().clamp(1, 10) as i32;
            let n = self.epoll.wait(&mut self.events, timeout)?;
            for k in 0..n {
                let event = self.events[k];
                let (flags, i) = (event.events, event.u64 as usize);
                if flags & (EPOLLIN | EPOLLERR | EPOLLHUP) != 0 && self.receive(i)? {
                    let now = Instant::now();
                    latency.saturating_record(nanos(now - self.flights[i].sent_at));
                    completed += 1;
                    self.send(i, now)?;
                }
                if flags & EPOLLOUT != 0 && self.flights[i].to_write > 0 {
                    self.write_rest(i)?;
                }
            }
        }
    }

    /// Gives the connections back (blocking mode restored, nothing in flight
    /// accounted for).
    pub fn into_streams(self) -> Vec<TcpStream> {
        self.streams
    }

    /// One read; true when the echo is complete.
    fn receive(&mut self, i: usize) -> io::Result<bool> {
        let flight = &mut self.flights[i];
        match (&self.streams[i]).read(&mut self.buf) {
            Ok(0) => Err(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                "the server closed a connection",
            )),
            Ok(n) if n > flight.to_read => Err(io::Error::other(
                "the server echoed more bytes than were sent",
            )),
            Ok(n) => {
                flight.to_read -= n;
                Ok(flight.to_read == 0)
            }
            Err(e)
                if matches!(
                    e.kind(),
                    io::ErrorKind::WouldBlock | io::ErrorKind::Interrupted
                ) =>
            {
                Ok(false)
            }
            Err(e) => Err(e),
        }
    }

    /// Starts a message on connection `i`.
    fn send(&mut self, i: usize, now: Instant) -> io::Result<()> {
        let size = self.msg.len();
        let written = write_some(&self.streams[i], &self.msg)?;
        let flight = &mut self.flights[i];
        flight.sent_at = now;
        flight.to_read = size;
        flight.to_write = size - written;
        if flight.to_write > 0 && !flight.out {
            flight.out = true;
            self.epoll
                .modify(self.streams[i].as_raw_fd(), EPOLLIN | EPOLLOUT, i as u64)?;
        }
        Ok(())
    }

    /// Writes more of a partly written message.
    fn write_rest(&mut self, i: usize) -> io::Result<()> {
        let size = self.msg.len();
        let flight = &mut self.flights[i];
        let from = size - flight.to_write;
        flight.to_write -= write_some(&self.streams[i], &self.msg[from..])?;
        if flight.to_write == 0 && flight.out {
            flight.out = false;
            self.epoll
                .modify(self.streams[i].as_raw_fd(), EPOLLIN, i as u64)?;
        }
        Ok(())
    }
}
