//! The supervised unit of each app: what to run (a host process or a container), how to tell
//! it is ready, and what it waits for.

use crate::docker::ContainerPlan;
use crate::env::{self, SidecarPorts};
use crate::manifest::AppSpec;
use crate::redis::{self, RedisPlan};
use crate::runtime::process::resolve_program;
use crate::runtime::{LaunchError, LaunchSpec};
use crate::supervisor::{Probe, UnitSpec};

/// The unit that runs one app; in a container when it has an image and `containers` (an
/// engine) is there, or when it asks for one.
pub fn app_unit(
    app: &AppSpec,
    ports: SidecarPorts,
    redis_plan: &RedisPlan,
    containers: Option<&ContainerPlan>,
) -> UnitSpec {
    let container = containers
        .filter(|plan| plan.runs(app))
        .map(|plan| plan.app_launch(app, ports));
    let env = match container {
        Some(_) => Vec::new(),
        None => env::for_app(app, ports, std::env::vars()),
    };
    let probe = match (app.process.port, &app.supervision.health) {
        (Some(port), Some(path)) => Probe::Http {
            port,
            path: path.clone(),
        },
        (Some(port), None) => Probe::Tcp(port),
        (None, _) => Probe::None,
    };
    let mut depends_on: Vec<String> = if redis_plan.is_supervised() {
        vec![redis::UNIT_NAME.to_string()]
    } else {
        Vec::new()
    };
    depends_on.extend(app.supervision.depends_on.iter().map(|d| d.to_string()));
    let (program, args) = match (&container, app.process.command.split_first()) {
        (Some(c), None) => (c.image.clone(), Vec::new()),
        (_, Some((program, args))) => (program.clone(), args.to_vec()),
        (None, None) => (String::new(), Vec::new()),
    };
    UnitSpec {
        launch: LaunchSpec {
            name: app.id.to_string(),
            program,
            args,
            dir: app.dir.clone(),
            env,
            container,
        },
        probe,
        restart: app.supervision.restart,
        grace: app.supervision.grace_period,
        startup_timeout: app.supervision.startup_timeout,
        depends_on,
    }
}

/// A host process's program must be on PATH; a container's command runs inside its image.
pub fn check_program(unit: &UnitSpec) -> Result<(), LaunchError> {
    if unit.launch.container.is_some() {
        return Ok(());
    }
    resolve_program(&unit.launch).map(|_| ())
}
