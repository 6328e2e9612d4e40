//! Starting a project, step by step: the state folder, the engine, Redis, the checks, the
//! components, the apps' images, then the owner with every app opened and started.

use std::collections::BTreeMap;
use std::sync::Arc;

use tokio::sync::{Notify, mpsc, watch as watch_channel};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use super::owner::{Command, Owner};
use super::view::{Parts, ProjectView, RedisInfo, Snapshot};
use super::{Context, Options, Project, containers, launch, record};
use crate::docker::{ContainerPlan, ContainerRuntime, Owner as Labels, run_id};
use crate::error::{Error, Problem};
use crate::logs::{LogBus, Printer};
use crate::manifest::Manifest;
use crate::ports::PortPicker;
use crate::redis::{self, RedisPlan};
use crate::runtime::Runtimes;
use crate::runtime::process::ProcessRuntime;
use crate::sidecar::{Components, Shared};
use crate::supervisor::{AppHandle, Supervisor};

/// Lines of output remembered for `daca logs`.
const LOG_BUFFER: usize = 10_000;

/// What [`Project::stop`] finishes after the owner has stopped.
pub(super) struct Finish {
    pub state: super::StateDir,
    pub containers: Option<Arc<ContainerPlan>>,
    pub reaper: Option<std::process::Child>,
    pub control: String,
}

fn env_var(name: &str) -> Option<String> {
    std::env::var(name).ok().filter(|t| !t.is_empty())
}

impl Project {
    /// Starts `manifest`'s project: returns once every app has been asked to start (they
    /// become ready on their own; the log says when).
    pub async fn start(manifest: Manifest, options: Options) -> Result<Project, Error> {
        if let Some(namespace) = &manifest.namespace {
            crate::env::set_namespace(namespace);
        }
        let state = super::StateDir::new(&manifest.root);
        let reaped = state.reap_orphans().map_err(|err| {
            Problem::new(err.to_string()).hint("use that one, or stop it with `daca down`")
        })?;
        if !reaped.is_empty() {
            tracing::warn!(
                "stopped what an earlier daca left running: {}",
                reaped.join(", ")
            );
        }
        state.create()?;
        let token = CancellationToken::new();
        let tasks = TaskTracker::new();
        let logs = LogBus::new(LOG_BUFFER);
        let redis_name = redis::log_name(&manifest.apps);
        let pg_name = redis::service_log_name(&manifest.apps, crate::pgserver::UNIT_NAME);
        let mut sources = vec![redis_name.clone()];
        sources.extend(manifest.postgres.is_some().then(|| pg_name.clone()));
        sources.extend(super::replicas::names(&manifest, options.replicas));
        let printer = Printer::new(options.log_format, sources);
        tasks.spawn(printer.run(logs.clone(), token.clone()));
        let started = provide(&manifest, &state, &logs, &redis_name, &pg_name).await;
        let (redis_plan, pg_plan, plan, picker) = match started {
            Ok(started) => started,
            Err(err) => {
                token.cancel();
                tasks.close();
                tasks.wait().await;
                return Err(err);
            }
        };
        let servers_in_containers = matches!(redis_plan, RedisPlan::Container { .. })
            || matches!(pg_plan, Some(crate::pgserver::PgPlan::Container { .. }));
        let reaper = plan
            .as_deref()
            .filter(|plan| servers_in_containers || manifest.apps.iter().any(|a| plan.runs(a)))
            .and_then(containers::start_reaper);
        let file = state.path().join("scheduler.jsonl");
        let scheduler = match crate::scheduler::Scheduler::durable(&file) {
            Ok(scheduler) => scheduler,
            Err(err) => {
                token.cancel();
                tasks.close();
                tasks.wait().await;
                let problem = Problem::new(format!("{}: {err}", file.display()))
                    .hint("check that the project folder is writable (reminders are kept there)");
                return Err(problem.into());
            }
        };
        // Only now is it known whether each app's instances can have pods.
        let manifest = super::replicas::expand(manifest, options.replicas, |app| {
            super::in_pod(app, plan.as_deref())
        });
        let finish = Finish {
            state,
            containers: plan.clone(),
            reaper,
            control: String::new(),
        };
        let running = Running {
            scheduler,
            manifest,
            options,
            redis_plan,
            redis_name,
            pg_plan,
            pg_name,
            plan,
            picker,
            logs,
            token,
            tasks,
        };
        running.launch(finish).await
    }
}

