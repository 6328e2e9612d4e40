//! The app channel: how daca's sidecar reaches an app (Dapr's `app-channel-address`,
//! `app-port` and `app-protocol`), and whether the app is there to answer. Deliveries and
//! invocations wait on it, so an app that restarts or reloads misses nothing.
//!
//! What crosses the channel is written once per protocol: `http.rs` (Dapr's HTTP callbacks:
//! `GET /dapr/subscribe`, a POST per event, the invoked route) and `grpc.rs` (Dapr's
//! AppCallback service: `ListTopicSubscriptions`, `OnTopicEvent`, `OnInvoke`). Callers never
//! ask which protocol an app speaks.

mod binding;
mod grpc;
mod http;
mod job;
mod pool;

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use axum::http::HeaderMap;
use axum::response::Response;
use serde_json::Value;
use tokio::sync::watch;

pub use job::JobEvent;

use crate::manifest::AppProtocol;
use crate::pubsub::subscription::Subscription;
use crate::supervisor::{AppState, AppStatus};

/// What the app's answer to a delivery means.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    Success,
    Retry,
    Drop,
}

/// The app could not be reached at all (not listening, restarting): the caller waits and
/// tries again without counting an attempt.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Unreachable;

/// Why an app's subscriptions could not be read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ListError {
    /// Worth asking again (the app is warming up).
    Retry(String),
    /// The app answered, wrongly; asking again gives the same.
    Invalid(String),
}

/// One event for the app.
pub struct Delivery<'a> {
    /// The CloudEvent, parsed, and as the bytes that are sent.
    pub event: &'a Value,
    pub body: &'a [u8],
    pub pubsub: &'a str,
    pub topic: &'a str,
    /// The route its subscription's rules chose.
    pub path: &'a str,
    /// The message's metadata, sent as headers (HTTP).
    pub metadata: &'a BTreeMap<String, String>,
    /// How long the app may take to answer.
    pub timeout: Duration,
}

/// One event of an input binding for the app.
pub struct BindingEvent<'a> {
    pub name: &'a str,
    /// Where an HTTP app receives it (`route`, else the binding's name), without its `/`.
    pub route: &'a str,
    pub data: &'a [u8],
    /// The binding's metadata for the event, sent as headers (HTTP).
    pub metadata: &'a BTreeMap<String, String>,
}

/// One invocation of the app, as the caller's sidecar received it.
pub struct Invocation<'a> {
    /// The method, already cleaned (no leading `/`).
    pub method: &'a str,
    pub parts: &'a axum::http::request::Parts,
    pub body: bytes::Bytes,
    /// The calling app's id.
    pub caller: &'a str,
}

/// A call of daprd's actor callbacks into the app.
pub enum ActorCall<'a> {
    /// `PUT /actors/{type}/{id}/method/{method}` (`timer/<name>` and `remind/<name>` too).
    Method {
        actor_type: &'a str,
        id: &'a str,
        method: &'a str,
        /// The caller's headers (hop-by-hop ones are left behind) and Dapr's own.
        headers: &'a axum::http::HeaderMap,
        query: Option<&'a str>,
        body: bytes::Bytes,
    },
    /// `DELETE /actors/{type}/{id}`: the actor is deactivated.
    Deactivate { actor_type: &'a str, id: &'a str },
}

/// The app's answer to an actor callback.
#[derive(Debug, Clone)]
pub struct ActorAnswer {
    pub status: u16,
    pub headers: axum::http::HeaderMap,
    pub body: bytes::Bytes,
}

/// Hop-by-hop headers (RFC 9110) and Dapr's own, never forwarded either way.
const NOT_FORWARDED: &[&str] = &[
    "connection",
    "keep-alive",
    "proxy-authenticate",
    "proxy-authorization",
    "proxy-connection",
    "te",
    "trailer",
    "transfer-encoding",
    "upgrade",
    "http2-settings",
    "host",
    "content-length",
    "dapr-app-id",
    "dapr-api-token",
    "destination-app-id",
    "dapr-caller-app-id",
    "dapr-callee-app-id",
    "dapr-caller-namespace",
];

/// `headers` without hop-by-hop headers, those `Connection` lists, and Dapr's own.
pub fn forwardable(headers: &HeaderMap) -> HeaderMap {
    let listed: Vec<String> = headers
        .get_all("connection")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(',').map(|s| s.trim().to_ascii_lowercase()))
        .collect();
    let mut out = HeaderMap::new();
    for (name, value) in headers {
        let lower = name.as_str();
        if NOT_FORWARDED.contains(&lower)
            || listed.iter().any(|l| l == lower)
            || lower.ends_with("-bin")
        {
            continue;
        }
        out.append(name.clone(), value.clone());
    }
    out
}

#[derive(Clone)]
enum Transport {
    Http(http::Http),
    Grpc(grpc::Grpc),
}

/// One app as its sidecar (and other apps' sidecars) see it.
#[derive(Clone)]
pub struct AppChannel {
    pub app_id: String,
    /// Which instance of the app this is (`replicas:`): its app-id for the first or only one,
    /// `<app-id>-N` for the others. Actors are placed on instances.
    pub instance: String,
    /// The port the app listens on; None for an app without one (no deliveries, no invocation).
    pub port: Option<u16>,
    /// `APP_API_TOKEN`: sent to the app as `dapr-api-token` on every call daca makes to it.
    pub app_token: Option<String>,
    transport: Transport,
    status: watch::Receiver<AppStatus>,
    /// Keeps the status channel open when nothing supervises the app (tests, benchmarks).
    _owner: Option<Arc<watch::Sender<AppStatus>>>,
}

