//! Helpers shared by the executor's integration tests: runtimes, watchdogs, signals,
//! drop counters, a tiny executor that needs no runtime, and views of `/proc/self`.
//!
//! (`tests/util/` belongs to the eventpoll tests.)

#![allow(dead_code)]

use std::any::Any;
use std::collections::BTreeMap;
use std::future::Future;
use std::os::fd::{FromRawFd, OwnedFd};
use std::pin::Pin;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Condvar, Mutex, Once};
use std::task::{Context, Poll, Wake, Waker};
use std::thread::ThreadId;
use std::time::{Duration, Instant};

use epitome_runtime::runtime::{Builder, Runtime};

/// How long anything in these tests may take before it counts as hung. Generous: the
/// tests never assert upper bounds on time, only that they finish.
pub const HANG: Duration = Duration::from_secs(20);

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

/// Both flavours, with a name for assertion messages.
pub fn both_flavors() -> Vec<(&'static str, Runtime)> {
    vec![
        ("current-thread", current_thread()),
        ("multi-reactor", multi(2)),
    ]
}

/// A multi-reactor runtime with two workers.
pub fn multi2() -> Runtime {
    multi(2)
}

/// A multi-reactor runtime with one worker.
pub fn multi1() -> Runtime {
    multi(1)
}

/// Builds a runtime. A plain `fn` can be sent to another thread, a `Runtime` cannot.
pub type MakeRuntime = fn() -> Runtime;

/// Both flavours as constructors, for building the runtime on another thread.
pub const FLAVORS: [(&str, MakeRuntime); 2] = [
    ("current-thread", current_thread),
    ("multi-reactor", multi2),
];

/// Runs `f` on a fresh thread and waits for it at most [`HANG`]: a hang becomes a
/// test failure naming `what` instead of a stuck test run. A panic in `f` is
/// re-raised here.
#[track_caller]
pub fn with_watchdog<R: Send + 'static>(what: &str, f: impl FnOnce() -> R + Send + 'static) -> R {
    let (tx, rx) = std::sync::mpsc::channel::<()>();
    let thread = std::thread::Builder::new()
        .name("watchdog".into())
        .spawn(move || {
            let out = f();
            // A panic in `f` drops `tx` unsent: `recv_timeout` then sees a disconnect.
            let _ = tx.send(());
            out
        })
        .expect("spawning a watchdog thread");
    match rx.recv_timeout(HANG) {
        Err(std::sync::mpsc::RecvTimeoutError::Timeout) => {
            panic!("{what}: did not finish within {HANG:?} (hung)")
        }
        _ => match thread.join() {
            Ok(out) => out,
            Err(payload) => std::panic::resume_unwind(payload),
        },
    }
}

/// Ends the whole test process, with a message, if the test holding it runs for
/// longer than twice [`HANG`]: the last line of defence against a hang that no finer
/// timeout catches (the finer ones fail first, with a better message).
pub struct Watchdog {
    _disarm: std::sync::mpsc::Sender<()>,
}

/// Arms a [`Watchdog`] for the current test; dropping it disarms it.
pub fn watchdog() -> Watchdog {
    let (tx, rx) = std::sync::mpsc::channel::<()>();
    let test = std::thread::current()
        .name()
        .unwrap_or("<unnamed>")
        .to_string();
    std::thread::Builder::new()
        .name("test-watchdog".into())
        .spawn(move || {
            if let Err(std::sync::mpsc::RecvTimeoutError::Timeout) = rx.recv_timeout(2 * HANG) {
                eprintln!(
                    "test {test} hung for {:?}: ending the test process",
                    2 * HANG
                );
                std::process::exit(101);
            }
        })
        .expect("spawning a test watchdog");
    Watchdog { _disarm: tx }
}

/// Marker payload for panics the tests raise on purpose (the panic hook stays quiet).
#[derive(Debug, PartialEq, Eq)]
pub struct ExpectedPanic(pub u32);

/// How the panic messages the tests provoke on purpose start; the hook does not print
/// them. (Only prefixes: an assertion that quotes one of them still prints.)
const EXPECTED_MESSAGES: &[&str] = &[
    "[expected]",
    "Cannot start a runtime from within a runtime",
    "`spawn_local` called from outside of a `task::LocalSet`",
    "`spawn_local` called in a task a stand-in thread runs",
    "`EnterGuard` values dropped out of order",
    "can call blocking only when running on the multi-threaded runtime",
    "`block_in_place` called on a worker that runs `!Send` tasks",
    "Can't get a task id when not inside a task",
    "there is no epitome runtime on this thread",
    "`epitome::spawn` called outside of an epitome runtime",
    "`JoinError` reason is not a panic",
];

