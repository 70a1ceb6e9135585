//! Files and directories: tokio::fs's functions and [`File`], each operation run on the
//! runtime's blocking pool ([`spawn_blocking`](crate::task::spawn_blocking)), since
//! regular files cannot be waited on through epoll.
//!
//! Errors are std's, unchanged: a file that does not exist (or vanished) is
//! `NotFound`, and so on. Every function needs an epitome runtime on the calling
//! thread (it panics without one, as `spawn_blocking` does).
//!
//! Each call is one trip to the pool. For many small reads or writes, wrap a [`File`]
//! in a buffered reader or writer, or read and write whole files with [`read()`] and
//! [`write()`].
//!
//! ```
//! # let rt = epitome::runtime::Builder::new_current_thread().build().unwrap();
//! # rt.block_on(async {
//! use epitome::fs;
//!
//! let dir = std::env::temp_dir().join(format!("epitome-fs-doc-{}", std::process::id()));
//! fs::create_dir_all(&dir).await?;
//! let path = dir.join("greeting.txt");
//! fs::write(&path, "hello").await?;
//! assert_eq!(fs::read_to_string(&path).await?, "hello");
//!
//! let mut names = Vec::new();
//! let mut entries = fs::read_dir(&dir).await?;
//! while let Some(entry) = entries.next_entry().await? {
//!     names.push(entry.file_name());
//! }
//! assert_eq!(names, ["greeting.txt"]);
//!
//! fs::remove_dir_all(&dir).await?;
//! let gone = fs::read(&path).await.unwrap_err();
//! assert_eq!(gone.kind(), std::io::ErrorKind::NotFound);
//! # Ok::<(), std::io::Error>(())
//! # }).unwrap();
//! ```

mod file;
mod options;
mod read_dir;

use std::io;
use std::path::{Path, PathBuf};

pub use file::File;
pub use options::{DirBuilder, OpenOptions};
pub use read_dir::{DirEntry, ReadDir, read_dir};
pub use std::fs::{FileType, Metadata, Permissions};

/// Runs `f` on the blocking pool and returns its result.
pub(crate) async fn asyncify<F, T>(f: F) -> io::Result<T>
where
    F: FnOnce() -> io::Result<T> + Send + 'static,
    T: Send + 'static,
{
    match crate::task::spawn_blocking(f).await {
        Ok(result) => result,
        Err(e) => Err(pool_error(e)),
    }
}

/// The operation did not run to completion on the pool (the runtime shut down, or it
/// panicked).
pub(crate) fn pool_error(e: crate::task::JoinError) -> io::Error {
    io::Error::other(format!("the file operation did not complete: {e}"))
}

/// The canonical, absolute form of `path`, with symlinks resolved.
pub async fn canonicalize(path: impl AsRef<Path>) -> io::Result<PathBuf> {
    let path = path.as_ref().to_owned();
    asyncify(move || std::fs::canonicalize(path)).await
}

/// Copies the contents and permissions of `from` to `to`; returns the bytes copied.
pub async fn copy(from: impl AsRef<Path>, to: impl AsRef<Path>) -> io::Result<u64> {
    let (from, to) = (from.as_ref().to_owned(), to.as_ref().to_owned());
    asyncify(move || std::fs::copy(from, to)).await
}

/// Creates a directory (its parent must exist).
pub async fn create_dir(path: impl AsRef<Path>) -> io::Result<()> {
    let path = path.as_ref().to_owned();
    asyncify(move || std::fs::create_dir(path)).await
}

/// Creates a directory and any missing parents.
pub async fn create_dir_all(path: impl AsRef<Path>) -> io::Result<()> {
    let path = path.as_ref().to_owned();
    asyncify(move || std::fs::create_dir_all(path)).await
}

/// Makes `link` a hard link to `original`.
pub async fn hard_link(original: impl AsRef<Path>, link: impl AsRef<Path>) -> io::Result<()> {
    let (original, link) = (original.as_ref().to_owned(), link.as_ref().to_owned());
    asyncify(move || std::fs::hard_link(original, link)).await
}

/// The metadata of `path`, following symlinks.
pub async fn metadata(path: impl AsRef<Path>) -> io::Result<Metadata> {
    let path = path.as_ref().to_owned();
    asyncify(move || std::fs::metadata(path)).await
}

/// The whole contents of a file.
pub async fn read(path: impl AsRef<Path>) -> io::Result<Vec<u8>> {
    let path = path.as_ref().to_owned();
    asyncify(move || std::fs::read(path)).await
}

/// Where a symlink points.
pub async fn read_link(path: impl AsRef<Path>) -> io::Result<PathBuf> {
    let path = path.as_ref().to_owned();
    asyncify(move || std::fs::read_link(path)).await
}

/// The whole contents of a file as a string (`InvalidData` if it is not UTF-8).
pub async fn read_to_string(path: impl AsRef<Path>) -> io::Result<String> {
    let path = path.as_ref().to_owned();
    asyncify(move || std::fs::read_to_string(path)).await
}

/// Removes an empty directory.
pub async fn remove_dir(path: impl AsRef<Path>) -> io::Result<()> {
    let path = path.as_ref().to_owned();
    asyncify(move || std::fs::remove_dir(path)).await
}

/// Removes a directory and everything in it.
pub async fn remove_dir_all(path: impl AsRef<Path>) -> io::Result<()> {
    let path = path.as_ref().to_owned();
    asyncify(move || std::fs::remove_dir_all(path)).await
}

/// Removes a file (or symlink).
pub async fn remove_file(path: impl AsRef<Path>) -> io::Result<()> {
    let path = path.as_ref().to_owned();
    asyncify(move || std::fs::remove_file(path)).await
}

/// Renames `from` to `to`, replacing `to` if it exists.
pub async fn rename(from: impl AsRef<Path>, to: impl AsRef<Path>) -> io::Result<()> {
    let (from, to) = (from.as_ref().to_owned(), to.as_ref().to_owned());
    asyncify(move || std::fs::rename(from, to)).await
}

/// Sets the permissions of `path`.
pub async fn set_permissions(path: impl AsRef<Path>, perm: Permissions) -> io::Result<()> {
    let path = path.as_ref().to_owned();
    asyncify(move || std::fs::set_permissions(path, perm)).await
}

/// Makes `link` a symlink to `original`.
pub async fn symlink(original: impl AsRef<Path>, link: impl AsRef<Path>) -> io::Result<()> {
    let (original, link) = (original.as_ref().to_owned(), link.as_ref().to_owned());
    asyncify(move || std::os::unix::fs::symlink(original, link)).await
}

/// The metadata of `path` itself (a symlink's own, not its target's).
pub async fn symlink_metadata(path: impl AsRef<Path>) -> io::Result<Metadata> {
    let path = path.as_ref().to_owned();
    asyncify(move || std::fs::symlink_metadata(path)).await
}

/// Whether `path` exists: `Ok(false)` if it does not, an error if that cannot be told
/// (permission denied on a parent, say).
pub async fn try_exists(path: impl AsRef<Path>) -> io::Result<bool> {
    let path = path.as_ref().to_owned();
    asyncify(move || path.try_exists()).await
}

/// Writes `contents` as the whole file, creating or truncating it.
pub async fn write(path: impl AsRef<Path>, contents: impl AsRef<[u8]>) -> io::Result<()> {
    let (path, contents) = (path.as_ref().to_owned(), contents.as_ref().to_owned());
    asyncify(move || std::fs::write(path, contents)).await
}
