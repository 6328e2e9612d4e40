//! One app of the running project and everything that runs for it beside its process: its
//! sidecar (HTTP and gRPC), its app channel, its subscriber, its reload driver. They all run on
//! the app's own task tracker under the app's own cancellation token, so removing the app ends
//! each of them and waits until each has ended. A new per-app part gets a field here.

use std::sync::Arc;

use tokio::net::TcpListener;
use tokio::sync::{mpsc, watch};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use super::Context;
use super::view::AppView;
use crate::channel::AppChannel;
use crate::env::SidecarPorts;
use crate::error::Problem;
use crate::manifest::AppSpec;
use crate::ports::PortPicker;
use crate::pubsub::delivery::Subscriber;
use crate::pubsub::subscription::Subscription;
use crate::reload::{self, ReloadStats};
use crate::sidecar::SidecarState;
use crate::supervisor::AppHandle;
use crate::sync::RwLock;
use crate::watch::Change;

/// An app and what runs for it.
pub(super) struct AppEntry {
    pub spec: Arc<AppSpec>,
    pub handle: AppHandle,
    pub ports: SidecarPorts,
    pub channel: AppChannel,
    sidecar: Arc<SidecarState>,
    subscriptions: Arc<RwLock<Vec<Subscription>>>,
    /// The current subscriber's token: cancelled when the components change.
    subscriber: CancellationToken,
    /// Where the watcher's changes for this app go.
    changes: mpsc::UnboundedSender<Change>,
    /// The reload driver's view of the spec (a daca.yaml edit may change it).
    driver_spec: watch::Sender<Arc<AppSpec>>,
    reloads: Arc<ReloadStats>,
    token: CancellationToken,
    tasks: TaskTracker,
}

impl AppEntry {
    /// Makes the app's unit (not started) and starts what serves it: its sidecar listens
    /// from now on, also while the app restarts.
    pub async fn open(
        ctx: &Context,
        spec: AppSpec,
        listeners: Listeners,
        reloads: Arc<ReloadStats>,
    ) -> Result<AppEntry, Problem> {
        let Listeners {
            ports,
            http: listener,
            grpc: grpc_listener,
        } = listeners;
        let id = spec.id.to_string();
        let spec = Arc::new(spec);
        let handle = ctx.supervisor.spawn((ctx.make_unit(ports))(&spec));
        let channel = AppChannel::supervised(
            &id,
            spec.process.port,
            ctx.app_token.clone(),
            handle.watch(),
        )
        .with_protocol(spec.process.protocol);
        let token = ctx.token.child_token();
        let tasks = TaskTracker::new();
        let mut sidecar = SidecarState::new(&id, ctx.shared.clone(), spec.sidecar.max_body_size);
        let (stopper, stopping) = (handle.clone(), tasks.clone());
        sidecar.on_shutdown = Some(Box::new(move || {
            let handle = stopper.clone();
            stopping.spawn(async move { handle.stop().await });
        }));
        let subscriptions = sidecar.subscriptions.clone();
        let sidecar = Arc::new(sidecar);
        tasks.spawn(crate::sidecar::serve(
            listener,
            sidecar.clone(),
            token.clone(),
        ));
        tasks.spawn(crate::sidecar::grpc::serve(
            grpc_listener,
            sidecar.clone(),
            token.clone(),
        ));
        let (changes, inbox) = mpsc::unbounded_channel();
        let (driver_spec, spec_rx) = watch::channel(spec.clone());
        let driver = reload::Driver {
            spec: spec_rx,
            handle: handle.clone(),
            make_unit: ctx.make_unit(ports),
            stats: reloads.clone(),
            events: ctx.parts.events.clone(),
            containers: ctx.containers.clone(),
            dependents: ctx.dependents.clone(),
            warm: ctx.warm.clone(),
            usual: Default::default(),
        };
        tasks.spawn(driver.run(inbox, token.clone()));
        let host = crate::actors::follow(ctx.shared.actors.clone(), channel.clone(), token.clone());
        tasks.spawn(host);
        let mut entry = AppEntry {
            spec,
            handle,
            ports,
            channel,
            sidecar,
            subscriptions,
            subscriber: CancellationToken::new(),
            changes,
            driver_spec,
            reloads,
            token,
            tasks,
        };
        entry.subscribe(ctx);
        Ok(entry)
    }

    /// (Re)starts the subscriber on the current components; the old one ends first, and what
    /// it had not acknowledged is delivered by the new one.
    pub fn subscribe(&mut self, ctx: &Context) {
        self.subscriber.cancel();
        self.subscriber = self.token.child_token();
        let components = ctx.shared.components();
        let subscriber = Subscriber::new(
            self.channel.clone(),
            components.pubsubs.clone(),
            &components.declarative,
            self.subscriptions.clone(),
        )
        .with_stats(ctx.shared.pubsub_stats.clone());
        self.tasks.spawn(subscriber.run(self.subscriber.clone()));
    }

