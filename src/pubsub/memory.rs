//! `pubsub.in-memory` (and Redis pub/sub components in the embedded mode): the same model as
//! Redis Streams, kept in daca's memory: a log per topic, consumer groups with a cursor and a
//! pending list. Messages last as long as daca runs; consumers that restart (an app reload)
//! get what they had not acknowledged.

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::sync::Arc;

use crate::sync::Mutex;
use std::time::{Duration, Instant};

use tokio::sync::Notify;

use super::{Message, PubsubError};

/// Entries kept per topic when no group has read them yet; the oldest go first past this.
const RETAINED: usize = 100_000;

#[derive(Default)]
struct Group {
    /// Sequence number of the next entry never delivered to this group.
    next: u64,
    /// Delivered, not acknowledged: sequence → when it was (last) delivered.
    pending: BTreeMap<u64, Instant>,
}

#[derive(Default)]
struct Topic {
    /// Sequence number of `entries[0]`.
    first: u64,
    entries: VecDeque<Arc<Message>>,
    groups: HashMap<String, Group>,
}

impl Topic {
    fn end(&self) -> u64 {
        self.first + self.entries.len() as u64
    }

    fn get(&self, seq: u64) -> Option<&Arc<Message>> {
        self.entries.get(seq.checked_sub(self.first)? as usize)
    }

    /// Drops entries every group has acknowledged (and, with no group yet, the oldest beyond
    /// what is retained).
    fn trim(&mut self) {
        let keep_from = self
            .groups
            .values()
            .map(|g| {
                g.pending
                    .keys()
                    .next()
                    .copied()
                    .unwrap_or(g.next)
                    .min(g.next)
            })
            .min()
            .unwrap_or_else(|| self.end().saturating_sub(RETAINED as u64));
        while self.first < keep_from && !self.entries.is_empty() {
            self.entries.pop_front();
            self.first += 1;
        }
    }
}

#[derive(Clone, Default)]
pub struct MemoryBroker {
    topics: Arc<Mutex<HashMap<String, Topic>>>,
    published: Arc<Notify>,
}

fn seq_of(id: &str) -> Option<u64> {
    id.split('-').next()?.parse().ok()
}

impl MemoryBroker {
    pub fn new() -> MemoryBroker {
        MemoryBroker::default()
    }

    fn topics(&self) -> crate::sync::MutexGuard<'_, HashMap<String, Topic>> {
        self.topics.lock()
    }

    pub fn publish(&self, topic: &str, data: &[u8], metadata: &BTreeMap<String, String>) {
        let mut topics = self.topics();
        let topic = topics.entry(topic.to_string()).or_default();
        let seq = topic.end();
        topic.entries.push_back(Arc::new(Message {
            id: format!("{seq}-0"),
            data: data.to_vec(),
            metadata: metadata.clone(),
        }));
        topic.trim();
        drop(topics);
        self.published.notify_waiters();
    }

    pub fn consumer(&self, topic: &str, group: &str) -> MemoryConsumer {
        MemoryConsumer {
            broker: self.clone(),
            topic: topic.to_string(),
            group: group.to_string(),
        }
    }
}

/// Pending entries handed out again: their delivery time restarts now.
fn redeliver(topic: &Topic, group: &mut Group, seqs: Vec<u64>) -> Vec<Message> {
    let now = Instant::now();
    seqs.into_iter()
        .filter_map(|s| {
            group.pending.insert(s, now);
            topic.get(s).map(|m| Message::clone(m))
        })
        .collect()
}

pub struct MemoryConsumer {
    broker: MemoryBroker,
    topic: String,
    group: String,
}

impl MemoryConsumer {
    /// Like `XGROUP CREATE … 0`: a new group starts at the oldest retained entry.
    pub async fn ensure_group(&mut self) -> Result<(), PubsubError> {
        let mut topics = self.broker.topics();
        let topic = topics.entry(self.topic.clone()).or_default();
        let first = topic.first;
        topic.groups.entry(self.group.clone()).or_insert(Group {
            next: first,
            pending: BTreeMap::new(),
        });
        Ok(())
    }

    fn with_group<T>(&self, f: impl FnOnce(&mut Topic, &mut Group) -> T) -> T {
        let mut topics = self.broker.topics();
        let topic = topics.entry(self.topic.clone()).or_default();
        let mut group = topic.groups.remove(&self.group).unwrap_or(Group {
            next: topic.first,
            pending: BTreeMap::new(),
        });
        let result = f(topic, &mut group);
        topic.groups.insert(self.group.clone(), group);
        result
    }

