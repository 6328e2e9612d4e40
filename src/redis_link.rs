//! How daca talks to a Redis server: one shared, multiplexed, self-reconnecting connection per
//! component, made on first use (so components can be set up before the managed Redis has
//! started), and dedicated connections for blocking stream reads.

use std::sync::Arc;
use std::time::Duration;

use redis::aio::{ConnectionManager, ConnectionManagerConfig, MultiplexedConnection};
use redis::{AsyncConnectionConfig, ConnectionInfo};
use tokio::sync::OnceCell;

/// A lazily connected, shared connection; clones share it.
#[derive(Clone)]
pub struct RedisLink {
    info: ConnectionInfo,
    shared: Arc<OnceCell<ConnectionManager>>,
}

impl RedisLink {
    pub fn new(info: ConnectionInfo) -> RedisLink {
        RedisLink {
            info,
            shared: Arc::new(OnceCell::new()),
        }
    }

    /// `host:port`, for messages.
    pub fn addr(&self) -> String {
        self.info.addr().to_string()
    }

    /// The shared connection. A Redis that is down fails within a few seconds with a clear
    /// cause (never hangs the caller), and the next call tries again.
    pub async fn shared(&self) -> Result<ConnectionManager, String> {
        let connect = self.shared.get_or_try_init(|| async {
            let client = redis::Client::open(self.info.clone())?;
            let config = ConnectionManagerConfig::new()
                .set_connection_timeout(Some(Duration::from_secs(2)))
                .set_response_timeout(Some(Duration::from_secs(5)))
                .set_number_of_retries(2)
                .set_max_delay(Duration::from_millis(500));
            client.get_connection_manager_with_config(config).await
        });
        match tokio::time::timeout(Duration::from_secs(5), connect).await {
            Ok(Ok(connection)) => Ok(connection.clone()),
            Ok(Err(err)) => Err(format!("cannot reach Redis at {}: {err}", self.addr())),
            Err(_) => Err(format!(
                "cannot reach Redis at {}: no answer within 5 s",
                self.addr()
            )),
        }
    }

    /// A connection of its own with no response timeout: a blocking `XREADGROUP … BLOCK` on a
    /// shared connection would stall every other command multiplexed on it, and redis-rs's
    /// default 500 ms response timeout would cut the block short.
    pub async fn dedicated(&self) -> Result<MultiplexedConnection, String> {
        let client = redis::Client::open(self.info.clone()).map_err(|e| e.to_string())?;
        let config = AsyncConnectionConfig::new()
            .set_connection_timeout(Some(Duration::from_secs(2)))
            .set_response_timeout(None);
        client
            .get_multiplexed_async_connection_with_config(&config)
            .await
            .map_err(|err| format!("cannot reach Redis at {}: {err}", self.addr()))
    }

    /// A Redis error as the user should read it: a lost connection names the server.
    pub fn explain(&self, err: &redis::RedisError) -> String {
        if err.is_io_error()
            || err.is_connection_dropped()
            || err.is_connection_refusal()
            || err.is_timeout()
        {
            return format!(
                "Redis at {} is unreachable ({err}); daca reconnects on the next request",
                self.addr()
            );
        }
        err.to_string()
    }
}
