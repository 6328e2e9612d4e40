//! Wire types → model types. Every check pushes a diagnostic and carries on, so the user
//! sees all problems of a manifest at once.

use std::collections::HashMap;
use std::path::Path;
use std::time::Duration;

use super::app::app_spec;
use super::error::Diagnostic;
use super::model::{AppId, AppSpec, Manifest, NetworkMode};
use super::services::{postgres_config, redis_config};
use super::wire::{AppWire, At, ManifestWire};

const DEFAULT_GRACE: Duration = Duration::from_secs(5);
const DEFAULT_STARTUP_TIMEOUT: Duration = Duration::from_secs(60);

/// Collects diagnostics while converting.
pub(super) struct Checker<'a> {
    pub root: &'a Path,
    pub out: Vec<Diagnostic>,
}

impl Checker<'_> {
    pub fn error<T>(&mut self, at: &At<T>, message: impl Into<String>, hint: Option<String>) {
        let mut diagnostic = Diagnostic::at(at.referenced.line(), at.referenced.column(), message);
        diagnostic.hint = hint;
        self.out.push(diagnostic);
    }

    /// A command as written, or (empty, or a blank program) `message` at it with a hint of
    /// what one looks like, `example`.
    pub fn command(
        &mut self,
        raw: &At<Vec<String>>,
        message: &str,
        example: &str,
    ) -> Option<Vec<String>> {
        if raw
            .value
            .first()
            .is_none_or(|program| program.trim().is_empty())
        {
            self.error(raw, message, Some(format!("for example `{example}`")));
            return None;
        }
        Some(raw.value.clone())
    }

    pub fn duration(&mut self, raw: Option<&At<String>>, default: Duration) -> Duration {
        let Some(raw) = raw else { return default };
        match humantime::parse_duration(raw.value.trim()) {
            Ok(duration) => duration,
            Err(err) => {
                let hint = Some("write a duration such as `5s`, `500ms` or `1m`".to_string());
                self.error(
                    raw,
                    format!("invalid duration `{}`: {err}", raw.value),
                    hint,
                );
                default
            }
        }
    }

    pub fn folder(&mut self, raw: &At<String>, what: &str) -> std::path::PathBuf {
        let path = self.root.join(&raw.value);
        if !path.is_dir() {
            let hint = Some(format!(
                "paths are relative to the manifest's folder, {}",
                self.root.display()
            ));
            self.error(
                raw,
                format!("{what} folder `{}` does not exist", raw.value),
                hint,
            );
        }
        path
    }
}

/// Validates a parsed manifest. `file` is absolute; its folder is the project root.
/// The project's name when daca.yaml gives none: its folder's.
pub fn default_name(root: &Path) -> String {
    root.file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| "daca".into())
}

/// `steps:`, each with a command and a folder that exists.
fn steps(checker: &mut Checker, raw: &[At<super::wire::StepWire>]) -> Vec<super::model::Step> {
    let mut steps = Vec::new();
    for step in raw {
        let step = &step.value;
        let example = "command: [\"uv\", \"run\", \"migrate.py\"]";
        let Some(command) =
            checker.command(&step.command, "the step's `command` is empty", example)
        else {
            continue;
        };
        let dir = match &step.dir {
            Some(dir) => checker.folder(dir, "step"),
            None => checker.root.to_path_buf(),
        };
        steps.push(super::model::Step {
            name: step.name.value.clone(),
            command,
            dir,
            watch: super::app::globs(checker, &step.watch),
        });
    }
    steps
}

