//! Faults of what daca runs, under load, against a real `daca up`: its managed redis-server
//! SIGKILLed while state is saved and events published, then daca itself SIGKILLed.

use std::collections::BTreeSet;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;

use crate::common::{free_port, have, http_request_waiting, repo, serial, wait_until};
use crate::up::Up;

/// One request the load made: when it was sent, how long it took, and its answer.
struct Sent {
    n: u32,
    at: Instant,
    took: Duration,
    answer: Option<(u16, String)>,
}

/// Sends `request(n)` for n = 0, 1, … until `stop`, recording each.
fn load(
    sidecar: u16,
    stop: Arc<AtomicBool>,
    request: impl Fn(u32) -> (String, String) + Send + 'static,
) -> std::thread::JoinHandle<Vec<Sent>> {
    std::thread::spawn(move || {
        let mut sent = Vec::new();
        let mut n = 0;
        while !stop.load(Ordering::Relaxed) {
            let (path, body) = request(n);
            let at = Instant::now();
            let patience = Duration::from_secs(30);
            let answer = http_request_waiting(sidecar, "POST", &path, &body, &[], patience);
            sent.push(Sent {
                n,
                at,
                took: at.elapsed(),
                answer,
            });
            n += 1;
        }
        sent
    })
}

fn acknowledged(sent: &[Sent]) -> BTreeSet<u32> {
    sent.iter()
        .filter(|s| s.answer.as_ref().is_some_and(|(status, _)| *status == 204))
        .map(|s| s.n)
        .collect()
}

fn redis_pid(up: &Up) -> Option<u32> {
    up.ps()["redis"]["status"]["pid"]
        .as_u64()
        .map(|pid| pid as u32)
}

fn save(n: u32) -> (String, String) {
    let body = format!(r#"[{{"key":"k{n}","value":{n}}}]"#);
    ("/v1.0/state/statestore".into(), body)
}

fn publish(n: u32) -> (String, String) {
    (
        "/v1.0/publish/pubsub/load".into(),
        format!(r#"{{"n":{n}}}"#),
    )
}

/// Every failed request of the load was answered, quickly, with Dapr's error body `code`.
fn failed_clearly(sent: &[Sent], code: &str) -> usize {
    let mut failed = 0;
    for s in sent {
        assert!(
            s.took < Duration::from_secs(7),
            "request {} took {:?}",
            s.n,
            s.took
        );
        match &s.answer {
            Some((204, _)) => {}
            Some((500, body)) if body.contains(code) => failed += 1,
            other => panic!("request {}: {other:?}", s.n),
        }
    }
    failed
}

fn unread(sidecar: u16, keys: &BTreeSet<u32>) -> Vec<u32> {
    let patience = Duration::from_secs(10);
    keys.iter()
        .copied()
        .filter(|n| {
            let path = format!("/v1.0/state/statestore/k{n}");
            let answer = http_request_waiting(sidecar, "GET", &path, "", &[], patience);
            answer != Some((200, n.to_string()))
        })
        .collect()
}

fn delivered(out: &std::path::Path) -> BTreeSet<u32> {
    std::fs::read_to_string(out)
        .unwrap_or_default()
        .lines()
        .filter_map(|line| line.parse().ok())
        .collect()
}

#[test]
fn a_killed_redis_comes_back_requests_meanwhile_fail_fast_and_nothing_acknowledged_is_lost() {
    if !have("redis-server") || !have("python3") {
        return;
    }
    let _serial = serial();
    let project = tempfile::tempdir().unwrap();
    let outputs = tempfile::tempdir().unwrap();
    let out = outputs.path().join("delivered.txt");
    let (app_port, sidecar) = (free_port(), free_port());
    std::fs::write(
        project.path().join("daca.yaml"),
        format!(
            "name: chaosredis\nredis: {{ provider: redis-server, port: {}, persistence: always }}\napps:\n  - id: sink\n    command: [python3, \"{}\", \"{app_port}\", \"{}\"]\n    port: {app_port}\n    dapr_http_port: {sidecar}\n    dapr_grpc_port: {}\n",
            free_port(),
            repo().join("tests/fixtures/apps/subscriber.py").display(),
            out.display(),
            free_port()
        ),
    )
    .unwrap();
    let mut up = Up::start(project.path(), None);
    up.wait_output("app(s) ready", Duration::from_secs(30));
    let first = redis_pid(&up).expect("a managed redis-server");
    let redis_port = up.ps()["redis"]["url"]
        .as_str()
        .and_then(|url| url.rsplit(':').next()?.parse::<u16>().ok())
        .expect("the managed Redis's URL");
    let fsync = std::process::Command::new("redis-cli")
        .args([
            "-p",
            &redis_port.to_string(),
            "config",
            "get",
            "appendfsync",
        ])
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).into_owned())
        .unwrap_or_default();
    assert!(fsync.contains("always"), "appendfsync: {fsync}");

    let stop = Arc::new(AtomicBool::new(false));
    let saves = load(sidecar, stop.clone(), save);
    let publishes = load(sidecar, stop.clone(), publish);
    std::thread::sleep(Duration::from_millis(1500));
    let killed = Instant::now();
    kill(Pid::from_raw(first as i32), Signal::SIGKILL).unwrap();
    let back = wait_until(Duration::from_secs(30), || {
        redis_pid(&up).is_some_and(|pid| pid != first)
            && http_request_waiting(
                sidecar,
                "GET",
                "/v1.0/state/statestore/probe",
                "",
                &[],
                Duration::from_secs(5),
            )
            .is_some_and(|(status, _)| status == 204)
    });
    assert!(back, "Redis did not come back\n{}", up.output());
    let recovered = killed.elapsed();
    std::thread::sleep(Duration::from_secs(2));
    stop.store(true, Ordering::Relaxed);
    let (saves, publishes) = (saves.join().unwrap(), publishes.join().unwrap());
    let failed_saves = failed_clearly(&saves, "ERR_STATE_SAVE");
    let failed_publishes = failed_clearly(&publishes, "ERR_PUBSUB_PUBLISH_MESSAGE");
    let (saved, published) = (acknowledged(&saves), acknowledged(&publishes));
    let after_kill = |sent: &[Sent]| {
        sent.iter()
            .filter(|s| s.at > killed && s.answer.as_ref().is_some_and(|a| a.0 == 204))
            .count()
    };
    assert!(after_kill(&saves) > 0 && after_kill(&publishes) > 0);
    eprintln!(
        "MEASURED: Redis SIGKILL → serving again in {recovered:?}; {failed_saves} of {} saves and {failed_publishes} of {} publishes failed meanwhile",
        saves.len(),
        publishes.len()
    );
    assert_eq!(unread(sidecar, &saved), Vec::<u32>::new(), "saves lost");
    let all_delivered = wait_until(Duration::from_secs(30), || {
        published.is_subset(&delivered(&out))
    });
    let arrived = delivered(&out);
    let missing: Vec<_> = published.difference(&arrived).collect();
    assert!(
        all_delivered,
        "acknowledged events not delivered: {missing:?}"
    );

    // daca itself SIGKILLed under load: what it acknowledged is there after the next `up`.
    let stop = Arc::new(AtomicBool::new(false));
    let saves = load(sidecar, stop.clone(), |n| save(100_000 + n));
    std::thread::sleep(Duration::from_millis(1000));
    up.signal(Signal::SIGKILL);
    up.wait_exit(Duration::from_secs(10));
    // Not dropped: its drop runs `daca down`, and the next `up` is to clear what was left.
    std::mem::forget(up);
    stop.store(true, Ordering::Relaxed);
    let saved = acknowledged(&saves.join().unwrap());
    assert!(!saved.is_empty());
    let up = Up::start(project.path(), None);
    up.wait_output("app(s) ready", Duration::from_secs(30));
    let saved: BTreeSet<u32> = saved.iter().map(|n| n + 100_000).collect();
    assert_eq!(
        unread(sidecar, &saved),
        Vec::<u32>::new(),
        "writes acknowledged before daca's SIGKILL lost"
    );
    drop(up);
}

