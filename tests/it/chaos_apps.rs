//! Faults of the apps daca runs, against a real `daca up`: one crash-looping, one whose port
//! another process takes, one subscriber taking 30 s per event.

use std::collections::BTreeSet;
use std::time::{Duration, Instant};

use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;

use crate::chaos_services::{app, delivered, publish};
use crate::common::{free_port, have, http_request_waiting, repo, serial, wait_until};
use crate::up::Up;

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

fn rss_kib(pid: u32) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .unwrap()
        .lines()
        .find_map(|line| line.strip_prefix("VmRSS:"))
        .and_then(|kib| kib.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap()
}

#[test]
fn a_subscriber_taking_30_s_per_event_slows_no_other_and_holds_no_backlog_in_memory() {
    if !have("redis-server") || !have("python3") {
        return;
    }
    let _serial = serial();
    let project = tempfile::tempdir().unwrap();
    let outputs = tempfile::tempdir().unwrap();
    let (fast_out, slow_out) = (outputs.path().join("fast"), outputs.path().join("slow"));
    let script = repo().join("tests/fixtures/apps/subscriber.py");
    let (fast_port, slow_port, sidecar) = (free_port(), free_port(), free_port());
    let app = |id: &str, port: u16, out: &std::path::Path, delay: &str, sidecar: String| {
        format!(
            "  - id: {id}\n    command: [python3, \"{}\", \"{port}\", \"{}\", \"{delay}\"]\n    port: {port}\n{sidecar}    dapr_grpc_port: {}\n",
            script.display(),
            out.display(),
            free_port()
        )
    };
    std::fs::write(
        project.path().join("daca.yaml"),
        format!(
            "name: chaosslow\nredis: {{ provider: redis-server, port: {} }}\napps:\n{}{}",
            free_port(),
            app(
                "fast",
                fast_port,
                &fast_out,
                "0",
                format!("    dapr_http_port: {sidecar}\n")
            ),
            app("slow", slow_port, &slow_out, "30", String::new()),
        ),
    )
    .unwrap();
    let up = Up::start(project.path(), None);
    up.wait_output("app(s) ready", Duration::from_secs(30));
    let publish_many = |from: u32, to: u32| {
        for n in from..to {
            let (path, body) = publish(n);
            let answer = crate::common::http_request(sidecar, "POST", &path, &body);
            assert_eq!(answer.map(|(s, _)| s), Some(204));
        }
    };
    let started = Instant::now();
    publish_many(0, 200);
    let all: BTreeSet<u32> = (0..200).collect();
    assert!(
        wait_until(Duration::from_secs(15), || delivered(&fast_out) == all),
        "the fast subscriber got {} of 200\n{}",
        delivered(&fast_out).len(),
        up.output()
    );
    eprintln!(
        "MEASURED: 200 events to the fast subscriber in {:?}",
        started.elapsed()
    );
    let before = rss_kib(up.pid());
    publish_many(200, 3200);
    assert!(wait_until(Duration::from_secs(30), || delivered(&fast_out)
        .len()
        == 3200));
    let grown = rss_kib(up.pid()).saturating_sub(before);
    eprintln!(
        "MEASURED: daca's RSS grew {grown} KiB over 3,000 events the slow subscriber could not take"
    );
    assert!(grown < 30 * 1024, "RSS grew {grown} KiB");
    // Still within its first events, ten (the concurrency) at a time.
    assert!(
        delivered(&slow_out).is_empty(),
        "{:?}",
        delivered(&slow_out)
    );
}
