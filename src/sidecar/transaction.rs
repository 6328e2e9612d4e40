//! `POST /v1.0/state/{store}/transaction`: upserts and deletes, all or nothing.

use std::collections::BTreeMap;
use std::sync::Arc;

use axum::body::Body;
use axum::extract::{Path, RawQuery, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use serde_json::value::RawValue;

use super::SidecarState;
use super::error::ApiError;
use super::keys::stored_key;
use super::state_api::{prologue, to_write};
use crate::components::stores::StateEntry;
use crate::state::{Delete, Op, StoreError};

type Result<T> = std::result::Result<T, ApiError>;

#[derive(Debug, Deserialize)]
struct TransactionRequest {
    #[serde(default)]
    operations: Vec<Operation>,
    #[serde(default)]
    metadata: BTreeMap<String, String>,
}

#[derive(Debug, Deserialize)]
struct Operation {
    operation: String,
    /// Raw values, so `value` is stored exactly as the client sent it.
    #[serde(default)]
    request: BTreeMap<String, Box<RawValue>>,
}

/// A field of an operation's `request`, matched case-insensitively (Dapr decodes it so).
fn field<'a>(request: &'a BTreeMap<String, Box<RawValue>>, name: &str) -> Option<&'a RawValue> {
    request
        .iter()
        .find(|(k, _)| k.eq_ignore_ascii_case(name))
        .map(|(_, v)| v.as_ref())
}

fn json_field(request: &BTreeMap<String, Box<RawValue>>, name: &str) -> serde_json::Value {
    field(request, name)
        .and_then(|raw| serde_json::from_str(raw.get()).ok())
        .unwrap_or_default()
}

fn text_field(request: &BTreeMap<String, Box<RawValue>>, name: &str) -> Result<Option<String>> {
    match json_field(request, name) {
        serde_json::Value::Null => Ok(None),
        serde_json::Value::String(text) => Ok(Some(text)),
        other => Err(ApiError::malformed(format!(
            "failed deserializing HTTP body: '{name}' expected a string, got {other}"
        ))),
    }
}

pub async fn transaction(
    State(sidecar): State<Arc<SidecarState>>,
    Path(name): Path<String>,
    RawQuery(query): RawQuery,
    body: Body,
) -> Result<Response> {
    let (entry, query, bytes) = prologue(&sidecar, &name, query, body).await?;
    let request: TransactionRequest = serde_json::from_slice(&bytes)
        .map_err(|err| ApiError::malformed(format!("failed deserializing HTTP body: {err}")))?;
    let mut ops = Vec::with_capacity(request.operations.len());
    for operation in &request.operations {
        ops.push(transaction_op(
            &sidecar,
            &entry,
            &name,
            operation,
            &request.metadata,
            &query.metadata,
        )?);
    }
    let failed = |err: StoreError| {
        ApiError::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "ERR_STATE_TRANSACTION",
            format!("error while executing state transaction: {err}"),
        )
    };
    let ops: Vec<Op> = ops
        .into_iter()
        .collect::<std::result::Result<_, _>>()
        .map_err(failed)?;
    entry
        .apply(&sidecar.policies(), &ops)
        .await
        .map_err(failed)?;
    Ok(StatusCode::NO_CONTENT.into_response())
}

type PreparedOp = std::result::Result<Op, StoreError>;

fn transaction_op(
    sidecar: &SidecarState,
    entry: &StateEntry,
    name: &str,
    operation: &Operation,
    common: &BTreeMap<String, String>,
    query: &BTreeMap<String, String>,
) -> Result<PreparedOp> {
    let request = &operation.request;
    let key = text_field(request, "key")?.unwrap_or_default();
    if !matches!(operation.operation.as_str(), "upsert" | "delete") {
        return Err(ApiError::new(
            StatusCode::BAD_REQUEST,
            "ERR_NOT_SUPPORTED_STATE_OPERATION",
            format!("operation type {} not supported", operation.operation),
        ));
    }
    if key.is_empty() {
        return Err(ApiError::malformed("\"key\" is a required field"));
    }
    let stored = stored_key(&entry.key_prefix, &sidecar.app_id, name, &key)?;
    let etag = text_field(request, "etag")?;
    if operation.operation == "delete" {
        return Ok(Ok(Op::Delete(Delete { key: stored, etag })));
    }
    let mut metadata = common.clone();
    if let serde_json::Value::Object(own) = json_field(request, "metadata") {
        metadata.extend(own.iter().map(|(k, v)| {
            (
                k.clone(),
                v.as_str()
                    .map(String::from)
                    .unwrap_or_else(|| v.to_string()),
            )
        }));
    }
    metadata.extend(query.clone());
    let value = field(request, "value")
        .map(|v| v.get().as_bytes().to_vec())
        .unwrap_or_else(|| b"null".to_vec());
    let options = json_field(request, "options");
    let concurrency = options
        .as_object()
        .and_then(|o| {
            o.iter()
                .find(|(k, _)| k.eq_ignore_ascii_case("concurrency"))
        })
        .and_then(|(_, c)| c.as_str())
        .unwrap_or("");
    Ok(to_write(entry, stored, value, etag, concurrency, &metadata).map(Op::Upsert))
}
