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

use crate::sidecar::error::ApiError;
use crate::sidecar::keys::stored_key;
use crate::sidecar::{SidecarState, meta, pubsub_api, state_api};
use crate::state::{Delete, Op, StoreError};

type Result<T> = std::result::Result<T, Status>;

/// An HTTP API error as the gRPC status Dapr gives for it.
fn status(err: ApiError) -> Status {
    let code = match err.status {
        StatusCode::BAD_REQUEST => tonic::Code::InvalidArgument,
        StatusCode::UNAUTHORIZED => tonic::Code::InvalidArgument,
        StatusCode::FORBIDDEN => tonic::Code::PermissionDenied,
        StatusCode::NOT_FOUND => tonic::Code::InvalidArgument,
        StatusCode::CONFLICT => tonic::Code::Aborted,
        _ => tonic::Code::Internal,
    };
    Status::new(code, err.message)
}

fn store_status(err: StoreError) -> Status {
    match err {
        StoreError::EtagMismatch(m) => Status::aborted(m),
        StoreError::EtagInvalid(m) => Status::invalid_argument(m),
        StoreError::Failed(m) => Status::internal(m),
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

/// One upsert, as the HTTP save builds it, with the value's bytes as sent.
fn upsert(
    s: &SidecarState,
    entry: &crate::components::stores::StateEntry,
    store: &str,
    item: common::StateItem,
    common_metadata: &BTreeMap<String, String>,
) -> Result<Op> {
    if item.key.is_empty() {
        return Err(Status::invalid_argument("key is required"));
    }
    let key = stored_key(&entry.key_prefix, &s.app_id, store, &item.key).map_err(status)?;
    let mut metadata = common_metadata.clone();
    metadata.extend(item.metadata);
    let etag = item.etag.map(|e| e.value);
    let write = state_api::to_write(
        entry,
        key,
        item.value,
        etag,
        concurrency(item.options.as_ref()),
        &metadata,
    )
    .map_err(store_status)?;
    Ok(Op::Upsert(write))
}

pub async fn get_state(
    s: Arc<SidecarState>,
    r: rt::GetStateRequest,
) -> Result<rt::GetStateResponse> {
    let entry = state_api::store(&s, &r.store_name).map_err(status)?;
    let key = stored_key(&entry.key_prefix, &s.app_id, &r.store_name, &r.key).map_err(status)?;
    let item = entry.store.get(&key).await.map_err(store_status)?;
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
    let entry = state_api::store(&s, &r.store_name).map_err(status)?;
    let mut items = Vec::with_capacity(r.keys.len());
    for key in r.keys {
        let mut item = rt::BulkStateItem {
            key: key.clone(),
            ..Default::default()
        };
        match stored_key(&entry.key_prefix, &s.app_id, &r.store_name, &key) {
            Err(err) => item.error = err.message,
            Ok(stored) => match entry.store.get(&stored).await {
                Ok(Some(found)) => {
                    item.data = found.data;
                    item.etag = found.etag.unwrap_or_default();
                }
                Ok(None) => {}
                Err(err) => item.error = err.to_string(),
            },
        }
        items.push(item);
    }
    Ok(rt::GetBulkStateResponse { items })
}

pub async fn save_state(s: Arc<SidecarState>, r: rt::SaveStateRequest) -> Result<()> {
    let entry = state_api::store(&s, &r.store_name).map_err(status)?;
    let none = BTreeMap::new();
    for item in r.states {
        let op = upsert(&s, &entry, &r.store_name, item, &none)?;
        entry.store.apply(&[op]).await.map_err(store_status)?;
    }
    Ok(())
}

fn delete_op(
    s: &SidecarState,
    entry: &crate::components::stores::StateEntry,
    store: &str,
    key: &str,
    etag: Option<common::Etag>,
) -> Result<Op> {
    let key = stored_key(&entry.key_prefix, &s.app_id, store, key).map_err(status)?;
    Ok(Op::Delete(Delete {
        key,
        etag: etag.map(|e| e.value).filter(|e| !e.is_empty()),
    }))
}

pub async fn delete_state(s: Arc<SidecarState>, r: rt::DeleteStateRequest) -> Result<()> {
    let entry = state_api::store(&s, &r.store_name).map_err(status)?;
    let op = delete_op(&s, &entry, &r.store_name, &r.key, r.etag)?;
    entry.store.apply(&[op]).await.map_err(store_status)
}

pub async fn delete_bulk_state(s: Arc<SidecarState>, r: rt::DeleteBulkStateRequest) -> Result<()> {
    let entry = state_api::store(&s, &r.store_name).map_err(status)?;
    for item in r.states {
        let op = delete_op(&s, &entry, &r.store_name, &item.key, item.etag)?;
        entry.store.apply(&[op]).await.map_err(store_status)?;
    }
    Ok(())
}

pub async fn execute_state_transaction(
    s: Arc<SidecarState>,
    r: rt::ExecuteStateTransactionRequest,
) -> Result<()> {
    let entry = state_api::store(&s, &r.store_name).map_err(status)?;
    let metadata = sorted(r.metadata);
    let mut ops = Vec::with_capacity(r.operations.len());
    for operation in r.operations {
        let item = operation.request.unwrap_or_default();
        ops.push(match operation.operation_type.as_str() {
            "upsert" => upsert(&s, &entry, &r.store_name, item, &metadata)?,
            "delete" => delete_op(&s, &entry, &r.store_name, &item.key, item.etag)?,
            other => {
                return Err(Status::invalid_argument(format!(
                    "operation type {other} not supported"
                )));
            }
        });
    }
    entry.store.apply(&ops).await.map_err(|err| {
        Status::internal(format!("error while executing state transaction: {}", err))
    })
}

pub async fn publish_event(s: Arc<SidecarState>, r: rt::PublishEventRequest) -> Result<()> {
    let entry = pubsub_api::pubsub(&s, &r.pubsub_name, &r.topic).map_err(status)?;
    let metadata = sorted(r.metadata);
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
        .broker
        .publish(&r.topic, &data, &metadata)
        .await
        .map_err(|err| {
            Status::internal(format!(
                "error when publishing to topic {} in pubsub {}: {err}",
                r.topic, r.pubsub_name
            ))
        })
}

pub async fn bulk_publish_event(
    s: Arc<SidecarState>,
    r: rt::BulkPublishRequest,
) -> Result<rt::BulkPublishResponse> {
    let entry = pubsub_api::pubsub(&s, &r.pubsub_name, &r.topic).map_err(status)?;
    let common = sorted(r.metadata);
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
    let bytes = axum::body::to_bytes(response.into_body(), s.max_body_size)
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
    let subscriptions = s
        .subscriptions
        .read()
        .unwrap_or_else(|p| p.into_inner())
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
        .collect();
    let version = meta::runtime_version();
    let mut extended: HashMap<String, String> = s
        .extended
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .clone()
        .into_iter()
        .collect();
    extended.insert("daprRuntimeVersion".into(), version.clone());
    let app_connection_properties =
        s.shared
            .app(&s.app_id)
            .and_then(|c| c.port)
            .map(|port| rt::AppConnectionProperties {
                port: i32::from(port),
                protocol: "http".into(),
                channel_address: "127.0.0.1".into(),
                ..Default::default()
            });
    Ok(rt::GetMetadataResponse {
        id: s.app_id.clone(),
        registered_components: components,
        extended_metadata: extended,
        subscriptions,
        app_connection_properties,
        runtime_version: version,
        ..Default::default()
    })
}

pub async fn set_metadata(s: Arc<SidecarState>, r: rt::SetMetadataRequest) -> Result<()> {
    s.extended
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .insert(r.key, r.value);
    Ok(())
}

pub async fn shutdown(s: Arc<SidecarState>, _: rt::ShutdownRequest) -> Result<()> {
    if let Some(stop) = &s.on_shutdown {
        stop();
    }
    Ok(())
}
