//! ConfigMap and Secret volumes of a Deployment: their keys written as files (under
//! `volumes/<app>/<volume>/`, as the kubelet projects them) and mounted read-only where the
//! container's `volumeMounts` say (`subPath` and `items` included).

use std::collections::BTreeMap;

use super::Node;

/// Where the files of the project's volumes go, relative to its daca.yaml.
pub const VOLUMES: &str = "./volumes";

/// One `volumeMounts` entry of a ConfigMap or Secret volume.
#[derive(Debug, Clone)]
pub(super) struct Mount {
    volume: String,
    source: Source,
    /// `items`: key → file name; empty means every key under its own name.
    items: Vec<(String, String)>,
    path: String,
    sub_path: Option<String>,
}

#[derive(Debug, Clone)]
enum Source {
    ConfigMap(String),
    Secret(String),
}

/// The ConfigMap and Secret volumes the first container mounts.
pub(super) fn mounts(spec: &Node, container: &Node) -> Vec<Mount> {
    let volumes = spec.get("volumes").map(Node::as_list).unwrap_or_default();
    let mut out = Vec::new();
    for mount in container
        .get("volumeMounts")
        .map(Node::as_list)
        .unwrap_or_default()
    {
        let (Some(name), Some(path)) = (mount.path_str(&["name"]), mount.path_str(&["mountPath"]))
        else {
            continue;
        };
        let Some(volume) = volumes.iter().find(|v| v.path_str(&["name"]) == Some(name)) else {
            continue;
        };
        let (source, spec) = if let Some(map) = volume.get("configMap") {
            (
                map.path_str(&["name"]).map(|n| Source::ConfigMap(n.into())),
                map,
            )
        } else if let Some(secret) = volume.get("secret") {
            (
                secret
                    .path_str(&["secretName"])
                    .map(|n| Source::Secret(n.into())),
                secret,
            )
        } else {
            continue;
        };
        let Some(source) = source else { continue };
        let items = spec
            .get("items")
            .map(Node::as_list)
            .unwrap_or_default()
            .iter()
            .filter_map(|i| Some((i.path_str(&["key"])?.into(), i.path_str(&["path"])?.into())))
            .collect();
        out.push(Mount {
            volume: name.to_string(),
            source,
            items,
            path: path.to_string(),
            sub_path: mount.path_str(&["subPath"]).map(String::from),
        });
    }
    out
}

/// The files of `app`'s mounts (path relative to daca.yaml → content) and its `volumes:`
/// entries.
pub(super) fn files(
    app: &str,
    mounts: &[Mount],
    config_maps: &BTreeMap<&str, &Node>,
    secrets: &BTreeMap<String, BTreeMap<String, String>>,
) -> (Vec<(String, String)>, Vec<String>) {
    let (mut files, mut entries) = (Vec::new(), Vec::new());
    for mount in mounts {
        let data: BTreeMap<String, String> = match &mount.source {
            Source::ConfigMap(name) => match config_maps.get(name.as_str()) {
                Some(Node::Map(data)) => data
                    .iter()
                    .filter_map(|(k, v)| Some((k.clone(), v.as_str()?.to_string())))
                    .collect(),
                _ => BTreeMap::new(),
            },
            Source::Secret(name) => secrets.get(name).cloned().unwrap_or_default(),
        };
        let folder = format!("{VOLUMES}/{app}/{}", mount.volume);
        for (key, value) in &data {
            let file = match mount.items.is_empty() {
                true => Some(key.clone()),
                false => mount
                    .items
                    .iter()
                    .find(|(k, _)| k == key)
                    .map(|(_, p)| p.clone()),
            };
            // A key naming a path outside its folder is not a file the kubelet would write.
            if let Some(file) = file.filter(|f| !f.contains("..") && !f.starts_with('/')) {
                files.push((
                    format!("{folder}/{file}").trim_start_matches("./").into(),
                    value.clone(),
                ));
            }
        }
        let source = match &mount.sub_path {
            Some(sub) => format!("{folder}/{sub}"),
            None => folder,
        };
        entries.push(format!("{source}:{}:ro", mount.path));
    }
    (files, entries)
}
