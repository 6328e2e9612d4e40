//! `bindings.http`: an output binding that calls an HTTP endpoint, as components-contrib's
//! does: the operation is the method, `path` is appended to `url`, metadata keys that start
//! with a capital letter are request headers, and the response's status and headers come back
//! as metadata (`statusCode`, `status`, `Content-Type`, …).

use std::collections::BTreeMap;
use std::time::Duration;

use bytes::Bytes;
use reqwest::Method;

use super::{BindingError, OutputRequest, OutputResponse};
use crate::components::Component;

/// Dapr's operations of the HTTP binding, in its order (`create` is a POST).
pub const OPERATIONS: [&str; 9] = [
    "create", "get", "head", "post", "put", "patch", "delete", "options", "trace",
];

/// Dapr's default response body limit: 100 MB.
const MAX_BODY: u64 = 100 << 20;

/// Dapr's dial timeout, so an address that never answers fails rather than hangs.
const CONNECT: Duration = Duration::from_secs(15);

pub struct HttpBinding {
    url: String,
    client: reqwest::Client,
    /// `responseTimeout`: none by default, as Dapr.
    timeout: Option<Duration>,
    max_body: u64,
    error_if_not_2xx: bool,
    /// `securityTokenHeader: securityToken`, sent on every request.
    token: Option<(String, String)>,
}

impl HttpBinding {
    pub fn new(component: &Component) -> Result<HttpBinding, String> {
        let url = component.get("url").unwrap_or_default().to_string();
        if let Some((message, _)) = check_item("url", &url) {
            return Err(message);
        }
        let timeout = match component.get("responseTimeout") {
            Some(raw) => Some(duration(raw)?),
            None => None,
        };
        let max_body = match component.get("maxResponseBodySize") {
            Some(raw) => size(raw)?,
            None => MAX_BODY,
        };
        let token = match (
            component.get("securityToken"),
            component.get("securityTokenHeader"),
        ) {
            (Some(token), Some(header)) => Some((header.to_string(), token.to_string())),
            _ => None,
        };
        let client = reqwest::Client::builder()
            .connect_timeout(CONNECT)
            .build()
            .map_err(|e| e.to_string())?;
        Ok(HttpBinding {
            url,
            client,
            timeout,
            max_body,
            error_if_not_2xx: component
                .get("errorIfNot2XX")
                .is_none_or(crate::components::truthy),
            token,
        })
    }

    /// One request; a status that is not 2xx is an error unless `errorIfNot2XX` is off.
    pub async fn invoke(&self, request: OutputRequest) -> Result<OutputResponse, BindingError> {
        let method = match request.operation.as_str() {
            "create" => Method::POST,
            other => Method::from_bytes(other.to_ascii_uppercase().as_bytes())
                .map_err(|e| BindingError::new(e.to_string()))?,
        };
        let url = match request.metadata.get("path") {
            Some(path) => format!(
                "{}/{}",
                self.url.trim_end_matches('/'),
                path.trim_start_matches('/')
            ),
            None => self.url.clone(),
        };
        let with_body = matches!(method, Method::POST | Method::PUT | Method::PATCH);
        let mut call = self.client.request(method, &url);
        if let Some(timeout) = self.timeout {
            call = call.timeout(timeout);
        }
        call = call.header("Accept", "application/json; charset=utf-8");
        if with_body {
            call = call
                .header("Content-Type", "application/json; charset=utf-8")
                .body(request.data.clone());
        }
        if let Some((header, token)) = &self.token {
            call = call.header(header, token);
        }
        for (key, value) in &request.metadata {
            let header = key.starts_with(|c: char| c.is_ascii_uppercase())
                || ["traceparent", "tracestate", "baggage"].contains(&key.as_str());
            if header {
                call = call.header(key, value);
            }
        }
        let answer = call
            .send()
            .await
            .map_err(|e| BindingError::new(cause(&e)))?;
        let status = answer.status();
        let mut metadata = BTreeMap::from([
            ("statusCode".to_string(), status.as_u16().to_string()),
            (
                "status".to_string(),
                format!(
                    "{} {}",
                    status.as_u16(),
                    status.canonical_reason().unwrap_or("")
                ),
            ),
        ]);
        for name in answer.headers().keys() {
            let values: Vec<&str> = answer
                .headers()
                .get_all(name)
                .iter()
                .filter_map(|v| v.to_str().ok())
                .collect();
            metadata.insert(canonical(name.as_str()), values.join(", "));
        }
        let data = read_limited(answer, self.max_body).await?;
        let response = OutputResponse { data, metadata };
        let error_if_not_2xx = request
            .metadata
            .get("errorIfNot2XX")
            .map_or(self.error_if_not_2xx, |v| crate::components::truthy(v));
        if error_if_not_2xx && !status.is_success() {
            return Err(BindingError {
                message: format!("received status code {}", status.as_u16()),
                response: Some(response),
            });
        }
        Ok(response)
    }
}

