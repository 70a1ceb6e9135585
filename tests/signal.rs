//! `epitome::signal`: signals raised at this process reach every listener on both
//! runtimes, signals nobody listens to keep their disposition, and signals that cannot
//! be listened to are errors.
//!
//! The tests share the process and its signal handlers, so they run one at a time, and
//! each raises a signal of its own.

mod util;

use std::future::Future;
use std::io;
use std::pin::pin;
use std::sync::{Mutex, MutexGuard};
use std::task::{Context, Poll, Waker};

use epitome::signal::unix::{Signal, SignalKind, signal};
use util::{on_both, spawn_spread};

static SERIAL: Mutex<()> = Mutex::new(());

fn serial() -> MutexGuard<'static, ()> {
    SERIAL.lock().unwrap_or_else(|e| e.into_inner())
}

/// Sends `signum` to the whole process (any thread may take it).
fn raise(signum: i32) {
    // SAFETY: kill(2) with our own pid and a valid signal number.
    let rc = unsafe { libc::kill(libc::getpid(), signum) };
    assert_eq!(rc, 0, "kill: {}", io::Error::last_os_error());
}

/// Whether `signal.recv()` would complete right now.
fn has_delivery(signal: &mut Signal) -> bool {
    let mut cx = Context::from_waker(Waker::noop());
    matches!(signal.poll_recv(&mut cx), Poll::Ready(Some(())))
}

#[test]
fn a_raised_signal_reaches_its_listener() {
    let _serial = serial();
    on_both(|| async {
        let mut usr1 = signal(SignalKind::user_defined1()).unwrap();
        raise(libc::SIGUSR1);
        assert_eq!(usr1.recv().await, Some(()));
        // Once more, from another thread.
        std::thread::spawn(|| raise(libc::SIGUSR1)).join().unwrap();
        assert_eq!(usr1.recv().await, Some(()));
    });
}

#[test]
fn every_listener_sees_each_delivery_on_every_worker() {
    let _serial = serial();
    on_both(|| async {
        let (ready_tx, ready_rx) = epitome::sync::mpsc::unbounded_channel();
        let listeners: Vec<_> = (0..4)
            .map(|_| {
                let ready_tx = ready_tx.clone();
                spawn_spread(async move {
                    let mut usr2 = signal(SignalKind::user_defined2()).unwrap();
                    ready_tx.try_send(()).unwrap();
                    usr2.recv().await
                })
            })
            .collect();
        for _ in 0..4 {
            ready_rx.recv().await.unwrap();
        }
        raise(libc::SIGUSR2);
        for l in listeners {
            assert_eq!(l.await.unwrap(), Some(()));
        }
    });
}

#[test]
fn deliveries_before_a_listener_exists_are_not_seen_by_it() {
    let _serial = serial();
    on_both(|| async {
        let mut first = signal(SignalKind::window_change()).unwrap();
        raise(libc::SIGWINCH);
        raise(libc::SIGWINCH); // may coalesce with the first
        assert_eq!(first.recv().await, Some(()));
        while has_delivery(&mut first) {}

        let mut late = signal(SignalKind::window_change()).unwrap();
        assert!(!has_delivery(&mut late));
        raise(libc::SIGWINCH);
        assert_eq!(late.recv().await, Some(()));
        assert_eq!(first.recv().await, Some(()));
    });
}

#[test]
fn ctrl_c_completes_on_sigint() {
    let _serial = serial();
    on_both(|| async {
        let mut ctrl_c = pin!(epitome::signal::ctrl_c());
        // The first poll listens: only then may SIGINT be raised (before that, the
        // default action would end the test process).
        std::future::poll_fn(|cx| {
            assert!(ctrl_c.as_mut().poll(cx).is_pending());
            Poll::Ready(())
        })
        .await;
        raise(libc::SIGINT);
        ctrl_c.await.unwrap();
    });
}

