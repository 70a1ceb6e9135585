//! Issue 20, bug 1: every `try_*` operation of every socket type works inside a task
//! whose cooperative budget is spent. (They used to poll readiness through the budget
//! with a no-op waker, so they answered `WouldBlock` without trying.) The `poll_*`
//! functions, in contrast, do spend the budget: that is how the tests spend it.

mod util;

use std::future::poll_fn;
use std::io::{IoSlice, IoSliceMut};
use std::net::SocketAddr;
use std::task::Poll;

use epitome_net::{UdpSocket, UnixDatagram, UnixStream};
use epitome_runtime::io::Interest;
use epitome_runtime::spawn;
use util::each_flavor;

/// Runs `f` in a task, within one poll, after spending the task's budget: polls a
/// writable socket's write readiness until it answers `Pending`, which a socket known
/// to be writable only does when the budget is gone.
async fn with_spent_budget<R, F>(f: F) -> R
where
    R: Send + 'static,
    F: FnOnce() -> R + Send + 'static,
{
    let task = spawn(async move {
        let (spender, _peer) = UnixStream::pair().unwrap();
        // Writable for sure (the reactor has said so), so `Pending` below can only
        // mean the budget is gone.
        spender.writable().await.unwrap();
        let mut f = Some(f);
        poll_fn(move |cx| {
            let spent = (0..100_000).any(|_| spender.poll_write_ready(cx).is_pending());
            assert!(spent, "the budget never ran out");
            // Still spent: a poll function keeps answering `Pending`.
            assert!(spender.poll_write_ready(cx).is_pending());
            let f = f.take().expect("polled once: it returns Ready");
            Poll::Ready(f())
        })
        .await
    });
    util::within("the spent-budget task", task).await.unwrap()
}

#[test]
fn tcp_stream_try_operations_ignore_a_spent_budget() {
    each_flavor(
        "tcp_stream_try_operations_ignore_a_spent_budget",
        || async {
            let (c, a) = util::tcp_pair().await;
            c.write_all(b"abcdefghij").await.unwrap();
            a.readable().await.unwrap();
            let (a, c) = with_spent_budget(move || {
                let mut one = [0; 2];
                assert_eq!(a.try_read(&mut one).unwrap(), 2);
                let (mut x, mut y) = ([0; 1], [0; 2]);
                let mut bufs = [IoSliceMut::new(&mut x), IoSliceMut::new(&mut y)];
                assert_eq!(a.try_read_vectored(&mut bufs).unwrap(), 3);
                let mut v = Vec::with_capacity(16);
                assert_eq!(a.try_read_buf(&mut v).unwrap(), 5);
                assert_eq!(v, b"fghij");
                assert_eq!(c.try_write(b"12").unwrap(), 2);
                let n = c
                    .try_write_vectored(&[IoSlice::new(b"3"), IoSlice::new(b"4")])
                    .unwrap();
                assert_eq!(n, 2);
                let n = c.try_io(Interest::WRITABLE, || c.try_write(b"5")).unwrap();
                assert_eq!(n, 1);
                (a, c)
            })
            .await;
            let mut buf = [0; 5];
            a.read_exact(&mut buf).await.unwrap();
            assert_eq!(&buf, b"12345");
            drop(c);
        },
    );
}

#[test]
fn stream_halves_try_operations_ignore_a_spent_budget() {
    each_flavor(
        "stream_halves_try_operations_ignore_a_spent_budget",
        || async {
            let (c, a) = util::tcp_pair().await;
            let (ar, aw) = a.into_split();
            let (cr, cw) = c.into_split();
            cw.as_ref().write_all(b"xyz").await.unwrap();
            ar.readable().await.unwrap();
            let (ar, aw, cr, cw) = with_spent_budget(move || {
                let mut buf = [0; 8];
                assert_eq!(ar.try_read(&mut buf).unwrap(), 3);
                assert_eq!(aw.try_write(b"back").unwrap(), 4);
                (ar, aw, cr, cw)
            })
            .await;
            cr.readable().await.unwrap();
            let mut buf = [0; 8];
            assert_eq!(cr.try_read(&mut buf).unwrap(), 4);
            drop((ar, aw, cw));
        },
    );
}

#[test]
fn unix_stream_try_operations_ignore_a_spent_budget() {
    each_flavor(
        "unix_stream_try_operations_ignore_a_spent_budget",
        || async {
            let (c, a) = util::unix_pair();
            c.write_all(b"hello").await.unwrap();
            let (a, c) = with_spent_budget(move || {
                // No `readable()` first: the try asks the socket, not the reactor.
                let mut buf = [0; 16];
                assert_eq!(a.try_read(&mut buf).unwrap(), 5);
                assert_eq!(c.try_write(b"w").unwrap(), 1);
                let (b1, b2) = a.split();
                assert_eq!(b2.try_write(b"!").unwrap(), 1);
                assert_eq!(b1.try_read(&mut buf).unwrap(), 1);
                (a, c)
            })
            .await;
            let mut buf = [0; 2];
            c.read_exact(&mut buf[..1]).await.unwrap();
            assert_eq!(&buf[..1], b"!");
            drop(a);
        },
    );
}

