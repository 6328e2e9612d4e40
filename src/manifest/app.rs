//! One app's fields, checked: each problem is a diagnostic at its position, and the app is
//! built only when its id is valid.

use std::collections::BTreeMap;
use std::path::Path;
use std::time::Duration;

use super::model::{
    AppId, AppProtocol, AppSpec, NetworkMode, NetworkSpec, OnChange, ProcessSpec, ReloadMode,
    ReloadSpec, RestartPolicy, RuntimeChoice, SidecarSpec, Supervision, WatchSpec,
};
use super::validate::Checker;
use super::wire::{AppWire, At};

pub(super) fn app_spec(
    c: &mut Checker,
    at: &At<AppWire>,
    (grace, startup, runtime, network): (Duration, Duration, RuntimeChoice, NetworkMode),
) -> Option<AppSpec> {
    let app = &at.value;
    let id = AppId::parse(&app.id.value)
        .map_err(|message| c.error(&app.id, message, Some("for example `order-api`".into())))
        .ok();
    let dir = match &app.dir {
        Some(dir) => c.folder(dir, "app"),
        None => c.root.to_path_buf(),
    };
    let process = process_spec(c, at, &dir, runtime);
    check_health(c, app);
    let supervision = Supervision {
        health: app.health.as_ref().map(|h| h.value.clone()),
        depends_on: app
            .depends_on
            .iter()
            .filter_map(|d| AppId::parse(&d.value).ok())
            .collect(),
        restart: restart_policy(c, app.restart.as_ref()),
        grace_period: c.duration(app.grace_period.as_ref(), grace),
        startup_timeout: startup,
    };
    let sidecar = SidecarSpec {
        enabled: sidecar_enabled(c, app),
        http_port: app.dapr_http_port.as_ref().map(|p| p.value),
        grpc_port: app.dapr_grpc_port.as_ref().map(|p| p.value),
        max_body_size: body_size(c, app.max_body_size.as_ref()),
    };
    let watch = WatchSpec {
        only: globs(c, &app.watch),
        ignore: globs(c, &app.ignore),
    };
    let reload = ReloadSpec {
        mode: reload_mode(c, app.reload.as_ref()),
        setup: setup_command(c, app.setup.as_ref()),
        on_change: app
            .on_change
            .iter()
            .filter_map(|step| on_change(c, &step.value))
            .collect(),
        restart_dependents: app.restart_dependents.unwrap_or(false),
        grace: c.duration(app.reload_grace.as_ref(), Duration::ZERO),
    };
    let network = NetworkSpec {
        mode: app
            .network
            .as_ref()
            .and_then(|raw| network_mode(c, raw))
            .unwrap_or(network),
        ports: host_ports(c, app),
        service_ports: service_ports(c, app),
        names: app
            .names
            .iter()
            .filter_map(|raw| match AppId::parse(&raw.value) {
                Ok(name) => Some(name.as_str().to_string()),
                Err(message) => {
                    let hint = Some("a Service name, such as `agent-memory-service`".into());
                    c.error(raw, message.replace("app-id", "name"), hint);
                    None
                }
            })
            .collect(),
    };
    let replicas = replicas(c, app, network.mode);
    Some(AppSpec {
        id: id?,
        dir,
        process,
        supervision,
        sidecar,
        watch,
        reload,
        network,
        replicas,
        instance_of: None,
    })
}

/// `replicas:`, at least 1; more than one needs pods (every instance listens on its `port`).
fn replicas(c: &mut Checker, app: &AppWire, mode: NetworkMode) -> u16 {
    match &app.replicas {
        Some(raw) if raw.value == 0 => {
            let hint = Some("remove the app to run none of it, or give 1 or more".into());
            c.error(raw, "`replicas: 0` runs nothing", hint);
            1
        }
        Some(raw) if raw.value > 1 && mode == NetworkMode::Host => {
            let hint = Some(
                "remove `network: host` (each instance needs a pod of its own), or run one".into(),
            );
            let message = format!(
                "`replicas: {}` needs a pod per instance, and this app has `network: host`",
                raw.value
            );
            c.error(raw, message, hint);
            1
        }
        Some(raw) => raw.value,
        None => 1,
    }
}

fn process_spec(
    c: &mut Checker,
    at: &At<AppWire>,
    dir: &Path,
    runtime: RuntimeChoice,
) -> ProcessSpec {
    let app = &at.value;
    let container = super::container::container_fields(c, at, dir, runtime);
    let example = "command: [\"uv\", \"run\", \"uvicorn\", \"main:app\"]";
    let command = app
        .command
        .as_ref()
        .and_then(|raw| c.command(raw, "`command` is empty", example));
    ProcessSpec {
        command: command.unwrap_or_default(),
        runtime: container.runtime,
        image: container.image,
        mount: container.mount,
        port: app.port.as_ref().map(|p| p.value),
        env: app
            .env
            .iter()
            .map(|(k, v)| (k.clone(), v.to_env_string()))
            .collect::<BTreeMap<String, String>>(),
        protocol: app_protocol(c, app.app_protocol.as_ref(), app.health.as_ref()),
        volumes: super::container::volumes(c, &app.volumes),
    }
}

