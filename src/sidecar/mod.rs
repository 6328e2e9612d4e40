//! The in-process Dapr sidecar: per app, Dapr's HTTP API on 127.0.0.1 at its `DAPR_HTTP_PORT`.
//! The port a request arrives on says which app-id is calling; all apps share the component
//! instances (and so the Redis connection pools).
//!
//! How a request flows: trailing slash stripped → `dapr-api-token` checked (when
//! `DAPR_API_TOKEN` is set; health exempt) → route → handler → `Traceparent` added to the
//! response. Unknown routes answer as Dapr does (its service-invocation fallback).

mod error;
mod keys;
mod state_api;
mod transaction;

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use axum::extract::{Request, State};
use axum::http::{HeaderValue, StatusCode};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Router, ServiceExt};
use tower::Layer;

pub use error::ApiError;

use crate::components::stores::StateEntry;

/// What one app's sidecar serves.
pub struct SidecarState {
    pub app_id: String,
    pub stores: Arc<BTreeMap<String, StateEntry>>,
    /// `DAPR_API_TOKEN`, when set.
    pub api_token: Option<String>,
    pub max_body_size: usize,
}

/// Dapr's HTTP API as a router (tests drive it without a socket, too).
pub fn router(state: Arc<SidecarState>) -> Router {
    let state_routes = Router::new()
        .route(
            "/v1.0/state/{store}",
            post(state_api::save).put(state_api::save),
        )
        .route(
            "/v1.0/state/{store}/bulk",
            post(state_api::bulk).put(state_api::bulk),
        )
        .route(
            "/v1.0/state/{store}/transaction",
            post(transaction::transaction).put(transaction::transaction),
        )
        .route(
            "/v1.0/state/{store}/{key}",
            get(state_api::get).delete(state_api::delete),
        );
    state_routes
        .route("/v1.0/healthz", get(healthz))
        .route("/v1.0/healthz/outbound", get(healthz))
        .fallback(unknown_route)
        .method_not_allowed_fallback(unknown_route)
        .layer(middleware::from_fn_with_state(
            state.clone(),
            around_every_request,
        ))
        .with_state(state)
}

/// Serves `state`'s sidecar on `listener` until the process ends.
pub async fn serve(listener: tokio::net::TcpListener, state: Arc<SidecarState>) {
    let app_id = state.app_id.clone();
    // Dapr strips a trailing slash before routing; that has to happen before the router sees the path.
    let service = tower::util::MapRequestLayer::new(strip_trailing_slash).layer(router(state));
    if let Err(err) = axum::serve(listener, ServiceExt::<Request>::into_make_service(service)).await
    {
        tracing::error!("sidecar of {app_id} stopped: {err}");
    }
}

fn strip_trailing_slash(mut request: Request) -> Request {
    let path = request.uri().path();
    if path.len() > 1 && path.ends_with('/') {
        let trimmed = path.trim_end_matches('/');
        let rebuilt = match request.uri().query() {
            Some(query) => format!("{trimmed}?{query}"),
            None => trimmed.to_string(),
        };
        if let Ok(uri) = rebuilt.parse() {
            *request.uri_mut() = uri;
        }
    }
    request
}

async fn healthz() -> StatusCode {
    StatusCode::NO_CONTENT
}

async fn unknown_route() -> ApiError {
    ApiError::new(
        StatusCode::NOT_FOUND,
        "ERR_DIRECT_INVOKE",
        "failed getting app id either from the URL path or the header dapr-app-id",
    )
}

/// The API token check, then the handler, then a W3C `traceparent` on the response: the
/// caller's, or a new one. One middleware rather than two: this runs on every request.
async fn around_every_request(
    State(state): State<Arc<SidecarState>>,
    request: Request,
    next: Next,
) -> Response {
    if let Some(token) = &state.api_token {
        let path = request.uri().path().trim_end_matches('/');
        let exempt = matches!(path, "/v1.0/healthz" | "/v1.0/healthz/outbound");
        let given = request
            .headers()
            .get("dapr-api-token")
            .and_then(|v| v.to_str().ok());
        if !exempt && given != Some(token.as_str()) {
            return (
                StatusCode::UNAUTHORIZED,
                [("content-type", "text/plain; charset=utf-8")],
                "invalid api token\n",
            )
                .into_response();
        }
    }
    let incoming = request.headers().get("traceparent").cloned();
    let mut response = next.run(request).await;
    if !response.headers().contains_key("traceparent") {
        let value = incoming.unwrap_or_else(|| {
            HeaderValue::from_str(&new_traceparent())
                .expect("UNWRAP: hex digits are a valid header")
        });
        response.headers_mut().insert("traceparent", value);
    }
    response
}

/// A fresh trace context. Uniqueness is all that is needed, not unpredictability.
fn new_traceparent() -> String {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos() as u64)
        .unwrap_or(0);
    let mix = |x: u64| {
        let mut z = x.wrapping_add(0x9E37_79B9_7F4A_7C15);
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    };
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    let seed = nanos ^ (u64::from(std::process::id()) << 32);
    format!(
        "00-{:016x}{:016x}-{:016x}-01",
        mix(seed),
        mix(seed ^ n.rotate_left(17)),
        mix(seed.wrapping_add(n))
    )
}
