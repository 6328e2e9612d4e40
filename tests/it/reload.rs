//! Reload on save under `daca up`, with the real FastAPI hello app: edits are served, ignored
//! files trigger nothing, an atomic save is one reload, a burst of saves at most two, the other
//! app is untouched, state survives, `reload: none` only reports, and daca.yaml edits reconcile.

use std::path::{Path, PathBuf};
use std::time::Duration;

use nix::sys::signal::Signal;
use serde_json::Value;

use crate::common::{RedisServer, free_port, have, http_get, http_request, repo, wait_until};
use crate::project::watcher_settled;
use crate::up::Up;

struct Project {
    dir: tempfile::TempDir,
    web: u16,
    other: u16,
    redis: RedisServer,
}

pub(crate) fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        let name = entry.file_name();
        if name == ".venv" || name == "__pycache__" {
            continue;
        }
        if entry.file_type().unwrap().is_dir() {
            copy_dir(&entry.path(), &to.join(&name));
        } else {
            std::fs::copy(entry.path(), to.join(&name)).unwrap();
        }
    }
}

impl Project {
    /// `web` (the hello app, copied) and `other` (a static file server), on a test Redis.
    fn new() -> Option<Project> {
        if !have("uv") || !have("redis-server") {
            return None;
        }
        let redis = RedisServer::start()?;
        let dir = tempfile::tempdir().unwrap();
        copy_dir(
            &repo().join("examples/hello/hello-api"),
            &dir.path().join("web"),
        );
        std::fs::create_dir_all(dir.path().join("other")).unwrap();
        std::fs::write(
            dir.path().join("web/.gitignore"),
            ".venv/\n__pycache__/\n*.log\n",
        )
        .unwrap();
        let project = Project {
            dir,
            web: free_port(),
            other: free_port(),
            redis,
        };
        project.write_manifest("");
        Some(project)
    }

    fn manifest(&self, extra: &str) -> String {
        format!(
            "name: reload\nredis: {{ url: {} }}\napps:\n  - id: web\n    dir: ./web\n    command: [uv, run, uvicorn, \"main:app\", --port, \"{}\"]\n    port: {}\n    health: /healthz\n  - id: other\n    dir: ./other\n    command: [python3, -m, http.server, \"{}\", --bind, 127.0.0.1]\n    port: {}\n{extra}",
            self.redis.url(),
            self.web,
            self.web,
            self.other,
            self.other
        )
    }

    fn write_manifest(&self, extra: &str) {
        std::fs::write(self.dir.path().join("daca.yaml"), self.manifest(extra)).unwrap();
    }

    fn path(&self, relative: &str) -> PathBuf {
        self.dir.path().join(relative)
    }
}

/// One app of `daca ps --json`, or null.
pub(crate) fn app<'a>(ps: &'a Value, name: &str) -> &'a Value {
    ps["apps"]
        .as_array()
        .unwrap()
        .iter()
        .find(|a| a["name"] == name)
        .unwrap_or(&Value::Null)
}

fn reloads(up: &Up, name: &str) -> u64 {
    app(&up.ps(), name)["reload"]["reloads"]
        .as_u64()
        .unwrap_or(0)
}

/// Batches of changes the watcher handed to `name`.
fn changes(up: &Up, name: &str) -> u64 {
    app(&up.ps(), name)["reload"]["changes"]
        .as_u64()
        .unwrap_or(0)
}

/// Waits until the watcher has seen `path`, has nothing pending, and no reload is running
/// or queued: what a change was going to do is done.
fn settle(up: &Up, path: &Path) {
    assert!(
        wait_until(Duration::from_secs(30), || watcher_settled(&up.ps(), path)),
        "the watcher never settled on {}\n{}\n{}",
        path.display(),
        up.ps(),
        up.output()
    );
}

/// Edits main.py so that `/` answers `marker`.
fn edit_main(project: &Project, marker: &str) -> String {
    let main = project.path("web/main.py");
    let text = std::fs::read_to_string(&main).unwrap();
    let start = text.find("\"message\": ").unwrap();
    let end = text[start..].find(",\n").unwrap() + start;
    format!(
        "{}\"message\": \"{marker}\"{}",
        &text[..start],
        &text[end..]
    )
}

pub(crate) fn serves(port: u16, marker: &str) -> bool {
    http_get(port, "/").is_some_and(|(s, b)| s == 200 && b.contains(marker))
}

