//! Dapr Workflow under `daca up`, with examples/workflows (the official Python SDK's
//! `WorkflowRuntime` as the worker and `DaprWorkflowClient`) at the version the course locks
//! (dapr-ext-workflow 1.15.0 on durabletask-dapr 0.2.0a7) and at the newest, on a real
//! redis-server: every kind of workflow the course's labs use, instances surviving a killed
//! app and a restarted (or killed) daca, the HTTP API as Dapr's docs drive it with curl, the
//! Redis keys in Dapr's layout, `daca workflows` and the dashboard's view in Chromium.

use std::path::PathBuf;
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::common::{RedisServer, free_port, have, http_request, repo, wait_until};
use crate::up::Up;

/// examples/workflows's app, on a test Redis, through one SDK.
struct Project {
    dir: tempfile::TempDir,
    /// Where the activities note their runs: outside the project, so writing it reloads nothing.
    runs: tempfile::TempDir,
    redis: RedisServer,
    python: PathBuf,
    port: u16,
    sidecar: u16,
}

impl Project {
    fn new(version: &str) -> Option<Project> {
        Project::with_apps(version, &["wf"])
    }

    /// examples/workflows's app once per id (each its own worker of the same workflows).
    fn with_apps(version: &str, ids: &[&str]) -> Option<Project> {
        let python = crate::actors::sdk(version)?;
        if !have("redis-server") {
            return None;
        }
        let project = Project {
            dir: tempfile::tempdir().unwrap(),
            runs: tempfile::tempdir().unwrap(),
            redis: RedisServer::start()?,
            python,
            port: free_port(),
            sidecar: free_port(),
        };
        let app = project.dir.path().join("app");
        std::fs::create_dir_all(&app).unwrap();
        for name in ["main.py", "pyproject.toml"] {
            let from = repo().join("examples/workflows/app").join(name);
            std::fs::copy(from, app.join(name)).unwrap();
        }
        let apps: String = ids
            .iter()
            .enumerate()
            .map(|(i, id)| {
                let (port, sidecar) = match i {
                    0 => (project.port, project.sidecar),
                    _ => (free_port(), free_port()),
                };
                format!(
                    "  - id: {id}\n    dir: ./app\n    command: [\"{}\", -m, uvicorn, \"main:app\", --port, \"{port}\"]\n    port: {port}\n    health: /healthz\n    dapr_http_port: {sidecar}\n    dapr_grpc_port: {}\n    env: {{ PYTHONDONTWRITEBYTECODE: \"1\", WORKFLOW_RUNS: \"{}\" }}\n",
                    project.python.display(),
                    free_port(),
                    project.runs_file().display(),
                )
            })
            .collect();
        let manifest = format!(
            "name: workflows\nredis: {{ url: {} }}\napps:\n{apps}",
            project.redis.url()
        );
        std::fs::write(project.dir.path().join("daca.yaml"), manifest).unwrap();
        Some(project)
    }

    fn runs_file(&self) -> PathBuf {
        self.runs.path().join("runs.log")
    }

    fn runs(&self, what: &str) -> usize {
        std::fs::read_to_string(self.runs_file())
            .unwrap_or_default()
            .lines()
            .filter(|l| *l == what)
            .count()
    }

    /// `daca up`, once the app's worker is connected.
    fn up(&self) -> Up {
        let up = Up::start(self.dir.path(), None);
        up.wait_output("app(s) ready", Duration::from_secs(60));
        let connected = wait_until(Duration::from_secs(30), || {
            self.get(self.sidecar, "/v1.0/metadata").1["workflows"]["connectedWorkers"] == 1
        });
        assert!(connected, "no worker connected\n{}", up.output());
        up
    }

    fn call(&self, port: u16, method: &str, path: &str, body: &str) -> (u16, Value) {
        let (status, text) = http_request(port, method, path, body)
            .unwrap_or_else(|| panic!("{method} {path}: no answer"));
        (
            status,
            serde_json::from_str(&text).unwrap_or(Value::String(text)),
        )
    }

    fn get(&self, port: u16, path: &str) -> (u16, Value) {
        self.call(port, "GET", path, "")
    }

