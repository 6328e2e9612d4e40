//! Bindings as the course's labs use them: a cron input binding delivered to a FastAPI app,
//! and an HTTP output binding against a server the test runs, through the sidecar's HTTP API
//! and the official SDK (gRPC).

use std::io::{BufRead, BufReader, Read, Write};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde_json::{Value, json};

use crate::common::{free_port, have, http_get, http_request_with, repo, wait_until};

/// One request the upstream server saw.
#[derive(Debug, Clone)]
struct Seen {
    method: String,
    path: String,
    headers: Vec<(String, String)>,
    body: String,
}

impl Seen {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

/// An HTTP/1.0 server on 127.0.0.1: `/base/missing` answers 404, anything else 201 with a
/// JSON body; every request is kept.
fn upstream() -> (u16, Arc<Mutex<Vec<Seen>>>) {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let seen: Arc<Mutex<Vec<Seen>>> = Arc::default();
    let kept = seen.clone();
    std::thread::spawn(move || {
        for stream in listener.incoming().flatten() {
            let mut reader = BufReader::new(stream);
            let mut line = String::new();
            if reader.read_line(&mut line).is_err() {
                continue;
            }
            let mut parts = line.split_whitespace();
            let (method, path) = (
                parts.next().unwrap_or("").to_string(),
                parts.next().unwrap_or("").to_string(),
            );
            let mut headers = Vec::new();
            loop {
                let mut header = String::new();
                if reader.read_line(&mut header).is_err() || header.trim().is_empty() {
                    break;
                }
                if let Some((name, value)) = header.trim().split_once(':') {
                    headers.push((name.trim().to_string(), value.trim().to_string()));
                }
            }
            let length: usize = headers
                .iter()
                .find(|(n, _)| n.eq_ignore_ascii_case("content-length"))
                .and_then(|(_, v)| v.parse().ok())
                .unwrap_or(0);
            let mut body = vec![0; length];
            let _ = reader.read_exact(&mut body);
            let (status, answer) = match path.as_str() {
                "/base/missing" => ("404 Not Found", "nope".to_string()),
                _ => ("201 Created", format!("{{\"made\":\"{method} {path}\"}}")),
            };
            kept.lock().unwrap().push(Seen {
                method,
                path,
                headers,
                body: String::from_utf8_lossy(&body).into_owned(),
            });
            let mut stream = reader.into_inner();
            let _ = write!(
                stream,
                "HTTP/1.0 {status}\r\nContent-Type: application/json\r\nX-Upstream: yes\r\nContent-Length: {}\r\n\r\n{answer}",
                answer.len()
            );
        }
    });
    (port, seen)
}

fn project(python: &std::path::Path, upstream: u16, sidecar: u16) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    std::fs::copy(
        repo().join("tests/fixtures/bindings/main.py"),
        dir.path().join("main.py"),
    )
    .unwrap();
    let resources = dir.path().join("resources");
    std::fs::create_dir(&resources).unwrap();
    let component = |name: &str, kind: &str, metadata: &str| {
        format!(
            "apiVersion: dapr.io/v1alpha1\nkind: Component\nmetadata:\n  name: {name}\nspec:\n  type: bindings.{kind}\n  version: v1\n  metadata:\n{metadata}"
        )
    };
    std::fs::write(
        resources.join("cron.yaml"),
        component(
            "cron",
            "cron",
            "    - name: schedule\n      value: \"@every 1s\"\n",
        ),
    )
    .unwrap();
    let url = format!("    - name: url\n      value: http://127.0.0.1:{upstream}/base\n");
    std::fs::write(resources.join("web.yaml"), component("web", "http", &url)).unwrap();
    let app_port = free_port();
    let manifest = format!(
        "name: bindings\nnetwork: host\nresources: ./resources\nredis: {{ provider: embedded }}\napps:\n  - id: lab\n    command: [\"{}\", -m, uvicorn, \"main:app\", --port, \"{app_port}\"]\n    port: {app_port}\n    dapr_http_port: {sidecar}\n",
        python.display()
    );
    std::fs::write(dir.path().join("daca.yaml"), manifest).unwrap();
    dir
}

fn post(port: u16, path: &str, body: &Value) -> (u16, Vec<(String, String)>, Value) {
    let (status, text, headers) =
        crate::common::http_request_full(port, "POST", path, &body.to_string());
    (
        status,
        headers,
        serde_json::from_str(&text).unwrap_or(Value::String(text)),
    )
}

