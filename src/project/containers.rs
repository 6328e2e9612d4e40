//! The container side of `daca up` and `daca down`: connecting to the engine when the project
//! needs one, clearing what an earlier run left, pulling Redis and building app images before
//! anything starts, and removing this run's containers at the end.

use std::process::Child;
use std::sync::Arc;

use crate::docker::{self, ContainerPlan, Engine, Owner, sweep};
use crate::error::{Error, Problem};
use crate::logs::LogBus;
use crate::manifest::{
    Manifest, PostgresConfig, PostgresProvider, RedisConfig, RedisProvider, RuntimeChoice,
};
use crate::pgserver::PgPlan;
use crate::redis::{EngineOffer, RedisPlan};
use crate::supervisor::Unit;

/// Whether anything in the project could use a Docker engine.
fn wants_engine(manifest: &Manifest) -> bool {
    let redis = matches!(
        manifest.redis.provider(),
        Some(RedisProvider::Auto | RedisProvider::Docker)
    );
    let postgres = matches!(
        manifest.postgres,
        Some(PostgresConfig::Managed {
            provider: PostgresProvider::Auto | PostgresProvider::Docker,
            ..
        })
    );
    redis
        || postgres
        || manifest
            .apps
            .iter()
            .any(|a| a.process.image.is_some() && a.process.runtime != RuntimeChoice::Process)
}

/// Whether the project cannot run without an engine.
fn needs_engine(manifest: &Manifest) -> Option<String> {
    if manifest.redis.provider() == Some(RedisProvider::Docker) {
        return Some("redis (provider: docker)".into());
    }
    if let Some(PostgresConfig::Managed {
        provider: PostgresProvider::Docker,
        ..
    }) = manifest.postgres
    {
        return Some("postgres (provider: docker)".into());
    }
    let apps: Vec<&str> = manifest
        .apps
        .iter()
        .filter(|a| {
            a.process.runtime == RuntimeChoice::Docker
                || (a.process.command.is_empty() && a.process.image.is_some())
        })
        .map(|a| a.id.as_str())
        .collect();
    (!apps.is_empty()).then(|| apps.join(", "))
}

/// Connects when the project could use an engine. No engine is fine unless something must run
/// in a container; then that is the error.
pub async fn connect(manifest: &Manifest) -> Result<Option<Engine>, Problem> {
    if !wants_engine(manifest) {
        return Ok(None);
    }
    match Engine::connect().await {
        Ok(engine) => {
            tracing::debug!(
                "Docker engine at {} ({})",
                engine.endpoint.host,
                engine.endpoint.source
            );
            Ok(Some(engine))
        }
        Err(err) => match needs_engine(manifest) {
            Some(what) => Err(Problem::new(format!(
                "{what} must run in a container, but {err}"
            ))),
            None => {
                let images: Vec<&str> = manifest
                    .apps
                    .iter()
                    .filter(|a| {
                        a.process.image.is_some() && a.process.runtime == RuntimeChoice::Auto
                    })
                    .map(|a| a.id.as_str())
                    .collect();
                if !images.is_empty() {
                    tracing::warn!("{err}\n  running {} as host processes", images.join(", "));
                } else {
                    tracing::debug!("no Docker engine: {err}");
                }
                Ok(None)
            }
        },
    }
}

/// Removes containers an earlier run of this project left (a killed daca whose reaper could
/// not run, or an engine that was down at the time).
pub async fn clear_leftovers(engine: &Engine, owner: &Owner) {
    match sweep::remove_containers(engine, owner, false).await {
        Ok(removed) if !removed.is_empty() => {
            tracing::warn!(
                "removed containers an earlier daca left: {}",
                removed.join(", ")
            )
        }
        Ok(_) => {}
        Err(err) => tracing::warn!("could not list this project's old containers: {err}"),
    }
}

/// What the engine offers Redis.
pub async fn redis_offer(
    engine: Option<&Engine>,
    owner: &Owner,
    manifest: &Manifest,
) -> Option<EngineOffer> {
    let RedisConfig::Managed { image, .. } = &manifest.redis else {
        return None;
    };
    image_offer(engine, owner, image).await
}

/// What the engine offers a managed PostgreSQL.
pub async fn postgres_offer(
    engine: Option<&Engine>,
    owner: &Owner,
    manifest: &Manifest,
) -> Option<EngineOffer> {
    let Some(PostgresConfig::Managed { image, .. }) = &manifest.postgres else {
        return None;
    };
    image_offer(engine, owner, image).await
}

