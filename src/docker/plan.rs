//! Which apps run in containers, and what each container is: image, command, environment,
//! source mount. Held by `daca up` for the whole run (apps added to daca.yaml later use it too).

use std::collections::HashMap;
use std::sync::Arc;

use super::{DockerError, Engine, Owner, image};
use crate::env::{self, SidecarPorts};
use crate::logs::LogBus;
use crate::manifest::{AppSpec, ImageSource, MountChoice, RuntimeChoice};
use crate::runtime::ContainerLaunch;
use crate::supervisor::Unit;

/// The engine and the run's owner labels.
pub struct ContainerPlan {
    pub engine: Engine,
    pub owner: Owner,
    pub logs: Arc<LogBus>,
}

impl ContainerPlan {
    /// Whether `app` runs in a container, now that an engine answers: when it asks for one,
    /// or (`runtime: auto`) when it has an image.
    pub fn runs(&self, app: &AppSpec) -> bool {
        match app.process.runtime {
            RuntimeChoice::Docker => true,
            RuntimeChoice::Process => false,
            RuntimeChoice::Auto => app.process.image.is_some(),
        }
    }

    /// The image an app's container runs.
    pub fn image_of(&self, app: &AppSpec) -> String {
        match &app.process.image {
            Some(ImageSource::Image(reference)) => reference.clone(),
            // An app's instances run one image.
            _ => self.owner.image_tag(app.app_id()),
        }
    }

    /// The container of `app`. Its environment is the app's own (Dapr variables, `.env`,
    /// `env:`), never the host's: a container has its own PATH and HOME.
    pub fn app_launch(&self, app: &AppSpec, ports: SidecarPorts) -> ContainerLaunch {
        let env = env::for_app(app, ports, std::iter::empty());
        let unit = Unit::App(app.id.clone());
        let mut binds: Vec<(String, String)> = self
            .mount_point(app)
            .map(|target| vec![(app.dir.display().to_string(), target)])
            .unwrap_or_default();
        binds.extend(app.process.volumes.iter().map(|v| {
            let target = match v.read_only {
                true => format!("{}:ro", v.target),
                false => v.target.clone(),
            };
            (v.host.display().to_string(), target)
        }));
        ContainerLaunch {
            name: self.owner.container_name(&unit),
            image: self.image_of(app),
            cmd: (!app.process.command.is_empty()).then(|| app.process.command.clone()),
            env,
            binds,
            volumes: Vec::new(),
            labels: self.owner.labels(&unit),
            warm: app.reload.mode == crate::manifest::ReloadMode::Restart,
            network: None,
            stop_signal: None,
        }
    }

    /// Where the app's folder is mounted: `mount:`, else the Dockerfile's WORKDIR.
    pub fn mount_point(&self, app: &AppSpec) -> Option<String> {
        match (&app.process.mount, &app.process.image) {
            (MountChoice::At(path), _) => Some(path.clone()),
            (MountChoice::None, _) => None,
            (MountChoice::Workdir, Some(ImageSource::Build(build))) => {
                let text = std::fs::read_to_string(build.dockerfile_path()).ok()?;
                image::dockerfile_workdir(&text, build.target.as_deref())
            }
            (MountChoice::Workdir, _) => None,
        }
    }

    /// Builds the app's image (through the engine's cache), or makes sure its `image:` is there.
    pub async fn prepare(&self, app: &AppSpec) -> Result<String, DockerError> {
        let id = app.id.as_str();
        // Labelled as the app's, not the instance's: its instances share one image.
        let unit = Unit::App(app.app_id().clone());
        match &app.process.image {
            Some(ImageSource::Build(build)) => {
                // Stable labels only: each is a build step (the classic builder's LABEL), and a
                // run id would make every run build a new image.
                let labels: HashMap<String, String> = self
                    .owner
                    .labels(&unit)
                    .into_iter()
                    .filter(|(k, _)| k == super::LABEL_PROJECT || k == super::LABEL_APP)
                    .collect();
                let tag = self.owner.image_tag(app.app_id());
                image::build(&self.engine, id, build, &tag, &labels, &self.logs).await
            }
            Some(ImageSource::Image(reference)) => {
                let hint = "pre-load it (`docker load` / `docker build -t` it), fix `image:`, or set `runtime: process`";
                image::ensure(&self.engine, reference, &self.logs, id, hint).await
            }
            None => Err(DockerError::ImageMissing {
                image: String::new(),
                cause: format!("{id} has no `build:` or `image:`"),
                hint: "add `build: {}` or `image:`".into(),
            }),
        }
    }
}