/// A cron binding `@every 1s`: one OPTIONS probe, then a POST per second with an empty body
/// and Dapr's headers. The HTTP binding: path, capitalised metadata as headers, the upstream's
/// status and headers as `metadata.*`, 404 an error unless `errorIfNot2XX` is off, Dapr's
/// errors for an unknown binding or operation; the SDK's `invoke_binding` over gRPC.
#[test]
fn a_cron_binding_ticks_and_an_http_binding_calls_out() {
    if !have("python3") {
        return;
    }
    let Some(python) = crate::actors::sdk("latest") else {
        return;
    };
    let (upstream_port, upstream) = upstream();
    let sidecar = free_port();
    let dir = project(&python, upstream_port, sidecar);
    let up = crate::up::Up::start(dir.path(), None);
    up.wait_output("all 1 app(s) ready", Duration::from_secs(60));
    up.wait_output(
        "lab: input binding cron (cron, Local) → POST /cron",
        Duration::from_secs(10),
    );

    let seen = || -> Vec<Value> {
        let (_, body) = http_get_app(&up);
        serde_json::from_str::<Vec<Value>>(&body).unwrap_or_default()
    };
    let three = || seen().iter().filter(|s| s["method"] == "POST").count() >= 3;
    assert!(
        wait_until(Duration::from_secs(10), three),
        "{:?}\n{}",
        seen(),
        up.output()
    );
    let all = seen();
    assert_eq!(all[0]["method"], "OPTIONS", "{all:?}");
    assert_eq!(
        all.iter().filter(|s| s["method"] == "OPTIONS").count(),
        1,
        "{all:?}"
    );
    let tick = all.iter().find(|s| s["method"] == "POST").unwrap();
    assert_eq!(tick["body"], "");
    assert_eq!(tick["timeZone"], "Local");
    assert_eq!(tick["content_type"], "application/json");
    let read = tick["readTimeUTC"].as_str().unwrap();
    assert!(
        read.ends_with(" +0000 UTC") && read.starts_with("20"),
        "{read}"
    );

    // The HTTP binding, through the sidecar's HTTP API.
    let ask = json!({"operation": "post", "data": {"a": 1}, "metadata": {"path": "/x", "X-Key": "v", "lower": "ignored"}});
    let (status, headers, body) = post(sidecar, "/v1.0/bindings/web", &ask);
    assert_eq!(status, 200, "{body}");
    assert_eq!(body, json!({"made": "POST /base/x"}));
    let header = |name: &str| {
        headers
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.clone())
    };
    assert_eq!(
        header("metadata.statuscode").as_deref(),
        Some("201"),
        "{headers:?}"
    );
    assert_eq!(
        header("metadata.x-upstream").as_deref(),
        Some("yes"),
        "{headers:?}"
    );
    let got = upstream.lock().unwrap().last().cloned().unwrap();
    assert_eq!(
        (got.method.as_str(), got.path.as_str(), got.body.as_str()),
        ("POST", "/base/x", r#"{"a":1}"#)
    );
    assert_eq!(got.header("X-Key"), Some("v"));
    assert_eq!(got.header("lower"), None);
    assert_eq!(
        got.header("Content-Type"),
        Some("application/json; charset=utf-8")
    );

    let missing = json!({"operation": "get", "metadata": {"path": "missing"}});
    let (status, headers, body) = post(sidecar, "/v1.0/bindings/web", &missing);
    assert_eq!(status, 500);
    assert_eq!(body["errorCode"], "ERR_INVOKE_OUTPUT_BINDING");
    assert_eq!(
        body["message"],
        "error invoking output binding web: received status code 404"
    );
    assert!(
        headers
            .iter()
            .any(|(n, v)| n == "metadata.statuscode" && v == "404"),
        "{headers:?}"
    );
    let lenient =
        json!({"operation": "get", "metadata": {"path": "missing", "errorIfNot2XX": "false"}});
    let (status, _, body) = post(sidecar, "/v1.0/bindings/web", &lenient);
    assert_eq!((status, body), (200, Value::String("nope".into())));
    assert_eq!(upstream.lock().unwrap().last().unwrap().method, "GET");

    let (status, _, body) = post(
        sidecar,
        "/v1.0/bindings/web",
        &json!({"operation": "frobnicate"}),
    );
    assert_eq!(status, 500);
    assert_eq!(
        body["message"],
        "error invoking output binding web: binding web does not support operation frobnicate. supported operations:create get head post put patch delete options trace"
    );
    let (_, _, body) = post(sidecar, "/v1.0/bindings/nope", &json!({"operation": "get"}));
    assert_eq!(
        body["message"],
        "error invoking output binding nope: couldn't find output binding nope"
    );
    let (_, _, body) = post(sidecar, "/v1.0/bindings/web", &json!({"data": 1}));
    assert_eq!(
        body["message"],
        "error invoking output binding web: operation field is missing from request"
    );
    let (_, _, body) = post(sidecar, "/v1.0/bindings/cron", &json!({"operation": "get"}));
    assert_eq!(
        body["message"],
        "error invoking output binding cron: couldn't find output binding cron"
    );
    let bad = http_request_with(sidecar, "POST", "/v1.0/bindings/web", "{", &[]).unwrap();
    assert_eq!(bad.0, 400, "{}", bad.1);

    // The official SDK, over gRPC: its data passes as it is.
    let app_port = up.ps()["apps"][0]["port"].as_u64().unwrap() as u16;
    let (status, _, body) = post(
        app_port,
        "/sdk/web",
        &json!({"operation": "put", "data": "raw", "metadata": {"path": "/y"},
            "traceparent": "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"}),
    );
    assert_eq!(status, 200, "{body}\n{}", up.output());
    assert_eq!(body["data"], r#"{"made":"PUT /base/y"}"#);
    assert_eq!(body["metadata"]["statusCode"], "201");
    let got = upstream.lock().unwrap().last().cloned().unwrap();
    assert_eq!(got.body, "\"raw\"");
    // The call's gRPC metadata reached the binding, as daprd copies it.
    assert_eq!(
        got.header("traceparent"),
        Some("00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01")
    );
}

fn http_get_app(up: &crate::up::Up) -> (u16, String) {
    let port = up.ps()["apps"][0]["port"].as_u64().unwrap() as u16;
    http_get(port, "/seen").unwrap_or_default()
}

/// A bad schedule is an error where it is written.
#[test]
fn a_bad_cron_schedule_is_a_located_error() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir(dir.path().join("resources")).unwrap();
    std::fs::write(
        dir.path().join("resources/cron.yaml"),
        "apiVersion: dapr.io/v1alpha1\nkind: Component\nmetadata:\n  name: cron\nspec:\n  type: bindings.cron\n  version: v1\n  metadata:\n    - name: schedule\n      value: \"*/5 * *\"\n",
    )
    .unwrap();
    std::fs::write(
        dir.path().join("daca.yaml"),
        "name: bad\nresources: ./resources\napps:\n  - id: lab\n    command: [python3]\n",
    )
    .unwrap();
    let out = crate::cli::run(&["validate", "-d", dir.path().to_str().unwrap()]);
    let stderr = crate::cli::text(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains("invalid schedule format '*/5 * *'"),
        "{stderr}"
    );
    assert!(stderr.contains("cron.yaml:9:7"), "{stderr}");
}