/// Redis, the engine and the apps' images, and the checks: everything that may fail before
/// anything runs.
async fn provide(
    manifest: &Manifest,
    state: &super::StateDir,
    logs: &Arc<LogBus>,
    redis_name: &str,
    pg_name: &str,
) -> Result<Provided, Error> {
    let labels = Labels::new(&manifest.name, &manifest.root, &run_id());
    let engine = containers::connect(manifest).await?;
    if let Some(engine) = &engine {
        containers::clear_leftovers(engine, &labels).await;
    }
    let offer = containers::redis_offer(engine.as_ref(), &labels, manifest).await;
    let mut picker = PortPicker::default();
    let path = std::env::var_os("PATH");
    let redis_plan = redis::plan(
        &manifest.redis,
        state.path(),
        path.clone(),
        &mut picker,
        offer.as_ref(),
    )?;
    let fallback = || {
        let mut picker = PortPicker::default();
        Ok(redis::plan(
            &manifest.redis,
            state.path(),
            path,
            &mut picker,
            None,
        )?)
    };
    let redis_plan = containers::prepare_redis(
        redis_plan,
        engine.as_ref(),
        logs,
        manifest,
        redis_name,
        fallback,
    )
    .await?;
    let pg_plan = crate::pgserver::plan(
        manifest.postgres.as_ref(),
        state.path(),
        std::env::var_os("PATH"),
        &mut picker,
        containers::postgres_offer(engine.as_ref(), &labels, manifest)
            .await
            .as_ref(),
    )?;
    let pg_plan = match pg_plan {
        Some(pg_plan) => {
            Some(containers::prepare_postgres(pg_plan, engine.as_ref(), logs, pg_name).await?)
        }
        None => None,
    };
    if let RedisPlan::Embedded { reason } = &redis_plan {
        tracing::warn!(
            "{reason}: using the embedded in-memory store (data lasts until daca stops); install redis-server or Docker for Redis"
        );
    }
    let plan = engine.map(|engine| {
        Arc::new(ContainerPlan {
            engine,
            owner: labels,
            logs: logs.clone(),
        })
    });
    crate::tools::provide_uv(manifest, |app| plan.as_deref().is_some_and(|p| p.runs(app))).await?;
    launch::preflight(manifest, plan.as_deref())?;
    if let Some(plan) = &plan {
        containers::prepare_apps(plan, manifest).await?;
    }
    super::steps::run(manifest).await?;
    Ok((redis_plan, pg_plan, plan, picker))
}

/// What [`provide`] made ready: Redis, PostgreSQL, the engine, and the ports left.
type Provided = (
    RedisPlan,
    Option<crate::pgserver::PgPlan>,
    Option<Arc<ContainerPlan>>,
    PortPicker,
);

/// A project whose Redis and images are ready, about to run.
struct Running {
    manifest: Manifest,
    options: Options,
    redis_plan: RedisPlan,
    redis_name: String,
    pg_plan: Option<crate::pgserver::PgPlan>,
    pg_name: String,
    plan: Option<Arc<ContainerPlan>>,
    picker: PortPicker,
    logs: Arc<LogBus>,
    /// Reminders (and later jobs), in `.daca/scheduler.jsonl`.
    scheduler: crate::scheduler::Scheduler,
    token: CancellationToken,
    tasks: TaskTracker,
}

impl Running {
    async fn launch(self, mut finish: Finish) -> Result<Project, Error> {
        let loaded = Components::load_with(
            self.manifest.resources.as_deref(),
            &self.manifest.root,
            &self.redis_plan,
            self.pg_plan.as_ref(),
        );
        let (loaded, notices) = match loaded {
            Ok(loaded) => loaded,
            Err(err) => {
                self.token.cancel();
                self.tasks.close();
                self.tasks.wait().await;
                finish.state.clear();
                return Err(err.into());
            }
        };
        for notice in notices {
            tracing::info!("{notice}");
        }
        let (mut owner, view, commands) = self.owner(loaded);
        owner.make_pods_ahead().await;
        // Sidecars listen before any app starts, and stay up while apps restart.
        for app in &self.manifest.apps {
            if let Err(problem) = owner.add_app(app, None, Arc::default()).await {
                abandon(owner, finish, &self.token, &self.tasks).await;
                return Err(problem.into());
            }
        }
        match self.publish(&owner, &view).await {
            Ok(control) => finish.control = control,
            Err(err) => {
                abandon(owner, finish, &self.token, &self.tasks).await;
                return Err(err);
            }
        }
        let started = std::time::Instant::now();
        for server in owner.redis.iter().chain(&owner.postgres) {
            server.start().await;
        }
        for app in &self.manifest.apps {
            owner.start_app(&app.id).await;
        }
        let ready = record::report_ready(view.clone(), started, self.token.clone());
        self.tasks.spawn(ready);
        owner.rewatch();
        owner.publish();
        let owner = tokio::spawn(owner.run());
        Ok(Project {
            view,
            commands,
            owner,
            token: self.token,
            tasks: self.tasks,
            finish,
        })
    }

