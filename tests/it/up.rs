//! `daca up` end to end: examples/hello with real Redis and a real FastAPI app, stopped by
//! Ctrl-C, by a second Ctrl-C, or after a SIGKILL; the embedded fallback; logs and control API.

use std::path::{Path, PathBuf};
use std::process::{Child, Stdio};
use std::time::Duration;

use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;
use serde_json::Value;

use crate::cli::{run, text};
use crate::common::{
    daca, free_port, group_alive, have, http, http_get, http_request, http_request_with,
    port_is_free, repo, serial, wait_until,
};

/// A `daca up` in the background, its output in files.
pub(crate) struct Up {
    child: Child,
    dir: PathBuf,
    logs: tempfile::TempDir,
    _ports: Option<crate::common::SharedPorts>,
}

impl Up {
    pub(crate) fn start(dir: &Path, path_env: Option<&str>) -> Up {
        Up::start_with(dir, path_env, &[])
    }

    fn start_with(dir: &Path, path_env: Option<&str>, global_args: &[&str]) -> Up {
        Up::spawn(dir, path_env, global_args, &[])
    }

    /// `daca up -d DIR` with extra environment variables.
    pub(crate) fn start_env(dir: &Path, env: &[(&str, &str)]) -> Up {
        let mut up = Up::spawn_command(dir, None, &[], &[]);
        up.1.envs(env.iter().copied());
        Up::launch(up)
    }

    /// `daca up -d DIR` with its stdout and stderr in these files (which may be in the project).
    pub(crate) fn start_into(dir: &Path, stdout: &Path, stderr: &Path) -> Up {
        let (dir, mut command, logs) = Up::spawn_command(dir, None, &[], &[]);
        command
            .stdout(std::fs::File::create(stdout).unwrap())
            .stderr(std::fs::File::create(stderr).unwrap());
        let _ = std::fs::remove_file(logs.path().join("out"));
        let _ = std::fs::remove_file(logs.path().join("err"));
        std::os::unix::fs::symlink(stdout, logs.path().join("out")).unwrap();
        std::os::unix::fs::symlink(stderr, logs.path().join("err")).unwrap();
        Up::launch((dir, command, logs))
    }

    /// `daca up -d DIR` with options of `up` itself (e.g. `--no-watch`).
    pub(crate) fn start_flags(dir: &Path, up_args: &[&str]) -> Up {
        Up::spawn(dir, None, &[], up_args)
    }

    fn spawn(dir: &Path, path_env: Option<&str>, global_args: &[&str], up_args: &[&str]) -> Up {
        Up::launch(Up::spawn_command(dir, path_env, global_args, up_args))
    }

    /// `daca up` run by `wrapper` (a command that ends by running its arguments).
    pub(crate) fn start_wrapped(dir: &Path, wrapper: &[&str]) -> Up {
        let (dir, inner, logs) = Up::spawn_command(dir, None, &[], &[]);
        let mut command = std::process::Command::new(wrapper[0]);
        command
            .args(&wrapper[1..])
            .arg(inner.get_program())
            .args(inner.get_args())
            .env("NO_COLOR", "1")
            .env("UV_PYTHON_DOWNLOADS", "never")
            .stdin(Stdio::null())
            .stdout(std::fs::File::create(logs.path().join("out")).unwrap())
            .stderr(std::fs::File::create(logs.path().join("err")).unwrap());
        Up::launch((dir, command, logs))
    }

    fn launch((dir, mut command, logs): (PathBuf, std::process::Command, tempfile::TempDir)) -> Up {
        let ports = crate::common::shared_ports();
        Up {
            child: command.spawn().unwrap(),
            dir,
            logs,
            _ports: ports,
        }
    }

    fn spawn_command(
        dir: &Path,
        path_env: Option<&str>,
        global_args: &[&str],
        up_args: &[&str],
    ) -> (PathBuf, std::process::Command, tempfile::TempDir) {
        let logs = tempfile::tempdir().unwrap();
        let mut command = daca();
        command
            .args(global_args)
            .args(["up", "-d", dir.to_str().unwrap()])
            .args(up_args)
            .stdin(Stdio::null())
            .stdout(std::fs::File::create(logs.path().join("out")).unwrap())
            .stderr(std::fs::File::create(logs.path().join("err")).unwrap());
        if let Some(path) = path_env {
            command.env("PATH", path);
        }
        (dir.to_path_buf(), command, logs)
    }

