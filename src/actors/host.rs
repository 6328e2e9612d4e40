//! An app as an actor host: whenever it becomes ready (its first start, every restart and
//! reload), its `GET /dapr/config` is read again and its actor types registered. daprd reads
//! it once; reading it again is what a dev loop needs (a reload may add or drop a type).

use std::sync::Arc;
use std::time::Duration;

use tokio_util::sync::CancellationToken;

use super::{Actors, HostConfig, config};
use crate::channel::{AppChannel, ListError};

/// Tries of `GET /dapr/config` while the app warms up, and the first wait between them.
const TRIES: u32 = 4;
const FIRST_WAIT: Duration = Duration::from_millis(250);

/// Follows `channel`'s app until `token` is cancelled (the app is being removed; the owner
/// deactivates its actors first).
pub async fn follow(actors: Arc<Actors>, mut channel: AppChannel, token: CancellationToken) {
    if channel.port.is_none() {
        return; // Dapr reads the config only from an app with a port
    }
    if channel.protocol() == crate::manifest::AppProtocol::Grpc {
        // daprd hosts actors over the HTTP app channel; AppCallback has no actor methods.
        tracing::debug!("{}: a gRPC app hosts no actors", channel.app_id);
        return;
    }
    let watch = async {
        let mut said: Option<Vec<String>> = None;
        while channel.wait_ready().await {
            let generation = channel.generation();
            let config = read(&channel).await;
            let types: Vec<String> = config.types.keys().cloned().collect();
            if said.as_ref() != Some(&types) {
                announce(&channel, &actors, &config);
                said = Some(types);
            }
            // Placed on the instance: an app with replicas is one host per instance.
            actors.register(&channel.instance, config).await;
            channel.wait_gone(generation).await;
        }
    };
    tokio::select! {
        _ = token.cancelled() => {}
        () = watch => {}
    }
}

/// The app's actor configuration; none when it has none, or it cannot be read.
async fn read(channel: &AppChannel) -> HostConfig {
    let app = &channel.instance;
    for attempt in 0..TRIES {
        if attempt > 0 {
            tokio::time::sleep(FIRST_WAIT * 2u32.pow(attempt - 1)).await;
        }
        let body = match channel.app_config().await {
            Ok(Some(body)) => body,
            Ok(None) => return HostConfig::default(),
            Err(ListError::Retry(err)) => {
                tracing::debug!("{app}: {err}");
                continue;
            }
            Err(ListError::Invalid(err)) => {
                tracing::error!("{app}: {err}");
                return HostConfig::default();
            }
        };
        return match config::parse(&body) {
            Ok(config) => config,
            Err(err) => {
                tracing::error!("{app}: GET /dapr/config: {err}; it hosts no actors");
                HostConfig::default()
            }
        };
    }
    tracing::warn!("{app}: GET /dapr/config did not answer; it hosts no actors");
    HostConfig::default()
}

fn announce(channel: &AppChannel, actors: &Actors, config: &HostConfig) {
    let app = &channel.instance;
    for note in &config.notes {
        tracing::warn!("{app}: {note}");
    }
    if config.types.is_empty() {
        return;
    }
    let types: Vec<String> = config
        .types
        .iter()
        .map(|(name, c)| {
            let reentrancy = c
                .reentrancy
                .map_or("off".to_string(), |d| format!("max depth {d}"));
            let idle = crate::timespec::go_string(crate::timespec::GoDuration(
                c.idle_timeout.as_nanos() as i64,
            ));
            format!("{name} (idle {idle}, reentrancy {reentrancy})")
        })
        .collect();
    tracing::info!("{app}: hosts actors {}", types.join(", "));
    if actors.components.get().actor_store().is_none() {
        tracing::warn!(
            "{app}: Actor state store not configured - actor hosting disabled until one is configured, but invocation enabled\n  hint: add `actorStateStore: \"true\"` to one state store component's metadata"
        );
    }
}
