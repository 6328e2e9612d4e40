//! The in-process Dapr sidecar: per app, Dapr's HTTP API on 127.0.0.1 at its `DAPR_HTTP_PORT`.
//! The port a request arrives on says which app-id is calling; all apps share the component
//! instances (and so the Redis connection pools).
//!
//! How a request flows: trailing slash stripped → `dapr-api-token` checked (when
//! `DAPR_API_TOKEN` is set; health exempt) → route → handler → `Traceparent` added to the
//! response. Unknown routes answer as Dapr does (its service-invocation fallback).

mod actors_api;
mod bindings_api;
mod catalog;
mod error;
pub mod grpc;
mod invoke;
mod jobs_api;
mod keys;
mod meta;
mod pubsub_api;
mod shared;
mod state_api;
mod transaction;
mod workflow_api;

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use crate::sync::{Mutex, RwLock};

use axum::Router;
use axum::extract::{Request, State};
use axum::http::{HeaderValue, StatusCode};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{any, get, post};
use tower::Layer;

pub use error::ApiError;
pub use shared::{ComponentSet, Components, ComponentsLoadError, Directory, Shared};

use crate::pubsub::subscription::Subscription;

/// What one app's sidecar serves.
pub struct SidecarState {
    pub app_id: String,
    /// Which instance of the app it serves (`AppChannel::instance`): actors are hosted, and
    /// their timers and reminders made, by an instance.
    pub instance: String,
    pub shared: Arc<Shared>,
    /// The request body limit; a daca.yaml edit changes it without a restart.
    max_body_size: std::sync::atomic::AtomicUsize,
    /// The subscriptions running for this app, for `/v1.0/metadata`.
    pub subscriptions: Arc<RwLock<Vec<Subscription>>>,
    /// `extended` metadata set with `PUT /v1.0/metadata/{key}`.
    pub extended: Mutex<BTreeMap<String, String>>,
    /// What `POST /v1.0/shutdown` does after answering.
    pub on_shutdown: Option<Box<dyn Fn() + Send + Sync>>,
    /// How long an invocation waits for a target that is restarting or reloading.
    pub invoke_wait: std::time::Duration,
}

impl SidecarState {
    /// The resiliency policies this sidecar applies (its app's scopes), with its breakers.
    pub fn policies(&self) -> Arc<crate::resiliency::AppPolicies> {
        self.shared.components().resiliency.for_app(&self.app_id)
    }

    /// The request body limit, in bytes.
    pub fn max_body_size(&self) -> usize {
        self.max_body_size.load(Ordering::Relaxed)
    }

    pub fn set_max_body_size(&self, limit: usize) {
        self.max_body_size.store(limit, Ordering::Relaxed);
    }

    pub fn new(app_id: &str, shared: Arc<Shared>, max_body_size: usize) -> SidecarState {
        SidecarState {
            app_id: app_id.to_string(),
            instance: app_id.to_string(),
            shared,
            max_body_size: max_body_size.into(),
            subscriptions: Arc::default(),
            extended: Mutex::default(),
            on_shutdown: None,
            invoke_wait: std::time::Duration::from_secs(30),
        }
    }
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
    let publish = post(pubsub_api::publish).put(pubsub_api::publish);
    let bulk_publish = post(pubsub_api::bulk_publish).put(pubsub_api::bulk_publish);
    state_routes
        .route("/v1.0/publish/{pubsub}/{*topic}", publish)
        .route(
            "/v1.0-alpha1/publish/bulk/{pubsub}/{*topic}",
            bulk_publish.clone(),
        )
        .route("/v1.0/publish/bulk/{pubsub}/{*topic}", bulk_publish)
        .route(
            "/v1.0/invoke/{app_id}/method/{*method}",
            any(invoke::invoke),
        )
        .merge(actor_routes())
        .merge(job_routes())
        .merge(workflow_routes())
        .route("/v1.0/healthz", get(meta::healthz))
        .route("/v1.0/healthz/outbound", get(meta::healthz_outbound))
        .route("/v1.0/metadata", get(meta::metadata))
        .route(
            "/v1.0/metadata/{key}",
            axum::routing::put(meta::set_metadata),
        )
        .route("/v1.0/shutdown", post(meta::shutdown))
        .route(
            "/v1.0/bindings/{name}",
            post(bindings_api::invoke).put(bindings_api::invoke),
        )
        .route("/v1.0/secrets/{store}/bulk", get(meta::bulk_secrets))
        .route("/v1.0/secrets/{store}/{key}", get(meta::secret))
        .fallback(invoke::fallback)
        .method_not_allowed_fallback(invoke::fallback)
        .layer(middleware::from_fn_with_state(
            state.clone(),
            around_every_request,
        ))
        .with_state(state)
}

/// How long requests under way may take to finish once a sidecar is told to stop.
pub const DRAIN: std::time::Duration = std::time::Duration::from_secs(2);

