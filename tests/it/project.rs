//! The running project's names and its own files (issue 15): an app may be called `redis` or
//! `resources` without being taken for daca's Redis or resources folder, and what daca writes
//! itself (its stdout/stderr redirected into the app's folder, `*.log`) never reloads an app.
//!
//! "Nothing happened" is never asserted after a sleep: the watcher's counters in `daca ps`
//! say when it has seen a path and has nothing pending, and each app's reload driver says
//! whether it is busy.

use std::path::Path;
use std::time::Duration;

use serde_json::Value;

use crate::common::{free_port, have, wait_until};
use crate::reload::app;
use crate::up::Up;

/// An app serving `dir` with Python's http.server on `port`.
fn server(id: &str, dir: &str, port: u16) -> String {
    format!(
        "  - id: {id}\n    dir: {dir}\n    command: [python3, -m, http.server, \"{port}\", --bind, 127.0.0.1]\n    port: {port}\n"
    )
}

/// Whether the watcher has seen `path` (with any verdict), has no batch pending, and no app's
/// reload driver is busy: after this, a change that was going to reload an app has done so.
pub(crate) fn watcher_settled(ps: &Value, path: &Path) -> bool {
    let watch = &ps["watch"];
    let seen = watch["recent"]
        .as_array()
        .is_some_and(|r| r.iter().any(|e| e["path"] == path.to_str().unwrap()));
    let idle = ps["apps"]
        .as_array()
        .is_some_and(|apps| apps.iter().all(|a| a["reload"]["busy"] == false));
    seen && watch["pending"] == 0 && idle
}

/// The number of change batches the watcher has sent to `name`'s reload driver.
fn changes(ps: &Value, name: &str) -> u64 {
    app(ps, name)["reload"]["changes"].as_u64().unwrap_or(0)
}

#[test]
fn an_app_named_redis_is_not_the_managed_redis() {
    if !have("python3") || !have("redis-server") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(dir.path().join("cache")).unwrap();
    let port = free_port();
    let manifest = format!(
        "name: names\nredis: {{ provider: redis-server, port: {} }}\napps:\n{}",
        free_port(),
        server("redis", "./cache", port)
    );
    std::fs::write(dir.path().join("daca.yaml"), manifest).unwrap();
    let mut up = Up::start(dir.path(), None);
    up.wait_output("app(s) ready", Duration::from_secs(30));
    let ps = up.ps();
    let redis_pid = ps["redis"]["status"]["pid"].as_u64().unwrap();
    let app_pid = app(&ps, "redis")["pid"].as_u64();
    assert_eq!(app(&ps, "redis")["state"], "ready", "{}", up.output());
    assert_ne!(app_pid, Some(redis_pid), "two processes, not one unit");
    assert!(crate::common::http_get(port, "/").is_some_and(|(s, _)| s == 200));

    // A save in the app's folder reloads the app, not the Redis server.
    std::fs::write(dir.path().join("cache/index.html"), "v2").unwrap();
    assert!(
        wait_until(Duration::from_secs(30), || {
            let ps = up.ps();
            app(&ps, "redis")["reload"]["reloads"] == 1
        }),
        "{}",
        up.output()
    );
    let ps = up.ps();
    assert_ne!(
        app(&ps, "redis")["pid"].as_u64(),
        app_pid,
        "the app restarted"
    );
    assert_eq!(
        ps["redis"]["status"]["pid"].as_u64(),
        Some(redis_pid),
        "Redis never restarted\n{}",
        up.output()
    );
    assert_eq!(ps["redis"]["status"]["restarts"], 0);
    up.stop_cleanly();
}

