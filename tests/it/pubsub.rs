//! Pub/sub, invocation, metadata, health and secrets through real sidecars on real ports, with
//! a real subscriber app (an axum server in this process) and, for Redis, a real redis-server.
//! Each scenario runs on both backends: Redis Streams and in memory.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::extract::{Request, State};
use axum::http::StatusCode;
use axum::response::IntoResponse;
use daca::channel::AppChannel;
use daca::pubsub::{self, delivery::Subscriber};
use daca::redis::RedisPlan;
use daca::sidecar::{self, Components, Shared, SidecarState};
use serde_json::{Value, json};

use crate::common::{RedisServer, wait_until_async};

/// What the subscriber app received: path, headers, body.
#[derive(Clone, Debug)]
struct Received {
    path: String,
    headers: BTreeMap<String, String>,
    body: Value,
}

#[derive(Clone, Default)]
struct App {
    received: Arc<Mutex<Vec<Received>>>,
    /// How many times each event id was answered RETRY so far.
    retries: Arc<Mutex<BTreeMap<String, u32>>>,
}

/// The subscriber: programmatic subscriptions with rules, a default and a dead-letter topic;
/// it answers as the event's `data.answer` asks.
async fn app_handler(State(app): State<App>, request: Request) -> axum::response::Response {
    let path = request.uri().path().to_string();
    let query = request
        .uri()
        .query()
        .map(|q| format!("?{q}"))
        .unwrap_or_default();
    if path == "/dapr/subscribe" {
        return axum::Json(json!([
            {"pubsubname": "pubsub", "topic": "orders", "routes": {
                "rules": [{"match": "event.data.kind == \"widget\"", "path": "/widgets"}],
                "default": "/orders"}, "deadLetterTopic": "poison"},
            {"pubsubname": "pubsub", "topic": "strict", "routes": {
                "rules": [{"match": "event.type == \"special\"", "path": "special"}]}},
            {"pubsubname": "pubsub", "topic": "poison", "route": "/poison"}
        ]))
        .into_response();
    }
    let headers: BTreeMap<String, String> = request
        .headers()
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_str().unwrap_or_default().to_string()))
        .collect();
    let method = request.method().to_string();
    let bytes = axum::body::to_bytes(request.into_body(), 1 << 20)
        .await
        .unwrap();
    if path.starts_with("/api/") {
        let body = json!({"method": method, "path": format!("{path}{query}"), "headers": headers,
            "body": String::from_utf8_lossy(&bytes)});
        return (
            StatusCode::IM_A_TEAPOT,
            [("x-app", "yes")],
            axum::Json(body),
        )
            .into_response();
    }
    let body: Value = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
    app.received.lock().unwrap().push(Received {
        path,
        headers,
        body: body.clone(),
    });
    let id = body["id"].as_str().unwrap_or_default().to_string();
    let path = app
        .received
        .lock()
        .unwrap()
        .last()
        .map(|r| r.path.clone())
        .unwrap_or_default();
    match body["data"]["answer"].as_str() {
        Some("retry") => {
            *app.retries
                .lock()
                .unwrap()
                .entry(format!("{path} {id}"))
                .or_default() += 1;
            axum::Json(json!({"status": "RETRY"})).into_response()
        }
        Some("drop") => axum::Json(json!({"status": "DROP"})).into_response(),
        Some("404") => StatusCode::NOT_FOUND.into_response(),
        _ => axum::Json(json!({"status": "SUCCESS"})).into_response(),
    }
}

struct World {
    publisher: u16,
    app: App,
    redis: Option<RedisServer>,
    _dir: tempfile::TempDir,
}

