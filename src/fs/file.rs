//! `File`: std's file, read, written and sought on the blocking pool.
//!
//! At most one operation is in flight per file. A read fetches up to `max_buf_size`
//! bytes into the file's buffer and hands them out from there; a write copies the data
//! into the buffer and returns at once, the pool writing it behind (its error, if any,
//! comes back from the next write or flush). Bytes read ahead and not handed out yet
//! are given back (the file position moved back over them) before a write, a seek or
//! `set_len`, so the position is always where the caller thinks it is.
//!
//! Who touches what: the std file is shared (an `Arc`) with the operation in flight;
//! everything else is in `Inner`, behind the `async_lock::Mutex` that the `&self`
//! methods lock and the poll methods reach through `&mut self` without locking.

use std::fmt;
use std::future::{Future, poll_fn};
use std::io::{self, Read, Seek, SeekFrom, Write};
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, RawFd};
use std::path::Path;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll, ready};

use super::{Metadata, OpenOptions, Permissions, asyncify, pool_error};
use crate::task::JoinHandle;

/// The most one read or write hands to the pool, by default (as tokio's).
const DEFAULT_MAX_BUF_SIZE: usize = 2 * 1024 * 1024;

/// An open file. Reads, writes and seeks run on the blocking pool (see the
/// [module docs](super)); it implements `futures_io::AsyncRead`, `AsyncWrite` and
/// `AsyncSeek`, and tokio's with the `tokio-io` feature.
///
/// Writes return before the data reaches the file: call `flush` (or
/// [`sync_all`](Self::sync_all)) before relying on it, and to see a write's error.
///
/// ```
/// # let rt = epitome::runtime::Builder::new_current_thread().build().unwrap();
/// # rt.block_on(async {
/// use epitome::fs::File;
/// use futures_util::{AsyncReadExt, AsyncSeekExt, AsyncWriteExt};
/// use std::io::SeekFrom;
///
/// let path = std::env::temp_dir().join(format!("epitome-file-doc-{}", std::process::id()));
/// let mut file = File::create(&path).await?;
/// file.write_all(b"hello, world").await?;
/// file.flush().await?;
///
/// let mut file = File::open(&path).await?;
/// file.seek(SeekFrom::Start(7)).await?;
/// let mut rest = String::new();
/// file.read_to_string(&mut rest).await?;
/// assert_eq!(rest, "world");
/// assert_eq!(file.metadata().await?.len(), 12);
/// epitome::fs::remove_file(&path).await?;
/// # Ok::<(), std::io::Error>(())
/// # }).unwrap();
/// ```
pub struct File {
    std: Arc<std::fs::File>,
    inner: async_lock::Mutex<Inner>,
}

struct Inner {
    state: State,
    /// The error of a write that finished after `poll_write` returned.
    last_write_err: Option<io::Error>,
    /// Whether the operation in flight is a seek the caller is waiting for.
    seeking: bool,
    /// The position the last seek reached (tokio's `poll_complete` reports it when no
    /// seek is in flight).
    pos: u64,
    max_buf_size: usize,
}

enum State {
    /// No operation in flight; the buffer (`None` only after the pool lost it).
    Idle(Option<Buf>),
    Busy(JoinHandle<(Operation, Buf)>),
}

enum Operation {
    Read(io::Result<usize>),
    Write(io::Result<()>),
    Seek(io::Result<u64>),
}

/// Bytes read ahead (`data[pos..]`), or bytes to write.
#[derive(Default)]
struct Buf {
    data: Vec<u8>,
    pos: usize,
}

impl Buf {
    fn unread(&self) -> usize {
        self.data.len() - self.pos
    }

    fn copy_to(&mut self, dst: &mut [u8]) -> usize {
        let n = dst.len().min(self.unread());
        dst[..n].copy_from_slice(&self.data[self.pos..self.pos + n]);
        self.pos += n;
        n
    }

    /// Forgets unread bytes, returning how far the file position is ahead of the
    /// caller's because of them.
    fn discard(&mut self) -> i64 {
        let ahead = self.unread() as i64;
        self.data.clear();
        self.pos = 0;
        ahead
    }

    fn read_from(&mut self, file: &std::fs::File, max: usize) -> io::Result<usize> {
        self.data.resize(max, 0);
        self.pos = 0;
        let res = loop {
            match (&*file).read(&mut self.data) {
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                res => break res,
            }
        };
        self.data.truncate(*res.as_ref().unwrap_or(&0));
        res
    }

