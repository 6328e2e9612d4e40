//! `state.postgresql` v1, in components-contrib's layout: a `state` table (`key` text primary
//! key, `value` jsonb, `isbinary`, `insertdate`, `updatedate`, `expiredate`, `row_id`) and a
//! `dapr_metadata` table that records the migrations run, so daprd and daca read and write the
//! same database. The etag is the row's `xmin`; bytes that are not JSON are stored base64 with
//! `isbinary`. Expired rows are never read and are deleted now and then.

use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio_postgres::Client;
use tokio_postgres::types::ToSql;

use super::{Delete, Item, Op, StoreError, Write};
use crate::components::Component;
use crate::postgres::{Connection, TextParam, pg_error};
use crate::sync::Mutex;

pub struct PostgresStore {
    connection: Connection,
    table: String,
    metadata_table: String,
    migrated: tokio::sync::OnceCell<()>,
    cleanup_every: Option<Duration>,
    last_cleanup: Mutex<Instant>,
}

/// A table name as Dapr accepts it: letters, digits, `_`, and one `.` for a schema.
fn table_name(component: &Component, key: &str, default: &str) -> Result<String, String> {
    let name = component.get(key).unwrap_or(default).to_string();
    let valid = !name.is_empty()
        && name.split('.').count() <= 2
        && name
            .split('.')
            .all(|p| !p.is_empty() && p.chars().all(|c| c.is_ascii_alphanumeric() || c == '_'));
    if valid {
        Ok(name)
    } else {
        Err(format!(
            "invalid `{key}` `{name}`: use letters, digits and `_` (and `schema.` before it)"
        ))
    }
}

impl PostgresStore {
    pub fn new(component: &Component) -> Result<PostgresStore, String> {
        let cleanup_every = match component.get("cleanupIntervalInSeconds") {
            None => Some(Duration::from_secs(3600)),
            Some(text) => match text.trim().parse::<i64>() {
                Ok(seconds) if seconds <= 0 => None,
                Ok(seconds) => Some(Duration::from_secs(seconds.unsigned_abs())),
                Err(_) => {
                    return Err(format!(
                        "invalid `cleanupIntervalInSeconds` `{text}`: a number of seconds (0 turns it off)"
                    ));
                }
            },
        };
        Ok(PostgresStore {
            connection: Connection::new(component)?,
            table: table_name(component, "tableName", "state")?,
            metadata_table: table_name(component, "metadataTableName", "dapr_metadata")?,
            migrated: tokio::sync::OnceCell::new(),
            cleanup_every,
            last_cleanup: Mutex::new(Instant::now()),
        })
    }

    /// The client, with the tables made (or brought up to date) on first use.
    async fn client(&self) -> Result<Arc<Client>, StoreError> {
        let client = self.connection.client().await.map_err(StoreError::Failed)?;
        self.migrated
            .get_or_try_init(|| {
                super::postgres_migrations::run(&client, &self.table, &self.metadata_table)
            })
            .await
            .map_err(StoreError::Failed)?;
        Ok(client)
    }

    pub async fn get(&self, key: &str) -> Result<Option<Item>, StoreError> {
        let client = self.client().await?;
        let query = format!(
            "SELECT value::text, isbinary, xmin::text FROM {} WHERE key = $1 AND (expiredate IS NULL OR expiredate >= CURRENT_TIMESTAMP)",
            self.table
        );
        let row = client.query_opt(&query, &[&key]).await.map_err(failed)?;
        let Some(row) = row else {
            return Ok(None);
        };
        let (value, binary, etag): (String, bool, String) = (row.get(0), row.get(1), row.get(2));
        let data = if binary {
            let text: String = serde_json::from_str(&value).map_err(|err| {
                StoreError::Failed(format!("failed to unmarshal JSON data: {err}"))
            })?;
            crate::pubsub::envelope::base64_decode(&text)
                .ok_or_else(|| StoreError::Failed("failed to decode base64 data".into()))?
        } else {
            value.into_bytes()
        };
        Ok(Some(Item {
            data,
            etag: Some(etag),
        }))
    }

    /// Runs `ops` in one transaction: all or nothing.
    pub async fn apply(&self, ops: &[Op]) -> Result<(), StoreError> {
        for op in ops {
            let etag = match op {
                Op::Upsert(write) => &write.etag,
                Op::Delete(delete) => &delete.etag,
            };
            xmin(etag.as_deref())?;
        }
        let client = self.client().await?;
        client.batch_execute("BEGIN").await.map_err(failed)?;
        let mut outcome = Ok(());
        for op in ops {
            outcome = match op {
                Op::Upsert(write) => self.set(&client, write).await,
                Op::Delete(delete) => self.delete(&client, delete).await,
            };
            if outcome.is_err() {
                break;
            }
        }
        let end = if outcome.is_ok() {
            "COMMIT"
        } else {
            "ROLLBACK"
        };
        client.batch_execute(end).await.map_err(failed)?;
        outcome?;
        self.maybe_clean_up(client);
        Ok(())
    }

