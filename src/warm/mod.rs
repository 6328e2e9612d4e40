//! Warm reloads for Python apps: a parent process per app that has imported the app's
//! libraries (never its own code) forks each new app process, so a reload costs a fork and
//! the import of the user's modules instead of a cold interpreter start.
//!
//! The pool alone owns the parents. A start is either **cold**: the app's command runs as
//! always, but through parent.py's `run` mode, which reports the modules the app imported
//! from outside its folder; once the report has settled a parent is built that imports exactly
//! those. Or **warm**: the ready parent forks. Warm is refused, with the reason on the reload
//! line, whenever it cannot be trusted (see [`WarmPool::launch`]).

pub mod command;
mod parent;

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use tokio::sync::oneshot;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use self::command::{PythonCommand, recognise};
use self::parent::{Files, Parent};
use crate::logs::LogBus;
use crate::runtime::process::{resolve_program, spawn};
use crate::runtime::{LaunchError, Launched, ProcessLaunch, Start};
use crate::sync::Mutex;

const SCRIPT: &str = include_str!("parent.py");

/// How long the module report must stay unchanged, once the app is ready, before a parent
/// is built from it (the app reports every 100 ms while it changes).
const SETTLED: Duration = Duration::from_millis(500);
/// How long a learning start may take to be ready and to report.
const REPORT_LIMIT: Duration = Duration::from_secs(300);

#[derive(Default)]
struct Slot {
    parent: Option<Arc<Parent>>,
    /// A parent is being built (its number, so that a stale build is thrown away).
    building: Option<u64>,
    builds: u64,
    /// Warm mode is off until the next dependency change, and why.
    off: Option<String>,
    /// Why the next start must be cold (said once).
    next_cold: Option<String>,
    /// Tells the pending build that the app it learns from is ready.
    ready: Option<oneshot::Sender<()>>,
}

/// The warm parents of a project's Python apps.
pub struct WarmPool {
    dir: PathBuf,
    slots: Mutex<HashMap<String, Slot>>,
    tasks: TaskTracker,
    token: CancellationToken,
}

impl WarmPool {
    /// A pool whose files live in a fresh folder under the system's temp dir (socket paths
    /// must be short). Its parents are killed when `token` is cancelled.
    pub fn new(tasks: TaskTracker, token: CancellationToken) -> std::io::Result<Arc<WarmPool>> {
        let dir = std::env::temp_dir().join(format!("daca-warm-{}", std::process::id()));
        std::fs::create_dir_all(&dir)?;
        std::fs::write(dir.join("parent.py"), SCRIPT)?;
        let pool = Arc::new(WarmPool {
            dir,
            slots: Mutex::default(),
            tasks: tasks.clone(),
            token: token.clone(),
        });
        let closing = pool.clone();
        tasks.spawn(async move {
            token.cancelled().await;
            closing.slots.lock().clear();
            let _ = std::fs::remove_dir_all(&closing.dir);
        });
        Ok(pool)
    }

    /// The next start of `name` is cold, and its parent is built again afterwards (a
    /// dependency file changed, so what the parent imported may be stale). Warm mode that was
    /// off is tried again.
    pub fn invalidate(&self, name: &str, reason: String) {
        let mut slots = self.slots.lock();
        let slot = slots.entry(name.to_string()).or_default();
        slot.off = None;
        slot.next_cold = Some(reason);
    }

    /// Turns warm mode off for `name` until the next [`invalidate`](Self::invalidate).
    pub fn turn_off(&self, name: &str, reason: String) {
        tracing::warn!(
            "{name}: warm reloads off: {reason}; reloads are cold until its dependencies change"
        );
        let mut slots = self.slots.lock();
        let slot = slots.entry(name.to_string()).or_default();
        slot.parent = None;
        slot.off = Some(reason);
    }

    /// `name`'s process is ready: its imports are done, so a pending build may read them.
    pub fn ready(&self, name: &str) {
        if let Some(ready) = self.slots.lock().get_mut(name).and_then(|s| s.ready.take()) {
            let _ = ready.send(());
        }
    }

