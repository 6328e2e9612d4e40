//! Instances in the actor state store, in Dapr's layout (so `redis-cli` shows under daca what
//! it shows under Dapr): `<app>||dapr.internal.<ns>.<app>.workflow||<id>||<suffix>`, each value
//! raw protobuf: `metadata` (lengths and generation), `history-NNNNNN`, `inbox-NNNNNN`,
//! `customStatus`. A save is one transaction; keys past the new lengths are deleted.

use prost::Message;

use super::WorkflowError;
use super::pb::{self, HistoryEvent};
use super::state::State;
use crate::state::{Delete, Op, StateStore, Write};

/// The prefix of every key of an app's instances.
fn app_prefix(app: &str) -> String {
    format!(
        "{app}||dapr.internal.{}.{app}.workflow||",
        crate::env::namespace()
    )
}

fn key(app: &str, instance: &str, suffix: &str) -> String {
    format!("{}{instance}||{suffix}", app_prefix(app))
}

fn indexed(kind: &str, index: usize) -> String {
    format!("{kind}-{index:06}")
}

fn store_error(err: impl std::fmt::Display) -> WorkflowError {
    WorkflowError::Store(err.to_string())
}

/// Reads an instance; `exists` is false when it has no metadata.
pub async fn load(store: &StateStore, app: &str, instance: &str) -> Result<State, WorkflowError> {
    let Some(meta) = store
        .get(&key(app, instance, "metadata"))
        .await
        .map_err(store_error)?
    else {
        return Ok(State::default());
    };
    let meta =
        pb::durabletask::protos::backend::v1::BackendWorkflowStateMetadata::decode(&meta.data[..])
            .map_err(|e| store_error(format!("the metadata of workflow {instance}: {e}")))?;
    let history = read_events(store, app, instance, "history", meta.history_length).await?;
    let inbox = read_events(store, app, instance, "inbox", meta.inbox_length).await?;
    let custom_status = match store
        .get(&key(app, instance, "customStatus"))
        .await
        .map_err(store_error)?
    {
        Some(item) if !item.data.is_empty() => Some(
            String::decode(&item.data[..])
                .map_err(|e| store_error(format!("the custom status of {instance}: {e}")))?,
        ),
        _ => None,
    };
    Ok(State {
        exists: true,
        history_saved: history.len(),
        history_keys: history.len(),
        inbox_keys: inbox.len(),
        history,
        inbox,
        generation: meta.generation,
        custom_status,
    })
}

async fn read_events(
    store: &StateStore,
    app: &str,
    instance: &str,
    kind: &str,
    length: u64,
) -> Result<Vec<HistoryEvent>, WorkflowError> {
    let mut events = Vec::with_capacity(length as usize);
    for index in 0..length as usize {
        let item = store
            .get(&key(app, instance, &indexed(kind, index)))
            .await
            .map_err(store_error)?
            .ok_or_else(|| {
                store_error(format!("{instance}: {} is missing", indexed(kind, index)))
            })?;
        events.push(
            HistoryEvent::decode(&item.data[..])
                .map_err(|e| store_error(format!("{instance}: {}: {e}", indexed(kind, index))))?,
        );
    }
    Ok(events)
}

fn upsert(key: String, value: Vec<u8>) -> Op {
    Op::Upsert(Write {
        key,
        value,
        etag: None,
        first_write: false,
        ttl: None,
    })
}

fn delete(key: String) -> Op {
    Op::Delete(Delete { key, etag: None })
}

/// Writes what changed since the last save, in one transaction, and notes it as saved.
pub async fn save(
    store: &StateStore,
    app: &str,
    instance: &str,
    state: &mut State,
) -> Result<(), WorkflowError> {
    let mut ops = Vec::new();
    let from = state.history_saved.min(state.history.len());
    for (index, event) in state.history.iter().enumerate().skip(from) {
        ops.push(upsert(
            key(app, instance, &indexed("history", index)),
            event.encode_to_vec(),
        ));
    }
    for index in state.history.len()..state.history_keys {
        ops.push(delete(key(app, instance, &indexed("history", index))));
    }
    for (index, event) in state.inbox.iter().enumerate() {
        ops.push(upsert(
            key(app, instance, &indexed("inbox", index)),
            event.encode_to_vec(),
        ));
    }
    for index in state.inbox.len()..state.inbox_keys {
        ops.push(delete(key(app, instance, &indexed("inbox", index))));
    }
    let custom = state
        .custom_status
        .as_ref()
        .map(|s| s.encode_to_vec())
        .unwrap_or_default();
    ops.push(upsert(key(app, instance, "customStatus"), custom));
    let meta = pb::durabletask::protos::backend::v1::BackendWorkflowStateMetadata {
        inbox_length: state.inbox.len() as u64,
        history_length: state.history.len() as u64,
        generation: state.generation,
        ..Default::default()
    };
    ops.push(upsert(key(app, instance, "metadata"), meta.encode_to_vec()));
    store.apply(&ops).await.map_err(store_error)?;
    state.exists = true;
    state.history_saved = state.history.len();
    state.history_keys = state.history.len();
    state.inbox_keys = state.inbox.len();
    Ok(())
}

/// Deletes every key of an instance.
pub async fn purge(
    store: &StateStore,
    app: &str,
    instance: &str,
    state: &State,
) -> Result<(), WorkflowError> {
    let mut ops: Vec<Op> = (0..state.history_keys.max(state.history.len()))
        .map(|i| delete(key(app, instance, &indexed("history", i))))
        .collect();
    ops.extend(
        (0..state.inbox_keys.max(state.inbox.len()))
            .map(|i| delete(key(app, instance, &indexed("inbox", i)))),
    );
    ops.push(delete(key(app, instance, "customStatus")));
    ops.push(delete(key(app, instance, "metadata")));
    store.apply(&ops).await.map_err(store_error)
}

/// The ids of an app's instances in the store.
pub async fn instance_ids(store: &StateStore, app: &str) -> Result<Vec<String>, WorkflowError> {
    let prefix = app_prefix(app);
    let keys = store.keys(&prefix, 1_000_000).await.map_err(store_error)?;
    Ok(keys
        .iter()
        .filter_map(|k| k.strip_prefix(&prefix)?.strip_suffix("||metadata"))
        .map(String::from)
        .collect())
}
