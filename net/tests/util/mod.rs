//! Helpers shared by the networking tests: runtimes of both flavours, hang guards,
//! connected pairs, temp dirs and abstract names, and views of `/proc/self`.
//!
//! Each test file uses a different subset.

#![allow(dead_code)]

use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::os::fd::{AsRawFd, RawFd};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use epitome_net::{TcpListener, TcpStream, UnixStream};
use epitome_runtime::runtime::{Builder, Runtime};
use epitome_runtime::time;

/// How long anything may take before it counts as hung. Generous: the tests never
/// assert upper bounds on time, only that things finish.
pub const HANG: Duration = Duration::from_secs(30);

/// How long a future is given to show that it is (still) pending: nothing it waits
/// for has been sent, so it cannot complete however long it is given.
pub const PENDING: Duration = Duration::from_millis(50);

/// A current-thread runtime.
pub fn current_thread() -> Runtime {
    Builder::new_current_thread()
        .build()
        .expect("building a current-thread runtime")
}

/// A multi-reactor runtime with `n` workers.
pub fn multi(n: usize) -> Runtime {
    Builder::new_multi_reactor()
        .reactors(n)
        .build()
        .expect("building a multi-reactor runtime")
}

/// A runtime flavour: its name, and how to build one.
pub type Flavor = (&'static str, fn() -> Runtime);

/// The two flavours the tests run on: current-thread and multi-reactor(2).
pub fn flavors() -> [Flavor; 2] {
    [
        ("current-thread", current_thread as fn() -> Runtime),
        ("multi-reactor(2)", || multi(2)),
    ]
}

/// Aborts the process if not dropped within `limit`: the last line of defence
/// against a runtime so stuck that its own timers no longer fire. Dropping it stops
/// and joins its thread.
pub struct Watchdog {
    stop: Option<mpsc::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Watchdog {
    pub fn new(what: &str, limit: Duration) -> Watchdog {
        let (tx, rx) = mpsc::channel::<()>();
        let what = what.to_string();
        let thread = std::thread::Builder::new()
            .name("watchdog".into())
            .spawn(move || {
                if let Err(mpsc::RecvTimeoutError::Timeout) = rx.recv_timeout(limit) {
                    eprintln!("watchdog: `{what}` hung for {limit:?}; aborting the test process");
                    std::process::abort();
                }
            })
            .expect("spawning a watchdog thread");
        Watchdog {
            stop: Some(tx),
            thread: Some(thread),
        }
    }
}

impl Drop for Watchdog {
    fn drop(&mut self) {
        drop(self.stop.take());
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// Runs `fut` on `rt` with a deadline of [`HANG`] (a panic naming `what` if it
/// passes), under a [`Watchdog`] in case the runtime itself is stuck.
#[track_caller]
pub fn block_on<F: Future>(rt: &Runtime, what: &str, fut: F) -> F::Output {
    let _dog = Watchdog::new(what, HANG + Duration::from_secs(30));
    match rt.block_on(time::timeout(HANG, fut)) {
        Ok(out) => out,
        Err(_) => panic!("{what}: did not finish within {HANG:?} (hung)"),
    }
}

/// Runs the test body `f` on each flavour, then checks that the runtime has no I/O
/// source left registered (every socket the body made was deleted from its reactor).
#[track_caller]
pub fn each_flavor<F, Fut>(what: &str, f: F)
where
    F: Fn() -> Fut,
    Fut: Future<Output = ()>,
{
    for (name, build) in flavors() {
        let rt = build();
        let label = format!("{what} on {name}");
        block_on(&rt, &label, f());
        // Tasks the body spawned may drop their sockets just after it returns.
        let metrics = rt.metrics();
        wait_sync(&format!("{label}: every source deregistered"), || {
            metrics.num_registered_sources() == 0
        });
    }
}

/// `fut`, or a panic naming `what` if it takes longer than [`HANG`].
pub async fn within<F: Future>(what: &str, fut: F) -> F::Output {
    match time::timeout(HANG, fut).await {
        Ok(out) => out,
        Err(_) => panic!("{what}: did not finish within {HANG:?} (hung)"),
    }
}

/// Panics if `fut` completes within [`PENDING`]; the future is dropped (cancelled)
/// either way. Used both to show that an operation waits and to cancel it mid-way.
pub async fn assert_pending<F: Future>(what: &str, fut: F)
where
    F::Output: std::fmt::Debug,
{
    if let Ok(out) = time::timeout(PENDING, fut).await {
        panic!("{what}: expected to be pending, completed with {out:?}");
    }
}

/// Waits (asynchronously) until `cond` holds, checking every millisecond; panics
/// after [`HANG`].
pub async fn wait_until(what: &str, mut cond: impl FnMut() -> bool) {
    let start = Instant::now();
    while !cond() {
        assert!(start.elapsed() < HANG, "{what}: not true after {HANG:?}");
        time::sleep(Duration::from_millis(1)).await;
    }
}

/// Waits (blocking this thread) until `cond` holds; panics after [`HANG`].
#[track_caller]
pub fn wait_sync(what: &str, mut cond: impl FnMut() -> bool) {
    let start = Instant::now();
    while !cond() {
        assert!(start.elapsed() < HANG, "{what}: not true after {HANG:?}");
        std::thread::sleep(Duration::from_millis(1));
    }
}

/// A listener on 127.0.0.1, port 0.
pub async fn listener() -> TcpListener {
    TcpListener::bind("127.0.0.1:0")
        .await
        .expect("binding 127.0.0.1:0")
}

/// A connected TCP pair: (the connecting side, the accepted side).
pub async fn tcp_pair() -> (TcpStream, TcpStream) {
    let l = listener().await;
    let addr = l.local_addr().expect("local_addr");
    tcp_pair_on(&l, addr).await
}

/// A connected TCP pair through `l`, which listens on `addr`.
pub async fn tcp_pair_on(l: &TcpListener, addr: SocketAddr) -> (TcpStream, TcpStream) {
    let (c, a) = futures_util::future::join(TcpStream::connect(addr), l.accept()).await;
    let c = c.expect("connect");
    let (a, peer) = a.expect("accept");
    assert_eq!(peer, c.local_addr().expect("local_addr"));
    (c, a)
}

/// A connected Unix stream pair made by `UnixStream::pair`.
pub fn unix_pair() -> (UnixStream, UnixStream) {
    UnixStream::pair().expect("UnixStream::pair")
}

/// `len` bytes that differ from position to position and from seed to seed, so a
/// lost, duplicated or reordered byte shows.
pub fn pattern(seed: u64, len: usize) -> Vec<u8> {
    (0..len).map(|i| pattern_byte(seed, i as u64)).collect()
}

/// Byte `i` of [`pattern`]`(seed, ..)`.
pub fn pattern_byte(seed: u64, i: u64) -> u8 {
    let x = i
        .wrapping_add(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15))
        .wrapping_mul(0xBF58_476D_1CE4_E5B9);
    (x >> 56) as u8 ^ (i as u8)
}

/// A directory of its own under the system temp dir, removed (with its contents) on
/// drop.
pub struct TempDir(PathBuf);

impl TempDir {
    pub fn new(tag: &str) -> TempDir {
        static NEXT: AtomicUsize = AtomicUsize::new(0);
        let n = NEXT.fetch_add(1, Ordering::Relaxed);
        let path = std::env::temp_dir().join(format!(
            "epitome-net-{tag}-{}-{n}-{}",
            std::process::id(),
            nanos_since_epoch()
        ));
        std::fs::create_dir(&path).expect("creating a temp dir");
        TempDir(path)
    }

    pub fn path(&self) -> &Path {
        &self.0
    }

    /// A path inside the dir.
    pub fn join(&self, name: &str) -> PathBuf {
        self.0.join(name)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// An abstract Unix socket name no other test or process uses.
pub fn abstract_name(tag: &str) -> Vec<u8> {
    static NEXT: AtomicUsize = AtomicUsize::new(0);
    let n = NEXT.fetch_add(1, Ordering::Relaxed);
    format!(
        "epitome-net-test-{tag}-{}-{n}-{}",
        std::process::id(),
        nanos_since_epoch()
    )
    .into_bytes()
}

fn nanos_since_epoch() -> u128 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos())
}

/// Open fds of this process.
pub fn fd_count() -> usize {
    std::fs::read_dir("/proc/self/fd")
        .expect("reading /proc/self/fd")
        .count()
        // The directory handle itself.
        - 1
}

/// Open sockets in this process. Unlike [`fd_count`], not moved by the eventfd a
/// multi-reactor worker's `EventPoll` opens lazily, the first time two threads wait
/// on it at once (`prepare_notify`), which may happen at any point of a test.
pub fn socket_count() -> usize {
    std::fs::read_dir("/proc/self/fd")
        .expect("reading /proc/self/fd")
        .filter_map(|e| std::fs::read_link(e.ok()?.path()).ok())
        .filter(|target| target.to_string_lossy().starts_with("socket:"))
        .count()
}

/// A socket's fd and inode: enough to tell, after it is closed, whether the fd number
/// still names it (another test may have reused the number meanwhile).
#[derive(Clone, Copy, Debug)]
pub struct FdId {
    pub fd: RawFd,
    pub ino: u64,
}

impl FdId {
    pub fn of(s: &impl AsRawFd) -> FdId {
        let fd = s.as_raw_fd();
        // SAFETY: an all-zero `stat` is a valid value to be overwritten by fstat.
        let mut st: libc::stat = unsafe { std::mem::zeroed() };
        // SAFETY: `fd` is open (borrowed from `s`) and `st` is valid for writes.
        let r = unsafe { libc::fstat(fd, &mut st) };
        assert_eq!(r, 0, "fstat: {}", io::Error::last_os_error());
        FdId { fd, ino: st.st_ino }
    }

    /// Whether the fd number still names this socket.
    pub fn is_open(&self) -> bool {
        std::fs::read_link(format!("/proc/self/fd/{}", self.fd))
            .is_ok_and(|target| target.to_string_lossy() == format!("socket:[{}]", self.ino))
    }

    /// Whether any kernel epoll instance of this process watches this socket (seen in
    /// the `tfd:` lines of the epoll fds' `/proc/self/fdinfo`, which name the watched
    /// file's inode).
    pub fn in_kernel_epoll(&self) -> bool {
        let needle = format!("ino:{:x} ", self.ino);
        let Ok(dir) = std::fs::read_dir("/proc/self/fd") else {
            return false;
        };
        dir.flatten().any(|entry| {
            let is_epoll = std::fs::read_link(entry.path())
                .is_ok_and(|t| t.to_string_lossy() == "anon_inode:[eventpoll]");
            is_epoll
                && std::fs::read_to_string(format!(
                    "/proc/self/fdinfo/{}",
                    entry.file_name().to_string_lossy()
                ))
                .is_ok_and(|info| {
                    info.lines()
                        .any(|l| l.starts_with("tfd:") && format!("{l} ").contains(&needle))
                })
        })
    }
}

/// The error kind, or a panic with the value if it was `Ok`.
#[track_caller]
pub fn err_kind<T: std::fmt::Debug>(res: io::Result<T>) -> io::ErrorKind {
    match res {
        Ok(v) => panic!("expected an error, got Ok({v:?})"),
        Err(e) => e.kind(),
    }
}
