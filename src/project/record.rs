//! What a running project tells the world: the control API (and the dashboard on it), the
//! start-up lines, `.daca/run.json` kept current, the timeline of state changes, and the
//! "all ready" line. Each task runs on the project's tracker until its token is cancelled.

use std::time::{Duration, Instant};

use tokio::sync::broadcast;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use super::state_dir::{Group, ProcessRef, RunRecord, StateDir, StateError};
use super::view::{ProjectView, Snapshot};
use crate::manifest::Manifest;
use crate::redis::RedisPlan;
use crate::supervisor::{AppEvent, AppState, AppStatus};

/// Serves the control API on a free loopback port; returns its address.
pub(super) async fn serve_control(
    view: &ProjectView,
    tasks: &TaskTracker,
    secret: &crate::control::RunToken,
    token: &CancellationToken,
) -> std::io::Result<String> {
    let listener = tokio::net::TcpListener::bind(("127.0.0.1", 0)).await?;
    let address = listener.local_addr()?.to_string();
    let serving = crate::control::serve(listener, view.clone(), secret.clone(), token.clone());
    tasks.spawn(serving);
    Ok(address)
}

pub(super) fn announce(
    manifest: &Manifest,
    redis_plan: &RedisPlan,
    pg_plan: Option<&crate::pgserver::PgPlan>,
    snapshot: &Snapshot,
    dashboard: &str,
    containers: Option<&crate::docker::ContainerPlan>,
) {
    let postgres = pg_plan
        .map(|plan| format!(" · postgres: {}", plan.describe()))
        .unwrap_or_default();
    tracing::info!(
        "project {} · redis: {}{postgres} · dashboard: {dashboard}",
        manifest.name,
        redis_plan.describe()
    );
    for app in &snapshot.apps {
        let port = app.spec.process.port;
        let name = match &app.spec.instance_of {
            Some(of) => format!("{} (a replica of {of})", app.spec.id),
            None => app.spec.id.to_string(),
        };
        // How it runs, said once per app: an imported project's apps run as containers
        // where an engine answers, else as processes.
        let runs = match containers.is_some_and(|plan| plan.runs(&app.spec)) {
            true => "container",
            false => "process",
        };
        if !app.spec.sidecar.enabled {
            let at = match (port, app.pod_host_port) {
                (Some(port), Some(Some(host))) => {
                    format!(" · app :{port} in its pod, :{host} on this machine")
                }
                (Some(port), _) => format!(" · app :{port}"),
                (None, _) => String::new(),
            };
            tracing::info!("{name}: {runs} · no sidecar (dapr: false){at}");
            continue;
        }
        let Some(host_port) = app.pod_host_port else {
            let port = port.map(|p| format!("app :{p} · ")).unwrap_or_default();
            tracing::info!(
                "{name}: {runs} · {port}DAPR_HTTP_PORT={} DAPR_GRPC_PORT={}",
                app.ports.http,
                app.ports.grpc
            );
            continue;
        };
        let port = match (port, host_port) {
            (Some(port), Some(host)) => {
                format!("app :{port} in its pod, :{host} on this machine · ")
            }
            _ => String::new(),
        };
        tracing::info!(
            "{name}: {runs} in a pod · {port}sidecar localhost:3500/50001 in the pod, :{}/:{} on this machine",
            app.ports.http,
            app.ports.grpc
        );
    }
}

/// Keeps `.daca/run.json` naming every live process group.
pub(super) struct RunWriter {
    state: StateDir,
    base: RunRecord,
}

impl RunWriter {
    pub fn new(manifest: &Manifest, control: &str, secret: &crate::control::RunToken) -> RunWriter {
        RunWriter {
            state: StateDir::new(&manifest.root),
            base: RunRecord {
                project: manifest.name.clone(),
                daca: ProcessRef::me(),
                control: control.to_string(),
                token: secret.as_str().to_string(),
                groups: Vec::new(),
            },
        }
    }

