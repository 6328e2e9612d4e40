//! The input bindings of one app. Each starts when the app is ready: daprd first asks the app
//! whether it reads the binding (`OPTIONS /<route>`, unless `direction: input` says so), then
//! delivers each event. daca asks again after each restart, so a reload that adds the route
//! starts the binding (daprd would need a restart). A cron tick runs on its own task, so an
//! app slower than the schedule gets overlapping deliveries, and ticks missed while the app
//! restarts are not replayed, as under Dapr.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::SystemTime;

use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;

use crate::channel::{AppChannel, BindingEvent};
use crate::cron::Schedule;
use crate::resiliency::{self, AppPolicies, ComponentType, Direction, Failure, ok_or_retry};

/// One input binding an app may read.
#[derive(Debug, Clone)]
pub struct Input {
    pub name: String,
    /// Where the app receives its events, without the leading `/`.
    pub route: String,
    /// Whether to ask the app first (no `direction: input`).
    pub probe: bool,
    pub schedule: Schedule,
}

/// Reads `inputs` for the app behind `channel` until `token` is cancelled.
pub async fn run(
    channel: AppChannel,
    inputs: Vec<Input>,
    policies: Arc<AppPolicies>,
    token: CancellationToken,
) {
    let mut readers = JoinSet::new();
    for input in inputs {
        let policies = policies.clone();
        readers.spawn(read(channel.clone(), input, policies, token.clone()));
    }
    token.cancelled().await;
    readers.shutdown().await;
}

/// One binding, across the app's restarts.
async fn read(
    mut channel: AppChannel,
    input: Input,
    policies: Arc<AppPolicies>,
    token: CancellationToken,
) {
    let app = channel.instance.clone();
    let mut said = None;
    while channel.wait_ready().await {
        let generation = channel.generation();
        let reads = !input.probe || asks(&channel, &input).await;
        if said != Some(reads) {
            let to = match channel.protocol() {
                crate::manifest::AppProtocol::Grpc => "OnBindingEvent".to_string(),
                _ => format!("POST /{}", input.route),
            };
            match reads {
                true => tracing::info!(
                    "{app}: input binding {} (cron, {}) → {to}",
                    input.name,
                    input.schedule.zone_name(),
                ),
                false => tracing::warn!(
                    "{app}: app has not subscribed to binding {}: {}\n  hint: add a handler for it, or `direction: input` to the component's metadata",
                    input.name,
                    match channel.protocol() {
                        crate::manifest::AppProtocol::Grpc =>
                            "ListInputBindings does not name it".to_string(),
                        _ => format!("its OPTIONS /{} answered neither 2xx nor 405", input.route),
                    }
                ),
            }
            said = Some(reads);
        }
        let mut ticks = JoinSet::new();
        let gone = channel.clone();
        tokio::select! {
            () = async { let mut gone = gone; gone.wait_gone(generation).await } => {}
            () = tick(&channel, &input, &policies, &mut ticks), if reads => {}
            _ = token.cancelled() => return,
        }
        // Deliveries under way go on: the app answers them or the connection fails.
        ticks.detach_all();
    }
}

/// Whether the app reads the binding; an app that cannot be reached yet (ready on its port, its
/// server still starting) is asked again for a few seconds.
async fn asks(channel: &AppChannel, input: &Input) -> bool {
    for _ in 0..ASKS {
        match channel.reads_binding(&input.name, &input.route).await {
            Ok(reads) => return reads,
            Err(_) => tokio::time::sleep(ASK_AGAIN).await,
        }
    }
    false
}

/// How often, and how far apart, an unreachable app is asked whether it reads a binding.
const ASKS: u32 = 20;
const ASK_AGAIN: std::time::Duration = std::time::Duration::from_millis(250);

/// Delivers each tick of the schedule, until it has no next one.
async fn tick(
    channel: &AppChannel,
    input: &Input,
    policies: &AppPolicies,
    ticks: &mut JoinSet<()>,
) {
    let policy = policies.component(&input.name, ComponentType::Binding, Direction::Inbound);
    while let Some(next) = input.schedule.next_after(SystemTime::now()) {
        let wait = next.duration_since(SystemTime::now()).unwrap_or_default();
        tokio::time::sleep(wait).await;
        while ticks.try_join_next().is_some() {}
        let (channel, input, policy) = (channel.clone(), input.clone(), policy.clone());
        ticks.spawn(async move {
            let metadata = BTreeMap::from([
                (
                    "timeZone".to_string(),
                    input.schedule.zone_name().to_string(),
                ),
                (
                    "readTimeUTC".to_string(),
                    crate::cron::go_utc_string(SystemTime::now()),
                ),
            ]);
            let event = BindingEvent {
                name: &input.name,
                route: &input.route,
                data: &[],
                metadata: &metadata,
            };
            let attempt = || async {
                match channel.binding_event(&event).await {
                    Ok(answer) => answer.map_err(Failure),
                    Err(_) => Err(Failure("app not reachable".into())),
                }
            };
            let what = || format!("{}: binding {}", channel.instance, input.name);
            // As daprd's cron loop: an error of the app is logged, the next tick comes.
            if let Err(Failure(err)) = resiliency::run(&policy, what, ok_or_retry, attempt).await {
                tracing::warn!("{}: binding {}: {err}", channel.instance, input.name);
            }
        });
    }
}
