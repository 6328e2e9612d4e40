//! `daca export k8s`, `daca build` and `daca init --from-k8s`: snapshots of every example's
//! export, `kubectl kustomize` rendering it, the Kubernetes schemas (kubernetes-validate) and
//! Dapr's CRD rules accepting every object, secrets kept out of manifests and output, export →
//! import → export as a fixed point, and a hand-written tutorial folder run by `daca up`.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use daca::export::Node;

use crate::cli::{run, text};
use crate::common::{have, http_get, http_request, repo, serial};
use crate::up::Up;

/// The projects exported by the tests, with the options they are exported with.
const PROJECTS: [(&str, &[&str]); 4] = [
    ("examples/hello", &[]),
    (
        "examples/pubsub",
        &["--registry", "ghcr.io/acme", "--tag", "1.0"],
    ),
    (
        "examples/containers",
        &["--redis", "external", "--redis-host", "redis.data:6379"],
    ),
    (
        "tests/fixtures/export/shop",
        &[
            "--namespace",
            "shop",
            "--registry",
            "ghcr.io/acme",
            "--tag",
            "1.0",
        ],
    ),
];

const SECRETS: [&str; 2] = ["s3cr3t-value-from-dotenv", "k3y-from-dotenv"];

/// Runs `daca export k8s` of `project` into `out`; its stdout.
fn export(project: &Path, out: &Path, options: &[&str]) -> String {
    let mut args = vec![
        "export",
        "k8s",
        "-d",
        project.to_str().unwrap(),
        "-o",
        out.to_str().unwrap(),
    ];
    args.extend(options);
    let output = run(&args);
    assert!(output.status.success(), "{}", text(&output.stderr));
    text(&output.stdout)
}

/// Every file under `dir`, relative path → text.
fn files(dir: &Path) -> BTreeMap<String, String> {
    let mut out = BTreeMap::new();
    let mut pending = vec![dir.to_path_buf()];
    while let Some(folder) = pending.pop() {
        for path in std::fs::read_dir(&folder)
            .unwrap()
            .flatten()
            .map(|e| e.path())
        {
            if path.is_dir() {
                pending.push(path);
            } else {
                let name = path.strip_prefix(dir).unwrap().display().to_string();
                out.insert(name, std::fs::read_to_string(&path).unwrap());
            }
        }
    }
    out
}

fn exported(project: &str, options: &[&str]) -> (tempfile::TempDir, PathBuf) {
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("deploy");
    export(&repo().join(project), &out, options);
    (tmp, out)
}

#[test]
fn exports_match_their_snapshots() {
    for (project, options) in PROJECTS {
        let (_tmp, out) = exported(project, options);
        let all: String = files(&out)
            .iter()
            .map(|(name, body)| format!("=== {name}\n{body}"))
            .collect();
        let name = project.rsplit('/').next().unwrap();
        insta::assert_snapshot!(format!("export_{name}"), all);
    }
}

/// The documents of `kubectl kustomize DIR`.
fn kustomize(dir: &Path) -> Vec<Node> {
    let output = Command::new("kubectl")
        .args(["kustomize", dir.to_str().unwrap()])
        .output()
        .unwrap();
    assert!(output.status.success(), "{}", text(&output.stderr));
    serde_saphyr::from_str_multiple::<Node, Vec<Node>>(&text(&output.stdout)).unwrap()
}

#[test]
fn kubectl_kustomize_renders_every_object() {
    if !have("kubectl") {
        return;
    }
    for (project, options) in PROJECTS {
        let (_tmp, out) = exported(project, options);
        let written: usize = files(&out)
            .iter()
            .filter(|(name, _)| name.ends_with(".yaml") && *name != "kustomization.yaml")
            .map(|(_, body)| body.matches("\nkind: ").count())
            .sum();
        let generated = files(&out)
            .keys()
            .filter(|n| n.starts_with("secrets/"))
            .count();
        let rendered = kustomize(&out);
        assert_eq!(rendered.len(), written + generated, "{project}");
        for doc in &rendered {
            assert!(doc.path_str(&["metadata", "name"]).is_some(), "{doc:?}");
        }
    }
}

