//! Dapr's Redis state layout: one hash per key with fields `data` (the value's bytes),
//! `version` (the etag, an integer starting at 1) and, after a first-write save, `first-write`.
//!
//! Every write goes through one Lua script that checks all etags first and only then writes,
//! so a multi-operation transaction is all-or-nothing. (Dapr's own store pipelines one script
//! per operation in MULTI/EXEC, which Redis does not roll back; the data layout is the same.)

use std::collections::HashMap;
use std::sync::Arc;

use redis::aio::ConnectionManager;

use super::{Item, Op, StoreError, expected_version};
use crate::redis_link::RedisLink;

/// For each operation i (1-based), KEYS[i] is its key and ARGV[5i-4..5i] are:
/// kind (`set`/`del`), expected version or etag, data, first-write flag (`0` = first-write,
/// as Dapr passes it), ttl (`` = leave the expiry alone).
pub const WRITE_SCRIPT: &str = r#"
local n = #KEYS
local wrongtype = {}
for i = 1, n do
  local key, kind, want = KEYS[i], ARGV[5*i-4], ARGV[5*i-3]
  -- One read per key: its version and first-write flag (an error means "not a hash").
  local ok, fields = pcall(redis.call, 'HMGET', key, 'version', 'first-write')
  local v, fw = false, false
  if ok then v, fw = fields[1], fields[2] else wrongtype[i] = true end
  if kind == 'set' then
    if v and v ~= want and not ((not fw) and want == '0') then
      return redis.error_reply('ETAG ' .. i .. ' failed to set key ' .. key)
    end
  elseif v and v ~= '' and v ~= want and want ~= '0' then
    return redis.error_reply('ETAG ' .. i .. ' failed to delete ' .. key)
  end
end
for i = 1, n do
  local key, kind = KEYS[i], ARGV[5*i-4]
  if kind == 'del' or wrongtype[i] then redis.call('DEL', key) end
  if kind == 'set' then
    redis.call('HSET', key, 'data', ARGV[5*i-2])
    if ARGV[5*i-1] == '0' then redis.call('HSET', key, 'first-write', 0) end
    redis.call('HINCRBY', key, 'version', 1)
    local ttl = ARGV[5*i]
    if ttl ~= '' then
      if tonumber(ttl) > 0 then redis.call('EXPIRE', key, ttl) else redis.call('PERSIST', key) end
    end
  end
end
return n
"#;

/// A Redis-backed store; clones share one connection.
#[derive(Clone)]
pub struct RedisStore {
    link: RedisLink,
    script: Arc<redis::Script>,
}

impl RedisStore {
    /// A store for `info`. Connecting waits for the first request, so the store can be set up
    /// before the managed Redis has finished starting.
    pub fn new(info: redis::ConnectionInfo) -> RedisStore {
        RedisStore {
            link: RedisLink::new(info),
            script: Arc::new(redis::Script::new(WRITE_SCRIPT)),
        }
    }

    async fn connection(&self) -> Result<ConnectionManager, StoreError> {
        self.link.shared().await.map_err(StoreError::Failed)
    }

    pub async fn get(&self, key: &str) -> Result<Option<Item>, StoreError> {
        let mut connection = self.connection().await?;
        let fields: Result<HashMap<String, Vec<u8>>, redis::RedisError> = redis::cmd("HGETALL")
            .arg(key)
            .query_async(&mut connection)
            .await;
        let mut fields = match fields {
            Ok(fields) => fields,
            // A value written as a plain string (by another tool) reads back without an etag.
            Err(err) if err.code() == Some("WRONGTYPE") => {
                let data: Option<Vec<u8>> = redis::cmd("GET")
                    .arg(key)
                    .query_async(&mut connection)
                    .await
                    .map_err(|e| self.failed(e))?;
                return Ok(data.map(|data| Item { data, etag: None }));
            }
            Err(err) => return Err(self.failed(err)),
        };
        if fields.is_empty() {
            return Ok(None);
        }
        let (Some(data), Some(version)) = (fields.remove("data"), fields.remove("version")) else {
            return Err(StoreError::Failed(format!(
                "key {key} is a hash without `data` and `version`"
            )));
        };
        Ok(Some(Item {
            data,
            etag: Some(String::from_utf8_lossy(&version).into_owned()),
        }))
    }

