//! `mio`: a plain mio server, as mio's own `tcp_server` example is written:
//! connections registered `READABLE | WRITABLE` (mio is edge-triggered), read and
//! echo until `WouldBlock`, the unwritten rest kept until the next writable event.
//! Connections are kept in a `Vec` indexed by fd, like the raw epoll contenders, so
//! the bookkeeping costs the same.

use std::io::{self, Read};
use std::net::TcpListener;
use std::os::fd::AsRawFd;

use mio::net::TcpStream;
use mio::{Events, Interest, Poll, Token};

use super::event_loop::{Pending, write_some};
use super::{Contender, EVENTS, Family, READ_BUF, ServeOptions};

/// The entry in [`super::CONTENDERS`].
pub const CONTENDER: Contender = Contender {
    name: "mio",
    about: "plain mio (edge-triggered), read until WouldBlock",
    family: Family::Baseline,
    serve,
};

const LISTENER: Token = Token(usize::MAX);

struct Conn {
    stream: TcpStream,
    pending: Pending,
}

fn serve(listener: TcpListener, _: &ServeOptions) -> io::Result<()> {
    listener.set_nonblocking(true)?;
    let mut listener = mio::net::TcpListener::from_std(listener);
    let mut poll = Poll::new()?;
    let mut events = Events::with_capacity(EVENTS);
    poll.registry()
        .register(&mut listener, LISTENER, Interest::READABLE)?;
    let mut conns: Vec<Option<Conn>> = Vec::new();
    let mut buf = vec![0; READ_BUF];
    loop {
        if let Err(e) = poll.poll(&mut events, None) {
            if e.kind() == io::ErrorKind::Interrupted {
                continue;
            }
            return Err(e);
        }
        for event in events.iter() {
            match event.token() {
                LISTENER => loop {
                    match listener.accept() {
                        Ok((mut stream, _)) => {
                            let fd = stream.as_raw_fd() as usize;
                            let setup = stream.set_nodelay(true).and_then(|()| {
                                poll.registry().register(
                                    &mut stream,
                                    Token(fd),
                                    Interest::READABLE | Interest::WRITABLE,
                                )
                            });
                            if let Err(e) = setup {
                                eprintln!("connection setup: {e}");
                                continue;
                            }
                            if conns.len() <= fd {
                                conns.resize_with(fd + 1, || None);
                            }
                            conns[fd] = Some(Conn {
                                stream,
                                pending: Pending::default(),
                            });
                        }
                        Err(e) => {
                            super::event_loop::accept_failed(&e);
                            break;
                        }
                    }
                },
                Token(fd) => {
                    let Some(Some(conn)) = conns.get_mut(fd) else {
                        continue;
                    };
                    if !echo(conn, &mut buf) {
                        if let Some(mut conn) = conns[fd].take() {
                            let _ = poll.registry().deregister(&mut conn.stream);
                        }
                    }
                }
            }
        }
    }
}

/// Flushes, then reads and echoes until `WouldBlock`; false when the connection is
/// finished.
fn echo(conn: &mut Conn, buf: &mut [u8]) -> bool {
    loop {
        if !conn.pending.is_empty() {
            match conn.pending.flush(&conn.stream) {
                Ok(true) => {}
                Ok(false) => return true,
                Err(_) => return false,
            }
        }
        match (&conn.stream).read(buf) {
            Ok(0) => return false,
            Ok(n) => match write_some(&conn.stream, &buf[..n]) {
                Ok(written) if written == n => {}
                Ok(written) => conn.pending.stash(&buf[written..n]),
                Err(_) => return false,
            },
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => return true,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(_) => return false,
        }
    }
}
