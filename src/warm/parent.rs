//! One warm parent: a Python process that imported an app's libraries and forks the app's
//! process on request (the protocol is in parent.py). It is a host process in a process
//! group of its own; its output, and its children's (they inherit it), is the app's log.

use std::collections::HashMap;
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;
use serde::Deserialize;
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::net::UnixListener;
use tokio::net::unix::{OwnedReadHalf, OwnedWriteHalf};
use tokio::sync::oneshot;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use super::command::PythonCommand;
use crate::runtime::process::{GroupSignaller, process_alive};
use crate::runtime::{ExitInfo, LaunchSpec, Launched, Signaller};
use crate::sync::Mutex;

/// How long a parent may take to import what the app imported.
const READY_LIMIT: Duration = Duration::from_secs(60);
/// How long a fork may take to be acknowledged.
const FORK_LIMIT: Duration = Duration::from_secs(5);

/// What the parent answers.
#[derive(Debug, Deserialize)]
#[serde(untagged)]
enum Answer {
    Ready {
        ready: usize,
        ms: u64,
    },
    Refused {
        refused: String,
    },
    Forked {
        forked: u32,
    },
    Exit {
        exit: u32,
        code: Option<i32>,
        signal: Option<i32>,
    },
}

type Exits = Arc<Mutex<HashMap<u32, oneshot::Sender<ExitInfo>>>>;
type Pending = Arc<Mutex<Option<oneshot::Sender<(u32, oneshot::Receiver<ExitInfo>)>>>>;

/// A running warm parent. Dropping it kills it (its children live on in their own groups).
pub struct Parent {
    /// The launch it was started for; a launch that differs is not forked from it.
    pub launch: LaunchSpec,
    /// How many modules it imported, and how long that took.
    pub preloaded: (usize, u64),
    signals: Arc<dyn Signaller>,
    /// For a parent in a container: its host pid and short id (its forks' pids are the
    /// container's, and are translated to the host's to be signalled from here).
    container: Option<(u32, String)>,
    writer: tokio::sync::Mutex<OwnedWriteHalf>,
    pending: Pending,
    alive: Arc<AtomicBool>,
}

/// Where a parent's files are, as the parent sees them: the script, the app's module report,
/// the socket.
pub struct Files {
    pub script: String,
    pub report: String,
    pub socket: String,
}

/// The app's interpreter running parent.py in `mode`: `serve` (with the socket to connect
/// to) or `run`.
pub fn parent_command(
    command: &PythonCommand,
    files: &Files,
    mode: &str,
    socket: Option<&str>,
) -> Vec<String> {
    let target = serde_json::to_string(&command.target).unwrap_or_default();
    let mut line = command.interpreter.clone();
    line.extend([
        files.script.clone(),
        mode.into(),
        target,
        files.report.clone(),
    ]);
    line.extend(socket.map(String::from));
    line
}

/// Listens where a parent will connect (a stale socket file is replaced).
pub fn listen(socket: &str) -> Result<UnixListener, String> {
    let _ = std::fs::remove_file(socket);
    UnixListener::bind(socket).map_err(|e| format!("cannot listen on {socket}: {e}"))
}

impl Parent {
    /// Waits for the parent that `started` is (for `launch`) to connect and to import the
    /// reported modules; `Err` says why warm mode is refused.
    pub async fn connect(
        listener: UnixListener,
        socket: &str,
        started: Launched,
        launch: LaunchSpec,
        tasks: &TaskTracker,
        closing: &CancellationToken,
    ) -> Result<Parent, String> {
        let signals = started.signals.clone();
        let container = started.container.clone().map(|id| (started.pid, id));
        let mut exited = started.exited;
        let stream = tokio::select! {
            accepted = tokio::time::timeout(READY_LIMIT, listener.accept()) => match accepted {
                Ok(Ok((stream, _))) => stream,
                Ok(Err(e)) => return Err(format!("the parent did not connect: {e}")),
                Err(_) => return Err("the parent did not start within 60 s".into()),
            },
            exit = &mut exited => return Err(format!("the parent exited ({})", exit.map(|e| e.to_string()).unwrap_or_default())),
            _ = closing.cancelled() => {
                signals.kill();
                return Err("daca is stopping".into());
            }
        };
        let _ = std::fs::remove_file(socket);
        let (read, writer) = stream.into_split();
        let mut lines = BufReader::new(read);
        let first = tokio::time::timeout(READY_LIMIT, read_answer(&mut lines)).await;
        let preloaded = match first {
            Ok(Some(Answer::Ready { ready, ms })) => (ready, ms),
            Ok(Some(Answer::Refused { refused })) => {
                signals.kill();
                return Err(refused);
            }
            Ok(_) => return Err("the parent exited while importing the app's modules".into()),
            Err(_) => {
                signals.kill();
                return Err("the parent did not finish its imports within 60 s".into());
            }
        };
        let parent = Parent {
            launch,
            preloaded,
            signals,
            container,
            writer: tokio::sync::Mutex::new(writer),
            pending: Arc::default(),
            alive: Arc::new(AtomicBool::new(true)),
        };
        tasks.spawn(answers(
            lines,
            parent.pending.clone(),
            Arc::default(),
            parent.alive.clone(),
        ));
        Ok(parent)
    }

