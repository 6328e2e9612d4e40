//! The supervised unit of each app: what to run (a host process or a container) and how to
//! tell it is ready; and the checks that would otherwise fail one by one after start-up.

use crate::docker::ContainerPlan;
use crate::env::{self, SidecarPorts};
use crate::error::Problem;
use crate::manifest::{AppSpec, Manifest, ReloadMode};
use crate::ports::is_free;
use crate::runtime::process::resolve_program;
use crate::runtime::{LaunchSpec, ProcessLaunch};
use crate::supervisor::{Probe, Unit, UnitSpec};

/// Where an app's process runs when it has a pod, with its sidecar at the pod's own
/// 3500/50001, reached from the host at `host_port`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InPod {
    pub join: PodJoin,
    pub host_port: Option<u16>,
}

/// How the app's process gets into its pod.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PodJoin {
    /// A host process: through `daca __pod-exec HOLDER --`.
    Process(crate::runtime::InPod),
    /// A container: on its pod container's network (`network`), probed through the pod's
    /// relay `socket`.
    Container {
        network: String,
        socket: std::path::PathBuf,
        hosts: std::path::PathBuf,
    },
}

/// The sidecar's ports inside every pod: the SDKs' defaults.
pub const POD_SIDECAR: SidecarPorts = SidecarPorts {
    http: 3500,
    grpc: 50001,
};

/// The unit that runs one app; in a container when it has an image and `containers` (an
/// engine) is there, or when it asks for one; in its pod when it has one.
pub fn app_unit(
    app: &AppSpec,
    ports: SidecarPorts,
    containers: Option<&ContainerPlan>,
    in_pod: Option<&InPod>,
) -> UnitSpec {
    let launch = match containers.filter(|plan| plan.runs(app)) {
        Some(plan) => {
            let launch = match in_pod.map(|pod| &pod.join) {
                Some(PodJoin::Container { network, hosts, .. }) => {
                    let mut launch = plan.app_launch(app, POD_SIDECAR);
                    launch.network = Some(crate::runtime::PodNetwork {
                        mode: network.clone(),
                        hosts: hosts.display().to_string(),
                    });
                    launch
                }
                _ => plan.app_launch(app, ports),
            };
            LaunchSpec::Container(launch)
        }
        None => {
            let (program, args) = match app.process.command.split_first() {
                Some((program, args)) => (program.clone(), args.to_vec()),
                None => (String::new(), Vec::new()),
            };
            let (ports, pod) = match in_pod.map(|pod| &pod.join) {
                Some(PodJoin::Process(join)) => (POD_SIDECAR, Some(join.clone())),
                _ => (ports, None),
            };
            LaunchSpec::Process(ProcessLaunch {
                program,
                args,
                dir: app.dir.clone(),
                env: env::for_app(app, ports, std::env::vars()),
                warm: app.reload.mode == ReloadMode::Restart,
                pod,
            })
        }
    };
    let port = match in_pod {
        Some(pod) => pod.host_port,
        None => app.process.port,
    };
    let probe = match (port, &app.supervision.health) {
        (Some(port), Some(path)) => Probe::Http {
            port,
            path: path.clone(),
        },
        (Some(port), None) => match (in_pod.map(|pod| &pod.join), app.process.port) {
            (Some(PodJoin::Process(join)), Some(inside)) => Probe::PodTcp {
                holder: join.holder,
                port: inside,
            },
            (Some(PodJoin::Container { socket, .. }), Some(inside)) => Probe::Relay {
                socket: socket.clone(),
                port: inside,
            },
            _ => Probe::Tcp(port),
        },
        (None, _) => Probe::None,
    };
    UnitSpec {
        unit: Unit::App(app.id.clone()),
        name: app.id.to_string(),
        launch,
        probe,
        restart: app.supervision.restart,
        grace: app.supervision.grace_period,
        startup_timeout: app.supervision.startup_timeout,
    }
}

/// Whether the unit can be launched: a host process needs a command found on its PATH (a
/// container's command runs inside its image).
pub fn check_launch(app: &AppSpec, unit: &UnitSpec, file: &std::path::Path) -> Result<(), Problem> {
    let LaunchSpec::Process(process) = &unit.launch else {
        return Ok(());
    };
    if process.program.is_empty() {
        return Err(Problem::new(format!(
            "{}: has no `command`, and runs as a host process (no Docker engine)",
            app.id
        ))
        .hint(format!(
            "start Docker, or add `command:` in {}",
            file.display()
        )));
    }
    resolve_program(process).map(|_| ()).map_err(|err| {
        Problem::new(format!("{}: {err}", app.id)).hint(format!(
            "install `{}` or fix `command:` in {}",
            process.program,
            file.display()
        ))
    })
}

/// A fixed app port that something else already listens on.
pub fn check_port(app: &AppSpec, file: &std::path::Path) -> Result<(), Problem> {
    match app.process.port.filter(|p| !is_free(*p)) {
        Some(port) => Err(Problem::new(format!(
            "{}: port {port} is already in use by another process",
            app.id
        ))
        .hint(format!(
            "stop it (`ss -ltnp 'sport = :{port}'` shows who), or change `port:` in {}",
            file.display()
        ))),
        None => Ok(()),
    }
}

/// Problems that would only show up one by one later, reported together before anything
/// starts: busy app ports, missing programs.
pub fn preflight(manifest: &Manifest, containers: Option<&ContainerPlan>) -> Result<(), Problem> {
    let unused = SidecarPorts { http: 0, grpc: 0 };
    let mut problems = Vec::new();
    for app in &manifest.apps {
        // An app in a pod has its port to itself (its host port is chosen).
        if !super::in_pod(app, containers) {
            problems.extend(check_port(app, &manifest.file).err());
        }
        let unit = app_unit(app, unused, containers, None);
        problems.extend(check_launch(app, &unit, &manifest.file).err());
        // A container mounts them; so does a process's pod (`crate::pod::mounts`).
        let mounted =
            containers.is_some_and(|plan| plan.runs(app)) || super::in_pod(app, containers);
        if !mounted && !app.process.volumes.is_empty() {
            let targets: Vec<&str> = app
                .process
                .volumes
                .iter()
                .map(|v| v.target.as_str())
                .collect();
            tracing::warn!(
                "{}: runs as a process on the machine's network (no pod), so its volumes are not mounted ({}): it reads the files where they are on this machine",
                app.id,
                targets.join(", ")
            );
        }
    }
    match problems.len() {
        0 => Ok(()),
        1 => Err(problems.remove(0)),
        _ => Err(Problem::all(problems)),
    }
}