    pub(crate) fn output(&self) -> String {
        let read = |name| std::fs::read_to_string(self.logs.path().join(name)).unwrap_or_default();
        format!("--- stdout\n{}\n--- stderr\n{}", read("out"), read("err"))
    }

    /// Waits until daca has printed `needle`, failing the test with its output otherwise.
    pub(crate) fn wait_output(&self, needle: &str, limit: Duration) {
        assert!(
            wait_until(limit, || self.output().contains(needle)),
            "no `{needle}` in\n{}",
            self.output()
        );
    }

    pub(crate) fn ps(&self) -> Value {
        let output = run(&["ps", "--json", "-d", self.dir.to_str().unwrap()]);
        assert!(
            output.status.success(),
            "ps: {}\n{}",
            text(&output.stderr),
            self.output()
        );
        serde_json::from_slice(&output.stdout).unwrap()
    }

    /// daca's pid.
    pub(crate) fn pid(&self) -> u32 {
        self.child.id()
    }

    pub(crate) fn signal(&self, signal: Signal) {
        kill(Pid::from_raw(self.child.id() as i32), signal).unwrap();
    }

    /// Ctrl-C, and daca exits 0 within 30 s (failing the test with its output otherwise).
    pub(crate) fn stop_cleanly(&mut self) {
        self.signal(Signal::SIGINT);
        assert_eq!(
            self.wait_exit(Duration::from_secs(30)),
            Some(0),
            "{}",
            self.output()
        );
    }

    pub(crate) fn wait_exit(&mut self, limit: Duration) -> Option<i32> {
        let mut code = None;
        let exited = wait_until(limit, || match self.child.try_wait() {
            Ok(Some(status)) => {
                code = status.code();
                true
            }
            _ => false,
        });
        assert!(exited, "daca did not exit\n{}", self.output());
        code
    }
}

impl Drop for Up {
    fn drop(&mut self) {
        // A failed assertion must not leave the project running for the next test.
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = daca()
            .args(["down", "-d", self.dir.to_str().unwrap()])
            .output();
    }
}

/// The port at the end of an address such as `redis://127.0.0.1:6379`.
fn port_of(address: &Value) -> u16 {
    address
        .as_str()
        .and_then(|a| a.rsplit(':').next())
        .and_then(|p| p.parse().ok())
        .expect("an address with a port")
}

fn hello() -> PathBuf {
    repo().join("examples/hello")
}

/// Starts examples/hello when its tools are there (see `have`), holding the port lock.
fn start_hello() -> Option<(crate::common::Serial, Up)> {
    if !have("uv") || !have("redis-server") {
        return None;
    }
    let serial = serial();
    Some((serial, Up::start(&hello(), None)))
}

/// Pids of hello-api and of Redis from `daca ps --json`.
fn hello_pids(up: &Up) -> (u32, u32) {
    let ps = up.ps();
    let pid = |value: &Value| value.as_u64().unwrap() as u32;
    (
        pid(&ps["apps"][0]["pid"]),
        pid(&ps["redis"]["status"]["pid"]),
    )
}

fn wait_for_hello(up: &Up) -> String {
    let mut body = String::new();
    // The first run creates the app's venv with uv, hence the long limit.
    let answered = wait_until(Duration::from_secs(180), || match http_get(8000, "/") {
        Some((200, text)) => {
            body = text;
            true
        }
        _ => false,
    });
    assert!(answered, "hello-api never answered\n{}", up.output());
    body
}

