//! `UnixStream`: every public method, on both runtime flavours, and its behaviour
//! under faults: end of stream, resets, writes to a closed peer, a full listen queue,
//! cancelled operations, drops and half-closes.

mod util;

use std::io::{self, IoSlice, IoSliceMut};
use std::net::Shutdown;
use std::os::fd::{AsFd, AsRawFd};
use std::sync::Arc;
use std::time::Duration;

use epitome_net::unix::abstract_addr;
use epitome_net::{UnixListener, UnixStream};
use epitome_runtime::{spawn, time};
use futures_util::future::join;
use util::{FdId, TempDir, assert_pending, each_flavor, err_kind, within};

fn registered() -> usize {
    epitome_runtime::runtime::Handle::current()
        .metrics()
        .num_registered_sources()
}

#[test]
fn pair_read_write_peek_vectored() {
    each_flavor("pair_read_write_peek_vectored", || async {
        let (a, b) = util::unix_pair();
        let data = util::pattern(10, 500_000);
        let mut got = vec![0; data.len()];
        let (w, r) = join(a.write_all(&data), b.read_exact(&mut got)).await;
        w.unwrap();
        assert_eq!(r.unwrap(), data.len());
        assert!(got == data);

        assert_eq!(b.write(b"peekaboo").await.unwrap(), 8);
        let mut buf = [0; 8];
        let n = within("peek", a.peek(&mut buf)).await.unwrap();
        assert_eq!(&buf[..n], &b"peekaboo"[..n]);
        a.read_exact(&mut buf).await.unwrap();
        assert_eq!(&buf, b"peekaboo");

        let n = a
            .write_vectored(&[IoSlice::new(b"vec"), IoSlice::new(b"tored")])
            .await
            .unwrap();
        assert_eq!(n, 8);
        let (mut x, mut y) = ([0; 3], [0; 5]);
        let mut bufs = [IoSliceMut::new(&mut x), IoSliceMut::new(&mut y)];
        // A Unix stream delivers a write of this size in one piece.
        let n = b.read_vectored(&mut bufs).await.unwrap();
        assert_eq!(n, 8);
        assert_eq!((&x, &y), (b"vec", b"tored"));
        assert_eq!(b.read(&mut []).await.unwrap(), 0);
        assert_eq!(b.read_vectored(&mut []).await.unwrap(), 0);
        assert_eq!(b.write(&[]).await.unwrap(), 0);
        assert_eq!(b.write_vectored(&[]).await.unwrap(), 0);
    });
}

#[test]
fn connect_by_path_and_abstract_name_and_addresses() {
    each_flavor(
        "connect_by_path_and_abstract_name_and_addresses",
        || async {
            let dir = TempDir::new("us");
            let path = dir.join("sock");
            let l = UnixListener::bind(&path).unwrap();
            let (c, a) = join(UnixStream::connect(&path), l.accept()).await;
            let (c, (a, _)) = (c.unwrap(), a.unwrap());
            assert_eq!(c.peer_addr().unwrap().as_pathname(), Some(path.as_path()));
            assert_eq!(a.local_addr().unwrap().as_pathname(), Some(path.as_path()));
            assert!(c.local_addr().unwrap().is_unnamed());

            let name = util::abstract_name("us");
            let addr = abstract_addr(&name).unwrap();
            let l2 = UnixListener::bind_addr(&addr).unwrap();
            let (c2, a2) = join(UnixStream::connect_addr(&addr), l2.accept()).await;
            let (c2, (a2, _)) = (c2.unwrap(), a2.unwrap());
            use std::os::linux::net::SocketAddrExt;
            assert_eq!(
                c2.peer_addr().unwrap().as_abstract_name(),
                Some(name.as_slice())
            );
            c2.write_all(b"!").await.unwrap();
            let mut b = [0; 1];
            a2.read_exact(&mut b).await.unwrap();
        },
    );
}

#[test]
fn connect_errors() {
    each_flavor("connect_errors", || async {
        let dir = TempDir::new("us");
        // No such file.
        let e = UnixStream::connect(dir.join("missing")).await.unwrap_err();
        assert_eq!(e.kind(), io::ErrorKind::NotFound, "{e}");
        // A socket file nobody listens on.
        let stale = dir.join("stale");
        drop(std::os::unix::net::UnixListener::bind(&stale).unwrap());
        let e = UnixStream::connect(&stale).await.unwrap_err();
        assert_eq!(e.kind(), io::ErrorKind::ConnectionRefused, "{e}");
        // An abstract name nobody listens on.
        let addr = abstract_addr(util::abstract_name("nobody")).unwrap();
        let e = UnixStream::connect_addr(&addr).await.unwrap_err();
        assert_eq!(e.kind(), io::ErrorKind::ConnectionRefused, "{e}");
        // An unnamed address cannot be connected to.
        let (a, _b) = util::unix_pair();
        let unnamed = a.local_addr().unwrap();
        let e = UnixStream::connect_addr(&unnamed).await.unwrap_err();
        assert_eq!(e.kind(), io::ErrorKind::InvalidInput, "{e}");
    });
}

