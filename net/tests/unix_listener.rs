//! `UnixListener`: path and abstract addresses, accepting from several tasks and
//! workers, cancelled accepts, and drops.

mod util;

use std::collections::HashSet;
use std::io;
use std::os::fd::{AsFd, AsRawFd};
use std::os::linux::net::SocketAddrExt;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use epitome_net::unix::{SocketAddr, abstract_addr};
use epitome_net::{UnixListener, UnixStream};
use epitome_runtime::spawn;
use futures_util::StreamExt;
use futures_util::future::join;
use util::{FdId, TempDir, assert_pending, each_flavor, within};

fn registered() -> usize {
    epitome_runtime::runtime::Handle::current()
        .metrics()
        .num_registered_sources()
}

#[test]
fn bind_path_accept_and_addresses() {
    each_flavor("bind_path_accept_and_addresses", || async {
        let dir = TempDir::new("ul");
        let path = dir.join("sock");
        let l = UnixListener::bind(&path).unwrap();
        assert_eq!(l.local_addr().unwrap().as_pathname(), Some(path.as_path()));
        let (c, a) = join(UnixStream::connect(&path), l.accept()).await;
        let (c, (a, peer)) = (c.unwrap(), a.unwrap());
        // The client is unbound: an unnamed address.
        assert!(peer.is_unnamed());
        assert_eq!(c.peer_addr().unwrap().as_pathname(), Some(path.as_path()));
        c.write_all(b"unix").await.unwrap();
        let mut buf = [0; 4];
        a.read_exact(&mut buf).await.unwrap();
        assert_eq!(&buf, b"unix");
        // The path is taken while the socket file exists.
        let e = UnixListener::bind(&path).unwrap_err();
        assert_eq!(e.kind(), io::ErrorKind::AddrInUse, "{e}");
        // A directory that does not exist.
        let e = UnixListener::bind(dir.join("no/such/dir")).unwrap_err();
        assert_eq!(e.kind(), io::ErrorKind::NotFound, "{e}");
    });
}

#[test]
fn bind_abstract_accept() {
    each_flavor("bind_abstract_accept", || async {
        let name = util::abstract_name("ul");
        let addr = abstract_addr(&name).unwrap();
        let l = UnixListener::bind_addr(&addr).unwrap();
        assert_eq!(
            l.local_addr().unwrap().as_abstract_name(),
            Some(name.as_slice())
        );
        let (c, a) = join(UnixStream::connect_addr(&addr), l.accept()).await;
        let (c, (a, _)) = (c.unwrap(), a.unwrap());
        a.write_all(b"abstract").await.unwrap();
        let mut buf = [0; 8];
        c.read_exact(&mut buf).await.unwrap();
        assert_eq!(&buf, b"abstract");
        // The name is taken while the listener lives, free once it is dropped.
        assert_eq!(
            UnixListener::bind_addr(&addr).unwrap_err().kind(),
            io::ErrorKind::AddrInUse
        );
        drop(l);
        let again = UnixListener::bind_addr(&SocketAddr::from_abstract_name(&name).unwrap());
        assert!(again.is_ok());
    });
}

#[test]
fn std_conversions_fd_debug_take_error() {
    each_flavor("std_conversions_fd_debug_take_error", || async {
        let dir = TempDir::new("ul");
        let path = dir.join("sock");
        // A blocking std listener: from_std makes it non-blocking.
        let l =
            UnixListener::from_std(std::os::unix::net::UnixListener::bind(&path).unwrap()).unwrap();
        assert_pending("accept with nothing queued", l.accept()).await;
        assert_eq!(l.as_fd().as_raw_fd(), l.as_raw_fd());
        assert!(l.take_error().unwrap().is_none());
        let dbg = format!("{l:?}");
        assert!(
            dbg.contains("UnixListener") && dbg.contains("sock"),
            "{dbg}"
        );
        let std_l = l.into_std().unwrap();
        // A connection queued while it is std's is accepted after from_std.
        let std_c = std::os::unix::net::UnixStream::connect(&path).unwrap();
        let l = UnixListener::from_std(std_l).unwrap();
        let (a, _) = within("accept", l.accept()).await.unwrap();
        let c = UnixStream::from_std(std_c).unwrap();
        c.write_all(b"x").await.unwrap();
        let mut b = [0; 1];
        a.read_exact(&mut b).await.unwrap();
    });
}

