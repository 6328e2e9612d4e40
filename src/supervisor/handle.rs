//! The handle to an app's actor: cheap to clone; every operation is a control message that the
//! actor carries out in order, and the returned future completes when it has been carried out.

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::{mpsc, oneshot, watch};

use super::UnitSpec;
use super::state::{AppState, AppStatus};
use super::unit::Unit;
use crate::runtime::Signaller;

/// What an app's actor can be asked to do (named after `systemctl`).
#[derive(Debug)]
pub enum Control {
    Start,
    /// Start once each of these is ready (within its startup timeout), else fail.
    StartAfter(Vec<AppHandle>),
    Stop,
    Restart,
    /// Restart for new code: stop with this grace (zero: SIGKILL at once), then start.
    Reload(Duration),
    /// Run this spec from the next start on; the running process is left alone.
    Update(Box<UnitSpec>),
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
pub(crate) type CurrentSignals = Arc<crate::sync::Mutex<Option<Arc<dyn Signaller>>>>;

/// A handle to one unit.
#[derive(Clone)]
pub struct AppHandle {
    pub(crate) unit: Unit,
    pub(crate) controls: mpsc::Sender<Envelope>,
    pub(crate) status: watch::Receiver<AppStatus>,
    pub(crate) spec: watch::Receiver<Arc<UnitSpec>>,
    pub(crate) signals: CurrentSignals,
}

impl fmt::Debug for AppHandle {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "AppHandle({})", self.unit)
    }
}

impl AppHandle {
    pub fn unit(&self) -> &Unit {
        &self.unit
    }

    /// The spec it runs now (changed by [`Control::Update`]).
    pub fn spec(&self) -> Arc<UnitSpec> {
        self.spec.borrow().clone()
    }

    /// Its status as it changes.
    pub fn watch(&self) -> watch::Receiver<AppStatus> {
        self.status.clone()
    }

    /// The latest status.
    pub fn status(&self) -> AppStatus {
        self.status.borrow().clone()
    }

    /// Sends a control and waits until the actor has carried it out (at once when the actor
    /// has ended).
    pub async fn send(&self, control: Control) {
        let (done, finished) = oneshot::channel();
        if self.controls.send(Envelope { control, done }).await.is_ok() {
            let _ = finished.await;
        }
    }

    pub async fn start(&self) {
        self.send(Control::Start).await
    }
    /// Starts once `dependencies` are ready; returns as soon as the actor has the request.
    pub async fn start_after(&self, dependencies: Vec<AppHandle>) {
        self.send(Control::StartAfter(dependencies)).await
    }
    pub async fn stop(&self) {
        self.send(Control::Stop).await
    }
    pub async fn restart(&self) {
        self.send(Control::Restart).await
    }
    /// Stops the unit and ends its actor.
    pub async fn shutdown(&self) {
        self.send(Control::Shutdown).await
    }
    /// Runs `spec` from the next start on.
    pub async fn update(&self, spec: UnitSpec) {
        self.send(Control::Update(Box::new(spec))).await
    }

    /// Restarts for new code, stopping the old process with `grace` (zero: SIGKILL at once).
    pub async fn reload(&self, grace: Duration) {
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
        let signals = self.signals.lock().clone();
        if let Some(signals) = signals {
            signals.kill();
        }
    }
}
