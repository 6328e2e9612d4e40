//! The built `daca` binary's one-shot commands: exit codes, `init`, `validate`, `schema`, and
//! errors reported before anything starts.

use std::process::Output;

use serde_json::Value;

use crate::common::{daca, repo, serial};

pub fn run(args: &[&str]) -> Output {
    daca().args(args).output().unwrap()
}

pub fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

#[test]
fn validate_exits_1_with_positioned_errors_and_0_when_valid() {
    let bad = run(&["validate", "-f", "tests/fixtures/manifests/typo-keys.yaml"]);
    assert_eq!(bad.status.code(), Some(1));
    let stderr = text(&bad.stderr);
    assert!(
        stderr.contains("unknown key `depend_on`") && stderr.contains("typo-keys.yaml:8:5"),
        "{stderr}"
    );
    assert!(!stderr.contains("panicked") && !stderr.contains("backtrace"));
    let good = run(&["validate", "-f", "tests/fixtures/manifests/valid.yaml"]);
    assert_eq!(good.status.code(), Some(0), "{}", text(&good.stderr));
    assert!(text(&good.stdout).contains("2 app(s) in start order: api, web"));
}

#[test]
fn schema_prints_the_json_schema() {
    let output = run(&["schema"]);
    assert!(output.status.success());
    let schema: Value = serde_json::from_slice(&output.stdout).unwrap();
    assert_eq!(schema["title"], "daca.yaml");
}

#[test]
fn init_scaffolds_a_project_that_validates_and_refuses_to_overwrite() {
    let dir = tempfile::tempdir().unwrap();
    let target = dir.path().join("demo");
    let first = run(&["init", target.to_str().unwrap()]);
    assert!(first.status.success(), "{}", text(&first.stderr));
    assert!(target.join("hello-api/main.py").is_file());
    let valid = run(&["validate", "-d", target.to_str().unwrap()]);
    assert!(valid.status.success(), "{}", text(&valid.stderr));
    let again = run(&["init", target.to_str().unwrap()]);
    assert_eq!(again.status.code(), Some(1));
    assert!(text(&again.stderr).contains("already has daca.yaml"));
}

#[test]
fn ps_and_logs_without_a_running_daca_are_user_errors() {
    let dir = tempfile::tempdir().unwrap();
    for command in ["ps", "logs"] {
        let output = run(&[command, "-d", dir.path().to_str().unwrap()]);
        assert_eq!(output.status.code(), Some(1), "{command}");
        assert!(
            text(&output.stderr).contains("no daca is running"),
            "{command}: {}",
            text(&output.stderr)
        );
    }
    let down = run(&["down", "-d", dir.path().to_str().unwrap()]);
    assert!(down.status.success());
    assert!(text(&down.stdout).contains("nothing is running"));
}

#[test]
/// (On the machine's network: an app in a pod has its port to itself, and its host port is
/// the next free one; tests/it/pods.rs.)
fn a_busy_app_port_and_a_missing_program_are_reported_before_anything_starts() {
    let _serial = serial();
    let project = tempfile::tempdir().unwrap();
    let busy = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = busy.local_addr().unwrap().port();
    let manifest = format!(
        "redis: {{ provider: embedded }}\napps:\n  - id: web\n    network: host\n    command: [\"python3\"]\n    port: {port}\n  - id: tool\n    command: [\"no-such-tool-daca\"]\n"
    );
    std::fs::write(project.path().join("daca.yaml"), manifest).unwrap();
    let output = run(&["up", "-d", project.path().to_str().unwrap()]);
    assert_eq!(output.status.code(), Some(1));
    let stderr = text(&output.stderr);
    assert!(
        stderr.contains(&format!("web: port {port} is already in use")),
        "{stderr}"
    );
    assert!(
        stderr.contains("tool: `no-such-tool-daca` was not found"),
        "{stderr}"
    );
}

/// `steps:` run in order before any app; the first that fails stops `daca up` with its last
/// output lines, and no app starts.
#[test]
fn a_failing_step_stops_up_with_its_output_before_any_app_starts() {
    let _serial = serial();
    let project = tempfile::tempdir().unwrap();
    let manifest = "redis: { provider: embedded }\nsteps:\n  - name: first\n    command: [sh, -c, \"echo one > first.txt\"]\n  - name: migrate\n    command: [sh, -c, \"echo 'no such table' >&2; exit 3\"]\napps:\n  - id: web\n    network: host\n    command: [sh, -c, \"touch started.txt; sleep 60\"]\n";
    std::fs::write(project.path().join("daca.yaml"), manifest).unwrap();
    let output = run(&["up", "-d", project.path().to_str().unwrap()]);
    assert_eq!(output.status.code(), Some(1));
    let stderr = text(&output.stderr);
    assert!(
        stderr.contains("step migrate: `sh -c echo 'no such table' >&2; exit 3` failed (exit status: 3):\n  no such table"),
        "{stderr}"
    );
    assert!(
        stderr.contains("hint: fix the step `migrate` in daca.yaml"),
        "{stderr}"
    );
    assert!(
        project.path().join("first.txt").exists(),
        "the first step ran"
    );
    assert!(
        !project.path().join("started.txt").exists(),
        "no app started"
    );
}

#[test]
fn the_repository_manifests_are_valid() {
    for dir in [repo(), repo().join("examples/hello")] {
        let output = run(&["validate", "-d", dir.to_str().unwrap()]);
        assert!(
            output.status.success(),
            "{}: {}",
            dir.display(),
            text(&output.stderr)
        );
    }
}

#[test]
fn a_bad_component_file_stops_up_before_anything_starts_with_its_position() {
    let project = tempfile::tempdir().unwrap();
    std::fs::create_dir(project.path().join("components")).unwrap();
    std::fs::write(
        project.path().join("components/store.yaml"),
        "apiVersion: dapr.io/v1alpha1\nkind: Component\nmetadata:\n  name: statestore\nspec:\n  type: state.mongodb\n  version: v1\n",
    )
    .unwrap();
    std::fs::write(project.path().join("daca.yaml"), "resources: ./components\nredis: { provider: embedded }\napps:\n  - id: web\n    command: [\"python3\"]\n").unwrap();
    let output = run(&["up", "-d", project.path().to_str().unwrap()]);
    assert_eq!(output.status.code(), Some(1));
    let stderr = text(&output.stderr);
    assert!(
        stderr.contains("unknown component type `state.mongodb`")
            && stderr.contains("store.yaml:6:9"),
        "{stderr}"
    );
    assert!(
        !project.path().join(".daca/run.json").exists(),
        "nothing was started"
    );
}
