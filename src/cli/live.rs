//! The running project as `daca up` keeps it: apps with their sidecars and subscribers, the
//! components, the file watcher. Editing `daca.yaml` reconciles it (apps added, removed or
//! changed are started, stopped or restarted; the others are untouched); editing the resources
//! folder swaps the components. An invalid edit is reported and changes nothing.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, RwLock};

use tokio::sync::mpsc;
use tokio::task::JoinHandle;

use super::units::{app_unit, check_program};
use super::user_error;
use crate::channel::AppChannel;
use crate::control::ControlState;
use crate::docker::ContainerPlan;
use crate::env::SidecarPorts;
use crate::manifest::{self, AppSpec, Manifest};
use crate::ports::{PortPicker, is_free};
use crate::pubsub::{self, delivery::Subscriber};
use crate::redis::RedisPlan;
use crate::reload::{self, ReloadStats};
use crate::sidecar::{Components, Shared, SidecarState};
use crate::supervisor::Supervisor;
use crate::watch::{self, Change};

/// What runs for one app besides its process.
pub(super) struct Bundle {
    ports: SidecarPorts,
    spec: AppSpec,
    sidecar: JoinHandle<()>,
    grpc: JoinHandle<()>,
    subscriber: JoinHandle<()>,
    pub(super) subscriptions: Arc<RwLock<Vec<pubsub::subscription::Subscription>>>,
}

pub struct Live {
    manifest: Mutex<Manifest>,
    redis_plan: RedisPlan,
    /// The engine, when apps (or Redis) run in containers.
    pub containers: Option<Arc<ContainerPlan>>,
    picker: Mutex<PortPicker>,
    pub supervisor: Arc<Supervisor>,
    pub shared: Arc<Shared>,
    pub reloads: Arc<ReloadStats>,
    /// The timeline the dashboard shows.
    pub events: Arc<crate::events::EventLog>,
    /// Why the last edit of the resources folder was not applied.
    pub(super) component_error: Mutex<Option<String>>,
    control: Mutex<Option<Arc<ControlState>>>,
    pub(super) bundles: Mutex<BTreeMap<String, Bundle>>,
    drivers: Mutex<BTreeMap<String, mpsc::UnboundedSender<Change>>>,
    watching: Mutex<Option<watch::Watch>>,
}

fn env_var(name: &str) -> Option<String> {
    std::env::var(name).ok().filter(|t| !t.is_empty())
}

/// Loads the resources folder into component instances, or says what is wrong with it.
pub fn load_components(manifest: &Manifest, plan: &RedisPlan) -> anyhow::Result<Components> {
    let (loaded, notices) = Components::load(manifest.resources.as_deref(), &manifest.root, plan)?;
    for notice in notices {
        tracing::info!("{notice}");
    }
    Ok(loaded)
}

impl Live {
    pub fn new(
        manifest: Manifest,
        redis_plan: RedisPlan,
        picker: PortPicker,
        supervisor: Arc<Supervisor>,
        components: Components,
        containers: Option<Arc<ContainerPlan>>,
    ) -> Arc<Live> {
        Arc::new(Live {
            manifest: Mutex::new(manifest),
            redis_plan,
            containers,
            picker: Mutex::new(picker),
            supervisor,
            shared: Arc::new(Shared::new(components, env_var("DAPR_API_TOKEN"))),
            reloads: Arc::default(),
            events: Arc::default(),
            component_error: Mutex::new(None),
            control: Mutex::new(None),
            bundles: Mutex::default(),
            drivers: Mutex::default(),
            watching: Mutex::new(None),
        })
    }

    pub fn set_control(&self, control: Arc<ControlState>) {
        *self.control.lock().unwrap_or_else(|p| p.into_inner()) = Some(control);
    }

