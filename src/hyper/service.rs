//! What [`serve`](super::serve) accepts as the application: a service, or a
//! make-service called with each connection's peer address.

use std::future::Future;
use std::task::{Context, Poll};

use hyper::body::{Body, Incoming};
use hyper::{Request, Response};
use hyper_util::service::TowerToHyperService;

/// The error type `serve` boxes services' errors into.
pub type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// Something [`serve`](super::serve) can serve connections with; `Marker` says which of
/// the three kinds it is, so that the one `serve` function takes all three (the compiler
/// picks the marker; you never name it):
///
/// - [`ViaTower`]: a tower `Service<Request<Incoming>>` that is `Clone`, such as an axum
///   `Router`; cloned for each connection.
/// - [`ViaMakeService`]: a tower make-service, called with the peer address for each
///   connection and answering the connection's service, such as axum's
///   `router.into_make_service_with_connect_info::<SocketAddr>()` (which is how axum's
///   `ConnectInfo<SocketAddr>` extractor gets the peer address) or `into_make_service()`.
/// - [`ViaHyper`]: a hyper `Service` that is `Clone`, such as `hyper::service::service_fn`.
pub trait IntoConnectionService<Addr, Marker>: Send + 'static {
    /// The hyper service one connection is served with.
    type Service: hyper::service::Service<
            Request<Incoming>,
            Response = Response<Self::Body>,
            Error: Into<BoxError>,
            Future: Send + 'static,
        > + Send
        + 'static;
    /// The response body.
    type Body: Body<Data: Send, Error: Into<BoxError>> + Send + 'static;

    /// Waits until a connection's service can be made (a make-service's `poll_ready`).
    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), BoxError>>;

    /// The service for a connection from `peer`.
    fn connection_service(
        &mut self,
        peer: &Addr,
    ) -> impl Future<Output = Result<Self::Service, BoxError>> + Send + 'static;
}

/// Marks a tower service cloned for each connection (see [`IntoConnectionService`]).
#[derive(Debug)]
pub enum ViaTower {}

/// Marks a tower make-service called with each peer address (see
/// [`IntoConnectionService`]).
#[derive(Debug)]
pub enum ViaMakeService {}

/// Marks a hyper service cloned for each connection (see [`IntoConnectionService`]).
#[derive(Debug)]
pub enum ViaHyper {}

impl<S, B, A> IntoConnectionService<A, ViaTower> for S
where
    S: tower_service::Service<Request<Incoming>, Response = Response<B>> + Clone + Send + 'static,
    S::Future: Send + 'static,
    S::Error: Into<BoxError>,
    B: Body<Data: Send, Error: Into<BoxError>> + Send + 'static,
{
    type Service = TowerToHyperService<S>;
    type Body = B;

    fn poll_ready(&mut self, _cx: &mut Context<'_>) -> Poll<Result<(), BoxError>> {
        Poll::Ready(Ok(()))
    }

    fn connection_service(
        &mut self,
        _peer: &A,
    ) -> impl Future<Output = Result<Self::Service, BoxError>> + Send + 'static {
        std::future::ready(Ok(TowerToHyperService::new(self.clone())))
    }
}

impl<M, S, B, A> IntoConnectionService<A, ViaMakeService> for M
where
    M: tower_service::Service<A, Response = S> + Send + 'static,
    M::Future: Send + 'static,
    M::Error: Into<BoxError>,
    A: Clone,
    S: tower_service::Service<Request<Incoming>, Response = Response<B>> + Clone + Send + 'static,
    S::Future: Send + 'static,
    S::Error: Into<BoxError>,
    B: Body<Data: Send, Error: Into<BoxError>> + Send + 'static,
{
    type Service = TowerToHyperService<S>;
    type Body = B;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), BoxError>> {
        tower_service::Service::poll_ready(self, cx).map_err(Into::into)
    }

    fn connection_service(
        &mut self,
        peer: &A,
    ) -> impl Future<Output = Result<Self::Service, BoxError>> + Send + 'static {
        let made = self.call(peer.clone());
        async move { made.await.map(TowerToHyperService::new).map_err(Into::into) }
    }
}

impl<S, B, A> IntoConnectionService<A, ViaHyper> for S
where
    S: hyper::service::Service<Request<Incoming>, Response = Response<B>> + Clone + Send + 'static,
    S::Future: Send + 'static,
    S::Error: Into<BoxError>,
    B: Body<Data: Send, Error: Into<BoxError>> + Send + 'static,
{
    type Service = S;
    type Body = B;

    fn poll_ready(&mut self, _cx: &mut Context<'_>) -> Poll<Result<(), BoxError>> {
        Poll::Ready(Ok(()))
    }

    fn connection_service(
        &mut self,
        _peer: &A,
    ) -> impl Future<Output = Result<Self::Service, BoxError>> + Send + 'static {
        std::future::ready(Ok(self.clone()))
    }
}
