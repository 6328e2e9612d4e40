//! `redis:` and `postgres:`: the servers daca may run for a project, or the user's own.

use super::model::{Persistence, PostgresConfig, PostgresProvider, RedisConfig, RedisProvider};
use super::validate::Checker;
use super::wire::{PersistenceWire, PostgresWire, RedisWire};

/// What Dapr's own `dapr init` runs.
pub const DEFAULT_REDIS_IMAGE: &str = "redis:7-alpine";
/// The official image's current major, on Alpine as the Redis default is.
pub const DEFAULT_POSTGRES_IMAGE: &str = "postgres:16-alpine";

pub(super) fn redis_config(checker: &mut Checker, wire: Option<&RedisWire>) -> RedisConfig {
    let default = RedisWire::default();
    let wire = wire.unwrap_or(&default);
    let provider = match wire.provider.as_ref().map(|p| (p, p.value.as_str())) {
        None | Some((_, "auto")) => RedisProvider::Auto,
        Some((_, "redis-server")) => RedisProvider::RedisServer,
        Some((_, "embedded")) => RedisProvider::Embedded,
        Some((_, "docker")) => RedisProvider::Docker,
        Some((raw, other)) => {
            let hint = Some("use `auto`, `docker`, `redis-server` or `embedded`".into());
            checker.error(raw, format!("unknown redis provider `{other}`"), hint);
            RedisProvider::Auto
        }
    };
    if let Some(url) = &wire.url {
        if !url.value.starts_with("redis://") && !url.value.starts_with("rediss://") {
            let hint = Some("write it as `redis://host:port`".into());
            checker.error(
                url,
                format!("redis url `{}` is not a redis:// URL", url.value),
                hint,
            );
        }
        if let Some(provider) = &wire.provider {
            let hint =
                Some("remove `provider` (daca never starts a Redis when `url` is set)".into());
            checker.error(
                provider,
                "`redis.provider` and `redis.url` cannot both be set",
                hint,
            );
        }
        return RedisConfig::External {
            url: url.value.clone(),
        };
    }
    let port = wire.port.as_ref().map(|p| p.value);
    RedisConfig::Managed {
        provider,
        port,
        persistence: redis_persistence(checker, wire),
        image: wire
            .image
            .as_ref()
            .map(|i| i.value.clone())
            .unwrap_or_else(|| DEFAULT_REDIS_IMAGE.to_string()),
    }
}

fn redis_persistence(checker: &mut Checker, wire: &RedisWire) -> Persistence {
    let Some(written) = &wire.persistence else {
        return Persistence::EverySecond;
    };
    match &written.value {
        PersistenceWire::Flag(true) => Persistence::EverySecond,
        PersistenceWire::Flag(false) => Persistence::Off,
        PersistenceWire::Mode(mode) if mode == "always" => Persistence::Always,
        PersistenceWire::Mode(other) => {
            let hint = Some("use `true` (synced every second), `always` or `false`".into());
            checker.error(
                written,
                format!("unknown redis persistence `{other}`"),
                hint,
            );
            Persistence::EverySecond
        }
    }
}

/// `postgres:` absent means no PostgreSQL server; present, a managed one unless `url` is set.
pub(super) fn postgres_config(
    checker: &mut Checker,
    wire: Option<&PostgresWire>,
) -> Option<PostgresConfig> {
    let wire = wire?;
    let provider = match wire.provider.as_ref().map(|p| (p, p.value.as_str())) {
        None | Some((_, "auto")) => PostgresProvider::Auto,
        Some((_, "postgres")) => PostgresProvider::Postgres,
        Some((_, "docker")) => PostgresProvider::Docker,
        Some((raw, other)) => {
            let hint = Some("use `auto`, `docker` or `postgres` (the server's binaries)".into());
            checker.error(raw, format!("unknown postgres provider `{other}`"), hint);
            PostgresProvider::Auto
        }
    };
    if let Some(url) = &wire.url {
        if !url.value.starts_with("postgres://") && !url.value.starts_with("postgresql://") {
            let hint = Some("write it as `postgres://user@host:5432/database`".into());
            checker.error(url, "postgres url is not a postgres:// URL", hint);
        }
        let both = |key: &str| {
            let message = format!("`postgres.{key}` and `postgres.url` cannot both be set");
            let hint = format!("remove `{key}` (daca never starts a server when `url` is set)");
            (message, Some(hint))
        };
        if let Some(provider) = &wire.provider {
            let (message, hint) = both("provider");
            checker.error(provider, message, hint);
        }
        if let Some(image) = &wire.image {
            let (message, hint) = both("image");
            checker.error(image, message, hint);
        }
        return Some(PostgresConfig::External {
            url: url.value.clone(),
        });
    }
    Some(PostgresConfig::Managed {
        provider,
        port: wire.port.as_ref().map(|p| p.value),
        persistence: wire.persistence.unwrap_or(true),
        image: wire
            .image
            .as_ref()
            .map(|i| i.value.clone())
            .unwrap_or_else(|| DEFAULT_POSTGRES_IMAGE.to_string()),
    })
}