    /// An app that is gone: its parent goes too.
    pub fn forget(&self, name: &str) {
        self.slots.lock().remove(name);
    }

    /// Starts `name`: forked from its warm parent when there is one that can be trusted,
    /// else cold (building a parent for the next start).
    pub async fn launch(
        self: &Arc<Self>,
        name: &str,
        spec: &ProcessLaunch,
        logs: &Arc<LogBus>,
    ) -> Result<Launched, LaunchError> {
        let mut command_line = vec![spec.program.clone()];
        command_line.extend(spec.args.iter().cloned());
        let command = match recognise(&command_line, &spec.dir, |script| shebang(spec, script)) {
            Ok(command) => command,
            Err(why) => return cold(spawn(name, spec, logs), why),
        };
        let (parent, why) = self.pick(name, spec);
        if let Some(parent) = parent {
            match parent.fork(spec, &command.args).await {
                Ok(mut launched) => {
                    launched.start = Some(Start::Warm);
                    return Ok(launched);
                }
                Err(why) => {
                    self.slots
                        .lock()
                        .entry(name.to_string())
                        .or_default()
                        .parent = None;
                    return self.learn(name, spec, &command, logs, why);
                }
            }
        }
        match why {
            Why::Off(why) => cold(spawn(name, spec, logs), why),
            Why::Cold(why) => self.learn(name, spec, &command, logs, why),
            Why::Building(why) => cold(self.run_reporting(name, spec, &command, logs), why),
        }
    }

    /// The parent to fork from, or why there is none.
    fn pick(&self, name: &str, spec: &ProcessLaunch) -> (Option<Arc<Parent>>, Why) {
        let mut slots = self.slots.lock();
        let slot = slots.entry(name.to_string()).or_default();
        if let Some(off) = &slot.off {
            return (None, Why::Off(off.clone()));
        }
        if let Some(why) = slot.next_cold.take() {
            slot.parent = None;
            slot.building = None;
            return (None, Why::Cold(why));
        }
        let why = match slot.parent.take() {
            Some(parent) if !parent.alive() => "the warm parent exited".to_string(),
            Some(parent) if parent.launch != *spec => {
                "the command or its environment changed".into()
            }
            Some(parent) => {
                slot.parent = Some(parent.clone());
                return (Some(parent), Why::Cold(String::new()));
            }
            None if slot.building.is_some() => {
                return (
                    None,
                    Why::Building("the warm parent is still importing".into()),
                );
            }
            None if slot.builds == 0 => "first start".into(),
            None => "no warm parent".into(),
        };
        (None, Why::Cold(why))
    }

    /// A cold start that reports its modules, and a parent built from the report.
    fn learn(
        self: &Arc<Self>,
        name: &str,
        spec: &ProcessLaunch,
        command: &PythonCommand,
        logs: &Arc<LogBus>,
        why: String,
    ) -> Result<Launched, LaunchError> {
        let report = self.report_path(name);
        let _ = std::fs::remove_file(&report);
        let launched = self.run_reporting(name, spec, command, logs);
        if launched.is_ok() {
            let (ready, is_ready) = oneshot::channel();
            let build = {
                let mut slots = self.slots.lock();
                let slot = slots.entry(name.to_string()).or_default();
                slot.builds += 1;
                slot.building = Some(slot.builds);
                slot.ready = Some(ready);
                slot.builds
            };
            let (pool, name, spec, command, logs) = (
                self.clone(),
                name.to_string(),
                spec.clone(),
                command.clone(),
                logs.clone(),
            );
            let token = self.token.clone();
            self.tasks.spawn(async move {
                tokio::select! {
                    _ = token.cancelled() => {}
                    _ = pool.build(&name, &spec, &command, &logs, build, is_ready) => {}
                }
            });
        }
        cold(launched, why)
    }

