//! The gRPC methods daca serves, on the same components and rules as the HTTP handlers:
//! gRPC values are stored as the raw bytes sent (Dapr's gRPC path), so a value saved over
//! gRPC reads back byte for byte over HTTP and the other way round.

use std::collections::BTreeMap;
use std::collections::HashMap;
use std::sync::Arc;

use axum::http::StatusCode;
use dapr::dapr::proto::common::v1 as common;
use dapr::dapr::proto::runtime::v1 as rt;
use tonic::Status;

use crate::components::stores::StateEntry;
use crate::sidecar::catalog::{self, Api};
use crate::sidecar::error::ApiError;
use crate::sidecar::keys::stored_key;
use crate::sidecar::{SidecarState, meta, pubsub_api, state_api};
use crate::state::{Delete, Op, StoreError};

type Result<T> = std::result::Result<T, Status>;

/// An API error as the gRPC status Dapr gives for it, details included.
fn status(err: ApiError) -> Status {
    err.to_status()
}

/// The store named, or the gRPC API's error.
fn store(s: &SidecarState, name: &str) -> Result<Arc<StateEntry>> {
    state_api::store_for(Api::Grpc, s, name).map_err(status)
}

fn key(s: &SidecarState, entry: &StateEntry, store: &str, key: &str) -> Result<String> {
    stored_key(&entry.key_prefix, &s.app_id, store, key).map_err(|e| status(e.error(Api::Grpc)))
}

/// A failure as Dapr's gRPC state API wraps it (`apierrors.Basic`, reason = legacy code).
fn basic(grpc: tonic::Code, code: &'static str, message: String) -> Status {
    let http = match grpc {
        tonic::Code::InvalidArgument => StatusCode::BAD_REQUEST,
        _ => StatusCode::INTERNAL_SERVER_ERROR,
    };
    status(ApiError::basic(grpc, http, code, message))
}

/// The gRPC code of a store's failure: Dapr's `getStateErrorCode`.
fn etag_code(err: &StoreError) -> tonic::Code {
    match err {
        StoreError::EtagMismatch(_) => tonic::Code::Aborted,
        StoreError::EtagInvalid(_) => tonic::Code::InvalidArgument,
        StoreError::Failed(_) => tonic::Code::Internal,
    }
}

fn sorted(map: HashMap<String, String>) -> BTreeMap<String, String> {
    map.into_iter().collect()
}

fn concurrency(options: Option<&common::StateOptions>) -> &'static str {
    match options.map(|o| o.concurrency) {
        Some(1) => "first-write",
        Some(2) => "last-write",
        _ => "",
    }
}

/// One upsert, as the HTTP save builds it, with the value's bytes as sent; the inner error is
/// the store's (a bad etag or TTL), which save and transaction report differently.
fn upsert(
    s: &SidecarState,
    entry: &StateEntry,
    store: &str,
    item: common::StateItem,
    common_metadata: &BTreeMap<String, String>,
) -> Result<std::result::Result<Op, StoreError>> {
    let key = key(s, entry, store, &item.key)?;
    let mut metadata = common_metadata.clone();
    metadata.extend(item.metadata);
    let etag = item.etag.map(|e| e.value);
    let concurrency = concurrency(item.options.as_ref());
    Ok(state_api::to_write(entry, key, item.value, etag, concurrency, &metadata).map(Op::Upsert))
}

pub async fn get_state(
    s: Arc<SidecarState>,
    r: rt::GetStateRequest,
) -> Result<rt::GetStateResponse> {
    let entry = store(&s, &r.store_name)?;
    let stored = key(&s, &entry, &r.store_name, &r.key)?;
    let item = entry.get(&s.policies(), &stored).await.map_err(|err| {
        let message = format!(
            "fail to get {} from state store {}: {err}",
            r.key, r.store_name
        );
        basic(tonic::Code::Internal, "ERR_STATE_GET", message)
    })?;
    Ok(match item {
        Some(item) => rt::GetStateResponse {
            data: item.data,
            etag: item.etag.unwrap_or_default(),
            metadata: HashMap::new(),
        },
        None => rt::GetStateResponse::default(),
    })
}

