//! Warm reloads (src/warm): a save is served by a process forked from the app's warm parent,
//! which imported the app's libraries and none of its own code; every case where a fork
//! cannot be trusted falls back to a cold start and says why; no parent outlives daca.

use std::path::{Path, PathBuf};
use std::time::Duration;

use nix::sys::signal::Signal;

use crate::common::{RedisServer, daca, free_port, have, http_get, repo, wait_until};
use crate::reload::{app, copy_dir, serves};
use crate::up::Up;

struct Project {
    dir: tempfile::TempDir,
    redis: RedisServer,
    apps: Vec<(String, u16)>,
}

/// A module of the app's own, whose constant `/constant` serves.
const HELPER: &str = "CONSTANT = \"first\"\n";

impl Project {
    /// One copy of the hello app per entry: (id, extra import line at the top of main.py,
    /// extra manifest lines). An id starting with `sh` runs its server through `sh -c`.
    fn new(apps: &[(&str, &str, &str)]) -> Option<Project> {
        if !have("uv") || !have("redis-server") {
            return None;
        }
        let redis = RedisServer::start()?;
        let dir = tempfile::tempdir().unwrap();
        let libs = dir.path().join("libs");
        std::fs::create_dir_all(&libs).unwrap();
        // Libraries outside the apps' folders (on PYTHONPATH), so the parent preloads them.
        std::fs::write(
            libs.join("threaded.py"),
            "import threading, time\nthreading.Thread(target=time.sleep, args=(3600,), daemon=True).start()\n",
        )
        .unwrap();
        std::fs::write(
            libs.join("flaky.py"),
            "import sys\nif 'serve' in sys.argv:\n    raise RuntimeError('not in a warm parent')\n",
        )
        .unwrap();
        let mut manifest = format!("name: warm\nredis: {{ url: {} }}\napps:\n", redis.url());
        let mut ports = Vec::new();
        for (id, import, extra) in apps {
            let port = free_port();
            let web = dir.path().join(id);
            copy_dir(&repo().join("examples/hello/hello-api"), &web);
            std::fs::write(web.join(".gitignore"), ".venv/\n__pycache__/\n").unwrap();
            std::fs::write(web.join("helper.py"), HELPER).unwrap();
            let main = std::fs::read_to_string(web.join("main.py"))
                .unwrap()
                .replace(
                    "from fastapi import FastAPI, HTTPException\n",
                    &format!(
                        "from fastapi import FastAPI, HTTPException\nimport helper\n{import}\n"
                    ),
                )
                + "\n\n@app.get(\"/constant\")\ndef constant() -> dict:\n    return {\"constant\": helper.CONSTANT}\n";
            std::fs::write(web.join("main.py"), main).unwrap();
            let command = match id.starts_with("sh") {
                true => format!("[sh, -c, \"exec uv run uvicorn main:app --port {port}\"]"),
                false => format!("[uv, run, uvicorn, \"main:app\", --port, \"{port}\"]"),
            };
            manifest.push_str(&format!(
                "  - id: {id}\n    dir: ./{id}\n    command: {command}\n    port: {port}\n    health: /healthz\n    env: {{ PYTHONPATH: {} }}\n{extra}",
                libs.display()
            ));
            ports.push((id.to_string(), port));
        }
        std::fs::write(dir.path().join("daca.yaml"), manifest).unwrap();
        Some(Project {
            dir,
            redis,
            apps: ports,
        })
    }

    fn path(&self, relative: &str) -> PathBuf {
        self.dir.path().join(relative)
    }

    fn port(&self, id: &str) -> u16 {
        self.apps.iter().find(|(a, _)| a == id).unwrap().1
    }

    /// Edits `id`'s main.py so that `/` answers `marker`, and waits until it does.
    fn edit(&self, up: &Up, id: &str, marker: &str) {
        let main = self.path(&format!("{id}/main.py"));
        let text = std::fs::read_to_string(&main).unwrap();
        let start = text.find("\"message\": ").unwrap();
        let end = text[start..].find(",\n").unwrap() + start;
        let edited = format!(
            "{}\"message\": \"{marker}\"{}",
            &text[..start],
            &text[end..]
        );
        std::fs::write(&main, edited).unwrap();
        assert!(
            wait_until(Duration::from_secs(60), || serves(self.port(id), marker)),
            "{id} never served {marker}\n{}",
            up.output()
        );
    }
}

/// The folder of daca's warm parents (parent.py, the module reports).
fn warm_dir(up: &Up) -> PathBuf {
    std::env::temp_dir().join(format!("daca-warm-{}", up.pid()))
}

