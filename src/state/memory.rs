//! The embedded in-memory store (Dapr's `state.in-memory`), with the Redis store's semantics
//! so an app behaves the same with or without Redis.

use std::collections::HashMap;
use std::sync::Arc;

use crate::sync::Mutex;
use std::time::{Duration, Instant};

use super::{Delete, Item, Op, StoreError, Write, expected_version};

#[derive(Debug, Clone)]
struct Entry {
    data: Vec<u8>,
    version: i64,
    first_write: bool,
    expires: Option<Instant>,
}

/// Shared by every app using the same component; cloning shares the data.
#[derive(Clone, Default)]
pub struct MemoryStore {
    // A std mutex: held for map operations only, never across an `.await`.
    entries: Arc<Mutex<HashMap<String, Entry>>>,
}

impl MemoryStore {
    pub fn new() -> MemoryStore {
        MemoryStore::default()
    }

    fn live(entries: &mut HashMap<String, Entry>, key: &str) -> Option<Entry> {
        let entry = entries.get(key)?;
        if entry.expires.is_some_and(|at| at <= Instant::now()) {
            entries.remove(key);
            return None;
        }
        Some(entry.clone())
    }

    pub fn get(&self, key: &str) -> Result<Option<Item>, StoreError> {
        let mut entries = self.entries.lock();
        Ok(Self::live(&mut entries, key).map(|e| Item {
            data: e.data,
            etag: Some(e.version.to_string()),
        }))
    }

    /// Live keys starting with `prefix`, sorted, at most `limit`.
    pub fn keys(&self, prefix: &str, limit: usize) -> Vec<String> {
        let entries = self.entries.lock();
        let now = Instant::now();
        let mut keys: Vec<String> = entries
            .iter()
            .filter(|(k, e)| k.starts_with(prefix) && e.expires.is_none_or(|at| at > now))
            .map(|(k, _)| k.clone())
            .collect();
        keys.sort();
        keys.truncate(limit);
        keys
    }

    pub fn ttl(&self, key: &str) -> Option<i64> {
        let mut entries = self.entries.lock();
        let expires = Self::live(&mut entries, key)?.expires?;
        Some(
            expires
                .saturating_duration_since(Instant::now())
                .as_secs_f64()
                .round() as i64,
        )
    }

    pub fn apply(&self, ops: &[Op]) -> Result<(), StoreError> {
        let mut entries = self.entries.lock();
        // Malformed etags are refused before anything is looked at (as the Redis store does).
        for op in ops {
            if let Op::Upsert(write) = op {
                expected_version(write)?;
            }
        }
        // Check every operation first, so a failed check leaves everything untouched.
        for op in ops {
            match op {
                Op::Upsert(write) => {
                    check_write(Self::live(&mut entries, &write.key).as_ref(), write)?
                }
                Op::Delete(delete) => {
                    check_delete(Self::live(&mut entries, &delete.key).as_ref(), delete)?
                }
            }
        }
        for op in ops {
            match op {
                Op::Upsert(write) => {
                    let previous = Self::live(&mut entries, &write.key);
                    entries.insert(write.key.clone(), written(previous, write));
                }
                Op::Delete(delete) => {
                    entries.remove(&delete.key);
                }
            }
        }
        Ok(())
    }
}

/// The Redis script's rule: a new key, the same version, or (no etag and not first-write).
fn check_write(entry: Option<&Entry>, write: &Write) -> Result<(), StoreError> {
    let expected = expected_version(write)?;
    match entry {
        None => Ok(()),
        Some(e) if e.version.to_string() == expected => Ok(()),
        Some(e) if !e.first_write && expected == "0" => Ok(()),
        // Without an etag in the request it is not an etag mismatch but a plain failure (Dapr: 500).
        Some(_) if write.etag.is_none() => Err(StoreError::Failed(format!(
            "failed to set key {}",
            write.key
        ))),
        Some(_) => Err(StoreError::EtagMismatch(format!(
            "failed to set key {}",
            write.key
        ))),
    }
}

fn check_delete(entry: Option<&Entry>, delete: &Delete) -> Result<(), StoreError> {
    let etag = delete.etag.as_deref().unwrap_or("0");
    match entry {
        Some(e) if etag != "0" && e.version.to_string() != etag => Err(StoreError::EtagMismatch(
            format!("failed to delete {}", delete.key),
        )),
        _ => Ok(()),
    }
}

fn written(previous: Option<Entry>, write: &Write) -> Entry {
    let expires = match write.ttl {
        // Past the clock's range is never, rather than a panic under the store's lock.
        Some(ttl) if ttl > 0 => Instant::now().checked_add(Duration::from_secs(ttl.unsigned_abs())),
        Some(_) => None,
        None => previous.as_ref().and_then(|p| p.expires),
    };
    Entry {
        data: write.value.clone(),
        version: previous.as_ref().map_or(0, |p| p.version) + 1,
        first_write: write.first_write || previous.is_some_and(|p| p.first_write),
        expires,
    }
}
