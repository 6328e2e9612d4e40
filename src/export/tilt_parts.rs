//! What a Tiltfile adds to the apps found in its manifests (see `crate::tilt::project`):
//! builds, `k8s_resource`s, and the `local_resource`s that serve, which become processes.

use std::collections::BTreeMap;
use std::path::Path;

use super::import::{env_block, list_line, scalar};

/// What a Tiltfile adds to an app found in the manifests (see `crate::tilt::project`).
#[derive(Debug, Clone, Default)]
pub struct FromTilt {
    /// The image is built from this folder (`dir:`) and Dockerfile (relative to it).
    pub build: Option<(String, Option<String>)>,
    /// Where live_update syncs the folder to (`mount:`).
    pub mount: Option<String>,
    /// `k8s_resource(port_forwards=…)`: host port → pod port.
    pub ports: Vec<(i64, i64)>,
    /// `k8s_resource(resource_deps=…)` that are apps.
    pub depends_on: Vec<String>,
    /// The build's Dockerfile's command, without its own reloader (when the Deployment gives
    /// none): what the app runs as a process.
    pub command: Vec<String>,
    /// `live_update`'s `run` steps on dependency files (`setup:`).
    pub setup: Option<String>,
    /// Its other `run` steps (`on_change:`).
    pub on_change: Vec<(String, Vec<String>)>,
}

/// What a Tiltfile says about the apps, by image (builds) and by workload name (resources).
#[derive(Debug, Default)]
pub struct TiltParts {
    pub builds: BTreeMap<String, TiltBuild>,
    pub resources: BTreeMap<String, TiltResource>,
    /// `local_resource`s that serve: processes of the machine's.
    pub locals: Vec<TiltLocal>,
    /// `local_resource`s with a `cmd` alone: the project's `steps:`.
    pub steps: Vec<TiltStep>,
}

/// A Tiltfile's `local_resource` with a `cmd` alone.
#[derive(Debug, Clone)]
pub struct TiltStep {
    pub name: String,
    /// One shell line.
    pub command: String,
    /// `dir`, relative to the Tiltfile.
    pub dir: Option<String>,
    /// Its `deps`, relative to `dir`: a change runs it again.
    pub watch: Vec<String>,
}

impl TiltParts {
    /// The daca.yaml's `steps:`, if the Tiltfile has any.
    pub(super) fn steps_yaml(&self) -> String {
        if self.steps.is_empty() {
            return String::new();
        }
        let mut out = "steps:\n".to_string();
        for step in &self.steps {
            out.push_str(&format!(
                "  - name: {}\n    command: [sh, -c, {}]\n",
                scalar(&step.name),
                scalar(&step.command)
            ));
            if let Some(dir) = &step.dir {
                out.push_str(&format!("    dir: {}\n", scalar(dir)));
            }
            list_line(&mut out, "watch", &step.watch);
        }
        out
    }
}

/// A Tiltfile's `local_resource` with a `serve_cmd`.
#[derive(Debug, Clone)]
pub struct TiltLocal {
    pub name: String,
    /// One shell line: its `cmd`, then its `serve_cmd`.
    pub command: String,
    /// `serve_dir`, relative to the Tiltfile.
    pub dir: Option<String>,
    /// Files and folders whose change restarts it, relative to its `dir`.
    pub deps: Vec<String>,
    pub resource_deps: Vec<String>,
    pub env: Vec<(String, String)>,
    /// From its `readiness_probe`: the port it is ready on, and the HTTP path that says so.
    pub port: Option<u16>,
    pub health: Option<String>,
}

impl TiltLocal {
    /// Its daca.yaml entry; `apps` are the project's app-ids (what it may wait for).
    pub(super) fn yaml(&self, apps: &[String]) -> String {
        let id = app_id_of(&self.name);
        let mut out = format!(
            "  - id: {}\n    dir: {}\n    command: [sh, -c, {}]\n    dapr: false\n    network: host\n",
            scalar(&id),
            scalar(self.dir.as_deref().unwrap_or("./")),
            scalar(&self.command)
        );
        let deps: Vec<&String> = self
            .resource_deps
            .iter()
            .filter(|d| apps.contains(d))
            .collect();
        list_line(&mut out, "depends_on", &deps);
        if let Some(port) = self.port {
            out.push_str(&format!("    port: {port}\n"));
            if let Some(path) = &self.health {
                out.push_str(&format!("    health: {}\n", scalar(path)));
            }
        }
        // Tilt restarts it when its deps change, and never without them.
        match self.deps.is_empty() {
            true => out.push_str("    reload: none\n"),
            false => list_line(&mut out, "watch", &self.deps),
        }
        env_block(&mut out, &self.env);
        out
    }
}

/// An app-id from a Tilt resource name (`db_migrate` → `db-migrate`).
pub(super) fn app_id_of(name: &str) -> String {
    let id: String = name
        .to_lowercase()
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() { c } else { '-' })
        .collect();
    id.trim_matches('-').to_string()
}

/// An image a Tiltfile builds.
#[derive(Debug, Clone)]
pub struct TiltBuild {
    /// The build folder (`dir:`), relative to the Tiltfile.
    pub dir: String,
    /// Its Dockerfile, relative to the folder, when not `Dockerfile`.
    pub dockerfile: Option<String>,
    /// Where `live_update` syncs the folder to.
    pub mount: Option<String>,
    /// `live_update`'s `run` steps on dependency files, as one shell command.
    pub setup: Option<String>,
    /// Its other `run` steps: (shell command, triggers relative to the folder).
    pub on_change: Vec<(String, Vec<String>)>,
}

/// A Tiltfile's `k8s_resource`.
#[derive(Debug, Clone, Default)]
pub struct TiltResource {
    /// Host port → pod port.
    pub ports: Vec<(i64, i64)>,
    pub deps: Vec<String>,
}

impl TiltParts {
    /// What the Tiltfile says about the app whose image is `image` and whose workload is
    /// `workload` (or its app-id).
    pub(super) fn for_app(&self, image: &str, workload: &str, id: &str, dir: &Path) -> FromTilt {
        // Tilt matches an image by its name, whatever tag the manifest has.
        let name = image.rsplit_once(':').map_or(image, |(n, _)| n);
        let build = self.builds.get(image).or_else(|| self.builds.get(name));
        let resource = self
            .resources
            .get(workload)
            .or_else(|| self.resources.get(id));
        let command = build
            .and_then(|b| {
                let file = b.dockerfile.as_deref().unwrap_or("Dockerfile");
                std::fs::read_to_string(dir.join(&b.dir).join(file)).ok()
            })
            .map(|text| super::dockerfile::for_daca(super::dockerfile::command(&text)))
            .unwrap_or_default();
        FromTilt {
            command,
            build: build.map(|b| (b.dir.clone(), b.dockerfile.clone())),
            mount: build.and_then(|b| b.mount.clone()),
            setup: build.and_then(|b| b.setup.clone()),
            on_change: build.map(|b| b.on_change.clone()).unwrap_or_default(),
            ports: resource.map(|r| r.ports.clone()).unwrap_or_default(),
            depends_on: resource.map(|r| r.deps.clone()).unwrap_or_default(),
        }
    }
}
