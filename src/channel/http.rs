//! The app channel over HTTP, as Dapr calls an app: `GET /dapr/subscribe`, a POST of each
//! CloudEvent to its route, and invocations forwarded with their verb, query, headers and body.

use std::time::Duration;

use axum::body::Body;
use axum::http::{HeaderMap, HeaderName, HeaderValue, Method};
use axum::response::{IntoResponse, Response};
use bytes::Bytes;
use http_body_util::Full;
use serde_json::Value;

use super::{
    ActorAnswer, ActorCall, AppChannel, Delivery, Invocation, ListError, Outcome, Unreachable,
    forwardable,
};
use crate::pubsub::subscription::{self, Subscription};

/// The HTTP client of one app's channel: its connection pool holds connections to that app.
#[derive(Clone)]
pub(super) struct Http {
    client: reqwest::Client,
    /// Actor calls: connections driven by the calling task (see `pool.rs`).
    actors: std::sync::Arc<super::pool::Pool>,
}

impl Http {
    pub fn new() -> Http {
        Http {
            client: client(),
            actors: std::sync::Arc::default(),
        }
    }

    /// The app's connection pool, for the calls other files of the channel make.
    pub(super) fn client(&self) -> &reqwest::Client {
        &self.client
    }

    pub async fn subscriptions(
        &self,
        channel: &AppChannel,
        port: u16,
    ) -> Result<Option<Vec<Subscription>>, ListError> {
        let mut request = self
            .client
            .get(format!("http://127.0.0.1:{port}/dapr/subscribe"))
            .header("content-type", "application/json")
            .header("dapr-app-id", &channel.app_id)
            .timeout(Duration::from_secs(5));
        if let Some(token) = &channel.app_token {
            request = request.header("dapr-api-token", token);
        }
        let response = request
            .send()
            .await
            .map_err(|err| ListError::Retry(format!("GET /dapr/subscribe: {err}")))?;
        let status = response.status().as_u16();
        let body = response.bytes().await.unwrap_or_default();
        match status {
            404 => Ok(None),
            200..=299 => subscription::programmatic(&body)
                .map(Some)
                .map_err(|err| ListError::Invalid(format!("GET /dapr/subscribe: {err}"))),
            _ => Err(ListError::Invalid(format!(
                "GET /dapr/subscribe answered {status}; no programmatic subscriptions"
            ))),
        }
    }

    /// One POST; `Unreachable` when the app could not be reached at all.
    pub async fn deliver(
        &self,
        channel: &AppChannel,
        port: u16,
        delivery: &Delivery<'_>,
    ) -> Result<Outcome, Unreachable> {
        let mut request = self
            .client
            .post(format!("http://127.0.0.1:{port}{}", delivery.path))
            .header("content-type", "application/cloudevents+json")
            .header("pubsubName", delivery.pubsub)
            .timeout(delivery.timeout)
            .body(delivery.body.to_vec());
        for (name, value) in delivery.metadata {
            if let (Ok(name), Ok(value)) = (
                reqwest::header::HeaderName::from_bytes(name.as_bytes()),
                reqwest::header::HeaderValue::from_str(value),
            ) {
                request = request.header(name, value);
            }
        }
        for field in ["traceparent", "tracestate"] {
            if let Some(value) = delivery.event.get(field).and_then(Value::as_str)
                && !value.is_empty()
            {
                request = request.header(field, value);
            }
        }
        if let Some(token) = &channel.app_token {
            request = request.header("dapr-api-token", token);
        }
        match request.send().await {
            Ok(response) => {
                let status = response.status().as_u16();
                match response.bytes().await {
                    Ok(body) => Ok(outcome(status, &body)),
                    Err(_) if !channel.is_ready() => Err(Unreachable),
                    Err(_) => Ok(Outcome::Retry),
                }
            }
            Err(err) if err.is_connect() || !channel.is_ready() => Err(Unreachable),
            Err(err) => {
                let path = delivery.path;
                tracing::debug!("{}: delivery to {path}: {err}", channel.app_id);
                Ok(Outcome::Retry)
            }
        }
    }

    pub async fn invoke(
        &self,
        channel: &AppChannel,
        port: u16,
        call: Invocation<'_>,
    ) -> Result<Response, String> {
        let parts = call.parts;
        let mut url = format!("http://127.0.0.1:{port}/{}", call.method);
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
        stamp(&mut headers, "dapr-caller-app-id", call.caller);
        stamp(&mut headers, "dapr-callee-app-id", &channel.app_id);
        stamp(&mut headers, "x-forwarded-for", "127.0.0.1");
        if let Some(host) = parts.headers.get("host").and_then(|h| h.to_str().ok()) {
            stamp(&mut headers, "x-forwarded-host", host);
            let forwarded = format!("for=127.0.0.1;by=127.0.0.1;host={host}");
            stamp(&mut headers, "forwarded", &forwarded);
        }
        if !headers.contains_key("traceparent") {
            stamp(
                &mut headers,
                "traceparent",
                &crate::sidecar::new_traceparent(),
            );
        }
        if let Some(token) = &channel.app_token {
            stamp(&mut headers, "dapr-api-token", token);
        }
        let answer = self
            .client
            .request(parts.method.clone(), url)
            .headers(headers)
            .body(call.body)
            .send()
            .await
            .map_err(|err| err.to_string())?;
        let status = answer.status();
        let headers = forwardable(answer.headers());
        let body = answer.bytes().await.map_err(|err| err.to_string())?;
        let mut response = (status, Body::from(body)).into_response();
        response.headers_mut().extend(headers);
        Ok(response)
    }
}