    pub fn manifest(&self) -> Manifest {
        self.manifest
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    /// Sidecar ports of every app, for the control API and the start-up lines.
    pub fn ports(&self) -> BTreeMap<String, (Option<u16>, SidecarPorts)> {
        let bundles = self.bundles.lock().unwrap_or_else(|p| p.into_inner());
        bundles
            .iter()
            .map(|(id, b)| (id.clone(), (b.spec.process.port, b.ports)))
            .collect()
    }

    /// Ports for a new app: its own choices, else 3500/50001 when free, else the next free.
    fn assign_ports(&self, app: &AppSpec) -> SidecarPorts {
        let mut picker = self.picker.lock().unwrap_or_else(|p| p.into_inner());
        for port in [app.process.port, app.sidecar.http_port, app.sidecar.grpc_port]
            .into_iter()
            .flatten()
        {
            picker.reserve(port);
        }
        SidecarPorts {
            http: app.sidecar.http_port.unwrap_or_else(|| picker.pick(3500)),
            grpc: app.sidecar.grpc_port.unwrap_or_else(|| picker.pick(50001)),
        }
    }

    /// Registers an app: its unit (not started), its channel, its sidecar (listening now, and
    /// until the app is removed) and its subscriber.
    pub async fn add_app(&self, app: &AppSpec, ports: Option<SidecarPorts>) -> anyhow::Result<()> {
        let ports = ports.unwrap_or_else(|| self.assign_ports(app));
        let listener = tokio::net::TcpListener::bind(("127.0.0.1", ports.http)).await.map_err(|err| {
            user_error(format!(
                "{}: cannot listen on sidecar port {}: {err}\n  hint: free the port or set `dapr_http_port:` for this app",
                app.id, ports.http
            ))
        })?;
        let grpc_listener = tokio::net::TcpListener::bind(("127.0.0.1", ports.grpc)).await.map_err(|err| {
            user_error(format!(
                "{}: cannot listen on sidecar gRPC port {}: {err}\n  hint: free the port or set `dapr_grpc_port:` for this app",
                app.id, ports.grpc
            ))
        })?;
        let unit = app_unit(app, ports, &self.redis_plan, self.containers.as_deref());
        let handle = self.supervisor.add(unit);
        let mut channel = AppChannel::supervised(
            app.id.as_str(),
            app.process.port,
            env_var("APP_API_TOKEN"),
            handle.watch(),
        );
        channel.protocol = app.process.protocol;
        self.shared.set_app(app.id.as_str(), channel.clone());
        let mut state = SidecarState::new(app.id.as_str(), self.shared.clone(), app.sidecar.max_body_size);
        state.on_shutdown = Some(Box::new(move || {
            let handle = handle.clone();
            tokio::spawn(async move { handle.stop().await });
        }));
        let subscriptions = state.subscriptions.clone();
        let subscriber = self.subscriber(channel, subscriptions.clone());
        let state = Arc::new(state);
        let sidecar = tokio::spawn(crate::sidecar::serve(listener, state.clone()));
        let grpc = tokio::spawn(crate::sidecar::grpc::serve(grpc_listener, state));
        self.bundles
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(
                app.id.to_string(),
                Bundle {
                    ports,
                    spec: app.clone(),
                    sidecar,
                    grpc,
                    subscriber,
                    subscriptions,
                },
            );
        self.sync_control();
        Ok(())
    }

    fn subscriber(
        &self,
        channel: AppChannel,
        active: Arc<RwLock<Vec<pubsub::subscription::Subscription>>>,
    ) -> JoinHandle<()> {
        let components = self.shared.components();
        Subscriber::new(
            channel,
            self.shared.http.clone(),
            components.pubsubs.clone(),
            &components.declarative,
            active,
        )
        .with_stats(self.shared.pubsub_stats.clone())
        .spawn()
    }

    /// Stops an app, its sidecar and its subscriber, and forgets it.
    async fn remove_app(&self, id: &str) {
        let bundle = self
            .bundles
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .remove(id);
        self.supervisor.remove(id).await;
        self.shared.remove_app(id);
        if let Some(bundle) = bundle {
            bundle.subscriber.abort();
            bundle.sidecar.abort();
            bundle.grpc.abort();
        }
        self.sync_control();
    }

    fn sync_control(&self) {
        if let Some(control) = self
            .control
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .as_ref()
        {
            *control.apps.write().unwrap_or_else(|p| p.into_inner()) = self.ports();
        }
    }
}

impl Live {
    /// Starts watching the current manifest's folders; replaces an earlier watch.
    pub fn watch(self: &Arc<Self>) -> anyhow::Result<()> {
        let manifest = self.manifest();
        let (watching, mut changes) =
            watch::start(watch::targets(&manifest)).map_err(user_error)?;
        tracing::debug!("watching {} folder(s)", watch::watched_count(&watching));
        *self.drivers.lock().unwrap_or_else(|p| p.into_inner()) = reload::drivers(
            &manifest.apps,
            self.supervisor.clone(),
            self.reloads.clone(),
            self.containers.clone(),
            self.events.clone(),
        );
        let live = Arc::downgrade(self);
        let old = self
            .watching
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .replace(watching);
        drop(old);
        tokio::spawn(async move {
            while let Some(change) = changes.recv().await {
                let Some(live) = live.upgrade() else { return };
                match change.target.as_str() {
                    watch::MANIFEST => live.reconcile().await,
                    watch::RESOURCES => live.reload_components(),
                    app => {
                        let drivers = live.drivers.lock().unwrap_or_else(|p| p.into_inner());
                        if let Some(driver) = drivers.get(app) {
                            let _ = driver.send(change);
                        }
                    }
                }
            }
        });
        Ok(())
    }

