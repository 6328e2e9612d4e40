//! The supervisor: one actor per app (and one for a managed Redis), started in dependency order
//! and stopped in reverse.
//!
//! How it works: [`Supervisor::new`] spawns an [`AppTask`](task) per unit, each owning its
//! process and publishing an [`AppStatus`] on a watch channel. [`Supervisor::start_all`] gives
//! every unit a small task that waits for its dependencies to be ready (up to their startup
//! timeout) and then sends it `Start`. [`Supervisor::shutdown`] stops units one by one from the
//! last started to the first; [`Supervisor::force_kill`] is the second Ctrl-C.

mod backoff;
mod handle;
mod probe;
mod state;
mod task;
#[cfg(test)]
mod tests;

use std::sync::{Arc, Mutex, RwLock};
use std::time::Duration;

use tokio::sync::{broadcast, mpsc, watch};

pub use handle::{AppHandle, Control};
pub use probe::Probe;
pub use state::{AppEvent, AppState, AppStatus};

use crate::logs::LogBus;
use crate::manifest::RestartPolicy;
use crate::runtime::{LaunchSpec, Runtime};

/// Everything the supervisor needs to run one unit.
#[derive(Debug, Clone)]
pub struct UnitSpec {
    pub launch: LaunchSpec,
    pub probe: Probe,
    pub restart: RestartPolicy,
    /// SIGTERM → SIGKILL delay.
    pub grace: Duration,
    /// How long dependents wait for this unit to be ready.
    pub startup_timeout: Duration,
    /// Names of units that must be ready first.
    pub depends_on: Vec<String>,
}

/// The running set of units; units can be added and removed while it runs (a `daca.yaml` edit).
pub struct Supervisor {
    units: RwLock<Vec<(UnitSpec, AppHandle)>>,
    events: broadcast::Sender<AppEvent>,
    runtime: Arc<dyn Runtime>,
    logs: Arc<LogBus>,
}

impl Supervisor {
    /// Spawns one actor per unit; nothing starts until [`Supervisor::start_all`].
    /// `units` must be in start order (dependencies first), as the manifest gives them.
    pub fn new(units: Vec<UnitSpec>, runtime: Arc<dyn Runtime>, logs: Arc<LogBus>) -> Supervisor {
        let (events, _) = broadcast::channel(256);
        let supervisor = Supervisor {
            units: RwLock::new(Vec::new()),
            events,
            runtime,
            logs,
        };
        for spec in units {
            supervisor.add(spec);
        }
        supervisor
    }

    fn units(&self) -> std::sync::RwLockReadGuard<'_, Vec<(UnitSpec, AppHandle)>> {
        self.units.read().unwrap_or_else(|p| p.into_inner())
    }

    /// Adds a unit (not started) after the others and returns its handle.
    pub fn add(&self, spec: UnitSpec) -> AppHandle {
        let name = spec.launch.name.clone();
        let (status_tx, status_rx) = watch::channel(AppStatus::new(&name));
        let (controls, inbox) = mpsc::channel(16);
        let signals = Arc::new(Mutex::new(None));
        let handle = AppHandle {
            name,
            controls,
            status: status_rx,
            signals: signals.clone(),
        };
        let task = task::AppTask::new(
            spec.clone(),
            self.runtime.clone(),
            self.logs.clone(),
            status_tx,
            self.events.clone(),
            signals,
        );
        tokio::spawn(task.run(inbox));
        self.units
            .write()
            .unwrap_or_else(|p| p.into_inner())
            .push((spec, handle.clone()));
        handle
    }

    /// Stops a unit (gracefully) and forgets it.
    pub async fn remove(&self, name: &str) {
        if let Some(handle) = self.handle(name) {
            handle.send(Control::Shutdown).await;
        }
        self.units
            .write()
            .unwrap_or_else(|p| p.into_inner())
            .retain(|(spec, _)| spec.launch.name != name);
    }

    /// Handles in start order.
    pub fn handles(&self) -> Vec<AppHandle> {
        self.units()
            .iter()
            .map(|(_, handle)| handle.clone())
            .collect()
    }

    /// The handle of one unit.
    pub fn handle(&self, name: &str) -> Option<AppHandle> {
        self.units()
            .iter()
            .find(|(_, h)| h.name() == name)
            .map(|(_, h)| h.clone())
    }

    /// The spec a unit was made from.
    pub fn spec(&self, name: &str) -> Option<UnitSpec> {
        self.units()
            .iter()
            .find(|(spec, _)| spec.launch.name == name)
            .map(|(spec, _)| spec.clone())
    }

    /// Status of every unit, in start order.
    pub fn statuses(&self) -> Vec<AppStatus> {
        self.handles().iter().map(AppHandle::status).collect()
    }

    /// State changes of every unit.
    pub fn subscribe(&self) -> broadcast::Receiver<AppEvent> {
        self.events.subscribe()
    }

    /// Starts every unit once its dependencies are ready. Returns at once.
    pub fn start_all(&self) {
        let names: Vec<String> = self
            .units()
            .iter()
            .map(|(s, _)| s.launch.name.clone())
            .collect();
        for name in names {
            self.start(&name);
        }
    }

    /// Starts one unit once its dependencies are ready. Returns at once.
    pub fn start(&self, name: &str) {
        let units = self.units();
        let Some((spec, handle)) = units.iter().find(|(s, _)| s.launch.name == name) else {
            return;
        };
        let dependencies: Vec<(AppHandle, UnitSpec)> = spec
            .depends_on
            .iter()
            .filter_map(|dep| units.iter().find(|(s, _)| &s.launch.name == dep))
            .map(|(s, h)| (h.clone(), s.clone()))
            .collect();
        let handle = handle.clone();
        tokio::spawn(async move {
            for (dependency, dep_spec) in dependencies {
                if !dependency.wait_ready(dep_spec.startup_timeout).await {
                    handle
                        .send(Control::Fail(not_ready_reason(&dependency, &dep_spec)))
                        .await;
                    return;
                }
            }
            handle.start().await;
        });
    }

    /// Waits until every unit is ready; false after `limit` or when one failed or exited.
    pub async fn wait_all_ready(&self, limit: Duration) -> bool {
        let handles = self.handles();
        let waits = handles.iter().map(|h| h.wait_ready(limit));
        futures_util::future::join_all(waits)
            .await
            .into_iter()
            .all(|ready| ready)
    }

    /// Stops every unit, dependents before their dependencies, each with its grace period.
    pub async fn shutdown(&self) {
        for handle in self.handles().iter().rev() {
            handle.send(Control::Shutdown).await;
        }
    }

    /// SIGKILLs every process group now.
    pub fn force_kill(&self) {
        for handle in self.handles() {
            handle.force_kill();
        }
    }
}

/// Why a dependent was not started: its dependency gave up, or never passed its probe in time.
fn not_ready_reason(dependency: &AppHandle, spec: &UnitSpec) -> String {
    let status = dependency.status();
    match status.state {
        AppState::Failed | AppState::Exited => format!(
            "not started: its dependency `{}` is {} ({})",
            dependency.name(),
            status.state.as_str(),
            status
                .message
                .or(status.last_exit.map(|e| e.to_string()))
                .unwrap_or_default()
        ),
        _ => format!(
            "not started: `{}` was not ready after {} s (waited for {})",
            dependency.name(),
            spec.startup_timeout.as_secs(),
            spec.probe.describe()
        ),
    }
}
