//! Reloading an app when its files change: one driver task per app, so a change during a
//! reload queues exactly one more reload (never a storm), and the time from the first event to
//! the app being ready again is printed and kept.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use serde::{Deserialize, Serialize};
use tokio::sync::{mpsc, watch};
use tokio_util::sync::CancellationToken;

use crate::docker::ContainerPlan;
use crate::manifest::{AppId, AppSpec, ImageSource, ReloadMode};
use crate::runtime::LaunchSpec;
use crate::supervisor::{AppHandle, AppState, UnitSpec};
use crate::sync::Mutex;
use crate::warm::WarmPool;
use crate::watch::{Change, is_dependency_file};

/// How long a reload waits for the app to be ready again before calling it failed.
const READY_LIMIT: Duration = Duration::from_secs(120);
/// Reload times kept per app.
const KEEP: usize = 200;

/// One app's reloads, as the control API shows them.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct ReloadView {
    pub reloads: u32,
    pub last_ms: Option<u64>,
    pub median_ms: Option<u64>,
    /// Batches of changes the watcher sent to this app.
    #[serde(default)]
    pub changes: u64,
    /// Whether a change is being handled or waits to be.
    #[serde(default)]
    pub busy: bool,
}

/// One app's reload times and counters.
#[derive(Default)]
pub struct ReloadStats(Mutex<Counters>);

#[derive(Default)]
struct Counters {
    times: Vec<u64>,
    changes: u64,
    handled: u64,
}

impl ReloadStats {
    pub fn record(&self, took: Duration) {
        let mut counters = self.0.lock();
        counters.times.push(took.as_millis() as u64);
        if counters.times.len() > KEEP {
            counters.times.remove(0);
        }
    }

    /// A batch of changes was handed to the driver.
    pub fn changed(&self) {
        self.0.lock().changes += 1;
    }

    /// The driver is done with `batches` batches.
    fn handled(&self, batches: u64) {
        self.0.lock().handled += batches;
    }

    pub fn view(&self) -> ReloadView {
        let counters = self.0.lock();
        let mut sorted = counters.times.clone();
        sorted.sort_unstable();
        ReloadView {
            reloads: counters.times.len() as u32,
            last_ms: counters.times.last().copied(),
            median_ms: sorted.get(sorted.len() / 2).copied(),
            changes: counters.changes,
            busy: counters.handled < counters.changes,
        }
    }
}

/// Makes an app's unit from its spec (the environment is read again: `.env` may have changed).
pub type UnitMaker = Arc<dyn Fn(&AppSpec) -> UnitSpec + Send + Sync>;

/// One app's reload driver.
pub struct Driver {
    /// The app's spec, as the last daca.yaml edit left it.
    pub spec: watch::Receiver<Arc<AppSpec>>,
    pub handle: AppHandle,
    pub make_unit: UnitMaker,
    pub stats: Arc<ReloadStats>,
    pub events: Arc<crate::events::EventLog>,
    /// The engine, when apps run in containers.
    pub containers: Option<Arc<ContainerPlan>>,
    /// Where to ask for the app's dependents to be restarted (`restart_dependents`).
    pub dependents: mpsc::UnboundedSender<AppId>,
    /// The warm parents (told when dependencies change or a fork is not ready in time).
    pub warm: Option<Arc<WarmPool>>,
    /// The app's last cold start time (see `usual_start`); start with `Default::default()`.
    pub usual: Mutex<Option<Duration>>,
}

impl Driver {
    /// Handles changes until `token` is cancelled.
    pub async fn run(self, mut changes: mpsc::UnboundedReceiver<Change>, token: CancellationToken) {
        loop {
            let first = tokio::select! {
                _ = token.cancelled() => return,
                first = changes.recv() => match first {
                    Some(first) => first,
                    None => return,
                },
            };
            let (mut batch, mut batches) = (first, 1);
            loop {
                tokio::select! {
                    _ = token.cancelled() => return,
                    () = self.reload(&batch) => {}
                }
                self.stats.handled(batches);
                // Whatever arrived meanwhile becomes one more reload.
                let mut more: Option<Change> = None;
                batches = 0;
                while let Ok(next) = changes.try_recv() {
                    batches += 1;
                    more = Some(match more {
                        None => next,
                        Some(mut m) => {
                            m.paths.extend(next.paths);
                            m
                        }
                    });
                }
                match more {
                    Some(next) => batch = next,
                    None => break,
                }
            }
        }
    }