#[test]
fn kubernetes_objects_validate_against_the_kubernetes_schemas() {
    if !have("kubectl") || !have("kubernetes-validate") {
        return;
    }
    for (project, options) in PROJECTS {
        let (tmp, out) = exported(project, options);
        let core: Vec<Node> = kustomize(&out)
            .into_iter()
            .filter(|d| !d.path_str(&["apiVersion"]).unwrap().starts_with("dapr.io/"))
            .collect();
        let file = tmp.path().join("core.yaml");
        std::fs::write(&file, serde_saphyr::to_string_multiple(&core).unwrap()).unwrap();
        // The version k8s-openapi builds the objects for (the `v1_33` feature).
        let output = Command::new("kubernetes-validate")
            .args(["--strict", "-k", "1.33.0", file.to_str().unwrap()])
            .output()
            .unwrap();
        let report = text(&output.stdout) + &text(&output.stderr);
        assert!(output.status.success(), "{project}:\n{report}");
        assert_eq!(
            report.matches(" passed for resource ").count(),
            core.len(),
            "{report}"
        );
    }
}

/// Dapr's CRD rules (github.com/dapr/dapr charts' CRDs), as the tests can check them offline.
fn dapr_problems(doc: &Node) -> Vec<String> {
    let mut problems = Vec::new();
    let mut need = |ok: bool, what: &str| {
        if !ok {
            problems.push(what.to_string());
        }
    };
    let kind = doc.path_str(&["kind"]).unwrap_or_default();
    let version = doc.path_str(&["apiVersion"]).unwrap_or_default();
    need(
        doc.path_str(&["metadata", "name"]).is_some(),
        "metadata.name",
    );
    need(
        doc.get("spec").and_then(|s| s.get("scopes")).is_none(),
        "scopes at the top level, not under spec",
    );
    if let Some(scopes) = doc.get("scopes") {
        need(
            scopes.as_list().iter().all(|s| s.as_str().is_some()),
            "scopes: a list of app-ids",
        );
    }
    match kind {
        "Component" => {
            need(
                version == "dapr.io/v1alpha1",
                "Component is dapr.io/v1alpha1",
            );
            need(doc.path_str(&["spec", "type"]).is_some(), "spec.type");
            need(
                doc.path_str(&["spec", "version"]).is_some(),
                "spec.version (a string)",
            );
            let items = doc.get("spec").and_then(|s| s.get("metadata"));
            for item in items.map(Node::as_list).unwrap_or_default() {
                need(item.path_str(&["name"]).is_some(), "metadata item name");
                let sources = ["value", "secretKeyRef", "envRef"]
                    .iter()
                    .filter(|k| item.get(k).is_some())
                    .count();
                need(
                    sources == 1,
                    "metadata item: one of value, secretKeyRef, envRef",
                );
                if let Some(value) = item.get("value") {
                    need(matches!(value, Node::Str(_)), "metadata values are strings");
                }
                if let Some(reference) = item.get("secretKeyRef") {
                    need(reference.path_str(&["name"]).is_some(), "secretKeyRef.name");
                }
            }
        }
        "Subscription" if version == "dapr.io/v2alpha1" => {
            need(
                doc.path_str(&["spec", "pubsubname"]).is_some(),
                "spec.pubsubname",
            );
            need(doc.path_str(&["spec", "topic"]).is_some(), "spec.topic");
            need(
                doc.get("spec").and_then(|s| s.get("routes")).is_some(),
                "spec.routes",
            );
        }
        "Subscription" => {
            need(
                version == "dapr.io/v1alpha1",
                "Subscription is v1alpha1 or v2alpha1",
            );
            need(doc.path_str(&["spec", "route"]).is_some(), "spec.route");
        }
        "Resiliency" => {
            need(
                doc.get("spec").and_then(|s| s.get("policies")).is_some(),
                "spec.policies",
            );
            need(
                doc.get("spec").and_then(|s| s.get("targets")).is_some(),
                "spec.targets (under spec)",
            );
        }
        "Configuration" => need(matches!(doc.get("spec"), Some(Node::Map(_))), "spec"),
        other => need(false, &format!("unknown Dapr kind {other}")),
    }
    problems
}

