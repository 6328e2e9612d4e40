//! An app's pod as the project runs it (see `crate::pod`): made before the app's process, with
//! the app's sidecar listening inside it at 127.0.0.1:3500 and :50001 (served like the host's,
//! by the same sidecar), the host ports that lead to the app's ports inside, and daca's Redis
//! reachable at the pod's own localhost. A host process's pod is daca's own (`crate::pod`); a
//! container's is the engine's, served through its relay (`pod_container.rs`). Ended after the
//! app's process, by `AppEntry::close`.

use std::net::{Ipv4Addr, SocketAddr};
use std::sync::Arc;

use tokio::net::{TcpListener, TcpStream};
use tokio_util::either::Either;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use std::collections::BTreeMap;

use super::Context;
use super::launch::{InPod, POD_SIDECAR, PodJoin};
use super::pod_links::{forward, place, to_peer};
use super::pod_names::{Names, PeerList, Target};
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

/// Where each name leads: an instance's name to it, an app-id to each of its instances.
pub(super) type Peers = Arc<crate::sync::RwLock<BTreeMap<String, Vec<Reach>>>>;

/// Where a new connection to `name` goes: with replicas, each instance in turn, as a
/// Kubernetes Service spreads connections over its pods.
pub(super) fn reach_of(peers: &Peers, name: &str) -> Option<Reach> {
    static TURN: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
    let peers = peers.read();
    let all = peers.get(name).filter(|all| !all.is_empty())?;
    let turn = TURN.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    Some(all[turn % all.len()])
}

/// What kind of pod it is, and how daca reaches into it.
pub(super) enum Kind {
    /// A host process's pod: daca makes sockets in it.
    Process(Box<Pod>),
    /// A container's pod: the engine's, reached through its relay.
    Container(super::pod_container::ContainerPod),
}

/// An app's pod: its kind and the other apps' names in it.
pub(super) struct Inside {
    kind: Kind,
    names: Names,
}

impl Inside {
    /// A connection to 127.0.0.1:`port` in the pod.
    pub(super) async fn connect(
        &self,
        port: u16,
    ) -> Option<Either<TcpStream, tokio::net::UnixStream>> {
        match &self.kind {
            Kind::Process(pod) => {
                let stream = pod.connect(loopback(port)).await.ok()?;
                let _ = stream.set_nodelay(true);
                Some(Either::Left(stream))
            }
            Kind::Container(pod) => pod.hub.connect(port).await.ok().map(Either::Right),
        }
    }

    /// Makes an app that joined the project (a daca.yaml edit) known in the pod: its names in
    /// the hosts file, daca listening for them.
    pub async fn add_peer(
        &self,
        peer: &str,
        port: Option<u16>,
        peers: &Peers,
        tasks: &TaskTracker,
        token: &CancellationToken,
    ) {
        let Some(wanted) = self.names.add(peer, port) else {
            return;
        };
        for (address, target) in wanted {
            let listened = match &self.kind {
                Kind::Process(pod) => pod
                    .listen(address)
                    .map(|listener| {
                        let peer = peer.to_string();
                        tasks.spawn(to_peer(
                            listener,
                            peers.clone(),
                            peer,
                            target,
                            token.clone(),
                        ));
                    })
                    .map_err(|e| e.to_string()),
                Kind::Container(pod) => pod
                    .hub
                    .listen(&format!("{address}={}", target.relay(peer)))
                    .await
                    .map_err(|e| e.to_string()),
            };
            if let Err(err) = listened {
                tracing::warn!("cannot listen for `{peer}` at {address} in a pod: {err}");
            }
        }
    }

    /// Ends the pod (its app has stopped), and removes its files.
    pub async fn close(self) {
        match self.kind {
            Kind::Process(pod) => pod.close().await,
            Kind::Container(pod) => pod.close().await,
        }
        if let Some(dir) = self.names.hosts().parent() {
            let _ = std::fs::remove_dir_all(dir);
        }
        let _ = std::fs::remove_dir(pods_dir());
    }
}

