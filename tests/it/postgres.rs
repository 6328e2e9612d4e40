//! PostgreSQL as the course's labs use it: a private server from Debian's `postgresql`
//! package (initdb + pg_ctl under a temp folder, on a free loopback port), and the
//! `bindings.postgresql` output binding's `exec`, `query` and `close` through the sidecar.

use std::path::PathBuf;
use std::process::Command;
use std::time::Duration;

use serde_json::{Value, json};

use crate::common::{free_port, wait_until};
use crate::up::Up;

/// A private PostgreSQL cluster, stopped when dropped.
pub(crate) struct PostgresServer {
    bin: PathBuf,
    data: PathBuf,
    pub port: u16,
    _dir: tempfile::TempDir,
}

impl PostgresServer {
    /// Starts one, or None (skip) where PostgreSQL is not installed outside CI.
    pub(crate) fn start() -> Option<PostgresServer> {
        let Some(bin) = std::fs::read_dir("/usr/lib/postgresql").ok().and_then(|d| {
            d.flatten()
                .map(|e| e.path().join("bin"))
                .find(|b| b.join("initdb").exists())
        }) else {
            assert!(
                std::env::var_os("DACA_TEST_REQUIRE_ALL").is_none(),
                "PostgreSQL's server binaries are required here; scripts/test installs them"
            );
            eprintln!("skipped: no /usr/lib/postgresql/*/bin/initdb");
            return None;
        };
        let dir = tempfile::tempdir().unwrap();
        let data = dir.path().join("data");
        // initdb refuses to run as root: the cluster belongs to the `postgres` user then.
        let root = nix::unistd::Uid::effective().is_root();
        if root {
            let status = Command::new("chown")
                .args(["postgres:postgres"])
                .arg(dir.path())
                .status();
            assert!(status.unwrap().success());
        }
        let as_owner = |program: &str| {
            let mut command = if root {
                let mut c = Command::new("runuser");
                c.args(["-u", "postgres", "--"]).arg(bin.join(program));
                c
            } else {
                Command::new(bin.join(program))
            };
            command.stdout(std::process::Stdio::null());
            command
        };
        let made = as_owner("initdb")
            .args(["-A", "trust", "-U", "postgres", "-E", "UTF8", "-D"])
            .arg(&data)
            .status()
            .unwrap();
        assert!(made.success(), "initdb failed");
        let port = free_port();
        let options = format!(
            "-p {port} -k {} -c listen_addresses=127.0.0.1 -c fsync=off",
            dir.path().display()
        );
        let started = as_owner("pg_ctl")
            .args(["-w", "-s", "-l"])
            .arg(dir.path().join("log"))
            .args(["-o", &options, "-D"])
            .arg(&data)
            .arg("start")
            .status()
            .unwrap();
        assert!(started.success(), "pg_ctl start failed");
        let server = PostgresServer {
            bin,
            data,
            port,
            _dir: dir,
        };
        let ready = || std::net::TcpStream::connect(("127.0.0.1", port)).is_ok();
        assert!(
            wait_until(Duration::from_secs(20), ready),
            "postgres did not start"
        );
        Some(server)
    }

    pub(crate) fn connection_string(&self) -> String {
        format!(
            "host=127.0.0.1 port={} user=postgres dbname=postgres",
            self.port
        )
    }
}

impl Drop for PostgresServer {
    fn drop(&mut self) {
        let mut command = if nix::unistd::Uid::effective().is_root() {
            let mut c = Command::new("runuser");
            c.args(["-u", "postgres", "--"])
                .arg(self.bin.join("pg_ctl"));
            c
        } else {
            Command::new(self.bin.join("pg_ctl"))
        };
        let _ = command
            .args(["-s", "-m", "immediate", "-D"])
            .arg(&self.data)
            .arg("stop")
            .status();
    }
}

fn call(sidecar: u16, operation: &str, metadata: Value) -> (u16, String, Vec<(String, String)>) {
    let ask = json!({"operation": operation, "metadata": metadata});
    crate::common::http_request_full(sidecar, "POST", "/v1.0/bindings/db", &ask.to_string())
}

