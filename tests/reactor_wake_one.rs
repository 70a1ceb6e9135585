//! Wake-one on a shared listener, measured through the runtime's metrics.
//!
//! 100 tasks await `accept` on one listener; 1,000 connections arrive. With wake-one
//! (exclusive waiters, and EPOLLEXCLUSIVE across workers) each connection wakes one
//! task: about 1,000 task wakeups, not the 100,000 a wake-all design costs. Then the
//! same with half the accepting tasks cancelled at random points: every connection is
//! still accepted.

use std::net::TcpStream as StdTcpStream;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use epitome::net::TcpListener;
use epitome::runtime::{Builder, Runtime};

const TASKS: usize = 100;
const CONNECTIONS: usize = 1_000;

fn runtimes() -> Vec<(&'static str, Runtime)> {
    vec![
        (
            "current-thread",
            Builder::new_current_thread().build().unwrap(),
        ),
        (
            "multi-reactor(2)",
            Builder::new_multi_reactor().reactors(2).build().unwrap(),
        ),
    ]
}

/// Connects `n` clients from a plain thread (so client activity adds no task wakeups),
/// holding each until the server has accepted it.
fn connect_clients(
    addr: std::net::SocketAddr,
    n: usize,
    pace: bool,
) -> std::thread::JoinHandle<()> {
    std::thread::spawn(move || {
        let mut held = Vec::with_capacity(n);
        for i in 0..n {
            held.push(StdTcpStream::connect(addr).expect("connect"));
            if pace && i % 50 == 0 {
                std::thread::sleep(Duration::from_millis(1));
            }
        }
        // Keep them open a moment, then close all.
        std::thread::sleep(Duration::from_millis(200));
        drop(held);
    })
}

fn run_accepts(rt: &Runtime, cancel_half: bool) -> (usize, u64) {
    let accepted = Arc::new(AtomicUsize::new(0));
    let before = rt.metrics().wakeup_count();
    let acc = accepted.clone();
    let wakeups = rt.block_on(async move {
        let listener = Arc::new(TcpListener::bind("127.0.0.1:0").await.unwrap());
        let addr = listener.local_addr().unwrap();
        let mut tasks = Vec::new();
        for _ in 0..TASKS {
            let l = listener.clone();
            let acc = acc.clone();
            tasks.push(epitome::spawn(async move {
                loop {
                    match l.accept().await {
                        Ok((s, _)) => {
                            drop(s);
                            acc.fetch_add(1, Ordering::SeqCst);
                        }
                        Err(e) => panic!("accept: {e}"),
                    }
                }
            }));
        }
        // Let every task reach its accept.
        epitome::time::sleep(Duration::from_millis(50)).await;
        let start = epitome::runtime::Handle::current().metrics().wakeup_count();
        let clients = connect_clients(addr, CONNECTIONS, cancel_half);
        if cancel_half {
            // Cancel half the accepting tasks at pseudo-random points while
            // connections arrive.
            let mut x: u64 = 0x9E37_79B9_7F4A_7C15;
            for t in tasks.iter().step_by(2) {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                epitome::time::sleep(Duration::from_micros(x % 400)).await;
                t.abort();
            }
        }
        let deadline = std::time::Instant::now() + Duration::from_secs(20);
        while acc.load(Ordering::SeqCst) < CONNECTIONS {
            assert!(
                std::time::Instant::now() < deadline,
                "only {} connections accepted",
                acc.load(Ordering::SeqCst)
            );
            epitome::time::sleep(Duration::from_millis(5)).await;
        }
        let end = epitome::runtime::Handle::current().metrics().wakeup_count();
        for t in &tasks {
            t.abort();
        }
        epitome::task::spawn_blocking(move || clients.join().unwrap())
            .await
            .unwrap();
        end - start
    });
    let _ = before;
    (accepted.load(Ordering::SeqCst), wakeups)
}

#[test]
fn one_connection_wakes_one_task() {
    for (name, rt) in runtimes() {
        let (accepted, wakeups) = run_accepts(&rt, false);
        assert_eq!(accepted, CONNECTIONS, "{name}");
        // The polling loop of this test wakes its own task every 5 ms; allow for it.
        // Without wake-one this would be about TASKS * CONNECTIONS = 100,000.
        println!(
            "{name}: {wakeups} task wakeups for {CONNECTIONS} connections and {TASKS} accepting tasks"
        );
        assert!(
            wakeups <= (CONNECTIONS as u64) * 3 / 2,
            "{name}: {wakeups} wakeups"
        );
    }
}

#[test]
fn cancelled_acceptors_lose_no_connection() {
    for (name, rt) in runtimes() {
        let (accepted, _) = run_accepts(&rt, true);
        assert_eq!(accepted, CONNECTIONS, "{name}");
    }
}