pub fn validate(file: &Path, wire: ManifestWire) -> Result<Manifest, Vec<Diagnostic>> {
    let root = file.parent().unwrap_or(Path::new("/")).to_path_buf();
    let mut checker = Checker {
        root: &root,
        out: Vec::new(),
    };
    let name = match &wire.name {
        Some(name) => name.value.clone(),
        None => default_name(&root),
    };
    let namespace = wire.namespace.as_ref().map(|raw| {
        if let Err(message) = AppId::parse(&raw.value) {
            let message = message.replace("app-id", "namespace");
            checker.error(raw, message, Some("for example `daca`".into()));
        }
        raw.value.clone()
    });
    let resources = wire
        .resources
        .as_ref()
        .map(|raw| checker.folder(raw, "resources"));
    let redis = redis_config(&mut checker, wire.redis.as_ref());
    let postgres = postgres_config(&mut checker, wire.postgres.as_ref());
    let grace = checker.duration(wire.grace_period.as_ref(), DEFAULT_GRACE);
    let startup = checker.duration(wire.startup_timeout.as_ref(), DEFAULT_STARTUP_TIMEOUT);
    let runtime =
        super::container::runtime_choice(&mut checker, wire.runtime.as_ref()).unwrap_or_default();
    let network = wire
        .network
        .as_ref()
        .and_then(|raw| super::app::network_mode(&mut checker, raw))
        .unwrap_or_default();
    if wire.apps.is_empty() {
        checker.out.push(
            Diagnostic::at(1, 1, "the manifest has no apps")
                .hint("add at least one app under `apps:` (see `daca init` for an example)"),
        );
    }
    let mut apps: Vec<AppSpec> = Vec::new();
    let mut ids: HashMap<String, &At<AppWire>> = HashMap::new();
    for app in &wire.apps {
        if let Some(first) = ids.get(&app.value.id.value) {
            let hint = Some(format!(
                "the first `{}` is on line {}",
                app.value.id.value,
                first.referenced.line()
            ));
            checker.error(
                &app.value.id,
                format!("duplicate app-id `{}`", app.value.id.value),
                hint,
            );
            continue;
        }
        ids.insert(app.value.id.value.clone(), app);
        let defaults = (grace, startup, runtime, network);
        if let Some(spec) = app_spec(&mut checker, app, defaults) {
            apps.push(spec);
        }
    }
    let steps = steps(&mut checker, &wire.steps);
    check_names(&mut checker, &wire.apps);
    check_instances(&mut checker, &wire.apps);
    check_ports(&mut checker, &wire.apps, network);
    check_dependencies(&mut checker, &wire.apps);
    if !checker.out.is_empty() {
        return Err(checker.out);
    }
    let apps = start_order(apps);
    Ok(Manifest {
        file: file.to_path_buf(),
        root,
        read_from: vec![file.to_path_buf()],
        name,
        namespace,
        resources,
        steps,
        redis,
        postgres,
        apps,
    })
}

/// An app's added instances are named `<id>-2`, `<id>-3`, …: no other app may have one of
/// those ids.
fn check_instances(checker: &mut Checker, apps: &[At<AppWire>]) {
    for app in apps {
        let count = app.value.replicas.as_ref().map_or(1, |r| r.value);
        for other in apps {
            let Some(n) = other
                .value
                .id
                .value
                .strip_prefix(&format!("{}-", app.value.id.value))
            else {
                continue;
            };
            if n.parse::<u16>().is_ok_and(|n| (2..=count).contains(&n)) {
                let message = format!(
                    "app-id `{}` is the name of `{}`'s instance {n} (it has `replicas: {count}`)",
                    other.value.id.value, app.value.id.value
                );
                let hint = Some("rename one of them".into());
                checker.error(&other.value.id, message, hint);
            }
        }
    }
}

/// Two listeners on one port cannot both start: app ports and explicit sidecar ports must differ.
/// Ports of the machine used twice. An app in a pod listens on its `port` in its own pod, so
/// only what it takes on the machine counts: its sidecar ports and `ports:`' host ports.
fn check_ports(checker: &mut Checker, apps: &[At<AppWire>], network: NetworkMode) {
    let mut seen: HashMap<u16, (String, &str)> = HashMap::new();
    for app in apps {
        let app = &app.value;
        // `auto` may become a pod: its port is not the machine's to check here.
        let in_pod = match app.network.as_ref().map(|n| n.value.as_str()) {
            Some("host") => false,
            Some(_) => true,
            None => network != NetworkMode::Host,
        };
        let own = match in_pod {
            true => &None,
            false => &app.port,
        };
        let host_only = match app.network.as_ref().map(|n| n.value.as_str()) {
            Some(mode) => mode == "host",
            None => network == NetworkMode::Host,
        };
        if host_only && let Some(first) = app.ports.first() {
            let hint = Some("add `network: pod` to this app, or remove `ports:`".into());
            checker.error(
                first,
                "`ports` maps host ports into a pod: this app has none",
                hint,
            );
        }
        for mapping in app.ports.iter().filter(|_| in_pod) {
            let host = mapping
                .value
                .split(':')
                .next()
                .and_then(|h| h.trim().parse::<u16>().ok());
            let Some(host) = host else { continue };
            if let Some((owner, owner_field)) = seen.get(&host) {
                let message =
                    format!("host port {host} is used twice: `{owner}` has it as `{owner_field}`");
                checker.error(
                    mapping,
                    message,
                    Some("give each app its own host port".into()),
                );
            } else {
                seen.insert(host, (app.id.value.clone(), "ports"));
            }
        }
        let ports = [
            (own, "port"),
            (&app.dapr_http_port, "dapr_http_port"),
            (&app.dapr_grpc_port, "dapr_grpc_port"),
        ];
        for (port, field) in ports {
            let Some(port) = port else { continue };
            if port.value == 0 {
                checker.error(
                    port,
                    format!("`{field}` cannot be 0"),
                    Some("pick a fixed port, e.g. 8000".into()),
                );
                continue;
            }
            if let Some((owner, owner_field)) = seen.get(&port.value) {
                let message = format!(
                    "port {} is used twice: `{}` has it as `{owner_field}`",
                    port.value, owner
                );
                checker.error(
                    port,
                    message,
                    Some("give each app and sidecar its own port".into()),
                );
            } else {
                seen.insert(port.value, (app.id.value.clone(), field));
            }
        }
    }
}