    /// Starts `name` through the SDK's client (the app's endpoint).
    fn start(&self, name: &str, id: &str, input: &str) {
        let (status, body) = self.call(
            self.port,
            "POST",
            &format!("/workflows/{name}?id={id}"),
            input,
        );
        assert_eq!((status, &body["id"]), (200, &Value::from(id)), "{body}");
    }

    /// The instance once it has completed (the SDK's `wait_for_workflow_completion`); an app
    /// that is restarting is waited for.
    fn wait(&self, id: &str) -> Value {
        let path = format!("/workflows/{id}/wait?timeout=60");
        let mut answer = None;
        wait_until(Duration::from_secs(90), || {
            answer = http_request(self.port, "GET", &path, "").filter(|(status, _)| *status == 200);
            answer.is_some()
        });
        let (_, text) = answer.unwrap_or_else(|| panic!("{id} did not complete"));
        serde_json::from_str(&text).unwrap()
    }

    fn run(&self, name: &str, id: &str, input: &str) -> Value {
        self.start(name, id, input);
        self.wait(id)
    }

    fn state(&self, id: &str) -> Value {
        self.get(self.port, &format!("/workflows/{id}")).1
    }

    fn control(&self, id: &str, verb: &str) -> (u16, Value) {
        self.call(self.port, "POST", &format!("/workflows/{id}/{verb}"), "")
    }

    fn raise(&self, id: &str, event: &str, data: &str) {
        let path = format!("/workflows/{id}/events/{event}");
        assert_eq!(self.call(self.port, "POST", &path, data).0, 200);
    }

    fn keys(&self, id: &str) -> Vec<String> {
        let pattern = format!("wf||dapr.internal.default.wf.workflow||{id}||*");
        let mut keys: Vec<String> = self.redis.query(&["KEYS", &pattern]);
        keys.sort();
        keys
    }
}

fn completed(state: &Value) -> bool {
    state["status"] == "COMPLETED"
}

/// Hello, chaining, fan-out/fan-in, child workflows, continue-as-new, retries, failures.
fn activities_children_and_retries(project: &Project, up: &Up) {
    let hello = project.run("hello", "hello1", "\"World\"");
    assert!(completed(&hello), "{hello}\n{}", up.output());
    assert_eq!(hello["output"], "\"Hello World\"");
    assert_eq!(hello["input"], "\"World\"");
    assert_eq!(project.run("chain", "chain1", "1")["output"], "4");
    let fanout = project.run("fanout", "fan1", "20");
    let squares: Vec<u64> = (0..20).map(|i| i * i).collect();
    let output: Vec<u64> = serde_json::from_str(fanout["output"].as_str().unwrap()).unwrap();
    assert_eq!(output, squares, "{fanout}");
    let parent = project.run("parent", "p1", "\"Ada\"");
    assert_eq!(parent["output"], "\"child said: Hello Ada\"", "{parent}");
    // The child's id is the parent's and the action's, as durabletask makes it.
    assert!(
        completed(&project.state("p1:0001")),
        "{}",
        project.state("p1:0001")
    );
    let countdown = project.run("countdown", "cd1", "");
    let output: Value = serde_json::from_str(countdown["output"].as_str().unwrap()).unwrap();
    assert_eq!(
        output,
        serde_json::json!({"left": 0, "seen": 3}),
        "{countdown}"
    );
    let retried = project.run("retry", "r1", "\"k\"");
    assert_eq!(retried["output"], "\"k after 3 tries\"", "{retried}");
    assert_eq!(project.runs("flaky k"), 3);
    let failed = project.run("fail", "f1", "");
    assert_eq!(failed["status"], "FAILED", "{failed}");
    assert_eq!(failed["failure"]["type"], "TaskFailedError", "{failed}");
    let message = failed["failure"]["message"].as_str().unwrap();
    assert!(
        message.contains("the activity failed on purpose"),
        "{failed}"
    );
}

