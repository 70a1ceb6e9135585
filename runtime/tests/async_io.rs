//! `io::Async` on a `UnixStream` pair inside both runtimes: readiness, the retrying
//! helpers, clearing readiness, closed peers, and how many tasks one event wakes.

mod support;

use std::io::{self, Read, Write};
use std::os::unix::net::UnixStream;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::task::Poll;
use std::time::Duration;

use epitome_runtime::io::Async;
use epitome_runtime::runtime::{Builder, Handle};
use epitome_runtime::task::{JoinHandle, yield_now};
use epitome_runtime::time;
use support::{FLAVORS, HANG, both_flavors, current_thread, multi1, panic_message_of, yield_until};

fn read_some(s: &UnixStream, buf: &mut [u8]) -> io::Result<usize> {
    let mut s = s;
    s.read(buf)
}

fn write_some(s: &UnixStream, buf: &[u8]) -> io::Result<usize> {
    let mut s = s;
    s.write(buf)
}

#[test]
fn readable_writable_read_with_and_write_with() {
    let _watchdog = support::watchdog();
    for (name, rt) in both_flavors() {
        let got = rt.block_on(async {
            let (a, b) = UnixStream::pair().unwrap();
            let (a, b) = (Async::new(a).unwrap(), Async::new(b).unwrap());
            let guard = a.writable().await.unwrap();
            assert!(!guard.is_closed());
            assert!(a.is_write_ready());
            let n = a.write_with(|s| write_some(s, b"hello")).await.unwrap();
            assert_eq!(n, 5);
            b.readable().await.unwrap();
            let mut buf = [0; 16];
            let n = b.read_with(|s| read_some(s, &mut buf)).await.unwrap();
            buf[..n].to_vec()
        });
        assert_eq!(got, b"hello", "{name}");
    }
}

#[test]
fn a_reader_task_is_woken_by_a_writer_task() {
    let _watchdog = support::watchdog();
    for (name, rt) in both_flavors() {
        let got = rt.block_on(async {
            let (a, b) = UnixStream::pair().unwrap();
            let b = Async::new(b).unwrap();
            let reader = epitome_runtime::spawn(async move {
                let mut buf = [0; 16];
                let n = b.read_with(|s| read_some(s, &mut buf)).await.unwrap();
                buf[..n].to_vec()
            });
            let writer = epitome_runtime::spawn(async move {
                time::sleep(Duration::from_millis(5)).await;
                let a = Async::new(a).unwrap();
                a.write_with(|s| write_some(s, b"ping")).await.unwrap();
                a
            });
            let _a = writer.await.unwrap();
            time::timeout(HANG, reader).await.unwrap().unwrap()
        });
        assert_eq!(got, b"ping", "{name}");
    }
}

#[test]
fn a_write_from_a_foreign_thread_wakes_the_reader() {
    let _watchdog = support::watchdog();
    for (name, rt) in both_flavors() {
        let (mut peer, b) = UnixStream::pair().unwrap();
        let writer = std::thread::spawn(move || {
            std::thread::sleep(Duration::from_millis(20));
            peer.write_all(b"from afar").unwrap();
            peer
        });
        let got = rt.block_on(async {
            let b = Async::new(b).unwrap();
            let mut buf = [0; 16];
            let n = time::timeout(HANG, b.read_with(|s| read_some(s, &mut buf)))
                .await
                .expect("the reader was never woken")
                .unwrap();
            buf[..n].to_vec()
        });
        assert_eq!(got, b"from afar", "{name}");
        drop(writer.join().unwrap());
    }
}

