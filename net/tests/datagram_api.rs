//! The datagram sockets' poll, try and buffer API, as tokio documents it:
//! `poll_send(_to)`, `poll_recv(_from)`, `poll_peek(_from)`, `poll_peek_sender`,
//! `peek_sender`, `try_peek_sender`, `recv_buf(_from)`, `try_recv_buf(_from)`, on
//! `UdpSocket` and `UnixDatagram`: truncation, empty datagrams, unbound senders, errors
//! from the network.

mod util;

use std::future::poll_fn;
use std::io;
use std::net::SocketAddr;
use std::task::Poll;

use bytes::BytesMut;
use epitome_net::{UdpSocket, UnixDatagram};
use tokio::io::ReadBuf;
use util::{assert_pending, each_flavor, err_kind, within};

async fn udp_pair() -> (UdpSocket, UdpSocket, SocketAddr, SocketAddr) {
    let a = UdpSocket::bind("127.0.0.1:0").await.unwrap();
    let b = UdpSocket::bind("127.0.0.1:0").await.unwrap();
    let (aa, ba) = (a.local_addr().unwrap(), b.local_addr().unwrap());
    (a, b, aa, ba)
}

#[test]
fn udp_poll_send_and_recv() {
    each_flavor("udp_poll_send_and_recv", || async {
        let (a, b, aa, ba) = udp_pair().await;
        a.connect(ba).await.unwrap();
        b.connect(aa).await.unwrap();
        let n = poll_fn(|cx| a.poll_send(cx, b"one")).await.unwrap();
        assert_eq!(n, 3);
        // Into tokio's ReadBuf (a BufMut): filled by the datagram's length.
        let mut storage = [0u8; 16];
        let mut rb = ReadBuf::new(&mut storage);
        within("poll_recv", poll_fn(|cx| b.poll_recv(cx, &mut rb)))
            .await
            .unwrap();
        assert_eq!(rb.filled(), b"one");
        // Into a Vec: appended.
        poll_fn(|cx| a.poll_send_to(cx, b"two", ba)).await.unwrap();
        let mut v = Vec::with_capacity(16);
        let from = within("poll_recv_from", poll_fn(|cx| b.poll_recv_from(cx, &mut v))).await;
        assert_eq!((from.unwrap(), &v[..]), (aa, &b"two"[..]));
        // Pending while nothing comes.
        let mut v = Vec::with_capacity(16);
        let pending = poll_fn(|cx| Poll::Ready(b.poll_recv(cx, &mut v).is_pending())).await;
        assert!(pending && v.is_empty());
    });
}

#[test]
fn udp_peeks_leave_the_datagram_queued() {
    each_flavor("udp_peeks_leave_the_datagram_queued", || async {
        let (a, b, aa, ba) = udp_pair().await;
        assert_eq!(err_kind(b.try_peek_sender()), io::ErrorKind::WouldBlock);
        assert_eq!(
            err_kind(b.try_peek_from(&mut [0; 4])),
            io::ErrorKind::WouldBlock
        );
        a.send_to(b"peeked", ba).await.unwrap();
        assert_eq!(within("peek_sender", b.peek_sender()).await.unwrap(), aa);
        assert_eq!(poll_fn(|cx| b.poll_peek_sender(cx)).await.unwrap(), aa);
        assert_eq!(b.try_peek_sender().unwrap(), aa);
        let mut v = Vec::with_capacity(3);
        let from = poll_fn(|cx| b.poll_peek_from(cx, &mut v)).await.unwrap();
        // A peek into a smaller buffer gets the start of it.
        assert_eq!((from, &v[..]), (aa, &b"pee"[..]));
        let mut storage = [0u8; 16];
        let mut rb = ReadBuf::new(&mut storage);
        poll_fn(|cx| b.poll_peek(cx, &mut rb)).await.unwrap();
        assert_eq!(rb.filled(), b"peeked");
        let mut buf = [0; 16];
        assert_eq!(b.try_peek_from(&mut buf).unwrap(), (6, aa));
        assert_eq!(b.try_peek(&mut buf).unwrap(), 6);
        // All the while it stayed queued.
        assert_eq!(b.recv_from(&mut buf).await.unwrap(), (6, aa));
        assert_eq!(err_kind(b.try_peek_sender()), io::ErrorKind::WouldBlock);
    });
}