    async fn set(&self, client: &Client, write: &Write) -> Result<(), StoreError> {
        let (value, binary) = match std::str::from_utf8(&write.value)
            .ok()
            .filter(|text| serde_json::from_str::<serde::de::IgnoredAny>(text).is_ok())
        {
            Some(json) => (json.to_string(), false),
            None => {
                let text = crate::pubsub::envelope::base64(&write.value);
                (serde_json::Value::String(text).to_string(), true)
            }
        };
        // Dapr's: a TTL sets the expiry, anything else removes it.
        let expires = match write.ttl {
            Some(seconds) if seconds > 0 => {
                format!("CURRENT_TIMESTAMP + interval '{seconds} seconds'")
            }
            _ => "NULL".to_string(),
        };
        let value = TextParam(Some(value));
        let affected = match xmin(write.etag.as_deref())? {
            None => {
                // An upsert even for first-write: the row may exist but be expired.
                let first_write = if write.first_write {
                    " WHERE (t.expiredate IS NOT NULL AND t.expiredate < CURRENT_TIMESTAMP)"
                } else {
                    ""
                };
                let query = format!(
                    "INSERT INTO {} AS t (key, value, isbinary, expiredate) VALUES ($1, $2, $3, {expires}) ON CONFLICT (key) DO UPDATE SET value = excluded.value, isbinary = excluded.isbinary, updatedate = CURRENT_TIMESTAMP, expiredate = {expires}{first_write}",
                    self.table
                );
                let params: [&(dyn ToSql + Sync); 3] = [&write.key, &value, &binary];
                client.execute(&query, &params).await.map_err(failed)?
            }
            Some(etag) => {
                let query = format!(
                    "UPDATE {} SET value = $2, isbinary = $3, updatedate = CURRENT_TIMESTAMP, expiredate = {expires} WHERE key = $1 AND xmin = $4 AND (expiredate IS NULL OR expiredate > CURRENT_TIMESTAMP)",
                    self.table
                );
                let etag = TextParam(Some(etag.to_string()));
                let params: [&(dyn ToSql + Sync); 4] = [&write.key, &value, &binary, &etag];
                client.execute(&query, &params).await.map_err(failed)?
            }
        };
        match (affected, &write.etag) {
            (1, _) => Ok(()),
            (_, Some(_)) => Err(StoreError::EtagMismatch(format!(
                "failed to set key {}",
                write.key
            ))),
            (_, None) => Err(StoreError::Failed("no item was updated".into())),
        }
    }

    async fn delete(&self, client: &Client, delete: &Delete) -> Result<(), StoreError> {
        let affected = match xmin(delete.etag.as_deref())? {
            None => {
                let query = format!("DELETE FROM {} WHERE key = $1", self.table);
                client
                    .execute(&query, &[&delete.key])
                    .await
                    .map_err(failed)?
            }
            Some(etag) => {
                let query = format!("DELETE FROM {} WHERE key = $1 AND $2 = xmin", self.table);
                let etag = TextParam(Some(etag.to_string()));
                let params: [&(dyn ToSql + Sync); 2] = [&delete.key, &etag];
                client.execute(&query, &params).await.map_err(failed)?
            }
        };
        if affected != 1 && delete.etag.is_some() {
            return Err(StoreError::EtagMismatch(format!(
                "failed to delete {}",
                delete.key
            )));
        }
        Ok(())
    }

    /// Keys starting with `prefix`, sorted, at most `limit` (the dashboard's list).
    pub async fn keys(&self, prefix: &str, limit: usize) -> Result<Vec<String>, StoreError> {
        let client = self.client().await?;
        let query = format!(
            "SELECT key FROM {} WHERE starts_with(key, $1) AND (expiredate IS NULL OR expiredate >= CURRENT_TIMESTAMP) ORDER BY key LIMIT {}",
            self.table,
            limit.min(100_000)
        );
        let rows = client.query(&query, &[&prefix]).await.map_err(failed)?;
        Ok(rows.iter().map(|row| row.get(0)).collect())
    }

    /// Seconds until `key` expires.
    pub async fn ttl(&self, key: &str) -> Result<Option<i64>, StoreError> {
        let client = self.client().await?;
        let query = format!(
            "SELECT CEIL(EXTRACT(EPOCH FROM (expiredate - CURRENT_TIMESTAMP)))::bigint FROM {} WHERE key = $1 AND expiredate IS NOT NULL",
            self.table
        );
        let row = client.query_opt(&query, &[&key]).await.map_err(failed)?;
        Ok(row.map(|row| row.get(0)))
    }

    /// Deletes expired rows once per `cleanupIntervalInSeconds`, in the background.
    fn maybe_clean_up(&self, client: Arc<Client>) {
        let Some(every) = self.cleanup_every else {
            return;
        };
        {
            let mut last = self.last_cleanup.lock();
            if last.elapsed() < every {
                return;
            }
            *last = Instant::now();
        }
        let query = format!(
            "DELETE FROM {} WHERE expiredate IS NOT NULL AND expiredate < CURRENT_TIMESTAMP",
            self.table
        );
        tokio::spawn(async move {
            if let Err(err) = client.execute(&query, &[]).await {
                tracing::warn!(
                    "state.postgresql: deleting expired rows: {}",
                    pg_error(&err)
                );
            }
        });
    }
}

fn failed(err: tokio_postgres::Error) -> StoreError {
    StoreError::Failed(pg_error(&err))
}

/// An etag is the row's `xmin`, a 32-bit number.
fn xmin(etag: Option<&str>) -> Result<Option<u32>, StoreError> {
    match etag.filter(|e| !e.is_empty()) {
        None => Ok(None),
        Some(etag) => etag.parse::<u32>().map(Some).map_err(|_| {
            StoreError::EtagInvalid(format!(
                "strconv.ParseUint: parsing \"{etag}\": invalid syntax"
            ))
        }),
    }
}