/// What serves the pod's side once the app's sidecar exists.
enum Serving {
    /// The sidecar's listeners in the pod, and those for the other apps' names.
    Process {
        /// HTTP and gRPC; none for an app without a sidecar.
        sidecar: Option<(TcpListener, TcpListener)>,
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

/// Host processes' pods made ahead, all at once (at the first start), by app-id.
pub(super) type Ahead = crate::sync::Mutex<BTreeMap<String, (Names, Pod)>>;

/// A host process's pod, with its hosts file.
async fn process_pod(
    ctx: &Context,
    spec: &AppSpec,
    peers: &[(String, Option<u16>)],
) -> Result<(Names, Pod), Problem> {
    let id = spec.id.as_str();
    let dir = pods_dir().join(id);
    std::fs::create_dir_all(&dir).map_err(|e| pod_problem(id, e))?;
    let names =
        Names::new(id, &dir.join("hosts"), peers, &ctx.aliases).map_err(|e| pod_problem(id, e))?;
    let forward = ctx.server_ports();
    let pod = Pod::create(names.hosts(), &spec.process.volumes, &forward)
        .await
        .map_err(|e| pod_problem(id, e))?;
    // pasta maps the pod's gateway to the host's loopback: the name Docker and Podman give
    // it, so an app reaches a service on the machine as it would from a container.
    if let Some(gateway) = crate::pod::gateway(pod.pid()) {
        let line = format!("{gateway} host.docker.internal host.containers.internal");
        names.extra(&line).map_err(|e| pod_problem(id, e))?;
    }
    Ok((names, pod))
}

/// Makes the pods of `apps` (host processes, each with its peers) at once: each takes a few
/// process starts, which need not wait for one another. What fails here is made (and
/// reported) again by [`PodPlace::open`].
pub(super) async fn make_ahead(ctx: &Context, apps: &[(&AppSpec, PeerList)]) {
    let made = futures_util::future::join_all(apps.iter().map(|(spec, peers)| async move {
        (spec.id.to_string(), process_pod(ctx, spec, peers).await)
    }))
    .await;
    let mut ahead = ctx.ahead.lock();
    for (id, pod) in made {
        if let Ok(pod) = pod {
            ahead.insert(id, pod);
        }
    }
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
        let id = spec.id.as_str();
        if let Some(plan) = ctx.containers.as_ref().filter(|plan| plan.runs(spec)) {
            let dir = pods_dir().join(id);
            std::fs::create_dir_all(&dir).map_err(|e| pod_problem(id, e))?;
            let names = Names::new(id, &dir.join("hosts"), peers, &ctx.aliases)
                .map_err(|e| pod_problem(id, e))?;
            let (pod, network) =
                super::pod_container::ContainerPod::open(ctx, plan, spec, &dir, &names).await?;
            let in_pod = InPod {
                join: PodJoin::Container {
                    network,
                    socket: pod.hub.socket().to_path_buf(),
                    hosts: names.hosts().to_path_buf(),
                },
                host_port: first_port(&host),
            };
            return Ok(PodPlace {
                serving: Serving::Container(pod.hub.clone()),
                inside: Arc::new(Inside {
                    kind: Kind::Container(pod),
                    names,
                }),
                in_pod,
                host,
            });
        }
        let ahead = ctx.ahead.lock().remove(id);
        let (names, pod) = match ahead {
            Some(made) => made,
            None => process_pod(ctx, spec, peers).await?,
        };
        let listen = |port: u16| {
            pod.listen(loopback(port))
                .map_err(|e| Problem::new(format!("{id}: cannot listen on {port} in its pod: {e}")))
        };
        let sidecar = match spec.sidecar.enabled {
            true => Some((listen(POD_SIDECAR.http)?, listen(POD_SIDECAR.grpc)?)),
            false => None,
        };
        let listeners = name_listeners(&pod, id, &names)?;
        let in_pod = InPod {
            join: PodJoin::Process(pod.join()),
            host_port: first_port(&host),
        };
        Ok(PodPlace {
            inside: Arc::new(Inside {
                kind: Kind::Process(Box::new(pod)),
                names,
            }),
            in_pod,
            serving: Serving::Process {
                sidecar,
                names: listeners,
            },
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
            Serving::Process {
                sidecar: listeners,
                names,
            } => {
                if let Some(listeners) = listeners {
                    super::app::serve_sidecar(listeners, sidecar, tasks, token);
                }
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

/// Listeners in the pod for every other app's names: its port, and its sidecar's 3500/50001.
fn name_listeners(
    pod: &Pod,
    id: &str,
    names: &Names,
) -> Result<Vec<(TcpListener, String, Target)>, Problem> {
    let mut listeners = Vec::new();
    for (peer, wanted) in names.initial() {
        for (address, target) in wanted {
            let listener = pod.listen(address).map_err(|e| {
                Problem::new(format!("{id}: cannot listen for `{peer}` in its pod: {e}"))
            })?;
            listeners.push((listener, peer.clone(), target));
        }
    }
    Ok(listeners)
}
