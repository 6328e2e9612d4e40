//! The environment each app gets: what the Dapr CLI gives an app, then its `.env`, then the
//! manifest's `env` (later wins, as in Compose).

use std::collections::BTreeMap;
use std::path::Path;

use crate::manifest::AppProtocol;

/// Sidecar ports assigned to an app.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct SidecarPorts {
    pub http: u16,
    pub grpc: u16,
}

/// Builds the full environment of an app.
pub fn app_env(
    inherited: impl Iterator<Item = (String, String)>,
    app_id: &str,
    app_port: Option<u16>,
    protocol: AppProtocol,
    sidecar: Option<SidecarPorts>,
    dot_env: &BTreeMap<String, String>,
    manifest_env: &BTreeMap<String, String>,
) -> Vec<(String, String)> {
    let mut env: BTreeMap<String, String> = inherited.collect();
    // An app without a sidecar (`dapr: false`) is told nothing of Dapr, as in Kubernetes.
    if let Some(sidecar) = sidecar {
        env.insert("APP_ID".into(), app_id.into());
        if let Some(port) = app_port {
            env.insert("APP_PORT".into(), port.to_string());
        }
        env.insert("APP_PROTOCOL".into(), protocol.as_str().into());
        env.insert("APP_CHANNEL_ADDRESS".into(), "127.0.0.1".into());
        env.insert("DAPR_HTTP_PORT".into(), sidecar.http.to_string());
        env.insert("DAPR_GRPC_PORT".into(), sidecar.grpc.to_string());
    }
    // Python block-buffers stdout into a pipe, so without this an app's prints show up late
    // or never in the log stream. A user's own value still wins below.
    env.entry("PYTHONUNBUFFERED".into())
        .or_insert_with(|| "1".into());
    env.extend(dot_env.iter().map(|(k, v)| (k.clone(), v.clone())));
    env.extend(manifest_env.iter().map(|(k, v)| (k.clone(), v.clone())));
    env.into_iter().collect()
}

/// [`app_env`] for a manifest app: its `.env` and `env:` over what it `inherits`.
pub fn for_app(
    app: &crate::manifest::AppSpec,
    ports: SidecarPorts,
    inherited: impl Iterator<Item = (String, String)>,
) -> Vec<(String, String)> {
    // daca's own tools (see `crate::tools`) are found last on the app's PATH.
    let inherited = inherited.map(|(k, v)| match k.as_str() {
        "PATH" => (k, crate::tools::extend_path(&v)),
        _ => (k, v),
    });
    app_env(
        inherited,
        app.app_id().as_str(),
        app.process.port,
        app.process.protocol,
        app.sidecar.enabled.then_some(ports),
        &read_dot_env(&app.dir),
        &app.process.env,
    )
}

/// The project's `namespace:`, set once when it starts (a daca process runs one project).
static NAMESPACE: std::sync::OnceLock<String> = std::sync::OnceLock::new();

/// Sets the namespace of the project this process runs; the first call wins (a daca.yaml edit
/// that changes it is reported as not applied).
pub fn set_namespace(namespace: &str) {
    let _ = NAMESPACE.set(namespace.to_string());
}

/// The namespace the apps run in (in workflow actor types and in the cluster names a pod
/// resolves): the project's `namespace:`, else `NAMESPACE` as in Dapr's self-hosted mode,
/// else `default`.
pub fn namespace() -> String {
    if let Some(namespace) = NAMESPACE.get() {
        return namespace.clone();
    }
    std::env::var("NAMESPACE")
        .ok()
        .filter(|n| !n.is_empty())
        .unwrap_or_else(|| "default".into())
}

/// Reads `dir/.env` if present: `KEY=value` lines, `#` comments, optional `export `, and
/// single or double quotes around the value.
pub fn read_dot_env(dir: &Path) -> BTreeMap<String, String> {
    let Ok(text) = std::fs::read_to_string(dir.join(".env")) else {
        return BTreeMap::new();
    };
    parse_dot_env(&text)
}

pub fn parse_dot_env(text: &str) -> BTreeMap<String, String> {
    text.lines()
        .map(str::trim)
        .filter(|line| !line.is_empty() && !line.starts_with('#'))
        .filter_map(|line| {
            let line = line.strip_prefix("export ").unwrap_or(line);
            let (key, value) = line.split_once('=')?;
            let value = value.trim();
            let unquoted = ['"', '\'']
                .iter()
                .find_map(|q| value.strip_prefix(*q).and_then(|v| v.strip_suffix(*q)))
                .map(str::to_string)
                .unwrap_or_else(|| value.split(" #").next().unwrap_or(value).trim().to_string());
            Some((key.trim().to_string(), unquoted))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dot_env_forms() {
        let parsed = parse_dot_env(
            "# c\nA=1\nexport B = two \nC=\"x # y\"\nD='q'\nE=v # note\n\nbad line\n",
        );
        let expected: BTreeMap<String, String> = [
            ("A", "1"),
            ("B", "two"),
            ("C", "x # y"),
            ("D", "q"),
            ("E", "v"),
        ]
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
        assert_eq!(parsed, expected);
    }

    #[test]
    fn manifest_env_beats_dot_env_beats_dapr_vars() {
        let ports = SidecarPorts {
            http: 3500,
            grpc: 50001,
        };
        let dot: BTreeMap<_, _> = [
            ("X".to_string(), "dot".to_string()),
            ("Y".to_string(), "dot".to_string()),
        ]
        .into();
        let man: BTreeMap<_, _> = [("Y".to_string(), "manifest".to_string())].into();
        let env: BTreeMap<_, _> = app_env(
            std::iter::empty(),
            "api",
            Some(8000),
            AppProtocol::Grpc,
            Some(ports),
            &dot,
            &man,
        )
        .into_iter()
        .collect();
        assert_eq!(env["APP_ID"], "api");
        assert_eq!(env["APP_PORT"], "8000");
        assert_eq!(env["APP_PROTOCOL"], "grpc");
        assert_eq!(env["DAPR_HTTP_PORT"], "3500");
        assert_eq!(env["DAPR_GRPC_PORT"], "50001");
        assert_eq!(env["X"], "dot");
        assert_eq!(env["Y"], "manifest");
        let plain: BTreeMap<_, _> = app_env(
            std::iter::empty(),
            "jaeger",
            Some(16686),
            AppProtocol::Http,
            None,
            &dot,
            &man,
        )
        .into_iter()
        .collect();
        assert!(
            !plain
                .keys()
                .any(|k| k.starts_with("DAPR_") || k.starts_with("APP_")),
            "{plain:?}"
        );
    }
}
