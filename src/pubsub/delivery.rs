//! Delivering events to an app, at least once.
//!
//! Per app, a [`Subscriber`] waits for the app to be ready, asks it for its subscriptions
//! (`GET /dapr/subscribe`, again after every restart or reload), combines them with the
//! declarative ones and runs one consumer per subscription. A consumer first re-delivers what an
//! earlier run left unacknowledged, then reads new entries, POSTs each to the route its rules
//! pick, and acknowledges it when the app answers SUCCESS or DROP (404). RETRY and errors are
//! retried with backoff, then sent to the dead-letter topic if there is one, else left pending
//! for redelivery after `processingTimeout`. While the app is down, nothing is read and nothing
//! is counted as a failed attempt.

use std::collections::BTreeMap;
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};

use serde_json::Value;
use tokio::task::JoinHandle;

use super::PubsubEntry;
use super::subscription::{self, Subscription};
use super::worker::Worker;
use crate::channel::AppChannel;
use crate::manifest::AppProtocol;

/// The first wait between tries to read an app's subscriptions (doubling after it).
const FIRST_BACKOFF: Duration = Duration::from_millis(500);
/// How long one blocking read waits for new entries.
const READ_BLOCK: Duration = Duration::from_secs(2);

/// What the app's answer means.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    Success,
    Retry,
    Drop,
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

/// Everything one app's consumers share.
pub(super) struct Shared {
    pub(super) channel: AppChannel,
    pub(super) http: reqwest::Client,
    pub(super) pubsubs: Arc<BTreeMap<String, Arc<PubsubEntry>>>,
    pub(super) stats: Arc<super::stats::PubsubStats>,
}

/// Runs one app's subscriptions for as long as daca runs.
pub struct Subscriber {
    shared: Arc<Shared>,
    declarative: Vec<Subscription>,
    /// The subscriptions running now, for `/v1.0/metadata`.
    active: Arc<RwLock<Vec<Subscription>>>,
}

impl Subscriber {
    pub fn new(
        channel: AppChannel,
        http: reqwest::Client,
        pubsubs: Arc<BTreeMap<String, Arc<PubsubEntry>>>,
        declarative: &[Subscription],
        active: Arc<RwLock<Vec<Subscription>>>,
    ) -> Subscriber {
        let app_id = channel.app_id.clone();
        let declarative = declarative
            .iter()
            .filter(|s| s.applies_to(&app_id))
            .cloned()
            .collect();
        Subscriber {
            shared: Arc::new(Shared {
                channel,
                http,
                pubsubs,
                stats: Arc::default(),
            }),
            declarative,
            active,
        }
    }

    /// Counts deliveries in `stats` (the dashboard's) instead of a private one.
    pub fn with_stats(mut self, stats: Arc<super::stats::PubsubStats>) -> Subscriber {
        if let Some(shared) = Arc::get_mut(&mut self.shared) {
            shared.stats = stats;
        }
        self
    }

    pub fn spawn(self) -> JoinHandle<()> {
        tokio::spawn(self.run())
    }

    async fn run(self) {
        let app_id = self.shared.channel.app_id.clone();
        let visible = self
            .shared
            .pubsubs
            .values()
            .any(|p| p.component.visible_to(&app_id));
        if !visible || self.shared.channel.port.is_none() {
            return; // Dapr asks for subscriptions only with a pub/sub component and an app port.
        }
        let mut channel = self.shared.channel.clone();
        let mut running: Vec<(Subscription, JoinHandle<()>)> = Vec::new();
        let mut warned: Vec<(String, String)> = Vec::new();
        loop {
            if !channel.wait_ready().await {
                break;
            }
            let generation = channel.generation();
            let programmatic = self.fetch_programmatic().await;
            let wanted = subscription::effective(&self.declarative, programmatic, &app_id);
            for sub in wanted.iter().filter(|s| s.lacks_default()) {
                let key = (sub.pubsub.clone(), sub.topic.clone());
                if !warned.contains(&key) {
                    tracing::warn!(
                        "{app_id}: the subscription to {}/{} has routing rules but no default route; events that match no rule are dropped",
                        sub.pubsub,
                        sub.topic
                    );
                    warned.push(key);
                }
            }
            let same = running.len() == wanted.len()
                && running.iter().zip(&wanted).all(|((a, _), b)| a == b);
            if !same {
                for (_, task) in running.drain(..) {
                    task.abort(); // unacknowledged entries stay pending and come back
                }
                for sub in &wanted {
                    running.push((sub.clone(), self.start(sub.clone())));
                }
                *self.active.write().unwrap_or_else(|p| p.into_inner()) = wanted;
            }
            channel.wait_gone(generation).await;
        }
        for (_, task) in running {
            task.abort();
        }
    }

