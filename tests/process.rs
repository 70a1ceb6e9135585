//! `epitome::process` on both runtimes: exit statuses, pipes as streams, kills, the
//! errors (a program that does not exist, a closed pipe, no pidfd_open), and no zombie
//! left behind, checked in /proc.

mod util;

use std::io;
use std::os::unix::process::ExitStatusExt;
use std::process::Stdio;
use std::time::{Duration, Instant};

use epitome::process::Command;
use futures_util::{AsyncReadExt, AsyncWriteExt};
use util::on_both;

/// Whether process `pid` is gone from /proc (reaped), waiting up to 20 s for it; a
/// zombie (exited, never reaped) stays in /proc in state `Z` and makes this false.
fn reaped_soon(pid: u32) -> bool {
    let deadline = Instant::now() + Duration::from_secs(20);
    let stat = format!("/proc/{pid}/stat");
    while Instant::now() < deadline {
        if std::fs::metadata(&stat).is_err() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(5));
    }
    false
}

/// The state letter of process `pid` in /proc (`R`, `S`, `Z`, ...), if it exists.
fn proc_state(pid: u32) -> Option<char> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // "pid (comm) S ...": the state follows the last ')'.
    stat.rsplit_once(')')?.1.trim_start().chars().next()
}

#[test]
fn output_and_exit_codes() {
    on_both(|| async {
        let out = Command::new("sh")
            .args(["-c", "echo out; echo err >&2; exit 3"])
            .output()
            .await
            .unwrap();
        assert_eq!(out.status.code(), Some(3));
        assert_eq!(out.stdout, b"out\n");
        assert_eq!(out.stderr, b"err\n");

        let status = Command::new("true").status().await.unwrap();
        assert!(status.success());
    });
}

#[test]
fn spawn_errors_are_stds() {
    on_both(|| async {
        let err = Command::new("/no/such/program").spawn().unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::NotFound);
        let err = Command::new("surely-not-a-program-on-path-4c1d")
            .output()
            .await
            .unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::NotFound);
        // A directory is not executable.
        let err = Command::new("/").spawn().unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::PermissionDenied);
        let err = Command::new("true")
            .current_dir("/no/such/dir")
            .spawn()
            .unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::NotFound);
    });
}

#[test]
fn pipes_are_async_streams() {
    on_both(|| async {
        let mut child = Command::new("cat")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .unwrap();
        let mut stdin = child.stdin.take().unwrap();
        let mut stdout = child.stdout.take().unwrap();
        // Larger than a pipe's buffer both ways: the writer must wait for the reader.
        let sent: Vec<u8> = (0..1_000_000u32).map(|i| (i % 251) as u8).collect();
        let writer = epitome::spawn({
            let sent = sent.clone();
            async move {
                // Through the futures-io traits.
                AsyncWriteExt::write_all(&mut stdin, &sent).await.unwrap();
                assert_eq!(AsyncWriteExt::write(&mut stdin, &[]).await.unwrap(), 0);
                AsyncWriteExt::close(&mut stdin).await.unwrap(); // end of input for cat
            }
        });
        let mut got = Vec::new();
        let mut empty = [0u8; 0];
        assert_eq!(
            AsyncReadExt::read(&mut stdout, &mut empty).await.unwrap(),
            0
        );
        AsyncReadExt::read_to_end(&mut stdout, &mut got)
            .await
            .unwrap();
        assert_eq!(got.len(), sent.len());
        assert!(got == sent);
        writer.await.unwrap();
        assert!(child.wait().await.unwrap().success());
    });
}

#[test]
fn writing_to_a_child_that_closed_its_stdin_is_broken_pipe() {
    on_both(|| async {
        let mut child = Command::new("true").stdin(Stdio::piped()).spawn().unwrap();
        let mut stdin = child.stdin.take().unwrap();
        assert!(child.wait().await.unwrap().success());
        let err = stdin.write_all(b"anyone there?").await.unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::BrokenPipe);
        // Closed on our side: writes fail the same way.
        AsyncWriteExt::close(&mut stdin).await.unwrap();
        let err = stdin.write_all(b"x").await.unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::BrokenPipe);
    });
}

