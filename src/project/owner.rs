//! The owner of a running project: one task that alone holds the registry of apps, the
//! manifest as applied, the port picker and the watcher. Everything that changes the project
//! (a saved file, an edited daca.yaml or resources folder, a reload that restarts dependents,
//! the stop) arrives here and is handled in order; after each change the owner publishes a new
//! [`Snapshot`] for the readers.

use std::collections::BTreeMap;
use std::sync::Arc;

use tokio::sync::{mpsc, oneshot};

use super::app::{AppEntry, Listeners};
use super::reconcile::{self, Action};
use super::view::Snapshot;
use super::{Context, launch};
use crate::env::SidecarPorts;
use crate::error::Problem;
use crate::manifest::{AppId, AppSpec, Manifest};
use crate::ports::PortPicker;
use crate::reload::ReloadStats;
use crate::supervisor::AppHandle;
use crate::watch::{self, Change, Target};

/// What the project's handle asks of the owner.
pub(super) enum Command {
    /// Stop everything; the sender is told when it is done.
    Stop(oneshot::Sender<()>),
}

pub(super) struct Owner {
    pub ctx: Context,
    pub manifest: Manifest,
    pub apps: BTreeMap<AppId, AppEntry>,
    pub picker: PortPicker,
    pub redis: Option<AppHandle>,
    /// The managed PostgreSQL (`postgres:`), when daca runs one.
    pub postgres: Option<AppHandle>,
    pub component_error: Option<String>,
    /// Whether files are watched at all (`--no-watch` turns it off).
    pub watching: bool,
    pub watcher: Option<watch::Watch>,
    pub changes: Option<mpsc::Receiver<Change>>,
    pub publish: tokio::sync::watch::Sender<Arc<Snapshot>>,
    pub commands: mpsc::Receiver<Command>,
    pub dependents: mpsc::UnboundedReceiver<AppId>,
}

impl Owner {
    /// Handles changes until asked to stop, then stops everything.
    pub async fn run(mut self) {
        let done = loop {
            tokio::select! {
                command = self.commands.recv() => match command {
                    Some(Command::Stop(done)) => break Some(done),
                    None => break None,
                },
                Some(change) = next_change(&mut self.changes) => self.route(change).await,
                Some(id) = self.dependents.recv() => self.restart_dependents(&id).await,
            }
        };
        self.shutdown().await;
        if let Some(done) = done {
            let _ = done.send(());
        }
    }

    /// Publishes the registry: the readers' snapshot, and the sidecars' directory of apps.
    pub fn publish(&self) {
        let apps: Vec<_> = self
            .manifest
            .apps
            .iter()
            .filter_map(|app| self.apps.get(&app.id))
            .map(AppEntry::view)
            .collect();
        let channels = self.apps.values().map(|entry| entry.channel.clone());
        self.ctx.shared.set_apps(channels);
        let mut reach: BTreeMap<String, Vec<_>> = BTreeMap::new();
        for (id, entry) in &self.apps {
            reach.entry(id.to_string()).or_default().push(entry.reach());
            if let Some(app) = &entry.spec.instance_of {
                reach
                    .entry(app.to_string())
                    .or_default()
                    .push(entry.reach());
            }
        }
        *self.ctx.peers.write() = reach;
        self.publish.send_replace(Arc::new(Snapshot {
            apps,
            redis: self.redis.clone(),
            postgres: self.postgres.clone(),
            component_error: self.component_error.clone(),
            watching: self.watcher.is_some(),
        }));
    }

