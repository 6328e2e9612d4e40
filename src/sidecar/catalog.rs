//! The errors Dapr builds with dapr/kit (`pkg/api/errors` in dapr/dapr): for each, the HTTP
//! status, the gRPC code, the legacy `ERR_*` code, the message and the details, as Dapr sends
//! them, so SDKs that read the `DAPR_*` reason (`DaprGrpcError.error_code()`) see the same one.

use std::collections::BTreeMap;

use axum::http::StatusCode;
use tonic::Code;

use super::error::ApiError;

/// Which of Dapr's APIs answers: a few errors differ between them (Dapr's HTTP handlers pass
/// the app id or the request's metadata where its gRPC handlers pass none).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Api {
    Http,
    Grpc,
}

fn app_id_metadata(api: Api, app_id: &str) -> Option<BTreeMap<String, String>> {
    (api == Api::Http && !app_id.is_empty())
        .then(|| BTreeMap::from([("appID".to_string(), app_id.to_string())]))
}

pub fn state_not_configured(api: Api, store: &str, app_id: &str) -> ApiError {
    ApiError::kit(
        Code::FailedPrecondition,
        StatusCode::INTERNAL_SERVER_ERROR,
        "ERR_STATE_STORE_NOT_CONFIGURED",
        format!("state store {store} is not configured"),
    )
    .reason("DAPR_STATE_NOT_CONFIGURED", app_id_metadata(api, app_id))
}

pub fn state_not_found(api: Api, store: &str, app_id: &str) -> ApiError {
    ApiError::kit(
        Code::InvalidArgument,
        StatusCode::BAD_REQUEST,
        "ERR_STATE_STORE_NOT_FOUND",
        format!("state store {store} is not found"),
    )
    .reason("DAPR_STATE_NOT_FOUND", app_id_metadata(api, app_id))
}

/// A key (or key prefix) with Dapr's `||` separator in it. Dapr's HTTP API wraps the gRPC
/// error's text once more, hence the `api error: ...` message there.
pub fn illegal_key(api: Api, store: &str, key: &str) -> ApiError {
    let inner = format!("input key/keyPrefix '{key}' can't contain '||'");
    let message = match api {
        Api::Grpc => inner,
        Api::Http => format!("api error: code = InvalidArgument desc = {inner}"),
    };
    ApiError::kit(
        Code::InvalidArgument,
        StatusCode::BAD_REQUEST,
        "ERR_MALFORMED_REQUEST",
        message.clone(),
    )
    .field_violation(key, message)
    .resource("state", store, "")
    .reason("DAPR_STATE_ILLEGAL_KEY", None)
}

