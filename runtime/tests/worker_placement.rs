//! Choosing where tasks run: `Handle::spawn_on`, `spawn_on_each`, `num_workers`,
//! `runtime::worker_index`, the per-worker metrics; and a connection accepted off the
//! workers being served by the reactor of the worker whose task uses it.

mod support;

use std::io::{self, Read, Write};
use std::net::{TcpListener, TcpStream};

use epitome_runtime::io::Async;
use epitome_runtime::runtime::{self, Handle};
use support::{current_thread, multi, watchdog};

#[test]
fn spawn_on_runs_on_the_worker_named() {
    let _watchdog = watchdog();
    for (rt, n) in [(current_thread(), 1), (multi(3), 3)] {
        let handle = rt.handle().clone();
        assert_eq!(handle.num_workers(), n);
        for i in 0..n {
            let task = handle.spawn_on(i, async { runtime::worker_index() });
            assert_eq!(rt.block_on(task.unwrap()).unwrap(), Some(i));
        }
        let err = handle.spawn_on(n, async {}).unwrap_err();
        assert_eq!(
            err.to_string(),
            format!("no worker {n}: the runtime has {n} (0..{n})")
        );
    }
}

#[test]
fn spawn_on_each_starts_one_task_per_worker() {
    let _watchdog = watchdog();
    let rt = multi(4);
    let handles = rt
        .handle()
        .spawn_on_each(|i| async move { (i, runtime::worker_index()) });
    let seen: Vec<_> = rt.block_on(async {
        let mut seen = Vec::new();
        for h in handles {
            seen.push(h.await.unwrap());
        }
        seen
    });
    assert_eq!(seen, (0..4).map(|i| (i, Some(i))).collect::<Vec<_>>());
}

#[test]
fn worker_index_off_the_workers() {
    let _watchdog = watchdog();
    assert_eq!(runtime::worker_index(), None, "outside every runtime");
    let rt = multi(2);
    // A multi-reactor runtime's block_on thread runs no worker.
    assert_eq!(rt.block_on(async { runtime::worker_index() }), None);
    let blocking = rt.spawn_blocking(runtime::worker_index);
    assert_eq!(rt.block_on(blocking).unwrap(), None);
    // A current-thread runtime's block_on drives its one worker.
    let ct = current_thread();
    assert_eq!(ct.block_on(async { runtime::worker_index() }), Some(0));
}

#[test]
fn spawn_on_from_a_worker_to_itself_and_to_another() {
    let _watchdog = watchdog();
    let rt = multi(2);
    let out = rt.block_on(async {
        let h = Handle::current();
        let inner = h.clone();
        h.spawn_on(0, async move {
            let same = inner
                .spawn_on(0, async { runtime::worker_index() })
                .unwrap();
            let other = inner
                .spawn_on(1, async { runtime::worker_index() })
                .unwrap();
            (same.await.unwrap(), other.await.unwrap())
        })
        .unwrap()
        .await
        .unwrap()
    });
    assert_eq!(out, (Some(0), Some(1)));
}

#[test]
fn per_worker_gauges() {
    let _watchdog = watchdog();
    let rt = multi(2);
    let m = rt.metrics();
    // A task parked on worker 1 with a source registered there.
    let (a, b) = std::os::unix::net::UnixStream::pair().unwrap();
    a.set_nonblocking(true).unwrap();
    let started = rt
        .handle()
        .spawn_on(1, async move {
            let a = Async::new(a).unwrap();
            let _ = a.readable().await;
            drop(a);
        })
        .unwrap();
    support::wait_until("the source is registered on worker 1", || {
        m.worker_registered_sources(1) == 1
    });
    assert_eq!(m.worker_registered_sources(0), 0);
    assert_eq!(m.worker_alive_tasks(1), 1);
    assert_eq!(m.worker_alive_tasks(0), 0);
    (&b).write_all(b"x").unwrap();
    rt.block_on(started).unwrap();
    support::wait_until("the source is gone", || m.worker_registered_sources(1) == 0);
    // The task is counted complete just after its JoinHandle is woken.
    support::wait_until("the task is gone", || m.worker_alive_tasks(1) == 0);
}

/// The tokio-style server: accept in `block_on` (off the workers, on a multi-reactor
/// runtime), spawn a task per connection. Each accepted connection registers with the
/// reactor of the worker whose task first waits on it, whatever reactor the accepting
/// thread would have picked, so its wakeups stay on that worker's thread: under a
/// request / response load, at most 2% of the wakes cross threads. (Registered where
/// it was accepted, half the connections would wake their tasks from the other
/// worker's thread.)
#[test]
fn connections_accepted_off_the_workers_wake_on_their_own_worker() {
    let _watchdog = watchdog();
    const CONNECTIONS: usize = 16;
    const ROUNDS: usize = 200;
    let rt = multi(2);
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    listener.set_nonblocking(true).unwrap();
    let clients = std::thread::spawn(move || -> io::Result<()> {
        let mut streams: Vec<TcpStream> = (0..CONNECTIONS)
            .map(|_| TcpStream::connect(addr))
            .collect::<io::Result<_>>()?;
        let mut buf = [0; 8];
        for round in 0..ROUNDS {
            for s in &mut streams {
                let msg = (round as u64).to_le_bytes();
                s.write_all(&msg)?;
                s.read_exact(&mut buf)?;
                assert_eq!(buf, msg);
            }
        }
        Ok(())
    });
    let m = rt.metrics();
    rt.block_on(async {
        let listener = Async::new(listener).unwrap();
        let mut tasks = Vec::new();
        for _ in 0..CONNECTIONS {
            let (stream, _) = listener.read_with(|l| l.accept()).await.expect("accept");
            stream.set_nonblocking(true).unwrap();
            let stream = Async::new_ready(stream).unwrap();
            // Every task on worker 1, whatever reactor the accepting thread would
            // have picked for the stream.
            let on_1 = Handle::current().spawn_on(1, async move {
                let mut buf = [0; 8];
                loop {
                    let n = stream.read_with(|mut s| s.read(&mut buf)).await.unwrap();
                    if n == 0 {
                        return;
                    }
                    stream.write_with(|mut s| s.write(&buf[..n])).await.unwrap();
                }
            });
            tasks.push(on_1.unwrap());
        }
        for t in tasks {
            t.await.unwrap();
        }
    });
    clients.join().unwrap().unwrap();
    let wakes = m.wakeup_count();
    let crossed = m.remote_schedule_count() - m.remote_spawn_count();
    assert!(
        wakes > (CONNECTIONS * ROUNDS) as u64 / 2,
        "the load made too few wakes to judge ({wakes})"
    );
    assert!(
        crossed * 50 <= wakes,
        "{crossed} of {wakes} wakes crossed threads (more than 2%)"
    );
}
