//! `pubsub.redis`: Redis Streams in Dapr's layout (components-contrib `pubsub/redis`).
//!
//! A stream per topic, named as the topic; entries with fields `data` (the CloudEvent bytes) and
//! `metadata` (the publish metadata as a JSON object); a consumer group per subscribing app, whose
//! consumer is named like the group; `XACK` after a successful delivery. Because the stream and
//! the group's pending list live in Redis, messages survive a restart of the app or of daca.

use std::collections::BTreeMap;
use std::time::Duration;

use redis::aio::{ConnectionManager, MultiplexedConnection};
use redis::streams::{StreamId, StreamReadOptions, StreamReadReply};

use super::{Message, PubsubError};
use crate::redis_link::RedisLink;

#[derive(Clone)]
pub struct StreamsBroker {
    link: RedisLink,
    max_len_approx: Option<u64>,
}

impl StreamsBroker {
    pub fn new(info: redis::ConnectionInfo, max_len_approx: Option<u64>) -> StreamsBroker {
        StreamsBroker {
            link: RedisLink::new(info),
            max_len_approx,
        }
    }

    fn failed(&self, err: redis::RedisError) -> PubsubError {
        PubsubError::Broker(self.link.explain(&err))
    }

    /// The shared (non-blocking) connection.
    async fn connection(&self) -> Result<ConnectionManager, PubsubError> {
        self.link.shared().await.map_err(PubsubError::Broker)
    }

    /// `XADD <topic> [MAXLEN ~ n] * data <bytes> metadata <json>`.
    pub async fn publish(
        &self,
        topic: &str,
        data: &[u8],
        metadata: &BTreeMap<String, String>,
    ) -> Result<(), PubsubError> {
        let mut connection = self.connection().await?;
        let mut command = redis::cmd("XADD");
        command.arg(topic);
        if let Some(max) = self.max_len_approx {
            command.arg("MAXLEN").arg("~").arg(max);
        }
        let metadata = serde_json::to_string(metadata).unwrap_or_else(|_| "{}".into());
        command
            .arg("*")
            .arg("data")
            .arg(data)
            .arg("metadata")
            .arg(metadata);
        let _: String = command
            .query_async(&mut connection)
            .await
            .map_err(|e| self.failed(e))?;
        Ok(())
    }

    pub async fn consumer(&self, topic: &str, group: &str) -> StreamConsumer {
        StreamConsumer {
            broker: self.clone(),
            topic: topic.to_string(),
            group: group.to_string(),
            reader: None,
        }
    }
}

/// One group's reader of one stream.
pub struct StreamConsumer {
    broker: StreamsBroker,
    topic: String,
    group: String,
    /// The blocking reader's own connection, made (again) when needed.
    reader: Option<MultiplexedConnection>,
}

impl StreamConsumer {
    /// `XGROUP CREATE <topic> <group> 0 MKSTREAM`: a new group starts at the beginning of the
    /// stream, as in Dapr, so nothing published before the first subscription is lost.
    pub async fn ensure_group(&mut self) -> Result<(), PubsubError> {
        let mut connection = self.broker.connection().await?;
        let created: Result<(), redis::RedisError> = redis::cmd("XGROUP")
            .arg("CREATE")
            .arg(&self.topic)
            .arg(&self.group)
            .arg("0")
            .arg("MKSTREAM")
            .query_async(&mut connection)
            .await;
        match created {
            Ok(()) => Ok(()),
            Err(err) if err.code() == Some("BUSYGROUP") => Ok(()),
            Err(err) => Err(self.broker.failed(err)),
        }
    }

    /// Entries after `after` already delivered to this consumer and not acknowledged: what an
    /// earlier run (or a killed delivery) left in flight.
    pub async fn read_pending(
        &mut self,
        after: &str,
        count: usize,
    ) -> Result<Vec<Message>, PubsubError> {
        self.read(after, count, None).await
    }

