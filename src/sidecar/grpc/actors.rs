//! The actor methods of Dapr's gRPC API, on the runtime the HTTP API uses. Over gRPC a state
//! value is stored as the raw bytes of its `Any` (no JSON re-encoding), and timer or reminder
//! `data` bytes become a JSON string of their base64, as daprd marshals a `[]byte`.

use std::collections::HashMap;
use std::sync::Arc;

use dapr::dapr::proto::runtime::v1 as rt;
use serde_json::Value;
use tonic::Status;

use crate::actors::{ActorError, Invoke, ReminderSpec, StateOp, TimerSpec};
use crate::sidecar::SidecarState;
use crate::sidecar::error::ApiError;

type Result<T> = std::result::Result<T, Status>;

fn status(err: ActorError) -> Status {
    ApiError::from(err).to_status()
}

fn some(text: String) -> Option<String> {
    Some(text).filter(|t| !t.is_empty())
}

/// `data` bytes as daprd keeps them: a JSON string of their base64 (none when empty).
fn base64_json(data: &[u8]) -> Option<Vec<u8>> {
    if data.is_empty() {
        return None;
    }
    let text = crate::pubsub::envelope::base64(data);
    Some(Value::String(text).to_string().into_bytes())
}

pub async fn invoke_actor(
    s: Arc<SidecarState>,
    r: rt::InvokeActorRequest,
) -> Result<rt::InvokeActorResponse> {
    let mut headers = axum::http::HeaderMap::new();
    for (name, value) in &r.metadata {
        if let (Ok(name), Ok(value)) = (
            axum::http::HeaderName::from_bytes(name.as_bytes()),
            axum::http::HeaderValue::from_str(value),
        ) {
            headers.insert(name, value);
        }
    }
    let call = Invoke {
        actor_type: r.actor_type,
        id: r.actor_id,
        method: r.method,
        headers,
        query: None,
        body: r.data.into(),
        caller: s.app_id.clone(),
    };
    let answer = s
        .shared
        .actors
        .invoke_from(call, &s.policies())
        .await
        .map_err(status)?;
    Ok(rt::InvokeActorResponse {
        data: answer.body.to_vec(),
    })
}

pub async fn get_actor_state(
    s: Arc<SidecarState>,
    r: rt::GetActorStateRequest,
) -> Result<rt::GetActorStateResponse> {
    let data = s
        .shared
        .actors
        .get_state(&s.app_id, &r.actor_type, &r.actor_id, &r.key)
        .await
        .map_err(status)?;
    Ok(rt::GetActorStateResponse {
        data: data.unwrap_or_default(),
        metadata: HashMap::new(),
    })
}

pub async fn execute_actor_state_transaction(
    s: Arc<SidecarState>,
    r: rt::ExecuteActorStateTransactionRequest,
) -> Result<()> {
    let ttl_enabled = s.shared.components().features.contains("ActorStateTTL");
    let mut ops = Vec::new();
    for op in r.operations {
        let ttl = match op.metadata.get("ttlInSeconds") {
            Some(_) if !ttl_enabled => {
                let cause =
                    "ttlInSeconds is not supported without the \"ActorStateTTL\" feature enabled";
                return Err(status(ActorError::transaction(cause.into())));
            }
            Some(raw) => Some(raw.parse::<i64>().map_err(|_| {
                status(ActorError::transaction(format!(
                    "ttlInSeconds `{raw}` is not an integer"
                )))
            })?),
            None => None,
        };
        ops.push(match op.operation_type.as_str() {
            "upsert" => StateOp::Upsert {
                key: op.key,
                value: op.value.map(|v| v.value).unwrap_or_default(),
                ttl,
            },
            "delete" => StateOp::Delete { key: op.key },
            other => {
                return Err(Status::unimplemented(format!(
                    "operation type {other} not supported"
                )));
            }
        });
    }
    s.shared
        .actors
        .transaction(&s.app_id, &s.instance, &r.actor_type, &r.actor_id, ops)
        .await
        .map_err(status)
}

pub async fn register_actor_timer(
    s: Arc<SidecarState>,
    r: rt::RegisterActorTimerRequest,
) -> Result<()> {
    let spec = TimerSpec {
        due_time: some(r.due_time),
        period: some(r.period),
        ttl: some(r.ttl),
        callback: some(r.callback),
        data: base64_json(&r.data),
    };
    s.shared
        .actors
        .create_timer(&s.instance, &r.actor_type, &r.actor_id, &r.name, spec)
        .await
        .map_err(status)
}