const COMPONENTS: &str = "apiVersion: dapr.io/v1alpha1\nkind: Component\nmetadata: { name: pubsub }\nspec:\n  type: pubsub.redis\n  version: v1\n  metadata:\n  - name: redisHost\n    value: localhost:6379\n  - name: publishingScopes\n    value: \"checkout=orders,strict,poison,other,decl\"\n---\napiVersion: dapr.io/v1alpha1\nkind: Component\nmetadata: { name: envsecrets }\nspec:\n  type: secretstores.local.env\n  version: v1\n---\napiVersion: dapr.io/v1alpha1\nkind: Component\nmetadata: { name: filesecrets }\nspec:\n  type: secretstores.local.file\n  version: v1\n  metadata:\n  - name: secretsFile\n    value: secrets.json\n---\napiVersion: dapr.io/v2alpha1\nkind: Subscription\nmetadata: { name: decl }\nspec:\n  pubsubname: pubsub\n  topic: decl\n  routes:\n    rules:\n    - match: event.data.n > 5\n      path: /decl-big\n    default: decl\nscopes: [orders]\n---\napiVersion: dapr.io/v1alpha1\nkind: Subscription\nmetadata: { name: elsewhere }\nspec: { pubsubname: pubsub, topic: other, route: /other }\nscopes: [someone-else]\n";

impl World {
    /// Two apps: `checkout` (no app port; publishes) and `orders` (the subscriber app above).
    async fn start(redis: bool) -> World {
        let redis = if redis { RedisServer::start() } else { None };
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("components.yaml"), COMPONENTS).unwrap();
        std::fs::write(
            dir.path().join("secrets.json"),
            r#"{"db":{"password":"pw"}}"#,
        )
        .unwrap();
        let plan = match &redis {
            Some(server) => RedisPlan::External { url: server.url() },
            None => RedisPlan::Embedded {
                reason: "test".into(),
            },
        };
        let (components, _) = Components::load(Some(dir.path()), dir.path(), &plan).unwrap();
        let app = App::default();
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let app_port = listener.local_addr().unwrap().port();
        let router = axum::Router::new()
            .fallback(app_handler)
            .with_state(app.clone());
        tokio::spawn(async move { axum::serve(listener, router).await });
        let shared = Arc::new(Shared::new(components, None));
        shared.set_app(AppChannel::unsupervised("checkout", None));
        let mut channel = AppChannel::unsupervised("orders", Some(app_port));
        channel.app_token = Some("app-token".into());
        shared.set_app(channel);
        let mut publisher = 0;
        for id in ["checkout", "orders"] {
            let state = SidecarState::new(id, shared.clone(), 4 << 20);
            if id == "orders" {
                Subscriber::new(
                    shared.app(id).unwrap(),
                    shared.components().pubsubs.clone(),
                    &shared.components().declarative,
                    state.subscriptions.clone(),
                )
                .spawn();
            }
            let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
            if id == "checkout" {
                publisher = listener.local_addr().unwrap().port();
            }
            tokio::spawn(sidecar::serve(
                listener,
                Arc::new(state),
                Default::default(),
            ));
        }
        World {
            publisher,
            app,
            redis,
            _dir: dir,
        }
    }

    fn url(&self, path: &str) -> String {
        format!("http://127.0.0.1:{}{path}", self.publisher)
    }

    async fn publish(&self, topic: &str, content_type: &str, body: &str) -> (u16, String) {
        let response = reqwest::Client::new()
            .post(self.url(&format!("/v1.0/publish/pubsub/{topic}")))
            .header("content-type", content_type)
            .body(body.to_string())
            .send()
            .await
            .unwrap();
        (response.status().as_u16(), response.text().await.unwrap())
    }

    /// Waits until the app got something at `path` matching `check`.
    async fn wait_for(&self, path: &str, check: impl Fn(&Received) -> bool) -> Received {
        let app = self.app.clone();
        let found = wait_until_async(Duration::from_secs(20), || {
            app.received
                .lock()
                .unwrap()
                .iter()
                .any(|r| r.path == path && check(r))
        })
        .await;
        assert!(
            found,
            "nothing matching arrived at {path}: {:?}",
            self.app.received.lock().unwrap()
        );
        let received = self.app.received.lock().unwrap();
        received
            .iter()
            .find(|r| r.path == path && check(r))
            .unwrap()
            .clone()
    }
}

