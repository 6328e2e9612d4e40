//! Dapr's actor HTTP API (`/v1.0/actors/...`): method calls, state, timers and reminders,
//! with daprd's status codes, error codes and bodies. The work is the actor runtime's
//! (`crate::actors`); this is the wire.

use std::collections::BTreeMap;
use std::sync::Arc;

use axum::body::Body;
use axum::extract::{Path, Request, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use serde_json::value::RawValue;

use super::SidecarState;
use super::error::ApiError;
use super::state_api::read_body;
use crate::actors::{ActorError, Invoke, ReminderSpec, StateOp, TimerSpec};

type Result<T> = std::result::Result<T, ApiError>;

impl From<ActorError> for ApiError {
    fn from(err: ActorError) -> ApiError {
        ApiError::kit(err.grpc, err.status, err.code, err.message)
    }
}

/// `/v1.0/actors/{type}/{id}/method/{*method}`, any verb: the app's answer as it is (200).
pub async fn invoke(
    State(sidecar): State<Arc<SidecarState>>,
    Path((actor_type, id, method)): Path<(String, String, String)>,
    request: Request,
) -> Result<Response> {
    let method = normalize_method(&method)?;
    let (parts, body) = request.into_parts();
    let body = read_body(&sidecar, body).await?;
    let call = Invoke {
        actor_type,
        id,
        method,
        headers: parts.headers,
        query: parts.uri.query().map(String::from),
        body,
        caller: sidecar.app_id.clone(),
    };
    let answer = sidecar
        .shared
        .actors
        .invoke_from(call, &sidecar.policies())
        .await?;
    let mut response = (
        StatusCode::from_u16(answer.status).unwrap_or(StatusCode::OK),
        Body::from(answer.body),
    )
        .into_response();
    response.headers_mut().extend(answer.headers);
    Ok(response)
}

/// Dapr's `NormalizeMethod`: no `#`, `?`, NUL or control bytes; then `path.Clean`.
fn normalize_method(method: &str) -> Result<String> {
    if method
        .bytes()
        .any(|b| matches!(b, b'#' | b'?' | 0) || b < 0x20 || b == 0x7f)
    {
        let message = format!("invalid request: method contains forbidden character: {method:?}");
        return Err(ApiError::new(
            StatusCode::BAD_REQUEST,
            "ERR_BAD_REQUEST",
            message,
        ));
    }
    let mut parts: Vec<&str> = Vec::new();
    for part in method.split('/') {
        match part {
            "" | "." => {}
            ".." => {
                parts.pop();
            }
            other => parts.push(other),
        }
    }
    Ok(parts.join("/"))
}

fn malformed(err: impl std::fmt::Display) -> ApiError {
    ActorError::malformed(err.to_string()).into()
}

#[derive(Debug, Deserialize)]
struct StateOperation {
    #[serde(default)]
    operation: String,
    #[serde(default)]
    request: Option<BTreeMap<String, Box<RawValue>>>,
}

/// A field of a request, found as mapstructure finds it (without regard to case).
fn field<'a>(request: &'a BTreeMap<String, Box<RawValue>>, name: &str) -> Option<&'a RawValue> {
    request
        .iter()
        .find(|(k, _)| k.eq_ignore_ascii_case(name))
        .map(|(_, v)| v.as_ref())
}

/// One operation of the transaction body, with daprd's reasons for refusing one.
fn state_op(op: StateOperation, ttl_enabled: bool) -> std::result::Result<StateOp, String> {
    let request = op.request.ok_or("request data is empty")?;
    let key = field(&request, "key")
        .and_then(|k| serde_json::from_str::<String>(k.get()).ok())
        .filter(|k| !k.is_empty())
        .ok_or("missing key")?;
    match op.operation.to_ascii_lowercase().as_str() {
        "upsert" => {
            let value = field(&request, "value").map(|v| v.get().as_bytes().to_vec());
            let ttl = match field(&request, "metadata")
                .and_then(|m| serde_json::from_str::<BTreeMap<String, String>>(m.get()).ok())
                .and_then(|m| m.get("ttlInSeconds").cloned())
            {
                Some(_) if !ttl_enabled => {
                    return Err("ttlInSeconds is not supported without the \"ActorStateTTL\" feature enabled".into());
                }
                Some(raw) => Some(
                    raw.parse::<i64>()
                        .map_err(|_| format!("ttlInSeconds `{raw}` is not an integer"))?,
                ),
                None => None,
            };
            Ok(StateOp::Upsert {
                key,
                value: value.unwrap_or_default(),
                ttl,
            })
        }
        "delete" => Ok(StateOp::Delete { key }),
        "" => Err("operation is empty".into()),
        other => Err(format!("operation type {other} not supported")),
    }
}

