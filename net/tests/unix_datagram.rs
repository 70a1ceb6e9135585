//! `UnixDatagram`: every public method, on both runtime flavours; back-pressure from a
//! full receiver; several receivers; cancelled receives; drops.

mod util;

use std::collections::HashSet;
use std::io;
use std::net::Shutdown;
use std::os::fd::{AsFd, AsRawFd};
use std::os::linux::net::SocketAddrExt;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use epitome_net::UnixDatagram;
use epitome_net::unix::abstract_addr;
use epitome_runtime::{spawn, time};
use util::{FdId, TempDir, assert_pending, each_flavor, err_kind, within};

fn registered() -> usize {
    epitome_runtime::runtime::Handle::current()
        .metrics()
        .num_registered_sources()
}

#[test]
fn paths_send_to_recv_from() {
    each_flavor("paths_send_to_recv_from", || async {
        let dir = TempDir::new("ud");
        let (pa, pb) = (dir.join("a"), dir.join("b"));
        let a = UnixDatagram::bind(&pa).unwrap();
        let b = UnixDatagram::bind(&pb).unwrap();
        assert_eq!(a.local_addr().unwrap().as_pathname(), Some(pa.as_path()));
        assert_eq!(a.send_to(b"to b", &pb).await.unwrap(), 4);
        let mut buf = [0; 16];
        let (n, from) = within("recv_from", b.recv_from(&mut buf)).await.unwrap();
        assert_eq!(&buf[..n], b"to b");
        assert_eq!(from.as_pathname(), Some(pa.as_path()));
        // An unbound sender has an unnamed address.
        let u = UnixDatagram::unbound().unwrap();
        u.send_to(b"anon", &pb).await.unwrap();
        let (n, from) = within("recv_from", b.recv_from(&mut buf)).await.unwrap();
        assert_eq!(&buf[..n], b"anon");
        assert!(from.is_unnamed());
        // Nobody at the path.
        let e = a.send_to(b"x", dir.join("nobody")).await.unwrap_err();
        assert_eq!(e.kind(), io::ErrorKind::NotFound, "{e}");
    });
}

#[test]
fn abstract_addresses() {
    each_flavor("abstract_addresses", || async {
        let (na, nb) = (util::abstract_name("uda"), util::abstract_name("udb"));
        let (aa, ab) = (abstract_addr(&na).unwrap(), abstract_addr(&nb).unwrap());
        let a = UnixDatagram::bind_addr(&aa).unwrap();
        let b = UnixDatagram::bind_addr(&ab).unwrap();
        a.send_to_addr(b"abstract", &ab).await.unwrap();
        let mut buf = [0; 16];
        let (n, from) = within("recv_from", b.recv_from(&mut buf)).await.unwrap();
        assert_eq!(&buf[..n], b"abstract");
        assert_eq!(from.as_abstract_name(), Some(na.as_slice()));
        // Connected by address: send and recv.
        a.connect_addr(&ab).unwrap();
        b.connect_addr(&aa).unwrap();
        assert_eq!(
            a.peer_addr().unwrap().as_abstract_name(),
            Some(nb.as_slice())
        );
        a.send(b"conn").await.unwrap();
        let n = within("recv", b.recv(&mut buf)).await.unwrap();
        assert_eq!(&buf[..n], b"conn");
        assert_eq!(
            UnixDatagram::bind_addr(&aa).unwrap_err().kind(),
            io::ErrorKind::AddrInUse
        );
    });
}