    /// Keys starting with `prefix` (SCAN, so Redis is never blocked), sorted, at most `limit`.
    pub async fn keys(&self, prefix: &str, limit: usize) -> Result<Vec<String>, StoreError> {
        let mut connection = self.connection().await?;
        let pattern = format!("{}*", glob_escape(prefix));
        let mut cursor: u64 = 0;
        let mut keys = Vec::new();
        loop {
            let (next, batch): (u64, Vec<String>) = redis::cmd("SCAN")
                .arg(cursor)
                .arg("MATCH")
                .arg(&pattern)
                .arg("COUNT")
                .arg(500)
                .query_async(&mut connection)
                .await
                .map_err(|e| self.failed(e))?;
            keys.extend(batch);
            cursor = next;
            if cursor == 0 || keys.len() >= limit {
                break;
            }
        }
        keys.sort();
        keys.dedup();
        keys.truncate(limit);
        Ok(keys)
    }

    pub async fn ttl(&self, key: &str) -> Result<Option<i64>, StoreError> {
        let mut connection = self.connection().await?;
        let ttl: i64 = redis::cmd("TTL")
            .arg(key)
            .query_async(&mut connection)
            .await
            .map_err(|e| self.failed(e))?;
        Ok((ttl >= 0).then_some(ttl))
    }

    pub async fn apply(&self, ops: &[Op]) -> Result<(), StoreError> {
        if ops.is_empty() {
            return Ok(());
        }
        let mut invocation = self.script.prepare_invoke();
        for op in ops {
            match op {
                Op::Upsert(write) => {
                    let fw = if write.first_write { "0" } else { "1" };
                    let ttl = write.ttl.map(|t| t.to_string()).unwrap_or_default();
                    invocation
                        .key(&write.key)
                        .arg("set")
                        .arg(expected_version(write)?)
                        .arg(&write.value[..])
                        .arg(fw)
                        .arg(ttl);
                }
                Op::Delete(delete) => {
                    let etag = delete.etag.clone().unwrap_or_else(|| "0".into());
                    invocation
                        .key(&delete.key)
                        .arg("del")
                        .arg(etag)
                        .arg("")
                        .arg("")
                        .arg("");
                }
            }
        }
        let mut connection = self.connection().await?;
        let result: Result<i64, redis::RedisError> = invocation.invoke_async(&mut connection).await;
        match result {
            Ok(_) => Ok(()),
            Err(err) if err.code() == Some("ETAG") => {
                // The script names the refused operation: `ETAG <index> <message>`.
                let detail = err.detail().unwrap_or_default();
                let (index, message) = detail.split_once(' ').unwrap_or(("0", detail));
                let op = index
                    .parse::<usize>()
                    .ok()
                    .and_then(|i| ops.get(i.wrapping_sub(1)));
                // A refused write that carried no etag (a first-write key) is a plain failure.
                let blind = matches!(op, Some(Op::Upsert(write)) if write.etag.is_none());
                Err(if blind {
                    StoreError::Failed(message.into())
                } else {
                    StoreError::EtagMismatch(message.into())
                })
            }
            Err(err) => Err(self.failed(err)),
        }
    }
}

impl RedisStore {
    fn failed(&self, err: redis::RedisError) -> StoreError {
        StoreError::Failed(self.link.explain(&err))
    }
}

/// `prefix` as a literal in a Redis glob pattern.
fn glob_escape(prefix: &str) -> String {
    prefix
        .chars()
        .flat_map(|c| match c {
            '*' | '?' | '[' | ']' | '\\' => vec!['\\', c],
            c => vec![c],
        })
        .collect()
}