/// The pub/sub errors share a shape: a ResourceInfo (unless `resource` is false) describing the
/// failure, then the ErrorInfo.
fn pubsub_error(
    (grpc, status, code): (Code, StatusCode, &'static str),
    name: &str,
    message: String,
    resource: bool,
    reason: &'static str,
    metadata: Option<BTreeMap<String, String>>,
) -> ApiError {
    let mut err = ApiError::kit(grpc, status, code, message.clone());
    if resource {
        err = err.resource("pubsub", name, message);
    }
    err.reason(reason, metadata)
}

/// What failed, as Dapr lists it for publish errors.
fn topic_error(topic: &str, error: &str) -> Option<BTreeMap<String, String>> {
    Some(BTreeMap::from([
        ("topic".to_string(), topic.to_string()),
        ("error".to_string(), error.to_string()),
    ]))
}

pub fn pubsub_name_empty(metadata: &BTreeMap<String, String>) -> ApiError {
    pubsub_error(
        (
            Code::InvalidArgument,
            StatusCode::NOT_FOUND,
            "ERR_PUBSUB_EMPTY",
        ),
        "",
        "pubsub name is empty".into(),
        true,
        "DAPR_PUBSUB_NAME_EMPTY",
        Some(metadata.clone()),
    )
}

pub fn pubsub_not_found(api: Api, name: &str, metadata: &BTreeMap<String, String>) -> ApiError {
    pubsub_error(
        (
            Code::InvalidArgument,
            StatusCode::NOT_FOUND,
            "ERR_PUBSUB_NOT_FOUND",
        ),
        name,
        format!("pubsub {name} is not found"),
        false,
        "DAPR_PUBSUB_NOT_FOUND",
        (api == Api::Http).then(|| metadata.clone()),
    )
}

pub fn topic_empty(name: &str, metadata: &BTreeMap<String, String>) -> ApiError {
    pubsub_error(
        (
            Code::InvalidArgument,
            StatusCode::NOT_FOUND,
            "ERR_TOPIC_NAME_EMPTY",
        ),
        name,
        format!("topic is empty in pubsub {name}"),
        true,
        "DAPR_PUBSUB_TOPIC_NAME_EMPTY",
        Some(metadata.clone()),
    )
}

pub fn publish_forbidden(name: &str, topic: &str, app_id: &str) -> ApiError {
    let message = format!("topic {topic} is not allowed for app id {app_id}");
    pubsub_error(
        (
            Code::PermissionDenied,
            StatusCode::FORBIDDEN,
            "ERR_PUBSUB_FORBIDDEN",
        ),
        name,
        message.clone(),
        true,
        "DAPR_PUBSUB_FORBIDDEN",
        topic_error(topic, &message),
    )
}

pub fn publish_failed(name: &str, topic: &str, error: &str) -> ApiError {
    pubsub_error(
        (
            Code::Internal,
            StatusCode::INTERNAL_SERVER_ERROR,
            "ERR_PUBSUB_PUBLISH_MESSAGE",
        ),
        name,
        format!("error when publishing to topic {topic} in pubsub {name}: {error}"),
        true,
        "DAPR_PUBSUB_PUBLISH_MESSAGE",
        topic_error(topic, error),
    )
}

pub fn pubsub_metadata(name: &str, metadata: &BTreeMap<String, String>, error: &str) -> ApiError {
    pubsub_error(
        (
            Code::InvalidArgument,
            StatusCode::BAD_REQUEST,
            "ERR_PUBSUB_REQUEST_METADATA",
        ),
        name,
        format!("failed deserializing metadata. Error: {error}"),
        true,
        "DAPR_PUBSUB_METADATA_DESERIALIZATION",
        Some(metadata.clone()),
    )
}

pub fn cloud_event_creation(name: &str, app_id: &str, error: &str) -> ApiError {
    pubsub_error(
        (
            Code::InvalidArgument,
            StatusCode::INTERNAL_SERVER_ERROR,
            "ERR_PUBSUB_CLOUD_EVENTS_SER",
        ),
        name,
        "cannot create cloudevent".into(),
        true,
        "DAPR_PUBSUB_CLOUD_EVENT_CREATION",
        Some(BTreeMap::from([
            ("appID".to_string(), app_id.to_string()),
            ("error".to_string(), error.to_string()),
        ])),
    )
}

/// A bulk publish body that is not a list of entries.
pub fn bulk_unmarshal(name: &str, topic: &str, app_id: &str, error: &str) -> ApiError {
    bulk_events(
        name,
        format!("error when unmarshaling the request for topic {topic} pubsub {name}: {error}"),
        "DAPR_PUBSUB_UNMARSHAL_EVENTS",
        BTreeMap::from([("appID".to_string(), app_id.to_string())]),
    )
}

/// A bulk publish entry without an id, or with one used twice.
pub fn bulk_entry_id(name: &str, topic: &str, app_id: &str) -> ApiError {
    let error = "entryId is duplicated or not present for entry";
    bulk_events(
        name,
        format!("error marshaling events to bytes for topic {topic} pubsub {name}. error: {error}"),
        "DAPR_PUBSUB_MARSHAL_EVENTS",
        BTreeMap::from([
            ("appID".to_string(), app_id.to_string()),
            ("error".to_string(), error.to_string()),
        ]),
    )
}

fn bulk_events(
    name: &str,
    message: String,
    reason: &'static str,
    metadata: BTreeMap<String, String>,
) -> ApiError {
    pubsub_error(
        (
            Code::InvalidArgument,
            StatusCode::BAD_REQUEST,
            "ERR_PUBSUB_EVENTS_SER",
        ),
        name,
        message,
        true,
        reason,
        Some(metadata),
    )
}