/// Pids of live Python processes whose command line mentions `needle`.
fn processes_with(needle: &str) -> Vec<u32> {
    live_with(needle, true)
}

/// Pids of live processes (with `python_only`, not `uv run` itself) whose command line
/// mentions `needle`.
fn live_with(needle: &str, python_only: bool) -> Vec<u32> {
    let me = std::process::id();
    std::fs::read_dir("/proc")
        .unwrap()
        .filter_map(|e| e.ok()?.file_name().to_str()?.parse::<u32>().ok())
        .filter(|pid| *pid != me)
        .filter(|pid| {
            let cmdline = std::fs::read(format!("/proc/{pid}/cmdline")).unwrap_or_default();
            let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
            let zombie = stat
                .rsplit_once(") ")
                .is_some_and(|(_, s)| s.starts_with('Z'));
            let cmdline = String::from_utf8_lossy(&cmdline).replace('\0', " ");
            // `uv run` starts the parent: count the Python processes.
            let comm = std::fs::read_to_string(format!("/proc/{pid}/comm")).unwrap_or_default();
            !zombie && cmdline.contains(needle) && !(python_only && comm.trim() == "uv")
        })
        .collect()
}

fn wait_gone(needle: &str, up: &Up) {
    let left = || live_with(needle, false);
    assert!(
        wait_until(Duration::from_secs(10), || left().is_empty()),
        "left behind: {:?}\n{}",
        left(),
        up.output()
    );
}

fn daca_down(dir: &Path) {
    let down = daca()
        .args(["down", "-d", dir.to_str().unwrap()])
        .output()
        .unwrap();
    assert!(
        down.status.success(),
        "{}",
        String::from_utf8_lossy(&down.stderr)
    );
}

fn count(up: &Up, needle: &str) -> usize {
    up.output().matches(needle).count()
}

#[test]
fn a_save_is_served_by_a_warm_fork_that_imports_the_users_code_afresh() {
    let Some(project) = Project::new(&[("web", "", "")]) else {
        return;
    };
    let mut up = Up::start(project.dir.path(), None);
    up.wait_output("web: warm parent ready", Duration::from_secs(120));
    let report = std::fs::read_to_string(warm_dir(&up).join("web.modules")).unwrap();
    let learned: Vec<&str> = report.lines().collect();
    for library in ["fastapi", "uvicorn", "pydantic", "json"] {
        assert!(
            learned.contains(&library),
            "{library} not learned: {report}"
        );
    }
    for own in ["main", "helper"] {
        assert!(!learned.contains(&own), "the app's own {own} was learned");
    }

    project.edit(&up, "web", "warm one");
    // Within the same second, the same size: a stale pyc would serve the old code.
    project.edit(&up, "web", "warm two");
    up.wait_output("web reloaded in", Duration::from_secs(10));
    assert!(up.output().contains(" ms (warm)"), "{}", up.output());
    assert_eq!(app(&up.ps(), "web")["start"], "warm");
    // A module-level constant of the user's own module: the fork imported it again.
    std::fs::write(project.path("web/helper.py"), "CONSTANT = \"second\"\n").unwrap();
    assert!(
        wait_until(Duration::from_secs(30), || http_get(
            project.port("web"),
            "/constant"
        )
        .is_some_and(|(_, b)| b.contains("second"))),
        "{}",
        up.output()
    );

    // A dependency file changed: a cold start, and a parent built again afterwards.
    let pyproject = project.path("web/pyproject.toml");
    let text = std::fs::read_to_string(&pyproject).unwrap();
    std::fs::write(&pyproject, text + "\n# edited\n").unwrap();
    assert!(
        wait_until(Duration::from_secs(60), || up
            .output()
            .contains("(cold: pyproject.toml changed)")),
        "{}",
        up.output()
    );
    assert!(
        wait_until(Duration::from_secs(90), || count(
            &up,
            "web: warm parent ready"
        ) == 2),
        "{}",
        up.output()
    );
    project.edit(&up, "web", "warm again");
    assert!(
        wait_until(Duration::from_secs(10), || count(&up, " ms (warm)") == 4),
        "{}",
        up.output()
    );

    // A crash restart forks again from the same parent: still one parent.
    let pid = app(&up.ps(), "web")["pid"].as_u64().unwrap() as i32;
    nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid), Signal::SIGKILL).unwrap();
    assert!(
        wait_until(Duration::from_secs(30), || serves(
            project.port("web"),
            "warm again"
        ) && app(&up.ps(), "web")["pid"]
            .as_u64()
            != Some(pid as u64)),
        "{}",
        up.output()
    );
    // A fork has its parent's command line: one parent and the one live fork.
    let parents = processes_with(&format!("{}/parent.py serve", warm_dir(&up).display()));
    assert_eq!(parents.len(), 2, "{parents:?}");

    let needle = warm_dir(&up).display().to_string();
    up.stop_cleanly();
    wait_gone(&needle, &up);
    assert!(!Path::new(&needle).exists(), "the warm folder is removed");
    drop(project.redis);
}

