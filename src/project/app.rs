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
    /// Its pod, when it has one (ended after its process), and how its unit runs in it.
    pod: Option<Arc<super::pod::Inside>>,
    in_pod: Option<super::launch::InPod>,
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
        peers: &[(String, Option<u16>)],
    ) -> Result<AppEntry, Problem> {
        let Listeners {
            ports,
            sidecar: listeners,
            host,
        } = listeners;
        let id = spec.id.to_string();
        let place = match ctx.in_pod(&spec) {
            true => Some(super::pod::PodPlace::open(ctx, &spec, host, peers).await?),
            false => None,
        };
        let in_pod = place.as_ref().map(|p| p.in_pod.clone());
        let spec = Arc::new(spec);
        let handle = ctx
            .supervisor
            .spawn((ctx.make_unit(ports, in_pod.clone()))(&spec));
        let reach = match &in_pod {
            Some(pod) => pod.host_port,
            None => spec.process.port,
        };
        let app_id = spec.app_id().as_str();
        let channel = AppChannel::supervised(app_id, reach, ctx.app_token.clone(), handle.watch())
            .with_protocol(spec.process.protocol)
            .with_instance(&id);
        let token = ctx.token.child_token();
        let tasks = TaskTracker::new();
        let sidecar = new_sidecar(ctx, &spec, &handle, &tasks);
        let subscriptions = sidecar.subscriptions.clone();
        if let Some(listeners) = listeners {
            serve_sidecar(listeners, &sidecar, &tasks, &token);
        }
        let pod = place.as_ref().map(|p| p.inside.clone());
        if let Some(place) = place {
            place.serve(&sidecar, ports, &ctx.peers, &tasks, &token);
        }
        let (changes, inbox) = mpsc::unbounded_channel();
        let (driver_spec, spec_rx) = watch::channel(spec.clone());
        let driver = reload::Driver {
            spec: spec_rx,
            handle: handle.clone(),
            make_unit: ctx.make_unit(ports, in_pod.clone()),
            stats: reloads.clone(),
            events: ctx.parts.events.clone(),
            containers: ctx.containers.clone(),
            dependents: ctx.dependents.clone(),
            warm: ctx.warm.clone(),
            usual: Default::default(),
        };
        tasks.spawn(driver.run(inbox, token.clone()));
        if spec.sidecar.enabled {
            let actors = ctx.shared.actors.clone();
            tasks.spawn(crate::actors::follow(
                actors,
                channel.clone(),
                token.clone(),
            ));
        }
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
            pod,
            in_pod,
            token,
            tasks,
        };
        entry.subscribe(ctx);
        Ok(entry)
    }

    /// (Re)starts the subscriber and the input bindings on the current components; the old
    /// ones end first, and what the subscriber had not acknowledged the new one delivers.
    pub fn subscribe(&mut self, ctx: &Context) {
        self.subscriber.cancel();
        // Without a sidecar, nothing asks the app for its subscriptions.
        if !self.spec.sidecar.enabled {
            return;
        }
        self.subscriber = self.token.child_token();
        let components = ctx.shared.components();
        let subscriber = Subscriber::new(
            self.channel.clone(),
            components.pubsubs.clone(),
            &components.declarative,
            self.subscriptions.clone(),
        )
        .with_stats(ctx.shared.pubsub_stats.clone())
        .with_policies(components.resiliency.for_app(self.spec.app_id().as_str()));
        self.tasks.spawn(subscriber.run(self.subscriber.clone()));
        let inputs = components.bindings.inputs(self.spec.app_id().as_str());
        if !inputs.is_empty() {
            let policies = components.resiliency.for_app(self.spec.app_id().as_str());
            let reader = crate::bindings::input::run(
                self.channel.clone(),
                inputs,
                policies,
                self.subscriber.clone(),
            );
            self.tasks.spawn(reader);
        }
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
        let unit = ctx.make_unit(self.ports, self.in_pod.clone());
        self.handle.update(unit(&spec)).await;
        self.driver_spec.send_replace(spec.clone());
        self.spec = spec;
    }

    /// Makes an app that joined the project known by its names in this app's pod, if any.
    pub async fn add_peer(&self, ctx: &Context, peer: &str, port: Option<u16>) {
        if let Some(pod) = &self.pod {
            pod.add_peer(peer, port, &ctx.peers, &self.tasks, &self.token)
                .await;
        }
    }

    /// Where the app and its sidecar are reached on the machine.
    pub fn reach(&self) -> super::pod::Reach {
        super::pod::Reach {
            app: self.channel.port,
            sidecar: self.ports,
        }
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
            pod_host_port: self.in_pod.as_ref().map(|p| p.host_port),
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
        if let Some(pod) = self.pod.and_then(|pod| Arc::try_unwrap(pod).ok()) {
            pod.close().await;
        }
    }
}

