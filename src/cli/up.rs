//! `daca up`: everything in the foreground until Ctrl-C, SIGTERM or `daca down`.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::signal::unix::{SignalKind, signal};
use tokio::sync::Notify;

use super::containers;
use super::live::{self, Live};
use super::units::{app_unit, check_program};
use super::{UpArgs, user_error};
use crate::control::{self, ControlState};
use crate::docker::{ContainerPlan, Owner, run_id};
use crate::env::SidecarPorts;
use crate::logs::{LogBus, LogFormat, Printer};
use crate::manifest::{self, Manifest};
use crate::ports::{PortPicker, is_free};
use crate::project::{ProcessRef, RunRecord, StateDir};
use crate::redis::{self, RedisPlan};
use crate::runtime::Runtimes;
use crate::runtime::process::ProcessRuntime;
use crate::supervisor::{Supervisor, UnitSpec};

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
    let owner = Owner::new(&manifest.name, &manifest.root, &run_id());
    let engine = containers::connect(&manifest).await?;
    if let Some(engine) = &engine {
        containers::clear_leftovers(engine, &owner).await;
    }
    let offer = containers::redis_offer(engine.as_ref(), &owner, &manifest).await;
    let mut picker = PortPicker::default();
    let redis_plan = redis::plan(
        &manifest.redis,
        state.path(),
        std::env::var_os("PATH"),
        &mut picker,
        offer.as_ref(),
    )?;
    let logs = LogBus::new(LOG_BUFFER);
    let mut sources: Vec<String> = vec![redis::UNIT_NAME.to_string()];
    sources.extend(manifest.apps.iter().map(|a| a.id.to_string()));
    let printer = Printer::new(format, sources).spawn(&logs);
    let redis_plan = {
        let fallback = || {
            let mut picker = PortPicker::default();
            let path = std::env::var_os("PATH");
            Ok(redis::plan(
                &manifest.redis,
                state.path(),
                path,
                &mut picker,
                None,
            )?)
        };
        containers::prepare_redis(redis_plan, engine.as_ref(), &logs, &manifest, fallback).await?
    };
    if let RedisPlan::Embedded { reason } = &redis_plan {
        tracing::warn!(
            "{reason}: using the embedded in-memory store (data lasts until daca stops); install redis-server or Docker for Redis"
        );
    }
    let plan = engine.map(|engine| {
        Arc::new(ContainerPlan {
            engine,
            owner,
            logs: logs.clone(),
        })
    });
    preflight(&manifest, &redis_plan, plan.as_deref())?;
    let components = live::load_components(&manifest, &redis_plan)?;
    if let Some(plan) = &plan {
        containers::prepare_apps(plan, &manifest).await?;
    }
    let redis_in_container = matches!(redis_plan, RedisPlan::Container { .. });
    let reaper = plan
        .as_deref()
        .filter(|plan| redis_in_container || manifest.apps.iter().any(|a| plan.runs(a)))
        .and_then(containers::start_reaper);
    // Nothing starts before `start_all`; the supervisor exists first so that the sidecars can
    // follow each app's readiness.
    let inherited: Vec<(String, String)> = std::env::vars().collect();
    let runtimes = Runtimes {
        process: ProcessRuntime,
        containers: plan.as_ref().map(|p| {
            Arc::new(crate::docker::ContainerRuntime::new(
                p.engine.docker.clone(),
            ))
        }),
    };
    let supervisor = Arc::new(Supervisor::new(
        redis_plan.unit(inherited).into_iter().collect(),
        Arc::new(runtimes),
        logs.clone(),
    ));
    let live = Live::new(
        manifest.clone(),
        redis_plan.clone(),
        picker,
        supervisor.clone(),
        components,
        plan.clone(),
    );
    // Sidecars listen before any app starts, and stay up while apps restart.
    for app in &manifest.apps {
        live.add_app(app, None).await?;
    }

    let down = Arc::new(Notify::new());
    let control_address = start_control(&manifest, &live, &logs, &redis_plan, &down).await?;
    let recorder = record_runs(&manifest, &supervisor, &control_address)?;
    let timeline = record_events(&supervisor, live.events.clone());

    announce(&manifest, &redis_plan, &live.ports(), &control_address);
    let started = Instant::now();
    supervisor.start_all();
    let ready_report = report_ready(supervisor.clone(), started);
    if !args.no_watch {
        live.watch()?;
    }

    wait_for_stop(&down).await;
    ready_report.abort();
    stop(&supervisor).await;
    containers::finish(plan.as_ref(), reaper).await;
    recorder.abort();
    timeline.abort();
    // Wait for the recorder to be gone, or a last write could land after the clear.
    let _ = recorder.await;
    state.clear();
    drop(printer);
    Ok(())
}

