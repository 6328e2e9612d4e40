//! `on_change:` (Tilt's `live_update` `run()` steps): a command run in the app's folder before
//! the restart a change causes, when a changed file matches its trigger.

use std::time::Duration;

use crate::common::{free_port, wait_until};

#[test]
fn an_on_change_step_runs_before_the_restart_when_its_trigger_matches() {
    let _serial = crate::common::serial();
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    std::fs::write(root.join("style.css"), "a {}\n").unwrap();
    std::fs::write(root.join("main.py"), "print('v1')\n").unwrap();
    // Every port its own, so that nothing else running here meets it.
    let (port, http, grpc) = (free_port(), free_port(), free_port());
    std::fs::write(
        root.join("daca.yaml"),
        format!(
            "name: steps\nredis: {{ provider: embedded }}\napps:\n  - id: web\n    network: host\n    command: [python3, -m, http.server, \"{port}\", --bind, 127.0.0.1]\n    port: {port}\n    dapr_http_port: {http}\n    dapr_grpc_port: {grpc}\n    watch: [\"*.css\", \"*.py\"]\n    on_change:\n      - {{ run: [sh, -c, \"echo built >> built.txt\"], trigger: [\"*.css\"] }}\n"
        ),
    )
    .unwrap();
    let mut up = crate::up::Up::start(root, None);
    up.wait_output("all 1 app(s) ready", Duration::from_secs(30));
    let built = || std::fs::read_to_string(root.join("built.txt")).unwrap_or_default();
    assert_eq!(built(), "", "nothing ran at start");
    std::fs::write(root.join("style.css"), "a { color: red }\n").unwrap();
    assert!(
        wait_until(Duration::from_secs(15), || built() == "built\n"),
        "{}",
        up.output()
    );
    up.wait_output(
        "web: changed, running `sh -c echo built >> built.txt`",
        Duration::from_secs(5),
    );
    // A change its trigger does not match restarts the app without it.
    let reloads = up.output().matches("reloaded").count();
    std::fs::write(root.join("main.py"), "print('v2')\n").unwrap();
    assert!(
        wait_until(Duration::from_secs(15), || up
            .output()
            .matches("reloaded")
            .count()
            > reloads),
        "{}",
        up.output()
    );
    assert_eq!(built(), "built\n", "{}", up.output());
    up.stop_cleanly();
}

/// In a container, a step runs inside it (as Tilt's `run()` does), and what it changed there
/// outlives the restart that follows.
#[test]
fn in_a_container_an_on_change_step_runs_inside_it_and_outlives_the_restart() {
    if !crate::docker::engine_ready() {
        return;
    }
    let _serial = crate::common::serial();
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    std::fs::create_dir_all(root.join("app")).unwrap();
    std::fs::write(root.join("app/style.css"), "a {}\n").unwrap();
    let port = free_port();
    std::fs::write(
        root.join("daca.yaml"),
        format!(
            "name: dacatest-onchange\nredis: {{ provider: embedded }}\napps:\n  - id: web\n    dir: ./app\n    image: daca-test/python:3.11\n    mount: /app\n    command: [python3, -m, http.server, \"8000\", --directory, /var/tmp]\n    port: 8000\n    ports: [\"{port}:8000\"]\n    on_change:\n      - {{ run: [sh, -c, \"echo built-in-the-container > /var/tmp/ran.txt\"], trigger: [\"*.css\"] }}\n"
        ),
    )
    .unwrap();
    let mut up = crate::up::Up::start(root, None);
    up.wait_output("all 1 app(s) ready", Duration::from_secs(60));
    assert_eq!(
        crate::common::http_get(port, "/ran.txt").map(|r| r.0),
        Some(404)
    );
    std::fs::write(root.join("app/style.css"), "a { color: red }\n").unwrap();
    let ran = || {
        crate::common::http_get(port, "/ran.txt")
            .is_some_and(|(s, b)| s == 200 && b == "built-in-the-container\n")
    };
    assert!(wait_until(Duration::from_secs(30), ran), "{}", up.output());
    assert!(up.output().contains("web: changed, running `sh -c echo built-in-the-container > /var/tmp/ran.txt` in its container"), "{}", up.output());
    // Nothing was written on the machine.
    assert!(!root.join("app/ran.txt").exists());
    up.stop_cleanly();
}
