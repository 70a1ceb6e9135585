//! The socket options tokio has and epitome now has too, read back from the kernel:
//! `TcpSocket` keepalive, linger (and zero linger), `tos_v4`, `tclass_v6`, device,
//! `take_error`, `from_std_stream`; the same options on `UdpSocket`.

mod util;

use std::io;
use std::net::{Ipv6Addr, SocketAddr};
use std::os::fd::AsRawFd;
use std::time::Duration;

use epitome_net::{TcpSocket, UdpSocket};
use util::{each_flavor, within};

#[test]
fn tcp_socket_keepalive_and_linger() {
    let s = TcpSocket::new_v4().unwrap();
    assert!(!s.keepalive().unwrap());
    s.set_keepalive(true).unwrap();
    assert!(s.keepalive().unwrap());
    s.set_keepalive(false).unwrap();
    assert!(!s.keepalive().unwrap());
    assert_eq!(s.linger().unwrap(), None);
    s.set_linger(Some(Duration::from_secs(3))).unwrap();
    assert_eq!(s.linger().unwrap(), Some(Duration::from_secs(3)));
    s.set_zero_linger().unwrap();
    assert_eq!(s.linger().unwrap(), Some(Duration::ZERO));
    s.set_linger(None).unwrap();
    assert_eq!(s.linger().unwrap(), None);
    assert!(s.take_error().unwrap().is_none());
}

#[test]
#[allow(deprecated)]
fn tcp_socket_tos_and_tclass() {
    let s = TcpSocket::new_v4().unwrap();
    s.set_tos_v4(0x10).unwrap();
    assert_eq!(s.tos_v4().unwrap(), 0x10);
    // The kernel keeps a TCP socket's ECN bits (the low two) to itself.
    s.set_tos_v4(0x13).unwrap();
    assert_eq!(s.tos_v4().unwrap(), 0x10);
    // The deprecated names are the same option.
    s.set_tos(0x08).unwrap();
    assert_eq!((s.tos().unwrap(), s.tos_v4().unwrap()), (0x08, 0x08));
    // IPV6_TCLASS is an IPv6 option: an IPv4 socket refuses it.
    assert!(s.set_tclass_v6(0x20).is_err());
    match TcpSocket::new_v6() {
        Ok(s6) => {
            s6.set_tclass_v6(0x20).unwrap();
            assert_eq!(s6.tclass_v6().unwrap(), 0x20);
        }
        Err(e) => eprintln!("no IPv6 here ({e}); tclass_v6 skipped"),
    }
}

#[test]
fn tcp_socket_device() {
    let s = TcpSocket::new_v4().unwrap();
    assert_eq!(s.device().unwrap(), None);
    s.bind_device(None).unwrap();
    match s.bind_device(Some(b"lo")) {
        Ok(()) => assert_eq!(s.device().unwrap().as_deref(), Some(&b"lo"[..])),
        // Binding to a device needs CAP_NET_RAW.
        Err(e) => assert_eq!(e.kind(), io::ErrorKind::PermissionDenied, "{e}"),
    }
    let res = s.bind_device(Some(b"no-such-device-0"));
    assert!(res.is_err());
}

#[test]
fn tcp_socket_from_std_stream_connects_without_blocking_the_worker() {
    each_flavor("tcp_socket_from_std_stream", || async {
        let l = util::listener().await;
        let addr = l.local_addr().unwrap();
        // A socket made and configured elsewhere (blocking, as socket2 makes it).
        let raw = socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::STREAM, None).unwrap();
        raw.set_keepalive(true).unwrap();
        let s = TcpSocket::from_std_stream(raw.into());
        assert!(s.keepalive().unwrap());
        let (c, a) = futures_util::future::join(s.connect(addr), l.accept()).await;
        let c = c.unwrap();
        let _accepted = a.unwrap();
        // SAFETY: the fd is open (borrowed from `c`).
        let flags = unsafe { libc::fcntl(c.as_raw_fd(), libc::F_GETFL) };
        assert!(
            flags & libc::O_NONBLOCK != 0,
            "connect made it non-blocking"
        );
        // A read with nothing there waits (in the reactor), it does not block.
        util::assert_pending("read", c.read(&mut [0; 4])).await;

        // Listening works the same way.
        let raw = socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::STREAM, None).unwrap();
        raw.bind(&"127.0.0.1:0".parse::<SocketAddr>().unwrap().into())
            .unwrap();
        let l2 = TcpSocket::from_std_stream(raw.into()).listen(16).unwrap();
        util::assert_pending("accept", l2.accept()).await;
    });
}

#[test]
#[allow(deprecated)]
fn udp_socket_tos_tclass_and_device() {
    each_flavor("udp_socket_tos_tclass_and_device", || async {
        let s = UdpSocket::bind("127.0.0.1:0").await.unwrap();
        s.set_tos_v4(0x13).unwrap();
        // UDP keeps every bit it is given, ECN included.
        assert_eq!(s.tos_v4().unwrap(), 0x13);
        s.set_tos(0x10).unwrap();
        assert_eq!(s.tos().unwrap(), 0x10);
        assert!(s.tclass_v6().is_err());
        assert_eq!(s.device().unwrap(), None);
        s.bind_device(None).unwrap();
        assert!(s.take_error().unwrap().is_none());
        match UdpSocket::bind((Ipv6Addr::LOCALHOST, 0)).await {
            Ok(s6) => {
                s6.set_tclass_v6(0x28).unwrap();
                assert_eq!(s6.tclass_v6().unwrap(), 0x28);
                // Packets still flow with the traffic class set.
                let target = s6.local_addr().unwrap();
                s6.send_to(b"t", target).await.unwrap();
                let mut buf = [0; 1];
                within("recv", s6.recv_from(&mut buf)).await.unwrap();
            }
            Err(e) => eprintln!("no IPv6 loopback here ({e}); skipped"),
        }
    });
}