#[test]
fn an_app_named_resources_reloads_instead_of_the_components() {
    if !have("python3") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    for folder in ["web", "components"] {
        std::fs::create_dir_all(dir.path().join(folder)).unwrap();
    }
    std::fs::write(
        dir.path().join("components/mem.yaml"),
        "apiVersion: dapr.io/v1alpha1\nkind: Component\nmetadata: { name: mem }\nspec:\n  type: state.in-memory\n  version: v1\n",
    )
    .unwrap();
    let manifest = format!(
        "name: names\nresources: ./components\nredis: {{ provider: embedded }}\napps:\n{}",
        server("resources", "./web", free_port())
    );
    std::fs::write(dir.path().join("daca.yaml"), manifest).unwrap();
    let mut up = Up::start(dir.path(), None);
    up.wait_output("app(s) ready", Duration::from_secs(30));
    std::fs::write(dir.path().join("web/index.html"), "v2").unwrap();
    assert!(
        wait_until(
            Duration::from_secs(30),
            || app(&up.ps(), "resources")["reload"]["reloads"] == 1
        ),
        "{}",
        up.output()
    );
    assert!(
        !up.output().contains("components reloaded"),
        "a save in the app's folder is the app's\n{}",
        up.output()
    );
    up.stop_cleanly();
}

/// `daca up > daca.out` in a project whose app lives at its root (`dir: .`): daca's own
/// output is in the app's folder, and every line it writes changes that file.
#[test]
fn daca_own_output_and_log_files_never_reload_the_app() {
    if !have("python3") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    let port = free_port();
    // A server that prints a line every 50 ms, so daca keeps writing to its stdout.
    std::fs::write(
        root.join("main.py"),
        format!(
            "import http.server, threading, time\n\ndef talk():\n    while True:\n        print('tick', flush=True)\n        time.sleep(0.05)\n\nthreading.Thread(target=talk, daemon=True).start()\nhttp.server.ThreadingHTTPServer(('127.0.0.1', {port}), http.server.SimpleHTTPRequestHandler).serve_forever()\n"
        ),
    )
    .unwrap();
    std::fs::write(
        root.join("daca.yaml"),
        format!(
            "name: single\nredis: {{ provider: embedded }}\napps:\n  - id: web\n    dir: .\n    command: [python3, main.py]\n    port: {port}\n"
        ),
    )
    .unwrap();
    let output = root.join("daca.out");
    let errors = root.join("daca.err");
    let mut up = Up::start_into(root, &output, &errors);
    up.wait_output("app(s) ready", Duration::from_secs(30));
    assert!(
        wait_until(Duration::from_secs(10), || {
            std::fs::read_to_string(&output).is_ok_and(|t| t.matches("tick").count() > 20)
        }),
        "{}",
        up.output()
    );
    // An app's own log file, ignored by default like daca's own output.
    let log = root.join("server.log");
    std::fs::write(&log, "a line").unwrap();
    assert!(
        wait_until(Duration::from_secs(10), || watcher_settled(&up.ps(), &log)),
        "{}",
        up.ps()
    );
    let ps = up.ps();
    let recent = ps["watch"]["recent"].as_array().unwrap();
    let verdict = |path: &Path| {
        recent
            .iter()
            .filter(|e| e["path"] == path.to_str().unwrap())
            .map(|e| e["verdict"].as_str().unwrap_or_default().to_string())
            .collect::<Vec<_>>()
    };
    assert!(
        verdict(&output)
            .iter()
            .all(|v| v.contains("daca's own output")),
        "{:?}",
        verdict(&output)
    );
    assert!(
        verdict(&log).iter().all(|v| v.contains("`*.log`")),
        "{:?}",
        verdict(&log)
    );
    assert_eq!(changes(&ps, "web"), 0, "{}", up.output());
    assert_eq!(app(&ps, "web")["reload"]["reloads"], 0);
    assert_eq!(app(&ps, "web")["restarts"], 0);

    // The app's code still reloads it.
    std::fs::write(
        root.join("main.py"),
        std::fs::read_to_string(root.join("main.py")).unwrap() + "\n",
    )
    .unwrap();
    assert!(
        wait_until(
            Duration::from_secs(30),
            || app(&up.ps(), "web")["reload"]["reloads"] == 1
        ),
        "{}",
        up.output()
    );
    up.stop_cleanly();
}

