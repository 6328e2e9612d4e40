//! Reloading an app when its files change: one driver task per app, so a change during a
//! reload queues exactly one more reload (never a storm), and the time from the first event to
//! the app being ready again is printed and kept.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde::{Deserialize, Serialize};
use tokio::sync::mpsc;

use crate::docker::ContainerPlan;
use crate::manifest::{AppSpec, ImageSource, ReloadMode};
use crate::supervisor::{AppState, Supervisor};
use crate::watch::{Change, is_dependency_file};

/// How long a reload waits for the app to be ready again before calling it failed.
const READY_LIMIT: Duration = Duration::from_secs(120);

/// Reload times of one app, as the control API shows them.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct ReloadView {
    pub reloads: u32,
    pub last_ms: Option<u64>,
    pub median_ms: Option<u64>,
}

/// Every app's reload times.
#[derive(Default)]
pub struct ReloadStats(Mutex<BTreeMap<String, Vec<u64>>>);

impl ReloadStats {
    pub fn record(&self, app: &str, took: Duration) {
        let mut all = self.0.lock().unwrap_or_else(|p| p.into_inner());
        let times = all.entry(app.to_string()).or_default();
        times.push(took.as_millis() as u64);
        if times.len() > 200 {
            times.remove(0);
        }
    }

    pub fn view(&self, app: &str) -> ReloadView {
        let all = self.0.lock().unwrap_or_else(|p| p.into_inner());
        let Some(times) = all.get(app).filter(|t| !t.is_empty()) else {
            return ReloadView::default();
        };
        let mut sorted = times.clone();
        sorted.sort_unstable();
        ReloadView {
            reloads: times.len() as u32,
            last_ms: times.last().copied(),
            median_ms: sorted.get(sorted.len() / 2).copied(),
        }
    }
}

/// Starts one driver per app; returns where to send each app's changes.
pub fn drivers(
    apps: &[AppSpec],
    supervisor: Arc<Supervisor>,
    stats: Arc<ReloadStats>,
    containers: Option<Arc<ContainerPlan>>,
    events: Arc<crate::events::EventLog>,
) -> BTreeMap<String, mpsc::UnboundedSender<Change>> {
    let mut senders = BTreeMap::new();
    for app in apps {
        let (tx, rx) = mpsc::unbounded_channel();
        let dependents: Vec<String> = apps
            .iter()
            .filter(|other| other.supervision.depends_on.contains(&app.id))
            .map(|other| other.id.to_string())
            .collect();
        let driver = Driver {
            app: app.clone(),
            dependents,
            supervisor: supervisor.clone(),
            stats: stats.clone(),
            events: events.clone(),
            builder: containers
                .clone()
                .filter(|plan| plan.runs(app) && matches!(app.process.image, Some(ImageSource::Build(_)))),
        };
        tokio::spawn(driver.run(rx));
        senders.insert(app.id.to_string(), tx);
    }
    senders
}

struct Driver {
    app: AppSpec,
    dependents: Vec<String>,
    supervisor: Arc<Supervisor>,
    stats: Arc<ReloadStats>,
    events: Arc<crate::events::EventLog>,
    /// The engine, when the app's image is built from its Dockerfile.
    builder: Option<Arc<ContainerPlan>>,
}

impl Driver {
    async fn run(self, mut changes: mpsc::UnboundedReceiver<Change>) {
        while let Some(first) = changes.recv().await {
            let mut batch = first;
            loop {
                self.reload(&batch).await;
                // Whatever arrived meanwhile becomes one more reload.
                let mut more: Option<Change> = None;
                while let Ok(next) = changes.try_recv() {
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
        let name = self.app.id.as_str();
        let what = describe(&change.paths, &self.app.dir);
        if self.app.reload.mode == ReloadMode::None {
            tracing::info!("{name}: {what} changed (reload: none, the app reloads itself)");
            return;
        }
        let Some(handle) = self.supervisor.handle(name) else {
            return;
        };
        let status = handle.status();
        if status.state == AppState::Pending && status.pid.is_none() {
            return; // not started yet: it will start with the new files anyway
        }
        if let Some(builder) = &self.builder {
            // A container reload restarts the process over the mounted source; only the
            // Dockerfile and the dependency files (installed by it) need a new image.
            if self.touches_image(change) && !self.rebuild(builder).await {
                return;
            }
        } else if change.paths.iter().any(|p| is_dependency_file(p))
            && let Some(setup) = &self.app.reload.setup
            && !self.setup(setup).await
        {
            return;
        }
        tracing::info!("{name}: {what} changed, restarting");
        handle.reload(self.app.reload.grace).await;
        let ready = handle.wait_ready(READY_LIMIT).await;
        let took = change.first_seen.elapsed();
        if ready {
            self.stats.record(name, took);
            tracing::info!(
                "{name} reloaded in {} ms (change → ready)",
                took.as_millis()
            );
            let message = format!("reloaded ({what} changed)");
            self.events
                .push("reload", Some(name), message, Some(took.as_millis() as u64));
        } else {
            let message = format!("not ready after the reload ({what} changed)");
            self.events.push("reload", Some(name), message, None);
            tracing::warn!(
                "{name}: not ready after the reload ({}); fix the code and save again",
                handle.status().state.as_str()
            );
        }
        for dependent in &self.dependents {
            if self.app.reload.restart_dependents
                && let Some(other) = self.supervisor.handle(dependent)
            {
                tracing::info!("{dependent}: restarting because {name} reloaded");
                other.restart().await;
            }
        }
    }

    fn touches_image(&self, change: &Change) -> bool {
        let Some(ImageSource::Build(build)) = &self.app.process.image else {
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
    async fn rebuild(&self, builder: &ContainerPlan) -> bool {
        let name = self.app.id.as_str();
        tracing::info!("{name}: the Dockerfile or dependencies changed, building the image");
        let started = std::time::Instant::now();
        match builder.prepare(&self.app).await {
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

    /// Runs `setup:` in the app's folder with the app's environment; false when it failed.
    async fn setup(&self, command: &[String]) -> bool {
        let name = self.app.id.as_str();
        tracing::info!(
            "{name}: dependencies changed, running `{}`",
            command.join(" ")
        );
        let spec = self.supervisor.spec(name);
        let mut process = tokio::process::Command::new(&command[0]);
        process
            .args(&command[1..])
            .current_dir(&self.app.dir)
            .kill_on_drop(true);
        if let Some(spec) = spec {
            process.env_clear().envs(spec.launch.env.iter().cloned());
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
                    "{name}: cannot run `{}`: {err}\n  hint: fix `setup:` in daca.yaml",
                    command.join(" ")
                );
                false
            }
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
