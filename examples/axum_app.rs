//! An axum application served on epitome (no tokio runtime): a Router with JSON in and
//! out, shared state and the peer address (`ConnectInfo`), served by
//! `epitome::hyper::serve` (HTTP/1 and HTTP/2) with a graceful shutdown on Ctrl-C.
//!
//! ```sh
//! cargo run --release --features hyper,signal,macros --example axum_app -- --addr 127.0.0.1:8081
//! curl http://127.0.0.1:8081/ ; curl http://127.0.0.1:8081/whoami
//! curl -X POST -H 'content-type: application/json' -d '{"name":"milk","qty":2}' http://127.0.0.1:8081/items
//! curl http://127.0.0.1:8081/items ; curl http://127.0.0.1:8081/items/0
//! ```

use std::net::SocketAddr;

#[path = "support/axum_routes.rs"]
mod axum_routes;

#[epitome::main]
async fn main() -> std::io::Result<()> {
    let addr = match std::env::args().skip(1).collect::<Vec<_>>().as_slice() {
        [flag, addr] if flag == "--addr" => addr.clone(),
        _ => "127.0.0.1:8081".to_string(),
    };
    let listener = epitome::net::TcpListener::bind(addr.as_str()).await?;
    println!("listening on http://{}", listener.local_addr()?);
    let app = axum_routes::app().into_make_service_with_connect_info::<SocketAddr>();
    epitome::hyper::serve(listener, app)
        .with_graceful_shutdown(async { drop(epitome::signal::ctrl_c().await) })
        .await
}
