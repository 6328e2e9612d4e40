//! The Jobs API as the course's jobs lab uses it: jobs scheduled with `curl` and with the
//! official SDK, delivered to a FastAPI app as `POST /job/<name>`, retried by their failure
//! policy, and kept across `daca down`/`up`.

use std::time::Duration;

use serde_json::{Value, json};

use crate::common::{free_port, have, http, http_get, http_request, repo, wait_until};

fn project(python: &std::path::Path) -> (tempfile::TempDir, u16, u16) {
    let dir = tempfile::tempdir().unwrap();
    std::fs::copy(
        repo().join("tests/fixtures/jobs/main.py"),
        dir.path().join("main.py"),
    )
    .unwrap();
    let (app, sidecar) = (free_port(), free_port());
    let manifest = format!(
        "name: jobs\nnetwork: host\nredis: {{ provider: embedded }}\napps:\n  - id: lab\n    command: [\"{}\", -m, uvicorn, \"main:app\", --port, \"{app}\"]\n    port: {app}\n    dapr_http_port: {sidecar}\n",
        python.display()
    );
    std::fs::write(dir.path().join("daca.yaml"), manifest).unwrap();
    (dir, app, sidecar)
}

/// The fires the app has seen of job `name`, with their bodies and times.
fn fires(app: u16, name: &str) -> Vec<Value> {
    let (_, body) = http_get(app, "/seen").unwrap_or_default();
    let all: Vec<Value> = serde_json::from_str(&body).unwrap_or_default();
    all.into_iter().filter(|s| s["name"] == name).collect()
}

fn schedule(sidecar: u16, name: &str, body: &str) -> (u16, Value) {
    let (status, text) =
        http_request(sidecar, "POST", &format!("/v1.0/jobs/{name}"), body).unwrap();
    (status, serde_json::from_str(&text).unwrap_or(Value::Null))
}

