//! `ToSocketAddrs`: every implementing type, through `TcpListener::bind`,
//! `TcpStream::connect`, `UdpSocket::bind`, `connect` and `send_to`; host names looked
//! up on the blocking pool; the errors for what resolves to nothing.

mod util;

use std::io;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr, SocketAddrV4, SocketAddrV6};

use epitome_net::{TcpListener, TcpStream, ToSocketAddrs, UdpSocket};
use futures_util::future::join;
use util::{each_flavor, within};

/// Connects to `l` through `addr` (any form) and checks the accepted peer.
async fn connect_through<A: ToSocketAddrs>(l: &TcpListener, addr: A, what: &str) {
    let (c, a) = join(TcpStream::connect(addr), l.accept()).await;
    let c = c.unwrap_or_else(|e| panic!("connect through {what}: {e}"));
    let (_, peer) = a.unwrap();
    assert_eq!(peer, c.local_addr().unwrap(), "{what}");
}

#[test]
fn literal_forms() {
    each_flavor("literal_forms", || async {
        let l = util::listener().await;
        let addr = l.local_addr().unwrap();
        let port = addr.port();
        let v4 = SocketAddrV4::new(Ipv4Addr::LOCALHOST, port);
        connect_through(&l, addr, "SocketAddr").await;
        connect_through(&l, v4, "SocketAddrV4").await;
        connect_through(&l, (IpAddr::V4(Ipv4Addr::LOCALHOST), port), "(IpAddr, u16)").await;
        connect_through(&l, (Ipv4Addr::LOCALHOST, port), "(Ipv4Addr, u16)").await;
        connect_through(&l, [addr], "[SocketAddr; 1]").await;
        connect_through(&l, &[addr][..], "&[SocketAddr]").await;
        let s = format!("127.0.0.1:{port}");
        connect_through(&l, s.as_str(), "&str").await;
        connect_through(&l, s.clone(), "String").await;
        connect_through(&l, &s, "&String").await;
        connect_through(&l, ("127.0.0.1", port), "(&str, u16)").await;
        connect_through(&l, ("127.0.0.1".to_string(), port), "(String, u16)").await;
        connect_through(&l, &&addr, "&&SocketAddr").await;
    });
}

#[test]
fn ipv6_literal_forms_if_available() {
    each_flavor("ipv6_literal_forms_if_available", || async {
        let Ok(l) = TcpListener::bind((Ipv6Addr::LOCALHOST, 0)).await else {
            eprintln!("no IPv6 loopback here; skipped");
            return;
        };
        let port = l.local_addr().unwrap().port();
        connect_through(&l, SocketAddrV6::new(Ipv6Addr::LOCALHOST, port, 0, 0), "V6").await;
        connect_through(&l, (Ipv6Addr::LOCALHOST, port), "(Ipv6Addr, u16)").await;
        connect_through(&l, format!("[::1]:{port}"), "\"[::1]:port\"").await;
        connect_through(&l, ("::1", port), "(\"::1\", u16)").await;
    });
}

#[test]
fn host_names_are_looked_up_on_the_blocking_pool() {
    each_flavor("host_names_are_looked_up_on_the_blocking_pool", || async {
        let metrics = epitome_runtime::runtime::Handle::current().metrics();
        assert_eq!(metrics.num_blocking_threads(), 0);
        let l = util::listener().await;
        let port = l.local_addr().unwrap().port();
        // "localhost" may name ::1 too; connect tries each address in turn.
        connect_through(&l, format!("localhost:{port}"), "\"localhost:port\"").await;
        assert!(
            metrics.num_blocking_threads() >= 1,
            "the lookup ran on the blocking pool"
        );
        connect_through(&l, ("localhost", port), "(\"localhost\", u16)").await;
        connect_through(&l, ("localhost".to_string(), port), "(String, u16)").await;

        // bind and send_to take names too.
        let u = UdpSocket::bind("localhost:0").await.unwrap();
        let to = u.local_addr().unwrap();
        assert!(to.ip().is_loopback());
        let v = UdpSocket::bind(("localhost", 0)).await.unwrap();
        v.send_to(b"named", format!("localhost:{}", to.port()))
            .await
            .unwrap();
        let mut buf = [0; 5];
        let (n, from) = within("recv_from", u.recv_from(&mut buf)).await.unwrap();
        assert_eq!((&buf[..n], from), (&b"named"[..], v.local_addr().unwrap()));
        v.connect(("localhost", to.port())).await.unwrap();
        assert_eq!(v.peer_addr().unwrap().port(), to.port());
    });
}

#[test]
fn what_resolves_to_nothing_is_an_error() {
    each_flavor("what_resolves_to_nothing_is_an_error", || async {
        let none: &[SocketAddr] = &[];
        let e = TcpStream::connect(none).await.unwrap_err();
        assert_eq!(e.kind(), io::ErrorKind::InvalidInput, "{e}");
        let e = TcpListener::bind(none).await.unwrap_err();
        assert_eq!(e.kind(), io::ErrorKind::InvalidInput, "{e}");
        let u = UdpSocket::bind("127.0.0.1:0").await.unwrap();
        let e = u.send_to(b"x", none).await.unwrap_err();
        assert_eq!(e.kind(), io::ErrorKind::InvalidInput, "{e}");
        let e = u.connect(none).await.unwrap_err();
        assert_eq!(e.kind(), io::ErrorKind::InvalidInput, "{e}");
        // Not an address, and no port to look a name up with: rejected without a lookup.
        for bad in ["127.0.0.1", "no-port-here"] {
            let e = TcpStream::connect(bad).await.unwrap_err();
            assert_eq!(e.kind(), io::ErrorKind::InvalidInput, "{bad}: {e}");
        }
        let e = TcpStream::connect("127.0.0.1:notaport").await.unwrap_err();
        assert_eq!(e.kind(), io::ErrorKind::InvalidInput, "{e}");
    });
}

#[test]
fn unspecified_address_binds_everywhere() {
    each_flavor("unspecified_address_binds_everywhere", || async {
        let l = TcpListener::bind((Ipv4Addr::UNSPECIFIED, 0)).await.unwrap();
        let port = l.local_addr().unwrap().port();
        assert!(l.local_addr().unwrap().ip().is_unspecified());
        connect_through(&l, (Ipv4Addr::LOCALHOST, port), "loopback to 0.0.0.0").await;
    });
}

#[test]
fn lookup_host_resolves_literals_and_names() {
    each_flavor("lookup_host_resolves_literals_and_names", || async {
        let got: Vec<SocketAddr> = epitome_net::lookup_host("127.0.0.1:7")
            .await
            .unwrap()
            .collect();
        assert_eq!(got, ["127.0.0.1:7".parse::<SocketAddr>().unwrap()]);
        let got: Vec<SocketAddr> = epitome_net::lookup_host((Ipv4Addr::LOCALHOST, 9))
            .await
            .unwrap()
            .collect();
        assert_eq!(got, [SocketAddr::from((Ipv4Addr::LOCALHOST, 9))]);
        // A host name goes to the system resolver (off the worker); localhost resolves.
        let got: Vec<SocketAddr> =
            within("lookup localhost", epitome_net::lookup_host("localhost:5"))
                .await
                .unwrap()
                .collect();
        assert!(!got.is_empty() && got.iter().all(|a| a.port() == 5 && a.ip().is_loopback()));
        // No port: the resolver's error, not a panic.
        let res = within(
            "lookup without a port",
            epitome_net::lookup_host("localhost"),
        )
        .await;
        assert!(res.is_err());
    });
}
