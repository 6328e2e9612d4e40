//! The actor that alone owns one app's process. The loop only routes; each event has its own
//! short method (`on_control`, `on_exit`, `on_probe`, `on_retry`).

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::sync::{broadcast, mpsc, oneshot, watch};
use tokio::time::{sleep_until, timeout_at};

use super::UnitSpec;
use super::backoff::{Backoff, LOOP_AFTER};
use super::handle::{Control, CurrentSignals, Envelope};
use super::probe::Probe;
use super::state::{AppEvent, AppState, AppStatus};
use crate::logs::{LogBus, now_ms};
use crate::runtime::{ExitInfo, LaunchError, Runtime, Signaller};

const UNKNOWN_EXIT: ExitInfo = ExitInfo {
    code: None,
    signal: None,
};

struct Current {
    exited: oneshot::Receiver<ExitInfo>,
    signals: Arc<dyn Signaller>,
    launched: Instant,
    ready: bool,
    next_probe: tokio::time::Instant,
}

/// Probe often while a start is young (most apps are ready within a second or two, and every
/// millisecond here is start-up latency for their dependents), then settle to a gentler pace.
fn probe_delay(since_launch: Duration) -> Duration {
    if since_launch < Duration::from_secs(2) {
        Duration::from_millis(10)
    } else {
        Duration::from_millis(50)
    }
}

/// The wait for a unit's dependencies before it launches.
type Waiting = Pin<Box<dyn Future<Output = Result<(), String>> + Send>>;

pub(crate) struct AppTask {
    spec: Arc<UnitSpec>,
    /// Where the spec is shown to the handles (it changes with `Control::Update`).
    spec_tx: watch::Sender<Arc<UnitSpec>>,
    runtime: Arc<dyn Runtime>,
    logs: Arc<LogBus>,
    status: watch::Sender<AppStatus>,
    events: broadcast::Sender<AppEvent>,
    signals: CurrentSignals,
    current: Option<Current>,
    waiting: Option<Waiting>,
    retry_at: Option<tokio::time::Instant>,
    backoff: Backoff,
    started_once: bool,
    /// The port another process holds, once that was said (so it is said once).
    port_wait: Option<u16>,
    /// The process group of the last launch.
    last_group: Option<u32>,
}

impl AppTask {
    pub fn new(
        spec_tx: watch::Sender<Arc<UnitSpec>>,
        runtime: Arc<dyn Runtime>,
        logs: Arc<LogBus>,
        status: watch::Sender<AppStatus>,
        events: broadcast::Sender<AppEvent>,
        signals: CurrentSignals,
    ) -> Self {
        let spec = spec_tx.borrow().clone();
        AppTask {
            spec,
            spec_tx,
            runtime,
            logs,
            status,
            events,
            signals,
            current: None,
            waiting: None,
            retry_at: None,
            backoff: Backoff::default(),
            port_wait: None,
            last_group: None,
            started_once: false,
        }
    }

    fn name(&self) -> &str {
        &self.spec.name
    }

    pub async fn run(mut self, mut controls: mpsc::Receiver<Envelope>) {
        loop {
            let next_probe = self
                .current
                .as_ref()
                .filter(|c| !c.ready)
                .map(|c| c.next_probe);
            let retry_at = self.retry_at;
            tokio::select! {
                envelope = controls.recv() => {
                    let Some(Envelope { control, done }) = envelope else {
                        self.stop_current(self.spec.grace).await;
                        break;
                    };
                    let shutdown = matches!(control, Control::Shutdown);
                    self.on_control(control).await;
                    let _ = done.send(());
                    if shutdown {
                        break;
                    }
                }
                exit = wait_exit(&mut self.current) => self.on_exit(exit),
                ready = wait_dependencies(&mut self.waiting) => self.on_dependencies(ready).await,
                _ = sleep_until(next_probe.unwrap_or_else(tokio::time::Instant::now)), if next_probe.is_some() => self.on_probe().await,
                _ = sleep_until(retry_at.unwrap_or_else(tokio::time::Instant::now)), if retry_at.is_some() => self.on_retry().await,
            }
        }
    }

    async fn on_control(&mut self, control: Control) {
        tracing::debug!(app = self.name(), ?control, "control");
        if !matches!(control, Control::Update(_)) {
            self.waiting = None; // any other control decides what happens next
        }
        match control {
            Control::Start if self.current.is_none() => {
                self.backoff.reset();
                self.launch().await;
            }
            Control::Start => {}
            Control::StartAfter(_) if self.current.is_some() => {}
            Control::StartAfter(dependencies) => {
                self.waiting = Some(Box::pin(super::dependencies_ready(dependencies)));
            }
            Control::Update(spec) => {
                self.spec = Arc::new(*spec);
                self.spec_tx.send_replace(self.spec.clone());
            }
            Control::Restart => {
                self.stop_current(self.spec.grace).await;
                self.backoff.reset();
                self.launch().await;
            }
            Control::Reload(grace) => {
                self.stop_current(grace).await;
                self.backoff.reset();
                self.launch().await;
            }
            Control::Stop | Control::Shutdown => {
                self.stop_current(self.spec.grace).await;
                self.update(AppState::Stopped, |s| s.message = None);
            }
            Control::Fail(reason) => {
                self.stop_current(self.spec.grace).await;
                tracing::error!("{}: {reason}", self.name());
                self.update(AppState::Failed, |s| s.message = Some(reason));
            }
        }
    }