/// `POST|PUT /v1.0/actors/{type}/{id}/state`: one transaction; 204.
pub async fn transaction(
    State(sidecar): State<Arc<SidecarState>>,
    Path((actor_type, id)): Path<(String, String)>,
    body: Body,
) -> Result<StatusCode> {
    let body = read_body(&sidecar, body).await?;
    let operations: Vec<StateOperation> = serde_json::from_slice(&body).map_err(malformed)?;
    let ttl_enabled = sidecar
        .shared
        .components()
        .features
        .contains("ActorStateTTL");
    let ops = operations
        .into_iter()
        .map(|op| state_op(op, ttl_enabled))
        .collect::<std::result::Result<Vec<_>, String>>()
        .map_err(ActorError::transaction)?;
    let actors = &sidecar.shared.actors;
    actors
        .transaction(&sidecar.app_id, &sidecar.instance, &actor_type, &id, ops)
        .await?;
    Ok(StatusCode::NO_CONTENT)
}

/// `GET /v1.0/actors/{type}/{id}/state/{key}`: the stored bytes, or 204.
pub async fn get_state(
    State(sidecar): State<Arc<SidecarState>>,
    Path((actor_type, id, key)): Path<(String, String, String)>,
) -> Result<Response> {
    let actors = &sidecar.shared.actors;
    let value = actors
        .get_state(&sidecar.app_id, &actor_type, &id, &key)
        .await?;
    Ok(match value {
        Some(data) => (
            StatusCode::OK,
            [(
                header::CONTENT_TYPE,
                HeaderValue::from_static("application/json"),
            )],
            data,
        )
            .into_response(),
        None => StatusCode::NO_CONTENT.into_response(),
    })
}

/// A timer or reminder body, as daprd decodes it (Go's `encoding/json`: keys without regard
/// to case; `failure_policy` is matched on that key and so not on the SDK's `failurePolicy`).
fn schedule_fields(body: &[u8]) -> Result<BTreeMap<String, Box<RawValue>>> {
    if body.is_empty() {
        return Ok(BTreeMap::new());
    }
    serde_json::from_slice(body).map_err(malformed)
}

fn text(fields: &BTreeMap<String, Box<RawValue>>, name: &str) -> Result<Option<String>> {
    match field(fields, name) {
        None => Ok(None),
        Some(raw) if raw.get() == "null" => Ok(None),
        Some(raw) => serde_json::from_str::<String>(raw.get())
            .map(Some)
            .map_err(|_| malformed(format!("`{name}` must be a string"))),
    }
}

fn data(fields: &BTreeMap<String, Box<RawValue>>) -> Option<Vec<u8>> {
    field(fields, "data").map(|raw| raw.get().as_bytes().to_vec())
}

/// `POST|PUT /v1.0/actors/{type}/{id}/timers/{name}`: 204.
pub async fn create_timer(
    State(sidecar): State<Arc<SidecarState>>,
    Path((actor_type, id, name)): Path<(String, String, String)>,
    body: Body,
) -> Result<StatusCode> {
    let body = read_body(&sidecar, body).await?;
    let fields = schedule_fields(&body)?;
    let spec = TimerSpec {
        due_time: text(&fields, "dueTime")?,
        period: text(&fields, "period")?,
        ttl: text(&fields, "ttl")?,
        callback: text(&fields, "callback")?,
        data: data(&fields),
    };
    let actors = &sidecar.shared.actors;
    actors
        .create_timer(&sidecar.instance, &actor_type, &id, &name, spec)
        .await?;
    Ok(StatusCode::NO_CONTENT)
}

