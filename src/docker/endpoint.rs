//! Which Docker engine to talk to, decided as the Docker CLI does: `DOCKER_HOST`, else the
//! selected context (`DOCKER_CONTEXT`, else `currentContext` in the CLI's config.json, read from
//! the context store because bollard does not), else the first well-known socket that exists
//! (Docker Engine, Docker Desktop, Rancher Desktop, Colima, OrbStack, Podman).

use std::path::{Path, PathBuf};

/// An engine address and why it was chosen (for messages).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Endpoint {
    /// `unix:///path`, `tcp://host:port` or `http://host:port`.
    pub host: String,
    pub source: String,
}

/// Where to look: the environment and the home folder, passed in so tests need no globals.
pub struct Lookup<'a> {
    pub var: &'a dyn Fn(&str) -> Option<String>,
    pub home: Option<PathBuf>,
}

impl Lookup<'_> {
    fn config_dir(&self) -> Option<PathBuf> {
        match (self.var)("DOCKER_CONFIG") {
            Some(dir) if !dir.is_empty() => Some(PathBuf::from(dir)),
            _ => self.home.as_ref().map(|h| h.join(".docker")),
        }
    }
}

/// The endpoint to use, or `None` when nothing is configured and no known socket exists.
pub fn resolve(lookup: &Lookup) -> Option<Endpoint> {
    if let Some(host) = (lookup.var)("DOCKER_HOST").filter(|h| !h.is_empty()) {
        return Some(Endpoint {
            host,
            source: "DOCKER_HOST".into(),
        });
    }
    if let Some(endpoint) = context_endpoint(lookup) {
        return Some(endpoint);
    }
    known_sockets(lookup)
        .into_iter()
        .find(|path| is_socket(path))
        .map(|path| Endpoint {
            host: format!("unix://{}", path.display()),
            source: "default socket".into(),
        })
}

/// The endpoint of the selected Docker context, unless it is `default`.
fn context_endpoint(lookup: &Lookup) -> Option<Endpoint> {
    let config_dir = lookup.config_dir()?;
    let name = match (lookup.var)("DOCKER_CONTEXT").filter(|c| !c.is_empty()) {
        Some(name) => name,
        None => {
            let text = std::fs::read_to_string(config_dir.join("config.json")).ok()?;
            let config: serde_json::Value = serde_json::from_str(&text).ok()?;
            config.get("currentContext")?.as_str()?.to_string()
        }
    };
    if name == "default" {
        return None;
    }
    // The store names each folder by the sha256 of the context's name; reading every meta.json
    // and matching `Name` finds the same one without a hashing dependency.
    let meta = config_dir.join("contexts").join("meta");
    std::fs::read_dir(meta).ok()?.flatten().find_map(|entry| {
        let text = std::fs::read_to_string(entry.path().join("meta.json")).ok()?;
        let meta: serde_json::Value = serde_json::from_str(&text).ok()?;
        if meta.get("Name")?.as_str()? != name {
            return None;
        }
        let host = meta
            .pointer("/Endpoints/docker/Host")?
            .as_str()?
            .to_string();
        Some(Endpoint {
            host,
            source: format!("Docker context `{name}`"),
        })
    })
}

fn known_sockets(lookup: &Lookup) -> Vec<PathBuf> {
    let mut paths = vec![PathBuf::from("/var/run/docker.sock")];
    if let Some(home) = &lookup.home {
        for rel in [
            ".docker/run/docker.sock",
            ".docker/desktop/docker.sock",
            ".rd/docker.sock",
            ".colima/default/docker.sock",
            ".orbstack/run/docker.sock",
        ] {
            paths.push(home.join(rel));
        }
    }
    if let Some(runtime) = (lookup.var)("XDG_RUNTIME_DIR") {
        paths.push(Path::new(&runtime).join("podman/podman.sock"));
    }
    paths.push(PathBuf::from("/run/podman/podman.sock"));
    paths
}

fn is_socket(path: &Path) -> bool {
    use std::os::unix::fs::FileTypeExt;
    std::fs::metadata(path)
        .map(|m| m.file_type().is_socket())
        .unwrap_or(false)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn resolve_with(vars: &[(&str, &str)], home: &Path) -> Option<Endpoint> {
        let vars: HashMap<String, String> = vars
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        let var = move |name: &str| vars.get(name).cloned();
        resolve(&Lookup {
            var: &var,
            home: Some(home.to_path_buf()),
        })
    }

    fn write_context(home: &Path, folder: &str, name: &str, host: &str) {
        let dir = home.join(".docker/contexts/meta").join(folder);
        std::fs::create_dir_all(&dir).unwrap();
        let meta = serde_json::json!({"Name": name, "Metadata": {}, "Endpoints": {"docker": {"Host": host, "SkipTLSVerify": false}}});
        std::fs::write(dir.join("meta.json"), meta.to_string()).unwrap();
    }

    #[test]
    fn docker_host_wins() {
        let home = tempfile::tempdir().unwrap();
        write_context(home.path(), "a1", "desk", "unix:///desk.sock");
        let found = resolve_with(
            &[
                ("DOCKER_HOST", "tcp://127.0.0.1:2375"),
                ("DOCKER_CONTEXT", "desk"),
            ],
            home.path(),
        )
        .unwrap();
        assert_eq!(found.host, "tcp://127.0.0.1:2375");
        assert_eq!(found.source, "DOCKER_HOST");
    }

    #[test]
    fn current_context_from_config_json() {
        let home = tempfile::tempdir().unwrap();
        write_context(home.path(), "0f", "other", "unix:///other.sock");
        write_context(
            home.path(),
            "9c",
            "rancher-desktop",
            "unix:///home/u/.rd/docker.sock",
        );
        std::fs::write(
            home.path().join(".docker/config.json"),
            r#"{"auths":{},"currentContext":"rancher-desktop"}"#,
        )
        .unwrap();
        let found = resolve_with(&[], home.path()).unwrap();
        assert_eq!(found.host, "unix:///home/u/.rd/docker.sock");
        assert_eq!(found.source, "Docker context `rancher-desktop`");
        // DOCKER_CONTEXT beats config.json; DOCKER_CONFIG moves the store.
        let found = resolve_with(&[("DOCKER_CONTEXT", "other")], home.path()).unwrap();
        assert_eq!(found.host, "unix:///other.sock");
        let moved = tempfile::tempdir().unwrap();
        let config = home.path().join(".docker");
        let found =
            resolve_with(&[("DOCKER_CONFIG", config.to_str().unwrap())], moved.path()).unwrap();
        assert_eq!(found.host, "unix:///home/u/.rd/docker.sock");
    }

    #[test]
    fn default_context_falls_back_to_sockets() {
        let home = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(home.path().join(".rd")).unwrap();
        let socket = home.path().join(".rd/docker.sock");
        let _listener = std::os::unix::net::UnixListener::bind(&socket).unwrap();
        let found = resolve_with(&[("DOCKER_CONTEXT", "default")], home.path()).unwrap();
        // /var/run/docker.sock comes first when it exists (as on CI machines).
        if !is_socket(Path::new("/var/run/docker.sock")) {
            assert_eq!(found.host, format!("unix://{}", socket.display()));
        }
        assert_eq!(found.source, "default socket");
    }
}