#[test]
fn clear_ready_and_try_io() {
    let _watchdog = support::watchdog();
    for (name, rt) in both_flavors() {
        rt.block_on(async {
            let (mut peer, b) = UnixStream::pair().unwrap();
            let b = Async::new(b).unwrap();
            peer.write_all(b"abc").unwrap();
            let guard = b.readable().await.unwrap();
            let mut buf = [0; 16];
            let n = guard.try_io(|s| read_some(s, &mut buf)).unwrap().unwrap();
            assert_eq!(&buf[..n], b"abc", "{name}");
            // Drained: the next try would block, and clears the readiness.
            assert!(guard.try_io(|s| read_some(s, &mut buf)).is_err(), "{name}");
            assert!(!b.is_read_ready(), "{name}");
            // Nothing to read: a wait now pends until new data comes.
            assert!(
                time::timeout(Duration::from_millis(5), b.readable())
                    .await
                    .is_err(),
                "{name}"
            );
            peer.write_all(b"d").unwrap();
            let guard = time::timeout(HANG, b.readable()).await.unwrap().unwrap();
            let n = guard.try_io(|s| read_some(s, &mut buf)).unwrap().unwrap();
            assert_eq!(&buf[..n], b"d", "{name}");
            // `clear_ready` by hand after a `WouldBlock`.
            assert_eq!(
                read_some(guard.get_ref(), &mut buf).unwrap_err().kind(),
                io::ErrorKind::WouldBlock
            );
            guard.clear_ready();
            assert!(!b.is_read_ready(), "{name}");
        });
    }
}

#[test]
fn a_writer_waits_until_the_peer_drains_the_socket() {
    let _watchdog = support::watchdog();
    for (name, rt) in both_flavors() {
        let (a, mut peer) = UnixStream::pair().unwrap();
        let draining = Arc::new(AtomicBool::new(false));
        let written = rt.block_on(async {
            let a = Async::new(a).unwrap();
            // Fill the socket until it would block.
            let chunk = [7u8; 4096];
            let mut written = 0;
            loop {
                match write_some(a.get_ref(), &chunk) {
                    Ok(n) => written += n,
                    Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                    Err(e) => panic!("{e}"),
                }
            }
            let drainer = {
                let draining = draining.clone();
                std::thread::spawn(move || {
                    std::thread::sleep(Duration::from_millis(10));
                    // Room appears as soon as the reading starts.
                    draining.store(true, Ordering::SeqCst);
                    let mut buf = vec![0; written];
                    peer.read_exact(&mut buf).unwrap();
                    peer
                })
            };
            let n = time::timeout(HANG, a.write_with(|s| write_some(s, &chunk)))
                .await
                .expect("the writer was never woken")
                .unwrap();
            assert!(n > 0);
            assert!(
                draining.load(Ordering::SeqCst),
                "wrote into a full socket before the peer read from it"
            );
            drop(drainer.join().unwrap());
            written
        });
        assert!(written > 0, "{name}");
    }
}

#[test]
fn a_closed_peer_is_reported() {
    let _watchdog = support::watchdog();
    for (name, rt) in both_flavors() {
        rt.block_on(async {
            let (peer, b) = UnixStream::pair().unwrap();
            let b = Async::new(b).unwrap();
            drop(peer);
            let guard = time::timeout(HANG, b.readable()).await.unwrap().unwrap();
            assert!(guard.is_closed(), "{name}");
            let mut buf = [0; 4];
            assert_eq!(b.read_with(|s| read_some(s, &mut buf)).await.unwrap(), 0);
            // Closed stays closed: later waits return at once.
            assert!(b.readable().await.unwrap().is_closed(), "{name}");
        });
    }
}

#[test]
fn poll_read_with_for_hand_written_futures() {
    let _watchdog = support::watchdog();
    let rt = current_thread();
    rt.block_on(async {
        let (mut peer, b) = UnixStream::pair().unwrap();
        let b = Async::new(b).unwrap();
        let mut buf = [0; 8];
        let mut first = true;
        let n = std::future::poll_fn(|cx| {
            let res = b.poll_read_with(cx, |s| read_some(s, &mut buf));
            if first {
                assert!(res.is_pending(), "nothing written yet");
                first = false;
                peer.write_all(b"poll").unwrap();
            }
            res
        })
        .await
        .unwrap();
        assert_eq!(&buf[..n], b"poll");
        let w = std::future::poll_fn(|cx| b.poll_write_with(cx, |s| write_some(s, b"back"))).await;
        assert_eq!(w.unwrap(), 4);
        let mut back = [0; 4];
        peer.read_exact(&mut back).unwrap();
        assert_eq!(&back, b"back");
        assert!(std::future::poll_fn(|cx| Poll::Ready(b.poll_writable(cx).is_ready())).await);
    });
}