#[test]
fn incoming_stream() {
    each_flavor("incoming_stream", || async {
        let dir = TempDir::new("ul");
        let path = dir.join("sock");
        let l = UnixListener::bind(&path).unwrap();
        let mut incoming = l.incoming();
        let p = path.clone();
        let clients = spawn(async move {
            let mut v = Vec::new();
            for _ in 0..5 {
                v.push(UnixStream::connect(&p).await.unwrap());
            }
            v
        });
        for i in 0..5u8 {
            let s = within("incoming.next", incoming.next())
                .await
                .expect("incoming never ends")
                .unwrap();
            s.write_all(&[i]).await.unwrap();
        }
        let clients = clients.await.unwrap();
        for (i, c) in clients.iter().enumerate() {
            let mut b = [0; 1];
            c.read_exact(&mut b).await.unwrap();
            assert_eq!(b[0] as usize, i);
        }
        assert_pending("incoming.next with nothing queued", incoming.next()).await;
    });
}

#[test]
fn many_acceptors_each_connection_once() {
    each_flavor("many_acceptors_each_connection_once", || async {
        let name = util::abstract_name("ul-many");
        let addr = abstract_addr(&name).unwrap();
        let l = Arc::new(UnixListener::bind_addr(&addr).unwrap());
        const CONNS: usize = 200;
        let accepted = Arc::new(AtomicUsize::new(0));
        let mut acceptors = Vec::new();
        for _ in 0..6 {
            let (l, accepted) = (l.clone(), accepted.clone());
            acceptors.push(spawn(async move {
                loop {
                    let (s, _) = l.accept().await.unwrap();
                    accepted.fetch_add(1, Ordering::Relaxed);
                    let mut b = [0; 2];
                    s.read_exact(&mut b).await.unwrap();
                    s.write_all(&b).await.unwrap();
                }
            }));
        }
        let mut clients = Vec::new();
        for i in 0..CONNS as u16 {
            let addr = abstract_addr(&name).unwrap();
            clients.push(spawn(async move {
                let c = UnixStream::connect_addr(&addr).await.unwrap();
                c.write_all(&i.to_be_bytes()).await.unwrap();
                let mut b = [0; 2];
                c.read_exact(&mut b).await.unwrap();
                u16::from_be_bytes(b)
            }));
        }
        let mut answers = HashSet::new();
        for c in clients {
            answers.insert(within("client", c).await.unwrap());
        }
        assert_eq!(answers, (0..CONNS as u16).collect());
        assert_eq!(accepted.load(Ordering::Relaxed), CONNS);
        for a in acceptors {
            a.abort();
            let _ = a.await;
        }
    });
}

#[test]
fn cancelled_accept_and_drop() {
    each_flavor("cancelled_accept_and_drop", || async {
        let baseline = registered();
        let dir = TempDir::new("ul");
        let path = dir.join("sock");
        let l = UnixListener::bind(&path).unwrap();
        for _ in 0..3 {
            assert_pending("accept with nothing queued", l.accept()).await;
        }
        let (c, a) = join(UnixStream::connect(&path), l.accept()).await;
        let (c, (a, _)) = (c.unwrap(), a.unwrap());
        drop((c, a));
        let id = FdId::of(&l);
        assert!(registered() > baseline);
        drop(l);
        assert_eq!(registered(), baseline);
        assert!(!id.is_open());
        assert!(!id.in_kernel_epoll());
        // The socket file stays (as with std); nobody listens on it any more.
        let e = UnixStream::connect(&path).await.unwrap_err();
        assert_eq!(e.kind(), io::ErrorKind::ConnectionRefused, "{e}");
    });
}
