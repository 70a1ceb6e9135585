//! hyper and axum on epitome: the `epitome::hyper` adapters under real servers and
//! clients, with no tokio runtime anywhere.

use std::convert::Infallible;
use std::io::{Read, Write};
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use bytes::Bytes;
use epitome::hyper::{Connector, Executor, Io, Timer};
use epitome::net::{TcpListener, TcpStream};
use epitome::runtime::{Builder, Runtime};
use http_body_util::{BodyExt, Empty, Full};
use hyper::body::Incoming;
use hyper::{Request, Response, StatusCode};
use hyper_util::client::legacy::Client;
use hyper_util::server::conn::auto;

#[path = "../examples/support/axum_routes.rs"]
mod axum_routes;

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

async fn hello(req: Request<Incoming>) -> Result<Response<Full<Bytes>>, Infallible> {
    if req.uri().path() == "/slow" {
        epitome::time::sleep(Duration::from_millis(300)).await;
    }
    Ok(Response::new(Full::new(Bytes::from_static(b"hello"))))
}

/// Serves `hello` with an auto (HTTP/1 + h2c) builder until the returned flag is set.
async fn start_server(header_timeout: Duration) -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    epitome::spawn(async move {
        let mut builder = auto::Builder::new(Executor::new());
        builder
            .http1()
            .timer(Timer::new())
            .header_read_timeout(header_timeout);
        builder
            .http2()
            .timer(Timer::new())
            .max_concurrent_streams(2_000);
        let builder = Arc::new(builder);
        loop {
            let Ok((stream, _)) = listener.accept().await else {
                continue;
            };
            let builder = builder.clone();
            epitome::spawn(async move {
                // A failing connection must never take the server down.
                let _ = builder
                    .serve_connection(Io::new(stream), hyper::service::service_fn(hello))
                    .await;
            });
        }
    });
    addr
}