    /// New entries, waiting up to `block` for some.
    pub async fn read_new(
        &mut self,
        count: usize,
        block: Duration,
    ) -> Result<Vec<Message>, PubsubError> {
        self.read(">", count, Some(block)).await
    }

    async fn read(
        &mut self,
        id: &str,
        count: usize,
        block: Option<Duration>,
    ) -> Result<Vec<Message>, PubsubError> {
        let mut connection = match self.reader.take() {
            Some(connection) => connection,
            None => self
                .broker
                .link
                .dedicated()
                .await
                .map_err(PubsubError::Broker)?,
        };
        let mut options = StreamReadOptions::default()
            .group(&self.group, &self.group)
            .count(count);
        if let Some(block) = block {
            options = options.block(block.as_millis() as usize);
        }
        let reply: Result<Option<StreamReadReply>, redis::RedisError> = redis::cmd("XREADGROUP")
            .arg(&options)
            .arg("STREAMS")
            .arg(&self.topic)
            .arg(id)
            .query_async(&mut connection)
            .await;
        match reply {
            Ok(reply) => {
                self.reader = Some(connection);
                Ok(reply
                    .map(|r| r.keys.into_iter().flat_map(|k| k.ids).collect::<Vec<_>>())
                    .unwrap_or_default()
                    .into_iter()
                    .filter_map(to_message)
                    .collect())
            }
            // The stream or group was deleted under us (FLUSHALL, a new Redis): make it again.
            Err(err) if err.code() == Some("NOGROUP") => {
                self.reader = Some(connection);
                self.ensure_group().await?;
                Ok(Vec::new())
            }
            Err(err) => Err(self.broker.failed(err)),
        }
    }

    pub async fn ack(&self, id: &str) -> Result<(), PubsubError> {
        let mut connection = self.broker.connection().await?;
        let _: i64 = redis::cmd("XACK")
            .arg(&self.topic)
            .arg(&self.group)
            .arg(id)
            .query_async(&mut connection)
            .await
            .map_err(|e| self.broker.failed(e))?;
        Ok(())
    }

    /// Pending entries idle for at least `min_idle`, claimed for this consumer
    /// (`XPENDING` then `XCLAIM`, as Dapr's redelivery loop does).
    pub async fn claim_idle(
        &mut self,
        min_idle: Duration,
        count: usize,
    ) -> Result<Vec<Message>, PubsubError> {
        let mut connection = self.broker.connection().await?;
        let pending: Vec<(String, String, u64, u64)> = redis::cmd("XPENDING")
            .arg(&self.topic)
            .arg(&self.group)
            .arg("-")
            .arg("+")
            .arg(count)
            .query_async(&mut connection)
            .await
            .map_err(|e| self.broker.failed(e))?;
        let idle: Vec<String> = pending
            .into_iter()
            .filter(|(_, _, idle_ms, _)| *idle_ms >= min_idle.as_millis() as u64)
            .map(|(id, ..)| id)
            .collect();
        if idle.is_empty() {
            return Ok(Vec::new());
        }
        let claimed: redis::streams::StreamClaimReply = redis::cmd("XCLAIM")
            .arg(&self.topic)
            .arg(&self.group)
            .arg(&self.group)
            .arg(min_idle.as_millis() as u64)
            .arg(&idle)
            .query_async(&mut connection)
            .await
            .map_err(|e| self.broker.failed(e))?;
        let found: Vec<Message> = claimed.ids.into_iter().filter_map(to_message).collect();
        // Entries trimmed away meanwhile cannot be delivered: acknowledge them, as Dapr does.
        for id in idle.iter().filter(|id| !found.iter().any(|m| &&m.id == id)) {
            self.ack(id).await?;
        }
        Ok(found)
    }
}

fn to_message(entry: StreamId) -> Option<Message> {
    let data: Vec<u8> = entry.get("data")?;
    let metadata: Option<Vec<u8>> = entry.get("metadata");
    let metadata = metadata
        .and_then(|m| serde_json::from_slice(&m).ok())
        .unwrap_or_default();
    Some(Message {
        id: entry.id,
        data,
        metadata,
    })
}