#[test]
fn saving_a_file_reloads_only_its_app_and_ignored_files_do_nothing() {
    let Some(project) = Project::new() else {
        return;
    };
    let mut up = Up::start(project.dir.path(), None);
    up.wait_output("app(s) ready", Duration::from_secs(120));
    let other_pid = app(&up.ps(), "other")["pid"].as_u64();
    let (status, body) =
        http_request(project.web, "PUT", "/greetings/ada", r#"{"text":"hi"}"#).unwrap();
    assert_eq!(status, 200, "{body}");

    // A plain save: the new code is served, and the reload time is printed and kept.
    std::fs::write(
        project.path("web/main.py"),
        edit_main(&project, "first edit"),
    )
    .unwrap();
    assert!(
        wait_until(Duration::from_secs(60), || serves(
            project.web,
            "first edit"
        )),
        "{}",
        up.output()
    );
    up.wait_output("web reloaded in ", Duration::from_secs(10));
    assert!(
        wait_until(Duration::from_secs(5), || reloads(&up, "web") == 1),
        "{}",
        up.output()
    );
    assert_eq!(
        app(&up.ps(), "other")["pid"].as_u64(),
        other_pid,
        "the other app never blinked"
    );
    let (status, body) = http_get(project.web, "/greetings/ada").unwrap();
    assert_eq!(
        (status, body.as_str()),
        (200, r#"{"text":"hi"}"#),
        "state written before the reload"
    );

    // Ignored files: .venv (daca's default; no watch at all), *.log, bytecode. The last
    // write is seen after the others (one inotify queue), so once the watcher has settled
    // on it, whatever the others were going to do has been done.
    settle(&up, &project.path("web/main.py"));
    let before = changes(&up, "web");
    std::fs::create_dir_all(project.path("web/.venv/lib")).unwrap();
    std::fs::write(project.path("web/.venv/lib/x.py"), "x = 1").unwrap();
    std::fs::write(project.path("web/debug.log"), "log").unwrap();
    std::fs::write(project.path("web/cache.pyc"), "pyc").unwrap();
    settle(&up, &project.path("web/cache.pyc"));
    assert_eq!(
        (changes(&up, "web"), reloads(&up, "web")),
        (before, 1),
        "ignored files trigger nothing\n{}",
        up.output()
    );

    // An editor's atomic save: temp file, then rename over main.py: exactly one reload.
    let temp = project.path("web/.main.py.tmp");
    std::fs::write(&temp, edit_main(&project, "atomic edit")).unwrap();
    std::fs::rename(&temp, project.path("web/main.py")).unwrap();
    assert!(wait_until(Duration::from_secs(60), || serves(
        project.web,
        "atomic edit"
    )));
    assert!(wait_until(Duration::from_secs(5), || reloads(&up, "web") == 2));
    settle(&up, &project.path("web/main.py"));
    assert_eq!(
        (changes(&up, "web"), reloads(&up, "web")),
        (before + 1, 2),
        "one save, one reload\n{}",
        up.output()
    );

    // Ten quick saves: at most two reloads, and the last one is served.
    for n in 0..10 {
        std::fs::write(
            project.path("web/main.py"),
            edit_main(&project, &format!("burst {n}")),
        )
        .unwrap();
        std::thread::sleep(Duration::from_millis(30));
    }
    assert!(
        wait_until(Duration::from_secs(60), || serves(project.web, "burst 9")),
        "{}",
        up.output()
    );
    settle(&up, &project.path("web/main.py"));
    let burst = reloads(&up, "web") - 2;
    assert!(
        (1..=2).contains(&burst),
        "ten saves gave {burst} reloads\n{}",
        up.output()
    );
    assert_eq!(app(&up.ps(), "other")["pid"].as_u64(), other_pid);

    up.stop_cleanly();
}

#[test]
fn daca_yaml_edits_add_and_remove_apps_and_a_bad_edit_changes_nothing() {
    let Some(project) = Project::new() else {
        return;
    };
    let mut up = Up::start(project.dir.path(), None);
    up.wait_output("app(s) ready", Duration::from_secs(120));
    let web_pid = app(&up.ps(), "web")["pid"].as_u64();
    let third = free_port();
    project.write_manifest(&format!(
        "  - id: third\n    dir: ./other\n    command: [python3, -m, http.server, \"{third}\", --bind, 127.0.0.1]\n    port: {third}\n    reload: none\n"
    ));
    assert!(
        wait_until(Duration::from_secs(30), || app(&up.ps(), "third")["state"]
            == "ready"),
        "{}",
        up.output()
    );
    assert!(http_get(third, "/").is_some());
    // `reload: none`: a change is reported, the app keeps running.
    let third_pid = app(&up.ps(), "third")["pid"].as_u64();
    std::fs::write(project.path("other/page.html"), "hi").unwrap();
    up.wait_output(
        "third: page.html changed (reload: none",
        Duration::from_secs(10),
    );
    assert_eq!(app(&up.ps(), "third")["pid"].as_u64(), third_pid);

    std::fs::write(project.path("daca.yaml"), "name: reload\napps: [oops").unwrap();
    up.wait_output("daca.yaml was not applied", Duration::from_secs(10));
    assert!(
        up.output().contains("daca.yaml:2:"),
        "the error has its position\n{}",
        up.output()
    );
    assert_eq!(
        app(&up.ps(), "third")["state"],
        "ready",
        "everything still runs"
    );

    project.write_manifest("");
    assert!(
        wait_until(Duration::from_secs(30), || app(&up.ps(), "third").is_null()),
        "{}",
        up.output()
    );
    assert!(wait_until(Duration::from_secs(10), || http_get(third, "/").is_none()));
    assert_eq!(
        app(&up.ps(), "web")["pid"].as_u64(),
        web_pid,
        "untouched apps keep running"
    );

    up.stop_cleanly();
}

#[test]
fn explain_watch_says_why() {
    let Some(project) = Project::new() else {
        return;
    };
    let output = crate::cli::run(&[
        "explain-watch",
        "-d",
        project.dir.path().to_str().unwrap(),
        project.path("web/main.py").to_str().unwrap(),
        project.path("web/.venv").to_str().unwrap(),
        project.path("web/x.log").to_str().unwrap(),
        project.path("daca.yaml").to_str().unwrap(),
    ]);
    let text = crate::cli::text(&output.stdout);
    assert!(
        text.contains("web: watched: a change reloads web"),
        "{text}"
    );
    assert!(
        text.contains("web: ignored by `.venv/` in daca's defaults"),
        "{text}"
    );
    assert!(text.contains("web: ignored by `*.log` in "), "{text}");
    assert!(
        text.contains("daca.yaml: watched: a change reconciles"),
        "{text}"
    );
}

fn component(name: &str) -> String {
    format!(
        "apiVersion: dapr.io/v1alpha1\nkind: Component\nmetadata: {{ name: {name} }}\nspec:\n  type: state.in-memory\n  version: v1\n"
    )
}

#[test]
fn dependency_files_run_setup_dependents_follow_and_component_edits_apply() {
    if !have("python3") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    for folder in ["base", "leaf", "components", "broken"] {
        std::fs::create_dir_all(root.join(folder)).unwrap();
    }
    std::fs::write(root.join("components/mem.yaml"), component("mem")).unwrap();
    let (base, leaf, sidecar, broken) = (free_port(), free_port(), free_port(), free_port());
    let server = |port: u16| format!("[python3, -m, http.server, \"{port}\", --bind, 127.0.0.1]");
    std::fs::write(
        root.join("daca.yaml"),
        format!(
            "name: deps\nresources: ./components\napps:\n  - id: base\n    dir: ./base\n    command: {}\n    port: {base}\n    setup: [sh, -c, \"echo ran >> ../setup.txt\"]\n    restart_dependents: true\n  - id: leaf\n    dir: ./leaf\n    command: {}\n    port: {leaf}\n    dapr_http_port: {sidecar}\n    depends_on: [base]\n  - id: broken\n    dir: ./broken\n    command: {}\n    port: {broken}\n    setup: [sh, -c, \"echo no >&2; exit 3\"]\n",
            server(base),
            server(leaf),
            server(broken)
        ),
    )
    .unwrap();
    let mut up = Up::start(root, None);
    up.wait_output("app(s) ready", Duration::from_secs(60));
    let leaf_pid = app(&up.ps(), "leaf")["pid"].as_u64();

    std::fs::write(root.join("base/requirements.txt"), "fastapi\n").unwrap();
    assert!(
        wait_until(Duration::from_secs(30), || reloads(&up, "base") == 1),
        "{}",
        up.output()
    );
    assert_eq!(
        std::fs::read_to_string(root.join("setup.txt")).unwrap(),
        "ran\n"
    );
    assert!(
        wait_until(Duration::from_secs(30), || {
            let ps = up.ps();
            app(&ps, "leaf")["state"] == "ready" && app(&ps, "leaf")["pid"].as_u64() != leaf_pid
        }),
        "restart_dependents restarts leaf\n{}",
        up.output()
    );

    // A failing setup keeps the old process running.
    let broken_pid = app(&up.ps(), "broken")["pid"].as_u64();
    std::fs::write(root.join("broken/uv.lock"), "x").unwrap();
    up.wait_output(
        "the app keeps running the old code",
        Duration::from_secs(10),
    );
    assert_eq!(app(&up.ps(), "broken")["pid"].as_u64(), broken_pid);
    assert_eq!(reloads(&up, "broken"), 0);

    let (status, _) = http_get(sidecar, "/v1.0/state/mem2/x").unwrap();
    assert_eq!(status, 400, "mem2 does not exist yet");
    std::fs::write(root.join("components/mem2.yaml"), component("mem2")).unwrap();
    assert!(
        wait_until(Duration::from_secs(10), || http_get(
            sidecar,
            "/v1.0/state/mem2/x"
        )
        .is_some_and(|(s, _)| s == 204)),
        "{}",
        up.output()
    );
    std::fs::write(
        root.join("components/bad.yaml"),
        "kind: Component\nspec: {type: nope.nope}\n",
    )
    .unwrap();
    up.wait_output("the components were not reloaded", Duration::from_secs(10));
    assert_eq!(
        http_get(sidecar, "/v1.0/state/mem2/x").unwrap().0,
        204,
        "the running ones stay"
    );

    up.stop_cleanly();
}

/// The inotify limit, lowered to 5 watches inside a user namespace (Linux ≥ 5.11 counts
/// inotify watches per user namespace), so the machine's own limit is untouched.
#[test]
fn hitting_the_inotify_limit_says_how_to_raise_it_and_keeps_running() {
    let isolated = std::process::Command::new("unshare")
        .args([
            "-U",
            "-r",
            "sh",
            "-c",
            "echo 5 > /proc/sys/user/max_inotify_watches",
        ])
        .status()
        .is_ok_and(|s| s.success());
    if !isolated && !have("a user namespace with its own inotify limit (unshare -U)") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    for n in 0..20 {
        std::fs::create_dir_all(dir.path().join(format!("app/folder{n}"))).unwrap();
    }
    let port = free_port();
    std::fs::write(
        dir.path().join("daca.yaml"),
        format!("name: limits\nredis: {{ provider: embedded }}\napps:\n  - id: web\n    dir: ./app\n    command: [python3, -m, http.server, \"{port}\", --bind, 127.0.0.1]\n    port: {port}\n"),
    )
    .unwrap();
    let out = dir.path().join("out.txt");
    let mut child = std::process::Command::new("unshare")
        .args([
            "-U",
            "-r",
            "sh",
            "-c",
            "echo 5 > /proc/sys/user/max_inotify_watches && exec \"$0\" up -d \"$1\"",
            env!("CARGO_BIN_EXE_daca"),
            dir.path().to_str().unwrap(),
        ])
        .env("NO_COLOR", "1")
        .stdout(std::fs::File::create(&out).unwrap())
        .stderr(std::fs::File::create(dir.path().join("err.txt")).unwrap())
        .spawn()
        .unwrap();
    let output = || {
        std::fs::read_to_string(&out).unwrap_or_default()
            + &std::fs::read_to_string(dir.path().join("err.txt")).unwrap_or_default()
    };
    let warned = wait_until(Duration::from_secs(30), || {
        output().contains("inotify watch limit is reached") && output().contains("app(s) ready")
    });
    let _ = nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(child.id() as i32),
        Signal::SIGINT,
    );
    let _ = child.wait();
    let text = output();
    assert!(warned, "{text}");
    assert!(
        text.contains("sudo sysctl fs.inotify.max_user_watches="),
        "{text}"
    );
    assert!(
        text.contains("stopped"),
        "daca kept running until Ctrl-C\n{text}"
    );
}

#[test]
fn no_watch_turns_reloading_off() {
    if !have("python3") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(dir.path().join("site")).unwrap();
    let port = free_port();
    std::fs::write(
        dir.path().join("daca.yaml"),
        format!("name: still\nredis: {{ provider: embedded }}\napps:\n  - id: site\n    dir: ./site\n    command: [python3, -m, http.server, \"{port}\", --bind, 127.0.0.1]\n    port: {port}\n"),
    )
    .unwrap();
    let mut up = Up::start_flags(dir.path(), &["--no-watch"]);
    up.wait_output("app(s) ready", Duration::from_secs(30));
    let pid = app(&up.ps(), "site")["pid"].as_u64();
    let ps = up.ps();
    assert!(ps["watch"].is_null(), "nothing is watched: {ps}");
    std::fs::write(dir.path().join("site/index.html"), "changed").unwrap();
    assert_eq!(
        app(&up.ps(), "site")["pid"].as_u64(),
        pid,
        "{}",
        up.output()
    );
    assert_eq!(reloads(&up, "site"), 0);
    up.stop_cleanly();
}
