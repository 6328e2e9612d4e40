//! A running project: everything one `daca up` runs, with one owner.
//!
//! How it works: [`Project::start`] provides Redis, prepares containers, opens each app (its
//! unit, its sidecar listening, its subscriber and reload driver: `app.rs`), serves the
//! control API and the dashboard, starts the apps in dependency order and begins watching
//! files. From then on one task, the owner (`owner.rs`), alone holds the registry of apps and
//! handles every change in order: a saved file goes to its app's reload driver, an edited
//! daca.yaml is reconciled as a diff (`reconcile.rs`), an edited resources folder swaps the
//! components. Readers (the control API, the dashboard) see the snapshot the owner publishes
//! after each change ([`ProjectView`]).
//!
//! Shutdown is one cancellation token tree: the project's token, a child per app, a child per
//! subscriber; every task runs on a task tracker, so [`Project::stop`] returns only once each
//! of them has ended, in this order: the watcher, the apps (dependents first), what ran beside
//! them, Redis, the containers, then the control API and the run record.

mod app;
mod containers;
mod launch;
mod owner;
mod pod;
mod pod_container;
mod pod_links;
mod pod_names;
pub mod reconcile;
mod record;
mod replicas;
mod start;
mod state_dir;
mod steps;
mod view;

use std::sync::Arc;

use tokio::sync::{mpsc, oneshot};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

pub use containers::finish as finish_containers;
pub use launch::app_unit;
pub use replicas::ReplicaCap;
pub use state_dir::{Group, ProcessRef, RunRecord, STATE_DIR, StateDir, StateError};
pub use view::{AppView, ProjectView, RedisInfo, Snapshot};

use crate::docker::ContainerPlan;
use crate::env::SidecarPorts;
use crate::logs::LogFormat;
use crate::manifest::AppId;
use crate::redis::RedisPlan;
use crate::reload::UnitMaker;
use crate::sidecar::Shared;
use crate::supervisor::Supervisor;

/// How `daca up` runs the project.
#[derive(Debug, Clone, Copy)]
pub struct Options {
    /// Reload on save, reconcile on daca.yaml edits (`--no-watch` turns it off).
    pub watch: bool,
    /// How app output and daca's lines are printed.
    pub log_format: LogFormat,
    /// `--replicas N`.
    pub replicas: ReplicaCap,
}

/// What the project's parts share, fixed for the run.
pub(crate) struct Context {
    redis_plan: RedisPlan,
    /// `postgres:`'s server, when the project has one.
    pg_plan: Option<crate::pgserver::PgPlan>,
    containers: Option<Arc<ContainerPlan>>,
    supervisor: Arc<Supervisor>,
    shared: Arc<Shared>,
    parts: view::Parts,
    /// `APP_API_TOKEN`: sent to the apps on every call daca makes to them.
    app_token: Option<String>,
    /// The project's token: cancelled last, when everything else has stopped.
    token: CancellationToken,
    tasks: TaskTracker,
    /// Where reload drivers ask for an app's dependents to be restarted.
    dependents: mpsc::UnboundedSender<AppId>,
    /// The Python apps' warm parents.
    warm: Option<Arc<crate::warm::WarmPool>>,
    /// Where each app is reached on the machine, for the pods' cluster names; the owner
    /// publishes it with the registry.
    peers: pod::Peers,
    /// The apps' other names in the pods; the owner publishes them with each manifest.
    aliases: pod_names::Aliases,
    /// Pods made before their apps are added (the first start makes them all at once).
    ahead: Arc<pod::Ahead>,
    /// `--replicas N`, for every manifest applied.
    replicas: ReplicaCap,
}

impl Context {
    /// The ports of the servers daca runs on the machine's loopback (Redis, PostgreSQL),
    /// which each pod sees at its own localhost too.
    fn server_ports(&self) -> Vec<u16> {
        let postgres = self.pg_plan.as_ref().and_then(|p| p.loopback_port());
        self.redis_plan
            .loopback_port()
            .into_iter()
            .chain(postgres)
            .collect()
    }