impl AppChannel {
    /// An app run by the supervisor, over HTTP: ready when the supervisor says so.
    pub fn supervised(
        app_id: &str,
        port: Option<u16>,
        app_token: Option<String>,
        status: watch::Receiver<AppStatus>,
    ) -> AppChannel {
        AppChannel {
            app_id: app_id.to_string(),
            instance: app_id.to_string(),
            port,
            app_token,
            transport: Transport::Http(http::Http::new()),
            status,
            _owner: None,
        }
    }

    /// The channel to instance `name` of its app.
    pub fn with_instance(mut self, name: &str) -> AppChannel {
        self.instance = name.to_string();
        self
    }

    /// An app started by someone else, over HTTP, taken to be ready while it runs (tests,
    /// benchmarks).
    pub fn unsupervised(app_id: &str, port: Option<u16>) -> AppChannel {
        let mut status = AppStatus::new(app_id);
        status.state = AppState::Ready;
        let (sender, receiver) = watch::channel(status);
        let mut channel = AppChannel::supervised(app_id, port, None, receiver);
        channel._owner = Some(Arc::new(sender));
        channel
    }

    /// The same app, spoken to in `protocol`.
    pub fn with_protocol(mut self, protocol: AppProtocol) -> AppChannel {
        self.transport = match protocol {
            AppProtocol::Http => Transport::Http(http::Http::new()),
            AppProtocol::Grpc => Transport::Grpc(grpc::Grpc::default()),
        };
        self
    }

    pub fn protocol(&self) -> AppProtocol {
        match self.transport {
            Transport::Http(_) => AppProtocol::Http,
            Transport::Grpc(_) => AppProtocol::Grpc,
        }
    }

    /// The app's programmatic subscriptions; `Ok(None)` when it has none to tell (HTTP 404,
    /// gRPC Unimplemented).
    pub async fn subscriptions(&self) -> Result<Option<Vec<Subscription>>, ListError> {
        let port = self
            .port
            .ok_or(ListError::Invalid("the app has no port".into()))?;
        match &self.transport {
            Transport::Http(http) => http.subscriptions(self, port).await,
            Transport::Grpc(grpc) => grpc.subscriptions(port).await,
        }
    }

    /// Hands one event to the app and reads its answer as Dapr does.
    pub async fn deliver(&self, delivery: &Delivery<'_>) -> Result<Outcome, Unreachable> {
        let port = self.port.ok_or(Unreachable)?;
        match &self.transport {
            Transport::Http(http) => http.deliver(self, port, delivery).await,
            Transport::Grpc(grpc) => grpc.deliver(self, port, delivery).await,
        }
    }

    /// Invokes the app; its answer comes back as it is, whatever its status.
    pub async fn invoke(&self, call: Invocation<'_>) -> Result<Response, String> {
        let port = self
            .port
            .ok_or("app channel is not initialized: the app has no `port`")?;
        match &self.transport {
            Transport::Http(http) => http.invoke(self, port, call).await,
            Transport::Grpc(grpc) => grpc.invoke(self, port, call).await,
        }
    }

    /// The app's `GET /dapr/config` body; `Ok(None)` when it has none (not 200), or speaks
    /// gRPC, where Dapr has no such call (actors are hosted over HTTP).
    pub async fn app_config(&self) -> Result<Option<bytes::Bytes>, ListError> {
        let port = self
            .port
            .ok_or(ListError::Invalid("the app has no port".into()))?;
        match &self.transport {
            Transport::Http(http) => http.app_config(self, port).await,
            Transport::Grpc(_) => Ok(None),
        }
    }

    /// One of daprd's actor callbacks; `Unreachable` when the app could not be reached.
    pub async fn actor(&self, call: ActorCall<'_>) -> Result<ActorAnswer, Unreachable> {
        let port = self.port.ok_or(Unreachable)?;
        match &self.transport {
            Transport::Http(http) => http.actor(self, port, call).await,
            Transport::Grpc(_) => Err(Unreachable),
        }
    }

    pub fn is_ready(&self) -> bool {
        self.status.borrow().state == AppState::Ready
    }

    /// The current status.
    pub fn status(&self) -> AppStatus {
        self.status.borrow().clone()
    }

    /// Which process is ready (its pid); changes when the app restarts.
    pub fn generation(&self) -> Option<u32> {
        let status = self.status.borrow();
        (status.state == AppState::Ready).then_some(status.pid.unwrap_or(0))
    }

    /// Waits until the app is ready. Returns false if daca is shutting the app down for good.
    pub async fn wait_ready(&mut self) -> bool {
        self.status
            .wait_for(|s| s.state == AppState::Ready)
            .await
            .is_ok()
    }

    /// Waits until the ready process `generation` is gone (stopped, crashed, restarted).
    pub async fn wait_gone(&mut self, generation: Option<u32>) {
        let _ = self
            .status
            .wait_for(|s| s.state != AppState::Ready || s.pid.or(Some(0)) != generation)
            .await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hop_by_hop_and_dapr_headers_stay_behind() {
        let mut headers = HeaderMap::new();
        headers.insert("connection", "close, x-private".parse().unwrap());
        headers.insert("x-private", "1".parse().unwrap());
        headers.insert("dapr-api-token", "t".parse().unwrap());
        headers.insert("grpc-trace-bin", "1".parse().unwrap());
        headers.insert("h", "v".parse().unwrap());
        let kept = forwardable(&headers);
        assert_eq!(kept.len(), 1);
        assert_eq!(kept["h"], "v");
    }
}
