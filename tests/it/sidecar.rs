//! Dapr's state API through a real sidecar on a real port, against a real redis-server and
//! against the in-memory store: the test vectors of the Dapr reference (§10) and more.

use std::collections::BTreeMap;
use std::sync::Arc;

use daca::components::{self, stores::StateEntry};
use daca::redis::RedisPlan;
use daca::sidecar::{self, SidecarState};
use reqwest::header::HeaderMap;

use crate::common::RedisServer;

/// A running sidecar for app `myapp` and the backend behind it.
pub struct Sidecar {
    base: String,
    http: reqwest::Client,
    pub stores: Arc<BTreeMap<String, StateEntry>>,
    pub redis: Option<RedisServer>,
}

pub struct Reply {
    pub status: u16,
    pub headers: HeaderMap,
    pub body: String,
}

impl Reply {
    fn json(&self) -> serde_json::Value {
        serde_json::from_str(&self.body).unwrap_or_else(|_| panic!("not JSON: {}", self.body))
    }
    fn error_code(&self) -> String {
        self.json()["errorCode"]
            .as_str()
            .unwrap_or_default()
            .to_string()
    }
    fn etag(&self) -> Option<&str> {
        self.headers.get("etag").and_then(|v| v.to_str().ok())
    }
}

/// Which store a test runs against.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Backend {
    Redis,
    Memory,
}

/// Both backends; Redis only where redis-server exists (always under scripts/test).
pub fn backends() -> Vec<Backend> {
    let mut all = vec![Backend::Memory];
    if crate::common::have("redis-server") {
        all.push(Backend::Redis);
    }
    all
}

pub struct Options<'a> {
    pub extra_metadata: &'a str,
    pub scopes: &'a str,
    pub token: Option<&'a str>,
    pub max_body_size: usize,
    pub app_id: &'a str,
}

impl Default for Options<'_> {
    fn default() -> Self {
        Options {
            extra_metadata: "",
            scopes: "",
            token: None,
            max_body_size: 4 << 20,
            app_id: "myapp",
        }
    }
}

impl Sidecar {
    pub async fn start(backend: Backend) -> Sidecar {
        Sidecar::start_with(backend, Options::default()).await
    }

    pub async fn start_with(backend: Backend, options: Options<'_>) -> Sidecar {
        let redis =
            (backend == Backend::Redis).then(|| RedisServer::start().expect("redis-server"));
        let (type_name, host) = match &redis {
            Some(server) => (
                "state.redis",
                format!(
                    "  - name: redisHost\n    value: 127.0.0.1:{}\n",
                    server.port
                ),
            ),
            None => ("state.in-memory", String::new()),
        };
        let folder = tempfile::tempdir().unwrap();
        let yaml = format!(
            "apiVersion: dapr.io/v1alpha1\nkind: Component\nmetadata:\n  name: statestore\nspec:\n  type: {type_name}\n  version: v1\n  metadata:\n{host}{}{}",
            options.extra_metadata, options.scopes
        );
        std::fs::write(folder.path().join("statestore.yaml"), yaml).unwrap();
        let loaded = components::load(Some(folder.path()), folder.path()).unwrap();
        let plan = match &redis {
            Some(server) => RedisPlan::External { url: server.url() },
            None => RedisPlan::Embedded {
                reason: "test".into(),
            },
        };
        let (stores, _) = components::stores::state_stores(&loaded, &plan).unwrap();
        let kept = Arc::new(stores.clone());
        let shared = Arc::new(sidecar::Shared::with_stores(
            stores,
            options.token.map(String::from),
        ));
        let stores = kept;
        let state = SidecarState::new(options.app_id, shared, options.max_body_size);
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let base = format!("http://{}", listener.local_addr().unwrap());
        tokio::spawn(sidecar::serve(
            listener,
            Arc::new(state),
            Default::default(),
        ));
        Sidecar {
            base,
            http: reqwest::Client::new(),
            stores,
            redis,
        }
    }

    pub async fn call(
        &self,
        method: &str,
        path: &str,
        body: Option<&str>,
        headers: &[(&str, &str)],
    ) -> Reply {
        let mut request = self
            .http
            .request(method.parse().unwrap(), format!("{}{path}", self.base));
        for (name, value) in headers {
            request = request.header(*name, *value);
        }
        if let Some(body) = body {
            request = request.body(body.to_string());
        }
        let response = request.send().await.unwrap();
        let status = response.status().as_u16();
        let headers = response.headers().clone();
        Reply {
            status,
            headers,
            body: response.text().await.unwrap(),
        }
    }

