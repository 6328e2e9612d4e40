//! The supervisor's state machine against the recording fake runtime. Time is paused, so
//! grace periods and backoff delays pass instantly and deterministically.

use std::sync::Arc;
use std::time::Duration;

use super::*;
use crate::runtime::fake::FakeRuntime;

fn unit(name: &str, deps: &[&str]) -> UnitSpec {
    UnitSpec {
        launch: LaunchSpec {
            name: name.into(),
            program: "x".into(),
            args: vec![],
            dir: "/".into(),
            env: vec![],
            container: None,
        },
        probe: Probe::None,
        restart: RestartPolicy::OnFailure,
        grace: Duration::from_secs(5),
        startup_timeout: Duration::from_secs(60),
        depends_on: deps.iter().map(|d| d.to_string()).collect(),
    }
}

fn supervisor(fake: &FakeRuntime, units: Vec<UnitSpec>) -> Supervisor {
    Supervisor::new(units, Arc::new(fake.clone()), LogBus::new(16))
}

async fn settle() {
    for _ in 0..20 {
        tokio::task::yield_now().await;
    }
}

#[tokio::test(start_paused = true)]
async fn starts_in_dependency_order_and_stops_in_reverse() {
    let fake = FakeRuntime::default();
    let sup = supervisor(
        &fake,
        vec![unit("db", &[]), unit("api", &["db"]), unit("web", &["api"])],
    );
    sup.start_all();
    assert!(sup.wait_all_ready(Duration::from_secs(1)).await);
    sup.shutdown().await;
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
    assert!(sup.statuses().iter().all(|s| s.state == AppState::Stopped));
}

#[tokio::test(start_paused = true)]
async fn a_crash_restarts_with_growing_delays_and_is_called_a_loop() {
    let fake = FakeRuntime::default();
    let sup = supervisor(&fake, vec![unit("api", &[])]);
    sup.start_all();
    let api = sup.handle("api").unwrap().clone();
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
    let sup = supervisor(&fake, vec![unit("job", &[])]);
    sup.start_all();
    settle().await;
    fake.exit(1, 0);
    tokio::time::sleep(Duration::from_secs(60)).await;
    assert_eq!(sup.handle("job").unwrap().status().state, AppState::Exited);
    // The group is SIGKILLed after the leader exits, so nothing it left behind keeps a port.
    assert_eq!(fake.calls(), ["launch job", "kill 1"]);
}

#[tokio::test(start_paused = true)]
async fn a_process_that_ignores_sigterm_is_killed_after_the_grace_period() {
    let fake = FakeRuntime::default();
    fake.ignore_sigterm("api");
    let sup = supervisor(&fake, vec![unit("api", &[])]);
    sup.start_all();
    settle().await;
    let before = tokio::time::Instant::now();
    sup.shutdown().await;
    assert_eq!(before.elapsed(), Duration::from_secs(5));
    assert_eq!(fake.calls(), ["launch api", "terminate 1", "kill 1"]);
    assert_eq!(sup.statuses()[0].last_exit.unwrap().signal, Some(9));
}

#[tokio::test(start_paused = true)]
async fn dependents_give_up_when_a_dependency_never_starts() {
    let fake = FakeRuntime::default();
    fake.make_missing("db");
    let sup = supervisor(&fake, vec![unit("db", &[]), unit("api", &["db"])]);
    sup.start_all();
    settle().await;
    let statuses = sup.statuses();
    assert_eq!(statuses[0].state, AppState::Failed);
    assert_eq!(statuses[1].state, AppState::Failed);
    let message = statuses[1].message.as_ref().unwrap();
    assert!(
        message.contains("its dependency `db` is failed (`x` was not found"),
        "{message}"
    );
    assert_eq!(fake.calls(), ["launch db"]);
}

#[tokio::test(start_paused = true)]
async fn restart_stops_then_starts_and_counts() {
    let fake = FakeRuntime::default();
    let sup = supervisor(&fake, vec![unit("api", &[])]);
    sup.start_all();
    settle().await;
    let api = sup.handle("api").unwrap();
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
    let sup = supervisor(&fake, vec![unit("api", &[])]);
    sup.start_all();
    settle().await;
    let api = sup.handle("api").unwrap();
    api.reload(Duration::ZERO).await;
    assert_eq!(fake.calls(), ["launch api", "kill 1", "launch api"]);
    api.reload(Duration::from_secs(2)).await;
    assert_eq!(fake.calls()[3..], ["terminate 2", "launch api"]);
    assert_eq!(api.status().restarts, 2);
}

#[tokio::test(start_paused = true)]
async fn a_dependency_that_never_gets_ready_times_out_naming_its_probe() {
    let fake = FakeRuntime::default();
    let mut db = unit("db", &[]);
    db.probe = Probe::Tcp(1); // nothing listens on port 1
    db.startup_timeout = Duration::from_secs(3);
    let sup = supervisor(&fake, vec![db, unit("api", &["db"])]);
    sup.start_all();
    tokio::time::sleep(Duration::from_secs(4)).await;
    settle().await;
    let api = &sup.statuses()[1];
    assert_eq!(api.state, AppState::Failed);
    let message = api.message.as_ref().unwrap();
    assert!(
        message
            .contains("`db` was not ready after 3 s (waited for a TCP connection to 127.0.0.1:1)"),
        "{message}"
    );
    assert_eq!(fake.calls(), ["launch db"]);
}
