//! Managed Redis: the user's own (`redis.url`), a container through the Docker engine, a
//! `redis-server` from PATH supervised like an app, or — on a bare machine — the embedded
//! in-memory store, so `daca up` always starts.
//!
//! `auto` prefers what is already on the machine: a container when the engine has the image,
//! else `redis-server` from PATH, and only then a pull (which may wait on the network).

use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::docker::Owner;
use crate::manifest::{Persistence, RedisConfig, RedisProvider, RestartPolicy};
use crate::ports::{PortPicker, is_free};
use crate::runtime::{ContainerLaunch, LaunchSpec, ProcessLaunch};
use crate::supervisor::{Probe, Unit, UnitSpec};

/// The name a managed Redis's log lines carry, unless an app has that id (see
/// [`log_name`]).
pub const UNIT_NAME: &str = "redis";

/// The name the managed Redis's log lines carry: `redis`, or `(redis)` when an app is called
/// `redis` (parentheses are never part of an app-id, so the two never share a prefix).
pub fn log_name(apps: &[crate::manifest::AppSpec]) -> String {
    service_log_name(apps, UNIT_NAME)
}

/// The name the log lines of a server daca runs (`redis`, `postgres`) carry, in parentheses
/// when an app has that id.
pub fn service_log_name(apps: &[crate::manifest::AppSpec], name: &str) -> String {
    if apps.iter().any(|a| a.id.as_str() == name) {
        format!("({name})")
    } else {
        name.to_string()
    }
}
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
        persistence: Persistence,
    },
    /// A container on the host's network, data in a named volume.
    Container {
        image: String,
        port: u16,
        persistence: Persistence,
        owner: Owner,
        /// The engine lacks the image: it is pulled before anything starts.
        pull: bool,
    },
    /// The embedded in-memory store (Dapr's `state.in-memory` / `pubsub.in-memory`).
    Embedded { reason: String },
}

/// What the Docker engine offers Redis, when one answers.
#[derive(Debug, Clone)]
pub struct EngineOffer {
    pub owner: Owner,
    /// Whether the engine already has the configured image.
    pub image_local: bool,
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
    #[error(
        "redis.provider is `docker`, but no Docker engine answers\n  hint: start Docker (or set DOCKER_HOST), or set `redis: {{ provider: auto }}`"
    )]
    NoEngine,
}

/// Decides how Redis is provided. `search_path` is the PATH to look for `redis-server` on;
/// `engine` is what a Docker engine offers, when one answers.
pub fn plan(
    config: &RedisConfig,
    state_dir: &Path,
    search_path: Option<OsString>,
    picker: &mut PortPicker,
    engine: Option<&EngineOffer>,
) -> Result<RedisPlan, RedisError> {
    let (provider, port, persistence, image) = match config {
        RedisConfig::External { url } => return Ok(RedisPlan::External { url: url.clone() }),
        RedisConfig::Managed {
            provider,
            port,
            persistence,
            image,
        } => (*provider, *port, *persistence, image),
    };
    let container = |pull: bool, offer: &EngineOffer, port: u16| RedisPlan::Container {
        image: image.clone(),
        port,
        persistence,
        owner: offer.owner.clone(),
        pull,
    };
    let binary = || {
        let cwd = std::env::current_dir().unwrap_or_else(|_| PathBuf::from("/"));
        which::which_in("redis-server", search_path.clone(), cwd).ok()
    };
    let choice = match (provider, engine) {
        (RedisProvider::Embedded, _) => {
            return Ok(RedisPlan::Embedded {
                reason: "redis.provider is `embedded`".into(),
            });
        }
        (RedisProvider::Docker, None) => return Err(RedisError::NoEngine),
        (RedisProvider::Docker, Some(offer)) => Choice::Container(!offer.image_local, offer),
        (RedisProvider::RedisServer, _) => {
            Choice::Server(binary().ok_or(RedisError::ServerMissing)?)
        }
        (RedisProvider::Auto, Some(offer)) if offer.image_local => Choice::Container(false, offer),
        (RedisProvider::Auto, engine) => match (binary(), engine) {
            (Some(binary), _) => Choice::Server(binary),
            (None, Some(offer)) => Choice::Container(true, offer),
            (None, None) => {
                return Ok(RedisPlan::Embedded {
                    reason: "no Redis container and no `redis-server` on PATH".into(),
                });
            }
        },
    };
    let port = match port {
        Some(port) if !is_free(port) => return Err(RedisError::PortBusy(port)),
        Some(port) => {
            picker.reserve(port);
            port
        }
        None => picker.pick(DEFAULT_PORT),
    };
    Ok(match choice {
        Choice::Container(pull, offer) => container(pull, offer, port),
        Choice::Server(binary) => RedisPlan::Server {
            binary,
            port,
            data_dir: state_dir.join("redis"),
            persistence,
        },
    })
}

enum Choice<'a> {
    Container(bool, &'a EngineOffer),
    Server(PathBuf),
}

/// `url` as daca shows it (banner, `daca ps`, the dashboard): its password, if it has one,
/// replaced by `••••••`.
pub fn shown_url(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return url.to_string();
    };
    let authority_end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    let Some(at) = rest[..authority_end].rfind('@') else {
        return url.to_string();
    };
    let user = rest[..at]
        .split_once(':')
        .map_or(&rest[..at], |(user, _)| user);
    let hidden = if rest[..at].contains(':') || user.is_empty() {
        format!("{user}:••••••")
    } else {
        // `redis://password@host` is read as a password alone by the Redis clients.
        "••••••".to_string()
    };
    format!("{scheme}://{hidden}{}", &rest[at..])
}

