//! The parent's ends of a child's piped stdin, stdout and stderr, registered with the
//! reactor: `futures_io` traits always, tokio's with the `tokio-io` feature.
//!
//! Only the parent's end is made non-blocking: the child's end of a pipe is a file
//! description of its own, so the child sees ordinary blocking stdio.

use std::fmt;
use std::fs::File;
use std::future::poll_fn;
use std::io::{self, Read, Write};
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd, RawFd};
use std::pin::Pin;
use std::task::{Context, Poll};

use crate::io::Async;

/// One end of a pipe, registered with the reactor.
struct PipeEnd {
    /// `None` once closed (`ChildStdin`'s `poll_close`).
    io: Option<Async<File>>,
}

impl PipeEnd {
    fn new(fd: OwnedFd) -> io::Result<PipeEnd> {
        Ok(PipeEnd {
            io: Some(Async::new(File::from(fd))?),
        })
    }

    fn io(&self) -> io::Result<&Async<File>> {
        self.io.as_ref().ok_or_else(|| {
            io::Error::new(io::ErrorKind::BrokenPipe, "the child's stdin was closed")
        })
    }

    fn poll_read(&self, cx: &mut Context<'_>, buf: &mut [u8]) -> Poll<io::Result<usize>> {
        if buf.is_empty() {
            return Poll::Ready(Ok(0));
        }
        self.io()?.poll_read_with(cx, |mut file| file.read(buf))
    }

    fn poll_write(&self, cx: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
        let io = self.io()?;
        if buf.is_empty() {
            return Poll::Ready(Ok(0));
        }
        io.poll_write_with(cx, |mut file| file.write(buf))
    }
}

macro_rules! pipe_type {
    ($(#[$doc:meta])* $name:ident, $std:ty) => {
        $(#[$doc])*
        pub struct $name {
            pipe: PipeEnd,
        }

        impl $name {
            /// Registers a std pipe end (from a `std::process::Child`) with the current
            /// reactor, making it non-blocking.
            ///
            /// # Panics
            ///
            /// If called outside an epitome runtime.
            #[track_caller]
            pub fn from_std(inner: $std) -> io::Result<$name> {
                Ok($name {
                    pipe: PipeEnd::new(OwnedFd::from(inner))?,
                })
            }

            /// Deregisters the pipe end and returns its fd (still non-blocking).
            pub fn into_owned_fd(self) -> io::Result<OwnedFd> {
                match self.pipe.io {
                    Some(io) => Ok(OwnedFd::from(io.into_inner()?)),
                    None => Err(io::Error::new(
                        io::ErrorKind::BrokenPipe,
                        "the child's stdin was closed",
                    )),
                }
            }
        }

        impl AsFd for $name {
            /// # Panics
            ///
            /// If the pipe end was closed (`ChildStdin`'s `poll_close`).
            fn as_fd(&self) -> BorrowedFd<'_> {
                match &self.pipe.io {
                    Some(io) => io.as_fd(),
                    None => panic!("the pipe end was closed"),
                }
            }
        }

        impl AsRawFd for $name {
            fn as_raw_fd(&self) -> RawFd {
                self.as_fd().as_raw_fd()
            }
        }

        impl fmt::Debug for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                let fd = self.pipe.io.as_ref().map(|io| io.as_raw_fd());
                f.debug_struct(stringify!($name)).field("fd", &fd).finish()
            }
        }
    };
}

pipe_type!(
    /// The write end of a child's stdin ([`Stdio::piped`](std::process::Stdio::piped)).
    /// Dropping it (or closing it: `AsyncWriteExt::close`) gives the child end of file.
    ChildStdin,
    std::process::ChildStdin
);
pipe_type!(
    /// The read end of a child's stdout. Reads return `Ok(0)` once the child (and every
    /// process it passed the pipe to) has closed it.
    ChildStdout,
    std::process::ChildStdout
);
pipe_type!(
    /// The read end of a child's stderr.
    ChildStderr,
    std::process::ChildStderr
);

