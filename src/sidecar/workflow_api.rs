//! Dapr's workflow API (`/v1.0/workflows/{component}/…`, the same under `v1.0-beta1` and
//! `v1.0-alpha1`), and the checks and answers it shares with the gRPC `*WorkflowBeta1`
//! methods (Dapr's `universal/workflow.go`). The component name is not checked (`dapr` by
//! convention), as in Dapr.

use std::collections::HashMap;
use std::sync::Arc;

use axum::Json;
use axum::body::Body;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde_json::json;

use super::SidecarState;
use super::error::ApiError;
use crate::workflow::{Snapshot, Start, WorkflowError};

type Result<T> = std::result::Result<T, ApiError>;

fn internal(code: &'static str, err: WorkflowError) -> ApiError {
    ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, code, err.to_string())
}

/// Dapr's rules for an instance id given on start: at most 64 letters, digits, `-` and `_`.
pub fn check_instance_id(id: &str) -> Result<()> {
    if id.chars().count() > 64 {
        return Err(ApiError::new(
            StatusCode::BAD_REQUEST,
            "ERR_INSTANCE_ID_TOO_LONG",
            format!("workflow instance ID exceeds the max length of 64 characters: {id}"),
        ));
    }
    if !id
        .chars()
        .all(|c| c.is_alphanumeric() || c == '-' || c == '_')
    {
        return Err(ApiError::new(
            StatusCode::BAD_REQUEST,
            "ERR_INSTANCE_ID_INVALID",
            format!(
                "workflow instance ID '{id}' is invalid: only alphanumeric and underscore characters are allowed"
            ),
        ));
    }
    Ok(())
}

/// Starts `name`; an empty id gets a random one (a UUID with dashes, as Dapr makes them).
pub async fn start(
    s: &SidecarState,
    name: &str,
    instance: &str,
    input: &[u8],
    at_ns: Option<u64>,
) -> Result<String> {
    if name.is_empty() {
        return Err(ApiError::new(
            StatusCode::BAD_REQUEST,
            "ERR_WORKFLOW_NAME_MISSING",
            "workflow name is not configured",
        ));
    }
    check_instance_id(instance)?;
    let instance = match instance.is_empty() {
        true => crate::pubsub::envelope::uuid_v4(),
        false => instance.to_string(),
    };
    // The body is the input as the SDK encodes it (JSON text); empty is no input.
    let input = (!input.is_empty()).then(|| String::from_utf8_lossy(input).into_owned());
    let start = Start {
        instance,
        name: name.to_string(),
        input,
        at_ns,
    };
    s.shared
        .workflows
        .start(&s.app_id, start)
        .await
        .map_err(|err| {
            ApiError::new(
                StatusCode::INTERNAL_SERVER_ERROR,
                "ERR_START_WORKFLOW",
                format!("error starting workflow '{name}': {err}"),
            )
        })
}

/// The `properties` Dapr's API shows of an instance (only those it has).
pub fn properties(snapshot: &Snapshot) -> HashMap<String, String> {
    let mut properties = HashMap::new();
    let mut put = |key: &str, value: &Option<String>| {
        if let Some(value) = value {
            properties.insert(format!("dapr.workflow.{key}"), value.clone());
        }
    };
    put("input", &snapshot.input);
    put("output", &snapshot.output);
    put("custom_status", &snapshot.custom_status);
    if let Some(failure) = &snapshot.failure {
        put("failure.error_type", &Some(failure.error_type.clone()));
        put("failure.error_message", &Some(failure.message.clone()));
        put("failure.stack_trace", &failure.stack_trace);
    }
    properties
}

/// The status name Dapr's API uses (STALLED has none there).
pub fn runtime_status(snapshot: &Snapshot) -> &'static str {
    match snapshot.status_name {
        "STALLED" => "UNKNOWN",
        name => name,
    }
}

fn not_found(instance: &str) -> ApiError {
    ApiError::new(
        StatusCode::NOT_FOUND,
        "ERR_INSTANCE_ID_NOT_FOUND",
        format!("unable to find workflow with the provided instance ID: {instance}"),
    )
}