    fn write_to(&mut self, file: &std::fs::File) -> io::Result<()> {
        let res = (&*file).write_all(&self.data[self.pos..]);
        self.data.clear();
        self.pos = 0;
        res
    }
}

impl File {
    /// Opens a file for reading.
    pub async fn open(path: impl AsRef<Path>) -> io::Result<File> {
        OpenOptions::new().read(true).open(path).await
    }

    /// Opens a file for writing, creating it or truncating it.
    pub async fn create(path: impl AsRef<Path>) -> io::Result<File> {
        OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .open(path)
            .await
    }

    /// Creates a new file for reading and writing; `AlreadyExists` if there is one.
    pub async fn create_new(path: impl AsRef<Path>) -> io::Result<File> {
        OpenOptions::new()
            .read(true)
            .write(true)
            .create_new(true)
            .open(path)
            .await
    }

    /// Options for opening a file ([`OpenOptions::new`]).
    pub fn options() -> OpenOptions {
        OpenOptions::new()
    }

    /// Wraps an open std file.
    pub fn from_std(std: std::fs::File) -> File {
        File {
            std: Arc::new(std),
            inner: async_lock::Mutex::new(Inner {
                state: State::Idle(Some(Buf::default())),
                last_write_err: None,
                seeking: false,
                pos: 0,
                max_buf_size: DEFAULT_MAX_BUF_SIZE,
            }),
        }
    }

    /// The most bytes one read or write hands to the blocking pool (default 2 MiB).
    pub fn set_max_buf_size(&mut self, max_buf_size: usize) {
        self.inner.get_mut().max_buf_size = max_buf_size.max(1);
    }

    /// Flushes written data and metadata to the device (fsync).
    pub async fn sync_all(&self) -> io::Result<()> {
        let mut inner = self.inner.lock().await;
        inner.complete_inflight().await?;
        let std = self.std.clone();
        asyncify(move || std.sync_all()).await
    }

    /// Flushes written data to the device (fdatasync).
    pub async fn sync_data(&self) -> io::Result<()> {
        let mut inner = self.inner.lock().await;
        inner.complete_inflight().await?;
        let std = self.std.clone();
        asyncify(move || std.sync_data()).await
    }

    /// Truncates or extends the file to `size` bytes. The position does not change.
    pub async fn set_len(&self, size: u64) -> io::Result<()> {
        let mut inner = self.inner.lock().await;
        inner.complete_inflight().await?;
        let ahead = inner.discard_read_ahead();
        let std = self.std.clone();
        asyncify(move || {
            if ahead != 0 {
                (&*std).seek(SeekFrom::Current(-ahead))?;
            }
            std.set_len(size)
        })
        .await
    }

    /// The file's metadata.
    pub async fn metadata(&self) -> io::Result<Metadata> {
        let std = self.std.clone();
        asyncify(move || std.metadata()).await
    }

    /// Sets the file's permissions.
    pub async fn set_permissions(&self, perm: Permissions) -> io::Result<()> {
        let std = self.std.clone();
        asyncify(move || std.set_permissions(perm)).await
    }

    /// A second `File` for the same open file (a dup'd fd: they share the position).
    pub async fn try_clone(&self) -> io::Result<File> {
        let std = self.std.clone();
        let clone = asyncify(move || std.try_clone()).await?;
        Ok(File::from_std(clone))
    }

    /// Waits for the operation in flight and returns the std file.
    pub async fn into_std(mut self) -> std::fs::File {
        // A failed write's error is dropped here, as tokio's: flush first to see it.
        let _ = self.inner.get_mut().complete_inflight().await;
        let mut std = self.std;
        loop {
            match Arc::try_unwrap(std) {
                Ok(file) => return file,
                // The pool still holds the finished operation's closure for a moment.
                Err(shared) => {
                    std = shared;
                    crate::task::yield_now().await;
                }
            }
        }
    }

    /// The std file, if no operation is in flight (else the `File` back).
    pub fn try_into_std(mut self) -> Result<std::fs::File, File> {
        if matches!(self.inner.get_mut().state, State::Busy(_)) {
            return Err(self);
        }
        let File { std, inner } = self;
        Arc::try_unwrap(std).map_err(|std| File { std, inner })
    }
}

impl Inner {
    /// Waits for the operation in flight, if any; a write's error is returned.
    async fn complete_inflight(&mut self) -> io::Result<()> {
        poll_fn(|cx| self.poll_flush(cx)).await
    }