/// Serves the sidecar's HTTP and gRPC APIs on these listeners, on the app's tracker.
pub(super) fn serve_sidecar(
    (http, grpc): (TcpListener, TcpListener),
    sidecar: &Arc<SidecarState>,
    tasks: &TaskTracker,
    token: &CancellationToken,
) {
    tasks.spawn(crate::sidecar::serve(http, sidecar.clone(), token.clone()));
    tasks.spawn(crate::sidecar::grpc::serve(
        grpc,
        sidecar.clone(),
        token.clone(),
    ));
}

/// The app's sidecar state; `POST /v1.0/shutdown` stops the app (on its tracker).
fn new_sidecar(
    ctx: &Context,
    spec: &AppSpec,
    handle: &AppHandle,
    tasks: &TaskTracker,
) -> Arc<SidecarState> {
    let mut sidecar = SidecarState::new(
        spec.app_id().as_str(),
        ctx.shared.clone(),
        spec.sidecar.max_body_size,
    );
    sidecar.instance = spec.id.to_string();
    let (stopper, stopping) = (handle.clone(), tasks.clone());
    sidecar.on_shutdown = Some(Box::new(move || {
        let handle = stopper.clone();
        stopping.spawn(async move { handle.stop().await });
    }));
    Arc::new(sidecar)
}

/// An app's sidecar ports, already listening (none for an app with `dapr: false`, whose
/// ports are then 0); and for an app in a pod, the host ports that lead into it (the first
/// to its `port`).
pub(super) struct Listeners {
    pub ports: SidecarPorts,
    sidecar: Option<(TcpListener, TcpListener)>,
    pub host: Vec<(TcpListener, u16)>,
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
        in_pod: bool,
    ) -> Result<Listeners, Problem> {
        // In a pod the app's port is its own; on the machine it takes what `host_ports` binds.
        let own = app.process.port.filter(|_| !in_pod);
        let fixed = [own, app.sidecar.http_port, app.sidecar.grpc_port];
        for port in fixed.into_iter().flatten() {
            picker.reserve(port);
        }
        let host = match in_pod {
            true => host_ports(picker, app).await?,
            false => Vec::new(),
        };
        if !app.sidecar.enabled {
            let ports = SidecarPorts { http: 0, grpc: 0 };
            return Ok(Listeners {
                ports,
                sidecar: None,
                host,
            });
        }
        let id = app.id.as_str();
        let (http_fixed, grpc_fixed) = match kept {
            Some(ports) => (Some(ports.http), Some(ports.grpc)),
            None => (app.sidecar.http_port, app.sidecar.grpc_port),
        };
        let http = listen(
            id,
            http_fixed,
            || picker.pick(3500),
            "sidecar",
            "dapr_http_port",
        )
        .await?;
        let grpc = listen(
            id,
            grpc_fixed,
            || picker.pick(50001),
            "sidecar gRPC",
            "dapr_grpc_port",
        )
        .await?;
        let ports = SidecarPorts {
            http: port_of(&http),
            grpc: port_of(&grpc),
        };
        Ok(Listeners {
            ports,
            sidecar: Some((http, grpc)),
            host,
        })
    }
}

/// The host ports of an app in a pod: those `ports:` gives, and for its `port` (when `ports:`
/// does not map it) that same port when free, else the next free one.
async fn host_ports(
    picker: &mut PortPicker,
    app: &AppSpec,
) -> Result<Vec<(TcpListener, u16)>, Problem> {
    let id = app.id.as_str();
    let mut pairs: Vec<(Option<u16>, u16)> = app
        .network
        .ports
        .iter()
        .map(|(host, pod)| (Some(*host), *pod))
        .collect();
    if let Some(port) = app.process.port {
        match pairs.iter().position(|(_, pod)| *pod == port) {
            Some(index) => pairs.swap(0, index),
            None => pairs.insert(0, (None, port)),
        }
    }
    let mut bound = Vec::with_capacity(pairs.len());
    for (host, pod) in pairs {
        let listener = listen(id, host, || picker.pick(pod), "host", "ports").await?;
        bound.push((listener, pod));
    }
    Ok(bound)
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
                    "{id}: cannot listen on {what} port {port}: {err}"
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
        let listener = listen("web", None, || choices.pop().unwrap(), "sidecar", "f")
            .await
            .unwrap();
        assert_ne!(port_of(&listener), taken);
        let fixed = listen("web", Some(taken), || 0, "sidecar", "dapr_http_port").await;
        let problem = fixed.err().unwrap().to_string();
        assert!(
            problem.contains("cannot listen on sidecar port"),
            "{problem}"
        );
    }
}
