//! The supervisor's state machine against the recording fake runtime. Time is paused, so
//! grace periods and backoff delays pass instantly and deterministically.

use std::sync::Arc;
use std::time::Duration;

use super::*;
use crate::manifest::AppId;
use crate::runtime::ProcessLaunch;
use crate::runtime::fake::FakeRuntime;

fn unit(name: &str) -> UnitSpec {
    UnitSpec {
        unit: Unit::App(AppId::parse(name).unwrap()),
        name: name.into(),
        launch: LaunchSpec::Process(ProcessLaunch {
            program: "x".into(),
            args: vec![],
            dir: "/".into(),
            env: vec![],
            warm: false,
            pod: None,
        }),
        probe: Probe::None,
        restart: RestartPolicy::OnFailure,
        grace: Duration::from_secs(5),
        startup_timeout: Duration::from_secs(60),
    }
}

fn supervisor(fake: &FakeRuntime) -> Supervisor {
    Supervisor::new(Arc::new(fake.clone()), LogBus::new(16))
}

async fn settle() {
    for _ in 0..20 {
        tokio::task::yield_now().await;
    }
}

/// Spawns and starts one unit with no dependencies.
async fn started(sup: &Supervisor, spec: UnitSpec) -> AppHandle {
    let handle = sup.spawn(spec);
    handle.start().await;
    handle
}

#[tokio::test(start_paused = true)]
async fn starts_in_dependency_order_and_stops_in_reverse() {
    let fake = FakeRuntime::default();
    let sup = supervisor(&fake);
    let (db, api, web) = (
        sup.spawn(unit("db")),
        sup.spawn(unit("api")),
        sup.spawn(unit("web")),
    );
    web.start_after(vec![api.clone()]).await;
    api.start_after(vec![db.clone()]).await;
    db.start_after(vec![]).await;
    let all = [db.clone(), api.clone(), web.clone()];
    assert!(wait_all_ready(&all, Duration::from_secs(1)).await);
    shutdown(&[web, api, db]).await;
    assert_eq!(
        fake.calls(),
        [
            "launch db",
            "launch api",
            "launch web",
            "terminate 3",
            "terminate 2",
            "terminate 1"
        ]
    );
    assert!(all.iter().all(|h| h.status().state == AppState::Stopped));
    sup.closed().await;
}

#[tokio::test(start_paused = true)]
async fn a_crash_restarts_with_growing_delays_and_is_called_a_loop() {
    let fake = FakeRuntime::default();
    let sup = supervisor(&fake);
    let api = started(&sup, unit("api")).await;
    assert!(api.wait_ready(Duration::from_secs(1)).await);
    let mut delays = Vec::new();
    for pid in 1..=5 {
        fake.exit(pid, 1);
        settle().await;
        let status = api.status();
        assert_eq!(status.state, AppState::BackingOff);
        assert_eq!(status.last_exit.unwrap().code, Some(1));
        let before = tokio::time::Instant::now();
        assert!(api.wait_ready(Duration::from_secs(60)).await);
        delays.push(before.elapsed().as_millis());
    }
    assert_eq!(delays, [250, 500, 1000, 2000, 4000]);
    assert_eq!(api.status().restarts, 5);
    fake.exit(6, 1);
    settle().await;
    assert!(api.status().message.unwrap().starts_with("crash loop"));
}

#[tokio::test(start_paused = true)]
async fn a_clean_exit_is_not_restarted_under_on_failure() {
    let fake = FakeRuntime::default();
    let sup = supervisor(&fake);
    let job = started(&sup, unit("job")).await;
    settle().await;
    fake.exit(1, 0);
    tokio::time::sleep(Duration::from_secs(60)).await;
    assert_eq!(job.status().state, AppState::Exited);
    // The group is SIGKILLed after the leader exits, so nothing it left behind keeps a port.
    assert_eq!(fake.calls(), ["launch job", "kill 1"]);
}

