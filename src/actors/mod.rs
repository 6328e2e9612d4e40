//! Dapr's virtual actors, served in-process: no placement or scheduler service runs.
//!
//! How it works: each app's host task (`host.rs`) reads the app's `GET /dapr/config` whenever
//! the app becomes ready and registers its actor types here. [`Placement`] (consistent hashing,
//! as Dapr's placement service) picks which app hosts an id. A call from any sidecar activates
//! the actor in one table for the whole project, takes the actor's turn (`lock.rs`, with
//! Dapr's reentrancy), and calls the host through its app channel (`PUT
//! /actors/{type}/{id}/method/{method}`). Idle actors are deactivated (`DELETE
//! /actors/{type}/{id}`) after their idle timeout, and all of an app's actors before it
//! stops. State lives in the actor state store under Dapr's keys (`state.rs`); timers are in
//! memory with their actor (`timers.rs`); reminders are jobs of the durable scheduler
//! (`reminders.rs`).

mod config;
mod error;
mod host;
mod lock;
mod placement;
mod reminders;
mod state;
mod timers;
pub mod view;

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use axum::http::{HeaderMap, HeaderName, HeaderValue};
use bytes::Bytes;
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

pub use config::{HostConfig, TypeConfig};
pub use error::{ActorError, check_name, check_reserved};
pub use host::follow;
pub use reminders::ReminderSpec;
pub use state::StateOp;
pub use timers::TimerSpec;

use crate::channel::{ActorAnswer, ActorCall, forwardable};
use crate::scheduler::Scheduler;
use crate::sidecar::{ComponentSet, Directory};
use crate::sync::{Mutex, RwLock};
use lock::TurnLock;
use placement::Placement;

/// Dapr's built-in retries when no app hosts a type yet: five, one second apart.
const LOOKUP_RETRIES: u32 = 5;
const LOOKUP_WAIT: Duration = Duration::from_secs(1);
/// How long a call waits for a host app that is restarting or reloading.
const HOST_WAIT: Duration = Duration::from_secs(30);

/// Where the runtime's own tasks run (idle deactivation, timers, the scheduler's loop).
#[derive(Clone)]
pub struct Background {
    pub token: CancellationToken,
    pub tasks: TaskTracker,
}

impl Background {
    /// Tasks that run for as long as the process does (tests, tools).
    pub fn detached() -> Background {
        Background {
            token: CancellationToken::new(),
            tasks: TaskTracker::new(),
        }
    }
}

/// An actor type and id.
pub type ActorKey = (String, String);

/// An active actor.
pub struct Active {
    pub actor_type: String,
    pub id: String,
    /// The app that hosts it while it is active.
    pub host: String,
    lock: Arc<TurnLock>,
    config: TypeConfig,
    last_used: Mutex<Instant>,
    pub activated: SystemTime,
    timers: Mutex<BTreeMap<String, timers::Timer>>,
}

impl Active {
    fn touch(&self) {
        *self.last_used.lock() = Instant::now();
    }

    fn idle_since(&self) -> Instant {
        *self.last_used.lock()
    }

    /// The names of its running timers.
    pub fn timer_names(&self) -> Vec<String> {
        self.timers.lock().keys().cloned().collect()
    }
}

#[derive(Default)]
struct Hosting {
    configs: BTreeMap<String, HostConfig>,
    placement: Placement,
}

/// The actor runtime of a project: one for every app's sidecar.
pub struct Actors {
    apps: Directory,
    components: ComponentSet,
    scheduler: Scheduler,
    hosting: RwLock<Hosting>,
    table: Mutex<BTreeMap<ActorKey, Arc<Active>>>,
    /// Woken when types are registered (calls and reminders waiting for a host).
    hosted: Notify,
    /// Woken when an actor would be idle before the idle scan's next wake.
    changed: Notify,
    /// When the idle scan wakes next (none: no actor). Read and written under `table`'s
    /// lock, so an activation either is seen by a scan or sees the scan's new time; waking
    /// the scan on every activation would rescan the table each time (10,000 reminders due
    /// together activate 10,000 actors).
    idle_wake: Mutex<Option<Instant>>,
    background: Background,
}

