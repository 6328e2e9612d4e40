//! At-least-once delivery under `daca up`: 5,000 events published while the subscriber is
//! SIGKILLed and restarted three times, and while daca itself is stopped and started again
//! (with events added to the stream while it is down). Every event arrives; duplicates are
//! counted and reported. Also the examples/pubsub project, driven by the official Python SDK.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;

use crate::common::{
    RedisServer, free_port, have, http_get, http_request, repo, serial, wait_until,
};
use crate::up::Up;

const EVENTS: u32 = 5000;

fn publish(sidecar: u16, from: u32, to: u32) {
    for n in from..to {
        let (status, body) = http_request(
            sidecar,
            "POST",
            "/v1.0/publish/pubsub/load",
            &format!(r#"{{"n":{n}}}"#),
        )
        .expect("the sidecar answers");
        assert_eq!(status, 204, "publish {n}: {body}");
    }
}

fn delivered(out: &std::path::Path) -> BTreeMap<u32, u32> {
    let mut counts = BTreeMap::new();
    for line in std::fs::read_to_string(out).unwrap_or_default().lines() {
        if let Ok(n) = line.parse::<u32>() {
            *counts.entry(n).or_insert(0) += 1;
        }
    }
    counts
}

fn subscriber_pid(up: &Up) -> u32 {
    let ps = up.ps();
    match ps["apps"][0]["pid"].as_u64() {
        Some(pid) => pid as u32,
        None => panic!("the subscriber does not run: {ps}\n{}", up.output()),
    }
}

#[test]
fn every_event_arrives_through_subscriber_kills_and_a_daca_restart() {
    if !have("redis-server") || !have("python3") {
        return;
    }
    let redis = RedisServer::start().unwrap();
    let project = tempfile::tempdir().unwrap();
    let (app_port, sidecar) = (free_port(), free_port());
    // Outside the project: a file the app writes in its own folder would reload it.
    let outputs = tempfile::tempdir().unwrap();
    let out = outputs.path().join("delivered.txt");
    let script = repo().join("tests/fixtures/apps/subscriber.py");
    std::fs::write(
        project.path().join("daca.yaml"),
        format!(
            "name: reliability\nredis: {{ url: {} }}\napps:\n  - id: sink\n    command: [python3, \"{}\", \"{app_port}\", \"{}\"]\n    port: {app_port}\n    dapr_http_port: {sidecar}\n    restart: always\n",
            redis.url(),
            script.display(),
            out.display()
        ),
    )
    .unwrap();
    let started = Instant::now();
    let mut up = Up::start(project.path(), None);
    up.wait_output("app(s) ready", Duration::from_secs(30));
    let chunk = EVENTS / 5;
    for round in 0..3u32 {
        publish(sidecar, round * chunk, (round + 1) * chunk);
        let pid = subscriber_pid(&up);
        if let Err(err) = kill(Pid::from_raw(pid as i32), Signal::SIGKILL) {
            panic!("kill {pid}: {err}\n{}\n{}", up.ps(), up.output());
        }
        // Publishing goes on while the subscriber is down; the supervisor restarts it.
        assert!(
            wait_until(Duration::from_secs(30), || {
                let ps = up.ps();
                ps["apps"][0]["state"] == "ready"
                    && ps["apps"][0]["pid"].as_u64() != Some(u64::from(pid))
            }),
            "the subscriber came back\n{}",
            up.output()
        );
    }
    publish(sidecar, 3 * chunk, 4 * chunk);
    // daca stops mid-stream; another publisher adds to the stream meanwhile.
    up.stop_cleanly();
    let mut connection = redis.connection().unwrap();
    for n in 4 * chunk..4 * chunk + 100 {
        let event = format!(
            r#"{{"data":{{"n":{n}}},"datacontenttype":"application/json","id":"x{n}","pubsubname":"pubsub","source":"other","specversion":"1.0","topic":"load","type":"com.dapr.event.sent"}}"#
        );
        let _: String = redis::cmd("XADD")
            .arg("load")
            .arg("*")
            .arg("data")
            .arg(event)
            .arg("metadata")
            .arg("{}")
            .query(&mut connection)
            .unwrap();
    }
    let mut up = Up::start(project.path(), None);
    up.wait_output("app(s) ready", Duration::from_secs(30));
    publish(sidecar, 4 * chunk + 100, EVENTS);
    let all = wait_until(Duration::from_secs(120), || {
        delivered(&out).len() as u32 == EVENTS
    });
    let counts = delivered(&out);
    let missing: Vec<u32> = (0..EVENTS)
        .filter(|n| !counts.contains_key(n))
        .take(20)
        .collect();
    assert!(
        all,
        "{} of {EVENTS} delivered; first missing: {missing:?}\n{}",
        counts.len(),
        up.output()
    );
    let duplicates: u32 = counts.values().map(|c| c - 1).sum();
    println!(
        "reliability: {EVENTS} events, 3 subscriber kills, 1 daca restart: all delivered in {:.1} s, {duplicates} duplicates",
        started.elapsed().as_secs_f64()
    );
    up.signal(Signal::SIGINT);
    up.wait_exit(Duration::from_secs(30));
}

/// examples/pubsub: checkout publishes over HTTP, order-processor subscribes with the SDK's
/// DaprApp, checkout asks it for the status with the SDK's DaprClient.invoke_method (which first
/// waits on /v1.0/healthz/outbound), and audit uses DaprClient over gRPC.
#[test]
fn the_pubsub_example_runs_with_the_official_python_sdk() {
    if !have("uv") || !have("redis-server") {
        return;
    }
    let _serial = serial();
    let dir = repo().join("examples/pubsub");
    let mut up = Up::start(&dir, None);
    up.wait_output("app(s) ready", Duration::from_secs(120));
    let (status, body) = http_request(8001, "POST", "/orders", r#"{"orderId": 7}"#).unwrap();
    assert_eq!(status, 200, "{body}\n{}", up.output());
    let processed = wait_until(Duration::from_secs(20), || {
        http_get(8001, "/orders/7/status").is_some_and(|(s, b)| s == 200 && b.contains("processed"))
    });
    assert!(
        processed,
        "{:?}\n{}",
        http_get(8001, "/orders/7/status"),
        up.output()
    );
    // audit, over gRPC with DaprClient: a transaction and a publish per order, the `audited`
    // event back through its subscription, then get_state and get_metadata.
    let mut audit = None;
    let audited = wait_until(Duration::from_secs(20), || {
        audit = http_get(8003, "/audit/7");
        audit
            .as_ref()
            .is_some_and(|(s, b)| *s == 200 && b.contains(r#""audited":true"#))
    });
    assert!(audited, "{audit:?}\n{}", up.output());
    let (_, body) = audit.unwrap();
    let record: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(
        (&record["order"]["orderId"], &record["last"], &record["app"]),
        (
            &serde_json::json!(7),
            &serde_json::json!("7"),
            &serde_json::json!("audit")
        )
    );
    // The SDK reads Dapr's ErrorInfo reason from the gRPC status details.
    let (status, body) = http_get(8003, "/audit-last?store=nosuch").unwrap();
    assert_eq!(status, 502, "{body}");
    assert!(
        body.contains(r#""error_code":"DAPR_STATE_NOT_FOUND""#)
            && body.contains(r#""status":"INVALID_ARGUMENT""#),
        "{body}"
    );
    let redis_port = up.ps()["redis"]["url"]
        .as_str()
        .and_then(|u| u.rsplit(':').next())
        .and_then(|p| p.parse::<u16>().ok());
    if let Some(port) = redis_port {
        let mut connection = redis::Client::open(format!("redis://127.0.0.1:{port}"))
            .unwrap()
            .get_connection()
            .unwrap();
        let length: u64 = redis::cmd("XLEN")
            .arg("orders")
            .query(&mut connection)
            .unwrap();
        assert!(length >= 1);
    }
    up.stop_cleanly();
}
