//! State store instances for the state components: one per component, shared by every app.
//!
//! Component files written for Kubernetes work unchanged: a `redisHost` naming a cluster service
//! (`redis-master:6379`, `*.svc.cluster.local`) points at daca's Redis, with a notice saying so.
//! Without any Redis in this run (embedded mode), Redis components become in-memory ones.

use std::collections::BTreeMap;

use redis::IntoConnectionInfo;

use super::{Component, ComponentKind};
use crate::redis::RedisPlan;
use crate::resiliency::{self, AppPolicies};
use crate::state::{MemoryStore, Op, PostgresStore, RedisStore, StateStore, StoreError};

/// How keys are prefixed in the store (`keyPrefix` metadata).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum KeyPrefix {
    AppId,
    Name,
    Namespace,
    None,
    Custom(String),
}

impl KeyPrefix {
    fn parse(raw: Option<&str>) -> KeyPrefix {
        // Dapr lower-cases the value, custom prefixes included.
        match raw.map(str::to_lowercase).as_deref() {
            None | Some("") | Some("appid") => KeyPrefix::AppId,
            Some("name") => KeyPrefix::Name,
            Some("namespace") => KeyPrefix::Namespace,
            Some("none") => KeyPrefix::None,
            Some(other) => KeyPrefix::Custom(other.to_string()),
        }
    }
}

/// A state component ready to serve.
#[derive(Clone)]
pub struct StateEntry {
    pub component: Component,
    pub store: StateStore,
    pub key_prefix: KeyPrefix,
    /// Component-wide `ttlInSeconds`, used when a request gives none.
    pub default_ttl: Option<i64>,
}

/// A component's metadata cannot be used.
#[derive(Debug, thiserror::Error)]
#[error("component `{name}` ({origin}): {message}\n  hint: {hint}")]
pub struct StoreSetupError {
    pub name: String,
    pub origin: String,
    pub message: String,
    pub hint: String,
}

impl StoreSetupError {
    /// `component`'s problem, placed at its file and line (or daca's defaults).
    pub fn new(component: &Component, message: String, hint: &str) -> StoreSetupError {
        StoreSetupError {
            name: component.name.clone(),
            origin: component
                .origin
                .clone()
                .unwrap_or_else(|| "daca's default".into()),
            message,
            hint: hint.into(),
        }
    }
}

/// Builds the state stores; returns them by name, with notices for the user.
pub fn state_stores(
    components: &[Component],
    redis: &RedisPlan,
) -> Result<(BTreeMap<String, StateEntry>, Vec<String>), StoreSetupError> {
    let mut stores = BTreeMap::new();
    let mut notices = Vec::new();
    for component in components.iter().filter(|c| c.kind.is_state()) {
        let fail = |message: String, hint: &str| StoreSetupError::new(component, message, hint);
        let default_ttl = match component.get("ttlInSeconds") {
            Some(raw) if !raw.is_empty() => Some(raw.parse::<i64>().map_err(|_| {
                fail(
                    format!("ttlInSeconds `{raw}` is not a whole number"),
                    "write seconds, e.g. \"60\"",
                )
            })?),
            _ => None,
        };
        let store = match component.kind {
            ComponentKind::StateRedis => redis_store(component, redis, &mut notices)
                .map_err(|m| fail(m, "check redisHost, redisPassword and redisDB"))?,
            ComponentKind::StatePostgres if component.version == "v2" => {
                return Err(fail(
                    "state.postgresql v2 (its other table layout) is not one daca implements"
                        .into(),
                    "write `version: v1`, the layout Dapr's quickstarts and the course use",
                ));
            }
            ComponentKind::StatePostgres => PostgresStore::new(component)
                .map(|store| StateStore::Postgres(std::sync::Arc::new(store)))
                .map_err(|m| fail(m, "check connectionString, tableName and metadataTableName"))?,
            _ => StateStore::Memory(MemoryStore::new()),
        };
        let key_prefix = KeyPrefix::parse(component.get("keyPrefix"));
        stores.insert(
            component.name.clone(),
            StateEntry {
                component: component.clone(),
                store,
                key_prefix,
                default_ttl,
            },
        );
    }
    Ok((stores, notices))
}

/// Whether `host` names something inside a Kubernetes cluster rather than this machine.
pub(crate) fn is_cluster_name(host: &str) -> bool {
    host.ends_with(".svc.cluster.local")
        || host.ends_with(".svc")
        || (!host.contains('.') && !host.contains(':') && host != "localhost")
}