    /// Registers an app: its unit (not started), its sidecar (listening from now on) and
    /// what else runs for it. `ports` are kept from an earlier entry of the same app.
    pub async fn add_app(
        &mut self,
        app: &AppSpec,
        ports: Option<SidecarPorts>,
        reloads: Arc<ReloadStats>,
    ) -> Result<(), Problem> {
        let in_pod = self.ctx.in_pod(app);
        let listeners = Listeners::bind(&mut self.picker, app, ports, in_pod).await?;
        let peers = self.peers_of(app);
        let entry = AppEntry::open(&self.ctx, app.clone(), listeners, reloads, &peers).await?;
        // Pods made before it (it joined by a daca.yaml edit) learn its names.
        for other in self.apps.values() {
            other
                .add_peer(&self.ctx, app.id.as_str(), app.process.port)
                .await;
        }
        self.apps.insert(app.id.clone(), entry);
        self.publish();
        Ok(())
    }

    /// The names an app's pod resolves: every app of the project but itself.
    fn peers_of(&self, app: &AppSpec) -> Vec<(String, Option<u16>)> {
        self.manifest
            .apps
            .iter()
            .filter(|other| other.id != app.id)
            .map(|other| (other.id.to_string(), other.process.port))
            .collect()
    }

    /// Makes the pods of the apps that run as host processes in one, all at once.
    pub async fn make_pods_ahead(&self) {
        let plan = self.ctx.containers.as_deref();
        let apps: Vec<_> = self
            .manifest
            .apps
            .iter()
            .filter(|app| self.ctx.in_pod(app) && !plan.is_some_and(|p| p.runs(app)))
            .map(|app| (app, self.peers_of(app)))
            .collect();
        if !apps.is_empty() {
            super::pod::make_ahead(&self.ctx, &apps).await;
        }
    }

    /// Starts an app once Redis, PostgreSQL and its dependencies are ready.
    pub async fn start_app(&self, id: &AppId) {
        let Some(entry) = self.apps.get(id) else {
            return;
        };
        let mut dependencies: Vec<AppHandle> =
            self.redis.iter().chain(&self.postgres).cloned().collect();
        for dependency in &entry.spec.supervision.depends_on {
            dependencies.extend(self.apps.get(dependency).map(|d| d.handle.clone()));
        }
        entry.handle.start_after(dependencies).await;
    }

    /// Stops an app, its sidecar and everything else of it, and forgets it.
    async fn remove_app(&mut self, id: &AppId) -> Option<(SidecarPorts, Arc<ReloadStats>)> {
        let entry = self.apps.remove(id)?;
        entry.stop(&self.ctx).await;
        if let Some(warm) = &self.ctx.warm {
            warm.forget(id.as_str());
        }
        self.publish();
        let kept = (entry.ports, entry.reloads());
        entry.close().await;
        Some(kept)
    }

    /// Hands a batch of changes to its target; counted as routed once it has been handled
    /// (a daca.yaml edit applied), or handed to the app's reload driver.
    async fn route(&mut self, change: Change) {
        match &change.target {
            Target::Manifest => self.reconcile().await,
            Target::Resources => self.reload_components(),
            Target::App(id) => {
                if let Some(entry) = self.apps.get(id) {
                    entry.changed(change);
                }
            }
            Target::Step(name) => self.rerun_step(name),
        }
        self.ctx.parts.watch.routed();
    }

    /// Runs a step again, beside everything else (a long one holds nothing up); a failure is
    /// said and changes nothing that runs.
    fn rerun_step(&self, name: &str) {
        let Some(step) = self.manifest.steps.iter().find(|s| s.name == name).cloned() else {
            return;
        };
        let source = self.manifest.source_name();
        self.ctx.tasks.spawn(async move {
            if let Err(problem) = super::steps::run_one(&step, &source).await {
                tracing::error!("{problem}");
            }
        });
    }

    /// `restart_dependents`: the apps that depend on `id` are restarted after its reload.
    async fn restart_dependents(&self, id: &AppId) {
        for app in &self.manifest.apps {
            if app.supervision.depends_on.contains(id)
                && let Some(entry) = self.apps.get(&app.id)
            {
                tracing::info!("{}: restarting because {id} reloaded", app.id);
                entry.handle.restart().await;
            }
        }
    }

