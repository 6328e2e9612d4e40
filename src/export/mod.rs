//! `daca export k8s`: the project as Kubernetes manifests for a cluster with Dapr installed.
//!
//! [`plan`] builds the model (typed Kubernetes objects from k8s-openapi, Dapr resources as YAML
//! trees), independent of any output format; `write.rs` writes it as a kustomize folder. A Helm
//! writer would be a second function over the same [`Plan`]. `import.rs` goes the other way
//! (`daca init --from-k8s`).

mod apps;
mod dapr;
pub mod dockerfile;
pub mod import;
pub mod node;
mod redis;
mod services;
mod tilt_parts;
mod unsupported;
pub mod volumes;
mod workload;
pub mod write;

use std::collections::BTreeMap;

use k8s_openapi::api::apps::v1::{Deployment, StatefulSet};
use k8s_openapi::api::core::v1::{ConfigMap, Namespace, Service};

pub use node::Node;

use crate::manifest::Manifest;

/// Labels every exported object carries.
pub const PART_OF: &str = "app.kubernetes.io/part-of";
pub const NAME: &str = "app.kubernetes.io/name";
pub const MANAGED_BY: &str = "app.kubernetes.io/managed-by";

/// What the user chose on the command line.
#[derive(Debug, Clone)]
pub struct Options {
    pub namespace: String,
    /// Prefix of the images of apps without `image:` (`registry/app-id:tag`).
    pub registry: Option<String>,
    pub tag: String,
    /// Whether the export includes a Redis (StatefulSet + Service).
    pub redis: RedisChoice,
    /// The address Dapr components use; default `redis-master.<namespace>.svc.cluster.local:6379`.
    pub redis_host: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum RedisChoice {
    /// A Redis StatefulSet and Service named `redis-master`, as the Bitnami chart names it.
    Managed,
    /// None: a Helm-installed or managed Redis at `--redis-host`.
    External,
}

impl Options {
    pub fn redis_address(&self) -> String {
        self.redis_host
            .clone()
            .unwrap_or_else(|| format!("redis-master.{}.svc.cluster.local:6379", self.namespace))
    }

    /// The image of an app: its own `image:`, else `registry/app-id:tag`.
    pub fn image_for(&self, app: &crate::manifest::AppSpec) -> String {
        if let Some(crate::manifest::ImageSource::Image(image)) = &app.process.image {
            return image.clone();
        }
        match &self.registry {
            Some(registry) => format!("{}/{}:{}", registry.trim_end_matches('/'), app.id, self.tag),
            None => format!("{}:{}", app.id, self.tag),
        }
    }
}

/// One app's objects.
pub struct AppObjects {
    pub id: String,
    pub config: Option<ConfigMap>,
    /// `KEY=value` lines of its `.env`: a Secret made by kustomize from a file next to the
    /// manifests (never written into one).
    pub secret_env: Option<String>,
    pub deployment: Deployment,
    pub service: Option<Service>,
}

/// Everything the export holds, in a stable order.
pub struct Plan {
    pub project: String,
    pub namespace: Option<Namespace>,
    pub redis: Option<(Service, StatefulSet)>,
    pub apps: Vec<AppObjects>,
    /// Dapr resources by file stem (`component-statestore`, `subscription-orders`, ...).
    pub dapr: BTreeMap<String, Node>,
    /// The inline secrets moved out of those resources, `KEY=value` lines by file stem.
    pub dapr_secrets: BTreeMap<String, String>,
    /// What the export left out or changed, one line each, for the user.
    pub notes: Vec<String>,
}

/// Why the export cannot be made.
#[derive(Debug, thiserror::Error)]
pub enum ExportError {
    #[error("{0}")]
    Resources(#[from] crate::components::ComponentsError),
    #[error("cannot read {file}: {message}")]
    Read { file: String, message: String },
    #[error("{at}: {message}\n  hint: fix the YAML there")]
    Yaml { at: String, message: String },
    #[error("cannot write {file}: {source}")]
    Write {
        file: String,
        source: std::io::Error,
    },
    #[error("cannot import from {dir}: {message}\n  hint: {hint}")]
    Import {
        dir: String,
        message: String,
        hint: String,
    },
}

/// The export of `manifest`.
pub fn plan(manifest: &Manifest, options: &Options) -> Result<Plan, ExportError> {
    // The same checks as `daca up`: a bad resource file stops the export with file:line:col.
    crate::components::check_resources(manifest.resources.as_deref(), &manifest.root)?;
    let mut notes = Vec::new();
    if manifest.postgres.is_some() {
        // A database is the cluster's to run (an operator, a chart, a managed service).
        notes.push("`postgres:` is not exported: the components keep their connectionString, so the cluster must serve the database it names (a chart such as bitnami/postgresql, or a managed one)".to_string());
    }
    let dapr::Resources {
        docs: dapr,
        config,
        secrets: dapr_secrets,
    } = dapr::resources(manifest, options, &mut notes)?;
    let mut apps: Vec<AppObjects> = manifest
        .apps
        .iter()
        .map(|app| apps::objects(manifest, app, options, config.as_deref(), &mut notes))
        .collect();
    apps.sort_by(|a, b| a.id.cmp(&b.id));
    let redis = (options.redis == RedisChoice::Managed).then(|| redis::objects(manifest, options));
    Ok(Plan {
        project: manifest.name.clone(),
        namespace: (options.namespace != "default").then(|| namespace(manifest, options)),
        redis,
        apps,
        dapr,
        dapr_secrets,
        notes,
    })
}

fn namespace(manifest: &Manifest, options: &Options) -> Namespace {
    Namespace {
        metadata: object_meta(&options.namespace, None, manifest, None),
        ..Default::default()
    }
}

/// Name, namespace and the labels every object gets.
pub(crate) fn object_meta(
    name: &str,
    namespace: Option<&str>,
    manifest: &Manifest,
    component: Option<&str>,
) -> k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta {
    let mut labels = BTreeMap::from([
        (PART_OF.to_string(), manifest.name.clone()),
        (MANAGED_BY.to_string(), "daca".to_string()),
    ]);
    if let Some(component) = component {
        labels.insert(NAME.to_string(), component.to_string());
    }
    k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta {
        name: Some(name.to_string()),
        namespace: namespace.map(String::from),
        labels: Some(labels),
        ..Default::default()
    }
}
