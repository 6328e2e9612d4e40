//! Component YAMLs: errors with positions at start-up, secrets, Kubernetes files used unchanged,
//! and the defaults `dapr init` would give.

use std::path::Path;

use daca::components::{self, ComponentKind};
use daca::redis::RedisPlan;
use daca::state::StateStore;

#[test]
fn bad_component_files_are_reported_together_with_positions() {
    let err = components::load(
        Some(Path::new("tests/fixtures/components/bad")),
        Path::new("tests/fixtures/components"),
    )
    .unwrap_err();
    insta::assert_snapshot!(err.to_string());
}

#[test]
fn kubernetes_files_work_unchanged_with_secrets_resolved() {
    let loaded = components::load(
        Some(Path::new("tests/fixtures/components/good/components")),
        Path::new("tests/fixtures/components/good"),
    )
    .unwrap_or_else(|e| panic!("{e}"));
    let store = loaded.iter().find(|c| c.name == "statestore").unwrap();
    assert_eq!(store.kind, ComponentKind::StateRedis);
    assert_eq!(
        store.get("redisPassword"),
        Some("s3cret"),
        "secretKeyRef read from the local file store"
    );
    assert_eq!(store.secret_items, ["redisPassword"]);
    assert_eq!(
        store.get("ttlInSeconds"),
        Some("3600"),
        "YAML numbers become strings"
    );
    assert_eq!(store.scopes, ["hello-api"]);
    assert!(
        store
            .origin
            .as_ref()
            .unwrap()
            .ends_with("components/k8s.yaml:5")
    );
    assert!(
        !loaded.iter().any(|c| c.name == "orders-sub"),
        "a Subscription is not a component"
    );

    let plan = RedisPlan::External {
        url: "redis://127.0.0.1:6399".into(),
    };
    let (stores, notices) = components::stores::state_stores(&loaded, &plan).unwrap();
    assert_eq!(
        notices,
        [
            "component `statestore`: redisHost `redis-master.default.svc.cluster.local:6379` is a Kubernetes name; using daca's Redis at redis://127.0.0.1:6399"
        ]
    );
    assert_eq!(stores["statestore"].default_ttl, Some(3600));
    assert!(matches!(stores["statestore"].store, StateStore::Redis(_)));
}

#[test]
fn env_secrets_and_env_refs_resolve() {
    // SAFETY: this test alone reads these two variables, which no other test touches.
    unsafe {
        std::env::set_var("DACA_TEST_CACHE_PASSWORD", "pw");
        std::env::set_var("DACA_TEST_CACHE_USER", "ada");
    }
    let loaded = components::load(
        Some(Path::new("tests/fixtures/components/good/components")),
        Path::new("tests/fixtures/components/good"),
    )
    .unwrap();
    let cache = loaded.iter().find(|c| c.name == "cache").unwrap();
    assert_eq!(cache.get("password"), Some("pw"));
    assert_eq!(cache.get("user"), Some("ada"));
    assert_eq!(cache.secret_items, ["password", "user"]);
}

#[test]
fn without_a_resources_folder_daca_provides_what_dapr_init_does() {
    let loaded = components::load(None, Path::new(".")).unwrap();
    let names: Vec<(&str, &str)> = loaded
        .iter()
        .map(|c| (c.name.as_str(), c.type_name.as_str()))
        .collect();
    assert_eq!(
        names,
        [("statestore", "state.redis"), ("pubsub", "pubsub.redis")]
    );
    assert_eq!(loaded[0].get("actorStateStore"), Some("true"));
    let (stores, _) = components::stores::state_stores(
        &loaded,
        &RedisPlan::External {
            url: "redis://127.0.0.1:6399".into(),
        },
    )
    .unwrap();
    assert!(matches!(stores["statestore"].store, StateStore::Redis(_)));
    let embedded = RedisPlan::Embedded {
        reason: "none".into(),
    };
    let (stores, notices) = components::stores::state_stores(&loaded, &embedded).unwrap();
    assert!(
        matches!(stores["statestore"].store, StateStore::Memory(_)),
        "embedded mode serves Redis components from memory"
    );
    assert!(
        notices[0].contains("served by the embedded in-memory store"),
        "{notices:?}"
    );
}

#[test]
fn bad_subscription_files_are_reported_with_positions() {
    let err = components::load_resources(
        Some(Path::new("tests/fixtures/subscriptions/bad")),
        Path::new("tests/fixtures/subscriptions"),
    )
    .err()
    .expect("the files are refused");
    insta::assert_snapshot!(err.to_string());
}

/// A resource of a kind daca does not read is said, with where it is, never skipped in
/// silence; a Resiliency is read, and one naming a policy nobody defines is refused at the name.
#[test]
fn resources_daca_does_not_apply_are_said_and_resiliency_is_read() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("resiliency.yaml"),
        "apiVersion: dapr.io/v1alpha1\nkind: Resiliency\nmetadata:\n  name: retries\nspec:\n  policies:\n    retries: { three: { maxRetries: 3 } }\n  targets:\n    apps: { callee: { retry: three } }\n",
    )
    .unwrap();
    std::fs::write(
        dir.path().join("other.yaml"),
        "apiVersion: dapr.io/v1alpha1\nkind: HTTPEndpoint\nmetadata:\n  name: ext\n",
    )
    .unwrap();
    let loaded = components::load_resources(Some(dir.path()), dir.path()).unwrap();
    let notices = loaded.notices.join("\n");
    assert!(!notices.contains("Resiliency"), "{notices}");
    assert_eq!(loaded.resiliency.len(), 1);
    assert_eq!(loaded.resiliency[0].retries["three"].max_retries, 3);
    assert!(
        notices.contains("other.yaml:2: `kind: HTTPEndpoint` is not one daca reads"),
        "{notices}"
    );

    std::fs::write(
        dir.path().join("resiliency.yaml"),
        "kind: Resiliency\nmetadata: { name: r }\nspec:\n  targets:\n    apps:\n      callee: { retry: thre }\n",
    )
    .unwrap();
    let err = components::load_resources(Some(dir.path()), dir.path())
        .err()
        .expect("an unknown policy name is refused")
        .to_string();
    assert!(err.contains("resiliency.yaml:6:24"), "{err}");
    assert!(err.contains("no retry policy is named `thre`"), "{err}");
}
