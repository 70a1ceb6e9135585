//! `UdpSocket`: every public method, on both runtime flavours; several receivers on
//! one socket; ICMP errors; cancelled receives.

mod util;

use std::collections::HashSet;
use std::io;
use std::net::{Ipv4Addr, Ipv6Addr, SocketAddr};
use std::os::fd::{AsFd, AsRawFd};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use epitome_net::UdpSocket;
use epitome_runtime::{spawn, time};
use util::{FdId, assert_pending, each_flavor, err_kind, within};

async fn bound() -> UdpSocket {
    UdpSocket::bind("127.0.0.1:0")
        .await
        .expect("binding 127.0.0.1:0")
}

fn registered() -> usize {
    epitome_runtime::runtime::Handle::current()
        .metrics()
        .num_registered_sources()
}

#[test]
fn send_to_recv_from_peek_from() {
    each_flavor("send_to_recv_from_peek_from", || async {
        let (a, b) = (bound().await, bound().await);
        let (aa, ba) = (a.local_addr().unwrap(), b.local_addr().unwrap());
        assert_eq!(a.send_to(b"one", ba).await.unwrap(), 3);
        assert_eq!(a.send_to(b"two!", ba).await.unwrap(), 4);
        let mut buf = [0; 16];
        // peek_from leaves the datagram; recv_from takes it.
        let (n, from) = within("peek_from", b.peek_from(&mut buf)).await.unwrap();
        assert_eq!((&buf[..n], from), (&b"one"[..], aa));
        let (n, from) = b.recv_from(&mut buf).await.unwrap();
        assert_eq!((&buf[..n], from), (&b"one"[..], aa));
        let (n, _) = b.recv_from(&mut buf).await.unwrap();
        assert_eq!(&buf[..n], b"two!");
        // An empty datagram is a datagram.
        assert_eq!(b.send_to(&[], aa).await.unwrap(), 0);
        let (n, from) = within("recv_from", a.recv_from(&mut buf)).await.unwrap();
        assert_eq!((n, from), (0, ba));
        // A datagram longer than the buffer is truncated; the rest is dropped.
        a.send_to(b"0123456789", ba).await.unwrap();
        a.send_to(b"next", ba).await.unwrap();
        let mut small = [0; 4];
        let (n, _) = b.recv_from(&mut small).await.unwrap();
        assert_eq!(&small[..n], b"0123");
        let (n, _) = b.recv_from(&mut buf).await.unwrap();
        assert_eq!(&buf[..n], b"next");
    });
}

#[test]
fn connected_send_recv_peek() {
    each_flavor("connected_send_recv_peek", || async {
        let (a, b, stranger) = (bound().await, bound().await, bound().await);
        let (aa, ba) = (a.local_addr().unwrap(), b.local_addr().unwrap());
        a.connect(ba).await.unwrap();
        b.connect(aa).await.unwrap();
        assert_eq!(a.peer_addr().unwrap(), ba);
        // Datagrams from other addresses are dropped by the kernel.
        stranger.send_to(b"noise", ba).await.unwrap();
        assert_eq!(a.send(b"hello").await.unwrap(), 5);
        let mut buf = [0; 16];
        let n = within("peek", b.peek(&mut buf)).await.unwrap();
        assert_eq!(&buf[..n], b"hello");
        let n = b.recv(&mut buf).await.unwrap();
        assert_eq!(&buf[..n], b"hello");
        assert_pending("recv: nothing more from the peer", b.recv(&mut buf)).await;
        // Unconnected: no peer address.
        assert_eq!(
            stranger.peer_addr().unwrap_err().kind(),
            io::ErrorKind::NotConnected
        );
    });
}

#[test]
fn try_send_try_recv_readable_writable() {
    each_flavor("try_send_try_recv_readable_writable", || async {
        let (a, b) = (bound().await, bound().await);
        let ba = b.local_addr().unwrap();
        let mut buf = [0; 16];
        assert_eq!(
            err_kind(b.try_recv_from(&mut buf)),
            io::ErrorKind::WouldBlock
        );
        assert_pending("readable with nothing sent", b.readable()).await;
        within("writable", a.writable()).await.unwrap();
        assert_eq!(a.try_send_to(b"try", ba).unwrap(), 3);
        within("readable", b.readable()).await.unwrap();
        let (n, _) = b.try_recv_from(&mut buf).unwrap();
        assert_eq!(&buf[..n], b"try");
    });
}

