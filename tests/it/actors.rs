//! Dapr actors under `daca up`, with examples/actors (the official Python SDK's `DaprActor`
//! and `ActorProxy`) at the version the course locks and at the newest, on a real
//! redis-server: method calls and state in Dapr's keys, reminders across a restart, timers,
//! idle deactivation, turns, reentrancy, publishing, two hosts of one type, and the HTTP API
//! with its errors as Dapr's docs show it.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::common::{RedisServer, free_port, have, http_request, repo, wait_until};
use crate::up::Up;

/// The Python of an SDK venv that scripts/test made (`1.15.0` or `latest`).
pub(crate) fn sdk(version: &str) -> Option<PathBuf> {
    let python = repo().join(format!("target/test-tools/sdk-{version}/bin/python"));
    if python.exists() {
        return Some(python);
    }
    if std::env::var_os("DACA_TEST_REQUIRE_ALL").is_some() {
        panic!("the Dapr Python SDK {version} is required here; scripts/test installs it");
    }
    eprintln!(
        "skipped: no SDK venv at {} (scripts/test makes it)",
        python.display()
    );
    None
}

pub(crate) fn copy_app(to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for name in ["main.py", "pyproject.toml"] {
        std::fs::copy(repo().join("examples/actors/app").join(name), to.join(name)).unwrap();
    }
}

/// examples/actors's app, on a test Redis, through one SDK.
pub(crate) struct Project {
    pub dir: tempfile::TempDir,
    pub redis: RedisServer,
    pub python: PathBuf,
    pub port: u16,
    pub sidecar: u16,
}

impl Project {
    pub fn new(version: &str) -> Option<Project> {
        let python = sdk(version)?;
        if !have("redis-server") {
            return None;
        }
        let project = Project {
            dir: tempfile::tempdir().unwrap(),
            redis: RedisServer::start()?,
            python,
            port: free_port(),
            sidecar: free_port(),
        };
        copy_app(&project.dir.path().join("app"));
        project.write("", "");
        Some(project)
    }

    /// Writes daca.yaml: the app with `env` lines added, then `more` (apps, resources).
    pub fn write(&self, env: &str, more: &str) {
        let manifest = format!(
            "name: actors\nredis: {{ url: {} }}\n{more}apps:\n{}",
            self.redis.url(),
            self.app("actors", "./app", self.port, self.sidecar, env)
        );
        std::fs::write(self.dir.path().join("daca.yaml"), manifest).unwrap();
    }

    pub fn app(&self, id: &str, dir: &str, port: u16, sidecar: u16, env: &str) -> String {
        // Not the default 50001 (unless the caller sets one): daca ups started at the same
        // instant would race for it.
        let grpc = match env.contains("dapr_grpc_port") {
            true => String::new(),
            false => format!("    dapr_grpc_port: {}\n", free_port()),
        };
        format!(
            "  - id: {id}\n    dir: {dir}\n    command: [\"{}\", -m, uvicorn, \"main:app\", --port, \"{port}\"]\n    port: {port}\n    health: /healthz\n    dapr_http_port: {sidecar}\n{grpc}    env: {{ PYTHONDONTWRITEBYTECODE: \"1\"{env} }}\n",
            self.python.display(),
        )
    }

    pub fn up(&self) -> Up {
        let up = Up::start(self.dir.path(), None);
        up.wait_output("app(s) ready", Duration::from_secs(60));
        up.wait_output("hosts actors", Duration::from_secs(30));
        up
    }

    /// A call to the app (port) or the sidecar (sidecar), with a JSON body.
    pub fn post(&self, port: u16, path: &str, body: &str) -> (u16, Value) {
        let (status, text) = http_request(port, "POST", path, body).unwrap();
        (
            status,
            serde_json::from_str(&text).unwrap_or(Value::String(text)),
        )
    }

    pub fn get(&self, port: u16, path: &str) -> (u16, Value) {
        let (status, text) = http_request(port, "GET", path, "").unwrap();
        (
            status,
            serde_json::from_str(&text).unwrap_or(Value::String(text)),
        )
    }

    pub fn log(&self) -> Value {
        self.get(self.port, "/log").1
    }
}

fn hgetall(redis: &RedisServer, key: &str) -> Vec<String> {
    redis.query(&["HGETALL", key])
}

