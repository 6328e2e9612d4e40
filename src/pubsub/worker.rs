//! Delivering one entry to the app: routing, the POST (or gRPC `OnTopicEvent`), Dapr's reading
//! of the answer, retries with backoff, dead letters.

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use futures_util::StreamExt;
use serde_json::Value;

use super::delivery::Shared;
use super::stats::Delivery as Counted;
use super::subscription::Subscription;
use super::{Consumer, Message, PubsubEntry, envelope};
use crate::channel::{Delivery, Outcome, Unreachable};
use crate::resiliency::{self, ComponentType, Direction, Interrupted, Verdict};

/// Why a delivery attempt did not succeed.
enum Undelivered {
    /// The app answered RETRY, or failed.
    Retry,
    /// The inbound policy's timeout cut it.
    Interrupted,
    /// daca is stopping the app for good.
    Stopping,
}

impl From<Interrupted> for Undelivered {
    fn from(_: Interrupted) -> Undelivered {
        Undelivered::Interrupted
    }
}

/// SUCCESS and DROP end a delivery; RETRY and errors are failures an inbound retry policy
/// retries. Without one, Dapr makes one attempt: the entry then goes to the dead-letter
/// topic, or stays pending for the component's redelivery.
fn judge(result: &Result<Outcome, Undelivered>) -> Verdict {
    match result {
        Ok(_) => Verdict::Success,
        Err(Undelivered::Stopping) => Verdict::Permanent,
        Err(_) => Verdict::Failure(None),
    }
}

pub(super) struct Worker {
    pub(super) shared: Arc<Shared>,
    pub(super) entry: Arc<PubsubEntry>,
    pub(super) sub: Subscription,
}

impl Worker {
    pub(super) async fn deliver_all(&self, consumer: &Consumer, batch: Vec<Message>) {
        futures_util::stream::iter(batch)
            .for_each_concurrent(self.entry.settings.concurrency, |message| async move {
                if self.deliver(&message).await
                    && let Err(err) = consumer.ack(&message.id).await
                {
                    tracing::warn!("acknowledging {}: {err}", message.id);
                }
            })
            .await;
    }

    /// Which subscriber and message, for the dashboard's counts.
    fn delivery<'a>(&'a self, message: &'a Message) -> Counted<'a> {
        Counted {
            app: &self.shared.channel.app_id,
            pubsub: &self.sub.pubsub,
            topic: &self.sub.topic,
            id: &message.id,
        }
    }

    /// Delivers one entry; true when it is done with (delivered, dropped or dead-lettered).
    async fn deliver(&self, message: &Message) -> bool {
        let app_id = &self.shared.channel.app_id;
        self.shared.stats.started(&self.delivery(message));
        let body = if self.sub.raw_payload() {
            raw_envelope(message, &self.sub)
        } else {
            message.data.clone()
        };
        let event: Value = match serde_json::from_slice(&body) {
            Ok(event) => event,
            Err(err) => {
                tracing::error!(
                    "{app_id}: entry {} of topic {} is not a CloudEvent ({err}); a rawPayload subscription can take raw messages",
                    message.id,
                    self.sub.topic
                );
                return self.dead_letter(message).await;
            }
        };
        if expired(&event) {
            tracing::warn!("{app_id}: dropping expired event {} ", message.id);
            return self.dead_letter(message).await;
        }
        let Some(path) = self.sub.route(&event).map(String::from) else {
            tracing::debug!("{app_id}: event {} matches no rule; dropped", message.id);
            return self.dead_letter(message).await;
        };
        let policy = self.shared.policies.component(
            &self.sub.pubsub,
            ComponentType::Pubsub,
            Direction::Inbound,
        );
        let attempts = std::sync::atomic::AtomicU32::new(0);
        let attempt = || {
            if attempts.fetch_add(1, Ordering::Relaxed) > 0 {
                self.shared.stats.retried(&self.delivery(message));
            }
            self.attempt(&path, &body, message, &event)
        };
        let what = || format!("{app_id}: delivering {} to {path}", message.id);
        match resiliency::run(&policy, what, judge, attempt).await {
            Ok(Outcome::Success) => {
                self.shared.stats.delivered(&self.delivery(message), &body);
                return true;
            }
            Ok(_) => {
                tracing::warn!("{app_id}: {path} dropped event {}", message.id);
                return self.dead_letter(message).await;
            }
            Err(Undelivered::Stopping) => return false,
            Err(_) => {}
        }
        if self.sub.dead_letter_topic.is_some() {
            return self.dead_letter(message).await;
        }
        tracing::warn!(
            "{app_id}: {path} did not accept event {} after {} attempt(s); it stays pending and is delivered again after {:?}",
            message.id,
            attempts.load(Ordering::Relaxed),
            self.entry.settings.processing_timeout
        );
        false
    }

