//! What a Tiltfile's calls mean for a daca project: the Kubernetes documents `k8s_yaml` gave
//! (read as `daca init --from-k8s` reads a folder), the images its builds make (an app whose
//! manifest runs that image is built from that folder, its source mounted where `live_update`
//! syncs it), `k8s_resource`'s port forwards and dependencies, and the Helm charts daca plays
//! itself. A call daca cannot carry out is an error at its `Tiltfile:line:col`.

use std::path::{Path, PathBuf};

use super::{Call, TiltError, Tiltfile};
use crate::export::import::{TiltBuild, TiltParts, TiltResource};
use crate::export::node::{Node, parse_documents, read_documents};

/// The project a Tiltfile describes, ready for the manifests' reader.
#[derive(Debug)]
pub struct Read {
    pub documents: Vec<(PathBuf, Node)>,
    pub parts: TiltParts,
    /// One line each: what the Tiltfile printed.
    pub notes: Vec<String>,
    /// The Helm charts daca plays itself (its sidecars, dashboard and Redis).
    pub provided: Vec<String>,
    /// The files it read: the Tiltfile, then `k8s_yaml`'s files (a change to one reconciles).
    pub files: Vec<PathBuf>,
}

impl Read {
    /// The line saying which charts daca provides, if any.
    pub fn provided_line(&self) -> Option<String> {
        (!self.provided.is_empty())
            .then(|| format!("Helm charts {} provided by daca", self.provided.join(", ")))
    }
}

/// Reads the Tiltfile of `dir`.
pub fn read(dir: &Path) -> Result<Read, TiltError> {
    let tilt = super::evaluate(&dir.join("Tiltfile"))?;
    let mut read = Read {
        documents: Vec::new(),
        parts: TiltParts::default(),
        notes: tilt
            .printed
            .iter()
            .map(|p| format!("Tiltfile: {p}"))
            .collect(),
        provided: Vec::new(),
        files: vec![dir.join("Tiltfile")],
    };
    for call in &tilt.calls {
        match call.function.as_str() {
            "k8s_yaml" => read.documents.extend(documents(&tilt, call, dir)?),
            "helm_remote" => read.provided.push(provided_chart(&tilt, call)?),
            "helm" => {} // rendered (or provided) while evaluating; its YAML came to k8s_yaml
            "docker_build" | "nerdctl_build" | "custom_build" => build(&tilt, call, &mut read)?,
            "k8s_resource" => resource(&tilt, call, &mut read)?,
            "local_resource" => local_resource(&tilt, call, &mut read)?,
            // How Tilt itself runs: nothing for daca to do.
            "update_settings"
            | "watch_file"
            | "allow_k8s_contexts"
            | "local"
            | "read_file"
            | "config.define_string"
            | "config.define_string_list"
            | "config.define_bool"
            | "config.set_enabled_resources" => {}
            other => {
                return Err(tilt.error(
                    call.at,
                    format!("daca does not run `{other}` yet"),
                    "write a daca.yaml for this part (`daca init` makes one to start from)",
                ));
            }
        }
    }
    for (file, _) in &read.documents {
        if !read.files.contains(file) {
            read.files.push(file.clone());
        }
    }
    Ok(read)
}

/// `k8s_yaml`'s documents: from files (relative to the Tiltfile), or YAML text.
fn documents(tilt: &Tiltfile, call: &Call, dir: &Path) -> Result<Vec<(PathBuf, Node)>, TiltError> {
    let mut out = Vec::new();
    for item in call.strings("yaml") {
        // Text from local()/read_file()/blob() has lines; a path has none.
        if item.contains('\n') || item.is_empty() {
            let name = format!("{}:{} (k8s_yaml)", tilt.path.display(), call.at.line);
            let docs = parse_documents(&item, &name)?;
            out.extend(docs.into_iter().map(|d| (tilt.path.clone(), d)));
            continue;
        }
        let file = dir.join(&item);
        if !file.is_file() {
            return Err(tilt.error(
                call.at,
                format!("k8s_yaml: {} is not a file", file.display()),
                "fix the path (relative to the Tiltfile)",
            ));
        }
        out.extend(
            read_documents(&file)?
                .into_iter()
                .map(|d| (file.clone(), d)),
        );
    }
    Ok(out)
}

/// A remote chart daca plays itself, or the error naming it.
fn provided_chart(tilt: &Tiltfile, call: &Call) -> Result<String, TiltError> {
    let chart = call.str("chart").unwrap_or_default().to_string();
    let name = chart.rsplit('/').next().unwrap_or_default();
    match super::PROVIDED_CHARTS.contains(&name) {
        true => Ok(name.to_string()),
        false => Err(tilt.error(
            call.at,
            format!("helm_remote('{chart}'): daca provides only the charts {}", super::PROVIDED_CHARTS.join(", ")),
            "run that service as an app in a daca.yaml, or render the chart into a YAML file for k8s_yaml",
        )),
    }
}

