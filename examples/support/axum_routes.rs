//! The axum application of the `axum_app` example, and how to serve a Router on
//! epitome; shared with the tests.

use std::sync::{Arc, Mutex};

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::routing::get;
use axum::{Json, Router};
use epitome::hyper::{Executor, Io, Timer};
use epitome::net::TcpListener;
use hyper_util::server::conn::auto;
use hyper_util::service::TowerToHyperService;
use serde::{Deserialize, Serialize};

#[derive(Clone, Debug, Deserialize, Serialize, PartialEq)]
pub struct Item {
    pub name: String,
    pub qty: u32,
}

#[derive(Clone, Default)]
pub struct AppState {
    items: Arc<Mutex<Vec<Item>>>,
}

async fn root() -> &'static str {
    "Hello from axum on epitome\n"
}

async fn list(State(state): State<AppState>) -> Json<Vec<Item>> {
    Json(state.items.lock().unwrap().clone())
}

async fn create(
    State(state): State<AppState>,
    Json(item): Json<Item>,
) -> (StatusCode, Json<serde_json::Value>) {
    let mut items = state.items.lock().unwrap();
    items.push(item);
    (
        StatusCode::CREATED,
        Json(serde_json::json!({ "id": items.len() - 1 })),
    )
}

async fn get_one(
    State(state): State<AppState>,
    Path(id): Path<usize>,
) -> Result<Json<Item>, StatusCode> {
    state
        .items
        .lock()
        .unwrap()
        .get(id)
        .cloned()
        .map(Json)
        .ok_or(StatusCode::NOT_FOUND)
}

/// The Router: `/`, `GET /items`, `POST /items` (JSON), `GET /items/{id}`.
pub fn app() -> Router {
    Router::new()
        .route("/", get(root))
        .route("/items", get(list).post(create))
        .route("/items/{id}", get(get_one))
        .with_state(AppState::default())
}

/// Serves `app` on `listener` until the listener fails: one task per connection,
/// HTTP/1 or HTTP/2 detected per connection.
pub async fn serve(listener: TcpListener, app: Router) -> std::io::Result<()> {
    let mut builder = auto::Builder::new(Executor::new());
    builder.http1().timer(Timer::new());
    builder.http2().timer(Timer::new());
    let builder = Arc::new(builder);
    loop {
        let (stream, _) = match listener.accept().await {
            Ok(s) => s,
            Err(e) => {
                eprintln!("accept: {e}");
                continue;
            }
        };
        stream.set_nodelay(true)?;
        let builder = builder.clone();
        let service = TowerToHyperService::new(app.clone());
        epitome::spawn(async move {
            if let Err(e) = builder
                .serve_connection_with_upgrades(Io::new(stream), service)
                .await
            {
                eprintln!("connection: {e}");
            }
        });
    }
}
