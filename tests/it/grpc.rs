//! The gRPC API with a tonic client (the Dapr Rust SDK's generated client) against real
//! sidecars, on a real redis-server and in memory: every served method, Dapr's status codes,
//! HTTP/gRPC interoperability on the same keys and topics, the API token, Unimplemented.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::time::Duration;

use daca::channel::AppChannel;
use daca::redis::RedisPlan;
use daca::sidecar::{self, Shared, SidecarState};
use dapr::dapr::proto::common::v1 as common;
use dapr::dapr::proto::runtime::v1 as rt;
use dapr::dapr::proto::runtime::v1::dapr_client::DaprClient;
use tonic::Code;
use tonic::transport::Channel;

use crate::common::RedisServer;

const COMPONENTS: &str = "apiVersion: dapr.io/v1alpha1\nkind: Component\nmetadata: { name: statestore }\nspec:\n  type: state.redis\n  version: v1\n  metadata:\n  - name: redisHost\n    value: localhost:6379\n---\napiVersion: dapr.io/v1alpha1\nkind: Component\nmetadata: { name: pubsub }\nspec:\n  type: pubsub.redis\n  version: v1\n  metadata:\n  - name: redisHost\n    value: localhost:6379\n---\napiVersion: dapr.io/v1alpha1\nkind: Component\nmetadata: { name: files }\nspec:\n  type: secretstores.local.file\n  version: v1\n  metadata:\n  - name: secretsFile\n    value: secrets.json\n";

struct Sidecar {
    grpc: DaprClient<Channel>,
    http: String,
    shared: Arc<Shared>,
    _redis: Option<RedisServer>,
    _dir: tempfile::TempDir,
}

async fn start(redis: bool, token: Option<&str>) -> Sidecar {
    let redis = if redis { RedisServer::start() } else { None };
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("c.yaml"), COMPONENTS).unwrap();
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
    let (loaded, _) = sidecar::Components::load(Some(dir.path()), dir.path(), &plan).unwrap();
    let shared = Arc::new(Shared::new(loaded, token.map(String::from)));
    shared.set_app(AppChannel::unsupervised("myapp", None));
    let state = Arc::new(SidecarState::new("myapp", shared.clone(), 1 << 20));
    let http = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let grpc = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let (http_port, grpc_port) = (
        http.local_addr().unwrap().port(),
        grpc.local_addr().unwrap().port(),
    );
    tokio::spawn(sidecar::serve(http, state.clone(), Default::default()));
    tokio::spawn(sidecar::grpc::serve(grpc, state, Default::default()));
    let channel = Channel::from_shared(format!("http://127.0.0.1:{grpc_port}"))
        .unwrap()
        .connect()
        .await
        .unwrap();
    Sidecar {
        grpc: DaprClient::new(channel),
        http: format!("http://127.0.0.1:{http_port}"),
        shared,
        _redis: redis,
        _dir: dir,
    }
}

fn backends() -> Vec<bool> {
    if RedisServer::start().is_some() {
        vec![true, false]
    } else {
        vec![false]
    }
}

fn item(key: &str, value: &[u8], etag: Option<&str>) -> common::StateItem {
    common::StateItem {
        key: key.into(),
        value: value.to_vec(),
        etag: etag.map(|e| common::Etag { value: e.into() }),
        ..Default::default()
    }
}

fn save(store: &str, items: Vec<common::StateItem>) -> rt::SaveStateRequest {
    rt::SaveStateRequest {
        store_name: store.into(),
        states: items,
    }
}

