//! The app channel: how daca's sidecar reaches an app (Dapr's `app-channel-address` and
//! `app-port`), and whether the app is there to answer. Deliveries and invocations wait on
//! it, so an app that restarts or reloads misses nothing.

use std::sync::Arc;

use tokio::sync::watch;

use dapr::dapr::proto::runtime::v1::app_callback_client::AppCallbackClient;

use crate::manifest::AppProtocol;
use crate::supervisor::{AppState, AppStatus};

/// One app as its sidecar (and other apps' sidecars) see it.
#[derive(Clone)]
pub struct AppChannel {
    pub app_id: String,
    /// The port the app listens on; None for an app without one (no deliveries, no invocation).
    pub port: Option<u16>,
    /// `APP_API_TOKEN`: sent to the app as `dapr-api-token` on every call daca makes to it.
    pub app_token: Option<String>,
    /// HTTP, or Dapr's AppCallback gRPC service.
    pub protocol: AppProtocol,
    /// The gRPC connection to the app, made on first use; it reconnects by itself.
    grpc: Arc<tokio::sync::OnceCell<tonic::transport::Channel>>,
    status: watch::Receiver<AppStatus>,
    /// Keeps the status channel open when nothing supervises the app (tests, benchmarks).
    _owner: Option<Arc<watch::Sender<AppStatus>>>,
}

impl AppChannel {
    /// An app run by the supervisor: ready when the supervisor says so.
    pub fn supervised(
        app_id: &str,
        port: Option<u16>,
        app_token: Option<String>,
        status: watch::Receiver<AppStatus>,
    ) -> AppChannel {
        AppChannel {
            app_id: app_id.to_string(),
            port,
            app_token,
            protocol: AppProtocol::Http,
            grpc: Arc::default(),
            status,
            _owner: None,
        }
    }

    /// An app started by someone else, taken to be ready while it runs (tests, benchmarks).
    pub fn unsupervised(app_id: &str, port: Option<u16>) -> AppChannel {
        let mut status = AppStatus::new(app_id);
        status.state = AppState::Ready;
        let (sender, receiver) = watch::channel(status);
        AppChannel {
            app_id: app_id.to_string(),
            port,
            app_token: None,
            protocol: AppProtocol::Http,
            grpc: Arc::default(),
            status: receiver,
            _owner: Some(Arc::new(sender)),
        }
    }

    /// `http://127.0.0.1:<port>`.
    pub fn base_url(&self) -> Option<String> {
        self.port.map(|port| format!("http://127.0.0.1:{port}"))
    }

    /// A client of the app's AppCallback service (for `app_protocol: grpc`).
    pub async fn callback(&self) -> Result<AppCallbackClient<tonic::transport::Channel>, String> {
        let port = self.port.ok_or("the app has no port")?;
        let channel = self
            .grpc
            .get_or_try_init(|| async {
                tonic::transport::Endpoint::from_shared(format!("http://127.0.0.1:{port}"))
                    .map(|e| e.tcp_nodelay(true).connect_lazy())
                    .map_err(|e| e.to_string())
            })
            .await?;
        Ok(AppCallbackClient::new(channel.clone()))
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