#[test]
fn options() {
    each_flavor("options", || async {
        let s = bound().await;
        s.set_broadcast(true).unwrap();
        assert!(s.broadcast().unwrap());
        s.set_broadcast(false).unwrap();
        assert!(!s.broadcast().unwrap());
        s.set_multicast_loop_v4(false).unwrap();
        assert!(!s.multicast_loop_v4().unwrap());
        s.set_multicast_loop_v4(true).unwrap();
        assert!(s.multicast_loop_v4().unwrap());
        s.set_multicast_ttl_v4(7).unwrap();
        assert_eq!(s.multicast_ttl_v4().unwrap(), 7);
        s.set_ttl(21).unwrap();
        assert_eq!(s.ttl().unwrap(), 21);
        assert!(s.take_error().unwrap().is_none());
        // Joining a group on the loopback interface needs no network.
        let group = Ipv4Addr::new(239, 255, 12, 34);
        s.join_multicast_v4(group, Ipv4Addr::LOCALHOST).unwrap();
        s.leave_multicast_v4(group, Ipv4Addr::LOCALHOST).unwrap();
        // Leaving a group never joined is an error.
        assert!(s.leave_multicast_v4(group, Ipv4Addr::LOCALHOST).is_err());
        assert_eq!(s.as_fd().as_raw_fd(), s.as_raw_fd());
        let dbg = format!("{s:?}");
        assert!(dbg.contains("UdpSocket"), "{dbg}");
    });
}

#[test]
fn ipv6_options_if_available() {
    each_flavor("ipv6_options_if_available", || async {
        let Ok(s) = UdpSocket::bind("[::1]:0").await else {
            eprintln!("no IPv6 loopback here; skipped");
            return;
        };
        s.set_multicast_loop_v6(false).unwrap();
        assert!(!s.multicast_loop_v6().unwrap());
        s.set_multicast_loop_v6(true).unwrap();
        assert!(s.multicast_loop_v6().unwrap());
        // Interface 1 is the loopback.
        let group: Ipv6Addr = "ff15::1234".parse().unwrap();
        match s.join_multicast_v6(&group, 1) {
            Ok(()) => s.leave_multicast_v6(&group, 1).unwrap(),
            Err(e) => eprintln!("IPv6 multicast join on lo refused here ({e}); skipped"),
        }
        let t = UdpSocket::bind("[::1]:0").await.unwrap();
        t.send_to(b"v6", s.local_addr().unwrap()).await.unwrap();
        let mut buf = [0; 2];
        let (n, from) = within("recv_from", s.recv_from(&mut buf)).await.unwrap();
        assert_eq!((&buf[..n], from), (&b"v6"[..], t.local_addr().unwrap()));
    });
}

#[test]
fn std_conversions() {
    each_flavor("std_conversions", || async {
        let std_s = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
        let s = UdpSocket::from_std(std_s).unwrap();
        let other = bound().await;
        other.send_to(b"in", s.local_addr().unwrap()).await.unwrap();
        let mut buf = [0; 2];
        within("recv_from", s.recv_from(&mut buf)).await.unwrap();
        let before = registered();
        let std_s = s.into_std().unwrap();
        assert_eq!(registered(), before - 1);
        // Still non-blocking.
        assert_eq!(
            std_s.recv_from(&mut buf).unwrap_err().kind(),
            io::ErrorKind::WouldBlock
        );
    });
}

#[test]
fn connected_to_a_closed_port_reports_refused() {
    each_flavor("connected_to_a_closed_port_reports_refused", || async {
        let closed = {
            let s = bound().await;
            s.local_addr().unwrap()
        };
        let s = bound().await;
        s.connect(closed).await.unwrap();
        s.send(b"anyone?").await.unwrap();
        // The ICMP port-unreachable comes back as ECONNREFUSED on the next receive
        // (the socket is woken for it).
        let mut buf = [0; 8];
        let e = within("recv", s.recv(&mut buf)).await.unwrap_err();
        assert_eq!(e.kind(), io::ErrorKind::ConnectionRefused, "{e}");
        // Consumed: take_error has nothing left.
        assert!(s.take_error().unwrap().is_none());
        // Unconnected, the error waits in SO_ERROR.
        let u = bound().await;
        u.send_to(b"anyone?", closed).await.unwrap();
        let mut err = None;
        for _ in 0..1000 {
            if let Some(e) = u.take_error().unwrap() {
                err = Some(e);
                break;
            }
            time::sleep(Duration::from_millis(1)).await;
        }
        if let Some(e) = err {
            assert_eq!(e.kind(), io::ErrorKind::ConnectionRefused);
        }
    });
}