/// Tasks that each wait on `source`, exclusively or not, then read at most one byte.
fn spawn_waiters(
    source: &Arc<Async<UnixStream>>,
    n: usize,
    exclusive: bool,
    done: &Arc<AtomicUsize>,
) -> Vec<JoinHandle<()>> {
    (0..n)
        .map(|_| {
            let (source, done) = (source.clone(), done.clone());
            epitome_runtime::spawn(async move {
                loop {
                    let guard = if exclusive {
                        source.readable_exclusive().await.unwrap()
                    } else {
                        source.readable().await.unwrap()
                    };
                    let mut byte = [0; 1];
                    match guard.try_io(|s| read_some(s, &mut byte)) {
                        Ok(res) => {
                            assert_eq!(res.unwrap(), 1);
                            done.fetch_add(1, Ordering::SeqCst);
                            return;
                        }
                        // Someone else took the byte: wait again.
                        Err(_would_block) => continue,
                    }
                }
            })
        })
        .collect()
}

/// Lets wakes that are on their way land before counting them.
async fn settle() {
    for _ in 0..5 {
        yield_now().await;
    }
    time::sleep(Duration::from_millis(2)).await;
}

#[test]
fn one_event_wakes_one_of_many_exclusive_waiters() {
    let _watchdog = support::watchdog();
    // All waiters on one worker: the multi-reactor runtime gets one reactor.
    for (name, make) in [
        ("current-thread", current_thread as support::MakeRuntime),
        ("multi-reactor", multi1),
    ] {
        let rt = make();
        rt.block_on(async {
            let m = Handle::current().metrics();
            let (a, mut peer) = UnixStream::pair().unwrap();
            let a = Arc::new(Async::new(a).unwrap());
            let done = Arc::new(AtomicUsize::new(0));
            let polls_before = m.total_polls_count();
            let tasks = spawn_waiters(&a, 8, true, &done);
            yield_until("every waiter waits", || {
                m.total_polls_count() - polls_before >= 8
            })
            .await;
            settle().await;
            for k in 0..8 {
                let wakeups = m.wakeup_count();
                peer.write_all(&[k as u8]).unwrap();
                yield_until("a waiter takes the byte", || {
                    done.load(Ordering::SeqCst) == k + 1
                })
                .await;
                settle().await;
                assert_eq!(
                    m.wakeup_count() - wakeups,
                    1,
                    "{name}: event {k} woke more than one exclusive waiter"
                );
                let finished = tasks.iter().filter(|t| t.is_finished()).count();
                assert_eq!(finished, k + 1, "{name}");
            }
            for t in tasks {
                t.await.unwrap();
            }
        });
    }
}

#[test]
fn one_event_wakes_every_non_exclusive_waiter() {
    let _watchdog = support::watchdog();
    for (name, make) in [
        ("current-thread", current_thread as support::MakeRuntime),
        ("multi-reactor", multi1),
    ] {
        let rt = make();
        rt.block_on(async {
            let m = Handle::current().metrics();
            let (a, mut peer) = UnixStream::pair().unwrap();
            let a = Arc::new(Async::new(a).unwrap());
            let done = Arc::new(AtomicUsize::new(0));
            let polls_before = m.total_polls_count();
            let tasks = spawn_waiters(&a, 8, false, &done);
            yield_until("every waiter waits", || {
                m.total_polls_count() - polls_before >= 8
            })
            .await;
            settle().await;
            let wakeups = m.wakeup_count();
            peer.write_all(&[1]).unwrap();
            yield_until("a waiter takes the byte", || {
                done.load(Ordering::SeqCst) == 1
            })
            .await;
            settle().await;
            // All eight woke; one got the byte, seven went back to waiting.
            assert_eq!(m.wakeup_count() - wakeups, 8, "{name}");
            assert_eq!(done.load(Ordering::SeqCst), 1, "{name}");
            peer.write_all(&[0; 7]).unwrap();
            for t in tasks {
                time::timeout(HANG, t).await.unwrap().unwrap();
            }
        });
    }
}

