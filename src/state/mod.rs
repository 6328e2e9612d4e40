//! State stores with Dapr's semantics: versions as etags, first-write concurrency, TTLs, and
//! transactions. `redis.rs` keeps Dapr's exact Redis layout (a hash per key with `data` and
//! `version`), and `memory.rs` is the embedded store used when there is no Redis; those two
//! behave identically (a property test holds them to it). `postgres.rs` is `state.postgresql`
//! v1 in components-contrib's table layout, with its etags (`xmin`) and errors.
//!
//! Keys reaching this module are already prefixed (`myapp||order-1`, see `sidecar/keys.rs`).

mod memory;
mod postgres;
mod postgres_migrations;
mod redis;

pub use memory::MemoryStore;
pub use postgres::PostgresStore;
pub use redis::{RedisStore, WRITE_SCRIPT};

/// A write of one key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Write {
    pub key: String,
    /// The bytes stored in `data`, exactly as given.
    pub value: Vec<u8>,
    pub etag: Option<String>,
    /// `options.concurrency: first-write`.
    pub first_write: bool,
    /// Seconds to live: > 0 expires, <= 0 removes an expiry, None leaves it as it is.
    pub ttl: Option<i64>,
}

/// A delete of one key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Delete {
    pub key: String,
    pub etag: Option<String>,
}

/// One operation of a transaction.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Op {
    Upsert(Write),
    Delete(Delete),
}

/// A stored value and its etag (none for legacy plain-string values).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Item {
    pub data: Vec<u8>,
    pub etag: Option<String>,
}

/// Why a store operation failed; the API layer maps these to Dapr's status codes.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum StoreError {
    #[error("possible etag mismatch. error from state store: {0}")]
    EtagMismatch(String),
    #[error("invalid etag value: {0}")]
    EtagInvalid(String),
    #[error("{0}")]
    Failed(String),
}

/// The version a write must find, as the Redis script compares it: the etag as an integer,
/// or `0` for "no etag" (Dapr's Redis store rejects non-numeric etags before writing).
pub(crate) fn expected_version(write: &Write) -> Result<String, StoreError> {
    match &write.etag {
        None => Ok("0".into()),
        Some(etag) => etag.parse::<i64>().map(|v| v.to_string()).map_err(|err| {
            StoreError::EtagInvalid(format!("strconv.Atoi: parsing \"{etag}\": {err}"))
        }),
    }
}

/// A configured store instance. An enum rather than a trait object: two backends, one `match`.
#[derive(Clone)]
pub enum StateStore {
    Redis(RedisStore),
    Memory(MemoryStore),
    Postgres(std::sync::Arc<PostgresStore>),
}

impl StateStore {
    pub async fn get(&self, key: &str) -> Result<Option<Item>, StoreError> {
        match self {
            StateStore::Redis(store) => store.get(key).await,
            StateStore::Memory(store) => store.get(key),
            StateStore::Postgres(store) => store.get(key).await,
        }
    }

    /// Runs `ops` all or nothing: if any etag check fails, nothing is written.
    pub async fn apply(&self, ops: &[Op]) -> Result<(), StoreError> {
        match self {
            StateStore::Redis(store) => store.apply(ops).await,
            StateStore::Memory(store) => store.apply(ops),
            StateStore::Postgres(store) => store.apply(ops).await,
        }
    }

    /// Keys starting with `prefix` (for the dashboard), sorted, at most `limit`.
    pub async fn keys(&self, prefix: &str, limit: usize) -> Result<Vec<String>, StoreError> {
        match self {
            StateStore::Redis(store) => store.keys(prefix, limit).await,
            StateStore::Memory(store) => Ok(store.keys(prefix, limit)),
            StateStore::Postgres(store) => store.keys(prefix, limit).await,
        }
    }

    /// Seconds until `key` expires (None without an expiry or a key), for tests and the dashboard.
    pub async fn ttl(&self, key: &str) -> Result<Option<i64>, StoreError> {
        match self {
            StateStore::Redis(store) => store.ttl(key).await,
            StateStore::Memory(store) => Ok(store.ttl(key)),
            StateStore::Postgres(store) => store.ttl(key).await,
        }
    }
}
