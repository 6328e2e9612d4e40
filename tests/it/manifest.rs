//! Manifest errors as users see them (snapshots), and the checked-in JSON Schema.

use std::path::{Path, PathBuf};

use daca::manifest::{self, RedisConfig, RedisProvider, RestartPolicy};

fn fixture(name: &str) -> PathBuf {
    Path::new("tests/fixtures/manifests").join(name)
}

/// The rendered error of a fixture, with the machine-specific folder replaced.
fn rendered_error(name: &str) -> String {
    let err = manifest::load(&fixture(name)).expect_err("the fixture is invalid on purpose");
    let root = std::path::absolute(fixture("")).unwrap();
    err.to_string()
        .replace(root.to_str().unwrap().trim_end_matches('/'), "[ROOT]")
}

#[test]
fn every_unknown_key_is_reported_at_once_with_a_suggestion() {
    insta::assert_snapshot!(rendered_error("typo-keys.yaml"));
}

#[test]
fn wrong_types_point_at_the_value() {
    insta::assert_snapshot!(rendered_error("wrong-type.yaml"));
}

#[test]
fn missing_fields_are_named() {
    insta::assert_snapshot!(rendered_error("missing-command.yaml"));
}

#[test]
fn yaml_syntax_errors_have_a_position() {
    insta::assert_snapshot!(rendered_error("syntax.yaml"));
}

#[test]
fn all_semantic_problems_in_one_pass() {
    let text = rendered_error("semantic.yaml");
    // ids, duplicates, ports, folders, commands, health paths, dependencies, durations, policies
    assert!(
        text.ends_with("11 problems in tests/fixtures/manifests/semantic.yaml"),
        "{text}"
    );
    insta::assert_snapshot!(text);
}

/// An app without a sidecar (`dapr: false`) sets nothing of one.
#[test]
fn sidecar_fields_on_an_app_without_one_are_errors() {
    insta::assert_snapshot!(rendered_error("no-sidecar.yaml"));
}

/// `replicas:` is 1 or more, needs pods, and its instances' names are no other app's.
#[test]
fn replicas_are_checked_where_written() {
    insta::assert_snapshot!(rendered_error("replicas.yaml"));
}

/// A Service port leads to the app's own port, or it is an error where it is written.
#[test]
fn service_ports_lead_to_the_apps_port() {
    insta::assert_snapshot!(rendered_error("service-ports.yaml"));
}

#[test]
fn dependency_cycles_are_named_in_order() {
    insta::assert_snapshot!(rendered_error("cycle.yaml"));
}

#[test]
fn a_missing_manifest_says_how_to_make_one() {
    insta::assert_snapshot!(rendered_error("does-not-exist.yaml"));
}

#[test]
fn a_valid_manifest_becomes_the_model_in_start_order() {
    let manifest = manifest::load(&fixture("valid.yaml")).unwrap();
    assert_eq!(manifest.name, "shop");
    let ids: Vec<&str> = manifest.apps.iter().map(|a| a.id.as_str()).collect();
    assert_eq!(ids, ["api", "web"], "dependencies start first");
    let api = manifest.app("api").unwrap();
    assert_eq!(api.supervision.restart, RestartPolicy::Always);
    assert_eq!(
        api.supervision.grace_period,
        std::time::Duration::from_millis(500)
    );
    assert_eq!(api.supervision.health.as_deref(), Some("/"));
    let web = manifest.app("web").unwrap();
    assert_eq!(
        web.supervision.grace_period,
        std::time::Duration::from_secs(2)
    );
    assert_eq!(web.process.env["DEBUG"], "true");
    assert_eq!(web.process.env["WORKERS"], "2");
    assert!(web.dir.ends_with("tests/fixtures/manifests/app"));
    assert_eq!(
        manifest.redis,
        RedisConfig::Managed {
            provider: RedisProvider::Auto,
            port: Some(6390),
            persistence: daca::manifest::Persistence::Off,
            image: "redis:7-alpine".into(),
        }
    );
}

#[test]
fn the_checked_in_schema_matches_the_types() {
    let generated = serde_json::to_string_pretty(&manifest::schema()).unwrap() + "\n";
    let checked_in = std::fs::read_to_string("daca.schema.json").unwrap_or_default();
    assert!(
        generated == checked_in,
        "daca.schema.json is out of date; regenerate it with `cargo run -- schema > daca.schema.json`"
    );
}

