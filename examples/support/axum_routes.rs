//! The axum application of the `axum_app` example; shared with the tests.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use axum::extract::{ConnectInfo, Path, State};
use axum::http::StatusCode;
use axum::routing::get;
use axum::{Json, Router};
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

async fn whoami(ConnectInfo(peer): ConnectInfo<SocketAddr>) -> String {
    format!("{peer}\n")
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

/// The Router: `/`, `/whoami` (the peer address: serve it with
/// `into_make_service_with_connect_info::<SocketAddr>()`), `GET /items`, `POST /items`
/// (JSON), `GET /items/{id}`.
pub fn app() -> Router {
    Router::new()
        .route("/", get(root))
        .route("/whoami", get(whoami))
        .route("/items", get(list).post(create))
        .route("/items/{id}", get(get_one))
        .with_state(AppState::default())
}