#[test]
fn udp_try_operations_ignore_a_spent_budget() {
    each_flavor("udp_try_operations_ignore_a_spent_budget", || async {
        let a = UdpSocket::bind("127.0.0.1:0").await.unwrap();
        let b = UdpSocket::bind("127.0.0.1:0").await.unwrap();
        let (aa, ba) = (a.local_addr().unwrap(), b.local_addr().unwrap());
        b.connect(aa).await.unwrap();
        for d in [&b"1"[..], b"22", b"333", b"4444", b"55555"] {
            a.send_to(d, ba).await.unwrap();
        }
        b.readable().await.unwrap();
        let (a, b) = with_spent_budget(move || {
            let mut buf = [0; 16];
            assert_eq!(b.try_peek_sender().unwrap(), aa);
            assert_eq!(b.try_peek(&mut buf).unwrap(), 1);
            assert_eq!(b.try_peek_from(&mut buf).unwrap(), (1, aa));
            assert_eq!(b.try_recv(&mut buf).unwrap(), 1);
            assert_eq!(b.try_recv_from(&mut buf).unwrap(), (2, aa));
            let mut v = Vec::with_capacity(16);
            assert_eq!(b.try_recv_buf(&mut v).unwrap(), 3);
            let mut v = Vec::with_capacity(16);
            assert_eq!(b.try_recv_buf_from(&mut v).unwrap(), (4, aa));
            let n = b
                .try_io(Interest::READABLE, || b.try_recv(&mut buf))
                .unwrap();
            assert_eq!(n, 5);
            assert_eq!(b.try_send(b"s").unwrap(), 1);
            assert_eq!(b.try_send_to(b"t", aa).unwrap(), 1);
            (a, b)
        })
        .await;
        let mut buf = [0; 4];
        assert_eq!(a.recv_from(&mut buf).await.unwrap(), (1, ba));
        assert_eq!(a.recv_from(&mut buf).await.unwrap(), (1, ba));
        drop(b);
    });
}

#[test]
fn unix_datagram_try_operations_ignore_a_spent_budget() {
    each_flavor(
        "unix_datagram_try_operations_ignore_a_spent_budget",
        || async {
            let dir = util::TempDir::new("budget");
            let bpath = dir.join("b");
            let a = UnixDatagram::bind(dir.join("a")).unwrap();
            let b = UnixDatagram::bind(&bpath).unwrap();
            a.connect(&bpath).unwrap();
            for d in [&b"1"[..], b"22", b"333", b"4444", b"55555"] {
                a.send(d).await.unwrap();
            }
            b.readable().await.unwrap();
            let (a, b, bpath) = with_spent_budget(move || {
                let mut buf = [0; 16];
                assert_eq!(b.try_recv(&mut buf).unwrap(), 1);
                let (n, from) = b.try_recv_from(&mut buf).unwrap();
                assert_eq!((n, from.as_pathname()), (2, Some(dir.join("a").as_path())));
                let mut v = Vec::with_capacity(16);
                assert_eq!(b.try_recv_buf(&mut v).unwrap(), 3);
                let mut v = Vec::with_capacity(16);
                assert_eq!(b.try_recv_buf_from(&mut v).unwrap().0, 4);
                let n = b
                    .try_io(Interest::READABLE, || b.try_recv(&mut buf))
                    .unwrap();
                assert_eq!(n, 5);
                assert_eq!(a.try_send(b"s").unwrap(), 1);
                assert_eq!(a.try_send_to(b"t", &bpath).unwrap(), 1);
                (a, b, (bpath, dir))
            })
            .await;
            let mut buf = [0; 4];
            assert_eq!(b.recv(&mut buf).await.unwrap(), 1);
            assert_eq!(b.recv(&mut buf).await.unwrap(), 1);
            drop((a, bpath));
        },
    );
}

#[test]
fn poll_functions_do_spend_the_budget() {
    each_flavor("poll_functions_do_spend_the_budget", || async {
        let a = UdpSocket::bind("127.0.0.1:0").await.unwrap();
        let target: SocketAddr = a.local_addr().unwrap();
        a.send_to(b"x", target).await.unwrap();
        a.readable().await.unwrap();
        let a = with_spent_budget(move || {
            let waker = std::task::Waker::noop();
            let mut cx = std::task::Context::from_waker(waker);
            // Data is there, but a poll function defers to the budget...
            assert!(a.poll_recv_ready(&mut cx).is_pending());
            let mut v = Vec::with_capacity(8);
            assert!(a.poll_recv(&mut cx, &mut v).is_pending());
            // ...while a try does not.
            assert_eq!(a.try_recv(&mut [0; 8]).unwrap(), 1);
            a
        })
        .await;
        drop(a);
    });
}
