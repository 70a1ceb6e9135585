//! `epitome::hyper::serve`: axum and hyper services, the peer address, HTTP/1 and
//! HTTP/2, Unix sockets, and a graceful shutdown that loses and resets no connection.
//! (Serving at the fd limit is in `hyper_serve_emfile.rs`.)

use std::convert::Infallible;
use std::io::{Read, Write};
use std::net::SocketAddr;
use std::time::Duration;

use axum::Router;
use axum::extract::ConnectInfo;
use axum::routing::get;
use bytes::Bytes;
use epitome::hyper::{Executor, Io, Timer, serve};
use epitome::net::{TcpListener, TcpStream, UnixListener};
use epitome::runtime::{Builder, Runtime};
use http_body_util::{BodyExt, Empty, Full};
use hyper::{Request, Response, StatusCode};

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

async fn peer(ConnectInfo(peer): ConnectInfo<SocketAddr>) -> String {
    peer.to_string()
}

async fn slow() -> &'static str {
    epitome::time::sleep(Duration::from_millis(300)).await;
    "slow"
}

fn app() -> Router {
    Router::new()
        .route("/", get(|| async { "hello" }))
        .route("/slow", get(slow))
        .route("/peer", get(peer))
}

/// A stop signal for `with_graceful_shutdown` and the handle that fires it.
fn stop_signal() -> (
    futures_util::future::AbortHandle,
    impl std::future::Future<Output = ()> + Send + 'static,
) {
    let (pending, handle) = futures_util::future::abortable(std::future::pending::<()>());
    (handle, async move {
        let _ = pending.await;
    })
}

/// Writes `request` on a blocking socket and reads until the server closes: the whole
/// answer, or the error that ended the read (a reset).
fn read_to_close(mut s: std::net::TcpStream) -> Result<String, std::io::Error> {
    s.set_read_timeout(Some(Duration::from_secs(10)))?;
    let mut all = Vec::new();
    s.read_to_end(&mut all)?;
    Ok(String::from_utf8_lossy(&all).into_owned())
}

/// One HTTP/1.1 exchange on a keep-alive connection: reads exactly one response (these
/// bodies are short and carry `content-length`).
fn exchange(s: &mut std::net::TcpStream, path: &str) -> String {
    s.write_all(format!("GET {path} HTTP/1.1\r\nHost: x\r\n\r\n").as_bytes())
        .unwrap();
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    let mut buf = Vec::new();
    let mut chunk = [0u8; 1024];
    loop {
        let n = s.read(&mut chunk).unwrap();
        assert!(n > 0, "closed before a whole response");
        buf.extend_from_slice(&chunk[..n]);
        let text = String::from_utf8_lossy(&buf);
        if let Some(end) = text.find("\r\n\r\n") {
            let len: usize = text[..end]
                .lines()
                .find_map(|l| l.strip_prefix("content-length: "))
                .and_then(|v| v.trim().parse().ok())
                .unwrap_or(0);
            if buf.len() >= end + 4 + len {
                return text.into_owned();
            }
        }
    }
}

#[test]
fn axum_router_with_connect_info_over_http1() {
    for (name, rt) in runtimes() {
        rt.block_on(async {
            let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
            let addr = listener.local_addr().unwrap();
            let (stop, signal) = stop_signal();
            let server = epitome::spawn(
                serve(
                    listener,
                    app().into_make_service_with_connect_info::<SocketAddr>(),
                )
                .with_graceful_shutdown(signal)
                .into_future(),
            );
            let (local, answers) = epitome::task::spawn_blocking(move || {
                let mut s = std::net::TcpStream::connect(addr).unwrap();
                let local = s.local_addr().unwrap();
                let answers = [exchange(&mut s, "/peer"), exchange(&mut s, "/")];
                (local, answers)
            })
            .await
            .unwrap();
            assert!(
                answers[0].starts_with("HTTP/1.1 200 OK"),
                "{name}: {}",
                answers[0]
            );
            assert!(
                answers[0].ends_with(&local.to_string()),
                "{name}: {}",
                answers[0]
            );
            assert!(answers[1].ends_with("hello"), "{name}: {}", answers[1]);
            stop.abort();
            server.await.unwrap().unwrap();
        });
    }
}