/// What the engine offers a server daca may run from `image`.
async fn image_offer(engine: Option<&Engine>, owner: &Owner, image: &str) -> Option<EngineOffer> {
    let engine = engine?;
    let image_local = docker::image::local_id(engine, image)
        .await
        .ok()
        .flatten()
        .is_some();
    Some(EngineOffer {
        owner: owner.clone(),
        image_local,
    })
}

/// Pulls the Redis image when the plan needs it and creates its volume. With `auto`, a failed
/// pull falls back to `redis-server` or the embedded store (`fallback`), with a warning.
pub async fn prepare_redis(
    plan: RedisPlan,
    engine: Option<&Engine>,
    logs: &LogBus,
    manifest: &Manifest,
    log_name: &str,
    fallback: impl FnOnce() -> Result<RedisPlan, Error>,
) -> Result<RedisPlan, Error> {
    let (
        RedisPlan::Container {
            image,
            pull,
            owner,
            persistence,
            ..
        },
        Some(engine),
    ) = (&plan, engine)
    else {
        return Ok(plan);
    };
    if *pull {
        let hint = "pre-load it (`docker load`, or `docker build -t` it), set `redis.image`, or use `redis: { provider: redis-server }`";
        if let Err(err) = docker::image::ensure(engine, image, logs, log_name, hint).await {
            if manifest.redis.provider() == Some(RedisProvider::Docker) {
                return Err(err.into());
            }
            tracing::warn!("{err}");
            let next = fallback()?;
            tracing::warn!("using {} instead", next.describe());
            return Ok(next);
        }
    }
    if persistence.is_on() {
        sweep::ensure_volume(engine, owner, &Unit::Redis).await?;
    }
    Ok(plan)
}

/// Pulls the PostgreSQL image when the plan needs it (no fallback: the user asked for this
/// server) and creates its volume.
pub async fn prepare_postgres(
    plan: PgPlan,
    engine: Option<&Engine>,
    logs: &LogBus,
    log_name: &str,
) -> Result<PgPlan, Error> {
    let (
        PgPlan::Container {
            image,
            pull,
            owner,
            persistence,
            ..
        },
        Some(engine),
    ) = (&plan, engine)
    else {
        return Ok(plan);
    };
    if *pull {
        let hint = "pre-load it (`docker load`, or `docker build -t` it), set `postgres.image`, or install PostgreSQL (`postgres: { provider: postgres }`)";
        docker::image::ensure(engine, image, logs, log_name, hint).await?;
    }
    if *persistence {
        sweep::ensure_volume(engine, owner, &Unit::Postgres).await?;
    }
    Ok(plan)
}

/// Builds (or checks) the image of every app that runs in a container, in start order.
pub async fn prepare_apps(plan: &ContainerPlan, manifest: &Manifest) -> Result<(), Error> {
    for app in manifest.apps.iter().filter(|a| plan.runs(a)) {
        let started = std::time::Instant::now();
        let id = plan.prepare(app).await?;
        tracing::info!(
            "{}: image {} ({}) ready in {} ms",
            app.id,
            plan.image_of(app),
            id.trim_start_matches("sha256:")
                .chars()
                .take(12)
                .collect::<String>(),
            started.elapsed().as_millis()
        );
    }
    Ok(())
}

/// The reaper that removes this run's containers if daca is killed; kept until the end.
pub fn start_reaper(plan: &ContainerPlan) -> Option<Child> {
    match sweep::spawn_reaper(&plan.engine, &plan.owner) {
        Ok(child) => Some(child),
        Err(err) => {
            tracing::warn!(
                "could not start the container reaper ({err}); if daca is killed, `daca down` removes its containers"
            );
            None
        }
    }
}

/// Removes this run's containers (all stopped by now), then lets the reaper go.
pub async fn finish(plan: Option<&Arc<ContainerPlan>>, reaper: Option<Child>) {
    if let Some(plan) = plan
        && let Err(err) = sweep::remove_containers(&plan.engine, &plan.owner, true).await
    {
        tracing::warn!(
            "could not remove this run's containers: {err}\n  hint: `daca down` removes them"
        );
    }
    // End of file on its stdin: it checks once more and exits by itself.
    if let Some(mut reaper) = reaper {
        drop(reaper.stdin.take());
    }
}
