//! The open-loop driver, after wrk2: requests are scheduled at a constant rate,
//! whatever the server does, and each one's latency is measured from the time it was
//! *scheduled* to be sent, not from when it was sent. A stalled server therefore
//! shows up in every request scheduled during the stall (coordinated omission
//! corrected), instead of in the single request that was waiting.
//!
//! Request `k` is due at `t0 + k / rate` and goes out on the first idle connection
//! (one message in flight per connection, like wrk2 without pipelining); when every
//! connection is busy, due requests wait, and the wait is part of their latency. The
//! thread polls without blocking while a request is due within 2 ms, since
//! `epoll_wait` sleeps in milliseconds and the interval between requests is a few
//! microseconds.
//!
//! Requests scheduled during the warm-up are sent and awaited but not recorded.
//! After the window nothing new is scheduled; requests of the window that are still
//! unsent or unanswered are waited for up to [`DRAIN`], and any left after that are
//! recorded with the time they had waited (a lower bound) and counted as incomplete.

use std::collections::VecDeque;
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

/// How long requests of the window are waited for after it ends.
pub const DRAIN: Duration = Duration::from_secs(1);
/// How long after [`DRAIN`] the connections are given to fall idle (unrecorded)
/// before they are declared unusable.
const SETTLE: Duration = Duration::from_secs(5);
/// Poll without blocking when the next request is due sooner than this.
const SPIN: Duration = Duration::from_millis(2);

#[derive(Clone, Copy, Debug)]
struct Flight {
    /// Index of the request (its schedule slot).
    k: u64,
    /// When it was due.
    intended: Instant,
    to_write: usize,
    to_read: usize,
    out: bool,
}

/// What one run at a fixed rate did.
#[derive(Clone, Copy, Debug)]
pub struct OpenWindow {
    /// Rate asked for, requests per second.
    pub rate: f64,
    /// Requests scheduled in the window.
    pub scheduled: u64,
    /// Of those, answered within the window or the drain.
    pub completed: u64,
    /// Of those, not answered by the end of the drain (recorded as a lower bound).
    pub incomplete: u64,
    /// Completed requests per second, over the window or until the last one
    /// completed if later.
    pub achieved: f64,
}

/// Connections driven open-loop; idle between runs.
#[derive(Debug)]
pub struct OpenLoop {
    epoll: Epoll,
    streams: Vec<TcpStream>,
    flights: Vec<Option<Flight>>,
    msg: Vec<u8>,
    buf: Vec<u8>,
    events: Vec<libc::epoll_event>,
}

impl OpenLoop {
    /// Takes connections opened by [`super::connect`], idle, for `size`-byte
    /// messages.
    pub fn new(streams: Vec<TcpStream>, size: usize) -> io::Result<OpenLoop> {
        let epoll = Epoll::new()?;
        for (i, stream) in streams.iter().enumerate() {
            stream.set_nonblocking(true)?;
            epoll.add(stream.as_raw_fd(), EPOLLIN, i as u64)?;
        }
        Ok(OpenLoop {
            epoll,
            flights: vec![None; streams.len()],
            streams,
            msg: echo::message(size),
            buf: vec![0; CLIENT_READ_BUF],
            events: sys::epoll_events(EVENTS),
        })
    }