    pub async fn save(&self, body: &str) -> Reply {
        self.call("POST", "/v1.0/state/statestore", Some(body), &[])
            .await
    }

    pub async fn get(&self, key: &str) -> Reply {
        self.call("GET", &format!("/v1.0/state/statestore/{key}"), None, &[])
            .await
    }

    /// Seconds to live of a stored key, read from the store itself.
    pub async fn ttl(&self, stored_key: &str) -> Option<i64> {
        self.stores["statestore"]
            .store
            .ttl(stored_key)
            .await
            .unwrap()
    }
}

macro_rules! on_both_backends {
    ($(async fn $name:ident($sidecar:ident) $body:block)*) => {
        $(
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn $name() {
                for backend in backends() {
                    let $sidecar = Sidecar::start(backend).await;
                    let run = async { $body };
                    run.await;
                    let _ = backend;
                }
            }
        )*
    };
}

on_both_backends! {
    async fn save_then_get_returns_the_bytes_sent_with_an_etag(s) {
        assert_eq!(s.save(r#"[{"key":"k","value":{"b":2, "a":1.50}}]"#).await.status, 204);
        let reply = s.get("k").await;
        assert_eq!(reply.status, 200);
        assert_eq!(reply.body, r#"{"b":2, "a":1.50}"#, "stored as sent: key order, spacing and number text kept");
        assert_eq!(reply.etag(), Some("1"));
        assert_eq!(reply.headers["content-type"], "application/json");
        assert!(reply.headers.contains_key("traceparent"));
    }

    // Issue 22's report: a TTL past the clock's range panicked inside the in-memory store.
    async fn a_ttl_out_of_range_is_refused_and_the_store_goes_on(s) {
        let huge = s.save(r#"[{"key":"k","value":1,"metadata":{"ttlInSeconds":"9223372036854775807"}}]"#).await;
        assert_eq!((huge.status, huge.error_code().as_str()), (500, "ERR_STATE_SAVE"), "{}", huge.body);
        assert!(huge.json()["message"].as_str().unwrap().contains("incorrect value for metadata 'ttlInSeconds'"));
        let bad = s.save(r#"[{"key":"k","value":1,"metadata":{"ttlInSeconds":"soon"}}]"#).await;
        assert!(bad.json()["message"].as_str().unwrap().contains("invalid syntax"), "{}", bad.body);
        assert_eq!(s.save(r#"[{"key":"k","value":2,"metadata":{"ttlInSeconds":"2147483647"}}]"#).await.status, 204);
        assert_eq!(s.get("k").await.body, "2");
    }

    async fn a_missing_key_is_204_without_etag(s) {
        let reply = s.get("missing").await;
        assert_eq!((reply.status, reply.body.as_str(), reply.etag()), (204, "", None));
    }

    async fn etags_mismatch_409_malformed_400_match_increments(s) {
        s.save(r#"[{"key":"k","value":1}]"#).await;
        let mismatch = s.save(r#"[{"key":"k","value":2,"etag":"7"}]"#).await;
        assert_eq!((mismatch.status, mismatch.error_code().as_str()), (409, "ERR_STATE_SAVE"));
        assert!(mismatch.json()["message"].as_str().unwrap().contains("possible etag mismatch"));
        let malformed = s.save(r#"[{"key":"k","value":2,"etag":"abc"}]"#).await;
        assert_eq!((malformed.status, malformed.error_code().as_str()), (400, "ERR_STATE_SAVE"));
        assert_eq!(s.save(r#"[{"key":"k","value":2,"etag":"1"}]"#).await.status, 204);
        let reply = s.get("k").await;
        assert_eq!((reply.body.as_str(), reply.etag()), ("2", Some("2")));
        assert_eq!(s.save(r#"[{"key":"k","value":3,"etag":"1","options":{"concurrency":"last-write"}}]"#).await.status, 204, "last-write ignores the etag");
    }

    async fn an_etag_on_a_fresh_key_creates_version_1(s) {
        assert_eq!(s.save(r#"[{"key":"new","value":1,"etag":"5"}]"#).await.status, 204);
        assert_eq!(s.get("new").await.etag(), Some("1"));
    }

    async fn delete_with_if_match(s) {
        s.save(r#"[{"key":"k","value":1}]"#).await;
        let wrong = s.call("DELETE", "/v1.0/state/statestore/k", None, &[("If-Match", "9")]).await;
        assert_eq!((wrong.status, wrong.error_code().as_str()), (409, "ERR_STATE_DELETE"));
        assert_eq!(s.call("DELETE", "/v1.0/state/statestore/k", None, &[("If-Match", "1")]).await.status, 204);
        assert_eq!(s.get("k").await.status, 204);
        assert_eq!(s.call("DELETE", "/v1.0/state/statestore/k", None, &[]).await.status, 204, "deleting a missing key is fine");
    }

    async fn request_errors_have_dapr_codes(s) {
        let unknown = s.call("POST", "/v1.0/state/nosuch", Some("[]"), &[]).await;
        assert_eq!((unknown.status, unknown.error_code().as_str()), (400, "ERR_STATE_STORE_NOT_FOUND"));
        assert_eq!(unknown.json()["message"], "state store nosuch is not found");
        let illegal = s.save(r#"[{"key":"a||b","value":1}]"#).await;
        assert_eq!((illegal.status, illegal.error_code().as_str()), (400, "ERR_MALFORMED_REQUEST"));
        assert_eq!(illegal.json()["message"], "api error: code = InvalidArgument desc = input key/keyPrefix 'a||b' can't contain '||'");
        // dapr/kit's details, in Dapr's order and field names (errorCode stays the legacy tag).
        let unknown_details = &unknown.json()["details"];
        assert_eq!(unknown_details, &serde_json::json!([{
            "@type": "type.googleapis.com/google.rpc.ErrorInfo", "domain": "dapr.io",
            "reason": "DAPR_STATE_NOT_FOUND", "metadata": {"appID": "myapp"}}]));
        let details = &illegal.json()["details"];
        assert_eq!(details[0]["@type"], "type.googleapis.com/google.rpc.BadRequest");
        assert_eq!(details[0]["field_violations"][0]["field"], "a||b");
        assert_eq!((details[1]["resource_type"].as_str(), details[1]["resource_name"].as_str()), (Some("state"), Some("statestore")));
        assert_eq!((details[2]["reason"].as_str(), &details[2]["metadata"]), (Some("DAPR_STATE_ILLEGAL_KEY"), &serde_json::Value::Null));
        let not_array = s.save(r#"{"key":"k"}"#).await;
        assert_eq!((not_array.status, not_array.error_code().as_str()), (400, "ERR_MALFORMED_REQUEST"));
        let numeric_etag = s.save(r#"[{"key":"k","value":1,"etag":5}]"#).await;
        assert_eq!(numeric_etag.status, 400, "an etag must be a JSON string");
        let no_key = s.save(r#"[{"value":1}]"#).await;
        assert_eq!(no_key.json()["message"], "\"key\" is a required field");
        assert_eq!(s.save("[]").await.status, 204);
        let bad_concurrency = s.save(r#"[{"key":"k","value":1,"options":{"concurrency":"sometimes"}}]"#).await;
        assert_eq!((bad_concurrency.status, bad_concurrency.error_code().as_str()), (500, "ERR_STATE_SAVE"));
        let unknown_route = s.call("GET", "/v1.0/nothing-here", None, &[]).await;
        assert_eq!((unknown_route.status, unknown_route.error_code().as_str()), (404, "ERR_DIRECT_INVOKE"));
        let wrong_method = s.call("PATCH", "/v1.0/state/statestore", None, &[]).await;
        assert_eq!(wrong_method.status, 404, "wrong methods fall through to invocation, as in Dapr");
    }

    async fn bulk_get_keeps_order_and_dapr_shape(s) {
        s.save(r#"[{"key":"a","value":{"x":1}},{"key":"b","value":"text"}]"#).await;
        let reply = s.call("POST", "/v1.0/state/statestore/bulk", Some(r#"{"keys":["b","zz","a"],"parallelism":2}"#), &[]).await;
        assert_eq!(reply.status, 200);
        assert_eq!(reply.body, r#"[{"key":"b","data":"text","etag":"1"},{"key":"zz"},{"key":"a","data":{"x":1},"etag":"1"}]"#);
        let empty = s.call("POST", "/v1.0/state/statestore/bulk", Some(r#"{"keys":[]}"#), &[]).await;
        assert_eq!(empty.body, "[]");
        let bad = s.call("POST", "/v1.0/state/statestore/bulk", Some("nope"), &[]).await;
        assert!(bad.json()["message"].as_str().unwrap().starts_with("failed deserializing HTTP body"));
    }

    async fn transactions_are_all_or_nothing(s) {
        s.save(r#"[{"key":"keep","value":1},{"key":"gone","value":1}]"#).await;
        let ops = r#"{"operations":[{"operation":"upsert","request":{"key":"keep","value":{"v":2}}},{"operation":"delete","request":{"key":"gone"}},{"operation":"upsert","request":{"Key":"new","Value":[1, 2],"etag":"1"}}]}"#;
        assert_eq!(s.call("POST", "/v1.0/state/statestore/transaction", Some(ops), &[]).await.status, 204);
        assert_eq!(s.get("keep").await.body, r#"{"v":2}"#);
        assert_eq!(s.get("gone").await.status, 204);
        assert_eq!(s.get("new").await.body, "[1, 2]");
        let failing = r#"{"operations":[{"operation":"upsert","request":{"key":"keep","value":3}},{"operation":"delete","request":{"key":"new","etag":"99"}}]}"#;
        let reply = s.call("POST", "/v1.0/state/statestore/transaction", Some(failing), &[]).await;
        assert_eq!((reply.status, reply.error_code().as_str()), (500, "ERR_STATE_TRANSACTION"));
        assert_eq!(s.get("keep").await.body, r#"{"v":2}"#, "the first operation was not applied");
        let merge = r#"{"operations":[{"operation":"merge","request":{"key":"a"}}]}"#;
        let reply = s.call("POST", "/v1.0/state/statestore/transaction", Some(merge), &[]).await;
        assert_eq!((reply.status, reply.error_code().as_str()), (400, "ERR_NOT_SUPPORTED_STATE_OPERATION"));
        let empty = s.call("POST", "/v1.0/state/statestore/transaction", Some(r#"{"operations":[]}"#), &[]).await;
        assert_eq!(empty.status, 204);
    }

    async fn ttl_from_query_metadata_survives_updates_until_persisted(s) {
        s.call("POST", "/v1.0/state/statestore?metadata.ttlInSeconds=100", Some(r#"[{"key":"k","value":1}]"#), &[]).await;
        let ttl = s.ttl("myapp||k").await.unwrap();
        assert!((99..=100).contains(&ttl), "{ttl}");
        s.save(r#"[{"key":"k","value":2}]"#).await;
        assert!(s.ttl("myapp||k").await.is_some(), "a save without TTL keeps the expiry");
        s.save(r#"[{"key":"k","value":3,"metadata":{"ttlInSeconds":"-1"}}]"#).await;
        assert_eq!(s.ttl("myapp||k").await, None, "ttlInSeconds -1 removes it");
        let bad = s.save(r#"[{"key":"k","value":3,"metadata":{"ttlInSeconds":"soon"}}]"#).await;
        assert_eq!(bad.status, 500);
    }

    async fn first_write_blocks_later_writes_without_an_etag(s) {
        assert_eq!(s.save(r#"[{"key":"k","value":1,"options":{"concurrency":"first-write"}}]"#).await.status, 204);
        let blind = s.save(r#"[{"key":"k","value":2}]"#).await;
        assert_eq!((blind.status, blind.error_code().as_str()), (500, "ERR_STATE_SAVE"), "no etag sent, so not a 409");
        assert_eq!(s.save(r#"[{"key":"k","value":2,"etag":"1"}]"#).await.status, 204);
    }

    async fn keys_are_percent_decoded_and_trailing_slashes_ignored(s) {
        assert_eq!(s.save(r#"[{"key":"orders/1 a:b","value":1}]"#).await.status, 204);
        let reply = s.call("GET", "/v1.0/state/statestore/orders%2F1%20a:b/", None, &[]).await;
        assert_eq!((reply.status, reply.body.as_str()), (200, "1"));
        assert_eq!(s.call("POST", "/v1.0/state/statestore/", Some("[]"), &[]).await.status, 204);
    }

    async fn traceparent_is_echoed(s) {
        let parent = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01";
        let reply = s.call("GET", "/v1.0/state/statestore/x", None, &[("traceparent", parent)]).await;
        assert_eq!(reply.headers["traceparent"], parent);
    }
}

#[tokio::test]
async fn redis_holds_daprs_exact_layout() {
    let Some(_) = RedisServer::start() else {
        return;
    };
    let s = Sidecar::start(Backend::Redis).await;
    let redis = s.redis.as_ref().unwrap();
    s.save(
        r#"[{"key":"order-1","value":{"orderId":1,"qty":2}},{"key":"greeting","value":"hello"}]"#,
    )
    .await;
    s.save(r#"[{"key":"order-1","value":{"orderId":1,"qty":3},"etag":"1"}]"#)
        .await;
    let hash: BTreeMap<String, String> = redis.query(&["HGETALL", "myapp||order-1"]);
    assert_eq!(
        hash,
        BTreeMap::from([
            ("data".into(), r#"{"orderId":1,"qty":3}"#.into()),
            ("version".into(), "2".into())
        ])
    );
    assert_eq!(redis.query::<String>(&["TYPE", "myapp||order-1"]), "hash");
    assert_eq!(
        redis.query::<String>(&["HGET", "myapp||greeting", "data"]),
        "\"hello\"",
        "strings keep their JSON quotes"
    );
    assert_eq!(redis.query::<i64>(&["TTL", "myapp||order-1"]), -1);
    s.call(
        "POST",
        "/v1.0/state/statestore?metadata.ttlInSeconds=2",
        Some(r#"[{"key":"short","value":1}]"#),
        &[],
    )
    .await;
    let ttl: i64 = redis.query(&["TTL", "myapp||short"]);
    assert!((1..=2).contains(&ttl), "{ttl}");
    s.save(r#"[{"key":"fw","value":1,"options":{"concurrency":"first-write"}}]"#)
        .await;
    assert_eq!(
        redis.query::<String>(&["HGET", "myapp||fw", "first-write"]),
        "0"
    );
    // A value another tool wrote as a plain string reads back, without an etag.
    redis.query::<String>(&["SET", "myapp||legacy", "\"plain\""]);
    let legacy = s.get("legacy").await;
    assert_eq!(
        (legacy.status, legacy.body.as_str(), legacy.etag()),
        (200, "\"plain\"", None)
    );
}

#[tokio::test]
async fn key_prefix_strategies_and_scopes() {
    for (prefix, stored) in [
        ("name", "statestore||k"),
        ("none", "k"),
        ("Shared", "shared||k"),
        ("appid", "myapp||k"),
    ] {
        let metadata = format!("  - name: keyPrefix\n    value: {prefix}\n");
        let s = Sidecar::start_with(
            Backend::Memory,
            Options {
                extra_metadata: &metadata,
                ..Options::default()
            },
        )
        .await;
        s.save(r#"[{"key":"k","value":1}]"#).await;
        assert!(
            s.stores["statestore"]
                .store
                .get(stored)
                .await
                .unwrap()
                .is_some(),
            "{prefix} → {stored}"
        );
    }
    let scoped = Sidecar::start_with(
        Backend::Memory,
        Options {
            scopes: "scopes: [other-app]\n",
            ..Options::default()
        },
    )
    .await;
    let reply = scoped.save(r#"[{"key":"k","value":1}]"#).await;
    assert_eq!(
        (reply.status, reply.error_code().as_str()),
        (400, "ERR_STATE_STORE_NOT_FOUND")
    );
}

#[tokio::test]
async fn the_api_token_is_required_except_for_health() {
    let s = Sidecar::start_with(
        Backend::Memory,
        Options {
            token: Some("t0ken"),
            ..Options::default()
        },
    )
    .await;
    let denied = s.get("k").await;
    assert_eq!(
        (denied.status, denied.body.as_str()),
        (401, "invalid api token\n")
    );
    assert_eq!(s.call("GET", "/v1.0/healthz", None, &[]).await.status, 204);
    assert_eq!(
        s.call(
            "GET",
            "/v1.0/state/statestore/k",
            None,
            &[("dapr-api-token", "t0ken")]
        )
        .await
        .status,
        204
    );
    assert_eq!(
        s.call(
            "GET",
            "/v1.0/state/statestore/k",
            None,
            &[("dapr-api-token", "wrong")]
        )
        .await
        .status,
        401
    );
}

#[tokio::test]
async fn bodies_over_the_limit_are_refused() {
    let s = Sidecar::start_with(
        Backend::Memory,
        Options {
            max_body_size: 1024,
            ..Options::default()
        },
    )
    .await;
    let big = format!(r#"[{{"key":"k","value":"{}"}}]"#, "x".repeat(2048));
    let reply = s.save(&big).await;
    assert_eq!(
        (reply.status, reply.error_code().as_str()),
        (413, "ERR_MALFORMED_REQUEST")
    );
    assert!(
        reply.json()["message"]
            .as_str()
            .unwrap()
            .contains("request body too large")
    );
    assert_eq!(s.save(r#"[{"key":"k","value":"small"}]"#).await.status, 204);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dead_redis_is_a_quick_clear_500_and_the_sidecar_recovers() {
    if !crate::common::have("redis-server") {
        return;
    }
    let mut s = Sidecar::start(Backend::Redis).await;
    assert_eq!(s.save(r#"[{"key":"k","value":1}]"#).await.status, 204);
    let port = s.redis.as_ref().unwrap().port;
    drop(s.redis.take());
    let started = std::time::Instant::now();
    let reply = s.get("k").await;
    assert_eq!(
        (reply.status, reply.error_code().as_str()),
        (500, "ERR_STATE_GET")
    );
    assert!(
        reply.json()["message"]
            .as_str()
            .unwrap()
            .contains("is unreachable"),
        "{}",
        reply.body
    );
    assert!(
        started.elapsed() < std::time::Duration::from_secs(6),
        "failed fast, did not hang"
    );
    s.redis = Some(RedisServer::start_on(port));
    let recovered =
        crate::common::wait_until_async(std::time::Duration::from_secs(10), || true).await;
    assert!(recovered);
    let mut status = 0;
    for _ in 0..40 {
        status = s.save(r#"[{"key":"k","value":2}]"#).await.status;
        if status == 204 {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(250)).await;
    }
    assert_eq!(status, 204, "the sidecar reconnected by itself");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_password_protected_redis_through_a_secret() {
    if !crate::common::have("redis-server") {
        return;
    }
    let server = RedisServer::start_with_password("s3cret");
    let port = server.port;
    let folder = tempfile::tempdir().unwrap();
    std::fs::write(
        folder.path().join("secrets.json"),
        r#"{"redis": {"password": "s3cret"}}"#,
    )
    .unwrap();
    let yaml = format!(
        "apiVersion: dapr.io/v1alpha1\nkind: Component\nmetadata: {{ name: statestore }}\nspec:\n  type: state.redis\n  version: v1\n  metadata:\n  - name: redisHost\n    value: 127.0.0.1:{port}\n  - name: redisPassword\n    secretKeyRef: {{ name: \"redis:password\" }}\nauth: {{ secretStore: files }}\n---\napiVersion: dapr.io/v1alpha1\nkind: Component\nmetadata: {{ name: files }}\nspec:\n  type: secretstores.local.file\n  version: v1\n  metadata:\n  - name: secretsFile\n    value: secrets.json\n"
    );
    std::fs::write(folder.path().join("components.yaml"), yaml).unwrap();
    let loaded =
        components::load(Some(folder.path()), folder.path()).unwrap_or_else(|e| panic!("{e}"));
    let plan = RedisPlan::Embedded {
        reason: "test".into(),
    };
    let (stores, _) = components::stores::state_stores(&loaded, &plan).unwrap();
    let entry = &stores["statestore"];
    let write = daca::state::Write {
        key: "k".into(),
        value: b"1".to_vec(),
        etag: None,
        first_write: false,
        ttl: None,
    };
    let mut result = Err(daca::state::StoreError::Failed("not tried".into()));
    for _ in 0..40 {
        result = entry
            .store
            .apply(&[daca::state::Op::Upsert(write.clone())])
            .await;
        if result.is_ok() {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    assert_eq!(
        result,
        Ok(()),
        "AUTH with the password from the secrets file"
    );
    assert_eq!(server.query::<String>(&["HGET", "k", "data"]), "1");
}