#[test]
fn a_plain_router_and_a_hyper_service_fn_over_http2() {
    for (name, rt) in runtimes() {
        rt.block_on(async {
            // A plain Router (cloned per connection) and a hyper `service_fn`.
            let router_listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
            let hyper_listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
            let addrs = [
                router_listener.local_addr().unwrap(),
                hyper_listener.local_addr().unwrap(),
            ];
            let (stop, signal) = stop_signal();
            let (stop2, signal2) = stop_signal();
            let servers = [
                epitome::spawn(
                    serve(router_listener, app())
                        .with_graceful_shutdown(signal)
                        .into_future(),
                ),
                epitome::spawn(
                    serve(
                        hyper_listener,
                        hyper::service::service_fn(|_req| async {
                            Ok::<_, Infallible>(Response::new(Full::new(Bytes::from("hello"))))
                        }),
                    )
                    .with_graceful_shutdown(signal2)
                    .into_future(),
                ),
            ];
            for addr in addrs {
                let stream = TcpStream::connect(addr).await.unwrap();
                let (mut sender, conn) = hyper::client::conn::http2::Builder::new(Executor::new())
                    .timer(Timer::new())
                    .handshake::<_, Empty<Bytes>>(Io::new(stream))
                    .await
                    .unwrap();
                let conn = epitome::spawn(conn);
                let req = Request::builder()
                    .uri(format!("http://{addr}/"))
                    .body(Empty::new())
                    .unwrap();
                let res = sender.send_request(req).await.unwrap();
                assert_eq!(res.status(), StatusCode::OK, "{name}");
                assert_eq!(res.version(), hyper::Version::HTTP_2, "{name}");
                let body = res.into_body().collect().await.unwrap().to_bytes();
                assert_eq!(&body[..], b"hello", "{name}");
                drop(sender);
                conn.await.unwrap().unwrap();
            }
            stop.abort();
            stop2.abort();
            for s in servers {
                s.await.unwrap().unwrap();
            }
        });
    }
}