fn state_and_keys(version: &str) {
    let Some(project) = Project::new(version) else {
        return;
    };
    let mut up = project.up();
    let (status, body) = project.post(project.port, "/counter/7/increment?by=2", "");
    assert_eq!(status, 200, "{body}\n{}", up.output());
    assert_eq!(body["count"], 2);
    assert_eq!(
        project
            .post(project.port, "/counter/7/increment?by=3", "")
            .1["count"],
        5
    );
    assert_eq!(project.get(project.port, "/counter/7").1["count"], 5);
    // The keys real Dapr writes: <appid>||<type>||<id>||<key>, a hash of data and version.
    let hash = hgetall(&project.redis, "actors||Counter||7||count");
    assert_eq!(hash, ["data", "5", "version", "2"], "{hash:?}");
    // The same state through the sidecar's HTTP API.
    let (status, text) = http_request(
        project.sidecar,
        "GET",
        "/v1.0/actors/Counter/7/state/count",
        "",
    )
    .unwrap();
    assert_eq!((status, text.as_str()), (200, "5"));
    let metadata = project.get(project.sidecar, "/v1.0/metadata").1;
    let runtime = &metadata["actorRuntime"];
    assert_eq!(runtime["runtimeStatus"], "RUNNING", "{metadata}");
    assert_eq!(runtime["placement"], "placement: connected");
    let active = runtime["activeActors"].as_array().unwrap();
    assert!(
        active
            .iter()
            .any(|a| a["type"] == "Counter" && a["count"] == 1),
        "{metadata}"
    );
    up.stop_cleanly();
}

#[test]
fn the_course_sdk_calls_actors_and_keeps_their_state_in_daprs_keys() {
    state_and_keys("1.15.0");
}

#[test]
fn the_newest_sdk_calls_actors_and_keeps_their_state_in_daprs_keys() {
    state_and_keys("latest");
}

#[test]
fn a_reminder_fires_and_fires_again_after_daca_restarts() {
    let Some(project) = Project::new("1.15.0") else {
        return;
    };
    let mut up = project.up();
    let started = Instant::now();
    let (status, body) = project.post(project.port, "/counter/r1/remind?seconds=2", "");
    assert_eq!(status, 200, "{body}\n{}", up.output());
    let reminded = |n: u64| {
        wait_until(Duration::from_secs(20), || {
            project.get(project.port, "/counter/r1").1["reminded"].as_u64() >= Some(n)
        })
    };
    assert!(reminded(1), "{}", up.output());
    assert!(started.elapsed() >= Duration::from_secs(2), "due after 2 s");
    let ps = crate::cli::run(&["ps", "--actors", "-d", project.dir.path().to_str().unwrap()]);
    let table = crate::cli::text(&ps.stdout);
    assert!(
        table.contains("again") && table.contains("Counter/r1"),
        "{table}"
    );
    up.stop_cleanly();
    let before = hgetall(&project.redis, "actors||Counter||r1||reminded");
    let mut again = project.up();
    let fired = project.get(project.port, "/counter/r1").1["reminded"]
        .as_u64()
        .unwrap();
    assert!(
        wait_until(Duration::from_secs(20), || {
            project.get(project.port, "/counter/r1").1["reminded"].as_u64() > Some(fired)
        }),
        "the reminder outlived daca: {before:?}\n{}",
        again.output()
    );
    again.stop_cleanly();
}

#[test]
fn a_timer_fires_every_half_second_and_stops_with_its_actor() {
    let Some(project) = Project::new("1.15.0") else {
        return;
    };
    let mut up = project.up();
    assert_eq!(
        project
            .post(project.port, "/counter/t1/tick?seconds=0.5", "")
            .0,
        200
    );
    let fires = || project.log()["timer"].as_array().map_or(0, Vec::len);
    assert!(
        wait_until(Duration::from_secs(10), || fires() >= 3),
        "{}",
        up.output()
    );
    let first = &project.log()["timer"][0];
    assert_eq!(first["state"], "tock");
    let control = crate::dashboard::control_port(project.dir.path());
    let (status, _) = crate::common::http_request_with(
        control,
        "POST",
        "/v1/actors/Counter/t1/deactivate",
        "",
        &[("X-Daca", "1")],
    )
    .unwrap();
    assert_eq!(status, 204);
    let log = project.log();
    let gone = &log["deactivated"];
    assert!(
        gone.as_array().unwrap().iter().any(|d| d["id"] == "t1"),
        "DELETE /actors/Counter/t1: {log}"
    );
    let after = gone[0]["at"].as_u64().unwrap();
    let overview = project.get(control, "/v1/actors").1;
    assert!(
        overview["active"].as_array().unwrap().is_empty(),
        "{overview}"
    );
    // Two periods later no fire came after the deactivation.
    std::thread::sleep(Duration::from_millis(1200));
    let log = project.log();
    let late = log["timer"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|f| f["at"].as_u64() > Some(after))
        .count();
    assert_eq!(late, 0, "{log}");
    up.stop_cleanly();
}

