//! `blocking`: a thread per connection with blocking std I/O, the model before
//! readiness APIs. Each thread reads into its own [`READ_BUF`] buffer and writes
//! back with `write_all`; the accepting thread spawns threads with std's default
//! stack size (2 MiB of address space, of which only the touched pages count in
//! RSS).

use std::io::{self, Read, Write};
use std::net::{TcpListener, TcpStream};

use super::{Contender, Family, READ_BUF, ServeOptions};

/// The entry in [`super::CONTENDERS`].
pub const CONTENDER: Contender = Contender {
    name: "blocking",
    about: "thread per connection, blocking std I/O",
    family: Family::Baseline,
    serve,
};

fn serve(listener: TcpListener, _: &ServeOptions) -> io::Result<()> {
    listener.set_nonblocking(false)?;
    for stream in listener.incoming() {
        let stream = match stream {
            Ok(stream) => stream,
            Err(e) => {
                super::event_loop::accept_failed(&e);
                continue;
            }
        };
        if let Err(e) = stream.set_nodelay(true) {
            eprintln!("connection setup: {e}");
            continue;
        }
        if let Err(e) = std::thread::Builder::new().spawn(move || echo(stream)) {
            eprintln!("spawning a connection thread: {e}");
        }
    }
    Ok(())
}

fn echo(mut stream: TcpStream) {
    let mut buf = vec![0; READ_BUF];
    loop {
        match stream.read(&mut buf) {
            Ok(0) => return,
            Ok(n) => {
                if stream.write_all(&buf[..n]).is_err() {
                    return;
                }
            }
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(_) => return,
        }
    }
}
