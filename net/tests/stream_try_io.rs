//! The streams' non-waiting and buffer API, as tokio documents it: `try_read(_vectored)`,
//! `try_write(_vectored)`, `try_read_buf` / `read_buf` into growable buffers,
//! `poll_peek`, `try_io` / `async_io`, on `TcpStream`, `UnixStream` and their halves;
//! empty buffers, ended and reset peers.

mod util;

use std::future::poll_fn;
use std::io::{self, IoSlice, IoSliceMut};
use std::net::Shutdown;
use std::os::fd::AsRawFd;
use std::task::Poll;

use bytes::{BufMut, BytesMut};
use epitome_net::{TcpStream, UnixStream};
use epitome_runtime::io::Interest;
use util::{assert_pending, each_flavor, err_kind, within};

#[test]
fn try_read_and_try_write_edge_cases() {
    each_flavor("try_read_and_try_write_edge_cases", || async {
        let (c, a) = util::tcp_pair().await;
        // Nothing there: WouldBlock. An empty buffer: Ok(0) either way.
        assert_eq!(err_kind(a.try_read(&mut [0; 8])), io::ErrorKind::WouldBlock);
        assert_eq!(a.try_read(&mut []).unwrap(), 0);
        assert_eq!(c.try_write(&[]).unwrap(), 0);
        assert_eq!(a.try_read_vectored(&mut []).unwrap(), 0);
        assert_eq!(c.try_write_vectored(&[]).unwrap(), 0);
        // Vectored, across buffers, an empty one in the middle.
        let n = c
            .try_write_vectored(&[IoSlice::new(b"ab"), IoSlice::new(b""), IoSlice::new(b"cde")])
            .unwrap();
        assert_eq!(n, 5);
        a.readable().await.unwrap();
        let (mut x, mut y) = ([0; 3], [0; 8]);
        let n = a
            .try_read_vectored(&mut [IoSliceMut::new(&mut x), IoSliceMut::new(&mut y)])
            .unwrap();
        assert_eq!((n, &x, &y[..2]), (5, b"abc", &b"de"[..]));
        // Fill the send buffer: try_write ends in WouldBlock, and waiting for
        // writability then really waits.
        let chunk = vec![7; 64 * 1024];
        let mut sent = 0;
        loop {
            match c.try_write(&chunk) {
                Ok(n) => sent += n,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                Err(e) => panic!("try_write: {e}"),
            }
        }
        assert!(sent > 0);
        assert_pending("writable with a full send buffer", c.writable()).await;
        // End of stream: Ok(0), at once and again.
        c.shutdown(Shutdown::Write).await.unwrap();
        let mut got = 0;
        let mut buf = vec![0; 64 * 1024];
        loop {
            a.readable().await.unwrap();
            match a.try_read(&mut buf) {
                Ok(0) => break,
                Ok(n) => got += n,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
                Err(e) => panic!("try_read: {e}"),
            }
        }
        assert_eq!(got, sent);
        assert_eq!(a.try_read(&mut buf).unwrap(), 0);
        // Writing to a peer that has gone: an error, never a hang or a signal.
        drop(c);
        let res = loop {
            match a.try_write(b"into the void") {
                Ok(_) => a.writable().await.unwrap(),
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => a.writable().await.unwrap(),
                Err(e) => break e.kind(),
            }
        };
        assert!(
            matches!(
                res,
                io::ErrorKind::BrokenPipe | io::ErrorKind::ConnectionReset
            ),
            "{res:?}"
        );
    });
}