    /// Offers `rate` requests per second for `warmup` (unrecorded) and then
    /// `window`, recording the latency of the window's requests in `latency` (ns).
    pub fn run(
        &mut self,
        rate: f64,
        warmup: Duration,
        window: Duration,
        latency: &mut Histogram<u64>,
    ) -> io::Result<OpenWindow> {
        if !(rate.is_finite() && rate > 0.0) {
            return Err(io::Error::other(format!("bad request rate {rate}")));
        }
        let period_ns = 1e9 / rate;
        let slots = |d: Duration| (d.as_nanos() as f64 / period_ns).ceil() as u64;
        let first_recorded = slots(warmup);
        let end = slots(warmup + window);
        let t0 = Instant::now();
        let due = |k: u64| t0 + Duration::from_nanos((k as f64 * period_ns) as u64);
        let window_start = t0 + warmup;
        let drain_deadline = window_start + window + DRAIN;

        let mut idle: VecDeque<usize> = (0..self.streams.len()).collect();
        let mut next = 0u64;
        let mut completed = 0u64;
        let mut last_completion = window_start;
        loop {
            let now = Instant::now();
            while next < end && due(next) <= now {
                let Some(i) = idle.pop_front() else { break };
                self.send(i, next, due(next))?;
                next += 1;
            }
            if next == end && idle.len() == self.streams.len() {
                break;
            }
            if now >= drain_deadline {
                break;
            }
            let timeout = if next < end && !idle.is_empty() {
                let wait = due(next).saturating_duration_since(now);
                if wait > SPIN {
                    (wait - SPIN).as_millis() as i32
                } else {
                    0
                }
            } else {
                0
            };
            let n = self.epoll.wait(&mut self.events, timeout)?;
            for e in 0..n {
                let event = self.events[e];
                let (flags, i) = (event.events, event.u64 as usize);
                if flags & (EPOLLIN | EPOLLERR | EPOLLHUP) != 0 && self.receive(i)? {
                    let now = Instant::now();
                    if let Some(flight) = self.flights[i].take() {
                        if flight.k >= first_recorded {
                            latency.saturating_record(nanos(now - flight.intended));
                            completed += 1;
                            last_completion = now;
                        }
                    }
                    idle.push_back(i);
                }
                if flags & EPOLLOUT != 0 {
                    self.write_rest(i)?;
                }
            }
        }

        // What the window left: unsent requests and unanswered ones, recorded with
        // the time they have waited so far.
        let now = Instant::now();
        let unsent = (first_recorded.max(next)..end).map(due);
        let unanswered = self
            .flights
            .iter()
            .flatten()
            .filter(|f| f.k >= first_recorded)
            .map(|f| f.intended);
        let mut incomplete = 0;
        for intended in unsent.chain(unanswered) {
            latency.saturating_record(nanos(now.saturating_duration_since(intended)));
            incomplete += 1;
        }
        if incomplete > 0 {
            self.settle()?;
        }
        let span = (last_completion - window_start).max(window);
        Ok(OpenWindow {
            rate,
            scheduled: end - first_recorded,
            completed,
            incomplete,
            achieved: completed as f64 / span.as_secs_f64(),
        })
    }

    /// Gives the connections back.
    pub fn into_streams(self) -> Vec<TcpStream> {
        self.streams
    }

    /// Waits, unrecorded, for the messages still in flight.
    fn settle(&mut self) -> io::Result<()> {
        let deadline = Instant::now() + SETTLE;
        while self.flights.iter().any(Option::is_some) {
            if Instant::now() >= deadline {
                return Err(io::Error::other(
                    "the server left echoes unanswered for seconds",
                ));
            }
            let n = self.epoll.wait(&mut self.events, 10)?;
            for e in 0..n {
                let event = self.events[e];
                let (flags, i) = (event.events, event.u64 as usize);
                if flags & (EPOLLIN | EPOLLERR | EPOLLHUP) != 0 && self.receive(i)? {
                    self.flights[i] = None;
                }
                if flags & EPOLLOUT != 0 {
                    self.write_rest(i)?;
                }
            }
        }
        Ok(())
    }

    /// One read; true when the echo is complete.
    fn receive(&mut self, i: usize) -> io::Result<bool> {
        let to_read = self.flights[i].map_or(0, |f| f.to_read);
        match (&self.streams[i]).read(&mut self.buf) {
            Ok(0) => Err(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                "the server closed a connection",
            )),
            Ok(n) if n > to_read => Err(io::Error::other(
                "the server echoed more bytes than were sent",
            )),
            Ok(n) => {
                let flight = self.flights[i]
                    .as_mut()
                    .expect("bytes arrived, so a flight");
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

    fn send(&mut self, i: usize, k: u64, intended: Instant) -> io::Result<()> {
        let size = self.msg.len();
        let written = write_some(&self.streams[i], &self.msg)?;
        let mut flight = Flight {
            k,
            intended,
            to_write: size - written,
            to_read: size,
            out: false,
        };
        if flight.to_write > 0 {
            flight.out = true;
            self.epoll
                .modify(self.streams[i].as_raw_fd(), EPOLLIN | EPOLLOUT, i as u64)?;
        }
        self.flights[i] = Some(flight);
        Ok(())
    }

    fn write_rest(&mut self, i: usize) -> io::Result<()> {
        let size = self.msg.len();
        let Some(flight) = self.flights[i].as_mut() else {
            return Ok(());
        };
        if flight.to_write == 0 {
            return Ok(());
        }
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