fn get(key: &str) -> rt::GetStateRequest {
    rt::GetStateRequest {
        store_name: "statestore".into(),
        key: key.into(),
        ..Default::default()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn state_over_grpc_with_etags_transactions_and_http_interop() {
    for redis in backends() {
        let mut s = start(redis, None).await;
        s.grpc
            .save_state(save("statestore", vec![item("k", b"raw bytes", None)]))
            .await
            .unwrap();
        let got = s.grpc.get_state(get("k")).await.unwrap().into_inner();
        assert_eq!(
            (got.data.as_slice(), got.etag.as_str()),
            (&b"raw bytes"[..], "1")
        );
        // Saved over gRPC, read over HTTP: the same bytes and etag.
        let over_http = reqwest::get(format!("{}/v1.0/state/statestore/k", s.http))
            .await
            .unwrap();
        assert_eq!(over_http.headers()["etag"], "1");
        assert_eq!(over_http.bytes().await.unwrap().as_ref(), b"raw bytes");
        // Saved over HTTP (JSON as sent), read over gRPC.
        reqwest::Client::new()
            .post(format!("{}/v1.0/state/statestore", s.http))
            .body(r#"[{"key":"j","value":{"b":1, "a":2}}]"#)
            .send()
            .await
            .unwrap();
        let j = s.grpc.get_state(get("j")).await.unwrap().into_inner();
        assert_eq!(j.data, br#"{"b":1, "a":2}"#);

        let stale = s
            .grpc
            .save_state(save("statestore", vec![item("k", b"x", Some("7"))]))
            .await
            .unwrap_err();
        assert_eq!(stale.code(), Code::Aborted, "{stale:?}");
        let fresh = s
            .grpc
            .save_state(save("statestore", vec![item("k", b"v2", Some("1"))]))
            .await;
        assert!(fresh.is_ok());
        let unknown = s
            .grpc
            .save_state(save("nosuch", vec![item("k", b"x", None)]))
            .await
            .unwrap_err();
        assert_eq!(
            (unknown.code(), unknown.message()),
            (Code::InvalidArgument, "state store nosuch is not found")
        );
        let missing = s.grpc.get_state(get("absent")).await.unwrap().into_inner();
        assert!(
            missing.data.is_empty() && missing.etag.is_empty(),
            "missing: empty, not an error"
        );

        let bulk = s
            .grpc
            .get_bulk_state(rt::GetBulkStateRequest {
                store_name: "statestore".into(),
                keys: vec!["k".into(), "absent".into()],
                ..Default::default()
            })
            .await
            .unwrap()
            .into_inner();
        assert_eq!(bulk.items.len(), 2);
        assert_eq!(
            (bulk.items[0].data.as_slice(), bulk.items[0].etag.as_str()),
            (&b"v2"[..], "2")
        );
        assert!(bulk.items[1].data.is_empty());

        let op = |kind: &str, key: &str, etag: Option<&str>| rt::TransactionalStateOperation {
            operation_type: kind.into(),
            request: Some(item(key, b"t", etag)),
        };
        let all_or_nothing = s
            .grpc
            .execute_state_transaction(rt::ExecuteStateTransactionRequest {
                store_name: "statestore".into(),
                operations: vec![op("upsert", "t1", None), op("delete", "k", Some("9"))],
                ..Default::default()
            })
            .await
            .unwrap_err();
        assert_eq!(all_or_nothing.code(), Code::Internal);
        assert!(
            s.grpc
                .get_state(get("t1"))
                .await
                .unwrap()
                .into_inner()
                .data
                .is_empty(),
            "nothing applied"
        );
        s.grpc
            .execute_state_transaction(rt::ExecuteStateTransactionRequest {
                store_name: "statestore".into(),
                operations: vec![op("upsert", "t1", None), op("delete", "k", Some("2"))],
                ..Default::default()
            })
            .await
            .unwrap();
        assert_eq!(
            s.grpc.get_state(get("t1")).await.unwrap().into_inner().data,
            b"t"
        );
        assert!(
            s.grpc
                .get_state(get("k"))
                .await
                .unwrap()
                .into_inner()
                .data
                .is_empty()
        );
        let merge = s
            .grpc
            .execute_state_transaction(rt::ExecuteStateTransactionRequest {
                store_name: "statestore".into(),
                operations: vec![op("merge", "t1", None)],
                ..Default::default()
            })
            .await
            .unwrap_err();
        assert_eq!(
            (merge.code(), reason(&merge).as_str()),
            (Code::Unimplemented, "ERR_NOT_SUPPORTED_STATE_OPERATION"),
            "as Dapr's apierrors.Basic"
        );
        s.grpc
            .delete_state(rt::DeleteStateRequest {
                store_name: "statestore".into(),
                key: "t1".into(),
                ..Default::default()
            })
            .await
            .unwrap();
        assert!(
            s.grpc
                .get_state(get("t1"))
                .await
                .unwrap()
                .into_inner()
                .data
                .is_empty()
        );
    }
}

/// A gRPC channel multiplexes: many calls in flight on one HTTP/2 connection, answers larger
/// than the server's write buffer among them, each answer its own call's.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_calls_on_one_connection_get_their_own_answers() {
    let s = start(false, None).await;
    let value = |i: usize| {
        vec![
            b'a' + (i % 26) as u8;
            if i.is_multiple_of(8) {
                300 * 1024
            } else {
                1024 + i
            }
        ]
    };
    let calls = (0..64).map(|i| {
        let mut client = s.grpc.clone();
        async move {
            let key = format!("k{i}");
            client
                .save_state(save("statestore", vec![item(&key, &value(i), None)]))
                .await
                .unwrap();
            let got = client.get_state(get(&key)).await.unwrap().into_inner();
            assert_eq!(got.data, value(i), "the answer for {key}");
        }
    });
    futures_util::future::join_all(calls).await;
}

/// The `DAPR_*` reason (what the Python SDK's `DaprGrpcError.error_code()` returns) and the
/// other google.rpc details of an error status.
fn reason(status: &tonic::Status) -> String {
    use tonic_types::StatusExt;
    let info = status
        .get_details_error_info()
        .expect("an ErrorInfo detail");
    assert_eq!(info.domain, "dapr.io");
    info.reason
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn errors_carry_daprs_codes_and_details() {
    use tonic_types::StatusExt;
    let mut s = start(false, None).await;
    let unknown = s
        .grpc
        .get_state(rt::GetStateRequest {
            store_name: "nosuch".into(),
            ..get("k")
        })
        .await
        .unwrap_err();
    assert_eq!(unknown.code(), Code::InvalidArgument);
    assert_eq!(reason(&unknown), "DAPR_STATE_NOT_FOUND");
    assert!(
        unknown
            .get_details_error_info()
            .unwrap()
            .metadata
            .is_empty()
    );

    let illegal = s.grpc.get_state(get("a||b")).await.unwrap_err();
    assert_eq!(
        (illegal.code(), illegal.message()),
        (
            Code::InvalidArgument,
            "input key/keyPrefix 'a||b' can't contain '||'"
        )
    );
    assert_eq!(reason(&illegal), "DAPR_STATE_ILLEGAL_KEY");
    let violation = &illegal.get_details_bad_request().unwrap().field_violations[0];
    assert_eq!(violation.field, "a||b");
    let resource = illegal.get_details_resource_info().unwrap();
    assert_eq!(
        (
            resource.resource_type.as_str(),
            resource.resource_name.as_str()
        ),
        ("state", "statestore")
    );
    let bulk = s
        .grpc
        .get_bulk_state(rt::GetBulkStateRequest {
            store_name: "statestore".into(),
            keys: vec!["ok".into(), "a||b".into()],
            ..Default::default()
        })
        .await
        .unwrap_err();
    assert_eq!(
        reason(&bulk),
        "DAPR_STATE_ILLEGAL_KEY",
        "one bad key fails the call"
    );

    s.grpc
        .save_state(save("statestore", vec![item("k", b"v", None)]))
        .await
        .unwrap();
    let stale = s
        .grpc
        .save_state(save("statestore", vec![item("k", b"x", Some("7"))]))
        .await
        .unwrap_err();
    assert_eq!(
        (stale.code(), reason(&stale).as_str()),
        (Code::Aborted, "ERR_STATE_SAVE")
    );
    assert!(
        stale
            .message()
            .starts_with("failed saving state in state store statestore: ")
    );
    let no_key = s
        .grpc
        .save_state(save("statestore", vec![item("", b"x", None)]))
        .await
        .unwrap_err();
    assert_eq!(
        (no_key.code(), no_key.message()),
        (Code::InvalidArgument, "state key cannot be empty")
    );
    let publish = |pubsub: &str, topic: &str| rt::PublishEventRequest {
        pubsub_name: pubsub.into(),
        topic: topic.into(),
        data: b"x".to_vec(),
        ..Default::default()
    };
    let no_pubsub = s
        .grpc
        .publish_event(publish("nosuch", "t"))
        .await
        .unwrap_err();
    assert_eq!(
        (
            no_pubsub.code(),
            no_pubsub.message(),
            reason(&no_pubsub).as_str()
        ),
        (
            Code::InvalidArgument,
            "pubsub nosuch is not found",
            "DAPR_PUBSUB_NOT_FOUND"
        )
    );
    let no_topic = s
        .grpc
        .publish_event(publish("pubsub", ""))
        .await
        .unwrap_err();
    assert_eq!(reason(&no_topic), "DAPR_PUBSUB_TOPIC_NAME_EMPTY");
    let no_name = s.grpc.publish_event(publish("", "t")).await.unwrap_err();
    assert_eq!(reason(&no_name), "DAPR_PUBSUB_NAME_EMPTY");
    let mut raw = publish("pubsub", "t");
    raw.metadata.insert("rawPayload".into(), "maybe".into());
    let raw = s.grpc.publish_event(raw).await.unwrap_err();
    assert_eq!(
        (raw.code(), reason(&raw).as_str()),
        (
            Code::InvalidArgument,
            "DAPR_PUBSUB_METADATA_DESERIALIZATION"
        )
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn publish_over_grpc_builds_daprs_envelope() {
    for redis in backends() {
        let mut s = start(redis, None).await;
        let entry = s.shared.components().pubsubs["pubsub"].clone();
        let mut consumer = entry.broker.consumer("orders", "reader").await;
        consumer.ensure_group().await.unwrap();
        let publish = |data: &[u8], content_type: &str| rt::PublishEventRequest {
            pubsub_name: "pubsub".into(),
            topic: "orders".into(),
            data: data.to_vec(),
            data_content_type: content_type.into(),
            metadata: HashMap::new(),
        };
        s.grpc.publish_event(publish(b"plain", "")).await.unwrap();
        s.grpc
            .publish_event(publish(br#"{"n":1}"#, "application/json"))
            .await
            .unwrap();
        let read = consumer.read_new(10, Duration::from_secs(2)).await.unwrap();
        assert_eq!(read.len(), 2);
        let first: serde_json::Value = serde_json::from_slice(&read[0].data).unwrap();
        assert_eq!(
            first["datacontenttype"], "text/plain",
            "no content type: text/plain, as Dapr"
        );
        assert_eq!(first["data"], "plain");
        assert_eq!(first["source"], "myapp");
        let second: serde_json::Value = serde_json::from_slice(&read[1].data).unwrap();
        assert_eq!(second["data"]["n"], 1);
        let unknown = s
            .grpc
            .publish_event(rt::PublishEventRequest {
                pubsub_name: "nosuch".into(),
                ..publish(b"x", "")
            })
            .await
            .unwrap_err();
        assert_eq!(unknown.code(), Code::InvalidArgument);
        let bulk = s
            .grpc
            .bulk_publish_event(rt::BulkPublishRequest {
                pubsub_name: "pubsub".into(),
                topic: "orders".into(),
                entries: vec![rt::BulkPublishRequestEntry {
                    entry_id: "1".into(),
                    event: b"e1".to_vec(),
                    content_type: "text/plain".into(),
                    metadata: HashMap::new(),
                }],
                metadata: HashMap::new(),
            })
            .await
            .unwrap()
            .into_inner();
        assert!(bulk.failed_entries.is_empty());
        assert_eq!(
            consumer
                .read_new(10, Duration::from_secs(2))
                .await
                .unwrap()
                .len(),
            1
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn secrets_metadata_unimplemented_and_the_api_token() {
    let mut s = start(false, None).await;
    let secret = s
        .grpc
        .get_secret(rt::GetSecretRequest {
            store_name: "files".into(),
            key: "db:password".into(),
            metadata: HashMap::new(),
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(
        secret.data,
        HashMap::from([("db:password".to_string(), "pw".to_string())])
    );
    let all = s
        .grpc
        .get_bulk_secret(rt::GetBulkSecretRequest {
            store_name: "files".into(),
            metadata: HashMap::new(),
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(all.data["db:password"].secrets["db:password"], "pw");
    s.grpc
        .set_metadata(rt::SetMetadataRequest {
            key: "team".into(),
            value: "blue".into(),
        })
        .await
        .unwrap();
    let metadata = s
        .grpc
        .get_metadata(rt::GetMetadataRequest {})
        .await
        .unwrap()
        .into_inner();
    assert_eq!(metadata.id, "myapp");
    assert_eq!(metadata.extended_metadata["team"], "blue");
    let names: BTreeMap<String, String> = metadata
        .registered_components
        .iter()
        .map(|c| (c.name.clone(), c.r#type.clone()))
        .collect();
    assert_eq!(names["statestore"], "state.redis");
    // The body limit (1 MiB here) holds for gRPC messages too.
    let big = s
        .grpc
        .save_state(save(
            "statestore",
            vec![item("big", &vec![b'x'; 2 << 20], None)],
        ))
        .await
        .unwrap_err();
    assert_eq!(big.code(), Code::OutOfRange, "{big:?}");
    let unimplemented = s
        .grpc
        .get_configuration(rt::GetConfigurationRequest::default())
        .await
        .unwrap_err();
    assert_eq!(unimplemented.code(), Code::Unimplemented);

    let mut guarded = start(false, Some("sekret")).await;
    let refused = guarded.grpc.get_state(get("k")).await.unwrap_err();
    assert_eq!(refused.code(), Code::Unauthenticated);
    let mut request = tonic::Request::new(get("k"));
    request
        .metadata_mut()
        .insert("dapr-api-token", "sekret".parse().unwrap());
    assert!(guarded.grpc.get_state(request).await.is_ok());
}

/// An app that speaks gRPC (`app_protocol: grpc`), as `dapr-ext-grpc` serves one.
#[derive(Clone, Default)]
struct GrpcApp {
    events: Arc<std::sync::Mutex<Vec<rt::TopicEventRequest>>>,
}

type Reply<T> = Result<tonic::Response<T>, tonic::Status>;

#[tonic::async_trait]
impl rt::app_callback_server::AppCallback for GrpcApp {
    async fn on_invoke(
        &self,
        r: tonic::Request<common::InvokeRequest>,
    ) -> Reply<common::InvokeResponse> {
        let r = r.into_inner();
        if r.method == "fail" {
            return Err(tonic::Status::not_found("no such order"));
        }
        let ext = r.http_extension.unwrap_or_default();
        let body = String::from_utf8_lossy(&r.data.unwrap_or_default().value).to_string();
        let echo = format!(
            "{} verb={} query={} body={body} type={}",
            r.method, ext.verb, ext.querystring, r.content_type
        );
        Ok(tonic::Response::new(common::InvokeResponse {
            data: Some(prost_types::Any {
                type_url: String::new(),
                value: echo.into_bytes(),
            }),
            content_type: "text/plain".into(),
        }))
    }
    async fn list_topic_subscriptions(
        &self,
        _: tonic::Request<()>,
    ) -> Reply<rt::ListTopicSubscriptionsResponse> {
        let routes = rt::TopicRoutes {
            rules: vec![rt::TopicRule {
                r#match: "event.data.big == true".into(),
                path: "big".into(),
            }],
            default: String::new(),
        };
        Ok(tonic::Response::new(rt::ListTopicSubscriptionsResponse {
            subscriptions: vec![rt::TopicSubscription {
                pubsub_name: "pubsub".into(),
                topic: "g".into(),
                routes: Some(routes),
                ..Default::default()
            }],
        }))
    }
    async fn on_topic_event(
        &self,
        r: tonic::Request<rt::TopicEventRequest>,
    ) -> Reply<rt::TopicEventResponse> {
        self.events.lock().unwrap().push(r.into_inner());
        Ok(tonic::Response::new(rt::TopicEventResponse { status: 0 }))
    }
    async fn list_input_bindings(
        &self,
        _: tonic::Request<()>,
    ) -> Reply<rt::ListInputBindingsResponse> {
        Err(tonic::Status::unimplemented("no bindings"))
    }
    async fn on_binding_event(
        &self,
        _: tonic::Request<rt::BindingEventRequest>,
    ) -> Reply<rt::BindingEventResponse> {
        Err(tonic::Status::unimplemented("no bindings"))
    }
    async fn on_bulk_topic_event(
        &self,
        _: tonic::Request<rt::TopicEventBulkRequest>,
    ) -> Reply<rt::TopicEventBulkResponse> {
        Err(tonic::Status::unimplemented("no bulk"))
    }
    async fn on_job_event(
        &self,
        _: tonic::Request<rt::JobEventRequest>,
    ) -> Reply<rt::JobEventResponse> {
        Err(tonic::Status::unimplemented("no jobs"))
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn grpc_apps_get_invocations_and_events_over_app_callback() {
    let mut s = start(false, None).await;
    let app = GrpcApp::default();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let incoming = futures_util::stream::unfold(listener, |l| async move {
        Some((l.accept().await.map(|(stream, _)| stream), l))
    });
    let server = tonic::transport::Server::builder()
        .add_service(rt::app_callback_server::AppCallbackServer::new(app.clone()))
        .serve_with_incoming(incoming);
    tokio::spawn(server);
    let channel = AppChannel::unsupervised("grpcapp", Some(port))
        .with_protocol(daca::manifest::AppProtocol::Grpc);
    s.shared.set_app(channel.clone());
    let active = Arc::default();
    daca::pubsub::delivery::Subscriber::new(
        channel,
        s.shared.components().pubsubs.clone(),
        &[],
        active,
    )
    .spawn();

    let http = reqwest::Client::new();
    let answer = http
        .post(format!(
            "{}/v1.0/invoke/grpcapp/method/orders/7?x=1",
            s.http
        ))
        .header("content-type", "application/json")
        .body("{}")
        .send()
        .await
        .unwrap();
    assert_eq!(answer.status(), 200);
    assert_eq!(answer.headers()["content-type"], "text/plain");
    assert_eq!(
        answer.text().await.unwrap(),
        "orders/7 verb=3 query=x=1 body={} type=application/json"
    );
    let missing = http
        .get(format!("{}/v1.0/invoke/grpcapp/method/fail", s.http))
        .send()
        .await
        .unwrap();
    assert_eq!(missing.status(), 404, "NotFound becomes 404");
    let body: serde_json::Value = missing.json().await.unwrap();
    assert_eq!(
        (body["code"].as_i64(), body["message"].as_str()),
        (Some(5), Some("no such order"))
    );

    let via_grpc = s
        .grpc
        .invoke_service(rt::InvokeServiceRequest {
            id: "grpcapp".into(),
            message: Some(common::InvokeRequest {
                method: "ping".into(),
                http_extension: Some(common::HttpExtension {
                    verb: 1,
                    querystring: String::new(),
                }),
                ..Default::default()
            }),
        })
        .await
        .unwrap()
        .into_inner();
    assert!(String::from_utf8_lossy(&via_grpc.data.unwrap().value).starts_with("ping verb=1"));

    let publish = |data: &str| rt::PublishEventRequest {
        pubsub_name: "pubsub".into(),
        topic: "g".into(),
        data: data.as_bytes().to_vec(),
        data_content_type: "application/json".into(),
        metadata: HashMap::new(),
    };
    // Subscribed once the app's subscriptions were listed; then one event per rule.
    for _ in 0..100 {
        if !app.events.lock().unwrap().is_empty() {
            break;
        }
        s.grpc
            .publish_event(publish(r#"{"big":false}"#))
            .await
            .unwrap();
        s.grpc
            .publish_event(publish(r#"{"big":true}"#))
            .await
            .unwrap();
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    tokio::time::sleep(Duration::from_millis(200)).await;
    let events = app.events.lock().unwrap();
    assert!(!events.is_empty(), "no event reached the gRPC app");
    assert!(
        events.iter().all(|e| e.data == br#"{"big":true}"#),
        "only the rule's events, no default"
    );
    let event = &events[0];
    assert_eq!(
        (
            event.path.as_str(),
            event.topic.as_str(),
            event.pubsub_name.as_str()
        ),
        ("big", "g", "pubsub")
    );
    assert_eq!(
        (event.r#type.as_str(), event.spec_version.as_str()),
        ("com.dapr.event.sent", "1.0")
    );
    assert_eq!(
        (event.source.as_str(), event.data_content_type.as_str()),
        ("myapp", "application/json")
    );
}
