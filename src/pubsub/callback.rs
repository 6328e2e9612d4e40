//! Subscriptions and deliveries for apps that speak gRPC (`app_protocol: grpc`): Dapr's
//! AppCallback service, `ListTopicSubscriptions` and `OnTopicEvent`, as `dapr-ext-grpc` serves it.

use dapr::dapr::proto::runtime::v1 as rt;
use serde_json::Value;
use tonic::Code;

use super::delivery::Outcome;
use super::envelope;
use super::subscription::{Kind, Rule, Subscription, rules};
use crate::channel::AppChannel;

/// The app's subscriptions; `Ok(None)` when it does not implement the method (none).
pub async fn subscriptions(channel: &AppChannel) -> Result<Option<Vec<Subscription>>, String> {
    let mut client = channel.callback().await?;
    let listed = match client.list_topic_subscriptions(()).await {
        Ok(listed) => listed.into_inner(),
        Err(status) if status.code() == Code::Unimplemented => return Ok(None),
        Err(status) => return Err(status.message().to_string()),
    };
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
    Ok(Some(subscriptions))
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

/// One `OnTopicEvent`; Err(()) when the app could not be reached at all.
pub async fn deliver(
    channel: &AppChannel,
    event: &Value,
    topic: &str,
    pubsub: &str,
    path: &str,
) -> Result<Outcome, ()> {
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
        topic: topic.to_string(),
        pubsub_name: pubsub.to_string(),
        path: path.to_string(),
        extensions: None,
    };
    let mut client = channel.callback().await.map_err(|_| ())?;
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
        Err(status) if status.code() == Code::Unavailable || !channel.is_ready() => Err(()),
        Err(_) => Ok(Outcome::Retry),
    }
}