#[test]
fn kill_try_wait_and_id() {
    on_both(|| async {
        let mut child = Command::new("sleep").arg("1000").spawn().unwrap();
        let pid = child.id().unwrap();
        assert!(child.try_wait().unwrap().is_none());
        assert_eq!(proc_state(pid).map(|s| s != 'Z'), Some(true));
        child.kill().await.unwrap();
        let status = child.try_wait().unwrap().unwrap();
        assert_eq!(status.signal(), Some(libc::SIGKILL));
        assert_eq!(child.id(), None);
        assert_eq!(child.wait().await.unwrap(), status);
        // Nothing left to kill.
        let err = child.start_kill().unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::InvalidInput);
        assert!(reaped_soon(pid));
    });
}

#[test]
fn wait_is_cancel_safe() {
    on_both(|| async {
        let mut child = Command::new("sleep").arg("1000").spawn().unwrap();
        for _ in 0..3 {
            let outcome = epitome::select! {
                biased;
                _ = child.wait() => "exited",
                _ = std::future::ready(()) => "gave up",
            };
            assert_eq!(outcome, "gave up");
        }
        child.start_kill().unwrap();
        assert_eq!(child.wait().await.unwrap().signal(), Some(libc::SIGKILL));
    });
}

#[test]
fn wait_with_output_reads_both_pipes_at_once() {
    on_both(|| async {
        // Each stream is bigger than a pipe: read one after the other, the child would
        // block on the second while the parent waits for the end of the first.
        let child = Command::new("sh")
            .args([
                "-c",
                "head -c 300000 /dev/zero; head -c 300000 /dev/zero >&2; \
                 head -c 300000 /dev/zero",
            ])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let out = child.wait_with_output().await.unwrap();
        assert!(out.status.success());
        assert_eq!(out.stdout.len(), 600_000);
        assert_eq!(out.stderr.len(), 300_000);
    });
}

#[test]
fn a_dropped_child_is_still_reaped() {
    on_both(|| async {
        // `cat` exits when its stdin (dropped with the Child) closes.
        let child = Command::new("cat").stdin(Stdio::piped()).spawn().unwrap();
        let pid = child.id().unwrap();
        drop(child);
        let reaped = epitome::task::spawn_blocking(move || reaped_soon(pid))
            .await
            .unwrap();
        assert!(reaped, "process {pid} left as {:?}", proc_state(pid));

        // Killed on drop, and reaped too.
        let child = Command::new("sleep")
            .arg("1000")
            .kill_on_drop(true)
            .spawn()
            .unwrap();
        let pid = child.id().unwrap();
        drop(child);
        let reaped = epitome::task::spawn_blocking(move || reaped_soon(pid))
            .await
            .unwrap();
        assert!(reaped, "process {pid} left as {:?}", proc_state(pid));
    });
}

#[test]
fn a_child_dropped_after_its_runtime_is_reaped_by_a_later_spawn() {
    let rt = epitome::runtime::Builder::new_current_thread()
        .build()
        .unwrap();
    let child = rt
        .block_on(async { Command::new("cat").stdin(Stdio::piped()).spawn() })
        .unwrap();
    let pid = child.id().unwrap();
    drop(rt);
    // No runtime: the process goes on the orphan list; its stdin closes, it exits.
    drop(child);
    let deadline = Instant::now() + Duration::from_secs(20);
    while proc_state(pid) != Some('Z') && proc_state(pid).is_some() && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(5));
    }
    // The next spawn sweeps the list.
    on_both(|| async {
        Command::new("true").status().await.unwrap();
    });
    assert!(
        reaped_soon(pid),
        "process {pid} left as {:?}",
        proc_state(pid)
    );
}

/// Re-runs this test binary with only `test` selected and `EPITOME_TEST_CHILD` set,
/// returning whether that run passed.
fn run_self(test: &str) -> bool {
    let exe = std::env::current_exe().unwrap();
    let status = std::process::Command::new(exe)
        .args(["--exact", test, "--nocapture", "--test-threads=1"])
        .env("EPITOME_TEST_CHILD", "1")
        .status()
        .unwrap();
    status.success()
}

