//! The clients: blocking threads on the kernel's sockets, each connecting, echoing
//! seeded messages, checking every byte, and ending each connection one of the
//! [`Ending`] ways.

use std::io::{self, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpStream};
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::thread;
use std::time::Duration;

use super::{IO_TIMEOUT, MAX_MESSAGE};

/// Errors printed in full; later ones are only counted.
const ERRORS_PRINTED: u64 = 10;

/// What the clients, the monitor and the server's stderr reader share.
///
/// The counters are statistics (Relaxed); `stop`, `paused` and `active` order the
/// phases of the run (SeqCst).
#[derive(Default)]
pub(super) struct Shared {
    /// Set at the end of the run or at the first error; clients finish their
    /// connection and return.
    pub(super) stop: AtomicBool,
    /// Set by the monitor to pause the clients between connections; `active` counts
    /// the clients inside one. (Both SeqCst: a client raises `active` then reads
    /// `paused`, the monitor sets `paused` then reads `active`, so one of them sees
    /// the other.)
    pub(super) paused: AtomicBool,
    pub(super) active: AtomicUsize,
    /// Connections ended as planned (any [`Ending`], resets included).
    pub(super) connections: AtomicU64,
    /// Connections ended with a reset.
    pub(super) resets: AtomicU64,
    /// Connections ended with a half-close (and the server's close seen).
    pub(super) half_closes: AtomicU64,
    /// Echoed bytes compared with what was sent.
    pub(super) bytes_checked: AtomicU64,
    pub(super) errors: AtomicU64,
    /// The first error's message, for the summary.
    pub(super) first_error: Mutex<Option<String>>,
}

impl Shared {
    /// Counts an error, prints the first few, and stops the run.
    pub(super) fn error(&self, message: String) {
        let n = self.errors.fetch_add(1, Ordering::Relaxed);
        if n < ERRORS_PRINTED {
            eprintln!("soak: error: {message}");
        }
        self.first_error
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get_or_insert(message);
        self.stop.store(true, Ordering::SeqCst);
    }
}

/// splitmix64: the message lengths, the endings and the message bytes.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }

    fn fill(&mut self, buf: &mut [u8]) {
        for chunk in buf.chunks_mut(8) {
            chunk.copy_from_slice(&self.next().to_le_bytes()[..chunk.len()]);
        }
    }

    /// 1 B to [`MAX_MESSAGE`], log-uniform: as many 10-byte messages as 40 KiB ones.
    fn message_len(&mut self) -> usize {
        let bits = self.below(u64::from(MAX_MESSAGE.ilog2()) + 1);
        1 + self.below(1 << bits) as usize
    }
}

/// How a client ends a connection after its messages.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Ending {
    /// Close after the last echo.
    Close,
    /// Shut down writing after the last echo; the server must then close.
    HalfCloseAfter,
    /// Shut down writing right after the last message, before its echo: the server
    /// must echo all of it, then close.
    HalfCloseBefore,
    /// Reset partway through writing the last message.
    ResetWriting,
    /// Reset partway through reading the last echo.
    ResetReading,
}

impl Ending {
    fn pick(rng: &mut Rng) -> Ending {
        match rng.below(100) {
            0..50 => Ending::Close,
            50..70 => Ending::HalfCloseAfter,
            70..85 => Ending::HalfCloseBefore,
            85..95 => Ending::ResetWriting,
            _ => Ending::ResetReading,
        }
    }
}

/// One client thread: connections until the run stops, paused between two while
/// `paused` is set.
pub(super) fn client(id: usize, seed: u64, addr: SocketAddr, shared: &Shared) {
    let mut rng = Rng(seed ^ (id as u64).wrapping_mul(0xd6e8_feb8_6659_fd93));
    let mut sent = vec![0; MAX_MESSAGE];
    let mut back = vec![0; MAX_MESSAGE];
    while !shared.stop.load(Ordering::SeqCst) {
        if shared.paused.load(Ordering::SeqCst) {
            thread::sleep(Duration::from_millis(5));
            continue;
        }
        shared.active.fetch_add(1, Ordering::SeqCst);
        if !shared.paused.load(Ordering::SeqCst) {
            match connection(addr, &mut rng, &mut sent, &mut back, shared) {
                Ok(()) => {
                    shared.connections.fetch_add(1, Ordering::Relaxed);
                }
                Err(e) => shared.error(format!("client {id}: {e}")),
            }
        }
        shared.active.fetch_sub(1, Ordering::SeqCst);
    }
}