#[test]
fn read_buf_and_try_read_buf_fill_spare_capacity() {
    each_flavor("read_buf_and_try_read_buf_fill_spare_capacity", || async {
        let (c, a) = util::unix_pair();
        // Nothing there.
        let mut v = Vec::with_capacity(4);
        assert_eq!(err_kind(a.try_read_buf(&mut v)), io::ErrorKind::WouldBlock);
        assert!(v.is_empty());
        c.write_all(b"0123456789").await.unwrap();
        // A Vec fills its spare capacity only (4 bytes), appending after its contents.
        let mut v = Vec::with_capacity(6);
        v.extend_from_slice(b"><");
        assert_eq!(a.read_buf(&mut v).await.unwrap(), 4);
        assert_eq!(v, b"><0123");
        // BytesMut, the same.
        let mut b = BytesMut::with_capacity(64);
        assert_eq!(a.try_read_buf(&mut b).unwrap(), 6);
        assert_eq!(&b[..], b"456789");
        // A full fixed buffer has no room: Ok(0), without reading.
        c.write_all(b"x").await.unwrap();
        let mut storage = [0u8; 0];
        let mut full: &mut [u8] = &mut storage;
        assert_eq!(a.read_buf(&mut full).await.unwrap(), 0);
        assert_eq!(a.try_read_buf(&mut full).unwrap(), 0);
        // A fixed buffer with room is a cursor: it advances.
        let mut storage = [0u8; 4];
        let mut cursor: &mut [u8] = &mut storage;
        assert_eq!(a.read_buf(&mut cursor).await.unwrap(), 1);
        assert_eq!(cursor.remaining_mut(), 3);
        assert_eq!(storage[0], b'x');
        // End of stream: Ok(0).
        drop(c);
        let mut v = Vec::with_capacity(8);
        assert_eq!(
            within("read_buf at EOF", a.read_buf(&mut v)).await.unwrap(),
            0
        );
        assert_eq!(a.try_read_buf(&mut v).unwrap(), 0);
    });
}

#[test]
fn poll_peek_leaves_the_data_and_takes_tokio_read_buf() {
    each_flavor(
        "poll_peek_leaves_the_data_and_takes_tokio_read_buf",
        || async {
            let (c, a) = util::tcp_pair().await;
            c.write_all(b"peekaboo").await.unwrap();
            let mut v = Vec::with_capacity(4);
            let n = within("poll_peek", poll_fn(|cx| a.poll_peek(cx, &mut v)))
                .await
                .unwrap();
            assert_eq!((n, &v[..]), (4, &b"peek"[..]));
            // tokio's ReadBuf is a BufMut: tokio code passes one unchanged.
            let mut storage = [0u8; 16];
            let mut rb = tokio::io::ReadBuf::new(&mut storage);
            let n = poll_fn(|cx| a.poll_peek(cx, &mut rb)).await.unwrap();
            assert_eq!((n, rb.filled()), (8, &b"peekaboo"[..]));
            // Still all there.
            let mut buf = [0; 8];
            a.read_exact(&mut buf).await.unwrap();
            assert_eq!(&buf, b"peekaboo");
            // Pending with nothing to peek (after a WouldBlock cleared readiness).
            assert_eq!(err_kind(a.try_read(&mut buf)), io::ErrorKind::WouldBlock);
            let mut v = Vec::with_capacity(4);
            let polled = poll_fn(|cx| Poll::Ready(a.poll_peek(cx, &mut v).is_pending())).await;
            assert!(polled);

            let (x, y) = util::unix_pair();
            x.write_all(b"uds").await.unwrap();
            let mut v = Vec::with_capacity(8);
            assert_eq!(poll_fn(|cx| y.poll_peek(cx, &mut v)).await.unwrap(), 3);
            assert_eq!(y.try_read(&mut buf).unwrap(), 3);
        },
    );
}

/// `recv(2)` on the stream's fd, as a user's own operation would be written.
fn raw_recv(s: &impl AsRawFd, buf: &mut [u8]) -> io::Result<usize> {
    // SAFETY: the fd is open (borrowed) and `buf` is valid for `buf.len()` bytes.
    let n = unsafe { libc::recv(s.as_raw_fd(), buf.as_mut_ptr().cast(), buf.len(), 0) };
    if n < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(n as usize)
    }
}

