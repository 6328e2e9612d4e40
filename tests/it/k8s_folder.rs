//! `daca up` in a folder that has only Kubernetes manifests (no daca.yaml, no Tiltfile): the
//! course's two-app shape (tests/fixtures/k8s/two), with its namespace, cluster names, a
//! Secret through `secretKeyRef` and a NodePort.

use std::time::Duration;

use crate::cli::{run, text};
use crate::common::http_get;

fn copy_fixture() -> tempfile::TempDir {
    crate::common::copy_fixture("k8s/two")
}

/// Both apps are built from the folders named as their images and run in pods: the frontend
/// reaches the memory service by its Service, `memory-service.daca.svc.cluster.local` (the
/// Service's port 80, leading to the app's 8000), and
/// through its sidecar, gets the Secret's key and its sidecar at 3500, reads a ConfigMap and a
/// Secret mounted as volumes, and answers on NodePort 30080. The plain Jaeger Deployment (no
/// Dapr annotations) runs beside them as a container with no sidecar, reached by its Service's
/// cluster name. How each app runs, and what daca ignores (`resources`), is said at start-up.
#[test]
fn up_in_a_kubernetes_folder_runs_its_apps_as_the_cluster_would() {
    if !crate::docker::engine_ready() {
        return;
    }
    let _serial = crate::common::serial();
    let project = copy_fixture();
    let mut up = crate::up::Up::start(project.path(), None);
    up.wait_output("all 4 app(s) ready", Duration::from_secs(180));
    let output = up.output();
    let read = format!(
        "read Kubernetes manifests in {}: 3 apps, 1 Dapr resource",
        project.path().display()
    );
    for said in [
        read.as_str(),
        "frontend: container in a pod · app :8000 in its pod",
        "memory-2 (a replica of memory): container in a pod",
        "jaeger: container · no sidecar (dapr: false) · app :16686 in its pod",
        "ignored on one machine: `frontend` imagePullPolicy, `frontend` resources, `jaeger` resources",
    ] {
        assert!(output.contains(said), "{said} in\n{output}");
    }
    let get = |path: &str| -> serde_json::Value {
        let (status, body) = http_get(30080, path).unwrap_or_default();
        assert_eq!(status, 200, "{path}: {body}\n{}", up.output());
        serde_json::from_str(&body).unwrap()
    };
    assert_eq!(
        get("/env"),
        serde_json::json!({"DAPR_HTTP_PORT": "3500", "OPENAI_API_KEY": "sk-not-a-real-key"})
    );
    // The memory Deployment's two replicas: its Service and its app-id each lead to both.
    let (mut by_name, mut by_dapr) = (
        std::collections::BTreeSet::new(),
        std::collections::BTreeSet::new(),
    );
    for _ in 0..6 {
        let call = get("/call");
        assert_eq!(call["by_name"]["app"], "memory", "{call}");
        by_name.insert(call["by_name"]["pod"].as_str().unwrap().to_string());
        by_dapr.insert(call["by_dapr"]["pod"].as_str().unwrap().to_string());
    }
    assert_eq!(
        by_name,
        ["memory", "memory-2"].map(String::from).into(),
        "{}",
        up.output()
    );
    assert_eq!(by_dapr, by_name);
    assert_eq!(get("/jaeger"), serde_json::json!({"status": 200}));
    let ps = run(&["ps", "--json", "-d", project.path().to_str().unwrap()]);
    let ps: serde_json::Value = serde_json::from_slice(&ps.stdout).unwrap();
    let jaeger = ps["apps"]
        .as_array()
        .unwrap()
        .iter()
        .find(|a| a["name"] == "jaeger")
        .unwrap();
    assert_eq!(jaeger["sidecar"], serde_json::Value::Null, "{ps}");
    let env = std::process::Command::new("docker")
        .args(["inspect", "--format", "{{json .Config.Env}}"])
        .arg(jaeger["container"].as_str().unwrap())
        .output()
        .unwrap();
    let env = String::from_utf8_lossy(&env.stdout);
    assert!(env.contains("PATH=") && !env.contains("DAPR_"), "{env}");
    // ConfigMap and Secret volumes are mounted where the Deployment says.
    assert_eq!(
        get("/files"),
        serde_json::json!({"config": "greeting: hello from a ConfigMap\n", "secret": "sk-not-a-real-key"})
    );
    // The Secret's value is in the app's env and its volume only: not in what daca wrote.
    let made = std::fs::read_to_string(project.path().join(".daca/imported/daca.yaml")).unwrap();
    assert!(!made.contains("sk-not-a-real-key"), "{made}");
    assert!(!output.contains("sk-not-a-real-key"), "{output}");
    up.stop_cleanly();
}

/// Malformed YAML in the folder is `file:line:col`, with a hint.
#[test]
fn bad_yaml_in_a_kubernetes_folder_is_a_located_error() {
    let project = copy_fixture();
    let bad = project.path().join("kubernetes/bad.yaml");
    std::fs::write(&bad, "apiVersion: v1\nkind: ConfigMap\ndata: [\n").unwrap();
    let out = run(&["validate", "-d", project.path().to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(1));
    let stderr = text(&out.stderr);
    assert!(
        stderr.contains(&format!("{}:3:7: unclosed bracket", bad.display())),
        "{stderr}"
    );
    assert!(stderr.contains("hint:"), "{stderr}");
}