    pub fn write(&self, snapshot: &Snapshot) -> Result<(), StateError> {
        let mut record = self.base.clone();
        let handles = snapshot
            .redis
            .iter()
            .chain(&snapshot.postgres)
            .chain(snapshot.apps.iter().map(|a| &a.handle));
        record.groups = handles
            .filter_map(|handle| {
                let leader = ProcessRef::of(handle.status().pid?)?;
                Some(Group {
                    unit: handle.unit().clone(),
                    leader,
                })
            })
            .collect();
        self.state.write(&record)
    }

    /// Rewrites the record on every state change until `stop` is cancelled. A lagged
    /// receiver still rewrites from the current statuses, so nothing is missed.
    pub async fn follow(
        self,
        changes: broadcast::Receiver<AppEvent>,
        view: ProjectView,
        stop: CancellationToken,
    ) {
        // A disk that is full stays full for a while: said once, and once more when it is over.
        let mut failing = false;
        on_changes(changes, stop, |_| match self.write(&view.snapshot()) {
            Err(err) if !failing => {
                failing = true;
                tracing::error!(
                    "{err}\n  hint: free space there; until then `daca down` cannot find what a killed daca leaves running"
                );
            }
            Err(_) => {}
            Ok(()) if failing => {
                failing = false;
                tracing::info!("{} is written again", self.state.path().join("run.json").display());
            }
            Ok(()) => {}
        })
        .await
    }
}

/// Calls `each` for every state change until `stop` is cancelled; `None` when some were
/// missed (the receiver lagged).
async fn on_changes(
    mut changes: broadcast::Receiver<AppEvent>,
    stop: CancellationToken,
    mut each: impl FnMut(Option<AppEvent>),
) {
    loop {
        let change = tokio::select! {
            _ = stop.cancelled() => return,
            change = changes.recv() => change,
        };
        match change {
            Ok(change) => each(Some(change)),
            Err(broadcast::error::RecvError::Lagged(_)) => each(None),
            Err(broadcast::error::RecvError::Closed) => return,
        }
    }
}

/// Puts every app's state change on the dashboard's timeline.
pub(super) async fn timeline(
    mut changes: broadcast::Receiver<AppEvent>,
    view: ProjectView,
    stop: CancellationToken,
) {
    loop {
        let change = tokio::select! {
            _ = stop.cancelled() => return,
            change = changes.recv() => match change {
                Ok(change) => change,
                Err(broadcast::error::RecvError::Lagged(_)) => continue,
                Err(broadcast::error::RecvError::Closed) => return,
            },
        };
        let snapshot = view.snapshot();
        let Some(app) = snapshot
            .apps
            .iter()
            .find(|a| *a.handle.unit() == change.unit)
        else {
            continue; // Redis
        };
        let detail = describe(&change, &app.handle.status());
        let message = format!("{}{detail}", change.state.as_str());
        view.events
            .push("app", Some(app.spec.id.as_str()), message, None);
    }
}

fn describe(change: &AppEvent, status: &AppStatus) -> String {
    let detail = match change.state {
        AppState::Ready => status.ready_after_ms.map(|ms| format!(" in {ms} ms")),
        AppState::Starting => change.pid.map(|p| format!(" (pid {p})")),
        _ => status
            .message
            .clone()
            .or(status.last_exit.map(|e| e.to_string()))
            .map(|m| format!(": {m}")),
    };
    detail.unwrap_or_default()
}

/// Says once when every app is ready.
pub(super) async fn report_ready(view: ProjectView, started: Instant, stop: CancellationToken) {
    let snapshot = view.snapshot();
    let handles: Vec<_> = snapshot.apps.iter().map(|a| a.handle.clone()).collect();
    let ready = tokio::select! {
        _ = stop.cancelled() => false,
        ready = crate::supervisor::wait_all_ready(&handles, Duration::from_secs(3600)) => ready,
    };
    if ready {
        tracing::info!(
            "all {} app(s) ready in {} ms · Ctrl-C to stop",
            handles.len(),
            started.elapsed().as_millis()
        );
    }
}