#[test]
fn dapr_resources_follow_the_crd_rules_and_point_at_the_cluster_redis() {
    for (project, options) in PROJECTS {
        let (_tmp, out) = exported(project, options);
        let docs: Vec<Node> = files(&out)
            .iter()
            .filter(|(name, _)| name.starts_with("dapr/"))
            .flat_map(|(_, body)| serde_saphyr::from_str_multiple::<Node, Vec<Node>>(body).unwrap())
            .collect();
        assert!(!docs.is_empty(), "{project}");
        let expected_host = match project {
            "examples/containers" => "redis.data:6379",
            "tests/fixtures/export/shop" => "redis-master.shop.svc.cluster.local:6379",
            _ => "redis-master.default.svc.cluster.local:6379",
        };
        for doc in &docs {
            assert_eq!(
                dapr_problems(doc),
                Vec::<String>::new(),
                "{project}: {doc:?}"
            );
            let items = doc.get("spec").and_then(|s| s.get("metadata"));
            for item in items.map(Node::as_list).unwrap_or_default() {
                if item.path_str(&["name"]) == Some("redisHost") {
                    assert_eq!(item.path_str(&["value"]), Some(expected_host), "{project}");
                }
            }
        }
    }
    // A broken resource is caught by the same rules.
    let broken: Node = serde_saphyr::from_str(
        "apiVersion: dapr.io/v1alpha1\nkind: Component\nmetadata: {name: x}\nspec:\n  type: state.redis\n  metadata: [{name: a, value: b, envRef: C}]\n  scopes: [app]\n",
    )
    .unwrap();
    assert_eq!(
        dapr_problems(&broken).len(),
        3,
        "{:?}",
        dapr_problems(&broken)
    );
}

#[test]
fn the_pod_template_carries_the_dapr_annotations_and_env_goes_through_config_maps_and_secrets() {
    let (_tmp, out) = exported(PROJECTS[3].0, PROJECTS[3].1);
    let docs: Vec<Node> = serde_saphyr::from_str_multiple(&files(&out)["orders.yaml"]).unwrap();
    let deployment = docs
        .iter()
        .find(|d| d.path_str(&["kind"]) == Some("Deployment"))
        .unwrap();
    assert!(
        deployment
            .get("metadata")
            .unwrap()
            .get("annotations")
            .is_none(),
        "not on the Deployment"
    );
    let annotation =
        |key: &str| deployment.path_str(&["spec", "template", "metadata", "annotations", key]);
    assert_eq!(annotation("dapr.io/enabled"), Some("true"));
    assert_eq!(annotation("dapr.io/app-id"), Some("orders"));
    assert_eq!(annotation("dapr.io/app-port"), Some("8000"));
    assert_eq!(
        annotation("dapr.io/app-health-check-path"),
        Some("/healthz")
    );
    assert_eq!(annotation("dapr.io/config"), Some("shopconfig"));
    assert_eq!(annotation("dapr.io/http-max-request-size"), Some("16"));
    let worker: Vec<Node> = serde_saphyr::from_str_multiple(&files(&out)["worker.yaml"]).unwrap();
    let worker = worker
        .iter()
        .find(|d| d.path_str(&["kind"]) == Some("Deployment"))
        .unwrap();
    let protocol = worker.path_str(&[
        "spec",
        "template",
        "metadata",
        "annotations",
        "dapr.io/app-protocol",
    ]);
    assert_eq!(protocol, Some("grpc"));
    // What YAML 1.1 (Kubernetes' parser) would turn into booleans and octals stays a string.
    let config_map = &files(&out)["orders.yaml"];
    for line in [
        "FEATURE_X: \"on\"",
        "UMASK: \"0755\"",
        "VERBOSE: \"yes\"",
        "WORKERS: \"2\"",
    ] {
        assert!(config_map.contains(line), "{line} in\n{config_map}");
    }
}