/// An image build: the folder the app is built from, its Dockerfile, where it is synced.
fn build(tilt: &Tiltfile, call: &Call, read: &mut Read) -> Result<(), TiltError> {
    let image = call.str("ref").unwrap_or_default().to_string();
    let context = match call.function.as_str() {
        "custom_build" => call.strings("deps").first().cloned(),
        _ => call.str("context").map(String::from),
    };
    let Some(context) = context else {
        return Err(tilt.error(
            call.at,
            format!("{}('{image}'): no context", call.function),
            "give the build its folder",
        ));
    };
    let context = context.trim_end_matches('/').to_string();
    let context = if context.is_empty() || context == "." {
        ".".to_string()
    } else {
        context
    };
    let mount = call.args.get("live_update").and_then(|steps| {
        steps.as_array()?.iter().find_map(|step| {
            let local = step.get("local_path")?.as_str()?.trim_end_matches('/');
            let same = local == context || (local == "." && context == ".");
            same.then(|| step.get("remote_path")?.as_str().map(String::from))?
        })
    });
    let dockerfile = call.str("dockerfile").map(|file| {
        // Tilt's is relative to the Tiltfile; daca's to the build folder.
        let full = Path::new(file);
        full.strip_prefix(&context)
            .unwrap_or(full)
            .display()
            .to_string()
    });
    let dir = if context == "." {
        "./".to_string()
    } else {
        format!("./{}", context.trim_start_matches("./"))
    };
    let (setup, on_change) = run_steps(call, &context);
    let build = TiltBuild {
        dir,
        dockerfile: dockerfile.filter(|d| d != "Dockerfile"),
        mount,
        setup,
        on_change,
    };
    read.parts.builds.insert(image, build);
    Ok(())
}

/// `live_update`'s `run` steps. Those triggered by dependency files (`uv sync` on
/// `pyproject.toml`) are the app's `setup:`, which daca runs before a restart those files cause
/// (a container's image is rebuilt instead: its Dockerfile installs them); the others are its
/// `on_change:` steps, their triggers made relative to the build folder `context`.
fn run_steps(call: &Call, context: &str) -> (Option<String>, Vec<(String, Vec<String>)>) {
    let steps = call
        .args
        .get("live_update")
        .and_then(|s| s.as_array())
        .cloned()
        .unwrap_or_default();
    let (mut setup, mut on_change) = (Vec::new(), Vec::new());
    for step in steps
        .iter()
        .filter(|s| s.get("step").and_then(|v| v.as_str()) == Some("run"))
    {
        let cmd = step.get("cmd").and_then(|c| c.as_str()).unwrap_or_default();
        let triggers: Vec<&str> = step
            .get("trigger")
            .and_then(|t| t.as_array())
            .map(|t| t.iter().filter_map(|v| v.as_str()).collect())
            .unwrap_or_default();
        let dependencies = !triggers.is_empty()
            && triggers
                .iter()
                .all(|t| crate::watch::is_dependency_file(Path::new(t)));
        match dependencies {
            true => setup.push(cmd.to_string()),
            false => on_change.push((cmd.to_string(), relative_to(context, &triggers))),
        }
    }
    ((!setup.is_empty()).then(|| setup.join(" && ")), on_change)
}

/// Paths relative to the Tiltfile, made relative to its folder `dir`.
fn relative_to(dir: &str, paths: &[&str]) -> Vec<String> {
    let dir = dir.trim_start_matches("./").trim_end_matches('/');
    paths
        .iter()
        .map(|p| p.trim_start_matches("./"))
        .map(|p| match dir.is_empty() || dir == "." {
            true => p,
            false => p.strip_prefix(dir).map_or(p, |r| r.trim_start_matches('/')),
        })
        .map(String::from)
        .collect()
}

/// A command as one shell line: a string as it is, a list quoted word by word.
fn shell_line(call: &Call, name: &str) -> Option<String> {
    match call.args.get(name)? {
        serde_json::Value::String(line) if !line.trim().is_empty() => Some(line.clone()),
        serde_json::Value::Array(words) if !words.is_empty() => Some(
            words
                .iter()
                .filter_map(|w| w.as_str())
                .map(|w| format!("'{}'", w.replace('\'', "'\\''")))
                .collect::<Vec<_>>()
                .join(" "),
        ),
        _ => None,
    }
}