/// A gRPC app (the SDK's `dapr.ext.grpc.App`): the cron binding reaches it through
/// `ListInputBindings` and `OnBindingEvent`, a job through `OnJobEvent`.
#[test]
fn a_grpc_app_reads_the_cron_binding_and_takes_its_jobs() {
    if !have("uv") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    std::fs::copy(
        repo().join("tests/fixtures/bindings/grpc_app.py"),
        dir.path().join("grpc_app.py"),
    )
    .unwrap();
    std::fs::create_dir(dir.path().join("resources")).unwrap();
    std::fs::write(
        dir.path().join("resources/cron.yaml"),
        "apiVersion: dapr.io/v1alpha1\nkind: Component\nmetadata:\n  name: cron\nspec:\n  type: bindings.cron\n  version: v1\n  metadata:\n    - name: schedule\n      value: \"@every 1s\"\n",
    )
    .unwrap();
    // Outside the project: a write in the app's folder would reload it.
    let out = tempfile::tempdir().unwrap();
    let seen = out.path().join("seen.jsonl");
    let (app, sidecar) = (free_port(), free_port());
    let project = repo().join("examples/pubsub/apps");
    let manifest = format!(
        "name: grpc-bindings\nnetwork: host\nresources: ./resources\nredis: {{ provider: embedded }}\napps:\n  - id: lab\n    command: [uv, run, --project, \"{}\", python, grpc_app.py]\n    port: {app}\n    app_protocol: grpc\n    dapr_http_port: {sidecar}\n    env: {{ SEEN: \"{}\" }}\n",
        project.display(),
        seen.display()
    );
    std::fs::write(dir.path().join("daca.yaml"), manifest).unwrap();
    let up = crate::up::Up::start(dir.path(), None);
    up.wait_output("all 1 app(s) ready", Duration::from_secs(90));
    let job = http_request_with(
        sidecar,
        "POST",
        "/v1.0/jobs/ping",
        r#"{"dueTime":"0s","data":"hi"}"#,
        &[],
    );
    assert_eq!(job.map(|r| r.0), Some(204));
    let lines = || -> Vec<Value> {
        std::fs::read_to_string(&seen)
            .unwrap_or_default()
            .lines()
            .filter_map(|l| serde_json::from_str(l).ok())
            .collect()
    };
    let done = || {
        let all = lines();
        all.iter().filter(|l| l["kind"] == "cron").count() >= 2
            && all.iter().any(|l| l["kind"] == "job")
    };
    assert!(
        wait_until(Duration::from_secs(15), done),
        "{:?}\n{}",
        lines(),
        up.output()
    );
    let job = lines().into_iter().find(|l| l["kind"] == "job").unwrap();
    assert_eq!(job["name"], "ping");
    assert!(job["data"].as_str().unwrap().contains("hi"), "{job}");
    assert!(
        up.output()
            .contains("lab: input binding cron (cron, Local) → OnBindingEvent")
    );
}
