//! One app as a Kubernetes Deployment describes it (its pod template's `dapr.io/*` annotations
//! and first container), and the daca.yaml entry it becomes.

use std::collections::BTreeMap;

use super::Node;
use super::import::{FromTilt, env_block, flow, list_line, scalar};

/// One app, as its Deployment describes it.
pub(super) struct App {
    pub id: String,
    /// Its pod template has `dapr.io/enabled: "true"`; else it runs with no sidecar.
    pub dapr: bool,
    pub image: String,
    /// The container's `command` + `args`; else its Dockerfile's, when daca builds it.
    pub args: Vec<String>,
    pub port: Option<String>,
    pub protocol: Option<String>,
    pub health: Option<String>,
    pub env: BTreeMap<String, String>,
    /// `envFrom` ConfigMaps and Secrets, by name.
    pub config_refs: Vec<String>,
    pub secret_refs: Vec<String>,
    /// `env[].valueFrom.configMapKeyRef` / `secretKeyRef`: (variable, object, key).
    pub config_keys: Vec<(String, String, String)>,
    pub secret_keys: Vec<(String, String, String)>,
    pub grace: Option<i64>,
    pub body_mb: Option<String>,
    /// The Deployment's `metadata.namespace`.
    pub namespace: Option<String>,
    /// From NodePort/LoadBalancer Services: (host port, pod port).
    pub host_ports: Vec<(i64, i64)>,
    /// The Services that select it, by name (the app-id itself left out).
    pub names: Vec<String>,
    /// Its Services' (port, targetPort) where they differ.
    pub service_ports: Vec<(i64, i64)>,
    /// Its ConfigMap and Secret volumes.
    pub mounts: Vec<super::volumes::Mount>,
    /// `spec.replicas`, when more than one.
    pub replicas: Option<i64>,
    pub tilt: FromTilt,
}

/// A (Service port, target port) pair.
type PortPair = (i64, i64);

/// A `valueFrom` reference: (variable, object, key).
type KeyRef = (String, String, String);