#[test]
fn connect_waits_for_room_in_a_full_listen_queue() {
    each_flavor("connect_waits_for_room_in_a_full_listen_queue", || async {
        let baseline = registered();
        let dir = TempDir::new("us");
        let path = dir.join("sock");
        // A listener with a listen queue of one.
        let s = socket2::Socket::new(socket2::Domain::UNIX, socket2::Type::STREAM, None).unwrap();
        s.bind(&socket2::SockAddr::unix(&path).unwrap()).unwrap();
        s.listen(0).unwrap();
        let l = UnixListener::from_std(s.into()).unwrap();
        // Fill the queue (a Unix connect completes at once while there is room).
        let mut queued = Vec::new();
        loop {
            match time::timeout(Duration::from_millis(20), UnixStream::connect(&path)).await {
                Ok(c) => queued.push(c.unwrap()),
                // Full: this connect was waiting, and is dropped.
                Err(_) => break,
            }
            assert!(queued.len() < 100, "the listen queue never filled");
        }
        assert_pending("connect to a full queue", UnixStream::connect(&path)).await;
        // A connect waiting for room goes through once an accept makes some.
        let p = path.clone();
        let waiting = spawn(async move { UnixStream::connect(&p).await });
        time::sleep(Duration::from_millis(10)).await;
        let (first, _) = within("accept", l.accept()).await.unwrap();
        let c = within("the waiting connect", waiting)
            .await
            .unwrap()
            .unwrap();
        let mut accepted = vec![first];
        for _ in 0..queued.len() {
            accepted.push(within("accept", l.accept()).await.unwrap().0);
        }
        c.write_all(b"in").await.unwrap();
        let last = accepted.last().unwrap();
        let mut b = [0; 2];
        within("read", last.read_exact(&mut b)).await.unwrap();
        assert_eq!(&b, b"in");
        drop((accepted, queued, c, l));
        assert_eq!(registered(), baseline);
    });
}

#[test]
fn try_read_try_write_readable_writable() {
    each_flavor("try_read_try_write_readable_writable", || async {
        let (a, b) = util::unix_pair();
        let mut buf = [0; 16];
        assert_pending("readable with nothing sent", b.readable()).await;
        assert_eq!(err_kind(b.try_read(&mut buf)), io::ErrorKind::WouldBlock);
        within("writable", a.writable()).await.unwrap();
        assert_eq!(a.try_write(b"abc").unwrap(), 3);
        within("readable", b.readable()).await.unwrap();
        assert_eq!(b.try_read(&mut buf).unwrap(), 3);
        // Fill the socket, then writable waits for the peer to read.
        let chunk = vec![0u8; 32 * 1024];
        let mut sent = 0;
        loop {
            match a.try_write(&chunk) {
                Ok(n) => sent += n,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                Err(e) => panic!("{e}"),
            }
        }
        assert_pending("writable when full", a.writable()).await;
        let drain = async {
            let mut got = 0;
            let mut buf = vec![0; 32 * 1024];
            while got < sent {
                got += b.read(&mut buf).await.unwrap();
            }
        };
        let (_, w) = join(drain, within("writable after draining", a.writable())).await;
        w.unwrap();
    });
}

#[test]
fn std_conversions_fd_debug_take_error() {
    each_flavor("std_conversions_fd_debug_take_error", || async {
        let (sa, sb) = std::os::unix::net::UnixStream::pair().unwrap();
        let a = UnixStream::from_std(sa).unwrap();
        let b = UnixStream::from_std(sb).unwrap();
        assert_eq!(a.as_fd().as_raw_fd(), a.as_raw_fd());
        assert!(a.take_error().unwrap().is_none());
        assert!(format!("{a:?}").contains("UnixStream"));
        a.write_all(b"std").await.unwrap();
        let std_b = b.into_std().unwrap();
        let mut buf = [0; 3];
        // Still non-blocking: poll until the bytes are there.
        let mut r = &std_b;
        io::Read::read_exact(&mut r, &mut buf).unwrap();
        assert_eq!(&buf, b"std");
        assert_eq!(
            err_kind(io::Read::read(&mut r, &mut buf)),
            io::ErrorKind::WouldBlock
        );
    });
}