/// Makes pidfd_open(2) fail with ENOSYS in this thread and the threads it starts, as on
/// a kernel older than 5.3.
fn forbid_pidfd_open() {
    let insn = |code: u32, jt: u8, jf: u8, k: u32| libc::sock_filter {
        code: code as u16,
        jt,
        jf,
        k,
    };
    let mut filter = [
        // Load the syscall number (`seccomp_data.nr`, at offset 0).
        insn(libc::BPF_LD | libc::BPF_W | libc::BPF_ABS, 0, 0, 0),
        insn(
            libc::BPF_JMP | libc::BPF_JEQ | libc::BPF_K,
            0,
            1,
            libc::SYS_pidfd_open as u32,
        ),
        insn(
            libc::BPF_RET | libc::BPF_K,
            0,
            0,
            libc::SECCOMP_RET_ERRNO | libc::ENOSYS as u32,
        ),
        insn(libc::BPF_RET | libc::BPF_K, 0, 0, libc::SECCOMP_RET_ALLOW),
    ];
    let program = libc::sock_fprog {
        len: filter.len() as u16,
        filter: filter.as_mut_ptr(),
    };
    // SAFETY: prctl(2) with valid arguments; `program` points at `filter`, both alive
    // for the call (the kernel copies the filter).
    unsafe {
        assert_eq!(libc::prctl(libc::PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0), 0);
        assert_eq!(
            libc::prctl(
                libc::PR_SET_SECCOMP,
                libc::SECCOMP_MODE_FILTER,
                &program as *const libc::sock_fprog,
            ),
            0,
            "seccomp: {}",
            io::Error::last_os_error()
        );
    }
}

#[test]
fn spawn_without_pidfd_open_is_unsupported_and_starts_nothing() {
    if std::env::var_os("EPITOME_TEST_CHILD").is_none() {
        assert!(run_self(
            "spawn_without_pidfd_open_is_unsupported_and_starts_nothing"
        ));
        return;
    }
    // In the re-run process: no pidfd_open from here on.
    forbid_pidfd_open();
    let children_before = children_of_self();
    let rt = epitome::runtime::Builder::new_current_thread()
        .build()
        .unwrap();
    rt.block_on(async {
        for _ in 0..2 {
            let err = Command::new("true").spawn().unwrap_err();
            assert_eq!(err.kind(), io::ErrorKind::Unsupported, "{err}");
            assert!(err.to_string().contains("Linux 5.3"), "{err}");
        }
    });
    assert_eq!(children_of_self(), children_before);
}

/// How many processes have this one as parent.
fn children_of_self() -> usize {
    let me = std::process::id().to_string();
    std::fs::read_dir("/proc")
        .unwrap()
        .filter_map(|e| e.ok())
        .filter_map(|e| std::fs::read_to_string(e.path().join("stat")).ok())
        .filter(|stat| {
            stat.rsplit_once(')')
                .and_then(|(_, rest)| rest.split_whitespace().nth(1).map(|ppid| ppid == me))
                .unwrap_or(false)
        })
        .count()
}

#[cfg(feature = "tokio-io")]
#[test]
fn pipes_implement_tokios_traits() {
    use std::future::poll_fn;
    use std::pin::Pin;
    on_both(|| async {
        let mut child = Command::new("cat")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .unwrap();
        let mut stdin = child.stdin.take().unwrap();
        let mut stdout = child.stdout.take().unwrap();
        let n = poll_fn(|cx| tokio::io::AsyncWrite::poll_write(Pin::new(&mut stdin), cx, b"hi"))
            .await
            .unwrap();
        assert_eq!(n, 2);
        poll_fn(|cx| tokio::io::AsyncWrite::poll_shutdown(Pin::new(&mut stdin), cx))
            .await
            .unwrap();
        let mut buf = [0u8; 8];
        let mut read = tokio::io::ReadBuf::new(&mut buf);
        poll_fn(|cx| tokio::io::AsyncRead::poll_read(Pin::new(&mut stdout), cx, &mut read))
            .await
            .unwrap();
        assert_eq!(read.filled(), b"hi");
        assert!(child.wait().await.unwrap().success());
    });
}

#[test]
fn waiting_on_a_child_whose_runtime_is_gone_is_an_error_not_a_hang() {
    let rt = epitome::runtime::Builder::new_current_thread()
        .build()
        .unwrap();
    let mut child = rt
        .block_on(async { Command::new("sleep").arg("1000").spawn() })
        .unwrap();
    let pid = child.id().unwrap();
    drop(rt);
    let other = epitome::runtime::Builder::new_current_thread()
        .build()
        .unwrap();
    other.block_on(async {
        assert!(child.wait().await.is_err());
        // Killed and dropped here: reaped through a pidfd registered with this runtime.
        child.start_kill().unwrap();
        drop(child);
        let reaped = epitome::task::spawn_blocking(move || reaped_soon(pid))
            .await
            .unwrap();
        assert!(reaped, "process {pid} left as {:?}", proc_state(pid));
    });
}
