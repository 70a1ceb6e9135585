//! The client half: a connector for hyper-util's legacy `Client`.

use std::future::Future;
use std::io;
use std::pin::Pin;
use std::task::{Context, Poll};

use epitome_net::TcpStream;

use super::Io;

impl hyper_util::client::legacy::connect::Connection for Io<TcpStream> {
    fn connected(&self) -> hyper_util::client::legacy::connect::Connected {
        hyper_util::client::legacy::connect::Connected::new()
    }
}

/// A connector for hyper-util's legacy `Client`: resolves the URI's host (on the
/// blocking pool for names) and connects with epitome's `TcpStream` (`TCP_NODELAY` on).
/// Plain `http` only; TLS belongs to a TLS connector wrapping this one.
#[derive(Clone, Debug, Default)]
pub struct Connector {
    _private: (),
}

impl Connector {
    /// A connector.
    pub fn new() -> Connector {
        Connector { _private: () }
    }
}

impl tower_service::Service<http::Uri> for Connector {
    type Response = Io<TcpStream>;
    type Error = io::Error;
    type Future = Pin<Box<dyn Future<Output = io::Result<Io<TcpStream>>> + Send>>;

    fn poll_ready(&mut self, _cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, uri: http::Uri) -> Self::Future {
        Box::pin(async move {
            match uri.scheme_str() {
                Some("http") | None => {}
                Some(other) => {
                    return Err(io::Error::new(
                        io::ErrorKind::Unsupported,
                        format!("the epitome connector speaks plain http, not {other}"),
                    ));
                }
            }
            let host = uri
                .host()
                .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidInput, "URI has no host"))?
                .trim_start_matches('[')
                .trim_end_matches(']')
                .to_string();
            let port = uri.port_u16().unwrap_or(80);
            let stream = TcpStream::connect((host, port)).await?;
            stream.set_nodelay(true)?;
            Ok(Io::new(stream))
        })
    }
}
