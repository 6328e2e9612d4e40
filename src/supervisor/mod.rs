//! The supervisor: one actor per unit (an app, or the managed Redis), each alone owning its
//! process.
//!
//! How it works: [`Supervisor::spawn`] starts an actor (`task.rs`) for a [`UnitSpec`] and
//! returns its [`AppHandle`]; the actor publishes an [`AppStatus`] on a watch channel and
//! carries out [`Control`]s in order. [`AppHandle::start_after`] makes the actor wait for its
//! dependencies to be ready (each within its startup timeout) before it launches, so a
//! shutdown during that wait ends it. [`shutdown`] stops units one by one in the order given
//! (the caller passes dependents first); [`AppHandle::force_kill`] is the second Ctrl-C.

mod backoff;
mod handle;
mod probe;
mod state;
mod task;
#[cfg(test)]
mod tests;
mod unit;

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::{broadcast, mpsc, watch};
use tokio_util::task::TaskTracker;

pub use handle::{AppHandle, Control};
pub use probe::Probe;
pub use state::{AppEvent, AppState, AppStatus};
pub use unit::Unit;

use crate::logs::LogBus;
use crate::manifest::RestartPolicy;
use crate::runtime::{LaunchSpec, Runtime};

/// Everything the supervisor needs to run one unit.
#[derive(Debug, Clone)]
pub struct UnitSpec {
    pub unit: Unit,
    /// The name its log lines carry (the app-id, or `redis`).
    pub name: String,
    pub launch: LaunchSpec,
    pub probe: Probe,
    pub restart: RestartPolicy,
    /// SIGTERM → SIGKILL delay.
    pub grace: Duration,
    /// How long dependents wait for this unit to be ready.
    pub startup_timeout: Duration,
}

/// Spawns unit actors and keeps track of them. It holds no list of units: whoever spawns a
/// unit keeps its handle (the project's registry does), so there is one place that knows
/// which units exist.
pub struct Supervisor {
    runtime: Arc<dyn Runtime>,
    logs: Arc<LogBus>,
    events: broadcast::Sender<AppEvent>,
    actors: TaskTracker,
}

impl Supervisor {
    pub fn new(runtime: Arc<dyn Runtime>, logs: Arc<LogBus>) -> Supervisor {
        let (events, _) = broadcast::channel(256);
        Supervisor {
            runtime,
            logs,
            events,
            actors: TaskTracker::new(),
        }
    }

    /// Spawns the actor of one unit (not started) and returns its handle.
    pub fn spawn(&self, spec: UnitSpec) -> AppHandle {
        let (status_tx, status_rx) = watch::channel(AppStatus::new(&spec.name));
        let (spec_tx, spec_rx) = watch::channel(Arc::new(spec.clone()));
        let (controls, inbox) = mpsc::channel(16);
        let signals = Arc::new(crate::sync::Mutex::new(None));
        let handle = AppHandle {
            unit: spec.unit.clone(),
            controls,
            status: status_rx,
            spec: spec_rx,
            signals: signals.clone(),
        };
        let task = task::AppTask::new(
            spec_tx,
            self.runtime.clone(),
            self.logs.clone(),
            status_tx,
            self.events.clone(),
            signals,
        );
        self.actors.spawn(task.run(inbox));
        handle
    }

    /// State changes of every unit.
    pub fn subscribe(&self) -> broadcast::Receiver<AppEvent> {
        self.events.subscribe()
    }

    /// Waits until every actor has ended (each ends on [`Control::Shutdown`]).
    pub async fn closed(&self) {
        self.actors.close();
        self.actors.wait().await;
    }
}

/// Stops units one by one in the order given (dependents first), each with its grace period,
/// and ends their actors.
pub async fn shutdown(handles: &[AppHandle]) {
    for handle in handles {
        handle.send(Control::Shutdown).await;
    }
}

/// Waits until every unit is ready; false after `limit` or when one failed or exited.
pub async fn wait_all_ready(handles: &[AppHandle], limit: Duration) -> bool {
    let waits = handles.iter().map(|h| h.wait_ready(limit));
    futures_util::future::join_all(waits)
        .await
        .into_iter()
        .all(|ready| ready)
}

/// Why a dependent was not started: its dependency gave up, or never passed its probe in time.
fn not_ready_reason(dependency: &AppHandle) -> String {
    let status = dependency.status();
    let spec = dependency.spec();
    match status.state {
        AppState::Failed | AppState::Exited => format!(
            "not started: its dependency `{}` is {} ({})",
            spec.name,
            status.state.as_str(),
            status
                .message
                .or(status.last_exit.map(|e| e.to_string()))
                .unwrap_or_default()
        ),
        _ => format!(
            "not started: `{}` was not ready after {} s (waited for {})",
            spec.name,
            spec.startup_timeout.as_secs(),
            spec.probe.describe()
        ),
    }
}

/// Waits for each dependency to be ready within its startup timeout.
async fn dependencies_ready(dependencies: Vec<AppHandle>) -> Result<(), String> {
    for dependency in dependencies {
        let limit = dependency.spec().startup_timeout;
        if !dependency.wait_ready(limit).await {
            return Err(not_ready_reason(&dependency));
        }
    }
    Ok(())
}