    fn discard_read_ahead(&mut self) -> i64 {
        match &mut self.state {
            State::Idle(Some(buf)) => buf.discard(),
            _ => 0,
        }
    }

    /// Polls the operation in flight; puts the buffer back and returns the operation.
    fn poll_inflight(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<Operation>> {
        let State::Busy(handle) = &mut self.state else {
            unreachable!("only called while busy")
        };
        match ready!(Pin::new(handle).poll(cx)) {
            Ok((op, buf)) => {
                self.state = State::Idle(Some(buf));
                Poll::Ready(Ok(op))
            }
            Err(e) => {
                self.state = State::Idle(None);
                self.seeking = false;
                Poll::Ready(Err(pool_error(e)))
            }
        }
    }

    fn take_buf(&mut self) -> io::Result<Buf> {
        match &mut self.state {
            State::Idle(buf) => buf.take().ok_or_else(|| {
                io::Error::other("an earlier operation on this file did not complete")
            }),
            State::Busy(_) => unreachable!("only called while idle"),
        }
    }

    fn poll_read(
        &mut self,
        std: &Arc<std::fs::File>,
        cx: &mut Context<'_>,
        dst: &mut [u8],
    ) -> Poll<io::Result<usize>> {
        loop {
            match &mut self.state {
                State::Idle(Some(buf)) if buf.unread() > 0 => {
                    return Poll::Ready(Ok(buf.copy_to(dst)));
                }
                State::Idle(_) => {
                    if dst.is_empty() {
                        return Poll::Ready(Ok(0));
                    }
                    let mut buf = self.take_buf()?;
                    let (std, max) = (std.clone(), dst.len().min(self.max_buf_size));
                    self.state = State::Busy(crate::task::spawn_blocking(move || {
                        let res = buf.read_from(&std, max);
                        (Operation::Read(res), buf)
                    }));
                }
                State::Busy(_) => match ready!(self.poll_inflight(cx))? {
                    Operation::Read(Ok(_)) => {
                        let State::Idle(Some(buf)) = &mut self.state else {
                            unreachable!("poll_inflight left the buffer")
                        };
                        // End of file if nothing was read.
                        return Poll::Ready(Ok(buf.copy_to(dst)));
                    }
                    Operation::Read(Err(e)) => return Poll::Ready(Err(e)),
                    Operation::Write(Err(e)) => self.last_write_err = Some(e),
                    Operation::Write(Ok(())) => {}
                    Operation::Seek(res) => self.finish_seek(res),
                },
            }
        }
    }

    fn poll_write(
        &mut self,
        std: &Arc<std::fs::File>,
        cx: &mut Context<'_>,
        src: &[u8],
    ) -> Poll<io::Result<usize>> {
        if let Some(e) = self.last_write_err.take() {
            return Poll::Ready(Err(e));
        }
        loop {
            match &mut self.state {
                State::Idle(_) => {
                    if src.is_empty() {
                        return Poll::Ready(Ok(0));
                    }
                    let mut buf = self.take_buf()?;
                    let ahead = buf.discard();
                    let n = src.len().min(self.max_buf_size);
                    buf.data.extend_from_slice(&src[..n]);
                    let std = std.clone();
                    self.state = State::Busy(crate::task::spawn_blocking(move || {
                        let res = match ahead {
                            0 => buf.write_to(&std),
                            ahead => (&*std)
                                .seek(SeekFrom::Current(-ahead))
                                .and_then(|_| buf.write_to(&std)),
                        };
                        (Operation::Write(res), buf)
                    }));
                    return Poll::Ready(Ok(n));
                }
                State::Busy(_) => match ready!(self.poll_inflight(cx))? {
                    Operation::Write(Err(e)) => return Poll::Ready(Err(e)),
                    Operation::Seek(res) => self.finish_seek(res),
                    // A read's bytes stay in the buffer: the Idle branch gives them back.
                    Operation::Read(_) | Operation::Write(Ok(())) => {}
                },
            }
        }
    }

    /// Waits for the operation in flight; a write's error is returned.
    fn poll_flush(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        if let Some(e) = self.last_write_err.take() {
            return Poll::Ready(Err(e));
        }
        if let State::Busy(_) = self.state {
            match ready!(self.poll_inflight(cx))? {
                Operation::Write(Err(e)) => return Poll::Ready(Err(e)),
                Operation::Seek(res) => self.finish_seek(res),
                Operation::Read(_) | Operation::Write(Ok(())) => {}
            }
        }
        Poll::Ready(Ok(()))
    }

    fn finish_seek(&mut self, res: io::Result<u64>) {
        if let Ok(pos) = res {
            self.pos = pos;
        }
        // A seek nobody is waiting for any more: its error has no one to go to.
    }

    /// Starts a seek (waiting first for the operation in flight).
    fn start_seek(&mut self, std: &Arc<std::fs::File>, pos: SeekFrom) -> io::Result<()> {
        let mut buf = self.take_buf()?;
        let ahead = buf.discard();
        let pos = match pos {
            // Relative to where the caller is, not to where the read-ahead left the fd.
            SeekFrom::Current(offset) => SeekFrom::Current(offset - ahead),
            other => other,
        };
        let std = std.clone();
        self.state = State::Busy(crate::task::spawn_blocking(move || {
            (Operation::Seek((&*std).seek(pos)), buf)
        }));
        self.seeking = true;
        Ok(())
    }

    /// Waits for the seek started by `start_seek`; with none in flight, the position
    /// the last seek reached.
    fn poll_seek_complete(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<u64>> {
        loop {
            if let State::Idle(_) = self.state {
                return Poll::Ready(Ok(self.pos));
            }
            match ready!(self.poll_inflight(cx))? {
                Operation::Seek(res) if self.seeking => {
                    self.seeking = false;
                    if let Ok(pos) = res {
                        self.pos = pos;
                    }
                    return Poll::Ready(res);
                }
                Operation::Seek(res) => self.finish_seek(res),
                Operation::Write(Err(e)) => self.last_write_err = Some(e),
                Operation::Read(_) | Operation::Write(Ok(())) => {}
            }
        }
    }
}

impl futures_io::AsyncRead for File {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut [u8],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        this.inner.get_mut().poll_read(&this.std, cx, buf)
    }
}

impl futures_io::AsyncWrite for File {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        this.inner.get_mut().poll_write(&this.std, cx, buf)
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        self.get_mut().inner.get_mut().poll_flush(cx)
    }

