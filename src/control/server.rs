//! The control API's routes.

use std::collections::BTreeMap;
use std::convert::Infallible;
use std::sync::Arc;

use axum::body::{Body, Bytes};
use axum::extract::{Path, Query, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use futures_util::{StreamExt, stream};
use serde::Deserialize;
use tokio::sync::Notify;

use super::{AppView, ProjectStatus, RedisStatus};
use crate::env::SidecarPorts;
use crate::logs::{LogBus, LogLine};
use crate::supervisor::{Control, Supervisor};

/// What the handlers read.
pub struct ControlState {
    pub project: String,
    pub supervisor: Arc<Supervisor>,
    pub logs: Arc<LogBus>,
    pub redis_mode: String,
    pub redis_url: Option<String>,
    /// App-id → (app port, sidecar ports); changes when daca.yaml is edited.
    pub apps: std::sync::RwLock<BTreeMap<String, (Option<u16>, SidecarPorts)>>,
    /// Notified by `POST /v1/down`.
    pub down: Arc<Notify>,
    /// Reload times per app.
    pub reloads: Arc<crate::reload::ReloadStats>,
    /// The running project's components, subscriptions and events, for the dashboard.
    pub inspect: Option<Arc<dyn crate::dashboard::Inspect>>,
}

/// Serves the API on `listener` until `shutdown` resolves.
pub async fn serve(
    listener: tokio::net::TcpListener,
    state: Arc<ControlState>,
    shutdown: impl Future<Output = ()> + Send + 'static,
) {
    let port = listener.local_addr().map(|a| a.port()).unwrap_or_default();
    let router = Router::new()
        .route("/v1/ps", get(ps))
        .route("/v1/logs", get(logs))
        .route("/v1/down", post(down))
        .route("/v1/apps/{name}/{action}", post(app_action))
        .merge(crate::dashboard::routes())
        .layer(axum::middleware::from_fn(move |request, next| {
            guard(port, request, next)
        }))
        .with_state(state);
    if let Err(err) = axum::serve(listener, router)
        .with_graceful_shutdown(shutdown)
        .await
    {
        tracing::error!("control API stopped: {err}");
    }
}

/// The header every request that changes something must carry. Other web pages can make a
/// browser POST here, but not with a custom header (that needs CORS approval, never given).
pub const CHANGE_HEADER: &str = "x-daca";

/// Refuses what a web page elsewhere could send: a `Host` other than this loopback address
/// (DNS rebinding), and changes without [`CHANGE_HEADER`].
async fn guard(
    port: u16,
    request: axum::extract::Request,
    next: axum::middleware::Next,
) -> Response {
    let host = request
        .headers()
        .get(header::HOST)
        .and_then(|h| h.to_str().ok())
        .unwrap_or_default();
    let local = [format!("127.0.0.1:{port}"), format!("localhost:{port}")];
    if !local.iter().any(|l| l == host) {
        let error = format!("this API answers only at http://127.0.0.1:{port} (Host was `{host}`)");
        return (
            StatusCode::FORBIDDEN,
            Json(serde_json::json!({ "error": error })),
        )
            .into_response();
    }
    let reads = matches!(
        *request.method(),
        axum::http::Method::GET | axum::http::Method::HEAD
    );
    if !reads && !request.headers().contains_key(CHANGE_HEADER) {
        let error = format!("requests that change something need the header `{CHANGE_HEADER}: 1`");
        return (
            StatusCode::FORBIDDEN,
            Json(serde_json::json!({ "error": error })),
        )
            .into_response();
    }
    next.run(request).await
}

async fn ps(State(state): State<Arc<ControlState>>) -> Json<ProjectStatus> {
    let statuses = state.supervisor.statuses();
    let redis_status = statuses
        .iter()
        .find(|s| s.name == crate::redis::UNIT_NAME)
        .cloned();
    let apps = statuses
        .into_iter()
        .filter_map(|status| {
            let (port, sidecar) = *state
                .apps
                .read()
                .unwrap_or_else(|p| p.into_inner())
                .get(&status.name)?;
            let reload = state.reloads.view(&status.name);
            Some(AppView {
                status,
                port,
                sidecar,
                reload,
            })
        })
        .collect();
    Json(ProjectStatus {
        project: state.project.clone(),
        daca_pid: std::process::id(),
        redis: RedisStatus {
            mode: state.redis_mode.clone(),
            url: state.redis_url.clone(),
            status: redis_status,
        },
        apps,
    })
}

#[derive(Debug, Deserialize)]
struct LogQuery {
    /// Only this app (or `redis`).
    source: Option<String>,
    /// Only lines at or after this time (ms since the Unix epoch).
    since_ms: Option<u64>,
    #[serde(default)]
    follow: bool,
}

/// Newline-delimited JSON: the remembered lines, then (with `follow`) live ones.
async fn logs(State(state): State<Arc<ControlState>>, Query(query): Query<LogQuery>) -> Response {
    if let Some(source) = query
        .source
        .as_ref()
        .filter(|s| state.supervisor.handle(s).is_none())
    {
        let handles = state.supervisor.handles();
        let known: Vec<&str> = handles.iter().map(|h| h.name()).collect();
        let message = format!(
            "no app `{source}` in this project (apps: {})",
            known.join(", ")
        );
        return (
            StatusCode::NOT_FOUND,
            Json(serde_json::json!({ "error": message })),
        )
            .into_response();
    }
    let keep = move |line: &LogLine| {
        query.source.as_ref().is_none_or(|s| *s == line.source)
            && query.since_ms.is_none_or(|t| line.ts_ms >= t)
    };
    let encode = |line: &LogLine| {
        Ok::<_, Infallible>(Bytes::from(format!(
            "{}\n",
            serde_json::to_string(line).unwrap_or_default()
        )))
    };
    let (backlog, live) = state.logs.follow(keep);
    let backlog: Vec<_> = backlog.iter().map(|l| encode(l)).collect();
    let body = if query.follow {
        Body::from_stream(stream::iter(backlog).chain(live.map(move |l| encode(&l))))
    } else {
        Body::from_stream(stream::iter(backlog))
    };
    ([(header::CONTENT_TYPE, "application/x-ndjson")], body).into_response()
}

async fn down(State(state): State<Arc<ControlState>>) -> impl IntoResponse {
    state.down.notify_one();
    (
        StatusCode::ACCEPTED,
        Json(serde_json::json!({ "stopping": true })),
    )
}

async fn app_action(
    State(state): State<Arc<ControlState>>,
    Path((name, action)): Path<(String, String)>,
) -> Response {
    let Some(handle) = state.supervisor.handle(&name) else {
        return (
            StatusCode::NOT_FOUND,
            Json(serde_json::json!({ "error": format!("no app `{name}`") })),
        )
            .into_response();
    };
    let control = match action.as_str() {
        "start" => Control::Start,
        "stop" => Control::Stop,
        "restart" => Control::Restart,
        _ => {
            let error = format!("unknown action `{action}` (use start, stop or restart)");
            return (
                StatusCode::BAD_REQUEST,
                Json(serde_json::json!({ "error": error })),
            )
                .into_response();
        }
    };
    handle.send(control).await;
    Json(handle.status()).into_response()
}