pub async fn get_bulk_state(
    s: Arc<SidecarState>,
    r: rt::GetBulkStateRequest,
) -> Result<rt::GetBulkStateResponse> {
    let entry = store(&s, &r.store_name)?;
    // As in Dapr, one illegal key fails the whole request, before any read.
    let stored: Vec<String> = r
        .keys
        .iter()
        .map(|k| key(&s, &entry, &r.store_name, k))
        .collect::<Result<_>>()?;
    let mut items = Vec::with_capacity(r.keys.len());
    for (key, stored) in r.keys.into_iter().zip(stored) {
        let mut item = rt::BulkStateItem {
            key,
            ..Default::default()
        };
        match entry.get(&s.policies(), &stored).await {
            Ok(Some(found)) => {
                item.data = found.data;
                item.etag = found.etag.unwrap_or_default();
            }
            Ok(None) => {}
            Err(err) => item.error = err.to_string(),
        }
        items.push(item);
    }
    Ok(rt::GetBulkStateResponse { items })
}

pub async fn save_state(s: Arc<SidecarState>, r: rt::SaveStateRequest) -> Result<()> {
    let entry = store(&s, &r.store_name)?;
    let none = BTreeMap::new();
    let failed = |err: StoreError| {
        let message = format!("failed saving state in state store {}: {err}", r.store_name);
        basic(etag_code(&err), "ERR_STATE_SAVE", message)
    };
    for item in r.states {
        if item.key.is_empty() {
            let message = "state key cannot be empty".to_string();
            return Err(basic(
                tonic::Code::InvalidArgument,
                "ERR_STATE_SAVE",
                message,
            ));
        }
        let op = upsert(&s, &entry, &r.store_name, item, &none)?.map_err(failed)?;
        entry.apply(&s.policies(), &[op]).await.map_err(failed)?;
    }
    Ok(())
}

fn delete_op(
    s: &SidecarState,
    entry: &StateEntry,
    store: &str,
    k: &str,
    etag: Option<common::Etag>,
) -> Result<Op> {
    Ok(Op::Delete(Delete {
        key: key(s, entry, store, k)?,
        etag: etag.map(|e| e.value).filter(|e| !e.is_empty()),
    }))
}

pub async fn delete_state(s: Arc<SidecarState>, r: rt::DeleteStateRequest) -> Result<()> {
    let entry = store(&s, &r.store_name)?;
    let op = delete_op(&s, &entry, &r.store_name, &r.key, r.etag)?;
    entry.apply(&s.policies(), &[op]).await.map_err(|err| {
        let message = format!("failed deleting state with key {}: {err}", r.key);
        basic(etag_code(&err), "ERR_STATE_DELETE", message)
    })
}

pub async fn delete_bulk_state(s: Arc<SidecarState>, r: rt::DeleteBulkStateRequest) -> Result<()> {
    let entry = store(&s, &r.store_name)?;
    for item in r.states {
        let op = delete_op(&s, &entry, &r.store_name, &item.key, item.etag)?;
        entry.apply(&s.policies(), &[op]).await.map_err(|err| {
            let message = format!(
                "failed deleting state in state store {}: {err}",
                r.store_name
            );
            basic(etag_code(&err), "ERR_STATE_BULK_DELETE", message)
        })?;
    }
    Ok(())
}

pub async fn execute_state_transaction(
    s: Arc<SidecarState>,
    r: rt::ExecuteStateTransactionRequest,
) -> Result<()> {
    let entry = store(&s, &r.store_name)?;
    let metadata = sorted(r.metadata);
    let failed = |err: StoreError| {
        let message = format!("error while executing state transaction: {err}");
        basic(tonic::Code::Internal, "ERR_STATE_TRANSACTION", message)
    };
    let mut ops = Vec::with_capacity(r.operations.len());
    for operation in r.operations {
        let item = operation.request.unwrap_or_default();
        ops.push(match operation.operation_type.as_str() {
            "upsert" => upsert(&s, &entry, &r.store_name, item, &metadata)?.map_err(failed)?,
            "delete" => delete_op(&s, &entry, &r.store_name, &item.key, item.etag)?,
            other => {
                let message = format!("operation type {other} not supported");
                let code = "ERR_NOT_SUPPORTED_STATE_OPERATION";
                return Err(basic(tonic::Code::Unimplemented, code, message));
            }
        });
    }
    entry.apply(&s.policies(), &ops).await.map_err(failed)
}

