//! The readiness API as tokio documents it, on every socket type: `ready(Interest)`,
//! `poll_read_ready` / `poll_write_ready` (`poll_recv_ready` / `poll_send_ready`),
//! closed peers, resets, urgent data, and sockets whose runtime has shut down.

mod util;

use std::future::poll_fn;
use std::io;
use std::net::Shutdown;
use std::os::fd::AsRawFd;
use std::task::Poll;
use std::time::Duration;

use epitome_net::{TcpStream, UdpSocket, UnixDatagram};
use epitome_runtime::io::{Interest, Ready};
use epitome_runtime::{spawn, time};
use util::{assert_pending, each_flavor, within};

/// Reads (non-blocking) until `WouldBlock`, clearing read readiness.
fn drain(s: &TcpStream) -> usize {
    let mut buf = [0; 4096];
    let mut total = 0;
    loop {
        match s.try_read(&mut buf) {
            Ok(0) => return total,
            Ok(n) => total += n,
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => return total,
            Err(e) => panic!("try_read: {e}"),
        }
    }
}

#[test]
fn ready_reports_what_is_ready_and_waits_for_the_rest() {
    each_flavor(
        "ready_reports_what_is_ready_and_waits_for_the_rest",
        || async {
            let (c, a) = util::tcp_pair().await;
            // A just-accepted stream is assumed ready both ways (its first read is tried
            // at once); a `WouldBlock` corrects that.
            assert_eq!(drain(&a), 0);
            // Connected, nothing sent: writable, not readable.
            let r = within(
                "ready(R|W)",
                a.ready(Interest::READABLE | Interest::WRITABLE),
            )
            .await;
            let r = r.unwrap();
            assert!(r.is_writable() && !r.is_readable(), "{r:?}");
            assert!(!r.is_read_closed() && !r.is_write_closed() && !r.is_error());
            assert_pending(
                "ready(READABLE) with nothing sent",
                a.ready(Interest::READABLE),
            )
            .await;
            // Data arrives: READABLE resolves, and only readable-side bits are reported.
            c.write_all(b"data").await.unwrap();
            let r = within("ready(READABLE)", a.ready(Interest::READABLE))
                .await
                .unwrap();
            assert!(r.is_readable() && !r.is_writable(), "{r:?}");
            // Both asked, both ready: both reported.
            let r = a
                .ready(Interest::READABLE | Interest::WRITABLE)
                .await
                .unwrap();
            assert!(r.is_readable() && r.is_writable(), "{r:?}");
            assert_eq!(drain(&a), 4);
            // `try_read`'s WouldBlock cleared the readiness: the next wait waits.
            assert_pending(
                "ready(READABLE) after draining",
                a.ready(Interest::READABLE),
            )
            .await;
        },
    );
}

#[test]
fn ready_sees_the_peer_close() {
    each_flavor("ready_sees_the_peer_close", || async {
        let (c, a) = util::tcp_pair().await;
        drain(&a);
        c.shutdown(Shutdown::Write).await.unwrap();
        let r = within("ready after FIN", a.ready(Interest::READABLE))
            .await
            .unwrap();
        assert!(r.is_readable() && r.is_read_closed(), "{r:?}");
        // Read-closed is lasting: end of stream now, and ready again at once.
        assert_eq!(a.try_read(&mut [0; 8]).unwrap(), 0);
        let r = within("ready again", a.ready(Interest::READABLE))
            .await
            .unwrap();
        assert!(r.is_read_closed(), "{r:?}");

        let (x, y) = util::unix_pair();
        drop(x);
        let r = within("unix ready", y.ready(Interest::READABLE))
            .await
            .unwrap();
        assert!(r.is_read_closed(), "{r:?}");
        // The hang-up closed the write side too.
        let r = y
            .ready(Interest::READABLE | Interest::WRITABLE)
            .await
            .unwrap();
        assert!(r.is_read_closed() && r.is_write_closed(), "{r:?}");
        assert!(r.is_readable() && r.is_writable(), "{r:?}");
    });
}

#[test]
fn ready_error_waits_for_an_error_only() {
    each_flavor("ready_error_waits_for_an_error_only", || async {
        let (c, a) = util::tcp_pair().await;
        c.write_all(b"readable, but no error").await.unwrap();
        a.readable().await.unwrap();
        // Readable data does not answer an interest in errors.
        assert_pending("ready(ERROR) on a healthy stream", a.ready(Interest::ERROR)).await;
        // A reset does.
        let waiter = async { a.ready(Interest::ERROR).await };
        let reset = async {
            time::sleep(Duration::from_millis(10)).await;
            c.set_zero_linger().unwrap();
            drop(c);
        };
        let (r, ()) = within(
            "ready(ERROR) after a reset",
            futures_util::future::join(waiter, reset),
        )
        .await;
        let r = r.unwrap();
        assert!(r.is_error(), "{r:?}");
        assert!(!r.is_readable(), "only what was asked is reported: {r:?}");
        // The data that came before the reset is read first, then the reset.
        let mut buf = [0; 64];
        assert_eq!(a.try_read(&mut buf).unwrap(), 22);
        assert_eq!(
            util::err_kind(a.try_read(&mut buf)),
            io::ErrorKind::ConnectionReset
        );
    });
}

