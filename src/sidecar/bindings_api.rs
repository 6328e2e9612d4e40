//! Output bindings through the sidecar: `POST|PUT /v1.0/bindings/{name}` and gRPC
//! `InvokeBinding`. Over HTTP the request's `data` is JSON-encoded again before it reaches the
//! binding (`"hello"` sends the 7 bytes `"hello"`, as daprd's `json.Marshal`); over gRPC it is
//! passed as it is.

use std::collections::BTreeMap;
use std::sync::Arc;

use axum::body::Body;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, HeaderName, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;

use super::SidecarState;
use super::error::ApiError;
use super::state_api::read_body;
use crate::bindings::{BindingError, OutputRequest, OutputResponse};

#[derive(Deserialize)]
struct Request {
    #[serde(default)]
    data: serde_json::Value,
    #[serde(default)]
    metadata: BTreeMap<String, String>,
    #[serde(default)]
    operation: String,
}

pub async fn invoke(
    State(sidecar): State<Arc<SidecarState>>,
    Path(name): Path<String>,
    headers: HeaderMap,
    body: Body,
) -> Result<Response, ApiError> {
    let body = read_body(&sidecar, body).await?;
    let request: Request = serde_json::from_slice(&body)
        .map_err(|err| ApiError::malformed(format!("failed deserializing HTTP body: {err}")))?;
    let mut metadata = request.metadata;
    for field in ["traceparent", "tracestate", "baggage"] {
        if let Some(value) = headers.get(field).and_then(|v| v.to_str().ok()) {
            metadata
                .entry(field.to_string())
                .or_insert_with(|| value.to_string());
        }
    }
    let request = OutputRequest {
        operation: request.operation,
        data: serde_json::to_vec(&request.data).unwrap_or_default().into(),
        metadata,
    };
    let components = sidecar.shared.components();
    match components
        .bindings
        .invoke(&sidecar.app_id, &name, request, &sidecar.policies())
        .await
    {
        Ok(None) => Ok(StatusCode::NO_CONTENT.into_response()),
        Ok(Some(answer)) => Ok(with_metadata(answer)),
        Err(err) => Ok(failed(&name, err)),
    }
}

/// daprd's 500 with the binding's metadata as headers, when it answered something.
fn failed(name: &str, err: BindingError) -> Response {
    let error = invoke_failed(name, &err.message);
    match err.response {
        Some(answer) => {
            let mut response = error.into_response();
            for (key, value) in metadata_headers(&answer.metadata) {
                response.headers_mut().append(key, value);
            }
            response
        }
        None => error.into_response(),
    }
}

/// `ERR_INVOKE_OUTPUT_BINDING`, as daprd words it.
pub fn invoke_failed(name: &str, message: &str) -> ApiError {
    ApiError::new(
        StatusCode::INTERNAL_SERVER_ERROR,
        "ERR_INVOKE_OUTPUT_BINDING",
        format!("error invoking output binding {name}: {message}"),
    )
}

/// 200 with the binding's data and its metadata as headers.
fn with_metadata(answer: OutputResponse) -> Response {
    let mut response = (StatusCode::OK, Body::from(answer.data)).into_response();
    let headers = response.headers_mut();
    headers.insert("content-type", HeaderValue::from_static("application/json"));
    for (key, value) in metadata_headers(&answer.metadata) {
        headers.append(key, value);
    }
    response
}

/// Each metadata entry as a `metadata.<key>` header (entries that cannot be headers are left
/// out).
fn metadata_headers(metadata: &BTreeMap<String, String>) -> Vec<(HeaderName, HeaderValue)> {
    metadata
        .iter()
        .filter_map(|(key, value)| {
            let name = HeaderName::from_bytes(format!("metadata.{key}").as_bytes()).ok()?;
            Some((name, HeaderValue::from_str(value).ok()?))
        })
        .collect()
}