/// The app named `id` in `daca ps --json`.
fn app(up: &Up, id: &str) -> serde_json::Value {
    let ps = up.ps();
    ps["apps"]
        .as_array()
        .and_then(|apps| apps.iter().find(|a| a["name"] == id).cloned())
        .unwrap_or_else(|| panic!("no app {id} in {ps}"))
}

#[test]
fn a_crash_looping_app_is_slowed_down_and_costs_no_other_app() {
    let _serial = serial();
    let project = tempfile::tempdir().unwrap();
    let (steady, looping) = (free_port(), free_port());
    std::fs::write(
        project.path().join("daca.yaml"),
        format!(
            "name: chaosloop\nredis: {{ provider: embedded }}\napps:\n  - id: steady\n    command: [sleep, \"3600\"]\n    dapr_http_port: {steady}\n    dapr_grpc_port: {}\n  - id: looping\n    command: [sh, -c, \"echo starting; exit 3\"]\n    restart: always\n    dapr_http_port: {looping}\n    dapr_grpc_port: {}\n",
            free_port(),
            free_port()
        ),
    )
    .unwrap();
    let up = Up::start(project.path(), None);
    up.wait_output(
        "crash loop: 4 quick exits in a row (last: exit code 3)",
        Duration::from_secs(20),
    );
    let cpu_before = cpu_seconds(up.pid());
    std::thread::sleep(Duration::from_secs(3));
    let status = app(&up, "looping");
    assert_eq!(status["last_exit"]["code"], 3, "{status}");
    let restarts = status["restarts"].as_u64().unwrap();
    // 250 ms, doubling: at most 6 starts in the first 8 s, not hundreds.
    assert!((3..=7).contains(&restarts), "{restarts} restarts: {status}");
    let spent = cpu_seconds(up.pid()) - cpu_before;
    assert!(spent < 1.0, "daca used {spent:.2} s of CPU in 3 s");
    for sidecar in [steady, looping] {
        let saved = http_request_waiting(
            sidecar,
            "POST",
            "/v1.0/state/statestore",
            r#"[{"key":"k","value":1}]"#,
            &[],
            Duration::from_secs(5),
        );
        assert_eq!(saved.map(|(status, _)| status), Some(204));
    }
    assert_eq!(app(&up, "steady")["state"], "ready");
}