pub async fn publish_event(s: Arc<SidecarState>, r: rt::PublishEventRequest) -> Result<()> {
    let metadata = sorted(r.metadata);
    let entry =
        pubsub_api::pubsub(Api::Grpc, &s, &r.pubsub_name, &r.topic, &metadata).map_err(status)?;
    let content_type = (!r.data_content_type.is_empty()).then_some(r.data_content_type.as_str());
    let trace = crate::sidecar::new_traceparent();
    let data = pubsub_api::wrap(
        &s,
        &r.pubsub_name,
        &r.topic,
        &r.data,
        content_type,
        &metadata,
        (&trace, ""),
    )
    .map_err(status)?;
    entry
        .publish(&s.policies(), &r.topic, &data, &metadata)
        .await
        .map_err(|err| {
            let error = err.to_string();
            status(catalog::publish_failed(&r.pubsub_name, &r.topic, &error))
        })
}

pub async fn bulk_publish_event(
    s: Arc<SidecarState>,
    r: rt::BulkPublishRequest,
) -> Result<rt::BulkPublishResponse> {
    let common = sorted(r.metadata);
    let entry =
        pubsub_api::pubsub(Api::Grpc, &s, &r.pubsub_name, &r.topic, &common).map_err(status)?;
    let trace = crate::sidecar::new_traceparent();
    let mut failed_entries = Vec::new();
    for e in r.entries {
        let mut metadata = common.clone();
        metadata.extend(e.metadata);
        let content_type = (!e.content_type.is_empty()).then_some(e.content_type.as_str());
        let (name, topic) = (&r.pubsub_name, &r.topic);
        let published = pubsub_api::publish_entry(
            &s,
            &entry,
            name,
            topic,
            &e.event,
            content_type,
            &metadata,
            (&trace, ""),
        );
        if let Err(error) = published.await {
            failed_entries.push(rt::BulkPublishResponseFailedEntry {
                entry_id: e.entry_id,
                error,
            });
        }
    }
    Ok(rt::BulkPublishResponse { failed_entries })
}

pub async fn invoke_service(
    s: Arc<SidecarState>,
    r: rt::InvokeServiceRequest,
) -> Result<common::InvokeResponse> {
    let message = r.message.unwrap_or_default();
    let extension = message.http_extension.unwrap_or_default();
    let verb = common::http_extension::Verb::try_from(extension.verb)
        .unwrap_or(common::http_extension::Verb::Post);
    let method = match verb {
        common::http_extension::Verb::None | common::http_extension::Verb::Post => "POST",
        other => other.as_str_name(),
    };
    let mut uri = format!("/v1.0/invoke/{}/method/{}", r.id, message.method);
    if !extension.querystring.is_empty() {
        uri.push('?');
        uri.push_str(&extension.querystring);
    }
    let mut request = axum::http::Request::builder().method(method).uri(&uri);
    if !message.content_type.is_empty() {
        request = request.header("content-type", &message.content_type);
    }
    let body = message.data.map(|a| a.value).unwrap_or_default();
    let request = request
        .body(axum::body::Body::from(body))
        .map_err(|e| Status::invalid_argument(e.to_string()))?;
    let response = crate::sidecar::invoke::forward(&s, &r.id, &message.method, request).await;
    let code = response.status();
    let content_type = response
        .headers()
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_string();
    let bytes = axum::body::to_bytes(response.into_body(), s.max_body_size())
        .await
        .map_err(|e| Status::internal(e.to_string()))?;
    if !code.is_success() {
        return Err(Status::new(
            tonic::Code::Unknown,
            format!(
                "the app answered {code}: {}",
                String::from_utf8_lossy(&bytes)
            ),
        ));
    }
    Ok(common::InvokeResponse {
        data: Some(prost_types_any(bytes.to_vec())),
        content_type,
    })
}

fn prost_types_any(value: Vec<u8>) -> ::prost_types::Any {
    ::prost_types::Any {
        type_url: String::new(),
        value,
    }
}

pub async fn get_secret(
    s: Arc<SidecarState>,
    r: rt::GetSecretRequest,
) -> Result<rt::GetSecretResponse> {
    let value = meta::secret_value(&s, &r.store_name, &r.key).map_err(status)?;
    Ok(rt::GetSecretResponse {
        data: HashMap::from([(r.key, value)]),
    })
}

