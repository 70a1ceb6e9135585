//! What the hyper and axum contenders serve, shared by both runtimes so the two
//! sides of a pair run the same code: the hyper service and its connection builder,
//! and the axum Router.

use std::convert::Infallible;
use std::time::Duration;

use axum::Router;
use axum::routing::get;
use bytes::Bytes;
use http_body_util::Full;
use hyper::body::Incoming;
use hyper::header::{CONTENT_TYPE, HeaderValue};
use hyper::{Request, Response};
use hyper_util::server::conn::auto;

use super::BODY;

/// The header-read timeout of the `hyper_server` example. With a timer set, hyper
/// arms it at every request head it waits for, so both hyper contenders pay for one
/// timer per request, each on its own runtime's timer.
pub const HEADER_READ_TIMEOUT: Duration = Duration::from_secs(10);

/// The hyper contenders' service: [`BODY`] as `text/plain`, whatever the request.
pub async fn hello(_req: Request<Incoming>) -> Result<Response<Full<Bytes>>, Infallible> {
    let mut response = Response::new(Full::new(Bytes::from_static(BODY.as_bytes())));
    response
        .headers_mut()
        .insert(CONTENT_TYPE, HeaderValue::from_static("text/plain"));
    Ok(response)
}

/// The hyper contenders' connection builder, configured as the `hyper_server`
/// example configures it: HTTP/1 and HTTP/2 (h2c) detected per connection, `timer`
/// for both, and [`HEADER_READ_TIMEOUT`] for HTTP/1 heads. (The example's graceful
/// shutdown is left out: the report kills its servers.)
pub fn hyper_builder<E, T>(executor: E, timer: T) -> auto::Builder<E>
where
    T: hyper::rt::Timer + Clone + Send + Sync + 'static,
{
    let mut builder = auto::Builder::new(executor);
    builder
        .http1()
        .timer(timer.clone())
        .header_read_timeout(HEADER_READ_TIMEOUT);
    builder.http2().timer(timer);
    builder
}

/// The axum contenders' Router: `GET /` answers [`BODY`] (axum sends a `&str` as
/// `text/plain; charset=utf-8`); other paths are 404.
pub fn router() -> Router {
    Router::new().route("/", get(|| async { BODY }))
}