#[test]
fn pair_connect_try_and_readiness() {
    each_flavor("pair_connect_try_and_readiness", || async {
        let (a, b) = UnixDatagram::pair().unwrap();
        let mut buf = [0; 16];
        assert_eq!(err_kind(b.try_recv(&mut buf)), io::ErrorKind::WouldBlock);
        assert_pending("readable with nothing sent", b.readable()).await;
        within("writable", a.writable()).await.unwrap();
        assert_eq!(a.try_send(b"try").unwrap(), 3);
        within("readable", b.readable()).await.unwrap();
        assert_eq!(b.try_recv(&mut buf).unwrap(), 3);
        assert_eq!(a.send(b"").await.unwrap(), 0);
        assert_eq!(within("recv empty", b.recv(&mut buf)).await.unwrap(), 0);

        // connect by path.
        let dir = TempDir::new("ud");
        let p = dir.join("srv");
        let srv = UnixDatagram::bind(&p).unwrap();
        let c = UnixDatagram::unbound().unwrap();
        c.connect(&p).unwrap();
        assert_eq!(c.peer_addr().unwrap().as_pathname(), Some(p.as_path()));
        c.send(b"hi").await.unwrap();
        let (n, _) = within("recv_from", srv.recv_from(&mut buf)).await.unwrap();
        assert_eq!(&buf[..n], b"hi");
        // An unconnected socket has no peer; send fails at once.
        assert!(srv.peer_addr().is_err());
        assert!(srv.send(b"to whom?").await.is_err());
    });
}

#[test]
fn full_receiver_pushes_back_on_the_sender() {
    each_flavor("full_receiver_pushes_back_on_the_sender", || async {
        let (a, b) = UnixDatagram::pair().unwrap();
        // Fill b's queue until the kernel makes a wait.
        let mut sent = 0u32;
        loop {
            match a.try_send(&sent.to_be_bytes()) {
                Ok(_) => sent += 1,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                Err(e) => panic!("{e}"),
            }
            assert!(sent < 1_000_000, "the queue never filled");
        }
        // (`writable` right after try_send's WouldBlock would not wait: see
        // `writable_waits_after_try_send_would_block`. A waiting send clears readiness.)
        assert_pending("send when the peer is full", a.send(b"late")).await;
        assert_pending("writable when the peer is full", a.writable()).await;
        // A send waiting on the full peer completes once it reads.
        let a = Arc::new(a);
        let sender = {
            let a = a.clone();
            spawn(async move { a.send(&u32::MAX.to_be_bytes()).await })
        };
        time::sleep(Duration::from_millis(10)).await;
        let mut buf = [0; 4];
        for i in 0..sent {
            let n = within("recv", b.recv(&mut buf)).await.unwrap();
            assert_eq!((n, u32::from_be_bytes(buf)), (4, i));
        }
        assert_eq!(
            within("the waiting send", sender).await.unwrap().unwrap(),
            4
        );
        within("recv", b.recv(&mut buf)).await.unwrap();
        assert_eq!(u32::from_be_bytes(buf), u32::MAX);
    });
}

#[test]
fn shutdown_fd_debug_std_conversions() {
    each_flavor("shutdown_fd_debug_std_conversions", || async {
        let (a, b) = UnixDatagram::pair().unwrap();
        assert_eq!(a.as_fd().as_raw_fd(), a.as_raw_fd());
        assert!(a.take_error().unwrap().is_none());
        assert!(format!("{a:?}").contains("UnixDatagram"));
        a.shutdown(Shutdown::Write).unwrap();
        assert_eq!(err_kind(a.send(b"x").await), io::ErrorKind::BrokenPipe);
        b.shutdown(Shutdown::Both).unwrap();
        // (recv after shutdown(Read): see `recv_after_shutdown_read_does_not_spin`.)

        let (sa, sb) = std::os::unix::net::UnixDatagram::pair().unwrap();
        let a = UnixDatagram::from_std(sa).unwrap();
        let sb = UnixDatagram::from_std(sb).unwrap().into_std().unwrap();
        a.send(b"std").await.unwrap();
        let mut buf = [0; 3];
        assert_eq!(sb.recv(&mut buf).unwrap(), 3);
        // into_std leaves it non-blocking.
        assert_eq!(
            sb.recv(&mut buf).unwrap_err().kind(),
            io::ErrorKind::WouldBlock
        );
    });
}

