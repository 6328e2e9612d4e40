//! `daca up`: everything in the foreground until Ctrl-C, SIGTERM or `daca down`.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::signal::unix::{SignalKind, signal};
use tokio::sync::Notify;

use super::{UpArgs, user_error};
use crate::channel::AppChannel;
use crate::components;
use crate::control::{self, ControlState};
use crate::env::{SidecarPorts, app_env, read_dot_env};
use crate::logs::{LogBus, LogFormat, Printer};
use crate::manifest::{self, Manifest};
use crate::ports::{PortPicker, is_free};
use crate::project::{ProcessRef, RunRecord, StateDir};
use crate::pubsub::{self, delivery::Subscriber};
use crate::redis::{self, RedisPlan};
use crate::reload::{self, ReloadStats};
use crate::runtime::process::{ProcessRuntime, resolve_program};
use crate::sidecar::{Shared, SidecarState};
use crate::supervisor::{Probe, Supervisor, UnitSpec};
use crate::watch;

/// Lines of output remembered for `daca logs`.
const LOG_BUFFER: usize = 10_000;

pub async fn run(args: &UpArgs, format: LogFormat) -> anyhow::Result<()> {
    let (file, _) = args.project.locate();
    let manifest = manifest::load(&file)?;
    let state = StateDir::new(&manifest.root);
    let reaped = state.reap_orphans().map_err(|err| {
        user_error(format!(
            "{err}\n  hint: use that one, or stop it with `daca down`"
        ))
    })?;
    if !reaped.is_empty() {
        tracing::warn!(
            "stopped what an earlier daca left running: {}",
            reaped.join(", ")
        );
    }
    state.create()?;
    let mut picker = PortPicker::default();
    let redis_plan = redis::plan(
        &manifest.redis,
        state.path(),
        std::env::var_os("PATH"),
        &mut picker,
    )?;
    if let RedisPlan::Embedded { reason } = &redis_plan {
        tracing::warn!(
            "{reason}: using the embedded in-memory store (data lasts until daca stops); install redis-server for Redis"
        );
    }
    let sidecars = assign_sidecar_ports(&manifest, &mut picker);
    let units = units(&manifest, &redis_plan, &sidecars);
    preflight(&manifest, &units)?;
    let resources = components::load_resources(manifest.resources.as_deref(), &manifest.root)?;
    let (stores, mut notices) =
        components::stores::state_stores(&resources.components, &redis_plan)?;
    let (pubsubs, more) = pubsub::brokers(&resources.components, &redis_plan)?;
    notices.extend(more);
    notices.dedup();
    for notice in notices {
        tracing::info!("{notice}");
    }

    let logs = LogBus::new(LOG_BUFFER);
    let sources: Vec<String> = units.iter().map(|u| u.launch.name.clone()).collect();
    let printer = Printer::new(format, sources).spawn(&logs);
    // Nothing starts before `start_all`; the supervisor exists first so that the sidecars can
    // follow each app's readiness.
    let supervisor = Arc::new(Supervisor::new(
        units,
        Arc::new(ProcessRuntime),
        logs.clone(),
    ));
    let shared = shared_parts(&manifest, &supervisor, resources, stores, pubsubs);
    // Sidecars listen before any app starts, and stay up while apps restart.
    start_sidecars(&manifest, &sidecars, &shared, &supervisor).await?;

    let down = Arc::new(Notify::new());
    let reloads = Arc::new(ReloadStats::default());
    let control_address = start_control(
        &manifest,
        &supervisor,
        &logs,
        &redis_plan,
        &sidecars,
        &down,
        &reloads,
    )
    .await?;
    let recorder = record_runs(&manifest, &supervisor, &control_address)?;

    announce(&manifest, &redis_plan, &sidecars, &control_address);
    let started = Instant::now();
    supervisor.start_all();
    let ready_report = report_ready(supervisor.clone(), started);
    let _watching = match args.no_watch {
        true => None,
        false => Some(start_watching(&manifest, &supervisor, &reloads)?),
    };

    wait_for_stop(&down).await;
    ready_report.abort();
    stop(&supervisor).await;
    recorder.abort();
    // Wait for the recorder to be gone, or a last write could land after the clear.
    let _ = recorder.await;
    state.clear();
    drop(printer);
    Ok(())
}

