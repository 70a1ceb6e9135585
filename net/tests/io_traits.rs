//! The I/O trait impls: `futures_io::AsyncRead` / `AsyncWrite` for `TcpStream` and
//! `UnixStream`, for references to them and for their split halves, driven through
//! futures-util's extension traits, `BufReader` and `copy` as users do; and, with the
//! `tokio-io` feature, tokio's traits driven through tokio's extension traits and
//! tokio-util's `Framed`.

mod util;

use std::io::{IoSlice, IoSliceMut};

use epitome_net::{TcpStream, UnixStream};
use epitome_runtime::spawn;
use futures_util::StreamExt;
use futures_util::future::join;
use futures_util::io::{
    AsyncBufReadExt, AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, BufReader,
};
use util::{each_flavor, within};

/// Data both ways, vectored I/O, flush, and close (a half-close: the peer reads to the
/// end and can still answer), through the traits alone.
async fn exercise<A, B>(mut a: A, mut b: B, seed: u64)
where
    A: AsyncRead + AsyncWrite + Unpin,
    B: AsyncRead + AsyncWrite + Unpin,
{
    let data = util::pattern(seed, 300_000);
    let mut got = vec![0; data.len()];
    let (w, r) = join(
        async {
            a.write_all(&data).await?;
            a.flush().await
        },
        b.read_exact(&mut got),
    )
    .await;
    w.unwrap();
    r.unwrap();
    assert!(got == data, "bytes differ");

    let n = a
        .write_vectored(&[IoSlice::new(b"ab"), IoSlice::new(b"cde")])
        .await
        .unwrap();
    assert_eq!(n, 5);
    let (mut x, mut y) = ([0; 2], [0; 3]);
    let mut read = 0;
    while read < 5 {
        let mut bufs = [IoSliceMut::new(&mut x), IoSliceMut::new(&mut y)];
        read += b.read_vectored(&mut bufs).await.unwrap();
        if read < 5 {
            // Arrived in pieces: take the rest plainly.
            let mut rest = vec![0; 5 - read];
            b.read_exact(&mut rest).await.unwrap();
            read = 5;
        } else {
            assert_eq!((&x, &y), (b"ab", b"cde"));
        }
    }

    // close: the peer sees the end, and can still answer.
    a.write_all(b"last words").await.unwrap();
    a.close().await.unwrap();
    let mut tail = Vec::new();
    within("read_to_end", b.read_to_end(&mut tail))
        .await
        .unwrap();
    assert_eq!(tail, b"last words");
    b.write_all(b"reply").await.unwrap();
    b.close().await.unwrap();
    let mut reply = String::new();
    within("read_to_string", a.read_to_string(&mut reply))
        .await
        .unwrap();
    assert_eq!(reply, "reply");
}

#[test]
fn streams_by_value() {
    each_flavor("streams_by_value", || async {
        let (c, a) = util::tcp_pair().await;
        exercise(c, a, 20).await;
        let (x, y) = util::unix_pair();
        exercise(x, y, 21).await;
    });
}

#[test]
fn streams_by_reference() {
    each_flavor("streams_by_reference", || async {
        let (c, a) = util::tcp_pair().await;
        exercise(&c, &a, 22).await;
        let (x, y) = util::unix_pair();
        exercise(&x, &y, 23).await;
    });
}

#[test]
fn borrowed_halves() {
    each_flavor("borrowed_halves", || async {
        let (c, a) = util::tcp_pair().await;
        let ((cr, cw), (ar, aw)) = (c.split(), a.split());
        exercise(Joined(cr, cw), Joined(ar, aw), 24).await;
        let (x, y) = util::unix_pair();
        let ((xr, xw), (yr, yw)) = (x.split(), y.split());
        exercise(Joined(xr, xw), Joined(yr, yw), 25).await;
    });
}

#[test]
fn owned_halves() {
    each_flavor("owned_halves", || async {
        let (c, a) = util::tcp_pair().await;
        let ((cr, cw), (ar, aw)) = (c.into_split(), a.into_split());
        exercise(Joined(cr, cw), Joined(ar, aw), 26).await;
        let (x, y) = util::unix_pair();
        let ((xr, xw), (yr, yw)) = (x.into_split(), y.into_split());
        exercise(Joined(xr, xw), Joined(yr, yw), 27).await;
    });
}