/// Installs (once per process) a panic hook that stays quiet for the panics the
/// tests provoke on purpose, and prints every other one as usual.
pub fn quiet_panics() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        let prev = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            let payload = info.payload();
            if payload.is::<ExpectedPanic>() {
                return;
            }
            if let Some(msg) = panic_str(payload) {
                if EXPECTED_MESSAGES.iter().any(|m| msg.starts_with(m)) {
                    return;
                }
            }
            prev(info);
        }));
    });
}

/// The message of a panic payload, if it is a string.
pub fn panic_str(payload: &(dyn Any + Send)) -> Option<&str> {
    payload
        .downcast_ref::<&str>()
        .copied()
        .or_else(|| payload.downcast_ref::<String>().map(String::as_str))
}

/// Runs `f`, which must panic; returns the panic's message.
#[track_caller]
pub fn panic_message_of<R>(f: impl FnOnce() -> R) -> String {
    quiet_panics();
    match std::panic::catch_unwind(std::panic::AssertUnwindSafe(f)) {
        Ok(_) => panic!("expected a panic, but the call returned"),
        Err(payload) => match panic_str(payload.as_ref()) {
            Some(msg) => msg.to_string(),
            None => panic!("expected a string panic payload"),
        },
    }
}

/// A one-shot flag that tasks can await and plain threads can wait for.
#[derive(Default)]
pub struct Signal {
    state: Mutex<SignalState>,
    cond: Condvar,
}

#[derive(Default)]
struct SignalState {
    set: bool,
    wakers: Vec<Waker>,
}

impl Signal {
    pub fn new() -> Arc<Signal> {
        Arc::new(Signal::default())
    }

    /// Sets the flag and wakes everyone waiting.
    pub fn set(&self) {
        let wakers = {
            let mut st = self.state.lock().unwrap();
            st.set = true;
            std::mem::take(&mut st.wakers)
        };
        self.cond.notify_all();
        wakers.into_iter().for_each(Waker::wake);
    }

    pub fn is_set(&self) -> bool {
        self.state.lock().unwrap().set
    }

    /// Resolves once the flag is set.
    pub fn wait(self: &Arc<Self>) -> SignalWait {
        SignalWait(self.clone())
    }

    /// Blocks this thread until the flag is set; `false` after `timeout`.
    pub fn wait_blocking(&self, timeout: Duration) -> bool {
        let st = self.state.lock().unwrap();
        let (st, _) = self
            .cond
            .wait_timeout_while(st, timeout, |st| !st.set)
            .unwrap();
        st.set
    }

    /// Blocks until set, failing the test after [`HANG`].
    #[track_caller]
    pub fn wait_or_fail(&self, what: &str) {
        assert!(
            self.wait_blocking(HANG),
            "{what}: not signalled within {HANG:?}"
        );
    }
}

/// The future of [`Signal::wait`].
pub struct SignalWait(Arc<Signal>);

impl Future for SignalWait {
    type Output = ();
    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        let mut st = self.0.state.lock().unwrap();
        if st.set {
            return Poll::Ready(());
        }
        if !st.wakers.iter().any(|w| w.will_wake(cx.waker())) {
            st.wakers.push(cx.waker().clone());
        }
        Poll::Pending
    }
}

/// Counts how many times values holding it were dropped, and on which threads.
#[derive(Clone, Default)]
pub struct DropCounter {
    inner: Arc<DropLog>,
}

#[derive(Default)]
struct DropLog {
    count: AtomicUsize,
    threads: Mutex<Vec<ThreadId>>,
}

impl DropCounter {
    pub fn new() -> DropCounter {
        DropCounter::default()
    }

    /// A value that counts itself when dropped.
    pub fn guard(&self) -> DropGuard {
        DropGuard(self.inner.clone())
    }

    pub fn count(&self) -> usize {
        self.inner.count.load(Ordering::SeqCst)
    }

    /// The threads the guards were dropped on, in order.
    pub fn threads(&self) -> Vec<ThreadId> {
        self.inner.threads.lock().unwrap().clone()
    }
}

/// See [`DropCounter::guard`].
pub struct DropGuard(Arc<DropLog>);

impl Drop for DropGuard {
    fn drop(&mut self) {
        self.0
            .threads
            .lock()
            .unwrap()
            .push(std::thread::current().id());
        self.0.count.fetch_add(1, Ordering::SeqCst);
    }
}