/// First app 3500/50001 when free (as `dapr run`), the rest the next free ports.
fn assign_sidecar_ports(
    manifest: &Manifest,
    picker: &mut PortPicker,
) -> BTreeMap<String, SidecarPorts> {
    for app in &manifest.apps {
        for port in [app.port, app.dapr_http_port, app.dapr_grpc_port]
            .into_iter()
            .flatten()
        {
            picker.reserve(port);
        }
    }
    manifest
        .apps
        .iter()
        .map(|app| {
            let http = app.dapr_http_port.unwrap_or_else(|| picker.pick(3500));
            let grpc = app.dapr_grpc_port.unwrap_or_else(|| picker.pick(50001));
            (app.id.to_string(), SidecarPorts { http, grpc })
        })
        .collect()
}

fn units(
    manifest: &Manifest,
    redis_plan: &RedisPlan,
    sidecars: &BTreeMap<String, SidecarPorts>,
) -> Vec<UnitSpec> {
    let inherited: Vec<(String, String)> = std::env::vars().collect();
    let redis_unit = redis_plan.unit(inherited.clone());
    let mut units: Vec<UnitSpec> = redis_unit.iter().cloned().collect();
    for app in &manifest.apps {
        let sidecar = sidecars[app.id.as_str()];
        let env = app_env(
            inherited.iter().cloned(),
            app.id.as_str(),
            app.port,
            sidecar,
            &read_dot_env(&app.dir),
            &app.env,
        );
        let probe = match (app.port, &app.health) {
            (Some(port), Some(path)) => Probe::Http {
                port,
                path: path.clone(),
            },
            (Some(port), None) => Probe::Tcp(port),
            (None, _) => Probe::None,
        };
        let mut depends_on: Vec<String> =
            redis_unit.iter().map(|r| r.launch.name.clone()).collect();
        depends_on.extend(app.depends_on.iter().map(|d| d.to_string()));
        units.push(UnitSpec {
            launch: crate::runtime::LaunchSpec {
                name: app.id.to_string(),
                program: app.command[0].clone(),
                args: app.command[1..].to_vec(),
                dir: app.dir.clone(),
                env,
            },
            probe,
            restart: app.restart,
            grace: app.grace_period,
            startup_timeout: app.startup_timeout,
            depends_on,
        });
    }
    units
}

/// The components and app channels every sidecar shares.
fn shared_parts(
    manifest: &Manifest,
    supervisor: &Supervisor,
    resources: components::Resources,
    stores: BTreeMap<String, components::stores::StateEntry>,
    pubsubs: BTreeMap<String, pubsub::PubsubEntry>,
) -> Arc<Shared> {
    let env_var = |name: &str| std::env::var(name).ok().filter(|t| !t.is_empty());
    let apps = manifest
        .apps
        .iter()
        .filter_map(|app| {
            let handle = supervisor.handle(app.id.as_str())?;
            let channel = AppChannel::supervised(
                app.id.as_str(),
                app.port,
                env_var("APP_API_TOKEN"),
                handle.watch(),
            );
            Some((app.id.to_string(), channel))
        })
        .collect();
    let secrets = resources
        .components
        .iter()
        .filter_map(|c| {
            let store = resources.secret_stores.get(&c.name)?;
            Some((c.name.clone(), (c.clone(), store.clone())))
        })
        .collect();
    let mut shared = Shared::with_stores(stores, env_var("DAPR_API_TOKEN"));
    shared.pubsubs = Arc::new(pubsubs);
    shared.secrets = secrets;
    shared.apps = apps;
    shared.declarative = resources.subscriptions;
    Arc::new(shared)
}

