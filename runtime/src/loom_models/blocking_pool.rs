//! Model 13: the blocking pool (`blocking::BlockingPool`), its threads loom threads.
//!
//! Two closures spawned one after the other on a pool of at most one thread: the
//! first starts the thread; the second arrives while that thread runs the first, looks
//! at the queue, or sleeps idle (`PoolShared::push`: an idle thread not yet handed a
//! wakeup is notified; `serve`: the queue is looked at, under the lock, before every
//! sleep). Each closure runs exactly once, on time (a closure left for an idle thread
//! to find at its `keep_alive` timeout is a lost wakeup: loom's timed waits never time
//! out, so it shows as a deadlock), and shutdown then finds every thread gone.
//!
//! And `shutdown_cancel`: a shutdown while a closure waits in the queue behind a busy
//! thread: the closure runs or is cancelled (`cancel_queued`), exactly one of the two.
//! And `waiting_cancelled`: a closure waiting for a thread at the pool's maximum, its one
//! thread busy with a closure taken before the shutdown, is cancelled by the shutdown
//! (the busy thread is no longer counted as committed to the queue).
use std::sync::Arc as OsArc;
use std::time::Duration;

use std::task::{Poll, Waker};

use super::{DropCounter, check, poll_once};
use crate::blocking::{BlockingPool, Config};
use loom::sync::atomic::{AtomicUsize, Ordering::SeqCst};
use loom::sync::{Arc, Condvar, Mutex};

/// A pool of at most `max_threads` threads, with no hooks.
pub(super) fn pool(max_threads: usize) -> BlockingPool {
    BlockingPool::new(Config {
        max_threads,
        keep_alive: Duration::from_secs(10),
        thread_name: OsArc::new(|| "model-blocking".to_string()),
        stack_size: None,
        on_start: None,
        on_stop: None,
    })
}

#[test]
fn a_closure_for_an_idle_thread_wakes_it() {
    check("blocking_pool/idle_thread", None, || {
        let pool = pool(1);
        let runs = Arc::new(AtomicUsize::new(0));
        let finished = Arc::new((Mutex::new(0), Condvar::new()));
        let closure = || {
            let (runs, finished) = (runs.clone(), finished.clone());
            move || {
                runs.fetch_add(1, SeqCst);
                *finished.0.lock().unwrap() += 1;
                finished.1.notify_all();
            }
        };
        let first = pool.spawn(closure());
        let second = pool.spawn(closure());
        // Both run without a timeout's help.
        let mut done = finished.0.lock().unwrap();
        while *done < 2 {
            done = finished.1.wait(done).unwrap();
        }
        drop(done);
        assert!(pool.shutdown(None), "a pool thread outlived shutdown");
        assert_eq!(runs.load(SeqCst), 2, "a closure ran twice");
        assert!(first.is_finished() && second.is_finished());
        assert_eq!(pool.threads(), 0);
    });
}

/// One thread reused: each closure is spawned once the one before has run, so the
/// thread is running, looking, or asleep when it comes. Each wakeup handed to the idle
/// thread is taken once (`notified`), so the next closure wakes it again.
#[test]
fn an_idle_thread_is_woken_for_each_closure() {
    check("blocking_pool/reused_thread", Some(3), || {
        let pool = pool(1);
        let finished = Arc::new((Mutex::new(0), Condvar::new()));
        let mut handles = Vec::new();
        for n in 1..=3 {
            let signal = finished.clone();
            handles.push(pool.spawn(move || {
                *signal.0.lock().unwrap() += 1;
                signal.1.notify_all();
            }));
            let mut done = finished.0.lock().unwrap();
            while *done < n {
                done = finished.1.wait(done).unwrap();
            }
        }
        assert!(pool.shutdown(None), "a pool thread outlived shutdown");
        assert!(handles.iter().all(|h| h.is_finished()));
    });
}

/// Two closures that must run at once (the first waits for the second) on a pool of
/// two threads, one idle: the idle thread takes one wakeup, so the other closure
/// starts the second thread rather than wait behind the first for ever.
#[test]
fn a_second_closure_does_not_wait_behind_the_first() {
    check("blocking_pool/no_queueing_behind", Some(2), || {
        let pool = pool(2);
        let started = Arc::new((Mutex::new(false), Condvar::new()));
        let warm_up = {
            let started = started.clone();
            pool.spawn(move || {
                *started.0.lock().unwrap() = true;
                started.1.notify_all();
            })
        };
        // The first thread ran its closure; it is going idle, or idle.
        let mut s = started.0.lock().unwrap();
        while !*s {
            s = started.1.wait(s).unwrap();
        }
        *s = false;
        drop(s);
        let finished = Arc::new((Mutex::new(false), Condvar::new()));
        let waits = {
            let (started, finished) = (started.clone(), finished.clone());
            pool.spawn(move || {
                let mut s = started.0.lock().unwrap();
                while !*s {
                    s = started.1.wait(s).unwrap();
                }
                drop(s);
                *finished.0.lock().unwrap() = true;
                finished.1.notify_all();
            })
        };
        let signals = {
            let started = started.clone();
            pool.spawn(move || {
                *started.0.lock().unwrap() = true;
                started.1.notify_all();
            })
        };
        // Both ran (a shutdown now would cancel a closure still queued).
        let mut f = finished.0.lock().unwrap();
        while !*f {
            f = finished.1.wait(f).unwrap();
        }
        drop(f);
        assert!(pool.shutdown(None), "a pool thread outlived shutdown");
        assert!(warm_up.is_finished() && waits.is_finished() && signals.is_finished());
    });
}