#[test]
fn serves_a_unix_listener() {
    let dir = std::env::temp_dir().join(format!("epitome-serve-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    for (i, (name, rt)) in runtimes().into_iter().enumerate() {
        let path = dir.join(format!("s{i}.sock"));
        rt.block_on(async {
            let listener = UnixListener::bind(&path).unwrap();
            let (stop, signal) = stop_signal();
            let server = epitome::spawn(
                serve(listener, app())
                    .with_graceful_shutdown(signal)
                    .into_future(),
            );
            let path2 = path.clone();
            let answer = epitome::task::spawn_blocking(move || {
                let mut s = std::os::unix::net::UnixStream::connect(&path2).unwrap();
                s.write_all(b"GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
                    .unwrap();
                let mut all = String::new();
                s.read_to_string(&mut all).unwrap();
                all
            })
            .await
            .unwrap();
            assert!(answer.starts_with("HTTP/1.1 200 OK"), "{name}: {answer}");
            assert!(answer.ends_with("hello"), "{name}: {answer}");
            stop.abort();
            server.await.unwrap().unwrap();
        });
        std::fs::remove_file(&path).unwrap();
    }
    std::fs::remove_dir(&dir).unwrap();
}

/// Every kind of connection a shutdown meets: each ends with its answer or a clean end
/// of stream, never a reset, and `serve` returns once all are closed.
#[test]
fn graceful_shutdown_loses_and_resets_no_connection() {
    for (name, rt) in runtimes() {
        rt.block_on(async {
            let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
            let addr = listener.local_addr().unwrap();
            let (stop, signal) = stop_signal();
            let server = epitome::spawn(
                serve(listener, app())
                    .with_graceful_shutdown(signal)
                    .into_future(),
            );

            // An idle keep-alive connection, and one that will send its second request
            // at the moment of the signal.
            let (idle, mut racing) = epitome::task::spawn_blocking(move || {
                let mut idle = std::net::TcpStream::connect(addr).unwrap();
                assert!(exchange(&mut idle, "/").ends_with("hello"));
                let mut racing = std::net::TcpStream::connect(addr).unwrap();
                assert!(exchange(&mut racing, "/").ends_with("hello"));
                (idle, racing)
            })
            .await
            .unwrap();
            // A connection that never sends anything.
            let silent = std::net::TcpStream::connect(addr).unwrap();
            // An HTTP/1 request in progress.
            let mut in_flight = std::net::TcpStream::connect(addr).unwrap();
            in_flight
                .write_all(b"GET /slow HTTP/1.1\r\nHost: x\r\n\r\n")
                .unwrap();
            // An HTTP/2 request in progress.
            let h2 = TcpStream::connect(addr).await.unwrap();
            let (mut sender, h2_conn) = hyper::client::conn::http2::Builder::new(Executor::new())
                .timer(Timer::new())
                .handshake::<_, Empty<Bytes>>(Io::new(h2))
                .await
                .unwrap();
            let h2_conn = epitome::spawn(h2_conn);
            let h2_request = epitome::spawn(async move {
                let req = Request::builder()
                    .uri(format!("http://{addr}/slow"))
                    .body(Empty::new())
                    .unwrap();
                let res = sender.send_request(req).await?;
                let status = res.status();
                let body = res.into_body().collect().await?.to_bytes();
                Ok::<_, hyper::Error>((status, body))
            });
            // Let the slow requests reach their handlers.
            epitome::time::sleep(Duration::from_millis(100)).await;

            // With no await in between (on the current-thread runtime, the server runs
            // only after all of this): a request on the idle-looking keep-alive
            // connection, a connection the server has not accepted yet with its request,
            // then the signal.
            racing
                .write_all(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
                .unwrap();
            let mut in_backlog = std::net::TcpStream::connect(addr).unwrap();
            in_backlog
                .write_all(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
                .unwrap();
            stop.abort();

            let readers: Vec<_> = [
                ("idle", idle),
                ("racing", racing),
                ("silent", silent),
                ("in flight", in_flight),
                ("in backlog", in_backlog),
            ]
            .into_iter()
            .map(|(what, s)| epitome::task::spawn_blocking(move || (what, read_to_close(s))))
            .collect();
            for r in readers {
                let (what, read) = r.await.unwrap();
                let text = read.unwrap_or_else(|e| panic!("{name}: {what}: {e}"));
                match what {
                    // Closed with a clean end of stream.
                    "idle" | "silent" => assert_eq!(text, "", "{name}: {what}"),
                    "in flight" => {
                        assert!(
                            text.starts_with("HTTP/1.1 200 OK"),
                            "{name}: {what}: {text}"
                        );
                        assert!(text.contains("connection: close"), "{name}: {what}: {text}");
                        assert!(text.ends_with("slow"), "{name}: {what}: {text}");
                    }
                    _ => {
                        assert!(
                            text.starts_with("HTTP/1.1 200 OK"),
                            "{name}: {what}: {text}"
                        );
                        assert!(text.ends_with("hello"), "{name}: {what}: {text}");
                    }
                }
            }
            let (status, body) = h2_request.await.unwrap().expect("the HTTP/2 request");
            assert_eq!(status, StatusCode::OK, "{name}");
            assert_eq!(&body[..], b"slow", "{name}");
            // The server's GOAWAY ends the client connection cleanly.
            h2_conn.await.unwrap().unwrap();
            epitome::time::timeout(Duration::from_secs(10), server)
                .await
                .expect("graceful shutdown hung")
                .unwrap()
                .unwrap();
            // The listener is closed.
            let err = TcpStream::connect(addr).await.unwrap_err();
            assert_eq!(err.kind(), std::io::ErrorKind::ConnectionRefused, "{name}");
        });
    }
}

#[test]
fn peer_addr_extension_without_connect_info() {
    use axum::Extension;
    use epitome::hyper::{PeerAddr, with_peer_addr};
    for (name, rt) in runtimes() {
        rt.block_on(async {
            let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
            let addr = listener.local_addr().unwrap();
            let app = Router::new().route(
                "/peer",
                get(|Extension(PeerAddr(peer)): Extension<PeerAddr>| async move { peer.to_string() }),
            );
            let (stop, signal) = stop_signal();
            let server = epitome::spawn(
                serve(listener, with_peer_addr(app))
                    .with_graceful_shutdown(signal)
                    .into_future(),
            );
            let (local, answer) = epitome::task::spawn_blocking(move || {
                let mut s = std::net::TcpStream::connect(addr).unwrap();
                (s.local_addr().unwrap(), exchange(&mut s, "/peer"))
            })
            .await
            .unwrap();
            assert!(answer.ends_with(&local.to_string()), "{name}: {answer}");
            stop.abort();
            server.await.unwrap().unwrap();
        });
    }
}
