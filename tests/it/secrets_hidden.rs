//! Planted secrets (a Redis password in the project's URL and in a component, secret store
//! values, an app's `.env`) used by a real run at debug level, then every output of it
//! searched: daca's own output, `daca logs`, `daca ps`, the dashboard's page and API, the
//! sidecar's metadata, `daca export` and the files it writes (but `secrets/`, which holds the
//! `.env` values on purpose and is git-ignored).

use std::path::Path;
use std::time::Duration;

use crate::common::{RedisServer, daca, free_port, have, http_get, http_request, serial};
use crate::up::Up;

const REDIS_PASSWORD: &str = "PLANTED-redis-7f3a";
const STORE_VALUE: &str = "PLANTED-store-91c2";
const DOT_ENV: &str = "PLANTED-dotenv-5d1e";

fn write(dir: &Path, name: &str, text: &str) {
    let path = dir.join(name);
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    std::fs::write(path, text).unwrap();
}

fn project(redis: &RedisServer, sidecar: u16) -> tempfile::TempDir {
    let project = tempfile::tempdir().unwrap();
    let dir = project.path();
    let port = redis.port;
    write(
        dir,
        "daca.yaml",
        &format!(
            "name: hush\nredis: {{ url: \"redis://:{REDIS_PASSWORD}@127.0.0.1:{port}\" }}\nresources: ./components\napps:\n  - id: app\n    dir: app\n    command: [sleep, \"3600\"]\n    dapr_http_port: {sidecar}\n    dapr_grpc_port: {}\n",
            free_port()
        ),
    );
    write(dir, "app/.env", &format!("API_TOKEN={DOT_ENV}\n"));
    write(
        dir,
        "components/secrets.json",
        &format!(r#"{{"redisPassword": "{REDIS_PASSWORD}", "apiKey": "{STORE_VALUE}"}}"#),
    );
    write(
        dir,
        "components/secretstore.yaml",
        "apiVersion: dapr.io/v1alpha1\nkind: Component\nmetadata:\n  name: vault\nspec:\n  type: secretstores.local.file\n  version: v1\n  metadata:\n  - name: secretsFile\n    value: ./components/secrets.json\n",
    );
    write(
        dir,
        "components/statestore.yaml",
        &format!(
            "apiVersion: dapr.io/v1alpha1\nkind: Component\nmetadata:\n  name: statestore\nspec:\n  type: state.redis\n  version: v1\n  metadata:\n  - name: redisHost\n    value: 127.0.0.1:{port}\n  - name: redisPassword\n    secretKeyRef:\n      name: redisPassword\n      key: redisPassword\n  - name: actorStateStore\n    value: \"true\"\nauth:\n  secretStore: vault\n"
        ),
    );
    write(
        dir,
        "components/pubsub.yaml",
        &format!(
            "apiVersion: dapr.io/v1alpha1\nkind: Component\nmetadata:\n  name: pubsub\nspec:\n  type: pubsub.redis\n  version: v1\n  metadata:\n  - name: redisHost\n    value: 127.0.0.1:{port}\n  - name: redisPassword\n    value: {REDIS_PASSWORD}\n"
        ),
    );
    project
}

fn text(output: std::process::Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    )
}

/// Every file under `dir` but `secrets/`, as `(path, contents)`.
fn files(dir: &Path) -> Vec<(String, String)> {
    let mut found = Vec::new();
    for entry in std::fs::read_dir(dir).unwrap().flatten() {
        let path = entry.path();
        if path.is_dir() {
            if entry.file_name() != "secrets" {
                found.extend(files(&path));
            }
        } else {
            let contents = std::fs::read_to_string(&path).unwrap_or_default();
            found.push((path.display().to_string(), contents));
        }
    }
    found
}