/// User and system CPU time of `pid`, in seconds.
fn cpu_seconds(pid: u32) -> f64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap();
    let fields: Vec<&str> = stat
        .rsplit(')')
        .next()
        .unwrap()
        .split_whitespace()
        .collect();
    let ticks: f64 = fields[11].parse::<f64>().unwrap() + fields[12].parse::<f64>().unwrap();
    ticks / 100.0
}

/// A project of one Python app on `network` (`host` or `pod`).
fn web_project(
    network: &str,
    app_port: u16,
    sidecar: u16,
) -> (tempfile::TempDir, tempfile::TempDir) {
    let project = tempfile::tempdir().unwrap();
    let outputs = tempfile::tempdir().unwrap();
    std::fs::write(
        project.path().join("daca.yaml"),
        format!(
            "name: chaosport\nnetwork: {network}\nredis: {{ provider: embedded }}\napps:\n  - id: web\n    command: [python3, \"{}\", \"{app_port}\", \"{}\"]\n    port: {app_port}\n    dapr_http_port: {sidecar}\n    dapr_grpc_port: {}\n",
            repo().join("tests/fixtures/apps/subscriber.py").display(),
            outputs.path().join("out").display(),
            free_port()
        ),
    )
    .unwrap();
    (project, outputs)
}

/// Kills the app, then binds its port on the machine the moment it is free (daca starts the
/// app again 250 ms later); the error, if it never is.
fn squat(up: &Up, app_port: u16) -> Result<std::net::TcpListener, std::io::Error> {
    let pid = app(up, "web")["pid"].as_u64().unwrap() as i32;
    kill(Pid::from_raw(pid), Signal::SIGKILL).unwrap();
    let tried = Instant::now();
    loop {
        match std::net::TcpListener::bind(("127.0.0.1", app_port)) {
            Ok(listener) => return Ok(listener),
            Err(err) if tried.elapsed() > Duration::from_secs(2) => return Err(err),
            Err(_) => std::thread::sleep(Duration::from_millis(1)),
        }
    }
}

#[test]
fn an_app_whose_port_is_taken_waits_says_who_holds_it_and_starts_once_it_is_free() {
    if !have("python3") {
        return;
    }
    let _serial = serial();
    let (app_port, sidecar) = (free_port(), free_port());
    let (project, _outputs) = web_project("host", app_port, sidecar);
    let up = Up::start(project.path(), None);
    up.wait_output("app(s) ready", Duration::from_secs(30));
    let squatter = squat(&up, app_port).unwrap_or_else(|err| panic!("{err}\n{}", up.output()));
    up.wait_output(
        &format!(
            "web: port {app_port} is taken by another process (pid {}",
            std::process::id()
        ),
        Duration::from_secs(10),
    );
    std::thread::sleep(Duration::from_secs(2));
    let status = app(&up, "web");
    assert_eq!(status["state"], "backing-off", "{status}");
    assert_eq!(
        up.output().matches("is taken by another process").count(),
        1,
        "said once"
    );
    // The sidecar still serves; the app's health is its app's.
    assert_eq!(
        crate::common::http_get(sidecar, "/v1.0/metadata").map(|(s, _)| s),
        Some(200)
    );
    drop(squatter);
    assert!(
        wait_until(Duration::from_secs(10), || app(&up, "web")["state"]
            == "ready"),
        "{}",
        up.output()
    );
    let answered = crate::common::http_get(sidecar, "/v1.0/invoke/web/method/anything");
    assert_eq!(answered.map(|(s, _)| s), Some(200));
}

/// In its pod the app's port is the pod's own, and on the machine daca's forwarder holds it
/// throughout: no other process can take it while daca runs.
#[test]
fn in_a_pod_no_other_process_can_take_the_apps_port() {
    if !have("python3") || !have("pasta") {
        return;
    }
    let _serial = serial();
    let (app_port, sidecar) = (free_port(), free_port());
    let (project, _outputs) = web_project("pod", app_port, sidecar);
    let up = Up::start(project.path(), None);
    up.wait_output("app(s) ready", Duration::from_secs(30));
    let squatted = squat(&up, app_port);
    assert_eq!(
        squatted.map(|_| ()).map_err(|e| e.kind()),
        Err(std::io::ErrorKind::AddrInUse)
    );
    assert!(wait_until(
        Duration::from_secs(10),
        || app(&up, "web")["state"] == "ready"
    ));
    let answered = crate::common::http_get(sidecar, "/v1.0/invoke/web/method/anything");
    assert_eq!(answered.map(|(s, _)| s), Some(200));
}
