//! Shutting a runtime down closes every fd its tasks held, and its own.
//!
//! Its own test binary, so its own process: the fd table holds only what these tests
//! open. The tests here take `FD_TABLE` so they do not see each other's fds, and they
//! also check each fd they created by what it refers to, which no other code can fake.

mod support;

use std::collections::BTreeMap;
use std::future::pending;
use std::os::fd::{AsRawFd, OwnedFd};
use std::os::unix::net::UnixStream;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::mpsc;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use epitome_runtime::io::Async;
use epitome_runtime::runtime::Builder;
use epitome_runtime::task::spawn_local;
use epitome_runtime::time;
use support::{FLAVORS, HANG, Signal, fd_target, open_fds, pipe, with_watchdog};

/// Held by each test while it looks at the whole fd table.
static FD_TABLE: Mutex<()> = Mutex::new(());

/// The fds (and what each refers to) that a task reports having opened.
type Report = Vec<(i32, String)>;

fn describe(fds: &[i32]) -> Report {
    fds.iter()
        .map(|&fd| (fd, fd_target(fd).expect("an fd just opened is open")))
        .collect()
}

#[test]
fn shutdown_with_pending_tasks_closes_their_fds() {
    let _watchdog = support::watchdog();
    let _table = FD_TABLE.lock().unwrap_or_else(|e| e.into_inner());
    for (name, make) in FLAVORS {
        let before = open_fds();
        let created: Report = with_watchdog(name, move || {
            let rt = make();
            let (tx, rx) = mpsc::channel::<Report>();
            let mut expected_reports = 0;
            // Tasks waiting for readiness on a registered socket, holding its peer
            // and a pipe.
            for _ in 0..3 {
                let tx = tx.clone();
                expected_reports += 1;
                drop(rt.spawn(async move {
                    let (a, b) = UnixStream::pair().unwrap();
                    let (r, w) = pipe();
                    let a = Async::new(a).unwrap();
                    tx.send(describe(&[
                        a.as_raw_fd(),
                        b.as_raw_fd(),
                        r.as_raw_fd(),
                        w.as_raw_fd(),
                    ]))
                    .unwrap();
                    let _ = a.readable().await;
                    drop((b, r, w));
                    pending::<()>().await;
                }));
            }
            // Tasks asleep, holding a registered pipe end.
            for _ in 0..2 {
                let tx = tx.clone();
                expected_reports += 1;
                drop(rt.spawn(async move {
                    let (r, w) = pipe();
                    let r = Async::new(r).unwrap();
                    tx.send(describe(&[r.as_raw_fd(), w.as_raw_fd()])).unwrap();
                    time::sleep(Duration::from_secs(3600)).await;
                    drop((r, w));
                }));
            }
            // A `!Send` task holding a socket pair.
            {
                let tx = tx.clone();
                expected_reports += 1;
                drop(rt.spawn(async move {
                    let local = spawn_local(async move {
                        let (a, b) = UnixStream::pair().unwrap();
                        let a = std::rc::Rc::new(Async::new(a).unwrap());
                        tx.send(describe(&[a.as_raw_fd(), b.as_raw_fd()])).unwrap();
                        let _ = a.readable().await;
                        drop(b);
                    });
                    let _ = local.await;
                }));
            }
            // Drive the runtime (a current-thread one runs nothing otherwise) until
            // every task has reported, then a little longer so each reaches its wait.
            let mut created: Report = rt.block_on(async {
                let mut created = Vec::new();
                let deadline = std::time::Instant::now() + HANG;
                let mut reports = 0;
                while reports < expected_reports {
                    match rx.try_recv() {
                        Ok(report) => {
                            created.extend(report);
                            reports += 1;
                        }
                        Err(_) => {
                            assert!(
                                std::time::Instant::now() < deadline,
                                "a task never reported"
                            );
                            time::sleep(Duration::from_millis(1)).await;
                        }
                    }
                }
                time::sleep(Duration::from_millis(10)).await;
                created
            });
            // And a task spawned but never run, owning fds made outside.
            let (r, w) = pipe();
            created.extend(describe(&[r.as_raw_fd(), w.as_raw_fd()]));
            drop(rt.spawn(async move {
                let _fds: (OwnedFd, OwnedFd) = (r, w);
                pending::<()>().await;
            }));
            for (fd, target) in &created {
                assert_eq!(
                    fd_target(*fd).as_ref(),
                    Some(target),
                    "fd {fd} before shutdown"
                );
            }
            drop(rt);
            created
        });
        assert_eq!(created.len(), 3 * 4 + 2 * 2 + 2 + 2, "{name}");
        for (fd, target) in &created {
            assert_ne!(
                fd_target(*fd).as_ref(),
                Some(target),
                "{name}: fd {fd} ({target}) is still open after the runtime was dropped"
            );
        }
        let after = open_fds();
        assert_eq!(
            after,
            before,
            "{name}: fds opened since before the runtime was built: {:?}",
            diff(&before, &after)
        );
    }
}