/// External events raised before and after the wait, timers, `when_any`, and the controls.
fn events_timers_and_controls(project: &Project) {
    project.start("approval", "a1", "");
    // The SDK's JSON text; the newest SDK's client decodes it.
    let custom = project.state("a1")["custom_status"].clone();
    assert_eq!(
        custom.as_str().map(|s| s.trim_matches('"')),
        Some("waiting for approval")
    );
    project.raise("a1", "approval", "\"yes\"");
    assert_eq!(project.wait("a1")["output"], "\"yes\"");
    // Raised while the workflow still waits on its timer: kept until it waits for it.
    project.start("approval_later", "a2", "1");
    project.raise("a2", "approval", "\"early\"");
    assert_eq!(project.wait("a2")["output"], "\"early\"");
    let started = Instant::now();
    let timer = project.run("timer", "t1", "2");
    assert!(started.elapsed() >= Duration::from_secs(2), "{timer}");
    let slept: f64 = timer["output"].as_str().unwrap().parse().unwrap();
    assert!((2.0..4.0).contains(&slept), "{timer}");
    project.start("race", "race1", "30");
    project.raise("race1", "go", "");
    assert_eq!(project.wait("race1")["output"], "\"event\"");
    assert_eq!(project.run("race", "race2", "1")["output"], "\"timer\"");
    // Suspended, an event waits; resumed, the workflow takes it.
    project.start("approval", "s1", "");
    assert_eq!(project.control("s1", "pause").0, 200);
    assert_eq!(project.state("s1")["status"], "SUSPENDED");
    project.raise("s1", "approval", "\"late\"");
    std::thread::sleep(Duration::from_millis(300));
    assert_eq!(project.state("s1")["status"], "SUSPENDED");
    assert_eq!(project.control("s1", "resume").0, 200);
    assert_eq!(project.wait("s1")["output"], "\"late\"");
    project.start("approval", "x1", "");
    assert_eq!(project.control("x1", "terminate").0, 200);
    assert_eq!(project.state("x1")["status"], "TERMINATED");
    // A running instance cannot be purged; a finished one goes, keys and all.
    project.start("approval", "busy", "");
    let (status, body) = project.control("busy", "purge");
    assert_eq!(status, 500, "{body}");
    // The text the SDKs match on, from the sidecar's AlreadyExists.
    let (status, body) = project.call(project.port, "POST", "/workflows/approval?id=busy", "");
    assert_eq!(status, 409, "{body}");
    let error = body["error"].as_str().unwrap();
    assert!(
        error.contains("an active workflow with ID 'busy' already exists"),
        "{body}"
    );
    assert!(error.contains("ALREADY_EXISTS"), "{body}");
    assert!(project.keys("x1").len() > 2, "{:?}", project.keys("x1"));
    assert_eq!(project.control("x1", "purge").0, 200);
    assert_eq!(project.state("x1")["status"], Value::Null);
    assert!(project.keys("x1").is_empty(), "{:?}", project.keys("x1"));
    let (_, again) = project.control("x1", "purge");
    assert!(
        again["error"]
            .as_str()
            .unwrap()
            .contains("no such instance exists"),
        "{again}"
    );
}

fn every_kind_of_workflow(version: &str) {
    let Some(project) = Project::new(version) else {
        return;
    };
    let mut up = project.up();
    activities_children_and_retries(&project, &up);
    events_timers_and_controls(&project);
    if version == "1.15.0" {
        dapr_client(&project);
    }
    up.stop_cleanly();
}

/// The course's SDK also has DaprClient's workflow methods (gRPC StartWorkflowBeta1 and
/// GetWorkflowBeta1; the newest SDK dropped them).
fn dapr_client(project: &Project) {
    let (status, body) = project.call(
        project.port,
        "POST",
        "/dapr-client/hello?id=dc1",
        "\"Beta\"",
    );
    assert_eq!((status, &body["id"]), (200, &Value::from("dc1")), "{body}");
    assert_eq!(project.wait("dc1")["output"], "\"Hello Beta\"");
    let (_, got) = project.get(project.port, "/dapr-client/dc1");
    // The SDK maps Dapr's `COMPLETED` to its own enum's name.
    assert_eq!(got["status"], "Completed", "{got}");
    assert_eq!(
        got["properties"]["dapr.workflow.output"], "\"Hello Beta\"",
        "{got}"
    );
    let (_, missing) = project.get(project.port, "/dapr-client/nobody");
    assert_eq!(missing["properties"], serde_json::json!({}), "{missing}");
}

