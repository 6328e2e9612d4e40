//! The Jobs API: `POST|GET|DELETE /v1.0/jobs/{name}` (and `/v1.0-alpha1/…`), with daprd's
//! errors (dapr/kit, `DAPR_SCHEDULER_*`).

use std::collections::BTreeMap;
use std::sync::Arc;

use axum::Json;
use axum::body::Body;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use tonic::Code;

use super::SidecarState;
use super::error::ApiError;
use super::state_api::read_body;
use crate::jobs::{self, JobError};

pub async fn schedule(
    State(sidecar): State<Arc<SidecarState>>,
    Path(name): Path<String>,
    body: Body,
) -> Result<StatusCode, ApiError> {
    let body = read_body(&sidecar, body).await?;
    let (spec, overwrite) = jobs::from_http(&body).map_err(|e| error(&sidecar, e))?;
    jobs::schedule(
        &sidecar.shared.scheduler,
        &sidecar.app_id,
        &name,
        spec,
        overwrite,
    )
    .map_err(|e| error(&sidecar, e))?;
    Ok(StatusCode::NO_CONTENT)
}

pub async fn get(
    State(sidecar): State<Arc<SidecarState>>,
    Path(name): Path<String>,
) -> Result<Response, ApiError> {
    match jobs::get(&sidecar.shared.scheduler, &sidecar.app_id, &name) {
        Some(spec) => Ok(Json(jobs::http_view(&name, &spec)).into_response()),
        None => Err(not_found(&sidecar, &name)),
    }
}

pub async fn delete(
    State(sidecar): State<Arc<SidecarState>>,
    Path(name): Path<String>,
) -> Result<StatusCode, ApiError> {
    jobs::delete(&sidecar.shared.scheduler, &sidecar.app_id, &name).map_err(|e| {
        let message = format!("failed to delete job due to: {e}");
        kit(
            &sidecar,
            Code::Internal,
            StatusCode::INTERNAL_SERVER_ERROR,
            "DAPR_SCHEDULER_DELETE_JOB",
            message,
        )
    })?;
    Ok(StatusCode::NO_CONTENT)
}

/// `DAPR_SCHEDULER_GET_JOB` for a job that is not there.
pub fn not_found(sidecar: &SidecarState, name: &str) -> ApiError {
    let message = format!("failed to get job due to: job not found: {name}");
    kit(
        sidecar,
        Code::Internal,
        StatusCode::INTERNAL_SERVER_ERROR,
        "DAPR_SCHEDULER_GET_JOB",
        message,
    )
}

/// A kit error whose `ErrorInfo` carries the app-id and namespace, as daprd's scheduler
/// errors do.
fn kit(
    sidecar: &SidecarState,
    grpc: Code,
    status: StatusCode,
    code: &'static str,
    message: String,
) -> ApiError {
    let metadata = BTreeMap::from([
        ("appID".to_string(), sidecar.app_id.clone()),
        ("namespace".to_string(), crate::env::namespace().to_string()),
    ]);
    ApiError::kit(grpc, status, code, message).reason(code, Some(metadata))
}

/// The Jobs API's error for `err`.
pub fn error(sidecar: &SidecarState, err: JobError) -> ApiError {
    let (grpc, status) = (Code::InvalidArgument, StatusCode::BAD_REQUEST);
    let internal = (Code::Internal, StatusCode::INTERNAL_SERVER_ERROR);
    let schedule_failed = |e: &JobError| format!("failed to schedule job due to: {e}");
    match &err {
        JobError::Malformed(message) => ApiError::malformed(message.clone()),
        JobError::Empty => kit(
            sidecar,
            grpc,
            status,
            "DAPR_SCHEDULER_SCHEDULE_EMPTY",
            err.to_string(),
        ),
        JobError::NameInBody => kit(
            sidecar,
            grpc,
            status,
            "DAPR_SCHEDULER_JOB_NAME",
            err.to_string(),
        ),
        JobError::Exists => kit(
            sidecar,
            Code::AlreadyExists,
            StatusCode::CONFLICT,
            "DAPR_SCHEDULER_SCHEDULE_JOB",
            schedule_failed(&err),
        ),
        JobError::Invalid(_) | JobError::Store(_) => kit(
            sidecar,
            internal.0,
            internal.1,
            "DAPR_SCHEDULER_SCHEDULE_JOB",
            schedule_failed(&err),
        ),
    }
}