fn header<'a>(headers: &'a [(String, String)], name: &str) -> Option<&'a str> {
    headers
        .iter()
        .find(|(n, _)| n == name)
        .map(|(_, v)| v.as_str())
}

/// `exec` (DDL, inserts with JSON params sent as text in the statement's types), `query` (rows
/// as arrays in column order: integers, exact numerics, text, RFC 3339 times, jsonb), the
/// response metadata, pgx's wording of server errors, Dapr's errors for a missing `sql` or bad
/// `params`, and `close`.
#[test]
fn the_postgresql_binding_execs_queries_and_closes() {
    let Some(server) = PostgresServer::start() else {
        return;
    };
    let sidecar = free_port();
    let dir = project(&server, ("db", "bindings.postgresql"), sidecar, free_port());
    let mut up = Up::start(dir.path(), None);
    up.wait_output("all 1 app(s) ready", Duration::from_secs(30));

    let create = "CREATE TABLE orders (id int PRIMARY KEY, item text, qty numeric(6,2), made timestamptz DEFAULT '2024-01-01T10:00:00Z', meta jsonb)";
    let (status, body, headers) = call(sidecar, "exec", json!({"sql": create}));
    assert!(
        status == 200 || status == 204,
        "{status} {body}\n{}",
        up.output()
    );
    assert_eq!(
        header(&headers, "metadata.rows-affected"),
        Some("0"),
        "{headers:?}"
    );
    assert_eq!(header(&headers, "metadata.operation"), Some("exec"));
    assert!(
        header(&headers, "metadata.duration").is_some(),
        "{headers:?}"
    );
    let insert = "INSERT INTO orders (id, item, qty, meta) VALUES ($1, $2, $3, $4)";
    for params in [
        r#"[1, "widget", 2.5, {"a": 1}]"#,
        r#"["2", "gadget", "3", null]"#,
    ] {
        let (status, body, headers) =
            call(sidecar, "exec", json!({"sql": insert, "params": params}));
        assert!(status == 200 || status == 204, "{status} {body}");
        assert_eq!(header(&headers, "metadata.rows-affected"), Some("1"));
    }

    let select = "SELECT id, item, qty, made, meta FROM orders ORDER BY id";
    let (status, body, _) = call(sidecar, "query", json!({"sql": select}));
    assert_eq!(status, 200, "{body}");
    assert_eq!(
        body,
        r#"[[1,"widget",2.50,"2024-01-01T10:00:00Z",{"a":1}],[2,"gadget",3.00,"2024-01-01T10:00:00Z",null]]"#
    );
    let (status, body, _) = call(
        sidecar,
        "query",
        json!({"sql": "SELECT item FROM orders WHERE id = $1", "params": "[2]"}),
    );
    assert_eq!((status, body.as_str()), (200, r#"[["gadget"]]"#));

    let error = |operation: &str, metadata: Value| {
        let (status, body, _) = call(sidecar, operation, metadata);
        assert_eq!(status, 500, "{body}");
        let body: Value = serde_json::from_str(&body).unwrap();
        assert_eq!(body["errorCode"], "ERR_INVOKE_OUTPUT_BINDING", "{body}");
        body["message"].as_str().unwrap().to_string()
    };
    let missing = error("query", json!({"sql": "SELECT * FROM missing"}));
    assert!(
        missing.contains(
            r#"error executing query: ERROR: relation "missing" does not exist (SQLSTATE 42P01)"#
        ),
        "{missing}"
    );
    assert!(error("exec", json!({})).contains("required metadata not set: sql"));
    let bad = error("exec", json!({"sql": insert, "params": "{\"a\":1}"}));
    assert!(
        bad.contains("invalid metadata property params: failed to unserialize into an array"),
        "{bad}"
    );
    let interval = error("query", json!({"sql": "SELECT '1 day'::interval"}));
    assert!(
        interval.contains("type interval is not one daca"),
        "{interval}"
    );
    assert!(error("drop", json!({})).contains("supported operations:exec query close"));

    let (status, _, _) = call(sidecar, "close", json!({}));
    assert_eq!(status, 204);
    assert!(error("query", json!({"sql": select})).contains("component is closed"));
    up.stop_cleanly();
}

impl PostgresServer {
    /// One query through psql, the rows as `|`-separated lines.
    fn psql(&self, sql: &str) -> String {
        let output = Command::new(self.bin.join("psql"))
            .args([
                "-h",
                "127.0.0.1",
                "-p",
                &self.port.to_string(),
                "-U",
                "postgres",
                "-d",
                "postgres",
                "-Atc",
                sql,
            ])
            .output()
            .unwrap();
        assert!(
            output.status.success(),
            "{}",
            String::from_utf8_lossy(&output.stderr)
        );
        String::from_utf8_lossy(&output.stdout).trim().to_string()
    }
}

/// A project with one sidecar-only app (`lab`) and one PostgreSQL component `(name, type)`.
fn project(
    server: &PostgresServer,
    (name, kind): (&str, &str),
    sidecar: u16,
    grpc: u16,
) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    let resources = dir.path().join("resources");
    std::fs::create_dir(&resources).unwrap();
    std::fs::write(
        resources.join("component.yaml"),
        format!(
            "apiVersion: dapr.io/v1alpha1\nkind: Component\nmetadata: {{ name: {name} }}\nspec:\n  type: {kind}\n  version: v1\n  metadata:\n  - name: connectionString\n    value: \"{}\"\n",
            server.connection_string()
        ),
    )
    .unwrap();
    std::fs::write(
        dir.path().join("daca.yaml"),
        format!("name: pg\nresources: ./resources\nredis: {{ provider: embedded }}\napps:\n  - id: lab\n    command: [sleep, \"3600\"]\n    dapr_http_port: {sidecar}\n    dapr_grpc_port: {grpc}\n"),
    )
    .unwrap();
    dir
}

/// `state.postgresql` v1 as daprd keeps it: components-contrib's tables and migration level,
/// jsonb values (read back as PostgreSQL writes them), `xmin` etags with Dapr's 409s, first-write,
/// TTLs, transactions, bytes from the official SDK stored base64 with `isbinary`, and the data
/// still there after daca restarts.
#[test]
fn a_postgresql_state_store_keeps_daprs_layout() {
    let Some(server) = PostgresServer::start() else {
        return;
    };
    let Some(python) = crate::actors::sdk("latest") else {
        return;
    };
    let (sidecar, grpc) = (free_port(), free_port());
    let dir = project(&server, ("statestore", "state.postgresql"), sidecar, grpc);
    let mut up = Up::start(dir.path(), None);
    up.wait_output("all 1 app(s) ready", Duration::from_secs(30));
    let request = |method: &str, path: &str, body: &str| {
        crate::common::http_request_full(sidecar, method, path, body)
    };
    let save = r#"[{"key":"order-1","value":{"qty":2,"item":"w"}}]"#;
    let (status, body, _) = request("POST", "/v1.0/state/statestore", save);
    assert_eq!(status, 204, "{body}\n{}", up.output());
    let (status, body, headers) = request("GET", "/v1.0/state/statestore/order-1", "");
    assert_eq!((status, body.as_str()), (200, r#"{"qty": 2, "item": "w"}"#));
    let etag = header(&headers, "etag").unwrap().to_string();
    assert_eq!(
        server.psql("SELECT key, value::text, isbinary, xmin::text, expiredate IS NULL FROM state"),
        format!(r#"lab||order-1|{{"qty": 2, "item": "w"}}|f|{etag}|t"#)
    );
    assert_eq!(
        server.psql("SELECT value FROM dapr_metadata WHERE key = 'migrations'"),
        "3"
    );

    // Etags: a stale one is Dapr's 409, the current one writes; first-write refuses a live key.
    let with_etag =
        |etag: &str| format!(r#"[{{"key":"order-1","value":{{"qty":3}},"etag":"{etag}"}}]"#);
    let (status, body, _) = request("POST", "/v1.0/state/statestore", &with_etag("1"));
    assert_eq!(status, 409, "{body}");
    assert!(body.contains("ERR_STATE_SAVE"), "{body}");
    let (status, body, _) = request("POST", "/v1.0/state/statestore", &with_etag("x"));
    assert_eq!(status, 400, "{body}");
    let (status, body, _) = request("POST", "/v1.0/state/statestore", &with_etag(&etag));
    assert_eq!(status, 204, "{body}");
    let first = r#"[{"key":"order-1","value":1,"options":{"concurrency":"first-write"}}]"#;
    let (status, body, _) = request("POST", "/v1.0/state/statestore", first);
    assert_eq!(status, 500, "{body}");
    let (_, body, _) = request("GET", "/v1.0/state/statestore/order-1", "");
    assert_eq!(body, r#"{"qty": 3}"#);

    // A TTL expires the row for readers at once.
    let short = r#"[{"key":"brief","value":"x","metadata":{"ttlInSeconds":"1"}}]"#;
    assert_eq!(request("POST", "/v1.0/state/statestore", short).0, 204);
    assert_eq!(request("GET", "/v1.0/state/statestore/brief", "").0, 200);
    std::thread::sleep(Duration::from_millis(1600));
    assert_eq!(request("GET", "/v1.0/state/statestore/brief", "").0, 204);

    // A transaction: all of it, or (an op with a stale etag) none of it.
    let bad = r#"{"operations":[{"operation":"upsert","request":{"key":"t1","value":1}},{"operation":"delete","request":{"key":"order-1","etag":"1"}}]}"#;
    let (status, body, _) = request("POST", "/v1.0/state/statestore/transaction", bad);
    assert_eq!(status, 500, "{body}");
    assert!(body.contains("possible etag mismatch"), "{body}");
    assert_eq!(
        request("GET", "/v1.0/state/statestore/t1", "").0,
        204,
        "rolled back"
    );
    let good = r#"{"operations":[{"operation":"upsert","request":{"key":"t1","value":1}},{"operation":"delete","request":{"key":"order-1"}}]}"#;
    assert_eq!(
        request("POST", "/v1.0/state/statestore/transaction", good).0,
        204
    );
    assert_eq!(request("GET", "/v1.0/state/statestore/order-1", "").0, 204);

    // Bytes from the SDK (gRPC): base64 in a JSON string, `isbinary` set, read back as bytes.
    let script = format!(
        "from dapr.clients import DaprClient\nwith DaprClient(address='127.0.0.1:{grpc}') as c:\n    c.save_state('statestore', 'raw', b'\\x00\\xffbytes')\n    print(c.get_state('statestore', 'raw').data.hex())\n"
    );
    let output = Command::new(&python)
        .args(["-c", &script])
        .env("DAPR_HTTP_PORT", sidecar.to_string())
        .env("DAPR_GRPC_PORT", grpc.to_string())
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert_eq!(
        String::from_utf8_lossy(&output.stdout).trim(),
        "00ff6279746573"
    );
    assert_eq!(
        server.psql("SELECT value::text, isbinary FROM state WHERE key = 'lab||raw'"),
        r#""AP9ieXRlcw=="|t"#
    );

    // daca restarts: nothing lost, the migrations are not run again.
    up.stop_cleanly();
    let mut up = Up::start(dir.path(), None);
    up.wait_output("all 1 app(s) ready", Duration::from_secs(30));
    let (status, body, _) = request("GET", "/v1.0/state/statestore/t1", "");
    assert_eq!((status, body.as_str()), (200, "1"));
    assert_eq!(
        server.psql("SELECT value FROM dapr_metadata WHERE key = 'migrations'"),
        "3"
    );
    up.stop_cleanly();
}
