//! What the dashboard shows of pub/sub: per subscriber (app, pubsub, topic) the delivered,
//! retried and dead-lettered counts and the entries read but not yet acknowledged, and the last
//! messages published or delivered with their CloudEvent.

use crate::sync::Mutex;
use std::collections::{BTreeMap, BTreeSet, VecDeque};

use serde::Serialize;
use serde_json::Value;

use crate::logs::now_ms;

/// How many recent messages are kept.
const RECENT: usize = 50;

#[derive(Debug, Clone, Default, Serialize, PartialEq, Eq)]
pub struct Counts {
    pub delivered: u64,
    pub retried: u64,
    pub dead_lettered: u64,
    /// Read and not acknowledged yet (being delivered, or left for redelivery).
    pub pending: u64,
}

/// One subscriber's line.
#[derive(Debug, Clone, Serialize)]
pub struct SubscriberCounts {
    pub app: String,
    pub pubsub: String,
    pub topic: String,
    #[serde(flatten)]
    pub counts: Counts,
}

/// A message as the dashboard lists it.
#[derive(Debug, Clone, Serialize)]
pub struct RecentMessage {
    pub ts_ms: u64,
    /// `published`, `delivered` or `dead-lettered`.
    pub what: &'static str,
    pub app: String,
    pub pubsub: String,
    pub topic: String,
    /// The CloudEvent (a string when it is not JSON).
    pub event: Value,
}

/// Kept as bytes: parsing happens only when someone looks.
#[derive(Debug, Clone)]
struct Kept {
    ts_ms: u64,
    what: &'static str,
    app: String,
    pubsub: String,
    topic: String,
    raw: Vec<u8>,
}

#[derive(Debug, Clone, Serialize)]
pub struct StatsView {
    pub subscribers: Vec<SubscriberCounts>,
    pub recent: Vec<RecentMessage>,
}

type Key = (String, String, String);

#[derive(Default)]
struct Inner {
    counts: BTreeMap<Key, (Counts, BTreeSet<String>)>,
    recent: VecDeque<Kept>,
}

/// Shared by every sidecar and subscriber of one `daca up`.
#[derive(Default)]
pub struct PubsubStats(Mutex<Inner>);

/// Which subscriber, and which message.
pub struct Delivery<'a> {
    pub app: &'a str,
    pub pubsub: &'a str,
    pub topic: &'a str,
    pub id: &'a str,
}

impl PubsubStats {
    fn with(&self, d: &Delivery, change: impl FnOnce(&mut Counts, &mut BTreeSet<String>)) {
        let mut inner = self.0.lock();
        let key = (d.app.to_string(), d.pubsub.to_string(), d.topic.to_string());
        let (counts, pending) = inner.counts.entry(key).or_default();
        change(counts, pending);
        counts.pending = pending.len() as u64;
    }

    fn remember(&self, what: &'static str, d: &Delivery, raw: &[u8]) {
        let mut inner = self.0.lock();
        if inner.recent.len() == RECENT {
            inner.recent.pop_front();
        }
        inner.recent.push_back(Kept {
            ts_ms: now_ms(),
            what,
            app: d.app.to_string(),
            pubsub: d.pubsub.to_string(),
            topic: d.topic.to_string(),
            raw: raw.to_vec(),
        });
    }

    /// A delivery of this message begins.
    pub fn started(&self, d: &Delivery) {
        self.with(d, |_, pending| {
            pending.insert(d.id.to_string());
        });
    }

    /// The app accepted it.
    pub fn delivered(&self, d: &Delivery, event: &[u8]) {
        self.with(d, |counts, pending| {
            counts.delivered += 1;
            pending.remove(d.id);
        });
        self.remember("delivered", d, event);
    }

    pub fn retried(&self, d: &Delivery) {
        self.with(d, |counts, _| counts.retried += 1);
    }

    /// Sent to the dead-letter topic, or dropped (no dead-letter topic, no matching route).
    pub fn dead_lettered(&self, d: &Delivery, event: &[u8]) {
        self.with(d, |counts, pending| {
            counts.dead_lettered += 1;
            pending.remove(d.id);
        });
        self.remember("dead-lettered", d, event);
    }

    pub fn published(&self, app: &str, pubsub: &str, topic: &str, event: &[u8]) {
        let d = Delivery {
            app,
            pubsub,
            topic,
            id: "",
        };
        self.remember("published", &d, event);
    }

    /// Newest message first.
    pub fn view(&self) -> StatsView {
        let inner = self.0.lock();
        StatsView {
            subscribers: inner
                .counts
                .iter()
                .map(|((app, pubsub, topic), (counts, _))| SubscriberCounts {
                    app: app.clone(),
                    pubsub: pubsub.clone(),
                    topic: topic.clone(),
                    counts: counts.clone(),
                })
                .collect(),
            recent: inner
                .recent
                .iter()
                .rev()
                .map(|k| RecentMessage {
                    ts_ms: k.ts_ms,
                    what: k.what,
                    app: k.app.clone(),
                    pubsub: k.pubsub.clone(),
                    topic: k.topic.clone(),
                    event: serde_json::from_slice(&k.raw).unwrap_or_else(|_| {
                        Value::String(String::from_utf8_lossy(&k.raw).into_owned())
                    }),
                })
                .collect(),
        }
    }
}