#[test]
fn end_of_stream_is_ok_zero() {
    each_flavor("end_of_stream_is_ok_zero", || async {
        let (a, b) = util::unix_pair();
        let b = Arc::new(b);
        let reader = {
            let b = b.clone();
            spawn(async move {
                let mut buf = [0; 4];
                b.read(&mut buf).await
            })
        };
        time::sleep(Duration::from_millis(10)).await;
        drop(a);
        assert_eq!(within("reader", reader).await.unwrap().unwrap(), 0);
        let mut buf = [0; 4];
        assert_eq!(b.read(&mut buf).await.unwrap(), 0);
        assert_eq!(
            err_kind(b.read_exact(&mut buf).await),
            io::ErrorKind::UnexpectedEof
        );
    });
}

#[test]
fn peer_closing_with_unread_data_is_connection_reset() {
    each_flavor(
        "peer_closing_with_unread_data_is_connection_reset",
        || async {
            let (a, b) = util::unix_pair();
            let a = Arc::new(a);
            let reader = {
                let a = a.clone();
                spawn(async move {
                    let mut buf = [0; 4];
                    a.read(&mut buf).await
                })
            };
            // `a` sends; `b` closes without reading it: the kernel resets `a`.
            a.write_all(b"never read").await.unwrap();
            time::sleep(Duration::from_millis(10)).await;
            drop(b);
            let e = within("reader", reader).await.unwrap().unwrap_err();
            assert_eq!(e.kind(), io::ErrorKind::ConnectionReset, "{e}");
        },
    );
}

#[test]
fn write_after_peer_closed_is_broken_pipe() {
    each_flavor("write_after_peer_closed_is_broken_pipe", || async {
        let (a, b) = util::unix_pair();
        drop(b);
        assert_eq!(err_kind(a.write(b"x").await), io::ErrorKind::BrokenPipe);
        assert_eq!(err_kind(a.write_all(b"x").await), io::ErrorKind::BrokenPipe);
        // A write waiting on a full socket is woken by the peer's close.
        let (a, b) = util::unix_pair();
        let a = Arc::new(a);
        let writer = {
            let a = a.clone();
            spawn(async move {
                let chunk = vec![1u8; 64 * 1024];
                loop {
                    a.write_all(&chunk).await?;
                }
            })
        };
        time::sleep(Duration::from_millis(20)).await;
        drop(b);
        let res: io::Result<()> = within("writer", writer).await.unwrap();
        assert_eq!(err_kind(res), io::ErrorKind::BrokenPipe);
    });
}

#[test]
fn half_close_in_both_directions() {
    each_flavor("half_close_in_both_directions", || async {
        for first in [true, false] {
            let (x, y) = util::unix_pair();
            let (closer, other) = if first { (&x, &y) } else { (&y, &x) };
            closer.write_all(b"question").await.unwrap();
            closer.shutdown(Shutdown::Write).await.unwrap();
            let mut got = Vec::new();
            let mut buf = [0; 64];
            loop {
                let n = other.read(&mut buf).await.unwrap();
                if n == 0 {
                    break;
                }
                got.extend_from_slice(&buf[..n]);
            }
            assert_eq!(got, b"question");
            other.write_all(b"answer").await.unwrap();
            other.shutdown(Shutdown::Write).await.unwrap();
            let mut got = Vec::new();
            loop {
                let n = closer.read(&mut buf).await.unwrap();
                if n == 0 {
                    break;
                }
                got.extend_from_slice(&buf[..n]);
            }
            assert_eq!(got, b"answer");
            // Writing after shutting down writing: EPIPE.
            assert_eq!(
                err_kind(closer.write(b"late").await),
                io::ErrorKind::BrokenPipe
            );
        }
    });
}

#[test]
fn dropped_operations_lose_no_data() {
    each_flavor("dropped_operations_lose_no_data", || async {
        let baseline = registered();
        let (a, b) = util::unix_pair();
        let mut buf = [0; 16];
        for _ in 0..3 {
            assert_pending("read", b.read(&mut buf)).await;
            assert_pending("peek", b.peek(&mut buf)).await;
            assert_pending("readable", b.readable()).await;
        }
        a.write_all(b"everything").await.unwrap();
        let mut got = [0; 10];
        within("read", b.read_exact(&mut got)).await.unwrap();
        assert_eq!(&got, b"everything");

        // Writes dropped while waiting on a full socket: the reader gets exactly what
        // the writes reported, then the rest.
        let total = 2 * 1024 * 1024;
        let data = util::pattern(11, total);
        let mut off = 0;
        let mut dropped = 0;
        while dropped < 3 {
            match time::timeout(util::PENDING, a.write(&data[off..off + 50_000])).await {
                Ok(n) => off += n.unwrap(),
                Err(_) => dropped += 1,
            }
        }
        let reader = async {
            let mut got = Vec::with_capacity(total);
            let mut buf = vec![0; 65536];
            while got.len() < total {
                let n = b.read(&mut buf).await.unwrap();
                assert!(n > 0);
                got.extend_from_slice(&buf[..n]);
            }
            got
        };
        let (got, w) = within("the rest", join(reader, a.write_all(&data[off..]))).await;
        w.unwrap();
        assert!(got == data, "bytes differ");
        drop((a, b));
        assert_eq!(registered(), baseline);
    });
}

