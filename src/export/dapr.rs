//! The project's Dapr resources for the cluster: the files of `resources:` (Components,
//! Subscriptions, Resiliency, Configuration, HTTPEndpoints) passed through with their fields
//! intact, the Redis address replaced by the cluster's, and `secretKeyRef`s kept as
//! references; or, without a resources folder, what `dapr init` gives (`statestore`, `pubsub`).

use std::collections::BTreeMap;
use std::path::Path;

use super::{ExportError, Node, Options};
use crate::manifest::Manifest;

/// Kinds a cluster with Dapr knows as resources.
const KINDS: &[&str] = &[
    "Component",
    "Subscription",
    "Resiliency",
    "Configuration",
    "HTTPEndpoint",
];

/// The project's Dapr resources for the cluster.
pub struct Resources {
    /// By file stem (`component-statestore`).
    pub docs: BTreeMap<String, Node>,
    /// The Configuration's name (for `dapr.io/config`).
    pub config: Option<String>,
    /// `KEY=value` lines of the secrets written inline in components, by file stem: each
    /// becomes the Secret `<stem>-secrets`, which the component now references.
    pub secrets: BTreeMap<String, String>,
}

/// The resources of `resources:`, or `dapr init`'s defaults.
pub fn resources(
    manifest: &Manifest,
    options: &Options,
    notes: &mut Vec<String>,
) -> Result<Resources, ExportError> {
    let docs = match &manifest.resources {
        Some(dir) => read_folder(dir)?,
        None => defaults(),
    };
    let mut out = BTreeMap::new();
    let mut secrets = BTreeMap::new();
    let mut skipped_stores = Vec::new();
    let mut config = None;
    for mut doc in docs {
        let kind = doc.path_str(&["kind"]).unwrap_or_default().to_string();
        let name = doc
            .path_str(&["metadata", "name"])
            .unwrap_or_default()
            .to_string();
        if !KINDS.contains(&kind.as_str()) {
            notes.push(format!(
                "left out `{kind}` `{name}`: not a Dapr resource kind"
            ));
            continue;
        }
        let kind_type = doc
            .path_str(&["spec", "type"])
            .unwrap_or_default()
            .to_string();
        if kind_type.starts_with("secretstores.local.") {
            notes.push(format!(
                "left out secret store `{name}` ({kind_type}): on Kubernetes, Dapr's built-in `kubernetes` store reads Secrets; create them there"
            ));
            skipped_stores.push(name);
            continue;
        }
        if kind == "Configuration" && config.is_none() {
            config = Some(name.clone());
        }
        set_namespace(&mut doc, &options.namespace);
        point_at_cluster_redis(&mut doc, &options.redis_address());
        let stem = format!("{}-{name}", kind.to_lowercase());
        if let Some(lines) = move_inline_secrets(&mut doc, &stem) {
            notes.push(format!(
                "moved the inline secrets of `{name}` to the Secret `{stem}-secrets` (values in secrets/{stem}.env, git-ignored)"
            ));
            secrets.insert(stem.clone(), lines);
        }
        out.insert(stem, doc);
    }
    for doc in out.values_mut() {
        drop_local_auth(doc, &skipped_stores);
    }
    Ok(Resources {
        docs: out,
        config,
        secrets,
    })
}

/// Replaces each non-empty `value` of a metadata item named like a secret by a `secretKeyRef`
/// to the Secret `<stem>-secrets`; returns their `name=value` lines. A value written in a
/// component is a secret all the same, and an export is for sharing.
fn move_inline_secrets(doc: &mut Node, stem: &str) -> Option<String> {
    let Some(Node::List(items)) = doc.get_mut("spec").and_then(|s| s.get_mut("metadata")) else {
        return None;
    };
    let mut lines = String::new();
    for item in items {
        let Some(name) = item.path_str(&["name"]).map(String::from) else {
            continue;
        };
        let Node::Map(map) = item else { continue };
        let value = match map.get("value") {
            Some(Node::Str(value)) if !value.is_empty() => value.clone(),
            _ => continue,
        };
        if !crate::components::named_like_a_secret(&name) {
            continue;
        }
        map.remove("value");
        let reference = Node::map([
            ("name", Node::str(format!("{stem}-secrets"))),
            ("key", Node::str(name.clone())),
        ]);
        map.insert("secretKeyRef".into(), reference);
        // kustomize's env files take the value raw, as the apps' `.env` lines are written.
        lines.push_str(&format!("{name}={value}\n"));
    }
    (!lines.is_empty()).then_some(lines)
}

fn read_folder(dir: &Path) -> Result<Vec<Node>, ExportError> {
    let mut files: Vec<_> = std::fs::read_dir(dir)
        .map_err(|e| ExportError::Read {
            file: dir.display().to_string(),
            message: e.to_string(),
        })?
        .flatten()
        .map(|e| e.path())
        .filter(|p| matches!(p.extension().and_then(|e| e.to_str()), Some("yaml" | "yml")))
        .collect();
    files.sort();
    let mut docs = Vec::new();
    for file in files {
        docs.extend(super::node::read_documents(&file)?);
    }
    Ok(docs)
}

/// What `dapr init` writes to ~/.dapr/components (and what daca serves without a folder).
fn defaults() -> Vec<Node> {
    let item = |name: &str, value: &str| {
        Node::map([("name", Node::str(name)), ("value", Node::str(value))])
    };
    let component = |name: &str, kind: &str, extra: Vec<Node>| {
        let mut metadata = vec![
            item("redisHost", "localhost:6379"),
            item("redisPassword", ""),
        ];
        metadata.extend(extra);
        Node::map([
            ("apiVersion", Node::str("dapr.io/v1alpha1")),
            ("kind", Node::str("Component")),
            ("metadata", Node::map([("name", Node::str(name))])),
            (
                "spec",
                Node::map([
                    ("type", Node::str(kind)),
                    ("version", Node::str("v1")),
                    ("metadata", Node::List(metadata)),
                ]),
            ),
        ])
    };
    vec![
        component(
            "statestore",
            "state.redis",
            vec![item("actorStateStore", "true")],
        ),
        component("pubsub", "pubsub.redis", Vec::new()),
    ]
}

fn set_namespace(doc: &mut Node, namespace: &str) {
    if let Some(Node::Map(metadata)) = doc.get_mut("metadata") {
        metadata.insert("namespace".into(), Node::str(namespace));
    }
}

/// `redisHost` of every component becomes the cluster's Redis (a `secretKeyRef` stays one).
fn point_at_cluster_redis(doc: &mut Node, address: &str) {
    let Some(Node::List(items)) = doc.get_mut("spec").and_then(|s| s.get_mut("metadata")) else {
        return;
    };
    for item in items {
        if item.path_str(&["name"]) == Some("redisHost")
            && let Some(value @ Node::Str(_)) = item.get_mut("value")
        {
            *value = Node::str(address);
        }
    }
}

/// `auth.secretStore` naming a local store that was left out: Dapr then uses the built-in
/// `kubernetes` store, where the same `secretKeyRef`s resolve against Secrets.
fn drop_local_auth(doc: &mut Node, skipped: &[String]) {
    let Node::Map(map) = doc else { return };
    let local = map
        .get("auth")
        .and_then(|a| a.path_str(&["secretStore"]))
        .is_some_and(|store| skipped.iter().any(|s| s == store));
    if local {
        map.remove("auth");
    }
}
