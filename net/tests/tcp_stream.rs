//! `TcpStream`: every public method, on both runtime flavours, and its behaviour
//! under faults: end of stream, resets, writes to a closed peer, signals, cancelled
//! operations, drops and half-closes.

mod util;

use std::io::{self, IoSlice, IoSliceMut};
use std::net::{Shutdown, SocketAddr};
use std::os::fd::{AsFd, AsRawFd};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, Once};
use std::time::Duration;

use epitome_net::tcp::{OwnedReadHalf, OwnedWriteHalf};
use epitome_net::{TcpListener, TcpSocket, TcpStream};
use epitome_runtime::runtime::Builder;
use epitome_runtime::{spawn, time};
use futures_util::future::join;
use util::{FdId, PENDING, assert_pending, each_flavor, err_kind, within};

#[test]
fn connect_write_read_and_addresses() {
    each_flavor("connect_write_read_and_addresses", || async {
        let l = util::listener().await;
        let addr = l.local_addr().unwrap();
        let (c, a) = util::tcp_pair_on(&l, addr).await;
        assert_eq!(c.peer_addr().unwrap(), addr);
        assert_eq!(a.local_addr().unwrap(), addr);
        assert_eq!(a.peer_addr().unwrap(), c.local_addr().unwrap());

        let data = util::pattern(1, 256 * 1024);
        let mut got = vec![0; data.len()];
        let (w, r) = join(c.write_all(&data), a.read_exact(&mut got)).await;
        w.unwrap();
        assert_eq!(r.unwrap(), data.len());
        assert!(got == data, "bytes differ");

        // `write` and `read` report how much they moved; an empty buffer is Ok(0).
        assert_eq!(a.write(b"pong").await.unwrap(), 4);
        let mut buf = [0; 16];
        let n = c.read(&mut buf).await.unwrap();
        assert_eq!(&buf[..n], b"pong");
        assert_eq!(c.read(&mut []).await.unwrap(), 0);
        assert_eq!(c.write(&[]).await.unwrap(), 0);
    });
}

#[test]
fn vectored_read_and_write() {
    each_flavor("vectored_read_and_write", || async {
        let (c, a) = util::tcp_pair().await;
        let n = c
            .write_vectored(&[
                IoSlice::new(b"abc"),
                IoSlice::new(b""),
                IoSlice::new(b"defg"),
            ])
            .await
            .unwrap();
        assert_eq!(n, 7);
        let (mut x, mut y) = ([0; 2], [0; 5]);
        let mut got = 0;
        let mut all = Vec::new();
        while got < 7 {
            let mut bufs = [IoSliceMut::new(&mut x), IoSliceMut::new(&mut y)];
            let n = a.read_vectored(&mut bufs).await.unwrap();
            assert!(n > 0);
            all.extend_from_slice(&x[..n.min(2)]);
            if n > 2 {
                all.extend_from_slice(&y[..n - 2]);
            }
            got += n;
        }
        assert_eq!(all, b"abcdefg");
        // Empty buffers: Ok(0) at once.
        assert_eq!(a.read_vectored(&mut []).await.unwrap(), 0);
        assert_eq!(a.write_vectored(&[]).await.unwrap(), 0);
    });
}

#[test]
fn peek_leaves_the_data() {
    each_flavor("peek_leaves_the_data", || async {
        let (c, a) = util::tcp_pair().await;
        c.write_all(b"hello").await.unwrap();
        let mut buf = [0; 5];
        // Peek until all five bytes are there (they may arrive in pieces).
        loop {
            let n = a.peek(&mut buf).await.unwrap();
            assert_eq!(&buf[..n], &b"hello"[..n]);
            if n == 5 {
                break;
            }
            time::sleep(Duration::from_millis(1)).await;
        }
        let mut got = [0; 5];
        assert_eq!(a.read_exact(&mut got).await.unwrap(), 5);
        assert_eq!(&got, b"hello");
    });
}

