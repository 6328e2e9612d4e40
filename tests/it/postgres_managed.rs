//! `postgres:` in daca.yaml: a PostgreSQL server daca runs for the project, from the machine's
//! binaries (Debian's `postgresql`) or in a container, reached by components written for a
//! cluster, its data kept across runs, and nothing of it left after Ctrl-C, a SIGKILLed daca
//! (`daca down`) or the next `up`.

use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use nix::sys::signal::Signal;
use serde_json::{Value, json};

use crate::cli::{run, text};
use crate::common::{free_port, http_request_full, wait_until};
use crate::up::Up;

/// The course's components, as written for the cluster (a Bitnami chart's service names), with
/// the password from a secret store.
fn project(postgres: &str, pg_port: u16) -> (tempfile::TempDir, u16) {
    let dir = tempfile::tempdir().unwrap();
    let resources = dir.path().join("resources");
    std::fs::create_dir(&resources).unwrap();
    let secrets = dir.path().join("secrets.json");
    std::fs::write(&secrets, r#"{"pg": "host=pg-postgresql.default.svc.cluster.local port=5432 user=labuser password=planted-s3cret dbname=labdb"}"#).unwrap();
    let file = |name: &str, text: String| std::fs::write(resources.join(name), text).unwrap();
    file(
        "secrets.yaml",
        format!(
            "apiVersion: dapr.io/v1alpha1\nkind: Component\nmetadata: {{ name: localsecrets }}\nspec:\n  type: secretstores.local.file\n  version: v1\n  metadata:\n  - name: secretsFile\n    value: {}\n",
            secrets.display()
        ),
    );
    file("state.yaml", "apiVersion: dapr.io/v1alpha1\nkind: Component\nmetadata: { name: statestore }\nspec:\n  type: state.postgresql\n  version: v1\n  metadata:\n  - name: connectionString\n    secretKeyRef: { name: pg, key: pg }\nauth: { secretStore: localsecrets }\n".into());
    file("binding.yaml", "apiVersion: dapr.io/v1alpha1\nkind: Component\nmetadata: { name: db }\nspec:\n  type: bindings.postgresql\n  version: v1\n  metadata:\n  - name: connectionString\n    value: postgresql://labuser:planted-s3cret@pg-postgresql:5432/labdb\n".into());
    let sidecar = free_port();
    std::fs::write(
        dir.path().join("daca.yaml"),
        format!("name: pgm\nresources: ./resources\nnetwork: host\nredis: {{ provider: embedded }}\npostgres: {{ {postgres}, port: {pg_port} }}\napps:\n  - id: lab\n    command: [sleep, \"3600\"]\n    dapr_http_port: {sidecar}\n    dapr_grpc_port: {}\n", free_port()),
    )
    .unwrap();
    (dir, sidecar)
}

fn binding(sidecar: u16, operation: &str, sql: &str) -> (u16, String) {
    let ask = json!({"operation": operation, "metadata": {"sql": sql}});
    let (status, body, _) =
        http_request_full(sidecar, "POST", "/v1.0/bindings/db", &ask.to_string());
    (status, body)
}

/// State saved, a table made and queried through the binding, both in database `labdb` as
/// role `labuser`, which daca made on first use.
fn use_it(sidecar: u16, up: &Up) {
    let save = r#"[{"key":"order-1","value":{"qty":2}}]"#;
    let (status, body, _) = http_request_full(sidecar, "POST", "/v1.0/state/statestore", save);
    assert_eq!(status, 204, "{body}\n{}", up.output());
    let (status, body) = binding(sidecar, "exec", "CREATE TABLE orders (id int, item text)");
    assert_eq!(status, 200, "{body}");
    let (status, body) = binding(sidecar, "exec", "INSERT INTO orders VALUES (1, 'w')");
    assert_eq!(status, 200, "{body}");
    let (status, body) = binding(sidecar, "query", "SELECT current_user, current_database()");
    assert_eq!(status, 200, "{body}");
    assert_eq!(
        serde_json::from_str::<Value>(&body).unwrap(),
        json!([["labuser", "labdb"]])
    );
}

/// What survives a restart: the state and the table's row.
fn still_there(sidecar: u16, up: &Up) {
    let (status, body, _) = http_request_full(sidecar, "GET", "/v1.0/state/statestore/order-1", "");
    assert_eq!(
        (status, body.as_str()),
        (200, r#"{"qty": 2}"#),
        "{}",
        up.output()
    );
    let (status, body) = binding(sidecar, "query", "SELECT id, item FROM orders");
    assert_eq!((status, body.as_str()), (200, r#"[[1,"w"]]"#));
}

fn postgres_processes(data: &Path) -> Vec<String> {
    let output = Command::new("pgrep")
        .args(["-a", "-f", &format!("postgres -D {}", data.display())])
        .output()
        .unwrap();
    text(&output.stdout).lines().map(String::from).collect()
}

fn binaries_ready() -> bool {
    let ready = std::fs::read_dir("/usr/lib/postgresql")
        .is_ok_and(|mut d| d.any(|e| e.is_ok_and(|e| e.path().join("bin/initdb").exists())));
    if !ready && std::env::var_os("DACA_TEST_REQUIRE_ALL").is_some() {
        panic!("PostgreSQL's server binaries are required here; scripts/test installs them");
    }
    ready
}

#[test]
fn a_managed_postgres_from_the_machines_binaries_serves_cluster_components() {
    if !binaries_ready() {
        return;
    }
    let pg_port = free_port();
    let (dir, sidecar) = project("provider: postgres", pg_port);
    let data = dir.path().join(".daca/postgres");
    let mut up = Up::start(dir.path(), None);
    up.wait_output("all 1 app(s) ready", Duration::from_secs(90));
    let out = up.output();
    assert!(
        out.contains(&format!("postgres: 127.0.0.1:{pg_port} (postgres)")),
        "{out}"
    );
    assert!(out.contains("creating a PostgreSQL data folder"), "{out}");
    assert!(
        out.contains("host `pg-postgresql.default.svc.cluster.local:5432` is a Kubernetes name; using the project's PostgreSQL at 127.0.0.1:"),
        "{out}"
    );
    assert!(data.join("PG_VERSION").exists());
    assert_eq!(postgres_processes(&data).len(), 1, "{out}");
    use_it(sidecar, &up);
    let ps = up.ps().to_string();
    let out = up.output();
    for seen in [&out, &ps] {
        assert!(!seen.contains("planted-s3cret"), "{seen}");
    }

    // The server SIGKILLed: daca starts it again, and nothing stored is lost.
    let postmaster = postgres_processes(&data)[0]
        .split(' ')
        .next()
        .unwrap()
        .to_string();
    Command::new("kill")
        .args(["-9", &postmaster])
        .status()
        .unwrap();
    assert!(
        wait_until(Duration::from_secs(20), || {
            let now = postgres_processes(&data);
            now.len() == 1 && !now[0].starts_with(&format!("{postmaster} "))
        }),
        "{}",
        up.output()
    );
    assert!(
        wait_until(Duration::from_secs(20), || http_request_full(
            sidecar,
            "GET",
            "/v1.0/state/statestore/order-1",
            ""
        )
        .0 == 200),
        "{}",
        up.output()
    );
    still_there(sidecar, &up);

    // Ctrl-C: a fast shutdown, nothing left; the data is there on the next run.
    let stopping = Instant::now();
    up.stop_cleanly();
    assert!(
        stopping.elapsed() < Duration::from_secs(8),
        "{:?}",
        stopping.elapsed()
    );
    assert!(postgres_processes(&data).is_empty());
    let mut up = Up::start(dir.path(), None);
    up.wait_output("all 1 app(s) ready", Duration::from_secs(60));
    assert!(!up.output().contains("creating a PostgreSQL data folder"));
    still_there(sidecar, &up);

    // A SIGKILLed daca leaves the server running; `daca down` ends it.
    up.signal(Signal::SIGKILL);
    up.wait_exit(Duration::from_secs(5));
    assert_eq!(postgres_processes(&data).len(), 1, "left behind on purpose");
    let down = run(&["down", "-d", dir.path().to_str().unwrap()]);
    assert!(down.status.success(), "{}", text(&down.stderr));
    assert!(
        wait_until(Duration::from_secs(10), || postgres_processes(&data)
            .is_empty()),
        "{:?}",
        postgres_processes(&data)
    );
    let mut up = Up::start(dir.path(), None);
    up.wait_output("all 1 app(s) ready", Duration::from_secs(60));
    still_there(sidecar, &up);
    up.stop_cleanly();
}

#[test]
fn a_managed_postgres_in_a_container_keeps_its_data_in_a_volume() {
    let _serial = crate::common::serial();
    if !crate::docker::engine_ready() || !crate::docker::image_ready(crate::docker::POSTGRES_IMAGE)
    {
        return;
    }
    crate::docker::docker(&["volume", "rm", "-f", "daca-pgm-postgres-data"]);
    let pg_port = free_port();
    let provider = format!("provider: docker, image: {}", crate::docker::POSTGRES_IMAGE);
    let (dir, sidecar) = project(&provider, pg_port);
    let mut up = Up::start(dir.path(), None);
    up.wait_output("all 1 app(s) ready", Duration::from_secs(90));
    assert!(
        up.output()
            .contains(&format!("postgres: 127.0.0.1:{pg_port} (container,")),
        "{}",
        up.output()
    );
    assert_eq!(
        crate::docker::containers_of("pgm"),
        vec!["daca-pgm-postgres".to_string()]
    );
    use_it(sidecar, &up);
    let stopping = Instant::now();
    up.stop_cleanly();
    assert!(
        stopping.elapsed() < Duration::from_secs(8),
        "{:?}",
        stopping.elapsed()
    );
    assert!(crate::docker::containers_of("pgm").is_empty());

    // SIGKILL of daca and its reaper: the next `up` clears the container and finds the data.
    let mut up = Up::start(dir.path(), None);
    up.wait_output("all 1 app(s) ready", Duration::from_secs(60));
    still_there(sidecar, &up);
    for pid in crate::docker::pgrep("__reap.*pgm") {
        let _ = nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid), Signal::SIGKILL);
    }
    up.signal(Signal::SIGKILL);
    up.wait_exit(Duration::from_secs(5));
    let mut up = Up::start(dir.path(), None);
    up.wait_output("all 1 app(s) ready", Duration::from_secs(60));
    assert!(
        up.output()
            .contains("removed containers an earlier daca left: daca-pgm-postgres"),
        "{}",
        up.output()
    );
    still_there(sidecar, &up);
    up.stop_cleanly();
    assert!(crate::docker::containers_of("pgm").is_empty());
    run(&["down", "--volumes", "-d", dir.path().to_str().unwrap()]);
}