/// An activity and a child workflow of another app (`app_id=`, durabletask's
/// `router.targetAppID`): they run on that app's worker and answer the calling instance.
#[test]
fn a_workflow_calls_another_apps_activity_and_child_workflow() {
    let Some(project) = Project::with_apps("latest", &["wf", "other"]) else {
        return;
    };
    let mut up = project.up();
    let done = project.run("remote", "far1", "\"other\"");
    assert!(completed(&done), "{done}\n{}", up.output());
    let output: Value = serde_json::from_str(done["output"].as_str().unwrap()).unwrap();
    assert_eq!(
        output,
        serde_json::json!(["other", "Hello remote"]),
        "{done}"
    );
    // The child is the other app's instance.
    let dir = project.dir.path().to_str().unwrap();
    let list = crate::cli::run(&["workflows", "--json", "-d", dir]);
    let list: Value = serde_json::from_slice(&list.stdout).unwrap();
    let child = list["instances"]
        .as_array()
        .unwrap()
        .iter()
        .find(|i| i["instance"] == "far1:0002")
        .unwrap_or_else(|| panic!("{list}"));
    assert_eq!(
        (&child["app"], &child["parent_app"]),
        (&Value::from("other"), &Value::from("wf"))
    );
    up.stop_cleanly();
}

#[test]
fn the_course_sdk_runs_every_kind_of_workflow() {
    every_kind_of_workflow("1.15.0");
}

#[test]
fn the_newest_sdk_runs_every_kind_of_workflow() {
    every_kind_of_workflow("latest");
}

fn app_pid(up: &Up) -> u32 {
    let ps = up.ps();
    ps["apps"][0]["pid"].as_u64().expect("the app's pid") as u32
}

/// An instance survives its app SIGKILLed mid-activity (the activity runs again), daca
/// stopped mid-workflow, and daca SIGKILLed.
#[test]
fn workflows_survive_a_killed_app_a_restarted_daca_and_a_killed_daca() {
    let Some(project) = Project::new("1.15.0") else {
        return;
    };
    let mut up = project.up();
    project.start("slow", "k1", "3");
    assert!(wait_until(Duration::from_secs(10), || project
        .runs("slow started")
        == 1));
    let pid = app_pid(&up);
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(pid as i32),
        nix::sys::signal::Signal::SIGKILL,
    )
    .unwrap();
    let done = project.wait("k1");
    assert!(completed(&done), "{done}\n{}", up.output());
    assert_eq!(project.runs("slow started"), 2, "the activity ran again");
    // A save reloads the app in the middle of an activity.
    project.start("slow", "k5", "2");
    assert!(wait_until(Duration::from_secs(10), || project
        .runs("slow started")
        == 3));
    let main = project.dir.path().join("app/main.py");
    let text = std::fs::read_to_string(&main).unwrap();
    std::fs::write(&main, text + "\n# saved\n").unwrap();
    let done = project.wait("k5");
    assert!(completed(&done), "{done}\n{}", up.output());
    no_worker_no_progress(&project);
    // daca stopped while an activity and a timer are under way, then started again.
    project.start("slow", "k2", "2");
    project.start("timer", "k3", "4");
    up.stop_cleanly();
    let mut up = project.up();
    assert_eq!(
        project.wait("k2")["output"],
        "\"slept 2\"",
        "{}",
        up.output()
    );
    assert!(completed(&project.wait("k3")), "{}", up.output());
    // SIGKILLed: the next daca ends what it left, and the instance completes under it.
    project.start("slow", "k4", "2");
    up.signal(nix::sys::signal::Signal::SIGKILL);
    up.wait_exit(Duration::from_secs(10));
    let mut up = project.up();
    let done = project.wait("k4");
    assert!(completed(&done), "{done}\n{}", up.output());
    up.stop_cleanly();
}

