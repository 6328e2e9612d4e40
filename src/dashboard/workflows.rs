//! Workflows as the dashboard and `daca workflows` see and drive them: every instance of the
//! project's apps with its status, one instance with its history as a timeline (each
//! activity's input, output, duration and failure with the traceback the SDK sent), and the
//! controls: raise an event, suspend, resume, terminate, purge.

use std::time::Duration;

use axum::Json;
use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use serde_json::json;

use super::api::Failure;
use crate::project::ProjectView;
use crate::workflow::WorkflowError;

/// How long a control waits for the workflow to take it (a step needs a connected worker).
const TAKEN_WITHIN: Duration = Duration::from_secs(10);

impl From<WorkflowError> for Failure {
    fn from(err: WorkflowError) -> Failure {
        let status = match err {
            WorkflowError::NotFound => StatusCode::NOT_FOUND,
            WorkflowError::NotCompleted | WorkflowError::AlreadyExists(_) => StatusCode::CONFLICT,
            WorkflowError::Invalid(_) => StatusCode::BAD_REQUEST,
            WorkflowError::NoStore => StatusCode::PRECONDITION_FAILED,
            WorkflowError::Store(_) => StatusCode::BAD_GATEWAY,
        };
        Failure(status, err.to_string())
    }
}

fn app_ids(view: &ProjectView) -> Vec<String> {
    view.snapshot()
        .apps
        .iter()
        .map(|app| app.spec.id.to_string())
        .collect()
}

/// Every instance of the project's apps, newest first, and each app's connected workers.
pub async fn list(State(view): State<ProjectView>) -> Result<Response, Failure> {
    let apps = app_ids(&view);
    let workflows = &view.shared.workflows;
    let workers: serde_json::Map<String, serde_json::Value> = apps
        .iter()
        .map(|app| (app.clone(), json!(workflows.connected_workers(app))))
        .collect();
    let instances = match workflows.list(&apps).await {
        Ok(instances) => instances,
        // No actor state store: no workflows, which the page says.
        Err(WorkflowError::NoStore) => Vec::new(),
        Err(err) => return Err(err.into()),
    };
    Ok(Json(json!({ "instances": instances, "workers": workers })).into_response())
}

/// One instance: its summary and its timeline.
pub async fn instance(
    State(view): State<ProjectView>,
    Path((app, id)): Path<(String, String)>,
) -> Result<Response, Failure> {
    let workflows = &view.shared.workflows;
    let summary = workflows
        .get(&app, &id)
        .await?
        .ok_or(WorkflowError::NotFound)?;
    let history = workflows.history(&app, &id).await?;
    Ok(Json(json!({ "instance": summary, "history": history })).into_response())
}

#[derive(Debug, Deserialize)]
pub struct ControlQuery {
    /// The event to raise (`raise`).
    event: Option<String>,
    /// `purge` a running instance too.
    #[serde(default)]
    force: bool,
}

/// `raise` (the body is the event's data, JSON), `suspend`, `resume`, `terminate`, `purge`.
pub async fn control(
    State(view): State<ProjectView>,
    Path((app, id, verb)): Path<(String, String, String)>,
    Query(query): Query<ControlQuery>,
    body: Bytes,
) -> Result<Response, Failure> {
    let workflows = &view.shared.workflows;
    let text = (!body.is_empty()).then(|| String::from_utf8_lossy(&body).into_owned());
    if let Some(data) = &text
        && serde_json::from_str::<serde_json::Value>(data).is_err()
    {
        let message = format!("the data must be JSON (the SDK reads it as JSON), not `{data}`");
        return Err(Failure(StatusCode::BAD_REQUEST, message));
    }
    let done = async {
        match verb.as_str() {
            "raise" => {
                let Some(event) = query.event.as_deref().filter(|e| !e.is_empty()) else {
                    let message = "raise needs `?event=NAME`".to_string();
                    return Err(Failure(StatusCode::BAD_REQUEST, message));
                };
                Ok(workflows.raise(&app, &id, event, text).await?)
            }
            "suspend" => Ok(workflows.suspend(&app, &id, text).await?),
            "resume" => Ok(workflows.resume(&app, &id, text).await?),
            "terminate" => Ok(workflows.terminate(&app, &id, text, true).await?),
            "purge" => Ok(workflows
                .purge(&app, &id, true, query.force)
                .await
                .map(|_| ())?),
            other => Err(Failure(
                StatusCode::NOT_FOUND,
                format!("no workflow action `{other}`: raise, suspend, resume, terminate or purge"),
            )),
        }
    };
    match tokio::time::timeout(TAKEN_WITHIN, done).await {
        Ok(Ok(())) => Ok(Json(json!({ "done": verb })).into_response()),
        Ok(Err(failure)) => Err(failure),
        Err(_) => Ok((
            StatusCode::ACCEPTED,
            Json(json!({
                "done": verb,
                "pending": "asked; the workflow takes it at its next step, which needs a connected worker (is the app running?)",
            })),
        )
            .into_response()),
    }
}

/// The engine's own time per step (medians and 99th percentiles), for the benchmark.
pub async fn engine(State(view): State<ProjectView>) -> Response {
    Json(view.shared.workflows.stats()).into_response()
}

/// Forgets the engine's measurements (a benchmark's warm-up is over).
pub async fn reset_engine(State(view): State<ProjectView>) -> Response {
    view.shared.workflows.reset_stats();
    StatusCode::NO_CONTENT.into_response()
}