#[test]
fn udp_recv_buf_truncation_and_empty_datagrams() {
    each_flavor("udp_recv_buf_truncation_and_empty_datagrams", || async {
        let (a, b, aa, ba) = udp_pair().await;
        a.send_to(b"0123456789", ba).await.unwrap();
        // Room for 4 bytes: the datagram is truncated, the rest is gone.
        let mut v = Vec::with_capacity(4);
        assert_eq!(b.recv_buf(&mut v).await.unwrap(), 4);
        assert_eq!(v, b"0123");
        assert_eq!(err_kind(b.try_recv_buf(&mut v)), io::ErrorKind::WouldBlock);
        // An empty datagram is a datagram: length 0, sender known.
        a.send_to(b"", ba).await.unwrap();
        let mut bm = BytesMut::with_capacity(8);
        assert_eq!(b.recv_buf_from(&mut bm).await.unwrap(), (0, aa));
        a.send_to(b"tail", ba).await.unwrap();
        b.readable().await.unwrap();
        let mut bm = BytesMut::with_capacity(8);
        assert_eq!(b.try_recv_buf_from(&mut bm).unwrap(), (4, aa));
        assert_eq!(&bm[..], b"tail");
        // A Vec with no spare room grows a little rather than dropping the datagram.
        a.send_to(b"grow", ba).await.unwrap();
        let mut v: Vec<u8> = Vec::new();
        assert_eq!(b.recv_buf(&mut v).await.unwrap(), 4);
        assert_eq!(v, b"grow");
    });
}

#[test]
fn udp_errors_from_the_network_reach_the_receiver() {
    each_flavor("udp_errors_from_the_network_reach_the_receiver", || async {
        let (a, b, _, ba) = udp_pair().await;
        // Connect to a port nobody listens on: the ICMP error comes back to recv.
        drop(b);
        a.connect(ba).await.unwrap();
        a.send(b"anyone?").await.unwrap();
        let mut v = Vec::with_capacity(8);
        let res = within("recv after ICMP", a.recv_buf(&mut v)).await;
        assert_eq!(err_kind(res), io::ErrorKind::ConnectionRefused);
        assert_pending("nothing more", a.recv_buf(&mut v)).await;
    });
}

#[test]
fn unix_datagram_poll_and_buf_api() {
    each_flavor("unix_datagram_poll_and_buf_api", || async {
        let dir = util::TempDir::new("dgram-api");
        let (ap, bp) = (dir.join("a"), dir.join("b"));
        let a = UnixDatagram::bind(&ap).unwrap();
        let b = UnixDatagram::bind(&bp).unwrap();
        assert_eq!(
            poll_fn(|cx| a.poll_send_to(cx, b"to-b", &bp))
                .await
                .unwrap(),
            4
        );
        let mut v = Vec::with_capacity(16);
        let from = within("poll_recv_from", poll_fn(|cx| b.poll_recv_from(cx, &mut v))).await;
        assert_eq!(from.unwrap().as_pathname(), Some(ap.as_path()));
        assert_eq!(v, b"to-b");
        a.connect(&bp).unwrap();
        let sent = within("poll_send", poll_fn(|cx| a.poll_send(cx, b"c"))).await;
        assert_eq!(sent.unwrap(), 1);
        let mut storage = [0u8; 4];
        let mut rb = ReadBuf::new(&mut storage);
        within("poll_recv", poll_fn(|cx| b.poll_recv(cx, &mut rb)))
            .await
            .unwrap();
        assert_eq!(rb.filled(), b"c");
        // Buffers, with and without the sender.
        within("send", a.send(b"buf")).await.unwrap();
        let mut bm = BytesMut::with_capacity(8);
        let (n, from) = within("recv_buf_from", b.recv_buf_from(&mut bm))
            .await
            .unwrap();
        assert_eq!((n, from.as_pathname()), (3, Some(ap.as_path())));
        a.try_send(b"try").unwrap();
        let mut v = Vec::with_capacity(8);
        assert_eq!(b.try_recv_buf(&mut v).unwrap(), 3);
        assert_eq!(
            err_kind(b.try_recv_buf_from(&mut v)),
            io::ErrorKind::WouldBlock
        );
        assert_eq!(
            err_kind(b.try_recv_from(&mut [0; 4])),
            io::ErrorKind::WouldBlock
        );
        // An unbound sender has an unnamed address.
        let u = UnixDatagram::unbound().unwrap();
        u.try_send_to(b"anon", &bp).unwrap();
        let mut v = Vec::with_capacity(8);
        let (n, from) = within("recv_buf_from unnamed", b.recv_buf_from(&mut v))
            .await
            .unwrap();
        assert!(n == 4 && from.is_unnamed(), "{from:?}");
        // Sending to a path nobody is bound to: the kernel's error.
        let res = u.try_send_to(b"x", dir.join("nobody"));
        assert_eq!(err_kind(res), io::ErrorKind::NotFound);
        // Shut down for writing: sends fail at once with the kernel's EPIPE.
        a.shutdown(std::net::Shutdown::Write).unwrap();
        let res = within("send after shutdown", a.send(b"late")).await;
        assert_eq!(err_kind(res), io::ErrorKind::BrokenPipe);
        assert_eq!(err_kind(a.try_send(b"late")), io::ErrorKind::BrokenPipe);
        drop(dir);
    });
}