#[test]
fn try_read_try_write_readable_writable() {
    each_flavor("try_read_try_write_readable_writable", || async {
        let (c, a) = util::tcp_pair().await;
        let mut buf = [0; 64];
        // Nothing sent: no data, and `readable` waits.
        assert_eq!(err_kind(a.try_read(&mut buf)), io::ErrorKind::WouldBlock);
        assert_pending("readable with nothing sent", a.readable()).await;
        // A fresh connection is writable.
        within("writable", c.writable()).await.unwrap();
        assert_eq!(c.try_write(b"xyz").unwrap(), 3);
        within("readable", a.readable()).await.unwrap();
        assert_eq!(a.try_read(&mut buf).unwrap(), 3);
        assert_eq!(&buf[..3], b"xyz");
        assert_eq!(err_kind(a.try_read(&mut buf)), io::ErrorKind::WouldBlock);

        // Fill the send path with try_write until it would block; then `writable` waits
        // until the peer reads.
        let chunk = vec![7u8; 64 * 1024];
        let mut sent = 0usize;
        loop {
            match c.try_write(&chunk) {
                Ok(n) => sent += n,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                Err(e) => panic!("try_write: {e}"),
            }
        }
        assert!(sent > 0);
        assert_pending("writable with a full send buffer", c.writable()).await;
        let drain = async {
            let mut got = 0;
            let mut buf = vec![0; 64 * 1024];
            while got < sent {
                got += a.read(&mut buf).await.unwrap();
            }
        };
        let (_, w) = join(drain, within("writable after the peer read", c.writable())).await;
        w.unwrap();
    });
}

#[test]
fn socket_options() {
    each_flavor("socket_options", || async {
        let (c, _a) = util::tcp_pair().await;
        c.set_nodelay(true).unwrap();
        assert!(c.nodelay().unwrap());
        c.set_nodelay(false).unwrap();
        assert!(!c.nodelay().unwrap());
        c.set_linger(Some(Duration::from_secs(3))).unwrap();
        assert_eq!(c.linger().unwrap(), Some(Duration::from_secs(3)));
        c.set_linger(None).unwrap();
        assert_eq!(c.linger().unwrap(), None);
        c.set_ttl(42).unwrap();
        assert_eq!(c.ttl().unwrap(), 42);
        assert!(c.take_error().unwrap().is_none());
    });
}

#[test]
fn std_conversions_fd_and_debug() {
    each_flavor("std_conversions_fd_and_debug", || async {
        let l = util::listener().await;
        let addr = l.local_addr().unwrap();
        // A blocking std connect completes into the listen queue without an accept.
        let std_c = std::net::TcpStream::connect(addr).unwrap();
        let (a, _) = within("accept", l.accept()).await.unwrap();
        let c = TcpStream::from_std(std_c).unwrap();
        let fd = c.as_raw_fd();
        assert_eq!(c.as_fd().as_raw_fd(), fd);
        let dbg = format!("{c:?}");
        assert!(
            dbg.contains("TcpStream") && dbg.contains(&addr.to_string()),
            "{dbg}"
        );

        c.write_all(b"from std").await.unwrap();
        let mut buf = [0; 8];
        a.read_exact(&mut buf).await.unwrap();
        assert_eq!(&buf, b"from std");

        // Back to std: still non-blocking, still connected.
        let std_c = c.into_std().unwrap();
        assert_eq!(std_c.as_raw_fd(), fd);
        let mut s = &std_c;
        assert_eq!(
            err_kind(io::Read::read(&mut s, &mut buf)),
            io::ErrorKind::WouldBlock
        );
        // And back again through TryFrom.
        let c = TcpStream::try_from(std_c).unwrap();
        a.write_all(b"again").await.unwrap();
        let mut buf = [0; 5];
        c.read_exact(&mut buf).await.unwrap();
        assert_eq!(&buf, b"again");
    });
}

