//! `/v1.0/publish/{pubsub}/{topic}` and bulk publish, with Dapr's status and error codes.

use std::collections::BTreeMap;
use std::sync::Arc;

use axum::body::Body;
use axum::extract::{Path, RawQuery, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use serde_json::Value;
use serde_json::value::RawValue;

use super::SidecarState;
use super::error::ApiError;
use super::keys::Query;
use super::state_api::read_body;
use crate::pubsub::PubsubEntry;
use crate::pubsub::envelope::{self, Publish};

type Result<T> = std::result::Result<T, ApiError>;

/// The pubsub named in the URL, if this app may publish `topic` to it.
pub(super) fn pubsub(sidecar: &SidecarState, name: &str, topic: &str) -> Result<Arc<PubsubEntry>> {
    if name.is_empty() {
        return Err(ApiError::new(
            StatusCode::NOT_FOUND,
            "ERR_PUBSUB_EMPTY",
            "pubsub name is empty",
        ));
    }
    if topic.is_empty() {
        return Err(ApiError::new(
            StatusCode::NOT_FOUND,
            "ERR_TOPIC_NAME_EMPTY",
            format!("topic is empty in pubsub {name}"),
        ));
    }
    let pubsubs = sidecar.shared.components().pubsubs.clone();
    if pubsubs.is_empty() {
        return Err(ApiError::new(
            StatusCode::BAD_REQUEST,
            "ERR_PUBSUB_NOT_CONFIGURED",
            "no pubsub is configured",
        ));
    }
    let entry = pubsubs
        .get(name)
        .filter(|e| e.component.visible_to(&sidecar.app_id))
        .cloned()
        .ok_or_else(|| {
            ApiError::new(
                StatusCode::NOT_FOUND,
                "ERR_PUBSUB_NOT_FOUND",
                format!("pubsub {name} is not found"),
            )
        })?;
    if !entry.may_publish(&sidecar.app_id, topic) {
        return Err(ApiError::new(
            StatusCode::FORBIDDEN,
            "ERR_PUBSUB_FORBIDDEN",
            format!("topic {topic} is not allowed for app id {}", sidecar.app_id),
        ));
    }
    Ok(entry)
}

fn header<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers.get(name).and_then(|v| v.to_str().ok())
}

/// The bytes a publish stores: the CloudEvent, or the payload itself with `rawPayload`. Each
/// is remembered (as bytes, parsed only when looked at) for the dashboard.
pub(super) fn wrap(
    sidecar: &SidecarState,
    pubsub: &str,
    topic: &str,
    body: &[u8],
    content_type: Option<&str>,
    metadata: &BTreeMap<String, String>,
    trace: (&str, &str),
) -> Result<Vec<u8>> {
    let raw = envelope::raw_payload(metadata).map_err(|err| {
        ApiError::new(
            StatusCode::BAD_REQUEST,
            "ERR_PUBSUB_REQUEST_METADATA",
            err.to_string(),
        )
    })?;
    let data = if raw {
        body.to_vec()
    } else {
        envelope::envelope(&Publish {
            app_id: &sidecar.app_id,
            pubsub,
            topic,
            body,
            content_type,
            metadata,
            traceparent: trace.0,
            tracestate: trace.1,
        })
        .map_err(|err| {
            ApiError::new(
                StatusCode::INTERNAL_SERVER_ERROR,
                "ERR_PUBSUB_CLOUD_EVENTS_SER",
                err.to_string(),
            )
        })?
    };
    let stats = &sidecar.shared.pubsub_stats;
    stats.published(&sidecar.app_id, pubsub, topic, &data);
    Ok(data)
}

/// One entry of a bulk publish, wrapped and published as a single publish would be; the error
/// is the entry's `error` text in the answer.
#[allow(clippy::too_many_arguments)] // the parts of one publish call, as `wrap` takes them
pub(super) async fn publish_entry(
    sidecar: &SidecarState,
    entry: &PubsubEntry,
    pubsub: &str,
    topic: &str,
    payload: &[u8],
    content_type: Option<&str>,
    metadata: &BTreeMap<String, String>,
    trace: (&str, &str),
) -> std::result::Result<(), String> {
    let data = wrap(
        sidecar,
        pubsub,
        topic,
        payload,
        content_type,
        metadata,
        trace,
    )
    .map_err(|err| err.message)?;
    entry
        .broker
        .publish(topic, &data, metadata)
        .await
        .map_err(|err| err.to_string())
}

