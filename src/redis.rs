//! Managed Redis: the user's own (`redis.url`), a `redis-server` from PATH supervised like an
//! app, or — on a bare machine — the embedded in-memory store, so `daca up` always starts.
//!
//! The container provider (through the Docker Engine API) is planned next to these.

use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::manifest::{RedisConfig, RedisProvider, RestartPolicy};
use crate::ports::{PortPicker, is_free};
use crate::runtime::LaunchSpec;
use crate::supervisor::{Probe, UnitSpec};

/// The unit name of a managed Redis in logs, `daca ps` and the run record.
pub const UNIT_NAME: &str = "redis";
/// Where Dapr tutorials expect Redis.
pub const DEFAULT_PORT: u16 = 6379;

/// What daca will do for Redis in this run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RedisPlan {
    /// The user's Redis; never started or stopped by daca.
    External { url: String },
    /// A `redis-server` process that daca supervises.
    Server {
        binary: PathBuf,
        port: u16,
        data_dir: PathBuf,
        persistence: bool,
    },
    /// The embedded in-memory store (Dapr's `state.in-memory` / `pubsub.in-memory`).
    Embedded { reason: String },
}

/// Why Redis cannot be provided as asked.
#[derive(Debug, thiserror::Error)]
pub enum RedisError {
    #[error(
        "redis.provider is `redis-server`, but no `redis-server` is on PATH\n  hint: install it (Debian/Ubuntu: `sudo apt-get install redis-server`) or set `redis: {{ provider: auto }}`"
    )]
    ServerMissing,
    #[error(
        "redis.port {0} is already in use\n  hint: stop what listens there, pick another `redis.port`, or remove `port` to let daca choose"
    )]
    PortBusy(u16),
}

/// Decides how Redis is provided. `search_path` is the PATH to look for `redis-server` on.
pub fn plan(
    config: &RedisConfig,
    state_dir: &Path,
    search_path: Option<OsString>,
    picker: &mut PortPicker,
) -> Result<RedisPlan, RedisError> {
    let (provider, port, persistence) = match config {
        RedisConfig::External { url } => return Ok(RedisPlan::External { url: url.clone() }),
        RedisConfig::Managed {
            provider,
            port,
            persistence,
        } => (*provider, *port, *persistence),
    };
    if provider == RedisProvider::Embedded {
        return Ok(RedisPlan::Embedded {
            reason: "redis.provider is `embedded`".into(),
        });
    }
    let cwd = std::env::current_dir().unwrap_or_else(|_| PathBuf::from("/"));
    let binary = match which::which_in("redis-server", search_path, cwd) {
        Ok(binary) => binary,
        Err(_) if provider == RedisProvider::RedisServer => return Err(RedisError::ServerMissing),
        Err(_) => {
            return Ok(RedisPlan::Embedded {
                reason: "no `redis-server` on PATH".into(),
            });
        }
    };
    let port = match port {
        Some(port) if !is_free(port) => return Err(RedisError::PortBusy(port)),
        Some(port) => {
            picker.reserve(port);
            port
        }
        None => picker.pick(DEFAULT_PORT),
    };
    Ok(RedisPlan::Server {
        binary,
        port,
        data_dir: state_dir.join("redis"),
        persistence,
    })
}

impl RedisPlan {
    /// `redis://` URL apps and sidecars use, if there is a Redis server.
    pub fn url(&self) -> Option<String> {
        match self {
            RedisPlan::External { url } => Some(url.clone()),
            RedisPlan::Server { port, .. } => Some(format!("redis://127.0.0.1:{port}")),
            RedisPlan::Embedded { .. } => None,
        }
    }

    /// One phrase for banners and `daca ps`.
    pub fn describe(&self) -> String {
        match self {
            RedisPlan::External { url } => format!("{url} (yours; daca does not manage it)"),
            RedisPlan::Server { port, .. } => format!("127.0.0.1:{port} (redis-server)"),
            RedisPlan::Embedded { .. } => "embedded in-memory store".into(),
        }
    }

    /// The supervised unit for a managed `redis-server`.
    pub fn unit(&self, inherited_env: Vec<(String, String)>) -> Option<UnitSpec> {
        let RedisPlan::Server {
            binary,
            port,
            data_dir,
            persistence,
        } = self
        else {
            return None;
        };
        let _ = std::fs::create_dir_all(data_dir);
        let mut args: Vec<String> = [
            "--port",
            &port.to_string(),
            "--bind",
            "127.0.0.1",
            "--protected-mode",
            "yes",
        ]
        .iter()
        .map(|s| s.to_string())
        .collect();
        args.extend(["--dir".to_string(), data_dir.display().to_string()]);
        if *persistence {
            args.extend(["--appendonly", "yes"].map(String::from));
        } else {
            args.extend(["--save", "", "--appendonly", "no"].map(String::from));
        }
        Some(UnitSpec {
            launch: LaunchSpec {
                name: UNIT_NAME.into(),
                program: binary.display().to_string(),
                args,
                dir: data_dir.clone(),
                env: inherited_env,
            },
            probe: Probe::Redis(*port),
            restart: RestartPolicy::OnFailure,
            grace: Duration::from_secs(5),
            startup_timeout: Duration::from_secs(30),
            depends_on: Vec::new(),
        })
    }
}