#[test]
fn connect_refused_and_each_address_in_turn() {
    each_flavor("connect_refused_and_each_address_in_turn", || async {
        // A port nobody listens on: bind one, note it, close it.
        let closed: SocketAddr = {
            let l = util::listener().await;
            l.local_addr().unwrap()
        };
        let e = TcpStream::connect(closed).await.unwrap_err();
        assert_eq!(e.kind(), io::ErrorKind::ConnectionRefused, "{e}");

        // The first address fails, the second works.
        let l = util::listener().await;
        let good = l.local_addr().unwrap();
        let (c, a) = join(TcpStream::connect(&[closed, good][..]), l.accept()).await;
        let c = c.unwrap();
        assert_eq!(c.peer_addr().unwrap(), good);
        drop(a.unwrap());
        // All fail: the last error.
        let e = TcpStream::connect([closed, closed]).await.unwrap_err();
        assert_eq!(e.kind(), io::ErrorKind::ConnectionRefused);
    });
}

// ---------------------------------------------------------------------------------
// Faults.

#[test]
fn end_of_stream_is_ok_zero() {
    each_flavor("end_of_stream_is_ok_zero", || async {
        let (c, a) = util::tcp_pair().await;
        // A read already waiting when the peer closes is woken with Ok(0).
        let a = Arc::new(a);
        let reader = {
            let a = a.clone();
            spawn(async move {
                let mut buf = [0; 16];
                a.read(&mut buf).await
            })
        };
        time::sleep(Duration::from_millis(10)).await;
        c.write_all(b"last").await.unwrap();
        drop(c);
        let first = within("reader", reader).await.unwrap().unwrap();
        let mut rest = Vec::new();
        let mut buf = [0; 16];
        loop {
            let n = a.read(&mut buf).await.unwrap();
            if n == 0 {
                break;
            }
            rest.extend_from_slice(&buf[..n]);
        }
        assert_eq!(first + rest.len(), 4);
        // End of stream stays end of stream; read_exact reports UnexpectedEof.
        assert_eq!(a.read(&mut buf).await.unwrap(), 0);
        assert_eq!(a.read(&mut buf).await.unwrap(), 0);
        assert_eq!(
            err_kind(a.read_exact(&mut buf).await),
            io::ErrorKind::UnexpectedEof
        );
        within("readable at end of stream", a.readable())
            .await
            .unwrap();
    });
}

#[test]
fn reset_by_peer_is_connection_reset() {
    each_flavor("reset_by_peer_is_connection_reset", || async {
        let (c, a) = util::tcp_pair().await;
        let a = Arc::new(a);
        // Mid-stream: data flows both ways, and the server is waiting in a read.
        a.write_all(&util::pattern(2, 100_000)).await.unwrap();
        c.write_all(b"some request bytes").await.unwrap();
        let mut got = [0; 18];
        a.read_exact(&mut got).await.unwrap();
        let reader = {
            let a = a.clone();
            spawn(async move {
                let mut buf = [0; 1024];
                loop {
                    match a.read(&mut buf).await {
                        Ok(0) => return Ok(0),
                        Ok(_) => {}
                        Err(e) => return Err(e),
                    }
                }
            })
        };
        time::sleep(Duration::from_millis(10)).await;
        // SO_LINGER 0, then close: an RST instead of a FIN.
        c.set_linger(Some(Duration::ZERO)).unwrap();
        drop(c);
        let e = within("reader", reader).await.unwrap().unwrap_err();
        assert_eq!(e.kind(), io::ErrorKind::ConnectionReset, "{e}");
        // The connection is gone for writing too.
        let e = a.write_all(b"anyone there?").await.unwrap_err();
        assert!(
            matches!(
                e.kind(),
                io::ErrorKind::BrokenPipe | io::ErrorKind::ConnectionReset
            ),
            "{e}"
        );
    });
}

#[test]
fn write_after_peer_closed_is_broken_pipe() {
    each_flavor("write_after_peer_closed_is_broken_pipe", || async {
        let (c, a) = util::tcp_pair().await;
        drop(c);
        // The first writes may be accepted (the peer answers them with an RST); then
        // EPIPE, never a SIGPIPE.
        let chunk = [1u8; 4096];
        let mut tries = 0;
        let e = loop {
            match a.write(&chunk).await {
                Ok(_) => {
                    tries += 1;
                    assert!(tries < 100_000, "writes to a closed peer kept succeeding");
                    time::sleep(Duration::from_millis(1)).await;
                }
                Err(e) => break e,
            }
        };
        assert_eq!(e.kind(), io::ErrorKind::BrokenPipe, "{e}");
        assert_eq!(
            err_kind(a.write_all(&chunk).await),
            io::ErrorKind::BrokenPipe
        );
        // Reading still reports the end of stream.
        let mut buf = [0; 8];
        assert_eq!(a.read(&mut buf).await.unwrap(), 0);
    });
}