#[test]
fn signals_that_cannot_be_listened_to_are_invalid_input() {
    let _serial = serial();
    on_both(|| async {
        for (signum, says) in [
            (libc::SIGKILL, "SIGKILL cannot be caught"),
            (libc::SIGSTOP, "SIGSTOP cannot be caught"),
            (libc::SIGSEGV, "SIGSEGV cannot be listened to"),
            (libc::SIGFPE, "SIGFPE cannot be listened to"),
            (libc::SIGILL, "SIGILL cannot be listened to"),
            (0, "signal 0 does not exist"),
            (-1, "signal -1 does not exist"),
            (65, "signal 65 does not exist"),
            (i32::MAX, "does not exist"),
        ] {
            let err = signal(SignalKind::from_raw(signum)).unwrap_err();
            assert_eq!(err.kind(), io::ErrorKind::InvalidInput, "{signum}: {err}");
            assert!(err.to_string().contains(says), "{signum}: {err}");
        }
        // The C library keeps the first real-time signals for itself: sigaction says
        // EINVAL.
        let reserved = libc::SIGRTMIN() - 1;
        if reserved > libc::SIGSYS {
            let err = signal(SignalKind::from_raw(reserved)).unwrap_err();
            assert_eq!(err.raw_os_error(), Some(libc::EINVAL), "{reserved}: {err}");
        }
    });
}

#[test]
fn a_signal_nobody_listens_to_keeps_its_disposition() {
    let _serial = serial();
    let disposition = |signum| {
        // SAFETY: sigaction(2) only reads the current action into `old`.
        unsafe {
            let mut old: libc::sigaction = std::mem::zeroed();
            assert_eq!(libc::sigaction(signum, std::ptr::null(), &mut old), 0);
            old.sa_sigaction
        }
    };
    // Listening to SIGALRM installs a handler for it, and for it only.
    let before = disposition(libc::SIGXCPU);
    assert_eq!(before, libc::SIG_DFL);
    on_both(|| async {
        let mut alarm = signal(SignalKind::alarm()).unwrap();
        raise(libc::SIGALRM);
        alarm.recv().await;
    });
    assert_ne!(disposition(libc::SIGALRM), libc::SIG_DFL);
    assert_eq!(disposition(libc::SIGXCPU), libc::SIG_DFL);
}

#[test]
fn dropped_listeners_close_their_fds() {
    let _serial = serial();
    let open_fds = || std::fs::read_dir("/proc/self/fd").unwrap().count();
    on_both(move || async move {
        // The first listener of a signal opens the process-wide eventfd for good.
        drop(signal(SignalKind::quit()).unwrap());
        let before = open_fds();
        let listeners: Vec<_> = (0..16)
            .map(|_| signal(SignalKind::quit()).unwrap())
            .collect();
        assert_eq!(open_fds(), before + 16);
        drop(listeners);
        assert_eq!(open_fds(), before);
    });
}

#[test]
fn recv_is_cancel_safe() {
    let _serial = serial();
    on_both(|| async {
        let mut hup = signal(SignalKind::hangup()).unwrap();
        // A recv given up on loses nothing.
        for _ in 0..3 {
            let outcome = epitome::select! {
                biased;
                _ = hup.recv() => "signal",
                _ = std::future::ready(()) => "gave up",
            };
            assert_eq!(outcome, "gave up");
        }
        raise(libc::SIGHUP);
        assert_eq!(hup.recv().await, Some(()));
    });
}

#[test]
fn a_listener_whose_runtime_is_gone_ends_instead_of_hanging() {
    let _serial = serial();
    let rt = epitome::runtime::Builder::new_current_thread()
        .build()
        .unwrap();
    let mut term = rt
        .block_on(async { signal(SignalKind::from_raw(libc::SIGPWR)) })
        .unwrap();
    drop(rt);
    let other = epitome::runtime::Builder::new_current_thread()
        .build()
        .unwrap();
    assert_eq!(other.block_on(term.recv()), None);
}
