//! What an app is doing, as the rest of daca (CLI, control API, tests) sees it.

use serde::{Deserialize, Serialize};

use crate::runtime::ExitInfo;

/// The life of an app. Each variant is a distinct situation a user may need to act on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum AppState {
    /// Not started yet (waiting for its dependencies, or for the first start).
    Pending,
    /// Its process runs but is not ready yet.
    Starting,
    /// Its process runs and passed its readiness probe.
    Ready,
    /// Being stopped: SIGTERM sent, grace period running.
    Stopping,
    /// Stopped on request.
    Stopped,
    /// Exited by itself and its restart policy says stay down.
    Exited,
    /// Exited by itself; it will be started again after a delay.
    BackingOff,
    /// Cannot be started until something changes (missing program, dependency never ready).
    Failed,
}

impl AppState {
    /// Whether a process of this app exists.
    pub fn is_running(self) -> bool {
        matches!(
            self,
            AppState::Starting | AppState::Ready | AppState::Stopping
        )
    }

    /// The word shown by `daca ps`.
    pub fn as_str(self) -> &'static str {
        match self {
            AppState::Pending => "pending",
            AppState::Starting => "starting",
            AppState::Ready => "ready",
            AppState::Stopping => "stopping",
            AppState::Stopped => "stopped",
            AppState::Exited => "exited",
            AppState::BackingOff => "backing-off",
            AppState::Failed => "failed",
        }
    }
}

/// A snapshot of one app.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct AppStatus {
    pub name: String,
    pub state: AppState,
    /// Pid (and process-group id) of the running process.
    pub pid: Option<u32>,
    /// Short id of its container, when it runs in one.
    #[serde(default)]
    pub container: Option<String>,
    /// How many times daca started it again after the first start.
    pub restarts: u32,
    /// When the current process started (ms since the Unix epoch).
    pub started_at_ms: Option<u64>,
    /// Launch to ready of the current process, in milliseconds.
    pub ready_after_ms: Option<u64>,
    pub last_exit: Option<ExitInfo>,
    /// Why it is failed or backing off.
    pub message: Option<String>,
    /// How the current process started: `warm`, or `cold: why` (Python apps).
    #[serde(default)]
    pub start: Option<String>,
}

impl AppStatus {
    pub(crate) fn new(name: &str) -> Self {
        AppStatus {
            name: name.to_string(),
            state: AppState::Pending,
            pid: None,
            container: None,
            restarts: 0,
            started_at_ms: None,
            ready_after_ms: None,
            last_exit: None,
            message: None,
            start: None,
        }
    }
}

/// Something that happened to an app, broadcast for the run record, tests and the dashboard.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct AppEvent {
    pub unit: super::Unit,
    pub name: String,
    pub state: AppState,
    pub pid: Option<u32>,
    pub ts_ms: u64,
}