pub async fn unregister_actor_timer(
    s: Arc<SidecarState>,
    r: rt::UnregisterActorTimerRequest,
) -> Result<()> {
    s.shared
        .actors
        .delete_timer(&r.actor_type, &r.actor_id, &r.name)
        .map_err(status)
}

pub async fn register_actor_reminder(
    s: Arc<SidecarState>,
    r: rt::RegisterActorReminderRequest,
) -> Result<()> {
    if r.name.is_empty() {
        return Err(Status::invalid_argument("reminder name cannot be empty"));
    }
    let spec = ReminderSpec {
        due_time: some(r.due_time),
        period: some(r.period),
        ttl: some(r.ttl),
        data: base64_json(&r.data),
        overwrite: r.overwrite,
    };
    s.shared
        .actors
        .create_reminder(&s.instance, &r.actor_type, &r.actor_id, &r.name, spec)
        .map_err(status)
}

pub async fn unregister_actor_reminder(
    s: Arc<SidecarState>,
    r: rt::UnregisterActorReminderRequest,
) -> Result<()> {
    s.shared
        .actors
        .delete_reminder(&s.instance, &r.actor_type, &r.actor_id, &r.name)
        .map_err(status)
}

/// The `Any` a reminder's data comes back in: the raw JSON as a `BytesValue`.
fn data_any(view: &Value) -> Option<prost_types::Any> {
    let data = view.get("data")?;
    let value = prost::Message::encode_to_vec(&data.to_string().into_bytes());
    Some(prost_types::Any {
        type_url: "type.googleapis.com/google.protobuf.BytesValue".into(),
        value,
    })
}

fn text(view: &Value, key: &str) -> Option<String> {
    view.get(key).and_then(Value::as_str).map(String::from)
}

pub async fn get_actor_reminder(
    s: Arc<SidecarState>,
    r: rt::GetActorReminderRequest,
) -> Result<rt::GetActorReminderResponse> {
    let view = s
        .shared
        .actors
        .get_reminder(&s.instance, &r.actor_type, &r.actor_id, &r.name)
        .map_err(status)?;
    Ok(rt::GetActorReminderResponse {
        actor_type: r.actor_type,
        actor_id: r.actor_id,
        due_time: text(&view, "dueTime"),
        period: text(&view, "period"),
        data: data_any(&view),
        ttl: text(&view, "ttl"),
    })
}

pub async fn list_actor_reminders(
    s: Arc<SidecarState>,
    r: rt::ListActorRemindersRequest,
) -> Result<rt::ListActorRemindersResponse> {
    let actors = &s.shared.actors;
    let mut reminders = Vec::new();
    for (job, _) in actors.reminders(&r.actor_type, r.actor_id.as_deref()) {
        let Some(name) = job.key.rsplit("||").next().map(String::from) else {
            continue;
        };
        let Some(id) = job.key.split("||").nth(2).map(String::from) else {
            continue;
        };
        let view = actors
            .get_reminder(&s.instance, &r.actor_type, &id, &name)
            .map_err(status)?;
        reminders.push(rt::NamedActorReminder {
            name,
            reminder: Some(rt::ActorReminder {
                actor_type: r.actor_type.clone(),
                actor_id: id,
                due_time: text(&view, "dueTime"),
                period: text(&view, "period"),
                data: data_any(&view),
                ttl: text(&view, "ttl"),
            }),
        });
    }
    Ok(rt::ListActorRemindersResponse { reminders })
}

pub async fn unregister_actor_reminders_by_type(
    s: Arc<SidecarState>,
    r: rt::UnregisterActorRemindersByTypeRequest,
) -> Result<rt::UnregisterActorRemindersByTypeResponse> {
    let actors = &s.shared.actors;
    for (job, _) in actors.reminders(&r.actor_type, r.actor_id.as_deref()) {
        let mut parts = job.key.splitn(4, "||").skip(2);
        let (Some(id), Some(name)) = (parts.next(), parts.next()) else {
            continue;
        };
        actors
            .delete_reminder(&s.instance, &r.actor_type, id, name)
            .map_err(status)?;
    }
    Ok(rt::UnregisterActorRemindersByTypeResponse {})
}
