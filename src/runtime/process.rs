//! Host processes, each the leader of its own process group.
//!
//! Dev servers start children (`uv run` starts python, `npm run dev` starts node); signalling
//! only the parent leaves those holding ports. So every app runs in a new process group and every
//! signal goes to the whole group. `KillOnDrop` makes sure a dropped child does not outlive daca's
//! runtime; a SIGKILLed daca is covered by the run record under `.daca/` (see `project.rs`).

use std::process::Stdio;
use std::sync::Arc;

use nix::sys::signal::{Signal, killpg};
use nix::unistd::Pid;
use process_wrap::tokio::{CommandWrap, KillOnDrop, ProcessGroup};
use tokio::sync::oneshot;

use super::{
    ExitInfo, LaunchError, LaunchFuture, LaunchSpec, Launched, ProcessLaunch, Runtime, Signaller,
};
use crate::logs::{LogBus, Stream, pipe_lines};

/// Runs apps as host processes.
#[derive(Debug, Default, Clone)]
pub struct ProcessRuntime;

/// Signals a process group by its id.
pub struct GroupSignaller {
    pgid: Pid,
}

impl GroupSignaller {
    /// The group led by `pgid`.
    pub fn new(pgid: u32) -> Self {
        GroupSignaller {
            pgid: Pid::from_raw(pgid as i32),
        }
    }
}

impl Signaller for GroupSignaller {
    fn terminate(&self) {
        let _ = killpg(self.pgid, Signal::SIGTERM);
    }
    fn kill(&self) {
        let _ = killpg(self.pgid, Signal::SIGKILL);
    }
    fn group_alive(&self) -> bool {
        killpg(self.pgid, None).is_ok() && group_has_live_member(self.pgid.as_raw())
    }
}

/// Whether a process of group `pgid` is alive and not a zombie. A SIGKILLed `uv run` leaves its
/// child a zombie until the init process reaps it (some containers' init never does); a zombie
/// holds no port, so waiting on it would only slow restarts down.
pub fn group_has_live_member(pgid: i32) -> bool {
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return true; // no /proc: trust killpg
    };
    entries.filter_map(|e| e.ok()).any(|entry| {
        let Some(pid) = entry
            .file_name()
            .to_str()
            .and_then(|n| n.parse::<u32>().ok())
        else {
            return false;
        };
        let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else {
            return false;
        };
        // After the `(comm)` field: state, ppid, pgrp.
        let mut fields = stat
            .rsplit_once(')')
            .map(|(_, rest)| rest)
            .unwrap_or_default()
            .split_whitespace();
        let state = fields.next().unwrap_or("Z");
        let pgrp = fields.nth(1).and_then(|p| p.parse::<i32>().ok());
        pgrp == Some(pgid) && !matches!(state, "Z" | "X")
    })
}

/// Whether process `pid` is alive and not a zombie.
pub fn process_alive(pid: u32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat")).is_ok_and(|stat| {
        let state = stat
            .rsplit_once(')')
            .map(|(_, rest)| rest.trim_start())
            .unwrap_or("Z");
        !state.starts_with(['Z', 'X'])
    })
}

/// Finds `program` the way a shell would, using the PATH the process will get.
pub fn resolve_program(spec: &ProcessLaunch) -> Result<std::path::PathBuf, LaunchError> {
    let path = spec
        .env
        .iter()
        .find(|(k, _)| k == "PATH")
        .map(|(_, v)| v.clone())
        .unwrap_or_default();
    which::which_in(&spec.program, Some(path), &spec.dir).map_err(|_| LaunchError::NotFound {
        program: spec.program.clone(),
        dir: spec.dir.display().to_string(),
    })
}

/// Host processes only: a container spec is refused (tests and tools without an engine).
impl Runtime for ProcessRuntime {
    fn launch<'a>(
        &'a self,
        name: &'a str,
        spec: &'a LaunchSpec,
        logs: &'a Arc<LogBus>,
    ) -> LaunchFuture<'a> {
        let launched = match spec {
            LaunchSpec::Process(process) => spawn(name, process, logs),
            LaunchSpec::Container(container) => Err(super::no_engine(container)),
        };
        Box::pin(std::future::ready(launched))
    }
}

/// Starts a process whose output lines are `name`'s. Spawning does not wait, so this is
/// synchronous.
pub fn spawn(
    name: &str,
    spec: &ProcessLaunch,
    logs: &Arc<LogBus>,
) -> Result<Launched, LaunchError> {
    let program = resolve_program(spec)?;
    // In a pod, daca's own wrapper joins it and then becomes the program (same pid).
    let (program, args) = match &spec.pod {
        None => (program, spec.args.clone()),
        Some(pod) => pod.command(&program.display().to_string(), &spec.args),
    };
    let mut command = CommandWrap::with_new(&program, |cmd| {
        cmd.args(&args)
            .current_dir(&spec.dir)
            .env_clear()
            .envs(spec.env.iter().map(|(k, v)| (k, v)))
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        // SAFETY: the closure makes only async-signal-safe calls (getrlimit, setrlimit).
        unsafe {
            cmd.pre_exec(crate::listen::restore_open_files_limit);
        }
    });
    command.wrap(ProcessGroup::leader()).wrap(KillOnDrop);
    let mut child = command.spawn().map_err(|source| LaunchError::Spawn {
        program: spec.program.clone(),
        source,
    })?;
    let pid = child
        .id()
        .expect("UNWRAP: a freshly spawned child has a pid");
    if let Some(stdout) = child.stdout().take() {
        pipe_lines(logs.clone(), name.to_string(), Stream::Stdout, stdout);
    }
    if let Some(stderr) = child.stderr().take() {
        pipe_lines(logs.clone(), name.to_string(), Stream::Stderr, stderr);
    }
    let (tx, exited) = oneshot::channel();
    tokio::spawn(async move {
        let status = child.wait().await;
        let info = match status {
            Ok(status) => {
                use std::os::unix::process::ExitStatusExt;
                ExitInfo {
                    code: status.code(),
                    signal: status.signal(),
                }
            }
            Err(_) => ExitInfo {
                code: None,
                signal: None,
            },
        };
        let _ = tx.send(info);
    });
    Ok(Launched {
        pid,
        container: None,
        exited,
        signals: Arc::new(GroupSignaller::new(pid)),
        start: None,
    })
}
