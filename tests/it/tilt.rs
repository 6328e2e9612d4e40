//! Tiltfiles (src/tilt): `daca init --from-tilt` on a single-app lab in the course's shape, and
//! located errors.

use std::time::Duration;

use crate::cli::{run, text};
use crate::common::{http_get, http_request, wait_until};

fn copy_fixture(name: &str) -> tempfile::TempDir {
    crate::common::copy_fixture(&format!("tilt/{name}"))
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
        // live_update's run('uv sync', trigger=['pyproject.toml']).
        "setup: [sh, -c, uv sync]",
    ] {
        assert!(manifest.contains(wanted), "{wanted} in\n{manifest}");
    }
    // `resource_deps=['redis']` is daca's Redis, not an app to wait for.
    assert!(!manifest.contains("depends_on"), "{manifest}");
    // A run() step on other files (here: every change) is an on_change step.
    let tiltfile = lab.path().join("Tiltfile");
    let text_of = std::fs::read_to_string(&tiltfile).unwrap();
    std::fs::write(
        &tiltfile,
        text_of.replace("run('uv sync',", "run('echo synced'), run('uv sync',"),
    )
    .unwrap();
    let again = run(&[
        "init",
        "--force",
        "--from-tilt",
        lab.path().to_str().unwrap(),
    ]);
    assert!(again.status.success(), "{}", text(&again.stderr));
    let manifest = std::fs::read_to_string(lab.path().join("daca.yaml")).unwrap();
    assert!(
        manifest.contains("on_change:\n      - { run: [sh, -c, echo synced], trigger: [] }"),
        "{manifest}"
    );
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
        (
            "local_resource('migrate', deps=['x'])\n",
            "Tiltfile:1:1: ",
            "neither `cmd` nor `serve_cmd`",
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

/// `daca up` in the lab itself (no daca.yaml): one line says what it read, the app is built
/// from its Dockerfile and serves on its port forward, a save reloads it, its state lands in
/// daca's Redis in Dapr's layout, and what daca made of the lab is written under `.daca/`.
/// A `local_resource` with a `serve_cmd` runs beside it as a process of the machine's, its
/// `cmd` first, and restarts when one of its `deps` changes.
#[test]
fn up_in_a_tilt_lab_serves_reloads_and_keeps_state_in_redis() {
    if !crate::docker::engine_ready() {
        return;
    }
    let _serial = crate::common::serial();
    let lab = copy_fixture("single");
    let docs = crate::common::free_port();
    std::fs::create_dir_all(lab.path().join("docs")).unwrap();
    std::fs::write(lab.path().join("docs/seed.src"), "1\n").unwrap();
    let tiltfile = lab.path().join("Tiltfile");
    let mut tilt = std::fs::read_to_string(&tiltfile).unwrap();
    tilt.push_str(&format!(
        "local_resource('docs_server', cmd='date +%s%N > built.txt', serve_cmd='python3 -m http.server {docs} --bind 127.0.0.1', serve_dir='docs', deps=['docs/index.md'], readiness_probe=probe(period_secs=1, http_get=http_get_action(port={docs}, path='built.txt')))\n\
         local_resource('seed', cmd='echo seeded >> seeded.txt', dir='docs', deps=['docs/seed.src'])\n"
    ));
    std::fs::write(&tiltfile, tilt).unwrap();
    let mut up = crate::up::Up::start(lab.path(), None);
    up.wait_output("all 2 app(s) ready", Duration::from_secs(120));
    assert!(
        up.output().contains(
            "read Tiltfile: 2 apps, 1 Dapr resource, Helm charts dapr, dapr-dashboard, redis provided by daca"
        ),
        "{}",
        up.output()
    );
    assert!(
        up.output().contains("docs-server: process · no sidecar"),
        "{}",
        up.output()
    );
    // A local_resource with a `cmd` alone ran once, before the apps (again below, on its deps).
    assert!(
        up.output().contains("step seed: done in"),
        "{}",
        up.output()
    );
    assert_eq!(
        std::fs::read_to_string(lab.path().join("docs/seeded.txt")).unwrap(),
        "seeded\n"
    );
    let built = || std::fs::read_to_string(lab.path().join("docs/built.txt")).unwrap_or_default();
    let first = built();
    assert!(
        wait_until(Duration::from_secs(10), || http_get(docs, "/built.txt")
            .is_some_and(|(s, b)| s == 200 && b == first)),
        "{}",
        up.output()
    );
    std::fs::write(lab.path().join("docs/index.md"), "# changed\n").unwrap();
    assert!(
        wait_until(Duration::from_secs(20), || built() != first),
        "its cmd ran again\n{}",
        up.output()
    );
    std::fs::write(lab.path().join("docs/seed.src"), "2\n").unwrap();
    let seeded = || std::fs::read_to_string(lab.path().join("docs/seeded.txt")).unwrap_or_default();
    assert!(
        wait_until(Duration::from_secs(20), || seeded() == "seeded\nseeded\n"),
        "{}",
        up.output()
    );
    // The save was in the agent's folder too (its sync is the lab's root): it reloads.
    let serving = || http_get(8000, "/").is_some_and(|(s, _)| s == 200);
    assert!(
        wait_until(Duration::from_secs(30), serving),
        "{}",
        up.output()
    );
    let (status, body) = http_get(8000, "/").unwrap_or_default();
    assert_eq!(
        (status, body.as_str()),
        (200, r#"{"hello":"from the Tiltfile"}"#)
    );
    // Both saves above may each restart the agent: the write is retried until one restart has
    // settled, as a user would press the button again.
    let saved = || http_request(8000, "POST", "/remember/lab/kept", "").is_some_and(|r| r.0 == 200);
    assert!(
        wait_until(Duration::from_secs(30), saved),
        "{}",
        up.output()
    );
    let redis_cli = std::process::Command::new("redis-cli")
        .args(["-p", "6379", "HGET", "daca-agent||lab", "data"])
        .output()
        .unwrap();
    assert_eq!(text(&redis_cli.stdout), "\"kept\"\n");
    let main = lab.path().join("main.py");
    let source = std::fs::read_to_string(&main).unwrap();
    std::fs::write(&main, source.replace("from the Tiltfile", "edited")).unwrap();
    let edited = || http_get(8000, "/").is_some_and(|(_, b)| b.contains("edited"));
    assert!(
        wait_until(Duration::from_secs(30), edited),
        "{}",
        up.output()
    );
    up.stop_cleanly();
    // What daca made of the Tiltfile is under .daca/, not beside the user's files.
    for written in ["daca.yaml", "resources"] {
        assert!(!lab.path().join(written).exists(), "{written} was written");
    }
    let made = std::fs::read_to_string(lab.path().join(".daca/imported/daca.yaml")).unwrap();
    assert!(made.contains("# Imported by `daca up -d "), "{made}");
    // Its readiness_probe is the app's port and health path.
    assert!(
        made.contains(&format!("port: {docs}\n    health: /built.txt\n")),
        "{made}"
    );
}
