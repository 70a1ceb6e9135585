//! Split halves and I/O trait impls, shared by `TcpStream` and `UnixStream`.
//!
//! The streams read and write through `&self`, so a borrowed half is just a shared
//! reference and an owned half an `Arc`; nothing is locked.

/// Implements `futures_io::{AsyncRead, AsyncWrite}` (and, with the `tokio-io` feature,
/// tokio's) for a stream type, for `&` it, and for its halves.
macro_rules! stream_impls {
    ($stream:ident, $read:ident, $write:ident, $owned_read:ident, $owned_write:ident, $reunite:ident) => {
        /// The read half of a borrowed split ([`split`]($stream::split)).
        #[derive(Debug)]
        pub struct $read<'a>(&'a $stream);

        /// The write half of a borrowed split.
        #[derive(Debug)]
        pub struct $write<'a>(&'a $stream);

        /// The read half of an owned split ([`into_split`]($stream::into_split)).
        #[derive(Debug)]
        pub struct $owned_read(std::sync::Arc<$stream>);

        /// The write half of an owned split. Dropping it shuts the stream down for writing
        /// (so the peer sees end of stream), unless [`forget`](Self::forget) was called.
        #[derive(Debug)]
        pub struct $owned_write {
            stream: std::sync::Arc<$stream>,
            shutdown_on_drop: bool,
        }

        /// `reunite` was given halves of two different streams; they are handed back.
        #[derive(Debug)]
        pub struct $reunite(pub $owned_read, pub $owned_write);

        impl std::fmt::Display for $reunite {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("tried to reunite halves that are not from the same stream")
            }
        }

        impl std::error::Error for $reunite {}

        impl $stream {
            /// Splits into a read half and a write half borrowing the stream; each can be
            /// used by a different task at once.
            pub fn split(&self) -> ($read<'_>, $write<'_>) {
                ($read(self), $write(self))
            }

            /// Splits into owned halves, which can move to different tasks or threads.
            pub fn into_split(self) -> ($owned_read, $owned_write) {
                let s = std::sync::Arc::new(self);
                ($owned_read(s.clone()), $owned_write { stream: s, shutdown_on_drop: true })
            }
        }

        impl $read<'_> {
            /// Reads into `buf` (see the stream's `read`).
            pub async fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
                self.0.read(buf).await
            }
            /// Peeks at incoming data.
            pub async fn peek(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
                self.0.peek(buf).await
            }
        }

        impl $write<'_> {
            /// Writes from `buf` (see the stream's `write`).
            pub async fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
                self.0.write(buf).await
            }
            /// Writes all of `buf`.
            pub async fn write_all(&mut self, buf: &[u8]) -> std::io::Result<()> {
                self.0.write_all(buf).await
            }
        }

        impl $owned_read {
            /// Reads into `buf`.
            pub async fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
                self.0.read(buf).await
            }
            /// Reads exactly `buf.len()` bytes.
            pub async fn read_exact(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
                self.0.read_exact(buf).await
            }
            /// Peeks at incoming data.
            pub async fn peek(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
                self.0.peek(buf).await
            }
            /// Puts the stream back together with its write half.
            pub fn reunite(self, other: $owned_write) -> Result<$stream, $reunite> {
                if !std::sync::Arc::ptr_eq(&self.0, &other.stream) {
                    return Err($reunite(self, other));
                }
                let mut other = other;
                other.shutdown_on_drop = false;
                let stream = other.stream.clone();
                drop(other);
                drop(self);
                match std::sync::Arc::try_unwrap(stream) {
                    Ok(s) => Ok(s),
                    Err(_) => unreachable!("both halves were just dropped"),
                }
            }
        }

        impl $owned_write {
            /// Writes from `buf`.
            pub async fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
                self.stream.write(buf).await
            }
            /// Writes all of `buf`.
            pub async fn write_all(&mut self, buf: &[u8]) -> std::io::Result<()> {
                self.stream.write_all(buf).await
            }
            /// Drops the half without shutting the stream down for writing.
            pub fn forget(mut self) {
                self.shutdown_on_drop = false;
            }
            /// Puts the stream back together with its read half.
            pub fn reunite(self, other: $owned_read) -> Result<$stream, $reunite> {
                other.reunite(self)
            }
        }

        impl Drop for $owned_write {
            fn drop(&mut self) {
                if self.shutdown_on_drop {
                    let _ = self.stream.io.shutdown(std::net::Shutdown::Write);
                }
            }
        }

        impl AsRef<$stream> for $owned_read {
            fn as_ref(&self) -> &$stream {
                &self.0
            }
        }

        impl AsRef<$stream> for $owned_write {
            fn as_ref(&self) -> &$stream {
                &self.stream
            }
        }

        crate::split::async_read!($stream, $stream, s => s);
        crate::split::async_read!(&$stream, $stream, s => *s);
        crate::split::async_read!($read<'_>, $stream, s => s.0);
        crate::split::async_read!($owned_read, $stream, s => &*s.0);
        crate::split::async_write!($stream, $stream, s => s);
        crate::split::async_write!(&$stream, $stream, s => *s);
        crate::split::async_write!($write<'_>, $stream, s => s.0);
        crate::split::async_write!($owned_write, $stream, s => &*s.stream);
    };
}

