//! `daca init --from-k8s DIR`: the daca.yaml of a folder of Kubernetes manifests and Dapr
//! resources (what `daca export` writes, or what the Dapr tutorials hand-write). Apps come from
//! Deployments whose pod template has `dapr.io/enabled: "true"`; their env from the container's
//! `env` and referenced ConfigMaps, their `.env` from referenced Secrets (objects, or kustomize
//! secretGenerator files); Dapr resources are copied into `resources/`.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use super::tilt_parts::app_id_of;
pub use super::tilt_parts::{FromTilt, TiltBuild, TiltLocal, TiltParts, TiltResource, TiltStep};
use super::workload::{self, App};
use super::{ExportError, Node, PART_OF};

/// What to write: relative path → text (daca.yaml first), and what `daca up` says it read.
pub struct Imported {
    pub files: Vec<(String, String)>,
    pub apps: Vec<String>,
    /// How many Dapr resources the project has.
    pub resources: usize,
    /// What the manifests ask for that daca does not do, one line each.
    pub notes: Vec<String>,
}

/// The resources folder the project names (its files are `resources/<kind>-<name>.yaml`).
pub const RESOURCES: &str = "./resources";

/// Reads `dir` (recursively) and builds the project.
pub fn import(dir: &Path) -> Result<Imported, ExportError> {
    let command = format!("daca init --from-k8s {}", dir.display());
    import_documents(dir, read_all(dir)?, &TiltParts::default(), &command)
}

/// For `daca up` in a folder of manifests: the documents under `dir` (with the files they are
/// in), and the builds of the images whose folder is there: a folder named as the image, the
/// Deployment or the app-id, with a Dockerfile, builds that image (as `docker build` of it
/// would), its source mounted at the Dockerfile's `WORKDIR` (daca.yaml's default `mount:`).
pub fn read_in_place(dir: &Path) -> Result<(Vec<(PathBuf, Node)>, TiltParts), ExportError> {
    let docs = read_all(dir)?;
    let mut parts = TiltParts::default();
    for (_, doc) in docs
        .iter()
        .filter(|(_, d)| d.path_str(&["kind"]) == Some("Deployment"))
    {
        let Some(image) = workload::first_container(doc).and_then(|c| c.path_str(&["image"]))
        else {
            continue;
        };
        let name = image.rsplit_once(':').map_or(image, |(n, _)| n);
        let short = name.rsplit('/').next().unwrap_or(name);
        let candidates = [
            Some(short),
            doc.path_str(&["metadata", "name"]),
            doc.path_str(&[
                "spec",
                "template",
                "metadata",
                "annotations",
                "dapr.io/app-id",
            ]),
        ];
        let found = candidates
            .into_iter()
            .flatten()
            .find(|c| !c.contains("..") && dir.join(c).join("Dockerfile").is_file());
        if let Some(folder) = found {
            // No `mount:`: daca's default is the Dockerfile's last WORKDIR already.
            let build = TiltBuild {
                dir: format!("./{folder}"),
                dockerfile: None,
                mount: None,
                setup: None,
                on_change: Vec::new(),
            };
            parts.builds.insert(name.to_string(), build);
        }
    }
    Ok((docs, parts))
}