    /// Applies an edited daca.yaml; an invalid or unstartable edit changes nothing.
    pub async fn reconcile(&mut self) {
        let next = match crate::folder::load(&self.manifest.file) {
            Ok(next) => self.ctx.instances(next.manifest),
            Err(err) => return not_applied(&self.manifest, &err.to_string()),
        };
        let actions = reconcile::diff(&self.manifest, &next);
        if let Err(problem) = self.check_starts(&actions, &next) {
            return not_applied(&self.manifest, &problem.to_string());
        }
        let current = std::mem::replace(&mut self.manifest, next.clone());
        // Pods made from now on, and the hosts files rewritten for a new peer, have them.
        *self.ctx.aliases.write() = super::pod_names::aliases_of(&next);
        let mut kept: BTreeMap<AppId, (SidecarPorts, Arc<ReloadStats>)> = BTreeMap::new();
        let source = next.source_name();
        for action in actions {
            match action {
                Action::Unapplied(what) => tracing::warn!("{source}: {what}"),
                Action::Stop(id) => {
                    tracing::info!("{source}: stopping {id}");
                    if let Some(ports) = self.remove_app(&id).await {
                        kept.insert(id, ports);
                    }
                }
                Action::Start(id) => self.start_new(&current, &next, &id, kept.remove(&id)).await,
                Action::Supervise(id) | Action::Resize(id) | Action::Reconfigure(id) => {
                    self.update_app(&next, &id).await
                }
                Action::ReloadComponents => self.reload_components(),
                Action::Rewatch => self.rewatch(),
            }
        }
        self.publish();
    }

    /// What would stop a started app from starting, checked before anything stops.
    fn check_starts(&self, actions: &[Action], next: &Manifest) -> Result<(), Problem> {
        let unused = SidecarPorts { http: 0, grpc: 0 };
        let mut problems = Vec::new();
        for action in actions {
            let Action::Start(id) = action else { continue };
            let Some(app) = next.app(id.as_str()) else {
                continue;
            };
            // An app in a pod has its port to itself (its host port is chosen).
            if !self.apps.contains_key(id) && !self.ctx.in_pod(app) {
                problems.extend(launch::check_port(app, &next.file).err());
            }
            let unit = launch::app_unit(app, unused, self.ctx.containers.as_deref(), None);
            problems.extend(launch::check_launch(app, &unit, &next.file).err());
        }
        match problems.is_empty() {
            true => Ok(()),
            false => Err(Problem::all(problems)),
        }
    }

    async fn start_new(
        &mut self,
        current: &Manifest,
        next: &Manifest,
        id: &AppId,
        kept: Option<(SidecarPorts, Arc<ReloadStats>)>,
    ) {
        let Some(app) = next.app(id.as_str()) else {
            return;
        };
        let verb = if current.app(id.as_str()).is_some() {
            "restarting"
        } else {
            "starting"
        };
        tracing::info!("{}: {verb} {id}", self.manifest.source_name());
        if let Some(plan) = self.ctx.containers.as_deref().filter(|p| p.runs(app))
            && let Err(err) = plan.prepare(app).await
        {
            return tracing::error!("{err}");
        }
        // The sidecar keeps its ports unless the edit changed them.
        let ports = kept.as_ref().map(|(ports, _)| *ports).filter(|ports| {
            // An app that had no sidecar (`dapr: false`) had no ports to keep.
            ports.http != 0
                && app.sidecar.http_port.is_none_or(|h| h == ports.http)
                && app.sidecar.grpc_port.is_none_or(|g| g == ports.grpc)
        });
        let reloads = kept.map(|(_, reloads)| reloads).unwrap_or_default();
        if let Err(err) = self.add_app(app, ports, reloads).await {
            return tracing::error!("{err}");
        }
        self.start_app(id).await;
    }