#[test]
fn no_planted_secret_appears_in_any_output_of_a_run() {
    if !have("redis-server") {
        return;
    }
    let _serial = serial();
    let redis = RedisServer::start_with_password(REDIS_PASSWORD);
    let sidecar = free_port();
    let project = project(&redis, sidecar);
    let dir = project.path();
    let up = Up::start_env(dir, &[("DACA_LOG", "daca=debug")]);
    up.wait_output("app(s) ready", Duration::from_secs(30));

    // The secrets work: the store reads its password through the secret store, the app's
    // sidecar hands the value to the app that asks for it.
    let saved = http_request(
        sidecar,
        "POST",
        "/v1.0/state/statestore",
        r#"[{"key":"k","value":1}]"#,
    );
    assert_eq!(saved.map(|(s, _)| s), Some(204));
    let published = http_request(sidecar, "POST", "/v1.0/publish/pubsub/t", r#"{"n":1}"#);
    assert_eq!(published.map(|(s, _)| s), Some(204));
    let (status, secret) = http_get(sidecar, "/v1.0/secrets/vault/apiKey").unwrap();
    assert_eq!(status, 200);
    assert!(secret.contains(STORE_VALUE));

    let mut outputs: Vec<(String, String)> = Vec::new();
    let d = dir.to_str().unwrap();
    for args in [
        vec!["logs", "-d", d],
        vec!["ps", "-d", d],
        vec!["ps", "--json", "-d", d],
    ] {
        outputs.push((args.join(" "), text(daca().args(&args).output().unwrap())));
    }
    let control = crate::dashboard::control_port(dir);
    for path in [
        "/",
        "/v1/ps",
        "/v1/events",
        "/v1/components",
        "/v1/pubsub",
        "/v1/resiliency",
        "/v1/actors",
        "/v1/state/statestore/keys",
    ] {
        let (status, body) = http_get(control, path).unwrap();
        assert_eq!(status, 200, "{path}: {body}");
        outputs.push((format!("dashboard {path}"), body));
    }
    // The page's live stream: the log lines and events so far, then it stays open.
    let live = crate::dashboard::read_sse(control, "/v1/live", Duration::from_secs(2), |_| false);
    assert!(live.contains("event: event"), "{live}");
    outputs.push(("dashboard /v1/live".into(), live));
    let (_, metadata) = http_get(sidecar, "/v1.0/metadata").unwrap();
    outputs.push(("metadata API".into(), metadata));
    let export = tempfile::tempdir().unwrap();
    let exported = daca()
        .args(["export", "k8s", "-d", d, "-o"])
        .arg(export.path())
        .output()
        .unwrap();
    assert!(exported.status.success(), "{}", text(exported.clone()));
    outputs.push(("daca export".into(), text(exported)));
    outputs.extend(files(export.path()));
    assert!(
        std::fs::read_to_string(export.path().join("secrets/app.env"))
            .unwrap()
            .contains(DOT_ENV),
        "the .env values go to the git-ignored secrets/ folder"
    );
    // The password written inline in a component: moved to a Secret the component references.
    let moved =
        std::fs::read_to_string(export.path().join("secrets/component-pubsub.env")).unwrap();
    assert_eq!(moved, format!("redisPassword={REDIS_PASSWORD}\n"));
    let pubsub = std::fs::read_to_string(export.path().join("dapr/component-pubsub.yaml")).unwrap();
    assert!(
        pubsub.contains("secretKeyRef:") && pubsub.contains("component-pubsub-secrets"),
        "{pubsub}"
    );
    let kustomization = std::fs::read_to_string(export.path().join("kustomization.yaml")).unwrap();
    assert!(
        kustomization.contains("envs: [secrets/component-pubsub.env]"),
        "{kustomization}"
    );
    outputs.push(("daca up".into(), up.output()));
    drop(up);

    for (source, output) in &outputs {
        for planted in [REDIS_PASSWORD, STORE_VALUE, DOT_ENV] {
            assert!(
                !output.contains(planted),
                "{planted} appears in {source}:\n{output}"
            );
        }
    }
}