    /// Flushes; the file itself closes when the `File` is dropped.
    fn poll_close(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        self.get_mut().inner.get_mut().poll_flush(cx)
    }
}

impl futures_io::AsyncSeek for File {
    fn poll_seek(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        pos: SeekFrom,
    ) -> Poll<io::Result<u64>> {
        let this = self.get_mut();
        let inner = this.inner.get_mut();
        loop {
            if inner.seeking {
                return inner.poll_seek_complete(cx);
            }
            match inner.state {
                State::Idle(_) => inner.start_seek(&this.std, pos)?,
                // Another operation first (its result is kept as the loops above do).
                State::Busy(_) => match ready!(inner.poll_inflight(cx))? {
                    Operation::Write(Err(e)) => return Poll::Ready(Err(e)),
                    Operation::Seek(res) => inner.finish_seek(res),
                    Operation::Read(_) | Operation::Write(Ok(())) => {}
                },
            }
        }
    }
}

#[cfg(feature = "tokio-io")]
impl tokio::io::AsyncRead for File {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut tokio::io::ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        let n = ready!(
            this.inner
                .get_mut()
                .poll_read(&this.std, cx, buf.initialize_unfilled())
        )?;
        buf.advance(n);
        Poll::Ready(Ok(()))
    }
}

#[cfg(feature = "tokio-io")]
impl tokio::io::AsyncWrite for File {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        this.inner.get_mut().poll_write(&this.std, cx, buf)
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        self.get_mut().inner.get_mut().poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        self.get_mut().inner.get_mut().poll_flush(cx)
    }
}

#[cfg(feature = "tokio-io")]
impl tokio::io::AsyncSeek for File {
    fn start_seek(self: Pin<&mut Self>, pos: SeekFrom) -> io::Result<()> {
        let this = self.get_mut();
        let inner = this.inner.get_mut();
        if let State::Busy(_) = inner.state {
            return Err(io::Error::other(
                "another operation is in flight: call poll_complete before start_seek",
            ));
        }
        inner.start_seek(&this.std, pos)
    }

    fn poll_complete(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<u64>> {
        self.get_mut().inner.get_mut().poll_seek_complete(cx)
    }
}

impl From<std::fs::File> for File {
    fn from(std: std::fs::File) -> File {
        File::from_std(std)
    }
}

impl AsFd for File {
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.std.as_fd()
    }
}

impl AsRawFd for File {
    fn as_raw_fd(&self) -> RawFd {
        self.std.as_raw_fd()
    }
}

impl fmt::Debug for File {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("File").field("std", &self.std).finish()
    }
}