#[test]
fn the_schema_describes_apps_and_rejects_unknown_keys() {
    let schema = manifest::schema();
    let app = &schema["$defs"]["AppWire"];
    assert_eq!(app["additionalProperties"], false);
    for key in [
        "id",
        "dir",
        "command",
        "port",
        "env",
        "health",
        "depends_on",
    ] {
        assert!(
            app["properties"].get(key).is_some(),
            "schema lacks apps[].{key}"
        );
    }
}

#[test]
fn container_fields_are_checked_together() {
    insta::assert_snapshot!(rendered_error("containers-bad.yaml"));
}

#[test]
fn container_fields_become_the_model() {
    use daca::manifest::{ImageSource, MountChoice, RuntimeChoice};
    let manifest = manifest::load(&fixture("containers.yaml")).unwrap();
    let api = manifest.app("api").unwrap();
    assert_eq!(api.process.runtime, RuntimeChoice::Docker);
    assert!(api.process.command.is_empty(), "the image's CMD runs");
    let Some(ImageSource::Build(build)) = &api.process.image else {
        panic!("{api:?}")
    };
    assert!(build.context.ends_with("manifests/app"));
    assert_eq!(build.dockerfile, "Dockerfile");
    assert_eq!(build.args["WORKERS"], "2");
    assert_eq!(build.target.as_deref(), Some("dev"));
    assert_eq!(api.process.mount, MountChoice::Workdir);
    let worker = manifest.app("worker").unwrap();
    assert_eq!(
        worker.process.runtime,
        RuntimeChoice::Process,
        "an app's runtime beats the project's"
    );
    assert_eq!(
        worker.process.image,
        Some(ImageSource::Image("worker:1".into()))
    );
    assert_eq!(worker.process.mount, MountChoice::At("/src".into()));
    assert_eq!(
        manifest.redis,
        RedisConfig::Managed {
            provider: RedisProvider::Docker,
            port: None,
            persistence: daca::manifest::Persistence::EverySecond,
            image: "redis:7.2".into(),
        }
    );
}

#[test]
fn network_and_host_ports_are_checked_where_written() {
    insta::assert_snapshot!(rendered_error("network.yaml"));
}

#[test]
fn apps_in_pods_may_share_a_port_and_get_host_ports() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(dir.path().join("app")).unwrap();
    let path = dir.path().join("daca.yaml");
    let app = |id: &str, extra: &str| {
        format!("  - {{ id: {id}, dir: app, command: [python3, main.py], port: 8000{extra} }}\n")
    };
    let text = format!(
        "name: pods\napps:\n{}{}",
        app("one", ""),
        app("two", ", ports: [\"8001:8000\", \"9090:9000\"]")
    );
    std::fs::write(&path, text).unwrap();
    let loaded = manifest::load(&path).unwrap();
    // Not said: a pod where the machine allows it.
    assert_eq!(loaded.apps[0].network.mode, manifest::NetworkMode::Auto);
    assert_eq!(loaded.apps[1].network.ports, [(8001, 8000), (9090, 9000)]);
    // On the machine's own network two apps on 8000 still collide.
    let text = format!(
        "name: hosts\nnetwork: host\napps:\n{}{}",
        app("one", ""),
        app("two", "")
    );
    std::fs::write(&path, text).unwrap();
    let err = manifest::load(&path).unwrap_err().to_string();
    assert!(err.contains("port 8000 is used twice"), "{err}");
}

