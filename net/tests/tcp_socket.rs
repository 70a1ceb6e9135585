//! `TcpSocket`: options set before listening or connecting, `SO_REUSEPORT` listeners,
//! and connecting through a configured socket.

mod util;

use std::collections::HashSet;
use std::io;
use std::net::SocketAddr;
use std::os::fd::{AsFd, AsRawFd};
use std::sync::Arc;
use std::time::Duration;

use epitome_net::{TcpSocket, TcpStream};
use epitome_runtime::spawn;
use futures_util::future::join;
use util::{each_flavor, within};

fn loopback() -> SocketAddr {
    "127.0.0.1:0".parse().unwrap()
}

#[test]
fn options_round_trip() {
    each_flavor("options_round_trip", || async {
        let s = TcpSocket::new_v4().unwrap();
        s.set_reuseaddr(true).unwrap();
        assert!(s.reuseaddr().unwrap());
        s.set_reuseaddr(false).unwrap();
        assert!(!s.reuseaddr().unwrap());
        s.set_reuseport(true).unwrap();
        assert!(s.reuseport().unwrap());
        s.set_reuseport(false).unwrap();
        assert!(!s.reuseport().unwrap());
        s.set_nodelay(true).unwrap();
        assert!(s.nodelay().unwrap());
        // The kernel doubles the buffer sizes for its bookkeeping.
        s.set_send_buffer_size(64 * 1024).unwrap();
        assert!(s.send_buffer_size().unwrap() >= 64 * 1024);
        s.set_recv_buffer_size(64 * 1024).unwrap();
        assert!(s.recv_buffer_size().unwrap() >= 64 * 1024);
        s.set_linger(Some(Duration::from_secs(1))).unwrap();
        assert_eq!(s.as_fd().as_raw_fd(), s.as_raw_fd());
        let dbg = format!("{s:?}");
        assert!(dbg.contains("TcpSocket"), "{dbg}");
        // Unbound: the wildcard address, port 0.
        assert_eq!(s.local_addr().unwrap(), "0.0.0.0:0".parse().unwrap());
        s.bind(loopback()).unwrap();
        assert_ne!(s.local_addr().unwrap().port(), 0);
    });
}

#[test]
fn listen_and_connect_through_configured_sockets() {
    each_flavor("listen_and_connect_through_configured_sockets", || async {
        let ls = TcpSocket::new_v4().unwrap();
        ls.set_reuseaddr(true).unwrap();
        ls.bind(loopback()).unwrap();
        // A huge backlog is clamped, not an error.
        let l = ls.listen(u32::MAX).unwrap();
        let addr = l.local_addr().unwrap();

        let cs = TcpSocket::new_v4().unwrap();
        cs.set_nodelay(true).unwrap();
        cs.set_linger(Some(Duration::from_secs(2))).unwrap();
        cs.bind(loopback()).unwrap();
        let from = cs.local_addr().unwrap();
        let (c, a) = join(cs.connect(addr), l.accept()).await;
        let (c, (a, peer)) = (c.unwrap(), a.unwrap());
        // The options and the bound address carry over to the stream.
        assert!(c.nodelay().unwrap());
        assert_eq!(c.linger().unwrap(), Some(Duration::from_secs(2)));
        assert_eq!(c.local_addr().unwrap(), from);
        assert_eq!(peer, from);
        c.write_all(b"configured").await.unwrap();
        let mut buf = [0; 10];
        a.read_exact(&mut buf).await.unwrap();
        assert_eq!(&buf, b"configured");
    });
}

#[test]
fn connect_errors() {
    each_flavor("connect_errors", || async {
        let closed = {
            let l = util::listener().await;
            l.local_addr().unwrap()
        };
        let e = TcpSocket::new_v4()
            .unwrap()
            .connect(closed)
            .await
            .unwrap_err();
        assert_eq!(e.kind(), io::ErrorKind::ConnectionRefused, "{e}");
        // An IPv4 socket cannot reach an IPv6 address: an immediate error, no wait.
        let e = TcpSocket::new_v4()
            .unwrap()
            .connect("[::1]:9".parse().unwrap())
            .await
            .unwrap_err();
        assert_ne!(e.kind(), io::ErrorKind::WouldBlock, "{e}");
    });
}

#[test]
fn bind_conflicts() {
    each_flavor("bind_conflicts", || async {
        let a = TcpSocket::new_v4().unwrap();
        a.bind(loopback()).unwrap();
        let addr = a.local_addr().unwrap();
        let _l = a.listen(16).unwrap();
        let b = TcpSocket::new_v4().unwrap();
        let e = b.bind(addr).unwrap_err();
        assert_eq!(e.kind(), io::ErrorKind::AddrInUse, "{e}");
    });
}

#[test]
fn reuseport_listeners_share_a_port() {
    each_flavor("reuseport_listeners_share_a_port", || async {
        // One listener per worker, as a server would set it up.
        let first = TcpSocket::new_v4().unwrap();
        first.set_reuseport(true).unwrap();
        first.bind(loopback()).unwrap();
        let addr = first.local_addr().unwrap();
        let second = TcpSocket::new_v4().unwrap();
        second.set_reuseport(true).unwrap();
        second.bind(addr).unwrap();
        let listeners = [
            Arc::new(first.listen(128).unwrap()),
            Arc::new(second.listen(128).unwrap()),
        ];
        const CONNS: usize = 64;
        let mut clients = Vec::new();
        for _ in 0..CONNS {
            clients.push(TcpStream::connect(addr).await.unwrap());
        }
        let want: HashSet<SocketAddr> = clients.iter().map(|c| c.local_addr().unwrap()).collect();
        // The kernel spreads the connections over both listeners; drain each until the
        // total is reached.
        let mut per_listener = [0usize; 2];
        let mut got = HashSet::new();
        while got.len() < CONNS {
            for (i, l) in listeners.iter().enumerate() {
                let l = l.clone();
                let accepted = spawn(async move {
                    epitome_runtime::time::timeout(Duration::from_millis(20), l.accept()).await
                });
                if let Ok(res) = within("accept", accepted).await.unwrap() {
                    let (_, peer) = res.unwrap();
                    assert!(got.insert(peer), "accepted twice");
                    per_listener[i] += 1;
                }
            }
        }
        assert_eq!(got, want);
        // 64 connections hashed over two listeners: both get some (all on one would
        // happen with probability 2^-63).
        assert!(
            per_listener.iter().all(|&n| n > 0),
            "per listener: {per_listener:?}"
        );
    });
}

#[test]
fn ipv6_socket_if_available() {
    each_flavor("ipv6_socket_if_available", || async {
        let s = TcpSocket::new_v6().unwrap();
        if s.bind("[::1]:0".parse().unwrap()).is_err() {
            eprintln!("no IPv6 loopback here; skipped");
            return;
        }
        let l = s.listen(16).unwrap();
        let addr = l.local_addr().unwrap();
        assert!(addr.is_ipv6());
        let (c, a) = join(TcpSocket::new_v6().unwrap().connect(addr), l.accept()).await;
        let (c, (a, _)) = (c.unwrap(), a.unwrap());
        a.write_all(b"v6").await.unwrap();
        let mut buf = [0; 2];
        c.read_exact(&mut buf).await.unwrap();
        assert_eq!(&buf, b"v6");
    });
}

#[test]
fn dropped_socket_closes() {
    each_flavor("dropped_socket_closes", || async {
        let s = TcpSocket::new_v4().unwrap();
        let id = util::FdId::of(&s);
        assert!(id.is_open());
        drop(s);
        assert!(!id.is_open());
    });
}