    pub async fn read_pending(
        &mut self,
        after: &str,
        count: usize,
    ) -> Result<Vec<Message>, PubsubError> {
        // "0" means from the start, as in XREADGROUP; any other id, strictly after it.
        let from = match after {
            "0" => 0,
            id => seq_of(id).map_or(0, |s| s + 1),
        };
        Ok(self.with_group(|topic, group| {
            let seqs: Vec<u64> = group
                .pending
                .range(from..)
                .map(|(s, _)| *s)
                .take(count)
                .collect();
            redeliver(topic, group, seqs)
        }))
    }

    pub async fn read_new(
        &mut self,
        count: usize,
        block: Duration,
    ) -> Result<Vec<Message>, PubsubError> {
        let deadline = tokio::time::Instant::now() + block;
        loop {
            // Registered before looking, so a publish in between is not missed.
            let published = self.broker.published.clone();
            let notified = published.notified();
            tokio::pin!(notified);
            notified.as_mut().enable();
            let batch = self.with_group(|topic, group| {
                let now = Instant::now();
                let mut batch = Vec::new();
                group.next = group.next.max(topic.first);
                while batch.len() < count && group.next < topic.end() {
                    if let Some(message) = topic.get(group.next) {
                        batch.push(Message::clone(message));
                        group.pending.insert(group.next, now);
                    }
                    group.next += 1;
                }
                batch
            });
            if !batch.is_empty() {
                return Ok(batch);
            }
            if tokio::time::timeout_at(deadline, notified).await.is_err() {
                return Ok(Vec::new());
            }
        }
    }

    pub async fn ack(&self, id: &str) -> Result<(), PubsubError> {
        if let Some(seq) = seq_of(id) {
            self.with_group(|_, group| group.pending.remove(&seq));
            let mut topics = self.broker.topics();
            if let Some(topic) = topics.get_mut(&self.topic) {
                topic.trim();
            }
        }
        Ok(())
    }

    pub async fn claim_idle(
        &mut self,
        min_idle: Duration,
        count: usize,
    ) -> Result<Vec<Message>, PubsubError> {
        Ok(self.with_group(|topic, group| {
            let now = Instant::now();
            let idle: Vec<u64> = group
                .pending
                .iter()
                .filter(|(_, at)| now.duration_since(**at) >= min_idle)
                .map(|(s, _)| *s)
                .take(count)
                .collect();
            redeliver(topic, group, idle)
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn groups_fan_out_and_unacked_messages_come_back() {
        let broker = MemoryBroker::new();
        broker.publish("orders", b"before", &BTreeMap::new());
        let mut a = broker.consumer("orders", "a");
        let mut b = broker.consumer("orders", "b");
        a.ensure_group().await.unwrap();
        b.ensure_group().await.unwrap();
        broker.publish("orders", b"after", &BTreeMap::new());
        let got = a.read_new(10, Duration::from_millis(10)).await.unwrap();
        assert_eq!(got.len(), 2, "a new group starts at the beginning");
        assert_eq!(
            b.read_new(10, Duration::from_millis(10))
                .await
                .unwrap()
                .len(),
            2
        );
        a.ack(&got[0].id).await.unwrap();
        let again = a.read_pending("0", 10).await.unwrap();
        assert_eq!(again.len(), 1);
        assert_eq!(again[0].data, b"after");
        assert!(
            a.read_new(10, Duration::from_millis(10))
                .await
                .unwrap()
                .is_empty()
        );
        let idle = a.claim_idle(Duration::ZERO, 10).await.unwrap();
        assert_eq!(idle.len(), 1);
    }

    #[tokio::test]
    async fn a_blocked_read_wakes_on_publish() {
        let broker = MemoryBroker::new();
        let mut consumer = broker.consumer("t", "g");
        consumer.ensure_group().await.unwrap();
        let publisher = broker.clone();
        tokio::spawn(async move {
            tokio::time::sleep(Duration::from_millis(20)).await;
            publisher.publish("t", b"x", &BTreeMap::new());
        });
        let got = consumer.read_new(1, Duration::from_secs(5)).await.unwrap();
        assert_eq!(got.len(), 1);
    }
}
