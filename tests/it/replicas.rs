//! `replicas:`: an app run as several instances, each in its own pod with its own sidecar,
//! all with one app-id, as a Deployment's replicas under Dapr.

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use serde_json::Value;

use crate::common::{have, http_get, http_request, repo, wait_until};

fn json(port: u16, method: &str, path: &str, body: &str) -> Value {
    let (status, text) = http_request(port, method, path, body).unwrap_or_default();
    assert!(status < 300, "{method} {port}{path}: {status} {text}");
    serde_json::from_str(&text).unwrap_or(Value::Null)
}

fn project(python: &std::path::Path, redis_port: u16) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    std::fs::copy(
        repo().join("tests/fixtures/replicas/main.py"),
        dir.path().join("main.py"),
    )
    .unwrap();
    let manifest = format!(
        "name: replicas\nnetwork: pod\nredis: {{ provider: redis-server, port: {redis_port} }}\napps:\n  - id: work\n    command: [\"{}\", -m, uvicorn, \"main:app\", --host, 0.0.0.0, --port, \"8000\"]\n    port: 8000\n    health: /healthz\n    replicas: 3\n",
        python.display()
    );
    std::fs::write(dir.path().join("daca.yaml"), manifest).unwrap();
    dir
}

/// Three instances: invocation turns through them, one consumer group spreads a topic's
/// events over them (each event once), actors are placed on each as a host (an id stays on
/// one), state is the app's; an edit of `replicas:` stops only the dropped instance, and
/// `daca up --replicas 1` runs one.
#[test]
fn three_replicas_share_one_app_id() {
    if !have("pasta") || !have("redis-server") {
        return;
    }
    let Some(python) = crate::actors::sdk("1.15.0") else {
        return;
    };
    let _serial = crate::common::serial();
    let redis_port = crate::common::free_port();
    let dir = project(&python, redis_port);
    let up = crate::up::Up::start(dir.path(), None);
    up.wait_output("all 3 app(s) ready", Duration::from_secs(60));
    let ps = up.ps();
    let names: Vec<&str> = ps["apps"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["work", "work-2", "work-3"], "{ps}");
    assert_eq!(ps["apps"][2]["instance_of"], "work", "{ps}");
    let host_port = |n: usize| ps["apps"][n]["pod"]["host_port"].as_u64().unwrap() as u16;
    let sidecar = |n: usize| ps["apps"][n]["sidecar"]["http"].as_u64().unwrap() as u16;
    assert_eq!(host_port(0), 8000, "{ps}");
    assert_eq!(sidecar(0), 3500, "{ps}");
    let pid_of = |n: usize| {
        json(host_port(n), "GET", "/who", "")["pid"]
            .as_u64()
            .unwrap()
    };
    let pids: BTreeSet<u64> = (0..3).map(pid_of).collect();
    assert_eq!(pids.len(), 3, "three processes: {pids:?}");
    for n in 0..3 {
        assert_eq!(json(host_port(n), "GET", "/who", "")["app_id"], "work");
    }

    // Invocation of the app-id turns through its instances.
    let invoked: BTreeSet<u64> = (0..9)
        .map(|_| {
            json(3500, "GET", "/v1.0/invoke/work/method/who", "")["pid"]
                .as_u64()
                .unwrap()
        })
        .collect();
    assert_eq!(invoked, pids, "{}", up.output());

    // One consumer group: each event reaches exactly one instance.
    for n in 0..30 {
        let body = format!("{{\"n\":{n}}}");
        let (status, _) = http_request(3500, "POST", "/v1.0/publish/pubsub/work", &body).unwrap();
        assert_eq!(status, 204);
    }
    let received = || -> Vec<Vec<u64>> {
        (0..3)
            .map(|n| {
                let got = json(host_port(n), "GET", "/received", "");
                got["received"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .map(|v| v.as_u64().unwrap())
                    .collect()
            })
            .collect()
    };
    let all_in = || received().iter().map(Vec::len).sum::<usize>() >= 30;
    assert!(
        wait_until(Duration::from_secs(20), all_in),
        "{:?}",
        received()
    );
    std::thread::sleep(Duration::from_millis(300));
    let got = received();
    let mut every: Vec<u64> = got.iter().flatten().copied().collect();
    every.sort_unstable();
    assert_eq!(
        every,
        (0..30).collect::<Vec<u64>>(),
        "each event once: {got:?}"
    );
    assert!(got.iter().filter(|g| !g.is_empty()).count() >= 2, "{got:?}");

    // Actors: each instance a host; an id always answers from the same one.
    let mut hosts: BTreeMap<String, u64> = BTreeMap::new();
    for round in 0..2 {
        for id in 0..24 {
            let path = format!("/v1.0/actors/Counter/c{id}/method/hit");
            let pid = json(sidecar(round), "PUT", &path, "")["pid"]
                .as_u64()
                .unwrap();
            let first = *hosts.entry(format!("c{id}")).or_insert(pid);
            assert_eq!(first, pid, "c{id} moved\n{}", up.output());
        }
    }
    let used: BTreeSet<u64> = hosts.values().copied().collect();
    assert!(used.len() >= 2, "24 ids on {used:?}");

    // State saved through one instance's sidecar is the app's, read through another's.
    let saved = http_request(
        sidecar(1),
        "POST",
        "/v1.0/state/statestore",
        r#"[{"key":"k","value":"v"}]"#,
    );
    assert_eq!(saved.map(|s| s.0), Some(204));
    assert_eq!(
        http_get(sidecar(2), "/v1.0/state/statestore/k").map(|r| r.1),
        Some("\"v\"".into())
    );
    let redis = std::process::Command::new("redis-cli")
        .args(["-p", &redis_port.to_string(), "HGET", "work||k", "data"])
        .output()
        .unwrap();
    assert_eq!(crate::cli::text(&redis.stdout), "\"v\"\n");

    // `daca logs work` has every instance's lines; a restart of `work` restarts each.
    let logs = crate::cli::run(&["logs", "work", "-d", dir.path().to_str().unwrap()]);
    let logs = crate::cli::text(&logs.stdout);
    for name in ["work", "work-2", "work-3"] {
        assert!(
            logs.contains(&format!("{name:<6} | INFO:")),
            "{name} in\n{logs}"
        );
    }
    let control = crate::dashboard::control_port(dir.path());
    let headers = [("x-daca", "1")];
    let restart =
        crate::common::http_request_with(control, "POST", "/v1/apps/work/restart", "", &headers);
    assert_eq!(restart.map(|r| r.0), Some(200));
    let restarted = || {
        let ps = up.ps();
        (0..3).all(|n| ps["apps"][n]["restarts"] == 1 && ps["apps"][n]["state"] == "ready")
    };
    assert!(
        wait_until(Duration::from_secs(30), restarted),
        "{}",
        up.ps()
    );
    let pids: BTreeSet<u64> = (0..3).map(pid_of).collect();

    // Two replicas: only the third stops.
    let manifest = std::fs::read_to_string(dir.path().join("daca.yaml")).unwrap();
    std::fs::write(
        dir.path().join("daca.yaml"),
        manifest.replace("replicas: 3", "replicas: 2"),
    )
    .unwrap();
    up.wait_output("stopping work-3", Duration::from_secs(20));
    let two = || up.ps()["apps"].as_array().map(Vec::len) == Some(2);
    assert!(wait_until(Duration::from_secs(20), two), "{}", up.output());
    assert_eq!(
        up.ps()["apps"][0]["restarts"],
        1,
        "the first instance ran on"
    );
    assert!(pids.contains(&pid_of(0)));
    let mut up = up;
    up.stop_cleanly();

    let one = crate::up::Up::start_flags(dir.path(), &["--replicas", "1"]);
    one.wait_output("all 1 app(s) ready", Duration::from_secs(60));
    assert_eq!(one.ps()["apps"].as_array().map(Vec::len), Some(1));
}