#[test]
fn a_cancelled_exclusive_waiter_passes_its_wakeup_on() {
    let _watchdog = support::watchdog();
    let rt = current_thread();
    rt.block_on(async {
        let m = Handle::current().metrics();
        let (a, mut peer) = UnixStream::pair().unwrap();
        let a = Arc::new(Async::new(a).unwrap());
        let done = Arc::new(AtomicUsize::new(0));
        let polls_before = m.total_polls_count();
        let mut tasks = spawn_waiters(&a, 2, true, &done);
        yield_until("both wait", || m.total_polls_count() - polls_before >= 2).await;
        settle().await;
        let wakeups = m.wakeup_count();
        peer.write_all(b"x").unwrap();
        // The event wakes the first waiter (FIFO); it is queued but has not run.
        yield_until("the event is dispatched", || {
            m.wakeup_count() == wakeups + 1
        })
        .await;
        let second = tasks.pop().unwrap();
        let first = tasks.pop().unwrap();
        assert!(!first.is_finished() && !second.is_finished());
        first.abort();
        // Cancelled before using its wakeup: the second waiter must get it.
        time::timeout(HANG, second)
            .await
            .expect("the wakeup died with the cancelled waiter")
            .unwrap();
        assert!(first.await.unwrap_err().is_cancelled());
        assert_eq!(done.load(Ordering::SeqCst), 1);
        assert_eq!(m.wakeup_count(), wakeups + 2, "the event, then the baton");
    });
}

#[test]
fn io_events_are_handled_while_the_run_queue_never_empties() {
    let _watchdog = support::watchdog();
    for (name, make) in FLAVORS {
        support::with_watchdog(name, move || {
            let rt = make();
            let (mut peer, b) = UnixStream::pair().unwrap();
            let writer = std::thread::spawn(move || {
                std::thread::sleep(Duration::from_millis(10));
                peer.write_all(b"!").unwrap();
                peer
            });
            rt.block_on(async move {
                epitome_runtime::spawn(async move {
                    let got = Arc::new(AtomicBool::new(false));
                    let spinner = {
                        let got = got.clone();
                        epitome_runtime::spawn(async move {
                            while !got.load(Ordering::SeqCst) {
                                yield_now().await;
                            }
                        })
                    };
                    let b = Async::new(b).unwrap();
                    let mut buf = [0; 1];
                    b.read_with(|s| read_some(s, &mut buf)).await.unwrap();
                    got.store(true, Ordering::SeqCst);
                    spinner.await.unwrap();
                })
                .await
                .unwrap();
            });
            drop(writer.join().unwrap());
        });
    }
}

#[test]
fn async_new_outside_a_runtime_panics_clearly() {
    let _watchdog = support::watchdog();
    let (a, _b) = UnixStream::pair().unwrap();
    let msg = panic_message_of(move || Async::new(a));
    assert!(
        msg.contains("there is no epitome runtime on this thread"),
        "{msg}"
    );
}

#[test]
fn async_new_rejects_what_epoll_cannot_watch() {
    let _watchdog = support::watchdog();
    let rt = current_thread();
    rt.block_on(async {
        let file = std::fs::File::open("/proc/self/status").unwrap();
        let err = Async::new(file).unwrap_err();
        assert_eq!(err.raw_os_error(), Some(libc::EPERM), "{err}");
        assert_eq!(Handle::current().metrics().num_registered_sources(), 0);
    });
}

#[test]
fn into_inner_deregisters_and_gives_the_value_back() {
    let _watchdog = support::watchdog();
    let rt = Builder::new_multi_reactor().reactors(1).build().unwrap();
    let m = rt.metrics();
    let (a, mut peer) = UnixStream::pair().unwrap();
    let back = rt.block_on(async {
        let a = Async::new(a).unwrap();
        assert_eq!(m.num_registered_sources(), 1);
        a.into_inner().unwrap()
    });
    assert_eq!(m.num_registered_sources(), 0);
    // Still a working (non-blocking) socket.
    peer.write_all(b"z").unwrap();
    let mut buf = [0; 1];
    support::wait_until("the byte arrives", || read_some(&back, &mut buf).is_ok());
    assert_eq!(&buf, b"z");
}