fn publish_failed(topic: &str, pubsub: &str, err: impl std::fmt::Display) -> ApiError {
    ApiError::new(
        StatusCode::INTERNAL_SERVER_ERROR,
        "ERR_PUBSUB_PUBLISH_MESSAGE",
        format!("error when publishing to topic {topic} in pubsub {pubsub}: {err}"),
    )
}

/// The trace context of this call: the caller's, or a new one.
fn trace(headers: &HeaderMap) -> (String, String) {
    (
        header(headers, "traceparent")
            .map(String::from)
            .unwrap_or_else(super::new_traceparent),
        header(headers, "tracestate")
            .unwrap_or_default()
            .to_string(),
    )
}

pub async fn publish(
    State(sidecar): State<Arc<SidecarState>>,
    Path((name, topic)): Path<(String, String)>,
    RawQuery(query): RawQuery,
    headers: HeaderMap,
    body: Body,
) -> Result<Response> {
    let entry = pubsub(&sidecar, &name, &topic)?;
    let query = Query::parse(query.as_deref());
    let body = read_body(&sidecar, body)
        .await
        .map_err(|err| publish_failed(&topic, &name, err.message))?;
    let (traceparent, tracestate) = trace(&headers);
    let data = wrap(
        &sidecar,
        &name,
        &topic,
        &body,
        header(&headers, "content-type"),
        &query.metadata,
        (&traceparent, &tracestate),
    )?;
    entry
        .broker
        .publish(&topic, &data, &query.metadata)
        .await
        .map_err(|err| publish_failed(&topic, &name, err))?;
    Ok(StatusCode::NO_CONTENT.into_response())
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct BulkEntry {
    #[serde(default)]
    entry_id: String,
    event: Box<RawValue>,
    #[serde(default)]
    content_type: String,
    #[serde(default)]
    metadata: BTreeMap<String, String>,
}

fn events_error(message: impl Into<String>) -> ApiError {
    ApiError::new(StatusCode::BAD_REQUEST, "ERR_PUBSUB_EVENTS_SER", message)
}

/// `/v1.0-alpha1/publish/bulk/{pubsub}/{topic}`: each entry published as a single publish would
/// be (Redis has no bulk publish, so Dapr does the same); failures are listed per entry.
pub async fn bulk_publish(
    State(sidecar): State<Arc<SidecarState>>,
    Path((name, topic)): Path<(String, String)>,
    RawQuery(query): RawQuery,
    headers: HeaderMap,
    body: Body,
) -> Result<Response> {
    let entry = pubsub(&sidecar, &name, &topic)?;
    let query = Query::parse(query.as_deref());
    let body = read_body(&sidecar, body).await?;
    let entries: Vec<BulkEntry> = serde_json::from_slice(&body)
        .map_err(|err| events_error(format!("error when unmarshaling the request: {err}")))?;
    let mut seen = std::collections::HashSet::new();
    for e in &entries {
        if e.entry_id.is_empty() {
            return Err(events_error(
                "entryId is duplicated or not present for entry",
            ));
        }
        if !seen.insert(e.entry_id.as_str()) {
            return Err(events_error(format!(
                "entryId is duplicated or not present for entry {}",
                e.entry_id
            )));
        }
    }
    let (traceparent, tracestate) = trace(&headers);
    let mut failed = Vec::new();
    for e in entries {
        let mut metadata = query.metadata.clone();
        metadata.extend(e.metadata.clone());
        // A JSON event is sent as its JSON text; any other content type as the string's text.
        let payload = match serde_json::from_str::<Value>(e.event.get()) {
            Ok(Value::String(text)) if !e.content_type.contains("json") => text.into_bytes(),
            _ => e.event.get().as_bytes().to_vec(),
        };
        let content_type = (!e.content_type.is_empty()).then_some(e.content_type.as_str());
        let trace = (traceparent.as_str(), tracestate.as_str());
        let published = publish_entry(
            &sidecar,
            &entry,
            &name,
            &topic,
            &payload,
            content_type,
            &metadata,
            trace,
        );
        if let Err(error) = published.await {
            failed.push(serde_json::json!({ "entryId": e.entry_id, "error": error }));
        }
    }
    if failed.is_empty() {
        return Ok(StatusCode::NO_CONTENT.into_response());
    }
    let body = serde_json::json!({
        "failedEntries": failed,
        "errorCode": "ERR_PUBSUB_PUBLISH_MESSAGE",
    });
    Ok((StatusCode::INTERNAL_SERVER_ERROR, axum::Json(body)).into_response())
}
