//! Split halves and I/O trait impls, shared by `TcpStream` and `UnixStream`.
//!
//! The streams read and write through `&self`, so a borrowed half is just a shared
//! reference and an owned half an `Arc`; nothing is locked.

/// Implements `futures_io::{AsyncRead, AsyncWrite}` (and, with the `tokio-io` feature,
/// tokio's) for a stream type, for `&` it, and for its halves.
macro_rules! stream_impls {
    ($stream:ident, $read:ident, $write:ident, $owned_read:ident, $owned_write:ident, $reunite:ident, $addr:ty) => {
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
            crate::split::read_half_methods!(0, $addr);

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
            crate::split::write_half_methods!(0, $addr);

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
            crate::split::read_half_methods!(0, $addr);

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
            crate::split::write_half_methods!(stream, $addr);

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

/// The read side's readiness and non-waiting methods on a half (tokio's set), through
/// the stream in field `$f`.
macro_rules! read_half_methods {
    ($f:tt, $addr:ty) => {
        /// Waits until the stream is ready for `interest` (see the stream's `ready`).
        pub async fn ready(
            &self,
            interest: epitome_runtime::io::Interest,
        ) -> std::io::Result<epitome_runtime::io::Ready> {
            self.$f.ready(interest).await
        }
        /// Waits until the stream is readable (or read-closed).
        pub async fn readable(&self) -> std::io::Result<()> {
            self.$f.readable().await
        }
        /// One read attempt, no waiting and no budget (see the stream's `try_read`).
        pub fn try_read(&self, buf: &mut [u8]) -> std::io::Result<usize> {
            self.$f.try_read(buf)
        }
        /// One vectored read attempt, no waiting.
        pub fn try_read_vectored(
            &self,
            bufs: &mut [std::io::IoSliceMut<'_>],
        ) -> std::io::Result<usize> {
            self.$f.try_read_vectored(bufs)
        }
        /// One read attempt into `buf`'s spare capacity, no waiting.
        pub fn try_read_buf<B: bytes::BufMut>(&self, buf: &mut B) -> std::io::Result<usize> {
            self.$f.try_read_buf(buf)
        }
        /// Reads into `buf`'s spare capacity, waiting for data.
        pub async fn read_buf<B: bytes::BufMut>(&mut self, buf: &mut B) -> std::io::Result<usize> {
            self.$f.read_buf(buf).await
        }
        /// Polls a peek into `buf`'s spare capacity (see the stream's `poll_peek`).
        pub fn poll_peek<B: bytes::BufMut>(
            &mut self,
            cx: &mut std::task::Context<'_>,
            buf: &mut B,
        ) -> std::task::Poll<std::io::Result<usize>> {
            self.$f.poll_peek(cx, buf)
        }
        crate::split::half_addrs!($f, $addr);
    };
}

/// The write side's readiness and non-waiting methods on a half.
macro_rules! write_half_methods {
    ($f:tt, $addr:ty) => {
        /// Waits until the stream is ready for `interest` (see the stream's `ready`).
        pub async fn ready(
            &self,
            interest: epitome_runtime::io::Interest,
        ) -> std::io::Result<epitome_runtime::io::Ready> {
            self.$f.ready(interest).await
        }
        /// Waits until the stream is writable (or write-closed).
        pub async fn writable(&self) -> std::io::Result<()> {
            self.$f.writable().await
        }
        /// One write attempt, no waiting and no budget (see the stream's `try_write`).
        pub fn try_write(&self, buf: &[u8]) -> std::io::Result<usize> {
            self.$f.try_write(buf)
        }
        /// One vectored write attempt, no waiting.
        pub fn try_write_vectored(&self, bufs: &[std::io::IoSlice<'_>]) -> std::io::Result<usize> {
            self.$f.try_write_vectored(bufs)
        }
        crate::split::half_addrs!($f, $addr);
    };
}

/// `local_addr` and `peer_addr` on a half.
macro_rules! half_addrs {
    ($f:tt, $addr:ty) => {
        /// The stream's local address.
        pub fn local_addr(&self) -> std::io::Result<$addr> {
            self.$f.local_addr()
        }
        /// The stream's peer address.
        pub fn peer_addr(&self) -> std::io::Result<$addr> {
            self.$f.peer_addr()
        }
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
pub(crate) use half_addrs;
pub(crate) use read_half_methods;
pub(crate) use stream_impls;
pub(crate) use write_half_methods;