/// An actor method call, as a sidecar received it.
#[derive(Clone)]
pub struct Invoke {
    pub actor_type: String,
    pub id: String,
    pub method: String,
    pub headers: HeaderMap,
    pub query: Option<String>,
    pub body: Bytes,
    /// The app whose sidecar was called.
    pub caller: String,
}

impl Actors {
    pub fn new(
        apps: Directory,
        components: ComponentSet,
        scheduler: Scheduler,
        background: Background,
    ) -> Arc<Actors> {
        let actors = Arc::new(Actors {
            apps,
            components,
            scheduler: scheduler.clone(),
            hosting: RwLock::default(),
            table: Mutex::default(),
            hosted: Notify::new(),
            changed: Notify::new(),
            idle_wake: Mutex::default(),
            background: background.clone(),
        });
        let target = Arc::new(reminders::Deliver(Arc::downgrade(&actors)));
        scheduler.serve(reminders::PREFIX, target);
        let (token, tasks) = (background.token.clone(), background.tasks.clone());
        background.tasks.spawn(scheduler.run(token, tasks));
        background.tasks.spawn(actors.clone().deactivate_idle());
        actors
    }

    /// `app` hosts what `config` lists from now on; actors of types it dropped are
    /// deactivated.
    pub async fn register(&self, app: &str, config: HostConfig) {
        let types: Vec<String> = config.types.keys().cloned().collect();
        {
            let mut hosting = self.hosting.write();
            hosting.placement.set(app, &types);
            hosting.configs.insert(app.to_string(), config);
        }
        self.hosted.notify_waiters();
        let dropped: Vec<Arc<Active>> = self
            .table
            .lock()
            .values()
            .filter(|a| a.host == app && !types.contains(&a.actor_type))
            .cloned()
            .collect();
        for active in dropped {
            self.deactivate(&active).await;
        }
    }

    /// `app` is going away: its actors are deactivated (it still answers), then it hosts
    /// nothing.
    pub async fn unregister(&self, app: &str) {
        self.register(app, HostConfig::default()).await;
        self.hosting.write().configs.remove(app);
    }

    /// The settings of `actor_type` as `app` registered it.
    fn type_config(&self, app: &str, actor_type: &str) -> Option<TypeConfig> {
        let hosting = self.hosting.read();
        hosting.configs.get(app)?.types.get(actor_type).cloned()
    }

    /// The app that would host `id` of `actor_type` now.
    pub fn placement_host(&self, actor_type: &str, id: &str) -> Option<String> {
        self.hosting.read().placement.host(actor_type, id)
    }

    /// Whether `app` registered `actor_type`.
    pub fn hosts(&self, app: &str, actor_type: &str) -> bool {
        self.type_config(app, actor_type).is_some()
    }

    /// The active actor, activating it on its host: as Dapr, a type no app hosts yet is
    /// looked up five times, a second apart.
    async fn activate(&self, actor_type: &str, id: &str) -> Result<Arc<Active>, ActorError> {
        if self.components.get().actor_store().is_none() {
            return Err(ActorError::invoke(
                "failed to create actor: actor hosting is suspended: no actor state store configured"
                    .into(),
            ));
        }
        let key = (actor_type.to_string(), id.to_string());
        for attempt in 0..=LOOKUP_RETRIES {
            if let Some(active) = self.table.lock().get(&key).cloned() {
                return Ok(active);
            }
            let host = self.hosting.read().placement.host(actor_type, id);
            if let Some(host) = host
                && let Some(config) = self.type_config(&host, actor_type)
            {
                return Ok(self.insert(key, host, config));
            }
            if attempt < LOOKUP_RETRIES {
                let _ = tokio::time::timeout(LOOKUP_WAIT, self.hosted.notified()).await;
            }
        }
        Err(ActorError::no_host(actor_type, id))
    }

