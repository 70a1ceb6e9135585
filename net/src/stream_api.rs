//! The readiness and non-waiting API that `TcpStream` and `UnixStream` share (tokio's
//! names and signatures), written once.

/// Emits, inside `impl $stream`, the readiness, `try_*`, `*_buf` and `*_io` methods.
/// The stream type has an `io: StreamIo<_>` field.
macro_rules! readiness_methods {
    () => {
        /// Waits until the stream is ready for `interest` and says what it found (for
        /// `READABLE | WRITABLE`, both directions when both are ready).
        ///
        /// The answer can be stale by the time you act on it: a `try_read` may still
        /// say `WouldBlock` (which clears the remembered readiness, so the next wait
        /// really waits). Read-closed and write-closed count as ready. Cancel-safe.
        ///
        /// # Errors
        ///
        /// The runtime that drives the stream has shut down.
        pub async fn ready(
            &self,
            interest: epitome_runtime::io::Interest,
        ) -> std::io::Result<epitome_runtime::io::Ready> {
            self.io.ready(interest).await
        }

        /// Polls for read readiness: `Ready(Ok(()))` once a read may not block (or the
        /// read side is closed). For code that cannot keep a [`readable`](Self::readable)
        /// future. Spends a unit of the task's cooperative budget.
        ///
        /// Unlike tokio, which keeps only the waker of the latest call, every distinct
        /// waker polled with is woken by the next event.
        pub fn poll_read_ready(
            &self,
            cx: &mut std::task::Context<'_>,
        ) -> std::task::Poll<std::io::Result<()>> {
            self.io.poll_read_ready(cx)
        }

        /// Polls for write readiness (see [`poll_read_ready`](Self::poll_read_ready)).
        pub fn poll_write_ready(
            &self,
            cx: &mut std::task::Context<'_>,
        ) -> std::task::Poll<std::io::Result<()>> {
            self.io.poll_write_ready(cx)
        }

        /// One read attempt, no waiting: the number of bytes read (`Ok(0)`: end of
        /// stream, or an empty `buf`), or `WouldBlock` if nothing is there, which also
        /// clears the remembered read readiness.
        ///
        /// Never consults or spends the task's cooperative budget: it asks the socket,
        /// so a task that has used up its budget still reads what has arrived, and a
        /// try made before the reactor reported anything still finds data.
        pub fn try_read(&self, buf: &mut [u8]) -> std::io::Result<usize> {
            self.io.try_read(buf)
        }

        /// [`try_read`](Self::try_read) into several buffers with one `readv`.
        pub fn try_read_vectored(
            &self,
            bufs: &mut [std::io::IoSliceMut<'_>],
        ) -> std::io::Result<usize> {
            self.io.try_read_vectored(bufs)
        }

        /// [`try_read`](Self::try_read) into `buf`'s spare capacity, which is then
        /// marked filled. A `Vec` or `BytesMut` with no spare capacity grows by a little
        /// first; reserve what you expect to read.
        pub fn try_read_buf<B: bytes::BufMut>(&self, buf: &mut B) -> std::io::Result<usize> {
            self.io.try_read_buf(buf)
        }

        /// Reads into `buf`'s spare capacity, waiting for data (tokio's
        /// `AsyncReadExt::read_buf`, here an inherent method). `Ok(0)`: end of stream,
        /// or `buf` has no room left. Cancel-safe.
        pub fn read_buf<'a, B: bytes::BufMut>(
            &'a self,
            buf: &'a mut B,
        ) -> impl Future<Output = std::io::Result<usize>> + 'a {
            self.io.read_buf(buf)
        }

        /// Polls a peek into `buf`'s spare capacity (tokio's `poll_peek`, which takes a
        /// `ReadBuf`: that is a `BufMut`, so it works here, as does a `Vec` or
        /// `BytesMut`). On `Ready(Ok(n))`, `n` bytes were copied and `buf` advanced by
        /// `n`; the data stays in the socket.
        pub fn poll_peek<B: bytes::BufMut>(
            &self,
            cx: &mut std::task::Context<'_>,
            buf: &mut B,
        ) -> std::task::Poll<std::io::Result<usize>> {
            self.io.poll_peek_buf(cx, buf)
        }

        /// One write attempt, no waiting: the number of bytes taken, or `WouldBlock` if
        /// the send buffer is full (clearing the remembered write readiness). Budget-free,
        /// like [`try_read`](Self::try_read).
        pub fn try_write(&self, buf: &[u8]) -> std::io::Result<usize> {
            self.io.try_write(buf)
        }

        /// [`try_write`](Self::try_write) from several buffers with one `writev`.
        pub fn try_write_vectored(&self, bufs: &[std::io::IoSlice<'_>]) -> std::io::Result<usize> {
            self.io.try_write_vectored(bufs)
        }

        /// Runs `f`, your own non-blocking operation on the socket (through its fd),
        /// once, if the stream is ready for `interest` (as far as the reactor has
        /// reported; if not, `f` is not called and the answer is `WouldBlock`). If `f`
        /// returns `WouldBlock`, that readiness is cleared. Budget-free.
        ///
        /// `f` must return `WouldBlock` only when the socket said so, or the stream
        /// waits for an event that has already come.
        pub fn try_io<R>(
            &self,
            interest: epitome_runtime::io::Interest,
            f: impl FnOnce() -> std::io::Result<R>,
        ) -> std::io::Result<R> {
            self.io.try_io(interest, f)
        }

        /// Runs `f`, your own non-blocking operation, until it does not return
        /// `WouldBlock`, waiting for `interest` between tries (and clearing readiness
        /// after each `WouldBlock`). `Interrupted` is retried.
        pub async fn async_io<R>(
            &self,
            interest: epitome_runtime::io::Interest,
            f: impl FnMut() -> std::io::Result<R>,
        ) -> std::io::Result<R> {
            self.io.async_io(interest, f).await
        }
    };
}

pub(crate) use readiness_methods;