/// With the app stopped no worker is connected: a start waits (the instance pending), as
/// under Dapr, and goes on once the app is back.
fn no_worker_no_progress(project: &Project) {
    let port = crate::dashboard::control_port(project.dir.path());
    let app = |action: &str| {
        let path = format!("/v1/apps/wf/{action}");
        let answer = crate::common::http_request_with(port, "POST", &path, "", &[("X-Daca", "1")]);
        assert_eq!(answer.map(|a| a.0), Some(200), "{action}");
    };
    app("stop");
    let workers = |n: u64| {
        project.get(project.sidecar, "/v1.0/metadata").1["workflows"]["connectedWorkers"] == n
    };
    assert!(wait_until(Duration::from_secs(20), || workers(0)));
    let sidecar = project.sidecar;
    let start = std::thread::spawn(move || {
        let path = "/v1.0/workflows/dapr/hello/start?instanceID=idle1";
        http_request(sidecar, "POST", path, "\"later\"").map(|a| a.0)
    });
    let pending =
        || project.get(sidecar, "/v1.0/workflows/dapr/idle1").1["runtimeStatus"] == "PENDING";
    assert!(wait_until(Duration::from_secs(10), pending));
    std::thread::sleep(Duration::from_secs(1));
    assert!(pending() && !start.is_finished(), "no worker, no step");
    app("start");
    assert_eq!(start.join().unwrap(), Some(202));
    assert_eq!(project.wait("idle1")["output"], "\"Hello later\"");
}

fn sidecar_call(project: &Project, method: &str, path: &str, body: &str) -> (u16, Value) {
    project.call(project.sidecar, method, path, body)
}

/// Dapr's workflow HTTP API as its docs drive it with curl, with its errors.
fn http_api(project: &Project) {
    // curl -X POST 'localhost:3500/v1.0-beta1/workflows/dapr/chain/start?instanceID=h1' -d 5
    let start = "/v1.0-beta1/workflows/dapr/chain/start?instanceID=h1";
    let (status, body) = sidecar_call(project, "POST", start, "5");
    assert_eq!(
        (status, &body),
        (202, &serde_json::json!({"instanceID": "h1"}))
    );
    let get = |id: &str| sidecar_call(project, "GET", &format!("/v1.0/workflows/dapr/{id}"), "");
    assert!(wait_until(
        Duration::from_secs(20),
        || get("h1").1["runtimeStatus"] == "COMPLETED"
    ));
    let (_, body) = get("h1");
    assert_eq!(body["workflowName"], "chain");
    assert_eq!(
        body["properties"],
        serde_json::json!({"dapr.workflow.input": "5", "dapr.workflow.output": "8"}),
        "{body}"
    );
    let (status, body) = get("not-found");
    assert_eq!(status, 404);
    assert_eq!(body["errorCode"], "ERR_INSTANCE_ID_NOT_FOUND");
    assert_eq!(
        body["message"],
        "unable to find workflow with the provided instance ID: not-found"
    );
    let bad = sidecar_call(
        project,
        "POST",
        "/v1.0/workflows/dapr/chain/start?instanceID=bad.id",
        "1",
    );
    assert_eq!(
        (bad.0, &bad.1["errorCode"]),
        (400, &Value::from("ERR_INSTANCE_ID_INVALID"))
    );
    let long = format!(
        "/v1.0/workflows/dapr/chain/start?instanceID={}",
        "a".repeat(65)
    );
    let long = sidecar_call(project, "POST", &long, "1");
    assert_eq!(
        (long.0, &long.1["errorCode"]),
        (400, &Value::from("ERR_INSTANCE_ID_TOO_LONG"))
    );
    // The course's approval step: an event through the alpha path, the controls through v1.0.
    let start = "/v1.0-alpha1/workflows/dapr/approval/start?instanceID=h2";
    assert_eq!(sidecar_call(project, "POST", start, "").0, 202);
    for verb in ["pause", "resume"] {
        let path = format!("/v1.0/workflows/dapr/h2/{verb}");
        assert_eq!(sidecar_call(project, "POST", &path, "").0, 202);
    }
    let raise = "/v1.0-beta1/workflows/dapr/h2/raiseEvent/approval";
    assert_eq!(sidecar_call(project, "POST", raise, "\"ok\"").0, 202);
    assert!(wait_until(
        Duration::from_secs(10),
        || get("h2").1["runtimeStatus"] == "COMPLETED"
    ));
    assert_eq!(get("h2").1["properties"]["dapr.workflow.output"], "\"ok\"");
    let purge = "/v1.0/workflows/dapr/h2/purge";
    assert_eq!(sidecar_call(project, "POST", purge, "").0, 202);
    assert_eq!(sidecar_call(project, "POST", purge, "").0, 404);
    let start = "/v1.0/workflows/dapr/approval/start?instanceID=h3";
    assert_eq!(sidecar_call(project, "POST", start, "").0, 202);
    let terminate = "/v1.0/workflows/dapr/h3/terminate";
    assert_eq!(sidecar_call(project, "POST", terminate, "").0, 202);
    assert_eq!(get("h3").1["runtimeStatus"], "TERMINATED");
    let (status, body) = sidecar_call(project, "POST", start, "");
    assert_eq!(status, 202, "a finished id starts afresh: {body}");
    let again = sidecar_call(project, "POST", start, "");
    assert_eq!(
        (again.0, &again.1["errorCode"]),
        (500, &Value::from("ERR_START_WORKFLOW"))
    );
    let message = again.1["message"].as_str().unwrap();
    assert!(
        message.contains("an active workflow with ID 'h3' already exists"),
        "{message}"
    );
    // The API's terminate is recursive: a running child ends with its parent.
    let start = "/v1.0/workflows/dapr/boss/start?instanceID=b1";
    assert_eq!(sidecar_call(project, "POST", start, "").0, 202);
    assert!(wait_until(
        Duration::from_secs(10),
        || get("b1:0001").1["runtimeStatus"] == "RUNNING"
    ));
    assert_eq!(
        sidecar_call(project, "POST", "/v1.0/workflows/dapr/b1/terminate", "").0,
        202
    );
    assert_eq!(get("b1").1["runtimeStatus"], "TERMINATED");
    assert!(wait_until(
        Duration::from_secs(10),
        || get("b1:0001").1["runtimeStatus"] == "TERMINATED"
    ));
}

