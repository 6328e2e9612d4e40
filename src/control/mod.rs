//! The local control API: JSON over HTTP on 127.0.0.1, its address in `.daca/run.json`.
//! `daca ps`, `daca logs` and `daca down` in another terminal use it; so will the dashboard and
//! tests. Read-only views plus a few verbs: `down`, and start/stop/restart of one app.

pub mod client;
pub mod secret;
mod server;

use serde::{Deserialize, Serialize};

pub use secret::RunToken;
pub use server::{CHANGE_HEADER, serve, status};

use crate::env::SidecarPorts;
use crate::supervisor::AppStatus;

/// `GET /v1/ps`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ProjectStatus {
    pub project: String,
    pub daca_pid: u32,
    pub redis: RedisStatus,
    /// The project's PostgreSQL (`postgres:`), when it has one.
    #[serde(default)]
    pub postgres: Option<ServerStatus>,
    pub apps: Vec<AppView>,
    /// What the file watcher has seen; absent with `daca up --no-watch`.
    #[serde(default)]
    pub watch: Option<crate::watch::WatchView>,
    /// daca's own process, as `scripts/soak` samples it.
    #[serde(default)]
    pub process: Option<ProcessStats>,
}

/// What daca's own process holds right now.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ProcessStats {
    /// Resident memory, KiB.
    pub rss_kib: u64,
    pub open_fds: usize,
    /// tokio tasks alive.
    pub tasks: usize,
}

impl ProcessStats {
    /// This process's, from `/proc/self` and the runtime it is called on.
    pub fn now() -> ProcessStats {
        let rss_kib = std::fs::read_to_string("/proc/self/status")
            .ok()
            .and_then(|status| {
                let line = status.lines().find(|l| l.starts_with("VmRSS:"))?;
                line.split_whitespace().nth(1)?.parse().ok()
            })
            .unwrap_or(0);
        let open_fds = std::fs::read_dir("/proc/self/fd").map_or(0, |fds| fds.count());
        let tasks = tokio::runtime::Handle::try_current()
            .map_or(0, |runtime| runtime.metrics().num_alive_tasks());
        ProcessStats {
            rss_kib,
            open_fds,
            tasks,
        }
    }
}

/// Redis as `daca ps` shows it.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct RedisStatus {
    /// `redis-server`, `embedded` or `external`.
    pub mode: String,
    pub url: Option<String>,
    /// The managed redis-server's status, when there is one.
    pub status: Option<AppStatus>,
}

/// A server other than Redis as `daca ps` shows it.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ServerStatus {
    /// Where it is and how it runs, in one phrase.
    pub describe: String,
    /// Its status, when daca supervises it.
    pub status: Option<AppStatus>,
}

/// An app's pod as `daca ps` shows it.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct PodView {
    pub host_port: Option<u16>,
}

/// One app as `daca ps` shows it.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct AppView {
    #[serde(flatten)]
    pub status: AppStatus,
    /// For an instance `replicas:` added (`name` is then `<app-id>-N`): its app's id.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub instance_of: Option<String>,
    pub port: Option<u16>,
    /// None for an app without one (`dapr: false`).
    pub sidecar: Option<SidecarPorts>,
    /// In a pod (`network: pod`): the host port that leads to `port` inside it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pod: Option<PodView>,
    /// Reload times (change → ready).
    #[serde(default)]
    pub reload: crate::reload::ReloadView,
}
