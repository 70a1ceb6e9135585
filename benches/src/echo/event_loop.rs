//! The readiness-driven echo loop shared by the hand-written contenders (`epoll-lt`,
//! `epoll-et`, `eventpoll-api`) and the herd workers, generic over the poller so that
//! they differ only in the poller and the trigger mode.
//!
//! # Level-triggered: one read per wakeup
//!
//! The listener and each connection are registered `EPOLLIN`. A report of the
//! listener accepts one connection; a report of a connection reads once. A write
//! the socket only partly takes keeps the rest in [`Pending`] and switches the
//! connection to `EPOLLOUT` (and not `EPOLLIN`, so nothing more is read until the
//! rest is out); once it is flushed the connection goes back to `EPOLLIN`. This is
//! the classic `select`/`poll` style and the reference point BENCHMARKING.md quotes.
//!
//! # Edge-triggered: until `EAGAIN`
//!
//! The listener is registered `EPOLLIN | EPOLLET` and each connection
//! `EPOLLIN | EPOLLOUT | EPOLLET`, once. A report of the listener accepts until
//! `EAGAIN`; a report of a connection first flushes what is pending, then reads and
//! echoes until `EAGAIN`. If a write is partial it stops reading: the rest goes out
//! on the next `EPOLLOUT` edge, after which reading resumes. Stopping before `EAGAIN`
//! is safe only because every report re-enters this loop, whichever bit it carries.
//! This is how mio and tokio drive sockets.

use std::io::{self, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::os::fd::{AsRawFd, RawFd};
use std::time::Duration;

use epitome_runtime::eventpoll::{self, EventPoll};

use super::{EVENTS, READ_BUF};
use crate::sys::{self, Epoll};

/// The token of the listener; connections use their fd.
pub const LISTENER: u64 = u64::MAX;

/// When a connection is reported again.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Trigger {
    /// Level-triggered, one read per wakeup.
    Level,
    /// Edge-triggered, read until `EAGAIN`.
    Edge,
}

const EPOLLIN: u32 = libc::EPOLLIN as u32;
const EPOLLOUT: u32 = libc::EPOLLOUT as u32;
const EPOLLET: u32 = libc::EPOLLET as u32;

/// An epoll-like poller: the kernel's, or epitome's `EventPoll`.
pub trait Poller {
    /// The event record a wait fills.
    type Event: Copy;
    /// An empty event record.
    fn empty_event() -> Self::Event;
    /// The token of a reported event.
    fn token(event: &Self::Event) -> u64;
    /// `EPOLL_CTL_ADD`.
    fn add(&self, fd: RawFd, events: u32, token: u64) -> io::Result<()>;
    /// `EPOLL_CTL_MOD`.
    fn modify(&self, fd: RawFd, events: u32, token: u64) -> io::Result<()>;
    /// `EPOLL_CTL_DEL`.
    fn delete(&self, fd: RawFd) -> io::Result<()>;
    /// Waits without a timeout; an interrupted wait returns 0.
    fn wait(&self, events: &mut [Self::Event]) -> io::Result<usize>;
}

impl Poller for Epoll {
    type Event = libc::epoll_event;

    fn empty_event() -> libc::epoll_event {
        libc::epoll_event { events: 0, u64: 0 }
    }

    fn token(event: &libc::epoll_event) -> u64 {
        // `epoll_event` is packed on x86_64: copy the field out, never borrow it.
        let event = *event;
        event.u64
    }

    fn add(&self, fd: RawFd, events: u32, token: u64) -> io::Result<()> {
        Epoll::add(self, fd, events, token)
    }

    fn modify(&self, fd: RawFd, events: u32, token: u64) -> io::Result<()> {
        Epoll::modify(self, fd, events, token)
    }

    fn delete(&self, fd: RawFd) -> io::Result<()> {
        Epoll::delete(self, fd)
    }

    fn wait(&self, events: &mut [libc::epoll_event]) -> io::Result<usize> {
        Epoll::wait(self, events, -1)
    }
}

impl Poller for EventPoll {
    type Event = eventpoll::Event;

    fn empty_event() -> eventpoll::Event {
        eventpoll::Event::default()
    }

