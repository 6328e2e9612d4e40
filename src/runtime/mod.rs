//! How an app's process is started, signalled and observed. The supervisor is written against
//! [`Runtime`], so its state machine is tested with a recording fake (`fake.rs`) and runs for
//! real with host processes (`process.rs`) and containers (`crate::docker`), chosen per app by
//! [`Runtimes`].

#[cfg(test)]
pub mod fake;
pub mod process;

use std::collections::BTreeMap;
use std::fmt;
use std::future::Future;
use std::path::PathBuf;
use std::pin::Pin;
use std::sync::Arc;

use tokio::sync::oneshot;

use crate::logs::LogBus;

/// What to run: a host process or a container.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LaunchSpec {
    Process(ProcessLaunch),
    Container(ContainerLaunch),
}

/// A host process, the leader of its own process group.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProcessLaunch {
    pub program: String,
    pub args: Vec<String>,
    pub dir: PathBuf,
    /// Full environment of the process (nothing else is inherited).
    pub env: Vec<(String, String)>,
    /// Whether it may be forked from a warm parent (a Python app with `reload: restart`).
    pub warm: bool,
    /// The pod it runs in (see `crate::pod`), if any.
    pub pod: Option<InPod>,
}

/// A pod a process joins: through `EXE __pod-exec HOLDER -- <the command>`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InPod {
    pub exe: String,
    pub holder: u32,
}

impl InPod {
    /// The command line that runs `program` in the pod (the wrapper becomes it: same pid).
    pub fn command(&self, program: &str, args: &[String]) -> (std::path::PathBuf, Vec<String>) {
        let mut all = vec!["__pod-exec".into(), self.holder.to_string(), "--".into()];
        all.push(program.to_string());
        all.extend(args.iter().cloned());
        (std::path::PathBuf::from(&self.exe), all)
    }
}

/// How a process was started, when that can differ (see `crate::warm`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Start {
    /// Forked from the app's warm parent.
    Warm,
    /// Started from scratch, and why not warm.
    Cold(String),
}

impl fmt::Display for Start {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Start::Warm => f.write_str("warm"),
            Start::Cold(why) => write!(f, "cold: {why}"),
        }
    }
}

/// A container to run: on the host's network, or in its pod's (either way the app finds its
/// sidecar and Redis on localhost, as in a Kubernetes pod; see docs/containers.md).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct ContainerLaunch {
    /// Container name, derived from project and app.
    pub name: String,
    pub image: String,
    /// Replaces the image's CMD; `None` keeps it.
    pub cmd: Option<Vec<String>>,
    /// The container's own environment (never the host's).
    pub env: Vec<(String, String)>,
    /// Host path → container path bind mounts.
    pub binds: Vec<(String, String)>,
    /// Named volume → container path.
    pub volumes: Vec<(String, String)>,
    /// Ownership labels (project, app, run).
    pub labels: BTreeMap<String, String>,
    /// Whether it may be forked from a warm parent in a container of its own image.
    pub warm: bool,
    /// The app's pod (see `crate::pod::relay`), or `None` for the host's network.
    pub network: Option<PodNetwork>,
    /// What asks it to stop: SIGTERM unless it means something else there (PostgreSQL's
    /// SIGTERM waits for every session to end; its SIGINT is the fast shutdown).
    pub stop_signal: Option<&'static str>,
}

/// A container's place in its pod.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct PodNetwork {
    /// The engine's network mode: `container:<pod container's id>`.
    pub mode: String,
    /// The pod's hosts file (daca's), mounted at /etc/hosts.
    pub hosts: String,
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
    /// Its pid (on the host), which is also its process-group id for a host process.
    pub pid: u32,
    /// The container's short id, when it runs in one.
    pub container: Option<String>,
    /// Resolves once when the process exits.
    pub exited: oneshot::Receiver<ExitInfo>,
    pub signals: Arc<dyn Signaller>,
    /// Warm or cold, for processes that can be either.
    pub start: Option<Start>,
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
    #[error("{message}")]
    Container { message: String, hint: String },
}

/// What [`Runtime::launch`] returns: starting a container talks to the engine.
pub type LaunchFuture<'a> =
    Pin<Box<dyn Future<Output = Result<Launched, LaunchError>> + Send + 'a>>;

/// A way to start processes.
pub trait Runtime: Send + Sync + 'static {
    /// Starts `spec`, sending its output lines to `logs` as coming from `name`.
    fn launch<'a>(
        &'a self,
        name: &'a str,
        spec: &'a LaunchSpec,
        logs: &'a Arc<LogBus>,
    ) -> LaunchFuture<'a>;

    /// What `name` launched last is ready (a warm parent is built from a ready app's imports).
    fn ready(&self, _name: &str) {}
}

/// Host processes, and containers when an engine is connected: each spec says which.
pub struct Runtimes {
    pub process: process::ProcessRuntime,
    pub containers: Option<Arc<crate::docker::ContainerRuntime>>,
    /// Warm parents for the Python apps that allow them.
    pub warm: Option<Arc<crate::warm::WarmPool>>,
}

impl Runtime for Runtimes {
    fn ready(&self, name: &str) {
        if let Some(pool) = &self.warm {
            pool.ready(name);
        }
    }

    fn launch<'a>(
        &'a self,
        name: &'a str,
        spec: &'a LaunchSpec,
        logs: &'a Arc<LogBus>,
    ) -> LaunchFuture<'a> {
        match (spec, &self.containers) {
            (LaunchSpec::Process(process), _) if process.warm && self.warm.is_some() => {
                let pool = self.warm.clone().expect("UNWRAP: checked by the guard");
                let job = crate::warm::Job::Process(process.clone());
                Box::pin(async move { pool.launch(name, job, logs).await })
            }
            (LaunchSpec::Container(container), Some(containers))
                if container.warm && self.warm.is_some() =>
            {
                let pool = self.warm.clone().expect("UNWRAP: checked by the guard");
                let job = crate::warm::Job::Container(container.clone(), containers.clone());
                Box::pin(async move { pool.launch(name, job, logs).await })
            }
            (LaunchSpec::Process(process), _) => {
                Box::pin(std::future::ready(process::spawn(name, process, logs)))
            }
            (LaunchSpec::Container(container), Some(containers)) => {
                containers.launch(name, container, logs)
            }
            (LaunchSpec::Container(container), None) => {
                Box::pin(std::future::ready(Err(no_engine(container))))
            }
        }
    }
}

/// A container spec reached a runtime without an engine.
pub fn no_engine(container: &ContainerLaunch) -> LaunchError {
    LaunchError::Container {
        message: format!(
            "`{}` needs a Docker engine, and none is connected",
            container.name
        ),
        hint: "start Docker, or set `runtime: process`".into(),
    }
}
