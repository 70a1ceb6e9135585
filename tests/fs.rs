//! `epitome::fs` on both runtimes: the functions against std's answers, `File`'s
//! position through read-ahead, write-behind and seeks, and std's errors for files that
//! do not exist or vanish.

mod util;

use std::future::poll_fn;
use std::io::{self, SeekFrom};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::pin::Pin;
use std::sync::atomic::{AtomicU32, Ordering};
use std::task::Poll;

use epitome::fs::{self, DirBuilder, File, OpenOptions};
use futures_util::{AsyncReadExt, AsyncSeekExt, AsyncWriteExt};
use util::on_both;

/// A fresh directory under the system temp dir, removed on drop.
struct TempDir(PathBuf);

impl TempDir {
    fn new() -> TempDir {
        static NEXT: AtomicU32 = AtomicU32::new(0);
        let dir = std::env::temp_dir().join(format!(
            "epitome-fs-test-{}-{}",
            std::process::id(),
            NEXT.fetch_add(1, Ordering::Relaxed)
        ));
        std::fs::create_dir_all(&dir).unwrap();
        TempDir(dir)
    }

    fn path(&self, name: &str) -> PathBuf {
        self.0.join(name)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn kind<T: std::fmt::Debug>(res: io::Result<T>) -> io::ErrorKind {
    res.unwrap_err().kind()
}

#[test]
fn functions_match_std() {
    on_both(|| async {
        let tmp = TempDir::new();
        let a = tmp.path("a.txt");
        fs::write(&a, b"alpha").await.unwrap();
        assert_eq!(fs::read(&a).await.unwrap(), b"alpha");
        assert_eq!(fs::read_to_string(&a).await.unwrap(), "alpha");
        assert_eq!(fs::metadata(&a).await.unwrap().len(), 5);
        assert!(fs::try_exists(&a).await.unwrap());

        let b = tmp.path("b.txt");
        assert_eq!(fs::copy(&a, &b).await.unwrap(), 5);
        let c = tmp.path("c.txt");
        fs::rename(&b, &c).await.unwrap();
        assert!(!fs::try_exists(&b).await.unwrap());
        fs::hard_link(&c, tmp.path("d.txt")).await.unwrap();
        assert_eq!(fs::read(tmp.path("d.txt")).await.unwrap(), b"alpha");

        let link = tmp.path("link");
        fs::symlink(&a, &link).await.unwrap();
        assert_eq!(fs::read_link(&link).await.unwrap(), a);
        assert!(
            fs::symlink_metadata(&link)
                .await
                .unwrap()
                .file_type()
                .is_symlink()
        );
        assert_eq!(
            fs::canonicalize(&link).await.unwrap(),
            std::fs::canonicalize(&a).unwrap()
        );

        let mut perm = fs::metadata(&a).await.unwrap().permissions();
        perm.set_mode(0o600);
        fs::set_permissions(&a, perm).await.unwrap();
        assert_eq!(
            fs::metadata(&a).await.unwrap().permissions().mode() & 0o777,
            0o600
        );

        fs::create_dir(tmp.path("sub")).await.unwrap();
        assert_eq!(
            kind(fs::create_dir(tmp.path("sub")).await),
            io::ErrorKind::AlreadyExists
        );
        fs::create_dir_all(tmp.path("sub/x/y")).await.unwrap();
        DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(tmp.path("sub/x/z"))
            .await
            .unwrap();
        assert_eq!(
            kind(fs::remove_dir(tmp.path("sub")).await),
            io::ErrorKind::DirectoryNotEmpty
        );
        fs::remove_dir(tmp.path("sub/x/z")).await.unwrap();
        fs::remove_dir_all(tmp.path("sub")).await.unwrap();
        fs::remove_file(&link).await.unwrap();
        assert!(fs::try_exists(&a).await.unwrap());
    });
}

#[test]
fn missing_and_vanished_files_are_not_found() {
    on_both(|| async {
        let tmp = TempDir::new();
        let gone = tmp.path("gone");
        assert_eq!(kind(fs::read(&gone).await), io::ErrorKind::NotFound);
        assert_eq!(kind(fs::metadata(&gone).await), io::ErrorKind::NotFound);
        assert_eq!(kind(fs::remove_file(&gone).await), io::ErrorKind::NotFound);
        assert_eq!(
            kind(fs::rename(&gone, tmp.path("x")).await),
            io::ErrorKind::NotFound
        );
        assert_eq!(kind(File::open(&gone).await), io::ErrorKind::NotFound);
        assert_eq!(kind(fs::read_dir(&gone).await), io::ErrorKind::NotFound);
        assert!(!fs::try_exists(&gone).await.unwrap());

        // A file removed while open: the open file still reads, the path is gone.
        let path = tmp.path("vanishing");
        fs::write(&path, b"still here").await.unwrap();
        let mut file = File::open(&path).await.unwrap();
        fs::remove_file(&path).await.unwrap();
        let mut text = String::new();
        file.read_to_string(&mut text).await.unwrap();
        assert_eq!(text, "still here");
        assert_eq!(kind(File::open(&path).await), io::ErrorKind::NotFound);

        // And bad contents are std's error too.
        let bad = tmp.path("bad-utf8");
        fs::write(&bad, [0xff, 0xfe]).await.unwrap();
        assert_eq!(
            kind(fs::read_to_string(&bad).await),
            io::ErrorKind::InvalidData
        );
        assert_eq!(
            kind(File::create_new(&bad).await),
            io::ErrorKind::AlreadyExists
        );
    });
}

#[test]
fn file_round_trips_more_than_one_buffer() {
    on_both(|| async {
        let tmp = TempDir::new();
        let path = tmp.path("big");
        let data: Vec<u8> = (0..5_000_000u32).map(|i| (i % 253) as u8).collect();
        let mut file = File::create(&path).await.unwrap();
        file.write_all(&data).await.unwrap();
        assert_eq!(file.write(&[]).await.unwrap(), 0);
        file.flush().await.unwrap();
        file.sync_all().await.unwrap();
        assert_eq!(file.metadata().await.unwrap().len(), data.len() as u64);
        drop(file);

        let mut file = File::open(&path).await.unwrap();
        let mut back = Vec::new();
        let mut chunk = vec![0u8; 777];
        assert_eq!(file.read(&mut []).await.unwrap(), 0);
        loop {
            let n = file.read(&mut chunk).await.unwrap();
            if n == 0 {
                break;
            }
            back.extend_from_slice(&chunk[..n]);
        }
        assert!(back == data);
    });
}

#[test]
fn seeks_and_writes_start_where_the_caller_is_despite_read_ahead() {
    // One blocking thread, held busy while a read is started: the read cannot finish
    // on its first poll, so it is completed by a smaller read, leaving bytes read ahead.
    let runtimes = [
        epitome::runtime::Builder::new_current_thread()
            .max_blocking_threads(1)
            .build()
            .unwrap(),
        epitome::runtime::Builder::new_multi_reactor()
            .reactors(2)
            .max_blocking_threads(1)
            .build()
            .unwrap(),
    ];
    for rt in runtimes {
        rt.block_on(read_ahead_then_write_and_seek());
    }
}

async fn read_ahead_then_write_and_seek() {
    {
        let tmp = TempDir::new();
        let path = tmp.path("pos");
        fs::write(&path, b"0123456789abcdefghij").await.unwrap();
        let mut file = OpenOptions::new()
            .read(true)
            .write(true)
            .open(&path)
            .await
            .unwrap();

        let (release_tx, release_rx) = std::sync::mpsc::channel::<()>();
        let blocker = epitome::task::spawn_blocking(move || release_rx.recv());
        let mut big = [0u8; 16];
        let first = poll_fn(|cx| {
            Poll::Ready(futures_io::AsyncRead::poll_read(
                Pin::new(&mut file),
                cx,
                &mut big,
            ))
        })
        .await;
        assert!(first.is_pending(), "the only blocking thread is busy");
        release_tx.send(()).unwrap();
        blocker.await.unwrap().unwrap();
        // The 16-byte read completes into a 4-byte buffer: 12 bytes are read ahead.
        let mut small = [0u8; 4];
        assert_eq!(file.read(&mut small).await.unwrap(), 4);
        assert_eq!(&small, b"0123");
        file.write_all(b"XY").await.unwrap();
        file.flush().await.unwrap();
        let expected = b"0123XY6789abcdefghij".to_vec();
        assert_eq!(fs::read(&path).await.unwrap(), expected);

        // Seeks from the start, the end and the current position.
        assert_eq!(file.seek(SeekFrom::Start(2)).await.unwrap(), 2);
        let mut two = [0u8; 2];
        file.read_exact(&mut two).await.unwrap();
        assert_eq!(&two, &expected[2..4]);
        assert_eq!(file.seek(SeekFrom::Current(1)).await.unwrap(), 5);
        assert_eq!(file.seek(SeekFrom::End(-1)).await.unwrap(), 19);
        file.read_exact(&mut two[..1]).await.unwrap();
        assert_eq!(two[0], b'j');
        // Before the start: std's error (EINVAL), and the position is unchanged.
        assert_eq!(
            kind(file.seek(SeekFrom::Current(-100)).await),
            io::ErrorKind::InvalidInput
        );
        assert_eq!(file.seek(SeekFrom::Current(0)).await.unwrap(), 20);

        // set_len does not move the position.
        file.set_len(5).await.unwrap();
        assert_eq!(file.metadata().await.unwrap().len(), 5);
        assert_eq!(file.seek(SeekFrom::Current(0)).await.unwrap(), 20);
    }
}

#[test]
fn a_failed_write_is_reported_by_flush() {
    on_both(|| async {
        let tmp = TempDir::new();
        let path = tmp.path("read-only");
        fs::write(&path, b"x").await.unwrap();
        let mut file = File::open(&path).await.unwrap(); // read only
        // The write is accepted into the buffer; the pool's write(2) fails (EBADF).
        let accepted = file.write(b"no").await;
        let err = match accepted {
            Ok(n) => {
                assert_eq!(n, 2);
                file.flush().await.unwrap_err()
            }
            Err(e) => e,
        };
        assert_eq!(err.raw_os_error(), Some(libc::EBADF));
        // Reported once; the file is usable afterwards.
        file.flush().await.unwrap();
        let mut s = String::new();
        file.read_to_string(&mut s).await.unwrap();
        assert_eq!(s, "x");
    });
}

#[test]
fn clone_into_std_and_permissions() {
    on_both(|| async {
        let tmp = TempDir::new();
        let path = tmp.path("f");
        let mut file = File::create(&path).await.unwrap();
        file.write_all(b"abc").await.unwrap();
        let clone = file.try_clone().await.unwrap();
        let mut perm = clone.metadata().await.unwrap().permissions();
        perm.set_mode(0o640);
        clone.set_permissions(perm).await.unwrap();
        file.sync_data().await.unwrap();
        let std = file.into_std().await;
        assert_eq!(std.metadata().unwrap().len(), 3);
        assert_eq!(
            std::fs::metadata(&path).unwrap().permissions().mode() & 0o777,
            0o640
        );
        assert!(clone.try_into_std().is_ok());
    });
}

#[test]
fn read_dir_lists_every_entry() {
    on_both(|| async {
        let tmp = TempDir::new();
        for i in 0..70 {
            fs::write(tmp.path(&format!("file{i:02}")), [i as u8])
                .await
                .unwrap();
        }
        fs::create_dir(tmp.path("dir")).await.unwrap();
        let mut entries = fs::read_dir(&tmp.0).await.unwrap();
        let mut names = Vec::new();
        while let Some(entry) = entries.next_entry().await.unwrap() {
            let is_dir = entry.file_type().await.unwrap().is_dir();
            assert_eq!(is_dir, entry.file_name() == "dir");
            if !is_dir {
                assert_eq!(entry.metadata().await.unwrap().len(), 1);
            }
            assert_eq!(entry.path(), tmp.0.join(entry.file_name()));
            names.push(entry.file_name().into_string().unwrap());
        }
        assert!(entries.next_entry().await.unwrap().is_none());
        names.sort();
        let mut expected: Vec<String> = (0..70).map(|i| format!("file{i:02}")).collect();
        expected.push("dir".into());
        expected.sort();
        assert_eq!(names, expected);
    });
}

#[test]
fn dropping_a_file_with_a_write_in_flight_still_writes_it() {
    on_both(|| async {
        let tmp = TempDir::new();
        let path = tmp.path("dropped");
        let mut file = File::create(&path).await.unwrap();
        file.write_all(b"written behind").await.unwrap();
        drop(file);
        // The pool finishes the write on its own; wait for it by polling the size.
        let path2 = path.clone();
        let len = epitome::task::spawn_blocking(move || wait_for_len(&path2, 14))
            .await
            .unwrap();
        assert_eq!(len, 14);
        assert_eq!(fs::read(&path).await.unwrap(), b"written behind");
    });

    fn wait_for_len(path: &Path, len: u64) -> u64 {
        for _ in 0..2000 {
            let now = std::fs::metadata(path).map(|m| m.len()).unwrap_or(0);
            if now >= len {
                return now;
            }
            std::thread::sleep(std::time::Duration::from_millis(5));
        }
        std::fs::metadata(path).map(|m| m.len()).unwrap_or(0)
    }
}

#[cfg(feature = "tokio-io")]
#[test]
fn file_implements_tokios_traits() {
    on_both(|| async {
        let tmp = TempDir::new();
        let path = tmp.path("tokio");
        let mut file = File::create_new(&path).await.unwrap();
        let n = poll_fn(|cx| tokio::io::AsyncWrite::poll_write(Pin::new(&mut file), cx, b"hello"))
            .await
            .unwrap();
        assert_eq!(n, 5);
        poll_fn(|cx| tokio::io::AsyncWrite::poll_flush(Pin::new(&mut file), cx))
            .await
            .unwrap();
        // start_seek / poll_complete, as tokio's AsyncSeekExt::seek drives them.
        poll_fn(|cx| tokio::io::AsyncSeek::poll_complete(Pin::new(&mut file), cx))
            .await
            .unwrap();
        tokio::io::AsyncSeek::start_seek(Pin::new(&mut file), SeekFrom::Start(1)).unwrap();
        let pos = poll_fn(|cx| tokio::io::AsyncSeek::poll_complete(Pin::new(&mut file), cx))
            .await
            .unwrap();
        assert_eq!(pos, 1);
        let mut buf = [0u8; 8];
        let mut read = tokio::io::ReadBuf::new(&mut buf);
        poll_fn(|cx| tokio::io::AsyncRead::poll_read(Pin::new(&mut file), cx, &mut read))
            .await
            .unwrap();
        assert_eq!(read.filled(), b"ello");
    });
}
