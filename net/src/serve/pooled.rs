//! Readiness first: reading a connection without holding a buffer while it is idle.

use std::cell::RefCell;
use std::future::{Future, poll_fn};
use std::io;
use std::task::Poll;

use crate::TcpStream;

/// The size of each thread's read buffer.
pub(crate) const BUFFER_SIZE: usize = 16 * 1024;

std::thread_local! {
    /// This thread's read buffer: on a worker, shared by every connection it serves.
    /// Taken out while in use, so a nested use (a callback that reads another
    /// connection) gets a buffer of its own instead of a borrow error.
    static BUFFER: RefCell<Option<Box<[u8]>>> = const { RefCell::new(None) };
}

/// Runs `f` with this thread's read buffer.
fn with_buffer<R>(f: impl FnOnce(&mut [u8]) -> R) -> R {
    let mut buf = BUFFER
        .try_with(|b| b.borrow_mut().take())
        .ok()
        .flatten()
        .unwrap_or_else(|| vec![0; BUFFER_SIZE].into_boxed_slice());
    let out = f(&mut buf);
    // After the thread's locals are gone (a task dropped at thread exit), the
    // buffer is simply freed.
    let _ = BUFFER.try_with(|b| *b.borrow_mut() = Some(buf));
    out
}

/// Waits until `stream` is readable, reads what is there into a buffer of this
/// thread's (on a worker: one buffer for all the connections it serves), and returns
/// `f` of the bytes read (empty at end of stream).
///
/// The wait holds no buffer and no waiter node: it is the readiness fast path
/// ([`TcpStream::poll_read_ready`]), whose waker lives in the reactor's state of the
/// connection. So a task serving an idle connection with this costs its future's few
/// words, not a read buffer: a server with many idle connections keeps one buffer per
/// worker instead of one per connection. `f` must not wait (it is not async): answer
/// with [`TcpStream::try_write`], and copy out only what could not be written at once.
///
/// At most 16 KiB is read per call. Cancel-safe: the read happens in the poll that
/// returns `Ready`, so a dropped future has read nothing.
///
/// ```
/// use epitome_net::serve::read_pooled;
/// use epitome_net::{TcpListener, TcpStream};
///
/// let rt = epitome_runtime::runtime::Builder::new_current_thread().build()?;
/// rt.block_on(async {
///     let listener = TcpListener::bind("127.0.0.1:0").await?;
///     let client = TcpStream::connect(listener.local_addr()?).await?;
///     let (server, _) = listener.accept().await?;
///     client.write_all(b"hello").await?;
///     let len = read_pooled(&server, |bytes| bytes.len()).await?;
///     assert_eq!(len, 5);
///     drop(client);
///     // End of stream: an empty slice.
///     assert!(read_pooled(&server, |bytes| bytes.is_empty()).await?);
///     Ok::<_, std::io::Error>(())
/// })?;
/// # Ok::<_, std::io::Error>(())
/// ```
pub fn read_pooled<'a, R, F>(
    stream: &'a TcpStream,
    f: F,
) -> impl Future<Output = io::Result<R>> + 'a
where
    F: FnOnce(&[u8]) -> R + 'a,
{
    // A `poll_fn`, not an `async fn`: the future is the stream reference and `f`,
    // nothing kept twice, as small as a connection's idle state can be.
    let mut f = Some(f);
    poll_fn(move |cx| {
        // `poll_read` waits on the readiness fast path, and a short read clears the
        // readiness (the socket is drained) instead of trying again for `EAGAIN`.
        with_buffer(|buf| match stream.io.poll_read(cx, buf) {
            Poll::Ready(Ok(n)) => match f.take() {
                Some(f) => Poll::Ready(Ok(f(&buf[..n]))),
                // `poll_fn` is not polled again after `Ready`, and `Ready` is the only
                // way out after taking `f`.
                None => unreachable!("read_pooled polled after completion"),
            },
            Poll::Ready(Err(e)) => Poll::Ready(Err(e)),
            Poll::Pending => Poll::Pending,
        })
    })
}