    /// Whether it still answers.
    pub fn alive(&self) -> bool {
        self.alive.load(Ordering::Acquire)
    }

    /// Forks a child that runs the app's arguments `argv` in `cwd` (`None`: the parent's).
    pub async fn fork(&self, cwd: Option<&Path>, argv: &[String]) -> Result<Launched, String> {
        let mut writer = self.writer.lock().await;
        let (tx, rx) = oneshot::channel();
        *self.pending.lock() = Some(tx);
        // No environment: the child keeps the one the parent started with, which is the
        // launch's as `uv run` extended it (the pool forks only for an identical launch).
        let request = serde_json::json!({
            "op": "fork",
            "argv": argv,
            "cwd": cwd,
        });
        let mut line = request.to_string();
        line.push('\n');
        writer
            .write_all(line.as_bytes())
            .await
            .map_err(|e| format!("the warm parent is gone ({e})"))?;
        let (pid, exited) = match tokio::time::timeout(FORK_LIMIT, rx).await {
            Ok(Ok(forked)) => forked,
            Ok(Err(_)) => return Err("the warm parent exited".into()),
            Err(_) => return Err("the warm parent did not fork within 5 s".into()),
        };
        let (pid, container) = match &self.container {
            None => (pid, None),
            Some((parent, id)) => match host_pid(*parent, pid) {
                Some(host) => (host, Some(id.clone())),
                None => {
                    return Err(format!(
                        "cannot find the fork {pid} of container {id} among the host's processes"
                    ));
                }
            },
        };
        Ok(Launched {
            pid,
            container,
            exited,
            signals: Arc::new(ForkedSignaller(GroupSignaller::new(pid), pid)),
            start: None,
        })
    }
}

impl Drop for Parent {
    fn drop(&mut self) {
        self.signals.kill();
    }
}

async fn read_answer(lines: &mut BufReader<OwnedReadHalf>) -> Option<Answer> {
    let mut line = String::new();
    loop {
        line.clear();
        if lines.read_line(&mut line).await.ok()? == 0 {
            return None;
        }
        match serde_json::from_str(&line) {
            Ok(answer) => return Some(answer),
            Err(err) => tracing::debug!("warm parent: unreadable answer {line:?}: {err}"),
        }
    }
}

/// Routes the parent's answers until it is gone; then every child it forked counts as
/// exited, so the supervisor takes over (their groups are killed and they start again).
async fn answers(
    mut lines: BufReader<OwnedReadHalf>,
    pending: Pending,
    exits: Exits,
    alive: Arc<AtomicBool>,
) {
    while let Some(answer) = read_answer(&mut lines).await {
        match answer {
            Answer::Forked { forked } => {
                let (tx, rx) = oneshot::channel();
                exits.lock().insert(forked, tx);
                if let Some(waiting) = pending.lock().take() {
                    let _ = waiting.send((forked, rx));
                }
            }
            Answer::Exit { exit, code, signal } => {
                if let Some(tx) = exits.lock().remove(&exit) {
                    let _ = tx.send(ExitInfo { code, signal });
                }
            }
            Answer::Ready { .. } | Answer::Refused { .. } => {}
        }
    }
    alive.store(false, Ordering::Release);
    exits.lock().clear();
    pending.lock().take();
}

/// The host pid of the process whose pid is `inner` in the pid namespace of host process
/// `member` (a container's process).
fn host_pid(member: u32, inner: u32) -> Option<u32> {
    let namespace = std::fs::read_link(format!("/proc/{member}/ns/pid")).ok()?;
    std::fs::read_dir("/proc")
        .ok()?
        .filter_map(|e| e.ok()?.file_name().to_str()?.parse::<u32>().ok())
        .find(|pid| {
            let same =
                std::fs::read_link(format!("/proc/{pid}/ns/pid")).is_ok_and(|ns| ns == namespace);
            same && std::fs::read_to_string(format!("/proc/{pid}/status")).is_ok_and(|status| {
                status
                    .lines()
                    .find_map(|l| l.strip_prefix("NSpid:"))
                    .and_then(|ids| ids.split_whitespace().last()?.parse().ok())
                    == Some(inner)
            })
        })
}

/// A forked child's group, and the child itself for the instant before it has made the
/// group its own (the parent and the child both call setpgid, but signals may come first).
struct ForkedSignaller(GroupSignaller, u32);

impl Signaller for ForkedSignaller {
    fn terminate(&self) {
        self.0.terminate();
        let _ = kill(Pid::from_raw(self.1 as i32), Signal::SIGTERM);
    }
    fn kill(&self) {
        self.0.kill();
        let _ = kill(Pid::from_raw(self.1 as i32), Signal::SIGKILL);
    }
    fn group_alive(&self) -> bool {
        self.0.group_alive() || process_alive(self.1)
    }
}