    /// One attempt; while the app is not there (crashed, restarting) it waits, and that
    /// does not count as a failed attempt.
    async fn attempt(
        &self,
        path: &str,
        body: &[u8],
        message: &Message,
        event: &Value,
    ) -> Result<Outcome, Undelivered> {
        loop {
            let mut channel = self.shared.channel.clone();
            if !channel.wait_ready().await {
                return Err(Undelivered::Stopping);
            }
            match self.post(path, body, message, event).await {
                Err(Unreachable) => tokio::time::sleep(Duration::from_millis(100)).await,
                Ok(Outcome::Retry) => return Err(Undelivered::Retry),
                Ok(done) => return Ok(done),
            }
        }
    }

    /// One delivery through the app channel, whatever the app's protocol.
    async fn post(
        &self,
        path: &str,
        body: &[u8],
        message: &Message,
        event: &Value,
    ) -> Result<Outcome, Unreachable> {
        let delivery = Delivery {
            event,
            body,
            pubsub: &self.sub.pubsub,
            topic: &self.sub.topic,
            path,
            metadata: &message.metadata,
            timeout: self
                .entry
                .settings
                .processing_timeout
                .max(Duration::from_secs(1)),
        };
        self.shared.channel.deliver(&delivery).await
    }

    /// Sends the entry to the dead-letter topic, if the subscription has one; true = done.
    async fn dead_letter(&self, message: &Message) -> bool {
        let Some(topic) = &self.sub.dead_letter_topic else {
            self.shared
                .stats
                .dead_lettered(&self.delivery(message), &message.data);
            return true;
        };
        match self
            .entry
            .broker
            .publish(topic, &message.data, &message.metadata)
            .await
        {
            Ok(()) => {
                self.shared
                    .stats
                    .dead_lettered(&self.delivery(message), &message.data);
                true
            }
            Err(err) => {
                tracing::warn!("dead-lettering {} to {topic}: {err}", message.id);
                false
            }
        }
    }
}

fn expired(event: &Value) -> bool {
    event
        .get("expiration")
        .and_then(Value::as_str)
        .and_then(|e| humantime::parse_rfc3339_weak(e).ok())
        .is_some_and(|at| at < std::time::SystemTime::now())
}

/// What a rawPayload subscription receives: the stored bytes wrapped by the subscriber's side.
fn raw_envelope(message: &Message, sub: &Subscription) -> Vec<u8> {
    let mut event = serde_json::Map::new();
    event.insert("id".into(), envelope::uuid_v4().into());
    event.insert("specversion".into(), "1.0".into());
    event.insert("datacontenttype".into(), "application/octet-stream".into());
    event.insert("source".into(), "Dapr".into());
    event.insert("type".into(), "com.dapr.event.sent".into());
    event.insert("topic".into(), sub.topic.clone().into());
    event.insert("pubsubname".into(), sub.pubsub.clone().into());
    event.insert("data_base64".into(), envelope::base64(&message.data).into());
    for field in ["traceid", "traceparent", "tracestate"] {
        if let Some(value) = message.metadata.get(field) {
            event.insert(field.into(), value.clone().into());
        }
    }
    envelope::go_json(&Value::Object(event))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn expiration_in_the_past_expires() {
        assert!(expired(
            &serde_json::json!({"expiration": "2000-01-01T00:00:00Z"})
        ));
        assert!(!expired(
            &serde_json::json!({"expiration": "2999-01-01T00:00:00Z"})
        ));
        assert!(!expired(&serde_json::json!({})));
    }
}
