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
use std::sync::Arc;

use crate::sync::RwLock;
use std::time::{Duration, Instant};

use tokio::task::{JoinHandle, JoinSet};
use tokio_util::sync::CancellationToken;

use super::PubsubEntry;
use super::subscription::{self, Subscription};
use super::worker::Worker;
use crate::channel::{AppChannel, ListError};

/// The first wait between tries to read an app's subscriptions (doubling after it).
const FIRST_BACKOFF: Duration = Duration::from_millis(500);
/// How long one blocking read waits for new entries.
const READ_BLOCK: Duration = Duration::from_secs(2);

/// Everything one app's consumers share.
pub(super) struct Shared {
    pub(super) channel: AppChannel,
    pub(super) pubsubs: Arc<BTreeMap<String, Arc<PubsubEntry>>>,
    pub(super) stats: Arc<super::stats::PubsubStats>,
    /// The app's resiliency policies: its pub/sub components' inbound ones apply here.
    pub(super) policies: Arc<crate::resiliency::AppPolicies>,
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
                pubsubs,
                stats: Arc::default(),
                policies: Arc::default(),
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

    /// Applies `policies` (the app's resiliency policies) to each delivery.
    pub fn with_policies(mut self, policies: Arc<crate::resiliency::AppPolicies>) -> Subscriber {
        if let Some(shared) = Arc::get_mut(&mut self.shared) {
            shared.policies = policies;
        }
        self
    }

    /// Runs on a task of its own until aborted (tests and tools).
    pub fn spawn(self) -> JoinHandle<()> {
        tokio::spawn(self.run(CancellationToken::new()))
    }

    /// Runs the app's subscriptions until `token` is cancelled; then its consumers are
    /// stopped and awaited (what they had not acknowledged stays pending and comes back).
    pub async fn run(self, token: CancellationToken) {
        let mut consumers = JoinSet::new();
        tokio::select! {
            _ = token.cancelled() => {}
            _ = self.follow(&mut consumers) => {}
        }
        consumers.shutdown().await;
    }

    /// Reads the app's subscriptions whenever it becomes ready, and runs one consumer each.
    async fn follow(&self, consumers: &mut JoinSet<()>) {
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
        let mut running: Vec<Subscription> = Vec::new();
        let mut warned: Vec<(String, String)> = Vec::new();
        while channel.wait_ready().await {
            let generation = channel.generation();
            let programmatic = self.fetch_programmatic().await;
            let wanted = subscription::effective(&self.declarative, programmatic, &app_id);
            warn_without_default(&app_id, &wanted, &mut warned);
            if running != wanted {
                // Unacknowledged entries stay pending and come back to the new consumers.
                consumers.shutdown().await;
                for sub in &wanted {
                    self.start(sub.clone(), consumers);
                }
                running.clone_from(&wanted);
                *self.active.write() = wanted;
            }
            channel.wait_gone(generation).await;
        }
    }

    fn start(&self, sub: Subscription, consumers: &mut JoinSet<()>) {
        let app_id = &self.shared.channel.app_id;
        let Some(entry) = self.shared.pubsubs.get(&sub.pubsub).cloned() else {
            tracing::warn!(
                "{app_id}: subscription to topic {} names pubsub `{}`, which does not exist; ignored",
                sub.topic,
                sub.pubsub
            );
            return;
        };
        if !entry.component.visible_to(app_id) || !entry.may_subscribe(app_id, &sub.topic) {
            tracing::warn!(
                "{app_id}: may not subscribe to topic {} of pubsub `{}` (scopes); ignored",
                sub.topic,
                sub.pubsub
            );
            return;
        }
        consumers.spawn(consume(self.shared.clone(), entry, sub));
    }

    /// The app's programmatic subscriptions (`GET /dapr/subscribe` or
    /// `ListTopicSubscriptions`), asked a few times while the app warms up.
    async fn fetch_programmatic(&self) -> Vec<Subscription> {
        let channel = &self.shared.channel;
        for attempt in 0..4u32 {
            if attempt > 0 {
                tokio::time::sleep(FIRST_BACKOFF * 2u32.pow(attempt - 1)).await;
            }
            match channel.subscriptions().await {
                Ok(found) => return found.unwrap_or_default(),
                Err(ListError::Retry(err)) => tracing::debug!("{}: {err}", channel.app_id),
                Err(ListError::Invalid(err)) => {
                    tracing::error!("{}: {err}", channel.app_id);
                    return Vec::new();
                }
            }
        }
        tracing::warn!(
            "{}: its subscriptions could not be read; no programmatic subscriptions",
            channel.app_id
        );
        Vec::new()
    }
}

/// Says once per topic that rules without a default route drop what matches none.
fn warn_without_default(app_id: &str, wanted: &[Subscription], warned: &mut Vec<(String, String)>) {
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
