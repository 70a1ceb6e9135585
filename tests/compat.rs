//! `epitome::compat`: a tokio-bound tower layer (tower-http's `TimeoutLayer`, whose
//! timer is tokio's) on an axum route served by `epitome::hyper::serve`, through the
//! bridge; and what happens without it.

use std::io::{Read, Write};
use std::net::SocketAddr;
use std::time::Duration;

use axum::Router;
use axum::http::StatusCode;
use axum::routing::get;
use epitome::compat::{CompatExt, CompatLayer};
use epitome::hyper::serve;
use epitome::net::TcpListener;
use epitome::runtime::{Builder, Runtime};
use tower_http::timeout::TimeoutLayer;

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

fn app(bridge: bool) -> Router {
    let router = Router::new()
        .route("/fast", get(|| async { "fast" }))
        .route(
            "/slow",
            get(|| async {
                epitome::time::sleep(Duration::from_secs(5)).await;
                "slow"
            }),
        )
        .layer(TimeoutLayer::with_status_code(
            StatusCode::REQUEST_TIMEOUT,
            Duration::from_millis(200),
        ));
    if bridge {
        router.layer(CompatLayer::new())
    } else {
        router
    }
}

/// One request with `Connection: close`; the whole answer, or what ended the read.
fn request(addr: SocketAddr, path: &str) -> std::io::Result<String> {
    let mut s = std::net::TcpStream::connect(addr)?;
    s.set_read_timeout(Some(Duration::from_secs(10)))?;
    s.write_all(format!("GET {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n").as_bytes())?;
    let mut all = String::new();
    s.read_to_string(&mut all)?;
    Ok(all)
}

async fn serve_app(bridge: bool) -> (SocketAddr, futures_util::future::AbortHandle) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let (signal, stop) = futures_util::future::abortable(std::future::pending::<()>());
    epitome::spawn(
        serve(listener, app(bridge))
            .with_graceful_shutdown(async move {
                let _ = signal.await;
            })
            .into_future(),
    );
    (addr, stop)
}

#[test]
fn tower_http_timeout_works_through_the_compat_layer() {
    for (name, rt) in runtimes() {
        rt.block_on(async {
            let (addr, stop) = serve_app(true).await;
            let (fast, slow) = epitome::task::spawn_blocking(move || {
                (
                    request(addr, "/fast").unwrap(),
                    request(addr, "/slow").unwrap(),
                )
            })
            .await
            .unwrap();
            assert!(fast.starts_with("HTTP/1.1 200 OK"), "{name}: {fast}");
            assert!(fast.ends_with("fast"), "{name}: {fast}");
            // The tokio timer fired (on async-compat's runtime) and the layer answered.
            assert!(slow.starts_with("HTTP/1.1 408"), "{name}: {slow}");
            stop.abort();
        });
    }
}

#[test]
fn without_the_bridge_the_tokio_timer_fails_the_request() {
    let rt = Builder::new_current_thread().build().unwrap();
    rt.block_on(async {
        let (addr, stop) = serve_app(false).await;
        // The layer panics ("there is no reactor running") in the connection's task:
        // the client gets no response, and the server goes on.
        let answer = epitome::task::spawn_blocking(move || request(addr, "/fast"))
            .await
            .unwrap();
        assert!(
            !answer.as_deref().unwrap_or("").starts_with("HTTP/1.1"),
            "{answer:?}"
        );
        stop.abort();
    });
}

#[test]
fn compat_future_and_tokio_handle() {
    let rt = Builder::new_current_thread().build().unwrap();
    rt.block_on(async {
        // A tokio timer awaited on epitome, made and polled inside `.compat()`.
        async { tokio::time::sleep(Duration::from_millis(5)).await }
            .compat()
            .await;
        let task = epitome::compat::tokio_handle().spawn(async {
            tokio::time::sleep(Duration::from_millis(5)).await;
            "done"
        });
        assert_eq!(task.await.unwrap(), "done");
    });
}