#[test]
fn half_close_in_both_directions() {
    each_flavor("half_close_in_both_directions", || async {
        for client_first in [true, false] {
            let (c, a) = util::tcp_pair().await;
            let (closer, other) = if client_first { (&c, &a) } else { (&a, &c) };
            closer.write_all(b"request").await.unwrap();
            closer.shutdown(Shutdown::Write).await.unwrap();
            // The other side reads the data, then end of stream ...
            let mut got = Vec::new();
            let mut buf = [0; 64];
            loop {
                let n = other.read(&mut buf).await.unwrap();
                if n == 0 {
                    break;
                }
                got.extend_from_slice(&buf[..n]);
            }
            assert_eq!(got, b"request");
            // ... and can still answer, which the closer reads in full.
            let reply = util::pattern(3, 200_000);
            let (w, r) = join(
                async {
                    other.write_all(&reply).await.unwrap();
                    other.shutdown(Shutdown::Write).await.unwrap();
                },
                async {
                    let mut got = Vec::new();
                    let mut buf = vec![0; 8192];
                    loop {
                        let n = closer.read(&mut buf).await.unwrap();
                        if n == 0 {
                            return got;
                        }
                        got.extend_from_slice(&buf[..n]);
                    }
                },
            )
            .await;
            let () = w;
            assert!(r == reply, "reply differs");
            // Shutting down twice, or reading after shutdown(Read), is harmless.
            closer.shutdown(Shutdown::Write).await.unwrap();
            closer.shutdown(Shutdown::Read).await.unwrap();
            assert_eq!(closer.read(&mut buf).await.unwrap(), 0);
        }
    });
}

/// Counts SIGUSR1 deliveries; the handler does nothing else.
static SIGNALS: AtomicU64 = AtomicU64::new(0);

extern "C" fn on_sigusr1(_: libc::c_int) {
    SIGNALS.fetch_add(1, Ordering::Relaxed);
}

/// Installs the no-op SIGUSR1 handler without SA_RESTART, so every blocking syscall
/// the signal lands in returns EINTR.
fn install_sigusr1_handler() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        // SAFETY: an all-zero sigaction is valid; the fields are set below.
        let mut sa: libc::sigaction = unsafe { std::mem::zeroed() };
        sa.sa_sigaction = on_sigusr1 as extern "C" fn(libc::c_int) as libc::sighandler_t;
        sa.sa_flags = 0;
        // SAFETY: `sa.sa_mask` is a valid sigset to initialise; the handler only does an
        // atomic add, which is async-signal-safe.
        let r = unsafe {
            libc::sigemptyset(&mut sa.sa_mask);
            libc::sigaction(libc::SIGUSR1, &sa, std::ptr::null_mut())
        };
        assert_eq!(r, 0, "sigaction: {}", io::Error::last_os_error());
    });
}

/// Threads to signal. A thread removes itself (under the lock) before it exits, and the
/// signaller signals only under the lock, so no signal goes to a finished thread.
type Targets = Arc<Mutex<Vec<libc::pthread_t>>>;

fn add_self(targets: &Targets) {
    // SAFETY: pthread_self has no preconditions.
    let me = unsafe { libc::pthread_self() };
    targets.lock().unwrap().push(me);
}

fn remove_self(targets: &Targets) {
    // SAFETY: pthread_self has no preconditions.
    let me = unsafe { libc::pthread_self() };
    targets.lock().unwrap().retain(|&t| t != me);
}