    /// Applies an edited daca.yaml: added apps start, removed apps stop, changed apps restart.
    async fn reconcile(self: &Arc<Self>) {
        let file = self.manifest().file;
        let next = match manifest::load(&file) {
            Ok(next) => next,
            Err(err) => {
                tracing::error!(
                    "{err}\n  daca.yaml was not applied; the running apps are unchanged"
                );
                return;
            }
        };
        let current = self.manifest();
        let find = |m: &Manifest, id: &str| m.apps.iter().find(|a| a.id.as_str() == id).cloned();
        let removed: Vec<AppSpec> = current
            .apps
            .iter()
            .filter(|a| find(&next, a.id.as_str()).is_none())
            .cloned()
            .collect();
        let changed: Vec<AppSpec> = next
            .apps
            .iter()
            .filter(|a| find(&current, a.id.as_str()).is_some_and(|old| &old != *a))
            .cloned()
            .collect();
        let added: Vec<AppSpec> = next
            .apps
            .iter()
            .filter(|a| find(&current, a.id.as_str()).is_none())
            .cloned()
            .collect();
        if let Err(problem) = self.check_new(&added, &changed) {
            tracing::error!(
                "{problem}\n  daca.yaml was not applied; the running apps are unchanged"
            );
            return;
        }
        // A changed app keeps its sidecar ports unless the edit changed them.
        let mut kept: BTreeMap<String, SidecarPorts> = BTreeMap::new();
        for app in &changed {
            let bundles = self.bundles.lock().unwrap_or_else(|p| p.into_inner());
            if let Some(ports) = bundles.get(app.id.as_str()).map(|b| b.ports)
                && app.sidecar.http_port.is_none_or(|h| h == ports.http)
                && app.sidecar.grpc_port.is_none_or(|g| g == ports.grpc)
            {
                kept.insert(app.id.to_string(), ports);
            }
        }
        for app in removed.iter().chain(changed.iter()).rev() {
            tracing::info!("daca.yaml: stopping {}", app.id);
            self.remove_app(app.id.as_str()).await;
        }
        *self.manifest.lock().unwrap_or_else(|p| p.into_inner()) = next.clone();
        for app in next
            .apps
            .iter()
            .filter(|a| added.contains(a) || changed.contains(a))
        {
            let verb = if added.contains(app) {
                "starting"
            } else {
                "restarting"
            };
            tracing::info!("daca.yaml: {verb} {}", app.id);
            if let Some(plan) = self.container_plan(app)
                && let Err(err) = plan.prepare(app).await
            {
                tracing::error!("{err}");
                continue;
            }
            if let Err(err) = self.add_app(app, kept.get(app.id.as_str()).copied()).await {
                tracing::error!("{err}");
                continue;
            }
            self.supervisor.start(app.id.as_str());
        }
        if let Err(err) = self.watch() {
            tracing::error!("{err}");
        }
    }

    /// What would stop a new or changed app from starting, checked before anything stops.
    fn check_new(&self, added: &[AppSpec], changed: &[AppSpec]) -> Result<(), String> {
        let mut problems = Vec::new();
        for app in added {
            if let Some(port) = app.process.port.filter(|p| !is_free(*p)) {
                problems.push(format!("{}: port {port} is already in use", app.id));
            }
        }
        for app in added.iter().chain(changed) {
            let unused = SidecarPorts { http: 0, grpc: 0 };
            let unit = app_unit(app, unused, &self.redis_plan, self.containers.as_deref());
            if let Err(err) = check_program(&unit) {
                problems.push(format!("{}: {err}", app.id));
            }
        }
        if problems.is_empty() {
            Ok(())
        } else {
            Err(problems.join("\n"))
        }
    }

    /// The engine, when `app` runs in a container.
    fn container_plan(&self, app: &AppSpec) -> Option<&ContainerPlan> {
        self.containers.as_deref().filter(|plan| plan.runs(app))
    }

    /// Loads the resources folder again and swaps the components; subscribers restart on the
    /// new set. A bad file is reported and the running components stay.
    fn reload_components(&self) {
        let manifest = self.manifest();
        let loaded = match load_components(&manifest, &self.redis_plan) {
            Ok(loaded) => loaded,
            Err(err) => {
                tracing::error!("{err}\n  the components were not reloaded; the running ones stay");
                let message = format!("not reloaded: {err}");
                self.events.push("components", None, message, None);
                *self
                    .component_error
                    .lock()
                    .unwrap_or_else(|p| p.into_inner()) = Some(err.to_string());
                return;
            }
        };
        *self
            .component_error
            .lock()
            .unwrap_or_else(|p| p.into_inner()) = None;
        self.shared.set_components(loaded);
        let mut bundles = self.bundles.lock().unwrap_or_else(|p| p.into_inner());
        for (id, bundle) in bundles.iter_mut() {
            bundle.subscriber.abort();
            if let Some(channel) = self.shared.app(id) {
                bundle.subscriber = self.subscriber(channel, bundle.subscriptions.clone());
            }
        }
        let message = format!(
            "components reloaded from {}",
            manifest
                .resources
                .map(|r| r.display().to_string())
                .unwrap_or_default()
        );
        tracing::info!("{message}");
        self.events.push("components", None, message, None);
    }
}
