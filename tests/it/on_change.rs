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