#[test]
fn several_receivers_each_datagram_once() {
    each_flavor("several_receivers_each_datagram_once", || async {
        let (a, b) = UnixDatagram::pair().unwrap();
        let b = Arc::new(b);
        let got = Arc::new(Mutex::new(Vec::new()));
        let mut receivers = Vec::new();
        for _ in 0..4 {
            let (b, got) = (b.clone(), got.clone());
            receivers.push(spawn(async move {
                let mut buf = [0; 4];
                loop {
                    let n = b.recv(&mut buf).await.unwrap();
                    assert_eq!(n, 4);
                    got.lock().unwrap().push(u32::from_be_bytes(buf));
                }
            }));
        }
        const N: u32 = 500;
        // Unix datagrams are never dropped: a full receiver makes `send` wait.
        for i in 0..N {
            within("send", a.send(&i.to_be_bytes())).await.unwrap();
        }
        util::wait_until("all received", || got.lock().unwrap().len() >= N as usize).await;
        for r in receivers {
            r.abort();
            let _ = r.await;
        }
        let ids = got.lock().unwrap().clone();
        assert_eq!(ids.len(), N as usize);
        assert_eq!(ids.into_iter().collect::<HashSet<_>>(), (0..N).collect());
    });
}

#[test]
fn dropped_receives_lose_no_datagram() {
    each_flavor("dropped_receives_lose_no_datagram", || async {
        let baseline = registered();
        let dir = TempDir::new("ud");
        let p = dir.join("b");
        let b = UnixDatagram::bind(&p).unwrap();
        let a = UnixDatagram::unbound().unwrap();
        let mut buf = [0; 8];
        for _ in 0..3 {
            assert_pending("recv", b.recv(&mut buf)).await;
            assert_pending("recv_from", b.recv_from(&mut buf)).await;
            assert_pending("readable", b.readable()).await;
        }
        for i in 0..3u8 {
            a.send_to(&[i; 2], &p).await.unwrap();
        }
        for i in 0..3u8 {
            let (n, _) = within("recv_from", b.recv_from(&mut buf)).await.unwrap();
            assert_eq!(&buf[..n], &[i; 2]);
        }
        drop((a, b));
        assert_eq!(registered(), baseline);
    });
}

#[test]
fn drop_deregisters_then_closes() {
    each_flavor("drop_deregisters_then_closes", || async {
        let baseline = registered();
        let s = UnixDatagram::unbound().unwrap();
        let id = FdId::of(&s);
        assert_eq!(registered(), baseline + 1);
        assert!(id.in_kernel_epoll());
        drop(s);
        assert_eq!(registered(), baseline);
        assert!(!id.is_open());
        assert!(!id.in_kernel_epoll());
    });
}

/// Task polls of the current runtime so far.
fn polls() -> u64 {
    epitome_runtime::runtime::Handle::current()
        .metrics()
        .total_polls_count()
}

/// After `try_send` says `WouldBlock`, `writable` must wait for room, not return at
/// once: else the usual `writable().await; try_send(..)` loop spins.
#[test]
fn writable_waits_after_try_send_would_block() {
    each_flavor("writable_waits_after_try_send_would_block", || async {
        let (a, b) = UnixDatagram::pair().unwrap();
        within("writable", a.writable()).await.unwrap();
        while a.try_send(b"fill").is_ok() {}
        assert_pending("writable after try_send's WouldBlock", a.writable()).await;
        // Same on the read side.
        within("readable", b.readable()).await.unwrap();
        let mut buf = [0; 4];
        while b.try_recv(&mut buf).is_ok() {}
        assert_pending("readable after try_recv's WouldBlock", b.readable()).await;
    });
}

/// A socket shut down for reading: the kernel reports it readable (EPOLLIN|EPOLLRDHUP)
/// while a non-blocking recv says EAGAIN (a blocking one returns 0). `recv` must then
/// return or wait, not retry without end.
#[test]
fn recv_after_shutdown_read_does_not_spin() {
    each_flavor("recv_after_shutdown_read_does_not_spin", || async {
        let (_a, b) = UnixDatagram::pair().unwrap();
        b.shutdown(Shutdown::Read).unwrap();
        let b = Arc::new(b);
        let receiver = {
            let b = b.clone();
            spawn(async move {
                let mut buf = [0; 4];
                b.recv(&mut buf).await
            })
        };
        let before = polls();
        time::sleep(Duration::from_millis(200)).await;
        let spent = polls() - before;
        receiver.abort();
        let _ = receiver.await;
        // A waiting (or finished) receiver is polled a handful of times, not thousands.
        assert!(
            spent < 50,
            "the receiver was polled {spent} times while waiting"
        );
    });
}
