//! An axum application served on epitome (no tokio runtime): a Router with a few
//! routes, JSON in and out, and shared state, served connection by connection through
//! hyper-util's `auto::Builder` with epitome's executor, timer and I/O.
//!
//! ```sh
//! cargo run --release --features hyper --example axum_app -- --addr 127.0.0.1:8081
//! curl http://127.0.0.1:8081/
//! curl -X POST -H 'content-type: application/json' -d '{"name":"milk","qty":2}' http://127.0.0.1:8081/items
//! curl http://127.0.0.1:8081/items ; curl http://127.0.0.1:8081/items/0
//! ```

#[path = "support/axum_routes.rs"]
mod axum_routes;

fn main() -> std::io::Result<()> {
    let mut addr = "127.0.0.1:8081".to_string();
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        match a.as_str() {
            "--addr" => addr = args.next().expect("--addr needs a value"),
            other => panic!("unknown argument {other}"),
        }
    }
    let rt = epitome::runtime::Builder::new_multi_reactor().build()?;
    rt.block_on(async move {
        let listener = epitome::net::TcpListener::bind(addr.as_str()).await?;
        println!("listening on http://{}", listener.local_addr()?);
        axum_routes::serve(listener, axum_routes::app()).await
    })
}
