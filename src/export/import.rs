//! `daca init --from-k8s DIR`: the daca.yaml of a folder of Kubernetes manifests and Dapr
//! resources (what `daca export` writes, or what the Dapr tutorials hand-write). Apps come from
//! Deployments whose pod template has `dapr.io/enabled: "true"`; their env from the container's
//! `env` and referenced ConfigMaps, their `.env` from referenced Secrets (objects, or kustomize
//! secretGenerator files); Dapr resources are copied into `resources/`.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use super::{ExportError, Node, PART_OF};

/// What to write: relative path → text (daca.yaml first).
pub struct Imported {
    pub files: Vec<(String, String)>,
    pub apps: Vec<String>,
}

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
}

/// What a Tiltfile says about the apps, by image (builds) and by workload name (resources).
#[derive(Debug, Default)]
pub struct TiltParts {
    pub builds: BTreeMap<String, TiltBuild>,
    pub resources: BTreeMap<String, TiltResource>,
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
}

/// A Tiltfile's `k8s_resource`.
#[derive(Debug, Clone, Default)]
pub struct TiltResource {
    /// Host port → pod port.
    pub ports: Vec<(i64, i64)>,
    pub deps: Vec<String>,
}

/// Reads `dir` (recursively) and builds the project.
pub fn import(dir: &Path) -> Result<Imported, ExportError> {
    let command = format!("daca init --from-k8s {}", dir.display());
    import_documents(dir, read_all(dir)?, &TiltParts::default(), &command)
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
    let services: Vec<&Node> = by_kind("Service").map(|(_, d)| d).collect();
    let mut apps: Vec<App> = by_kind("Deployment")
        .filter_map(|(_, d)| {
            let mut app = App::from_deployment(d)?;
            app.host_ports = super::services::host_ports(d, &services);
            let name = d.path_str(&["metadata", "name"]).unwrap_or_default();
            app.tilt = tilt.for_app(&app.image, name, &app.id);
            Some(app)
        })
        .collect();
    if apps.is_empty() {
        return Err(failed(
            "no Deployment with the annotation dapr.io/enabled: \"true\" on its pod template"
                .into(),
            "point it at the folder of your manifests; daca needs the Dapr annotations to know the apps",
        ));
    }
    apps.sort_by(|a, b| a.id.cmp(&b.id));
    // A Tiltfile's resource_deps may name what daca provides (Redis): only apps are waited for.
    let ids: Vec<String> = apps.iter().map(|a| a.id.clone()).collect();
    for app in &mut apps {
        app.tilt.depends_on.retain(|d| ids.contains(d));
    }
    let project = project_name(dir, by_kind("Deployment").map(|(_, d)| d));
    let redis_image = by_kind("StatefulSet")
        .find(|(_, d)| d.path_str(&["metadata", "name"]) == Some(super::redis::NAME_REDIS))
        .and_then(|(_, d)| first_container(d)?.path_str(&["image"]).map(String::from));
    let mut files = Vec::new();
    let resources = dapr_resources(&docs);
    let mut manifest = format!("# Imported by `{command}`.\nname: {}\n", scalar(&project));
    if !resources.is_empty() {
        manifest.push_str("resources: ./resources\n");
    }
    if let Some(image) = redis_image {
        manifest.push_str(&format!("redis:\n  image: {}\n", scalar(&image)));
    }
    manifest.push_str("apps:\n");
    for app in &apps {
        manifest.push_str(&app.yaml(&config_maps));
        let env = app
            .secret_refs
            .iter()
            .filter_map(|name| secrets.get(name))
            .cloned()
            .collect::<String>();
        if !env.is_empty() {
            files.push((format!("{}/.env", app.id), env));
        }
    }
    files.insert(0, ("daca.yaml".into(), manifest));
    for (path, doc) in resources {
        let text = serde_saphyr::to_string(doc)
            .map_err(|e| failed(e.to_string(), "report this as a daca bug"))?;
        files.push((path, text));
    }
    Ok(Imported {
        files,
        apps: apps.into_iter().map(|a| a.id).collect(),
    })
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

/// One app, as its Deployment describes it.
struct App {
    id: String,
    image: String,
    args: Vec<String>,
    port: Option<String>,
    protocol: Option<String>,
    health: Option<String>,
    env: BTreeMap<String, String>,
    config_refs: Vec<String>,
    secret_refs: Vec<String>,
    grace: Option<i64>,
    body_mb: Option<String>,
    /// From NodePort/LoadBalancer Services: (host port, pod port).
    host_ports: Vec<(i64, i64)>,
    tilt: FromTilt,
}

impl TiltParts {
    /// What the Tiltfile says about the app whose image is `image` and whose workload is
    /// `workload` (or its app-id).
    fn for_app(&self, image: &str, workload: &str, id: &str) -> FromTilt {
        // Tilt matches an image by its name, whatever tag the manifest has.
        let name = image.rsplit_once(':').map_or(image, |(n, _)| n);
        let build = self.builds.get(image).or_else(|| self.builds.get(name));
        let resource = self
            .resources
            .get(workload)
            .or_else(|| self.resources.get(id));
        FromTilt {
            build: build.map(|b| (b.dir.clone(), b.dockerfile.clone())),
            mount: build.and_then(|b| b.mount.clone()),
            ports: resource.map(|r| r.ports.clone()).unwrap_or_default(),
            depends_on: resource.map(|r| r.deps.clone()).unwrap_or_default(),
        }
    }
}

impl App {
    fn from_deployment(deployment: &Node) -> Option<App> {
        let template = deployment.get("spec")?.get("template")?;
        let annotation = |key: &str| {
            template
                .path_str(&["metadata", "annotations", &format!("dapr.io/{key}")])
                .map(String::from)
        };
        if annotation("enabled").as_deref() != Some("true") {
            return None;
        }
        let container = first_container(deployment)?;
        let env_from = container
            .get("envFrom")
            .map(Node::as_list)
            .unwrap_or_default();
        let refs = |key: &str| {
            env_from
                .iter()
                .filter_map(|e| e.path_str(&[key, "name"]).map(String::from))
                .collect()
        };
        let mut command: Vec<String> = Vec::new();
        for key in ["command", "args"] {
            command.extend(
                container
                    .get(key)
                    .map(Node::as_list)
                    .unwrap_or_default()
                    .iter()
                    .filter_map(|a| a.as_str().map(String::from)),
            );
        }
        let env = container
            .get("env")
            .map(Node::as_list)
            .unwrap_or_default()
            .iter()
            .filter_map(|e| {
                Some((
                    e.path_str(&["name"])?.to_string(),
                    e.path_str(&["value"])?.to_string(),
                ))
            })
            .collect();
        let port = annotation("app-port").or_else(|| {
            match container
                .get("ports")?
                .as_list()
                .first()?
                .get("containerPort")?
            {
                Node::Int(port) => Some(port.to_string()),
                _ => None,
            }
        });
        let health = annotation("app-health-check-path").or_else(|| {
            container
                .path_str(&["readinessProbe", "httpGet", "path"])
                .map(String::from)
        });
        Some(App {
            id: annotation("app-id")
                .or_else(|| deployment.path_str(&["metadata", "name"]).map(String::from))?,
            image: container.path_str(&["image"])?.to_string(),
            args: command,
            port,
            protocol: annotation("app-protocol").filter(|p| p != "http"),
            health,
            env,
            config_refs: refs("configMapRef"),
            secret_refs: refs("secretRef"),
            grace: match template.get("spec")?.get("terminationGracePeriodSeconds") {
                Some(Node::Int(seconds)) => Some(*seconds),
                _ => None,
            },
            body_mb: annotation("http-max-request-size"),
            host_ports: Vec::new(),
            tilt: FromTilt::default(),
        })
    }

    fn yaml(&self, config_maps: &BTreeMap<&str, &Node>) -> String {
        let mut out = match &self.tilt.build {
            Some((dir, dockerfile)) => {
                let mut out = format!("  - id: {}\n    dir: {}\n", scalar(&self.id), scalar(dir));
                match dockerfile {
                    Some(file) => {
                        out.push_str(&format!("    build: {{ dockerfile: {} }}\n", scalar(file)))
                    }
                    None => out.push_str("    build: {}\n"),
                }
                if let Some(mount) = &self.tilt.mount {
                    out.push_str(&format!("    mount: {}\n", scalar(mount)));
                }
                out
            }
            None => format!(
                "  - id: {}\n    dir: ./{}\n    image: {}\n",
                scalar(&self.id),
                self.id,
                scalar(&self.image)
            ),
        };
        if !self.tilt.depends_on.is_empty() {
            let deps: Vec<String> = self.tilt.depends_on.iter().map(|d| scalar(d)).collect();
            out.push_str(&format!("    depends_on: [{}]\n", deps.join(", ")));
        }
        if !self.args.is_empty() {
            let items: Vec<String> = self.args.iter().map(|a| scalar(a)).collect();
            out.push_str(&format!("    command: [{}]\n", items.join(", ")));
        }
        if let Some(port) = &self.port {
            out.push_str(&format!("    port: {port}\n"));
        }
        if let Some(protocol) = &self.protocol {
            out.push_str(&format!("    app_protocol: {}\n", scalar(protocol)));
        }
        let mut host_ports = self.host_ports.clone();
        for forward in &self.tilt.ports {
            if !host_ports.contains(forward) {
                host_ports.push(*forward);
            }
        }
        if !host_ports.is_empty() {
            let ports: Vec<String> = host_ports
                .iter()
                .map(|(host, pod)| format!("\"{host}:{pod}\""))
                .collect();
            out.push_str(&format!("    ports: [{}]\n", ports.join(", ")));
        }
        if let Some(path) = &self.health {
            out.push_str(&format!("    health: {}\n", scalar(path)));
        }
        if let Some(seconds) = self.grace {
            out.push_str(&format!("    grace_period: {seconds}s\n"));
        }
        if let Some(mb) = &self.body_mb {
            out.push_str(&format!("    max_body_size: {}Mi\n", mb.trim()));
        }
        let mut env = BTreeMap::new();
        for name in &self.config_refs {
            if let Some(Node::Map(data)) = config_maps.get(name.as_str()) {
                env.extend(
                    data.iter()
                        .filter_map(|(k, v)| Some((k.clone(), v.as_str()?.to_string()))),
                );
            }
        }
        env.extend(self.env.clone());
        if !env.is_empty() {
            out.push_str("    env:\n");
            for (key, value) in env {
                out.push_str(&format!("      {}: {}\n", scalar(&key), scalar(&value)));
            }
        }
        out
    }
}

fn first_container(workload: &Node) -> Option<&Node> {
    workload
        .get("spec")?
        .get("template")?
        .get("spec")?
        .get("containers")?
        .as_list()
        .first()
}

/// Secret name → `KEY=value` lines: Secret objects (`stringData`, or base64 `data`) and the env
/// files of kustomize's secretGenerator.
fn secret_envs(dir: &Path, docs: &[(PathBuf, Node)]) -> BTreeMap<String, String> {
    let mut out = BTreeMap::new();
    for (_, doc) in docs
        .iter()
        .filter(|(_, d)| d.path_str(&["kind"]) == Some("Secret"))
    {
        let Some(name) = doc.path_str(&["metadata", "name"]) else {
            continue;
        };
        let mut lines = String::new();
        if let Some(Node::Map(data)) = doc.get("stringData") {
            for (k, v) in data {
                lines.push_str(&format!("{k}={}\n", v.as_str().unwrap_or_default()));
            }
        }
        if let Some(Node::Map(data)) = doc.get("data") {
            for (k, v) in data {
                let decoded = v.as_str().and_then(base64_decode).unwrap_or_default();
                lines.push_str(&format!("{k}={decoded}\n"));
            }
        }
        out.insert(name.to_string(), lines);
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
            out.insert(name.to_string(), text);
        }
    }
    out
}

