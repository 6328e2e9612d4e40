//! Containers through the Docker Engine API (bollard): finding and connecting to the engine,
//! ownership labels and names, images (pull, build), running apps as containers, and removing
//! what daca created. See docs/containers.md for the design (pods, source mounts).

mod container;
pub mod endpoint;
mod exec;
pub mod image;
pub mod plan;
pub mod pod;
pub mod sweep;

use std::collections::{BTreeMap, HashMap};
use std::path::Path;
use std::time::Duration;

use bollard::Docker;

use crate::manifest::AppId;
use crate::supervisor::Unit;

pub use container::ContainerRuntime;
pub use endpoint::Endpoint;
pub use plan::ContainerPlan;

/// Labels on everything daca creates; `daca down` and the next `daca up` find leftovers by them
/// and never touch anything without them.
pub const LABEL_PROJECT: &str = "dev.daca.project";
/// The project's folder, so two projects with one name do not touch each other's containers.
pub const LABEL_ROOT: &str = "dev.daca.root";
pub const LABEL_APP: &str = "dev.daca.app";
/// One `daca up`: what a killed daca leaves is found by it.
pub const LABEL_RUN: &str = "dev.daca.run";
/// What a container was created from; a mismatch means create a new one.
pub const LABEL_CONFIG: &str = "dev.daca.config";

/// How long the engine may take to answer a ping before daca decides there is none.
const PING_TIMEOUT: Duration = Duration::from_secs(3);

/// Engine problems, each with what to do about it.
#[derive(Debug, thiserror::Error)]
pub enum DockerError {
    #[error(
        "no Docker engine answers at {host} ({source_of}): {cause}\n  hint: start Docker (or Podman / Rancher Desktop), set DOCKER_HOST, or use `runtime: process`"
    )]
    NoEngine {
        host: String,
        source_of: String,
        cause: String,
    },
    #[error(
        "no Docker engine found (DOCKER_HOST is unset, no Docker context is selected and no known socket exists)\n  hint: start Docker, set DOCKER_HOST, or use `runtime: process`"
    )]
    NotFound,
    #[error("image `{image}` is not available: {cause}\n  hint: {hint}")]
    ImageMissing {
        image: String,
        cause: String,
        hint: String,
    },
    #[error(
        "{app}: building {dockerfile} failed: {cause}\n  hint: fix the Dockerfile; the build output is above"
    )]
    Build {
        app: String,
        dockerfile: String,
        cause: String,
    },
    #[error(
        "a volume named `{0}` exists that daca did not create for this project folder\n  hint: remove it (`docker volume rm {0}`) if its data is not needed, or give the project another `name:`"
    )]
    ForeignVolume(String),
    #[error("Docker engine: {0}")]
    Api(#[from] bollard::errors::Error),
    #[error("{0}")]
    Io(#[from] std::io::Error),
}

/// A connected engine.
#[derive(Clone)]
pub struct Engine {
    pub docker: Docker,
    pub endpoint: Endpoint,
}

impl Engine {
    /// Finds the engine (see `endpoint.rs`), checks it answers and agrees on an API version
    /// (bollard speaks 1.53; Debian 12's engine 1.41).
    pub async fn connect() -> Result<Engine, DockerError> {
        let home = std::env::var_os("HOME").map(std::path::PathBuf::from);
        let var = |name: &str| std::env::var(name).ok();
        let lookup = endpoint::Lookup { var: &var, home };
        let endpoint = endpoint::resolve(&lookup).ok_or(DockerError::NotFound)?;
        Self::connect_to(endpoint).await
    }

    pub async fn connect_to(endpoint: Endpoint) -> Result<Engine, DockerError> {
        let failed = |cause: String| DockerError::NoEngine {
            host: endpoint.host.clone(),
            source_of: endpoint.source.clone(),
            cause,
        };
        let docker =
            Docker::connect_with_host(&endpoint.host).map_err(|e| failed(e.to_string()))?;
        match tokio::time::timeout(PING_TIMEOUT, docker.ping()).await {
            Err(_) => return Err(failed(format!("no answer within {PING_TIMEOUT:?}"))),
            Ok(Err(err)) => return Err(failed(err.to_string())),
            Ok(Ok(_)) => {}
        }
        let docker = docker
            .negotiate_version()
            .await
            .map_err(|e| failed(e.to_string()))?;
        Ok(Engine { docker, endpoint })
    }
}

/// Who owns what daca creates: one project folder, one run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Owner {
    pub project: String,
    pub root: String,
    pub run: String,
}

