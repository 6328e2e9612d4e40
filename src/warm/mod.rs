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
mod job;
mod parent;

pub use job::Job;

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use tokio::sync::oneshot;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use self::command::PythonCommand;
use self::parent::Parent;
use crate::logs::LogBus;
use crate::runtime::{LaunchError, LaunchSpec, Launched, Start};
use crate::sync::Mutex;

const SCRIPT: &str = include_str!("parent.py");

/// How long the module report must stay unchanged, once the app is ready, before a parent
/// is built from it (the app reports every 100 ms while it changes).
const SETTLED: Duration = Duration::from_millis(500);
/// How long a learning start may take to be ready.
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
    /// The builds in progress (see `close`).
    builds: TaskTracker,
    token: CancellationToken,
}

impl WarmPool {
    /// A pool whose files live in a fresh folder under the system's temp dir (socket paths
    /// must be short). Its parents are killed when `token` is cancelled or at [`close`].
    ///
    /// [`close`]: WarmPool::close
    pub fn new(tasks: TaskTracker, token: CancellationToken) -> std::io::Result<Arc<WarmPool>> {
        let token = token.child_token();
        let dir = std::env::temp_dir().join(format!("daca-warm-{}", std::process::id()));
        std::fs::create_dir_all(&dir)?;
        std::fs::write(dir.join("parent.py"), SCRIPT)?;
        let pool = Arc::new(WarmPool {
            dir,
            slots: Mutex::default(),
            tasks: tasks.clone(),
            builds: TaskTracker::new(),
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

    /// Stops every build and kills every parent (once the apps have stopped); returns when
    /// no build is left.
    pub async fn close(&self) {
        self.token.cancel();
        self.builds.close();
        self.builds.wait().await;
        self.slots.lock().clear();
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
        job: Job,
        logs: &Arc<LogBus>,
    ) -> Result<Launched, LaunchError> {
        let command = match job.command().await {
            Ok(command) => command,
            Err(why) => return cold(job.plain(name, logs).await, why),
        };
        let (parent, why) = self.pick(name, &job.spec());
        if let Some(parent) = parent {
            let cwd = match &job {
                Job::Process(launch) => Some(launch.dir.as_path()),
                Job::Container(..) => None, // the parent's: the image's WORKDIR
            };
            match parent.fork(cwd, &command.args).await {
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
                    return self.learn(name, job, &command, logs, why).await;
                }
            }
        }
        match why {
            Why::Off(why) => cold(job.plain(name, logs).await, why),
            Why::Cold(why) => self.learn(name, job, &command, logs, why).await,
            Why::Building(why) => {
                let files = job.files(&self.dir, name);
                cold(
                    job.reporting(name, &command, &files, &self.dir, logs).await,
                    why,
                )
            }
        }
    }

    /// The parent to fork from, or why there is none.
    fn pick(&self, name: &str, spec: &LaunchSpec) -> (Option<Arc<Parent>>, Why) {
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
    async fn learn(
        self: &Arc<Self>,
        name: &str,
        job: Job,
        command: &PythonCommand,
        logs: &Arc<LogBus>,
        why: String,
    ) -> Result<Launched, LaunchError> {
        let _ = std::fs::remove_file(self.report_path(name));
        let files = job.files(&self.dir, name);
        let launched = job.reporting(name, command, &files, &self.dir, logs).await;
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
            let (pool, name, command, logs) = (
                self.clone(),
                name.to_string(),
                command.clone(),
                logs.clone(),
            );
            self.builds.spawn(async move {
                pool.build(&name, job, &command, &logs, (build, is_ready))
                    .await;
            });
        }
        cold(launched, why)
    }

    /// Waits for the learning start to be ready and its report to settle, then starts a
    /// parent from it.
    async fn build(
        &self,
        name: &str,
        job: Job,
        command: &PythonCommand,
        logs: &Arc<LogBus>,
        (build, is_ready): (u64, oneshot::Receiver<()>),
    ) {
        // Waiting is cut short by `close`; starting a parent is not (a container being
        // created when the run's containers are swept would be missed), it is killed after.
        let report = self.report_path(name);
        let waited = tokio::select! {
            _ = self.token.cancelled() => return,
            waited = wait_report(is_ready, &report) => waited,
        };
        if let Err(why) = waited {
            if self.end_build(name, build, None)
                && let Some(why) = why
            {
                self.turn_off(name, why);
            }
            return;
        }
        // A socket per build: an older build still waiting for its parent must not get
        // this one's connection.
        let socket_name = format!("{name}-{build}.sock");
        let socket = self.dir.join(&socket_name).display().to_string();
        let started = async {
            let listener = parent::listen(&socket)?;
            let mut files = job.files(&self.dir, name);
            files.socket = files.socket.replace(&format!("{name}.sock"), &socket_name);
            let launched = job.parent(name, command, &files, &self.dir, logs).await?;
            Parent::connect(
                listener,
                &socket,
                launched,
                job.spec(),
                &self.tasks,
                &self.token,
            )
            .await
        };
        match started.await {
            Ok(parent) => {
                let (count, ms) = parent.preloaded;
                tracing::info!("{name}: warm parent ready ({count} modules imported in {ms} ms)");
                self.end_build(name, build, Some(Arc::new(parent)));
            }
            // Only a build that is still the app's may turn warm mode off.
            Err(why) if self.end_build(name, build, None) => self.turn_off(name, why),
            Err(_) => {}
        }
    }

    /// Ends build `build`; false when a newer start replaced it (its parent, if any, dies).
    fn end_build(&self, name: &str, build: u64, parent: Option<Arc<Parent>>) -> bool {
        let mut slots = self.slots.lock();
        let Some(slot) = slots.get_mut(name).filter(|s| s.building == Some(build)) else {
            return false;
        };
        slot.building = None;
        if slot.off.is_none() && !self.token.is_cancelled() {
            slot.parent = parent;
        }
        true
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

/// Waits until the learning start is ready and its report has settled; `Err(Some(why))`
/// when warm mode is to be off, `Err(None)` when the start never became ready.
async fn wait_report(is_ready: oneshot::Receiver<()>, report: &Path) -> Result<(), Option<String>> {
    let ready = tokio::time::timeout(REPORT_LIMIT, is_ready).await;
    if !matches!(ready, Ok(Ok(()))) {
        return Err(None); // the next start learns again
    }
    match settled(report).await {
        true => Ok(()),
        false => Err(Some("its start reported no imports".into())),
    }
}

/// Whether `report` appeared and then stayed unchanged for [`SETTLED`].
async fn settled(report: &Path) -> bool {
    // The app reports within 100 ms of each import; a ready app has long since.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
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
