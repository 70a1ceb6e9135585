//! An HTTP server with hyper on epitome: HTTP/1 and HTTP/2 (h2c) auto-detected through
//! hyper-util's `auto::Builder`, a 10-second header-read timeout, and graceful shutdown
//! on Ctrl-C through hyper-util's `GracefulShutdown` (in-flight requests finish, new
//! connections are refused).
//!
//! ```sh
//! cargo run --release --features hyper --example hyper_server -- --addr 127.0.0.1:8080 --reactors 2
//! curl http://127.0.0.1:8080/ ; curl --http2-prior-knowledge http://127.0.0.1:8080/
//! ```

use std::convert::Infallible;
use std::time::Duration;

use bytes::Bytes;
use epitome::hyper::{Executor, Io, Timer};
use epitome::net::TcpListener;
use http_body_util::Full;
use hyper::body::Incoming;
use hyper::{Request, Response};
use hyper_util::server::conn::auto;
use hyper_util::server::graceful::GracefulShutdown;

async fn hello(req: Request<Incoming>) -> Result<Response<Full<Bytes>>, Infallible> {
    let body = format!(
        "Hello from epitome over {:?}, path {}\n",
        req.version(),
        req.uri().path()
    );
    Ok(Response::new(Full::new(Bytes::from(body))))
}

fn main() -> std::io::Result<()> {
    let mut addr = "127.0.0.1:8080".to_string();
    let mut reactors = 0usize;
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        match a.as_str() {
            "--addr" => addr = args.next().expect("--addr needs a value"),
            "--reactors" => {
                reactors = args
                    .next()
                    .and_then(|v| v.parse().ok())
                    .expect("--reactors needs a number")
            }
            other => panic!("unknown argument {other}"),
        }
    }
    let rt = if reactors == 0 {
        epitome::runtime::Builder::new_current_thread().build()?
    } else {
        epitome::runtime::Builder::new_multi_reactor()
            .reactors(reactors)
            .build()?
    };
    rt.block_on(async move {
        let listener = TcpListener::bind(addr.as_str()).await?;
        println!("listening on http://{}", listener.local_addr()?);
        let mut builder = auto::Builder::new(Executor::new());
        builder
            .http1()
            .timer(Timer::new())
            .header_read_timeout(Duration::from_secs(10));
        builder.http2().timer(Timer::new());
        let graceful = GracefulShutdown::new();
        let mut signal = std::pin::pin!(epitome::signal::ctrl_c());
        loop {
            let accepted = {
                let accept = std::pin::pin!(listener.accept());
                match futures_util::future::select(accept, signal.as_mut()).await {
                    futures_util::future::Either::Left((res, _)) => res,
                    futures_util::future::Either::Right(_) => {
                        println!("shutting down: letting in-flight requests finish");
                        break;
                    }
                }
            };
            let (stream, _) = match accepted {
                Ok(s) => s,
                Err(e) => {
                    eprintln!("accept: {e}");
                    continue;
                }
            };
            stream.set_nodelay(true)?;
            let conn = builder
                .serve_connection_with_upgrades(Io::new(stream), hyper::service::service_fn(hello));
            let conn = graceful.watch(conn.into_owned());
            epitome::spawn(async move {
                if let Err(e) = conn.await {
                    eprintln!("connection: {e}");
                }
            });
        }
        drop(listener);
        match epitome::time::timeout(Duration::from_secs(10), graceful.shutdown()).await {
            Ok(()) => println!("all connections closed"),
            Err(_) => println!("timed out waiting for connections to close"),
        }
        Ok(())
    })
}
