//! The actor runtime as `daca ps --actors`, the dashboard and `/v1.0/metadata` show it.

use std::time::Instant;

use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use super::Actors;

/// A hosted actor type.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct TypeView {
    pub actor_type: String,
    pub hosts: Vec<String>,
    pub idle_timeout_ms: u64,
    /// The maximum depth of reentrant calls, when reentrancy is on.
    pub reentrancy: Option<u32>,
}

/// An active actor.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct ActiveView {
    pub actor_type: String,
    pub id: String,
    pub host: String,
    /// Since its last call.
    pub idle_ms: u64,
    pub timers: Vec<String>,
}

/// A reminder, active actor or not.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct ReminderRow {
    pub actor_type: String,
    pub id: String,
    pub name: String,
    /// When it fires next (ms since the Unix epoch).
    pub next_ms: u64,
    pub period: Option<String>,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct ActorsView {
    pub types: Vec<TypeView>,
    pub active: Vec<ActiveView>,
    pub reminders: Vec<ReminderRow>,
}

impl Actors {
    pub fn overview(&self) -> ActorsView {
        let hosting = self.hosting.read();
        let types: Vec<TypeView> = hosting
            .placement
            .types()
            .map(|(actor_type, hosts)| {
                let config = hosts
                    .first()
                    .and_then(|h| hosting.configs.get(h)?.types.get(actor_type).cloned())
                    .unwrap_or_default();
                TypeView {
                    actor_type: actor_type.clone(),
                    hosts: hosts.to_vec(),
                    idle_timeout_ms: config.idle_timeout.as_millis() as u64,
                    reentrancy: config.reentrancy,
                }
            })
            .collect();
        drop(hosting);
        let now = Instant::now();
        let active = self
            .table
            .lock()
            .values()
            .map(|a| ActiveView {
                actor_type: a.actor_type.clone(),
                id: a.id.clone(),
                host: a.host.clone(),
                idle_ms: now.duration_since(a.idle_since()).as_millis() as u64,
                timers: a.timers.lock().keys().cloned().collect(),
            })
            .collect();
        let reminders = self
            .scheduler
            .list(super::reminders::PREFIX)
            .into_iter()
            .filter_map(|(job, next)| {
                let rest = job.key.strip_prefix(super::reminders::PREFIX)?;
                let mut parts = rest.splitn(3, "||");
                Some(ReminderRow {
                    actor_type: parts.next()?.to_string(),
                    id: parts.next()?.to_string(),
                    name: parts.next()?.to_string(),
                    next_ms: next / 1_000_000,
                    // As the Scheduler keeps it (`5s`, not the SDK's `0h0m5s0ms0μs`).
                    period: job.every_ns.map(|every| {
                        crate::timespec::go_string(crate::timespec::GoDuration(every as i64))
                    }),
                })
            })
            .collect();
        ActorsView {
            types,
            active,
            reminders,
        }
    }

    /// `/v1.0/metadata`'s `actorRuntime` for `app`: daca's placement is always connected.
    pub fn runtime_status(&self, app: &str) -> Value {
        let hosted: Vec<String> = {
            let hosting = self.hosting.read();
            hosting
                .configs
                .get(app)
                .map(|c| c.types.keys().cloned().collect())
                .unwrap_or_default()
        };
        let table = self.table.lock();
        let counts: Vec<Value> = hosted
            .iter()
            .map(|t| {
                let count = table
                    .values()
                    .filter(|a| &a.actor_type == t && a.host == app)
                    .count();
                json!({ "type": t, "count": count })
            })
            .collect();
        let mut runtime = json!({
            "runtimeStatus": "RUNNING",
            "hostReady": true,
            "placement": "placement: connected",
        });
        if !counts.is_empty() {
            runtime["activeActors"] = json!(counts);
        }
        runtime
    }
}