#[test]
fn untrusted_warm_forks_fall_back_to_cold_starts_and_say_why() {
    let apps = [
        ("threads", "import threaded", ""),
        ("flaky", "import flaky", ""),
        ("optout", "", "    reload: cold\n"),
        ("shell", "", ""),
        (
            "slow",
            "import os, time\nif os.path.exists('slow'): time.sleep(float(open('slow').read()))",
            "",
        ),
    ];
    let Some(project) = Project::new(&apps) else {
        return;
    };
    let up = Up::start(project.dir.path(), None);
    up.wait_output("app(s) ready", Duration::from_secs(180));
    up.wait_output(
        "threads: warm reloads off: 1 threads were running after the imports",
        Duration::from_secs(90),
    );
    up.wait_output(
        "flaky: warm reloads off: `flaky` failed to import (RuntimeError: not in a warm parent)",
        Duration::from_secs(90),
    );
    up.wait_output("slow: warm parent ready", Duration::from_secs(90));
    for id in ["threads", "flaky", "optout", "shell"] {
        project.edit(&up, id, &format!("{id} edited"));
    }
    for line in [
        "threads reloaded in",
        "(cold: 1 threads were running after the imports)",
        "(cold: `flaky` failed to import (RuntimeError: not in a warm parent))",
        "optout reloaded in",
        "(cold: reload: cold)",
        "shell reloaded in",
        "(cold: `sh` is not a Python server daca knows)",
    ] {
        up.wait_output(line, Duration::from_secs(30));
    }
    // The forked process takes far longer than a cold start did: warm is off, and the
    // reload ends cold.
    let cold_ms = app(&up.ps(), "slow")["ready_after_ms"].as_u64().unwrap();
    let sleep = (cold_ms.max(1000) * 3) as f64 / 1000.0 + 1.0;
    std::fs::write(project.path("slow/slow"), sleep.to_string()).unwrap();
    up.wait_output(
        "slow: warm reloads off: a forked process was not ready within",
        Duration::from_secs(60),
    );
    up.wait_output("slow reloaded in", Duration::from_secs(60));
    assert!(
        up.output()
            .contains("(cold: a forked process was not ready within"),
        "{}",
        up.output()
    );
    drop(project.redis);
}

#[test]
fn a_sigkilled_daca_and_daca_down_leave_no_warm_parent_or_fork() {
    let Some(project) = Project::new(&[("web", "", "")]) else {
        return;
    };
    // `daca down` while it runs.
    let mut first = Up::start(project.dir.path(), None);
    first.wait_output("web: warm parent ready", Duration::from_secs(120));
    let needle = warm_dir(&first).display().to_string();
    daca_down(project.dir.path());
    first.wait_exit(Duration::from_secs(30));
    wait_gone(&needle, &first);

    // A SIGKILLed daca, then `daca down`.
    let mut up = Up::start(project.dir.path(), None);
    up.wait_output("web: warm parent ready", Duration::from_secs(120));
    project.edit(&up, "web", "forked");
    let child = app(&up.ps(), "web")["pid"].as_u64().unwrap() as u32;
    let needle = warm_dir(&up).display().to_string();
    assert_eq!(processes_with(&needle).len(), 2, "the parent and its fork");
    up.signal(Signal::SIGKILL);
    up.wait_exit(Duration::from_secs(5));
    daca_down(project.dir.path());
    wait_gone(&needle, &up);
    assert!(
        !crate::common::group_alive(child),
        "the forked app's group is gone"
    );
    drop(project.redis);
}

