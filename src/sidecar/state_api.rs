//! `/v1.0/state/...`: save, get, bulk get, delete and transactions, with Dapr's status codes.

use crate::resiliency::AppPolicies;
use std::collections::BTreeMap;
use std::sync::Arc;

use axum::body::Body;
use axum::extract::{Path, RawQuery, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use futures_util::StreamExt;
use serde::Deserialize;
use serde_json::value::RawValue;

use super::SidecarState;
use super::catalog::{self, Api};
use super::error::ApiError;
use super::keys::{Query, stored_key};
use crate::components::stores::StateEntry;
use crate::state::{Delete, Op, StoreError, Write};

type Result<T> = std::result::Result<T, ApiError>;

/// The store named in the URL, as this app may see it.
pub(super) fn store(sidecar: &SidecarState, name: &str) -> Result<Arc<StateEntry>> {
    store_for(Api::Http, sidecar, name)
}

/// The store named, with the error `api` gives when there is none.
pub(super) fn store_for(api: Api, sidecar: &SidecarState, name: &str) -> Result<Arc<StateEntry>> {
    let components = sidecar.shared.components();
    if components.stores.is_empty() {
        return Err(catalog::state_not_configured(api, name, &sidecar.app_id));
    }
    components
        .stores
        .get(name)
        .filter(|entry| entry.component.visible_to(&sidecar.app_id))
        .cloned()
        .ok_or_else(|| catalog::state_not_found(api, name, &sidecar.app_id))
}

pub(super) async fn read_body(sidecar: &SidecarState, body: Body) -> Result<axum::body::Bytes> {
    axum::body::to_bytes(body, sidecar.max_body_size())
        .await
        .map_err(|_| too_large(sidecar.max_body_size()))
}

/// 413 for a body over the sidecar's limit (daprd answers 400, its handler's read error). The
/// code stays daprd's, so a client that reads `errorCode` sees what it would there.
pub(super) fn too_large(limit: usize) -> ApiError {
    ApiError::new(
        StatusCode::PAYLOAD_TOO_LARGE,
        "ERR_MALFORMED_REQUEST",
        format!("http: request body too large (the limit is {limit} bytes; raise `max_body_size`)"),
    )
}

/// What every write handler starts with: the store, the query's metadata, the (limited) body.
pub(super) async fn prologue(
    sidecar: &SidecarState,
    name: &str,
    query: Option<String>,
    body: Body,
) -> Result<(Arc<StateEntry>, Query, axum::body::Bytes)> {
    let entry = store(sidecar, name)?;
    let query = Query::parse(query.as_deref());
    Ok((entry, query, read_body(sidecar, body).await?))
}

#[derive(Debug, Deserialize)]
struct Options {
    #[serde(default)]
    concurrency: String,
}

#[derive(Debug, Deserialize)]
struct SaveItem {
    #[serde(default)]
    key: String,
    value: Option<Box<RawValue>>,
    etag: Option<String>,
    #[serde(default)]
    metadata: BTreeMap<String, String>,
    options: Option<Options>,
}

/// One write, with Dapr's rules for concurrency, TTL and metadata precedence.
pub(super) fn to_write(
    entry: &StateEntry,
    key: String,
    value: Vec<u8>,
    etag: Option<String>,
    concurrency: &str,
    metadata: &BTreeMap<String, String>,
) -> std::result::Result<Write, StoreError> {
    let first_write = match concurrency {
        "" | "last-write" => false,
        "first-write" => true,
        other => {
            return Err(StoreError::Failed(format!(
                "unrecognized concurrency model '{other}'"
            )));
        }
    };
    // With last-write an etag is ignored, as in Dapr.
    let etag = if concurrency == "last-write" {
        None
    } else {
        etag.filter(|e| !e.is_empty())
    };
    let ttl = match metadata.get("ttlInSeconds").filter(|raw| !raw.is_empty()) {
        Some(raw) => Some(ttl_in_seconds(raw).map_err(StoreError::Failed)?),
        None => entry.default_ttl,
    };
    Ok(Write {
        key,
        value,
        etag,
        first_write,
        ttl,
    })
}

pub async fn save(
    State(sidecar): State<Arc<SidecarState>>,
    Path(name): Path<String>,
    RawQuery(query): RawQuery,
    body: Body,
) -> Result<Response> {
    let (entry, query, bytes) = prologue(&sidecar, &name, query, body).await?;
    let items: Vec<SaveItem> =
        serde_json::from_slice(&bytes).map_err(|err| ApiError::malformed(err.to_string()))?;
    let mut writes = Vec::with_capacity(items.len());
    for item in items {
        if item.key.is_empty() {
            return Err(ApiError::malformed("\"key\" is a required field"));
        }
        let key = stored_key(&entry.key_prefix, &sidecar.app_id, &name, &item.key)?;
        let mut metadata = item.metadata;
        metadata.extend(query.metadata.clone());
        let value = item
            .value
            .map(|v| v.get().as_bytes().to_vec())
            .unwrap_or_else(|| b"null".to_vec());
        let concurrency = item.options.map(|o| o.concurrency).unwrap_or_default();
        writes.push(to_write(
            &entry,
            key,
            value,
            item.etag,
            &concurrency,
            &metadata,
        ));
    }
    // Items are independent (not a transaction), as in Dapr: run them concurrently.
    let results = futures_util::future::join_all(writes.into_iter().map(|write| async {
        match write {
            Ok(write) => entry.apply(&sidecar.policies(), &[Op::Upsert(write)]).await,
            Err(err) => Err(err),
        }
    }))
    .await;
    let errors: Vec<StoreError> = results.into_iter().filter_map(|r| r.err()).collect();
    if errors.is_empty() {
        return Ok(StatusCode::NO_CONTENT.into_response());
    }
    let status = match errors.iter().find(|e| !matches!(e, StoreError::Failed(_))) {
        Some(StoreError::EtagMismatch(_)) => StatusCode::CONFLICT,
        Some(StoreError::EtagInvalid(_)) => StatusCode::BAD_REQUEST,
        _ => StatusCode::INTERNAL_SERVER_ERROR,
    };
    let joined: Vec<String> = errors.iter().map(|e| e.to_string()).collect();
    Err(ApiError::new(
        status,
        "ERR_STATE_SAVE",
        format!(
            "failed saving state in state store {name}: {}",
            joined.join("\n")
        ),
    ))
}

pub async fn get(
    State(sidecar): State<Arc<SidecarState>>,
    Path((name, key)): Path<(String, String)>,
) -> Result<Response> {
    let entry = store(&sidecar, &name)?;
    let stored = stored_key(&entry.key_prefix, &sidecar.app_id, &name, &key)?;
    let item = entry
        .get(&sidecar.policies(), &stored)
        .await
        .map_err(|err| {
            ApiError::new(
                StatusCode::INTERNAL_SERVER_ERROR,
                "ERR_STATE_GET",
                format!("fail to get {key} from state store {name}: {err}"),
            )
        })?;
    let Some(item) = item else {
        return Ok(StatusCode::NO_CONTENT.into_response());
    };
    let mut response = (
        StatusCode::OK,
        [(header::CONTENT_TYPE, "application/json")],
        item.data,
    )
        .into_response();
    if let Some(etag) = item.etag.and_then(|e| HeaderValue::from_str(&e).ok()) {
        response.headers_mut().insert("etag", etag);
    }
    Ok(response)
}

pub async fn delete(
    State(sidecar): State<Arc<SidecarState>>,
    Path((name, key)): Path<(String, String)>,
    headers: HeaderMap,
) -> Result<Response> {
    let entry = store(&sidecar, &name)?;
    let stored = stored_key(&entry.key_prefix, &sidecar.app_id, &name, &key)?;
    // Sent verbatim (quotes are not stripped); an empty header means no etag.
    let etag = headers
        .get(header::IF_MATCH)
        .and_then(|v| v.to_str().ok())
        .filter(|v| !v.is_empty())
        .map(String::from);
    match entry
        .store
        .apply(&[Op::Delete(Delete { key: stored, etag })])
        .await
    {
        Ok(()) => Ok(StatusCode::NO_CONTENT.into_response()),
        Err(err) => {
            let status = if matches!(err, StoreError::EtagMismatch(_)) {
                StatusCode::CONFLICT
            } else {
                StatusCode::INTERNAL_SERVER_ERROR
            };
            Err(ApiError::new(
                status,
                "ERR_STATE_DELETE",
                format!("failed deleting state with key {key}: {err}"),
            ))
        }
    }
}

#[derive(Debug, Deserialize)]
struct BulkRequest {
    #[serde(default)]
    keys: Vec<String>,
    #[serde(default)]
    parallelism: i64,
}

pub async fn bulk(
    State(sidecar): State<Arc<SidecarState>>,
    Path(name): Path<String>,
    body: Body,
) -> Result<Response> {
    let entry = store(&sidecar, &name)?;
    let bytes = read_body(&sidecar, body).await?;
    let request: BulkRequest = serde_json::from_slice(&bytes)
        .map_err(|err| ApiError::malformed(format!("failed deserializing HTTP body: {err}")))?;
    let stored: Vec<(String, String)> = request
        .keys
        .into_iter()
        .map(|key| stored_key(&entry.key_prefix, &sidecar.app_id, &name, &key).map(|s| (key, s)))
        .collect::<std::result::Result<_, _>>()?;
    let parallelism = if request.parallelism <= 0 {
        stored.len().max(1)
    } else {
        request.parallelism as usize
    };
    let policies = sidecar.policies();
    let items: Vec<BulkItem> = futures_util::stream::iter(stored)
        .map(|(key, stored)| {
            let (entry, policies) = (entry.clone(), policies.clone());
            async move { bulk_item(&entry, &policies, key, &stored).await }
        })
        .buffered(parallelism)
        .collect()
        .await;
    Ok((StatusCode::OK, axum::Json(items)).into_response())
}

/// One entry of a bulk get, in Dapr's field order.
#[derive(Debug, serde::Serialize)]
struct BulkItem {
    key: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    data: Option<Box<RawValue>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    etag: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    error: Option<String>,
}

/// `{"key","data","etag"}` for a hit, `{"key"}` for a miss, `{"key","error"}` for a failure.
async fn bulk_item(
    entry: &StateEntry,
    policies: &AppPolicies,
    key: String,
    stored: &str,
) -> BulkItem {
    let mut item = BulkItem {
        key,
        data: None,
        etag: None,
        error: None,
    };
    match entry.get(policies, stored).await {
        Ok(Some(found)) => {
            // Stored JSON goes out as it is; bytes that are not JSON (saved over gRPC) as a string.
            let text = String::from_utf8_lossy(&found.data).into_owned();
            item.data = RawValue::from_string(text.clone())
                .ok()
                .or_else(|| serde_json::value::to_raw_value(&text).ok());
            item.etag = found.etag;
        }
        Ok(None) => {}
        Err(err) => item.error = Some(err.to_string()),
    }
    item
}

/// `ttlInSeconds` as components-contrib reads it: an integer from -1 to 2^31-1 (a larger one
/// would overflow a store's clock).
pub(crate) fn ttl_in_seconds(raw: &str) -> std::result::Result<i64, String> {
    let value = raw.parse::<i64>().map_err(|_| {
        format!("incorrect value for metadata 'ttlInSeconds': strconv.ParseInt: parsing \"{raw}\": invalid syntax")
    })?;
    if !(-1..=i64::from(i32::MAX)).contains(&value) {
        return Err("incorrect value for metadata 'ttlInSeconds': must be -1 or greater (and at most 2147483647)".into());
    }
    Ok(value)
}
