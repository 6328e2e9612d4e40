//! How an app's process is started, signalled and observed. The supervisor is written against
//! [`Runtime`], so its state machine is tested with a recording fake (`fake.rs`) and runs for
//! real with host processes (`process.rs`); containers come as another backend.

#[cfg(test)]
pub mod fake;
pub mod process;

use std::fmt;
use std::path::PathBuf;
use std::sync::Arc;

use tokio::sync::oneshot;

use crate::logs::LogBus;

/// What to run.
#[derive(Debug, Clone)]
pub struct LaunchSpec {
    /// The app-id (or `redis`): the log prefix.
    pub name: String,
    pub program: String,
    pub args: Vec<String>,
    pub dir: PathBuf,
    /// Full environment of the process (nothing else is inherited).
    pub env: Vec<(String, String)>,
}

/// How a process ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct ExitInfo {
    pub code: Option<i32>,
    pub signal: Option<i32>,
}

impl ExitInfo {
    /// Exit code 0.
    pub fn success(&self) -> bool {
        self.code == Some(0)
    }
}

impl fmt::Display for ExitInfo {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match (self.code, self.signal) {
            (Some(code), _) => write!(f, "exit code {code}"),
            (None, Some(signal)) => match nix::sys::signal::Signal::try_from(signal) {
                Ok(name) => write!(f, "signal {signal} ({})", name.as_str()),
                Err(_) => write!(f, "signal {signal}"),
            },
            (None, None) => f.write_str("an unknown status"),
        }
    }
}

/// Sends signals to a launched process and everything it started.
pub trait Signaller: Send + Sync {
    /// Ask politely (SIGTERM to the process group).
    fn terminate(&self);
    /// Force (SIGKILL to the process group).
    fn kill(&self);
    /// Whether anything of the process group is still alive.
    fn group_alive(&self) -> bool;
}

/// A started process.
pub struct Launched {
    /// Its pid, which is also its process-group id.
    pub pid: u32,
    /// Resolves once when the process exits.
    pub exited: oneshot::Receiver<ExitInfo>,
    pub signals: Arc<dyn Signaller>,
}

/// Why a process could not be started.
#[derive(Debug, thiserror::Error)]
pub enum LaunchError {
    #[error("`{program}` was not found (looked on PATH and in {dir})")]
    NotFound { program: String, dir: String },
    #[error("could not start `{program}`: {source}")]
    Spawn {
        program: String,
        source: std::io::Error,
    },
}

/// A way to start processes.
pub trait Runtime: Send + Sync + 'static {
    /// Starts `spec`, sending its output lines to `logs`.
    fn launch(&self, spec: &LaunchSpec, logs: &Arc<LogBus>) -> Result<Launched, LaunchError>;
}