fn backends() -> Vec<bool> {
    if RedisServer::start().is_some() {
        vec![true, false]
    } else {
        vec![false]
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn published_events_reach_the_routes_their_rules_pick_with_daprs_envelope_and_headers() {
    for redis in backends() {
        let world = World::start(redis).await;
        assert_eq!(
            world
                .publish("orders", "application/json", r#"{"kind":"widget","n":1}"#)
                .await
                .0,
            204
        );
        assert_eq!(
            world
                .publish("orders", "application/json", r#"{"kind":"gadget","n":2}"#)
                .await
                .0,
            204
        );
        let widget = world
            .wait_for("/widgets", |r| r.body["data"]["n"] == 1)
            .await;
        let event = &widget.body;
        assert_eq!(event["source"], "checkout");
        assert_eq!(event["type"], "com.dapr.event.sent");
        assert_eq!(event["specversion"], "1.0");
        assert_eq!(event["topic"], "orders");
        assert_eq!(event["pubsubname"], "pubsub");
        assert_eq!(event["datacontenttype"], "application/json");
        assert_eq!(event["traceid"], event["traceparent"]);
        assert!(event["id"].as_str().unwrap().len() == 36);
        assert!(event["time"].as_str().unwrap().ends_with('Z'));
        assert_eq!(
            widget.headers["content-type"],
            "application/cloudevents+json"
        );
        assert_eq!(widget.headers["pubsubname"], "pubsub");
        assert_eq!(
            widget.headers["traceparent"],
            event["traceparent"].as_str().unwrap()
        );
        assert_eq!(
            widget.headers.get("dapr-api-token").map(String::as_str),
            Some("app-token"),
            "APP_API_TOKEN goes to the app"
        );
        world
            .wait_for("/orders", |r| r.body["data"]["n"] == 2)
            .await;

        if let Some(server) = &world.redis {
            // Dapr's layout: a stream named as the topic, fields data + metadata, group = app-id.
            let entries: Vec<(String, Vec<(String, String)>)> = redis::cmd("XRANGE")
                .arg("orders")
                .arg("-")
                .arg("+")
                .query(&mut server.connection().unwrap())
                .unwrap();
            assert_eq!(entries.len(), 2);
            let fields = &entries[0].1;
            assert_eq!(fields[0].0, "data");
            assert!(
                fields[0].1.starts_with(
                    r#"{"data":{"kind":"widget","n":1},"datacontenttype":"application/json","id":""#
                ),
                "{}",
                fields[0].1
            );
            assert_eq!(fields[1], ("metadata".to_string(), "{}".to_string()));
            let groups: Vec<redis::Value> = redis::cmd("XINFO")
                .arg("GROUPS")
                .arg("orders")
                .query(&mut server.connection().unwrap())
                .unwrap();
            assert_eq!(groups.len(), 1);
            assert!(
                format!("{:?}", groups[0]).contains("orders"),
                "{:?}",
                groups[0]
            );
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn retry_then_dead_letter_drop_and_404_and_unmatched_events() {
    for redis in backends() {
        let world = World::start(redis).await;
        world
            .publish("orders", "application/json", r#"{"answer":"retry","n":1}"#)
            .await;
        let dead = world
            .wait_for("/poison", |r| r.body["data"]["n"] == 1)
            .await;
        assert_eq!(
            dead.body["topic"], "orders",
            "the original event, unchanged"
        );
        let tries = world
            .app
            .retries
            .lock()
            .unwrap()
            .iter()
            .find(|(k, _)| k.starts_with("/orders "))
            .map(|(_, n)| *n);
        assert_eq!(
            tries,
            Some(1),
            "without a Resiliency policy Dapr makes one attempt before the dead letter"
        );

        world
            .publish("orders", "application/json", r#"{"answer":"drop","n":2}"#)
            .await;
        world
            .wait_for("/poison", |r| r.body["data"]["n"] == 2)
            .await;
        world
            .publish("orders", "application/json", r#"{"answer":"404","n":3}"#)
            .await;
        world
            .wait_for("/poison", |r| r.body["data"]["n"] == 3)
            .await;

        // `strict` has a rule and no default: an unmatched event is dropped, a matched one arrives.
        world.publish("strict", "text/plain", "plain").await;
        let special =
            r#"{"specversion":"1.0","type":"special","source":"me","id":"s1","data":"x"}"#;
        world
            .publish("strict", "application/cloudevents+json", special)
            .await;
        let got = world.wait_for("/special", |_| true).await;
        assert_eq!(
            got.body["id"], "s1",
            "a CloudEvent is passed through with its id"
        );
        tokio::time::sleep(Duration::from_millis(300)).await;
        let received = world.app.received.lock().unwrap();
        assert_eq!(
            received
                .iter()
                .filter(|r| r.body["topic"] == "strict")
                .count(),
            1
        );
        let drops = received.iter().filter(|r| r.body["data"]["n"] == 2).count();
        assert_eq!(
            drops, 2,
            "a DROP is delivered once, then only its dead letter"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn declarative_subscriptions_route_by_their_rules_and_honour_scopes() {
    for redis in backends() {
        let world = World::start(redis).await;
        world
            .publish("decl", "application/json", r#"{"n":9}"#)
            .await;
        world
            .publish("decl", "application/json", r#"{"n":1}"#)
            .await;
        world
            .publish("other", "application/json", r#"{"n":2}"#)
            .await;
        world
            .wait_for("/decl-big", |r| r.body["data"]["n"] == 9)
            .await;
        world.wait_for("/decl", |r| r.body["data"]["n"] == 1).await;
        tokio::time::sleep(Duration::from_millis(300)).await;
        let received = world.app.received.lock().unwrap();
        assert!(
            !received.iter().any(|r| r.path == "/other"),
            "scoped to another app"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn publish_errors_are_daprs() {
    let world = World::start(false).await;
    let client = reqwest::Client::new();
    let unknown = client
        .post(world.url("/v1.0/publish/nosuch/orders"))
        .body("x")
        .send()
        .await
        .unwrap();
    assert_eq!(unknown.status(), 404);
    let body: Value = unknown.json().await.unwrap();
    assert_eq!(body["errorCode"], "ERR_PUBSUB_NOT_FOUND");
    assert_eq!(body["message"], "pubsub nosuch is not found");
    assert_eq!(body["details"][0]["reason"], "DAPR_PUBSUB_NOT_FOUND");
    let raw = client
        .post(world.url("/v1.0/publish/pubsub/orders?metadata.rawPayload=maybe"))
        .body("x")
        .send()
        .await
        .unwrap();
    assert_eq!(raw.status(), 400);
    assert_eq!(
        raw.json::<Value>().await.unwrap()["errorCode"],
        "ERR_PUBSUB_REQUEST_METADATA"
    );
    let forbidden = client
        .post(world.url("/v1.0/publish/pubsub/secret-topic"))
        .body("x")
        .send()
        .await
        .unwrap();
    assert_eq!(forbidden.status(), 403);
    let forbidden: Value = forbidden.json().await.unwrap();
    assert_eq!(forbidden["errorCode"], "ERR_PUBSUB_FORBIDDEN");
    assert_eq!(forbidden["details"][0]["resource_name"], "pubsub");
    assert_eq!(forbidden["details"][1]["reason"], "DAPR_PUBSUB_FORBIDDEN");
    assert_eq!(forbidden["details"][1]["metadata"]["topic"], "secret-topic");
    let bulk = client
        .post(world.url("/v1.0-alpha1/publish/bulk/pubsub/orders"))
        .body(r#"[{"entryId":"1","event":{"n":10},"contentType":"application/json"},{"entryId":"2","event":"hi","contentType":"text/plain"}]"#)
        .send().await.unwrap();
    assert_eq!(bulk.status(), 204);
    world
        .wait_for("/orders", |r| r.body["data"]["n"] == 10)
        .await;
    world.wait_for("/orders", |r| r.body["data"] == "hi").await;
    let duplicate = client
        .post(world.url("/v1.0-alpha1/publish/bulk/pubsub/orders"))
        .body(r#"[{"entryId":"1","event":1},{"entryId":"1","event":2}]"#)
        .send()
        .await
        .unwrap();
    assert_eq!(duplicate.status(), 400);
    let duplicate: Value = duplicate.json().await.unwrap();
    assert_eq!(duplicate["errorCode"], "ERR_PUBSUB_EVENTS_SER");
    assert_eq!(
        duplicate["details"][1]["reason"],
        "DAPR_PUBSUB_MARSHAL_EVENTS"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn invocation_forwards_verb_path_query_headers_and_body_and_returns_the_answer_verbatim() {
    let world = World::start(false).await;
    let client = reqwest::Client::new();
    let answer = client
        .put(world.url("/v1.0/invoke/orders/method/api/x?q=1&r=2"))
        .header("h", "v")
        .header("dapr-api-token", "not forwarded")
        .body("payload")
        .send()
        .await
        .unwrap();
    assert_eq!(answer.status(), 418, "the app's status passes through");
    assert_eq!(answer.headers()["x-app"], "yes");
    let seen: Value = answer.json().await.unwrap();
    assert_eq!(seen["method"], "PUT");
    assert_eq!(seen["path"], "/api/x?q=1&r=2");
    assert_eq!(seen["body"], "payload");
    assert_eq!(seen["headers"]["h"], "v");
    assert_eq!(seen["headers"]["dapr-caller-app-id"], "checkout");
    assert_eq!(seen["headers"]["dapr-callee-app-id"], "orders");
    assert_eq!(
        seen["headers"]["dapr-api-token"], "app-token",
        "the caller's token stays behind; the app gets APP_API_TOKEN"
    );

    let by_header = client
        .get(world.url("/api/y"))
        .header("dapr-app-id", "orders")
        .send()
        .await
        .unwrap();
    assert_eq!(by_header.status(), 418);
    assert_eq!(by_header.json::<Value>().await.unwrap()["path"], "/api/y");
    let by_basic_auth = client
        .get(world.url("/api/z"))
        .header("authorization", "Basic ZGFwci1hcHAtaWQ6b3JkZXJz") // dapr-app-id:orders
        .send()
        .await
        .unwrap();
    assert_eq!(by_basic_auth.status(), 418);
    assert_eq!(
        by_basic_auth.json::<Value>().await.unwrap()["path"],
        "/api/z"
    );
    let cleaned = client
        .get(world.url("/v1.0/invoke/orders/method/api/a/../b/"))
        .send()
        .await
        .unwrap();
    assert_eq!(cleaned.json::<Value>().await.unwrap()["path"], "/api/b");

    let unknown = client
        .get(world.url("/v1.0/invoke/ghost/method/x"))
        .send()
        .await
        .unwrap();
    assert_eq!(unknown.status(), 500);
    let body: Value = unknown.json().await.unwrap();
    assert_eq!(body["errorCode"], "ERR_DIRECT_INVOKE");
    assert!(
        body["message"]
            .as_str()
            .unwrap()
            .starts_with("failed to invoke, id: ghost, err: ")
    );
    let no_port = client
        .get(world.url("/v1.0/invoke/checkout/method/x"))
        .send()
        .await
        .unwrap();
    assert_eq!(no_port.status(), 500);
    let nothing = client.get(world.url("/nope")).send().await.unwrap();
    assert_eq!(nothing.status(), 404);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metadata_health_and_secrets() {
    // SAFETY: set before the secret store reads it; no other test reads this variable.
    unsafe { std::env::set_var("DACA_TEST_SECRET", "s3") };
    let world = World::start(false).await;
    let client = reqwest::Client::new();
    let get = |path: &str| client.get(world.url(path)).send();
    assert_eq!(get("/v1.0/healthz").await.unwrap().status(), 204);
    assert_eq!(get("/v1.0/healthz/outbound").await.unwrap().status(), 204);
    let wrong = get("/v1.0/healthz?appid=other").await.unwrap();
    assert_eq!(wrong.status(), 500);
    assert_eq!(
        wrong.json::<Value>().await.unwrap()["errorCode"],
        "ERR_HEALTH_APPID_NOT_MATCH"
    );

    let put = client
        .put(world.url("/v1.0/metadata/team"))
        .body("blue")
        .send()
        .await
        .unwrap();
    assert_eq!(put.status(), 204);
    let metadata: Value = get("/v1.0/metadata").await.unwrap().json().await.unwrap();
    assert_eq!(metadata["id"], "checkout");
    assert_eq!(metadata["extended"]["team"], "blue");
    assert!(metadata["extended"]["daprRuntimeVersion"].is_string());
    let names: Vec<&str> = metadata["components"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["envsecrets", "filesecrets", "pubsub"]);
    assert!(
        metadata.get("appConnectionProperties").is_none(),
        "checkout has no app port"
    );

    let secret: Value = get("/v1.0/secrets/envsecrets/DACA_TEST_SECRET")
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(secret, json!({"DACA_TEST_SECRET": "s3"}));
    let missing: Value = get("/v1.0/secrets/envsecrets/DACA_NOPE")
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(
        missing,
        json!({"DACA_NOPE": ""}),
        "Dapr's env store answers empty, not an error"
    );
    let hidden: Value = get("/v1.0/secrets/envsecrets/DAPR_API_TOKEN")
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(hidden, json!({"DAPR_API_TOKEN": ""}));
    let nested: Value = get("/v1.0/secrets/filesecrets/db:password")
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(nested, json!({"db:password": "pw"}));
    let absent = get("/v1.0/secrets/filesecrets/nope").await.unwrap();
    assert_eq!(absent.status(), 500);
    assert_eq!(
        absent.json::<Value>().await.unwrap()["errorCode"],
        "ERR_SECRET_GET"
    );
    let bulk: Value = get("/v1.0/secrets/filesecrets/bulk")
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(bulk, json!({"db:password": {"db:password": "pw"}}));
    let unknown = get("/v1.0/secrets/nosuch/x").await.unwrap();
    assert_eq!(unknown.status(), 401);
    assert_eq!(
        unknown.json::<Value>().await.unwrap()["errorCode"],
        "ERR_SECRET_STORE_NOT_FOUND"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn health_and_invocation_follow_the_apps_readiness_and_shutdown_stops_the_app() {
    use daca::supervisor::{AppState, AppStatus};
    let status = |state: AppState| -> AppStatus {
        let mut s: AppStatus = serde_json::from_value(json!({"name": "web", "state": "pending",
            "pid": null, "restarts": 0, "started_at_ms": null, "ready_after_ms": null,
            "last_exit": null, "message": null}))
        .unwrap();
        s.state = state;
        s.pid = Some(42);
        s
    };
    let (sender, receiver) = tokio::sync::watch::channel(status(AppState::Starting));
    let shared = Arc::new(Shared::with_stores(BTreeMap::new(), None));
    let app_port = crate::common::free_port();
    shared.set_app(AppChannel::supervised(
        "web",
        Some(app_port),
        None,
        receiver,
    ));
    let mut state = SidecarState::new("web", shared, 1 << 20);
    state.invoke_wait = Duration::from_millis(400);
    let stopped = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let flag = stopped.clone();
    state.on_shutdown = Some(Box::new(move || {
        flag.store(true, std::sync::atomic::Ordering::SeqCst)
    }));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(sidecar::serve(
        listener,
        Arc::new(state),
        Default::default(),
    ));
    let client = reqwest::Client::new();
    let health = client
        .get(format!("{base}/v1.0/healthz"))
        .send()
        .await
        .unwrap();
    assert_eq!(health.status(), 500, "not ready while the app starts");
    assert_eq!(
        health.json::<Value>().await.unwrap()["errorCode"],
        "ERR_HEALTH_NOT_READY"
    );
    let outbound = client
        .get(format!("{base}/v1.0/healthz/outbound"))
        .send()
        .await
        .unwrap();
    assert_eq!(outbound.status(), 204, "outbound does not wait for the app");
    let invoke = client
        .get(format!("{base}/v1.0/invoke/web/method/x"))
        .send()
        .await
        .unwrap();
    assert_eq!(invoke.status(), 500);
    let body: Value = invoke.json().await.unwrap();
    assert_eq!(
        body["message"],
        "failed to invoke, id: web, err: app web is not ready (it is starting)"
    );
    // An invocation made while the app restarts waits for it and gets its answer.
    let waiting = tokio::spawn({
        let (client, url) = (client.clone(), format!("{base}/v1.0/invoke/web/method/x"));
        async move { client.get(url).send().await.unwrap() }
    });
    tokio::time::sleep(Duration::from_millis(100)).await;
    let app = tokio::net::TcpListener::bind(("127.0.0.1", app_port))
        .await
        .unwrap();
    let router = axum::Router::new().route("/x", axum::routing::get(|| async { "back" }));
    tokio::spawn(async move { axum::serve(app, router).await });
    sender.send(status(AppState::Ready)).unwrap();
    let answer = waiting.await.unwrap();
    assert_eq!(answer.status(), 200);
    assert_eq!(answer.text().await.unwrap(), "back");
    let metadata: Value = client
        .get(format!("{base}/v1.0/metadata"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(
        metadata["appConnectionProperties"],
        json!({"port": app_port, "protocol": "http", "channelAddress": "127.0.0.1"})
    );
    sender.send(status(AppState::Ready)).unwrap();
    let health = client
        .get(format!("{base}/v1.0/healthz"))
        .send()
        .await
        .unwrap();
    assert_eq!(health.status(), 204);
    let shutdown = client
        .post(format!("{base}/v1.0/shutdown"))
        .send()
        .await
        .unwrap();
    assert_eq!(shutdown.status(), 204);
    assert!(stopped.load(std::sync::atomic::Ordering::SeqCst));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_streams_redeliver_idle_entries_and_trim_with_max_len_approx() {
    let Some(server) = RedisServer::start() else {
        return;
    };
    let info = redis::IntoConnectionInfo::into_connection_info(server.url().as_str()).unwrap();
    let broker = pubsub::Broker::Redis(pubsub::StreamsBroker::new(info, Some(10)));
    let mut consumer = broker.consumer("t", "g").await;
    consumer.ensure_group().await.unwrap();
    for n in 0..500 {
        broker
            .publish("t", format!("{n}").as_bytes(), &BTreeMap::new())
            .await
            .unwrap();
    }
    let length: u64 = redis::cmd("XLEN")
        .arg("t")
        .query(&mut server.connection().unwrap())
        .unwrap();
    assert!(length < 500, "MAXLEN ~ 10 trims (approximately): {length}");
    let read = consumer
        .read_new(5, Duration::from_millis(100))
        .await
        .unwrap();
    assert_eq!(read.len(), 5);
    consumer.ack(&read[0].id).await.unwrap();
    assert!(
        consumer
            .claim_idle(Duration::from_secs(60), 10)
            .await
            .unwrap()
            .is_empty(),
        "not idle long enough"
    );
    tokio::time::sleep(Duration::from_millis(50)).await;
    let again = consumer
        .claim_idle(Duration::from_millis(20), 10)
        .await
        .unwrap();
    let ids: Vec<&str> = again.iter().map(|m| m.id.as_str()).collect();
    let expected: Vec<&str> = read[1..].iter().map(|m| m.id.as_str()).collect();
    assert_eq!(ids, expected, "the unacknowledged four come back");
    let pending = consumer.read_pending("0", 10).await.unwrap();
    assert_eq!(pending.len(), 4);
}