/// Drives `future` on this thread without any runtime (for awaiting handles after the
/// runtime is gone, or futures that need no reactor).
pub fn block_on_plain<F: Future>(future: F) -> F::Output {
    struct Unparker(std::thread::Thread);
    impl Wake for Unparker {
        fn wake(self: Arc<Self>) {
            self.0.unpark();
        }
    }
    let waker = Waker::from(Arc::new(Unparker(std::thread::current())));
    let mut cx = Context::from_waker(&waker);
    let mut future = std::pin::pin!(future);
    let deadline = Instant::now() + HANG;
    loop {
        if let Poll::Ready(out) = future.as_mut().poll(&mut cx) {
            return out;
        }
        assert!(Instant::now() < deadline, "block_on_plain: hung");
        std::thread::park_timeout(Duration::from_millis(10));
    }
}

/// Polls `future` once with a waker that does nothing.
pub fn poll_once<F: Future + Unpin>(future: &mut F) -> Poll<F::Output> {
    let mut cx = Context::from_waker(Waker::noop());
    Pin::new(future).poll(&mut cx)
}

/// Waits (on a plain thread) until `cond` holds, failing the test after [`HANG`].
#[track_caller]
pub fn wait_until(what: &str, mut cond: impl FnMut() -> bool) {
    let deadline = Instant::now() + HANG;
    while !cond() {
        assert!(
            Instant::now() < deadline,
            "{what}: still false after {HANG:?}"
        );
        std::thread::sleep(Duration::from_millis(1));
    }
}

/// Yields (inside a task) until `cond` holds, failing the test after [`HANG`].
pub async fn yield_until(what: &str, mut cond: impl FnMut() -> bool) {
    let deadline = Instant::now() + HANG;
    while !cond() {
        assert!(
            Instant::now() < deadline,
            "{what}: still false after {HANG:?}"
        );
        epitome_runtime::task::yield_now().await;
    }
}

/// A future that is `Pending` once (waking itself), then `Ready`: one extra trip
/// through the run queue.
pub struct YieldOnce(bool);

impl YieldOnce {
    pub fn new() -> YieldOnce {
        YieldOnce(false)
    }
}

impl Future for YieldOnce {
    type Output = ();
    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        if self.0 {
            return Poll::Ready(());
        }
        self.0 = true;
        cx.waker().wake_by_ref();
        Poll::Pending
    }
}

/// The open fds of this process and what each refers to (`readlink` of
/// `/proc/self/fd/N`, such as `pipe:[1234]` or `anon_inode:[eventpoll]`).
pub fn open_fds() -> BTreeMap<i32, String> {
    let mut fds = BTreeMap::new();
    for entry in std::fs::read_dir("/proc/self/fd").expect("reading /proc/self/fd") {
        let Ok(entry) = entry else { continue };
        let Some(fd) = entry.file_name().to_str().and_then(|s| s.parse().ok()) else {
            continue;
        };
        // The fd of the listing itself may be gone by the time we read it.
        let Ok(target) = std::fs::read_link(entry.path()) else {
            continue;
        };
        let target = target.to_string_lossy().into_owned();
        // Skip the listing's own fd (`/proc/<pid>/fd`).
        if target.starts_with("/proc/") && target.ends_with("/fd") {
            continue;
        }
        fds.insert(fd, target);
    }
    fds
}

/// What `fd` refers to now, if it is open.
pub fn fd_target(fd: i32) -> Option<String> {
    std::fs::read_link(format!("/proc/self/fd/{fd}"))
        .ok()
        .map(|t| t.to_string_lossy().into_owned())
}

/// The names (`comm`, at most 15 bytes) of this process's threads, by tid.
pub fn thread_names() -> BTreeMap<u32, String> {
    let mut names = BTreeMap::new();
    for entry in std::fs::read_dir("/proc/self/task").expect("reading /proc/self/task") {
        let Ok(entry) = entry else { continue };
        let Some(tid) = entry.file_name().to_str().and_then(|s| s.parse().ok()) else {
            continue;
        };
        // A thread may exit between the listing and the read.
        if let Ok(comm) = std::fs::read_to_string(entry.path().join("comm")) {
            names.insert(tid, comm.trim_end().to_string());
        }
    }
    names
}

/// How many threads of this process have a name starting with `prefix`.
pub fn threads_named(prefix: &str) -> usize {
    thread_names()
        .values()
        .filter(|n| n.starts_with(prefix))
        .count()
}

/// A close-on-exec pipe: (read end, write end).
pub fn pipe() -> (OwnedFd, OwnedFd) {
    let mut fds = [0; 2];
    // SAFETY: `fds` is a valid array of two ints for pipe2 to fill.
    let res = unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC) };
    assert_eq!(res, 0, "pipe2: {}", std::io::Error::last_os_error());
    // SAFETY: pipe2 succeeded, so both fds are open and owned by nobody else.
    unsafe { (OwnedFd::from_raw_fd(fds[0]), OwnedFd::from_raw_fd(fds[1])) }
}