#[test]
fn drop_deregisters_then_closes() {
    each_flavor("drop_deregisters_then_closes", || async {
        let baseline = registered();
        let (a, b) = util::unix_pair();
        assert_eq!(registered(), baseline + 2);
        let id = FdId::of(&a);
        assert!(id.in_kernel_epoll());
        drop(a);
        assert_eq!(registered(), baseline + 1);
        assert!(!id.is_open());
        assert!(!id.in_kernel_epoll());
        let mut buf = [0; 1];
        assert_eq!(within("read", b.read(&mut buf)).await.unwrap(), 0);
        drop(b);
        assert_eq!(registered(), baseline);
        for _ in 0..50 {
            let (a, b) = util::unix_pair();
            a.write_all(b"r").await.unwrap();
            b.read_exact(&mut buf).await.unwrap();
        }
        assert_eq!(registered(), baseline);
    });
}

#[test]
fn split_and_owned_halves() {
    each_flavor("split_and_owned_halves", || async {
        let (a, b) = util::unix_pair();
        {
            let (mut r, mut w) = a.split();
            assert_eq!(w.write(b"1").await.unwrap(), 1);
            w.write_all(b"23").await.unwrap();
            let mut buf = [0; 3];
            b.read_exact(&mut buf).await.unwrap();
            assert_eq!(&buf, b"123");
            b.write_all(b"45").await.unwrap();
            let mut p = [0; 1];
            assert_eq!(within("peek", r.peek(&mut p)).await.unwrap(), 1);
            let mut buf = [0; 2];
            let mut n = 0;
            while n < 2 {
                n += r.read(&mut buf[n..]).await.unwrap();
            }
            assert_eq!(&buf, b"45");
        }
        let (mut r, mut w) = a.into_split();
        let writer = spawn(async move {
            assert_eq!(w.write(b"o").await.unwrap(), 1);
            w.write_all(b"wned").await.unwrap();
            w
        });
        let mut buf = [0; 5];
        b.read_exact(&mut buf).await.unwrap();
        assert_eq!(&buf, b"owned");
        let w = writer.await.unwrap();
        b.write_all(b"back").await.unwrap();
        let mut p = [0; 1];
        r.peek(&mut p).await.unwrap();
        let mut buf = [0; 4];
        r.read_exact(&mut buf).await.unwrap();
        assert_eq!(&buf, b"back");
        let (x, _y) = util::unix_pair();
        let (xr, xw) = x.into_split();
        let err = r.reunite(xw).unwrap_err();
        assert!(err.to_string().contains("not from the same stream"));
        let (r, xw) = (err.0, err.1);
        drop((xr, xw));
        let a = w.reunite(r).unwrap();
        assert!(format!("{a:?}").contains("UnixStream"));
        // Dropping the owned write half shuts down writing.
        let (_r, w) = a.into_split();
        drop(w);
        let mut buf = [0; 1];
        assert_eq!(within("read", b.read(&mut buf)).await.unwrap(), 0);
    });
}

#[test]
fn shared_between_tasks_on_different_workers() {
    each_flavor("shared_between_tasks_on_different_workers", || async {
        let (a, b) = util::unix_pair();
        let a = Arc::new(a);
        let total = 1_000_000;
        let reader = {
            let a = a.clone();
            spawn(async move {
                let mut got = Vec::with_capacity(total);
                let mut buf = vec![0; 4096];
                while got.len() < total {
                    let n = a.read(&mut buf).await.unwrap();
                    assert!(n > 0);
                    got.extend_from_slice(&buf[..n]);
                }
                got
            })
        };
        let writer = {
            let a = a.clone();
            spawn(async move {
                let data = util::pattern(12, total);
                for piece in data.chunks(777) {
                    a.write_all(piece).await.unwrap();
                }
            })
        };
        let mut buf = vec![0; 4096];
        let mut echoed = 0;
        while echoed < total {
            let n = b.read(&mut buf).await.unwrap();
            b.write_all(&buf[..n]).await.unwrap();
            echoed += n;
        }
        writer.await.unwrap();
        assert!(reader.await.unwrap() == util::pattern(12, total));
    });
}
