//! Health, metadata, shutdown and secrets: `/v1.0/healthz`, `/v1.0/healthz/outbound`,
//! `/v1.0/metadata`, `/v1.0/shutdown`, `/v1.0/secrets/{store}/{key}` and `/bulk`.

use std::collections::BTreeMap;
use std::sync::Arc;

use axum::Json;
use axum::body::Body;
use axum::extract::{Path, RawQuery, State};
use axum::http::StatusCode;

use serde_json::{Value, json};

use super::SidecarState;
use super::error::ApiError;
use super::keys::Query;
use super::state_api::read_body;
use crate::components::{Component, SecretStore};

/// Ready when the app is (its port answered its probe), or at once for an app without a port.
pub async fn healthz(
    State(sidecar): State<Arc<SidecarState>>,
    RawQuery(query): RawQuery,
) -> Result<StatusCode, ApiError> {
    let query = Query::parse(query.as_deref());
    if let Some(asked) = query.plain.get("appid")
        && asked != &sidecar.app_id
    {
        return Err(ApiError::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "ERR_HEALTH_APPID_NOT_MATCH",
            "dapr app-id does not match",
        ));
    }
    let ready = match sidecar.shared.instance(&sidecar.instance) {
        Some(channel) => channel.port.is_none() || channel.is_ready(),
        None => true,
    };
    if ready {
        Ok(StatusCode::NO_CONTENT)
    } else {
        Err(ApiError::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "ERR_HEALTH_NOT_READY",
            "dapr is not ready: [app channel]",
        ))
    }
}

/// Components and APIs are up as soon as the sidecar serves: SDK clients made before the app
/// listens wait on this, so it must not wait for the app.
pub async fn healthz_outbound() -> StatusCode {
    StatusCode::NO_CONTENT
}

fn capabilities(component: &Component) -> Vec<&'static str> {
    if !component.kind.is_state() {
        return Vec::new();
    }
    let mut caps = vec!["ETAG", "TRANSACTIONAL", "TTL"];
    if component
        .get("actorStateStore")
        .is_some_and(crate::components::truthy)
    {
        caps.push("ACTOR");
    }
    caps
}

/// The components this app may use, by name, with their capabilities.
pub(super) fn components(sidecar: &SidecarState) -> Vec<(Component, Vec<&'static str>)> {
    let loaded = sidecar.shared.components();
    let mut components: Vec<&Component> = loaded
        .stores
        .values()
        .map(|e| &e.component)
        .chain(loaded.pubsubs.values().map(|e| &e.component))
        .chain(loaded.secrets.values().map(|(c, _)| c))
        .filter(|c| c.visible_to(&sidecar.app_id))
        .collect();
    components.sort_by(|a, b| a.name.cmp(&b.name));
    components
        .into_iter()
        .map(|c| (c.clone(), capabilities(c)))
        .collect()
}

/// What daca reports as its runtime version.
pub(super) fn runtime_version() -> String {
    format!("daca-{}", env!("CARGO_PKG_VERSION"))
}

/// Dapr's metadata shape; empty fields are left out as Dapr leaves them out.
pub async fn metadata(State(sidecar): State<Arc<SidecarState>>) -> Json<Value> {
    let shared = &sidecar.shared;
    let components: Vec<Value> = components(&sidecar)
        .into_iter()
        .map(|(c, caps)| {
            let mut view = json!({"name": c.name, "type": c.type_name, "version": c.version});
            if !caps.is_empty() {
                view["capabilities"] = json!(caps);
            }
            view
        })
        .collect();
    let subscriptions: Vec<Value> = sidecar
        .subscriptions
        .read()
        .iter()
        .map(|s| s.view())
        .collect();
    let version = runtime_version();
    let mut extended = sidecar.extended.lock().clone();
    extended.insert("daprRuntimeVersion".into(), version.clone());
    let mut body = json!({
        "id": sidecar.app_id,
        "runtimeVersion": version,
        "extended": extended,
        "actorRuntime": shared.actors.runtime_status(&sidecar.instance),
        "workflows": { "connectedWorkers": shared.workflows.connected_workers(&sidecar.app_id) },
    });
    if let Some(counts) = body["actorRuntime"].get("activeActors").cloned() {
        body["actors"] = counts; // the deprecated alias daprd still sends
    }
    if !components.is_empty() {
        body["components"] = json!(components);
    }
    if !subscriptions.is_empty() {
        body["subscriptions"] = json!(subscriptions);
    }
    if let Some(port) = shared.instance(&sidecar.instance).and_then(|c| c.port) {
        body["appConnectionProperties"] =
            json!({"port": port, "protocol": "http", "channelAddress": "127.0.0.1"});
    }
    Json(body)
}