#[test]
fn ready_priority_waits_for_urgent_data() {
    each_flavor("ready_priority_waits_for_urgent_data", || async {
        let (c, a) = util::tcp_pair().await;
        c.write_all(b"plain").await.unwrap();
        a.readable().await.unwrap();
        assert_pending(
            "ready(PRIORITY) with plain data",
            a.ready(Interest::PRIORITY),
        )
        .await;
        // SAFETY: the fd is open for the call (borrowed from `c`); the buffer is valid.
        let sent = unsafe { libc::send(c.as_raw_fd(), b"!".as_ptr().cast(), 1, libc::MSG_OOB) };
        assert_eq!(sent, 1, "send(MSG_OOB): {}", io::Error::last_os_error());
        let r = within("ready(PRIORITY)", a.ready(Interest::PRIORITY))
            .await
            .unwrap();
        assert!(r.is_priority() && !r.is_readable(), "{r:?}");
        // The plain data is still there to read.
        let mut buf = [0; 5];
        a.read_exact(&mut buf).await.unwrap();
        assert_eq!(&buf, b"plain");
    });
}

#[test]
fn poll_read_ready_and_poll_write_ready() {
    each_flavor("poll_read_ready_and_poll_write_ready", || async {
        let (c, a) = util::unix_pair();
        within("writable", poll_fn(|cx| c.poll_write_ready(cx)))
            .await
            .unwrap();
        assert_eq!(
            util::err_kind(a.try_read(&mut [0; 8])),
            io::ErrorKind::WouldBlock
        );
        // Pending until data comes; the data's arrival wakes the polling task.
        let a = std::sync::Arc::new(a);
        let reader = {
            let a = a.clone();
            spawn(async move {
                poll_fn(|cx| a.poll_read_ready(cx)).await.unwrap();
                let mut buf = [0; 8];
                a.try_read(&mut buf).unwrap()
            })
        };
        time::sleep(Duration::from_millis(10)).await;
        assert!(!reader.is_finished());
        c.write_all(b"abc").await.unwrap();
        assert_eq!(within("the poller", reader).await.unwrap(), 3);
    });
}

#[test]
fn datagram_ready_and_polls() {
    each_flavor("datagram_ready_and_polls", || async {
        let a = UdpSocket::bind("127.0.0.1:0").await.unwrap();
        let b = UdpSocket::bind("127.0.0.1:0").await.unwrap();
        let r = within(
            "udp ready",
            b.ready(Interest::READABLE | Interest::WRITABLE),
        )
        .await;
        assert_eq!(r.unwrap(), Ready::WRITABLE);
        within("poll_send_ready", poll_fn(|cx| b.poll_send_ready(cx)))
            .await
            .unwrap();
        assert_eq!(
            util::err_kind(b.try_recv(&mut [0; 8])),
            io::ErrorKind::WouldBlock
        );
        assert_pending(
            "ready(READABLE) with nothing sent",
            b.ready(Interest::READABLE),
        )
        .await;
        a.send_to(b"x", b.local_addr().unwrap()).await.unwrap();
        within("poll_recv_ready", poll_fn(|cx| b.poll_recv_ready(cx)))
            .await
            .unwrap();
        assert!(b.ready(Interest::READABLE).await.unwrap().is_readable());

        let (x, y) = UnixDatagram::pair().unwrap();
        within("poll_send_ready", poll_fn(|cx| x.poll_send_ready(cx)))
            .await
            .unwrap();
        assert_eq!(
            util::err_kind(y.try_recv(&mut [0; 8])),
            io::ErrorKind::WouldBlock
        );
        assert_pending("unix ready(READABLE)", y.ready(Interest::READABLE)).await;
        x.send(b"y").await.unwrap();
        within("poll_recv_ready", poll_fn(|cx| y.poll_recv_ready(cx)))
            .await
            .unwrap();
        let r = y
            .ready(Interest::READABLE | Interest::WRITABLE)
            .await
            .unwrap();
        assert!(r.is_readable() && r.is_writable(), "{r:?}");
    });
}