impl Http {
    pub async fn app_config(
        &self,
        channel: &AppChannel,
        port: u16,
    ) -> Result<Option<bytes::Bytes>, ListError> {
        let mut request = self
            .client
            .get(format!("http://127.0.0.1:{port}/dapr/config"))
            .header("content-type", "application/json")
            .header("dapr-app-id", &channel.app_id)
            .timeout(Duration::from_secs(5));
        if let Some(token) = &channel.app_token {
            request = request.header("dapr-api-token", token);
        }
        let response = request
            .send()
            .await
            .map_err(|err| ListError::Retry(format!("GET /dapr/config: {err}")))?;
        if response.status().as_u16() != 200 {
            return Ok(None); // daprd takes any other answer as "no actors"
        }
        let body = response
            .bytes()
            .await
            .map_err(|err| ListError::Retry(format!("GET /dapr/config: {err}")))?;
        Ok(Some(body))
    }

    pub async fn actor(
        &self,
        channel: &AppChannel,
        port: u16,
        call: ActorCall<'_>,
    ) -> Result<ActorAnswer, Unreachable> {
        let (verb, path, mut headers, body) = match call {
            ActorCall::Method {
                actor_type,
                id,
                method,
                headers,
                query,
                body,
            } => {
                let mut path = format!("/actors/{actor_type}/{id}/method/{method}");
                if let Some(query) = query.filter(|q| !q.is_empty()) {
                    path.push('?');
                    path.push_str(query);
                }
                (Method::PUT, path, headers.clone(), body)
            }
            ActorCall::Deactivate { actor_type, id } => {
                let mut headers = HeaderMap::new();
                let protobuf = HeaderValue::from_static("application/x-protobuf");
                headers.insert("content-type", protobuf);
                let path = format!("/actors/{actor_type}/{id}");
                (Method::DELETE, path, headers, Bytes::new())
            }
        };
        if let Some(token) = &channel.app_token
            && let Ok(value) = HeaderValue::from_str(token)
        {
            headers.insert("dapr-api-token", value);
        }
        if let Ok(host) = HeaderValue::from_str(&format!("127.0.0.1:{port}")) {
            headers.insert("host", host);
        }
        // A path no URI can hold (an id with bytes a URI refuses) reaches nobody.
        let mut request = axum::http::Request::builder()
            .method(verb)
            .uri(path)
            .body(Full::new(body))
            .map_err(|_| Unreachable)?;
        *request.headers_mut() = headers;
        let answer = self.actors.send(port, request).await.map_err(|err| {
            tracing::debug!("{}: actor call: {err}", channel.app_id);
            Unreachable
        })?;
        Ok(ActorAnswer {
            status: answer.status,
            headers: forwardable(&answer.headers),
            body: answer.body,
        })
    }
}

/// The HTTP client for calls to an app: plain HTTP/1.1 on loopback, no proxy.
fn client() -> reqwest::Client {
    reqwest::Client::builder()
        .no_proxy()
        .tcp_nodelay(true)
        .pool_idle_timeout(Duration::from_secs(30))
        .build()
        .unwrap_or_default()
}

/// Dapr's reading of a delivery answer: 2xx is success unless the JSON body says
/// `"status": "RETRY"` or `"DROP"` (another status string is a retry); 404 drops; anything
/// else retries.
pub fn outcome(status: u16, body: &[u8]) -> Outcome {
    if status == 404 {
        return Outcome::Drop;
    }
    if !(200..300).contains(&status) {
        return Outcome::Retry;
    }
    let Ok(Value::Object(object)) = serde_json::from_slice::<Value>(body) else {
        return Outcome::Success;
    };
    match object.get("status").and_then(Value::as_str) {
        None | Some("") => Outcome::Success,
        Some(s) if s.eq_ignore_ascii_case("SUCCESS") => Outcome::Success,
        Some(s) if s.eq_ignore_ascii_case("DROP") => Outcome::Drop,
        Some(_) => Outcome::Retry,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn answers_are_read_as_dapr_reads_them() {
        assert_eq!(outcome(200, b""), Outcome::Success);
        assert_eq!(outcome(200, b"null"), Outcome::Success);
        assert_eq!(outcome(204, b"not json"), Outcome::Success);
        assert_eq!(outcome(200, br#"{"status":"SUCCESS"}"#), Outcome::Success);
        assert_eq!(outcome(200, br#"{"other":1}"#), Outcome::Success);
        assert_eq!(outcome(200, br#"{"status":"RETRY"}"#), Outcome::Retry);
        assert_eq!(outcome(200, br#"{"status":"DROP"}"#), Outcome::Drop);
        assert_eq!(outcome(200, br#"{"status":"MAYBE"}"#), Outcome::Retry);
        assert_eq!(outcome(404, b""), Outcome::Drop);
        assert_eq!(outcome(500, b""), Outcome::Retry);
        assert_eq!(outcome(302, b""), Outcome::Retry);
    }
}