#[test]
fn try_io_and_async_io_run_your_own_operations() {
    each_flavor("try_io_and_async_io_run_your_own_operations", || async {
        let (c, a) = util::unix_pair();
        let mut buf = [0; 8];
        // Nothing there: the operation's WouldBlock passes through and clears readiness.
        let res = a.try_io(Interest::READABLE, || raw_recv(&a, &mut buf));
        assert_eq!(err_kind(res), io::ErrorKind::WouldBlock);
        assert_pending("ready after a WouldBlock", a.ready(Interest::READABLE)).await;
        // async_io waits, then runs the operation once the data comes.
        let reader = a.async_io(Interest::READABLE, || raw_recv(&a, &mut buf));
        let writer = async {
            epitome_runtime::time::sleep(std::time::Duration::from_millis(5)).await;
            c.write_all(b"own").await.unwrap();
        };
        let (n, ()) = within("async_io", futures_util::future::join(reader, writer)).await;
        assert_eq!(n.unwrap(), 3);
        assert_eq!(&buf[..3], b"own");
        // An error other than WouldBlock is returned as it is.
        let res = a.try_io(Interest::READABLE, || -> io::Result<()> {
            Err(io::Error::other("mine"))
        });
        assert_eq!(res.unwrap_err().to_string(), "mine");
        // A combined interest: whichever comes first.
        let n = a
            .async_io(Interest::READABLE | Interest::WRITABLE, || Ok(7))
            .await
            .unwrap();
        assert_eq!(n, 7);
    });
}

#[test]
fn halves_read_buf_try_read_buf_and_poll_peek() {
    each_flavor("halves_read_buf_try_read_buf_and_poll_peek", || async {
        let (c, a) = util::tcp_pair().await;
        let (mut r, w) = a.into_split();
        c.write_all(b"half").await.unwrap();
        let mut v = Vec::with_capacity(8);
        assert_eq!(poll_fn(|cx| r.poll_peek(cx, &mut v)).await.unwrap(), 4);
        let mut v = Vec::with_capacity(2);
        assert_eq!(r.read_buf(&mut v).await.unwrap(), 2);
        let mut v = Vec::with_capacity(8);
        assert_eq!(r.try_read_buf(&mut v).unwrap(), 2);
        assert_eq!(v, b"lf");
        let n = w
            .try_write_vectored(&[IoSlice::new(b"a"), IoSlice::new(b"b")])
            .unwrap();
        assert_eq!(n, 2);
        let mut buf = [0; 2];
        c.read_exact(&mut buf).await.unwrap();
        assert_eq!(&buf, b"ab");

        let (x, y) = UnixStream::pair().unwrap();
        let (mut yr, _yw) = y.split();
        x.write_all(b"q").await.unwrap();
        let mut v = Vec::with_capacity(4);
        assert_eq!(yr.read_buf(&mut v).await.unwrap(), 1);
        let mut one = [0; 1];
        assert_eq!(
            err_kind(yr.try_read_vectored(&mut [IoSliceMut::new(&mut one)])),
            io::ErrorKind::WouldBlock
        );
    });
}

#[test]
fn tcp_stream_linger_and_quickack() {
    each_flavor("tcp_stream_linger_and_quickack", || async {
        let (c, a) = util::tcp_pair().await;
        assert_eq!(c.linger().unwrap(), None);
        c.set_zero_linger().unwrap();
        assert_eq!(c.linger().unwrap(), Some(std::time::Duration::ZERO));
        c.set_quickack(true).unwrap();
        // The kernel may clear quickack by itself; setting it must not fail, and it
        // reads back as a bool.
        let _: bool = c.quickack().unwrap();
        c.set_quickack(false).unwrap();
        assert!(!c.quickack().unwrap());
        // Zero linger: dropping resets the connection.
        drop(c);
        a.readable().await.unwrap();
        assert_eq!(
            err_kind(a.try_read(&mut [0; 8])),
            io::ErrorKind::ConnectionReset
        );
        let _ = TcpStream::into_std(a);
    });
}