fn check_dependencies(checker: &mut Checker, apps: &[At<AppWire>]) {
    let known: Vec<&str> = apps.iter().map(|a| a.value.id.value.as_str()).collect();
    for app in apps {
        for dep in &app.value.depends_on {
            if dep.value == app.value.id.value {
                checker.error(
                    dep,
                    format!("`{}` depends on itself", dep.value),
                    Some("remove it from `depends_on`".into()),
                );
            } else if !known.contains(&dep.value.as_str()) {
                let hint = closest(&dep.value, &known)
                    .map(|name| format!("did you mean `{name}`?"))
                    .unwrap_or_else(|| format!("known app-ids: {}", known.join(", ")));
                checker.error(
                    dep,
                    format!("`depends_on` names unknown app `{}`", dep.value),
                    Some(hint),
                );
            }
        }
    }
    if let Some((cycle, at)) = find_cycle(apps) {
        let hint = Some("remove one of these `depends_on` entries".into());
        checker.error(
            at,
            format!("dependency cycle: {}", cycle.join(" -> ")),
            hint,
        );
    }
}

pub(super) fn closest<'a>(word: &str, candidates: &[&'a str]) -> Option<&'a str> {
    candidates
        .iter()
        .map(|c| (strsim::jaro_winkler(word, c), *c))
        .filter(|(score, _)| *score > 0.8)
        .max_by(|a, b| a.0.total_cmp(&b.0))
        .map(|(_, c)| c)
}

/// Depth-first search for a cycle; returns its path and the `depends_on` entry that closes it.
fn find_cycle(apps: &[At<AppWire>]) -> Option<(Vec<String>, &At<String>)> {
    let by_id: HashMap<&str, &AppWire> = apps
        .iter()
        .map(|a| (a.value.id.value.as_str(), &a.value))
        .collect();
    fn visit<'a>(
        id: &'a str,
        by_id: &HashMap<&'a str, &'a AppWire>,
        path: &mut Vec<&'a str>,
        done: &mut Vec<&'a str>,
    ) -> Option<(Vec<String>, &'a At<String>)> {
        let app = by_id.get(id)?;
        path.push(id);
        for dep in &app.depends_on {
            let dep_id = dep.value.as_str();
            if dep_id == id || done.contains(&dep_id) {
                continue;
            }
            if let Some(start) = path.iter().position(|p| *p == dep_id) {
                let mut cycle: Vec<String> = path[start..].iter().map(|s| s.to_string()).collect();
                cycle.push(dep_id.to_string());
                return Some((cycle, dep));
            }
            if let Some(found) = visit(dep_id, by_id, path, done) {
                return Some(found);
            }
        }
        path.pop();
        done.push(id);
        None
    }
    let mut done = Vec::new();
    apps.iter()
        .find_map(|app| visit(&app.value.id.value, &by_id, &mut Vec::new(), &mut done))
}

/// Orders apps so each comes after its dependencies, keeping manifest order otherwise.
fn start_order(mut pending: Vec<AppSpec>) -> Vec<AppSpec> {
    let mut ordered: Vec<AppSpec> = Vec::with_capacity(pending.len());
    while !pending.is_empty() {
        let ready = pending
            .iter()
            .position(|app| {
                app.supervision
                    .depends_on
                    .iter()
                    .all(|d| ordered.iter().any(|o| &o.id == d))
            })
            .expect("UNWRAP: validation rejected cycles and unknown dependencies");
        ordered.push(pending.remove(ready));
    }
    ordered
}

/// A name (`names:`) belongs to one app: it may not be another's app-id or name.
fn check_names(checker: &mut Checker, apps: &[At<AppWire>]) {
    let mut owners: HashMap<&str, &str> = apps
        .iter()
        .map(|a| (a.value.id.value.as_str(), a.value.id.value.as_str()))
        .collect();
    for app in apps {
        let id = app.value.id.value.as_str();
        for name in &app.value.names {
            match owners.insert(name.value.as_str(), id) {
                Some(owner) if owner != id || name.value == id => {
                    let hint = Some(format!("`{}` is already `{owner}`'s", name.value));
                    checker.error(name, format!("name `{}` is taken", name.value), hint);
                }
                _ => {}
            }
        }
    }
}