/// `dapr:`, and that an app without a sidecar sets nothing of one.
fn sidecar_enabled(c: &mut Checker, app: &AppWire) -> bool {
    if app.dapr.as_ref().is_none_or(|d| d.value) {
        return true;
    }
    let message = |field: &str| format!("`{field}` is a sidecar's; this app has `dapr: false`");
    let hint = || Some("remove it, or the app's `dapr: false`".to_string());
    if let Some(at) = &app.dapr_http_port {
        c.error(at, message("dapr_http_port"), hint());
    }
    if let Some(at) = &app.dapr_grpc_port {
        c.error(at, message("dapr_grpc_port"), hint());
    }
    if let Some(at) = &app.app_protocol {
        c.error(at, message("app_protocol"), hint());
    }
    if let Some(at) = &app.max_body_size {
        c.error(at, message("max_body_size"), hint());
    }
    false
}

fn check_health(c: &mut Checker, app: &AppWire) {
    let Some(health) = &app.health else { return };
    if !health.value.starts_with('/') {
        c.error(
            health,
            format!("health path `{}` must start with `/`", health.value),
            Some(format!("write `/{}`", health.value)),
        );
    }
    if app.port.is_none() {
        c.error(
            health,
            "`health` needs the app's `port`",
            Some("add `port:` to this app".into()),
        );
    }
}

fn setup_command(checker: &mut Checker, raw: Option<&At<Vec<String>>>) -> Option<Vec<String>> {
    checker.command(raw?, "`setup` is empty", "setup: [\"uv\", \"sync\"]")
}

fn on_change(checker: &mut Checker, raw: &super::wire::OnChangeWire) -> Option<OnChange> {
    let command = checker.command(&raw.run, "`run` is empty", "run: [\"make\", \"assets\"]")?;
    Some(OnChange {
        command,
        trigger: globs(checker, &raw.trigger),
    })
}

fn app_protocol(
    checker: &mut Checker,
    raw: Option<&At<String>>,
    health: Option<&At<String>>,
) -> AppProtocol {
    match raw.map(|r| r.value.as_str()) {
        None | Some("http") => AppProtocol::Http,
        Some("grpc") => {
            if let Some(health) = health {
                let hint =
                    Some("remove `health:`; a gRPC app is ready when its port accepts".into());
                checker.error(
                    health,
                    "`health` is an HTTP path; this app speaks gRPC",
                    hint,
                );
            }
            AppProtocol::Grpc
        }
        Some(other) => {
            let hint = Some("use `http` or `grpc` (https, grpcs and h2c are not supported)".into());
            checker.error(
                raw.expect("UNWRAP: matched Some above"),
                format!("unknown app protocol `{other}`"),
                hint,
            );
            AppProtocol::Http
        }
    }
}

/// `host` or `pod`; anything else is reported where it is written.
pub(super) fn network_mode(checker: &mut Checker, raw: &At<String>) -> Option<NetworkMode> {
    match raw.value.as_str() {
        "auto" => Some(NetworkMode::Auto),
        "host" => Some(NetworkMode::Host),
        "pod" => Some(NetworkMode::Pod),
        other => {
            let hint = Some(
                "use `pod` (the app has its own localhost, as in Kubernetes), `host`, or `auto` (a pod where the machine allows it)".into(),
            );
            checker.error(raw, format!("unknown network `{other}`"), hint);
            None
        }
    }
}

/// `ports:` as `(host, pod)` pairs: `"8001:8000"`, or `"8001"` for the app's own port.
fn host_ports(checker: &mut Checker, app: &AppWire) -> Vec<(u16, u16)> {
    let mut pairs = Vec::new();
    for raw in &app.ports {
        let parse = |text: &str| text.trim().parse::<u16>().ok().filter(|p| *p != 0);
        let pair = match raw.value.split_once(':') {
            Some((host, pod)) => parse(host).zip(parse(pod)),
            None => parse(&raw.value).zip(app.port.as_ref().map(|p| p.value)),
        };
        match pair {
            Some(pair) => pairs.push(pair),
            None => {
                let hint = match app.port {
                    None if !raw.value.contains(':') => {
                        "a lone host port needs the app's `port:`; or write `HOST:POD`, e.g. `\"8001:8000\"`"
                    }
                    _ => "write `HOST:POD`, e.g. `\"8001:8000\"`, ports 1 to 65535",
                };
                checker.error(
                    raw,
                    format!("invalid port mapping `{}`", raw.value),
                    Some(hint.into()),
                );
            }
        }
    }
    pairs
}

