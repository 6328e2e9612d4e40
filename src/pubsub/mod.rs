//! Pub/sub: brokers (Redis Streams or in memory), the CloudEvents envelope, subscriptions and
//! at-least-once delivery to apps.
//!
//! How a message flows: the sidecar's publish handler wraps the payload (`envelope`) and appends
//! it to the topic's stream (`streams` / `memory`). Per subscribing app, `delivery` reads its
//! consumer group, routes each event by the subscription's rules (`subscription`, `cel`), POSTs
//! it to the app and acknowledges it once the app said SUCCESS (or DROP). Anything not
//! acknowledged stays pending in the broker and is delivered again.

pub mod cel;
pub mod delivery;
pub mod envelope;
mod memory;
pub mod stats;
mod streams;
pub mod subscription;
mod worker;

use std::collections::BTreeMap;
use std::time::Duration;

pub use cel::Expr;
pub use memory::MemoryBroker;
pub use streams::StreamsBroker;

use crate::components::stores::{StoreSetupError, redis_target};
use crate::components::{Component, ComponentKind};
use crate::redis::RedisPlan;

/// One broker entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Message {
    pub id: String,
    /// The CloudEvent bytes (or the raw payload).
    pub data: Vec<u8>,
    /// The publish metadata.
    pub metadata: BTreeMap<String, String>,
}

#[derive(Debug, Clone, thiserror::Error)]
pub enum PubsubError {
    #[error("{0}")]
    Broker(String),
}

/// A pub/sub component's broker.
#[derive(Clone)]
pub enum Broker {
    Redis(StreamsBroker),
    Memory(MemoryBroker),
}

impl Broker {
    pub async fn publish(
        &self,
        topic: &str,
        data: &[u8],
        metadata: &BTreeMap<String, String>,
    ) -> Result<(), PubsubError> {
        match self {
            Broker::Redis(b) => b.publish(topic, data, metadata).await,
            Broker::Memory(b) => {
                b.publish(topic, data, metadata);
                Ok(())
            }
        }
    }

    pub async fn consumer(&self, topic: &str, group: &str) -> Consumer {
        match self {
            Broker::Redis(b) => Consumer::Redis(Box::new(b.consumer(topic, group).await)),
            Broker::Memory(b) => Consumer::Memory(b.consumer(topic, group)),
        }
    }
}

/// One consumer group's reader of one topic.
pub enum Consumer {
    Redis(Box<streams::StreamConsumer>),
    Memory(memory::MemoryConsumer),
}

impl Consumer {
    pub async fn ensure_group(&mut self) -> Result<(), PubsubError> {
        match self {
            Consumer::Redis(c) => c.ensure_group().await,
            Consumer::Memory(c) => c.ensure_group().await,
        }
    }

    /// This consumer's unacknowledged entries with ids after `after` ("0": all of them).
    pub async fn read_pending(
        &mut self,
        after: &str,
        count: usize,
    ) -> Result<Vec<Message>, PubsubError> {
        match self {
            Consumer::Redis(c) => c.read_pending(after, count).await,
            Consumer::Memory(c) => c.read_pending(after, count).await,
        }
    }

    pub async fn read_new(
        &mut self,
        count: usize,
        block: Duration,
    ) -> Result<Vec<Message>, PubsubError> {
        match self {
            Consumer::Redis(c) => c.read_new(count, block).await,
            Consumer::Memory(c) => c.read_new(count, block).await,
        }
    }

    pub async fn ack(&self, id: &str) -> Result<(), PubsubError> {
        match self {
            Consumer::Redis(c) => c.ack(id).await,
            Consumer::Memory(c) => c.ack(id).await,
        }
    }

    pub async fn claim_idle(
        &mut self,
        min_idle: Duration,
        count: usize,
    ) -> Result<Vec<Message>, PubsubError> {
        match self {
            Consumer::Redis(c) => c.claim_idle(min_idle, count).await,
            Consumer::Memory(c) => c.claim_idle(min_idle, count).await,
        }
    }
}

/// A pub/sub component's delivery settings (components-contrib's defaults).
#[derive(Debug, Clone)]
pub struct Settings {
    /// Consumer group (and consumer) name; None = the subscribing app's id.
    pub consumer_id: Option<String>,
    /// A delivery unacknowledged this long is delivered again; zero disables redelivery.
    pub processing_timeout: Duration,
    pub redeliver_interval: Duration,
    pub queue_depth: usize,
    pub concurrency: usize,
}

impl Settings {
    /// The group name for `app_id`, with Dapr's `{appID}` template.
    pub fn group(&self, app_id: &str) -> String {
        match &self.consumer_id {
            Some(id) => id.replace("{appID}", app_id),
            None => app_id.to_string(),
        }
    }
}

/// A pub/sub component ready to use.
#[derive(Clone)]
pub struct PubsubEntry {
    pub component: Component,
    pub broker: Broker,
    pub settings: Settings,
}

impl From<crate::resiliency::Interrupted> for PubsubError {
    fn from(why: crate::resiliency::Interrupted) -> PubsubError {
        PubsubError::Broker(why.to_string())
    }
}