/// Problems that would only show up one by one later are reported together, before anything starts.
fn preflight(
    manifest: &Manifest,
    redis_plan: &RedisPlan,
    containers: Option<&ContainerPlan>,
) -> anyhow::Result<()> {
    let unused = SidecarPorts { http: 0, grpc: 0 };
    let units: Vec<UnitSpec> = redis_plan
        .unit(Vec::new())
        .into_iter()
        .chain(
            manifest
                .apps
                .iter()
                .map(|a| app_unit(a, unused, redis_plan, containers)),
        )
        .collect();
    let mut problems = Vec::new();
    for app in &manifest.apps {
        if let Some(port) = app.process.port.filter(|p| !is_free(*p)) {
            problems.push(format!(
                "{}: port {port} is already in use by another process\n  hint: stop it (`ss -ltnp 'sport = :{port}'` shows who), or change `port:` in {}",
                app.id,
                manifest.file.display()
            ));
        }
    }
    for unit in &units {
        if unit.launch.program.is_empty() {
            problems.push(format!(
                "{}: has no `command`, and runs as a host process (no Docker engine)\n  hint: start Docker, or add `command:` in {}",
                unit.launch.name,
                manifest.file.display()
            ));
            continue;
        }
        if let Err(err) = check_program(unit) {
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

async fn start_control(
    manifest: &Manifest,
    live: &Arc<Live>,
    logs: &Arc<LogBus>,
    redis_plan: &RedisPlan,
    down: &Arc<Notify>,
) -> anyhow::Result<String> {
    let listener = tokio::net::TcpListener::bind(("127.0.0.1", 0)).await?;
    let address = listener.local_addr()?.to_string();
    let redis_mode = match redis_plan {
        RedisPlan::External { .. } => "external",
        RedisPlan::Server { .. } => "redis-server",
        RedisPlan::Container { .. } => "container",
        RedisPlan::Embedded { .. } => "embedded",
    };
    let state = Arc::new(ControlState {
        project: manifest.name.clone(),
        supervisor: live.supervisor.clone(),
        logs: logs.clone(),
        redis_mode: redis_mode.into(),
        redis_url: redis_plan.url(),
        apps: std::sync::RwLock::new(live.ports()),
        down: down.clone(),
        reloads: live.reloads.clone(),
        inspect: Some(Arc::new(super::inspect::LiveInspect(Arc::downgrade(live)))),
    });
    live.set_control(state.clone());
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

/// Puts every app's state change on the dashboard's timeline.
fn record_events(
    supervisor: &Arc<Supervisor>,
    events: Arc<crate::events::EventLog>,
) -> tokio::task::JoinHandle<()> {
    let mut changes = supervisor.subscribe();
    let supervisor = supervisor.clone();
    tokio::spawn(async move {
        while let Ok(change) = changes.recv().await {
            let status = supervisor.handle(&change.name).map(|h| h.status());
            let detail = status.as_ref().and_then(|s| match change.state {
                crate::supervisor::AppState::Ready => {
                    s.ready_after_ms.map(|ms| format!(" in {ms} ms"))
                }
                crate::supervisor::AppState::Starting => change.pid.map(|p| format!(" (pid {p})")),
                _ => s
                    .message
                    .clone()
                    .or(s.last_exit.map(|e| e.to_string()))
                    .map(|m| format!(": {m}")),
            });
            let message = format!("{}{}", change.state.as_str(), detail.unwrap_or_default());
            events.push("app", Some(&change.name), message, None);
        }
    })
}

fn announce(
    manifest: &Manifest,
    redis_plan: &RedisPlan,
    sidecars: &BTreeMap<String, (Option<u16>, SidecarPorts)>,
    control: &str,
) {
    tracing::info!(
        "project {} · redis: {} · dashboard: http://{control}/",
        manifest.name,
        redis_plan.describe()
    );
    for app in &manifest.apps {
        let ports = sidecars[app.id.as_str()].1;
        let port = app.process.port.map(|p| format!("app :{p} · ")).unwrap_or_default();
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
            .iter()
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