#[test]
fn secrets_from_dot_env_never_reach_a_manifest_or_the_output() {
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("deploy");
    let (project, options) = PROJECTS[3];
    let stdout = export(&repo().join(project), &out, options);
    for secret in SECRETS {
        assert!(!stdout.contains(secret), "{stdout}");
        for (name, body) in files(&out) {
            if name != "secrets/orders.env" {
                assert!(!body.contains(secret), "{secret} in {name}");
            }
        }
    }
    assert!(files(&out)[".gitignore"].contains("secrets/"));
    // Rendered, the values live in the Secret only.
    if have("kubectl") {
        for doc in kustomize(&out) {
            let rendered = serde_saphyr::to_string(&doc).unwrap();
            let is_secret = doc.path_str(&["kind"]) == Some("Secret");
            for secret in SECRETS {
                let encoded = base64(secret);
                let found = rendered.contains(secret) || rendered.contains(&encoded);
                assert_eq!(found, is_secret, "{rendered}");
            }
        }
    }
}

fn base64(text: &str) -> String {
    daca::pubsub::envelope::base64(text.as_bytes())
}

#[test]
fn export_then_import_then_export_is_a_fixed_point() {
    for (project, options) in PROJECTS {
        let tmp = tempfile::tempdir().unwrap();
        let first = tmp.path().join("first");
        export(&repo().join(project), &first, options);
        let imported = tmp.path().join("imported");
        let init = run(&[
            "init",
            "--from-k8s",
            first.to_str().unwrap(),
            imported.to_str().unwrap(),
        ]);
        assert!(init.status.success(), "{}", text(&init.stderr));
        let validate = run(&["validate", "-d", imported.to_str().unwrap()]);
        assert!(validate.status.success(), "{}", text(&validate.stderr));
        let second = tmp.path().join("second");
        export(&imported, &second, options);
        assert_eq!(files(&first), files(&second), "{project}");
    }
}

#[test]
fn a_bad_resource_file_or_a_folder_without_dapr_apps_is_a_clear_error() {
    let project = tempfile::tempdir().unwrap();
    let resources = repo().join("tests/fixtures/components/bad");
    std::fs::write(
        project.path().join("daca.yaml"),
        format!(
            "resources: {}\napps:\n  - id: web\n    command: [python3]\n",
            resources.display()
        ),
    )
    .unwrap();
    let out = run(&[
        "export",
        "k8s",
        "-d",
        project.path().to_str().unwrap(),
        "-o",
        "/tmp/never-written",
    ]);
    assert_eq!(out.status.code(), Some(1));
    let stderr = text(&out.stderr);
    assert!(stderr.contains("all.yaml:"), "{stderr}");
    assert!(!Path::new("/tmp/never-written").exists());

    let empty = tempfile::tempdir().unwrap();
    std::fs::write(
        empty.path().join("svc.yaml"),
        "apiVersion: v1\nkind: Service\nmetadata: {name: x}\n",
    )
    .unwrap();
    let out = run(&[
        "init",
        "--from-k8s",
        empty.path().to_str().unwrap(),
        project.path().join("new").to_str().unwrap(),
    ]);
    assert_eq!(out.status.code(), Some(1));
    let stderr = text(&out.stderr);
    assert!(
        stderr.contains("no Deployment with the annotation dapr.io/enabled"),
        "{stderr}"
    );
    assert!(stderr.contains("hint:"), "{stderr}");
}

