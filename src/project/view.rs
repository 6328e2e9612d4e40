//! The running project as everything outside its owner sees it: a [`Snapshot`] the owner
//! publishes after each change (apps with their handles, ports and subscriptions), and the
//! parts that change on their own (components, logs, timeline, watcher counters). The control
//! API and the dashboard read only this.

use std::sync::Arc;

use tokio::sync::{Notify, watch};

use crate::env::SidecarPorts;
use crate::events::EventLog;
use crate::logs::LogBus;
use crate::manifest::{AppId, AppSpec};
use crate::pubsub::subscription::Subscription;
use crate::reload::ReloadStats;
use crate::sidecar::Shared;
use crate::supervisor::AppHandle;
use crate::sync::RwLock;
use crate::watch::Stats as WatchStats;

/// One app as readers see it.
#[derive(Clone)]
pub struct AppView {
    pub spec: Arc<AppSpec>,
    pub handle: AppHandle,
    pub ports: SidecarPorts,
    /// The subscriptions running for it now.
    pub subscriptions: Arc<RwLock<Vec<Subscription>>>,
    pub reloads: Arc<ReloadStats>,
    /// In a pod: the host port that leads to its `port` (None: it shares the machine's).
    pub pod_host_port: Option<Option<u16>>,
}

impl AppView {
    /// Its sidecar's ports on the machine; none for an app without one (`dapr: false`).
    pub fn sidecar(&self) -> Option<SidecarPorts> {
        self.spec.sidecar.enabled.then_some(self.ports)
    }
}

/// The project at one moment.
#[derive(Clone, Default)]
pub struct Snapshot {
    /// In start order.
    pub apps: Vec<AppView>,
    /// The managed Redis, when daca supervises one.
    pub redis: Option<AppHandle>,
    /// The managed PostgreSQL, when daca supervises one.
    pub postgres: Option<AppHandle>,
    /// Why the last edit of the resources folder was not applied, if it was not.
    pub component_error: Option<String>,
    /// Whether files are watched (`daca up --no-watch` turns it off).
    pub watching: bool,
}

impl Snapshot {
    pub fn app(&self, id: &str) -> Option<&AppView> {
        self.apps.iter().find(|a| a.spec.id.as_str() == id)
    }
}

/// How Redis is provided in this run, for `daca ps` and the dashboard.
#[derive(Debug, Clone)]
pub struct RedisInfo {
    /// `redis-server`, `container`, `embedded` or `external`.
    pub mode: &'static str,
    pub url: Option<String>,
}

/// What readers hold of a running project.
#[derive(Clone)]
pub struct ProjectView {
    pub name: String,
    pub redis: RedisInfo,
    /// The project's PostgreSQL in one phrase (never a password), when it has one.
    pub postgres: Option<String>,
    snapshot: watch::Receiver<Arc<Snapshot>>,
    /// The sidecars' shared parts: components, state stores, pub/sub counts.
    pub shared: Arc<Shared>,
    pub logs: Arc<LogBus>,
    /// The timeline the dashboard shows.
    pub events: Arc<EventLog>,
    pub watch: Arc<WatchStats>,
    down: Arc<Notify>,
}

impl ProjectView {
    pub(super) fn new(
        name: String,
        redis: RedisInfo,
        snapshot: watch::Receiver<Arc<Snapshot>>,
        parts: Parts,
    ) -> ProjectView {
        ProjectView {
            name,
            redis,
            postgres: None,
            snapshot,
            shared: parts.shared,
            logs: parts.logs,
            events: parts.events,
            watch: parts.watch,
            down: parts.down,
        }
    }

    /// The project now.
    pub fn snapshot(&self) -> Arc<Snapshot> {
        self.snapshot.borrow().clone()
    }

    /// One app, by its id.
    pub fn app(&self, id: &AppId) -> Option<AppView> {
        self.snapshot().app(id.as_str()).cloned()
    }

    /// Every app's running subscriptions (programmatic and declarative), by app-id.
    pub fn subscriptions(&self) -> Vec<(String, Subscription)> {
        self.snapshot()
            .apps
            .iter()
            .flat_map(|app| {
                let id = app.spec.id.to_string();
                let active = app.subscriptions.read();
                active
                    .iter()
                    .map(|s| (id.clone(), s.clone()))
                    .collect::<Vec<_>>()
            })
            .collect()
    }

    /// The names the log lines of the servers daca supervises (Redis, PostgreSQL) carry.
    pub fn server_log_names(&self) -> Vec<String> {
        let snapshot = self.snapshot();
        let servers = snapshot.redis.iter().chain(&snapshot.postgres);
        servers.map(|h| h.spec().name.clone()).collect()
    }

    /// Asks `daca up` to stop (`daca down`, the dashboard).
    pub fn request_down(&self) {
        self.down.notify_one();
    }

    /// Resolves when someone asked the project to stop.
    pub async fn down_requested(&self) {
        self.down.notified().await
    }
}

/// The parts of a project that live beside its owner, each changed only by its own methods.
#[derive(Clone)]
pub(super) struct Parts {
    pub shared: Arc<Shared>,
    pub logs: Arc<LogBus>,
    pub events: Arc<EventLog>,
    pub watch: Arc<WatchStats>,
    pub down: Arc<Notify>,
}