/// A read half and a write half as one `AsyncRead + AsyncWrite`, so the halves go
/// through [`exercise`] too.
struct Joined<R, W>(R, W);

impl<R: AsyncRead + Unpin, W: Unpin> AsyncRead for Joined<R, W> {
    fn poll_read(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
        buf: &mut [u8],
    ) -> std::task::Poll<std::io::Result<usize>> {
        std::pin::Pin::new(&mut self.0).poll_read(cx, buf)
    }

    fn poll_read_vectored(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
        bufs: &mut [IoSliceMut<'_>],
    ) -> std::task::Poll<std::io::Result<usize>> {
        std::pin::Pin::new(&mut self.0).poll_read_vectored(cx, bufs)
    }
}

impl<R: Unpin, W: AsyncWrite + Unpin> AsyncWrite for Joined<R, W> {
    fn poll_write(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
        buf: &[u8],
    ) -> std::task::Poll<std::io::Result<usize>> {
        std::pin::Pin::new(&mut self.1).poll_write(cx, buf)
    }

    fn poll_write_vectored(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
        bufs: &[IoSlice<'_>],
    ) -> std::task::Poll<std::io::Result<usize>> {
        std::pin::Pin::new(&mut self.1).poll_write_vectored(cx, bufs)
    }

    fn poll_flush(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        std::pin::Pin::new(&mut self.1).poll_flush(cx)
    }

    fn poll_close(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        std::pin::Pin::new(&mut self.1).poll_close(cx)
    }
}

#[test]
fn copy_through_an_echo_server_and_buf_reader_lines() {
    each_flavor(
        "copy_through_an_echo_server_and_buf_reader_lines",
        || async {
            let l = util::listener().await;
            let addr = l.local_addr().unwrap();
            // The classic futures-io echo server: split, then copy from one half to the
            // other, in a task of its own.
            let server = spawn(async move {
                let (s, _) = l.accept().await.unwrap();
                let (mut r, mut w) = s.split();
                let n = futures_util::io::copy(&mut r, &mut w).await.unwrap();
                w.close().await.unwrap();
                n
            });
            let (r, mut w) = TcpStream::connect(addr).await.unwrap().into_split();
            let writer = spawn(async move {
                for i in 0..1000 {
                    w.write_all(format!("line {i}\n").as_bytes()).await.unwrap();
                }
                w.close().await.unwrap();
            });
            let mut lines = BufReader::new(r).lines();
            let mut i = 0;
            while let Some(line) = within("next line", lines.next()).await {
                assert_eq!(line.unwrap(), format!("line {i}"));
                i += 1;
            }
            assert_eq!(i, 1000);
            writer.await.unwrap();
            let copied = server.await.unwrap();
            assert_eq!(
                copied,
                (0..1000).map(|i| format!("line {i}\n").len() as u64).sum()
            );
        },
    );
}

#[test]
fn unix_buf_reader_read_line() {
    each_flavor("unix_buf_reader_read_line", || async {
        let (x, y) = UnixStream::pair().unwrap();
        let (yr, mut yw) = y.into_split();
        let mut reader = BufReader::new(yr);
        // Through `&UnixStream`'s trait impls (plain method calls would pick the
        // inherent methods).
        let mut xref = &x;
        AsyncWriteExt::write_all(&mut xref, b"first\nsecond\npartial")
            .await
            .unwrap();
        let mut line = String::new();
        reader.read_line(&mut line).await.unwrap();
        assert_eq!(line, "first\n");
        line.clear();
        reader.read_line(&mut line).await.unwrap();
        assert_eq!(line, "second\n");
        AsyncWriteExt::close(&mut xref).await.unwrap();
        line.clear();
        reader.read_line(&mut line).await.unwrap();
        assert_eq!(line, "partial");
        yw.write_all(b"ok").await.unwrap();
        let mut buf = [0; 2];
        AsyncReadExt::read_exact(&mut xref, &mut buf).await.unwrap();
        assert_eq!(&buf, b"ok");
    });
}

#[cfg(feature = "tokio-io")]
mod tokio_io {
    use epitome_net::TcpStream;
    use epitome_runtime::spawn;
    use futures_util::future::join;
    use futures_util::{SinkExt, StreamExt};
    use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
    use tokio_util::codec::{Framed, LinesCodec};