    /// The owner with its context (nothing opened yet), the readers' view of it, and where
    /// to send it commands.
    fn owner(&self, loaded: Components) -> (Owner, ProjectView, mpsc::Sender<Command>) {
        let background = crate::actors::Background {
            token: self.token.clone(),
            tasks: self.tasks.clone(),
        };
        let shared = Arc::new(Shared::with_scheduler(
            loaded,
            env_var("DAPR_API_TOKEN"),
            self.scheduler.clone(),
            background,
        ));
        let warm = match crate::warm::WarmPool::new(self.tasks.clone(), self.token.clone()) {
            Ok(pool) => Some(pool),
            Err(err) => {
                tracing::warn!("warm reloads are off: cannot write daca's warm parent ({err})");
                None
            }
        };
        let runtimes = Runtimes {
            warm: warm.clone(),
            process: ProcessRuntime,
            containers: self
                .plan
                .as_ref()
                .map(|p| Arc::new(ContainerRuntime::new(p.engine.docker.clone()))),
        };
        let supervisor = Arc::new(Supervisor::new(Arc::new(runtimes), self.logs.clone()));
        let parts = Parts {
            shared: shared.clone(),
            logs: self.logs.clone(),
            events: Arc::default(),
            watch: Arc::default(),
            down: Arc::new(Notify::new()),
        };
        let (publish, snapshot) = watch_channel::channel(Arc::new(Snapshot::default()));
        let info = RedisInfo {
            mode: self.redis_plan.mode(),
            url: self.redis_plan.shown_url(),
        };
        let mut view = ProjectView::new(self.manifest.name.clone(), info, snapshot, parts.clone());
        view.postgres = self.pg_plan.as_ref().map(|plan| plan.describe());
        let (dependents_tx, dependents) = mpsc::unbounded_channel();
        let (redis, postgres) = self.servers(&supervisor);
        let ctx = Context {
            redis_plan: self.redis_plan.clone(),
            pg_plan: self.pg_plan.clone(),
            containers: self.plan.clone(),
            supervisor,
            shared,
            parts,
            app_token: env_var("APP_API_TOKEN"),
            token: self.token.clone(),
            tasks: self.tasks.clone(),
            dependents: dependents_tx,
            warm,
            peers: Default::default(),
            aliases: std::sync::Arc::new(crate::sync::RwLock::new(super::pod_names::aliases_of(
                &self.manifest,
            ))),
            ahead: Default::default(),
            replicas: self.options.replicas,
        };
        let (commands_tx, commands) = mpsc::channel(4);
        let owner = Owner {
            ctx,
            manifest: self.manifest.clone(),
            apps: BTreeMap::new(),
            picker: self.picker.clone(),
            redis,
            postgres,
            component_error: None,
            watching: self.options.watch,
            watcher: None,
            changes: None,
            publish,
            commands,
            dependents,
        };
        (owner, view, commands_tx)
    }

    /// The units of the servers daca runs for the project (Redis, PostgreSQL), not started.
    fn servers(&self, supervisor: &Supervisor) -> (Option<AppHandle>, Option<AppHandle>) {
        let env = || std::env::vars().collect();
        let redis = self.redis_plan.unit(&self.redis_name, env());
        let postgres = self
            .pg_plan
            .as_ref()
            .and_then(|p| p.unit(&self.pg_name, env()));
        let spawn = |unit| supervisor.spawn(unit);
        (redis.map(spawn), postgres.map(spawn))
    }

    /// Serves the control API, says where everything is, and starts keeping the run record
    /// and the timeline; returns the control API's address.
    async fn publish(&self, owner: &Owner, view: &ProjectView) -> Result<String, Error> {
        let secret = crate::control::RunToken::new().map_err(|err| {
            Problem::new(format!("cannot make the control API's token: {err}"))
                .hint("daca reads it from /dev/urandom")
        })?;
        let control = record::serve_control(view, &self.tasks, &secret, &self.token).await?;
        let containers = self.plan.as_deref();
        let snapshot = view.snapshot();
        let dashboard = format!("http://{control}/?token={}", secret.as_str());
        record::announce(
            &self.manifest,
            &self.redis_plan,
            self.pg_plan.as_ref(),
            &snapshot,
            &dashboard,
            containers,
        );
        let runs = record::RunWriter::new(&self.manifest, &control, &secret);
        runs.write(&view.snapshot())?;
        let supervisor = &owner.ctx.supervisor;
        let token = self.token.clone();
        self.tasks
            .spawn(runs.follow(supervisor.subscribe(), view.clone(), token.clone()));
        self.tasks.spawn(record::timeline(
            supervisor.subscribe(),
            view.clone(),
            token,
        ));
        Ok(control)
    }
}

/// Undoes a start that failed after apps were opened: what was opened is closed, and the
/// run leaves nothing behind.
async fn abandon(owner: Owner, finish: Finish, token: &CancellationToken, tasks: &TaskTracker) {
    owner.shutdown().await;
    containers::finish(finish.containers.as_ref(), finish.reaper).await;
    token.cancel();
    tasks.close();
    tasks.wait().await;
    finish.state.clear();
}