impl App {
    pub fn from_deployment(deployment: &Node) -> Option<App> {
        let template = deployment.get("spec")?.get("template")?;
        let annotation = |key: &str| {
            template
                .path_str(&["metadata", "annotations", &format!("dapr.io/{key}")])
                .map(String::from)
        };
        let dapr = annotation("enabled").as_deref() == Some("true");
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
        let (env, config_keys, secret_keys) = env_of(container);
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
                .filter(|_| dapr)
                .or_else(|| deployment.path_str(&["metadata", "name"]).map(String::from))?,
            dapr,
            image: container.path_str(&["image"])?.to_string(),
            args: command,
            port,
            protocol: annotation("app-protocol").filter(|p| p != "http"),
            health,
            env,
            config_refs: refs("configMapRef"),
            secret_refs: refs("secretRef"),
            config_keys,
            secret_keys,
            grace: match template.get("spec")?.get("terminationGracePeriodSeconds") {
                Some(Node::Int(seconds)) => Some(*seconds),
                _ => None,
            },
            body_mb: annotation("http-max-request-size"),
            namespace: deployment
                .path_str(&["metadata", "namespace"])
                .map(String::from),
            host_ports: Vec::new(),
            names: Vec::new(),
            service_ports: Vec::new(),
            mounts: super::volumes::mounts(template.get("spec")?, container),
            replicas: match deployment.get("spec")?.get("replicas") {
                Some(Node::Int(n)) if *n > 1 => Some(*n),
                _ => None,
            },
            tilt: FromTilt::default(),
        })
    }

    /// The folder the app's files are in: its build folder, else `./<id>`.
    pub fn dir(&self) -> String {
        match &self.tilt.build {
            Some((dir, _)) => dir.clone(),
            None => format!("./{}", self.id),
        }
    }

    /// The `.env` lines of the Secrets it reads (`envFrom` whole, `secretKeyRef` by key).
    pub fn secret_env(&self, secrets: &BTreeMap<String, BTreeMap<String, String>>) -> String {
        let mut env = String::new();
        for name in &self.secret_refs {
            for (key, value) in secrets.get(name).into_iter().flatten() {
                env.push_str(&format!("{key}={}\n", quoted(value)));
            }
        }
        for (variable, name, key) in &self.secret_keys {
            if let Some(value) = secrets.get(name).and_then(|s| s.get(key)) {
                env.push_str(&format!("{variable}={}\n", quoted(value)));
            }
        }
        env
    }

    /// Its daca.yaml entry; `volumes` are its `volumes:` (see `super::volumes::files`).
    pub fn yaml(&self, config_maps: &BTreeMap<&str, &Node>, volumes: &[String]) -> String {
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
            // A ready-made image needs no folder of its own (nothing of the project reaches it).
            None if !self.dapr => format!(
                "  - id: {}\n    image: {}\n    dapr: false\n",
                scalar(&self.id),
                scalar(&self.image)
            ),
            None => format!(
                "  - id: {}\n    dir: ./{}\n    image: {}\n",
                scalar(&self.id),
                self.id,
                scalar(&self.image)
            ),
        };
        list_line(&mut out, "depends_on", &self.tilt.depends_on);
        let command = match self.args.is_empty() {
            true => &self.tilt.command,
            false => &super::dockerfile::for_daca(self.args.clone()),
        };
        list_line(&mut out, "command", command);
        if let Some(port) = &self.port {
            out.push_str(&format!("    port: {port}\n"));
        }
        if let Some(replicas) = self.replicas {
            out.push_str(&format!("    replicas: {replicas}\n"));
        }
        self.reload_yaml(&mut out);
        if let Some(protocol) = &self.protocol {
            out.push_str(&format!("    app_protocol: {}\n", scalar(protocol)));
        }
        self.ports_yaml(&mut out);
        self.names_yaml(&mut out);
        if let Some(path) = &self.health {
            out.push_str(&format!("    health: {}\n", scalar(path)));
        }
        if let Some(seconds) = self.grace {
            out.push_str(&format!("    grace_period: {seconds}s\n"));
        }
        if let Some(mb) = &self.body_mb {
            out.push_str(&format!("    max_body_size: {}Mi\n", mb.trim()));
        }
        if !volumes.is_empty() {
            let items: Vec<String> = volumes.iter().map(|v| format!("\"{v}\"")).collect();
            out.push_str(&format!("    volumes: [{}]\n", items.join(", ")));
        }
        let env: Vec<(String, String)> = self.plain_env(config_maps).into_iter().collect();
        env_block(&mut out, &env);
        out
    }

    /// `live_update`'s `run` steps: `setup:` and `on_change:`.
    fn reload_yaml(&self, out: &mut String) {
        if let Some(setup) = &self.tilt.setup {
            out.push_str(&format!("    setup: [sh, -c, {}]\n", scalar(setup)));
        }
        if !self.tilt.on_change.is_empty() {
            out.push_str("    on_change:\n");
            for (command, trigger) in &self.tilt.on_change {
                out.push_str(&format!(
                    "      - {{ run: [sh, -c, {}], trigger: {} }}\n",
                    scalar(command),
                    flow(trigger)
                ));
            }
        }
    }

    /// Its Services' names, and their ports that lead to its port.
    fn names_yaml(&self, out: &mut String) {
        list_line(out, "names", &self.names);
        let (leading, _) = self.split_service_ports();
        if !leading.is_empty() {
            let ports: Vec<String> = leading
                .iter()
                .map(|(s, t)| format!("\"{s}:{t}\""))
                .collect();
            out.push_str(&format!("    service_ports: [{}]\n", ports.join(", ")));
        }
    }

    /// Its Services' other ports: those leading to its port (daca's `service_ports:`), and
    /// those leading elsewhere, which daca cannot give it.
    fn split_service_ports(&self) -> (Vec<PortPair>, Vec<PortPair>) {
        let port = self
            .port
            .as_deref()
            .and_then(|p| p.trim().parse::<i64>().ok());
        self.service_ports
            .iter()
            .partition(|(_, target)| Some(*target) == port)
    }

    /// What daca cannot do of its Services' ports, one line each.
    pub fn service_port_notes(&self) -> Vec<String> {
        let (_, others) = self.split_service_ports();
        others
            .iter()
            .map(|(service, target)| {
                format!(
                    "`{}`: its Service port {service} leads to {target}, not to its app port: inside the pods its names answer on its app port only",
                    self.id
                )
            })
            .collect()
    }

    /// NodePort/LoadBalancer Services' ports, then the Tiltfile's port forwards.
    fn ports_yaml(&self, out: &mut String) {
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
    }

    /// The env that is not secret: ConfigMaps (`envFrom` whole, `configMapKeyRef` by key), then
    /// the container's own values, which win as in Kubernetes.
    fn plain_env(&self, config_maps: &BTreeMap<&str, &Node>) -> BTreeMap<String, String> {
        let value = |map: &str, key: &str| {
            config_maps
                .get(map)?
                .get(key)
                .and_then(|v| v.as_str().map(String::from))
        };
        let mut env = BTreeMap::new();
        for name in &self.config_refs {
            if let Some(Node::Map(data)) = config_maps.get(name.as_str()) {
                env.extend(
                    data.iter()
                        .filter_map(|(k, v)| Some((k.clone(), v.as_str()?.to_string()))),
                );
            }
        }
        for (variable, map, key) in &self.config_keys {
            if let Some(found) = value(map, key) {
                env.insert(variable.clone(), found);
            }
        }
        env.extend(self.env.clone());
        // The sidecar's ports are daca's to give (3500/50001 in a pod, others on the host).
        env.retain(|key, _| !matches!(key.as_str(), "DAPR_HTTP_PORT" | "DAPR_GRPC_PORT"));
        env
    }
}