/// A reload reads the app's environment again: an edited `.env` is what the new process gets.
#[test]
fn a_reload_after_editing_dot_env_runs_with_the_new_values() {
    if !have("python3") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    std::fs::create_dir_all(root.join("web")).unwrap();
    let port = free_port();
    std::fs::write(
        root.join("web/main.py"),
        format!(
            "import http.server, os\n\nclass Greet(http.server.BaseHTTPRequestHandler):\n    def do_GET(self):\n        body = os.environ.get('GREETING', '-').encode()\n        self.send_response(200)\n        self.end_headers()\n        self.wfile.write(body)\n\nhttp.server.HTTPServer(('127.0.0.1', {port}), Greet).serve_forever()\n"
        ),
    )
    .unwrap();
    std::fs::write(root.join("web/.env"), "GREETING=hello\n").unwrap();
    // Kept out of git, as it should be; daca still reads it, so its edits still count.
    std::fs::write(root.join("web/.gitignore"), ".env\n").unwrap();
    std::fs::write(
        root.join("daca.yaml"),
        format!(
            "name: env\nredis: {{ provider: embedded }}\napps:\n  - id: web\n    dir: ./web\n    command: [python3, main.py]\n    port: {port}\n"
        ),
    )
    .unwrap();
    let mut up = Up::start(root, None);
    up.wait_output("app(s) ready", Duration::from_secs(30));
    let greeting = || crate::common::http_get(port, "/").map(|(_, body)| body);
    assert_eq!(greeting().as_deref(), Some("hello"));
    std::fs::write(root.join("web/.env"), "GREETING=bonjour\n").unwrap();
    assert!(
        wait_until(Duration::from_secs(30), || greeting().as_deref()
            == Some("bonjour")),
        "{}",
        up.output()
    );
    up.stop_cleanly();
}

/// Editing only what an app's watcher uses re-arms the watcher and restarts nothing.
#[test]
fn editing_watch_globs_restarts_nothing_and_applies_at_once() {
    if !have("python3") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    std::fs::create_dir_all(root.join("site")).unwrap();
    let port = free_port();
    let manifest = |extra: &str| {
        format!(
            "name: globs\nredis: {{ provider: embedded }}\napps:\n{}{extra}",
            server("site", "./site", port)
        )
    };
    std::fs::write(root.join("daca.yaml"), manifest("")).unwrap();
    let mut up = Up::start(root, None);
    up.wait_output("app(s) ready", Duration::from_secs(30));
    let pid = app(&up.ps(), "site")["pid"].as_u64();
    std::fs::write(root.join("daca.yaml"), manifest("    watch: [\"*.py\"]\n")).unwrap();
    let applied = root.join("daca.yaml");
    assert!(
        wait_until(Duration::from_secs(10), || watcher_settled(
            &up.ps(),
            &applied
        )),
        "{}",
        up.output()
    );
    let ps = up.ps();
    assert_eq!(app(&ps, "site")["pid"].as_u64(), pid, "{}", up.output());
    assert_eq!(app(&ps, "site")["restarts"], 0);
    // The new globs count at once: a page is not `*.py`, a script is.
    let page = root.join("site/index.html");
    std::fs::write(&page, "hi").unwrap();
    assert!(wait_until(Duration::from_secs(10), || watcher_settled(
        &up.ps(),
        &page
    )));
    assert_eq!(changes(&up.ps(), "site"), 0, "{}", up.ps());
    std::fs::write(root.join("site/tool.py"), "x = 1").unwrap();
    assert!(
        wait_until(Duration::from_secs(30), || app(&up.ps(), "site")["reload"]
            ["reloads"]
            == 1),
        "{}",
        up.output()
    );
    up.stop_cleanly();
}