#[test]
fn an_idle_actor_is_deactivated_after_its_timeout() {
    let Some(project) = Project::new("1.15.0") else {
        return;
    };
    let mut up = project.up();
    let touched = project.post(project.port, "/idler/i1", "").1["at"]
        .as_u64()
        .unwrap();
    assert!(
        wait_until(Duration::from_secs(10), || !project.log()["deactivated"]
            .as_array()
            .unwrap()
            .is_empty()),
        "{}",
        up.output()
    );
    let at = project.log()["deactivated"][0]["at"].as_u64().unwrap();
    let idle = at - touched;
    assert!(
        (1900..4000).contains(&idle),
        "DELETE {idle} ms after the call (timeout 2 s)"
    );
    up.stop_cleanly();
}

#[test]
fn calls_on_one_id_take_turns_and_calls_on_two_ids_overlap() {
    let Some(project) = Project::new("1.15.0") else {
        return;
    };
    let mut up = project.up();
    let hold = |id: &'static str| {
        let port = project.port;
        std::thread::spawn(move || {
            http_request(port, "POST", &format!("/counter/{id}/hold?ms=400"), "").unwrap()
        })
    };
    let calls = [hold("same"), hold("same"), hold("a"), hold("b")];
    for call in calls {
        assert_eq!(call.join().unwrap().0, 200);
    }
    let turns = project.log()["turns"].as_array().unwrap().clone();
    let of = |id: &str| -> Vec<(u64, u64)> {
        turns
            .iter()
            .filter(|t| t["id"] == id)
            .map(|t| (t["start"].as_u64().unwrap(), t["end"].as_u64().unwrap()))
            .collect()
    };
    let same = of("same");
    assert_eq!(same.len(), 2);
    let (first, second) = if same[0].0 < same[1].0 {
        (same[0], same[1])
    } else {
        (same[1], same[0])
    };
    assert!(second.0 >= first.1, "one id, one turn at a time: {same:?}");
    let (a, b) = (of("a")[0], of("b")[0]);
    assert!(a.0 < b.1 && b.0 < a.1, "two ids overlap: {a:?} {b:?}");
    up.stop_cleanly();
}

fn ping(reentrant: bool) -> (u16, Value, Duration) {
    let Some(project) = Project::new("1.15.0") else {
        return (0, Value::Null, Duration::ZERO);
    };
    let env = if reentrant { ", REENTRANT: \"1\"" } else { "" };
    project.write(env, "");
    let mut up = project.up();
    let started = Instant::now();
    let (status, body) = project.post(project.port, "/ping/alice?peer=bob", "");
    let took = started.elapsed();
    up.stop_cleanly();
    (status, body, took)
}

#[test]
fn a_reentrant_call_comes_back_to_its_actor() {
    let (status, body, took) = ping(true);
    if status == 0 {
        return;
    }
    assert_eq!(
        (status, &body["result"]),
        (200, &Value::from("pong:echo:alice")),
        "{body}"
    );
    assert!(took < Duration::from_secs(2), "{took:?}");
}

#[test]
fn without_reentrancy_a_call_back_waits_for_its_actor_until_it_times_out() {
    let (status, body, took) = ping(false);
    if status == 0 {
        return;
    }
    assert_eq!(status, 500, "{body}");
    assert!(
        took >= Duration::from_secs(3),
        "the inner call waited for alice's turn: {took:?}"
    );
}

#[test]
fn an_actor_publishes_to_a_declarative_subscription() {
    let Some(project) = Project::new("1.15.0") else {
        return;
    };
    let resources = project.dir.path().join("resources");
    std::fs::create_dir_all(&resources).unwrap();
    let redis = format!("localhost:{}", project.redis.port);
    std::fs::write(
        resources.join("components.yaml"),
        format!(
            "apiVersion: dapr.io/v1alpha1\nkind: Component\nmetadata: {{ name: statestore }}\nspec:\n  type: state.redis\n  version: v1\n  metadata:\n  - {{ name: redisHost, value: \"{redis}\" }}\n  - {{ name: actorStateStore, value: \"true\" }}\n---\napiVersion: dapr.io/v1alpha1\nkind: Component\nmetadata: {{ name: pubsub }}\nspec:\n  type: pubsub.redis\n  version: v1\n  metadata:\n  - {{ name: redisHost, value: \"{redis}\" }}\n---\napiVersion: dapr.io/v2alpha1\nkind: Subscription\nmetadata: {{ name: counted }}\nspec:\n  pubsubname: pubsub\n  topic: counted\n  routes: {{ default: /counted }}\n"
        ),
    )
    .unwrap();
    project.write("", "resources: ./resources\n");
    let mut up = project.up();
    assert_eq!(
        project.post(project.port, "/counter/p1/announce", "").0,
        200,
        "{}",
        up.output()
    );
    assert!(
        wait_until(Duration::from_secs(15), || {
            project.log()["events"]
                .as_array()
                .is_some_and(|e| e.iter().any(|e| e["data"]["id"] == "p1"))
        }),
        "{}\n{}",
        project.log(),
        up.output()
    );
    // The route called an actor, as an ordinary app route does.
    assert!(
        wait_until(Duration::from_secs(10), || project
            .get(project.port, "/counter/events")
            .1["count"]
            == 1),
        "{}",
        up.output()
    );
    up.stop_cleanly();
}

