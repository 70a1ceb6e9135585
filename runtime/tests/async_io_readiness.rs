//! `io::Async`'s readiness API as tokio documents `AsyncFd`'s, on both runtimes:
//! `ready(Interest)` and the guard's `ready()` / `clear_ready_matching`,
//! `poll_read_ready` / `poll_write_ready`, `try_io` / `async_io`, urgent data and
//! errors waited for alone; and issue 20's bug 1 for `io::Async`: the non-waiting
//! operations and inspections work inside a task whose budget is spent.

mod support;

use std::future::poll_fn;
use std::io::{self, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::os::fd::AsRawFd;
use std::os::unix::net::UnixStream;
use std::task::Poll;
use std::time::Duration;

use epitome_runtime::io::{Async, Interest, Ready};
use epitome_runtime::time;
use support::{HANG, both_flavors};

fn read_some(s: &UnixStream, buf: &mut [u8]) -> io::Result<usize> {
    let mut s = s;
    s.read(buf)
}

/// A connected TCP pair of std streams (for urgent data and resets, which Unix
/// sockets do not have).
fn tcp_pair() -> (TcpStream, TcpStream) {
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let c = TcpStream::connect(l.local_addr().unwrap()).unwrap();
    let (a, _) = l.accept().unwrap();
    (c, a)
}

/// `SO_LINGER` zero: closing `s` resets the connection.
fn set_zero_linger(s: &TcpStream) {
    let linger = libc::linger {
        l_onoff: 1,
        l_linger: 0,
    };
    // SAFETY: the fd is open (borrowed from `s`); `linger` is valid for its size.
    let r = unsafe {
        libc::setsockopt(
            s.as_raw_fd(),
            libc::SOL_SOCKET,
            libc::SO_LINGER,
            (&linger as *const libc::linger).cast(),
            std::mem::size_of::<libc::linger>() as libc::socklen_t,
        )
    };
    assert_eq!(r, 0, "SO_LINGER: {}", io::Error::last_os_error());
}

/// Whether `fut` is still pending after a few milliseconds (it is then dropped).
async fn stays_pending<F: std::future::Future>(fut: F) -> bool {
    time::timeout(Duration::from_millis(30), fut).await.is_err()
}

#[test]
fn ready_reports_the_directions_found() {
    let _watchdog = support::watchdog();
    for (name, rt) in both_flavors() {
        rt.block_on(async {
            let (a, mut peer) = UnixStream::pair().unwrap();
            let a = Async::new(a).unwrap();
            let g = a
                .ready(Interest::READABLE | Interest::WRITABLE)
                .await
                .unwrap();
            assert_eq!(g.ready(), Ready::WRITABLE, "{name}");
            assert!(stays_pending(a.ready(Interest::READABLE)).await, "{name}");
            peer.write_all(b"x").unwrap();
            let g = time::timeout(HANG, a.ready(Interest::READABLE))
                .await
                .unwrap()
                .unwrap();
            assert_eq!(g.ready(), Ready::READABLE, "{name}");
            assert!(g.get_inner().as_raw_fd() == a.as_raw_fd());
            let g = a
                .ready(Interest::READABLE | Interest::WRITABLE)
                .await
                .unwrap();
            assert_eq!(g.ready(), Ready::READABLE | Ready::WRITABLE, "{name}");
            // The read side turns out drained: clear only it; writability stays.
            let mut g = g;
            let mut buf = [0; 4];
            assert_eq!(read_some(g.get_ref(), &mut buf).unwrap(), 1);
            assert!(read_some(g.get_ref(), &mut buf).is_err());
            g.clear_ready_matching(Ready::READABLE);
            assert_eq!(g.ready(), Ready::WRITABLE, "{name}");
            assert!(!a.is_read_ready() && a.is_write_ready(), "{name}");
            // The peer goes: read-closed and write-closed, and readable/writable.
            drop(peer);
            let g = time::timeout(HANG, a.ready(Interest::READABLE))
                .await
                .unwrap()
                .unwrap();
            assert!(
                g.ready().is_read_closed() && g.ready().is_readable(),
                "{name}"
            );
            let g = a.ready(Interest::WRITABLE).await.unwrap();
            assert!(g.ready().is_write_closed(), "{name}: {:?}", g.ready());
        });
    }
}

#[test]
fn poll_read_ready_and_poll_write_ready() {
    let _watchdog = support::watchdog();
    for (name, rt) in both_flavors() {
        rt.block_on(async {
            let (a, mut peer) = UnixStream::pair().unwrap();
            let a = Async::new(a).unwrap();
            let g = poll_fn(|cx| a.poll_write_ready(cx)).await.unwrap();
            assert!(g.ready().is_writable(), "{name}");
            let mut first = true;
            let n = poll_fn(|cx| {
                let polled = a.poll_read_ready(cx);
                if first {
                    assert!(polled.is_pending(), "{name}: nothing written yet");
                    first = false;
                    peer.write_all(b"abc").unwrap();
                    return Poll::Pending;
                }
                match polled {
                    Poll::Ready(g) => {
                        let g = g.unwrap();
                        let mut buf = [0; 8];
                        Poll::Ready(g.try_io(|s| read_some(s, &mut buf)).unwrap().unwrap())
                    }
                    Poll::Pending => Poll::Pending,
                }
            })
            .await;
            assert_eq!(n, 3, "{name}");
        });
    }
}

#[test]
fn try_io_and_async_io() {
    let _watchdog = support::watchdog();
    for (name, rt) in both_flavors() {
        rt.block_on(async {
            let (a, mut peer) = UnixStream::pair().unwrap();
            let a = Async::new(a).unwrap();
            let mut buf = [0; 8];
            // Not ready (nothing reported yet): the closure is not even called.
            let mut called = false;
            let res = a.try_io(Interest::READABLE, |_| {
                called = true;
                Ok(())
            });
            assert_eq!(res.unwrap_err().kind(), io::ErrorKind::WouldBlock);
            assert!(!called, "{name}");
            // try_read_with asks the fd whatever the reactor has said.
            peer.write_all(b"early").unwrap();
            let n = a.try_read_with(|s| read_some(s, &mut buf)).unwrap();
            assert_eq!(&buf[..n], b"early", "{name}");
            // Ready: the closure runs; its WouldBlock passes through and clears readiness.
            peer.write_all(b"more").unwrap();
            a.readable().await.unwrap();
            let n = a
                .try_io(Interest::READABLE, |s| read_some(s, &mut buf))
                .unwrap();
            assert_eq!(&buf[..n], b"more", "{name}");
            let res = a.try_io(Interest::READABLE, |s| read_some(s, &mut buf));
            assert_eq!(res.unwrap_err().kind(), io::ErrorKind::WouldBlock);
            assert!(!a.is_read_ready(), "{name}");
            // try_io_mut: the same, with the value mutable.
            let mut a = a;
            let res = a.try_io_mut(Interest::READABLE, |_| Ok(1));
            assert_eq!(res.unwrap_err().kind(), io::ErrorKind::WouldBlock);
            assert_eq!(a.try_io_mut(Interest::WRITABLE, |_| Ok(2)).unwrap(), 2);
            // async_io waits for the interest, retrying after WouldBlock.
            let writer = std::thread::spawn(move || {
                std::thread::sleep(Duration::from_millis(10));
                peer.write_all(b"late").unwrap();
                peer
            });
            let n = time::timeout(
                HANG,
                a.async_io(Interest::READABLE, |s| read_some(s, &mut buf)),
            )
            .await
            .unwrap()
            .unwrap();
            assert_eq!(&buf[..n], b"late", "{name}");
            let n = a
                .async_io(Interest::READABLE | Interest::WRITABLE, |_| Ok(9))
                .await
                .unwrap();
            assert_eq!(n, 9);
            let n = a
                .async_io_mut(Interest::WRITABLE, |_| Ok(10))
                .await
                .unwrap();
            assert_eq!(n, 10);
            drop(writer.join().unwrap());
        });
    }
}

#[test]
fn priority_alone_waits_for_urgent_data_not_for_data() {
    let _watchdog = support::watchdog();
    for (name, rt) in both_flavors() {
        rt.block_on(async {
            let (mut c, a) = tcp_pair();
            let a = Async::new(a).unwrap();
            c.write_all(b"plain").unwrap();
            a.readable().await.unwrap();
            assert!(stays_pending(a.ready(Interest::PRIORITY)).await, "{name}");
            // SAFETY: the fd is open (borrowed from `c`) and the buffer is valid.
            let n = unsafe { libc::send(c.as_raw_fd(), b"!".as_ptr().cast(), 1, libc::MSG_OOB) };
            assert_eq!(n, 1);
            let g = time::timeout(HANG, a.ready(Interest::PRIORITY))
                .await
                .unwrap()
                .unwrap();
            assert!(
                g.ready().is_priority() && !g.ready().is_readable(),
                "{name}"
            );
            // Take the urgent byte; clearing the guard leaves ordinary readability.
            let mut oob = [0u8; 1];
            // SAFETY: as above, for `a`.
            let n = unsafe { libc::recv(a.as_raw_fd(), oob.as_mut_ptr().cast(), 1, libc::MSG_OOB) };
            assert_eq!((n, oob[0]), (1, b'!'), "{name}");
            g.clear_ready();
            assert!(a.is_read_ready(), "{name}: plain data is still there");
            let mut buf = [0; 5];
            let n = a.read_with(|mut s| s.read(&mut buf)).await.unwrap();
            assert_eq!(&buf[..n], b"plain", "{name}");
        });
    }
}

#[test]
fn error_alone_waits_for_an_error() {
    let _watchdog = support::watchdog();
    for (name, rt) in both_flavors() {
        rt.block_on(async {
            let (c, a) = tcp_pair();
            let a = Async::new(a).unwrap();
            (&c).write_all(b"data").unwrap();
            a.readable().await.unwrap();
            assert!(stays_pending(a.ready(Interest::ERROR)).await, "{name}");
            // A reset: the error arrives.
            set_zero_linger(&c);
            drop(c);
            let g = time::timeout(HANG, a.ready(Interest::ERROR))
                .await
                .unwrap()
                .unwrap();
            assert_eq!(g.ready(), Ready::ERROR, "{name}");
            let g = a.ready(Interest::READABLE | Interest::ERROR).await.unwrap();
            assert!(g.ready().is_error() && g.ready().is_readable(), "{name}");
        });
    }
}

#[test]
fn non_waiting_operations_ignore_a_spent_budget() {
    let _watchdog = support::watchdog();
    for (name, rt) in both_flavors() {
        rt.block_on(async {
            let task = epitome_runtime::spawn(async move {
                let (a, mut peer) = UnixStream::pair().unwrap();
                let a = Async::new(a).unwrap();
                let (s, _s_peer) = UnixStream::pair().unwrap();
                let spender = Async::new(s).unwrap();
                spender.writable().await.unwrap();
                peer.write_all(b"abcd").unwrap();
                a.readable().await.unwrap();
                poll_fn(|cx| {
                    // A writable source answers Pending only once the budget is gone.
                    let spent = (0..100_000).any(|_| spender.poll_writable(cx).is_pending());
                    assert!(spent);
                    assert!(
                        a.poll_read_ready(cx).is_pending(),
                        "polls defer to the budget"
                    );
                    assert!(a.is_read_ready() && a.is_write_ready());
                    let mut buf = [0; 2];
                    assert_eq!(
                        a.try_io(Interest::READABLE, |s| read_some(s, &mut buf))
                            .unwrap(),
                        2
                    );
                    assert_eq!(a.try_read_with(|s| read_some(s, &mut buf)).unwrap(), 2);
                    let res = a.try_write_with(|s| (&mut &*s).write(b"w"));
                    assert_eq!(res.unwrap(), 1);
                    Poll::Ready(())
                })
                .await;
            });
            time::timeout(HANG, task)
                .await
                .unwrap()
                .unwrap_or_else(|e| panic!("{name}: {e}"));
        });
    }
}

#[test]
fn ready_after_the_runtime_shut_down_is_an_error() {
    let _watchdog = support::watchdog();
    for (name, rt) in both_flavors() {
        let (a, mut peer) = UnixStream::pair().unwrap();
        let a = rt.block_on(async { Async::new(a).unwrap() });
        drop(rt);
        let other = support::current_thread();
        other.block_on(async {
            let err = a.ready(Interest::READABLE).await.unwrap_err();
            assert!(err.to_string().contains("shut down"), "{name}: {err}");
            assert!(a.ready(Interest::ERROR).await.is_err(), "{name}");
            let polled = poll_fn(|cx| Poll::Ready(a.poll_read_ready(cx).map(|r| r.is_err()))).await;
            assert_eq!(polled, Poll::Ready(true), "{name}");
            // The fd itself still works (asked directly: no event will mark it ready).
            peer.write_all(b"z").unwrap();
            let mut buf = [0; 1];
            support::wait_until("the byte", || {
                a.try_read_with(|s| read_some(s, &mut buf)).is_ok()
            });
        });
    }
}
