//! An app's pod as the project runs it (see `crate::pod`): made before the app's process, with
//! the app's sidecar listening inside it at 127.0.0.1:3500 and :50001 (served like the host's,
//! by the same sidecar), the host ports that lead to the app's ports inside, and daca's Redis
//! reachable at the pod's own localhost. Ended after the app's process, by `AppEntry::close`.

use std::net::{Ipv4Addr, SocketAddr};
use std::sync::Arc;

use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use std::collections::BTreeMap;

use super::Context;
use super::launch::{InPod, POD_SIDECAR};
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

/// The app's pod, and what is bound for it until its sidecar serves.
pub(super) struct PodPlace {
    pub pod: Arc<Pod>,
    pub in_pod: InPod,
    http: TcpListener,
    grpc: TcpListener,
    /// Host listeners and the pod port each leads to.
    host: Vec<(TcpListener, u16)>,
    /// Listeners in the pod for the other apps' names, and what each leads to.
    names: Vec<(TcpListener, String, Target)>,
}

fn loopback(port: u16) -> SocketAddr {
    SocketAddr::from((Ipv4Addr::LOCALHOST, port))
}

fn pod_problem(id: &str, err: impl std::fmt::Display) -> Problem {
    Problem::new(format!("{id}: cannot make its pod: {err}"))
        .hint("install `passt` (for pasta), or set `network: host` for this app")
}

impl PodPlace {
    /// Makes the pod with its /etc/hosts and binds the sidecar's ports inside it. `host` are
    /// the host listeners the owner bound for the app's `ports` (the first leads to its
    /// `port`).
    pub async fn open(
        ctx: &Context,
        spec: &AppSpec,
        host: Vec<(TcpListener, u16)>,
        peers: &[(String, Option<u16>)],
    ) -> Result<PodPlace, Problem> {
        let id = spec.id.as_str();
        let dir = std::env::temp_dir().join(format!("daca-pods-{}", std::process::id()));
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
        let host_port = host
            .first()
            .and_then(|(l, _)| l.local_addr().ok())
            .map(|a| a.port());
        let in_pod = InPod {
            join: pod.join(),
            host_port,
        };
        Ok(PodPlace {
            pod: Arc::new(pod),
            in_pod,
            http,
            grpc,
            host,
            names,
        })
    }

    /// Serves the sidecar inside the pod, and the host ports into it, on the app's tracker.
    pub fn serve(
        self,
        sidecar: &Arc<SidecarState>,
        peers: &Peers,
        tasks: &TaskTracker,
        token: &CancellationToken,
    ) {
        tasks.spawn(crate::sidecar::serve(
            self.http,
            sidecar.clone(),
            token.clone(),
        ));
        tasks.spawn(crate::sidecar::grpc::serve(
            self.grpc,
            sidecar.clone(),
            token.clone(),
        ));
        for (listener, port) in self.host {
            let pod = self.pod.clone();
            tasks.spawn(forward(listener, pod, port, token.clone()));
        }
        for (listener, peer, target) in self.names {
            tasks.spawn(to_peer(
                listener,
                peers.clone(),
                peer,
                target,
                token.clone(),
            ));
        }
    }
}

/// Copies each connection to the host `listener` to `port` inside the pod, until `token`.
async fn forward(listener: TcpListener, pod: Arc<Pod>, port: u16, token: CancellationToken) {
    let dial = move || {
        let pod = pod.clone();
        // Nothing listening there yet (the app is starting): the caller sees the connection
        // closed, as it would see it refused without a pod.
        async move { pod.connect(loopback(port)).await.ok() }
    };
    relay(listener, token, dial).await;
}

/// Accepts on `listener` until `token`, and copies each connection both ways to what `dial`
/// connects it to (one it cannot place is closed).
async fn relay<F, Fut>(listener: TcpListener, token: CancellationToken, dial: F)
where
    F: Fn() -> Fut,
    Fut: std::future::Future<Output = Option<tokio::net::TcpStream>> + Send + 'static,
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
                let _ = (from.set_nodelay(true), to.set_nodelay(true));
                let _ = tokio::io::copy_bidirectional(&mut from, &mut to).await;
            }
        });
    }
    connections.shutdown().await;
}

/// Where the `n`th other app's names lead inside a pod: its app at 127.0.1.n, its sidecar
/// (`<app>-dapr`, Dapr's service) at 127.0.2.n; all loopback, so nothing leaves the pod but
/// through daca.
fn peer_address(n: usize, sidecar: bool) -> Ipv4Addr {
    let index = (n + 1).min(254) as u8;
    Ipv4Addr::new(127, if sidecar { 2 } else { 1 }, 0, index)
}

fn hosts_file(id: &str, peers: &[(String, Option<u16>)]) -> String {
    let ns = crate::env::namespace();
    let mut text = format!("127.0.0.1 localhost {id}\n::1 localhost ip6-localhost ip6-loopback\n");
    for (n, (peer, _)) in peers.iter().enumerate() {
        for (name, sidecar) in [(peer.clone(), false), (format!("{peer}-dapr"), true)] {
            text.push_str(&format!(
                "{} {name} {name}.{ns} {name}.{ns}.svc {name}.{ns}.svc.cluster.local\n",
                peer_address(n, sidecar)
            ));
        }
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
        async move { tokio::net::TcpStream::connect(loopback(port?)).await.ok() }
    };
    relay(listener, token, dial).await;
}
