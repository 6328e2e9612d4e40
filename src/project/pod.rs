//! An app's pod as the project runs it (see `crate::pod`): made before the app's process, with
//! the app's sidecar listening inside it at 127.0.0.1:3500 and :50001 (served like the host's,
//! by the same sidecar), the host ports that lead to the app's ports inside, and daca's Redis
//! reachable at the pod's own localhost. Ended after the app's process, by `AppEntry::close`.

use std::net::{Ipv4Addr, SocketAddr};
use std::sync::Arc;

use tokio::net::{TcpListener, TcpStream};
use tokio_util::either::Either;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use std::collections::BTreeMap;

use super::Context;
use super::launch::{InPod, POD_SIDECAR, PodJoin};
use crate::env::SidecarPorts;
use crate::error::Problem;
use crate::manifest::AppSpec;
use crate::pod::Pod;
use crate::sidecar::SidecarState;

/// Where an app and its sidecar are reached on the machine.
#[derive(Debug, Clone, Copy)]
pub struct Reach {
    pub app: Option<u16>,
    pub sidecar: SidecarPorts,
}

/// Every app's [`Reach`], by app-id.
pub(super) type Peers = Arc<crate::sync::RwLock<BTreeMap<String, Reach>>>;

/// What a pod's name for another app leads to.
#[derive(Debug, Clone, Copy)]
enum Target {
    App,
    SidecarHttp,
    SidecarGrpc,
}

/// What is in an app's pod, and how daca reaches into it.
pub(super) enum Inside {
    /// A host process's pod: daca makes sockets in it.
    Process(Pod),
    /// A container's pod: the engine's, reached through its relay.
    Container(super::pod_container::ContainerPod),
}

impl Inside {
    /// A connection to 127.0.0.1:`port` in the pod.
    async fn connect(&self, port: u16) -> Option<Either<TcpStream, tokio::net::UnixStream>> {
        match self {
            Inside::Process(pod) => {
                let stream = pod.connect(loopback(port)).await.ok()?;
                let _ = stream.set_nodelay(true);
                Some(Either::Left(stream))
            }
            Inside::Container(pod) => pod.hub.connect(port).await.ok().map(Either::Right),
        }
    }

    /// Ends the pod (its app has stopped).
    pub async fn close(self) {
        match self {
            Inside::Process(pod) => pod.close().await,
            Inside::Container(pod) => pod.close().await,
        }
    }
}

/// What serves the pod's side once the app's sidecar exists.
enum Serving {
    /// The sidecar's listeners in the pod, and those for the other apps' names.
    Process {
        http: TcpListener,
        grpc: TcpListener,
        names: Vec<(TcpListener, String, Target)>,
    },
    /// The relay places its connections.
    Container(Arc<crate::pod::relay::Hub>),
}

/// The app's pod, and what is bound for it until its sidecar serves.
pub(super) struct PodPlace {
    pub inside: Arc<Inside>,
    pub in_pod: InPod,
    serving: Serving,
    /// Host listeners and the pod port each leads to.
    host: Vec<(TcpListener, u16)>,
}

fn loopback(port: u16) -> SocketAddr {
    SocketAddr::from((Ipv4Addr::LOCALHOST, port))
}

pub(super) fn pod_problem(id: &str, err: impl std::fmt::Display) -> Problem {
    Problem::new(format!("{id}: cannot make its pod: {err}"))
        .hint("install `passt` (for pasta), or set `network: host` for this app")
}

/// This daca's folder of pod files (hosts files, relay sockets); the first use clears those
/// of dead daca processes.
pub(super) fn pods_dir() -> std::path::PathBuf {
    static CLEARED: std::sync::Once = std::sync::Once::new();
    CLEARED.call_once(crate::pod::remove_leftovers);
    std::env::temp_dir().join(format!("daca-pods-{}", std::process::id()))
}

/// The first host listener's port: the one that leads to the app's `port`.
fn first_port(host: &[(TcpListener, u16)]) -> Option<u16> {
    host.first()
        .and_then(|(l, _)| l.local_addr().ok())
        .map(|a| a.port())
}