/// A closure spawned on `pool` that counts its runs, with a guard that counts its drops:
/// (runs, drops, its handle).
fn counted_closure(
    pool: &BlockingPool,
) -> (
    Arc<AtomicUsize>,
    Arc<AtomicUsize>,
    crate::task_core::JoinHandle<()>,
) {
    let (runs, drops) = (Arc::new(AtomicUsize::new(0)), Arc::new(AtomicUsize::new(0)));
    let handle = {
        let (runs, guard) = (runs.clone(), DropCounter(drops.clone()));
        pool.spawn(move || {
            let _keep = &guard;
            runs.fetch_add(1, SeqCst);
        })
    };
    (runs, drops, handle)
}

/// Shutdown with a closure queued that no thread has taken: the pool's one thread is
/// busy with a first closure, which another thread lets finish while the pool shuts
/// down. The queued closure either runs (the thread took it before the shutdown) or is
/// cancelled at shutdown (`cancel_queued`): exactly one of the two, its `JoinHandle`
/// says which, it is dropped exactly once, and shutdown returns with the thread gone.
#[test]
fn shutdown_cancels_a_closure_no_thread_took() {
    check("blocking_pool/shutdown_cancel", Some(3), || {
        let pool = pool(1);
        let gate = Arc::new((Mutex::new(false), Condvar::new()));
        let first = {
            let gate = gate.clone();
            pool.spawn(move || {
                let mut open = gate.0.lock().unwrap();
                while !*open {
                    open = gate.1.wait(open).unwrap();
                }
            })
        };
        let (runs, drops, mut second) = counted_closure(&pool);
        let opener = {
            let gate = gate.clone();
            loom::thread::spawn(move || {
                *gate.0.lock().unwrap() = true;
                gate.1.notify_all();
            })
        };
        assert!(pool.shutdown(None), "a pool thread outlived shutdown");
        opener.join().unwrap();
        assert_eq!(
            drops.load(SeqCst),
            1,
            "the queued closure was not dropped once"
        );
        match poll_once(&mut second, Waker::noop()) {
            Poll::Ready(Ok(())) => assert_eq!(runs.load(SeqCst), 1),
            Poll::Ready(Err(e)) => {
                assert!(e.is_cancelled(), "{e}");
                assert_eq!(runs.load(SeqCst), 0, "a cancelled closure ran");
            }
            Poll::Pending => panic!("the queued closure neither ran nor was cancelled"),
        }
        assert!(first.is_finished());
        assert_eq!(pool.threads(), 0);
    });
}

/// A closure that waits for a thread at `max_blocking_threads` (its one thread is busy
/// with the first closure, which it took before the shutdown) is cancelled by the
/// shutdown itself, not left queued for the busy thread to run later: the thread that
/// took the first closure no longer counts as committed (`starting`).
#[test]
fn a_closure_waiting_for_a_thread_is_cancelled_at_shutdown() {
    check("blocking_pool/waiting_cancelled", Some(3), || {
        let pool = pool(1);
        let started = Arc::new((Mutex::new(false), Condvar::new()));
        let gate = Arc::new((Mutex::new(false), Condvar::new()));
        let first = {
            let (started, gate) = (started.clone(), gate.clone());
            pool.spawn(move || {
                *started.0.lock().unwrap() = true;
                started.1.notify_all();
                let mut open = gate.0.lock().unwrap();
                while !*open {
                    open = gate.1.wait(open).unwrap();
                }
            })
        };
        let mut taken = started.0.lock().unwrap();
        while !*taken {
            taken = started.1.wait(taken).unwrap();
        }
        drop(taken);
        let (runs, drops, mut second) = counted_closure(&pool);
        // A shutdown that does not wait: the busy thread outlives it.
        assert!(!pool.shutdown(Some(Duration::ZERO)));
        match poll_once(&mut second, Waker::noop()) {
            Poll::Ready(Err(e)) => assert!(e.is_cancelled(), "{e}"),
            Poll::Ready(Ok(())) => panic!("the closure ran, though no thread was free"),
            Poll::Pending => panic!("the waiting closure was left queued at shutdown"),
        }
        assert_eq!(
            drops.load(SeqCst),
            1,
            "the cancelled closure was not dropped"
        );
        *gate.0.lock().unwrap() = true;
        gate.1.notify_all();
        assert!(pool.shutdown(None), "a pool thread outlived shutdown");
        assert_eq!(runs.load(SeqCst), 0, "a cancelled closure ran");
        assert!(first.is_finished());
        assert_eq!(pool.threads(), 0);
    });
}