    /// How an app with these sidecar ports is made into a unit.
    fn make_unit(&self, ports: SidecarPorts, in_pod: Option<launch::InPod>) -> UnitMaker {
        let containers = self.containers.clone();
        Arc::new(move |spec| launch::app_unit(spec, ports, containers.as_deref(), in_pod.as_ref()))
    }

    /// Whether the app runs in a pod: it asks for one (`auto`: where this machine allows it).
    /// A host process's pod is daca's own; a container's is the engine's.
    fn in_pod(&self, app: &crate::manifest::AppSpec) -> bool {
        in_pod(app, self.containers.as_deref())
    }

    /// `manifest` with its apps' instances (`replicas:`), as this run runs them.
    fn instances(&self, manifest: crate::manifest::Manifest) -> crate::manifest::Manifest {
        replicas::expand(manifest, self.replicas, |app| self.in_pod(app))
    }
}

/// Whether `app` runs in a pod (see [`Context::in_pod`]); `containers` is the engine's plan.
fn in_pod(app: &crate::manifest::AppSpec, containers: Option<&ContainerPlan>) -> bool {
    use crate::manifest::NetworkMode;
    let plan = containers.filter(|plan| plan.runs(app));
    match app.network.mode {
        NetworkMode::Host => return false,
        NetworkMode::Pod => return true,
        NetworkMode::Auto => {}
    }
    let (available, what) = match plan {
        Some(plan) => (plan.pods_available(), "containers"),
        None => (crate::pod::available(), "apps"),
    };
    match available {
        Ok(()) => true,
        Err(why) => {
            static SAID: crate::sync::Mutex<Vec<&str>> = crate::sync::Mutex::new(Vec::new());
            let mut said = SAID.lock();
            if !said.contains(&what) {
                said.push(what);
                tracing::info!("network: host for the {what} ({why})");
            }
            false
        }
    }
}

/// A running project.
pub struct Project {
    view: ProjectView,
    commands: mpsc::Sender<owner::Command>,
    owner: tokio::task::JoinHandle<()>,
    token: CancellationToken,
    tasks: TaskTracker,
    finish: start::Finish,
}

impl Project {
    /// What the control API and the dashboard read.
    pub fn view(&self) -> &ProjectView {
        &self.view
    }

    /// The control API's address (`127.0.0.1:PORT`), where the dashboard is too.
    pub fn control_address(&self) -> &str {
        &self.finish.control
    }

    /// Stops everything, in order, and returns once every task of the project has ended and
    /// nothing it started is left.
    pub async fn stop(self) {
        let (done, stopped) = oneshot::channel();
        if self.commands.send(owner::Command::Stop(done)).await.is_ok() {
            let _ = stopped.await;
        }
        if let Err(err) = self.owner.await {
            tracing::error!("the project's owner task failed: {err}");
        }
        containers::finish(self.finish.containers.as_ref(), self.finish.reaper).await;
        self.token.cancel();
        self.tasks.close();
        self.tasks.wait().await;
        // Only now: the run-record writer has ended, so no write can land after the clear.
        self.finish.state.clear();
    }

    /// What the second Ctrl-C uses while [`Project::stop`] runs.
    pub fn killer(&self) -> Killer {
        Killer(self.view.clone())
    }
}

/// SIGKILLs a stopping project's processes.
pub struct Killer(ProjectView);

impl Killer {
    /// SIGKILLs every app, Redis and PostgreSQL now; [`Project::stop`] then finishes.
    pub fn force_kill(&self) {
        let snapshot = self.0.snapshot();
        for app in &snapshot.apps {
            app.handle.force_kill();
        }
        for server in snapshot.redis.iter().chain(&snapshot.postgres) {
            server.force_kill();
        }
    }
}
