//! `epitome::hyper::serve` at the fd limit, in a child process that lowers its own
//! RLIMIT_NOFILE: accept fails with EMFILE, the server backs off without spinning and
//! without stopping, keeps serving the connection it has, and serves the waiting
//! clients once fds free up.

use std::io::{Read, Write};
use std::os::fd::OwnedFd;
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::Router;
use axum::routing::get;
use epitome::hyper::serve;
use epitome::net::{TcpListener, TcpStream};
use epitome::runtime::Builder;

const CHILD_ENV: &str = "EPITOME_SERVE_EMFILE_CHILD";
const CHILD_OK: &str = "serve emfile child: all checks passed";
const LATE: usize = 4;

#[test]
fn serve_at_the_fd_limit_backs_off_keeps_serving_and_resumes() {
    if let Ok(flavor) = std::env::var(CHILD_ENV) {
        child(&flavor);
        println!("{CHILD_OK}");
        return;
    }
    for flavor in ["current-thread", "multi-reactor"] {
        let mut child = Command::new(std::env::current_exe().unwrap())
            .args([
                "--exact",
                "serve_at_the_fd_limit_backs_off_keeps_serving_and_resumes",
                "--nocapture",
                "--test-threads=1",
            ])
            .env(CHILD_ENV, flavor)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let out = drain(child.stdout.take());
        let err = drain(child.stderr.take());
        let start = Instant::now();
        let status = loop {
            if let Some(status) = child.try_wait().unwrap() {
                break status;
            }
            if start.elapsed() > Duration::from_secs(60) {
                let _ = child.kill();
                let _ = child.wait();
                panic!("the {flavor} child hung");
            }
            std::thread::sleep(Duration::from_millis(10));
        };
        let (out, err) = (out.join().unwrap(), err.join().unwrap());
        assert!(
            status.success() && out.contains(CHILD_OK),
            "{flavor} child failed ({status}):\n--- stdout\n{out}\n--- stderr\n{err}"
        );
        for line in out.lines().filter(|l| l.contains("at the limit")) {
            eprintln!("{line}");
        }
    }
}

fn drain(pipe: Option<impl Read + Send + 'static>) -> std::thread::JoinHandle<String> {
    std::thread::spawn(move || {
        let mut s = String::new();
        if let Some(mut p) = pipe {
            let _ = p.read_to_string(&mut s);
        }
        s
    })
}

fn open_fds() -> usize {
    std::fs::read_dir("/proc/self/fd").map_or(0, |d| d.count())
}

/// One request on an epitome stream, answered with `hello`.
async fn get_hello(s: &TcpStream) {
    s.write_all(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
        .await
        .unwrap();
    let mut buf = Vec::new();
    let mut chunk = [0u8; 512];
    while !buf.ends_with(b"hello") {
        let n = epitome::time::timeout(Duration::from_secs(10), s.read(&mut chunk))
            .await
            .expect("no answer at the fd limit")
            .unwrap();
        assert!(n > 0, "closed at the fd limit");
        buf.extend_from_slice(&chunk[..n]);
    }
    assert!(buf.starts_with(b"HTTP/1.1 200 OK"));
}

fn child(flavor: &str) {
    let rt = match flavor {
        "current-thread" => Builder::new_current_thread().build().unwrap(),
        _ => Builder::new_multi_reactor().reactors(2).build().unwrap(),
    };
    rt.block_on(async {
        let listener = Arc::new(TcpListener::bind("127.0.0.1:0").await.unwrap());
        let addr = listener.local_addr().unwrap();
        let app = Router::new().route("/", get(|| async { "hello" }));
        let (signal, stop) = futures_util::future::abortable(std::future::pending::<()>());
        let server = epitome::spawn(
            serve(listener.clone(), app)
                .with_graceful_shutdown(async move {
                    let _ = signal.await;
                })
                .into_future(),
        );

        // A client served before the limit; the late clients' sockets are made now,
        // while fds are free.
        let early = TcpStream::connect(addr).await.unwrap();
        get_hello(&early).await;
        let late: Vec<socket2::Socket> = (0..LATE)
            .map(|_| {
                socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::STREAM, None).unwrap()
            })
            .collect();

        // Lower the limit a little above what is open, and fill the rest.
        let limit = libc::rlimit {
            rlim_cur: open_fds() as u64 + 16,
            rlim_max: 20_000,
        };
        // SAFETY: `limit` is a valid rlimit.
        let r = unsafe { libc::setrlimit(libc::RLIMIT_NOFILE, &limit) };
        assert_eq!(r, 0, "setrlimit: {}", std::io::Error::last_os_error());
        let mut fillers: Vec<OwnedFd> = Vec::new();
        loop {
            match std::fs::File::open("/dev/null") {
                Ok(f) => fillers.push(f.into()),
                Err(e) if e.raw_os_error() == Some(libc::EMFILE) => break,
                Err(e) => panic!("filling fds: {e}"),
            }
            assert!(fillers.len() < 10_000, "the limit did not take");
        }

        // The late clients connect: the kernel completes them into the backlog, and
        // the server's accept fails.
        for s in &late {
            s.connect(&addr.into()).unwrap();
        }
        let waited = Instant::now();
        while listener.resource_errors() == 0 {
            assert!(
                waited.elapsed() < Duration::from_secs(10),
                "accept never failed"
            );
            epitome::time::sleep(Duration::from_millis(5)).await;
        }

        // At the limit: the early connection is still served, and accept is retried a
        // few times a second, not in a loop (a spinning server retries hundreds of
        // thousands of times a second).
        let errors_before = listener.resource_errors();
        let at_limit = Instant::now();
        for _ in 0..10 {
            get_hello(&early).await;
            epitome::time::sleep(Duration::from_millis(100)).await;
        }
        let errors = listener.resource_errors() - errors_before;
        let per_second = errors as f64 / at_limit.elapsed().as_secs_f64();
        println!(
            "{flavor}: {errors} accept errors in {:?} at the limit",
            at_limit.elapsed()
        );
        assert!(errors > 0, "the server stopped accepting at the limit");
        assert!(
            per_second < 200.0,
            "{per_second:.0} accept errors a second: spinning"
        );
        assert!(!server.is_finished(), "the server exited at the fd limit");

        // Free fds: every late client is accepted and answered.
        fillers.clear();
        let answers = epitome::task::spawn_blocking(move || {
            late.into_iter()
                .map(|s| {
                    let mut s = std::net::TcpStream::from(s);
                    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
                    s.write_all(b"GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
                        .unwrap();
                    let mut all = String::new();
                    s.read_to_string(&mut all).unwrap();
                    all
                })
                .collect::<Vec<_>>()
        })
        .await
        .unwrap();
        for a in answers {
            assert!(
                a.starts_with("HTTP/1.1 200 OK") && a.ends_with("hello"),
                "{a}"
            );
        }
        drop(early);
        stop.abort();
        server.await.unwrap().unwrap();
    });
}
