//! The handle to an app's actor: cheap to clone; every operation is a control message that the
//! actor carries out in order, and the returned future completes when it has been carried out.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::sync::{mpsc, oneshot, watch};

use super::state::{AppState, AppStatus};
use crate::runtime::Signaller;

/// What an app's actor can be asked to do (named after `systemctl`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Control {
    Start,
    Stop,
    Restart,
    /// Restart for new code: stop with this grace (zero: SIGKILL at once), then start.
    Reload(std::time::Duration),
    /// Give up starting, with the reason (e.g. a dependency never became ready).
    Fail(String),
    /// Stop and end the actor.
    Shutdown,
}

pub(crate) struct Envelope {
    pub control: Control,
    pub done: oneshot::Sender<()>,
}

/// The signaller of the running process, shared so a forced shutdown can bypass the queue.
pub(crate) type CurrentSignals = Arc<Mutex<Option<Arc<dyn Signaller>>>>;

/// A handle to one app.
#[derive(Clone)]
pub struct AppHandle {
    pub(crate) name: String,
    pub(crate) controls: mpsc::Sender<Envelope>,
    pub(crate) status: watch::Receiver<AppStatus>,
    pub(crate) signals: CurrentSignals,
}

impl AppHandle {
    /// The app-id (or `redis`).
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Its status as it changes.
    pub fn watch(&self) -> watch::Receiver<AppStatus> {
        self.status.clone()
    }

    /// The latest status.
    pub fn status(&self) -> AppStatus {
        self.status.borrow().clone()
    }

    /// Sends a control and waits until the actor has carried it out.
    pub async fn send(&self, control: Control) {
        let (done, finished) = oneshot::channel();
        if self.controls.send(Envelope { control, done }).await.is_ok() {
            let _ = finished.await;
        }
    }

    pub async fn start(&self) {
        self.send(Control::Start).await
    }
    pub async fn stop(&self) {
        self.send(Control::Stop).await
    }
    pub async fn restart(&self) {
        self.send(Control::Restart).await
    }

    /// Restarts for new code, stopping the old process with `grace` (zero: SIGKILL at once).
    pub async fn reload(&self, grace: std::time::Duration) {
        self.send(Control::Reload(grace)).await
    }

    /// Waits until the app is ready; false if `limit` passes first or it can no longer get there.
    pub async fn wait_ready(&self, limit: Duration) -> bool {
        let mut status = self.status.clone();
        let reached = status.wait_for(|s| {
            matches!(
                s.state,
                AppState::Ready | AppState::Failed | AppState::Exited
            )
        });
        match tokio::time::timeout(limit, reached).await {
            Ok(Ok(status)) => status.state == AppState::Ready,
            _ => false,
        }
    }

    /// SIGKILLs the app's process group now, whatever the actor is doing (second Ctrl-C).
    pub fn force_kill(&self) {
        let signals = self
            .signals
            .lock()
            .expect("UNWRAP: no code panics while holding this lock")
            .clone();
        if let Some(signals) = signals {
            signals.kill();
        }
    }
}