pub(crate) fn is_local(host: &str) -> bool {
    matches!(host, "localhost" | "127.0.0.1" | "::1" | "[::1]")
}

fn redis_store(
    component: &Component,
    redis: &RedisPlan,
    notices: &mut Vec<String>,
) -> Result<StateStore, String> {
    Ok(match redis_target(component, redis, notices)? {
        Some(info) => StateStore::Redis(RedisStore::new(info)),
        None => StateStore::Memory(MemoryStore::new()),
    })
}

/// Where a Redis component's data lives: the Redis to connect to, or None for the embedded
/// in-memory store (a component meaning "the project's Redis" when this run has none).
pub fn redis_target(
    component: &Component,
    redis: &RedisPlan,
    notices: &mut Vec<String>,
) -> Result<Option<redis::ConnectionInfo>, String> {
    let written = component.get("redisHost").unwrap_or("localhost:6379");
    let (host, port) = match written.rsplit_once(':') {
        Some((host, port)) => (
            host,
            port.parse::<u16>()
                .map_err(|_| format!("redisHost `{written}` has no valid port"))?,
        ),
        None => (written, 6379),
    };
    let daca_redis = redis.url();
    // `localhost:6379` is what `dapr init` writes; like a cluster service name, it means "the
    // project's Redis", wherever daca runs it. Other addresses are used as written.
    let means_project_redis =
        is_cluster_name(host) || (is_local(host) && port == 6379) || component.origin.is_none();
    let address = match (means_project_redis, daca_redis) {
        (true, None) => {
            notices.push(format!("component `{}`: no Redis in this run, so `{written}` is served by the embedded in-memory store", component.name));
            return Ok(None);
        }
        (true, Some(url)) => {
            if is_cluster_name(host) {
                notices.push(format!("component `{}`: redisHost `{written}` is a Kubernetes name; using daca's Redis at {url}", component.name));
            }
            url
        }
        (false, _) => format!("redis://{host}:{port}"),
    };
    let db = component
        .get("redisDB")
        .filter(|d| !d.is_empty())
        .unwrap_or("0");
    let db: i64 = db
        .parse()
        .map_err(|_| format!("redisDB `{db}` is not a number"))?;
    let info = address
        .as_str()
        .into_connection_info()
        .map_err(|err| format!("bad Redis address {address}: {err}"))?;
    let mut settings = info.redis_settings().clone().set_db(db);
    if let Some(password) = component.get("redisPassword").filter(|p| !p.is_empty()) {
        settings = settings.set_password(password);
    }
    if let Some(user) = component.get("redisUsername").filter(|u| !u.is_empty()) {
        settings = settings.set_username(user);
    }
    Ok(Some(info.set_redis_settings(settings)))
}

impl StateEntry {
    /// A read, under the app's outbound policy for this store.
    pub async fn get(
        &self,
        policies: &AppPolicies,
        key: &str,
    ) -> Result<Option<crate::state::Item>, StoreError> {
        let policy = self.policy(policies);
        let what = || format!("state store {}: get", self.component.name);
        resiliency::run(&policy, what, judge, || self.store.get(key)).await
    }

    /// Writes (all or nothing), under the app's outbound policy for this store.
    pub async fn apply(&self, policies: &AppPolicies, ops: &[Op]) -> Result<(), StoreError> {
        let policy = self.policy(policies);
        let what = || format!("state store {}: write", self.component.name);
        resiliency::run(&policy, what, judge, || self.store.apply(ops)).await
    }

    fn policy(&self, policies: &AppPolicies) -> resiliency::Policy {
        policies.component(
            &self.component.name,
            resiliency::ComponentType::Statestore,
            resiliency::Direction::Outbound,
        )
    }
}

/// A store's failure is retried; an etag conflict or a bad etag is the caller's, and a retry
/// would only repeat it.
fn judge<T>(result: &Result<T, StoreError>) -> resiliency::Verdict {
    match result {
        Ok(_) => resiliency::Verdict::Success,
        Err(StoreError::Failed(_)) => resiliency::Verdict::Failure(None),
        Err(_) => resiliency::Verdict::Permanent,
    }
}

impl From<resiliency::Interrupted> for StoreError {
    fn from(why: resiliency::Interrupted) -> StoreError {
        StoreError::Failed(why.to_string())
    }
}