    fn token(event: &eventpoll::Event) -> u64 {
        event.data
    }

    fn add(&self, fd: RawFd, events: u32, token: u64) -> io::Result<()> {
        EventPoll::add(self, fd, eventpoll::Event::new(events, token))
    }

    fn modify(&self, fd: RawFd, events: u32, token: u64) -> io::Result<()> {
        EventPoll::modify(self, fd, eventpoll::Event::new(events, token))
    }

    fn delete(&self, fd: RawFd) -> io::Result<()> {
        EventPoll::delete(self, fd)
    }

    fn wait(&self, events: &mut [eventpoll::Event]) -> io::Result<usize> {
        match EventPoll::wait(self, events, None) {
            Err(e) if e.kind() == io::ErrorKind::Interrupted => Ok(0),
            other => other,
        }
    }
}

/// Serves the echo protocol on `listener` with `poller`, forever.
pub fn serve<P: Poller>(listener: TcpListener, poller: P, trigger: Trigger) -> io::Result<()> {
    listener.set_nonblocking(true)?;
    let listener_events = match trigger {
        Trigger::Level => EPOLLIN,
        Trigger::Edge => EPOLLIN | EPOLLET,
    };
    poller.add(listener.as_raw_fd(), listener_events, LISTENER)?;
    let mut conns = Connections::new(&poller, trigger);
    let mut events = vec![P::empty_event(); EVENTS];
    loop {
        let n = poller.wait(&mut events)?;
        for event in &events[..n] {
            let token = P::token(event);
            if token != LISTENER {
                conns.ready(token as RawFd);
                continue;
            }
            loop {
                match sys::accept_nonblocking(&listener) {
                    Ok(stream) => conns.insert(stream),
                    Err(e) => {
                        accept_failed(&e);
                        break;
                    }
                }
                if trigger == Trigger::Level {
                    break;
                }
            }
        }
    }
}

/// Reports an accept error other than an empty queue, and backs off briefly when
/// out of fds (the listener stays readable, so retrying at once would spin).
pub fn accept_failed(e: &io::Error) {
    match e.kind() {
        io::ErrorKind::WouldBlock | io::ErrorKind::Interrupted => {}
        io::ErrorKind::ConnectionAborted => {}
        _ => {
            eprintln!("accept: {e}");
            if matches!(e.raw_os_error(), Some(libc::EMFILE | libc::ENFILE)) {
                std::thread::sleep(Duration::from_millis(1));
            }
        }
    }
}

/// Bytes read but not yet written back.
#[derive(Debug, Default)]
pub struct Pending {
    buf: Vec<u8>,
    sent: usize,
}

impl Pending {
    /// Whether everything has been written.
    pub fn is_empty(&self) -> bool {
        self.sent == self.buf.len()
    }

    /// Keeps `rest` to write later.
    pub fn stash(&mut self, rest: &[u8]) {
        self.buf.extend_from_slice(rest);
    }

    /// Writes as much as `w` takes; `Ok(true)` when nothing is left.
    pub fn flush(&mut self, w: impl Write) -> io::Result<bool> {
        self.sent += write_some(w, &self.buf[self.sent..])?;
        if self.is_empty() {
            self.buf.clear();
            self.sent = 0;
            return Ok(true);
        }
        Ok(false)
    }
}

