//! What a folder of manifests asks for that daca does not do, said once at start-up (never a
//! silent skip, never an error): workloads it does not run, volumes it does not mount, a
//! `replicas: 0` it runs once, and the fields and kinds a single machine has no use for.

use std::collections::BTreeSet;
use std::path::PathBuf;

use super::Node;

/// Kinds daca reads: workloads, Services, ConfigMaps, Secrets, Namespaces, kustomize's file.
const READ: &[&str] = &[
    "Deployment",
    "StatefulSet",
    "Service",
    "ConfigMap",
    "Secret",
    "Namespace",
    "Kustomization",
];

/// Pod and container fields that only mean something to a cluster's scheduler.
const CLUSTER_FIELDS: &[&str] = &[
    "affinity",
    "nodeSelector",
    "tolerations",
    "serviceAccountName",
    "priorityClassName",
    "imagePullSecrets",
    "securityContext",
];
const CONTAINER_FIELDS: &[&str] = &["resources", "imagePullPolicy", "securityContext"];

/// One line per thing not done, then one line of what was ignored.
pub(super) fn notes(docs: &[(PathBuf, Node)]) -> Vec<String> {
    let mut notes = Vec::new();
    let mut ignored = BTreeSet::new();
    let configurations: Vec<&str> = docs
        .iter()
        .filter(|(_, d)| d.path_str(&["kind"]) == Some("Configuration"))
        .filter_map(|(_, d)| d.path_str(&["metadata", "name"]))
        .collect();
    for (_, doc) in docs {
        let kind = doc.path_str(&["kind"]).unwrap_or_default();
        let name = doc.path_str(&["metadata", "name"]).unwrap_or_default();
        let dapr = doc
            .path_str(&["apiVersion"])
            .is_some_and(|v| v.starts_with("dapr.io/"));
        match kind {
            "Deployment" | "StatefulSet" => {
                let at = (kind, name);
                workload(doc, at, &configurations, &mut notes, &mut ignored)
            }
            "DaemonSet" | "Job" | "CronJob" | "Pod" | "ReplicaSet" => {
                notes.push(format!(
                    "not run: {kind} `{name}` (daca runs Deployments and StatefulSets)"
                ));
            }
            _ if dapr || READ.contains(&kind) => {}
            "" => {}
            other => {
                ignored.insert(format!("{other} `{name}`"));
            }
        }
    }
    if !ignored.is_empty() {
        let list: Vec<String> = ignored.into_iter().collect();
        notes.push(format!("ignored on one machine: {}", list.join(", ")));
    }
    notes
}

fn workload(
    doc: &Node,
    (kind, name): (&str, &str),
    configurations: &[&str],
    notes: &mut Vec<String>,
    ignored: &mut BTreeSet<String>,
) {
    let Some(template) = doc.get("spec").and_then(|s| s.get("template")) else {
        return;
    };
    // The Redis StatefulSet `daca export` writes is daca's own Redis.
    if super::workload::is_daca_redis(doc) {
        if name != super::redis::NAME_REDIS {
            notes.push(format!(
                "{kind} `{name}` is a Redis: daca provides its own, which the components' redisHost lead to"
            ));
        }
        return;
    }
    if let Some(config) = template.path_str(&["metadata", "annotations", "dapr.io/config"])
        && !configurations.contains(&config)
    {
        notes.push(format!(
            "`{name}`: its dapr.io/config `{config}` names no Configuration in these manifests (the sidecar runs with Dapr's defaults)"
        ));
    }
    if let Some(Node::Int(0)) = doc.get("spec").and_then(|s| s.get("replicas")) {
        notes.push(format!(
            "`{name}`: replicas: 0 runs as 1 instance (remove it from the manifests to run none)"
        ));
    }
    let Some(spec) = template.get("spec") else {
        return;
    };
    for volume in spec.get("volumes").map(Node::as_list).unwrap_or_default() {
        let volume_name = volume.path_str(&["name"]).unwrap_or_default();
        // ConfigMaps and Secrets are mounted (super::volumes).
        if volume.get("configMap").is_some() || volume.get("secret").is_some() {
            continue;
        }
        let source = ["persistentVolumeClaim", "emptyDir", "hostPath"]
            .into_iter()
            .find(|s| volume.get(s).is_some())
            .unwrap_or("volume");
        notes.push(format!(
            "`{name}`: its {source} volume `{volume_name}` is not mounted (daca mounts ConfigMap and Secret volumes only)"
        ));
    }
    for field in CLUSTER_FIELDS.iter().filter(|f| spec.get(f).is_some()) {
        ignored.insert(format!("`{name}` {field}"));
    }
    let containers = spec
        .get("containers")
        .map(Node::as_list)
        .unwrap_or_default();
    if containers.len() > 1 {
        notes.push(format!(
            "`{name}`: only its first container runs (daca runs one container per app)"
        ));
    }
    for container in containers {
        for field in CONTAINER_FIELDS
            .iter()
            .filter(|f| container.get(f).is_some())
        {
            ignored.insert(format!("`{name}` {field}"));
        }
    }
}