    async fn reload(&self, change: &Change) {
        let app = self.spec.borrow().clone();
        let name = app.id.as_str();
        let what = describe(&change.paths, &app.dir);
        if app.reload.mode == ReloadMode::None {
            tracing::info!("{name}: {what} changed (reload: none, the app reloads itself)");
            return;
        }
        let status = self.handle.status();
        if status.state == AppState::Pending && status.pid.is_none() {
            return; // not started yet: it will start with the new files anyway
        }
        if !self.prepare(&app, change).await {
            return;
        }
        tracing::info!("{name}: {what} changed, restarting");
        // What a warm parent imported (or its image) may be stale.
        let stale = dependency_changed(change)
            .or_else(|| touches_image(&app, change).then(|| "the Dockerfile".to_string()));
        if let (Some(warm), Some(stale)) = (&self.warm, stale) {
            warm.invalidate(name, format!("{stale} changed"));
        }
        // The environment is read again, so an edited `.env` is what the new process gets.
        self.handle.update((self.make_unit)(&app)).await;
        let usual = self.usual_start();
        self.handle.reload(app.reload.grace).await;
        let ready = self.wait_ready(name, usual).await;
        let took = change.first_seen.elapsed();
        if ready {
            self.stats.record(took);
            let how = match (self.handle.status().start, app.reload.mode) {
                (Some(start), _) => start,
                (None, ReloadMode::Cold) => "cold: reload: cold".into(),
                (None, _) => "change → ready".into(),
            };
            tracing::info!("{name} reloaded in {} ms ({how})", took.as_millis());
            let message = format!("reloaded ({what} changed)");
            self.events
                .push("reload", Some(name), message, Some(took.as_millis() as u64));
        } else {
            let message = format!("not ready after the reload ({what} changed)");
            self.events.push("reload", Some(name), message, None);
            tracing::warn!(
                "{name}: not ready after the reload ({}); fix the code and save again",
                self.handle.status().state.as_str()
            );
        }
        if app.reload.restart_dependents {
            let _ = self.dependents.send(app.id.clone());
        }
    }

    /// How long a cold start of the app takes (the last one seen), the time a warm fork gets
    /// to be ready before warm mode is called untrustworthy.
    fn usual_start(&self) -> Duration {
        let status = self.handle.status();
        let cold = status
            .start
            .as_deref()
            .is_some_and(|s| s.starts_with("cold"));
        if let (true, Some(ms)) = (cold, status.ready_after_ms) {
            *self.usual.lock() = Some(Duration::from_millis(ms));
        }
        self.usual
            .lock()
            .unwrap_or(Duration::from_secs(10))
            .max(Duration::from_secs(1))
    }

    /// Waits for the new process; a warm one that is not ready within `usual` is replaced by
    /// a cold start, and warm mode stays off for the app until its dependencies change.
    async fn wait_ready(&self, name: &str, usual: Duration) -> bool {
        let warm = self.handle.status().start.as_deref() == Some("warm");
        let Some(pool) = self.warm.as_ref().filter(|_| warm) else {
            return self.handle.wait_ready(READY_LIMIT).await;
        };
        if self.handle.wait_ready(usual).await {
            return true;
        }
        pool.turn_off(
            name,
            format!(
                "a forked process was not ready within {} ms",
                usual.as_millis()
            ),
        );
        self.handle.reload(Duration::ZERO).await;
        self.handle.wait_ready(READY_LIMIT).await
    }

    /// What has to happen before the restart: a new image, or `setup:`. False when it
    /// failed, and then the app keeps running what it runs.
    async fn prepare(&self, app: &AppSpec, change: &Change) -> bool {
        let container = self.containers.as_deref().filter(|plan| plan.runs(app));
        if let Some(plan) = container
            && matches!(app.process.image, Some(ImageSource::Build(_)))
        {
            // A container reload restarts the process over the mounted source; only the
            // Dockerfile and the dependency files (installed by it) need a new image.
            return match touches_image(app, change) {
                true => rebuild(app, plan).await,
                false => in_container(plan, app, change).await,
            };
        }
        if let Some(setup) = &app.reload.setup
            && change.paths.iter().any(|p| is_dependency_file(p))
            && !self
                .run_command(app, setup, "dependencies changed", "setup")
                .await
        {
            return false;
        }
        if let Some(plan) = container {
            return in_container(plan, app, change).await;
        }
        for step in crate::watch::on_change_due(app, change) {
            if !self
                .run_command(app, &step.command, "changed", "on_change")
                .await
            {
                return false;
            }
        }
        true
    }