/// A thread that sends SIGUSR1 to every target every 100 µs until dropped.
struct Signaller {
    stop: Arc<AtomicBool>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Signaller {
    fn start(targets: Targets) -> Signaller {
        let stop = Arc::new(AtomicBool::new(false));
        let thread = {
            let stop = stop.clone();
            std::thread::spawn(move || {
                while !stop.load(Ordering::Relaxed) {
                    for &t in targets.lock().unwrap().iter() {
                        // SAFETY: `t` is a live thread: it is removed from the list
                        // before it exits, and we hold the list's lock.
                        unsafe { libc::pthread_kill(t, libc::SIGUSR1) };
                    }
                    std::thread::sleep(Duration::from_micros(100));
                }
            })
        };
        Signaller {
            stop,
            thread: Some(thread),
        }
    }
}

impl Drop for Signaller {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// Echoes `conns` connections of `len` bytes each, writing and reading concurrently
/// from separate tasks; every byte is checked.
async fn echo_transfers(conns: usize, len: usize, seed: u64) {
    let l = util::listener().await;
    let addr = l.local_addr().unwrap();
    let server = spawn(async move {
        let mut echoes = Vec::new();
        for _ in 0..conns {
            let (s, _) = l.accept().await.unwrap();
            echoes.push(spawn(async move {
                let mut buf = vec![0; 16 * 1024];
                loop {
                    let n = s.read(&mut buf).await.unwrap();
                    if n == 0 {
                        break;
                    }
                    s.write_all(&buf[..n]).await.unwrap();
                }
            }));
        }
        for e in echoes {
            e.await.unwrap();
        }
    });
    let mut clients = Vec::new();
    for i in 0..conns {
        let seed = seed * 1000 + i as u64;
        clients.push(spawn(async move {
            let (r, mut w) = TcpStream::connect(addr).await.unwrap().into_split();
            let writer = spawn(async move {
                let data = util::pattern(seed, len);
                for piece in data.chunks(7919) {
                    w.write_all(piece).await.unwrap();
                }
                // Dropping the owned write half shuts down writing.
            });
            let mut r: OwnedReadHalf = r;
            let mut got = Vec::with_capacity(len);
            let mut buf = vec![0; 5003];
            loop {
                let n = r.read(&mut buf).await.unwrap();
                if n == 0 {
                    break;
                }
                got.extend_from_slice(&buf[..n]);
            }
            writer.await.unwrap();
            assert_eq!(got.len(), len, "connection {i}: byte count");
            assert!(
                got == util::pattern(seed, len),
                "connection {i}: bytes differ"
            );
        }));
    }
    for c in clients {
        c.await.unwrap();
    }
    server.await.unwrap();
}

#[test]
fn signals_interrupting_workers_are_retried() {
    install_sigusr1_handler();
    for (name, _) in util::flavors() {
        let targets: Targets = Arc::new(Mutex::new(Vec::new()));
        let rt = if name == "current-thread" {
            util::current_thread()
        } else {
            let (t1, t2) = (targets.clone(), targets.clone());
            Builder::new_multi_reactor()
                .reactors(2)
                .on_thread_start(move || add_self(&t1))
                .on_thread_stop(move || remove_self(&t2))
                .build()
                .unwrap()
        };
        // The thread that calls block_on: the worker of a current-thread runtime.
        add_self(&targets);
        let signaller = Signaller::start(targets.clone());
        let before = SIGNALS.load(Ordering::Relaxed);
        let label = format!("signals_interrupting_workers_are_retried on {name}");
        util::block_on(&rt, &label, async {
            // Transfers until plenty of signals have landed (at least one round).
            let mut round = 0;
            loop {
                echo_transfers(8, 256 * 1024, round).await;
                round += 1;
                if SIGNALS.load(Ordering::Relaxed) - before >= 500 {
                    break;
                }
            }
        });
        drop(signaller);
        remove_self(&targets);
        assert!(SIGNALS.load(Ordering::Relaxed) - before >= 500);
        drop(rt);
    }
}

#[test]
fn many_connections_at_once() {
    each_flavor("many_connections_at_once", || {
        echo_transfers(64, 64 * 1024, 77)
    });
}

// ---------------------------------------------------------------------------------
// Cancellation and drop.

#[test]
fn dropped_read_loses_no_data() {
    each_flavor("dropped_read_loses_no_data", || async {
        let baseline = registered();
        let (c, a) = util::tcp_pair().await;
        let mut buf = [0; 64];
        // Several reads start waiting and are dropped.
        for _ in 0..3 {
            assert_pending("read with nothing sent", a.read(&mut buf)).await;
            assert_pending("readable with nothing sent", a.readable()).await;
            assert_pending("peek with nothing sent", a.peek(&mut buf)).await;
        }
        c.write_all(b"all of it").await.unwrap();
        let mut got = [0; 9];
        within("read after cancelled reads", a.read_exact(&mut got))
            .await
            .unwrap();
        assert_eq!(&got, b"all of it");
        drop((c, a));
        assert_eq!(registered(), baseline);
    });
}

#[test]
fn dropped_write_loses_no_data() {
    each_flavor("dropped_write_loses_no_data", || async {
        let baseline = registered();
        let l = util::listener().await;
        let addr = l.local_addr().unwrap();
        let socket = TcpSocket::new_v4().unwrap();
        socket.set_send_buffer_size(4096).unwrap();
        let (c, a) = join(socket.connect(addr), l.accept()).await;
        let (c, (a, _)) = (c.unwrap(), a.unwrap());
        let total = 4 * 1024 * 1024;
        let data = util::pattern(4, total);
        // Write until a write has to wait, then drop it; several times.
        let mut off = 0;
        let mut dropped = 0;
        while dropped < 3 {
            match time::timeout(PENDING, c.write(&data[off..off + 65536])).await {
                Ok(n) => off += n.unwrap(),
                Err(_) => dropped += 1,
            }
        }
        // The peer gets exactly the bytes the writes reported, then the rest.
        let reader = async {
            let mut got = Vec::with_capacity(total);
            let mut buf = vec![0; 65536];
            loop {
                let n = a.read(&mut buf).await.unwrap();
                if n == 0 {
                    return got;
                }
                got.extend_from_slice(&buf[..n]);
            }
        };
        let writer = async {
            c.write_all(&data[off..]).await.unwrap();
            c.shutdown(Shutdown::Write).await.unwrap();
        };
        let (got, ()) = within("the rest", join(reader, writer)).await;
        assert_eq!(got.len(), total);
        assert!(got == data, "bytes differ");
        drop((c, a, l));
        assert_eq!(registered(), baseline);
    });
}

#[test]
fn dropped_connect_leaks_nothing() {
    each_flavor("dropped_connect_leaks_nothing", || async {
        let baseline = registered();
        let fds = util::fd_count();
        // A listen queue of one, filled: the kernel drops further SYNs, so the next
        // connect waits (retransmitting) until it is dropped.
        let socket = TcpSocket::new_v4().unwrap();
        socket.bind("127.0.0.1:0".parse().unwrap()).unwrap();
        let l = socket.listen(0).unwrap();
        let addr = l.local_addr().unwrap();
        let first = TcpStream::connect(addr).await.unwrap();
        for _ in 0..3 {
            assert_pending("connect to a full listen queue", TcpStream::connect(addr)).await;
        }
        // Room again: accept the first, and a new connect goes through.
        let (a1, _) = within("accept", l.accept()).await.unwrap();
        let (c2, a2) = join(TcpStream::connect(addr), l.accept()).await;
        let (c2, (a2, _)) = (c2.unwrap(), a2.unwrap());
        c2.write_all(b"ok").await.unwrap();
        let mut buf = [0; 2];
        a2.read_exact(&mut buf).await.unwrap();
        drop((first, a1, c2, a2, l));
        assert_eq!(registered(), baseline);
        // Other tests open and close fds meanwhile; ours are all closed if the count
        // gets back to where it was.
        util::wait_until("fd count back to where it was", || util::fd_count() <= fds).await;
    });
}

#[test]
fn drop_deregisters_then_closes() {
    each_flavor("drop_deregisters_then_closes", || async {
        let baseline = registered();
        let (c, a) = util::tcp_pair().await;
        // An accepted stream registers with the reactor of the first task that waits
        // on it (here, at once: it is assumed ready, so `readable` asks no event).
        assert_eq!(registered(), baseline + 1);
        a.readable().await.unwrap();
        assert_eq!(registered(), baseline + 2);
        let (cid, aid) = (FdId::of(&c), FdId::of(&a));
        assert!(cid.is_open() && aid.is_open());
        assert!(
            cid.in_kernel_epoll(),
            "a registered stream is in the kernel epoll"
        );
        drop(c);
        assert_eq!(registered(), baseline + 1);
        assert!(!cid.is_open(), "the fd is closed");
        assert!(!cid.in_kernel_epoll());
        drop(a);
        assert_eq!(registered(), baseline);
        assert!(!aid.is_open());
        assert!(!aid.in_kernel_epoll());

        // The freed fd numbers are reused at once by new sockets, which must register
        // cleanly: nothing of the old registrations is left in the eventpoll.
        for _ in 0..50 {
            let (c, a) = util::tcp_pair().await;
            c.write_all(b"x").await.unwrap();
            let mut b = [0; 1];
            a.read_exact(&mut b).await.unwrap();
        }
        assert_eq!(registered(), baseline);
    });
}

/// Sources registered with the current runtime.
fn registered() -> usize {
    epitome_runtime::runtime::Handle::current()
        .metrics()
        .num_registered_sources()
}

// ---------------------------------------------------------------------------------
// Splitting and sharing.

#[test]
fn borrowed_split() {
    each_flavor("borrowed_split", || async {
        let (c, a) = util::tcp_pair().await;
        let (mut r, mut w) = c.split();
        let data = util::pattern(5, 300_000);
        // Echo on the other side; read and write concurrently through the halves.
        let echo = async {
            let mut buf = vec![0; 8192];
            loop {
                let n = a.read(&mut buf).await.unwrap();
                if n == 0 {
                    break;
                }
                a.write_all(&buf[..n]).await.unwrap();
            }
        };
        let write = async {
            assert_eq!(w.write(&data[..1]).await.unwrap(), 1);
            w.write_all(&data[1..]).await.unwrap();
            c.shutdown(Shutdown::Write).await.unwrap();
        };
        let read = async {
            let mut got = Vec::new();
            let mut buf = vec![0; 8192];
            // peek first: it sees what read then takes.
            let mut p = [0; 1];
            assert_eq!(r.peek(&mut p).await.unwrap(), 1);
            assert_eq!(p[0], data[0]);
            while got.len() < data.len() {
                let n = r.read(&mut buf).await.unwrap();
                assert!(n > 0);
                got.extend_from_slice(&buf[..n]);
            }
            got
        };
        let ((), ((), got)) = join(echo, join(write, read)).await;
        assert!(got == data);
        let dbg = format!("{r:?} {w:?}");
        assert!(
            dbg.contains("ReadHalf") && dbg.contains("WriteHalf"),
            "{dbg}"
        );
    });
}

#[test]
fn owned_split_across_tasks_and_reunite() {
    each_flavor("owned_split_across_tasks_and_reunite", || async {
        let (c, a) = util::tcp_pair().await;
        let (mut r, mut w) = c.into_split();
        assert_eq!(
            AsRef::<TcpStream>::as_ref(&r).as_raw_fd(),
            AsRef::<TcpStream>::as_ref(&w).as_raw_fd()
        );
        // The halves move to tasks (on different workers, on a multi-reactor runtime).
        let writer = spawn(async move {
            assert_eq!(w.write(b"o").await.unwrap(), 1);
            w.write_all(b"wned").await.unwrap();
            w
        });
        let reader = spawn(async move {
            let mut p = [0; 1];
            assert_eq!(r.peek(&mut p).await.unwrap(), 1);
            assert_eq!(&p, b"h");
            let mut buf = [0; 5];
            r.read_exact(&mut buf).await.unwrap();
            assert_eq!(&buf, b"hello");
            r
        });
        a.write_all(b"hello").await.unwrap();
        let mut buf = [0; 5];
        a.read_exact(&mut buf).await.unwrap();
        assert_eq!(&buf, b"owned");
        let (w, mut r) = (writer.await.unwrap(), reader.await.unwrap());
        a.write_all(b"back").await.unwrap();
        let mut buf = [0; 4];
        let n = r.read(&mut buf).await.unwrap();
        assert!(n > 0 && buf[..n] == b"back"[..n]);
        if n < 4 {
            r.read_exact(&mut buf[n..]).await.unwrap();
        }

        // Halves of different streams do not reunite; they are handed back.
        let (c2, _a2) = util::tcp_pair().await;
        let (r2, w2) = c2.into_split();
        let err = r.reunite(w2).unwrap_err();
        assert!(err.to_string().contains("not from the same stream"));
        let (r_back, w2_back) = (err.0, err.1);
        w2_back.forget();
        drop(r2);
        // The right halves do; reuniting does not shut the stream down.
        let c = r_back.reunite(w).unwrap();
        c.write_all(b"still open").await.unwrap();
        let mut buf = [0; 10];
        a.read_exact(&mut buf).await.unwrap();
        assert_eq!(&buf, b"still open");

        // reunite from the write half's side, too.
        let (r, w) = c.into_split();
        let c = w.reunite(r).unwrap();
        // Dropping an owned write half shuts down writing: the peer sees the end.
        let (_r, mut w) = c.into_split();
        w.write_all(b"bye").await.unwrap();
        let w: OwnedWriteHalf = w;
        drop(w);
        let mut got = Vec::new();
        let mut buf = [0; 8];
        loop {
            let n = within("read to end", a.read(&mut buf)).await.unwrap();
            if n == 0 {
                break;
            }
            got.extend_from_slice(&buf[..n]);
        }
        assert_eq!(got, b"bye");
    });
}

#[test]
fn forgotten_write_half_does_not_shut_down() {
    each_flavor("forgotten_write_half_does_not_shut_down", || async {
        let (c, a) = util::tcp_pair().await;
        let (r, w) = c.into_split();
        w.forget();
        let mut buf = [0; 1];
        assert_pending("read: the peer did not shut down", a.read(&mut buf)).await;
        drop(r);
        // The last half gone: the stream closes.
        assert_eq!(within("read", a.read(&mut buf)).await.unwrap(), 0);
    });
}

#[test]
fn one_stream_shared_by_tasks_on_different_workers() {
    each_flavor(
        "one_stream_shared_by_tasks_on_different_workers",
        || async {
            let (c, a) = util::tcp_pair().await;
            let c = Arc::new(c);
            let total = 1_000_000;
            // Spawned from block_on, the two tasks land on different workers of a
            // multi-reactor runtime; both use the stream registered with one reactor.
            let reader = {
                let c = c.clone();
                spawn(async move {
                    let mut got = Vec::with_capacity(total);
                    let mut buf = vec![0; 4096];
                    while got.len() < total {
                        let n = c.read(&mut buf).await.unwrap();
                        assert!(n > 0);
                        got.extend_from_slice(&buf[..n]);
                    }
                    got
                })
            };
            let writer = {
                let c = c.clone();
                spawn(async move {
                    let data = util::pattern(6, total);
                    for piece in data.chunks(1000) {
                        c.write_all(piece).await.unwrap();
                    }
                })
            };
            // The block_on thread echoes.
            let mut buf = vec![0; 4096];
            let mut echoed = 0;
            while echoed < total {
                let n = a.read(&mut buf).await.unwrap();
                a.write_all(&buf[..n]).await.unwrap();
                echoed += n;
            }
            writer.await.unwrap();
            let got = reader.await.unwrap();
            assert!(got == util::pattern(6, total));
        },
    );
}

#[test]
fn accepted_stream_with_listener_gone() {
    each_flavor("accepted_stream_with_listener_gone", || async {
        let l: TcpListener = util::listener().await;
        let addr = l.local_addr().unwrap();
        let (c, a) = util::tcp_pair_on(&l, addr).await;
        drop(l);
        c.write_all(b"still here").await.unwrap();
        let mut buf = [0; 10];
        a.read_exact(&mut buf).await.unwrap();
        assert_eq!(&buf, b"still here");
    });
}