    async fn update_app(&mut self, next: &Manifest, id: &AppId) {
        if let (Some(entry), Some(app)) = (self.apps.get_mut(id), next.app(id.as_str())) {
            tracing::info!(
                "{}: {id}'s new settings apply without a restart",
                self.manifest.source_name()
            );
            entry.update(&self.ctx, app.clone()).await;
        }
    }

    /// Loads the resources folder again and swaps the components; subscribers restart on the
    /// new set. A bad file is reported and the running components stay.
    pub fn reload_components(&mut self) {
        let (loaded, notices) = match crate::sidecar::Components::load_with(
            self.manifest.resources.as_deref(),
            &self.manifest.root,
            &self.ctx.redis_plan,
            self.ctx.pg_plan.as_ref(),
        ) {
            Ok(loaded) => loaded,
            Err(err) => {
                tracing::error!("{err}\n  the components were not reloaded; the running ones stay");
                let message = format!("not reloaded: {err}");
                self.ctx
                    .parts
                    .events
                    .push("components", None, message, None);
                self.component_error = Some(err.to_string());
                return self.publish();
            }
        };
        for notice in notices {
            tracing::info!("{notice}");
        }
        self.component_error = None;
        self.ctx.shared.set_components(loaded);
        for entry in self.apps.values_mut() {
            entry.subscribe(&self.ctx);
        }
        let from = self
            .manifest
            .resources
            .as_ref()
            .map(|r| r.display().to_string());
        let message = format!("components reloaded from {}", from.unwrap_or_default());
        tracing::info!("{message}");
        self.ctx
            .parts
            .events
            .push("components", None, message, None);
        self.publish();
    }

    /// Watches what the current manifest names; replaces an earlier watch.
    pub fn rewatch(&mut self) {
        if !self.watching {
            return;
        }
        self.watcher = None; // its task ends before the new one starts watching
        let targets = watch::targets(&self.manifest, &watch::own_outputs());
        let stats = self.ctx.parts.watch.clone();
        match watch::start(targets, stats, &self.ctx.token, &self.ctx.tasks) {
            Ok((watcher, changes)) => {
                tracing::debug!("watching {} folder(s)", watcher.folders());
                self.watcher = Some(watcher);
                self.changes = Some(changes);
            }
            Err(problem) => tracing::error!("{problem}"),
        }
        self.publish();
    }

    /// Stops watching, stops every app (dependents first) and then Redis, and ends everything
    /// that ran for them.
    pub async fn shutdown(mut self) {
        self.watcher = None;
        self.changes = None;
        let mut order: Vec<AppId> = self
            .manifest
            .apps
            .iter()
            .rev()
            .filter(|app| self.apps.contains_key(&app.id))
            .map(|app| app.id.clone())
            .collect();
        // Apps that a failed reconcile left out of the manifest's order come last.
        for id in self.apps.keys() {
            if self.manifest.app(id.as_str()).is_none() {
                order.push(id.clone());
            }
        }
        for id in &order {
            if let Some(entry) = self.apps.get(id) {
                entry.stop(&self.ctx).await;
            }
        }
        let apps = std::mem::take(&mut self.apps);
        futures_util::future::join_all(apps.into_values().map(AppEntry::close)).await;
        // Before the run's containers are swept: no parent may start after that.
        if let Some(warm) = &self.ctx.warm {
            warm.close().await;
        }
        for server in self.redis.iter().chain(&self.postgres) {
            server.shutdown().await;
        }
        self.ctx.supervisor.closed().await;
    }
}

fn not_applied(manifest: &crate::manifest::Manifest, problem: &str) {
    let source = manifest.source_name();
    tracing::error!("{problem}\n  {source} was not applied; the running apps are unchanged");
}

async fn next_change(changes: &mut Option<mpsc::Receiver<Change>>) -> Option<Change> {
    match changes {
        Some(changes) => changes.recv().await,
        None => std::future::pending().await,
    }
}