/// `service_ports:`: `"80:8000"`, where 8000 must be the app's `port` (what its names lead to).
fn service_ports(checker: &mut Checker, app: &AppWire) -> Vec<u16> {
    let own = app.port.as_ref().map(|p| p.value);
    let mut ports = Vec::new();
    for raw in &app.service_ports {
        let parse = |text: &str| text.trim().parse::<u16>().ok().filter(|p| *p != 0);
        let pair = raw
            .value
            .split_once(':')
            .and_then(|(service, target)| parse(service).zip(parse(target)));
        match (pair, own) {
            (Some((service, target)), Some(port)) if target == port => ports.push(service),
            (Some(_), _) => checker.error(
                raw,
                format!("`{}` does not lead to the app's `port`", raw.value),
                Some(match own {
                    Some(port) => format!("write `\"PORT:{port}\"`"),
                    None => "give the app its `port:`".into(),
                }),
            ),
            (None, _) => checker.error(
                raw,
                format!("invalid service port `{}`", raw.value),
                Some("write `SERVICE:TARGET`, e.g. `\"80:8000\"`".into()),
            ),
        }
    }
    ports
}

fn reload_mode(checker: &mut Checker, raw: Option<&At<String>>) -> ReloadMode {
    match raw.map(|r| r.value.as_str()) {
        None | Some("restart") => ReloadMode::Restart,
        Some("none") => ReloadMode::None,
        Some("cold") => ReloadMode::Cold,
        Some(other) => {
            let hint =
                Some("use `restart` (daca restarts the app, warm when it can), `cold` (always from scratch) or `none` (it reloads itself)".into());
            checker.error(
                raw.expect("UNWRAP: matched Some above"),
                format!("unknown reload mode `{other}`"),
                hint,
            );
            ReloadMode::Restart
        }
    }
}

/// Globs in gitignore syntax, each checked so a typo is reported where it is written.
pub(super) fn globs(checker: &mut Checker, raw: &[At<String>]) -> Vec<String> {
    let mut builder = ignore::gitignore::GitignoreBuilder::new("/");
    for glob in raw {
        if let Err(err) = builder.add_line(None, &glob.value) {
            let hint = Some("gitignore syntax, e.g. `*.py`, `src/**`, `!keep.txt`".into());
            checker.error(glob, format!("invalid glob `{}`: {err}", glob.value), hint);
        }
    }
    raw.iter().map(|g| g.value.clone()).collect()
}

/// Dapr's default `maxBodySize`: 4 MiB.
const DEFAULT_BODY: usize = 4 << 20;

/// `4Mi`, `512Ki`, `8MB`, `1048576`: binary (Ki/Mi/Gi) or decimal (K/KB, M/MB, G/GB) units;
/// more than zero.
pub fn parse_size(text: &str) -> Option<usize> {
    let text = text.trim();
    let split = text
        .find(|c: char| !c.is_ascii_digit())
        .unwrap_or(text.len());
    let (number, unit) = text.split_at(split);
    let factor: usize = match unit.trim() {
        "" | "B" => 1,
        "Ki" | "KiB" => 1 << 10,
        "Mi" | "MiB" => 1 << 20,
        "Gi" | "GiB" => 1 << 30,
        "K" | "KB" | "k" => 1000,
        "M" | "MB" => 1_000_000,
        "G" | "GB" => 1_000_000_000,
        _ => return None,
    };
    number
        .parse::<usize>()
        .ok()
        .filter(|n| *n > 0)
        .map(|n| n.saturating_mul(factor))
}

fn body_size(checker: &mut Checker, raw: Option<&At<String>>) -> usize {
    let Some(raw) = raw else { return DEFAULT_BODY };
    parse_size(&raw.value).unwrap_or_else(|| {
        let hint = Some("write a size such as `4Mi`, `16MB` or `1048576`".into());
        checker.error(raw, format!("invalid size `{}`", raw.value), hint);
        DEFAULT_BODY
    })
}

fn restart_policy(checker: &mut Checker, raw: Option<&At<String>>) -> RestartPolicy {
    match raw.map(|r| r.value.as_str()) {
        None | Some("on-failure") => RestartPolicy::OnFailure,
        Some("always") => RestartPolicy::Always,
        Some("never" | "no") => RestartPolicy::Never,
        Some(other) => {
            let hint = Some("use `on-failure`, `always` or `never`".into());
            checker.error(
                raw.expect("UNWRAP: matched Some above"),
                format!("unknown restart policy `{other}`"),
                hint,
            );
            RestartPolicy::OnFailure
        }
    }
}