impl Owner {
    pub fn new(project: &str, root: &Path, run: &str) -> Owner {
        Owner {
            project: project.to_string(),
            root: root.display().to_string(),
            run: run.to_string(),
        }
    }

    /// Labels for a container, image or volume of `app`.
    pub fn labels(&self, unit: &Unit) -> BTreeMap<String, String> {
        let app = unit_part(unit);
        [
            (LABEL_PROJECT, self.project.as_str()),
            (LABEL_ROOT, self.root.as_str()),
            (LABEL_APP, app.as_str()),
            (LABEL_RUN, self.run.as_str()),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
    }

    /// Whether `labels` mark something of this project (any run).
    pub fn owns(&self, labels: &HashMap<String, String>) -> bool {
        labels.get(LABEL_PROJECT) == Some(&self.project)
            && labels.get(LABEL_ROOT) == Some(&self.root)
    }

    /// The engine's label filter for this project; with `run`, only this run.
    pub fn filter(&self, run_only: bool) -> HashMap<String, Vec<String>> {
        let mut labels = vec![
            format!("{LABEL_PROJECT}={}", self.project),
            format!("{LABEL_ROOT}={}", self.root),
        ];
        if run_only {
            labels.push(format!("{LABEL_RUN}={}", self.run));
        }
        HashMap::from([("label".to_string(), labels)])
    }

    /// `daca-<project>-<app>`: what `docker ps` shows.
    pub fn container_name(&self, unit: &Unit) -> String {
        format!("daca-{}-{}", name_part(&self.project), unit_part(unit))
    }

    /// The tag daca builds an app's image as.
    pub fn image_tag(&self, app: &AppId) -> String {
        format!("daca-{}-{}:dev", name_part(&self.project), app.as_str()).to_lowercase()
    }

    /// The named volume that keeps a containerized server's data across runs.
    pub fn volume(&self, unit: &Unit) -> String {
        format!("daca-{}-{}-data", name_part(&self.project), unit_part(unit))
    }
}

/// A unit's part of container names and labels: `redis` for the managed Redis, the app-id
/// for an app, and `app.redis` for an app called `redis` (a dot is never in an app-id, so
/// no app can take Redis's name, nor Redis an app's).
fn unit_part(unit: &Unit) -> String {
    match unit {
        Unit::Redis => crate::redis::UNIT_NAME.to_string(),
        Unit::Postgres => crate::pgserver::UNIT_NAME.to_string(),
        Unit::App(id)
            if [crate::redis::UNIT_NAME, crate::pgserver::UNIT_NAME].contains(&id.as_str()) =>
        {
            format!("app.{id}")
        }
        Unit::App(id) => id.to_string(),
    }
}

/// A project name as Docker accepts it in names (`[a-zA-Z0-9_.-]`).
fn name_part(raw: &str) -> String {
    let cleaned: String = raw
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-') {
                c
            } else {
                '-'
            }
        })
        .collect();
    cleaned.trim_matches(['-', '.', '_']).to_lowercase()
}

/// A fresh run id: time and pid are unique enough for one machine.
pub fn run_id() -> String {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or_default();
    format!("{:x}-{:x}", std::process::id(), nanos & 0xffff_ffff_ffff)
}

/// Whether an engine error is a 404 (no such container, image or volume).
pub fn is_not_found(err: &bollard::errors::Error) -> bool {
    matches!(
        err,
        bollard::errors::Error::DockerResponseServerError {
            status_code: 404,
            ..
        }
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_and_labels() {
        let owner = Owner::new("My Shop", Path::new("/work/shop"), "r1");
        let app = |id: &str| Unit::App(AppId::parse(id).unwrap());
        assert_eq!(
            owner.container_name(&app("order-api")),
            "daca-my-shop-order-api"
        );
        let id = AppId::parse("order-api").unwrap();
        assert_eq!(owner.image_tag(&id), "daca-my-shop-order-api:dev");
        assert_eq!(owner.volume(&Unit::Redis), "daca-my-shop-redis-data");
        assert_eq!(owner.container_name(&Unit::Redis), "daca-my-shop-redis");
        assert_eq!(
            owner.container_name(&app("redis")),
            "daca-my-shop-app.redis",
            "an app called redis never takes Redis's container"
        );
        let labels: HashMap<String, String> = owner.labels(&app("order-api")).into_iter().collect();
        assert!(owner.owns(&labels));
        let other = Owner::new("My Shop", Path::new("/elsewhere"), "r1");
        assert!(!other.owns(&labels));
        assert_eq!(owner.filter(true)["label"].len(), 3);
    }
}