/// Writes `data` until done or the socket is full; returns how much was written.
pub fn write_some(mut w: impl Write, data: &[u8]) -> io::Result<usize> {
    let mut done = 0;
    while done < data.len() {
        match w.write(&data[done..]) {
            Ok(0) => return Err(io::ErrorKind::WriteZero.into()),
            Ok(n) => done += n,
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(done)
}

/// One connection's state.
#[derive(Debug)]
struct Conn {
    stream: TcpStream,
    pending: Pending,
}

/// The connections of one event loop, indexed by fd, and its read buffer.
#[derive(Debug)]
pub struct Connections<'p, P> {
    poller: &'p P,
    trigger: Trigger,
    conns: Vec<Option<Conn>>,
    buf: Box<[u8]>,
    len: usize,
}

/// What a step on a connection decided.
enum Next {
    /// Keep it.
    Keep,
    /// Close it: end of stream, or an error.
    Close,
}

impl<'p, P: Poller> Connections<'p, P> {
    /// No connections yet.
    pub fn new(poller: &'p P, trigger: Trigger) -> Connections<'p, P> {
        Connections {
            poller,
            trigger,
            conns: Vec::new(),
            buf: vec![0; READ_BUF].into_boxed_slice(),
            len: 0,
        }
    }

    /// How many connections are open.
    pub fn len(&self) -> usize {
        self.len
    }

    /// Whether no connection is open.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Takes a freshly accepted non-blocking connection: `TCP_NODELAY`, registered.
    /// A connection that cannot be set up is dropped, with a message.
    pub fn insert(&mut self, stream: TcpStream) {
        let fd = stream.as_raw_fd();
        let events = match self.trigger {
            Trigger::Level => EPOLLIN,
            Trigger::Edge => EPOLLIN | EPOLLOUT | EPOLLET,
        };
        let setup = stream
            .set_nodelay(true)
            .and_then(|()| self.poller.add(fd, events, fd as u64));
        if let Err(e) = setup {
            eprintln!("connection setup: {e}");
            return;
        }
        let index = fd as usize;
        if self.conns.len() <= index {
            self.conns.resize_with(index + 1, || None);
        }
        self.conns[index] = Some(Conn {
            stream,
            pending: Pending::default(),
        });
        self.len += 1;
    }

    /// Handles a report for connection `fd`.
    pub fn ready(&mut self, fd: RawFd) {
        let Some(Some(conn)) = self.conns.get_mut(fd as usize) else {
            return;
        };
        let next = match self.trigger {
            Trigger::Level => level_step(self.poller, conn, &mut self.buf),
            Trigger::Edge => edge_step(conn, &mut self.buf),
        };
        if let Next::Close = next {
            // Delete before close: EventPoll's contract (and harmless for epoll).
            let _ = self.poller.delete(fd);
            self.conns[fd as usize] = None;
            self.len -= 1;
        }
    }
}

/// Level-triggered: flush if writing, else one read and its echo.
fn level_step<P: Poller>(poller: &P, conn: &mut Conn, buf: &mut [u8]) -> Next {
    let fd = conn.stream.as_raw_fd();
    if !conn.pending.is_empty() {
        return match conn.pending.flush(&conn.stream) {
            Ok(true) => match poller.modify(fd, EPOLLIN, fd as u64) {
                Ok(()) => Next::Keep,
                Err(_) => Next::Close,
            },
            Ok(false) => Next::Keep,
            Err(_) => Next::Close,
        };
    }
    match (&conn.stream).read(buf) {
        Ok(0) => Next::Close,
        Ok(n) => match write_some(&conn.stream, &buf[..n]) {
            Ok(written) if written == n => Next::Keep,
            Ok(written) => {
                conn.pending.stash(&buf[written..n]);
                match poller.modify(fd, EPOLLOUT, fd as u64) {
                    Ok(()) => Next::Keep,
                    Err(_) => Next::Close,
                }
            }
            Err(_) => Next::Close,
        },
        Err(e)
            if matches!(
                e.kind(),
                io::ErrorKind::WouldBlock | io::ErrorKind::Interrupted
            ) =>
        {
            Next::Keep
        }
        Err(_) => Next::Close,
    }
}

/// Edge-triggered: flush, then read and echo until `EAGAIN` or a full socket.
fn edge_step(conn: &mut Conn, buf: &mut [u8]) -> Next {
    loop {
        if !conn.pending.is_empty() {
            match conn.pending.flush(&conn.stream) {
                Ok(true) => {}
                // The rest goes out on the next EPOLLOUT edge.
                Ok(false) => return Next::Keep,
                Err(_) => return Next::Close,
            }
        }
        match (&conn.stream).read(buf) {
            Ok(0) => return Next::Close,
            Ok(n) => match write_some(&conn.stream, &buf[..n]) {
                Ok(written) if written == n => {}
                Ok(written) => conn.pending.stash(&buf[written..n]),
                Err(_) => return Next::Close,
            },
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Next::Keep,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(_) => return Next::Close,
        }
    }
}