macro_rules! async_read {
    ($t:ty, $stream:ty, $s:ident => $get:expr) => {
        impl futures_io::AsyncRead for $t {
            fn poll_read(
                self: std::pin::Pin<&mut Self>,
                cx: &mut std::task::Context<'_>,
                buf: &mut [u8],
            ) -> std::task::Poll<std::io::Result<usize>> {
                let $s = &*self;
                let stream: &$stream = $get;
                stream.io.poll_read(cx, buf)
            }
            fn poll_read_vectored(
                self: std::pin::Pin<&mut Self>,
                cx: &mut std::task::Context<'_>,
                bufs: &mut [std::io::IoSliceMut<'_>],
            ) -> std::task::Poll<std::io::Result<usize>> {
                let $s = &*self;
                let stream: &$stream = $get;
                stream.io.poll_read_vectored(cx, bufs)
            }
        }

        #[cfg(feature = "tokio-io")]
        impl tokio::io::AsyncRead for $t {
            fn poll_read(
                self: std::pin::Pin<&mut Self>,
                cx: &mut std::task::Context<'_>,
                buf: &mut tokio::io::ReadBuf<'_>,
            ) -> std::task::Poll<std::io::Result<()>> {
                let $s = &*self;
                let stream: &$stream = $get;
                // SAFETY: the bytes are only written by `read(2)`, and only the `n` it
                // reports are marked initialised.
                let unfilled = unsafe {
                    &mut *(buf.unfilled_mut() as *mut [std::mem::MaybeUninit<u8>] as *mut [u8])
                };
                let n = std::task::ready!(stream.io.poll_read(cx, unfilled))?;
                // SAFETY: `read` initialised the first `n` bytes of the unfilled part.
                unsafe { buf.assume_init(n) };
                buf.advance(n);
                std::task::Poll::Ready(Ok(()))
            }
        }
    };
}

macro_rules! async_write {
    ($t:ty, $stream:ty, $s:ident => $get:expr) => {
        impl futures_io::AsyncWrite for $t {
            fn poll_write(
                self: std::pin::Pin<&mut Self>,
                cx: &mut std::task::Context<'_>,
                buf: &[u8],
            ) -> std::task::Poll<std::io::Result<usize>> {
                let $s = &*self;
                let stream: &$stream = $get;
                stream.io.poll_write(cx, buf)
            }
            fn poll_write_vectored(
                self: std::pin::Pin<&mut Self>,
                cx: &mut std::task::Context<'_>,
                bufs: &[std::io::IoSlice<'_>],
            ) -> std::task::Poll<std::io::Result<usize>> {
                let $s = &*self;
                let stream: &$stream = $get;
                stream.io.poll_write_vectored(cx, bufs)
            }
            fn poll_flush(
                self: std::pin::Pin<&mut Self>,
                _cx: &mut std::task::Context<'_>,
            ) -> std::task::Poll<std::io::Result<()>> {
                // Nothing is buffered here.
                std::task::Poll::Ready(Ok(()))
            }
            fn poll_close(
                self: std::pin::Pin<&mut Self>,
                _cx: &mut std::task::Context<'_>,
            ) -> std::task::Poll<std::io::Result<()>> {
                let $s = &*self;
                let stream: &$stream = $get;
                std::task::Poll::Ready(stream.io.shutdown(std::net::Shutdown::Write))
            }
        }

        #[cfg(feature = "tokio-io")]
        impl tokio::io::AsyncWrite for $t {
            fn poll_write(
                self: std::pin::Pin<&mut Self>,
                cx: &mut std::task::Context<'_>,
                buf: &[u8],
            ) -> std::task::Poll<std::io::Result<usize>> {
                let $s = &*self;
                let stream: &$stream = $get;
                stream.io.poll_write(cx, buf)
            }
            fn poll_write_vectored(
                self: std::pin::Pin<&mut Self>,
                cx: &mut std::task::Context<'_>,
                bufs: &[std::io::IoSlice<'_>],
            ) -> std::task::Poll<std::io::Result<usize>> {
                let $s = &*self;
                let stream: &$stream = $get;
                stream.io.poll_write_vectored(cx, bufs)
            }
            fn is_write_vectored(&self) -> bool {
                true
            }
            fn poll_flush(
                self: std::pin::Pin<&mut Self>,
                _cx: &mut std::task::Context<'_>,
            ) -> std::task::Poll<std::io::Result<()>> {
                std::task::Poll::Ready(Ok(()))
            }
            fn poll_shutdown(
                self: std::pin::Pin<&mut Self>,
                _cx: &mut std::task::Context<'_>,
            ) -> std::task::Poll<std::io::Result<()>> {
                let $s = &*self;
                let stream: &$stream = $get;
                std::task::Poll::Ready(stream.io.shutdown(std::net::Shutdown::Write))
            }
        }
    };
}

pub(crate) use async_read;
pub(crate) use async_write;
pub(crate) use stream_impls;
