//! Running crates that need tokio's runtime on epitome: the supported bridge.
//!
//! Some crates call into tokio's runtime themselves: tower-http's `TimeoutLayer` makes a
//! `tokio::time::Sleep`, reqwest, tonic and sqlx open `tokio::net` sockets. On epitome
//! there is no tokio runtime, and they panic at run time with "there is no reactor
//! running, must be called from the context of a Tokio 1.x runtime".
//!
//! The bridge is smol-rs's [`async-compat`](https://docs.rs/async-compat): [`Compat`]
//! wraps a future (or an I/O object) and enters a tokio runtime's context around every
//! poll of it: the caller's, or else a single-threaded tokio runtime that async-compat
//! starts on a background thread the first time it is needed. The future itself still
//! runs on epitome's worker; only the tokio resources it creates (timers, sockets) are
//! driven by that thread, which wakes the epitome task when they are ready.
//!
//! - A future: `Compat::new(fut)` or `fut.compat()` ([`CompatExt`]).
//! - A tower service or axum route: [`CompatLayer`], which also enters the context
//!   around `poll_ready` and `call` (where tower-http's `Timeout` makes its timer).
//! - Spawning a tokio-bound background task: [`tokio_handle`]`().spawn(...)`.
//!
//! `docs/tokio-bound-crates.md` in the repository lists known tokio-bound crates and
//! what to do for each. The cost: one more thread, and a cross-thread wakeup for each
//! tokio resource that becomes ready. Code that epitome serves natively (its own
//! sockets and timers, hyper, axum) needs no bridge.
//!
//! ```
//! use epitome::compat::CompatExt;
//!
//! let rt = epitome::runtime::Builder::new_current_thread().build().unwrap();
//! rt.block_on(async {
//!     // A tokio timer: without `.compat()` this panics ("there is no reactor running").
//!     // The timer is made inside the wrapped future, where the context is entered.
//!     async { tokio::time::sleep(std::time::Duration::from_millis(1)).await }
//!         .compat()
//!         .await;
//! });
//! ```

use std::future::Future;
use std::pin::pin;
use std::sync::OnceLock;
use std::task::{Context, Poll, Waker};

pub use async_compat::{Compat, CompatExt};

/// The handle of the tokio runtime [`Compat`] enters: async-compat's background runtime
/// (made on first use), so tokio-bound tasks can be spawned on it.
///
/// ```
/// let rt = epitome::runtime::Builder::new_current_thread().build().unwrap();
/// rt.block_on(async {
///     let task = epitome::compat::tokio_handle().spawn(async {
///         tokio::time::sleep(std::time::Duration::from_millis(1)).await;
///         7
///     });
///     // A tokio JoinHandle is a plain future: epitome can await it.
///     assert_eq!(task.await.unwrap(), 7);
/// });
/// ```
pub fn tokio_handle() -> tokio::runtime::Handle {
    static HANDLE: OnceLock<tokio::runtime::Handle> = OnceLock::new();
    HANDLE
        .get_or_init(|| {
            // `Compat` enters its runtime's context around each poll, so a future polled
            // through it finds that runtime's handle (async-compat keeps the runtime
            // private).
            let probe = pin!(Compat::new(async { tokio::runtime::Handle::current() }));
            match probe.poll(&mut Context::from_waker(Waker::noop())) {
                Poll::Ready(handle) => handle,
                Poll::Pending => unreachable!("an async block with no await is ready at once"),
            }
        })
        .clone()
}

/// A tower `Layer` that runs the services it wraps inside the tokio context of
/// [`Compat`]: their `poll_ready`, their `call` and the futures `call` returns.
///
/// Put it outside the tokio-bound layers, so it wraps them:
///
/// ```
/// use std::time::Duration;
/// use axum::{Router, routing::get};
/// use tower_http::timeout::TimeoutLayer;
///
/// let app: Router = Router::new()
///     .route("/", get(|| async { "hello" }))
///     .layer(TimeoutLayer::with_status_code(
///         axum::http::StatusCode::REQUEST_TIMEOUT,
///         Duration::from_secs(10),
///     ))
///     .layer(epitome::compat::CompatLayer::new());
/// ```
#[derive(Clone, Copy, Debug, Default)]
pub struct CompatLayer {
    _private: (),
}

impl CompatLayer {
    /// The layer.
    pub fn new() -> CompatLayer {
        CompatLayer { _private: () }
    }
}

impl<S> tower_layer::Layer<S> for CompatLayer {
    type Service = CompatService<S>;

    fn layer(&self, inner: S) -> CompatService<S> {
        CompatService {
            inner,
            handle: tokio_handle(),
        }
    }
}

/// The service [`CompatLayer`] makes.
#[derive(Clone, Debug)]
pub struct CompatService<S> {
    inner: S,
    handle: tokio::runtime::Handle,
}

impl<S> CompatService<S> {
    /// Wraps `inner`.
    pub fn new(inner: S) -> CompatService<S> {
        CompatService {
            inner,
            handle: tokio_handle(),
        }
    }

    /// The wrapped service.
    pub fn into_inner(self) -> S {
        self.inner
    }
}

impl<S, R> tower_service::Service<R> for CompatService<S>
where
    S: tower_service::Service<R>,
{
    type Response = S::Response;
    type Error = S::Error;
    type Future = Compat<S::Future>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), S::Error>> {
        let _tokio = self.handle.enter();
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, req: R) -> Compat<S::Future> {
        let _tokio = self.handle.enter();
        Compat::new(self.inner.call(req))
    }
}
