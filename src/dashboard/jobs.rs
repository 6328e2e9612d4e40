//! The apps' jobs as the dashboard and `daca jobs` see them, with their next fire; a job can
//! be deleted from here.

use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};

use super::api::Failure;
use crate::project::ProjectView;

pub async fn list(State(view): State<ProjectView>) -> Response {
    Json(crate::jobs::overview(&view.shared.scheduler)).into_response()
}

pub async fn delete(
    State(view): State<ProjectView>,
    Path((app, name)): Path<(String, String)>,
) -> Result<StatusCode, Failure> {
    crate::jobs::delete(&view.shared.scheduler, &app, &name)
        .map_err(|e| Failure(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()))?;
    Ok(StatusCode::NO_CONTENT)
}