/// One connection: its messages, each echo checked, and its ending.
fn connection(
    addr: SocketAddr,
    rng: &mut Rng,
    sent: &mut [u8],
    back: &mut [u8],
    shared: &Shared,
) -> Result<(), String> {
    let mut stream =
        TcpStream::connect_timeout(&addr, IO_TIMEOUT).map_err(|e| format!("connect: {e}"))?;
    let setup = |s: &TcpStream| -> io::Result<()> {
        s.set_nodelay(true)?;
        s.set_read_timeout(Some(IO_TIMEOUT))?;
        s.set_write_timeout(Some(IO_TIMEOUT))
    };
    setup(&stream).map_err(|e| format!("socket options: {e}"))?;
    let ending = Ending::pick(rng);
    let messages = 1 + rng.below(8);
    for i in 0..messages {
        let last = i + 1 == messages;
        let len = rng.message_len();
        let (sent, back) = (&mut sent[..len], &mut back[..len]);
        rng.fill(sent);
        if last && ending == Ending::ResetWriting {
            let cut = rng.below(len as u64) as usize;
            write_all(&mut stream, &sent[..cut])?;
            shared.resets.fetch_add(1, Ordering::Relaxed);
            return reset(stream);
        }
        write_all(&mut stream, sent)?;
        if last && ending == Ending::HalfCloseBefore {
            stream
                .shutdown(Shutdown::Write)
                .map_err(|e| format!("shutdown: {e}"))?;
        }
        let want = if last && ending == Ending::ResetReading {
            rng.below(len as u64) as usize
        } else {
            len
        };
        read_echo(&mut stream, &sent[..want], &mut back[..want])?;
        shared
            .bytes_checked
            .fetch_add(want as u64, Ordering::Relaxed);
        if want < len {
            shared.resets.fetch_add(1, Ordering::Relaxed);
            return reset(stream);
        }
    }
    match ending {
        Ending::Close => {}
        Ending::HalfCloseAfter | Ending::HalfCloseBefore => {
            if ending == Ending::HalfCloseAfter {
                stream
                    .shutdown(Shutdown::Write)
                    .map_err(|e| format!("shutdown: {e}"))?;
            }
            let mut extra = [0; 1];
            match stream.read(&mut extra) {
                Ok(0) => {}
                Ok(_) => return Err("bytes after the last echo".into()),
                Err(e) => return Err(format!("waiting for the server to close: {e}")),
            }
            shared.half_closes.fetch_add(1, Ordering::Relaxed);
        }
        Ending::ResetWriting | Ending::ResetReading => unreachable!("returned above"),
    }
    Ok(())
}

fn write_all(stream: &mut TcpStream, buf: &[u8]) -> Result<(), String> {
    stream
        .write_all(buf)
        .map_err(|e| format!("write of {} bytes: {e}", buf.len()))
}

/// Reads `back.len()` bytes and compares them with `sent`.
fn read_echo(stream: &mut TcpStream, sent: &[u8], back: &mut [u8]) -> Result<(), String> {
    let mut done = 0;
    while done < back.len() {
        match stream.read(&mut back[done..]) {
            Ok(0) => {
                return Err(format!(
                    "the server closed after {done} of {} echoed bytes",
                    back.len()
                ));
            }
            Ok(n) => done += n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(format!("read at {done} of {}: {e}", back.len())),
        }
    }
    match sent.iter().zip(back.iter()).position(|(a, b)| a != b) {
        None => Ok(()),
        Some(at) => Err(format!(
            "echo differs at byte {at} of {}: sent {:#04x}, got {:#04x}",
            sent.len(),
            sent[at],
            back[at]
        )),
    }
}

/// Closes with `SO_LINGER` 0: the kernel sends a reset, not a FIN.
fn reset(stream: TcpStream) -> Result<(), String> {
    epitome_benches::sys::reset_on_close(&stream).map_err(|e| format!("SO_LINGER: {e}"))
}
