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
use super::catalog::{self, Api};
use super::error::ApiError;
use super::keys::Query;
use super::state_api::read_body;
use crate::pubsub::PubsubEntry;
use crate::pubsub::envelope::{self, Publish};

type Result<T> = std::result::Result<T, ApiError>;

/// The pubsub named in the URL, if this app may publish `topic` to it; checked in Dapr's order.
pub(super) fn pubsub(
    api: Api,
    sidecar: &SidecarState,
    name: &str,
    topic: &str,
    metadata: &BTreeMap<String, String>,
) -> Result<Arc<PubsubEntry>> {
    if name.is_empty() {
        return Err(catalog::pubsub_name_empty(metadata));
    }
    let pubsubs = sidecar.shared.components().pubsubs.clone();
    let entry = pubsubs
        .get(name)
        .filter(|e| e.component.visible_to(&sidecar.app_id))
        .cloned()
        .ok_or_else(|| catalog::pubsub_not_found(api, name, metadata))?;
    if topic.is_empty() {
        return Err(catalog::topic_empty(name, metadata));
    }
    if !entry.may_publish(&sidecar.app_id, topic) {
        return Err(catalog::publish_forbidden(name, topic, &sidecar.app_id));
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
    let raw = envelope::raw_payload(metadata)
        .map_err(|err| catalog::pubsub_metadata(pubsub, metadata, &err.to_string()))?;
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
        .map_err(|err| catalog::cloud_event_creation(pubsub, &sidecar.app_id, &err.to_string()))?
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
        .publish(&sidecar.policies(), topic, &data, metadata)
        .await
        .map_err(|err| err.to_string())
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
    let query = Query::parse(query.as_deref());
    let entry = pubsub(Api::Http, &sidecar, &name, &topic, &query.metadata)?;
    let body = read_body(&sidecar, body)
        .await
        .map_err(|err| catalog::publish_failed(&name, &topic, &err.message))?;
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
        .publish(&sidecar.policies(), &topic, &data, &query.metadata)
        .await
        .map_err(|err| catalog::publish_failed(&name, &topic, &err.to_string()))?;
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

/// `/v1.0-alpha1/publish/bulk/{pubsub}/{topic}`: each entry published as a single publish would
/// be (Redis has no bulk publish, so Dapr does the same); failures are listed per entry.
pub async fn bulk_publish(
    State(sidecar): State<Arc<SidecarState>>,
    Path((name, topic)): Path<(String, String)>,
    RawQuery(query): RawQuery,
    headers: HeaderMap,
    body: Body,
) -> Result<Response> {
    let query = Query::parse(query.as_deref());
    let entry = pubsub(Api::Http, &sidecar, &name, &topic, &query.metadata)?;
    let body = read_body(&sidecar, body).await?;
    let app_id = &sidecar.app_id;
    let entries: Vec<BulkEntry> = serde_json::from_slice(&body)
        .map_err(|err| catalog::bulk_unmarshal(&name, &topic, app_id, &err.to_string()))?;
    let mut seen = std::collections::HashSet::new();
    if !entries
        .iter()
        .all(|e| seen.insert(e.entry_id.as_str()) && !e.entry_id.is_empty())
    {
        return Err(catalog::bulk_entry_id(&name, &topic, app_id));
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
