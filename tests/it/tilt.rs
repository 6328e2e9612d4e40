//! Tiltfiles (src/tilt): `daca init --from-tilt` on a single-app lab in the course's shape, and
//! located errors.

use crate::cli::{run, text};
use crate::common::repo;

fn copy_fixture(name: &str) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    let from = repo().join("tests/fixtures/tilt").join(name);
    let status = std::process::Command::new("cp")
        .arg("-r")
        .arg(format!("{}/.", from.display()))
        .arg(dir.path())
        .status()
        .unwrap();
    assert!(status.success());
    dir
}

#[test]
fn init_from_tilt_writes_the_labs_daca_yaml_beside_its_tiltfile() {
    let lab = copy_fixture("single");
    let out = run(&["init", "--from-tilt", lab.path().to_str().unwrap()]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let stdout = text(&out.stdout);
    assert!(
        stdout.contains("Helm charts dapr, dapr-dashboard, redis provided by daca"),
        "{stdout}"
    );
    let manifest = std::fs::read_to_string(lab.path().join("daca.yaml")).unwrap();
    let folder = lab
        .path()
        .file_name()
        .unwrap()
        .to_string_lossy()
        .to_string();
    assert!(
        manifest.contains("# Imported by `daca init --from-tilt "),
        "{manifest}"
    );
    assert!(manifest.contains(&format!("name: {folder}")), "{manifest}");
    for wanted in [
        "id: daca-agent",
        "dir: ./",
        "build: {}",
        "mount: /code",
        "ports: [\"8000:8000\"]",
        "resources: ./resources",
    ] {
        assert!(manifest.contains(wanted), "{wanted} in\n{manifest}");
    }
    // `resource_deps=['redis']` is daca's Redis, not an app to wait for.
    assert!(!manifest.contains("depends_on"), "{manifest}");
    let validate = run(&["validate", "-d", lab.path().to_str().unwrap()]);
    assert!(validate.status.success(), "{}", text(&validate.stderr));
}

#[test]
fn a_tiltfile_daca_cannot_run_is_a_located_error() {
    let lab = copy_fixture("single");
    let tiltfile = lab.path().join("Tiltfile");
    let cases = [
        (
            "docker_compose('compose.yaml')\n",
            "Tiltfile:1:1: ",
            "docker_compose",
        ),
        (
            "helm_remote('kafka', repo_url='https://charts.example')\n",
            "Tiltfile:1:1: ",
            "helm_remote('kafka')",
        ),
        (
            "k8s_yaml('kubernetes/deployment.yaml')\nk8s_resource('daca-agent', port_forwards='web')\n",
            "Tiltfile:2:1: ",
            "`web` is not HOST:POD",
        ),
        (
            "k8s_yaml('missing.yaml')\n",
            "Tiltfile:1:1: ",
            "is not a file",
        ),
    ];
    for (text_of, at, says) in cases {
        std::fs::write(&tiltfile, text_of).unwrap();
        let out = run(&[
            "init",
            "--from-tilt",
            lab.path().to_str().unwrap(),
            "--force",
        ]);
        assert_eq!(out.status.code(), Some(1), "{text_of}");
        let stderr = text(&out.stderr);
        assert!(stderr.contains(at), "{text_of}: {stderr}");
        assert!(stderr.contains(says), "{text_of}: {stderr}");
        assert!(stderr.contains("hint:"), "{text_of}: {stderr}");
    }
}
