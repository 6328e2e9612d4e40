//! Service invocation: `/v1.0/invoke/{app-id}/method/{method}` and the `dapr-app-id` header
//! on any other path. The request goes to the target app with its verb, query, headers and
//! body; the app's answer comes back as it is, whatever its status.

use std::sync::Arc;

use axum::body::Body;
use axum::extract::{Path, Request, State};
use axum::http::{HeaderMap, HeaderName, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};

use super::SidecarState;
use super::error::ApiError;
use super::state_api::read_body;
use crate::manifest::AppProtocol;
use crate::supervisor::AppState;

/// Hop-by-hop headers (RFC 9110) and Dapr's own, never forwarded either way.
const NOT_FORWARDED: &[&str] = &[
    "connection",
    "keep-alive",
    "proxy-authenticate",
    "proxy-authorization",
    "proxy-connection",
    "te",
    "trailer",
    "transfer-encoding",
    "upgrade",
    "http2-settings",
    "host",
    "content-length",
    "dapr-app-id",
    "dapr-api-token",
    "destination-app-id",
    "dapr-caller-app-id",
    "dapr-callee-app-id",
    "dapr-caller-namespace",
];

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
    let base = channel
        .base_url()
        .ok_or_else(|| failed("app channel is not initialized: the app has no `port`"))?;
    if !channel.is_ready() && is_coming_back(channel.status().state) {
        // A reload or restart: wait for the app rather than fail the caller.
        let mut waiting = channel.clone();
        let _ = tokio::time::timeout(sidecar.invoke_wait, waiting.wait_ready()).await;
    }
    if !channel.is_ready() {
        return Err(failed(&format!(
            "app {target} is not ready (it is {})",
            channel.status().state.as_str()
        )));
    }
    let (parts, body) = request.into_parts();
    let body = read_body(sidecar, body).await?;
    if channel.protocol == AppProtocol::Grpc {
        return on_invoke(&channel, method, &parts, body.to_vec())
            .await
            .map_err(|err| failed(&err));
    }
    let mut url = format!("{base}/{method}");
    if let Some(query) = parts.uri.query() {
        url.push('?');
        url.push_str(query);
    }
    let mut headers = forwardable(&parts.headers);
    let stamp = |headers: &mut HeaderMap, name: &'static str, value: &str| {
        if let Ok(value) = HeaderValue::from_str(value) {
            headers.insert(HeaderName::from_static(name), value);
        }
    };
    stamp(&mut headers, "dapr-caller-app-id", &sidecar.app_id);
    stamp(&mut headers, "dapr-callee-app-id", target);
    stamp(&mut headers, "x-forwarded-for", "127.0.0.1");
    if let Some(host) = parts.headers.get("host").and_then(|h| h.to_str().ok()) {
        stamp(&mut headers, "x-forwarded-host", host);
        stamp(
            &mut headers,
            "forwarded",
            &format!("for=127.0.0.1;by=127.0.0.1;host={host}"),
        );
    }
    if !headers.contains_key("traceparent") {
        stamp(&mut headers, "traceparent", &super::new_traceparent());
    }
    if let Some(token) = &channel.app_token {
        stamp(&mut headers, "dapr-api-token", token);
    }
    let answer = sidecar
        .shared
        .http
        .request(parts.method, url)
        .headers(headers)
        .body(body)
        .send()
        .await
        .map_err(|err| failed(&err.to_string()))?;
    let status = answer.status();
    let headers = forwardable(answer.headers());
    let body = answer
        .bytes()
        .await
        .map_err(|err| failed(&err.to_string()))?;
    let mut response = (status, Body::from(body)).into_response();
    response.headers_mut().extend(headers);
    Ok(response)
}

