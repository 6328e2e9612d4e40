//! The dashboard: one page served with the control API (same 127.0.0.1 listener, same data),
//! rendered on the server so the overview works without JavaScript, then kept live by a small
//! script over the endpoints below. Assets are compiled in; nothing is fetched from elsewhere.
//!
//! Nothing here runs unless a browser (or a tool) asks: no background task, no timer.

mod actors;
mod api;
mod jobs;
mod page;
mod resiliency;
mod workflows;

use axum::Router;
use axum::http::header;
use axum::response::IntoResponse;
use axum::routing::{get, post};

use crate::project::ProjectView;

const SCRIPT: &str = include_str!("assets/dashboard.js");
const STYLE: &str = include_str!("assets/dashboard.css");

/// The page, its assets and the endpoints only it needs.
pub fn routes() -> Router<ProjectView> {
    Router::new()
        .route("/", get(page::render))
        .route(
            "/assets/dashboard.js",
            get(|| asset("text/javascript", SCRIPT)),
        )
        .route("/assets/dashboard.css", get(|| asset("text/css", STYLE)))
        .route("/v1/live", get(api::live))
        .route("/v1/logs/stream", get(api::log_stream))
        .route("/v1/events", get(api::events))
        .route("/v1/events/stream", get(api::event_stream))
        .route("/v1/components", get(api::components))
        .route("/v1/state/{store}/keys", get(api::state_keys))
        .route(
            "/v1/state/{store}/item",
            get(api::state_item).delete(api::state_delete),
        )
        .route("/v1/pubsub", get(api::pubsub))
        .route("/v1/pubsub/{pubsub}/{topic}", post(api::publish))
        .route("/v1/actors", get(actors::overview))
        .route("/v1/actors/{actor_type}/{id}", get(actors::actor))
        .route(
            "/v1/actors/{actor_type}/{id}/method/{*method}",
            post(actors::invoke),
        )
        .route(
            "/v1/actors/{actor_type}/{id}/deactivate",
            post(actors::deactivate),
        )
        .route("/v1/jobs", get(jobs::list))
        .route("/v1/resiliency", get(resiliency::overview))
        .route("/v1/jobs/{app}/{name}", axum::routing::delete(jobs::delete))
        .route("/v1/workflows", get(workflows::list))
        .route(
            "/v1/workflow-engine",
            get(workflows::engine).delete(workflows::reset_engine),
        )
        .route("/v1/workflows/{app}/{id}", get(workflows::instance))
        .route("/v1/workflows/{app}/{id}/{verb}", post(workflows::control))
}

/// Every component (stores, pub/subs, secret stores), by name.
fn all_components(loaded: &crate::sidecar::Components) -> Vec<&crate::components::Component> {
    let mut all: Vec<&crate::components::Component> = loaded
        .stores
        .values()
        .map(|s| &s.component)
        .chain(loaded.pubsubs.values().map(|p| &p.component))
        .chain(loaded.secrets.values().map(|(c, _)| c))
        .collect();
    all.sort_by(|a, b| a.name.cmp(&b.name));
    all
}

async fn asset(kind: &'static str, body: &'static str) -> impl IntoResponse {
    (
        [
            (header::CONTENT_TYPE, kind),
            (header::CACHE_CONTROL, "no-cache"),
        ],
        body,
    )
}