    /// Hands a batch of changes of the app's files to its reload driver.
    pub fn changed(&self, change: Change) {
        self.reloads.changed();
        let _ = self.changes.send(change);
    }

    /// Applies a daca.yaml edit that leaves the process alone.
    pub async fn update(&mut self, ctx: &Context, spec: AppSpec) {
        self.sidecar.set_max_body_size(spec.sidecar.max_body_size);
        let spec = Arc::new(spec);
        self.handle.update((ctx.make_unit(self.ports))(&spec)).await;
        self.driver_spec.send_replace(spec.clone());
        self.spec = spec;
    }

    pub fn reloads(&self) -> Arc<ReloadStats> {
        self.reloads.clone()
    }

    pub fn view(&self) -> AppView {
        AppView {
            spec: self.spec.clone(),
            handle: self.handle.clone(),
            ports: self.ports,
            subscriptions: self.subscriptions.clone(),
            reloads: self.reloads.clone(),
        }
    }

    /// Stops the app: its actors are deactivated first (while it can still answer), then its
    /// process; what runs beside it keeps running until [`AppEntry::close`].
    pub async fn stop(&self, ctx: &Context) {
        ctx.shared.actors.unregister(self.spec.id.as_str()).await;
        self.handle.shutdown().await;
    }

    /// Ends what runs beside the process (the process itself is stopped before, through its
    /// handle) and waits until each part has ended.
    pub async fn close(self) {
        self.token.cancel();
        self.tasks.close();
        self.tasks.wait().await;
    }
}

/// An app's sidecar ports, already listening.
pub(super) struct Listeners {
    pub ports: SidecarPorts,
    http: TcpListener,
    grpc: TcpListener,
}

impl Listeners {
    /// Binds the sidecar's ports: the app's own (or those it had before a restart) as they
    /// are, else 3500/50001 when free, else the next free. A port seen free may be bound by
    /// someone else before we bind it (two `daca up`s starting at once both see 3500 free), so
    /// a chosen port that turns out busy makes us choose again rather than fail.
    pub async fn bind(
        picker: &mut PortPicker,
        app: &AppSpec,
        kept: Option<SidecarPorts>,
    ) -> Result<Listeners, Problem> {
        let fixed = [
            app.process.port,
            app.sidecar.http_port,
            app.sidecar.grpc_port,
        ];
        for port in fixed.into_iter().flatten() {
            picker.reserve(port);
        }
        let id = app.id.as_str();
        let (http_fixed, grpc_fixed) = match kept {
            Some(ports) => (Some(ports.http), Some(ports.grpc)),
            None => (app.sidecar.http_port, app.sidecar.grpc_port),
        };
        let http = listen(id, http_fixed, || picker.pick(3500), "", "dapr_http_port").await?;
        let grpc = listen(
            id,
            grpc_fixed,
            || picker.pick(50001),
            " gRPC",
            "dapr_grpc_port",
        )
        .await?;
        let ports = SidecarPorts {
            http: port_of(&http),
            grpc: port_of(&grpc),
        };
        Ok(Listeners { ports, http, grpc })
    }
}

/// How many chosen ports may turn out busy in a row before we give up.
const CHOICES: usize = 32;

/// Listens on `fixed`, else on what `choose` gives (a new choice each time one is busy).
async fn listen(
    id: &str,
    fixed: Option<u16>,
    mut choose: impl FnMut() -> u16,
    what: &str,
    field: &str,
) -> Result<TcpListener, Problem> {
    let mut tries = 0;
    loop {
        let port = fixed.unwrap_or_else(&mut choose);
        match TcpListener::bind(("127.0.0.1", port)).await {
            Ok(listener) => return Ok(listener),
            Err(err)
                if fixed.is_none()
                    && err.kind() == std::io::ErrorKind::AddrInUse
                    && tries < CHOICES =>
            {
                tries += 1;
            }
            Err(err) => {
                return Err(Problem::new(format!(
                    "{id}: cannot listen on sidecar{what} port {port}: {err}"
                ))
                .hint(format!("free the port or set `{field}:` for this app")));
            }
        }
    }
}

fn port_of(listener: &TcpListener) -> u16 {
    listener.local_addr().map(|addr| addr.port()).unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_chosen_port_taken_before_the_bind_is_chosen_again() {
        let busy = std::net::TcpListener::bind(("127.0.0.1", 0)).unwrap();
        let taken = busy.local_addr().unwrap().port();
        let mut choices = vec![0, taken];
        let listener = listen("web", None, || choices.pop().unwrap(), "", "f")
            .await
            .unwrap();
        assert_ne!(port_of(&listener), taken);
        let fixed = listen("web", Some(taken), || 0, "", "dapr_http_port").await;
        let problem = fixed.err().unwrap().to_string();
        assert!(
            problem.contains("cannot listen on sidecar port"),
            "{problem}"
        );
    }
}