impl PodPlace {
    /// Makes the pod, with its /etc/hosts, and binds what serves inside it: a pod of daca's
    /// own for a host process, the engine's for a container. `host` are the host listeners
    /// the owner bound for the app's `ports` (the first leads to its `port`).
    pub async fn open(
        ctx: &Context,
        spec: &AppSpec,
        host: Vec<(TcpListener, u16)>,
        peers: &[(String, Option<u16>)],
    ) -> Result<PodPlace, Problem> {
        if let Some(plan) = ctx.containers.as_ref().filter(|plan| plan.runs(spec)) {
            let (pod, network) =
                super::pod_container::ContainerPod::open(ctx, plan, spec, peers).await?;
            let in_pod = InPod {
                join: PodJoin::Container {
                    network,
                    socket: pod.hub.socket().to_path_buf(),
                },
                host_port: first_port(&host),
            };
            return Ok(PodPlace {
                serving: Serving::Container(pod.hub.clone()),
                inside: Arc::new(Inside::Container(pod)),
                in_pod,
                host,
            });
        }
        let id = spec.id.as_str();
        let dir = pods_dir();
        std::fs::create_dir_all(&dir).map_err(|e| pod_problem(id, e))?;
        let hosts = dir.join(format!("{id}.hosts"));
        std::fs::write(&hosts, hosts_file(id, peers)).map_err(|e| pod_problem(id, e))?;
        let forward: Vec<u16> = ctx.redis_plan.loopback_port().into_iter().collect();
        let pod = Pod::create(&hosts, &forward)
            .await
            .map_err(|e| pod_problem(id, e))?;
        let listen = |port: u16| {
            pod.listen(loopback(port))
                .map_err(|e| Problem::new(format!("{id}: cannot listen on {port} in its pod: {e}")))
        };
        let (http, grpc) = (listen(POD_SIDECAR.http)?, listen(POD_SIDECAR.grpc)?);
        let names = name_listeners(&pod, id, peers)?;
        let in_pod = InPod {
            join: PodJoin::Process(pod.join()),
            host_port: first_port(&host),
        };
        Ok(PodPlace {
            inside: Arc::new(Inside::Process(pod)),
            in_pod,
            serving: Serving::Process { http, grpc, names },
            host,
        })
    }

    /// Serves the sidecar inside the pod, and the host ports into it, on the app's tracker.
    /// `own` are the sidecar's ports on the machine.
    pub fn serve(
        self,
        sidecar: &Arc<SidecarState>,
        own: SidecarPorts,
        peers: &Peers,
        tasks: &TaskTracker,
        token: &CancellationToken,
    ) {
        for (listener, port) in self.host {
            let inside = self.inside.clone();
            tasks.spawn(forward(listener, inside, port, token.clone()));
        }
        match self.serving {
            Serving::Process { http, grpc, names } => {
                tasks.spawn(crate::sidecar::serve(http, sidecar.clone(), token.clone()));
                tasks.spawn(crate::sidecar::grpc::serve(
                    grpc,
                    sidecar.clone(),
                    token.clone(),
                ));
                for (listener, peer, target) in names {
                    tasks.spawn(to_peer(
                        listener,
                        peers.clone(),
                        peer,
                        target,
                        token.clone(),
                    ));
                }
            }
            Serving::Container(hub) => hub.set_place(place(own, peers.clone())),
        }
    }
}

/// Where a container pod's relay connections go: `sidecar:http|grpc` (the app's own),
/// `app|http|grpc:<peer>` (another app's names), `host:<port>` (Redis on the machine).
fn place(own: SidecarPorts, peers: Peers) -> crate::pod::relay::Place {
    Arc::new(move |target: String| {
        let port = match target.split_once(':') {
            Some(("sidecar", "http")) => Some(own.http),
            Some(("sidecar", "grpc")) => Some(own.grpc),
            Some(("host", port)) => port.parse().ok(),
            Some((kind, peer)) => {
                let reach = peers.read().get(peer).copied();
                reach.and_then(|r| match kind {
                    "app" => r.app,
                    "http" => Some(r.sidecar.http),
                    "grpc" => Some(r.sidecar.grpc),
                    _ => None,
                })
            }
            None => None,
        };
        Box::pin(async move { TcpStream::connect(loopback(port?)).await.ok() })
    })
}

/// Copies each connection to the host `listener` to `port` inside the pod, until `token`.
async fn forward(listener: TcpListener, inside: Arc<Inside>, port: u16, token: CancellationToken) {
    let dial = move || {
        let inside = inside.clone();
        // Nothing listening there yet (the app is starting): the caller sees the connection
        // closed, as it would see it refused without a pod.
        async move { inside.connect(port).await }
    };
    relay(listener, token, dial).await;
}