fn base64_decode(text: &str) -> Option<String> {
    let bytes = crate::pubsub::envelope::base64_decode(text.trim())?;
    String::from_utf8(bytes).ok()
}

/// Every YAML document under `dir` (recursively), with its file.
fn read_all(dir: &Path) -> Result<Vec<(PathBuf, Node)>, ExportError> {
    let mut files = Vec::new();
    let mut pending = vec![dir.to_path_buf()];
    while let Some(folder) = pending.pop() {
        let entries = std::fs::read_dir(&folder).map_err(|e| ExportError::Read {
            file: folder.display().to_string(),
            message: e.to_string(),
        })?;
        for path in entries.flatten().map(|e| e.path()) {
            if path.is_dir() {
                pending.push(path);
            } else if matches!(
                path.extension().and_then(|e| e.to_str()),
                Some("yaml" | "yml")
            ) {
                files.push(path);
            }
        }
    }
    files.sort();
    let mut docs = Vec::new();
    for file in files {
        let parsed = super::node::read_documents(&file)?;
        docs.extend(parsed.into_iter().map(|d| (file.clone(), d)));
    }
    Ok(docs)
}

/// A string as a YAML scalar, quoted when YAML (or Kubernetes) would read it otherwise.
fn scalar(text: &str) -> String {
    serde_saphyr::to_string(&text)
        .map(|s| s.trim_end().to_string())
        .unwrap_or_else(|_| format!("{text:?}"))
}
