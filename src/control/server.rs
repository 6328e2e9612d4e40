//! The control API's routes.

use std::convert::Infallible;

use super::{AppView, ProjectStatus, RedisStatus};
use crate::logs::LogLine;
use crate::project::ProjectView;
use crate::supervisor::Control;
use axum::body::{Body, Bytes};
use axum::extract::{Path, Query, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use futures_util::{StreamExt, stream};
use serde::Deserialize;

/// How long requests under way may finish once the API is told to stop. A dashboard that is
/// open holds event streams that never end by themselves; they are cut after this.
const CLOSING: std::time::Duration = std::time::Duration::from_secs(1);

/// Serves the API on `listener` until `shutdown` is cancelled.
pub async fn serve(
    listener: tokio::net::TcpListener,
    view: ProjectView,
    secret: super::RunToken,
    shutdown: tokio_util::sync::CancellationToken,
) {
    let port = listener.local_addr().map(|a| a.port()).unwrap_or_default();
    let router = Router::new()
        .route("/v1/ps", get(ps))
        .route("/v1/logs", get(logs))
        .route("/v1/down", post(down))
        .route("/v1/apps/{name}/{action}", post(app_action))
        .merge(crate::dashboard::routes())
        .layer(axum::middleware::from_fn(move |request, next| {
            guard(port, secret.clone(), request, next)
        }))
        .with_state(view);
    let gate = crate::listen::Gate::new("control API", crate::listen::MAX_CONNECTIONS);
    crate::listen::serve_http(listener, gate, router, shutdown, CLOSING).await;
}

/// The header every request that changes something must carry. Other web pages can make a
/// browser POST here, but not with a custom header (that needs CORS approval, never given).
pub const CHANGE_HEADER: &str = "x-daca";

/// Refuses what a web page elsewhere could send: a `Host` other than this loopback address
/// (DNS rebinding), and changes without [`CHANGE_HEADER`]; and anyone without the run's token
/// (another user of the machine), which a browser brings once as `?token=` and then as a cookie.
async fn guard(
    port: u16,
    secret: super::RunToken,
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
    if !secret.carried_by(request.headers()) {
        return match reads.then(|| url_token(&request, &secret)).flatten() {
            Some(redirect) => redirect,
            None => {
                let error = "this daca answers only its owner: use `daca ps`/`logs`/`down`, or open the dashboard with `daca dashboard` (the URL `daca up` printed holds the token)";
                let body = Json(serde_json::json!({ "error": error }));
                (StatusCode::UNAUTHORIZED, body).into_response()
            }
        };
    }
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

/// A page opened with the token in its URL: the same page without it, the token now a cookie
/// (HttpOnly, same-site), so that it stays out of the address bar and the page's own requests.
fn url_token(request: &axum::extract::Request, secret: &super::RunToken) -> Option<Response> {
    let query = request.uri().query()?;
    let given = query.split('&').find_map(|p| p.strip_prefix("token="))?;
    if !secret.matches(given) {
        return None;
    }
    let rest: Vec<&str> = query
        .split('&')
        .filter(|p| !p.starts_with("token="))
        .collect();
    let mut location = request.uri().path().to_string();
    if !rest.is_empty() {
        location = format!("{location}?{}", rest.join("&"));
    }
    let cookie = format!(
        "{}={}; Path=/; HttpOnly; SameSite=Strict",
        super::secret::COOKIE,
        secret.as_str()
    );
    let headers = [
        (header::LOCATION, location),
        (header::SET_COOKIE, cookie),
        (header::CACHE_CONTROL, "no-store".to_string()),
    ];
    Some((StatusCode::SEE_OTHER, headers).into_response())
}

async fn ps(State(view): State<ProjectView>) -> Json<ProjectStatus> {
    Json(status(&view))
}

/// `GET /v1/ps`: the project, its Redis and its apps now.
pub fn status(view: &ProjectView) -> ProjectStatus {
    let snapshot = view.snapshot();
    let apps = snapshot
        .apps
        .iter()
        .map(|app| AppView {
            status: app.handle.status(),
            instance_of: app.spec.instance_of.as_ref().map(|a| a.to_string()),
            port: app.spec.process.port,
            sidecar: app.sidecar(),
            pod: app
                .pod_host_port
                .map(|host_port| super::PodView { host_port }),
            reload: app.reloads.view(),
        })
        .collect();
    ProjectStatus {
        project: view.name.clone(),
        daca_pid: std::process::id(),
        redis: RedisStatus {
            mode: view.redis.mode.to_string(),
            url: view.redis.url.clone(),
            status: snapshot.redis.as_ref().map(|h| h.status()),
        },
        postgres: view.postgres.clone().map(|describe| super::ServerStatus {
            describe,
            status: snapshot.postgres.as_ref().map(|h| h.status()),
        }),
        apps,
        watch: snapshot.watching.then(|| view.watch.view()),
        process: Some(super::ProcessStats::now()),
    }
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
async fn logs(State(view): State<ProjectView>, Query(query): Query<LogQuery>) -> Response {
    let snapshot = view.snapshot();
    let mut known: Vec<String> = view.server_log_names();
    known.extend(snapshot.apps.iter().map(|a| a.spec.id.to_string()));
    if let Some(source) = query.source.as_ref().filter(|s| !known.contains(s)) {
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
    // An app's lines are its instances' too (`replicas:`).
    let sources: Option<Vec<String>> = query.source.as_ref().map(|source| {
        let instances = snapshot
            .apps
            .iter()
            .filter(|a| {
                a.spec
                    .instance_of
                    .as_ref()
                    .is_some_and(|of| of.as_str() == source)
            })
            .map(|a| a.spec.id.to_string());
        std::iter::once(source.clone()).chain(instances).collect()
    });
    let keep = move |line: &LogLine| {
        sources.as_ref().is_none_or(|s| s.contains(&line.source))
            && query.since_ms.is_none_or(|t| line.ts_ms >= t)
    };
    let encode = |line: &LogLine| {
        Ok::<_, Infallible>(Bytes::from(format!(
            "{}\n",
            serde_json::to_string(line).unwrap_or_default()
        )))
    };
    let (backlog, live) = view.logs.follow(keep);
    let backlog: Vec<_> = backlog.iter().map(|l| encode(l)).collect();
    let body = if query.follow {
        Body::from_stream(stream::iter(backlog).chain(live.map(move |l| encode(&l))))
    } else {
        Body::from_stream(stream::iter(backlog))
    };
    ([(header::CONTENT_TYPE, "application/x-ndjson")], body).into_response()
}

async fn down(State(view): State<ProjectView>) -> impl IntoResponse {
    view.request_down();
    (
        StatusCode::ACCEPTED,
        Json(serde_json::json!({ "stopping": true })),
    )
}

async fn app_action(
    State(view): State<ProjectView>,
    Path((name, action)): Path<(String, String)>,
) -> Response {
    let snapshot = view.snapshot();
    // The app and its instances (`replicas:`), as a Deployment is restarted whole.
    let handles: Vec<_> = snapshot
        .apps
        .iter()
        .filter(|a| {
            a.spec.id.as_str() == name
                || a.spec
                    .instance_of
                    .as_ref()
                    .is_some_and(|of| of.as_str() == name)
        })
        .map(|a| a.handle.clone())
        .collect();
    let Some(handle) = handles.first().cloned() else {
        return (
            StatusCode::NOT_FOUND,
            Json(serde_json::json!({ "error": format!("no app `{name}`") })),
        )
            .into_response();
    };
    let control = match action.as_str() {
        "start" => || Control::Start,
        "stop" => || Control::Stop,
        "restart" => || Control::Restart,
        _ => {
            let error = format!("unknown action `{action}` (use start, stop or restart)");
            return (
                StatusCode::BAD_REQUEST,
                Json(serde_json::json!({ "error": error })),
            )
                .into_response();
        }
    };
    for each in &handles {
        each.send(control()).await;
    }
    Json(handle.status()).into_response()
}