pub async fn get_bulk_secret(
    s: Arc<SidecarState>,
    r: rt::GetBulkSecretRequest,
) -> Result<rt::GetBulkSecretResponse> {
    let all = meta::all_secrets(&s, &r.store_name).map_err(status)?;
    Ok(rt::GetBulkSecretResponse {
        data: all
            .into_iter()
            .map(|(k, v)| {
                let secrets = HashMap::from([(k.clone(), v)]);
                (k, rt::SecretResponse { secrets })
            })
            .collect(),
    })
}

/// The app's subscriptions as the metadata API lists them.
fn subscriptions(s: &SidecarState) -> Vec<rt::PubsubSubscription> {
    s.subscriptions
        .read()
        .iter()
        .map(|sub| rt::PubsubSubscription {
            pubsub_name: sub.pubsub.clone(),
            topic: sub.topic.clone(),
            metadata: sub.metadata.clone().into_iter().collect(),
            rules: Some(rt::PubsubSubscriptionRules {
                rules: sub
                    .rules
                    .iter()
                    .map(|rule| rt::PubsubSubscriptionRule {
                        r#match: rule.source.clone(),
                        path: rule.path.clone(),
                    })
                    .collect(),
            }),
            dead_letter_topic: sub.dead_letter_topic.clone().unwrap_or_default(),
            r#type: match sub.kind {
                crate::pubsub::subscription::Kind::Declarative => 1,
                crate::pubsub::subscription::Kind::Programmatic => 2,
            },
        })
        .collect()
}

pub async fn get_metadata(
    s: Arc<SidecarState>,
    _: rt::GetMetadataRequest,
) -> Result<rt::GetMetadataResponse> {
    let components = meta::components(&s)
        .into_iter()
        .map(|(c, capabilities)| rt::RegisteredComponents {
            name: c.name.clone(),
            r#type: c.type_name.clone(),
            version: c.version.clone(),
            capabilities: capabilities.into_iter().map(String::from).collect(),
        })
        .collect();
    let subscriptions = subscriptions(&s);
    let version = meta::runtime_version();
    let mut extended: HashMap<String, String> = s.extended.lock().clone().into_iter().collect();
    extended.insert("daprRuntimeVersion".into(), version.clone());
    let app_connection_properties =
        s.shared
            .instance(&s.instance)
            .and_then(|c| c.port)
            .map(|port| rt::AppConnectionProperties {
                port: i32::from(port),
                protocol: "http".into(),
                channel_address: "127.0.0.1".into(),
                ..Default::default()
            });
    let runtime = s.shared.actors.runtime_status(&s.instance);
    let active_actors: Vec<rt::ActiveActorsCount> = runtime["activeActors"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|a| rt::ActiveActorsCount {
            r#type: a["type"].as_str().unwrap_or_default().to_string(),
            count: a["count"].as_i64().unwrap_or_default() as i32,
        })
        .collect();
    #[allow(
        deprecated,
        reason = "daprd still fills the old field beside actor_runtime"
    )]
    Ok(rt::GetMetadataResponse {
        id: s.app_id.clone(),
        active_actors_count: active_actors.clone(),
        actor_runtime: Some(rt::ActorRuntime {
            runtime_status: rt::actor_runtime::ActorRuntimeStatus::Running as i32,
            active_actors,
            host_ready: true,
            placement: "placement: connected".into(),
        }),
        registered_components: components,
        extended_metadata: extended,
        subscriptions,
        app_connection_properties,
        runtime_version: version,
        workflows: Some(rt::MetadataWorkflows {
            connected_workers: s.shared.workflows.connected_workers(&s.app_id) as i32,
        }),
        ..Default::default()
    })
}

pub async fn set_metadata(s: Arc<SidecarState>, r: rt::SetMetadataRequest) -> Result<()> {
    s.extended.lock().insert(r.key, r.value);
    Ok(())
}

pub async fn shutdown(s: Arc<SidecarState>, _: rt::ShutdownRequest) -> Result<()> {
    if let Some(stop) = &s.on_shutdown {
        stop();
    }
    Ok(())
}