async fn start_sidecars(
    manifest: &Manifest,
    sidecars: &BTreeMap<String, SidecarPorts>,
    shared: &Arc<Shared>,
    supervisor: &Arc<Supervisor>,
) -> anyhow::Result<()> {
    for app in &manifest.apps {
        let port = sidecars[app.id.as_str()].http;
        let listener = tokio::net::TcpListener::bind(("127.0.0.1", port)).await.map_err(|err| {
            user_error(format!(
                "{}: cannot listen on sidecar port {port}: {err}\n  hint: free the port or set `dapr_http_port:` for this app",
                app.id
            ))
        })?;
        let mut state = SidecarState::new(app.id.as_str(), shared.clone(), app.max_body_size);
        if let Some(handle) = supervisor.handle(app.id.as_str()).cloned() {
            state.on_shutdown = Some(Box::new(move || {
                let handle = handle.clone();
                tokio::spawn(async move { handle.stop().await });
            }));
        }
        if let Some(channel) = shared.apps.get(app.id.as_str()) {
            Subscriber::new(
                channel.clone(),
                shared.http.clone(),
                shared.pubsubs.clone(),
                &shared.declarative,
                state.subscriptions.clone(),
            )
            .spawn();
        }
        tokio::spawn(crate::sidecar::serve(listener, Arc::new(state)));
    }
    Ok(())
}

/// Problems that would only show up one by one later are reported together, before anything starts.
fn preflight(manifest: &Manifest, units: &[UnitSpec]) -> anyhow::Result<()> {
    let mut problems = Vec::new();
    for app in &manifest.apps {
        if let Some(port) = app.port.filter(|p| !is_free(*p)) {
            problems.push(format!(
                "{}: port {port} is already in use by another process\n  hint: stop it (`ss -ltnp 'sport = :{port}'` shows who), or change `port:` in {}",
                app.id,
                manifest.file.display()
            ));
        }
    }
    for unit in units {
        if let Err(err) = resolve_program(&unit.launch) {
            problems.push(format!(
                "{}: {err}\n  hint: install `{}` or fix `command:` in {}",
                unit.launch.name,
                unit.launch.program,
                manifest.file.display()
            ));
        }
    }
    if problems.is_empty() {
        Ok(())
    } else {
        Err(user_error(problems.join("\n")))
    }
}

/// Watches the apps' folders (and the manifest and resources) and reloads what changed.
fn start_watching(
    manifest: &Manifest,
    supervisor: &Arc<Supervisor>,
    stats: &Arc<ReloadStats>,
) -> anyhow::Result<watch::Watch> {
    let (watching, mut changes) = watch::start(watch::targets(manifest)).map_err(user_error)?;
    tracing::debug!("watching {} folder(s)", watch::watched_count(&watching));
    let drivers = reload::drivers(&manifest.apps, supervisor.clone(), stats.clone());
    tokio::spawn(async move {
        while let Some(change) = changes.recv().await {
            match drivers.get(&change.target) {
                Some(driver) => {
                    let _ = driver.send(change);
                }
                None => tracing::info!(
                    "{} changed: restart daca to apply it (reconciling while running is not available yet)",
                    change.target
                ),
            }
        }
    });
    Ok(watching)
}

async fn start_control(
    manifest: &Manifest,
    supervisor: &Arc<Supervisor>,
    logs: &Arc<LogBus>,
    redis_plan: &RedisPlan,
    sidecars: &BTreeMap<String, SidecarPorts>,
    down: &Arc<Notify>,
    reloads: &Arc<ReloadStats>,
) -> anyhow::Result<String> {
    let listener = tokio::net::TcpListener::bind(("127.0.0.1", 0)).await?;
    let address = listener.local_addr()?.to_string();
    let redis_mode = match redis_plan {
        RedisPlan::External { .. } => "external",
        RedisPlan::Server { .. } => "redis-server",
        RedisPlan::Embedded { .. } => "embedded",
    };
    let state = Arc::new(ControlState {
        project: manifest.name.clone(),
        supervisor: supervisor.clone(),
        logs: logs.clone(),
        redis_mode: redis_mode.into(),
        redis_url: redis_plan.url(),
        apps: manifest
            .apps
            .iter()
            .map(|a| (a.id.to_string(), (a.port, sidecars[a.id.as_str()])))
            .collect(),
        down: down.clone(),
        reloads: reloads.clone(),
    });
    tokio::spawn(control::serve(listener, state, std::future::pending()));
    Ok(address)
}