#[test]
fn up_runs_hello_with_redis_and_ctrl_c_leaves_nothing_behind() {
    let Some((_serial, mut up)) = start_hello() else {
        return;
    };
    let body = wait_for_hello(&up);
    assert!(
        body.contains("hello from hello-api") && body.contains("\"dapr_http_port\":\"3500\""),
        "{body}"
    );
    up.wait_output("all 1 app(s) ready", Duration::from_secs(10));

    let ps = up.ps();
    let app = &ps["apps"][0];
    assert_eq!(app["name"], "hello-api");
    assert_eq!(app["state"], "ready");
    assert_eq!(app["sidecar"]["grpc"], 50001);
    assert_eq!(ps["redis"]["mode"], "redis-server");
    let app_pid = app["pid"].as_u64().unwrap() as u32;
    let redis_pid = ps["redis"]["status"]["pid"].as_u64().unwrap() as u32;
    let redis_port = port_of(&ps["redis"]["url"]);
    assert_eq!(
        redis_port, 6379,
        "6379 is free here, so Redis takes it as in the Dapr tutorials"
    );

    // The app keeps state through its sidecar; Redis holds it in Dapr's layout. Redis data
    // persists under .daca/redis between runs, so start from no key.
    assert_eq!(
        http("DELETE", 3500, "/v1.0/state/statestore/ada").map(|r| r.0),
        Some(204)
    );
    let saved = http_request(8000, "PUT", "/greetings/ada", r#"{"text": "hi Ada"}"#);
    assert_eq!(saved.map(|r| r.0), Some(200));
    let read = http_get(8000, "/greetings/ada").unwrap();
    assert_eq!(read, (200, r#"{"text":"hi Ada"}"#.to_string()));
    assert_eq!(http_get(8000, "/greetings/nobody").map(|r| r.0), Some(404));
    let redis_cli = std::process::Command::new("redis-cli")
        .args(["-p", "6379", "HGETALL", "hello-api||ada"])
        .output()
        .unwrap();
    assert_eq!(
        text(&redis_cli.stdout),
        "data\n{\"text\": \"hi Ada\"}\nversion\n1\n"
    );

    let logs = run(&["logs", "hello-api", "-d", hello().to_str().unwrap()]);
    assert!(
        text(&logs.stdout).contains("hello-api | INFO:     127.0.0.1"),
        "{}",
        text(&logs.stdout)
    );
    assert!(
        up.output().contains("redis     | "),
        "redis output is in the merged stream"
    );

    let second = run(&["up", "-d", hello().to_str().unwrap()]);
    assert_eq!(second.status.code(), Some(1));
    assert!(
        text(&second.stderr).contains("already running"),
        "{}",
        text(&second.stderr)
    );

    up.signal(Signal::SIGINT);
    assert_eq!(
        up.wait_exit(Duration::from_secs(20)),
        Some(0),
        "{}",
        up.output()
    );
    assert!(
        !group_alive(app_pid),
        "the app's process group outlived daca"
    );
    assert!(!group_alive(redis_pid), "redis outlived daca");
    assert!(port_is_free(8000) && port_is_free(redis_port));
    assert!(!hello().join(".daca/run.json").exists());
    assert!(
        up.output().contains("Application shutdown complete"),
        "uvicorn got SIGTERM, not SIGKILL"
    );
}

#[test]
fn after_daca_is_sigkilled_daca_down_ends_what_it_left() {
    let Some((_serial, mut up)) = start_hello() else {
        return;
    };
    wait_for_hello(&up);
    let (app_pid, redis_pid) = hello_pids(&up);

    up.signal(Signal::SIGKILL);
    up.wait_exit(Duration::from_secs(5));
    assert!(
        group_alive(app_pid),
        "without daca the app is an orphan; that is what `down` must end"
    );

    // A new `daca up` ends the orphans first (else port 8000 would be busy), then runs.
    let mut again = Up::start(&hello(), None);
    // Not `wait_for_hello`: the orphan itself still answers on 8000 until the new daca ends it.
    let ready = || again.output().contains("all 1 app(s) ready");
    assert!(
        wait_until(Duration::from_secs(60), ready),
        "{}",
        again.output()
    );
    assert!(
        again
            .output()
            .contains("stopped what an earlier daca left running: hello-api, redis"),
        "{}",
        again.output()
    );
    assert!(!group_alive(app_pid) && !group_alive(redis_pid));
    let (app_pid, redis_pid) = hello_pids(&again);
    again.signal(Signal::SIGKILL);
    again.wait_exit(Duration::from_secs(5));

    let down = run(&["down", "-d", hello().to_str().unwrap()]);
    assert!(down.status.success(), "{}", text(&down.stderr));
    assert!(
        text(&down.stdout).contains("left running: hello-api, redis"),
        "{}",
        text(&down.stdout)
    );
    assert!(wait_until(Duration::from_secs(5), || !group_alive(app_pid)
        && !group_alive(redis_pid)));
    assert!(port_is_free(8000) && port_is_free(6379));
}

#[test]
fn up_without_redis_server_falls_back_to_the_embedded_store() {
    let _serial = serial();
    let project = tempfile::tempdir().unwrap();
    // A PATH holding python3 and nothing else, and no engine: no redis-server, no container.
    let python = std::process::Command::new("python3")
        .args(["-c", "import sys; print(sys.executable)"])
        .output()
        .unwrap();
    let python = std::fs::canonicalize(text(&python.stdout).trim()).unwrap();
    let bin = project.path().join("bin");
    std::fs::create_dir(&bin).unwrap();
    std::os::unix::fs::symlink(&python, bin.join("python3")).unwrap();
    let port = free_port();
    let manifest = format!(
        "name: bare\napps:\n  - id: web\n    command: [\"python3\", \"-m\", \"http.server\", \"{port}\", \"--bind\", \"127.0.0.1\"]\n    port: {port}\n"
    );
    std::fs::write(project.path().join("daca.yaml"), manifest).unwrap();

    let mut up = Up::start_env(
        project.path(),
        &[
            ("PATH", bin.to_str().unwrap()),
            ("DOCKER_HOST", "unix:///nonexistent/docker.sock"),
        ],
    );
    up.wait_output("all 1 app(s) ready", Duration::from_secs(20));
    assert!(
        up.output()
            .contains("no `redis-server` on PATH: using the embedded in-memory store"),
        "{}",
        up.output()
    );
    let ps = up.ps();
    assert_eq!(ps["redis"]["mode"], "embedded");
    assert!(
        up.output()
            .contains("component `statestore`: no Redis in this run"),
        "{}",
        up.output()
    );

    // The default statestore works, served from memory by the app's sidecar.
    let sidecar = ps["apps"][0]["sidecar"]["http"].as_u64().unwrap() as u16;
    let saved = http_request(
        sidecar,
        "POST",
        "/v1.0/state/statestore",
        r#"[{"key":"k","value":{"n":1}}]"#,
    );
    assert_eq!(saved.map(|r| r.0), Some(204));
    assert_eq!(
        http_get(sidecar, "/v1.0/state/statestore/k"),
        Some((200, r#"{"n":1}"#.to_string()))
    );

    // The control API's restart verb (the dashboard's button): a new process, counted.
    let first_pid = ps["apps"][0]["pid"].as_u64().unwrap();
    let record: Value = serde_json::from_str(
        &std::fs::read_to_string(project.path().join(".daca/run.json")).unwrap(),
    )
    .unwrap();
    let control_port = port_of(&record["control"]);
    crate::common::remember_control(control_port, record["token"].as_str().unwrap());
    // A change without the header other web pages cannot send is refused.
    let (status, body) = http("POST", control_port, "/v1/apps/web/restart").unwrap();
    assert_eq!(status, 403, "{body}");
    let change = [("X-Daca", "1")];
    let (status, body) =
        http_request_with(control_port, "POST", "/v1/apps/web/restart", "", &change).unwrap();
    assert_eq!(status, 200, "{body}");
    let restarted: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(restarted["restarts"], 1);
    assert_ne!(restarted["pid"].as_u64().unwrap(), first_pid);
    assert_eq!(
        http_request_with(control_port, "POST", "/v1/apps/nope/restart", "", &change)
            .unwrap()
            .0,
        404
    );
    // The sidecar stayed up through the restart, and what the app stored is still there.
    assert_eq!(
        http_get(sidecar, "/v1.0/state/statestore/k"),
        Some((200, r#"{"n":1}"#.to_string()))
    );
    let down = run(&["down", "-d", project.path().to_str().unwrap()]);
    assert!(down.status.success(), "{}", text(&down.stderr));
    assert_eq!(
        up.wait_exit(Duration::from_secs(5)),
        Some(0),
        "{}",
        up.output()
    );
    assert!(up.output().contains("`daca down`: stopping"));
    assert!(port_is_free(port));
    assert!(!project.path().join(".daca/run.json").exists());
}

/// A project whose only app ignores SIGTERM and has a long grace period.
fn stubborn_project() -> (tempfile::TempDir, u16) {
    let project = tempfile::tempdir().unwrap();
    let port = free_port();
    let script = format!(
        "import signal, http.server\nsignal.signal(signal.SIGTERM, signal.SIG_IGN)\nprint('serving', flush=True)\nhttp.server.HTTPServer(('127.0.0.1', {port}), http.server.SimpleHTTPRequestHandler).serve_forever()\n"
    );
    std::fs::write(project.path().join("app.py"), script).unwrap();
    let manifest = format!(
        "redis: {{ provider: embedded }}\ngrace_period: 60s\napps:\n  - id: stubborn\n    command: [\"python3\", \"app.py\"]\n    port: {port}\n"
    );
    std::fs::write(project.path().join("daca.yaml"), manifest).unwrap();
    (project, port)
}

#[test]
fn a_second_ctrl_c_forces_the_stop() {
    let _serial = serial();
    let (project, port) = stubborn_project();
    let mut up = Up::start(project.path(), None);
    up.wait_output("all 1 app(s) ready", Duration::from_secs(20));
    let pid = up.ps()["apps"][0]["pid"].as_u64().unwrap() as u32;
    // SIGTERM starts the graceful stop (as `docker stop` or systemd would send it) ...
    up.signal(Signal::SIGTERM);
    assert!(wait_until(Duration::from_secs(5), || up
        .output()
        .contains("SIGTERM: stopping")));
    // The graceful stop has begun (the control API answers until the end).
    assert!(
        wait_until(Duration::from_secs(5), || up.ps()["apps"][0]["state"]
            == "stopping"),
        "{}",
        up.output()
    );
    assert!(
        group_alive(pid),
        "the app ignores SIGTERM and its grace period is 60 s"
    );
    // ... and a Ctrl-C during it forces.
    let started = std::time::Instant::now();
    up.signal(Signal::SIGINT);
    assert_eq!(
        up.wait_exit(Duration::from_secs(10)),
        Some(0),
        "{}",
        up.output()
    );
    assert!(started.elapsed() < Duration::from_secs(5));
    assert!(up.output().contains("forcing: SIGKILL"), "{}", up.output());
    assert!(wait_until(Duration::from_secs(2), || !group_alive(pid)));
    assert!(port_is_free(port));
}

#[test]
fn logs_follow_streams_new_lines_and_json_format_is_one_object_per_line() {
    let _serial = serial();
    let (project, port) = stubborn_project();
    let up = Up::start_with(project.path(), None, &["--log-format", "json"]);
    assert!(
        wait_until(Duration::from_secs(20), || up.output().contains("ready in")),
        "{}",
        up.output()
    );

    // Outside the project: a file written in the app's folder would reload the app.
    let outputs = tempfile::tempdir().unwrap();
    let follower_out = outputs.path().join("follow.out");
    let mut follower = daca()
        .args([
            "logs",
            "stubborn",
            "-f",
            "--since",
            "1h",
            "-d",
            project.path().to_str().unwrap(),
        ])
        .stdout(std::fs::File::create(&follower_out).unwrap())
        .spawn()
        .unwrap();
    let followed = |needle: &str| {
        std::fs::read_to_string(&follower_out)
            .unwrap_or_default()
            .contains(needle)
    };
    assert!(
        wait_until(Duration::from_secs(10), || followed("stubborn | serving")),
        "the backlog is replayed"
    );
    assert_eq!(http_get(port, "/followed-path").map(|r| r.0), Some(404));
    assert!(
        wait_until(Duration::from_secs(10), || followed("GET /followed-path")),
        "new lines are followed"
    );

    let stdout = std::fs::read_to_string(up.logs.path().join("out")).unwrap();
    for line in stdout.lines() {
        let object: Value =
            serde_json::from_str(line).unwrap_or_else(|_| panic!("not JSON: {line}"));
        assert_eq!(object["source"], "stubborn");
    }
    let stderr = std::fs::read_to_string(up.logs.path().join("err")).unwrap();
    assert!(
        stderr
            .lines()
            .any(|l| serde_json::from_str::<Value>(l).is_ok_and(|v| v["level"] == "INFO")),
        "{stderr}"
    );

    // When daca stops, the follower's stream ends and `logs -f` exits by itself.
    up.signal(Signal::SIGKILL);
    let _ = daca()
        .args(["down", "-d", project.path().to_str().unwrap()])
        .output();
    assert!(wait_until(Duration::from_secs(10), || matches!(
        follower.try_wait(),
        Ok(Some(_))
    )));
}