    async fn on_dependencies(&mut self, ready: Result<(), String>) {
        self.waiting = None;
        match ready {
            Ok(()) => {
                self.backoff.reset();
                self.launch().await;
            }
            Err(reason) => {
                tracing::error!("{}: {reason}", self.name());
                self.update(AppState::Failed, |s| s.message = Some(reason));
            }
        }
    }

    async fn launch(&mut self) {
        self.retry_at = None;
        if let Some(port) = self.port_taken() {
            return self.wait_for_port(port);
        }
        self.port_wait = None;
        let spec = self.spec.clone();
        match self
            .runtime
            .launch(&spec.name, &spec.launch, &self.logs)
            .await
        {
            Ok(launched) => {
                let restarted = std::mem::replace(&mut self.started_once, true);
                self.share_signals(Some(launched.signals.clone()));
                self.last_group = Some(launched.pid);
                self.current = Some(Current {
                    exited: launched.exited,
                    signals: launched.signals,
                    launched: Instant::now(),
                    ready: false,
                    next_probe: tokio::time::Instant::now(),
                });
                self.update(AppState::Starting, |s| {
                    s.pid = Some(launched.pid);
                    s.container = launched.container.clone();
                    s.started_at_ms = Some(now_ms());
                    s.ready_after_ms = None;
                    s.message = None;
                    s.start = launched.start.as_ref().map(|s| s.to_string());
                    s.restarts += u32::from(restarted);
                });
                if self.spec.probe == Probe::None {
                    self.mark_ready();
                }
            }
            Err(err) => self.on_launch_error(err),
        }
    }

    /// The app's own port on the machine, when another process listens there. Checked before
    /// every start: the app could not listen, and its readiness probe would pass against the
    /// other process, whose answers would then be taken for the app's. (Its previous process
    /// group is gone by now; in a pod, or in a container, the port is the pod's own.)
    fn port_taken(&self) -> Option<u16> {
        let crate::runtime::LaunchSpec::Process(process) = &self.spec.launch else {
            return None;
        };
        let port = match &self.spec.probe {
            Probe::Tcp(port) | Probe::Http { port, .. } => *port,
            _ => return None,
        };
        (process.pod.is_none() && !crate::ports::is_free(port)).then_some(port)
    }

    /// Says once who holds the port, then looks again every second. A process of the app's
    /// last group (killed, its sockets not yet closed) is waited for briefly and silently.
    fn wait_for_port(&mut self, port: u16) {
        let holder = crate::ports::holder(port);
        let group = |pid: u32| nix::unistd::getpgid(Some(nix::unistd::Pid::from_raw(pid as i32)));
        let dying = holder
            .as_ref()
            .zip(self.last_group)
            .is_some_and(|((pid, _), last)| group(*pid).is_ok_and(|g| g.as_raw() as u32 == last));
        if dying {
            self.retry_at = Some(tokio::time::Instant::now() + Duration::from_millis(10));
            return;
        }
        let holder = match holder {
            Some((pid, command)) => format!("pid {pid}, `{command}`"),
            None => "a process daca cannot see".to_string(),
        };
        let message =
            format!("port {port} is taken by another process ({holder}); starting once it is free");
        if self.port_wait != Some(port) {
            tracing::error!(
                "{}: {message}\n  hint: stop it (`ss -ltnp 'sport = :{port}'`), or change the app's `port:`",
                self.name()
            );
            self.port_wait = Some(port);
        }
        self.retry_at = Some(tokio::time::Instant::now() + Duration::from_secs(1));
        self.update(AppState::BackingOff, |s| {
            s.pid = None;
            s.message = Some(message);
        });
    }

    fn on_launch_error(&mut self, err: LaunchError) {
        let hint = match &err {
            LaunchError::NotFound { program, .. } => {
                format!("install `{program}` or fix `command:` in daca.yaml")
            }
            LaunchError::Spawn { .. } => "check the command and the app's folder".to_string(),
            LaunchError::Container { hint, .. } => hint.clone(),
        };
        tracing::error!("{}: {err}\n  hint: {hint}", self.name());
        self.update(AppState::Failed, |s| {
            s.message = Some(format!("{err} (hint: {hint})"))
        });
    }