#[test]
fn dropping_a_runtime_closes_its_own_fds() {
    let _watchdog = support::watchdog();
    let _table = FD_TABLE.lock().unwrap_or_else(|e| e.into_inner());
    for (name, make) in FLAVORS {
        let before = open_fds();
        let fds_before = before.len();
        with_watchdog(name, move || {
            let rt = make();
            // Use the reactor and the timers. (With the blocking pool, see
            // `the_runtime_s_fds_are_closed_when_its_drop_returns`.)
            rt.block_on(async {
                let (a, b) = UnixStream::pair().unwrap();
                let a = Async::new(a).unwrap();
                let b = Async::new(b).unwrap();
                b.write_with(|s| std::io::Write::write(&mut &*s, b"x"))
                    .await
                    .unwrap();
                let mut buf = [0; 1];
                a.read_with(|s| std::io::Read::read(&mut &*s, &mut buf))
                    .await
                    .unwrap();
                time::sleep(Duration::from_millis(1)).await;
                epitome_runtime::spawn(async {}).await.unwrap();
            });
            assert!(
                open_fds().len() > fds_before,
                "a runtime holds fds of its own (epoll, eventfd)"
            );
            drop(rt);
        });
        let after = open_fds();
        assert_eq!(after, before, "{name}: {:?}", diff(&before, &after));
    }
}

#[test]
fn the_runtime_s_fds_are_closed_when_its_drop_returns() {
    let _watchdog = support::watchdog();
    let _table = FD_TABLE.lock().unwrap_or_else(|e| e.into_inner());
    let before = open_fds();
    let stopping = Arc::new(AtomicUsize::new(0));
    let stopped = Arc::new(AtomicUsize::new(0));
    let (st, sd) = (stopping.clone(), stopped.clone());
    let open_at_drop = with_watchdog("multi-reactor", move || {
        let rt = Builder::new_multi_reactor()
            .reactors(2)
            // Blocking threads that take a while to stop, each longer than the last.
            .on_thread_stop(move || {
                let k = st.fetch_add(1, Ordering::SeqCst) as u32;
                std::thread::sleep(Duration::from_millis(10) * (k + 1));
                sd.fetch_add(1, Ordering::SeqCst);
            })
            .build()
            .unwrap();
        let release = Signal::new();
        let closures: Vec<_> = (0..2)
            .map(|_| {
                let release = release.clone();
                rt.spawn_blocking(move || release.wait_or_fail("release"))
            })
            .collect();
        support::wait_until("both blocking threads run", || {
            rt.metrics().num_blocking_threads() == 2
        });
        release.set();
        for c in closures {
            support::block_on_plain(c).unwrap();
        }
        drop(rt);
        let open_at_drop = diff(&before, &open_fds());
        // Clean up before judging: let the stragglers finish and close what they hold.
        support::wait_until("the blocking threads stop", || {
            stopped.load(Ordering::SeqCst) == 4
        });
        support::wait_until("the runtime's fds close", || open_fds() == before);
        open_at_drop
    });
    assert!(
        open_at_drop.is_empty(),
        "the runtime's fds were still open when its drop returned: {open_at_drop:?} \
         (a blocking-pool thread that was not joined still held the runtime)"
    );
}

/// The fds in `after` that were not in `before`, or refer to something else now.
fn diff(before: &BTreeMap<i32, String>, after: &BTreeMap<i32, String>) -> Vec<(i32, String)> {
    after
        .iter()
        .filter(|(fd, t)| before.get(fd) != Some(t))
        .map(|(fd, t)| (*fd, t.clone()))
        .collect()
}