/// Keeps `.daca/run.json` naming every live process group, rewritten on every state change.
fn record_runs(
    manifest: &Manifest,
    supervisor: &Arc<Supervisor>,
    control: &str,
) -> anyhow::Result<tokio::task::JoinHandle<()>> {
    let write = {
        let state = StateDir::new(&manifest.root);
        let supervisor = supervisor.clone();
        let base = RunRecord {
            project: manifest.name.clone(),
            daca: ProcessRef::me(),
            control: control.to_string(),
            groups: BTreeMap::new(),
        };
        move || {
            let mut record = base.clone();
            record.groups = supervisor
                .statuses()
                .iter()
                .filter_map(|s| Some((s.name.clone(), ProcessRef::of(s.pid?)?)))
                .collect();
            state.write(&record)
        }
    };
    write()?;
    let mut events = supervisor.subscribe();
    Ok(tokio::spawn(async move {
        // A lagged receiver still rewrites from the current statuses, so nothing is missed.
        while !matches!(
            events.recv().await,
            Err(tokio::sync::broadcast::error::RecvError::Closed)
        ) {
            if let Err(err) = write() {
                tracing::error!("{err}");
            }
        }
    }))
}

fn announce(
    manifest: &Manifest,
    redis_plan: &RedisPlan,
    sidecars: &BTreeMap<String, SidecarPorts>,
    control: &str,
) {
    tracing::info!(
        "project {} · redis: {} · control API: http://{control}",
        manifest.name,
        redis_plan.describe()
    );
    for app in &manifest.apps {
        let ports = sidecars[app.id.as_str()];
        let port = app.port.map(|p| format!("app :{p} · ")).unwrap_or_default();
        tracing::info!(
            "{}: {port}DAPR_HTTP_PORT={} DAPR_GRPC_PORT={}",
            app.id,
            ports.http,
            ports.grpc
        );
    }
}

fn report_ready(supervisor: Arc<Supervisor>, started: Instant) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let apps = supervisor
            .handles()
            .filter(|h| h.name() != redis::UNIT_NAME)
            .count();
        if supervisor.wait_all_ready(Duration::from_secs(3600)).await {
            tracing::info!(
                "all {apps} app(s) ready in {} ms · Ctrl-C to stop",
                started.elapsed().as_millis()
            );
        }
    })
}

async fn wait_for_stop(down: &Notify) {
    let mut terminate = signal(SignalKind::terminate())
        .expect("UNWRAP: installing a SIGTERM handler only fails outside a runtime");
    tokio::select! {
        _ = tokio::signal::ctrl_c() => tracing::info!("Ctrl-C: stopping (press Ctrl-C again to force)"),
        _ = terminate.recv() => tracing::info!("SIGTERM: stopping"),
        _ = down.notified() => tracing::info!("`daca down`: stopping"),
    }
}

/// Graceful stop in reverse dependency order; a second Ctrl-C or SIGTERM SIGKILLs everything.
async fn stop(supervisor: &Arc<Supervisor>) {
    let graceful = supervisor.shutdown();
    tokio::pin!(graceful);
    let mut terminate = signal(SignalKind::terminate())
        .expect("UNWRAP: installing a SIGTERM handler only fails outside a runtime");
    tokio::select! {
        _ = &mut graceful => {}
        _ = async { tokio::select! { _ = tokio::signal::ctrl_c() => {}, _ = terminate.recv() => {} } } => {
            tracing::warn!("forcing: SIGKILL to every app");
            supervisor.force_kill();
            graceful.await;
        }
    }
    tracing::info!("stopped");
}