/// The keys real Dapr writes for the hello workflow (two steps, six history events).
fn redis_keys(project: &Project) {
    assert!(completed(&project.run("hello", "keys1", "\"Redis\"")));
    let mut expected: Vec<String> = (0..6).map(|i| format!("history-{i:06}")).collect();
    expected.extend(["customStatus".to_string(), "metadata".to_string()]);
    expected.sort();
    let prefix = "wf||dapr.internal.default.wf.workflow||keys1||";
    let keys: Vec<String> = project
        .keys("keys1")
        .iter()
        .map(|k| k.strip_prefix(prefix).unwrap().to_string())
        .collect();
    assert_eq!(keys, expected);
    // BackendWorkflowStateMetadata{historyLength: 6, generation: 1}, raw protobuf.
    let metadata: Vec<u8> = project
        .redis
        .query(&["HGET", &format!("{prefix}metadata"), "data"]);
    assert_eq!(metadata, [0x10, 6, 0x18, 1]);
}

/// The newest SDK's management calls: the app's instance ids page by page, one's history.
fn management(project: &Project) {
    let (_, listed) = project.get(project.port, "/list?page=2");
    let ids: Vec<&str> = listed["ids"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|v| v.as_str())
        .collect();
    let mut sorted = ids.clone();
    sorted.sort();
    assert_eq!(ids, sorted, "{listed}");
    assert!(
        ids.contains(&"keys1") && ids.contains(&"h1") && ids.len() >= 4,
        "{listed}"
    );
    let (_, history) = project.get(project.port, "/history/keys1");
    let kinds: Vec<&str> = history["events"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|v| v.as_str())
        .collect();
    // The hello workflow's two steps, as the SDK names the events.
    let steps = [
        "WORKFLOW_STARTED",
        "EXECUTION_STARTED",
        "TASK_SCHEDULED",
        "WORKFLOW_STARTED",
        "TASK_COMPLETED",
        "EXECUTION_COMPLETED",
    ];
    assert_eq!(kinds, steps, "{history}");
    let (status, missing) = project.get(project.port, "/history/nobody");
    assert_eq!(status, 404, "{missing}");
    assert!(
        missing["error"].as_str().unwrap().contains("NOT_FOUND"),
        "{missing}"
    );
}