#[tokio::test(start_paused = true)]
async fn a_process_that_ignores_sigterm_is_killed_after_the_grace_period() {
    let fake = FakeRuntime::default();
    fake.ignore_sigterm("api");
    let sup = supervisor(&fake);
    let api = started(&sup, unit("api")).await;
    settle().await;
    let before = tokio::time::Instant::now();
    shutdown(std::slice::from_ref(&api)).await;
    assert_eq!(before.elapsed(), Duration::from_secs(5));
    assert_eq!(fake.calls(), ["launch api", "terminate 1", "kill 1"]);
    assert_eq!(api.status().last_exit.unwrap().signal, Some(9));
}

#[tokio::test(start_paused = true)]
async fn dependents_give_up_when_a_dependency_never_starts() {
    let fake = FakeRuntime::default();
    fake.make_missing("db");
    let sup = supervisor(&fake);
    let (db, api) = (sup.spawn(unit("db")), sup.spawn(unit("api")));
    db.start_after(vec![]).await;
    api.start_after(vec![db.clone()]).await;
    settle().await;
    assert_eq!(db.status().state, AppState::Failed);
    let status = api.status();
    assert_eq!(status.state, AppState::Failed);
    let message = status.message.as_ref().unwrap();
    assert!(
        message.contains("its dependency `db` is failed (`x` was not found"),
        "{message}"
    );
    assert_eq!(fake.calls(), ["launch db"]);
}

#[tokio::test(start_paused = true)]
async fn restart_stops_then_starts_and_counts() {
    let fake = FakeRuntime::default();
    let sup = supervisor(&fake);
    let api = started(&sup, unit("api")).await;
    settle().await;
    api.restart().await;
    assert_eq!(fake.calls(), ["launch api", "terminate 1", "launch api"]);
    assert_eq!(api.status().restarts, 1);
    assert_eq!(api.status().pid, Some(2));
    api.stop().await;
    assert_eq!(api.status().state, AppState::Stopped);
}

#[tokio::test(start_paused = true)]
async fn a_reload_kills_at_once_unless_given_a_grace() {
    let fake = FakeRuntime::default();
    let sup = supervisor(&fake);
    let api = started(&sup, unit("api")).await;
    settle().await;
    api.reload(Duration::ZERO).await;
    assert_eq!(fake.calls(), ["launch api", "kill 1", "launch api"]);
    api.reload(Duration::from_secs(2)).await;
    assert_eq!(fake.calls()[3..], ["terminate 2", "launch api"]);
    assert_eq!(api.status().restarts, 2);
}

#[tokio::test(start_paused = true)]
async fn a_dependency_that_never_gets_ready_times_out_naming_its_probe() {
    let fake = FakeRuntime::default();
    let mut db = unit("db");
    db.probe = Probe::Tcp(1); // nothing listens on port 1
    db.startup_timeout = Duration::from_secs(3);
    let sup = supervisor(&fake);
    let db = started(&sup, db).await;
    let api = sup.spawn(unit("api"));
    api.start_after(vec![db.clone()]).await;
    tokio::time::sleep(Duration::from_secs(4)).await;
    settle().await;
    let status = api.status();
    assert_eq!(status.state, AppState::Failed);
    let message = status.message.as_ref().unwrap();
    assert!(
        message
            .contains("`db` was not ready after 3 s (waited for a TCP connection to 127.0.0.1:1)"),
        "{message}"
    );
    assert_eq!(fake.calls(), ["launch db"]);
}

#[tokio::test(start_paused = true)]
async fn a_shutdown_while_waiting_for_dependencies_never_launches() {
    let fake = FakeRuntime::default();
    let sup = supervisor(&fake);
    let db = sup.spawn(unit("db"));
    let api = sup.spawn(unit("api"));
    api.start_after(vec![db.clone()]).await;
    api.shutdown().await;
    db.start().await;
    settle().await;
    assert_eq!(
        fake.calls(),
        ["launch db"],
        "api's wait ended with its actor"
    );
    db.shutdown().await;
    sup.closed().await;
}

#[tokio::test(start_paused = true)]
async fn an_update_applies_at_the_next_start_without_a_restart() {
    let fake = FakeRuntime::default();
    let sup = supervisor(&fake);
    let api = started(&sup, unit("api")).await;
    settle().await;
    let mut changed = unit("api");
    changed.grace = Duration::from_secs(1);
    api.update(changed).await;
    assert_eq!(fake.calls(), ["launch api"], "the process was left alone");
    assert_eq!(api.spec().grace, Duration::from_secs(1));
}