#[test]
fn each_datagram_reaches_one_of_several_receivers() {
    each_flavor("each_datagram_reaches_one_of_several_receivers", || async {
        let s = Arc::new(bound().await);
        let to = s.local_addr().unwrap();
        let got = Arc::new(Mutex::new(Vec::new()));
        const N: u32 = 300;
        // Four receive loops, on different workers of a multi-reactor runtime.
        let mut receivers = Vec::new();
        for _ in 0..4 {
            let (s, got) = (s.clone(), got.clone());
            receivers.push(spawn(async move {
                let mut buf = [0; 4];
                loop {
                    let (n, _) = s.recv_from(&mut buf).await.unwrap();
                    assert_eq!(n, 4);
                    got.lock().unwrap().push(u32::from_be_bytes(buf));
                }
            }));
        }
        let sender = bound().await;
        for i in 0..N {
            sender.send_to(&i.to_be_bytes(), to).await.unwrap();
            if i % 50 == 49 {
                // Pace the sender so the receive queue never overflows.
                let want = i as usize + 1;
                util::wait_until("receivers catch up", || got.lock().unwrap().len() >= want).await;
            }
        }
        util::wait_until("all received", || got.lock().unwrap().len() >= N as usize).await;
        for r in receivers {
            r.abort();
            assert!(r.await.unwrap_err().is_cancelled());
        }
        let ids = got.lock().unwrap().clone();
        let unique: HashSet<u32> = ids.iter().copied().collect();
        assert_eq!(ids.len(), N as usize, "a datagram was received twice");
        assert_eq!(unique, (0..N).collect());
    });
}

/// Receivers that each take one datagram and leave, and a burst of as many datagrams
/// sent at once: every receiver must get one. The burst reaches the reactor as one
/// edge, which wakes one exclusive waiter; that waiter receives one datagram and
/// leaves without passing the still-set readiness on, so the other receivers sleep
/// while datagrams wait in the queue.
#[test]
fn burst_reaches_receivers_that_take_one_datagram_each() {
    each_flavor(
        "burst_reaches_receivers_that_take_one_datagram_each",
        || async {
            let s = Arc::new(bound().await);
            let to = s.local_addr().unwrap();
            const K: usize = 4;
            let mut receivers = Vec::new();
            for _ in 0..K {
                let s = s.clone();
                receivers.push(spawn(async move {
                    let mut buf = [0; 4];
                    s.recv_from(&mut buf).await.unwrap();
                    u32::from_be_bytes(buf)
                }));
            }
            // Let every receiver start waiting, then send the burst.
            time::sleep(Duration::from_millis(20)).await;
            let sender = bound().await;
            for i in 0..K as u32 {
                sender.send_to(&i.to_be_bytes(), to).await.unwrap();
            }
            let mut ids = HashSet::new();
            for r in receivers {
                ids.insert(within("a receiver of the burst", r).await.unwrap());
            }
            assert_eq!(ids, (0..K as u32).collect());
        },
    );
}