    /// Runs `command` (of the manifest's `field`) in the app's folder with the app's
    /// environment; false when it failed.
    async fn run_command(&self, app: &AppSpec, command: &[String], why: &str, field: &str) -> bool {
        let name = app.id.as_str();
        tracing::info!("{name}: {why}, running `{}`", command.join(" "));
        let mut process = tokio::process::Command::new(&command[0]);
        process
            .args(&command[1..])
            .current_dir(&app.dir)
            .kill_on_drop(true);
        if let LaunchSpec::Process(launch) = &self.handle.spec().launch {
            process.env_clear().envs(launch.env.iter().cloned());
        }
        match process.output().await {
            Ok(output) if output.status.success() => true,
            Ok(output) => {
                let stderr = String::from_utf8_lossy(&output.stderr);
                tracing::error!(
                    "{name}: `{}` failed ({}); the app keeps running the old code\n{}",
                    command.join(" "),
                    output.status,
                    stderr.trim_end()
                );
                false
            }
            Err(err) => {
                tracing::error!(
                    "{name}: cannot run `{}`: {err}\n  hint: fix `{field}:` in daca.yaml",
                    command.join(" ")
                );
                false
            }
        }
    }
}

/// Runs the `on_change:` steps a change triggers inside the app's running container (its
/// restart keeps what they changed); false when one failed.
async fn in_container(plan: &ContainerPlan, app: &AppSpec, change: &Change) -> bool {
    let name = app.id.as_str();
    for step in crate::watch::on_change_due(app, change) {
        let shown = step.command.join(" ");
        tracing::info!("{name}: changed, running `{shown}` in its container");
        match plan.exec(app, &step.command).await {
            Ok(ran) if ran.code == Some(0) => {}
            Ok(ran) => {
                tracing::error!(
                    "{name}: `{shown}` failed in its container (exit {}); the app keeps running the old code\n{}",
                    ran.code.map_or("unknown".into(), |c| c.to_string()),
                    ran.output.trim_end()
                );
                return false;
            }
            // Not running (it crashed, say): the restart is what it needs.
            Err(err) => tracing::warn!("{name}: cannot run `{shown}` in its container: {err}"),
        }
    }
    true
}

/// The name of a changed dependency file, if one changed.
fn dependency_changed(change: &Change) -> Option<String> {
    let path = change.paths.iter().find(|p| is_dependency_file(p))?;
    Some(path.file_name()?.to_string_lossy().into_owned())
}

fn touches_image(app: &AppSpec, change: &Change) -> bool {
    let Some(ImageSource::Build(build)) = &app.process.image else {
        return false;
    };
    let dockerfile = crate::watch::normalize(&build.dockerfile_path());
    change
        .paths
        .iter()
        .any(|p| is_dependency_file(p) || crate::watch::normalize(p) == dockerfile)
}

/// Builds the image again (the engine's cache keeps it quick); false when it failed, and
/// then the app keeps running the old image.
async fn rebuild(app: &AppSpec, builder: &ContainerPlan) -> bool {
    let name = app.id.as_str();
    tracing::info!("{name}: the Dockerfile or dependencies changed, building the image");
    let started = std::time::Instant::now();
    match builder.prepare(app).await {
        Ok(id) => {
            let short: String = id.trim_start_matches("sha256:").chars().take(12).collect();
            tracing::info!(
                "{name}: built {short} in {} ms",
                started.elapsed().as_millis()
            );
            true
        }
        Err(err) => {
            tracing::error!("{err}\n  {name} keeps running the old image");
            false
        }
    }
}

/// `main.py`, or `main.py and 2 more`, relative to the app's folder.
fn describe(paths: &[PathBuf], root: &std::path::Path) -> String {
    // Editors' temp files are gone by now; name what is there.
    let existing: Vec<&PathBuf> = paths.iter().filter(|p| p.exists()).collect();
    let paths: Vec<&PathBuf> = if existing.is_empty() {
        paths.iter().collect()
    } else {
        existing
    };
    let root = crate::watch::normalize(root);
    let first = paths
        .first()
        .map(|p| p.strip_prefix(&root).unwrap_or(p).display().to_string())
        .unwrap_or_default();
    match paths.len() {
        0 | 1 => first,
        n => format!("{first} and {} more", n - 1),
    }
}
