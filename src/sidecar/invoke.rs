//! Service invocation: `/v1.0/invoke/{app-id}/method/{method}` and the `dapr-app-id` header
//! on any other path. The request goes to the target app with its verb, query, headers and
//! body; the app's answer comes back as it is, whatever its status.

use std::sync::Arc;

use axum::extract::{Path, Request, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};

use super::SidecarState;
use super::error::ApiError;
use super::state_api::read_body;
use crate::channel::{AppChannel, Invocation};
use crate::resiliency::{self, Failure, Verdict};
use crate::supervisor::AppState;

fn invoke_error(status: StatusCode, message: impl Into<String>) -> ApiError {
    ApiError::new(status, "ERR_DIRECT_INVOKE", message)
}

/// Go's `path.Clean` on the method, without the leading `/`: `a/../b/` → `b`, `.` → ``.
fn clean_method(method: &str) -> String {
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
    parts.join("/")
}

/// `/v1.0/invoke/{app-id}/method/{*method}`; a `dapr-app-id` header still wins, and then the
/// whole path is the method.
pub async fn invoke(
    State(sidecar): State<Arc<SidecarState>>,
    Path((app_id, method)): Path<(String, String)>,
    request: Request,
) -> Response {
    if let Some(target) = header_target(request.headers()) {
        let method = request.uri().path().trim_start_matches('/').to_string();
        return forward(&sidecar, &target, &method, request).await;
    }
    forward(&sidecar, &app_id, &clean_method(&method), request).await
}

/// Every route Dapr does not know: an invocation when `dapr-app-id` names a target, else
/// Dapr's 404.
pub async fn fallback(State(sidecar): State<Arc<SidecarState>>, request: Request) -> Response {
    match header_target(request.headers()) {
        Some(target) => {
            let method = request.uri().path().trim_start_matches('/').to_string();
            forward(&sidecar, &target, &method, request).await
        }
        None => invoke_error(
            StatusCode::NOT_FOUND,
            "failed getting app id either from the URL path or the header dapr-app-id",
        )
        .into_response(),
    }
}

/// The target named by a `dapr-app-id` header, or by `Authorization: Basic` with the user
/// name `dapr-app-id` (any case) and the app-id as the password, as Dapr reads them.
fn header_target(headers: &HeaderMap) -> Option<String> {
    let named = headers
        .get("dapr-app-id")
        .and_then(|v| v.to_str().ok())
        .filter(|v| !v.is_empty())
        .map(String::from);
    named.or_else(|| {
        let value = headers.get("authorization")?.to_str().ok()?;
        let (scheme, encoded) = value.split_once(' ')?;
        if !scheme.eq_ignore_ascii_case("basic") {
            return None;
        }
        let decoded = crate::pubsub::envelope::base64_decode(encoded.trim())?;
        let (user, id) = std::str::from_utf8(&decoded).ok()?.split_once(':')?;
        (user.eq_ignore_ascii_case("dapr-app-id") && !id.is_empty()).then(|| id.to_string())
    })
}

pub(super) async fn forward(
    sidecar: &SidecarState,
    target: &str,
    method: &str,
    request: Request,
) -> Response {
    match try_forward(sidecar, target, method, request).await {
        Ok(response) => response,
        Err(err) => err.into_response(),
    }
}

async fn try_forward(
    sidecar: &SidecarState,
    target: &str,
    method: &str,
    request: Request,
) -> Result<Response, ApiError> {
    let failed = |err: &str| {
        invoke_error(
            StatusCode::INTERNAL_SERVER_ERROR,
            format!("failed to invoke, id: {target}, err: {err}"),
        )
    };
    let channel = sidecar.shared.app(target).ok_or_else(|| {
        failed(&format!(
            "couldn't find service: {target} is not an app of this project"
        ))
    })?;
    if channel.port.is_none() {
        return Err(failed(
            "app channel is not initialized: the app has no `port`",
        ));
    }
    let (parts, body) = request.into_parts();
    // Read whole so that every attempt of a retry sends the same body.
    let body = read_body(sidecar, body).await?;
    let policy = sidecar.policies().endpoint(target, method);
    let attempt = || {
        let (channel, body, parts) = (&channel, body.clone(), &parts);
        async move {
            ready(sidecar, channel, target).await?;
            let call = Invocation {
                method,
                parts,
                body,
                caller: &sidecar.app_id,
            };
            channel.invoke(call).await.map_err(Failure)
        }
    };
    let what = || format!("{}: invoking {target} {method}", sidecar.app_id);
    resiliency::run(&policy, what, judge, attempt)
        .await
        .map_err(|Failure(err)| failed(&err))
}

/// Dapr's reading of an invocation's answer: a status below 200 or above 399 is a failure
/// carrying that code, which a retry policy's `matching` may retry.
fn judge(result: &Result<Response, Failure>) -> Verdict {
    match result {
        Ok(response) if (200..400).contains(&response.status().as_u16()) => Verdict::Success,
        Ok(response) => Verdict::Failure(Some(i32::from(response.status().as_u16()))),
        Err(_) => Verdict::Failure(None),
    }
}

/// Waits for a target that is on its way back (a reload or restart) rather than fail the
/// caller; an app stopped for good is an error.
async fn ready(sidecar: &SidecarState, channel: &AppChannel, target: &str) -> Result<(), Failure> {
    if !channel.is_ready() && is_coming_back(channel.status().state) {
        let mut waiting = channel.clone();
        let _ = tokio::time::timeout(sidecar.invoke_wait, waiting.wait_ready()).await;
    }
    if channel.is_ready() {
        return Ok(());
    }
    Err(Failure(format!(
        "app {target} is not ready (it is {})",
        channel.status().state.as_str()
    )))
}

/// Whether an app that is not ready now is on its way to ready (as opposed to stopped for good).
fn is_coming_back(state: AppState) -> bool {
    matches!(
        state,
        AppState::Pending | AppState::Starting | AppState::Stopping | AppState::BackingOff
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn methods_are_cleaned_like_go_paths() {
        assert_eq!(clean_method("api/v1/add"), "api/v1/add");
        assert_eq!(clean_method("a/../b/"), "b");
        assert_eq!(clean_method("."), "");
        assert_eq!(clean_method("x//y"), "x/y");
    }

    #[test]
    fn the_target_comes_from_dapr_app_id_or_basic_auth() {
        let mut headers = HeaderMap::new();
        assert_eq!(header_target(&headers), None);
        // base64("DAPR-APP-ID:orders")
        headers.insert(
            "authorization",
            "Basic REFQUi1BUFAtSUQ6b3JkZXJz".parse().unwrap(),
        );
        assert_eq!(header_target(&headers).as_deref(), Some("orders"));
        headers.insert("dapr-app-id", "other".parse().unwrap());
        assert_eq!(
            header_target(&headers).as_deref(),
            Some("other"),
            "the header wins"
        );
        let mut basic_other_user = HeaderMap::new();
        // base64("alice:orders")
        basic_other_user.insert("authorization", "Basic YWxpY2U6b3JkZXJz".parse().unwrap());
        assert_eq!(header_target(&basic_other_user), None);
    }
}
