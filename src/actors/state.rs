//! Actor state, in the actor state store under Dapr's keys: `<appid>||<type>||<id>||<key>`,
//! the app being the one whose sidecar is called (the host: actors save through their own
//! sidecar). The store's `keyPrefix` does not apply; a method's writes are one transaction.

use super::{ActorError, Actors, check_name, check_reserved};
use crate::state::{Delete, Op, Write};

/// One operation of an actor state transaction.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StateOp {
    /// The value is stored as given (the client's JSON text over HTTP, raw bytes over gRPC).
    Upsert {
        key: String,
        value: Vec<u8>,
        /// `metadata.ttlInSeconds`, when the `ActorStateTTL` feature is on.
        ttl: Option<i64>,
    },
    Delete {
        key: String,
    },
}

fn key(app: &str, actor_type: &str, id: &str, key: &str) -> String {
    format!("{app}||{actor_type}||{id}||{key}")
}

impl Actors {
    fn checked_store(
        &self,
        actor_type: &str,
        id: &str,
    ) -> Result<crate::state::StateStore, ActorError> {
        check_reserved(actor_type)?;
        check_name("actorType", actor_type)?;
        check_name("actorId", id)?;
        let components = self.components.get();
        let (_, entry) = components.actor_store().ok_or_else(ActorError::no_store)?;
        Ok(entry.store.clone())
    }

    /// One key's value; `None` when it is missing or empty. No active actor is needed, and
    /// the actor's turn is not taken (Dapr reads the same way).
    pub async fn get_state(
        &self,
        app: &str,
        actor_type: &str,
        id: &str,
        name: &str,
    ) -> Result<Option<Vec<u8>>, ActorError> {
        let store = self.checked_store(actor_type, id)?;
        let item = store
            .get(&key(app, actor_type, id, name))
            .await
            .map_err(|e| ActorError::state_get(e.to_string()))?;
        Ok(item.map(|i| i.data).filter(|data| !data.is_empty()))
    }

    /// Saves `ops` as one transaction under `app`'s keys; the actor must be active on `host`
    /// (the calling instance).
    pub async fn transaction(
        &self,
        app: &str,
        host: &str,
        actor_type: &str,
        id: &str,
        ops: Vec<StateOp>,
    ) -> Result<(), ActorError> {
        let store = self.checked_store(actor_type, id)?;
        if self.active(actor_type, id).is_none_or(|a| a.host != host) {
            return Err(ActorError::instance_missing());
        }
        let ops: Vec<Op> = ops
            .into_iter()
            .map(|op| match op {
                StateOp::Upsert {
                    key: name,
                    value,
                    ttl,
                } => Op::Upsert(Write {
                    key: key(app, actor_type, id, &name),
                    value,
                    etag: None,
                    first_write: false,
                    ttl,
                }),
                StateOp::Delete { key: name } => Op::Delete(Delete {
                    key: key(app, actor_type, id, &name),
                    etag: None,
                }),
            })
            .collect();
        if ops.is_empty() {
            return Ok(());
        }
        store
            .apply(&ops)
            .await
            .map_err(|e| ActorError::transaction(e.to_string()))
    }

    /// The names of an actor's state keys (the dashboard), at most `limit`.
    pub async fn state_keys(
        &self,
        app: &str,
        actor_type: &str,
        id: &str,
        limit: usize,
    ) -> Result<Vec<String>, ActorError> {
        let store = self.checked_store(actor_type, id)?;
        let prefix = key(app, actor_type, id, "");
        let keys = store
            .keys(&prefix, limit)
            .await
            .map_err(|e| ActorError::state_get(e.to_string()))?;
        Ok(keys
            .into_iter()
            .filter_map(|k| k.strip_prefix(&prefix).map(String::from))
            .collect())
    }
}
