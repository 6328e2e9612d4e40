//! The `.daca/` folder of a project: the run record of the daca that is running it.
//!
//! `daca up` writes `.daca/run.json` (its own pid, its control address, and the process group of
//! every app and of Redis) each time something starts or stops. If daca is SIGKILLed or crashes,
//! the record survives, and the next `daca up` or `daca down` ends what it names — so no orphan
//! keeps a port. Pids are stored with their start time so a reused pid is never signalled.

use std::path::{Path, PathBuf};
use std::time::Duration;

use nix::sys::signal::{Signal, killpg};
use nix::unistd::Pid;
use serde::{Deserialize, Serialize};

use crate::supervisor::Unit;

/// Name of the state folder inside a project.
pub const STATE_DIR: &str = ".daca";

/// A process identified beyond its pid.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProcessRef {
    pub pid: u32,
    /// Start time in clock ticks since boot (`/proc/PID/stat` field 22).
    pub start: u64,
}

impl ProcessRef {
    /// The process `pid` as it is now, if it exists.
    pub fn of(pid: u32) -> Option<ProcessRef> {
        start_time(pid).map(|start| ProcessRef { pid, start })
    }

    /// This daca process.
    pub fn me() -> ProcessRef {
        ProcessRef::of(std::process::id()).unwrap_or(ProcessRef {
            pid: std::process::id(),
            start: 0,
        })
    }

    /// Whether this very process (same pid, same start time) is still alive.
    pub fn is_alive(&self) -> bool {
        start_time(self.pid) == Some(self.start)
    }
}

fn start_time(pid: u32) -> Option<u64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command name (field 2) may contain spaces and parentheses; fields after it are plain.
    let rest = &stat[stat.rfind(')')? + 1..];
    let state = rest.split_whitespace().next()?;
    if state == "Z" {
        return None; // a zombie is dead for our purposes
    }
    rest.split_whitespace().nth(19)?.parse().ok()
}

/// What a running daca writes about itself.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct RunRecord {
    pub project: String,
    pub daca: ProcessRef,
    /// `127.0.0.1:PORT` of the control API.
    pub control: String,
    /// The control API's token (see `control::secret`); this file is readable by its owner only.
    #[serde(default)]
    pub token: String,
    /// The process group of every running unit.
    pub groups: Vec<Group>,
}

/// A unit's process group, led by `leader`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Group {
    pub unit: Unit,
    pub leader: ProcessRef,
}

/// Errors about the state folder.
#[derive(Debug, thiserror::Error)]
pub enum StateError {
    #[error("cannot write {path}: {source}")]
    Write {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("daca is already running this project (pid {pid}, control API {control})")]
    AlreadyRunning { pid: u32, control: String },
}

/// The state folder of the project at `root`.
pub struct StateDir {
    dir: PathBuf,
}

impl StateDir {
    pub fn new(root: &Path) -> StateDir {
        StateDir {
            dir: root.join(STATE_DIR),
        }
    }

    pub fn path(&self) -> &Path {
        &self.dir
    }

    fn record_path(&self) -> PathBuf {
        self.dir.join("run.json")
    }

    /// Creates `.daca/` with a `.gitignore` so its contents are never committed.
    pub fn create(&self) -> Result<(), StateError> {
        let write_err = |source| StateError::Write {
            path: self.dir.clone(),
            source,
        };
        std::fs::create_dir_all(&self.dir).map_err(write_err)?;
        let ignore = self.dir.join(".gitignore");
        if !ignore.exists() {
            std::fs::write(&ignore, "*\n").map_err(write_err)?;
        }
        Ok(())
    }

    /// The record, if one is there and readable.
    pub fn read(&self) -> Option<RunRecord> {
        let text = std::fs::read_to_string(self.record_path()).ok()?;
        serde_json::from_str(&text).ok()
    }

    /// Replaces the record atomically (write, then rename), so a reader never sees half of it.
    pub fn write(&self, record: &RunRecord) -> Result<(), StateError> {
        let path = self.record_path();
        let temporary = self.dir.join("run.json.tmp");
        let text = serde_json::to_string_pretty(record).expect("UNWRAP: the record is plain data");
        // It holds the control API's token: its owner's only, from its first byte on.
        let written = (|| {
            use std::io::Write;
            use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
            let _ = std::fs::remove_file(&temporary);
            let mut file = std::fs::OpenOptions::new()
                .write(true)
                .create_new(true)
                .mode(0o600)
                .open(&temporary)?;
            file.set_permissions(std::fs::Permissions::from_mode(0o600))?;
            file.write_all(text.as_bytes())?;
            std::fs::rename(&temporary, &path)
        })();
        written.map_err(|source| StateError::Write { path, source })
    }

    /// Removes the record (daca stopped cleanly).
    pub fn clear(&self) {
        let _ = std::fs::remove_file(self.record_path());
    }

    /// The running daca of this project, if its record names a live one.
    pub fn live_daca(&self) -> Option<RunRecord> {
        self.read()
            .filter(|record| record.daca.is_alive() && record.daca.pid != std::process::id())
    }

    /// Ends what a dead daca left behind; returns the names it stopped. Refuses if daca is alive.
    pub fn reap_orphans(&self) -> Result<Vec<String>, StateError> {
        let Some(record) = self.read() else {
            return Ok(Vec::new());
        };
        if record.daca.is_alive() && record.daca.pid != std::process::id() {
            return Err(StateError::AlreadyRunning {
                pid: record.daca.pid,
                control: record.control,
            });
        }
        let mut stopped = Vec::new();
        for group in &record.groups {
            if end_group(&group.leader) {
                stopped.push(group.unit.to_string());
            }
        }
        stopped.sort();
        self.clear();
        Ok(stopped)
    }
}

/// SIGTERM, a short grace, then SIGKILL to the group a recorded leader led. The group is only
/// touched when its leader is the recorded process, or gone while other members remain.
fn end_group(leader: &ProcessRef) -> bool {
    let pgid = Pid::from_raw(leader.pid as i32);
    let leader_now = start_time(leader.pid);
    let ours = match leader_now {
        Some(start) => start == leader.start,
        // The leader is gone; its pid is not reused by a live process, so the group id is still ours.
        None => killpg(pgid, None).is_ok(),
    };
    if !ours {
        return false;
    }
    let _ = killpg(pgid, Signal::SIGTERM);
    let deadline = std::time::Instant::now() + Duration::from_secs(3);
    while killpg(pgid, None).is_ok() && std::time::Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(20));
    }
    let _ = killpg(pgid, Signal::SIGKILL);
    true
}