#[test]
fn dropped_receives_lose_no_datagram() {
    each_flavor("dropped_receives_lose_no_datagram", || async {
        let baseline = registered();
        let (a, b) = (bound().await, bound().await);
        let ba = b.local_addr().unwrap();
        a.connect(ba).await.unwrap();
        b.connect(a.local_addr().unwrap()).await.unwrap();
        let mut buf = [0; 16];
        for _ in 0..2 {
            assert_pending("recv_from", b.recv_from(&mut buf)).await;
            assert_pending("recv", b.recv(&mut buf)).await;
            assert_pending("peek_from", b.peek_from(&mut buf)).await;
            assert_pending("peek", b.peek(&mut buf)).await;
            assert_pending("readable", b.readable()).await;
        }
        for i in 0..3u8 {
            a.send(&[i; 3]).await.unwrap();
        }
        for i in 0..3u8 {
            let n = within("recv after cancelled receives", b.recv(&mut buf))
                .await
                .unwrap();
            assert_eq!(&buf[..n], &[i; 3]);
        }
        // A cancelled send_to (resolving a host name first) leaves nothing behind either.
        drop(a.send_to(b"x", "localhost:1"));
        drop((a, b));
        assert_eq!(registered(), baseline);
    });
}

#[test]
fn drop_deregisters_then_closes() {
    each_flavor("drop_deregisters_then_closes", || async {
        let baseline = registered();
        let s = bound().await;
        let id = FdId::of(&s);
        assert_eq!(registered(), baseline + 1);
        assert!(id.in_kernel_epoll());
        drop(s);
        assert_eq!(registered(), baseline);
        assert!(!id.is_open());
        assert!(!id.in_kernel_epoll());
    });
}

#[test]
fn bind_to_each_address_in_turn() {
    each_flavor("bind_to_each_address_in_turn", || async {
        let taken = bound().await;
        let taken_addr = taken.local_addr().unwrap();
        let free: SocketAddr = "127.0.0.1:0".parse().unwrap();
        let s = UdpSocket::bind(&[taken_addr, free][..]).await.unwrap();
        assert_ne!(s.local_addr().unwrap(), taken_addr);
        let e = UdpSocket::bind(taken_addr).await.unwrap_err();
        assert_eq!(e.kind(), io::ErrorKind::AddrInUse);
    });
}

/// Task polls of the current runtime so far.
fn polls() -> u64 {
    epitome_runtime::runtime::Handle::current()
        .metrics()
        .total_polls_count()
}

/// After `try_recv_from` says `WouldBlock`, `readable` must wait for a datagram, not
/// return at once: else the usual `readable().await; try_recv_from(..)` loop spins.
#[test]
fn readable_waits_after_try_recv_would_block() {
    each_flavor("readable_waits_after_try_recv_would_block", || async {
        let (a, b) = (bound().await, bound().await);
        a.send_to(b"x", b.local_addr().unwrap()).await.unwrap();
        within("readable", b.readable()).await.unwrap();
        let mut buf = [0; 4];
        b.try_recv_from(&mut buf).unwrap();
        assert_eq!(
            err_kind(b.try_recv_from(&mut buf)),
            io::ErrorKind::WouldBlock
        );
        assert_pending("readable after try_recv_from's WouldBlock", b.readable()).await;
    });
}

/// An ICMP error reaches a connected socket as EPOLLERR; once `recv` has returned it,
/// the next `recv` must wait for the next datagram, not retry without end until one
/// comes.
#[test]
fn recv_after_an_icmp_error_waits_without_spinning() {
    each_flavor(
        "recv_after_an_icmp_error_waits_without_spinning",
        || async {
            let closed = {
                let s = bound().await;
                s.local_addr().unwrap()
            };
            let s = Arc::new(bound().await);
            s.connect(closed).await.unwrap();
            s.send(b"anyone?").await.unwrap();
            let mut buf = [0; 8];
            let e = within("recv", s.recv(&mut buf)).await.unwrap_err();
            assert_eq!(e.kind(), io::ErrorKind::ConnectionRefused);
            // Now talk to a live peer; the receiver waits for it.
            let peer = bound().await;
            s.connect(peer.local_addr().unwrap()).await.unwrap();
            peer.connect(s.local_addr().unwrap()).await.unwrap();
            let receiver = {
                let s = s.clone();
                spawn(async move {
                    let mut buf = [0; 8];
                    s.recv(&mut buf).await.map(|n| buf[..n].to_vec())
                })
            };
            let before = polls();
            time::sleep(Duration::from_millis(200)).await;
            let spent = polls() - before;
            peer.send(b"hello").await.unwrap();
            let got = within("recv", receiver).await.unwrap().unwrap();
            assert_eq!(got, b"hello");
            assert!(
                spent < 50,
                "the receiver was polled {spent} times while waiting"
            );
        },
    );
}