impl RedisPlan {
    /// `redis://` URL apps and sidecars use, if there is a Redis server.
    pub fn url(&self) -> Option<String> {
        match self {
            RedisPlan::External { url } => Some(url.clone()),
            RedisPlan::Server { port, .. } | RedisPlan::Container { port, .. } => {
                Some(format!("redis://127.0.0.1:{port}"))
            }
            RedisPlan::Embedded { .. } => None,
        }
    }

    /// [`RedisPlan::url`] as daca shows it, without its password.
    pub fn shown_url(&self) -> Option<String> {
        self.url().map(|url| shown_url(&url))
    }

    /// The port of this Redis on the machine's loopback, when it is there (what a pod reaches
    /// at its own localhost).
    pub fn loopback_port(&self) -> Option<u16> {
        match self {
            RedisPlan::Server { port, .. } | RedisPlan::Container { port, .. } => Some(*port),
            RedisPlan::External { url } => {
                let rest = url.strip_prefix("redis://127.0.0.1:")?;
                rest.split(['/', '?']).next()?.parse().ok()
            }
            RedisPlan::Embedded { .. } => None,
        }
    }

    /// How Redis is provided, in one word (`daca ps`).
    pub fn mode(&self) -> &'static str {
        match self {
            RedisPlan::External { .. } => "external",
            RedisPlan::Server { .. } => "redis-server",
            RedisPlan::Container { .. } => "container",
            RedisPlan::Embedded { .. } => "embedded",
        }
    }

    /// One phrase for banners and `daca ps`.
    pub fn describe(&self) -> String {
        match self {
            RedisPlan::External { url } => {
                format!("{} (yours; daca does not manage it)", shown_url(url))
            }
            RedisPlan::Server { port, .. } => format!("127.0.0.1:{port} (redis-server)"),
            RedisPlan::Container { port, image, .. } => {
                format!("127.0.0.1:{port} (container, {image})")
            }
            RedisPlan::Embedded { .. } => "embedded in-memory store".into(),
        }
    }

    /// Whether daca supervises a Redis unit (apps then wait for it).
    pub fn is_supervised(&self) -> bool {
        matches!(self, RedisPlan::Server { .. } | RedisPlan::Container { .. })
    }

    /// The supervised unit for a managed `redis-server` or Redis container, its log lines
    /// called `name`.
    pub fn unit(&self, name: &str, inherited_env: Vec<(String, String)>) -> Option<UnitSpec> {
        if let RedisPlan::Container { .. } = self {
            return self.container_unit(name);
        }
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
        args.extend(persistence.redis_args().iter().map(|a| a.to_string()));
        Some(UnitSpec {
            unit: Unit::Redis,
            name: name.to_string(),
            launch: LaunchSpec::Process(ProcessLaunch {
                program: binary.display().to_string(),
                args,
                dir: data_dir.clone(),
                env: inherited_env,
                warm: false,
                pod: None,
            }),
            probe: Probe::Redis(*port),
            restart: RestartPolicy::OnFailure,
            grace: Duration::from_secs(5),
            startup_timeout: Duration::from_secs(30),
        })
    }
}

impl RedisPlan {
    fn container_unit(&self, name: &str) -> Option<UnitSpec> {
        let RedisPlan::Container {
            image,
            port,
            persistence,
            owner,
            ..
        } = self
        else {
            return None;
        };
        let mut cmd: Vec<String> = ["redis-server", "--port", &port.to_string()]
            .iter()
            .map(|s| s.to_string())
            .collect();
        // On the host's network, so bind loopback as the process provider does.
        cmd.extend(
            [
                "--bind",
                "127.0.0.1",
                "--protected-mode",
                "yes",
                "--dir",
                "/data",
            ]
            .map(String::from),
        );
        cmd.extend(persistence.redis_args().iter().map(|a| a.to_string()));
        let volumes = match persistence.is_on() {
            true => vec![(owner.volume(&Unit::Redis), "/data".to_string())],
            false => Vec::new(),
        };
        Some(UnitSpec {
            unit: Unit::Redis,
            name: name.to_string(),
            launch: LaunchSpec::Container(ContainerLaunch {
                name: owner.container_name(&Unit::Redis),
                image: image.clone(),
                cmd: Some(cmd),
                env: Vec::new(),
                binds: Vec::new(),
                volumes,
                labels: owner.labels(&Unit::Redis),
                warm: false,
                network: None,
                stop_signal: None,
            }),
            probe: Probe::Redis(*port),
            restart: RestartPolicy::OnFailure,
            grace: Duration::from_secs(5),
            startup_timeout: Duration::from_secs(30),
        })
    }
}

#[cfg(test)]
mod shown_tests {
    use super::shown_url;

    #[test]
    fn a_urls_password_is_never_shown() {
        for (url, shown) in [
            (
                "redis://:pw@127.0.0.1:6379",
                "redis://:••••••@127.0.0.1:6379",
            ),
            ("redis://user:pw@h:1/0", "redis://user:••••••@h:1/0"),
            ("rediss://pw@h:1", "rediss://••••••@h:1"),
            ("redis://:p@ss@h:1", "redis://:••••••@h:1"),
            ("redis://127.0.0.1:6379", "redis://127.0.0.1:6379"),
            ("redis://h:1/0?x=a@b", "redis://h:1/0?x=a@b"),
        ] {
            assert_eq!(shown_url(url), shown, "{url}");
        }
    }
}
