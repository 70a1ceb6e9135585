//! Reading a directory: entries fetched from the blocking pool in batches.

use std::collections::VecDeque;
use std::ffi::OsString;
use std::fmt;
use std::future::{Future, poll_fn};
use std::io;
use std::os::unix::fs::DirEntryExt;
use std::path::{Path, PathBuf};
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll, ready};

use super::{FileType, Metadata, asyncify, pool_error};
use crate::task::JoinHandle;

/// Entries fetched per trip to the blocking pool.
const BATCH: usize = 32;

/// Opens a directory for reading its entries (not `.` and `..`).
pub async fn read_dir(path: impl AsRef<Path>) -> io::Result<ReadDir> {
    let path = path.as_ref().to_owned();
    let std = asyncify(move || std::fs::read_dir(path)).await?;
    Ok(ReadDir {
        state: State::Idle(Some(Batch {
            entries: VecDeque::new(),
            std,
            done: false,
        })),
    })
}

/// The entries of a directory, from [`read_dir`]. Read them with
/// [`next_entry`](Self::next_entry).
pub struct ReadDir {
    state: State,
}

enum State {
    /// `None` once the pool lost the batch (the runtime shut down).
    Idle(Option<Batch>),
    Busy(JoinHandle<Batch>),
}

struct Batch {
    entries: VecDeque<io::Result<std::fs::DirEntry>>,
    std: std::fs::ReadDir,
    /// The directory has no more entries.
    done: bool,
}

impl ReadDir {
    /// The next entry, `None` when there are no more. Cancel-safe.
    pub async fn next_entry(&mut self) -> io::Result<Option<DirEntry>> {
        poll_fn(|cx| self.poll_next_entry(cx)).await
    }

    /// Polls for the next entry.
    pub fn poll_next_entry(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<Option<DirEntry>>> {
        loop {
            match &mut self.state {
                State::Idle(batch) => {
                    let Some(mut b) = batch.take() else {
                        return Poll::Ready(Ok(None));
                    };
                    if let Some(entry) = b.entries.pop_front() {
                        *batch = Some(b);
                        return Poll::Ready(entry.map(|e| Some(DirEntry(Arc::new(e)))));
                    }
                    if b.done {
                        *batch = Some(b);
                        return Poll::Ready(Ok(None));
                    }
                    self.state = State::Busy(crate::task::spawn_blocking(move || {
                        for _ in 0..BATCH {
                            match b.std.next() {
                                Some(entry) => b.entries.push_back(entry),
                                None => {
                                    b.done = true;
                                    break;
                                }
                            }
                        }
                        b
                    }));
                }
                State::Busy(handle) => {
                    let result = ready!(Pin::new(handle).poll(cx));
                    match result {
                        Ok(batch) => self.state = State::Idle(Some(batch)),
                        Err(e) => {
                            self.state = State::Idle(None);
                            return Poll::Ready(Err(pool_error(e)));
                        }
                    }
                }
            }
        }
    }
}

impl fmt::Debug for ReadDir {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ReadDir").finish_non_exhaustive()
    }
}

/// An entry of a directory.
#[derive(Clone)]
pub struct DirEntry(Arc<std::fs::DirEntry>);

impl DirEntry {
    /// The entry's full path (the directory's path joined with the name).
    pub fn path(&self) -> PathBuf {
        self.0.path()
    }

    /// The entry's name.
    pub fn file_name(&self) -> OsString {
        self.0.file_name()
    }

    /// The entry's inode number.
    pub fn ino(&self) -> u64 {
        self.0.ino()
    }

    /// The entry's metadata (not following a symlink).
    pub async fn metadata(&self) -> io::Result<Metadata> {
        let entry = self.0.clone();
        asyncify(move || entry.metadata()).await
    }

    /// The entry's type (not following a symlink); usually known without a syscall.
    pub async fn file_type(&self) -> io::Result<FileType> {
        let entry = self.0.clone();
        asyncify(move || entry.file_type()).await
    }
}

impl fmt::Debug for DirEntry {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("DirEntry").field(&self.path()).finish()
    }
}