/// The body, cut at `limit` bytes as Dapr's `io.LimitReader` cuts it.
async fn read_limited(mut answer: reqwest::Response, limit: u64) -> Result<Bytes, BindingError> {
    let mut body = Vec::new();
    while let Some(chunk) = answer
        .chunk()
        .await
        .map_err(|e| BindingError::new(cause(&e)))?
    {
        let room = (limit as usize).saturating_sub(body.len());
        body.extend_from_slice(&chunk[..chunk.len().min(room)]);
        if body.len() as u64 >= limit {
            break;
        }
    }
    Ok(Bytes::from(body))
}

/// The error and what caused it (reqwest's own text alone says only "error sending request").
fn cause(err: &reqwest::Error) -> String {
    let mut text = err.to_string();
    let mut source = std::error::Error::source(err);
    while let Some(inner) = source {
        text.push_str(": ");
        text.push_str(&inner.to_string());
        source = inner.source();
    }
    text
}

/// Go's canonical header key: `content-type` → `Content-Type`.
fn canonical(name: &str) -> String {
    name.split('-')
        .map(|part| {
            let mut chars = part.chars();
            match chars.next() {
                Some(first) => first.to_ascii_uppercase().to_string() + chars.as_str(),
                None => String::new(),
            }
        })
        .collect::<Vec<_>>()
        .join("-")
}

fn duration(raw: &str) -> Result<Duration, String> {
    crate::timespec::go_duration(raw)
        .ok()
        .and_then(|d| d.to_std())
        .ok_or_else(|| format!("`{raw}` is not a Go duration such as `30s`"))
}

fn size(raw: &str) -> Result<u64, String> {
    crate::manifest::parse_size(raw)
        .map(|n| n as u64)
        .ok_or_else(|| format!("`{raw}` is not a size such as `100Mi` or `1048576`"))
}

/// What is wrong with one of its metadata values (message, hint).
pub fn check_item(name: &str, value: &str) -> Option<(String, String)> {
    let problem = match name.to_ascii_lowercase().as_str() {
        "url" if value.starts_with("https://") => Some(format!(
            "`{value}`: daca's HTTP binding speaks plain http:// only (no TLS yet)"
        )),
        "url" if !value.starts_with("http://") => Some(format!("`{value}` is not an http:// URL")),
        "responsetimeout" => duration(value).err(),
        "maxresponsebodysize" => size(value).err(),
        _ => None,
    };
    problem.map(|message| {
        (
            message,
            "see https://docs.dapr.io/reference/components-reference/supported-bindings/http/"
                .into(),
        )
    })
}

#[cfg(test)]
mod tests {
    #[test]
    fn header_keys_are_go_s() {
        assert_eq!(super::canonical("content-type"), "Content-Type");
        assert_eq!(super::canonical("x-request-id"), "X-Request-Id");
    }
}