/// Builds the project from `docs` (read from `dir`), with what a Tiltfile adds.
pub fn import_documents(
    dir: &Path,
    docs: Vec<(PathBuf, Node)>,
    tilt: &TiltParts,
    command: &str,
) -> Result<Imported, ExportError> {
    let failed = |message: String, hint: &str| ExportError::Import {
        dir: dir.display().to_string(),
        message,
        hint: hint.to_string(),
    };
    let by_kind = |kind: &'static str| {
        docs.iter()
            .filter(move |(_, d)| d.path_str(&["kind"]) == Some(kind))
    };
    let config_maps: BTreeMap<&str, &Node> = by_kind("ConfigMap")
        .filter_map(|(_, d)| Some((d.path_str(&["metadata", "name"])?, d.get("data")?)))
        .collect();
    let secrets = secret_envs(dir, &docs);
    let mut apps = apps_of(dir, &docs, tilt);
    if !apps.iter().any(|a| a.dapr) {
        return Err(failed(
            "no Deployment with the annotation dapr.io/enabled: \"true\" on its pod template"
                .into(),
            "point it at the folder of your manifests; daca needs the Dapr annotations to know the apps",
        ));
    }
    apps.sort_by(|a, b| a.id.cmp(&b.id));
    // A Tiltfile's resource_deps may name what daca provides (Redis): only apps are waited for.
    let ids: Vec<String> = apps
        .iter()
        .map(|a| a.id.clone())
        .chain(tilt.locals.iter().map(|l| app_id_of(&l.name)))
        .collect();
    for app in &mut apps {
        app.tilt.depends_on.retain(|d| ids.contains(d));
    }
    let project = project_name(dir, by_kind("Deployment").map(|(_, d)| d));
    let redis_image = redis_image(&docs);
    let mut files = Vec::new();
    let resources = dapr_resources(&docs);
    let resources_count = resources.len();
    let namespace = apps.iter().find_map(|a| a.namespace.as_deref());
    let mut manifest = header(
        command,
        &project,
        namespace,
        !resources.is_empty(),
        redis_image,
        &tilt.steps_yaml(),
    );
    for app in &apps {
        let (volume_files, volumes) =
            super::volumes::files(&app.id, &app.mounts, &config_maps, &secrets);
        files.extend(volume_files);
        manifest.push_str(&app.yaml(&config_maps, &volumes));
        let env = app.secret_env(&secrets);
        if !env.is_empty() {
            let dir = app.dir();
            files.push((format!("{}/.env", dir.trim_end_matches('/')), env));
        }
    }
    for local in &tilt.locals {
        manifest.push_str(&local.yaml(&ids));
    }
    files.insert(0, ("daca.yaml".into(), manifest));
    for (path, doc) in resources {
        let text = serde_saphyr::to_string(doc)
            .map_err(|e| failed(e.to_string(), "report this as a daca bug"))?;
        files.push((path, text));
    }
    let mut notes = super::unsupported::notes(&docs);
    notes.extend(apps.iter().flat_map(|a| a.service_port_notes()));
    Ok(Imported {
        files,
        apps: apps
            .into_iter()
            .map(|a| a.id)
            .chain(tilt.locals.iter().map(|l| app_id_of(&l.name)))
            .collect(),
        resources: resources_count,
        notes,
    })
}

/// The image of the Redis StatefulSet `daca export` writes, if the folder has one.
fn redis_image(docs: &[(PathBuf, Node)]) -> Option<String> {
    docs.iter()
        .filter(|(_, d)| d.path_str(&["kind"]) == Some("StatefulSet"))
        .find(|(_, d)| d.path_str(&["metadata", "name"]) == Some(super::redis::NAME_REDIS))
        .and_then(|(_, d)| {
            workload::first_container(d)?
                .path_str(&["image"])
                .map(String::from)
        })
}

/// The daca.yaml's project keys, up to `apps:`.
fn header(
    command: &str,
    project: &str,
    namespace: Option<&str>,
    resources: bool,
    redis_image: Option<String>,
    steps: &str,
) -> String {
    let mut manifest = format!("# Imported by `{command}`.\nname: {}\n", scalar(project));
    if let Some(namespace) = namespace {
        manifest.push_str(&format!("namespace: {}\n", scalar(namespace)));
    }
    if resources {
        manifest.push_str(&format!("resources: {RESOURCES}\n"));
    }
    if let Some(image) = redis_image {
        manifest.push_str(&format!("redis:\n  image: {}\n", scalar(&image)));
    }
    manifest.push_str(steps);
    manifest.push_str("apps:\n");
    manifest
}