    use crate::util::{self, each_flavor, within};

    /// Both ways, `read_buf` (the uninitialised-buffer path), and shutdown.
    async fn exercise<A, B>(mut a: A, mut b: B)
    where
        A: AsyncRead + AsyncWrite + Unpin,
        B: AsyncRead + AsyncWrite + Unpin,
    {
        let data = util::pattern(30, 200_000);
        let (w, got) = join(
            async {
                a.write_all(&data).await?;
                a.flush().await?;
                a.shutdown().await
            },
            async {
                let mut got = Vec::with_capacity(data.len());
                loop {
                    // read_buf hands the stream uninitialised capacity.
                    got.reserve(4096);
                    if b.read_buf(&mut got).await.unwrap() == 0 {
                        return got;
                    }
                }
            },
        )
        .await;
        w.unwrap();
        assert!(got == data, "bytes differ");
        b.write_all(b"back").await.unwrap();
        b.shutdown().await.unwrap();
        let mut s = String::new();
        within("read_to_string", a.read_to_string(&mut s))
            .await
            .unwrap();
        assert_eq!(s, "back");
    }

    #[test]
    fn tokio_traits_on_streams_refs_and_halves() {
        each_flavor("tokio_traits_on_streams_refs_and_halves", || async {
            let (c, a) = util::tcp_pair().await;
            exercise(c, a).await;
            let (c, a) = util::tcp_pair().await;
            exercise(&c, &a).await;
            let (x, y) = util::unix_pair();
            exercise(x, y).await;
            let (c, a) = util::tcp_pair().await;
            let ((cr, cw), (ar, aw)) = (c.into_split(), a.into_split());
            exercise(tokio::io::join(cr, cw), tokio::io::join(ar, aw)).await;
            let (c, a) = util::tcp_pair().await;
            let ((cr, cw), (ar, aw)) = (c.split(), a.split());
            exercise(tokio::io::join(cr, cw), tokio::io::join(ar, aw)).await;
        });
    }

    #[test]
    fn framed_lines_codec() {
        each_flavor("framed_lines_codec", || async {
            let l = util::listener().await;
            let addr = l.local_addr().unwrap();
            // A line server with tokio-util's codec: answers each line upper-cased.
            let server = spawn(async move {
                let (s, _) = l.accept().await.unwrap();
                let mut framed = Framed::new(s, LinesCodec::new());
                while let Some(line) = framed.next().await {
                    framed.send(line.unwrap().to_uppercase()).await.unwrap();
                }
            });
            let c = TcpStream::connect(addr).await.unwrap();
            let mut framed = Framed::new(c, LinesCodec::new());
            for i in 0..200 {
                framed.send(format!("hello {i}")).await.unwrap();
                let reply = within("reply", framed.next()).await.unwrap().unwrap();
                assert_eq!(reply, format!("HELLO {i}"));
            }
            drop(framed);
            within("server", server).await.unwrap();
        });
    }

    #[test]
    fn copy_bidirectional_proxy() {
        each_flavor("copy_bidirectional_proxy", || async {
            let (c, mut p1) = util::tcp_pair().await;
            let (mut p2, s) = util::tcp_pair().await;
            let proxy = spawn(async move { tokio::io::copy_bidirectional(&mut p1, &mut p2).await });
            let data = util::pattern(31, 500_000);
            let echo = spawn(async move {
                let (mut r, mut w) = tokio::io::split(s);
                tokio::io::copy(&mut r, &mut w).await.unwrap();
                w.shutdown().await.unwrap();
            });
            let (mut cr, mut cw) = c.into_split();
            let (w, got) = join(
                async {
                    cw.write_all(&data).await?;
                    cw.shutdown().await
                },
                async {
                    let mut got = Vec::new();
                    cr.read_to_end(&mut got).await.unwrap();
                    got
                },
            )
            .await;
            w.unwrap();
            assert!(got == data);
            let (up, down) = within("proxy", proxy).await.unwrap().unwrap();
            assert_eq!((up, down), (data.len() as u64, data.len() as u64));
            echo.await.unwrap();
        });
    }
}
