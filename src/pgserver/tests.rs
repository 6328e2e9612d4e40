use std::path::Path;

use super::*;
use crate::components::{Component, ComponentKind};

fn managed(provider: PostgresProvider) -> PostgresConfig {
    PostgresConfig::Managed {
        provider,
        port: None,
        persistence: true,
        image: "postgres:16-alpine".into(),
    }
}

fn offer(image_local: bool) -> EngineOffer {
    EngineOffer {
        owner: Owner::new("shop", Path::new("/work/shop"), "r1"),
        image_local,
    }
}

/// A folder laid out as Debian's /usr/lib/postgresql with the given majors.
fn debian(majors: &[u32]) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    for major in majors {
        let bin = dir.path().join(major.to_string()).join("bin");
        std::fs::create_dir_all(&bin).unwrap();
        for program in ["postgres", "initdb"] {
            std::fs::write(bin.join(program), "").unwrap();
        }
    }
    dir
}

fn decide(
    config: Option<&PostgresConfig>,
    versioned: &Path,
    engine: Option<&EngineOffer>,
) -> Result<Option<PgPlan>, PgError> {
    let empty_path = Some(std::ffi::OsString::new());
    let mut picker = PortPicker::default();
    plan_with(
        config,
        Path::new("/p/.daca"),
        (empty_path, versioned),
        &mut picker,
        engine,
    )
}

#[test]
fn no_postgres_key_runs_no_server() {
    assert_eq!(decide(None, Path::new("/nowhere"), None).unwrap(), None);
}

#[test]
fn auto_prefers_a_local_image_then_the_newest_binaries_then_a_pull() {
    let machine = debian(&[15, 16, 9]);
    let auto = managed(PostgresProvider::Auto);
    let local = decide(Some(&auto), machine.path(), Some(&offer(true))).unwrap();
    assert!(matches!(local, Some(PgPlan::Container { pull: false, .. })));
    match decide(Some(&auto), machine.path(), Some(&offer(false))).unwrap() {
        Some(PgPlan::Server {
            bin_dir, data_dir, ..
        }) => {
            assert_eq!(bin_dir, machine.path().join("16/bin"));
            assert_eq!(data_dir, Path::new("/p/.daca/postgres"));
        }
        other => panic!("{other:?}"),
    }
    let bare = debian(&[]);
    let pulled = decide(Some(&auto), bare.path(), Some(&offer(false))).unwrap();
    assert!(matches!(pulled, Some(PgPlan::Container { pull: true, .. })));
    let nothing = decide(Some(&auto), bare.path(), None).unwrap_err();
    assert!(matches!(nothing, PgError::NothingToRun), "{nothing}");
}

#[test]
fn a_named_provider_that_is_missing_is_an_error_with_a_hint() {
    let bare = debian(&[]);
    let err = decide(
        Some(&managed(PostgresProvider::Postgres)),
        bare.path(),
        None,
    )
    .unwrap_err();
    assert!(
        err.to_string().contains("apt-get install postgresql"),
        "{err}"
    );
    let err = decide(Some(&managed(PostgresProvider::Docker)), bare.path(), None).unwrap_err();
    assert!(matches!(err, PgError::NoEngine), "{err}");
}

#[test]
fn the_users_server_is_described_without_its_password() {
    let url = "postgres://app:hunter2@db.internal:6543/orders".to_string();
    let config = PostgresConfig::External { url: url.clone() };
    let plan = decide(Some(&config), Path::new("/nowhere"), None)
        .unwrap()
        .unwrap();
    assert_eq!(plan.address(), Some(("db.internal".into(), 6543)));
    assert!(!plan.is_managed());
    let described = plan.describe();
    assert!(
        described.starts_with("db.internal:6543 (yours"),
        "{described}"
    );
    assert!(!described.contains("hunter2"));
}

fn component(kind: ComponentKind, connection: &str) -> Component {
    Component {
        name: "db".into(),
        type_name: "state.postgresql".into(),
        version: "v1".into(),
        kind,
        metadata: [("connectionString".to_string(), connection.to_string())].into(),
        secret_items: vec![],
        scopes: vec![],
        origin: Some("components/db.yaml:1".into()),
        redirect: None,
    }
}

fn server(port: u16) -> PgPlan {
    PgPlan::Server {
        bin_dir: "/usr/lib/postgresql/15/bin".into(),
        port,
        data_dir: "/p/.daca/postgres".into(),
        persistence: true,
    }
}

#[test]
fn cluster_names_and_the_default_address_reach_the_projects_server() {
    let written = [
        "host=pg-postgresql.default.svc.cluster.local port=5432 user=lab password=s3cret dbname=labdb",
        "postgresql://lab:s3cret@postgres:5432/labdb",
        "host=localhost user=lab password=s3cret dbname=labdb",
    ];
    for text in written {
        let mut components = [component(ComponentKind::StatePostgres, text)];
        let notices = point(&mut components, Some(&server(5433)));
        assert_eq!(notices.len(), 1, "{text}");
        assert!(notices[0].contains("127.0.0.1:5433"), "{}", notices[0]);
        assert!(!notices[0].contains("s3cret"), "{}", notices[0]);
        let config = crate::postgres::config(&components[0]).unwrap();
        assert_eq!(
            config.get_hosts(),
            &[tokio_postgres::config::Host::Tcp("127.0.0.1".into())]
        );
        assert_eq!(config.get_ports(), &[5433]);
        assert_eq!(config.get_user(), Some("lab"));
        assert_eq!(config.get_password(), Some(&b"s3cret"[..]));
        assert_eq!(config.get_dbname(), Some("labdb"));
        assert!(components[0].redirect.as_ref().unwrap().provision);
    }
}

#[test]
fn other_addresses_are_used_as_written_and_a_lone_cluster_name_gets_a_hint() {
    let mut elsewhere = [component(
        ComponentKind::BindingsPostgres,
        "host=db.example.org port=5432 user=lab",
    )];
    assert!(point(&mut elsewhere, Some(&server(5433))).is_empty());
    assert_eq!(elsewhere[0].redirect, None);
    let mut cluster = [component(
        ComponentKind::BindingsPostgres,
        "host=postgres.default.svc.cluster.local user=lab password=s3cret",
    )];
    let notices = point(&mut cluster, None);
    assert!(notices[0].contains("add `postgres: {}`"), "{}", notices[0]);
    assert!(!notices[0].contains("s3cret"));
    assert_eq!(cluster[0].redirect, None);
}

#[test]
fn the_users_own_server_takes_cluster_names_but_nothing_is_made_on_it() {
    let mut components = [component(
        ComponentKind::StatePostgres,
        "host=postgres.default.svc.cluster.local user=lab dbname=labdb",
    )];
    let yours = PgPlan::External {
        url: "postgres://me:pw@db.internal:6543/x".into(),
    };
    let notices = point(&mut components, Some(&yours));
    assert!(notices[0].contains("db.internal:6543"), "{}", notices[0]);
    let redirect = components[0].redirect.clone().unwrap();
    assert_eq!(
        (redirect.host.as_str(), redirect.port),
        ("db.internal", 6543)
    );
    assert!(!redirect.provision);
}