    fn insert(&self, key: ActorKey, host: String, config: TypeConfig) -> Arc<Active> {
        let idle_at = Instant::now() + config.idle_timeout;
        let mut table = self.table.lock();
        let active = table.entry(key.clone()).or_insert_with(|| {
            Arc::new(Active {
                actor_type: key.0,
                id: key.1,
                host,
                lock: Arc::default(),
                config,
                last_used: Mutex::new(Instant::now()),
                activated: SystemTime::now(),
                timers: Mutex::default(),
            })
        });
        let active = active.clone();
        let sooner = self.idle_wake.lock().is_none_or(|wake| idle_at < wake);
        drop(table);
        if sooner {
            self.changed.notify_one();
        }
        active
    }

    /// The active actor, if it is.
    pub fn active(&self, actor_type: &str, id: &str) -> Option<Arc<Active>> {
        let key = (actor_type.to_string(), id.to_string());
        self.table.lock().get(&key).cloned()
    }

    /// A method call: Dapr's answer rules (only 200 is success; 404 is "not found").
    /// A call from an app's sidecar, under that app's actor policy (`targets.actors`):
    /// retries and the breaker around the call, the timeout per attempt.
    pub async fn invoke_from(
        &self,
        call: Invoke,
        policies: &crate::resiliency::AppPolicies,
    ) -> Result<ActorAnswer, ActorError> {
        let policy = policies.actor(&call.actor_type, &call.id);
        let what = || format!("actor {}/{}: {}", call.actor_type, call.id, call.method);
        let judge = |result: &Result<ActorAnswer, ActorError>| match result {
            Ok(_) => crate::resiliency::Verdict::Success,
            // A bad name or a reserved type: the same call fails the same way again.
            Err(e)
                if matches!(
                    e.code,
                    "ERR_BAD_REQUEST" | "ERR_MALFORMED_REQUEST" | "ERR_ACTOR_TYPE_RESERVED"
                ) =>
            {
                crate::resiliency::Verdict::Permanent
            }
            Err(_) => crate::resiliency::Verdict::Failure(None),
        };
        crate::resiliency::run(&policy, what, judge, || self.invoke(call.clone())).await
    }

    pub async fn invoke(&self, call: Invoke) -> Result<ActorAnswer, ActorError> {
        check_name("actorType", &call.actor_type)?;
        check_name("actorId", &call.id)?;
        let active = self.activate(&call.actor_type, &call.id).await?;
        let flight = call
            .headers
            .get("dapr-reentrancy-id")
            .and_then(|v| v.to_str().ok())
            .filter(|_| active.config.reentrancy.is_some())
            .map_or_else(crate::pubsub::envelope::uuid_v4, String::from);
        let mut headers = forwardable(&call.headers);
        stamp(&mut headers, "dapr-api-call", "true");
        stamp(&mut headers, "dapr-caller-app-id", &call.caller);
        if !headers.contains_key("traceparent") {
            stamp(
                &mut headers,
                "traceparent",
                &crate::sidecar::new_traceparent(),
            );
        }
        let path = Callback {
            method: &call.method,
            query: call.query.as_deref(),
            headers,
            body: call.body,
        };
        let answer = self.call(&active, path, &flight).await?;
        let error_header = answer.headers.contains_key("x-daprerrorresponseheader");
        match answer.status {
            200 => Ok(answer),
            _ if error_header => Ok(answer),
            404 => Err(ActorError::invoke(format!(
                "actor method not found: actors/{}/{}/method/{}",
                call.actor_type, call.id, call.method
            ))),
            status => Err(ActorError::invoke(format!(
                "error from actor service: ({status}) {}",
                String::from_utf8_lossy(&answer.body)
            ))),
        }
    }