/// The apps: Deployments and StatefulSets (but a Redis: daca's own), those without Dapr
/// annotations with no sidecar, with what their Services and the Tiltfile add.
fn apps_of(dir: &Path, docs: &[(PathBuf, Node)], tilt: &TiltParts) -> Vec<App> {
    let of_kind = |kind: &'static str| {
        docs.iter()
            .filter(move |(_, d)| d.path_str(&["kind"]) == Some(kind))
            .map(|(_, d)| d)
    };
    let services: Vec<&Node> = of_kind("Service").collect();
    of_kind("Deployment")
        .chain(of_kind("StatefulSet"))
        .filter(|d| !workload::is_daca_redis(d))
        .filter_map(|d| {
            let mut app = App::from_deployment(d)?;
            app.host_ports = super::services::host_ports(d, &services);
            app.names = super::services::names(d, &services);
            app.service_ports = super::services::service_ports(d, &services);
            app.names.retain(|n| *n != app.id);
            let name = d.path_str(&["metadata", "name"]).unwrap_or_default();
            app.tilt = tilt.for_app(&app.image, name, &app.id, dir);
            Some(app)
        })
        .collect()
}

/// The `app.kubernetes.io/part-of` of the Deployments, else the folder's name.
fn project_name<'a>(dir: &Path, mut deployments: impl Iterator<Item = &'a Node>) -> String {
    deployments
        .find_map(|d| {
            d.path_str(&["metadata", "labels", PART_OF])
                .map(String::from)
        })
        .unwrap_or_else(|| {
            dir.file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_else(|| "app".into())
        })
}

/// The Dapr resources among the documents, each with the file it becomes, in file order.
fn dapr_resources<T>(docs: &[(T, Node)]) -> Vec<(String, &Node)> {
    let mut resources: Vec<(String, &Node)> = docs
        .iter()
        .filter(|(_, d)| {
            d.path_str(&["apiVersion"])
                .is_some_and(|v| v.starts_with("dapr.io/"))
        })
        .map(|(_, d)| {
            let kind = d.path_str(&["kind"]).unwrap_or("resource").to_lowercase();
            let name = d.path_str(&["metadata", "name"]).unwrap_or("unnamed");
            (format!("resources/{kind}-{name}.yaml"), d)
        })
        .collect();
    resources.sort_by(|a, b| a.0.cmp(&b.0));
    resources
}

/// Secret name → key → value: Secret objects (`stringData`, or base64 `data`) and the env
/// files of kustomize's secretGenerator.
fn secret_envs(dir: &Path, docs: &[(PathBuf, Node)]) -> BTreeMap<String, BTreeMap<String, String>> {
    let mut out: BTreeMap<String, BTreeMap<String, String>> = BTreeMap::new();
    for (_, doc) in docs
        .iter()
        .filter(|(_, d)| d.path_str(&["kind"]) == Some("Secret"))
    {
        let Some(name) = doc.path_str(&["metadata", "name"]) else {
            continue;
        };
        let keys = out.entry(name.to_string()).or_default();
        if let Some(Node::Map(data)) = doc.get("stringData") {
            for (k, v) in data {
                keys.insert(k.clone(), v.as_str().unwrap_or_default().to_string());
            }
        }
        if let Some(Node::Map(data)) = doc.get("data") {
            for (k, v) in data {
                let decoded = v.as_str().and_then(base64_decode).unwrap_or_default();
                keys.insert(k.clone(), decoded);
            }
        }
    }
    for (_, doc) in docs
        .iter()
        .filter(|(_, d)| d.path_str(&["kind"]) == Some("Kustomization"))
    {
        for generator in doc
            .get("secretGenerator")
            .map(Node::as_list)
            .unwrap_or_default()
        {
            let Some(name) = generator.path_str(&["name"]) else {
                continue;
            };
            let envs = generator.get("envs").map(Node::as_list).unwrap_or_default();
            let text: String = envs
                .iter()
                .filter_map(|f| std::fs::read_to_string(dir.join(f.as_str()?)).ok())
                .collect();
            out.insert(name.to_string(), crate::env::parse_dot_env(&text));
        }
    }
    out
}

