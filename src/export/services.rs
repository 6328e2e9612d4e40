//! What a folder's Services say about an app on the machine: a `NodePort` (or `LoadBalancer`)
//! Service that selects a Deployment's pods gives that app a host port, as the cluster's node
//! would (30080 stays 30080), leading to the Service's `targetPort` in the app's pod.

use super::Node;

/// The names of the Services that select `deployment`'s pods: what other apps call it by.
pub fn names(deployment: &Node, services: &[&Node]) -> Vec<String> {
    let labels = deployment
        .get("spec")
        .and_then(|s| s.get("template"))
        .and_then(|t| t.get("metadata"))
        .and_then(|m| m.get("labels"));
    services
        .iter()
        .filter(|s| selects(s.get("spec").and_then(|s| s.get("selector")), labels))
        .filter_map(|s| s.path_str(&["metadata", "name"]).map(String::from))
        .collect()
}

/// `(host port, pod port)` for each port of each NodePort/LoadBalancer Service that selects
/// `deployment`'s pods.
pub fn host_ports(deployment: &Node, services: &[&Node]) -> Vec<(i64, i64)> {
    let mut ports = Vec::new();
    each_port(deployment, services, |spec, port, service, target| {
        let kind = spec.path_str(&["type"]).unwrap_or("ClusterIP");
        if !matches!(kind, "NodePort" | "LoadBalancer") {
            return;
        }
        // A LoadBalancer without a nodePort is reached at its own port.
        if let (Some(host), Some(target)) = (int(port.get("nodePort")).or(service), target) {
            ports.push((host, target));
        }
    });
    ports
}

/// `(service port, target port)` for each port of each Service that selects `deployment`'s
/// pods where the two differ (`port: 80`, `targetPort: 8000`): inside the pods its names
/// answer on the Service's port.
pub fn service_ports(deployment: &Node, services: &[&Node]) -> Vec<(i64, i64)> {
    let mut ports = Vec::new();
    each_port(deployment, services, |_, _, service, target| {
        if let (Some(service), Some(target)) = (service, target)
            && target != service
            && !ports.contains(&(service, target))
        {
            ports.push((service, target));
        }
    });
    ports
}

/// Calls `found(service spec, port, its port, its target port)` for each port of each Service
/// that selects `deployment`'s pods; a `targetPort` by name is the container port so named,
/// none is the Service's own port.
fn each_port(
    deployment: &Node,
    services: &[&Node],
    mut found: impl FnMut(&Node, &Node, Option<i64>, Option<i64>),
) {
    let Some(template) = deployment.get("spec").and_then(|s| s.get("template")) else {
        return;
    };
    let labels = template.get("metadata").and_then(|m| m.get("labels"));
    for spec in services.iter().filter_map(|s| s.get("spec")) {
        if !selects(spec.get("selector"), labels) {
            continue;
        }
        for port in spec.get("ports").map(Node::as_list).unwrap_or_default() {
            let service = int(port.get("port"));
            let target = match port.get("targetPort") {
                Some(Node::Str(name)) => named_port(template, name),
                other => int(other).or(service),
            };
            found(spec, port, service, target);
        }
    }
}

fn int(node: Option<&Node>) -> Option<i64> {
    match node? {
        Node::Int(n) => Some(*n),
        Node::Str(text) => text.parse().ok(),
        _ => None,
    }
}

/// A selector matches when every one of its labels is on the pods (an empty one selects none
/// here: such a Service has its endpoints set by hand).
fn selects(selector: Option<&Node>, labels: Option<&Node>) -> bool {
    let (Some(Node::Map(selector)), Some(labels)) = (selector, labels) else {
        return false;
    };
    !selector.is_empty()
        && selector
            .iter()
            .all(|(key, value)| labels.get(key) == Some(value))
}

/// The `containerPort` that a container of the pod names `name`.
fn named_port(template: &Node, name: &str) -> Option<i64> {
    let containers = template.get("spec")?.get("containers")?.as_list();
    containers
        .iter()
        .flat_map(|c| c.get("ports").map(Node::as_list).unwrap_or_default())
        .find(|p| p.path_str(&["name"]) == Some(name))
        .and_then(|p| int(p.get("containerPort")))
}