#[test]
fn an_actor_app_on_the_dapr_sdk_reloads_warm_and_keeps_its_actors() {
    for version in ["1.15.0", "latest"] {
        let Some(project) = crate::actors::Project::new(version) else {
            return;
        };
        let up = project.up();
        up.wait_output("actors: warm parent ready", Duration::from_secs(120));
        let count = project.post(project.port, "/counter/w/increment?by=2", "");
        assert_eq!(count.1["count"], 2, "{version}: {count:?}");
        let main = project.dir.path().join("app/main.py");
        let code = std::fs::read_to_string(&main).unwrap();
        let edited = code
            + "\n\n@app.get(\"/edited\")\ndef edited() -> dict:\n    return {\"edited\": True}\n";
        std::fs::write(&main, edited).unwrap();
        assert!(
            wait_until(Duration::from_secs(30), || http_get(
                project.port,
                "/edited"
            )
            .is_some_and(|(s, _)| s == 200)),
            "{version}: {}",
            up.output()
        );
        up.wait_output(" ms (warm)", Duration::from_secs(10));
        // Once daca has read the reloaded app's actor types again, the actor answers.
        let mut count = (0, serde_json::Value::Null);
        assert!(
            wait_until(Duration::from_secs(30), || {
                count = project.post(project.port, "/counter/w/increment?by=1", "");
                count.0 == 200
            }),
            "{version}: {count:?}\n{}",
            up.output()
        );
        assert_eq!(
            count.1["count"], 3,
            "{version}: the actor's state is kept: {count:?}"
        );
    }
}

/// A FastAPI app whose `/` answers MESSAGE; run as `python main.py` it serves on $PORT.
const SERVER_APP: &str = "import os\nfrom fastapi import FastAPI\n\napp = FastAPI()\nMESSAGE = \"first\"\n\n\n@app.get(\"/\")\ndef root() -> dict:\n    return {\"message\": MESSAGE}\n\n\nif __name__ == \"__main__\":\n    import uvicorn\n    uvicorn.run(app, host=\"127.0.0.1\", port=int(os.environ[\"PORT\"]))\n";

#[test]
fn python_file_fastapi_run_and_dev_gunicorn_and_hypercorn_reload_warm() {
    let Some(python) = crate::actors::sdk("latest") else {
        return;
    };
    let bin = python.parent().unwrap().to_path_buf();
    let Some(redis) = RedisServer::start() else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let tool = |name: &str| bin.join(name).display().to_string();
    let mut manifest = format!("name: servers\nredis: {{ url: {} }}\napps:\n", redis.url());
    let mut apps = Vec::new();
    for id in ["file", "fastapi", "fastapidev", "gunicorn", "hypercorn"] {
        let port = free_port();
        let command = match id {
            "file" => vec![python.display().to_string(), "main.py".into()],
            // daca does the reloading: `fastapi dev` runs with --no-reload.
            "fastapi" | "fastapidev" => [
                tool("fastapi"),
                if id == "fastapi" { "run" } else { "dev" }.into(),
                "main.py".into(),
                "--host".into(),
                "127.0.0.1".into(),
                "--port".into(),
                port.to_string(),
            ]
            .to_vec(),
            "gunicorn" => [
                tool("gunicorn"),
                "-k".into(),
                "uvicorn.workers.UvicornWorker".into(),
                "-b".into(),
                format!("127.0.0.1:{port}"),
                "main:app".into(),
            ]
            .to_vec(),
            _ => [
                tool("hypercorn"),
                "main:app".into(),
                "--bind".into(),
                format!("127.0.0.1:{port}"),
            ]
            .to_vec(),
        };
        std::fs::create_dir_all(dir.path().join(id)).unwrap();
        std::fs::write(dir.path().join(id).join("main.py"), SERVER_APP).unwrap();
        let command = serde_json::to_string(&command).unwrap();
        manifest.push_str(&format!(
            "  - id: {id}\n    dir: ./{id}\n    command: {command}\n    port: {port}\n    env: {{ PORT: \"{port}\" }}\n"
        ));
        apps.push((id, port));
    }
    std::fs::write(dir.path().join("daca.yaml"), manifest).unwrap();
    let up = Up::start(dir.path(), None);
    up.wait_output("app(s) ready", Duration::from_secs(120));
    for (id, port) in &apps {
        up.wait_output(
            &format!("{id}: warm parent ready"),
            Duration::from_secs(120),
        );
        let main = dir.path().join(id).join("main.py");
        std::fs::write(&main, SERVER_APP.replace("\"first\"", "\"edited\"")).unwrap();
        assert!(
            wait_until(Duration::from_secs(30), || serves(*port, "edited")),
            "{id}\n{}",
            up.output()
        );
        let warm = |up: &Up| {
            up.output()
                .lines()
                .any(|l| l.contains(&format!(" {id} reloaded in ")) && l.ends_with("(warm)"))
        };
        assert!(
            wait_until(Duration::from_secs(10), || warm(&up)),
            "{id}\n{}",
            up.output()
        );
    }
    drop(redis);
}
