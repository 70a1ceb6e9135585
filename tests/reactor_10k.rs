//! 10,000 concurrent connections echoing on one reactor, then on two.
//!
//! The machine's fd limit (20,000) cannot hold both ends of 10,000 connections in one
//! process, so the clients run in a child process: this test binary re-executed with
//! `EPITOME_10K_CLIENT=<addr>`, which runs the ignored test `client`.

use std::process::Command;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use epitome::net::{TcpListener, TcpStream};
use epitome::runtime::Builder;

const CONNECTIONS: usize = 10_000;
const ROUNDS: usize = 5;
const SIZE: usize = 64;

/// The child: opens all connections, keeps them all open, then echoes ROUNDS rounds on
/// each, checking every byte.
#[test]
#[ignore = "run by `ten_thousand_connections_on_one_then_two_reactors` in a child process"]
fn client() {
    let Ok(addr) = std::env::var("EPITOME_10K_CLIENT") else {
        return;
    };
    let rt = Builder::new_current_thread().build().unwrap();
    rt.block_on(async move {
        let mut streams = Vec::with_capacity(CONNECTIONS);
        for _ in 0..CONNECTIONS {
            streams.push(TcpStream::connect(addr.as_str()).await.expect("connect"));
        }
        let done = Arc::new(AtomicUsize::new(0));
        let mut tasks = Vec::new();
        for (i, s) in streams.into_iter().enumerate() {
            let done = done.clone();
            tasks.push(epitome::spawn(async move {
                let mut buf = [0u8; SIZE];
                for r in 0..ROUNDS {
                    let msg = [(i + r) as u8; SIZE];
                    s.write_all(&msg).await.expect("write");
                    s.read_exact(&mut buf).await.expect("read");
                    assert_eq!(buf, msg, "connection {i} round {r}");
                }
                done.fetch_add(1, Ordering::Relaxed);
            }));
        }
        for t in tasks {
            t.await.expect("client task");
        }
        assert_eq!(done.load(Ordering::Relaxed), CONNECTIONS);
    });
}

fn serve_10k(reactors: usize) {
    let rt = if reactors == 1 {
        Builder::new_current_thread().build().unwrap()
    } else {
        Builder::new_multi_reactor()
            .reactors(reactors)
            .build()
            .unwrap()
    };
    let served = Arc::new(AtomicUsize::new(0));
    let served2 = served.clone();
    rt.block_on(async move {
        let listener = Arc::new(TcpListener::bind("127.0.0.1:0").await.unwrap());
        let addr = listener.local_addr().unwrap();
        let acceptors: Vec<_> = (0..reactors.max(1) * 2)
            .map(|_| {
                let l = listener.clone();
                let served = served2.clone();
                epitome::spawn(async move {
                    loop {
                        let (s, _) = l.accept().await.expect("accept");
                        let served = served.clone();
                        epitome::spawn(async move {
                            let mut buf = [0u8; 4096];
                            loop {
                                match s.read(&mut buf).await {
                                    Ok(0) | Err(_) => break,
                                    Ok(n) => {
                                        if s.write_all(&buf[..n]).await.is_err() {
                                            break;
                                        }
                                    }
                                }
                            }
                            served.fetch_add(1, Ordering::Relaxed);
                        });
                    }
                })
            })
            .collect();
        let exe = std::env::current_exe().unwrap();
        let child = epitome::task::spawn_blocking(move || {
            Command::new(exe)
                .args(["--ignored", "--exact", "client", "--nocapture"])
                .env("EPITOME_10K_CLIENT", addr.to_string())
                .status()
        });
        let status = epitome::time::timeout(Duration::from_secs(120), child)
            .await
            .expect("the client process did not finish within 120 s")
            .unwrap()
            .unwrap();
        assert!(status.success(), "client process failed: {status}");
        // Every server-side connection sees the client's close.
        let deadline = std::time::Instant::now() + Duration::from_secs(30);
        while served2.load(Ordering::Relaxed) < CONNECTIONS {
            assert!(
                std::time::Instant::now() < deadline,
                "{} of {CONNECTIONS} connections ended",
                served2.load(Ordering::Relaxed)
            );
            epitome::time::sleep(Duration::from_millis(10)).await;
        }
        for a in acceptors {
            a.abort();
            assert!(a.await.unwrap_err().is_cancelled());
        }
        drop(listener);
        let m = epitome::runtime::Handle::current().metrics();
        assert_eq!(m.num_registered_sources(), 0, "registrations leaked");
    });
    assert_eq!(served.load(Ordering::Relaxed), CONNECTIONS);
}

/// One test, so the two runs (10,000 server-side fds each) never overlap under the
/// harness's parallel test threads.
#[test]
fn ten_thousand_connections_on_one_then_two_reactors() {
    serve_10k(1);
    serve_10k(2);
}