#[test]
fn volumes_and_namespace_are_checked_where_written() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(dir.path().join("app/config")).unwrap();
    let path = dir.path().join("daca.yaml");
    let with = |namespace: &str, volumes: &str| {
        format!(
            "name: v\nnamespace: {namespace}\napps:\n  - id: a\n    dir: app\n    image: x\n    volumes: [{volumes}]\n"
        )
    };
    std::fs::write(
        &path,
        with("daca", "\"app/config:/etc/config:ro\", \"app:/code\""),
    )
    .unwrap();
    let loaded = manifest::load(&path).unwrap();
    assert_eq!(loaded.namespace.as_deref(), Some("daca"));
    let volumes = &loaded.apps[0].process.volumes;
    assert_eq!(volumes[0].host, dir.path().join("app/config"));
    assert_eq!(
        (volumes[0].target.as_str(), volumes[0].read_only),
        ("/etc/config", true)
    );
    assert_eq!(
        (volumes[1].target.as_str(), volumes[1].read_only),
        ("/code", false)
    );
    std::fs::write(
        &path,
        with("Bad_NS", "\"gone:/x\", \"app:rel\", \"a:b:c:d\""),
    )
    .unwrap();
    let err = manifest::load(&path).unwrap_err().to_string();
    for said in [
        "namespace `Bad_NS` must be lowercase",
        "daca.yaml:2:12",
        "volume source",
        "does not exist",
        "volume target `rel` must be an absolute path",
        "volume `a:b:c:d` is not HOST:CONTAINER[:ro]",
    ] {
        assert!(err.contains(said), "{said} in\n{err}");
    }
}

/// `postgres:`: absent is none, `{}` the managed default, `url` the user's own; a wrong
/// provider, a non-postgres URL and `url` beside managed-only keys are located errors.
#[test]
fn postgres_is_checked_where_written() {
    use daca::manifest::{PostgresConfig, PostgresProvider};
    let file = Path::new("/p/daca.yaml");
    let app = "apps:\n  - id: a\n    command: [sleep, \"1\"]\n";
    let parse = |postgres: &str| manifest::parse(file, &format!("name: pg\n{postgres}{app}"));
    assert_eq!(parse("").unwrap().postgres, None);
    assert_eq!(
        parse("postgres: {}\n").unwrap().postgres,
        Some(PostgresConfig::Managed {
            provider: PostgresProvider::Auto,
            port: None,
            persistence: true,
            image: manifest::DEFAULT_POSTGRES_IMAGE.into(),
        })
    );
    let err = parse("postgres:\n  provider: rds\n")
        .unwrap_err()
        .to_string();
    assert!(err.contains("daca.yaml:3:13"), "{err}");
    assert!(err.contains("unknown postgres provider `rds`"), "{err}");
    let err = parse("postgres:\n  url: mysql://db\n  image: postgres:16\n")
        .unwrap_err()
        .to_string();
    for (message, at) in [
        ("postgres url is not a postgres:// URL", "daca.yaml:3:8"),
        (
            "`postgres.image` and `postgres.url` cannot both be set",
            "daca.yaml:4:10",
        ),
    ] {
        assert!(
            err.contains(&format!("error: {message}\n --> /p/{at}")),
            "{err}"
        );
    }
    let own = parse("postgres: { url: \"postgres://me@db:5432/x\" }\n").unwrap();
    assert_eq!(
        own.postgres,
        Some(PostgresConfig::External {
            url: "postgres://me@db:5432/x".into()
        })
    );
}

/// `redis.persistence`: `true`/`false`, or `always` (fsync before each acknowledgement);
/// another word is an error where it is written.
#[test]
fn redis_persistence_takes_always() {
    use daca::manifest::{Persistence, RedisConfig};
    let file = Path::new("/p/daca.yaml");
    let app = "apps:\n  - id: a\n    command: [sleep, \"1\"]\n";
    let parse = |redis: &str| manifest::parse(file, &format!("name: r\n{redis}{app}"));
    let persistence = |redis: &str| match parse(redis).unwrap().redis {
        RedisConfig::Managed { persistence, .. } => persistence,
        other => panic!("{other:?}"),
    };
    assert_eq!(persistence(""), Persistence::EverySecond);
    assert_eq!(
        persistence("redis: { persistence: true }\n"),
        Persistence::EverySecond
    );
    assert_eq!(
        persistence("redis: { persistence: false }\n"),
        Persistence::Off
    );
    assert_eq!(
        persistence("redis: { persistence: always }\n"),
        Persistence::Always
    );
    let err = parse("redis:\n  persistence: sometimes\n")
        .unwrap_err()
        .to_string();
    assert!(err.contains("daca.yaml:3:16"), "{err}");
    assert!(
        err.contains("unknown redis persistence `sometimes`"),
        "{err}"
    );
    assert!(err.contains("`always`"), "{err}");
}
