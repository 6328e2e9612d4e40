//! The supervisor with real child processes: start, output, crash and backoff, process-group
//! stop, SIGKILL after the grace period, readiness probes.

use std::sync::Arc;
use std::time::Duration;

use daca::logs::LogBus;
use daca::manifest::RestartPolicy;
use daca::runtime::LaunchSpec;
use daca::runtime::process::ProcessRuntime;
use daca::supervisor::{AppState, Probe, Supervisor, UnitSpec};

use crate::common::{free_port, group_alive, wait_until_async};

fn shell(name: &str, script: &str) -> UnitSpec {
    UnitSpec {
        launch: LaunchSpec {
            name: name.into(),
            program: "sh".into(),
            args: vec!["-c".into(), script.into()],
            dir: std::env::temp_dir(),
            env: std::env::vars().collect(),
            container: None,
        },
        probe: Probe::None,
        restart: RestartPolicy::OnFailure,
        grace: Duration::from_secs(5),
        startup_timeout: Duration::from_secs(10),
        depends_on: vec![],
    }
}

fn run(units: Vec<UnitSpec>) -> (Supervisor, Arc<LogBus>) {
    let logs = LogBus::new(1000);
    (
        Supervisor::new(units, Arc::new(ProcessRuntime), logs.clone()),
        logs,
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn output_lines_reach_the_log_bus_with_their_stream() {
    let (sup, logs) = run(vec![shell(
        "talker",
        "echo out-line; echo err-line >&2; sleep 30",
    )]);
    sup.start_all();
    assert!(
        sup.handle("talker")
            .unwrap()
            .wait_ready(Duration::from_secs(5))
            .await
    );
    let found = || {
        let lines = logs.recent(|l| l.source == "talker");
        lines
            .iter()
            .any(|l| l.line == "out-line" && l.stream == daca::logs::Stream::Stdout)
            && lines
                .iter()
                .any(|l| l.line == "err-line" && l.stream == daca::logs::Stream::Stderr)
    };
    assert!(wait_until_async(Duration::from_secs(5), found).await);
    sup.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_crashing_app_is_restarted_with_backoff_and_its_exit_code_kept() {
    let (sup, _) = run(vec![shell("crasher", "sleep 0.1; exit 3")]);
    sup.start_all();
    let handle = sup.handle("crasher").unwrap().clone();
    let restarted_twice = || handle.status().restarts >= 2;
    let started = std::time::Instant::now();
    assert!(wait_until_async(Duration::from_secs(10), restarted_twice).await);
    // 250 ms then 500 ms of backoff, plus two 100 ms runs
    assert!(
        started.elapsed() >= Duration::from_millis(850),
        "{:?}",
        started.elapsed()
    );
    let status = handle.status();
    assert_eq!(status.last_exit.unwrap().code, Some(3));
    sup.shutdown().await;
    assert_eq!(handle.status().state, AppState::Stopped);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stop_ends_the_whole_process_group() {
    let (sup, _) = run(vec![shell("family", "sleep 300 & sleep 300 & wait")]);
    sup.start_all();
    let handle = sup.handle("family").unwrap().clone();
    assert!(handle.wait_ready(Duration::from_secs(5)).await);
    let pgid = handle.status().pid.unwrap();
    assert!(group_alive(pgid));
    sup.shutdown().await;
    assert!(!group_alive(pgid), "a child of the app survived the stop");
    assert_eq!(handle.status().last_exit.unwrap().signal, Some(15));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_process_ignoring_sigterm_is_killed_after_the_grace_period() {
    let mut unit = shell(
        "stubborn",
        "trap '' TERM; echo trapped; while true; do sleep 0.05; done",
    );
    unit.grace = Duration::from_millis(400);
    let (sup, logs) = run(vec![unit]);
    sup.start_all();
    let handle = sup.handle("stubborn").unwrap().clone();
    // SIGTERM must arrive after the trap is set, or the shell would simply die of it.
    assert!(
        wait_until_async(Duration::from_secs(5), || !logs
            .recent(|l| l.line == "trapped")
            .is_empty())
        .await
    );
    let pgid = handle.status().pid.unwrap();
    let started = std::time::Instant::now();
    sup.shutdown().await;
    assert!(started.elapsed() >= Duration::from_millis(400));
    assert!(started.elapsed() < Duration::from_secs(3));
    assert!(wait_until_async(Duration::from_secs(2), || !group_alive(pgid)).await);
    assert_eq!(handle.status().last_exit.unwrap().signal, Some(9));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dependents_start_after_the_http_probe_passes() {
    let port = free_port();
    let mut server = shell(
        "server",
        &format!("sleep 0.3; exec python3 -m http.server {port} --bind 127.0.0.1"),
    );
    server.probe = Probe::Http {
        port,
        path: "/".into(),
    };
    let mut client = shell("client", "sleep 30");
    client.depends_on = vec!["server".into()];
    let (sup, _) = run(vec![server, client]);
    sup.start_all();
    let client = sup.handle("client").unwrap().clone();
    assert!(client.wait_ready(Duration::from_secs(10)).await);
    let server = sup.handle("server").unwrap().status();
    assert_eq!(server.state, AppState::Ready);
    assert!(server.ready_after_ms.unwrap() >= 300);
    assert!(
        client.status().started_at_ms.unwrap()
            >= server.started_at_ms.unwrap() + server.ready_after_ms.unwrap()
    );
    sup.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_missing_program_fails_with_its_name() {
    let mut unit = shell("ghost", "");
    unit.launch.program = "definitely-not-a-program-daca".into();
    let (sup, _) = run(vec![unit]);
    sup.start_all();
    let handle = sup.handle("ghost").unwrap().clone();
    assert!(
        wait_until_async(Duration::from_secs(5), || handle.status().state
            == AppState::Failed)
        .await
    );
    assert!(
        handle
            .status()
            .message
            .unwrap()
            .contains("`definitely-not-a-program-daca` was not found")
    );
    sup.shutdown().await;
}