/// Sends raw bytes on a std socket from a blocking thread and reads the answer.
fn raw_exchange(addr: SocketAddr, requests: usize) -> Vec<String> {
    let mut s = std::net::TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    let mut answers = Vec::new();
    for _ in 0..requests {
        s.write_all(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n").unwrap();
        let mut buf = vec![0u8; 1024];
        let n = s.read(&mut buf).unwrap();
        answers.push(String::from_utf8_lossy(&buf[..n]).into_owned());
    }
    answers
}

#[test]
fn http1_keep_alive_and_header_read_timeout() {
    for (name, rt) in runtimes() {
        rt.block_on(async {
            let timeout = Duration::from_millis(300);
            let addr = start_server(timeout).await;
            // Keep-alive: three requests on one connection.
            let answers = epitome::task::spawn_blocking(move || raw_exchange(addr, 3))
                .await
                .unwrap();
            for a in &answers {
                assert!(a.starts_with("HTTP/1.1 200 OK"), "{name}: {a}");
                assert!(a.ends_with("hello"), "{name}: {a}");
            }
            // A client that sends half a request head is cut off after the timeout,
            // not before.
            let closed_after = epitome::task::spawn_blocking(move || {
                let mut s = std::net::TcpStream::connect(addr).unwrap();
                s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
                let start = Instant::now();
                s.write_all(b"GET / HTTP/1.1\r\nHost: x\r\n").unwrap();
                let mut buf = [0u8; 1024];
                let _ = s.read(&mut buf); // 408 or plain close; then EOF
                loop {
                    match s.read(&mut buf) {
                        Ok(0) | Err(_) => break,
                        Ok(_) => {}
                    }
                }
                start.elapsed()
            })
            .await
            .unwrap();
            assert!(
                closed_after >= timeout,
                "{name}: closed after {closed_after:?}, before the timeout"
            );
        });
    }
}

#[test]
fn http2_prior_knowledge_with_1000_concurrent_streams() {
    for (name, rt) in runtimes() {
        rt.block_on(async {
            let addr = start_server(Duration::from_secs(10)).await;
            let stream = TcpStream::connect(addr).await.unwrap();
            let (sender, conn) = hyper::client::conn::http2::Builder::new(Executor::new())
                .timer(Timer::new())
                .handshake::<_, Empty<Bytes>>(Io::new(stream))
                .await
                .unwrap();
            epitome::spawn(async move {
                let _ = conn.await;
            });
            let ok = Arc::new(AtomicUsize::new(0));
            let mut tasks = Vec::new();
            for i in 0..1_000 {
                let mut sender = sender.clone();
                let ok = ok.clone();
                tasks.push(epitome::spawn(async move {
                    let path = if i % 10 == 0 { "/slow" } else { "/" };
                    let req = Request::builder()
                        .uri(format!("http://{addr}{path}"))
                        .body(Empty::new())
                        .unwrap();
                    let res = sender.send_request(req).await.expect("request");
                    assert_eq!(res.status(), StatusCode::OK);
                    assert_eq!(res.version(), hyper::Version::HTTP_2);
                    let body = res.into_body().collect().await.unwrap().to_bytes();
                    assert_eq!(&body[..], b"hello");
                    ok.fetch_add(1, Ordering::Relaxed);
                }));
            }
            for t in tasks {
                t.await.unwrap();
            }
            assert_eq!(ok.load(Ordering::Relaxed), 1_000, "{name}");
        });
    }
}

#[test]
fn legacy_client_with_epitome_connector() {
    for (name, rt) in runtimes() {
        rt.block_on(async {
            let addr = start_server(Duration::from_secs(10)).await;
            let client: Client<Connector, Empty<Bytes>> = Client::builder(Executor::new())
                .timer(Timer::new())
                .pool_timer(Timer::new())
                .build(Connector::new());
            for _ in 0..20 {
                let res = client
                    .get(format!("http://{addr}/").parse().unwrap())
                    .await
                    .unwrap();
                assert_eq!(res.status(), StatusCode::OK, "{name}");
                let body = res.into_body().collect().await.unwrap().to_bytes();
                assert_eq!(&body[..], b"hello");
            }
            // https is refused with a clear error rather than a hang.
            let err = client
                .get("https://127.0.0.1:1/".parse().unwrap())
                .await
                .unwrap_err();
            assert!(err.is_connect(), "{name}: {err:?}");
        });
    }
}

#[test]
fn axum_routes_on_epitome() {
    for (name, rt) in runtimes() {
        rt.block_on(async {
            let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
            let addr = listener.local_addr().unwrap();
            let app = axum_routes::app().into_make_service_with_connect_info::<SocketAddr>();
            epitome::spawn(epitome::hyper::serve(listener, app).into_future());
            let client: Client<Connector, Full<Bytes>> = Client::builder(Executor::new())
                .timer(Timer::new())
                .build(Connector::new());
            let get = |path: &str| {
                Request::builder()
                    .uri(format!("http://{addr}{path}"))
                    .body(Full::new(Bytes::new()))
                    .unwrap()
            };
            let res = client.request(get("/")).await.unwrap();
            assert_eq!(res.status(), StatusCode::OK, "{name}");
            let body = res.into_body().collect().await.unwrap().to_bytes();
            assert_eq!(&body[..], b"Hello from axum on epitome\n");

            let item = axum_routes::Item {
                name: "milk".into(),
                qty: 2,
            };
            let post = Request::builder()
                .method("POST")
                .uri(format!("http://{addr}/items"))
                .header("content-type", "application/json")
                .body(Full::new(Bytes::from(serde_json::to_vec(&item).unwrap())))
                .unwrap();
            let res = client.request(post).await.unwrap();
            assert_eq!(res.status(), StatusCode::CREATED);
            let created: serde_json::Value =
                serde_json::from_slice(&res.into_body().collect().await.unwrap().to_bytes())
                    .unwrap();
            assert_eq!(created["id"], 0);

            let res = client.request(get("/items")).await.unwrap();
            let items: Vec<axum_routes::Item> =
                serde_json::from_slice(&res.into_body().collect().await.unwrap().to_bytes())
                    .unwrap();
            assert_eq!(items, vec![item.clone()]);

            let res = client.request(get("/items/0")).await.unwrap();
            let one: axum_routes::Item =
                serde_json::from_slice(&res.into_body().collect().await.unwrap().to_bytes())
                    .unwrap();
            assert_eq!(one, item);

            let res = client.request(get("/items/7")).await.unwrap();
            assert_eq!(res.status(), StatusCode::NOT_FOUND);

            // The peer address, through ConnectInfo: the client's local address.
            let res = client.request(get("/whoami")).await.unwrap();
            let body = res.into_body().collect().await.unwrap().to_bytes();
            let peer: SocketAddr = std::str::from_utf8(&body).unwrap().trim().parse().unwrap();
            assert_eq!(peer.ip(), addr.ip(), "{name}");
        });
    }
}

#[test]
fn graceful_shutdown_finishes_in_flight_and_refuses_new() {
    for (name, rt) in runtimes() {
        rt.block_on(async {
            let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
            let addr = listener.local_addr().unwrap();
            let (stop_signal, stop) = futures_util::future::abortable(std::future::pending::<()>());
            let server = epitome::spawn(async move {
                let builder = auto::Builder::new(Executor::new());
                let graceful = hyper_util::server::graceful::GracefulShutdown::new();
                let mut stop_signal = std::pin::pin!(stop_signal);
                loop {
                    let accept = std::pin::pin!(listener.accept());
                    match futures_util::future::select(accept, stop_signal.as_mut()).await {
                        futures_util::future::Either::Left((Ok((stream, _)), _)) => {
                            let conn = builder.serve_connection(
                                Io::new(stream),
                                hyper::service::service_fn(hello),
                            );
                            let conn = graceful.watch(conn.into_owned());
                            epitome::spawn(async move {
                                let _ = conn.await;
                            });
                        }
                        futures_util::future::Either::Left((Err(_), _)) => {}
                        futures_util::future::Either::Right(_) => break,
                    }
                }
                drop(listener);
                graceful.shutdown().await;
            });
            let client: Client<Connector, Empty<Bytes>> = Client::builder(Executor::new())
                .timer(Timer::new())
                .build(Connector::new());
            let in_flight = {
                let client = client.clone();
                epitome::spawn(async move {
                    client
                        .get(format!("http://{addr}/slow").parse().unwrap())
                        .await
                })
            };
            // Let the slow request reach the handler, then shut down.
            epitome::time::sleep(Duration::from_millis(100)).await;
            stop.abort();
            let res = in_flight
                .await
                .unwrap()
                .expect("the in-flight request must finish");
            assert_eq!(res.status(), StatusCode::OK, "{name}");
            let body = res.into_body().collect().await.unwrap().to_bytes();
            assert_eq!(&body[..], b"hello");
            epitome::time::timeout(Duration::from_secs(10), server)
                .await
                .expect("graceful shutdown hung")
                .unwrap();
            // The listener is gone: new connections are refused.
            let err = TcpStream::connect(addr).await.unwrap_err();
            assert_eq!(err.kind(), std::io::ErrorKind::ConnectionRefused, "{name}");
        });
    }
}