#[test]
fn a_hand_written_tutorial_folder_runs_under_daca_up() {
    let _serial = serial();
    if !crate::docker::engine_ready() {
        return;
    }
    let project = tempfile::tempdir().unwrap();
    let tutorial = repo().join("tests/fixtures/export/tutorial");
    let init = run(&[
        "init",
        "--from-k8s",
        tutorial.to_str().unwrap(),
        project.path().to_str().unwrap(),
    ]);
    assert!(init.status.success(), "{}", text(&init.stderr));
    let manifest = std::fs::read_to_string(project.path().join("daca.yaml")).unwrap();
    assert!(
        manifest.contains("image: daca-test/python:3.11"),
        "{manifest}"
    );
    assert!(manifest.contains("GREETING: hi"), "{manifest}");
    // The NodePort Service (targetPort by the container port's name) is the app's host port.
    assert!(manifest.contains("ports: [\"30080:8089\"]"), "{manifest}");
    let mut up = Up::start(project.path(), None);
    up.wait_output("all 1 app(s) ready", Duration::from_secs(60));
    assert_eq!(
        http_get(30080, "/").map(|r| r.0),
        Some(200),
        "{}",
        up.output()
    );
    // The tutorial's component (redisHost: redis-master:6379) is served by daca's Redis.
    let sidecar = up.ps()["apps"][0]["sidecar"]["http"].as_u64().unwrap() as u16;
    let saved = http_request(
        sidecar,
        "POST",
        "/v1.0/state/statestore",
        r#"[{"key":"k","value":"v"}]"#,
    );
    assert_eq!(saved.map(|r| r.0), Some(204));
    assert_eq!(
        http_get(sidecar, "/v1.0/state/statestore/k").map(|r| r.1),
        Some("\"v\"".into())
    );
    up.stop_cleanly();
}

#[test]
fn daca_build_and_export_build_tag_the_images_the_export_names() {
    let _serial = serial();
    if !crate::docker::engine_ready() {
        return;
    }
    let example = crate::docker::example("dacatest-build", crate::common::free_port());
    let dir = example.project.to_str().unwrap();
    let image = "localhost/daca-test-build/hello-api:t1";
    crate::docker::docker(&["rmi", image]);
    let out = run(&[
        "build",
        "-d",
        dir,
        "--registry",
        "localhost/daca-test-build",
        "--tag",
        "t1",
    ]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(
        text(&out.stdout).contains(&format!("hello-api: built {image}")),
        "{}",
        text(&out.stdout)
    );
    assert!(!crate::docker::docker(&["image", "inspect", "-f", "{{.Id}}", image]).is_empty());
    crate::docker::docker(&["rmi", image]);

    let deploy = example.project.join("deploy");
    let stdout = export(
        &example.project,
        &deploy,
        &[
            "--build",
            "--registry",
            "localhost/daca-test-build",
            "--tag",
            "t1",
        ],
    );
    assert!(stdout.contains("wrote"), "{stdout}");
    assert!(!crate::docker::docker(&["image", "inspect", "-f", "{{.Id}}", image]).is_empty());
    assert!(files(&deploy)["hello-api.yaml"].contains(&format!("image: {image}")));
    crate::docker::docker(&["rmi", image]);
}

/// `postgres:` runs a server on this machine only: the export says so rather than dropping it
/// silently, and writes no PostgreSQL object.
#[test]
fn an_exported_project_with_postgres_says_the_cluster_serves_the_database() {
    let project = tempfile::tempdir().unwrap();
    std::fs::write(
        project.path().join("daca.yaml"),
        "name: pgx\npostgres: {}\napps:\n  - id: a\n    command: [sleep, \"1\"]\n",
    )
    .unwrap();
    let out = tempfile::tempdir().unwrap();
    let stdout = export(project.path(), out.path(), &[]);
    assert!(
        stdout.contains("`postgres:` is not exported: the components keep their connectionString"),
        "{stdout}"
    );
    assert!(
        !files(out.path())
            .values()
            .any(|text| text.contains("image: postgres")),
        "no server is exported"
    );
}
