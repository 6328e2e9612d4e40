//! The actors as the dashboard and `daca ps --actors` see and drive them: types per app,
//! active ids with their idle time and timers, reminders with their next fire; one actor's
//! state keys and values; a method call; a deactivation.

use axum::Json;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};

use super::api::Failure;
use crate::actors::Invoke;
use crate::project::ProjectView;

/// Who calls an actor from the dashboard (`dapr-caller-app-id`).
pub const DASHBOARD_CALLER: &str = "daca-dashboard";
/// State keys shown at most per actor.
const KEYS: usize = 200;

pub async fn overview(State(view): State<ProjectView>) -> Response {
    Json(view.shared.actors.overview()).into_response()
}

fn failure(status: StatusCode, message: String) -> Failure {
    Failure(status, message)
}

impl From<crate::actors::ActorError> for Failure {
    fn from(err: crate::actors::ActorError) -> Failure {
        failure(err.status, err.message)
    }
}

/// One actor: its host, whether it is active, its state (keys and values), timers, reminders.
pub async fn actor(
    State(view): State<ProjectView>,
    Path((actor_type, id)): Path<(String, String)>,
) -> Result<Response, Failure> {
    let actors = &view.shared.actors;
    let active = actors.active(&actor_type, &id);
    let host = match &active {
        Some(active) => Some(active.host.clone()),
        None => actors.placement_host(&actor_type, &id),
    };
    let Some(host) = host else {
        let message = format!("no app hosts actor type `{actor_type}`");
        return Err(failure(StatusCode::NOT_FOUND, message));
    };
    let mut state = serde_json::Map::new();
    for key in actors.state_keys(&host, &actor_type, &id, KEYS).await? {
        let data = actors.get_state(&host, &actor_type, &id, &key).await?;
        let value = data
            .map(|d| {
                serde_json::from_slice::<Value>(&d)
                    .unwrap_or_else(|_| Value::String(String::from_utf8_lossy(&d).into_owned()))
            })
            .unwrap_or(Value::Null);
        state.insert(key, value);
    }
    let reminders: Vec<Value> = actors
        .reminders(&actor_type, Some(&id))
        .into_iter()
        .map(|(job, next)| {
            let name = job.key.rsplit("||").next().unwrap_or_default().to_string();
            json!({ "name": name, "next_ms": next / 1_000_000, "period": job.spec.get("period") })
        })
        .collect();
    let timers: Vec<String> = active.as_ref().map(|a| a.timer_names()).unwrap_or_default();
    Ok(Json(json!({
        "actor_type": actor_type, "id": id, "host": host, "active": active.is_some(),
        "state": state, "timers": timers, "reminders": reminders,
    }))
    .into_response())
}

/// Calls a method, as another app would; the app's answer comes back with its status.
pub async fn invoke(
    State(view): State<ProjectView>,
    Path((actor_type, id, method)): Path<(String, String, String)>,
    body: Bytes,
) -> Result<Response, Failure> {
    let mut headers = axum::http::HeaderMap::new();
    headers.insert(
        axum::http::header::CONTENT_TYPE,
        axum::http::HeaderValue::from_static("application/json"),
    );
    let call = Invoke {
        actor_type,
        id,
        method,
        headers,
        query: None,
        body,
        caller: DASHBOARD_CALLER.into(),
    };
    let answer = view.shared.actors.invoke(call).await?;
    let body = String::from_utf8_lossy(&answer.body).into_owned();
    Ok(Json(json!({ "status": answer.status, "body": body })).into_response())
}

pub async fn deactivate(
    State(view): State<ProjectView>,
    Path((actor_type, id)): Path<(String, String)>,
) -> Result<Response, Failure> {
    let actors = &view.shared.actors;
    let Some(active) = actors.active(&actor_type, &id) else {
        let message = format!("actor {actor_type}/{id} is not active");
        return Err(failure(StatusCode::NOT_FOUND, message));
    };
    actors.deactivate(&active).await;
    Ok(StatusCode::NO_CONTENT.into_response())
}