/// `DELETE /v1.0/actors/{type}/{id}/timers/{name}`: 204, known or not.
pub async fn delete_timer(
    State(sidecar): State<Arc<SidecarState>>,
    Path((actor_type, id, name)): Path<(String, String, String)>,
) -> Result<StatusCode> {
    sidecar
        .shared
        .actors
        .delete_timer(&actor_type, &id, &name)?;
    Ok(StatusCode::NO_CONTENT)
}

/// `POST|PUT /v1.0/actors/{type}/{id}/reminders/{name}`: 204 (409 when it exists and
/// `overwrite` is false).
pub async fn create_reminder(
    State(sidecar): State<Arc<SidecarState>>,
    Path((actor_type, id, name)): Path<(String, String, String)>,
    body: Body,
) -> Result<StatusCode> {
    let body = read_body(&sidecar, body).await?;
    let fields = schedule_fields(&body)?;
    let overwrite = match field(&fields, "overwrite") {
        Some(raw) => Some(serde_json::from_str::<bool>(raw.get()).map_err(malformed)?),
        None => None,
    };
    let spec = ReminderSpec {
        due_time: text(&fields, "dueTime")?,
        period: text(&fields, "period")?,
        ttl: text(&fields, "ttl")?,
        data: data(&fields),
        overwrite,
    };
    let actors = &sidecar.shared.actors;
    actors.create_reminder(&sidecar.instance, &actor_type, &id, &name, spec)?;
    Ok(StatusCode::NO_CONTENT)
}

/// `GET /v1.0/actors/{type}/{id}/reminders/{name}`.
pub async fn get_reminder(
    State(sidecar): State<Arc<SidecarState>>,
    Path((actor_type, id, name)): Path<(String, String, String)>,
) -> Result<Response> {
    let actors = &sidecar.shared.actors;
    let view = actors.get_reminder(&sidecar.instance, &actor_type, &id, &name)?;
    Ok(axum::Json(view).into_response())
}

/// `DELETE /v1.0/actors/{type}/{id}/reminders/{name}`: 204, known or not.
pub async fn delete_reminder(
    State(sidecar): State<Arc<SidecarState>>,
    Path((actor_type, id, name)): Path<(String, String, String)>,
) -> Result<StatusCode> {
    let actors = &sidecar.shared.actors;
    actors.delete_reminder(&sidecar.instance, &actor_type, &id, &name)?;
    Ok(StatusCode::NO_CONTENT)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn op(text: &str) -> std::result::Result<StateOp, String> {
        state_op(serde_json::from_str(text).unwrap(), false)
    }

    #[test]
    fn transaction_operations_are_read_as_daprd_reads_them() {
        assert_eq!(
            op(r#"{"operation":"upsert","request":{"key":"k1","value":{"a":1}}}"#),
            Ok(StateOp::Upsert {
                key: "k1".into(),
                value: br#"{"a":1}"#.to_vec(),
                ttl: None
            })
        );
        assert_eq!(
            op(r#"{"operation":"DELETE","request":{"Key":"k2"}}"#),
            Ok(StateOp::Delete { key: "k2".into() })
        );
        assert_eq!(
            op(r#"{"operation":"upsert","request":{"value":1}}"#),
            Err("missing key".into())
        );
        assert_eq!(
            op(r#"{"operation":"upsert"}"#),
            Err("request data is empty".into())
        );
        assert_eq!(
            op(r#"{"request":{"key":"k"}}"#),
            Err("operation is empty".into())
        );
        assert_eq!(
            op(r#"{"operation":"merge","request":{"key":"k"}}"#),
            Err("operation type merge not supported".into())
        );
        let ttl = r#"{"operation":"upsert","request":{"key":"k","value":1,"metadata":{"ttlInSeconds":"60"}}}"#;
        assert!(op(ttl).unwrap_err().contains("ActorStateTTL"));
        let with = state_op(serde_json::from_str(ttl).unwrap(), true).unwrap();
        assert!(matches!(with, StateOp::Upsert { ttl: Some(60), .. }));
    }

    #[test]
    fn methods_are_normalized() {
        assert_eq!(normalize_method("a/../b").unwrap(), "b");
        assert_eq!(normalize_method("timer/t").unwrap(), "timer/t");
        assert!(normalize_method("bad?x").is_err());
    }
}