impl PubsubEntry {
    /// A publish by an app, under its outbound policy for this component.
    pub async fn publish(
        &self,
        policies: &crate::resiliency::AppPolicies,
        topic: &str,
        data: &[u8],
        metadata: &BTreeMap<String, String>,
    ) -> Result<(), PubsubError> {
        use crate::resiliency::{ComponentType, Direction};
        let name = &self.component.name;
        let policy = policies.component(name, ComponentType::Pubsub, Direction::Outbound);
        let what = || format!("pubsub {name}: publish to {topic}");
        let attempt = || self.broker.publish(topic, data, metadata);
        crate::resiliency::run(&policy, what, crate::resiliency::ok_or_retry, attempt).await
    }

    /// Whether `app_id` may publish to `topic` (`allowedTopics`, `publishingScopes`).
    pub fn may_publish(&self, app_id: &str, topic: &str) -> bool {
        topic_allowed(&self.component, "publishingScopes", app_id, topic)
    }

    /// Whether `app_id` may subscribe to `topic` (`allowedTopics`, `subscriptionScopes`).
    pub fn may_subscribe(&self, app_id: &str, topic: &str) -> bool {
        topic_allowed(&self.component, "subscriptionScopes", app_id, topic)
    }
}

/// Dapr's topic scoping: `allowedTopics: a,b` for everyone, `<scopes>: app1=t1,t2;app2=t3`
/// per app (an app not listed may use any allowed topic).
fn topic_allowed(component: &Component, scopes: &str, app_id: &str, topic: &str) -> bool {
    let list = |s: &str| -> Vec<String> {
        s.split(',')
            .map(|t| t.trim().to_string())
            .filter(|t| !t.is_empty())
            .collect()
    };
    if let Some(allowed) = component.get("allowedTopics").map(list)
        && !allowed.is_empty()
        && !allowed.iter().any(|t| t == topic)
    {
        return false;
    }
    let Some(scoped) = component.get(scopes) else {
        return true;
    };
    for part in scoped.split(';') {
        if let Some((app, topics)) = part.split_once('=')
            && app.trim() == app_id
        {
            return list(topics).iter().any(|t| t == topic);
        }
    }
    true
}

/// Builds the brokers of the pub/sub components.
pub fn brokers(
    components: &[Component],
    redis: &RedisPlan,
) -> Result<(BTreeMap<String, PubsubEntry>, Vec<String>), StoreSetupError> {
    let mut entries = BTreeMap::new();
    let mut notices = Vec::new();
    for component in components.iter().filter(|c| {
        matches!(
            c.kind,
            ComponentKind::PubsubRedis | ComponentKind::PubsubMemory
        )
    }) {
        let fail = |message: String, hint: &str| StoreSetupError::new(component, message, hint);
        let settings = settings(component).map_err(|m| {
            fail(
                m,
                "see Dapr's pubsub.redis reference; durations are milliseconds or like \"30s\"",
            )
        })?;
        let broker = match component.kind {
            ComponentKind::PubsubRedis => {
                match redis_target(component, redis, &mut notices)
                    .map_err(|m| fail(m, "check redisHost, redisPassword and redisDB"))?
                {
                    Some(info) => {
                        let max_len = number(component, "maxLenApprox")
                            .map_err(|m| fail(m, "write a whole number"))?;
                        Broker::Redis(StreamsBroker::new(info, max_len))
                    }
                    None => Broker::Memory(MemoryBroker::new()),
                }
            }
            _ => Broker::Memory(MemoryBroker::new()),
        };
        entries.insert(
            component.name.clone(),
            PubsubEntry {
                component: component.clone(),
                broker,
                settings,
            },
        );
    }
    Ok((entries, notices))
}

fn number(component: &Component, name: &str) -> Result<Option<u64>, String> {
    match component.get(name).filter(|v| !v.is_empty()) {
        None => Ok(None),
        Some(raw) => raw
            .parse()
            .map(Some)
            .map_err(|_| format!("{name} `{raw}` is not a whole number")),
    }
}

/// A duration as components-contrib reads it: plain integers are milliseconds.
fn duration(component: &Component, name: &str, default: Duration) -> Result<Duration, String> {
    match component.get(name).filter(|v| !v.is_empty()) {
        None => Ok(default),
        Some(raw) => raw
            .parse::<u64>()
            .map(Duration::from_millis)
            .or_else(|_| humantime::parse_duration(raw))
            .map_err(|_| format!("{name} `{raw}` is not a duration")),
    }
}

fn settings(component: &Component) -> Result<Settings, String> {
    Ok(Settings {
        consumer_id: component
            .get("consumerID")
            .filter(|v| !v.is_empty())
            .map(String::from),
        processing_timeout: duration(component, "processingTimeout", Duration::from_secs(60))?,
        redeliver_interval: duration(component, "redeliverInterval", Duration::from_secs(15))?,
        queue_depth: number(component, "queueDepth")?.unwrap_or(100).max(1) as usize,
        concurrency: number(component, "concurrency")?.unwrap_or(10).max(1) as usize,
    })
}