    /// The app's command run through parent.py's `run` mode (same interpreter, same server).
    fn run_reporting(
        &self,
        name: &str,
        spec: &ProcessLaunch,
        command: &PythonCommand,
        logs: &Arc<LogBus>,
    ) -> Result<Launched, LaunchError> {
        let target = serde_json::to_string(&command.target).unwrap_or_default();
        let mut args = command.interpreter[1..].to_vec();
        args.extend([
            self.dir.join("parent.py").display().to_string(),
            "run".into(),
            target,
            self.report_path(name).display().to_string(),
        ]);
        args.extend(command.args.iter().cloned());
        let reporting = ProcessLaunch {
            program: command.interpreter[0].clone(),
            args,
            ..spec.clone()
        };
        spawn(name, &reporting, logs)
    }

    /// Waits for the report to settle, then starts a parent from it.
    async fn build(
        &self,
        name: &str,
        spec: &ProcessLaunch,
        command: &PythonCommand,
        logs: &Arc<LogBus>,
        build: u64,
        is_ready: oneshot::Receiver<()>,
    ) {
        let report = self.report_path(name);
        let ready = tokio::time::timeout(REPORT_LIMIT, is_ready).await;
        if !matches!(ready, Ok(Ok(()))) || !settled(&report).await {
            self.end_build(name, build, None);
            return;
        }
        let socket = self.dir.join(format!("{name}.sock"));
        let files = Files {
            script: &self.dir.join("parent.py"),
            report: &report,
            socket: &socket,
        };
        match Parent::start(name, spec, command, files, logs, &self.tasks).await {
            Ok(parent) => {
                let (count, ms) = parent.preloaded;
                tracing::info!("{name}: warm parent ready ({count} modules imported in {ms} ms)");
                self.end_build(name, build, Some(Arc::new(parent)));
            }
            Err(why) => {
                self.end_build(name, build, None);
                self.turn_off(name, why);
            }
        }
    }

    fn end_build(&self, name: &str, build: u64, parent: Option<Arc<Parent>>) {
        let mut slots = self.slots.lock();
        let Some(slot) = slots.get_mut(name).filter(|s| s.building == Some(build)) else {
            return; // a newer start replaced this build; its parent (if any) dies here
        };
        slot.building = None;
        if slot.off.is_none() {
            slot.parent = parent;
        }
    }

    fn report_path(&self, name: &str) -> PathBuf {
        self.dir.join(format!("{name}.modules"))
    }
}

enum Why {
    /// Warm mode is off: a plain start.
    Off(String),
    /// A cold start that learns and builds a parent.
    Cold(String),
    /// A cold start while a parent is being built.
    Building(String),
}

fn cold(launched: Result<Launched, LaunchError>, why: String) -> Result<Launched, LaunchError> {
    launched.map(|mut launched| {
        launched.start = Some(Start::Cold(why));
        launched
    })
}

/// The interpreter a console script on the app's PATH names in its `#!` line.
fn shebang(spec: &ProcessLaunch, script: &str) -> Option<String> {
    let probe = ProcessLaunch {
        program: script.to_string(),
        ..spec.clone()
    };
    let path = resolve_program(&probe).ok()?;
    let text = std::fs::read(&path).ok()?;
    let first = text.split(|b| *b == b'\n').next()?;
    let line = std::str::from_utf8(first).ok()?.strip_prefix("#!")?.trim();
    let interpreter = line.split_whitespace().next()?;
    Path::new(interpreter)
        .file_name()
        .is_some_and(|n| n.to_string_lossy().starts_with("python"))
        .then(|| interpreter.to_string())
}

/// Whether `report` appeared and then stayed unchanged for [`SETTLED`].
async fn settled(report: &Path) -> bool {
    let deadline = tokio::time::Instant::now() + REPORT_LIMIT;
    let mut last: Option<(SystemTime, tokio::time::Instant)> = None;
    while tokio::time::Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(100)).await;
        let Ok(modified) = std::fs::metadata(report).and_then(|m| m.modified()) else {
            continue;
        };
        match last {
            Some((seen, since)) if seen == modified => {
                if since.elapsed() >= SETTLED {
                    return true;
                }
            }
            _ => last = Some((modified, tokio::time::Instant::now())),
        }
    }
    false
}