/// A `local_resource`'s `readiness_probe` as daca's readiness: an `http_get_action` is a port
/// and a health path, a `tcp_socket_action` a port; an `exec_action` is said and not used (the
/// resource is then ready once started).
fn readiness(call: &Call, name: &str, notes: &mut Vec<String>) -> (Option<u16>, Option<String>) {
    let Some(probe) = call.args.get("readiness_probe").filter(|p| !p.is_null()) else {
        return (None, None);
    };
    let port_of = |action: &serde_json::Value| {
        action
            .get("port")
            .and_then(|p| p.as_u64())
            .and_then(|p| u16::try_from(p).ok())
    };
    if let Some(http) = probe.get("http_get").filter(|h| !h.is_null()) {
        let path = http
            .get("path")
            .and_then(|p| p.as_str())
            .unwrap_or_default();
        let path = format!("/{}", path.trim_start_matches('/'));
        return (port_of(http), Some(path));
    }
    if let Some(tcp) = probe.get("tcp_socket").filter(|t| !t.is_null()) {
        return (port_of(tcp), None);
    }
    notes.push(format!(
        "local_resource('{name}'): its exec readiness probe is not used (it is ready once started)"
    ));
    (None, None)
}

/// A `local_resource` with a `cmd` alone: a step `daca up` runs before the apps start.
fn local_step(tilt: &Tiltfile, call: &Call, name: &str, read: &mut Read) -> Result<(), TiltError> {
    let Some(cmd) = shell_line(call, "cmd") else {
        return Err(tilt.error(
            call.at,
            format!("local_resource('{name}'): neither `cmd` nor `serve_cmd`"),
            "give it the command to run",
        ));
    };
    let dir = call.str("dir").map(String::from);
    let deps = call.strings("deps");
    let deps: Vec<&str> = deps.iter().map(String::as_str).collect();
    read.parts.steps.push(crate::export::import::TiltStep {
        name: name.to_string(),
        command: cmd,
        watch: relative_to(dir.as_deref().unwrap_or("."), &deps),
        dir,
    });
    Ok(())
}

/// `local_resource` with a `serve_cmd`: a process of the machine's (no sidecar, the machine's
/// network, as Tilt runs it), its `cmd` run before each start, restarted when its `deps`
/// change. One with a `cmd` alone is a step run before the apps (`local_step`).
fn local_resource(tilt: &Tiltfile, call: &Call, read: &mut Read) -> Result<(), TiltError> {
    let name = call.str("name").unwrap_or_default().to_string();
    let Some(serve) = shell_line(call, "serve_cmd") else {
        return local_step(tilt, call, &name, read);
    };
    let command = match shell_line(call, "cmd") {
        Some(cmd) => format!("{cmd} && exec {serve}"),
        None => format!("exec {serve}"),
    };
    let env = match call.args.get("serve_env") {
        Some(serde_json::Value::Object(map)) => map
            .iter()
            .filter_map(|(k, v)| Some((k.clone(), v.as_str()?.to_string())))
            .collect(),
        _ => Vec::new(),
    };
    let (port, health) = readiness(call, &name, &mut read.notes);
    read.parts.locals.push(crate::export::import::TiltLocal {
        name,
        command,
        dir: call.str("serve_dir").map(String::from),
        deps: relative_to(
            call.str("serve_dir").unwrap_or("."),
            &call
                .strings("deps")
                .iter()
                .map(String::as_str)
                .collect::<Vec<_>>(),
        ),
        resource_deps: call.strings("resource_deps"),
        env,
        port,
        health,
    });
    Ok(())
}

/// `k8s_resource`'s port forwards and dependencies.
fn resource(tilt: &Tiltfile, call: &Call, read: &mut Read) -> Result<(), TiltError> {
    let workload = call.str("workload").unwrap_or_default().to_string();
    let mut ports = Vec::new();
    let forwards = match call.args.get("port_forwards") {
        Some(serde_json::Value::Number(n)) => vec![n.to_string()],
        Some(serde_json::Value::Array(items)) => items
            .iter()
            .map(|i| {
                i.as_str()
                    .map(String::from)
                    .unwrap_or_else(|| i.to_string())
            })
            .collect(),
        _ => call.strings("port_forwards"),
    };
    for forward in forwards {
        let (host, pod) = forward.split_once(':').unwrap_or((&forward, &forward));
        match (host.trim().parse::<i64>(), pod.trim().parse::<i64>()) {
            (Ok(host), Ok(pod)) => ports.push((host, pod)),
            _ => {
                return Err(tilt.error(
                    call.at,
                    format!(
                        "k8s_resource('{workload}'): port_forwards `{forward}` is not HOST:POD"
                    ),
                    "write it as '8000:8000' or 8000",
                ));
            }
        }
    }
    let resource = TiltResource {
        ports,
        deps: call.strings("resource_deps"),
    };
    read.parts.resources.insert(workload, resource);
    Ok(())
}