/// The actor API's routes.
fn actor_routes() -> Router<Arc<SidecarState>> {
    let base = "/v1.0/actors/{actor_type}/{actor_id}";
    let transaction = post(actors_api::transaction).put(actors_api::transaction);
    let reminder = post(actors_api::create_reminder)
        .put(actors_api::create_reminder)
        .get(actors_api::get_reminder)
        .delete(actors_api::delete_reminder);
    let timer = post(actors_api::create_timer)
        .put(actors_api::create_timer)
        .delete(actors_api::delete_timer);
    Router::new()
        .route(
            &format!("{base}/method/{{*method}}"),
            any(actors_api::invoke),
        )
        .route(&format!("{base}/state"), transaction)
        .route(&format!("{base}/state/{{key}}"), get(actors_api::get_state))
        .route(&format!("{base}/reminders/{{name}}"), reminder)
        .route(&format!("{base}/timers/{{name}}"), timer)
}

/// The Jobs API's routes: stable, and the alpha path the 1.14 SDKs call.
fn job_routes() -> Router<Arc<SidecarState>> {
    let job = post(jobs_api::schedule)
        .get(jobs_api::get)
        .delete(jobs_api::delete);
    Router::new()
        .route("/v1.0/jobs/{name}", job.clone())
        .route("/v1.0-alpha1/jobs/{name}", job)
}

/// The workflow API's routes, under each of the versions the SDKs and readmes use.
fn workflow_routes() -> Router<Arc<SidecarState>> {
    let mut routes = Router::new();
    for version in ["v1.0", "v1.0-beta1", "v1.0-alpha1"] {
        let base = format!("/{version}/workflows/{{component}}/{{id}}");
        routes = routes
            .route(&format!("{base}/start"), post(workflow_api::http_start))
            .route(&base, get(workflow_api::http_get))
            .route(
                &format!("{base}/raiseEvent/{{event}}"),
                post(workflow_api::http_raise),
            )
            .route(
                &format!("{base}/{{verb}}"),
                post(workflow_api::http_control),
            );
    }
    routes
}

/// Serves `state`'s sidecar on `listener` until `shutdown` is cancelled; then requests under
/// way get [`DRAIN`] to finish. The listener's limits are [`crate::listen`]'s.
pub async fn serve(
    listener: tokio::net::TcpListener,
    state: Arc<SidecarState>,
    shutdown: tokio_util::sync::CancellationToken,
) {
    let gate = crate::listen::Gate::new(
        format!("sidecar of {}", state.app_id),
        crate::listen::MAX_CONNECTIONS,
    );
    // Dapr strips a trailing slash before routing; that has to happen before the router sees the path.
    let service = tower::util::MapRequestLayer::new(strip_trailing_slash).layer(router(state));
    crate::listen::serve_http(listener, gate, service, shutdown, DRAIN).await;
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

/// The API token check, then the handler (a panic in it answers only its own request), then
/// a W3C `traceparent` on the response: the caller's, or a new one. One middleware rather than
/// several: this runs on every request.
async fn around_every_request(
    State(state): State<Arc<SidecarState>>,
    request: Request,
    next: Next,
) -> Response {
    if let Some(token) = &state.shared.api_token {
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
    // A body declared too large is refused before a byte of it is read.
    let declared = request
        .headers()
        .get(axum::http::header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok()?.parse::<u64>().ok());
    if declared.is_some_and(|length| length > state.max_body_size() as u64) {
        return state_api::too_large(state.max_body_size()).into_response();
    }
    let incoming = request.headers().get("traceparent").cloned();
    let (method, uri) = (request.method().clone(), request.uri().clone());
    let route = || format!("sidecar of {}: {method} {}", state.app_id, uri.path());
    let mut response = match crate::panics::catch(route, next.run(request)).await {
        Ok(response) => response,
        Err(caught) => error::ApiError::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "ERR_INTERNAL",
            format!("daca failed serving this request: {}", caught.message),
        )
        .into_response(),
    };
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
pub fn new_traceparent() -> String {
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

#[cfg(test)]
mod tests {
    use super::*;
    use tower::ServiceExt as _;

    /// A handler that panics answers its own request with Dapr's 500 body; the next request
    /// on the same router is served as usual.
    #[tokio::test]
    async fn a_panicking_handler_costs_only_its_own_request() {
        crate::panics::install_hook();
        let shared = Arc::new(Shared::new(
            Components::with_stores(Default::default()),
            None,
        ));
        let state = Arc::new(SidecarState::new("t", shared, 1 << 20));
        let boom = || async {
            let parsed: Result<u32, _> = "not a number".parse::<u32>();
            parsed.expect("a bug in a handler");
        };
        let app = Router::new()
            .route("/boom", get(boom))
            .route("/fine", get(|| async { "fine" }))
            .layer(axum::middleware::from_fn_with_state(
                state.clone(),
                around_every_request,
            ))
            .with_state(state);
        let call = |path: &str| {
            let request = Request::builder()
                .uri(path)
                .body(axum::body::Body::empty())
                .unwrap();
            app.clone().oneshot(request)
        };
        let answer = call("/boom").await.unwrap();
        assert_eq!(answer.status(), StatusCode::INTERNAL_SERVER_ERROR);
        let body = axum::body::to_bytes(answer.into_body(), 1 << 16)
            .await
            .unwrap();
        let body = String::from_utf8_lossy(&body);
        assert!(body.starts_with(r#"{"errorCode":"ERR_INTERNAL","message":"daca failed serving this request: a bug in a handler"#), "{body}");
        let answer = call("/fine").await.unwrap();
        assert_eq!(answer.status(), StatusCode::OK);
    }
}