fn inspector(project: &Project) {
    let dir = project.dir.path().to_str().unwrap();
    let list = crate::cli::run(&["workflows", "-d", dir]);
    let table = crate::cli::text(&list.stdout);
    assert!(
        table.contains("keys1") && table.contains("COMPLETED"),
        "{table}"
    );
    let get = crate::cli::run(&["workflows", "get", "keys1", "-d", dir]);
    let timeline = crate::cli::text(&get.stdout);
    assert!(
        timeline.contains("taskScheduled") && timeline.contains("greet"),
        "{timeline}"
    );
    assert!(timeline.contains("\"Hello Redis\""), "{timeline}");
    project.start("approval", "cli1", "");
    let raise = crate::cli::run(&[
        "workflows",
        "raise",
        "cli1",
        "approval",
        "\"from the cli\"",
        "-d",
        dir,
    ]);
    assert!(
        raise.status.success(),
        "{}",
        crate::cli::text(&raise.stderr)
    );
    assert_eq!(project.wait("cli1")["output"], "\"from the cli\"");
    let json = crate::cli::run(&["workflows", "--json", "get", "cli1", "-d", dir]);
    let view: Value = serde_json::from_slice(&json.stdout).unwrap();
    assert_eq!(view["instance"]["status"], "COMPLETED", "{view}");
    let missing = crate::cli::run(&["workflows", "get", "nope", "-d", dir]);
    assert!(crate::cli::text(&missing.stderr).contains("no workflow instance `nope`"));
}

#[test]
fn the_http_api_the_redis_keys_and_the_inspector() {
    let Some(project) = Project::new("latest") else {
        return;
    };
    let mut up = project.up();
    http_api(&project);
    redis_keys(&project);
    management(&project);
    inspector(&project);
    up.stop_cleanly();
}

/// The dashboard lists the instances and shows one live, with its activities and failures.
#[test]
fn the_dashboard_shows_and_controls_workflows_in_a_real_browser() {
    if !have("chromedriver") {
        return;
    }
    let Some(project) = Project::new("1.15.0") else {
        return;
    };
    let mut up = project.up();
    assert_eq!(project.run("fail", "boom1", "")["status"], "FAILED");
    project.start("approval", "wait1", "");
    let browser = crate::dashboard::Browser::start();
    browser.open(&crate::dashboard::dashboard_url(
        project.dir.path(),
        "#workflows",
    ));
    let listed = "return document.getElementById('workflow-list').textContent.includes('boom1')";
    browser.wait_js("the instances", listed, Duration::from_secs(10));
    browser.click("#workflow-list tr[data-instance=\"boom1\"] button.workflow-show");
    let traceback = "return document.getElementById('workflow-history').textContent.includes('the activity failed on purpose') && !!document.querySelector('#workflow-history details pre')";
    browser.wait_js(
        "the failure and its traceback",
        traceback,
        Duration::from_secs(10),
    );
    browser.click("#workflow-list tr[data-instance=\"wait1\"] button.workflow-show");
    browser.js("document.getElementById('workflow-event').value = 'approval'; document.getElementById('workflow-data').value = '\"clicked\"'; return true");
    browser.click("#workflow-raise button[type=submit]");
    let done = "return document.getElementById('workflow-summary').textContent.includes('output \"clicked\"')";
    browser.wait_js("the live view completing", done, Duration::from_secs(15));
    browser.screenshot("workflows", &crate::dashboard::screenshot_dir());
    // With the page still open (its event stream never ends by itself): daca stops all the same.
    up.stop_cleanly();
    drop(browser);
}