    async fn on_probe(&mut self) {
        if self.spec.probe.check().await {
            self.mark_ready();
        } else if let Some(current) = self.current.as_mut() {
            current.next_probe =
                tokio::time::Instant::now() + probe_delay(current.launched.elapsed());
        }
    }

    fn mark_ready(&mut self) {
        let Some(current) = self.current.as_mut() else {
            return;
        };
        current.ready = true;
        self.runtime.ready(&self.spec.name);
        let after = current.launched.elapsed().as_millis() as u64;
        tracing::info!("{} ready in {after} ms", self.spec.name);
        self.update(AppState::Ready, |s| s.ready_after_ms = Some(after));
    }

    fn on_exit(&mut self, exit: ExitInfo) {
        let Some(current) = self.current.take() else {
            return;
        };
        // Whatever the leader left behind in its group goes with it, so a restart finds the port free.
        current.signals.kill();
        self.share_signals(None);
        let ran_for = current.launched.elapsed();
        if !self.spec.restart.restarts_after(exit.success()) {
            tracing::warn!(
                "{} exited ({exit}) after {:.1} s; not restarting (restart policy)",
                self.name(),
                ran_for.as_secs_f64()
            );
            self.update(AppState::Exited, |s| {
                s.pid = None;
                s.container = None;
                s.last_exit = Some(exit);
            });
            return;
        }
        let delay = self.backoff.next(ran_for);
        let looping = self.backoff.quick_exits() >= LOOP_AFTER;
        let message = if looping {
            format!(
                "crash loop: {} quick exits in a row (last: {exit}); next start in {:.1} s",
                self.backoff.quick_exits(),
                delay.as_secs_f64()
            )
        } else {
            format!(
                "exited ({exit}) after {:.1} s; restarting in {} ms",
                ran_for.as_secs_f64(),
                delay.as_millis()
            )
        };
        if looping {
            tracing::error!("{}: {message}", self.name());
        } else {
            tracing::warn!("{}: {message}", self.name());
        }
        self.retry_at = Some(tokio::time::Instant::now() + delay);
        self.update(AppState::BackingOff, |s| {
            s.pid = None;
            s.container = None;
            s.last_exit = Some(exit);
            s.message = Some(message);
        });
    }

    async fn on_retry(&mut self) {
        self.retry_at = None;
        self.launch().await;
    }

    /// SIGTERM to the group, then the grace period, then SIGKILL; also for leftovers in the group.
    async fn stop_current(&mut self, grace: Duration) {
        self.retry_at = None;
        let Some(mut current) = self.current.take() else {
            return;
        };
        self.update(AppState::Stopping, |_| {});
        let deadline = tokio::time::Instant::now() + grace;
        if grace.is_zero() {
            current.signals.kill();
        } else {
            current.signals.terminate();
        }
        let exit = match timeout_at(deadline, &mut current.exited).await {
            Ok(exit) => exit.unwrap_or(UNKNOWN_EXIT),
            Err(_) if grace.is_zero() => current.exited.await.unwrap_or(UNKNOWN_EXIT),
            Err(_) => {
                tracing::warn!(
                    "{} did not stop within {grace:?}; sending SIGKILL",
                    self.name()
                );
                current.signals.kill();
                current.exited.await.unwrap_or(UNKNOWN_EXIT)
            }
        };
        while current.signals.group_alive() && tokio::time::Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        if current.signals.group_alive() {
            current.signals.kill();
            // SIGKILLed members linger as zombies until reaped; wait (briefly) so that when
            // stop returns, their ports are really free.
            let reaped = tokio::time::Instant::now() + Duration::from_secs(1);
            while current.signals.group_alive() && tokio::time::Instant::now() < reaped {
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
        }
        self.share_signals(None);
        self.update(AppState::Stopping, |s| {
            s.pid = None;
            s.container = None;
            s.last_exit = Some(exit);
        });
    }

    /// What a forced shutdown (`AppHandle::force_kill`) may signal, bypassing the control queue.
    fn share_signals(&self, signals: Option<Arc<dyn Signaller>>) {
        *self.signals.lock() = signals;
    }

    fn update(&self, state: AppState, change: impl FnOnce(&mut AppStatus)) {
        self.status.send_modify(|status| {
            status.state = state;
            change(status);
        });
        let pid = self.status.borrow().pid;
        let _ = self.events.send(AppEvent {
            unit: self.spec.unit.clone(),
            name: self.name().to_string(),
            state,
            pid,
            ts_ms: now_ms(),
        });
    }
}

async fn wait_dependencies(waiting: &mut Option<Waiting>) -> Result<(), String> {
    match waiting {
        Some(waiting) => waiting.as_mut().await,
        None => std::future::pending().await,
    }
}

async fn wait_exit(current: &mut Option<Current>) -> ExitInfo {
    match current {
        Some(current) => (&mut current.exited).await.unwrap_or(UNKNOWN_EXIT),
        None => std::future::pending().await,
    }
}