#[test]
fn halves_have_ready_too() {
    each_flavor("halves_have_ready_too", || async {
        let (c, a) = util::tcp_pair().await;
        let (r, w) = a.into_split();
        assert!(w.ready(Interest::WRITABLE).await.unwrap().is_writable());
        c.write_all(b"z").await.unwrap();
        assert!(r.ready(Interest::READABLE).await.unwrap().is_readable());
        assert_eq!(r.peer_addr().unwrap(), c.local_addr().unwrap());
        assert_eq!(w.local_addr().unwrap(), c.peer_addr().unwrap());
        let (br, bw) = c.split();
        assert!(bw.ready(Interest::WRITABLE).await.unwrap().is_writable());
        assert_eq!(br.local_addr().unwrap(), w.peer_addr().unwrap());
    });
}

#[test]
fn a_socket_whose_runtime_shut_down_says_so_and_tries_still_work() {
    for (name, build) in util::flavors() {
        let rt = build();
        let (c, a) = rt.block_on(util::tcp_pair());
        let u = rt.block_on(UdpSocket::bind("127.0.0.1:0")).unwrap();
        drop(rt);
        let other = util::current_thread();
        other.block_on(async {
            let err = a.ready(Interest::READABLE).await.unwrap_err();
            assert!(err.to_string().contains("shut down"), "{name}: {err}");
            let polled = poll_fn(|cx| Poll::Ready(a.poll_read_ready(cx))).await;
            assert!(matches!(polled, Poll::Ready(Err(_))), "{name}");
            assert!(u.ready(Interest::WRITABLE).await.is_err(), "{name}");
            // A try asks the socket, which still works.
            assert_eq!(c.try_write(b"late").unwrap(), 4);
            let mut buf = [0; 8];
            let n = loop {
                match a.try_read(&mut buf) {
                    Ok(n) => break n,
                    Err(e) if e.kind() == io::ErrorKind::WouldBlock => std::thread::yield_now(),
                    Err(e) => panic!("{name}: {e}"),
                }
            };
            assert_eq!(&buf[..n], b"late", "{name}");
            let target = u.local_addr().unwrap();
            assert_eq!(u.try_send_to(b"u", target).unwrap(), 1, "{name}");
        });
    }
}

#[test]
fn interest_and_ready_values() {
    let rw = Interest::READABLE | Interest::WRITABLE;
    assert!(rw.is_readable() && rw.is_writable() && !rw.is_error() && !rw.is_priority());
    assert_eq!(rw.remove(Interest::WRITABLE), Some(Interest::READABLE));
    assert_eq!(rw.remove(rw), None);
    let mut i = Interest::ERROR;
    i |= Interest::PRIORITY;
    assert!(i.is_error() && i.is_priority());
    assert_eq!(
        format!("{:?}", Interest::READABLE.add(Interest::ERROR)),
        "READABLE | ERROR"
    );

    assert!(Ready::EMPTY.is_empty() && !Ready::ALL.is_empty());
    assert!(Ready::READ_CLOSED.is_readable() && !Ready::READ_CLOSED.is_writable());
    assert!(Ready::WRITE_CLOSED.is_writable());
    let r = Ready::READABLE | Ready::ERROR;
    assert_eq!(r & Ready::ERROR, Ready::ERROR);
    assert_eq!(r - Ready::ERROR, Ready::READABLE);
    let mut r2 = Ready::EMPTY;
    r2 |= Ready::PRIORITY;
    assert!(r2.is_priority() && !r2.is_readable());
    assert_eq!(
        format!("{:?}", Ready::WRITABLE),
        "Ready { is_readable: false, is_writable: true, is_read_closed: false, \
         is_write_closed: false, is_error: false, is_priority: false }"
    );
}

#[test]
fn a_fresh_pair_is_writable_at_once_and_not_readable() {
    each_flavor(
        "a_fresh_pair_is_writable_at_once_and_not_readable",
        || async {
            let waker = std::task::Waker::noop();
            let mut cx = std::task::Context::from_waker(waker);
            // No reactor turn has happened since `pair()`: writability is assumed.
            let (a, b) = util::unix_pair();
            assert!(matches!(a.poll_write_ready(&mut cx), Poll::Ready(Ok(()))));
            assert!(b.poll_read_ready(&mut cx).is_pending());
            assert_eq!(a.try_write(b"hi").unwrap(), 2);
            let (x, y) = UnixDatagram::pair().unwrap();
            assert!(matches!(x.poll_send_ready(&mut cx), Poll::Ready(Ok(()))));
            assert!(y.poll_recv_ready(&mut cx).is_pending());
            assert_eq!(x.try_send(b"d").unwrap(), 1);
            let mut buf = [0; 2];
            assert_eq!(within("recv", y.recv(&mut buf)).await.unwrap(), 1);
            assert_eq!(within("read", b.read(&mut buf)).await.unwrap(), 2);
        },
    );
}