/// An invocation of a gRPC app: `AppCallback.OnInvoke`, its answer as HTTP (a gRPC error
/// becomes the HTTP status Dapr maps it to, with the `google.rpc.Status` as JSON).
async fn on_invoke(
    channel: &crate::channel::AppChannel,
    method: &str,
    parts: &axum::http::request::Parts,
    body: Vec<u8>,
) -> Result<Response, String> {
    use dapr::dapr::proto::common::v1 as common;
    let verb = common::http_extension::Verb::from_str_name(parts.method.as_str())
        .unwrap_or(common::http_extension::Verb::Post);
    let content_type = parts
        .headers
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_string();
    let request = common::InvokeRequest {
        method: method.to_string(),
        data: Some(prost_types::Any {
            type_url: String::new(),
            value: body,
        }),
        content_type,
        http_extension: Some(common::HttpExtension {
            verb: verb as i32,
            querystring: parts.uri.query().unwrap_or_default().to_string(),
        }),
    };
    let mut client = channel.callback().await?;
    let mut request = tonic::Request::new(request);
    if let Some(token) = channel.app_token.as_ref().and_then(|t| t.parse().ok()) {
        request.metadata_mut().insert("dapr-api-token", token);
    }
    match client.on_invoke(request).await {
        Ok(answer) => {
            let answer = answer.into_inner();
            let data = answer.data.map(|a| a.value).unwrap_or_default();
            let mut response = (StatusCode::OK, Body::from(data)).into_response();
            if let Ok(value) = HeaderValue::from_str(&answer.content_type)
                && !answer.content_type.is_empty()
            {
                response.headers_mut().insert("content-type", value);
            }
            Ok(response)
        }
        Err(status) if status.code() == tonic::Code::Unavailable && !channel.is_ready() => {
            Err(status.message().to_string())
        }
        Err(status) => {
            let http = match status.code() {
                tonic::Code::InvalidArgument
                | tonic::Code::FailedPrecondition
                | tonic::Code::OutOfRange => 400,
                tonic::Code::Unauthenticated => 401,
                tonic::Code::PermissionDenied => 403,
                tonic::Code::NotFound => 404,
                tonic::Code::AlreadyExists | tonic::Code::Aborted => 409,
                tonic::Code::ResourceExhausted => 429,
                tonic::Code::Cancelled => 499,
                tonic::Code::Unimplemented => 501,
                tonic::Code::Unavailable => 503,
                tonic::Code::DeadlineExceeded => 504,
                _ => 500,
            };
            let body = serde_json::json!({
                "code": status.code() as i32,
                "message": status.message(),
                "details": [],
            });
            let code = StatusCode::from_u16(http).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
            Ok((code, axum::Json(body)).into_response())
        }
    }
}

/// Whether an app that is not ready now is on its way to ready (as opposed to stopped for good).
fn is_coming_back(state: AppState) -> bool {
    matches!(
        state,
        AppState::Pending | AppState::Starting | AppState::Stopping | AppState::BackingOff
    )
}

/// `headers` without hop-by-hop headers, those `Connection` lists, and Dapr's own.
fn forwardable(headers: &HeaderMap) -> HeaderMap {
    let listed: Vec<String> = headers
        .get_all("connection")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(',').map(|s| s.trim().to_ascii_lowercase()))
        .collect();
    let mut out = HeaderMap::new();
    for (name, value) in headers {
        let lower = name.as_str();
        if NOT_FORWARDED.contains(&lower)
            || listed.iter().any(|l| l == lower)
            || lower.ends_with("-bin")
        {
            continue;
        }
        out.append(name.clone(), value.clone());
    }
    out
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

    #[test]
    fn hop_by_hop_and_dapr_headers_stay_behind() {
        let mut headers = HeaderMap::new();
        headers.insert("connection", "close, x-private".parse().unwrap());
        headers.insert("x-private", "1".parse().unwrap());
        headers.insert("dapr-api-token", "t".parse().unwrap());
        headers.insert("grpc-trace-bin", "1".parse().unwrap());
        headers.insert("h", "v".parse().unwrap());
        let kept = forwardable(&headers);
        assert_eq!(kept.len(), 1);
        assert_eq!(kept["h"], "v");
    }
}
