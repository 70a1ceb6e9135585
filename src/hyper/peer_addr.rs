//! The peer address as a request extension, for services that cannot use axum's
//! `ConnectInfo` (which axum compiles only with its `tokio` feature).

use std::convert::Infallible;
use std::future::Ready;
use std::task::{Context, Poll};

use hyper::Request;

/// The address of the peer a request came from, in the request's extensions when the
/// service is wrapped with [`with_peer_addr`]. In axum: `Extension(PeerAddr(peer)):
/// Extension<PeerAddr>`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct PeerAddr<A = std::net::SocketAddr>(pub A);

/// Wraps a tower service (an axum `Router`) so that [`serve`](super::serve) puts each
/// connection's peer address into every request's extensions as [`PeerAddr`].
///
/// axum's own `ConnectInfo` works too (`router.into_make_service_with_connect_info::<SocketAddr>()`),
/// but axum compiles it only with its `tokio` feature, which brings tokio's networking
/// code; this works with `axum = { default-features = false, ... }`.
///
/// ```
/// use axum::{Extension, Router, routing::get};
/// use epitome::hyper::{PeerAddr, serve, with_peer_addr};
///
/// async fn hello(Extension(PeerAddr(peer)): Extension<PeerAddr>) -> String {
///     format!("hello, {peer}\n")
/// }
///
/// # fn main() -> std::io::Result<()> {
/// # let rt = epitome::runtime::Builder::new_current_thread().build()?;
/// # rt.block_on(async {
/// let app = Router::new().route("/", get(hello));
/// let listener = epitome::net::TcpListener::bind("127.0.0.1:0").await?;
/// serve(listener, with_peer_addr(app))
///     # .with_graceful_shutdown(async {})
///     .await
/// # })
/// # }
/// ```
pub fn with_peer_addr<S>(service: S) -> WithPeerAddr<S> {
    WithPeerAddr(service)
}

/// The make-service [`with_peer_addr`] returns.
#[derive(Clone, Debug)]
pub struct WithPeerAddr<S>(S);

impl<S: Clone, A> tower_service::Service<A> for WithPeerAddr<S> {
    type Response = AddPeerAddr<S, A>;
    type Error = Infallible;
    type Future = Ready<Result<AddPeerAddr<S, A>, Infallible>>;

    fn poll_ready(&mut self, _cx: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, peer: A) -> Self::Future {
        std::future::ready(Ok(AddPeerAddr {
            inner: self.0.clone(),
            peer,
        }))
    }
}

/// One connection's service: inserts [`PeerAddr`] into each request.
#[derive(Clone, Debug)]
pub struct AddPeerAddr<S, A> {
    inner: S,
    peer: A,
}

impl<S, A, B> tower_service::Service<Request<B>> for AddPeerAddr<S, A>
where
    S: tower_service::Service<Request<B>>,
    A: Clone + Send + Sync + 'static,
{
    type Response = S::Response;
    type Error = S::Error;
    type Future = S::Future;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), S::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, mut req: Request<B>) -> S::Future {
        req.extensions_mut().insert(PeerAddr(self.peer.clone()));
        self.inner.call(req)
    }
}
