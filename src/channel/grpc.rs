//! The app channel over gRPC (`app_protocol: grpc`): Dapr's AppCallback service as
//! `dapr-ext-grpc` serves it: `ListTopicSubscriptions`, `OnTopicEvent` and `OnInvoke`.

use std::sync::Arc;

use axum::body::Body;
use axum::http::{HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use dapr::dapr::proto::common::v1 as common;
use dapr::dapr::proto::runtime::v1 as rt;
use dapr::dapr::proto::runtime::v1::app_callback_client::AppCallbackClient;
use serde_json::Value;
use tonic::Code;

use super::{AppChannel, Delivery, Invocation, ListError, Outcome, Unreachable};
use crate::pubsub::envelope;
use crate::pubsub::subscription::{Kind, Rule, Subscription, rules};

/// The gRPC connection to the app, made on first use; it reconnects by itself.
#[derive(Clone, Default)]
pub(super) struct Grpc {
    channel: Arc<tokio::sync::OnceCell<tonic::transport::Channel>>,
}

impl Grpc {
    pub(super) async fn client(
        &self,
        port: u16,
    ) -> Result<AppCallbackClient<tonic::transport::Channel>, String> {
        self.channel(port).await.map(AppCallbackClient::new)
    }

    /// The connection, for the app's other services (`AppCallbackAlpha`).
    pub(super) async fn channel(&self, port: u16) -> Result<tonic::transport::Channel, String> {
        let channel = self
            .channel
            .get_or_try_init(|| async {
                tonic::transport::Endpoint::from_shared(format!("http://127.0.0.1:{port}"))
                    .map(|e| e.tcp_nodelay(true).connect_lazy())
                    .map_err(|e| e.to_string())
            })
            .await?;
        Ok(channel.clone())
    }

    pub async fn subscriptions(&self, port: u16) -> Result<Option<Vec<Subscription>>, ListError> {
        let mut client = self.client(port).await.map_err(ListError::Retry)?;
        let listed = match client.list_topic_subscriptions(()).await {
            Ok(listed) => listed.into_inner(),
            Err(status) if status.code() == Code::Unimplemented => return Ok(None),
            Err(status) => {
                let message = format!("ListTopicSubscriptions: {}", status.message());
                return Err(ListError::Retry(message));
            }
        };
        converted(listed).map(Some).map_err(ListError::Invalid)
    }

    /// One `OnTopicEvent`; `Unreachable` when the app could not be reached at all.
    pub async fn deliver(
        &self,
        channel: &AppChannel,
        port: u16,
        delivery: &Delivery<'_>,
    ) -> Result<Outcome, Unreachable> {
        let event = delivery.event;
        let text = |field: &str| {
            event
                .get(field)
                .and_then(Value::as_str)
                .unwrap_or_default()
                .to_string()
        };
        let request = rt::TopicEventRequest {
            id: text("id"),
            source: text("source"),
            r#type: text("type"),
            spec_version: text("specversion"),
            data_content_type: text("datacontenttype"),
            data: data_of(event),
            topic: delivery.topic.to_string(),
            pubsub_name: delivery.pubsub.to_string(),
            path: delivery.path.to_string(),
            extensions: None,
        };
        let mut client = self.client(port).await.map_err(|_| Unreachable)?;
        let mut request = tonic::Request::new(request);
        if let Some(token) = &channel.app_token
            && let Ok(value) = token.parse()
        {
            request.metadata_mut().insert("dapr-api-token", value);
        }
        match client.on_topic_event(request).await {
            Ok(answer) => Ok(match answer.into_inner().status {
                1 => Outcome::Retry,
                2 => Outcome::Drop,
                _ => Outcome::Success,
            }),
            Err(status) if status.code() == Code::Unimplemented => Ok(Outcome::Drop),
            Err(status) if status.code() == Code::Unavailable || !channel.is_ready() => {
                Err(Unreachable)
            }
            Err(_) => Ok(Outcome::Retry),
        }
    }

    /// `AppCallback.OnInvoke`, its answer as HTTP (a gRPC error becomes the HTTP status Dapr
    /// maps it to, with the `google.rpc.Status` as JSON).
    pub async fn invoke(
        &self,
        channel: &AppChannel,
        port: u16,
        call: Invocation<'_>,
    ) -> Result<Response, String> {
        let parts = call.parts;
        let verb = common::http_extension::Verb::from_str_name(parts.method.as_str())
            .unwrap_or(common::http_extension::Verb::Post);
        let content_type = parts
            .headers
            .get("content-type")
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_string();
        let request = common::InvokeRequest {
            method: call.method.to_string(),
            data: Some(prost_types::Any {
                type_url: String::new(),
                value: call.body.to_vec(),
            }),
            content_type,
            http_extension: Some(common::HttpExtension {
                verb: verb as i32,
                querystring: parts.uri.query().unwrap_or_default().to_string(),
            }),
        };
        let mut client = self.client(port).await?;
        let mut request = tonic::Request::new(request);
        if let Some(token) = channel.app_token.as_ref().and_then(|t| t.parse().ok()) {
            request.metadata_mut().insert("dapr-api-token", token);
        }
        match client.on_invoke(request).await {
            Ok(answer) => Ok(invoked(answer.into_inner())),
            Err(status) if status.code() == Code::Unavailable && !channel.is_ready() => {
                Err(status.message().to_string())
            }
            Err(status) => Ok(failed(&status)),
        }
    }
}

fn invoked(answer: common::InvokeResponse) -> Response {
    let data = answer.data.map(|a| a.value).unwrap_or_default();
    let mut response = (StatusCode::OK, Body::from(data)).into_response();
    if let Ok(value) = HeaderValue::from_str(&answer.content_type)
        && !answer.content_type.is_empty()
    {
        response.headers_mut().insert("content-type", value);
    }
    response
}

/// A gRPC error as the HTTP answer Dapr makes of it.
fn failed(status: &tonic::Status) -> Response {
    let http = match status.code() {
        Code::InvalidArgument | Code::FailedPrecondition | Code::OutOfRange => 400,
        Code::Unauthenticated => 401,
        Code::PermissionDenied => 403,
        Code::NotFound => 404,
        Code::AlreadyExists | Code::Aborted => 409,
        Code::ResourceExhausted => 429,
        Code::Cancelled => 499,
        Code::Unimplemented => 501,
        Code::Unavailable => 503,
        Code::DeadlineExceeded => 504,
        _ => 500,
    };
    let body = serde_json::json!({
        "code": status.code() as i32,
        "message": status.message(),
        "details": [],
    });
    let code = StatusCode::from_u16(http).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    (code, axum::Json(body)).into_response()
}

/// The listed subscriptions as daca's.
fn converted(listed: rt::ListTopicSubscriptionsResponse) -> Result<Vec<Subscription>, String> {
    let mut subscriptions = Vec::new();
    for item in listed.subscriptions {
        let routes = item.routes.unwrap_or_default();
        let matched: Vec<(String, String)> = routes
            .rules
            .into_iter()
            .map(|r| (r.r#match, r.path))
            .collect();
        let default = (!routes.default.is_empty()).then_some(routes.default.as_str());
        let mut list = rules(&matched, default, None)?;
        // gRPC paths are passed through as given (no leading `/` added), and a subscription
        // without routes is one rule with an empty path, as in Dapr.
        for (rule, (_, path)) in list.iter_mut().zip(&matched) {
            rule.path = path.clone();
        }
        if let Some(path) = default
            && let Some(last) = list.last_mut()
        {
            last.path = path.to_string();
        }
        if list.is_empty() {
            list.push(Rule {
                source: String::new(),
                expr: None,
                path: String::new(),
            });
        }
        subscriptions.push(Subscription {
            pubsub: item.pubsub_name,
            topic: item.topic,
            rules: list,
            dead_letter_topic: Some(item.dead_letter_topic).filter(|t| !t.is_empty()),
            metadata: item.metadata.into_iter().collect(),
            kind: Kind::Programmatic,
            scopes: Vec::new(),
            origin: None,
        });
    }
    Ok(subscriptions)
}

/// The event's `data` as Dapr hands it to a gRPC app: decoded `data_base64`, the text of a
/// string, or the JSON of anything else.
fn data_of(event: &Value) -> Vec<u8> {
    if let Some(encoded) = event.get("data_base64").and_then(Value::as_str) {
        return envelope::base64_decode(encoded).unwrap_or_default();
    }
    match event.get("data") {
        None | Some(Value::Null) => Vec::new(),
        Some(Value::String(text)) => text.clone().into_bytes(),
        Some(other) => envelope::go_json(other),
    }
}