/// A container's `env`: plain values, and the ConfigMap and Secret keys it reads.
fn env_of(container: &Node) -> (BTreeMap<String, String>, Vec<KeyRef>, Vec<KeyRef>) {
    let (mut plain, mut config, mut secret) = (BTreeMap::new(), Vec::new(), Vec::new());
    for entry in container.get("env").map(Node::as_list).unwrap_or_default() {
        let Some(name) = entry.path_str(&["name"]) else {
            continue;
        };
        let from = |kind: &str| {
            let reference = entry.get("valueFrom")?.get(kind)?;
            Some((
                name.to_string(),
                reference.path_str(&["name"])?.to_string(),
                reference.path_str(&["key"])?.to_string(),
            ))
        };
        if let Some(value) = entry.get("value") {
            let text = match value {
                Node::Str(text) => text.clone(),
                Node::Int(n) => n.to_string(),
                Node::Float(n) => n.to_string(),
                Node::Bool(b) => b.to_string(),
                _ => String::new(),
            };
            plain.insert(name.to_string(), text);
        } else if let Some(reference) = from("secretKeyRef") {
            secret.push(reference);
        } else if let Some(reference) = from("configMapKeyRef") {
            config.push(reference);
        }
    }
    (plain, config, secret)
}

/// A `.env` value, quoted when it has what a `.env` reader would cut or trim.
fn quoted(value: &str) -> String {
    match value.contains([' ', '#', '"', '\'']) || value.trim() != value {
        true if !value.contains('"') => format!("\"{value}\""),
        true => format!("'{value}'"),
        false => value.to_string(),
    }
}

/// Whether a workload is a Redis, which daca provides itself: the StatefulSet `daca export`
/// writes, or any workload running a Redis image (the components' `redisHost` lead to
/// daca's Redis whatever they name).
pub(super) fn is_daca_redis(workload: &Node) -> bool {
    let name = workload.path_str(&["metadata", "name"]);
    let image = first_container(workload)
        .and_then(|c| c.path_str(&["image"]))
        .unwrap_or_default();
    let repository = image.split([':', '@']).next().unwrap_or_default();
    let last = repository.rsplit('/').next().unwrap_or_default();
    name == Some(super::redis::NAME_REDIS) || last == "redis" || last == "redis-stack-server"
}

pub(super) fn first_container(workload: &Node) -> Option<&Node> {
    workload
        .get("spec")?
        .get("template")?
        .get("spec")?
        .get("containers")?
        .as_list()
        .first()
}