/// What an operation on an existing instance failed with: unknown ids are Dapr's 404.
fn failed(code: &'static str, instance: &str, err: WorkflowError) -> ApiError {
    match err {
        WorkflowError::NotFound => not_found(instance),
        err => internal(code, err),
    }
}

pub async fn http_start(
    State(s): State<Arc<SidecarState>>,
    Path((_component, name)): Path<(String, String)>,
    Query(query): Query<HashMap<String, String>>,
    body: Body,
) -> Response {
    let body = match super::state_api::read_body(&s, body).await {
        Ok(body) => body,
        Err(err) => return err.into_response(),
    };
    let instance = query.get("instanceID").map(String::as_str).unwrap_or("");
    match start(&s, &name, instance, &body, None).await {
        Ok(id) => (StatusCode::ACCEPTED, Json(json!({ "instanceID": id }))).into_response(),
        Err(err) => err.into_response(),
    }
}

pub async fn http_get(
    State(s): State<Arc<SidecarState>>,
    Path((_component, instance)): Path<(String, String)>,
) -> Response {
    match s.shared.workflows.get(&s.app_id, &instance).await {
        Ok(Some(snapshot)) => Json(json!({
            "instanceID": snapshot.instance,
            "workflowName": snapshot.name,
            "createdAt": snapshot.created_text,
            "lastUpdatedAt": snapshot.last_updated_text,
            "runtimeStatus": runtime_status(&snapshot),
            "properties": properties(&snapshot),
        }))
        .into_response(),
        Ok(None) => not_found(&instance).into_response(),
        Err(err) => internal("ERR_GET_WORKFLOW", err).into_response(),
    }
}

pub async fn http_raise(
    State(s): State<Arc<SidecarState>>,
    Path((_component, instance, event)): Path<(String, String, String)>,
    body: Body,
) -> Response {
    let body = match super::state_api::read_body(&s, body).await {
        Ok(body) => body,
        Err(err) => return err.into_response(),
    };
    if event.is_empty() {
        return ApiError::new(
            StatusCode::BAD_REQUEST,
            "ERR_WORKFLOW_EVENT_NAME_MISSING",
            "missing workflow event name",
        )
        .into_response();
    }
    let input = (!body.is_empty()).then(|| String::from_utf8_lossy(&body).into_owned());
    let raised = s
        .shared
        .workflows
        .raise(&s.app_id, &instance, &event, input)
        .await;
    accepted(raised.map_err(|e| failed("ERR_RAISE_EVENT_WORKFLOW", &instance, e)))
}

fn accepted(result: Result<()>) -> Response {
    match result {
        Ok(()) => (StatusCode::ACCEPTED, Json(json!({}))).into_response(),
        Err(err) => err.into_response(),
    }
}

/// `terminate`, `pause`, `resume` and `purge` (the last path segment says which).
pub async fn http_control(
    State(s): State<Arc<SidecarState>>,
    Path((_component, instance, verb)): Path<(String, String, String)>,
) -> Response {
    let workflows = &s.shared.workflows;
    let app = s.app_id.as_str();
    let result = match verb.as_str() {
        "terminate" => workflows
            .terminate(app, &instance, None, true)
            .await
            .map_err(|e| failed("ERR_TERMINATE_WORKFLOW", &instance, e)),
        "pause" => workflows
            .suspend(app, &instance, None)
            .await
            .map_err(|e| failed("ERR_PAUSE_WORKFLOW", &instance, e)),
        "resume" => workflows
            .resume(app, &instance, None)
            .await
            .map_err(|e| failed("ERR_RESUME_WORKFLOW", &instance, e)),
        "purge" => workflows
            .purge(app, &instance, true, false)
            .await
            .map(|_| ())
            .map_err(|e| failed("ERR_PURGE_WORKFLOW", &instance, e)),
        other => Err(ApiError::new(
            StatusCode::NOT_FOUND,
            "ERR_DIRECT_INVOKE",
            format!(
                "unknown workflow operation `{other}`: terminate, pause, resume, purge or raiseEvent"
            ),
        )),
    };
    accepted(result)
}
