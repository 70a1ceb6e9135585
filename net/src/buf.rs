//! Receiving into a caller's `BufMut` (`read_buf`, `recv_buf`, `poll_recv`, ...): the
//! kernel writes straight into the buffer's spare capacity, which is then marked filled.

use std::io;
use std::mem::MaybeUninit;
use std::task::Poll;

use bytes::BufMut;

/// `buf`'s next chunk of spare capacity, for the kernel to write into. A `Vec` or
/// `BytesMut` with no spare capacity grows a little first (`BufMut::chunk_mut`); a full
/// fixed buffer gives an empty chunk.
///
/// # Safety
///
/// Only initialised bytes are written into the slice (never `MaybeUninit::uninit()`),
/// and nothing is read from it. A `recv(2)`-like call does that.
pub(crate) unsafe fn spare<B: BufMut + ?Sized>(buf: &mut B) -> &mut [MaybeUninit<u8>] {
    // SAFETY: the caller's promise is the one `as_uninit_slice_mut` asks for.
    unsafe { buf.chunk_mut().as_uninit_slice_mut() }
}

/// Marks the first `n` bytes of the chunk [`spare`] gave (of length `room`) as filled.
///
/// # Safety
///
/// Those bytes were written (initialised), and `buf` was not touched since `spare`.
pub(crate) unsafe fn commit<B: BufMut + ?Sized>(
    buf: &mut B,
    n: usize,
    room: usize,
) -> io::Result<()> {
    if n > room {
        // Never from `recv(2)`; but a wrong count must not mark memory initialised.
        return Err(io::Error::new(
            io::ErrorKind::InvalidData,
            "the operation reported more bytes than it was given room for",
        ));
    }
    // SAFETY: the first `n <= room` bytes of the chunk are initialised (the caller).
    unsafe { buf.advance_mut(n) };
    Ok(())
}

/// Runs `op` on `buf`'s spare capacity and, once it reports `n` bytes written,
/// advances `buf` by `n`.
///
/// # Safety
///
/// `op` writes only initialised bytes into the slice it is given, reads nothing from
/// it, and reports as written the first `n` bytes (a `recv(2)`-like call does).
pub(crate) unsafe fn poll_fill<B, X>(
    buf: &mut B,
    op: impl FnOnce(&mut [MaybeUninit<u8>]) -> Poll<io::Result<(usize, X)>>,
) -> Poll<io::Result<(usize, X)>>
where
    B: BufMut + ?Sized,
{
    // SAFETY: `op` keeps `spare`'s promise (the caller).
    let dst = unsafe { spare(buf) };
    let room = dst.len();
    match op(dst) {
        Poll::Ready(Ok((n, x))) => {
            // SAFETY: `op` wrote the first `n` bytes (the caller); `buf` is untouched.
            Poll::Ready(unsafe { commit(buf, n, room) }.map(|()| (n, x)))
        }
        other => other,
    }
}

/// [`poll_fill`] for an operation that does not wait.
///
/// # Safety
///
/// As for [`poll_fill`].
pub(crate) unsafe fn fill<B, X>(
    buf: &mut B,
    op: impl FnOnce(&mut [MaybeUninit<u8>]) -> io::Result<(usize, X)>,
) -> io::Result<(usize, X)>
where
    B: BufMut + ?Sized,
{
    // SAFETY: `op` is the caller's, under the caller's promise.
    match unsafe { poll_fill(buf, |dst| Poll::Ready(op(dst))) } {
        Poll::Ready(res) => res,
        Poll::Pending => unreachable!("the operation above never pends"),
    }
}

/// `buf` as bytes, for calls that take `&mut [u8]` but only write into it (std's
/// `recv_from` on a Unix datagram socket, `read(2)`).
///
/// # Safety
///
/// The returned slice is only written with initialised bytes, never read, and only the
/// bytes the writer reports are treated as initialised afterwards.
pub(crate) unsafe fn write_only_bytes(buf: &mut [MaybeUninit<u8>]) -> &mut [u8] {
    // SAFETY: `MaybeUninit<u8>` and `u8` have the same layout; the caller promises the
    // bytes are only written, never read, until initialised.
    unsafe { &mut *(buf as *mut [MaybeUninit<u8>] as *mut [u8]) }
}
