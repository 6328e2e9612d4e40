//! The supervisor with real child processes: start, output, crash and backoff, process-group
//! stop, SIGKILL after the grace period, readiness probes.

use std::sync::Arc;
use std::time::Duration;

use daca::logs::LogBus;
use daca::manifest::{AppId, RestartPolicy};
use daca::runtime::process::ProcessRuntime;
use daca::runtime::{LaunchSpec, ProcessLaunch};
use daca::supervisor::{self, AppHandle, AppState, Probe, Supervisor, Unit, UnitSpec};

use crate::common::{free_port, group_alive, wait_until_async};

fn shell(name: &str, script: &str) -> UnitSpec {
    UnitSpec {
        unit: Unit::App(AppId::parse(name).unwrap()),
        name: name.into(),
        launch: LaunchSpec::Process(ProcessLaunch {
            program: "sh".into(),
            args: vec!["-c".into(), script.into()],
            dir: std::env::temp_dir(),
            env: std::env::vars().collect(),
            warm: false,
            pod: None,
        }),
        probe: Probe::None,
        restart: RestartPolicy::OnFailure,
        grace: Duration::from_secs(5),
        startup_timeout: Duration::from_secs(10),
    }
}

/// Spawns and starts one unit.
async fn run(unit: UnitSpec) -> (Supervisor, AppHandle, Arc<LogBus>) {
    let logs = LogBus::new(1000);
    let sup = Supervisor::new(Arc::new(ProcessRuntime), logs.clone());
    let handle = sup.spawn(unit);
    handle.start().await;
    (sup, handle, logs)
}

fn program(unit: &mut UnitSpec) -> &mut String {
    match &mut unit.launch {
        LaunchSpec::Process(process) => &mut process.program,
        LaunchSpec::Container(_) => unreachable!("a shell unit"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn output_lines_reach_the_log_bus_with_their_stream() {
    let (_sup, handle, logs) = run(shell(
        "talker",
        "echo out-line; echo err-line >&2; sleep 30",
    ))
    .await;
    assert!(handle.wait_ready(Duration::from_secs(5)).await);
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
    handle.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_crashing_app_is_restarted_with_backoff_and_its_exit_code_kept() {
    let (_sup, handle, _) = run(shell("crasher", "sleep 0.1; exit 3")).await;
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
    handle.shutdown().await;
    assert_eq!(handle.status().state, AppState::Stopped);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stop_ends_the_whole_process_group() {
    let (_sup, handle, _) = run(shell("family", "sleep 300 & sleep 300 & wait")).await;
    assert!(handle.wait_ready(Duration::from_secs(5)).await);
    let pgid = handle.status().pid.unwrap();
    assert!(group_alive(pgid));
    handle.shutdown().await;
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
    let (_sup, handle, logs) = run(unit).await;
    // SIGTERM must arrive after the trap is set, or the shell would simply die of it.
    assert!(
        wait_until_async(Duration::from_secs(5), || !logs
            .recent(|l| l.line == "trapped")
            .is_empty())
        .await
    );
    let pgid = handle.status().pid.unwrap();
    let started = std::time::Instant::now();
    handle.shutdown().await;
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
    let (sup, server_handle, _) = run(server).await;
    let client = sup.spawn(shell("client", "sleep 30"));
    client.start_after(vec![server_handle.clone()]).await;
    assert!(client.wait_ready(Duration::from_secs(10)).await);
    let server = server_handle.status();
    assert_eq!(server.state, AppState::Ready);
    assert!(server.ready_after_ms.unwrap() >= 300);
    assert!(
        client.status().started_at_ms.unwrap()
            >= server.started_at_ms.unwrap() + server.ready_after_ms.unwrap()
    );
    supervisor::shutdown(&[client, server_handle]).await;
    sup.closed().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_missing_program_fails_with_its_name() {
    let mut unit = shell("ghost", "");
    *program(&mut unit) = "definitely-not-a-program-daca".into();
    let (_sup, handle, _) = run(unit).await;
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
    handle.shutdown().await;
}