/// `PUT /v1.0/metadata/{key}`: the body's text becomes `extended.<key>`.
pub async fn set_metadata(
    State(sidecar): State<Arc<SidecarState>>,
    Path(key): Path<String>,
    body: Body,
) -> Result<StatusCode, ApiError> {
    let value = read_body(&sidecar, body).await?;
    sidecar
        .extended
        .lock()
        .insert(key, String::from_utf8_lossy(&value).into_owned());
    Ok(StatusCode::NO_CONTENT)
}

/// `POST /v1.0/shutdown`: answers 204, then stops this app (daprd exits and `dapr run` stops
/// the app with it). The sidecar itself stays up for the other apps' calls.
pub async fn shutdown(State(sidecar): State<Arc<SidecarState>>) -> StatusCode {
    if let Some(stop) = &sidecar.on_shutdown {
        stop();
    }
    StatusCode::NO_CONTENT
}

fn secret_store(sidecar: &SidecarState, name: &str) -> Result<SecretStore, ApiError> {
    let stores = &sidecar.shared.components().secrets;
    if stores.is_empty() {
        return Err(ApiError::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "ERR_SECRET_STORES_NOT_CONFIGURED",
            "secret store is not configured",
        ));
    }
    stores
        .get(name)
        .filter(|(c, _)| c.visible_to(&sidecar.app_id))
        .map(|(_, s)| s.clone())
        .ok_or_else(|| {
            ApiError::new(
                StatusCode::UNAUTHORIZED,
                "ERR_SECRET_STORE_NOT_FOUND",
                format!("failed finding secret store with key {name}"),
            )
        })
}

pub async fn secret(
    State(sidecar): State<Arc<SidecarState>>,
    Path((store, key)): Path<(String, String)>,
) -> Result<Json<BTreeMap<String, String>>, ApiError> {
    let value = secret_value(&sidecar, &store, &key)?;
    Ok(Json(BTreeMap::from([(key, value)])))
}

/// One secret's value, with Dapr's answers for a missing one.
pub(super) fn secret_value(
    sidecar: &SidecarState,
    store: &str,
    key: &str,
) -> Result<String, ApiError> {
    let secrets = secret_store(sidecar, store)?;
    match secrets.get(key) {
        Some(value) => Ok(value),
        // The env store answers a missing variable with an empty value, as Dapr's does.
        None if matches!(secrets, SecretStore::Env { .. }) => Ok(String::new()),
        None => Err(ApiError::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "ERR_SECRET_GET",
            format!(
                "failed getting secret with key {key} from secret store {store}: secret {key} not found"
            ),
        )),
    }
}

/// Every secret of a store.
pub(super) fn all_secrets(
    sidecar: &SidecarState,
    store: &str,
) -> Result<BTreeMap<String, String>, ApiError> {
    Ok(secret_store(sidecar, store)?.all())
}

pub async fn bulk_secrets(
    State(sidecar): State<Arc<SidecarState>>,
    Path(store): Path<String>,
) -> Result<Json<BTreeMap<String, BTreeMap<String, String>>>, ApiError> {
    Ok(Json(
        all_secrets(&sidecar, &store)?
            .into_iter()
            .map(|(k, v)| (k.clone(), BTreeMap::from([(k, v)])))
            .collect(),
    ))
}
