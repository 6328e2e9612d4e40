//! The resiliency policies, their targets and each sidecar's circuit breakers, live.

use axum::Json;
use axum::extract::State;
use axum::response::{IntoResponse, Response};

use crate::project::ProjectView;

pub async fn overview(State(view): State<ProjectView>) -> Response {
    let components = view.shared.components();
    Json(crate::resiliency::view::overview(&components.resiliency)).into_response()
}
