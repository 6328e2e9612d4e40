//! The dashboard's endpoints: live logs and events (server-sent events), components and
//! subscriptions (secrets masked), state browsing, pub/sub counts and a test publish.

use std::collections::BTreeMap;
use std::convert::Infallible;
use std::sync::Arc;

use axum::Json;
use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::sse::{Event as SseEvent, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use futures_util::{Stream, StreamExt, stream};
use serde::Deserialize;
use serde_json::{Value, json};

use crate::logs::LogLine;
use crate::project::ProjectView;
use crate::state::{Delete, Op};

/// Lines a log view gets before the live ones, unless it asks for another number.
const DEFAULT_TAIL: usize = 200;
/// Keys one listing returns at most.
const KEY_LIMIT: usize = 500;

fn error(status: StatusCode, message: impl Into<String>) -> Response {
    (status, Json(json!({ "error": message.into() }))).into_response()
}

#[derive(Debug, Deserialize)]
pub struct LogStreamQuery {
    source: Option<String>,
    tail: Option<usize>,
}

/// The last `tail` lines, then live ones, as server-sent events (`data:` one JSON line each).
pub async fn log_stream(
    State(view): State<ProjectView>,
    Query(query): Query<LogStreamQuery>,
) -> Sse<impl Stream<Item = Result<SseEvent, Infallible>>> {
    Sse::new(log_events(&view, query)).keep_alive(KeepAlive::default())
}

fn log_events(
    view: &ProjectView,
    query: LogStreamQuery,
) -> impl Stream<Item = Result<SseEvent, Infallible>> + use<> {
    let source = query.source.filter(|s| !s.is_empty());
    let keep = move |line: &LogLine| source.as_ref().is_none_or(|s| *s == line.source);
    let (mut backlog, live) = view.logs.follow(keep);
    let tail = query.tail.unwrap_or(DEFAULT_TAIL);
    backlog.drain(..backlog.len().saturating_sub(tail));
    let encode = |line: &LogLine| {
        Ok(SseEvent::default().data(serde_json::to_string(line).unwrap_or_default()))
    };
    let backlog: Vec<_> = backlog.iter().map(|l| encode(l)).collect();
    let following = live.map(move |line| encode(&line));
    stream::iter(backlog).chain(following)
}

/// The page's one stream: log lines (`event: log`) and timeline events (`event: event`), each
/// backlog first. One connection per open page, not two: browsers allow six per host over
/// HTTP/1.1, and streams held by other tabs would stall the next page's loads.
pub async fn live(
    State(view): State<ProjectView>,
    Query(query): Query<LogStreamQuery>,
) -> Response {
    let tag = |name: &'static str| move |e: Result<SseEvent, Infallible>| e.map(|e| e.event(name));
    let logs = log_events(&view, query).map(tag("log"));
    let events = timeline_events(view.events.clone()).map(tag("event"));
    Sse::new(stream::select(logs, events))
        .keep_alive(KeepAlive::default())
        .into_response()
}

pub async fn events(State(view): State<ProjectView>) -> Response {
    Json(view.events.recent()).into_response()
}

/// The timeline so far, then live events.
pub async fn event_stream(State(view): State<ProjectView>) -> Response {
    Sse::new(timeline_events(view.events.clone()))
        .keep_alive(KeepAlive::default())
        .into_response()
}

fn timeline_events(
    log: Arc<crate::events::EventLog>,
) -> impl Stream<Item = Result<SseEvent, Infallible>> {
    let live = log.subscribe();
    let encode = |e: &crate::events::Event| {
        Ok::<_, Infallible>(SseEvent::default().data(serde_json::to_string(e).unwrap_or_default()))
    };
    let backlog: Vec<_> = log.recent().iter().map(encode).collect();
    let following = crate::logs::follow(live).map(move |event| encode(&event));
    stream::iter(backlog).chain(following)
}

/// Metadata values that must not be shown: from a secret store, or named like a secret.
fn masked(name: &str, secret_items: &[String]) -> bool {
    secret_items.iter().any(|s| s.eq_ignore_ascii_case(name))
        || crate::components::named_like_a_secret(name)
}

pub async fn components(State(view): State<ProjectView>) -> Response {
    let loaded = view.shared.components();
    let components: Vec<Value> = super::all_components(&loaded)
        .iter()
        .map(|c| {
            let metadata: BTreeMap<&str, &str> = c
                .metadata
                .iter()
                .map(|(k, v)| {
                    let shown = if masked(k, &c.secret_items) && !v.is_empty() {
                        "••••••"
                    } else {
                        v.as_str()
                    };
                    (k.as_str(), shown)
                })
                .collect();
            json!({
                "name": c.name, "type": c.type_name, "version": c.version,
                "scopes": c.scopes, "origin": c.origin, "metadata": metadata,
            })
        })
        .collect();
    let subscriptions: Vec<Value> = view
        .subscriptions()
        .iter()
        .map(|(app, s)| {
            let rules: Vec<Value> = s
                .rules
                .iter()
                .map(|r| json!({ "match": r.source, "path": r.path }))
                .collect();
            json!({
                "app": app, "pubsub": s.pubsub, "topic": s.topic, "rules": rules,
                "dead_letter_topic": s.dead_letter_topic, "kind": s.kind, "origin": s.origin,
            })
        })
        .collect();
    Json(json!({
        "components": components,
        "subscriptions": subscriptions,
        "error": view.snapshot().component_error.clone(),
    }))
    .into_response()
}

/// A failed request: the status and the message, answered as `{"error": ...}`.
pub struct Failure(pub StatusCode, pub String);

impl IntoResponse for Failure {
    fn into_response(self) -> Response {
        error(self.0, self.1)
    }
}

impl From<crate::state::StoreError> for Failure {
    fn from(err: crate::state::StoreError) -> Failure {
        Failure(StatusCode::BAD_GATEWAY, err.to_string())
    }
}

fn store(
    view: &ProjectView,
    name: &str,
) -> Result<Arc<crate::components::stores::StateEntry>, Failure> {
    let components = view.shared.components();
    components.stores.get(name).cloned().ok_or_else(|| {
        let known: Vec<&String> = components.stores.keys().collect();
        let message = format!("no state store `{name}` (stores: {known:?})");
        Failure(StatusCode::NOT_FOUND, message)
    })
}

#[derive(Debug, Deserialize)]
pub struct KeysQuery {
    #[serde(default)]
    prefix: String,
}

/// Keys as stored (`app-id||key` with Dapr's default prefix), at most 500.
pub async fn state_keys(
    State(view): State<ProjectView>,
    Path(name): Path<String>,
    Query(query): Query<KeysQuery>,
) -> Result<Response, Failure> {
    let keys = store(&view, &name)?
        .store
        .keys(&query.prefix, KEY_LIMIT)
        .await?;
    let view = json!({ "store": name, "prefix": query.prefix, "keys": keys, "limit": KEY_LIMIT });
    Ok(Json(view).into_response())
}

#[derive(Debug, Deserialize)]
pub struct ItemQuery {
    key: String,
}

/// One stored key: its value (JSON when it is JSON), etag and seconds to live.
pub async fn state_item(
    State(view): State<ProjectView>,
    Path(name): Path<String>,
    Query(query): Query<ItemQuery>,
) -> Result<Response, Failure> {
    let entry = store(&view, &name)?;
    let Some(item) = entry.store.get(&query.key).await? else {
        return Err(Failure(
            StatusCode::NOT_FOUND,
            format!("no key `{}`", query.key),
        ));
    };
    let ttl = entry.store.ttl(&query.key).await.ok().flatten();
    let value = serde_json::from_slice::<Value>(&item.data)
        .unwrap_or_else(|_| Value::String(String::from_utf8_lossy(&item.data).into_owned()));
    let view = json!({ "key": query.key, "value": value, "etag": item.etag, "ttl_seconds": ttl });
    Ok(Json(view).into_response())
}

pub async fn state_delete(
    State(view): State<ProjectView>,
    Path(name): Path<String>,
    Query(query): Query<ItemQuery>,
) -> Result<Response, Failure> {
    let delete = Op::Delete(Delete {
        key: query.key,
        etag: None,
    });
    store(&view, &name)?.store.apply(&[delete]).await?;
    Ok(StatusCode::NO_CONTENT.into_response())
}

/// Pub/sub components, topics with their subscribers, counts and the last messages.
pub async fn pubsub(State(view): State<ProjectView>) -> Response {
    let shared = &view.shared;
    let names: Vec<String> = shared.components().pubsubs.keys().cloned().collect();
    let mut topics: BTreeMap<(String, String), Vec<String>> = BTreeMap::new();
    for (app, s) in view.subscriptions() {
        topics
            .entry((s.pubsub.clone(), s.topic.clone()))
            .or_default()
            .push(app);
    }
    let topics: Vec<Value> = topics
        .into_iter()
        .map(|((pubsub, topic), apps)| json!({ "pubsub": pubsub, "topic": topic, "subscribers": apps }))
        .collect();
    let stats = shared.pubsub_stats.view();
    Json(json!({ "pubsubs": names, "topics": topics, "subscribers": stats.subscribers, "recent": stats.recent }))
        .into_response()
}

/// Publishes the body (JSON, else text) as a CloudEvent from the app-id `daca-dashboard`.
pub async fn publish(
    State(view): State<ProjectView>,
    Path((name, topic)): Path<(String, String)>,
    body: Bytes,
) -> Response {
    let shared = &view.shared;
    let components = shared.components();
    let Some(entry) = components.pubsubs.get(&name) else {
        return error(
            StatusCode::NOT_FOUND,
            format!("no pub/sub component `{name}`"),
        );
    };
    let content_type = if serde_json::from_slice::<Value>(&body).is_ok() {
        "application/json"
    } else {
        "text/plain"
    };
    let metadata = BTreeMap::new();
    let traceparent = crate::sidecar::new_traceparent();
    let publish = crate::pubsub::envelope::Publish {
        app_id: DASHBOARD_APP,
        pubsub: &name,
        topic: &topic,
        body: &body,
        content_type: Some(content_type),
        metadata: &metadata,
        traceparent: &traceparent,
        tracestate: "",
    };
    let data = match crate::pubsub::envelope::envelope(&publish) {
        Ok(data) => data,
        Err(err) => return error(StatusCode::BAD_REQUEST, err.to_string()),
    };
    if let Err(err) = entry.broker.publish(&topic, &data, &metadata).await {
        return error(StatusCode::BAD_GATEWAY, err.to_string());
    }
    shared
        .pubsub_stats
        .published(DASHBOARD_APP, &name, &topic, &data);
    StatusCode::NO_CONTENT.into_response()
}

/// The `source` of events published from the page.
pub const DASHBOARD_APP: &str = "daca-dashboard";