    /// One callback into the actor's host, in the actor's turn.
    async fn call(
        &self,
        active: &Arc<Active>,
        callback: Callback<'_>,
        flight: &str,
    ) -> Result<ActorAnswer, ActorError> {
        let mut headers = callback.headers;
        let depth = active.config.reentrancy;
        if depth.is_some() {
            stamp(&mut headers, "dapr-reentrancy-id", flight);
        }
        let turn = active
            .lock
            .acquire(flight, depth)
            .await
            .map_err(|_| ActorError::stack_depth())?;
        active.touch();
        let channel = self.host_channel(&active.host).await?;
        let answer = channel
            .actor(ActorCall::Method {
                actor_type: &active.actor_type,
                id: &active.id,
                method: callback.method,
                headers: &headers,
                query: callback.query,
                body: callback.body,
            })
            .await
            .map_err(|_| ActorError::invoke(format!("app {} did not answer", active.host)))?;
        drop(turn);
        active.touch();
        Ok(answer)
    }

    /// The host's channel once it is ready (it may be restarting or reloading).
    async fn host_channel(&self, host: &str) -> Result<crate::channel::AppChannel, ActorError> {
        let gone = || ActorError::invoke(format!("app {host} is not running"));
        let channel = self.apps.instance(host).ok_or_else(gone)?;
        if !channel.is_ready() {
            let mut waiting = channel.clone();
            let _ = tokio::time::timeout(HOST_WAIT, waiting.wait_ready()).await;
        }
        if !channel.is_ready() {
            return Err(gone());
        }
        Ok(channel)
    }

    /// Ends an actor: waits for its turn, forgets it (and its timers), tells its host.
    pub async fn deactivate(&self, active: &Arc<Active>) {
        let flight = crate::pubsub::envelope::uuid_v4();
        let turn = active.lock.acquire(&flight, None).await;
        let key = (active.actor_type.clone(), active.id.clone());
        {
            let mut table = self.table.lock();
            if table.get(&key).is_some_and(|a| Arc::ptr_eq(a, active)) {
                table.remove(&key);
            }
        }
        active.timers.lock().clear();
        if let Some(channel) = self.apps.instance(&active.host).filter(|c| c.is_ready()) {
            let call = ActorCall::Deactivate {
                actor_type: &active.actor_type,
                id: &active.id,
            };
            match channel.actor(call).await {
                Ok(answer) if answer.status == 200 => {}
                Ok(answer) => tracing::debug!(
                    "{}: deactivating {}/{} answered {}",
                    active.host,
                    active.actor_type,
                    active.id,
                    answer.status
                ),
                Err(_) => {}
            }
        }
        drop(turn);
    }

    /// Deactivates actors idle past their timeout, until the runtime ends.
    async fn deactivate_idle(self: Arc<Self>) {
        loop {
            let now = Instant::now();
            let (idle, next) = self.idle_actors(now);
            for active in idle {
                let actors = self.clone();
                self.background
                    .tasks
                    .spawn(async move { actors.deactivate(&active).await });
            }
            let wait = async {
                match next {
                    Some(at) => tokio::time::sleep_until(at.into()).await,
                    None => std::future::pending().await,
                }
            };
            tokio::select! {
                _ = self.background.token.cancelled() => return,
                () = self.changed.notified() => {}
                () = wait => {}
            }
        }
    }

    /// The actors idle past their timeout (and free), and when the next one will be.
    fn idle_actors(&self, now: Instant) -> (Vec<Arc<Active>>, Option<Instant>) {
        let table = self.table.lock();
        let mut next: Option<Instant> = None;
        let mut idle = Vec::new();
        for active in table.values() {
            let due = active.idle_since() + active.config.idle_timeout;
            if due <= now && active.lock.is_free() {
                idle.push(active.clone());
            } else {
                let at = due.max(now + Duration::from_millis(100));
                next = Some(next.map_or(at, |n| n.min(at)));
            }
        }
        *self.idle_wake.lock() = next;
        (idle, next)
    }
}

/// What a callback sends.
struct Callback<'a> {
    method: &'a str,
    query: Option<&'a str>,
    headers: HeaderMap,
    body: Bytes,
}

fn stamp(headers: &mut HeaderMap, name: &'static str, value: &str) {
    if let Ok(value) = HeaderValue::from_str(value) {
        headers.insert(HeaderName::from_static(name), value);
    }
}