/// `@every 1s` three times, a one-shot `dueTime`, an app answering 500 (four tries a second
/// apart, then none) or 404 (once); Dapr's body rules and errors; GET and DELETE; the SDK's
/// `schedule_job`/`get_job` over gRPC; a job due after a restart still fires.
#[test]
fn jobs_fire_retry_and_survive_a_restart() {
    if !have("python3") {
        return;
    }
    let Some(python) = crate::actors::sdk("latest") else {
        return;
    };
    let (dir, app, sidecar) = project(&python);
    let mut up = crate::up::Up::start(dir.path(), None);
    up.wait_output("all 1 app(s) ready", Duration::from_secs(60));

    assert_eq!(
        schedule(
            sidecar,
            "tick",
            r#"{"schedule":"@every 1s","repeats":3,"data":{"n":1}}"#
        )
        .0,
        204
    );
    assert_eq!(
        schedule(
            sidecar,
            "once",
            r#"{"dueTime":"1s","data":  {    "expression":   "val" } }"#
        )
        .0,
        204
    );
    assert_eq!(
        schedule(sidecar, "fail-always", r#"{"dueTime":"0s"}"#).0,
        204
    );
    assert_eq!(
        schedule(sidecar, "gone-away", r#"{"dueTime":"0s","data":"\"xyz\""}"#).0,
        204
    );

    // Read back while it runs.
    let (status, text) = http_get(sidecar, "/v1.0/jobs/tick").unwrap();
    assert_eq!(status, 200, "{text}");
    let view: Value = serde_json::from_str(&text).unwrap();
    assert_eq!(view["schedule"], "@every 1s");
    assert_eq!(view["repeats"], 3);
    assert_eq!(
        view["data"],
        json!({"@type": "type.googleapis.com/google.protobuf.Value", "value": {"n": 1}})
    );

    let three = || fires(app, "tick").len() >= 3 && fires(app, "fail-always").len() >= 4;
    assert!(
        wait_until(Duration::from_secs(15), three),
        "{}",
        up.output()
    );
    std::thread::sleep(Duration::from_millis(1500));
    let ticks = fires(app, "tick");
    assert_eq!(ticks.len(), 3, "repeats: 3 {ticks:?}");
    assert!(ticks.iter().all(|t| t["body"] == r#"{"n":1}"#), "{ticks:?}");
    let gap = ticks[2]["at"].as_f64().unwrap() - ticks[1]["at"].as_f64().unwrap();
    assert!((0.8..1.3).contains(&gap), "a second apart: {gap}");
    assert_eq!(fires(app, "once")[0]["body"], r#"{"expression":"val"}"#);
    let failed = fires(app, "fail-always");
    assert_eq!(failed.len(), 4, "one try and three retries: {failed:?}");
    let retry = failed[3]["at"].as_f64().unwrap() - failed[2]["at"].as_f64().unwrap();
    assert!((0.8..1.5).contains(&retry), "retried after 1 s: {retry}");
    let gone = fires(app, "gone-away");
    assert_eq!(gone.len(), 1, "404 is delivered: {gone:?}");
    assert_eq!(gone[0]["body"], r#""\"xyz\"""#);
    // A job that has fired for the last time is gone.
    let (status, text) = http_get(sidecar, "/v1.0/jobs/tick").unwrap();
    assert_eq!(status, 500, "{text}");
    let error: Value = serde_json::from_str(&text).unwrap();
    assert_eq!(error["errorCode"], "DAPR_SCHEDULER_GET_JOB");
    assert!(
        error["message"]
            .as_str()
            .unwrap()
            .contains("failed to get job"),
        "{error}"
    );
    assert_eq!(
        http("DELETE", sidecar, "/v1.0/jobs/notfound").map(|r| r.0),
        Some(204)
    );

    // Dapr's body rules.
    for (body, status) in [
        ("", 400),
        ("{}", 400),
        ("[{}]", 400),
        (r#"{"name":"test"}"#, 400),
    ] {
        assert_eq!(schedule(sidecar, "rules", body).0, status, "{body}");
    }
    let (status, error) = schedule(sidecar, "rules", r#"{"schedule":"test","repeats":-1}"#);
    assert_eq!(
        (status, error["errorCode"].as_str()),
        (400, Some("ERR_MALFORMED_REQUEST"))
    );
    assert_eq!(
        schedule(sidecar, "rules", "{}").1["errorCode"],
        "DAPR_SCHEDULER_SCHEDULE_EMPTY"
    );
    assert_eq!(
        schedule(sidecar, "rules", r#"{"name":"x"}"#).1["message"],
        "Set the job name in the url only"
    );
    let (status, error) = schedule(sidecar, "five", r#"{"schedule":"*/5 * * * *"}"#);
    assert_eq!(
        (status, error["errorCode"].as_str()),
        (500, Some("DAPR_SCHEDULER_SCHEDULE_JOB"))
    );
    assert_eq!(
        schedule(sidecar, "daily", r#"{"schedule":"@daily"}"#).0,
        204
    );
    let (status, error) = schedule(sidecar, "daily", r#"{"schedule":"@daily"}"#);
    assert_eq!(
        (status, error["errorCode"].as_str()),
        (409, Some("DAPR_SCHEDULER_SCHEDULE_JOB"))
    );
    assert_eq!(
        schedule(
            sidecar,
            "daily",
            r#"{"schedule":"@daily","overwrite":true}"#
        )
        .0,
        204
    );
    // `daca jobs` lists it with its next fire; `daca jobs delete` deletes it.
    let project = dir.path().to_str().unwrap();
    let listed = crate::cli::run(&["jobs", "--json", "-d", project]);
    let listed: Value = serde_json::from_slice(&listed.stdout).unwrap();
    let daily = listed["jobs"]
        .as_array()
        .unwrap()
        .iter()
        .find(|j| j["name"] == "daily")
        .cloned()
        .unwrap();
    assert_eq!(
        (daily["app"].as_str(), daily["schedule"].as_str()),
        (Some("lab"), Some("@daily"))
    );
    let now_ms = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as u64;
    assert!(daily["next_ms"].as_u64().unwrap() > now_ms, "{daily}");
    let table = crate::cli::text(&crate::cli::run(&["jobs", "-d", project]).stdout);
    assert!(
        table
            .lines()
            .any(|l| l.starts_with("lab") && l.contains("daily") && l.contains("@daily")),
        "{table}"
    );
    let deleted = crate::cli::run(&["jobs", "delete", "lab", "daily", "-d", project]);
    assert!(
        deleted.status.success(),
        "{}",
        crate::cli::text(&deleted.stderr)
    );
    assert_eq!(
        http_get(sidecar, "/v1.0/jobs/daily").map(|r| r.0),
        Some(500)
    );
    let full = r#"{"schedule":"@every 1m","repeats":123,"dueTime":"1000s","ttl":"123s","data":"hello world","failure_policy":{"constant":{"interval":"3s","max_retries":5}}}"#;
    assert_eq!(schedule(sidecar, "fields", full).0, 204);
    let (_, text) = http_get(sidecar, "/v1.0-alpha1/jobs/fields").unwrap();
    let fields: Value = serde_json::from_str(&text).unwrap();
    assert_eq!(fields["dueTime"], "1000s");
    assert_eq!(fields["ttl"], "123s");
    assert_eq!(
        fields["failurePolicy"],
        json!({"constant": {"interval": "3s", "maxRetries": 5}})
    );

    // The official SDK, over gRPC.
    let (status, text) = http_request(app, "POST", "/sdk", "").unwrap();
    assert_eq!(status, 200, "{text}\n{}", up.output());
    let back: Value = serde_json::from_str(&text).unwrap();
    assert_eq!(
        back,
        json!({"name": "sdk-every", "schedule": "@every 1s", "repeats": 2})
    );
    let twice = || fires(app, "sdk-every").len() >= 2;
    assert!(
        wait_until(Duration::from_secs(10), twice),
        "{}",
        up.output()
    );
    assert_eq!(fires(app, "sdk-every")[0]["body"], "from the sdk");

    // Due while daca is down: it fires once daca is back.
    assert_eq!(
        schedule(
            sidecar,
            "after-restart",
            r#"{"dueTime":"4s","data":"kept"}"#
        )
        .0,
        204
    );
    up.stop_cleanly();
    let again = crate::up::Up::start(dir.path(), None);
    again.wait_output("all 1 app(s) ready", Duration::from_secs(60));
    let kept = || fires(app, "after-restart").len() == 1;
    assert!(
        wait_until(Duration::from_secs(15), kept),
        "{}",
        again.output()
    );
    assert_eq!(fires(app, "after-restart")[0]["body"], r#""kept""#);
}