impl ChildStdin {
    /// Writes some of `buf`; `BrokenPipe` if the child closed its stdin (or exited).
    pub async fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        poll_fn(|cx| self.pipe.poll_write(cx, buf)).await
    }

    /// Writes all of `buf`.
    pub async fn write_all(&mut self, mut buf: &[u8]) -> io::Result<()> {
        while !buf.is_empty() {
            let n = self.write(buf).await?;
            if n == 0 {
                return Err(io::ErrorKind::WriteZero.into());
            }
            buf = &buf[n..];
        }
        Ok(())
    }
}

macro_rules! read_methods {
    ($name:ident) => {
        impl $name {
            /// Reads some bytes into `buf`; `Ok(0)` at end of file.
            pub async fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
                poll_fn(|cx| self.pipe.poll_read(cx, buf)).await
            }

            /// Reads until end of file, appending to `buf`; returns how many bytes.
            pub async fn read_to_end(&mut self, buf: &mut Vec<u8>) -> io::Result<usize> {
                let start = buf.len();
                poll_fn(|cx| poll_read_to_end(&self.pipe, cx, buf)).await?;
                Ok(buf.len() - start)
            }

            pub(super) fn poll_read_to_end(
                &self,
                cx: &mut Context<'_>,
                buf: &mut Vec<u8>,
            ) -> Poll<io::Result<()>> {
                poll_read_to_end(&self.pipe, cx, buf)
            }

            /// Reads until end of file into a string (`InvalidData` if it is not UTF-8).
            pub async fn read_to_string(&mut self, buf: &mut String) -> io::Result<usize> {
                let mut bytes = Vec::new();
                let n = self.read_to_end(&mut bytes).await?;
                let text = String::from_utf8(bytes)
                    .map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e))?;
                buf.push_str(&text);
                Ok(n)
            }
        }

        impl futures_io::AsyncRead for $name {
            fn poll_read(
                self: Pin<&mut Self>,
                cx: &mut Context<'_>,
                buf: &mut [u8],
            ) -> Poll<io::Result<usize>> {
                self.pipe.poll_read(cx, buf)
            }
        }

        #[cfg(feature = "tokio-io")]
        impl tokio::io::AsyncRead for $name {
            fn poll_read(
                self: Pin<&mut Self>,
                cx: &mut Context<'_>,
                buf: &mut tokio::io::ReadBuf<'_>,
            ) -> Poll<io::Result<()>> {
                let n = std::task::ready!(self.pipe.poll_read(cx, buf.initialize_unfilled()))?;
                buf.advance(n);
                Poll::Ready(Ok(()))
            }
        }
    };
}

read_methods!(ChildStdout);
read_methods!(ChildStderr);

/// Reads until end of file, appending to `buf` (what was read stays there across
/// `Pending`).
fn poll_read_to_end(
    pipe: &PipeEnd,
    cx: &mut Context<'_>,
    buf: &mut Vec<u8>,
) -> Poll<io::Result<()>> {
    let mut chunk = [0u8; 8192];
    loop {
        match pipe.poll_read(cx, &mut chunk) {
            Poll::Ready(Ok(0)) => return Poll::Ready(Ok(())),
            Poll::Ready(Ok(n)) => buf.extend_from_slice(&chunk[..n]),
            Poll::Ready(Err(e)) => return Poll::Ready(Err(e)),
            Poll::Pending => return Poll::Pending,
        }
    }
}

impl futures_io::AsyncWrite for ChildStdin {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        self.pipe.poll_write(cx, buf)
    }

    fn poll_flush(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        // Nothing is buffered here: a write that returned went to the pipe.
        Poll::Ready(Ok(()))
    }

    /// Closes the pipe now: the child reads end of file, and later writes fail with
    /// `BrokenPipe`.
    fn poll_close(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        self.get_mut().pipe.io = None;
        Poll::Ready(Ok(()))
    }
}

#[cfg(feature = "tokio-io")]
impl tokio::io::AsyncWrite for ChildStdin {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        self.pipe.poll_write(cx, buf)
    }

    fn poll_flush(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Poll::Ready(Ok(()))
    }

    /// Closes the pipe now: the child reads end of file, and later writes fail with
    /// `BrokenPipe`.
    fn poll_shutdown(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        self.get_mut().pipe.io = None;
        Poll::Ready(Ok(()))
    }
}
