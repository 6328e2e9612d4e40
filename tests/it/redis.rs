//! Managed Redis: a real `redis-server` from PATH, and the embedded fallback without one.

use std::sync::Arc;
use std::time::Duration;

use daca::docker::Owner;
use daca::logs::LogBus;
use daca::manifest::{RedisConfig, RedisProvider};
use daca::ports::PortPicker;
use daca::redis::{EngineOffer, RedisError, RedisPlan, plan};
use daca::runtime::process::ProcessRuntime;
use daca::supervisor::{AppState, Probe, Supervisor};

use crate::common::{free_port, group_alive, have};

fn managed(provider: RedisProvider, port: Option<u16>) -> RedisConfig {
    RedisConfig::Managed {
        provider,
        port,
        persistence: daca::manifest::Persistence::EverySecond,
        image: "redis:7-alpine".into(),
    }
}

#[test]
fn without_redis_server_on_path_auto_falls_back_to_embedded() {
    let state = tempfile::tempdir().unwrap();
    let empty = tempfile::tempdir().unwrap();
    let chosen = plan(
        &managed(RedisProvider::Auto, None),
        state.path(),
        Some(empty.path().into()),
        &mut PortPicker::default(),
        None,
    )
    .unwrap();
    assert!(matches!(chosen, RedisPlan::Embedded { .. }), "{chosen:?}");
    assert_eq!(chosen.url(), None);
    assert!(chosen.unit("redis", vec![]).is_none());
}

#[test]
fn asking_for_redis_server_without_one_is_a_clear_error() {
    let state = tempfile::tempdir().unwrap();
    let empty = tempfile::tempdir().unwrap();
    let err = plan(
        &managed(RedisProvider::RedisServer, None),
        state.path(),
        Some(empty.path().into()),
        &mut PortPicker::default(),
        None,
    )
    .unwrap_err();
    assert!(
        err.to_string().contains("apt-get install redis-server"),
        "{err}"
    );
}

#[test]
fn an_external_url_is_never_managed() {
    let config = RedisConfig::External {
        url: "redis://127.0.0.1:7000".into(),
    };
    let chosen = plan(
        &config,
        std::path::Path::new("/tmp"),
        None,
        &mut PortPicker::default(),
        None,
    )
    .unwrap();
    assert_eq!(chosen.url().as_deref(), Some("redis://127.0.0.1:7000"));
    assert!(chosen.unit("redis", vec![]).is_none());
}

#[tokio::test]
async fn redis_server_from_path_runs_persists_and_stops() {
    if !have("redis-server") {
        return;
    }
    let state = tempfile::tempdir().unwrap();
    let port = free_port();
    let chosen = plan(
        &managed(RedisProvider::Auto, Some(port)),
        state.path(),
        std::env::var_os("PATH"),
        &mut PortPicker::default(),
        None,
    )
    .unwrap();
    assert_eq!(chosen.url(), Some(format!("redis://127.0.0.1:{port}")));
    let unit = chosen.unit("redis", std::env::vars().collect()).unwrap();
    let supervisor = Supervisor::new(Arc::new(ProcessRuntime), LogBus::new(100));
    let redis = supervisor.spawn(unit);
    redis.start().await;
    assert!(
        redis.wait_ready(Duration::from_secs(10)).await,
        "{:?}",
        redis.status()
    );
    assert!(Probe::Redis(port).check().await);
    let pid = redis.status().pid.unwrap();
    redis.shutdown().await;
    assert_eq!(redis.status().state, AppState::Stopped);
    assert!(!group_alive(pid));
    assert!(
        state.path().join("redis/appendonlydir").is_dir(),
        "data lives under .daca/redis"
    );
}

#[test]
fn a_busy_fixed_port_is_refused() {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    if !have("redis-server") {
        return;
    }
    let err = plan(
        &managed(RedisProvider::Auto, Some(port)),
        std::path::Path::new("/tmp"),
        std::env::var_os("PATH"),
        &mut PortPicker::default(),
        None,
    )
    .unwrap_err();
    assert!(
        err.to_string()
            .contains(&format!("redis.port {port} is already in use"))
    );
}

/// `auto` with an engine: the local image wins, then redis-server on PATH (no network wait),
/// then a pull; `docker` without an engine is an error that says what to do.
#[test]
fn auto_prefers_what_is_already_on_the_machine() {
    let state = tempfile::tempdir().unwrap();
    let empty = tempfile::tempdir().unwrap();
    let offer = |image_local| EngineOffer {
        owner: Owner::new("p", state.path(), "run"),
        image_local,
    };
    let choose = |provider, path: Option<std::ffi::OsString>, offer: Option<&EngineOffer>| {
        plan(
            &managed(provider, None),
            state.path(),
            path,
            &mut PortPicker::default(),
            offer,
        )
    };
    let local = choose(
        RedisProvider::Auto,
        std::env::var_os("PATH"),
        Some(&offer(true)),
    )
    .unwrap();
    assert!(
        matches!(local, RedisPlan::Container { pull: false, .. }),
        "{local:?}"
    );
    let unit = local.unit("redis", vec![]).unwrap();
    let daca::runtime::LaunchSpec::Container(container) = unit.launch else {
        panic!("a container unit: {unit:?}");
    };
    assert_eq!(container.name, "daca-p-redis");
    assert_eq!(
        container.volumes,
        [("daca-p-redis-data".to_string(), "/data".to_string())]
    );
    let pulled = choose(
        RedisProvider::Auto,
        Some(empty.path().into()),
        Some(&offer(false)),
    )
    .unwrap();
    assert!(
        matches!(pulled, RedisPlan::Container { pull: true, .. }),
        "{pulled:?}"
    );
    if have("redis-server") {
        let server = choose(
            RedisProvider::Auto,
            std::env::var_os("PATH"),
            Some(&offer(false)),
        )
        .unwrap();
        assert!(matches!(server, RedisPlan::Server { .. }), "{server:?}");
    }
    let forced = choose(
        RedisProvider::Docker,
        std::env::var_os("PATH"),
        Some(&offer(false)),
    )
    .unwrap();
    assert!(
        matches!(forced, RedisPlan::Container { pull: true, .. }),
        "{forced:?}"
    );
    let err = choose(RedisProvider::Docker, None, None).unwrap_err();
    assert!(matches!(err, RedisError::NoEngine));
    assert!(err.to_string().contains("hint: start Docker"), "{err}");
}