/// Accepts on `listener` until `token`, and copies each connection both ways to what `dial`
/// connects it to (one it cannot place is closed).
async fn relay<F, Fut, S>(listener: TcpListener, token: CancellationToken, dial: F)
where
    F: Fn() -> Fut,
    Fut: std::future::Future<Output = Option<S>> + Send + 'static,
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
{
    let mut connections = tokio::task::JoinSet::new();
    loop {
        let accepted = tokio::select! {
            _ = token.cancelled() => break,
            Some(_) = connections.join_next(), if !connections.is_empty() => continue,
            accepted = listener.accept() => accepted,
        };
        let Ok((mut from, _)) = accepted else {
            continue;
        };
        let to = dial();
        connections.spawn(async move {
            if let Some(mut to) = to.await {
                let _ = from.set_nodelay(true);
                let _ = tokio::io::copy_bidirectional(&mut from, &mut to).await;
            }
        });
    }
    connections.shutdown().await;
}

/// Where the `n`th other app's names lead inside a pod: its app at 127.0.1.n, its sidecar
/// (`<app>-dapr`, Dapr's service) at 127.0.2.n; all loopback, so nothing leaves the pod but
/// through daca.
pub(super) fn peer_address(n: usize, sidecar: bool) -> Ipv4Addr {
    let index = (n + 1).min(254) as u8;
    Ipv4Addr::new(127, if sidecar { 2 } else { 1 }, 0, index)
}

/// Every name a pod resolves for the other apps, and its address: `<app>`, `<app>.<ns>`,
/// `<app>.<ns>.svc`, `<app>.<ns>.svc.cluster.local`, and the same for `<app>-dapr`.
pub(super) fn cluster_names(peers: &[(String, Option<u16>)]) -> Vec<(Vec<String>, Ipv4Addr)> {
    let ns = crate::env::namespace();
    let mut names = Vec::new();
    for (n, (peer, _)) in peers.iter().enumerate() {
        for (name, sidecar) in [(peer.clone(), false), (format!("{peer}-dapr"), true)] {
            let all = vec![
                format!("{name}"),
                format!("{name}.{ns}"),
                format!("{name}.{ns}.svc"),
                format!("{name}.{ns}.svc.cluster.local"),
            ];
            names.push((all, peer_address(n, sidecar)));
        }
    }
    names
}

fn hosts_file(id: &str, peers: &[(String, Option<u16>)]) -> String {
    let mut text = format!("127.0.0.1 localhost {id}\n::1 localhost ip6-localhost ip6-loopback\n");
    for (names, address) in cluster_names(peers) {
        text.push_str(&format!("{address} {}\n", names.join(" ")));
    }
    text
}

/// Listeners in the pod for every other app's names: its port, and its sidecar's 3500/50001.
fn name_listeners(
    pod: &Pod,
    id: &str,
    peers: &[(String, Option<u16>)],
) -> Result<Vec<(TcpListener, String, Target)>, Problem> {
    let mut listeners = Vec::new();
    for (n, (peer, port)) in peers.iter().enumerate() {
        let mut wanted = vec![
            (peer_address(n, true), POD_SIDECAR.http, Target::SidecarHttp),
            (peer_address(n, true), POD_SIDECAR.grpc, Target::SidecarGrpc),
        ];
        if let Some(port) = port {
            wanted.push((peer_address(n, false), *port, Target::App));
        }
        for (address, port, target) in wanted {
            let listener = pod.listen(SocketAddr::from((address, port))).map_err(|e| {
                Problem::new(format!("{id}: cannot listen for `{peer}` in its pod: {e}"))
            })?;
            listeners.push((listener, peer.clone(), target));
        }
    }
    Ok(listeners)
}

/// Copies each connection to a pod's name for `peer` to where `peer` is on the machine now
/// (it may have moved: a restart picks its ports again).
async fn to_peer(
    listener: TcpListener,
    peers: Peers,
    peer: String,
    target: Target,
    token: CancellationToken,
) {
    let dial = move || {
        let reach = peers.read().get(&peer).copied();
        let port = reach.and_then(|r| match target {
            Target::App => r.app,
            Target::SidecarHttp => Some(r.sidecar.http),
            Target::SidecarGrpc => Some(r.sidecar.grpc),
        });
        async move {
            let stream = TcpStream::connect(loopback(port?)).await.ok()?;
            let _ = stream.set_nodelay(true);
            Some(stream)
        }
    };
    relay(listener, token, dial).await;
}