    fn start(&self, sub: Subscription) -> JoinHandle<()> {
        let app_id = &self.shared.channel.app_id;
        let Some(entry) = self.shared.pubsubs.get(&sub.pubsub).cloned() else {
            tracing::warn!(
                "{app_id}: subscription to topic {} names pubsub `{}`, which does not exist; ignored",
                sub.topic,
                sub.pubsub
            );
            return tokio::spawn(async {});
        };
        if !entry.component.visible_to(app_id) || !entry.may_subscribe(app_id, &sub.topic) {
            tracing::warn!(
                "{app_id}: may not subscribe to topic {} of pubsub `{}` (scopes); ignored",
                sub.topic,
                sub.pubsub
            );
            return tokio::spawn(async {});
        }
        tokio::spawn(consume(self.shared.clone(), entry, sub))
    }

    /// `GET /dapr/subscribe`, retried a few times while the app warms up; 404 means none.
    async fn fetch_programmatic(&self) -> Vec<Subscription> {
        let channel = &self.shared.channel;
        let Some(base) = channel.base_url() else {
            return Vec::new();
        };
        for attempt in 0..4u32 {
            if attempt > 0 {
                tokio::time::sleep(FIRST_BACKOFF * 2u32.pow(attempt - 1)).await;
            }
            if channel.protocol == AppProtocol::Grpc {
                match super::callback::subscriptions(channel).await {
                    Ok(found) => return found.unwrap_or_default(),
                    Err(err) => {
                        tracing::debug!("{}: ListTopicSubscriptions: {err}", channel.app_id);
                        continue;
                    }
                }
            }
            let mut request = self
                .shared
                .http
                .get(format!("{base}/dapr/subscribe"))
                .header("content-type", "application/json")
                .header("dapr-app-id", &channel.app_id)
                .timeout(Duration::from_secs(5));
            if let Some(token) = &channel.app_token {
                request = request.header("dapr-api-token", token);
            }
            let response = match request.send().await {
                Ok(response) => response,
                Err(err) => {
                    tracing::debug!("{}: GET /dapr/subscribe: {err}", channel.app_id);
                    continue;
                }
            };
            let status = response.status().as_u16();
            let body = response.bytes().await.unwrap_or_default();
            return match status {
                404 => Vec::new(),
                200..=299 => subscription::programmatic(&body).unwrap_or_else(|err| {
                    tracing::error!("{}: GET /dapr/subscribe: {err}", channel.app_id);
                    Vec::new()
                }),
                _ => {
                    tracing::error!(
                        "{}: GET /dapr/subscribe answered {status}; no programmatic subscriptions",
                        channel.app_id
                    );
                    Vec::new()
                }
            };
        }
        tracing::warn!(
            "{}: GET /dapr/subscribe did not answer; no programmatic subscriptions",
            channel.app_id
        );
        Vec::new()
    }
}

/// One subscription's consumer loop.
async fn consume(shared: Arc<Shared>, entry: Arc<PubsubEntry>, sub: Subscription) {
    let app_id = shared.channel.app_id.clone();
    let group = entry.settings.group(&app_id);
    let mut consumer = entry.broker.consumer(&sub.topic, &group).await;
    let mut complained = false;
    while let Err(err) = consumer.ensure_group().await {
        if !complained {
            tracing::warn!(
                "{app_id}: cannot subscribe to {}: {err}; retrying",
                sub.topic
            );
            complained = true;
        }
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
    let worker = Worker {
        shared: shared.clone(),
        entry: entry.clone(),
        sub: sub.clone(),
    };
    let depth = entry.settings.queue_depth;
    // What an earlier run (or a reload that cut a delivery short) left unacknowledged.
    let mut after = "0".to_string();
    loop {
        match consumer.read_pending(&after, depth).await {
            Ok(batch) if batch.is_empty() => break,
            Ok(batch) => {
                after = batch.last().map(|m| m.id.clone()).unwrap_or_default();
                worker.deliver_all(&consumer, batch).await;
            }
            Err(err) => {
                tracing::warn!("{app_id}: reading pending entries of {}: {err}", sub.topic);
                break;
            }
        }
    }
    let redeliver = !entry.settings.processing_timeout.is_zero()
        && !entry.settings.redeliver_interval.is_zero();
    let mut last_claim = Instant::now();
    let mut channel = shared.channel.clone();
    loop {
        if !channel.wait_ready().await {
            return;
        }
        match consumer.read_new(depth, READ_BLOCK).await {
            Ok(batch) => worker.deliver_all(&consumer, batch).await,
            Err(err) => {
                tracing::warn!("{app_id}: reading topic {}: {err}", sub.topic);
                tokio::time::sleep(Duration::from_secs(1)).await;
            }
        }
        if redeliver && last_claim.elapsed() >= entry.settings.redeliver_interval {
            last_claim = Instant::now();
            match consumer
                .claim_idle(entry.settings.processing_timeout, depth)
                .await
            {
                Ok(batch) => worker.deliver_all(&consumer, batch).await,
                Err(err) => tracing::warn!("{app_id}: redelivery of {}: {err}", sub.topic),
            }
        }
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