fn base64_decode(text: &str) -> Option<String> {
    let bytes = crate::pubsub::envelope::base64_decode(text.trim())?;
    String::from_utf8(bytes).ok()
}

/// Whether `dir` has a YAML file (under it, as [`read_in_place`] looks) with a Deployment.
pub fn has_deployments(dir: &Path) -> bool {
    let Ok(files) = yaml_files(dir) else {
        return false;
    };
    files.iter().any(|file| {
        std::fs::read_to_string(file).is_ok_and(|text| {
            text.lines()
                .any(|l| l.trim_start().trim_start_matches("- ") == "kind: Deployment")
        })
    })
}

/// The YAML files under `dir`, without the folders no manifest is in: hidden ones (`.git`,
/// `.daca`, `.venv`), virtual environments and package caches.
fn yaml_files(dir: &Path) -> Result<Vec<PathBuf>, ExportError> {
    let mut files = Vec::new();
    let mut pending = vec![dir.to_path_buf()];
    while let Some(folder) = pending.pop() {
        let entries = std::fs::read_dir(&folder).map_err(|e| ExportError::Read {
            file: folder.display().to_string(),
            message: e.to_string(),
        })?;
        for path in entries.flatten().map(|e| e.path()) {
            let name = path.file_name().unwrap_or_default().to_string_lossy();
            if path.is_dir() {
                let skipped = name.starts_with('.')
                    || ["node_modules", "__pycache__", "site-packages", "target"]
                        .contains(&name.as_ref())
                    || path.join("pyvenv.cfg").exists();
                if !skipped {
                    pending.push(path);
                }
            } else if matches!(
                path.extension().and_then(|e| e.to_str()),
                Some("yaml" | "yml")
            ) {
                files.push(path);
            }
        }
    }
    files.sort();
    Ok(files)
}

/// Every YAML document under `dir` (recursively), with its file.
fn read_all(dir: &Path) -> Result<Vec<(PathBuf, Node)>, ExportError> {
    let files = yaml_files(dir)?;
    let mut docs = Vec::new();
    for file in files {
        let parsed = super::node::read_documents(&file)?;
        docs.extend(parsed.into_iter().map(|d| (file.clone(), d)));
    }
    Ok(docs)
}

/// A string as a YAML scalar, quoted when YAML (or Kubernetes) would read it otherwise.
/// `[a, b]`: a YAML flow list of [`scalar`]s.
pub(super) fn flow<S: AsRef<str>>(items: &[S]) -> String {
    let items: Vec<String> = items.iter().map(|i| scalar(i.as_ref())).collect();
    format!("[{}]", items.join(", "))
}

/// An app's `    key: [a, b]` line, when it has items.
pub(super) fn list_line<S: AsRef<str>>(out: &mut String, key: &str, items: &[S]) {
    if !items.is_empty() {
        out.push_str(&format!("    {key}: {}\n", flow(items)));
    }
}

/// An app's `env:` block, when it has variables.
pub(super) fn env_block<K: AsRef<str>, V: AsRef<str>>(out: &mut String, env: &[(K, V)]) {
    if env.is_empty() {
        return;
    }
    out.push_str("    env:\n");
    for (key, value) in env {
        out.push_str(&format!(
            "      {}: {}\n",
            scalar(key.as_ref()),
            scalar(value.as_ref())
        ));
    }
}

pub(super) fn scalar(text: &str) -> String {
    serde_saphyr::to_string(&text)
        .map(|s| s.trim_end().to_string())
        .unwrap_or_else(|_| format!("{text:?}"))
}