/// A project whose resources folder has `components`.
fn with_resources(project: &Project, components: &str) {
    let resources = project.dir.path().join("resources");
    std::fs::create_dir_all(&resources).unwrap();
    std::fs::write(resources.join("components.yaml"), components).unwrap();
    project.write("", "resources: ./resources\n");
}

fn state_store(name: &str, redis: &RedisServer, actor: bool) -> String {
    let flag = if actor {
        "\n  - { name: actorStateStore, value: \"true\" }"
    } else {
        ""
    };
    format!(
        "apiVersion: dapr.io/v1alpha1\nkind: Component\nmetadata: {{ name: {name} }}\nspec:\n  type: state.redis\n  version: v1\n  metadata:\n  - {{ name: redisHost, value: \"localhost:{}\" }}{flag}\n",
        redis.port
    )
}

#[test]
fn two_actor_state_stores_are_refused_and_none_suspends_hosting() {
    let Some(project) = Project::new("1.15.0") else {
        return;
    };
    let both = format!(
        "{}---\n{}",
        state_store("one", &project.redis, true),
        state_store("two", &project.redis, true)
    );
    with_resources(&project, &both);
    let out = crate::cli::run(&["up", "-d", project.dir.path().to_str().unwrap()]);
    let stderr = crate::cli::text(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains("detected duplicate actor state store: one and two"),
        "{stderr}"
    );
    assert!(
        stderr.contains("components.yaml:"),
        "with its position: {stderr}"
    );

    with_resources(&project, &state_store("plain", &project.redis, false));
    let mut up = Up::start(project.dir.path(), None);
    up.wait_output("Actor state store not configured", Duration::from_secs(60));
    let (status, body) = project.post(project.sidecar, "/v1.0/actors/Counter/1/method/Get", "");
    assert_eq!(status, 500, "{body}");
    assert!(
        body["message"]
            .as_str()
            .unwrap_or_default()
            .contains("actor hosting is suspended"),
        "{body}"
    );
    up.stop_cleanly();
}

#[test]
fn a_reload_reads_the_actor_types_again_and_keeps_state_and_reminders() {
    let Some(project) = Project::new("1.15.0") else {
        return;
    };
    let mut up = project.up();
    assert_eq!(
        project
            .post(project.port, "/counter/k/increment?by=3", "")
            .0,
        200
    );
    assert_eq!(
        project
            .post(project.port, "/counter/k/remind?seconds=1", "")
            .0,
        200
    );
    assert_eq!(project.post(project.port, "/idler/gone", "").0, 200);
    let control = crate::dashboard::control_port(project.dir.path());
    let types = || -> Vec<String> {
        let overview = project.get(control, "/v1/actors").1;
        overview["types"]
            .as_array()
            .unwrap()
            .iter()
            .map(|t| t["actor_type"].as_str().unwrap().to_string())
            .collect()
    };
    assert_eq!(types(), ["Counter", "Idler", "Pinger"]);
    // The app stops registering Idler (the SDK also lists a type that has a type config);
    // the save reloads it and daca reads its config again.
    let main = project.dir.path().join("app/main.py");
    let code = std::fs::read_to_string(&main)
        .unwrap()
        .replace("(Counter, Pinger, Idler)", "(Counter, Pinger)")
        .replace(
            "ActorTypeConfig(\"Idler\", actor_idle_timeout=timedelta(seconds=2)),",
            "",
        );
    std::fs::write(&main, code).unwrap();
    assert!(
        wait_until(Duration::from_secs(30), || types() == ["Counter", "Pinger"]),
        "{}",
        up.output()
    );
    let active = project.get(control, "/v1/actors").1;
    assert!(
        !active["active"]
            .as_array()
            .unwrap()
            .iter()
            .any(|a| a["actor_type"] == "Idler"),
        "the dropped type's actors are deactivated: {active}"
    );
    assert_eq!(
        project.get(project.port, "/counter/k").1["count"],
        3,
        "state kept"
    );
    let fired = project.get(project.port, "/counter/k").1["reminded"]
        .as_u64()
        .unwrap_or(0);
    assert!(
        wait_until(Duration::from_secs(10), || project
            .get(project.port, "/counter/k")
            .1["reminded"]
            .as_u64()
            > Some(fired)),
        "the reminder keeps firing into the new process\n{}",
        up.output()
    );
    up.stop_cleanly();
}
